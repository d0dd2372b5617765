//! The invariant check: every index `apply` keeps is recomputed from the data and compared (loads
//! and capacity, queues, timers, availability, involvement, owners). Used by the tests and the
//! property tests after every step; never on the production path (it scans everything).

use super::*;

impl Core {
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
                if !self.reconfigured && load > self.policy.capacity(channel) {
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
