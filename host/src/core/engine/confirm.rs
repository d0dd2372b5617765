//! What the channel confirmed: commands a channel may refuse (hold, resume) change the core's
//! state only on the channel's answer. Holds the request and the answer; not the routing rules.
//!
//! The agent's command becomes `HoldRequested` (the plugin is sent `hold`/`resume`); the plugin's
//! reply comes back through `Core::channel_answered` as `InteractionHeld`/`InteractionResumed`, or
//! `HoldRefused` with the channel's reason, which leaves everything as it was. A core without
//! plugins (scenarios, the core's own tests: no capabilities known) has no channel to ask and
//! records the change at once.

use super::{ChannelRequest, Core, CoreEvent, InteractionKey, Millis, Stamped};

impl Core {
    /// Asks the channel for a hold (or resume) of `key`, or records it at once without plugins.
    pub(super) fn ask_hold(
        &mut self,
        now: Millis,
        key: InteractionKey,
        agent: String,
        hold: bool,
        out: &mut Vec<Stamped>,
    ) {
        let asks_channel = self
            .interactions
            .get(&key)
            .is_some_and(|i| self.policy.capabilities.contains_key(&i.plugin));
        let event = match (asks_channel, hold) {
            (true, _) => CoreEvent::HoldRequested { key, agent, hold },
            (false, true) => CoreEvent::InteractionHeld { key },
            (false, false) => CoreEvent::InteractionResumed { key },
        };
        self.emit(now, event, out);
    }

    /// After a restart: requests the channel never answered (its plugin restarted too) are taken
    /// as refused, so nothing stays half-done and the agent may ask again.
    pub fn unanswered_after_restart(&mut self, now: Millis) -> Vec<Stamped> {
        let waiting: Vec<(InteractionKey, ChannelRequest)> = self
            .interactions
            .values()
            .filter_map(|i| i.pending.map(|p| (i.key, p)))
            .collect();
        let mut out = Vec::new();
        for (key, request) in waiting {
            let reason = "no answer from the channel before the restart".to_string();
            out.extend(self.channel_answered(now, key, request.kind(), Err(reason)));
        }
        out
    }

    /// The channel's answer to command `kind` about `key`: `Ok` when it carried it out, `Err` with
    /// its reason when it refused or failed. Answers nobody waits for change nothing.
    pub fn channel_answered(
        &mut self,
        now: Millis,
        key: InteractionKey,
        kind: &str,
        answer: Result<(), String>,
    ) -> Vec<Stamped> {
        let mut out = Vec::new();
        let Some(i) = self.interactions.get(&key) else {
            return out;
        };
        let Some(pending) = i
            .pending
            .filter(|p| ChannelRequest::of_kind(kind) == Some(*p))
        else {
            // Commands recorded when asked: a refusal undoes what cannot have happened.
            if answer.is_err() && !i.state.is_closed() {
                match kind {
                    // The colleague was never reached: the consultation is over.
                    "consult" if i.consult.is_some() => {
                        let event = CoreEvent::ConsultationEnded { consultation: key };
                        self.emit(now, event, &mut out);
                    }
                    // No call was placed, no message composed: it ends as failed.
                    "dial" | "compose" => {
                        self.contact_ended(now, key, plugin_api::EndReason::Failed, &mut out);
                    }
                    _ => {}
                }
            }
            return out;
        };
        let hold = pending == ChannelRequest::Hold;
        let event = match (answer, hold) {
            (Ok(()), true) => CoreEvent::InteractionHeld { key },
            (Ok(()), false) => CoreEvent::InteractionResumed { key },
            (Err(reason), _) => CoreEvent::HoldRefused { key, hold, reason },
        };
        self.emit(now, event, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;
    use crate::core::{AgentCommand, Core, CoreError};

    /// A day whose plugin "p" declared hold and resume: the core asks it.
    fn day() -> (Day, u64) {
        let mut day = Day::new();
        let mut policy = day.core.policy().clone();
        policy.capabilities.insert(
            "p".into(),
            ["accept", "end", "hold", "resume"].map(String::from).into(),
        );
        day.core = Core::new(policy, day.now);
        day.ready("ann", &["chat"]);
        let key = day.offer("chat");
        day.ok("ann", AgentCommand::Accept { key });
        (day, key)
    }

    fn held(day: &Day, key: u64) -> bool {
        day.core.interaction(key).expect("known").held
    }

    #[test]
    fn a_hold_is_recorded_only_when_the_channel_confirms_it() {
        let (mut day, key) = day();
        day.ok("ann", AgentCommand::Hold { key });
        assert!(!held(&day, key), "asked, not yet confirmed");
        assert!(matches!(
            day.run("ann", AgentCommand::Hold { key }),
            Err(CoreError::WrongState { .. })
        ));
        let events = day.core.channel_answered(day.now, key, "hold", Ok(()));
        assert_eq!(events.len(), 1);
        assert!(held(&day, key));
        day.ok("ann", AgentCommand::Resume { key });
        assert!(held(&day, key), "still held until the channel resumes");
        day.core.channel_answered(day.now, key, "resume", Ok(()));
        assert!(!held(&day, key));
    }

    #[test]
    fn a_hold_the_channel_refuses_changes_nothing_and_may_be_asked_again() {
        let (mut day, key) = day();
        day.ok("ann", AgentCommand::Hold { key });
        let events = day
            .core
            .channel_answered(day.now, key, "hold", Err("no re-INVITE".into()));
        assert_eq!(events.len(), 1);
        assert!(!held(&day, key));
        assert_eq!(day.core.interaction(key).expect("known").pending, None);
        // An answer nobody waits for (a late or repeated one) changes nothing.
        assert!(
            day.core
                .channel_answered(day.now, key, "hold", Ok(()))
                .is_empty()
        );
        assert!(!held(&day, key));
        day.ok("ann", AgentCommand::Hold { key });
    }

    #[test]
    fn a_request_unanswered_at_a_restart_is_taken_as_refused() {
        let (mut day, key) = day();
        day.ok("ann", AgentCommand::Hold { key });
        let mut restarted = Core::new(day.core.policy().clone(), day.now);
        for stamped in &day.journal {
            restarted.replay(stamped);
        }
        assert!(restarted.interaction(key).expect("known").pending.is_some());
        let events = restarted.unanswered_after_restart(day.now);
        assert_eq!(events.len(), 1);
        let i = restarted.interaction(key).expect("known");
        assert_eq!((i.pending, i.held), (None, false));
    }

    #[test]
    fn a_consultation_the_channel_refuses_is_over_and_the_colleague_is_free() {
        let mut day = Day::new();
        day.ready("ann", &["chat"]);
        day.ready("bob", &["chat"]);
        let chat = day.offer("chat");
        let owner = day.owner(chat).expect("offered");
        day.ok(&owner, AgentCommand::Accept { key: chat });
        let colleague = if owner == "ann" { "bob" } else { "ann" };
        day.ok(
            &owner,
            AgentCommand::Consult {
                key: chat,
                colleague: colleague.into(),
            },
        );
        let consultation = day
            .core
            .interactions()
            .find(|i| i.consult.is_some())
            .map(|i| i.key)
            .expect("consultation");
        let events =
            day.core
                .channel_answered(day.now, consultation, "consult", Err("no agents".into()));
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(day.state(consultation).is_closed());
        assert_eq!(
            day.core.agent(colleague).map(|a| a.channels["chat"].load),
            Some(0)
        );
        day.core.check_invariants().expect("invariants");
    }

    #[test]
    fn a_dial_the_channel_refuses_ends_the_call_as_failed() {
        let mut day = Day::new();
        day.ready("ann", &["voice"]);
        day.ok(
            "ann",
            AgentCommand::StartOutbound {
                channel: "voice".into(),
                to: plugin_api::Address::phone("+15550100"),
                from: None,
            },
        );
        let call = day.core.interactions().map(|i| i.key).next().expect("call");
        day.core
            .channel_answered(day.now, call, "dial", Err("no route".into()));
        assert_eq!(day.state(call), crate::core::InteractionState::Ended);
        day.core.check_invariants().expect("invariants");
    }
}
