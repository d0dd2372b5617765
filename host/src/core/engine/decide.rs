//! Agents' commands, decided: each is checked against the agent and interaction state machines
//! and becomes journal events, or is refused with the rule it breaks (nothing changes then).
//! Holds the decisions and their helpers (after-work, ACW on Mark Done); never changes state
//! itself: every change goes through `apply`.
//!
//! Over 600 lines: `decide` is one exhaustive match over every command. Splitting it by rule
//! family (channel state, interaction lifecycle, collaboration) is the next step of issue 20.

use super::*;

impl Core {
    pub(super) fn decide(
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
                let media = crate::core::model::default_media(&channel);
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

    pub(super) fn channel_of(
        &self,
        agent: &str,
        channel: &str,
    ) -> Result<&AgentChannel, CoreError> {
        self.agents
            .get(agent)
            .and_then(|a| a.channels.get(channel))
            .ok_or_else(|| CoreError::ChannelNotAssigned {
                agent: agent.into(),
                channel: channel.into(),
            })
    }

    pub(super) fn owned(
        &self,
        key: InteractionKey,
        agent: &str,
    ) -> Result<&Interaction, CoreError> {
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
    pub(super) fn open_on<'a>(
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
    pub(super) fn has_active_work(&self, agent: &str, channel: &str) -> bool {
        self.open_on(agent, channel).any(|i| {
            matches!(
                i.state,
                InteractionState::Active | InteractionState::Offered { .. }
            )
        })
    }

    pub(super) fn parked(&self, agent: &str, channel: &str) -> u32 {
        self.open_on(agent, channel)
            .filter(|i| matches!(i.state, InteractionState::InWorkbin { .. }))
            .count() as u32
    }

    /// After an agent's active work on a channel stops (end, transfer, park): when none is left,
    /// the channel enters ACW (per policy), and a Pending Not Ready takes effect.
    pub(super) fn after_work(
        &mut self,
        now: Millis,
        agent: &str,
        channel: &str,
        out: &mut Vec<Stamped>,
    ) {
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
    pub(super) fn leave_acw_on_done(
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
}
