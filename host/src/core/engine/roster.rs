//! The team changing while the core runs (issue 15's reload): the admin adds or removes agents
//! and assigns or withdraws channels. The roster is journaled (`RosterChanged`), so a replay sees
//! the team as it was at each moment; the other rules (capacities, reasons, wrap-up codes, ACW)
//! only shape decisions and take effect from the next one.
//!
//! Work in hand is never taken away: a withdrawn channel stays with its agent, without new
//! offers, until it is idle and logged off (the core logs it off once its work is done); an agent
//! taken out of the team keeps their open interactions until they are done, then is logged out
//! and forgotten, and cannot log in again.

use super::*;
use crate::core::events::RosterAgent;
use crate::core::policy::AgentSpec;

impl From<&AgentSpec> for RosterAgent {
    fn from(spec: &AgentSpec) -> Self {
        RosterAgent {
            id: spec.id.clone(),
            name: spec.name.clone(),
            extension: spec.extension.clone(),
            channels: spec.channels.clone(),
            auto_answer: spec.auto_answer.clone(),
        }
    }
}

impl From<&RosterAgent> for AgentSpec {
    fn from(agent: &RosterAgent) -> Self {
        AgentSpec {
            id: agent.id.clone(),
            name: agent.name.clone(),
            extension: agent.extension.clone(),
            channels: agent.channels.clone(),
            auto_answer: agent.auto_answer.clone(),
        }
    }
}

/// A logged-out agent with every channel logged off, as configured by `spec`.
pub(super) fn new_agent(spec: &AgentSpec, now: Millis) -> Agent {
    Agent {
        id: spec.id.clone(),
        name: spec.name.clone(),
        extension: spec.extension.clone(),
        channels: spec
            .channels
            .iter()
            .map(|c| (c.clone(), logged_off(now)))
            .collect(),
        logged_in: false,
        dnd: false,
        forward_to: None,
        auto_answer: spec.auto_answer.iter().cloned().collect(),
    }
}

fn logged_off(now: Millis) -> AgentChannel {
    AgentChannel {
        state: ChannelState::LoggedOff,
        since: now,
        load: 0,
        idle_key: (now, 0),
        listed_as: None,
    }
}

/// What a reload changed, for the admin who asked for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterChange {
    /// Agents added to the team.
    pub added: Vec<String>,
    /// Agents taken out of the team.
    pub removed: Vec<String>,
    /// (agent, channel) newly assigned.
    pub assigned: Vec<(String, String)>,
    /// (agent, channel) withdrawn (finished first where work is in hand).
    pub withdrawn: Vec<(String, String)>,
}

impl RosterChange {
    /// Whether the team is the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.assigned.is_empty()
            && self.withdrawn.is_empty()
    }
}

impl Core {
    /// Takes new rules: the team (journaled, so the returned events must be journaled like any
    /// others) and the rest (capacities, reasons, wrap-up codes, ACW, cross-channel rules), which
    /// apply from the next decision. What the running plugins declared stays as it is (what each
    /// can do, which carries outbound interactions, which channels are never saved): the
    /// plugins say that, not the file. Channels idle after the change are logged off at once;
    /// waiting work is routed under the new rules.
    pub fn reconfigure(&mut self, now: Millis, policy: Policy) -> (RosterChange, Vec<Stamped>) {
        let roster: Vec<RosterAgent> = policy.agents.iter().map(RosterAgent::from).collect();
        let change = self.roster_change(&policy.agents);
        let current = &self.policy;
        self.policy = Policy {
            agents: current.agents.clone(),
            capabilities: current.capabilities.clone(),
            channel_plugins: current.channel_plugins.clone(),
            never_saved: current.never_saved.clone(),
            ..policy
        };
        let mut out = Vec::new();
        if !change.is_empty() || !self.roster_recorded {
            self.emit(now, CoreEvent::RosterChanged { agents: roster }, &mut out);
        }
        // Capacities and cross-channel rules may have changed: list again who may get offers.
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in &ids {
            self.refresh_availability(id);
            self.concerned.insert(id.clone());
        }
        self.dirty.extend(self.served.iter().cloned());
        self.retire(now, &mut out);
        self.route(now, &mut out);
        (change, out)
    }

    /// Whether the journal has recorded the team (a journal written before rosters were
    /// journaled has not: its replay takes the team from the configuration).
    pub fn roster_recorded(&self) -> bool {
        self.roster_recorded
    }

    fn roster_change(&self, specs: &[AgentSpec]) -> RosterChange {
        let mut change = RosterChange::default();
        let assigned = |id: &str| specs.iter().find(|s| s.id == id);
        for spec in specs {
            let has = self
                .agents
                .get(&spec.id)
                .filter(|_| !self.leaving.contains(&spec.id));
            match has {
                None => change.added.push(spec.id.clone()),
                Some(agent) => {
                    for c in &spec.channels {
                        if !agent.channels.contains_key(c)
                            || self.withdrawn.contains(&(spec.id.clone(), c.clone()))
                        {
                            change.assigned.push((spec.id.clone(), c.clone()));
                        }
                    }
                }
            }
        }
        for id in &self.agent_order {
            if self.leaving.contains(id) {
                continue;
            }
            let Some(agent) = self.agents.get(id) else {
                continue;
            };
            match assigned(id) {
                None => change.removed.push(id.clone()),
                Some(spec) => {
                    for c in agent.channels.keys() {
                        if !spec.channels.contains(c)
                            && !self.withdrawn.contains(&(id.clone(), c.clone()))
                        {
                            change.withdrawn.push((id.clone(), c.clone()));
                        }
                    }
                }
            }
        }
        change
    }

    /// Records a new team (`RosterChanged`, new or replayed).
    pub(super) fn apply_roster(&mut self, at: Millis, roster: &[RosterAgent]) {
        let specs: Vec<AgentSpec> = roster.iter().map(AgentSpec::from).collect();
        for spec in &specs {
            self.leaving.remove(&spec.id);
            let agent = self
                .agents
                .entry(spec.id.clone())
                .or_insert_with(|| new_agent(spec, at));
            agent.name = spec.name.clone();
            agent.extension = spec.extension.clone();
            agent.auto_answer = spec.auto_answer.iter().cloned().collect();
            for c in &spec.channels {
                agent
                    .channels
                    .entry(c.clone())
                    .or_insert_with(|| logged_off(at));
                self.withdrawn.remove(&(spec.id.clone(), c.clone()));
            }
        }
        for (id, agent) in &self.agents {
            let spec = specs.iter().find(|s| &s.id == id);
            if spec.is_none() {
                self.leaving.insert(id.clone());
            }
            for c in agent.channels.keys() {
                if !spec.is_some_and(|s| s.channels.contains(c)) {
                    self.withdrawn.insert((id.clone(), c.clone()));
                }
            }
        }
        self.policy.agents = specs;
        self.roster_recorded = true;
        self.reconfigured = true;
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in ids {
            self.refresh_availability(&id);
            self.concerned.insert(id);
        }
        self.drop_retired();
    }

    /// Whether `channel` was withdrawn from `agent` (finishing the work in hand).
    pub(super) fn is_withdrawn(&self, agent: &str, channel: &str) -> bool {
        !self.withdrawn.is_empty()
            && self
                .withdrawn
                .contains(&(agent.to_string(), channel.into()))
    }

    /// Whether `agent` was taken out of the team (finishing their work).
    pub(super) fn is_leaving(&self, agent: &str) -> bool {
        !self.leaving.is_empty() && self.leaving.contains(agent)
    }

    /// The withdrawn (agent, channel) pairs whose channel (`None`: already gone) passes `test`.
    fn withdrawn_where(
        &self,
        test: impl Fn(Option<&AgentChannel>) -> bool,
    ) -> Vec<(String, String)> {
        self.withdrawn
            .iter()
            .filter(|(agent, channel)| {
                test(self.agents.get(agent).and_then(|a| a.channels.get(channel)))
            })
            .cloned()
            .collect()
    }

    /// The agents taken out of the team who have nothing left (no channel, no open work) and
    /// pass `test` (`None`: already forgotten).
    fn leaving_where(&self, test: impl Fn(Option<&Agent>) -> bool) -> Vec<String> {
        let idle = |id: &String| {
            self.agents.get(id).is_none_or(|a| a.channels.is_empty())
                && self.open_by_owner.get(id).is_none_or(|o| o.is_empty())
                && self.involved.get(id).is_none_or(|o| o.is_empty())
        };
        self.leaving
            .iter()
            .filter(|id| idle(id) && test(self.agents.get(*id)))
            .cloned()
            .collect()
    }

    /// Forgets withdrawn channels that are logged off with nothing in hand, and agents taken out
    /// of the team who are logged out with no channel and no open work. Part of `apply`.
    pub(super) fn drop_retired(&mut self) {
        if self.withdrawn.is_empty() && self.leaving.is_empty() {
            return;
        }
        let idle = self.withdrawn_where(|ch| {
            ch.is_none_or(|ch| ch.state == ChannelState::LoggedOff && ch.load == 0)
        });
        for (agent, channel) in idle {
            self.withdrawn.remove(&(agent.clone(), channel.clone()));
            if let Some(ch) = self
                .agents
                .get_mut(&agent)
                .and_then(|a| a.channels.remove(&channel))
                && let Some(listed) = ch.listed_as
                && let Some(available) = self.available.get_mut(&channel)
            {
                available.remove(&(listed, agent.clone()));
            }
            self.concerned.insert(agent);
        }
        let gone = self.leaving_where(|a| a.is_none_or(|a| !a.logged_in));
        for id in gone {
            self.leaving.remove(&id);
            self.agents.remove(&id);
            self.open_by_owner.remove(&id);
            self.involved.remove(&id);
            self.concerned.insert(id);
        }
        self.agent_order = self.agents.keys().cloned().collect();
        self.agent_order.sort();
        self.served = self
            .agents
            .values()
            .flat_map(|a| a.channels.keys().cloned())
            .collect();
    }

    /// Logs off withdrawn channels whose work is done (after-call work runs out first), and logs
    /// out agents taken out of the team once they have nothing left. A decision: emits events.
    pub(super) fn retire(&mut self, now: Millis, out: &mut Vec<Stamped>) {
        if self.withdrawn.is_empty() && self.leaving.is_empty() {
            return;
        }
        let idle = self.withdrawn_where(|ch| {
            ch.is_some_and(|ch| {
                ch.load == 0
                    && !matches!(
                        ch.state,
                        ChannelState::LoggedOff | ChannelState::AfterCallWork { .. }
                    )
            })
        });
        for (agent, channel) in idle {
            self.change_state(now, agent, channel, ChannelState::LoggedOff, out);
        }
        let done = self.leaving_where(|a| a.is_some_and(|a| a.logged_in));
        for agent in done {
            self.emit(now, CoreEvent::AgentLoggedOut { agent }, out);
        }
    }
}
