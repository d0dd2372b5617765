//! Second chances: who may be offered an interaction that an agent declined, missed or transferred
//! away. Holds only the rule (pure functions of the state); `engine` routes and applies.
//!
//! An agent who let an interaction go is *passed over*: every other available agent comes first.
//! When nobody else can take it, the agent gets it again once the channel's cool-down
//! (`reoffer_after_secs`) has passed, or at once when they set Ready again after a decline or a
//! miss. Nobody is excluded for good, so a customer is never stranded in the queue while an
//! agent with the channel is Ready.

use super::model::{AgentChannel, ChannelState, Interaction, Millis, PassedHow};

/// How an available agent stands for one queued interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Standing {
    /// Never let it go: offered first.
    Preferred,
    /// Let it go, and the cool-down is over (or they set Ready since): offered when no preferred
    /// agent is available.
    SecondChance,
    /// Let it go within the cool-down: not offered now.
    CoolingDown,
}

/// How `agent` (with channel state `ch`) stands for `i` at `now`.
pub(crate) fn standing(
    i: &Interaction,
    agent: &str,
    ch: Option<&AgentChannel>,
    cooldown_ms: u64,
    now: Millis,
) -> Standing {
    let Some(passed) = i.passed_over.get(agent) else {
        return Standing::Preferred;
    };
    let lapsed = now >= passed.at.saturating_add(cooldown_ms);
    // Set Ready again (by hand after a miss, or after other work) since the decline or miss.
    let ready_since = match passed.how {
        PassedHow::Declined | PassedHow::Missed => {
            ch.is_some_and(|ch| ch.state == ChannelState::Ready && ch.since > passed.at)
        }
        PassedHow::TransferredAway => false,
    };
    if lapsed || ready_since {
        Standing::SecondChance
    } else {
        Standing::CoolingDown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::PassedOver;
    use crate::core::testkit::*;
    use crate::core::{AgentCommand, InteractionState};

    #[test]
    fn standing_prefers_agents_who_never_let_it_go() {
        let mut day = Day::new();
        day.ready("bob", &["chat"]);
        let key = day.offer("chat");
        let mut i = day.core.interaction(key).expect("known").clone();
        let ch = day.core.agent("bob").and_then(|a| a.channels.get("chat"));
        assert_eq!(standing(&i, "bob", ch, 10, 5), Standing::Preferred);
        i.passed_over.insert(
            "bob".into(),
            PassedOver {
                at: day.now,
                how: PassedHow::TransferredAway,
            },
        );
        assert_eq!(
            standing(&i, "bob", ch, 10_000, day.now + 9_999),
            Standing::CoolingDown
        );
        assert_eq!(
            standing(&i, "bob", ch, 10_000, day.now + 10_000),
            Standing::SecondChance
        );
    }

    #[test]
    fn a_declined_interaction_goes_to_another_agent_first() {
        let mut day = Day::new();
        day.ready("ann", &["chat"]);
        day.ready("bob", &["chat"]);
        let key = day.offer("chat");
        assert!(day.offered_to(key, "ann"));
        day.ok("ann", AgentCommand::Decline { key });
        assert!(day.offered_to(key, "bob"));
    }

    #[test]
    fn a_declined_interaction_nobody_else_can_take_is_offered_again_after_the_cool_down() {
        let mut day = Day::with_config("[channels.chat]\nreoffer_after_secs = 10\n");
        day.ready("ann", &["chat"]);
        let key = day.offer("chat");
        day.ok("ann", AgentCommand::Decline { key });
        assert_eq!(day.state(key), InteractionState::Queued);
        day.advance(9);
        assert_eq!(
            day.state(key),
            InteractionState::Queued,
            "still cooling down"
        );
        day.advance(1);
        assert!(day.offered_to(key, "ann"), "{:?}", day.state(key));
    }

    #[test]
    fn a_missed_offer_is_offered_again_at_once_when_the_agent_sets_ready() {
        let mut day = Day::with_config("[channels.chat]\nreoffer_after_secs = 600\n");
        day.ready("ann", &["chat"]);
        let key = day.offer("chat");
        day.advance(21); // missed: Ann is Not Ready ("missed-offer")
        assert_eq!(day.state(key), InteractionState::Queued);
        day.advance(1);
        day.ok("ann", cmd_ready("chat"));
        assert!(day.offered_to(key, "ann"), "{:?}", day.state(key));
    }

    #[test]
    fn a_transferred_interaction_goes_back_to_its_agent_only_after_the_cool_down() {
        let mut day = Day::with_config("[channels.chat]\nreoffer_after_secs = 10\n");
        day.ready("bob", &["chat"]);
        let key = day.offer("chat");
        day.ok("bob", AgentCommand::Accept { key });
        day.ok(
            "bob",
            AgentCommand::Transfer {
                key,
                to: plugin_api::Route::queue("default"),
            },
        );
        day.advance(1);
        assert_eq!(day.state(key), InteractionState::Queued);
        day.advance(9);
        assert!(day.offered_to(key, "bob"), "{:?}", day.state(key));
    }
}
