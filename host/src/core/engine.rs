//! The core's rules: commands and plugin events are checked against the agent and interaction
//! state machines, accepted ones become journal events, and `apply` is the only place state
//! changes. Routing, answer timeouts and ACW run here too, on time passed in by the caller.

use super::commands::{AgentCommand, CoreError};
use super::events::{CoreEvent, Stamped};
use super::index::PluginIndex;
use super::model::{
    Agent, AgentChannel, ChannelRequest, ChannelState, Consultation, Interaction, InteractionKey,
    InteractionState, Millis, NextState, PassedHow, PassedOver,
};

mod confirm;
mod isolation;
mod state_snapshot;
mod time_in_state;
use super::capability::require;
use super::policy::{LOGGED_ON, MISSED_OFFER, Policy};
use super::reoffer::{Standing, standing};
use super::stats::TimeInState;
use crate::config::AcwPolicy;
use plugin_api::{Address, EndReason, Event, InteractionId, RejectCode, Route};
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
}

impl Core {
    /// A core with the given rules; every agent starts logged out with all channels logged off.
    pub fn new(policy: Policy, now: Millis) -> Self {
        let agents: HashMap<String, Agent> = policy
            .agents
            .iter()
            .map(|spec| {
                let channels = spec
                    .channels
                    .iter()
                    .map(|c| {
                        let channel = AgentChannel {
                            state: ChannelState::LoggedOff,
                            since: now,
                            load: 0,
                            idle_key: (now, 0),
                            listed_as: None,
                        };
                        (c.clone(), channel)
                    })
                    .collect();
                let agent = Agent {
                    id: spec.id.clone(),
                    name: spec.name.clone(),
                    extension: spec.extension.clone(),
                    channels,
                    logged_in: false,
                    dnd: false,
                    forward_to: None,
                    auto_answer: spec.auto_answer.iter().cloned().collect(),
                };
                (spec.id.clone(), agent)
            })
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
        self.route(now, &mut out);
        Ok(out)
    }

    /// Takes one event from a plugin. Events about unknown interactions are dropped (and logged).
    pub fn on_plugin_event(&mut self, now: Millis, plugin: &str, event: &Event) -> Vec<Stamped> {
        let mut out = Vec::new();
        match event {
            Event::Offer(offer) => self.arrive(now, plugin, offer, &mut out),
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

    // ----- commands -------------------------------------------------------------------------

    fn decide(
        &mut self,
        now: Millis,
        agent_id: &str,
        command: AgentCommand,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let agent = self
            .agents
            .get(agent_id)
            .ok_or_else(|| CoreError::UnknownAgent {
                agent: agent_id.into(),
            })?;
        let a = agent_id.to_string();
        if !agent.logged_in && command != AgentCommand::LogIn {
            return Err(CoreError::NotLoggedIn { agent: a });
        }
        match command {
            AgentCommand::LogIn => {
                if !agent.logged_in {
                    self.emit(now, CoreEvent::AgentLoggedIn { agent: a }, out);
                }
            }
            AgentCommand::LogOut => {
                if let Some((channel, ch)) = agent.channels.iter().find(|(_, ch)| ch.load > 0) {
                    return Err(CoreError::OpenWork {
                        channel: channel.clone(),
                        open: ch.load,
                    });
                }
                let on: Vec<String> = agent
                    .channels
                    .iter()
                    .filter(|(_, ch)| ch.state != ChannelState::LoggedOff)
                    .map(|(c, _)| c.clone())
                    .collect();
                for channel in on {
                    let state = ChannelState::LoggedOff;
                    self.change_state(now, a.clone(), channel, state, out);
                }
                self.emit(now, CoreEvent::AgentLoggedOut { agent: a }, out);
            }
            AgentCommand::LogOnChannel { channel } => {
                let ch = self.channel_of(agent_id, &channel)?;
                if ch.state == ChannelState::LoggedOff {
                    let state = ChannelState::NotReady {
                        reason: LOGGED_ON.into(),
                    };
                    self.change_state(now, a, channel, state, out);
                }
            }
            AgentCommand::LogOffChannel { channel } => {
                let ch = self.channel_of(agent_id, &channel)?;
                let open = ch.load + self.parked(agent_id, &channel);
                if open > 0 {
                    return Err(CoreError::OpenWork { channel, open });
                }
                if ch.state != ChannelState::LoggedOff {
                    self.change_state(now, a, channel, ChannelState::LoggedOff, out);
                }
            }
            AgentCommand::SetReady { channel } => {
                let ch = self.channel_of(agent_id, &channel)?;
                match &ch.state {
                    ChannelState::LoggedOff => return Err(CoreError::ChannelLoggedOff { channel }),
                    ChannelState::Ready => {}
                    ChannelState::AfterCallWork {
                        min_until: Some(min),
                        ..
                    } if now < *min => {
                        return Err(CoreError::AcwRule {
                            channel,
                            rule: format!(
                                "after-call work has a minimum; it can end in {} s",
                                (min - now).div_ceil(1000)
                            ),
                        });
                    }
                    _ => self.change_state(now, a, channel, ChannelState::Ready, out),
                }
            }
            AgentCommand::SetNotReady { channel, reason } => {
                if !self.policy.not_ready_reasons.contains(&reason) {
                    return Err(CoreError::UnknownReason { reason });
                }
                let working = self.has_active_work(agent_id, &channel);
                let ch = self.channel_of(agent_id, &channel)?;
                let state = match &ch.state {
                    ChannelState::LoggedOff => return Err(CoreError::ChannelLoggedOff { channel }),
                    ChannelState::AfterCallWork {
                        ends_at, min_until, ..
                    } if self.policy.pending => ChannelState::AfterCallWork {
                        ends_at: *ends_at,
                        min_until: *min_until,
                        then: NextState::NotReady { reason },
                    },
                    _ if working && self.policy.pending => ChannelState::Pending { reason },
                    _ => ChannelState::NotReady { reason },
                };
                if state != ch.state {
                    self.change_state(now, a, channel, state, out);
                }
            }
            AgentCommand::SetDnd { on } => {
                if agent.dnd != on {
                    self.emit(now, CoreEvent::DndChanged { agent: a, on }, out);
                }
            }
            AgentCommand::SetForwarding { to } => {
                if agent.forward_to != to {
                    self.emit(now, CoreEvent::ForwardingChanged { agent: a, to }, out);
                }
            }
            AgentCommand::Accept { key } => {
                let i = self.owned(key, agent_id)?;
                if !matches!(i.state, InteractionState::Offered { .. }) {
                    return Err(wrong_state(
                        i,
                        "only an offered interaction can be accepted",
                    ));
                }
                self.emit(now, CoreEvent::InteractionAccepted { key, agent: a }, out);
            }
            AgentCommand::Decline { key } => {
                let i = self.owned(key, agent_id)?;
                if !matches!(i.state, InteractionState::Offered { .. }) {
                    return Err(wrong_state(
                        i,
                        "only an offered interaction can be declined",
                    ));
                }
                self.emit(now, CoreEvent::InteractionDeclined { key, agent: a }, out);
            }
            AgentCommand::Hold { key } | AgentCommand::Resume { key } => {
                let hold = matches!(command, AgentCommand::Hold { .. });
                let i = self.owned(key, agent_id)?;
                if i.state != InteractionState::Active || !i.is_live() {
                    return Err(wrong_state(
                        i,
                        "only an active call, chat or co-browse can be held or resumed",
                    ));
                }
                require(&self.policy, i, if hold { "hold" } else { "resume" })?;
                if i.pending.is_some() {
                    return Err(wrong_state(
                        i,
                        "the channel has not answered the last hold or resume yet",
                    ));
                }
                match (hold, i.held) {
                    (true, false) | (false, true) => self.ask_hold(now, key, a, hold, out),
                    (true, true) => return Err(wrong_state(i, "it is already on hold")),
                    (false, false) => return Err(wrong_state(i, "it is not on hold")),
                }
            }
            AgentCommand::End { key } => {
                let i = self.owned(key, agent_id)?;
                if i.state != InteractionState::Active {
                    return Err(wrong_state(i, "only an active interaction can be ended"));
                }
                let channel = i.channel.clone();
                self.emit(
                    now,
                    CoreEvent::InteractionEnded {
                        key,
                        reason: EndReason::AgentEnded,
                    },
                    out,
                );
                self.after_work(now, agent_id, &channel, out);
            }
            AgentCommand::Transfer { key, to } => {
                let i = self.owned(key, agent_id)?;
                if i.state != InteractionState::Active {
                    return Err(wrong_state(
                        i,
                        "only an active interaction can be transferred",
                    ));
                }
                // An extension no agent has is outside: the channel transfers the call there.
                if to.to == Route::EXTENSION && self.agent_by_extension(&to.name).is_none() {
                    if i.media != plugin_api::Media::Call {
                        return Err(wrong_state(
                            i,
                            "only a call can be transferred to an outside number",
                        ));
                    }
                    require(&self.policy, i, "transfer")?;
                    let to = if to.name.starts_with("sip:") || to.name.contains('@') {
                        Address::new(Address::SIP, to.name)
                    } else {
                        Address::phone(to.name)
                    };
                    self.emit(
                        now,
                        CoreEvent::TransferOutRequested { key, agent: a, to },
                        out,
                    );
                    return Ok(());
                }
                let channel = i.channel.clone();
                self.emit(
                    now,
                    CoreEvent::InteractionTransferred { key, from: a, to },
                    out,
                );
                self.after_work(now, agent_id, &channel, out);
            }
            AgentCommand::MarkDone { key, wrap_up, next } => {
                let i = self.owned(key, agent_id)?;
                let closable = i.state == InteractionState::Ended
                    || (i.state == InteractionState::Active && !i.is_live());
                if !closable {
                    return Err(wrong_state(
                        i,
                        "a live interaction must end before it is marked done",
                    ));
                }
                let wrap_up = match wrap_up {
                    Some(code) => Some(
                        self.policy
                            .wrap_up_codes
                            .iter()
                            .find(|c| c.code == code)
                            .cloned()
                            .ok_or(CoreError::UnknownWrapUp { code })?,
                    ),
                    None if self.policy.wrap_up_required => return Err(CoreError::WrapUpRequired),
                    None => None,
                };
                if let Some(NextState::NotReady { reason }) = &next
                    && !self.policy.not_ready_reasons.contains(reason)
                {
                    return Err(CoreError::UnknownReason {
                        reason: reason.clone(),
                    });
                }
                let (channel, was_active) =
                    (i.channel.clone(), i.state == InteractionState::Active);
                self.emit(
                    now,
                    CoreEvent::InteractionDone {
                        key,
                        agent: a.clone(),
                        wrap_up,
                    },
                    out,
                );
                if was_active {
                    self.after_work(now, agent_id, &channel, out);
                }
                self.leave_acw_on_done(now, agent_id, &channel, next, out);
            }
            AgentCommand::ExtendAcw { channel, secs } => {
                let ch = self.channel_of(agent_id, &channel)?;
                let ChannelState::AfterCallWork {
                    ends_at,
                    min_until,
                    then,
                } = &ch.state
                else {
                    return Err(CoreError::AcwRule {
                        channel,
                        rule: "the channel is not in after-call work".into(),
                    });
                };
                if !matches!(self.policy.acw(&channel), AcwPolicy::Extendable { .. }) {
                    return Err(CoreError::AcwRule {
                        channel,
                        rule: "the policy does not allow extending after-call work".into(),
                    });
                }
                let ends_at = match (secs, ends_at) {
                    (None, _) | (_, None) => None,
                    (Some(s), Some(end)) => Some(end.max(&now) + s * 1000),
                };
                let state = ChannelState::AfterCallWork {
                    ends_at,
                    min_until: *min_until,
                    then: then.clone(),
                };
                self.change_state(now, a, channel, state, out);
            }
            AgentCommand::Park { key, workbin } => {
                let i = self.owned(key, agent_id)?;
                if i.state != InteractionState::Active || i.is_live() {
                    return Err(wrong_state(
                        i,
                        "only an active email or workitem can go to a workbin",
                    ));
                }
                require(&self.policy, i, "put-in-workbin")?;
                let channel = i.channel.clone();
                self.emit(now, CoreEvent::InteractionParked { key, workbin }, out);
                self.after_work(now, agent_id, &channel, out);
            }
            AgentCommand::Unpark { key } => {
                let i = self.owned(key, agent_id)?;
                if !matches!(i.state, InteractionState::InWorkbin { .. }) {
                    return Err(wrong_state(i, "it is not in a workbin"));
                }
                let channel = i.channel.clone();
                let ch = self.channel_of(agent_id, &channel)?;
                let capacity = self.policy.capacity(&channel);
                if ch.load >= capacity {
                    return Err(CoreError::AtCapacity { channel, capacity });
                }
                self.emit(now, CoreEvent::InteractionUnparked { key }, out);
            }
            AgentCommand::Consult { key, colleague } => {
                let i = self.owned(key, agent_id)?;
                if i.state != InteractionState::Active || i.consult.is_some() {
                    return Err(wrong_state(
                        i,
                        "only an active interaction (not a consultation) can be consulted about",
                    ));
                }
                require(&self.policy, i, "consult")?;
                let channel = i.channel.clone();
                let unavailable = |reason: &str| CoreError::ColleagueUnavailable {
                    agent: colleague.clone(),
                    reason: reason.into(),
                };
                let other = self
                    .agents
                    .get(&colleague)
                    .ok_or_else(|| CoreError::UnknownAgent {
                        agent: colleague.clone(),
                    })?;
                if colleague == agent_id {
                    return Err(unavailable("an agent cannot consult themselves"));
                }
                if !other.logged_in || other.dnd {
                    return Err(unavailable(if other.dnd {
                        "Do Not Disturb is on"
                    } else {
                        "not logged in"
                    }));
                }
                let ch = other
                    .channels
                    .get(&channel)
                    .ok_or_else(|| unavailable(&format!("no `{channel}` channel")))?;
                if ch.state == ChannelState::LoggedOff {
                    return Err(unavailable(&format!("logged off `{channel}`")));
                }
                let capacity = self.policy.capacity(&channel);
                if ch.load >= capacity {
                    return Err(CoreError::AtCapacity { channel, capacity });
                }
                let consultation = self.next_key;
                let deadline = now + self.policy.answer_timeout_ms(&channel);
                let event = CoreEvent::ConsultationStarted {
                    key: consultation,
                    about: key,
                    by: a,
                    colleague,
                    deadline,
                };
                self.emit(now, event, out);
            }
            AgentCommand::Conference { consultation }
            | AgentCommand::TransferAfterConsultation { consultation } => {
                let conference = matches!(command, AgentCommand::Conference { .. });
                let c = self
                    .interactions
                    .get(&consultation)
                    .ok_or(CoreError::UnknownInteraction { key: consultation })?;
                let Some(Consultation { about, by }) = c.consult.clone() else {
                    return Err(wrong_state(c, "it is not a consultation"));
                };
                if by != agent_id {
                    return Err(CoreError::NotYours {
                        key: consultation,
                        agent: a,
                    });
                }
                if c.state != InteractionState::Active {
                    return Err(wrong_state(
                        c,
                        "the colleague has not joined the consultation",
                    ));
                }
                let colleague = c.owner.clone().unwrap_or_default();
                let i = self.owned(about, agent_id)?;
                if i.state != InteractionState::Active {
                    return Err(wrong_state(i, "the interaction is no longer active"));
                }
                require(
                    &self.policy,
                    i,
                    if conference { "conference" } else { "transfer" },
                )?;
                if conference {
                    if !matches!(
                        i.media,
                        plugin_api::Media::Call | plugin_api::Media::Conversation
                    ) {
                        return Err(wrong_state(
                            i,
                            "only calls and chats can have a conference; consult or transfer instead",
                        ));
                    }
                    self.emit(
                        now,
                        CoreEvent::ConferenceStarted {
                            about,
                            consultation,
                            colleague,
                        },
                        out,
                    );
                } else {
                    let channel = i.channel.clone();
                    let event = CoreEvent::TransferredAfterConsultation {
                        about,
                        consultation,
                        from: a,
                        to: colleague,
                    };
                    self.emit(now, event, out);
                    self.after_work(now, agent_id, &channel, out);
                }
            }
            AgentCommand::EndConsultation { consultation } => {
                let c = self
                    .interactions
                    .get(&consultation)
                    .ok_or(CoreError::UnknownInteraction { key: consultation })?;
                let Some(Consultation { by, .. }) = &c.consult else {
                    return Err(wrong_state(c, "it is not a consultation"));
                };
                if by != agent_id && c.owner.as_deref() != Some(agent_id) {
                    return Err(CoreError::NotYours {
                        key: consultation,
                        agent: a,
                    });
                }
                if !matches!(
                    c.state,
                    InteractionState::Offered { .. } | InteractionState::Active
                ) {
                    return Err(wrong_state(c, "the consultation is over"));
                }
                self.emit(now, CoreEvent::ConsultationEnded { consultation }, out);
            }
            AgentCommand::StartOutbound { channel, to, from } => {
                let ch = self.channel_of(agent_id, &channel)?;
                if ch.state == ChannelState::LoggedOff {
                    return Err(CoreError::ChannelLoggedOff { channel });
                }
                let capacity = self.policy.capacity(&channel);
                if ch.load >= capacity {
                    return Err(CoreError::AtCapacity { channel, capacity });
                }
                let plugin = self
                    .policy
                    .channel_plugins
                    .get(&channel)
                    .cloned()
                    .ok_or_else(|| CoreError::NoPluginFor {
                        channel: channel.clone(),
                    })?;
                let mut contact = match from {
                    Some(key) => self
                        .interactions
                        .get(&key)
                        .ok_or(CoreError::UnknownInteraction { key })?
                        .contact
                        .clone(),
                    None => plugin_api::Contact::default(),
                };
                if !contact.addresses.contains(&to) {
                    contact.addresses.push(to.clone());
                }
                let media = super::model::default_media(&channel);
                let key = self.next_key;
                let event = CoreEvent::OutboundStarted {
                    key,
                    plugin,
                    channel,
                    media,
                    agent: a,
                    to,
                    contact,
                    related: from,
                };
                self.emit(now, event, out);
            }
            AgentCommand::LeaveConference { key } => {
                let i = self
                    .interactions
                    .get(&key)
                    .ok_or(CoreError::UnknownInteraction { key })?;
                if !i.conference.contains(agent_id) {
                    return Err(CoreError::NotYours { key, agent: a });
                }
                self.emit(
                    now,
                    CoreEvent::ConferenceLeft {
                        about: key,
                        agent: a,
                    },
                    out,
                );
            }
        }
        Ok(())
    }

    fn channel_of(&self, agent: &str, channel: &str) -> Result<&AgentChannel, CoreError> {
        self.agents
            .get(agent)
            .and_then(|a| a.channels.get(channel))
            .ok_or_else(|| CoreError::ChannelNotAssigned {
                agent: agent.into(),
                channel: channel.into(),
            })
    }

    fn owned(&self, key: InteractionKey, agent: &str) -> Result<&Interaction, CoreError> {
        let i = self
            .interactions
            .get(&key)
            .ok_or(CoreError::UnknownInteraction { key })?;
        if i.owner.as_deref() != Some(agent) {
            return Err(CoreError::NotYours {
                key,
                agent: agent.into(),
            });
        }
        Ok(i)
    }

    /// The open interactions an agent owns on a channel.
    fn open_on<'a>(
        &'a self,
        agent: &str,
        channel: &'a str,
    ) -> impl Iterator<Item = &'a Interaction> + 'a {
        self.open_by_owner
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|k| self.interactions.get(k))
            .filter(move |i| i.channel == channel)
    }

    /// Whether the agent has offered or active interactions on a channel.
    fn has_active_work(&self, agent: &str, channel: &str) -> bool {
        self.open_on(agent, channel).any(|i| {
            matches!(
                i.state,
                InteractionState::Active | InteractionState::Offered { .. }
            )
        })
    }

    fn parked(&self, agent: &str, channel: &str) -> u32 {
        self.open_on(agent, channel)
            .filter(|i| matches!(i.state, InteractionState::InWorkbin { .. }))
            .count() as u32
    }

    /// After an agent's active work on a channel stops (end, transfer, park): when none is left,
    /// the channel enters ACW (per policy), and a Pending Not Ready takes effect.
    fn after_work(&mut self, now: Millis, agent: &str, channel: &str, out: &mut Vec<Stamped>) {
        if self.has_active_work(agent, channel) {
            return;
        }
        let Ok(ch) = self.channel_of(agent, channel) else {
            return;
        };
        let then = match &ch.state {
            ChannelState::Pending { reason } => NextState::NotReady {
                reason: reason.clone(),
            },
            ChannelState::Ready => self.policy.after_acw(channel),
            // Not Ready chosen without Pending (already counting), ACW, logged off: unchanged.
            _ => return,
        };
        let state = match self.policy.acw(channel) {
            AcwPolicy::None => then.into_state(),
            AcwPolicy::Timed { secs } | AcwPolicy::Extendable { secs } => {
                ChannelState::AfterCallWork {
                    ends_at: Some(now + secs * 1000),
                    min_until: None,
                    then,
                }
            }
            AcwPolicy::Minimum { secs } => ChannelState::AfterCallWork {
                ends_at: None,
                min_until: Some(now + secs * 1000),
                then,
            },
        };
        if state != ch.state {
            self.change_state(now, agent, channel, state, out);
        }
    }

    /// Mark Done during ACW: once nothing on the channel awaits Mark Done, ACW ends now (or, under
    /// a minimum, when the minimum has passed), to the agent's chosen next state if given.
    fn leave_acw_on_done(
        &mut self,
        now: Millis,
        agent: &str,
        channel: &str,
        next: Option<NextState>,
        out: &mut Vec<Stamped>,
    ) {
        let Ok(ch) = self.channel_of(agent, channel) else {
            return;
        };
        let ChannelState::AfterCallWork {
            min_until, then, ..
        } = &ch.state
        else {
            return;
        };
        if self
            .open_on(agent, channel)
            .any(|i| i.state == InteractionState::Ended)
        {
            return;
        }
        let then = next.unwrap_or_else(|| then.clone());
        let state = match min_until {
            Some(min) if now < *min => ChannelState::AfterCallWork {
                ends_at: Some(*min),
                min_until: Some(*min),
                then,
            },
            _ => then.into_state(),
        };
        self.change_state(now, agent, channel, state, out);
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
        self.emit(
            now,
            CoreEvent::InteractionArrived {
                key,
                plugin: plugin.into(),
                interaction: offer.interaction.clone(),
                external_id: offer.external_id.clone(),
                channel: channel.clone(),
                media: offer.media,
                route: offer.route.clone(),
                contact: offer.contact.clone(),
                subject: offer.subject.clone(),
                priority: offer.priority,
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
            match offer.route.to.as_str() {
                Route::QUEUE => None,
                Route::AGENT if self.agents.contains_key(&offer.route.name) => None,
                Route::EXTENSION if self.agent_by_extension(&offer.route.name).is_some() => None,
                Route::AGENT | Route::EXTENSION => Some((
                    format!("no {} `{}` on this host", offer.route.to, offer.route.name),
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

    // ----- routing --------------------------------------------------------------------------

    /// Whether an agent may get a new offer on a channel now.
    pub fn eligible(&self, agent: &Agent, channel: &str) -> bool {
        let Some(ch) = agent.channels.get(channel) else {
            return false;
        };
        agent.logged_in
            && !agent.dnd
            && ch.state == ChannelState::Ready
            && !self.out_of_service.contains_key(channel)
            && ch.load < self.policy.capacity(channel)
            && !agent
                .channels
                .iter()
                .any(|(busy, c)| c.load > 0 && self.policy.blocked_by(busy).any(|b| b == channel))
    }

    /// Offers waiting interactions to available agents, for the channels where something changed:
    /// first those waiting for one agent (or extension), then the pool in queue order, longest-idle
    /// agent first. Stops at the first pool interaction nobody can take.
    fn route(&mut self, now: Millis, out: &mut Vec<Stamped>) {
        for channel in std::mem::take(&mut self.dirty) {
            let targeted: Vec<QueueEntry> = self
                .queues
                .get(&channel)
                .map(|q| q.targeted.iter().cloned().collect())
                .unwrap_or_default();
            for (_, _, key) in targeted {
                let Some(i) = self.interactions.get(&key) else {
                    continue;
                };
                let target = match i.route.to.as_str() {
                    Route::EXTENSION => {
                        self.agent_by_extension(&i.route.name).map(|a| a.id.clone())
                    }
                    _ => Some(i.route.name.clone()),
                };
                let Some(target) = target else { continue };
                let Some(agent) = self.agents.get(&target) else {
                    continue;
                };
                if let Some(to) = agent.forward_to.clone() {
                    self.emit(
                        now,
                        CoreEvent::InteractionForwarded {
                            key,
                            agent: target,
                            to,
                        },
                        out,
                    );
                } else if self.is_available(&target, &channel)
                    && self.standing(i, &target, now) != Standing::CoolingDown
                {
                    self.offer(now, key, &target, &channel, out);
                }
            }
            let mut after: Option<QueueEntry> = None;
            while let Some(q) = self.queues.get(&channel) {
                let next = match &after {
                    None => q.pool.iter().next(),
                    Some(last) => q
                        .pool
                        .range((Bound::Excluded(last), Bound::Unbounded))
                        .next(),
                };
                let Some(entry) = next.cloned() else { break };
                let key = entry.2;
                let Some(i) = self.interactions.get(&key) else {
                    break;
                };
                let available = self.available.get(&channel);
                // The longest-idle agent who never let it go; else one whose cool-down is over.
                let mut best: Option<&String> = None;
                for (_, a) in available.into_iter().flatten() {
                    match self.standing(i, a, now) {
                        Standing::Preferred => {
                            best = Some(a);
                            break;
                        }
                        Standing::SecondChance if best.is_none() => best = Some(a),
                        Standing::SecondChance | Standing::CoolingDown => {}
                    }
                }
                let best = best.cloned();
                match best {
                    Some(agent) => self.offer(now, key, &agent, &channel, out),
                    // Nobody is available at all: nothing further in the pool can be placed.
                    None if available.is_none_or(|a| a.is_empty()) => break,
                    None => after = Some(entry),
                }
            }
        }
    }

    /// How an agent stands for a queued interaction (see `reoffer`).
    fn standing(&self, i: &Interaction, agent: &str, now: Millis) -> Standing {
        let ch = self
            .agents
            .get(agent)
            .and_then(|a| a.channels.get(&i.channel));
        standing(i, agent, ch, self.policy.reoffer_after_ms(&i.channel), now)
    }

    fn is_available(&self, agent: &str, channel: &str) -> bool {
        self.channel_of(agent, channel)
            .is_ok_and(|ch| ch.listed_as.is_some())
    }

    fn offer(
        &mut self,
        now: Millis,
        key: InteractionKey,
        agent: &str,
        channel: &str,
        out: &mut Vec<Stamped>,
    ) {
        let deadline = now + self.policy.answer_timeout_ms(channel);
        self.emit(
            now,
            CoreEvent::InteractionOffered {
                key,
                agent: agent.into(),
                deadline,
            },
            out,
        );
        if self
            .agents
            .get(agent)
            .is_some_and(|a| a.auto_answer.contains(channel))
        {
            self.emit(
                now,
                CoreEvent::InteractionAccepted {
                    key,
                    agent: agent.into(),
                },
                out,
            );
        }
    }

    /// Emits a change of an agent channel's state.
    fn change_state(
        &mut self,
        now: Millis,
        agent: impl Into<String>,
        channel: impl Into<String>,
        state: ChannelState,
        out: &mut Vec<Stamped>,
    ) {
        let event = CoreEvent::ChannelStateChanged {
            agent: agent.into(),
            channel: channel.into(),
            state,
        };
        self.emit(now, event, out);
    }

    // ----- the one place state changes ------------------------------------------------------

    fn emit(&mut self, at: Millis, event: CoreEvent, out: &mut Vec<Stamped>) {
        let stamped = Stamped {
            seq: self.seq + 1,
            at,
            event,
        };
        self.apply(&stamped);
        out.push(stamped);
    }

    /// Applies one event and keeps every index in step with it.
    fn apply(&mut self, stamped: &Stamped) {
        let (keys, mut people) = stamped.event.concerns();
        self.note_concerned(&keys, &people);
        for k in &keys {
            self.add_people_of(*k, &mut people);
            self.unindex_interaction(*k);
        }
        if let CoreEvent::ChannelStateChanged { agent, channel, .. } = &stamped.event {
            self.index_acw(agent, channel, false);
        }
        self.apply_change(stamped);
        self.note_concerned(&keys, &[]);
        for k in &keys {
            self.index_interaction(*k);
            if self
                .interactions
                .get(k)
                .is_some_and(|i| i.state.is_closed())
            {
                self.closed_since_compact.push(*k);
            }
            self.add_people_of(*k, &mut people);
        }
        match &stamped.event {
            CoreEvent::ChannelStateChanged { agent, channel, .. } => {
                self.index_acw(agent, channel, true)
            }
            CoreEvent::ForwardingChanged { agent, .. } => {
                let channels: Vec<String> = self
                    .agents
                    .get(agent)
                    .map(|a| a.channels.keys().cloned().collect())
                    .unwrap_or_default();
                self.dirty.extend(channels);
            }
            _ => {}
        }
        people.sort();
        people.dedup();
        for agent in people {
            self.refresh_availability(&agent);
        }
    }

    /// Records who an event being applied concerns: the agents it names and everyone taking part
    /// in its interactions, called before and after the change (an ended conference has already
    /// let its colleagues go afterwards, yet they must hear that it ended).
    fn note_concerned(&mut self, keys: &[InteractionKey], named: &[String]) {
        for agent in named {
            if !self.concerned.contains(agent) {
                self.concerned.insert(agent.clone());
            }
        }
        for key in keys {
            if let Some(i) = self.interactions.get(key) {
                for agent in Self::involved_in(i) {
                    if !self.concerned.contains(agent) {
                        self.concerned.insert(agent.clone());
                    }
                }
            }
        }
    }

    /// The agents concerned by the events applied since the last call (whose snapshot changed),
    /// including those an event removed from an interaction.
    pub fn take_concerned(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.concerned)
    }

    /// Adds the owner and the conferenced colleagues of an interaction to `people`.
    fn add_people_of(&self, key: InteractionKey, people: &mut Vec<String>) {
        if let Some(i) = self.interactions.get(&key) {
            for agent in i.owner.iter().chain(i.conference.iter()) {
                if !people.contains(agent) {
                    people.push(agent.clone());
                }
            }
        }
    }

    fn adjust_load(&mut self, agent: &str, channel: &str, delta: i32) {
        if let Some(ch) = self
            .agents
            .get_mut(agent)
            .and_then(|a| a.channels.get_mut(channel))
        {
            ch.load = ch.load.saturating_add_signed(delta);
        }
    }

    /// Conferenced colleagues leave (their places are freed): the interaction ended or closed.
    fn clear_conference(&mut self, key: InteractionKey) {
        let Some(i) = self.interactions.get_mut(&key) else {
            return;
        };
        let (people, channel) = (std::mem::take(&mut i.conference), i.channel.clone());
        for agent in people {
            self.adjust_load(&agent, &channel, -1);
        }
    }

    /// Everyone taking part in an interaction: owner, conferenced colleagues, consulting agent.
    fn involved_in(i: &Interaction) -> impl Iterator<Item = &String> {
        i.owner
            .iter()
            .chain(i.conference.iter())
            .chain(i.consult.iter().map(|c| &c.by))
    }

    fn unindex_interaction(&mut self, key: InteractionKey) {
        let Some(i) = self.interactions.get(&key) else {
            return;
        };
        for agent in Self::involved_in(i) {
            if let Some(set) = self.involved.get_mut(agent) {
                set.remove(&key);
            }
        }
        if let InteractionState::Offered { deadline, .. } = i.state {
            self.timers.remove(&(deadline, Timer::Offer(key)));
        }
        if let Some(owner) = &i.owner
            && let Some(open) = self.open_by_owner.get_mut(owner)
        {
            open.remove(&key);
        }
    }

    fn index_interaction(&mut self, key: InteractionKey) {
        let Some(i) = self.interactions.get(&key) else {
            return;
        };
        if !i.state.is_closed() && i.state != InteractionState::Queued {
            for agent in Self::involved_in(i) {
                match self.involved.get_mut(agent) {
                    Some(set) => {
                        set.insert(key);
                    }
                    None => {
                        self.involved.insert(agent.clone(), BTreeSet::from([key]));
                    }
                }
            }
        }
        if let InteractionState::Offered { deadline, .. } = i.state {
            self.timers.insert((deadline, Timer::Offer(key)));
        }
        if let Some(owner) = &i.owner
            && !i.state.is_closed()
            && i.state != InteractionState::Queued
        {
            match self.open_by_owner.get_mut(owner) {
                Some(open) => {
                    open.insert(key);
                }
                None => {
                    self.open_by_owner
                        .insert(owner.clone(), BTreeSet::from([key]));
                }
            }
        }
    }

    /// Routes an interaction's channel again when the cool-down of one who let it go ends.
    fn reoffer_timer(&mut self, key: InteractionKey, at: Millis) {
        if let Some(i) = self.interactions.get(&key) {
            let due = at.saturating_add(self.policy.reoffer_after_ms(&i.channel));
            self.timers.insert((due, Timer::Reoffer(i.channel.clone())));
        }
    }

    fn index_acw(&mut self, agent: &str, channel: &str, insert: bool) {
        let Some(ch) = self.agents.get(agent).and_then(|a| a.channels.get(channel)) else {
            return;
        };
        if let ChannelState::AfterCallWork {
            ends_at: Some(end), ..
        } = ch.state
        {
            let timer = (end, Timer::Acw(agent.into(), channel.into()));
            if insert {
                self.timers.insert(timer);
            } else {
                self.timers.remove(&timer);
            }
        }
    }

    /// Puts each channel of the agent in (or takes it out of) its channel's available set, and
    /// marks a channel for routing when the agent has just become available on it.
    fn refresh_availability(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        // (channel, listed now, wanted): usually one or two channels, nothing to change.
        let changes: Vec<(String, Option<IdleKey>, Option<IdleKey>)> = agent
            .channels
            .iter()
            .filter_map(|(channel, ch)| {
                let want = self.eligible(agent, channel).then_some(ch.idle_key);
                (want != ch.listed_as).then(|| (channel.clone(), ch.listed_as, want))
            })
            .collect();
        for (channel, have, want) in changes {
            let listed = self.available.entry(channel.clone()).or_default();
            if let Some(old) = have {
                listed.remove(&(old, agent_id.to_string()));
            }
            if let Some(new) = want {
                listed.insert((new, agent_id.to_string()));
            }
            if let Some(ch) = self
                .agents
                .get_mut(agent_id)
                .and_then(|a| a.channels.get_mut(&channel))
            {
                ch.listed_as = want;
            }
            if have.is_none() && want.is_some() {
                self.dirty.insert(channel);
            }
        }
    }

    fn apply_change(&mut self, stamped: &Stamped) {
        let at = stamped.at;
        self.seq = stamped.seq;
        match &stamped.event {
            CoreEvent::AgentLoggedIn { agent } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.logged_in = true;
                }
            }
            CoreEvent::AgentLoggedOut { agent } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.logged_in = false;
                }
            }
            CoreEvent::ChannelStateChanged {
                agent,
                channel,
                state,
            } => {
                if let Some(ch) = self
                    .agents
                    .get_mut(agent)
                    .and_then(|a| a.channels.get_mut(channel))
                {
                    if let Some(label) = ch.state.label() {
                        self.stats
                            .add_state(agent, channel, &label, at.saturating_sub(ch.since));
                    }
                    if *state == ChannelState::Ready && ch.state != ChannelState::Ready {
                        ch.idle_key = (at, 0);
                    }
                    ch.state = state.clone();
                    ch.since = at;
                }
            }
            CoreEvent::DndChanged { agent, on } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.dnd = *on;
                }
            }
            CoreEvent::ForwardingChanged { agent, to } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.forward_to = to.clone();
                }
            }
            CoreEvent::InteractionArrived {
                key,
                plugin,
                interaction,
                external_id,
                channel,
                media,
                route,
                contact,
                subject,
                priority,
            } => {
                let i = Interaction {
                    key: *key,
                    plugin: plugin.clone(),
                    plugin_interaction: interaction.clone(),
                    external_id: external_id.clone(),
                    channel: channel.clone(),
                    media: *media,
                    route: route.clone(),
                    contact: contact.clone(),
                    subject: subject.clone(),
                    priority: *priority,
                    queue_seq: *key,
                    state: InteractionState::Queued,
                    owner: None,
                    passed_over: BTreeMap::new(),
                    pending: None,
                    held: false,
                    arrived_at: at,
                    accepted_at: None,
                    ended_at: None,
                    wrap_up: None,
                    consult: None,
                    conference: BTreeSet::new(),
                    linked: BTreeSet::new(),
                };
                self.next_key = self.next_key.max(key + 1);
                self.by_external
                    .insert(plugin, external_id.clone(), (*key, at));
                self.by_plugin_id
                    .insert(plugin, interaction.0.clone(), *key);
                self.enqueue(&i);
                self.interactions.insert(*key, i);
            }
            CoreEvent::InteractionOffered {
                key,
                agent,
                deadline,
            } => {
                self.dequeue(*key);
                self.set_owner(*key, Some(agent), at);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Offered {
                        agent: agent.clone(),
                        deadline: *deadline,
                    };
                }
            }
            CoreEvent::InteractionAccepted { key, .. } => {
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Active;
                    i.accepted_at = Some(at);
                }
            }
            CoreEvent::InteractionDeclined { key, .. } | CoreEvent::OfferMissed { key, .. }
                if self
                    .interactions
                    .get(key)
                    .is_some_and(|i| i.consult.is_some()) =>
            {
                // A consultation nobody takes is over; it never waits in a queue.
                self.release(*key);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Done;
                    i.ended_at = Some(at);
                }
            }
            CoreEvent::InteractionDeclined { key, agent }
            | CoreEvent::OfferMissed { key, agent } => {
                let how = match stamped.event {
                    CoreEvent::InteractionDeclined { .. } => PassedHow::Declined,
                    _ => PassedHow::Missed,
                };
                self.set_owner(*key, None, at);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Queued;
                    i.passed_over.insert(agent.clone(), PassedOver { at, how });
                }
                self.requeue(*key);
                self.reoffer_timer(*key, at);
            }
            CoreEvent::InteractionRejected { key, reason, .. } => {
                self.dequeue(*key);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Rejected {
                        reason: reason.clone(),
                    };
                }
            }
            CoreEvent::InteractionWithdrawn { key, reason } => {
                self.dequeue(*key);
                self.set_owner(*key, None, at);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Rejected {
                        reason: reason.clone(),
                    };
                }
            }
            CoreEvent::InteractionForwarded { key, .. } => {
                self.dequeue(*key);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Forwarded;
                }
            }
            // The call stays as it is until the channel reports how the transfer went.
            CoreEvent::TransferOutRequested { .. } => {}
            CoreEvent::HoldRequested { key, hold, .. } => {
                if let Some(i) = self.interactions.get_mut(key) {
                    i.pending = Some(if *hold {
                        ChannelRequest::Hold
                    } else {
                        ChannelRequest::Resume
                    });
                }
            }
            CoreEvent::HoldRefused { key, .. } => {
                if let Some(i) = self.interactions.get_mut(key) {
                    i.pending = None;
                }
            }
            CoreEvent::InteractionHeld { key } | CoreEvent::InteractionResumed { key } => {
                let held = matches!(stamped.event, CoreEvent::InteractionHeld { .. });
                if let Some(i) = self.interactions.get_mut(key) {
                    i.held = held;
                    i.pending = None;
                }
            }
            CoreEvent::InteractionTransferred { key, from, to } => {
                self.stop_handling(*key, at);
                // The conference was the owner's: colleagues leave with it (their places free).
                self.clear_conference(*key);
                self.set_owner(*key, None, at);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Queued;
                    i.route = to.clone();
                    i.held = false;
                    i.pending = None;
                    // Not offered straight back to the agent who transferred it.
                    let how = PassedHow::TransferredAway;
                    i.passed_over = BTreeMap::from([(from.clone(), PassedOver { at, how })]);
                }
                self.requeue(*key);
                self.reoffer_timer(*key, at);
            }
            CoreEvent::InteractionEnded { key, .. } => {
                self.stop_handling(*key, at);
                self.clear_conference(*key);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Ended;
                    i.ended_at = Some(at);
                    i.held = false;
                    i.pending = None;
                }
            }
            CoreEvent::InteractionAbandoned { key } => {
                self.dequeue(*key);
                self.clear_conference(*key);
                self.set_owner(*key, None, at);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Abandoned;
                    i.ended_at = Some(at);
                }
            }
            CoreEvent::InteractionDone { key, wrap_up, .. } => {
                self.stop_handling(*key, at);
                self.clear_conference(*key);
                self.release(*key);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Done;
                    i.wrap_up = wrap_up.clone();
                    i.ended_at.get_or_insert(at);
                }
            }
            CoreEvent::InteractionParked { key, workbin } => {
                self.stop_handling(*key, at);
                self.release(*key);
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::InWorkbin {
                        workbin: workbin.clone(),
                    };
                }
            }
            CoreEvent::ConsultationStarted {
                key,
                about,
                by,
                colleague,
                deadline,
            } => {
                let Some(a) = self.interactions.get(about).cloned() else {
                    return;
                };
                let id = InteractionId::new(format!("consult:{key}"));
                let c = Interaction {
                    key: *key,
                    plugin: a.plugin.clone(),
                    plugin_interaction: id.clone(),
                    external_id: format!("consult:{key}"),
                    channel: a.channel.clone(),
                    media: a.media,
                    route: Route::agent(colleague.clone()),
                    contact: a.contact.clone(),
                    subject: a.subject.clone(),
                    priority: a.priority,
                    queue_seq: *key,
                    state: InteractionState::Offered {
                        agent: colleague.clone(),
                        deadline: *deadline,
                    },
                    owner: Some(colleague.clone()),
                    passed_over: BTreeMap::new(),
                    pending: None,
                    held: false,
                    arrived_at: at,
                    accepted_at: None,
                    ended_at: None,
                    wrap_up: None,
                    consult: Some(Consultation {
                        about: *about,
                        by: by.clone(),
                    }),
                    conference: BTreeSet::new(),
                    linked: BTreeSet::new(),
                };
                self.next_key = self.next_key.max(key + 1);
                self.by_plugin_id.insert(&a.plugin, id.0, *key);
                self.adjust_load(colleague, &a.channel, 1);
                self.interactions.insert(*key, c);
            }
            CoreEvent::ConferenceStarted {
                about,
                consultation,
                colleague,
            } => {
                self.stop_handling(*consultation, at);
                self.release(*consultation);
                if let Some(c) = self.interactions.get_mut(consultation) {
                    c.state = InteractionState::Done;
                    c.ended_at = Some(at);
                }
                let channel = self
                    .interactions
                    .get(about)
                    .map(|i| i.channel.clone())
                    .unwrap_or_default();
                // Already in the conference (consulted again): no second place.
                let joined = self
                    .interactions
                    .get_mut(about)
                    .is_some_and(|i| i.conference.insert(colleague.clone()));
                if joined {
                    self.adjust_load(colleague, &channel, 1);
                }
            }
            CoreEvent::TransferredAfterConsultation {
                about,
                consultation,
                to,
                ..
            } => {
                self.stop_handling(*consultation, at);
                self.release(*consultation);
                if let Some(c) = self.interactions.get_mut(consultation) {
                    c.state = InteractionState::Done;
                    c.ended_at = Some(at);
                }
                self.stop_handling(*about, at);
                let was_conferenced = self
                    .interactions
                    .get_mut(about)
                    .is_some_and(|i| i.conference.remove(to));
                let channel = self
                    .interactions
                    .get(about)
                    .map(|i| i.channel.clone())
                    .unwrap_or_default();
                if was_conferenced {
                    self.adjust_load(to, &channel, -1);
                }
                self.set_owner(*about, Some(to), at);
                if let Some(i) = self.interactions.get_mut(about) {
                    i.state = InteractionState::Active;
                    i.accepted_at = Some(at);
                }
            }
            CoreEvent::ConsultationEnded { consultation } => {
                self.stop_handling(*consultation, at);
                self.release(*consultation);
                if let Some(c) = self.interactions.get_mut(consultation) {
                    c.state = InteractionState::Done;
                    c.ended_at = Some(at);
                }
            }
            CoreEvent::ConferenceLeft { about, agent } => {
                let channel = self
                    .interactions
                    .get(about)
                    .map(|i| i.channel.clone())
                    .unwrap_or_default();
                if self
                    .interactions
                    .get_mut(about)
                    .is_some_and(|i| i.conference.remove(agent))
                {
                    self.adjust_load(agent, &channel, -1);
                }
            }
            CoreEvent::OutboundStarted {
                key,
                plugin,
                channel,
                media,
                agent,
                contact,
                related,
                ..
            } => {
                let id = InteractionId::new(format!("out:{key}"));
                let i = Interaction {
                    key: *key,
                    plugin: plugin.clone(),
                    plugin_interaction: id.clone(),
                    external_id: format!("out:{key}"),
                    channel: channel.clone(),
                    media: *media,
                    route: Route::agent(agent.clone()),
                    contact: contact.clone(),
                    subject: None,
                    priority: 0,
                    queue_seq: *key,
                    state: InteractionState::Active,
                    owner: Some(agent.clone()),
                    passed_over: BTreeMap::new(),
                    pending: None,
                    held: false,
                    arrived_at: at,
                    accepted_at: Some(at),
                    ended_at: None,
                    wrap_up: None,
                    consult: None,
                    conference: BTreeSet::new(),
                    linked: related.iter().copied().collect(),
                };
                self.next_key = self.next_key.max(key + 1);
                self.by_plugin_id.insert(plugin, id.0, *key);
                self.adjust_load(agent, channel, 1);
                self.interactions.insert(*key, i);
                if let Some(related) = related
                    && let Some(r) = self.interactions.get_mut(related)
                {
                    r.linked.insert(*key);
                }
            }
            CoreEvent::PluginIdLinked { key, interaction } => {
                if let Some(i) = self.interactions.get_mut(key) {
                    let old = std::mem::replace(&mut i.plugin_interaction, interaction.clone());
                    let plugin = i.plugin.clone();
                    self.by_plugin_id.remove(&plugin, old.as_str());
                    self.by_plugin_id
                        .insert(&plugin, interaction.0.clone(), *key);
                }
            }
            CoreEvent::InteractionUnparked { key } => {
                if let Some((owner, channel)) = self
                    .interactions
                    .get(key)
                    .and_then(|i| Some((i.owner.clone()?, i.channel.clone())))
                {
                    if let Some(ch) = self
                        .agents
                        .get_mut(&owner)
                        .and_then(|a| a.channels.get_mut(&channel))
                    {
                        ch.load += 1;
                    }
                }
                if let Some(i) = self.interactions.get_mut(key) {
                    i.state = InteractionState::Active;
                    i.accepted_at = Some(at);
                }
            }
        }
    }

    /// Moves capacity: the old owner's load drops, the new owner's rises (and its idle key moves,
    /// so the next offer goes to someone who has waited longer).
    fn set_owner(&mut self, key: InteractionKey, owner: Option<&String>, at: Millis) {
        self.release(key);
        let Some(i) = self.interactions.get_mut(&key) else {
            return;
        };
        i.owner = owner.cloned();
        if let Some(owner) = owner
            && let Some(ch) = self
                .agents
                .get_mut(owner)
                .and_then(|a| a.channels.get_mut(&i.channel))
        {
            ch.load += 1;
            ch.idle_key = if ch.idle_key.0 == at {
                (at, ch.idle_key.1 + 1)
            } else {
                (at, 1)
            };
        }
    }

    /// Frees the capacity an interaction occupies (keeping its owner for the record). Every caller
    /// sets the interaction's new state right after.
    fn release(&mut self, key: InteractionKey) {
        let Some(i) = self.interactions.get(&key) else {
            return;
        };
        if !i.state.occupies() {
            return;
        }
        if let Some(owner) = &i.owner
            && let Some(ch) = self
                .agents
                .get_mut(owner)
                .and_then(|a| a.channels.get_mut(&i.channel))
        {
            ch.load = ch.load.saturating_sub(1);
        }
    }

    fn stop_handling(&mut self, key: InteractionKey, at: Millis) {
        if let Some(i) = self.interactions.get_mut(&key)
            && let Some(since) = i.accepted_at.take()
        {
            self.stats.add_handling(key, at.saturating_sub(since));
        }
    }

    fn enqueue(&mut self, i: &Interaction) {
        let q = self.queues.entry(i.channel.clone()).or_default();
        let entry = (Reverse(i.priority), i.queue_seq, i.key);
        if i.route.to == Route::QUEUE {
            q.pool.insert(entry);
        } else {
            q.targeted.insert(entry);
        }
        self.dirty.insert(i.channel.clone());
    }

    fn requeue(&mut self, key: InteractionKey) {
        if let Some(i) = self.interactions.get(&key).cloned() {
            self.enqueue(&i);
        }
    }

    fn dequeue(&mut self, key: InteractionKey) {
        if let Some(i) = self.interactions.get(&key)
            && let Some(q) = self.queues.get_mut(&i.channel)
        {
            let entry = (Reverse(i.priority), i.queue_seq, key);
            q.pool.remove(&entry);
            q.targeted.remove(&entry);
        }
    }

    /// Recomputes every derived fact from scratch and compares (for tests): loads, queues.
    pub fn check_invariants(&self) -> Result<(), String> {
        for agent in self.agents.values() {
            for (channel, ch) in &agent.channels {
                let owned = self
                    .interactions
                    .values()
                    .filter(|i| {
                        i.owner.as_deref() == Some(&agent.id)
                            && &i.channel == channel
                            && i.state.occupies()
                    })
                    .count();
                let conferenced = self
                    .interactions
                    .values()
                    .filter(|i| &i.channel == channel && i.conference.contains(&agent.id))
                    .count();
                let load = (owned + conferenced) as u32;
                if load != ch.load {
                    return Err(format!(
                        "{}/{channel}: load {} but {load} occupying",
                        agent.id, ch.load
                    ));
                }
                if load > self.policy.capacity(channel) {
                    return Err(format!("{}/{channel}: load {load} over capacity", agent.id));
                }
            }
        }
        for i in self.interactions.values() {
            let entry = (Reverse(i.priority), i.queue_seq, i.key);
            let queued = self
                .queues
                .get(&i.channel)
                .is_some_and(|q| q.pool.contains(&entry) || q.targeted.contains(&entry));
            if queued != (i.state == InteractionState::Queued) {
                return Err(format!(
                    "interaction {} is {:?} but queued={queued}",
                    i.key, i.state
                ));
            }
        }
        let mut timers = BTreeSet::new();
        let mut open: HashMap<String, BTreeSet<InteractionKey>> = HashMap::default();
        for i in self.interactions.values() {
            if let InteractionState::Offered { deadline, .. } = i.state {
                timers.insert((deadline, Timer::Offer(i.key)));
            }
            if let Some(owner) = &i.owner
                && !i.state.is_closed()
                && i.state != InteractionState::Queued
            {
                open.entry(owner.clone()).or_default().insert(i.key);
            }
        }
        for agent in self.agents.values() {
            for (channel, ch) in &agent.channels {
                if let ChannelState::AfterCallWork {
                    ends_at: Some(end), ..
                } = ch.state
                {
                    timers.insert((end, Timer::Acw(agent.id.clone(), channel.clone())));
                }
                let want = self.eligible(agent, channel).then_some(ch.idle_key);
                let have = ch.listed_as;
                let listed = have.is_some_and(|k| {
                    self.available
                        .get(channel)
                        .is_some_and(|set| set.contains(&(k, agent.id.clone())))
                });
                if want != have || have.is_some() != listed {
                    return Err(format!(
                        "{}/{channel}: available index {have:?}, eligibility {want:?}",
                        agent.id
                    ));
                }
            }
        }
        let indexed: BTreeSet<(Millis, Timer)> = self
            .timers
            .iter()
            .filter(|(_, t)| !matches!(t, Timer::Reoffer(_)))
            .cloned()
            .collect();
        if timers != indexed {
            return Err(format!(
                "timers index {:?} but states say {timers:?}",
                self.timers
            ));
        }
        let mut involved: HashMap<String, BTreeSet<InteractionKey>> = HashMap::default();
        for i in self.interactions.values() {
            if !i.state.is_closed() && i.state != InteractionState::Queued {
                for agent in Self::involved_in(i) {
                    involved.entry(agent.clone()).or_default().insert(i.key);
                }
            }
        }
        let mut indexed_involved = self.involved.clone();
        indexed_involved.retain(|_, keys| !keys.is_empty());
        if involved != indexed_involved {
            return Err(format!(
                "involved index {indexed_involved:?} but interactions say {involved:?}"
            ));
        }
        open.retain(|_, keys| !keys.is_empty());
        let mut indexed = self.open_by_owner.clone();
        indexed.retain(|_, keys| !keys.is_empty());
        if open != indexed {
            return Err(format!(
                "open-by-owner index {indexed:?} but interactions say {open:?}"
            ));
        }
        Ok(())
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
