//! The core's rules: commands and plugin events are checked against the agent and interaction
//! state machines, accepted ones become journal events, and `apply` is the only place state
//! changes. This file holds the `Core` itself, its entry points, plugin events and the invariant
//! check; commands are decided in `decide`, offers placed in `routing`, changes recorded in
//! `apply`, snapshots taken and restored in `state_snapshot`. Time is passed in by the caller.

use super::commands::{AgentCommand, CoreError};
use super::events::{CoreEvent, Stamped};
use super::index::PluginIndex;
use super::model::{
    Agent, AgentChannel, ChannelRequest, ChannelState, Consultation, Interaction, InteractionKey,
    InteractionState, Millis, NextState, PassedHow, PassedOver,
};

mod apply;
mod channel_state;
mod collaboration;
mod confirm;
mod decide;
mod invariants;
mod isolation;
mod lifecycle;
mod links;
mod roster;
mod routing;
mod state_snapshot;
mod time_in_state;
use super::capability::require;
use super::policy::{LOGGED_ON, MISSED_OFFER, Policy};
use super::reoffer::{Standing, standing};
use super::stats::TimeInState;
use crate::config::AcwPolicy;
use plugin_api::{Address, EndReason, Event, InteractionId, RejectCode, Route};
pub use roster::RosterChange;
use rustc_hash::FxHashMap as HashMap;
pub use state_snapshot::{RestoreError, SNAPSHOT_FORMAT, StateSnapshot};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Queue order: priority (higher first), then arrival.
type QueueEntry = (Reverse<i32>, u64, InteractionKey);

/// An agent channel's place in the offer order (see `AgentChannel::idle_key`).
type IdleKey = (Millis, u32);

/// Order of available agents on a channel: longest idle first, then agent id.
type Availability = (IdleKey, String);

/// Something due at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// An offer's answer timeout.
    Offer(InteractionKey),
    /// The end of an agent channel's ACW.
    Acw(String, String),
    /// The end of a re-offer cool-down on a channel: route it again. Not derived from the state
    /// (routing after it is harmless), so `check_invariants` does not recompute these.
    Reoffer(String),
}

/// The waiting interactions of one channel: those for anyone, and those for one agent.
#[derive(Debug, Clone, Default)]
struct ChannelQueue {
    pool: BTreeSet<QueueEntry>,
    targeted: BTreeSet<QueueEntry>,
}

/// The contact-centre core of one host.
#[derive(Debug, Clone)]
pub struct Core {
    policy: Policy,
    /// Agents by id (hashed: looked up on every input); `agent_order` lists the ids sorted.
    agents: HashMap<String, Agent>,
    agent_order: Vec<String>,
    interactions: BTreeMap<InteractionKey, Interaction>,
    queues: BTreeMap<String, ChannelQueue>,
    /// (plugin, external id) → (key, arrival): durable de-duplication, pruned by `prune_dedup`.
    by_external: PluginIndex<(InteractionKey, Millis)>,
    /// `by_external` is pruned when it reaches this size (amortised: doubles after each prune).
    prune_at: usize,
    by_plugin_id: PluginIndex<InteractionKey>,
    next_key: InteractionKey,
    seq: u64,
    stats: TimeInState,
    // Indexes, maintained by `apply` and checked by `check_invariants`:
    /// Open (not closed) interactions by owner.
    open_by_owner: HashMap<String, BTreeSet<InteractionKey>>,
    /// Open interactions each agent takes part in: owned, conferenced into, or consulting about.
    involved: HashMap<String, BTreeSet<InteractionKey>>,
    /// Agents that may get an offer now, per channel, in offer order.
    available: HashMap<String, BTreeSet<Availability>>,
    /// Due times.
    timers: BTreeSet<(Millis, Timer)>,
    /// Channels whose queue or available agents changed since the last routing.
    dirty: BTreeSet<String>,
    /// Channels some agent of this host has.
    served: BTreeSet<String>,
    /// Interactions closed since the last `compact`.
    closed_since_compact: Vec<InteractionKey>,
    /// Agents concerned by the events applied since the last `take_concerned`.
    concerned: BTreeSet<String>,
    /// Channels taken out of routing, with the reason (their plugin was quarantined): see
    /// `core::isolation`. Not journaled: it is a fact about this process, not the day's work.
    out_of_service: BTreeMap<String, String>,
    /// (agent, channel) withdrawn by the admin, kept until the work in hand is done: see
    /// `roster`. Derived from the journaled roster.
    withdrawn: BTreeSet<(String, String)>,
    /// Agents taken out of the team, kept until their work is done.
    leaving: BTreeSet<String>,
    /// Whether a `RosterChanged` has been applied (the journal records the team).
    roster_recorded: bool,
    /// Whether the rules changed while running: capacities may have been lowered below a
    /// channel's load (the agent finishes it), so the invariant check allows that.
    reconfigured: bool,
    /// Session codes open interactions carry (`link-code`, plugin-api 1.3), for an offer routed
    /// by one (`Route::LINKED`). Not journaled either: a code lives minutes, is used once, and
    /// the link it makes is journaled (`InteractionArrived::related`).
    link_codes: HashMap<String, InteractionKey>,
}

impl Core {
    /// A core with the given rules; every agent starts logged out with all channels logged off.
    pub fn new(policy: Policy, now: Millis) -> Self {
        let agents: HashMap<String, Agent> = policy
            .agents
            .iter()
            .map(|spec| (spec.id.clone(), roster::new_agent(spec, now)))
            .collect();
        let policy_channels = policy
            .agents
            .iter()
            .flat_map(|a| a.channels.iter().cloned())
            .collect();
        let mut agent_order: Vec<String> = agents.keys().cloned().collect();
        agent_order.sort();
        Core {
            policy,
            agents,
            agent_order,
            interactions: BTreeMap::new(),
            queues: BTreeMap::new(),
            by_external: PluginIndex::default(),
            prune_at: 1024,
            by_plugin_id: PluginIndex::default(),
            next_key: 1,
            seq: 0,
            stats: TimeInState::default(),
            open_by_owner: HashMap::default(),
            involved: HashMap::default(),
            available: HashMap::default(),
            timers: BTreeSet::new(),
            dirty: BTreeSet::new(),
            served: policy_channels,
            closed_since_compact: Vec::new(),
            concerned: BTreeSet::new(),
            out_of_service: BTreeMap::new(),
            withdrawn: BTreeSet::new(),
            leaving: BTreeSet::new(),
            roster_recorded: false,
            reconfigured: false,
            link_codes: HashMap::default(),
        }
    }

    /// The rules.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// An agent.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    /// All agents.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agent_order.iter().filter_map(|id| self.agents.get(id))
    }

    /// An interaction.
    pub fn interaction(&self, key: InteractionKey) -> Option<&Interaction> {
        self.interactions.get(&key)
    }

    /// All interactions the core knows (including closed ones).
    pub fn interactions(&self) -> impl Iterator<Item = &Interaction> {
        self.interactions.values()
    }

    /// The interaction a plugin knows by its own id.
    pub fn interaction_by_plugin_id(
        &self,
        plugin: &str,
        id: &InteractionId,
    ) -> Option<&Interaction> {
        self.by_plugin_id
            .get(plugin, id.as_str())
            .and_then(|k| self.interactions.get(k))
    }

    /// The open interactions an agent takes part in (owned, conferenced into, or a consultation
    /// they asked for), in key order. Uses an index: no scan of all interactions.
    pub fn involving(&self, agent: &str) -> Vec<&Interaction> {
        self.involved
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|k| self.interactions.get(k))
            .collect()
    }

    /// Waiting interactions of a channel, in queue order (those for one agent and the pool).
    pub fn queue(&self, channel: &str) -> Vec<InteractionKey> {
        let Some(q) = self.queues.get(channel) else {
            return Vec::new();
        };
        let mut all: Vec<&QueueEntry> = q.pool.iter().chain(q.targeted.iter()).collect();
        all.sort();
        all.into_iter().map(|e| e.2).collect()
    }

    /// Time-in-state and handling time, up to `now`.
    pub fn stats(&self) -> &TimeInState {
        &self.stats
    }

    /// The sequence number of the last journal event.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    // ----- entry points ---------------------------------------------------------------------

    /// Carries out an agent's command at `now`. On refusal nothing changes.
    pub fn execute(
        &mut self,
        now: Millis,
        agent_id: &str,
        command: AgentCommand,
    ) -> Result<Vec<Stamped>, CoreError> {
        let mut out = Vec::new();
        self.decide(now, agent_id, command, &mut out)?;
        self.retire(now, &mut out);
        self.route(now, &mut out);
        Ok(out)
    }

    /// Takes one event from a plugin. Events about unknown interactions are dropped (and logged).
    pub fn on_plugin_event(&mut self, now: Millis, plugin: &str, event: &Event) -> Vec<Stamped> {
        let mut out = Vec::new();
        match event {
            Event::Offer(offer) => self.arrive(now, plugin, offer, &mut out),
            Event::LinkCode(link) => self.keep_link_code(now, plugin, link, &mut out),
            Event::Ended(ended) => {
                let Some(key) = self
                    .by_plugin_id
                    .get(plugin, ended.interaction.as_str())
                    .copied()
                else {
                    tracing::debug!(plugin, interaction = %ended.interaction, "`ended` for an unknown interaction dropped");
                    return out;
                };
                self.contact_ended(now, key, ended.reason, &mut out);
            }
            _ => {}
        }
        self.retire(now, &mut out);
        self.route(now, &mut out);
        out
    }

    /// Runs what is due at `now`: offer timeouts and the end of after-call work.
    pub fn tick(&mut self, now: Millis) -> Vec<Stamped> {
        let mut out = Vec::new();
        while let Some((due, timer)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, timer.clone()));
            match timer {
                Timer::Offer(key) => {
                    let Some(i) = self.interactions.get(&key) else {
                        continue;
                    };
                    let InteractionState::Offered { agent, .. } = &i.state else {
                        continue;
                    };
                    let (agent, channel) = (agent.clone(), i.channel.clone());
                    self.emit(
                        now,
                        CoreEvent::OfferMissed {
                            key,
                            agent: agent.clone(),
                        },
                        &mut out,
                    );
                    let state = ChannelState::NotReady {
                        reason: MISSED_OFFER.into(),
                    };
                    self.change_state(now, agent, channel, state, &mut out);
                }
                Timer::Acw(agent, channel) => {
                    let Ok(ch) = self.channel_of(&agent, &channel) else {
                        continue;
                    };
                    let ChannelState::AfterCallWork { then, .. } = &ch.state else {
                        continue;
                    };
                    let state = then.clone().into_state();
                    self.change_state(now, agent, channel, state, &mut out);
                }
                Timer::Reoffer(channel) => {
                    self.dirty.insert(channel);
                }
            }
        }
        self.retire(now, &mut out);
        self.route(now, &mut out);
        out
    }

    /// When the next timer (offer timeout, end of ACW) is due, if any.
    pub fn next_timer(&self) -> Option<Millis> {
        self.timers.first().map(|(due, _)| *due)
    }

    /// Forgets the interactions closed since the last call (done, abandoned, rejected, forwarded)
    /// and their handling totals: their record is in the journal (and the history). Call it after
    /// their effects have been carried out and their handling time stored. The de-duplication
    /// keys are kept, so a re-sent offer is still recognised.
    pub fn compact(&mut self) {
        for key in std::mem::take(&mut self.closed_since_compact) {
            if let Some(i) = self.interactions.get(&key)
                && i.state.is_closed()
                && let Some(i) = self.interactions.remove(&key)
            {
                self.by_plugin_id
                    .remove(&i.plugin, i.plugin_interaction.as_str());
                self.stats.forget_handling(key);
            }
        }
    }

    /// An open interaction the agent takes part in (owner, conferenced colleague, or the agent who
    /// asked for a consultation), for acting inside it.
    pub fn taking_part(&self, agent: &str, key: InteractionKey) -> Result<&Interaction, CoreError> {
        let i = self
            .interactions
            .get(&key)
            .ok_or(CoreError::UnknownInteraction { key })?;
        if i.state.is_closed() || !Self::involved_in(i).any(|a| a == agent) {
            return Err(CoreError::NotYours {
                key,
                agent: agent.into(),
            });
        }
        Ok(i)
    }

    /// Everyone taking part in an interaction now.
    pub fn participants(&self, key: InteractionKey) -> Vec<String> {
        self.interactions
            .get(&key)
            .map(|i| Self::involved_in(i).cloned().collect())
            .unwrap_or_default()
    }

    /// Checks that an agent may send a message in an interaction now (they take part in it, it is
    /// active, and written: a conversation or an email). Sending changes no core state.
    /// Anyone taking part may write: the owner, a conferenced colleague, the agent who asked for
    /// a consultation.
    pub fn check_send(&self, agent: &str, key: InteractionKey) -> Result<&Interaction, CoreError> {
        let i = self.taking_part(agent, key)?;
        if i.state != InteractionState::Active
            || !matches!(
                i.media,
                plugin_api::Media::Conversation | plugin_api::Media::Email
            )
        {
            return Err(wrong_state(
                i,
                "messages can be sent only in an active chat, message or email",
            ));
        }
        require(&self.policy, i, "send-message")?;
        Ok(i)
    }

    /// Forgets the de-duplication keys of closed interactions that arrived longer ago than the
    /// policy's window (`[core] dedup_days`). Keys of open interactions are always kept.
    pub fn prune_dedup(&mut self, now: Millis) {
        let window = self.policy.dedup_window_ms;
        let open = &self.interactions;
        self.by_external
            .retain(|(key, at)| at.saturating_add(window) > now || open.contains_key(key));
        self.prune_at = (self.by_external.len() * 2).max(1024);
    }

    /// How many de-duplication keys are remembered.
    pub fn dedup_keys(&self) -> usize {
        self.by_external.len()
    }

    /// The interactions closed since the last `compact` (their handling time is final).
    pub fn closed_since_compact(&self) -> &[InteractionKey] {
        &self.closed_since_compact
    }

    /// Records the id a plugin gave an interaction the core started (an outbound interaction or a
    /// consultation), so that the plugin's events about it arrive. Unknown keys are ignored.
    pub fn link_plugin_id(
        &mut self,
        now: Millis,
        key: InteractionKey,
        interaction: InteractionId,
    ) -> Vec<Stamped> {
        let mut out = Vec::new();
        if self
            .interactions
            .get(&key)
            .is_some_and(|i| i.plugin_interaction != interaction)
        {
            self.emit(
                now,
                CoreEvent::PluginIdLinked { key, interaction },
                &mut out,
            );
        }
        out
    }

    /// Re-applies a journaled event (replay at start-up). Events must come in sequence.
    pub fn replay(&mut self, stamped: &Stamped) {
        self.apply(stamped);
    }

    // ----- plugin events --------------------------------------------------------------------

    fn arrive(
        &mut self,
        now: Millis,
        plugin: &str,
        offer: &plugin_api::Offer,
        out: &mut Vec<Stamped>,
    ) {
        if self.by_external.contains(plugin, &offer.external_id) {
            tracing::debug!(plugin, external_id = %offer.external_id, "duplicate offer ignored");
            return;
        }
        if self.by_external.len() >= self.prune_at {
            self.prune_dedup(now);
        }
        let key = self.next_key;
        let channel = offer.channel.0.clone();
        let linked = (offer.route.to == Route::LINKED)
            .then(|| self.linked_owner(&offer.route.name))
            .flatten();
        let (route, related) = match linked {
            Some((owner, carrier)) => {
                self.link_codes.remove(&offer.route.name);
                (Route::agent(owner), Some(carrier))
            }
            None => (offer.route.clone(), None),
        };
        self.emit(
            now,
            CoreEvent::InteractionArrived {
                key,
                plugin: plugin.into(),
                interaction: offer.interaction.clone(),
                external_id: offer.external_id.clone(),
                channel: channel.clone(),
                media: offer.media,
                route: route.clone(),
                contact: offer.contact.clone(),
                // A never-saved channel's offer journals no text, not even as a subject.
                subject: offer
                    .subject
                    .clone()
                    .filter(|_| !self.policy.never_saves(&channel)),
                priority: offer.priority,
                related,
            },
            out,
        );
        let refusal = if !self.served.contains(&channel) {
            Some((
                format!("no agent on this host has channel `{channel}`"),
                RejectCode::NoAgents,
            ))
        } else if let Some(why) = self.out_of_service.get(&channel) {
            Some((
                format!("channel `{channel}` is unavailable: {why}"),
                RejectCode::ChannelUnavailable,
            ))
        } else {
            match route.to.as_str() {
                Route::QUEUE => None,
                Route::AGENT if self.agents.contains_key(&route.name) => None,
                Route::EXTENSION if self.agent_by_extension(&route.name).is_some() => None,
                // Still `linked`: it waits until an open interaction carries the code (a
                // chat's `link-code`, or the agent types it on a call: `core::links`) or its
                // plugin ends it.
                Route::LINKED => None,
                Route::AGENT | Route::EXTENSION => Some((
                    format!("no {} `{}` on this host", route.to, route.name),
                    RejectCode::NoSuchTarget,
                )),
                other => Some((
                    format!("route kind `{other}` is not supported"),
                    RejectCode::UnsupportedRoute,
                )),
            }
        };
        if let Some((reason, code)) = refusal {
            let event = CoreEvent::InteractionRejected { key, reason, code };
            self.emit(now, event, out);
        }
    }

    fn contact_ended(
        &mut self,
        now: Millis,
        key: InteractionKey,
        reason: EndReason,
        out: &mut Vec<Stamped>,
    ) {
        let Some(i) = self.interactions.get(&key) else {
            return;
        };
        match &i.state {
            InteractionState::Queued | InteractionState::Offered { .. } => {
                self.emit(now, CoreEvent::InteractionAbandoned { key }, out);
            }
            InteractionState::Active => {
                let (owner, channel) = (i.owner.clone(), i.channel.clone());
                self.emit(now, CoreEvent::InteractionEnded { key, reason }, out);
                if let Some(owner) = owner {
                    self.after_work(now, &owner, &channel, out);
                }
            }
            _ => {}
        }
    }

    fn agent_by_extension(&self, extension: &str) -> Option<&Agent> {
        self.agents()
            .find(|a| a.extension.as_deref() == Some(extension))
    }
}

fn wrong_state(i: &Interaction, rule: &str) -> CoreError {
    let state = match &i.state {
        InteractionState::Offered { .. } => "offered".to_string(),
        InteractionState::InWorkbin { .. } => "in a workbin".to_string(),
        InteractionState::Rejected { .. } => "rejected".to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    CoreError::WrongState {
        key: i.key,
        state,
        rule: rule.into(),
    }
}
