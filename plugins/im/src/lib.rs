//! The internal IM channel: instant messages between agents of one host (a team hub or an
//! embedded desktop). Each IM is two interactions on channel `im`, one per agent; what one writes
//! is delivered to the other through the core like a chat. Its hello declares `im` never saved, so
//! the host keeps IM text in memory only, lists IMs in no history and never queues them. This
//! plugin keeps no text either, writes nothing to disk and never logs a message.

pub mod limits;
pub mod talks;

use limits::Bucket;
use plugin_api::{
    About, Address, AgentRef, CaseField, ChannelKind, ChannelPlugin, Command, Contact, Created,
    EndReason, Ended, ErrorCode, Event, Host, HostHello, InteractionId, Media, MessageContent,
    MessageReceived, Offer, Party, PartyJoined, PartyLeft, PluginConfig, PluginDescriptor,
    PluginError, PluginHello, RejectCode, Reply, Route, Target, Typing, unsupported,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Instant;
use talks::Talks;

/// The channel kind this plugin serves.
pub const CHANNEL: &str = ChannelKind::IM;

/// The first plugin-api version whose host honours `never_saved`; an older host would store IM
/// text, so the plugin refuses to start there.
const NEVER_SAVED_SINCE: (u64, u64) = (1, 4);

/// Settings from `[plugins.settings."agentdesk.im"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The largest message, in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// Messages one agent may send at once before the rate applies.
    pub burst: u32,
    /// Messages per second one agent may send after the burst.
    pub per_second: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_message_bytes: 4096,
            burst: 20,
            per_second: 5.0,
        }
    }
}

/// The plugin instance.
pub struct Im {
    host: Host,
    settings: Settings,
    talks: Talks,
    /// Consultations (a colleague asked to join an IM), by id: the IM and the colleague. What is
    /// written in one stays between the two agents (the core shows it; nothing to relay).
    consults: BTreeMap<InteractionId, (InteractionId, AgentRef)>,
    buckets: BTreeMap<String, Bucket>,
    refused_size: u64,
    refused_rate: u64,
}

fn party(agent: &AgentRef) -> Party {
    Party {
        id: agent.id.clone(),
        role: Party::COLLEAGUE.into(),
        display_name: agent.display_name.clone(),
        address: Some(Address::new(Address::AGENT, agent.id.clone())),
    }
}

fn system() -> Party {
    Party {
        id: "im".into(),
        role: Party::SYSTEM.into(),
        display_name: "IM".into(),
        address: None,
    }
}

fn gone(interaction: &InteractionId) -> PluginError {
    PluginError::new(
        ErrorCode::NOT_FOUND,
        format!("the IM `{interaction}` has ended"),
    )
}

fn api_at_least(version: &str, (major, minor): (u64, u64)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// This start's tag for interaction ids: the time in microseconds, base 36.
fn instance_tag() -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    let mut tag = Vec::new();
    while n > 0 {
        tag.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
    }
    tag.iter().rev().collect()
}

impl Im {
    /// An IM to one colleague; `about` (1.5) is what the interaction it was started from is about
    /// ("Consult by IM" from a chat): the colleague sees its subject and case data, nothing of
    /// the customer's channel.
    fn compose(
        &mut self,
        to: &[Address],
        from: AgentRef,
        about: Option<About>,
    ) -> Result<Reply, PluginError> {
        let [to] = to else {
            return Err(PluginError::invalid(format!(
                "an IM goes to one colleague, not {}",
                to.len()
            )));
        };
        if to.kind != Address::AGENT || to.value.is_empty() {
            return Err(PluginError::invalid(format!(
                "an IM goes to a colleague (an address of kind `{}`), not to a `{}` address",
                Address::AGENT,
                to.kind
            )));
        }
        if to.value == from.id {
            return Err(PluginError::invalid("an IM cannot go to oneself"));
        }
        let (mine, theirs) = self.talks.open(from.clone(), &to.value);
        let about = about.unwrap_or_default();
        // Routed by the core to that one agent; refused at once if they cannot take it now.
        self.host.emit(Offer {
            interaction: theirs.clone(),
            external_id: theirs.0.clone(),
            channel: ChannelKind::new(CHANNEL),
            media: Media::Conversation,
            route: Route::agent(to.value.clone()),
            contact: Contact {
                display_name: Some(from.display_name.clone()),
                addresses: vec![Address::new(Address::AGENT, from.id.clone())],
            },
            // The host journals no subject of a never-saved channel: what the IM is about goes
            // with the case data, which lives in memory only.
            subject: None,
            case_data: about
                .subject
                .map(|subject| CaseField {
                    key: "about".into(),
                    label: Some("About".into()),
                    value: subject,
                })
                .into_iter()
                .chain(about.case_data)
                .collect(),
            actions: vec![],
            priority: 0,
        })?;
        Ok(Reply::Created(Created { interaction: mine }))
    }

    /// The recipient's side was refused by the core: the sender is told at once and their side
    /// ends; nothing is kept for later.
    fn refused(&mut self, theirs: &InteractionId, code: RejectCode) -> Result<Reply, PluginError> {
        let Some(side) = self.talks.close(theirs) else {
            return Ok(Reply::done());
        };
        let who = &side.me.display_name;
        let text = match code {
            RejectCode::NoSuchTarget => format!("There is no colleague `{who}`."),
            RejectCode::Busy => format!("{who} is not available for IM now."),
            RejectCode::NoAgents | RejectCode::ChannelUnavailable => {
                "IM is not available now.".to_string()
            }
            _ => format!("{who} cannot get this IM."),
        };
        let id = self.talks.message_id(&side.peer);
        self.host.emit(MessageReceived {
            interaction: side.peer.clone(),
            from: system(),
            message: MessageContent {
                id,
                text,
                attachments: vec![],
            },
        })?;
        self.host.emit(Event::Ended(Ended {
            interaction: side.peer,
            reason: EndReason::Failed,
            detail: String::new(),
        }))?;
        Ok(Reply::done())
    }

    fn send(
        &mut self,
        interaction: &InteractionId,
        text: String,
        agent: Option<AgentRef>,
    ) -> Result<Reply, PluginError> {
        let side = self
            .talks
            .side(interaction)
            .ok_or_else(|| gone(interaction))?;
        let (peer, speaker) = (side.peer.clone(), agent.unwrap_or_else(|| side.me.clone()));
        let size = text.len();
        if size > self.settings.max_message_bytes {
            self.refused_size += 1;
            return Err(PluginError::invalid(format!(
                "not sent: an IM may be at most {} bytes, this one is {size}",
                self.settings.max_message_bytes
            )));
        }
        let (burst, rate) = (self.settings.burst, self.settings.per_second);
        let now = Instant::now();
        let bucket = self
            .buckets
            .entry(speaker.id.clone())
            .or_insert_with(|| Bucket::new(burst, rate, now));
        if let Err(wait) = bucket.take(now) {
            self.refused_rate += 1;
            if self.refused_rate.is_power_of_two() {
                self.host.warn(&format!(
                    "{} IMs refused for sending too fast so far",
                    self.refused_rate
                ));
            }
            return Err(PluginError::new(
                ErrorCode::UNAVAILABLE,
                format!(
                    "not sent: too many IMs (at most {burst} at once, then {rate} a second); \
                     try again in {} ms",
                    wait.as_millis().max(1)
                ),
            ));
        }
        let id = self.talks.message_id(&peer);
        self.host.emit(MessageReceived {
            interaction: peer,
            from: party(&speaker),
            message: MessageContent {
                id,
                text,
                attachments: vec![],
            },
        })?;
        Ok(Reply::done())
    }

    /// A colleague is asked to join the IM `interaction` (group IM: consultation, then conference).
    fn consult(
        &mut self,
        interaction: InteractionId,
        target: Target,
    ) -> Result<Reply, PluginError> {
        let Target::Agent { agent } = target else {
            return Err(PluginError::invalid("an IM can take in colleagues only"));
        };
        self.talks
            .side(&interaction)
            .ok_or_else(|| gone(&interaction))?;
        let id = InteractionId::new(format!("{}-with-{}", interaction, agent.id));
        self.consults.insert(id.clone(), (interaction, agent));
        Ok(Reply::Created(Created { interaction: id }))
    }

    /// The consulted colleague joins the IM: the other side sees them join.
    fn conference(
        &mut self,
        interaction: &InteractionId,
        consultation: &InteractionId,
    ) -> Result<Reply, PluginError> {
        let (_, colleague) = self
            .consults
            .remove(consultation)
            .ok_or_else(|| gone(consultation))?;
        let side = self
            .talks
            .side(interaction)
            .ok_or_else(|| gone(interaction))?;
        self.host.emit(PartyJoined {
            interaction: side.peer.clone(),
            party: party(&colleague),
        })?;
        Ok(Reply::done())
    }

    /// A colleague brought into the IM left it (1.5 `leave-conference`): the other side sees it.
    fn left(
        &mut self,
        interaction: &InteractionId,
        agent: &AgentRef,
    ) -> Result<Reply, PluginError> {
        let side = self
            .talks
            .side(interaction)
            .ok_or_else(|| gone(interaction))?;
        self.host.emit(PartyLeft {
            interaction: side.peer.clone(),
            party: party(agent),
        })?;
        Ok(Reply::done())
    }

    fn end(&mut self, interaction: &InteractionId) -> Result<Reply, PluginError> {
        let Some(side) = self.talks.close(interaction) else {
            return Ok(Reply::done());
        };
        self.host.emit(PartyLeft {
            interaction: side.peer.clone(),
            party: party(&side.me),
        })?;
        self.host.emit(Event::Ended(Ended {
            interaction: side.peer,
            reason: EndReason::ContactLeft,
            detail: String::new(),
        }))?;
        Ok(Reply::done())
    }
}

impl ChannelPlugin for Im {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: "agentdesk.im".into(),
            name: "Internal IM".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(CHANNEL)],
            description: "Instant messages between agents, never saved anywhere.".into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        if settings.max_message_bytes == 0 || settings.burst == 0 || settings.per_second <= 0.0 {
            return Err(PluginError::new(
                ErrorCode::CONFIG,
                "max_message_bytes, burst and per_second must be above 0",
            ));
        }
        Ok(Im {
            host,
            settings,
            talks: Talks::new(instance_tag()),
            consults: BTreeMap::new(),
            buckets: BTreeMap::new(),
            refused_size: 0,
            refused_rate: 0,
        })
    }

    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError> {
        if !api_at_least(&hello.api_version, NEVER_SAVED_SINCE) {
            return Err(PluginError::new(
                ErrorCode::UNAVAILABLE,
                format!(
                    "this host speaks plugin-api {} and would save IM text; internal IM needs \
                     1.4 or later",
                    hello.api_version
                ),
            ));
        }
        self.host.info("internal IM started (nothing is saved)");
        Ok(PluginHello {
            commands: [
                "compose",
                "accept",
                "reject",
                "end",
                "send-message",
                "set-typing",
                "mark-done",
                "consult",
                "conference",
                "leave-conference",
            ]
            .map(String::from)
            .to_vec(),
            events: [
                "offer",
                "message-received",
                "typing",
                "party-joined",
                "party-left",
                "ended",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![Media::Conversation],
            actions: vec![],
            never_saved: vec![ChannelKind::new(CHANNEL)],
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        match command {
            Command::Compose(compose) => self.compose(&compose.to, compose.agent, compose.about),
            Command::LeaveConference(leave) => self.left(&leave.interaction, &leave.agent),
            Command::Accept(accept) => {
                if let Some(peer) = self.talks.joined(&accept.interaction, &accept.agent) {
                    self.host.emit(PartyJoined {
                        interaction: peer,
                        party: party(&accept.agent),
                    })?;
                }
                Ok(Reply::done())
            }
            Command::Reject(reject) => self.refused(&reject.interaction, reject.code),
            // Between the two agents of a consultation: the core shows it, nothing to relay.
            Command::SendMessage(send) if self.consults.contains_key(&send.interaction) => {
                Ok(Reply::done())
            }
            Command::SetTyping(typing) if self.consults.contains_key(&typing.interaction) => {
                Ok(Reply::done())
            }
            Command::SendMessage(send) => {
                self.send(&send.interaction, send.message.text, send.agent)
            }
            Command::Consult(consult) => self.consult(consult.interaction, consult.target),
            Command::Conference(conference) => {
                self.conference(&conference.interaction, &conference.consultation)
            }
            Command::SetTyping(typing) => {
                let side = self
                    .talks
                    .side(&typing.interaction)
                    .ok_or_else(|| gone(&typing.interaction))?;
                self.host.emit(Typing {
                    interaction: side.peer.clone(),
                    party: party(&side.me),
                    typing: typing.typing,
                })?;
                Ok(Reply::done())
            }
            Command::End(end) if self.consults.remove(&end.interaction).is_some() => {
                Ok(Reply::done())
            }
            Command::End(end) => self.end(&end.interaction),
            Command::MarkDone(done) => self.end(&done.interaction),
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.host.info(&format!(
            "internal IM stopped: {} IMs open were dropped (never saved); {} messages refused \
             as too large, {} for sending too fast",
            self.talks.open_count(),
            self.refused_size,
            self.refused_rate
        ));
        Ok(())
    }
}

plugin_api::export_plugin!(Im);

#[cfg(test)]
mod tests {
    use super::api_at_least;

    #[test]
    fn only_a_host_that_honours_never_saved_is_accepted() {
        assert!(api_at_least("1.4.0", (1, 4)));
        assert!(api_at_least("1.10.0", (1, 4)));
        assert!(api_at_least("2.0.0", (1, 4)));
        assert!(!api_at_least("1.3.9", (1, 4)));
        assert!(!api_at_least("", (1, 4)));
    }
}
