//! Routing: which waiting interaction goes to which available agent, longest-idle first, queued
//! in priority and arrival order; offers and their answer timeouts. Holds only the choice; the
//! indexes it reads (available agents, queues) are kept by `apply`.

use super::*;

impl Core {
    /// Whether an agent may get a new offer on a channel now.
    pub fn eligible(&self, agent: &Agent, channel: &str) -> bool {
        let Some(ch) = agent.channels.get(channel) else {
            return false;
        };
        agent.logged_in
            && !agent.dnd
            && !self.is_withdrawn(&agent.id, channel)
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
    pub(super) fn route(&mut self, now: Millis, out: &mut Vec<Stamped>) {
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
        self.refuse_unplaced(now, out);
    }

    /// A never-saved channel (internal IM) keeps nothing for later: what routing could not place
    /// now is rejected at once (`busy`), so the sender hears it at once and nothing waits.
    fn refuse_unplaced(&mut self, now: Millis, out: &mut Vec<Stamped>) {
        if self.policy.never_saved.is_empty() {
            return;
        }
        let waiting: Vec<(String, InteractionKey)> = self
            .policy
            .never_saved
            .iter()
            .filter_map(|channel| self.queues.get(channel).map(|q| (channel, q)))
            .flat_map(|(channel, q)| {
                q.targeted
                    .iter()
                    .chain(q.pool.iter())
                    .map(move |e| (channel.clone(), e.2))
            })
            .collect();
        for (channel, key) in waiting {
            let reason = match self.interactions.get(&key) {
                Some(i) if i.route.to != Route::QUEUE => {
                    let target = match i.route.to.as_str() {
                        Route::EXTENSION => self
                            .agent_by_extension(&i.route.name)
                            .map(|a| a.id.clone())
                            .unwrap_or_else(|| i.route.name.clone()),
                        _ => i.route.name.clone(),
                    };
                    let dnd = self.agents.get(&target).is_some_and(|a| a.dnd);
                    let state = match self.channel_of(&target, &channel) {
                        Err(_) => format!("does not have `{channel}`"),
                        Ok(_) if dnd => "do not disturb".to_string(),
                        Ok(ch) => match ch.state.label() {
                            None => "logged off".to_string(),
                            Some(_) if ch.state == ChannelState::Ready => "no room".to_string(),
                            Some(label) => label,
                        },
                    };
                    format!("`{target}` cannot take `{channel}` now ({state})")
                }
                _ => format!("nobody can take `{channel}` now"),
            };
            let event = CoreEvent::InteractionRejected {
                key,
                reason,
                code: RejectCode::Busy,
            };
            self.emit(now, event, out);
        }
    }

    /// How an agent stands for a queued interaction (see `reoffer`).
    pub(super) fn standing(&self, i: &Interaction, agent: &str, now: Millis) -> Standing {
        let ch = self
            .agents
            .get(agent)
            .and_then(|a| a.channels.get(&i.channel));
        standing(i, agent, ch, self.policy.reoffer_after_ms(&i.channel), now)
    }

    pub(super) fn is_available(&self, agent: &str, channel: &str) -> bool {
        self.channel_of(agent, channel)
            .is_ok_and(|ch| ch.listed_as.is_some())
    }

    pub(super) fn offer(
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
    pub(super) fn change_state(
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
}
