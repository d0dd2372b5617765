//! Decisions of the interaction-lifecycle family: accept, decline, hold and resume, end, blind
//! transfer, Mark Done, workbins, outbound interactions. Each checks the rule and emits events;
//! none changes state (that is `apply`'s).

use super::*;

impl Core {
    /// Accepts an offer.
    pub(super) fn accept(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
        let i = self.owned(key, agent_id)?;
        if !matches!(i.state, InteractionState::Offered { .. }) {
            return Err(wrong_state(
                i,
                "only an offered interaction can be accepted",
            ));
        }
        self.emit(now, CoreEvent::InteractionAccepted { key, agent: a }, out);
        Ok(())
    }

    /// Declines an offer.
    pub(super) fn decline(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
        let i = self.owned(key, agent_id)?;
        if !matches!(i.state, InteractionState::Offered { .. }) {
            return Err(wrong_state(
                i,
                "only an offered interaction can be declined",
            ));
        }
        self.emit(now, CoreEvent::InteractionDeclined { key, agent: a }, out);
        Ok(())
    }

    /// Asks for hold (or resume) of a live interaction.
    pub(super) fn hold_or_resume(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        hold: bool,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Ends an interaction.
    pub(super) fn end(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
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
        Ok(())
    }

    /// Transfers blind: to a queue, an agent, an extension, or an outside address.
    pub(super) fn transfer(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        to: Route,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Marks an interaction done, with its wrap-up code, ending ACW when nothing else awaits it.
    pub(super) fn mark_done(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        wrap_up: Option<String>,
        next: Option<NextState>,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        let (channel, was_active) = (i.channel.clone(), i.state == InteractionState::Active);
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
        Ok(())
    }

    /// Puts an email or workitem in a workbin (frees capacity).
    pub(super) fn park(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        workbin: String,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
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
        Ok(())
    }

    /// Takes it back from the workbin.
    pub(super) fn unpark(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
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
        Ok(())
    }

    /// Starts an outbound interaction to an address, linked to the one it came from.
    pub(super) fn start_outbound(
        &mut self,
        now: Millis,
        agent_id: &str,
        channel: String,
        to: Address,
        from: Option<InteractionKey>,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        // A colleague (an IM about a chat) is not the customer: the new interaction's contact is
        // the colleague; otherwise it is the contact of what it was started from.
        let from_contact = match from {
            Some(key) => Some(
                &self
                    .interactions
                    .get(&key)
                    .ok_or(CoreError::UnknownInteraction { key })?
                    .contact,
            ),
            None => None,
        };
        let colleague = (to.kind == Address::AGENT)
            .then(|| self.agents.get(&to.value))
            .flatten();
        let mut contact = match (colleague, from_contact) {
            (Some(colleague), _) => plugin_api::Contact {
                display_name: Some(colleague.name.clone()),
                addresses: vec![],
            },
            (None, Some(contact)) => contact.clone(),
            (None, None) => plugin_api::Contact::default(),
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
        Ok(())
    }
}
