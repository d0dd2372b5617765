//! The one place the core's state changes: `apply` takes a journal event (new or replayed) and
//! keeps every index in step with it (owners, involvement, availability, timers, queues). Holds
//! no rule: what to emit is decided elsewhere; this only records what was decided.
//!
//! Over 600 lines: `apply_change` is one exhaustive match over every event kind, kept whole so
//! that every change of state can be read in one place. Giving the data and these indexes a
//! `State` type of their own, with `apply` as its only writer, is the next step of issue 20.

use super::*;

impl Core {
    pub(super) fn emit(&mut self, at: Millis, event: CoreEvent, out: &mut Vec<Stamped>) {
        let stamped = Stamped {
            seq: self.seq + 1,
            at,
            event,
        };
        self.apply(&stamped);
        out.push(stamped);
    }

    /// Applies one event and keeps every index in step with it.
    pub(super) fn apply(&mut self, stamped: &Stamped) {
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
        self.drop_retired();
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
    pub(super) fn note_concerned(&mut self, keys: &[InteractionKey], named: &[String]) {
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
    pub(super) fn add_people_of(&self, key: InteractionKey, people: &mut Vec<String>) {
        if let Some(i) = self.interactions.get(&key) {
            for agent in i.owner.iter().chain(i.conference.iter()) {
                if !people.contains(agent) {
                    people.push(agent.clone());
                }
            }
        }
    }

    pub(super) fn adjust_load(&mut self, agent: &str, channel: &str, delta: i32) {
        if let Some(ch) = self
            .agents
            .get_mut(agent)
            .and_then(|a| a.channels.get_mut(channel))
        {
            ch.load = ch.load.saturating_add_signed(delta);
        }
    }

    /// Conferenced colleagues leave (their places are freed): the interaction ended or closed.
    pub(super) fn clear_conference(&mut self, key: InteractionKey) {
        let Some(i) = self.interactions.get_mut(&key) else {
            return;
        };
        let (people, channel) = (std::mem::take(&mut i.conference), i.channel.clone());
        for agent in people {
            self.adjust_load(&agent, &channel, -1);
        }
    }

    /// Everyone taking part in an interaction: owner, conferenced colleagues, consulting agent.
    pub(super) fn involved_in(i: &Interaction) -> impl Iterator<Item = &String> {
        i.owner
            .iter()
            .chain(i.conference.iter())
            .chain(i.consult.iter().map(|c| &c.by))
    }

    pub(super) fn unindex_interaction(&mut self, key: InteractionKey) {
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

    pub(super) fn index_interaction(&mut self, key: InteractionKey) {
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
    pub(super) fn reoffer_timer(&mut self, key: InteractionKey, at: Millis) {
        if let Some(i) = self.interactions.get(&key) {
            let due = at.saturating_add(self.policy.reoffer_after_ms(&i.channel));
            self.timers.insert((due, Timer::Reoffer(i.channel.clone())));
        }
    }

    pub(super) fn index_acw(&mut self, agent: &str, channel: &str, insert: bool) {
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
    pub(super) fn refresh_availability(&mut self, agent_id: &str) {
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

    pub(super) fn apply_change(&mut self, stamped: &Stamped) {
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
                related,
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
                    linked: related.iter().copied().collect(),
                };
                self.next_key = self.next_key.max(key + 1);
                self.by_external
                    .insert(plugin, external_id.clone(), (*key, at));
                self.by_plugin_id
                    .insert(plugin, interaction.0.clone(), *key);
                if let Some(related) = related
                    && let Some(r) = self.interactions.get_mut(related)
                {
                    r.linked.insert(*key);
                }
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
            CoreEvent::RosterChanged { agents } => self.apply_roster(at, agents),
            CoreEvent::InteractionLinked {
                key,
                owner,
                related,
            } => {
                if let Some(i) = self.interactions.get_mut(key) {
                    i.route = Route::agent(owner.clone());
                    i.linked.insert(*related);
                    self.dirty.insert(i.channel.clone());
                }
                if let Some(r) = self.interactions.get_mut(related) {
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
    pub(super) fn set_owner(&mut self, key: InteractionKey, owner: Option<&String>, at: Millis) {
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
    pub(super) fn release(&mut self, key: InteractionKey) {
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

    pub(super) fn stop_handling(&mut self, key: InteractionKey, at: Millis) {
        if let Some(i) = self.interactions.get_mut(&key)
            && let Some(since) = i.accepted_at.take()
        {
            self.stats.add_handling(key, at.saturating_sub(since));
        }
    }

    pub(super) fn enqueue(&mut self, i: &Interaction) {
        let q = self.queues.entry(i.channel.clone()).or_default();
        let entry = (Reverse(i.priority), i.queue_seq, i.key);
        if i.route.to == Route::QUEUE {
            q.pool.insert(entry);
        } else {
            q.targeted.insert(entry);
        }
        self.dirty.insert(i.channel.clone());
    }

    pub(super) fn requeue(&mut self, key: InteractionKey) {
        if let Some(i) = self.interactions.get(&key).cloned() {
            self.enqueue(&i);
        }
    }

    pub(super) fn dequeue(&mut self, key: InteractionKey) {
        if let Some(i) = self.interactions.get(&key)
            && let Some(q) = self.queues.get_mut(&i.channel)
        {
            let entry = (Reverse(i.priority), i.queue_seq, key);
            q.pool.remove(&entry);
            q.targeted.remove(&entry);
        }
    }
}
