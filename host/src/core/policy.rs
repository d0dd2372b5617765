//! The rules the core applies, taken from the admin configuration: agents and their channels,
//! capacities, answer timeouts, ACW, Not Ready reasons, wrap-up codes, cross-channel rules.

use crate::config::{AcwPolicy, AdminConfig, AfterAcw, ChannelPolicy, ExclusiveRule};
use plugin_api::WrapUpCode;
use std::collections::{BTreeMap, BTreeSet};

/// The system reason set when an agent misses an offer.
pub const MISSED_OFFER: &str = "missed-offer";
/// The system reason after ACW when the channel's policy is "not-ready".
pub const AFTER_ACW: &str = "after-call-work";
/// The system reason of a channel that has just been logged on.
pub const LOGGED_ON: &str = "logged-on";

/// One agent as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// Login id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Assigned channels (resolved: "all" becomes the channels this host serves).
    pub channels: Vec<String>,
    /// Extension.
    pub extension: Option<String>,
    /// Auto-answer channels.
    pub auto_answer: Vec<String>,
}

/// The core's rules.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The agents.
    pub agents: Vec<AgentSpec>,
    /// Per-channel rules; channels without an entry use the defaults.
    pub channels: BTreeMap<String, ChannelPolicy>,
    /// Allowed Not Ready reasons.
    pub not_ready_reasons: Vec<String>,
    /// Wrap-up codes.
    pub wrap_up_codes: Vec<WrapUpCode>,
    /// Whether Mark Done needs a code.
    pub wrap_up_required: bool,
    /// Whether Not Ready during work becomes Pending.
    pub pending: bool,
    /// How long a closed interaction's de-duplication key is kept, in ms.
    pub dedup_window_ms: u64,
    /// Cross-channel rules.
    pub exclusive: Vec<ExclusiveRule>,
    /// Which plugin carries outbound interactions of each channel (the running plugins').
    pub channel_plugins: BTreeMap<String, String>,
    /// The command kinds each running plugin declared in its hello. A plugin not listed (a core
    /// without plugins: scenarios, tests) is taken to handle every kind.
    pub capabilities: BTreeMap<String, BTreeSet<String>>,
    /// Channels whose interactions are never saved (a running plugin's hello declared them, as
    /// internal IM does): no subject in the journal, nothing in the history, never queued.
    pub never_saved: BTreeSet<String>,
    /// Journal events between two snapshots of the core state (0: only at stop). The service
    /// writes them; the rules never read this.
    pub snapshot_every: u64,
    /// Standard responses, served to the desks (the rules never read them).
    pub responses: Vec<crate::config::StandardResponse>,
}

/// The Not Ready reason a team hub gives an agent whose desktop went silent (so nothing rings
/// on a dead desktop). Always accepted; not offered in the agent's picker.
pub const DISCONNECTED: &str = "disconnected";

fn with_disconnected(reasons: &[String]) -> Vec<String> {
    let mut reasons = reasons.to_vec();
    if !reasons.iter().any(|r| r == DISCONNECTED) {
        reasons.push(DISCONNECTED.to_string());
    }
    reasons
}

impl Policy {
    /// The policy of `config` for a host that serves `channels` (the channel kinds of its
    /// running plugins; "all" in an agent's assignment means these).
    pub fn from_config(config: &AdminConfig, channels: &[String]) -> Self {
        let agents = config
            .agents
            .iter()
            .map(|a| AgentSpec {
                id: a.id.clone(),
                name: a.name.clone(),
                channels: match &a.channels {
                    crate::config::ChannelAssignment::All => channels.to_vec(),
                    crate::config::ChannelAssignment::Some(list) => list.clone(),
                },
                extension: a.extension.clone(),
                auto_answer: a.auto_answer.clone(),
            })
            .collect();
        Policy {
            agents,
            channels: config.channels.clone(),
            not_ready_reasons: with_disconnected(&config.core.not_ready_reasons),
            wrap_up_codes: config
                .core
                .wrap_up_codes
                .iter()
                .map(|c| WrapUpCode {
                    code: c.code.clone(),
                    label: c.label.clone(),
                })
                .collect(),
            wrap_up_required: config.core.wrap_up_required,
            pending: config.core.pending,
            exclusive: config.core.exclusive.clone(),
            dedup_window_ms: config.core.dedup_days.saturating_mul(86_400_000),
            channel_plugins: BTreeMap::new(),
            capabilities: BTreeMap::new(),
            never_saved: BTreeSet::new(),
            snapshot_every: config.core.snapshot_every_events,
            responses: config.core.responses.clone(),
        }
    }

    /// Whether `plugin` handles command `kind` (its hello declared it).
    pub fn supports(&self, plugin: &str, kind: &str) -> bool {
        self.capabilities
            .get(plugin)
            .is_none_or(|kinds| kinds.contains(kind))
    }

    /// Whether interactions of `channel` are never saved (see [`Policy::never_saved`]).
    pub fn never_saves(&self, channel: &str) -> bool {
        self.never_saved.contains(channel)
    }

    /// The command kinds `plugin` handles (every known kind for a plugin not listed).
    pub fn commands_of(&self, plugin: &str) -> Vec<String> {
        match self.capabilities.get(plugin) {
            Some(kinds) => kinds.iter().cloned().collect(),
            None => plugin_api::Command::KNOWN_KINDS
                .iter()
                .map(|k| k.to_string())
                .collect(),
        }
    }

    /// The rules of one channel.
    pub fn channel(&self, channel: &str) -> ChannelPolicy {
        self.channels.get(channel).cloned().unwrap_or_default()
    }

    /// Capacity of one channel.
    pub fn capacity(&self, channel: &str) -> u32 {
        self.channel(channel).capacity_for(channel)
    }

    /// Answer timeout of one channel, in ms.
    pub fn answer_timeout_ms(&self, channel: &str) -> u64 {
        self.channel(channel).answer_timeout_secs * 1000
    }

    /// Re-offer cool-down of one channel, in ms (see `core::reoffer`).
    pub fn reoffer_after_ms(&self, channel: &str) -> u64 {
        self.channel(channel)
            .reoffer_after_secs
            .saturating_mul(1000)
    }

    /// ACW policy of one channel.
    pub fn acw(&self, channel: &str) -> AcwPolicy {
        self.channel(channel).acw
    }

    /// The state after ACW on one channel.
    pub fn after_acw(&self, channel: &str) -> super::model::NextState {
        match self.channel(channel).after_acw {
            AfterAcw::Ready => super::model::NextState::Ready,
            AfterAcw::NotReady => super::model::NextState::NotReady {
                reason: AFTER_ACW.into(),
            },
        }
    }

    /// Channels on which new offers are blocked while the agent has work on `busy_channel`.
    pub fn blocked_by<'a>(
        &'a self,
        busy_channel: &'a str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        self.exclusive
            .iter()
            .filter(move |r| r.busy_on == busy_channel)
            .flat_map(|r| r.blocks.iter())
    }
}
