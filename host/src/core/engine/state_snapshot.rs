//! Snapshots of the core state: what the journal up to one event leaves, as plain data that
//! encodes to bytes (versioned) and rebuilds a `Core` with its indexes, so start-up replays only
//! the events after it. Holds the snapshot's shape and the rebuilding; never I/O (the service
//! stores the bytes in the journal's file: `storage::journal::snapshots`).
//!
//! Only the journal's projection is kept: agents' channel states, open interactions, the
//! de-duplication keys, time-in-state, the re-offer timers (not derived from the state). Every
//! index (queues, availability, owners, offer and ACW timers) is recomputed on restore, as
//! `check_invariants` recomputes it.

use super::{ChannelQueue, Core, Timer};
use crate::core::model::{ChannelState, Interaction, InteractionKey, InteractionState, Millis};
use crate::core::policy::Policy;
use plugin_api::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// The snapshot format this code writes (and the only one it reads: an older snapshot is
/// skipped and the journal replayed instead, which always works).
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The core state after journal event `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// The last journal event it includes.
    pub seq: u64,
    /// The next interaction key to assign.
    next_key: InteractionKey,
    /// When the de-duplication keys are pruned next.
    prune_at: usize,
    /// The agents and their channels it was taken with (sorted): a different roster in the
    /// configuration means a full replay instead.
    roster: Vec<(String, Vec<String>)>,
    agents: Vec<SavedAgent>,
    /// Open interactions, by key.
    interactions: Vec<Interaction>,
    /// By plugin: (external id, key, arrival), sorted. The bulk of a long-running hub's snapshot
    /// (every id of the de-duplication window), hence grouped: the plugin id is written once.
    by_external: Vec<(String, Vec<DedupKey>)>,
    /// (plugin, plugin's id, key), sorted.
    by_plugin_id: Vec<(String, String, InteractionKey)>,
    /// (agent, channel, label, closed ms), sorted.
    time_in_state: Vec<(String, String, String, Millis)>,
    /// (interaction, closed handling ms), open interactions only.
    handling: Vec<(InteractionKey, Millis)>,
    /// (due, channel): routing again when a re-offer cool-down ends.
    reoffer: Vec<(Millis, String)>,
}

/// A de-duplication key of one plugin: (external id, interaction, arrival).
type DedupKey = (SharedId, InteractionKey, Millis);

/// An id shared with the core's tables: copying it into a snapshot copies a pointer. Written as
/// a plain string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SharedId(Arc<str>);

impl Serialize for SharedId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SharedId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SharedId(Arc::from(s)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedAgent {
    id: String,
    logged_in: bool,
    dnd: bool,
    forward_to: Option<Address>,
    channels: Vec<SavedChannel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedChannel {
    channel: String,
    state: ChannelState,
    since: Millis,
    load: u32,
    idle_key: (Millis, u32),
}

/// Why a snapshot cannot be used (the caller replays the journal instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// Written by another version of the snapshot format.
    #[error("snapshot format {found}; this agentdesk reads format {SNAPSHOT_FORMAT}")]
    Format {
        /// The snapshot's format.
        found: u32,
    },
    /// The bytes do not decode.
    #[error("snapshot does not decode: {0}")]
    Undecodable(String),
    /// The agents or their channels changed in the configuration since it was taken.
    #[error("the agents or their channels changed since the snapshot")]
    RosterChanged,
}

impl StateSnapshot {
    /// The same state with its lists in one order, for comparing snapshots of cores built
    /// differently (their hash tables list keys in different orders).
    #[cfg(test)]
    pub(crate) fn normalised(mut self) -> Self {
        self.by_external.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, ids) in &mut self.by_external {
            ids.sort();
        }
        self.by_plugin_id.sort();
        self
    }

    /// Encodes it (in `SNAPSHOT_FORMAT`).
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Decodes bytes written in `format`.
    pub fn decode(format: u32, bytes: &[u8]) -> Result<Self, RestoreError> {
        if format != SNAPSHOT_FORMAT {
            return Err(RestoreError::Format { found: format });
        }
        serde_json::from_slice(bytes).map_err(|e| RestoreError::Undecodable(e.to_string()))
    }
}

fn roster(policy: &Policy) -> Vec<(String, Vec<String>)> {
    let mut roster: Vec<(String, Vec<String>)> = policy
        .agents
        .iter()
        .map(|a| {
            let mut channels = a.channels.clone();
            channels.sort();
            channels.dedup();
            (a.id.clone(), channels)
        })
        .collect();
    roster.sort();
    roster
}

impl Core {
    /// The state as of the last applied event, as `compact` leaves it (closed interactions are
    /// not kept: their record is in the journal and the history).
    pub fn snapshot(&self) -> StateSnapshot {
        let agents = self
            .agents()
            .map(|a| SavedAgent {
                id: a.id.clone(),
                logged_in: a.logged_in,
                dnd: a.dnd,
                forward_to: a.forward_to.clone(),
                channels: a
                    .channels
                    .iter()
                    .map(|(channel, ch)| SavedChannel {
                        channel: channel.clone(),
                        state: ch.state.clone(),
                        since: ch.since,
                        load: ch.load,
                        idle_key: ch.idle_key,
                    })
                    .collect(),
            })
            .collect();
        let interactions: Vec<Interaction> = self
            .interactions
            .values()
            .filter(|i| !i.state.is_closed())
            .cloned()
            .collect();
        let open = |key: &InteractionKey| {
            self.interactions
                .get(key)
                .is_some_and(|i| !i.state.is_closed())
        };
        let mut grouped: std::collections::BTreeMap<&str, Vec<DedupKey>> =
            std::collections::BTreeMap::new();
        // Not sorted: the core thread pays for this copy (millions of keys in a long-running hub);
        // tests compare snapshots through `normalised`.
        for (plugin, id, (key, at)) in self.by_external.iter() {
            grouped
                .entry(plugin)
                .or_default()
                .push((SharedId(id.clone()), *key, *at));
        }
        let by_external: Vec<_> = grouped
            .into_iter()
            .map(|(plugin, ids)| (plugin.to_string(), ids))
            .collect();
        let mut by_plugin_id: Vec<_> = self
            .by_plugin_id
            .iter()
            .filter(|(_, _, key)| open(key))
            .map(|(p, id, key)| (p.to_string(), id.to_string(), *key))
            .collect();
        by_plugin_id.sort();
        StateSnapshot {
            seq: self.seq,
            next_key: self.next_key,
            prune_at: self.prune_at,
            roster: roster(&self.policy),
            agents,
            interactions,
            by_external,
            by_plugin_id,
            time_in_state: self
                .stats
                .rows()
                .map(|(a, c, l, ms)| (a.to_string(), c.to_string(), l.to_string(), ms))
                .collect(),
            handling: self
                .stats
                .handling_rows()
                .filter(|(key, _)| open(key))
                .collect(),
            reoffer: self
                .timers
                .iter()
                .filter_map(|(due, t)| match t {
                    Timer::Reoffer(channel) => Some((*due, channel.clone())),
                    _ => None,
                })
                .collect(),
        }
    }

    /// A core with `policy` in the state of `snapshot`, its indexes rebuilt; the journal events
    /// after `snapshot.seq` are then replayed on it. Every channel is routed again at the next
    /// input (routing more often than needed is harmless).
    pub fn restore(
        policy: Policy,
        now: Millis,
        snapshot: StateSnapshot,
    ) -> Result<Core, RestoreError> {
        if roster(&policy) != snapshot.roster {
            return Err(RestoreError::RosterChanged);
        }
        let mut core = Core::new(policy, now);
        for saved in snapshot.agents {
            let agent = core
                .agents
                .get_mut(&saved.id)
                .ok_or(RestoreError::RosterChanged)?;
            agent.logged_in = saved.logged_in;
            agent.dnd = saved.dnd;
            agent.forward_to = saved.forward_to;
            for c in saved.channels {
                let ch = agent
                    .channels
                    .get_mut(&c.channel)
                    .ok_or(RestoreError::RosterChanged)?;
                ch.state = c.state;
                ch.since = c.since;
                ch.load = c.load;
                ch.idle_key = c.idle_key;
            }
        }
        core.seq = snapshot.seq;
        core.next_key = snapshot.next_key;
        core.prune_at = snapshot.prune_at;
        for (plugin, ids) in snapshot.by_external {
            core.by_external.reserve(&plugin, ids.len());
            for (SharedId(id), key, at) in ids {
                core.by_external.insert(&plugin, id, (key, at));
            }
        }
        for (plugin, id, key) in snapshot.by_plugin_id {
            core.by_plugin_id.insert(&plugin, id, key);
        }
        for (agent, channel, label, ms) in &snapshot.time_in_state {
            core.stats.add_state(agent, channel, label, *ms);
        }
        for (key, ms) in snapshot.handling {
            core.stats.add_handling(key, ms);
        }
        for (due, channel) in snapshot.reoffer {
            core.timers.insert((due, Timer::Reoffer(channel)));
        }
        let keys: Vec<InteractionKey> = snapshot.interactions.iter().map(|i| i.key).collect();
        for i in snapshot.interactions {
            if i.state == InteractionState::Queued {
                core.enqueue(&i);
            }
            core.interactions.insert(i.key, i);
        }
        for key in keys {
            core.index_interaction(key);
        }
        let order = core.agent_order.clone();
        for agent in &order {
            let channels: Vec<String> = core
                .agents
                .get(agent)
                .map(|a| a.channels.keys().cloned().collect())
                .unwrap_or_default();
            for channel in &channels {
                core.index_acw(agent, channel, true);
            }
            core.refresh_availability(agent);
        }
        core.queues
            .retain(|_, q: &mut ChannelQueue| !(q.pool.is_empty() && q.targeted.is_empty()));
        let mut dirty = core.served.clone();
        dirty.extend(core.queues.keys().cloned());
        core.dirty = dirty;
        core.concerned.clear();
        Ok(core)
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;
    use crate::core::*;

    #[test]
    fn a_snapshot_taken_under_another_roster_is_refused() {
        let mut day = Day::new();
        day.ready("ann", &["chat"]);
        let snapshot = day.core.snapshot();
        let other = policy_of(&format!(
            "{CONFIG}\n[[agents]]\nid = \"cy\"\nname = \"Cy\"\nchannels = [\"chat\"]\n"
        ));
        assert_eq!(
            Core::restore(other, day.now, snapshot).unwrap_err(),
            engine::RestoreError::RosterChanged
        );
    }

    #[test]
    fn a_snapshot_of_another_format_is_refused() {
        let bytes = Day::new().core.snapshot().encode().expect("encode");
        assert_eq!(
            engine::StateSnapshot::decode(engine::SNAPSHOT_FORMAT + 1, &bytes).unwrap_err(),
            engine::RestoreError::Format {
                found: engine::SNAPSHOT_FORMAT + 1
            }
        );
        assert!(matches!(
            engine::StateSnapshot::decode(engine::SNAPSHOT_FORMAT, b"{\"seq\":"),
            Err(engine::RestoreError::Undecodable(_))
        ));
    }
}
