//! Time-in-state per agent, channel and state, and handling time per interaction: a projection
//! of the journal, accumulated as state changes are applied.

use super::model::{InteractionKey, Millis};
use std::collections::BTreeMap;

/// Accumulated times, in ms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeInState {
    states: BTreeMap<(String, String, String), Millis>,
    handling: BTreeMap<InteractionKey, Millis>,
}

impl TimeInState {
    pub(crate) fn add_state(&mut self, agent: &str, channel: &str, label: &str, ms: Millis) {
        *self
            .states
            .entry((agent.into(), channel.into(), label.into()))
            .or_default() += ms;
    }

    pub(crate) fn forget_handling(&mut self, key: InteractionKey) {
        self.handling.remove(&key);
    }

    pub(crate) fn add_handling(&mut self, key: InteractionKey, ms: Millis) {
        *self.handling.entry(key).or_default() += ms;
    }

    /// Closed time in one state label (`ready`, `not-ready:<reason>`, `after-call-work`,
    /// `pending:<reason>`) of one agent's channel, not counting the state it is in now.
    pub fn closed(&self, agent: &str, channel: &str, label: &str) -> Millis {
        self.states
            .get(&(agent.into(), channel.into(), label.into()))
            .copied()
            .unwrap_or(0)
    }

    /// Every (agent, channel, label) with its closed time.
    pub fn rows(&self) -> impl Iterator<Item = (&str, &str, &str, Millis)> {
        self.states
            .iter()
            .map(|((a, c, l), ms)| (a.as_str(), c.as_str(), l.as_str(), *ms))
    }

    /// Every (interaction, closed handling time).
    pub(crate) fn handling_rows(&self) -> impl Iterator<Item = (InteractionKey, Millis)> + '_ {
        self.handling.iter().map(|(k, ms)| (*k, *ms))
    }

    /// Handling time of an interaction so far (closed spans).
    pub fn handling(&self, key: InteractionKey) -> Millis {
        self.handling.get(&key).copied().unwrap_or(0)
    }
}
