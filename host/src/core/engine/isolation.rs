//! Quarantine isolates: when a plugin is quarantined its channels leave routing, its queued and
//! offered interactions are withdrawn, and its open ones are named for the service to mark.
//!
//! Whether a channel is in service is a fact about this process (a restarted host starts its
//! plugins afresh), so it is not journaled; the withdrawals are journal events like any other.

use super::{Core, CoreEvent, InteractionKey, InteractionState, Millis, Stamped};

/// What isolating a plugin did.
#[derive(Debug, Default)]
pub struct Isolation {
    /// The journal events (withdrawals).
    pub events: Vec<Stamped>,
    /// Its interactions still open with an agent (active, ended, in a workbin): the agent must
    /// hear why the channel no longer acts on them.
    pub open: Vec<InteractionKey>,
}

impl Core {
    /// Takes `channels` out of routing for `reason` and withdraws what `plugin` still had waiting
    /// or ringing. Agents keep their channel state; the channel is shown unavailable.
    pub fn isolate(
        &mut self,
        now: Millis,
        plugin: &str,
        channels: &[String],
        reason: &str,
    ) -> Isolation {
        let mut done = Isolation::default();
        for channel in channels {
            self.out_of_service
                .insert(channel.clone(), reason.to_string());
        }
        let agents: Vec<String> = self.agent_order.clone();
        for agent in &agents {
            self.refresh_availability(agent);
            self.concerned.insert(agent.clone());
        }
        let theirs: Vec<(InteractionKey, InteractionState)> = self
            .interactions
            .values()
            .filter(|i| i.plugin == plugin && !i.state.is_closed())
            .map(|i| (i.key, i.state.clone()))
            .collect();
        for (key, state) in theirs {
            match state {
                InteractionState::Queued | InteractionState::Offered { .. } => {
                    let reason = format!("the channel is unavailable: {reason}");
                    let event = CoreEvent::InteractionWithdrawn { key, reason };
                    self.emit(now, event, &mut done.events);
                }
                InteractionState::Active
                | InteractionState::Ended
                | InteractionState::InWorkbin { .. } => done.open.push(key),
                InteractionState::Done
                | InteractionState::Abandoned
                | InteractionState::Rejected { .. }
                | InteractionState::Forwarded => {}
            }
        }
        done
    }

    /// After a restart: every interaction of a never-saved channel (internal IM) still open is
    /// withdrawn. Its text lived only in the memory of the processes that stopped, so it is
    /// closed rather than brought back empty.
    pub fn close_never_saved(&mut self, now: Millis) -> Vec<Stamped> {
        let open: Vec<InteractionKey> = self
            .interactions
            .values()
            .filter(|i| !i.state.is_closed() && self.policy.never_saves(&i.channel))
            .map(|i| i.key)
            .collect();
        let mut out = Vec::new();
        for key in open {
            let reason = "closed when the host restarted: this channel is never saved".into();
            self.emit(
                now,
                CoreEvent::InteractionWithdrawn { key, reason },
                &mut out,
            );
        }
        out
    }

    /// Why a channel is out of service on this host, if it is.
    pub fn unavailable(&self, channel: &str) -> Option<&str> {
        self.out_of_service.get(channel).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;
    use crate::core::{AgentCommand, InteractionState};

    #[test]
    fn a_quarantined_plugins_channel_leaves_routing_and_its_waiting_work_is_withdrawn() {
        let mut day = Day::new();
        day.ready("bob", &["chat"]);
        let active = day.offer("chat");
        day.ok("bob", AgentCommand::Accept { key: active });
        let offered = day.offer("chat");
        let queued = day.offer("chat");
        assert!(day.offered_to(offered, "bob"));
        assert_eq!(day.state(queued), InteractionState::Queued);
        let done = day
            .core
            .isolate(day.now, "p", &["chat".to_string()], "panicked in handle");
        assert_eq!(done.events.len(), 2, "{:?}", done.events);
        assert_eq!(done.open, vec![active]);
        for key in [offered, queued] {
            assert!(
                matches!(&day.state(key), InteractionState::Rejected { reason } if reason.contains("panicked in handle")),
                "{:?}",
                day.state(key)
            );
        }
        assert_eq!(day.state(active), InteractionState::Active);
        assert_eq!(day.core.unavailable("chat"), Some("panicked in handle"));
        day.core.check_invariants().expect("indexes in step");
        // Nothing new is offered on the channel, though Bob has room again.
        day.ok("bob", AgentCommand::End { key: active });
        let later = day.offer("chat");
        assert!(
            matches!(day.state(later), InteractionState::Rejected { .. }),
            "{:?}",
            day.state(later)
        );
        day.core.check_invariants().expect("indexes in step");
    }
}
