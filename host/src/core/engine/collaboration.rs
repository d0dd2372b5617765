//! Decisions of the collaboration family: consultation, conference, transfer after consultation.
//! Each checks the rule and emits events; none changes state (that is `apply`'s).

use super::*;

impl Core {
    /// Consults a colleague privately about an active interaction.
    pub(super) fn consult(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        colleague: String,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Brings the consulted colleague in (conference) or hands them the interaction (transfer).
    pub(super) fn conclude_consultation(
        &mut self,
        now: Millis,
        agent_id: &str,
        consultation: InteractionKey,
        conference: bool,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Ends a consultation (either side).
    pub(super) fn end_consultation(
        &mut self,
        now: Millis,
        agent_id: &str,
        consultation: InteractionKey,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Leaves a conference one was brought into.
    pub(super) fn leave_conference(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }
}
