//! Agents' commands, decided: each is checked against the agent and interaction state machines
//! and becomes journal events, or is refused with the rule it breaks (nothing changes then).
//! Holds the dispatch to the rule families (`channel_state`, `lifecycle`, `collaboration`) and
//! the helpers they share; never changes state itself: every change goes through `apply`.

use super::*;

impl Core {
    pub(super) fn decide(
        &mut self,
        now: Millis,
        agent_id: &str,
        command: AgentCommand,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let agent = self.known_agent(agent_id)?;
        if !agent.logged_in && self.is_leaving(agent_id) {
            // Taken out of the team: only the work in hand of a logged-in desktop remains.
            return Err(CoreError::UnknownAgent {
                agent: agent_id.into(),
            });
        }
        if !agent.logged_in && command != AgentCommand::LogIn {
            return Err(CoreError::NotLoggedIn {
                agent: agent_id.into(),
            });
        }
        // One method per command, by rule family: `channel_state`, `lifecycle`, `collaboration`.
        match command {
            AgentCommand::LogIn => self.log_in(now, agent_id, out),
            AgentCommand::LogOut => self.log_out(now, agent_id, out),
            AgentCommand::LogOnChannel { channel } => {
                self.log_on_channel(now, agent_id, channel, out)
            }
            AgentCommand::LogOffChannel { channel } => {
                self.log_off_channel(now, agent_id, channel, out)
            }
            AgentCommand::SetReady { channel } => self.set_ready(now, agent_id, channel, out),
            AgentCommand::SetNotReady { channel, reason } => {
                self.set_not_ready(now, agent_id, channel, reason, out)
            }
            AgentCommand::SetDnd { on } => self.set_dnd(now, agent_id, on, out),
            AgentCommand::SetForwarding { to } => self.set_forwarding(now, agent_id, to, out),
            AgentCommand::Accept { key } => self.accept(now, agent_id, key, out),
            AgentCommand::Decline { key } => self.decline(now, agent_id, key, out),
            AgentCommand::Hold { key } => self.hold_or_resume(now, agent_id, key, true, out),
            AgentCommand::Resume { key } => self.hold_or_resume(now, agent_id, key, false, out),
            AgentCommand::End { key } => self.end(now, agent_id, key, out),
            AgentCommand::Transfer { key, to } => self.transfer(now, agent_id, key, to, out),
            AgentCommand::MarkDone { key, wrap_up, next } => {
                self.mark_done(now, agent_id, key, wrap_up, next, out)
            }
            AgentCommand::ExtendAcw { channel, secs } => {
                self.extend_acw(now, agent_id, channel, secs, out)
            }
            AgentCommand::Park { key, workbin } => self.park(now, agent_id, key, workbin, out),
            AgentCommand::Unpark { key } => self.unpark(now, agent_id, key, out),
            AgentCommand::Consult { key, colleague } => {
                self.consult(now, agent_id, key, colleague, out)
            }
            AgentCommand::Conference { consultation } => {
                self.conclude_consultation(now, agent_id, consultation, true, out)
            }
            AgentCommand::TransferAfterConsultation { consultation } => {
                self.conclude_consultation(now, agent_id, consultation, false, out)
            }
            AgentCommand::EndConsultation { consultation } => {
                self.end_consultation(now, agent_id, consultation, out)
            }
            AgentCommand::StartOutbound { channel, to, from } => {
                self.start_outbound(now, agent_id, channel, to, from, out)
            }
            AgentCommand::LeaveConference { key } => self.leave_conference(now, agent_id, key, out),
            AgentCommand::LinkCode { key, code } => {
                self.link_code_by_agent(now, agent_id, key, &code, out)
            }
        }
    }

    /// The agent, or the refusal naming the unknown id.
    pub(super) fn known_agent(&self, agent_id: &str) -> Result<&Agent, CoreError> {
        self.agents
            .get(agent_id)
            .ok_or_else(|| CoreError::UnknownAgent {
                agent: agent_id.into(),
            })
    }

    /// The agent's channel for going on or Ready: refused, like an unassigned one, when the admin
    /// withdrew it (the work in hand is finished on it, nothing more).
    pub(super) fn assigned_channel(
        &self,
        agent: &str,
        channel: &str,
    ) -> Result<&AgentChannel, CoreError> {
        if self.is_withdrawn(agent, channel) {
            return Err(CoreError::ChannelNotAssigned {
                agent: agent.into(),
                channel: channel.into(),
            });
        }
        self.channel_of(agent, channel)
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
