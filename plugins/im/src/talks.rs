//! IM conversations in memory: each IM is two interactions, one per agent (its *sides*), each the
//! other's peer; what one side writes is delivered to the other. No message text is kept here.

use plugin_api::{AgentRef, InteractionId};
use std::collections::BTreeMap;

/// One agent's side of an IM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The other agent's side.
    pub peer: InteractionId,
    /// The agent this side belongs to (the name is known once they take part).
    pub me: AgentRef,
    /// The colleague at the other side.
    pub colleague: AgentRef,
}

/// Every open IM of this plugin instance.
#[derive(Debug, Default)]
pub struct Talks {
    /// Makes this instance's ids differ from every earlier one's: the core keeps offers' ids
    /// to drop duplicates, and nothing of an IM is stored to count on from.
    instance: String,
    sides: BTreeMap<InteractionId, Side>,
    opened: u64,
    messages: u64,
}

impl Talks {
    /// No IM open; ids start with `instance` (unique per start of the plugin).
    pub fn new(instance: impl Into<String>) -> Self {
        Talks {
            instance: instance.into(),
            ..Talks::default()
        }
    }

    /// Opens an IM from `from` to the agent `to`: returns the sender's side and the recipient's.
    pub fn open(&mut self, from: AgentRef, to: &str) -> (InteractionId, InteractionId) {
        self.opened += 1;
        let n = self.opened;
        let (mine, theirs) = (
            InteractionId::new(format!("im-{}-{n}-{}", self.instance, from.id)),
            InteractionId::new(format!("im-{}-{n}-{to}", self.instance)),
        );
        let recipient = AgentRef {
            id: to.to_string(),
            display_name: to.to_string(),
        };
        self.sides.insert(
            mine.clone(),
            Side {
                peer: theirs.clone(),
                me: from.clone(),
                colleague: recipient.clone(),
            },
        );
        self.sides.insert(
            theirs.clone(),
            Side {
                peer: mine.clone(),
                me: recipient,
                colleague: from,
            },
        );
        (mine, theirs)
    }

    /// A side, if open.
    pub fn side(&self, id: &InteractionId) -> Option<&Side> {
        self.sides.get(id)
    }

    /// The agent took part in side `id` (accepted it): their name is now known to the peer.
    /// Returns the peer's id.
    pub fn joined(&mut self, id: &InteractionId, agent: &AgentRef) -> Option<InteractionId> {
        let peer = {
            let side = self.sides.get_mut(id)?;
            side.me = agent.clone();
            side.peer.clone()
        };
        if let Some(other) = self.sides.get_mut(&peer) {
            other.colleague = agent.clone();
        }
        Some(peer)
    }

    /// Closes both sides of the IM `id` belongs to; returns the closed side.
    pub fn close(&mut self, id: &InteractionId) -> Option<Side> {
        let side = self.sides.remove(id)?;
        self.sides.remove(&side.peer);
        Some(side)
    }

    /// A new message id for a delivery into `to`.
    pub fn message_id(&mut self, to: &InteractionId) -> String {
        self.messages += 1;
        format!("{to}-m{}", self.messages)
    }

    /// How many IMs are open.
    pub fn open_count(&self) -> usize {
        self.sides.len() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, name: &str) -> AgentRef {
        AgentRef {
            id: id.into(),
            display_name: name.into(),
        }
    }

    #[test]
    fn two_sides_are_each_others_peer_and_close_together() {
        let mut talks = Talks::new("t");
        let (a, b) = talks.open(agent("ann", "Ann"), "bob");
        assert_eq!(a.as_str(), "im-t-1-ann");
        assert_eq!(talks.side(&a).map(|s| &s.peer), Some(&b));
        assert_eq!(talks.side(&b).map(|s| &s.peer), Some(&a));
        assert_eq!(
            talks.side(&b).map(|s| s.colleague.display_name.as_str()),
            Some("Ann")
        );
        assert_eq!(talks.joined(&b, &agent("bob", "Bob")), Some(a.clone()));
        assert_eq!(
            talks.side(&a).map(|s| s.colleague.display_name.as_str()),
            Some("Bob")
        );
        assert_eq!(talks.open_count(), 1);
        assert!(talks.close(&b).is_some());
        assert!(talks.side(&a).is_none());
        assert_eq!(talks.open_count(), 0);
    }
}
