//! Time-in-state and handling time read up to a moment: the closed spans `stats::TimeInState`
//! keeps, plus the span still open in the core's current state. Reading only; nothing changes.

use super::Core;
use crate::core::model::{InteractionKey, Millis};

impl Core {
    /// Time in one state label up to `now`, including the state the channel is in now.
    pub fn time_in_state(&self, agent: &str, channel: &str, label: &str, now: Millis) -> Millis {
        let current = self
            .agent(agent)
            .and_then(|a| a.channels.get(channel))
            .filter(|ch| ch.state.label().as_deref() == Some(label))
            .map_or(0, |ch| now.saturating_sub(ch.since));
        self.stats().closed(agent, channel, label) + current
    }

    /// Handling time of an interaction up to `now`.
    pub fn handling_time(&self, key: InteractionKey, now: Millis) -> Millis {
        let open = self
            .interaction(key)
            .and_then(|i| i.accepted_at)
            .map_or(0, |since| now.saturating_sub(since));
        self.stats().handling(key) + open
    }
}
