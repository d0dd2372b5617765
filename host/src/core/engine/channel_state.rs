//! Decisions of the channel-state family: logging in and out, Ready, Not Ready and Pending, Do Not
//! Disturb, forwarding, after-call work. Each checks the rule and emits events; none changes state
//! (that is `apply`'s).

use super::*;

impl Core {
    /// Logs the agent's desktop in.
    pub(super) fn log_in(
        &mut self,
        now: Millis,
        agent_id: &str,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let agent = self.known_agent(agent_id)?;
        let a = agent_id.to_string();
        if !agent.logged_in {
            self.emit(now, CoreEvent::AgentLoggedIn { agent: a }, out);
        }
        Ok(())
    }

    /// Logs the agent out: every channel logs off first; refused with open work.
    pub(super) fn log_out(
        &mut self,
        now: Millis,
        agent_id: &str,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let agent = self.known_agent(agent_id)?;
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Logs one channel on (Not Ready, `logged-on`).
    pub(super) fn log_on_channel(
        &mut self,
        now: Millis,
        agent_id: &str,
        channel: String,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
        let ch = self.assigned_channel(agent_id, &channel)?;
        if ch.state == ChannelState::LoggedOff {
            let state = ChannelState::NotReady {
                reason: LOGGED_ON.into(),
            };
            self.change_state(now, a, channel, state, out);
        }
        Ok(())
    }

    /// Logs one channel off; refused while it has open work.
    pub(super) fn log_off_channel(
        &mut self,
        now: Millis,
        agent_id: &str,
        channel: String,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
        let ch = self.channel_of(agent_id, &channel)?;
        let open = ch.load + self.parked(agent_id, &channel);
        if open > 0 {
            return Err(CoreError::OpenWork { channel, open });
        }
        if ch.state != ChannelState::LoggedOff {
            self.change_state(now, a, channel, ChannelState::LoggedOff, out);
        }
        Ok(())
    }

    /// Ready on a channel (after-call work ends, unless its minimum has not passed).
    pub(super) fn set_ready(
        &mut self,
        now: Millis,
        agent_id: &str,
        channel: String,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
        let ch = self.assigned_channel(agent_id, &channel)?;
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
        Ok(())
    }

    /// Not Ready on a channel: Pending while working (when the policy says so), or the state after ACW.
    pub(super) fn set_not_ready(
        &mut self,
        now: Millis,
        agent_id: &str,
        channel: String,
        reason: String,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }

    /// Do Not Disturb on or off.
    pub(super) fn set_dnd(
        &mut self,
        now: Millis,
        agent_id: &str,
        on: bool,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let agent = self.known_agent(agent_id)?;
        let a = agent_id.to_string();
        if agent.dnd != on {
            self.emit(now, CoreEvent::DndChanged { agent: a, on }, out);
        }
        Ok(())
    }

    /// Call forwarding set or cleared.
    pub(super) fn set_forwarding(
        &mut self,
        now: Millis,
        agent_id: &str,
        to: Option<Address>,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let agent = self.known_agent(agent_id)?;
        let a = agent_id.to_string();
        if agent.forward_to != to {
            self.emit(now, CoreEvent::ForwardingChanged { agent: a, to }, out);
        }
        Ok(())
    }

    /// Extends after-call work, where the channel's ACW policy allows it.
    pub(super) fn extend_acw(
        &mut self,
        now: Millis,
        agent_id: &str,
        channel: String,
        secs: Option<u64>,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let a = agent_id.to_string();
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
        Ok(())
    }
}
