//! The `authorization` block for `nats-server`, written from the admin configuration so the two
//! cannot drift (`agentdesk hub nats-config`). Each user is an nkey (the public key in the admin
//! file; the seed stays on its computer). The hub may take every agent's requests and publish
//! their snapshots and its answers; each agent may publish only on their own request subject and
//! the hub's login subjects, and subscribe only to their own snapshots and their own inbox
//! (`_INBOX_<agent>.>`: with the usual `_INBOX.>` open to all, Bob could read Ann's answers).

use agentdesk_client::admin::AdminConfig;
use agentdesk_client::remote::wire;
use std::fmt::Write;

/// Why no authorization could be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// The hub or an agent has no NATS key in the admin file.
    #[error("{who} has no nats_key in the admin file (make one with `agentdesk hub nkey`)")]
    MissingKey {
        /// `the hub` or `agent <id>`.
        who: String,
    },
    /// A key that is not an nkey user public key.
    #[error("{who}: `{key}` is not a NATS user public key (U…): {reason}")]
    BadKey {
        /// Whose.
        who: String,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// An agent id that cannot be a subject token.
    #[error("agent `{0}`: an id in a team may hold only letters, digits, `-` and `_`")]
    BadAgent(String),
}

fn checked_key(who: &str, key: Option<&String>) -> Result<String, AuthorizationError> {
    let key = key.ok_or_else(|| AuthorizationError::MissingKey { who: who.into() })?;
    let bad = |reason: String| AuthorizationError::BadKey {
        who: who.into(),
        key: key.clone(),
        reason,
    };
    if !key.starts_with('U') {
        return Err(bad("a user key starts with U".into()));
    }
    nkeys::KeyPair::from_public_key(key).map_err(|e| bad(e.to_string()))?;
    Ok(key.clone())
}

fn list(subjects: &[String]) -> String {
    let quoted: Vec<String> = subjects.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The `authorization { users = [...] }` block for `config`.
pub fn nats_config(config: &AdminConfig) -> Result<String, AuthorizationError> {
    let hub = checked_key("the hub", config.hub.nats_key.as_ref())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `agentdesk hub nats-config` from the admin file: regenerate it after\n\
         # changing the agents; do not edit it by hand.\nauthorization {{\n  users = ["
    );
    // Also the reload subject and its inbox (`agentdesk hub reload` connects with the hub's key),
    // and the JetStream stream list the hub reads at start-up (`im_guard`, on its own inbox).
    let hub_publish = list(&[
        wire::snapshots("*"),
        wire::RELOAD.to_string(),
        "$JS.API.STREAM.LIST".to_string(),
    ]);
    let hub_subscribe = list(&[
        "_INBOX.>".to_string(),
        wire::ALL_REQUESTS.to_string(),
        wire::AGENTS.to_string(),
        wire::PLUGINS.to_string(),
        wire::TEAM.to_string(),
        wire::RELOAD.to_string(),
        format!("{}.>", wire::HUB_INBOX),
    ]);
    let _ = writeln!(
        out,
        "    # the hub: every agent's requests in, snapshots and answers out\n    \
         {{ nkey: \"{hub}\", permissions: {{ publish: {{ allow: {hub_publish} }}, \
         subscribe: {{ allow: {hub_subscribe} }}, allow_responses: true }} }}"
    );
    for agent in &config.agents {
        if !wire::valid_agent(&agent.id) {
            return Err(AuthorizationError::BadAgent(agent.id.clone()));
        }
        let key = checked_key(&format!("agent {}", agent.id), agent.nats_key.as_ref())?;
        let publish = list(&[
            wire::requests(&agent.id),
            wire::AGENTS.to_string(),
            wire::PLUGINS.to_string(),
        ]);
        let subscribe = list(&[
            wire::snapshots(&agent.id),
            format!("{}.>", wire::inbox_prefix(&agent.id)),
        ]);
        let _ = writeln!(
            out,
            "    # {}\n    {{ nkey: \"{key}\", permissions: {{ publish: {{ allow: {publish} }}, \
             subscribe: {{ allow: {subscribe} }} }} }}",
            agent.id
        );
    }
    for (n, key) in config.hub.supervisor_keys.iter().enumerate() {
        let key = checked_key(&format!("supervisor key {}", n + 1), Some(key))?;
        let publish = list(&[wire::TEAM.to_string(), wire::PLUGINS.to_string()]);
        let subscribe = list(&[format!("{}.>", wire::TEAM_INBOX)]);
        let _ = writeln!(
            out,
            "    # supervisor {}: the team view\n    {{ nkey: \"{key}\", permissions: {{ \
             publish: {{ allow: {publish} }}, subscribe: {{ allow: {subscribe} }} }} }}",
            n + 1
        );
    }
    let _ = writeln!(out, "  ]\n}}");
    Ok(out)
}

/// A new nkey user pair: (public key for the admin file, seed for the user's computer).
pub fn new_user_key() -> (String, String) {
    let pair = nkeys::KeyPair::new_user();
    let seed = pair.seed().unwrap_or_default();
    (pair.public_key(), seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> AdminConfig {
        AdminConfig::parse(extra, "test").expect("config")
    }

    #[test]
    fn each_agent_gets_only_their_own_subjects_and_a_missing_key_is_named() {
        let (hub, _) = new_user_key();
        let (ann, _) = new_user_key();
        let (sam, _) = new_user_key();
        let text = format!(
            "[hub]\nnats_key = \"{hub}\"\nsupervisor_keys = [\"{sam}\"]\n[[agents]]\nid = \"ann\"\nname = \"Ann\"\n\
             channels = \"all\"\nnats_key = \"{ann}\"\n"
        );
        let block = nats_config(&config(&text)).expect("block");
        let ann_line = block
            .lines()
            .find(|l| l.contains(&ann))
            .expect("Ann's user");
        assert!(ann_line.contains("\"ad.v1.agent.ann.req\""), "{ann_line}");
        assert!(ann_line.contains("\"_INBOX_ann.>\""), "{ann_line}");
        assert!(!ann_line.contains('*') && !ann_line.contains("\"_INBOX.>\""));
        assert!(block.contains("allow_responses: true"));
        let sam_line = block
            .lines()
            .find(|l| l.contains(&sam))
            .expect("Sam's user");
        assert!(sam_line.contains("\"ad.v1.hub.team\"") && sam_line.contains("\"_INBOX_team.>\""));
        assert!(!sam_line.contains("ad.v1.agent."), "{sam_line}");

        let without = text.replace(&format!("nats_key = \"{ann}\"\n"), "");
        assert_eq!(
            nats_config(&config(&without)),
            Err(AuthorizationError::MissingKey {
                who: "agent ann".into()
            })
        );
        let forged = text.replace(&ann, "Unot-a-key");
        assert!(matches!(
            nats_config(&config(&forged)),
            Err(AuthorizationError::BadKey { .. })
        ));
    }
}
