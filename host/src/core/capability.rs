//! What a channel can do: the core refuses a command about an interaction whose plugin did not
//! declare the matching command kind in its hello. Holds only that check, not the routing rules.

use super::commands::CoreError;
use super::model::Interaction;
use super::policy::Policy;

/// The command kind a plugin must have declared for the core to carry out `what` on `i`.
pub(crate) fn require(policy: &Policy, i: &Interaction, kind: &str) -> Result<(), CoreError> {
    if policy.supports(&i.plugin, kind) {
        Ok(())
    } else {
        Err(CoreError::Unsupported {
            key: i.key,
            command: kind.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;
    use crate::core::{AgentCommand, CoreError};
    use std::collections::BTreeSet;

    /// A day whose plugin "p" declared only these command kinds.
    fn day_with(kinds: &[&str]) -> Day {
        let mut day = Day::new();
        let mut policy = day.core.policy().clone();
        policy.capabilities.insert(
            "p".into(),
            kinds.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>(),
        );
        day.core = crate::core::Core::new(policy, day.now);
        day
    }

    #[test]
    fn a_command_the_interactions_plugin_did_not_declare_is_refused_with_a_stable_code() {
        let mut day = day_with(&["accept", "end", "mark-done"]);
        day.ready("ann", &["chat"]);
        let key = day.offer("chat");
        day.ok("ann", AgentCommand::Accept { key });
        let before = day.core.last_seq();
        let refused = day
            .run("ann", AgentCommand::Hold { key })
            .expect_err("no hold declared");
        assert_eq!(
            refused,
            CoreError::Unsupported {
                key,
                command: "hold".into()
            }
        );
        assert_eq!(refused.code(), "unsupported");
        assert_eq!(day.core.last_seq(), before, "nothing changed");
        assert!(!day.core.interaction(key).expect("known").held);
        let refused = day
            .core
            .check_send("ann", key)
            .expect_err("no send-message");
        assert_eq!(refused.code(), "unsupported");
        let refused = day
            .run(
                "ann",
                AgentCommand::Consult {
                    key,
                    colleague: "bob".into(),
                },
            )
            .expect_err("no consult declared");
        assert_eq!(refused.code(), "unsupported");
        // What it declared still works.
        day.ok("ann", AgentCommand::End { key });
    }

    #[test]
    fn a_plugin_that_declared_hold_gets_it() {
        let mut day = day_with(&["accept", "hold", "resume"]);
        day.ready("ann", &["chat"]);
        let key = day.offer("chat");
        day.ok("ann", AgentCommand::Accept { key });
        day.ok("ann", AgentCommand::Hold { key });
    }
}
