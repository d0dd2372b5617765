//! What the desk shows of the admin's rules, served as data: Not Ready reasons, wrap-up codes,
//! which channels' after-call work may be extended, the colleagues. The core enforces the rules;
//! the desk only offers what they allow.

use agentdesk_host::config::AcwPolicy;
pub use agentdesk_host::config::StandardResponse;
use agentdesk_host::core::Policy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The desk's static information.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskInfo {
    /// Not Ready reasons to pick from.
    pub not_ready_reasons: Vec<String>,
    /// Wrap-up codes (code, label).
    pub wrap_up_codes: Vec<(String, String)>,
    /// Whether Mark Done needs a code.
    pub wrap_up_required: bool,
    /// Channels whose ACW the agent may extend, with the policy's ACW length in seconds.
    pub extendable_acw: BTreeMap<String, u64>,
    /// Every agent (id, name): colleagues to consult.
    pub agents: Vec<(String, String)>,
    /// Standard responses the composer offers.
    #[serde(default)]
    pub responses: Vec<StandardResponse>,
}

impl DeskInfo {
    /// The rules of `policy`.
    pub(crate) fn from_policy(policy: &Policy) -> Self {
        let channels: BTreeSet<&String> = policy.agents.iter().flat_map(|a| &a.channels).collect();
        DeskInfo {
            // The hub's own reason for a silent desktop is not the agent's to pick.
            not_ready_reasons: policy
                .not_ready_reasons
                .iter()
                .filter(|r| *r != agentdesk_host::core::DISCONNECTED)
                .cloned()
                .collect(),
            wrap_up_codes: policy
                .wrap_up_codes
                .iter()
                .map(|c| (c.code.clone(), c.label.clone()))
                .collect(),
            wrap_up_required: policy.wrap_up_required,
            extendable_acw: channels
                .into_iter()
                .filter_map(|c| match policy.acw(c) {
                    AcwPolicy::Extendable { secs } => Some((c.clone(), secs)),
                    _ => None,
                })
                .collect(),
            agents: policy
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.name.clone()))
                .collect(),
            responses: policy.responses.clone(),
        }
    }
}
