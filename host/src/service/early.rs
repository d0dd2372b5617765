//! Plugin events that arrive before the core knows their interaction.
//!
//! A command that makes a plugin mint an interaction id (a dial, a consultation, a compose)
//! is answered with a `created` reply on the command thread, while the plugin's events travel on
//! its event queue. A plugin that reports "ringing" right after minting the id can therefore be
//! heard before its reply has linked the id to the core's interaction. Such events are held
//! here, per (plugin, interaction id), and played after the link; what no link claims within
//! [`HOLD_MS`] is dropped, as an event about an unknown interaction always was.

use crate::core::Millis;
use plugin_api::Event;
use std::collections::HashMap;
use std::sync::Arc;

/// How long an event about an unknown interaction waits for its link.
pub const HOLD_MS: Millis = 5_000;

/// At most this many events are held at once; beyond, the oldest are dropped.
const CAPACITY: usize = 4_096;

/// The events of one (plugin, interaction id), with their arrival times.
type Held = Vec<(Millis, Event)>;

/// Events held until their interaction id is linked.
#[derive(Debug, Default)]
pub struct EarlyEvents {
    held: HashMap<(Arc<str>, String), Held>,
    count: usize,
}

impl EarlyEvents {
    /// Holds `event` (about the plugin's interaction `id`) that arrived at `now`.
    pub fn hold(&mut self, plugin: &Arc<str>, id: &str, event: Event, now: Millis) {
        if self.count >= CAPACITY {
            self.drop_oldest();
        }
        self.held
            .entry((plugin.clone(), id.to_string()))
            .or_default()
            .push((now, event));
        self.count += 1;
    }

    /// The events held for the plugin's interaction `id`, in arrival order.
    pub fn release(&mut self, plugin: &str, id: &str) -> Vec<Event> {
        let Some(events) = self.held.remove(&(Arc::from(plugin), id.to_string())) else {
            return Vec::new();
        };
        self.count -= events.len();
        events.into_iter().map(|(_, e)| e).collect()
    }

    /// Drops what waited longer than [`HOLD_MS`]; says how many.
    pub fn expire(&mut self, now: Millis) -> usize {
        if self.count == 0 {
            return 0;
        }
        let before = self.count;
        self.held.retain(|(plugin, id), events| {
            events.retain(|(at, _)| now.saturating_sub(*at) < HOLD_MS);
            if events.is_empty() {
                tracing::debug!(plugin = %plugin, interaction = %id, "events for an interaction no link claimed were dropped");
            }
            !events.is_empty()
        });
        self.count = self.held.values().map(Vec::len).sum();
        before - self.count
    }

    fn drop_oldest(&mut self) {
        let oldest = self
            .held
            .iter()
            .min_by_key(|(_, events)| events.first().map_or(0, |(at, _)| *at))
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest
            && let Some(events) = self.held.remove(&key)
        {
            tracing::warn!(plugin = %key.0, interaction = %key.1, "too many early plugin events: {} dropped", events.len());
            self.count -= events.len();
        }
    }

    /// Events held now.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{InteractionId, MediaState, MediaStateChanged};

    fn ringing(id: &str) -> Event {
        Event::MediaStateChanged(MediaStateChanged {
            interaction: InteractionId::new(id),
            state: MediaState::Ringing,
        })
    }

    #[test]
    fn held_events_are_released_in_order_for_their_plugin_and_id_only() {
        let mut early = EarlyEvents::default();
        let voice: Arc<str> = Arc::from("voice");
        let other: Arc<str> = Arc::from("other");
        early.hold(&voice, "c1", ringing("c1"), 1);
        early.hold(&other, "c1", ringing("c1"), 2);
        early.hold(&voice, "c1", ringing("c1"), 3);
        assert_eq!(early.len(), 3);
        assert!(early.release("voice", "c2").is_empty());
        assert_eq!(early.release("voice", "c1").len(), 2);
        assert_eq!(early.len(), 1, "the other plugin's event stays");
        assert!(early.release("voice", "c1").is_empty(), "released once");
    }

    #[test]
    fn what_no_link_claims_expires_and_the_store_is_bounded() {
        let mut early = EarlyEvents::default();
        let voice: Arc<str> = Arc::from("voice");
        early.hold(&voice, "old", ringing("old"), 0);
        early.hold(&voice, "new", ringing("new"), HOLD_MS);
        assert_eq!(early.expire(HOLD_MS + 1), 1);
        assert_eq!(early.release("voice", "new").len(), 1);
        for n in 0..CAPACITY + 10 {
            early.hold(&voice, &format!("c{n}"), ringing("x"), n as Millis);
        }
        assert!(early.len() <= CAPACITY);
        assert!(
            early.release("voice", "c0").is_empty(),
            "the oldest went first"
        );
        assert_eq!(
            early.release("voice", &format!("c{}", CAPACITY + 9)).len(),
            1
        );
    }
}
