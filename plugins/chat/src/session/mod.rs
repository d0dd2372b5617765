//! The chats themselves: each chat's transcript of numbered events, its phase, its customer and
//! agents, and what every customer action or host command does to it. No sockets: a chat holds at
//! most one connection's outbox, and every change returns the events to report to the host.

mod durability;

use crate::protocol::{Author, ChatEvent, Numbered, ServerMessage};
pub use durability::{Batch, Change, ChatHeader};
use plugin_api::{
    Address, ChannelKind, Contact, EndReason, Ended, Event, InteractionId, LinkCode, Media,
    MessageContent, MessageReceived, Offer, Party, PartyJoined, PartyLeft, Route, Typing,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The channel kind of web chats.
pub const CHANNEL: &str = "chat";
/// Events kept per chat; a chat this long refuses more messages.
pub const MAX_EVENTS: usize = 10_000;
/// How long an ended chat stays available to its customer's widget (to show the transcript).
pub const ENDED_KEPT: Duration = Duration::from_secs(600);
/// Messages waiting for one connection before it is dropped as too slow (the widget resumes).
pub const OUTBOX: usize = 512;

/// Why a customer's request was refused; the text goes back to the widget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No chat has this id.
    #[error("no chat `{0}`")]
    UnknownChat(String),
    /// The resume token matches no chat (it ended long ago, or never existed).
    #[error("this chat is no longer available")]
    UnknownToken,
    /// The name is empty or too long.
    #[error("please give your name (at most 100 characters)")]
    BadName,
    /// The email address does not look like one.
    #[error("please give a valid email address")]
    BadEmail,
    /// The chat is over.
    #[error("this chat has ended")]
    Ended,
    /// The chat reached [`MAX_EVENTS`].
    #[error("this chat is too long; please start a new one")]
    TooLong,
    /// Not possible in the chat's current phase (e.g. a conference before an agent joined).
    #[error("not possible now: {0}")]
    WrongPhase(&'static str),
    /// The secure random source failed.
    #[error("no random numbers: {0}")]
    Random(String),
    /// A co-browse session code that is not 9 digits.
    #[error("a co-browse code has 9 digits")]
    BadCode,
}

/// Where a chat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Offered to the core, no agent yet.
    Queued,
    /// An agent accepted it.
    Active,
    /// Over; kept a while so the widget can show the transcript.
    Ended,
}

/// A connection's outbox, attached to at most one chat.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Unique per connection.
    pub id: u64,
    /// Where messages for the widget go.
    pub tx: mpsc::Sender<ServerMessage>,
}

/// One web chat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chat {
    /// The interaction id (also the offer's external id).
    pub id: String,
    /// The widget's secret for resuming.
    pub token: String,
    /// The customer's name.
    pub name: String,
    /// The customer's email address.
    pub email: String,
    /// Where it is.
    pub phase: Phase,
    /// Arrival order, for queue positions.
    pub order: u64,
    /// The agent handling it.
    pub agent: Option<String>,
    /// Colleagues conferenced in.
    #[serde(default)]
    pub colleagues: Vec<String>,
    /// Every recorded event, `seq` 1, 2, ...
    pub events: Vec<Numbered>,
    /// Customer message ids already recorded, with their `seq`.
    pub cids: HashMap<String, u64>,
    #[serde(skip)]
    outbox: Option<Outbox>,
    #[serde(skip)]
    disconnected_at: Option<Instant>,
    #[serde(skip)]
    last_activity: Option<Instant>,
    #[serde(skip)]
    warned_at: Option<Instant>,
    #[serde(skip)]
    ended_at: Option<Instant>,
    /// How the chat ended, for telling the host again after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_as: Option<EndReason>,
    /// Events written to the store and synced: only these are shown to anyone.
    #[serde(skip)]
    saved_events: usize,
    /// Events handed to the store in a batch not confirmed yet.
    #[serde(skip)]
    written_events: usize,
    /// Whether the chat's header is in the store (its token resumes it after a crash).
    #[serde(skip)]
    stored: bool,
    /// A widget attached before the chat was stored waits for its welcome (the message size
    /// limit to tell it).
    #[serde(skip)]
    welcome_waiting: Option<usize>,
}

impl Chat {
    /// A chat with nothing recorded yet, not stored, no widget attached.
    fn new(id: String, token: String, phase: Phase, order: u64) -> Self {
        Chat {
            id,
            token,
            name: String::new(),
            email: String::new(),
            phase,
            order,
            agent: None,
            colleagues: Vec::new(),
            events: Vec::new(),
            cids: HashMap::new(),
            outbox: None,
            disconnected_at: None,
            last_activity: None,
            warned_at: None,
            ended_at: None,
            ended_as: None,
            saved_events: 0,
            written_events: 0,
            stored: false,
            welcome_waiting: None,
        }
    }

    fn interaction(&self) -> InteractionId {
        InteractionId::new(self.id.clone())
    }

    /// The offer that brings the chat to the core.
    fn offer(&self, queue: &str) -> Offer {
        Offer {
            interaction: self.interaction(),
            external_id: self.id.clone(),
            channel: ChannelKind::new(CHANNEL),
            media: Media::Conversation,
            route: Route::queue(queue),
            contact: Contact {
                display_name: Some(self.name.clone()),
                addresses: vec![Address::email(self.email.clone())],
            },
            subject: Some(format!("Web chat with {}", self.name)),
            case_data: vec![],
            actions: vec![],
            priority: 0,
        }
    }

    /// What the host is told of a customer's line `seq`.
    fn customer_line(&self, seq: u64, text: &str) -> Event {
        Event::MessageReceived(MessageReceived {
            interaction: self.interaction(),
            from: self.customer(),
            message: MessageContent {
                id: format!("{}-{seq}", self.id),
                text: text.to_string(),
                attachments: vec![],
            },
        })
    }

    fn customer(&self) -> Party {
        Party {
            id: "customer".into(),
            role: Party::CUSTOMER.into(),
            display_name: self.name.clone(),
            address: Some(Address::email(self.email.clone())),
        }
    }

    /// Sends to the attached widget, if any; a widget too slow to keep up is detached (it
    /// reconnects and resumes from its last `seq`).
    fn push(&mut self, message: ServerMessage) {
        if let Some(outbox) = &self.outbox
            && outbox.tx.try_send(message).is_err()
        {
            self.outbox = None;
            self.disconnected_at = Some(Instant::now());
        }
    }

    fn record(&mut self, event: ChatEvent) -> u64 {
        let seq = self.events.len() as u64 + 1;
        let numbered = Numbered {
            seq,
            at: now_ms(),
            event,
        };
        // Shown to the widget once stored (see `durability`): a crash never shows a `seq` twice.
        self.events.push(numbered);
        seq
    }

    fn end(&mut self, reason: &str, how: EndReason, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.ended_at = Some(now);
        self.ended_as = Some(how);
        self.record(ChatEvent::Ended {
            reason: reason.to_string(),
        });
        self.push(ServerMessage::Typing {
            name: String::new(),
            typing: false,
        });
    }

    fn welcome(&mut self, max_message_bytes: usize) {
        let welcome = ServerMessage::Welcome {
            chat: self.id.clone(),
            token: self.token.clone(),
            name: self.name.clone(),
            ended: self.phase == Phase::Ended,
            max_message_bytes,
        };
        self.push(welcome);
    }

    fn touch(&mut self, now: Instant) {
        self.last_activity = Some(now);
        self.warned_at = None;
    }

    /// The stored events after `seq` (events not stored yet follow once they are).
    pub fn events_after(&self, seq: u64) -> &[Numbered] {
        let stored = &self.events[..self.saved_events];
        let from = usize::try_from(seq).unwrap_or(usize::MAX).min(stored.len());
        &stored[from..]
    }

    /// Whether a widget is attached.
    pub fn connected(&self) -> bool {
        self.outbox.is_some()
    }
}

/// A consultation about a chat: agents only; the customer never sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consultation {
    /// The chat consulted about.
    pub chat: String,
    /// The colleague's name.
    pub colleague: String,
}

/// Every chat of this plugin instance.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Chats {
    chats: BTreeMap<String, Chat>,
    consultations: BTreeMap<String, Consultation>,
    next_order: u64,
    #[serde(skip)]
    by_token: HashMap<String, String>,
    /// Chats changed since the last [`Chats::take_batch`].
    #[serde(skip)]
    touched: BTreeSet<String>,
    /// Chats forgotten since then.
    #[serde(skip)]
    forgotten: Vec<String>,
    /// Whether the consultations changed since then.
    #[serde(skip)]
    consultations_changed: bool,
    /// Events for the host, released once what they report is stored.
    #[serde(skip)]
    outgoing: Vec<Event>,
    /// Batches taken for the store so far.
    #[serde(skip)]
    batches: u64,
}

/// Timing settings the chats need.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Idle time before the warning.
    pub idle_warning: Duration,
    /// Time from the warning to the close.
    pub idle_close: Duration,
    /// Time a dropped customer has to reconnect.
    pub reconnect_grace: Duration,
}

impl Chats {
    /// A chat by id.
    pub fn get(&self, id: &str) -> Option<&Chat> {
        self.chats.get(id)
    }

    /// Whether a chat is kept and not over.
    pub fn is_open(&self, id: &str) -> bool {
        self.chats.get(id).is_some_and(|c| c.phase != Phase::Ended)
    }

    /// How many chats are kept.
    pub fn len(&self) -> usize {
        self.chats.len()
    }

    /// Whether no chat is kept.
    pub fn is_empty(&self) -> bool {
        self.chats.is_empty()
    }

    fn chat_mut(&mut self, id: &str) -> Result<&mut Chat, SessionError> {
        self.touched.insert(id.to_string());
        self.chats
            .get_mut(id)
            .ok_or_else(|| SessionError::UnknownChat(id.to_string()))
    }

    /// A customer starts a chat: it is recorded with the greeting and offered to `queue`.
    pub fn start(
        &mut self,
        name: &str,
        email: &str,
        greeting: &str,
        queue: &str,
        now: Instant,
    ) -> Result<(String, Vec<Event>), SessionError> {
        let name = clean_name(name)?;
        let email = clean_email(email)?;
        let id = format!("chat-{}", random_hex(8)?);
        let token = random_hex(24)?;
        self.next_order += 1;
        let mut chat = Chat::new(id.clone(), token.clone(), Phase::Queued, self.next_order);
        chat.name = name;
        chat.email = email;
        chat.disconnected_at = Some(now);
        chat.last_activity = Some(now);
        if !greeting.is_empty() {
            chat.record(ChatEvent::Line {
                author: Author::System,
                name: String::new(),
                text: greeting.to_string(),
                cid: None,
            });
        }
        let offer = chat.offer(queue);
        self.by_token.insert(token, id.clone());
        self.chats.insert(id.clone(), chat);
        self.touched.insert(id.clone());
        Ok((id, vec![Event::Offer(offer)]))
    }

    /// The chat a resume token belongs to.
    pub fn by_token(&self, token: &str) -> Result<String, SessionError> {
        self.by_token
            .get(token)
            .cloned()
            .ok_or(SessionError::UnknownToken)
    }

    /// Attaches a widget's connection to a chat (detaching any previous one) and sends it the
    /// welcome, every event after `last_seq`, and the queue position.
    pub fn attach(
        &mut self,
        id: &str,
        outbox: Outbox,
        last_seq: u64,
        max_message_bytes: usize,
    ) -> Result<(), SessionError> {
        let chat = self.chat_mut(id)?;
        chat.outbox = Some(outbox);
        chat.disconnected_at = None;
        if !chat.stored {
            // A new chat is welcomed once stored: its token must resume it after a crash.
            chat.welcome_waiting = Some(max_message_bytes);
            return Ok(());
        }
        chat.welcome(max_message_bytes);
        let replay: Vec<Numbered> = chat.events_after(last_seq).to_vec();
        for event in replay {
            chat.push(ServerMessage::Event(event));
        }
        self.announce_queue();
        Ok(())
    }

    /// A connection went away; the chat waits for the widget to come back.
    pub fn detach(&mut self, id: &str, connection: u64, now: Instant) {
        if let Some(chat) = self.chats.get_mut(id)
            && chat.outbox.as_ref().is_some_and(|o| o.id == connection)
        {
            chat.outbox = None;
            chat.disconnected_at = Some(now);
        }
    }

    /// A customer message. A `cid` already recorded is acknowledged again and not recorded twice.
    pub fn customer_message(
        &mut self,
        id: &str,
        cid: &str,
        text: &str,
        now: Instant,
    ) -> Result<Vec<Event>, SessionError> {
        let chat = self.chat_mut(id)?;
        if let Some(seq) = chat.cids.get(cid).copied() {
            // Not stored yet: the ack follows when it is.
            if seq <= chat.saved_events as u64 {
                chat.push(ServerMessage::Ack {
                    cid: cid.to_string(),
                    seq,
                });
            }
            return Ok(vec![]);
        }
        if chat.phase == Phase::Ended {
            return Err(SessionError::Ended);
        }
        if chat.events.len() >= MAX_EVENTS || cid.len() > 64 {
            return Err(SessionError::TooLong);
        }
        let seq = chat.record(ChatEvent::Line {
            author: Author::Customer,
            name: chat.name.clone(),
            text: text.to_string(),
            cid: Some(cid.to_string()),
        });
        chat.cids.insert(cid.to_string(), seq);
        chat.touch(now);
        // The ack goes out once the line is stored (see `durability`).
        Ok(vec![chat.customer_line(seq, text)])
    }

    /// The customer started or stopped typing.
    pub fn customer_typing(&mut self, id: &str, typing: bool) -> Result<Vec<Event>, SessionError> {
        let chat = self
            .chats
            .get(id)
            .ok_or_else(|| SessionError::UnknownChat(id.to_string()))?;
        if chat.phase == Phase::Ended {
            return Ok(vec![]);
        }
        Ok(vec![Event::Typing(Typing {
            interaction: chat.interaction(),
            party: chat.customer(),
            typing,
        })])
    }

    /// The customer started co-browsing from this chat: the chat carries the session's code, so
    /// the core routes the co-browse offer naming it to this chat's agent (plugin-api 1.3). Only
    /// for a chat an agent has, with a code of 9 digits.
    pub fn cobrowse_code(&mut self, id: &str, code: &str) -> Result<Vec<Event>, SessionError> {
        let chat = self
            .chats
            .get(id)
            .ok_or_else(|| SessionError::UnknownChat(id.to_string()))?;
        if chat.phase != Phase::Active {
            return Err(SessionError::WrongPhase(
                "co-browsing needs an agent in the chat",
            ));
        }
        if code.len() != 9 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SessionError::BadCode);
        }
        Ok(vec![Event::LinkCode(LinkCode {
            interaction: chat.interaction(),
            code: code.to_string(),
        })])
    }

    /// The customer left (ended the chat, or never came back): abandoned if still queued.
    pub fn customer_left(&mut self, id: &str, reason: &str, now: Instant) -> Vec<Event> {
        let Ok(chat) = self.chat_mut(id) else {
            return vec![];
        };
        if chat.phase == Phase::Ended {
            return vec![];
        }
        chat.end(reason, EndReason::ContactLeft, now);
        let ended = Ended {
            interaction: chat.interaction(),
            reason: EndReason::ContactLeft,
            detail: reason.to_string(),
        };
        self.announce_queue();
        vec![Event::Ended(ended)]
    }

    /// An agent accepted the chat (first accept, or after a blind transfer through the queue).
    pub fn accept(&mut self, id: &str, agent: &str, now: Instant) -> Result<(), SessionError> {
        if let Some(c) = self.consultations.get_mut(id) {
            c.colleague = agent.to_string();
            self.consultations_changed = true;
            return Ok(());
        }
        let chat = self.chat_mut(id)?;
        if chat.phase == Phase::Ended {
            return Err(SessionError::Ended);
        }
        if let Some(previous) = chat.agent.take()
            && previous != agent
        {
            chat.record(ChatEvent::Left { name: previous });
        }
        chat.phase = Phase::Active;
        chat.agent = Some(agent.to_string());
        chat.record(ChatEvent::Joined {
            name: agent.to_string(),
        });
        chat.push(ServerMessage::Queue { position: 0 });
        chat.touch(now);
        self.announce_queue();
        Ok(())
    }

    /// The agent handling the chat wrote to the customer. A message in a consultation stays
    /// between the agents (the core shows it to them).
    pub fn agent_message(
        &mut self,
        id: &str,
        text: &str,
        now: Instant,
    ) -> Result<(), SessionError> {
        self.agent_message_from(id, text, None, now)
    }

    /// An agent wrote to the customer: `speaker` (in a conference, not always the chat's agent)
    /// or, when the host does not say (plugin-api 1.0), the chat's agent.
    pub fn agent_message_from(
        &mut self,
        id: &str,
        text: &str,
        speaker: Option<&str>,
        now: Instant,
    ) -> Result<(), SessionError> {
        if self.consultations.contains_key(id) {
            return Ok(());
        }
        let chat = self.chat_mut(id)?;
        if chat.phase == Phase::Ended {
            return Err(SessionError::Ended);
        }
        let name = speaker
            .map(str::to_string)
            .or_else(|| chat.agent.clone())
            .unwrap_or_else(|| "Agent".into());
        chat.push(ServerMessage::Typing {
            name: name.clone(),
            typing: false,
        });
        chat.record(ChatEvent::Line {
            author: Author::Agent,
            name,
            text: text.to_string(),
            cid: None,
        });
        chat.touch(now);
        Ok(())
    }

    /// The agent started or stopped typing (never shown from a consultation).
    pub fn agent_typing(&mut self, id: &str, typing: bool) -> Result<(), SessionError> {
        if self.consultations.contains_key(id) {
            return Ok(());
        }
        let chat = self
            .chats
            .get_mut(id)
            .ok_or_else(|| SessionError::UnknownChat(id.to_string()))?;
        let name = chat.agent.clone().unwrap_or_else(|| "Agent".into());
        chat.push(ServerMessage::Typing { name, typing });
        Ok(())
    }

    /// The agent ended the chat (the host asked): reports `ended` back.
    pub fn agent_ended(&mut self, id: &str, now: Instant) -> Result<Vec<Event>, SessionError> {
        if self.consultations.remove(id).is_some() {
            self.consultations_changed = true;
            return Ok(vec![]);
        }
        let chat = self.chat_mut(id)?;
        let name = chat.agent.clone().unwrap_or_else(|| "The agent".into());
        chat.end(
            &format!("{name} ended the chat"),
            EndReason::AgentEnded,
            now,
        );
        Ok(vec![Event::Ended(Ended {
            interaction: chat.interaction(),
            reason: EndReason::AgentEnded,
            detail: String::new(),
        })])
    }

    /// The core declined the chat (nobody can take it).
    pub fn rejected(&mut self, id: &str, now: Instant) {
        if let Ok(chat) = self.chat_mut(id) {
            chat.end(
                "Sorry, no agent can take your chat now",
                EndReason::Failed,
                now,
            );
        }
        self.announce_queue();
    }

    /// A consultation about a chat starts; returns its interaction id.
    pub fn consult(&mut self, id: &str, colleague: &str) -> Result<String, SessionError> {
        let chat = self.chat_mut(id)?;
        if chat.phase != Phase::Active {
            return Err(SessionError::WrongPhase(
                "only an active chat can be consulted about",
            ));
        }
        let consultation = format!("{id}.consult-{}", random_hex(4)?);
        self.consultations_changed = true;
        self.consultations.insert(
            consultation.clone(),
            Consultation {
                chat: id.to_string(),
                colleague: colleague.to_string(),
            },
        );
        Ok(consultation)
    }

    /// The consulted colleague joins the chat: the customer sees a second agent.
    pub fn conference(&mut self, id: &str, consultation: &str) -> Result<Vec<Event>, SessionError> {
        self.consultations_changed = true;
        let colleague = self
            .consultations
            .remove(consultation)
            .map(|c| c.colleague)
            .ok_or_else(|| SessionError::UnknownChat(consultation.to_string()))?;
        let chat = self.chat_mut(id)?;
        if chat.phase != Phase::Active {
            return Err(SessionError::WrongPhase(
                "only an active chat can have a conference",
            ));
        }
        if !chat.colleagues.contains(&colleague) {
            chat.colleagues.push(colleague.clone());
            chat.record(ChatEvent::Joined {
                name: colleague.clone(),
            });
        }
        Ok(vec![Event::PartyJoined(PartyJoined {
            interaction: chat.interaction(),
            party: Party {
                id: format!("agent:{colleague}"),
                role: Party::COLLEAGUE.into(),
                display_name: colleague,
                address: None,
            },
        })])
    }

    /// A colleague brought in by a conference left (plugin-api 1.5 `leave-conference`): the
    /// customer sees them leave.
    pub fn leave_conference(
        &mut self,
        id: &str,
        colleague: &str,
    ) -> Result<Vec<Event>, SessionError> {
        let chat = self.chat_mut(id)?;
        let Some(at) = chat.colleagues.iter().position(|c| c == colleague) else {
            return Ok(vec![]);
        };
        chat.colleagues.remove(at);
        chat.record(ChatEvent::Left {
            name: colleague.to_string(),
        });
        Ok(vec![Event::PartyLeft(PartyLeft {
            interaction: chat.interaction(),
            party: Party {
                id: format!("agent:{colleague}"),
                role: Party::COLLEAGUE.into(),
                display_name: colleague.to_string(),
                address: None,
            },
        })])
    }

    /// The chat is handed to `to` (after a consultation, or blind to an agent).
    pub fn transfer(
        &mut self,
        id: &str,
        to: &str,
        consultation: Option<&str>,
    ) -> Result<Vec<Event>, SessionError> {
        if let Some(c) = consultation {
            self.consultations.remove(c);
            self.consultations_changed = true;
        }
        let chat = self.chat_mut(id)?;
        if chat.phase != Phase::Active {
            return Err(SessionError::WrongPhase(
                "only an active chat can be transferred",
            ));
        }
        let mut events = Vec::new();
        if let Some(previous) = chat.agent.take() {
            chat.record(ChatEvent::Left {
                name: previous.clone(),
            });
            events.push(Event::PartyLeft(PartyLeft {
                interaction: chat.interaction(),
                party: Party {
                    id: format!("agent:{previous}"),
                    role: Party::AGENT.into(),
                    display_name: previous,
                    address: None,
                },
            }));
        }
        let was_colleague = chat.colleagues.iter().any(|c| c == to);
        chat.colleagues.retain(|c| c != to);
        chat.agent = Some(to.to_string());
        if !was_colleague {
            chat.record(ChatEvent::Joined {
                name: to.to_string(),
            });
        }
        Ok(events)
    }

    /// Idle warnings and closes, customers who did not come back, and ended chats to forget.
    /// `warning_text` is what the customer (and, through the transcript, the agent) reads.
    pub fn tick(&mut self, now: Instant, timing: Timing) -> Vec<Event> {
        let mut events = Vec::new();
        let mut gone = Vec::new();
        let mut forget = Vec::new();
        for chat in self.chats.values_mut() {
            match chat.phase {
                Phase::Ended => {
                    if chat
                        .ended_at
                        .is_some_and(|t| now.saturating_duration_since(t) >= ENDED_KEPT)
                    {
                        forget.push(chat.id.clone());
                    }
                    continue;
                }
                Phase::Active => {
                    let idle = chat
                        .last_activity
                        .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
                    match chat.warned_at {
                        None if idle >= timing.idle_warning => {
                            chat.warned_at = Some(now);
                            let secs = timing.idle_close.as_secs();
                            let text = format!(
                                "This chat will close in {secs} seconds unless someone writes."
                            );
                            chat.record(ChatEvent::Line {
                                author: Author::System,
                                name: String::new(),
                                text: text.clone(),
                                cid: None,
                            });
                            events.push(Event::MessageReceived(MessageReceived {
                                interaction: chat.interaction(),
                                from: system_party(),
                                message: MessageContent {
                                    id: format!("{}-{}", chat.id, chat.events.len()),
                                    text,
                                    attachments: vec![],
                                },
                            }));
                            self.touched.insert(chat.id.clone());
                        }
                        Some(warned)
                            if now.saturating_duration_since(warned) >= timing.idle_close =>
                        {
                            chat.end(
                                "The chat was closed after a period of inactivity",
                                EndReason::Timeout,
                                now,
                            );
                            events.push(Event::Ended(Ended {
                                interaction: chat.interaction(),
                                reason: EndReason::Timeout,
                                detail: "idle".into(),
                            }));
                            self.touched.insert(chat.id.clone());
                            continue;
                        }
                        _ => {}
                    }
                }
                Phase::Queued => {}
            }
            if chat.outbox.is_none()
                && chat
                    .disconnected_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= timing.reconnect_grace)
            {
                gone.push(chat.id.clone());
            }
        }
        for id in gone {
            events.extend(self.customer_left(&id, "The customer did not come back", now));
        }
        for id in forget {
            if let Some(chat) = self.chats.remove(&id) {
                self.by_token.remove(&chat.token);
                self.consultations.retain(|_, c| c.chat != id);
                self.consultations_changed = true;
                self.forgotten.push(id);
            }
        }
        events
    }

    /// Tells every queued chat's widget its place in the queue (1 = next).
    fn announce_queue(&mut self) {
        let mut queued: Vec<&mut Chat> = self
            .chats
            .values_mut()
            .filter(|c| c.phase == Phase::Queued)
            .collect();
        queued.sort_by_key(|c| c.order);
        for (n, chat) in queued.into_iter().enumerate() {
            // A widget still waiting for its welcome hears its place right after it.
            if chat.welcome_waiting.is_none() {
                chat.push(ServerMessage::Queue { position: n + 1 });
            }
        }
    }

    /// Queue positions of queued chats by id (for tests and diagnostics).
    pub fn queue_position(&self, id: &str) -> Option<usize> {
        let mut queued: Vec<&Chat> = self
            .chats
            .values()
            .filter(|c| c.phase == Phase::Queued)
            .collect();
        queued.sort_by_key(|c| c.order);
        queued.iter().position(|c| c.id == id).map(|n| n + 1)
    }
}

fn system_party() -> Party {
    Party {
        id: "system".into(),
        role: Party::SYSTEM.into(),
        display_name: "Web chat".into(),
        address: None,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `bytes` random bytes from the operating system, as hex.
pub fn random_hex(bytes: usize) -> Result<String, SessionError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A name as given, trimmed, without control characters; 1 to 100 characters.
pub fn clean_name(name: &str) -> Result<String, SessionError> {
    let name: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(SessionError::BadName);
    }
    Ok(name)
}

/// An email address, trimmed: one `@` with text on both sides, no spaces, at most 254 bytes.
pub fn clean_email(email: &str) -> Result<String, SessionError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if !valid {
        return Err(SessionError::BadEmail);
    }
    Ok(email.to_string())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        idle_warning: Duration::from_secs(10),
        idle_close: Duration::from_secs(5),
        reconnect_grace: Duration::from_secs(30),
    };

    pub(super) fn outbox(id: u64) -> (Outbox, mpsc::Receiver<ServerMessage>) {
        let (tx, rx) = mpsc::channel(OUTBOX);
        (Outbox { id, tx }, rx)
    }

    pub(super) fn drain(rx: &mut mpsc::Receiver<ServerMessage>) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    /// What the store's writer does once a batch is synced.
    pub(super) fn store_all(chats: &mut Chats) -> Vec<Event> {
        let batch = chats.take_batch();
        chats.stored(batch)
    }

    pub(super) fn started(chats: &mut Chats, now: Instant) -> String {
        let (id, events) = chats
            .start("Jo <b>", "jo@example.com", "Hello!", "default", now)
            .expect("start");
        let Event::Offer(offer) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(offer.contact.display_name.as_deref(), Some("Jo <b>"));
        assert_eq!(
            offer.contact.addresses,
            vec![Address::email("jo@example.com")]
        );
        store_all(chats);
        id
    }

    #[test]
    fn a_resent_message_is_acknowledged_again_but_recorded_once() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, now);
        let (o, mut rx) = outbox(1);
        chats.attach(&id, o, 0, 4000).expect("attach");
        let first = chats.customer_message(&id, "c1", "hi", now).expect("first");
        assert_eq!(first.len(), 1, "reported to the host once");
        store_all(&mut chats);
        let again = chats.customer_message(&id, "c1", "hi", now).expect("again");
        assert!(again.is_empty(), "a resend is not reported twice");
        let acks: Vec<u64> = drain(&mut rx)
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Ack { seq, .. } => Some(seq),
                _ => None,
            })
            .collect();
        assert_eq!(acks, vec![2, 2], "greeting is seq 1; both acks name seq 2");
        assert_eq!(chats.get(&id).map(|c| c.events.len()), Some(2));
    }

    #[test]
    fn a_resume_replays_exactly_the_events_after_the_last_seq() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, now);
        chats.accept(&id, "Sam", now).expect("accept");
        chats.agent_message(&id, "one", now).expect("one");
        chats.agent_message(&id, "two", now).expect("two");
        store_all(&mut chats);
        let (o, mut rx) = outbox(7);
        chats.attach(&id, o, 2, 4000).expect("resume after seq 2");
        let seqs: Vec<u64> = drain(&mut rx)
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Event(e) => Some(e.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![3, 4], "joined is 2; the two lines follow");
        assert!(
            chats.attach(&id, outbox(8).0, u64::MAX, 4000).is_ok(),
            "a huge seq is harmless"
        );
    }

    #[test]
    fn queue_positions_follow_arrival_and_move_up_when_one_is_answered() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let a = started(&mut chats, now);
        let b = started(&mut chats, now);
        assert_eq!(chats.queue_position(&a), Some(1));
        assert_eq!(chats.queue_position(&b), Some(2));
        let (o, mut rx) = outbox(1);
        chats.attach(&b, o, 0, 4000).expect("attach");
        chats.accept(&a, "Sam", now).expect("accept");
        assert_eq!(chats.queue_position(&b), Some(1));
        let last = drain(&mut rx).into_iter().rev().find_map(|m| match m {
            ServerMessage::Queue { position } => Some(position),
            _ => None,
        });
        assert_eq!(last, Some(1));
    }

    #[test]
    fn an_idle_chat_is_warned_then_closed_and_a_message_in_between_resets_it() {
        let t0 = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, t0);
        chats.attach(&id, outbox(1).0, 0, 4000).expect("attach");
        chats.accept(&id, "Sam", t0).expect("accept");
        assert!(chats.tick(t0 + Duration::from_secs(9), TIMING).is_empty());
        let warned = chats.tick(t0 + Duration::from_secs(10), TIMING);
        assert!(
            matches!(warned.as_slice(), [Event::MessageReceived(_)]),
            "{warned:?}"
        );
        chats
            .customer_message(&id, "c1", "still here", t0 + Duration::from_secs(12))
            .expect("message");
        assert!(chats.tick(t0 + Duration::from_secs(16), TIMING).is_empty());
        chats.tick(t0 + Duration::from_secs(22), TIMING);
        let closed = chats.tick(t0 + Duration::from_secs(27), TIMING);
        assert!(
            matches!(
                closed.as_slice(),
                [Event::Ended(Ended {
                    reason: EndReason::Timeout,
                    ..
                })]
            ),
            "{closed:?}"
        );
        assert_eq!(chats.get(&id).map(|c| c.phase), Some(Phase::Ended));
    }

    #[test]
    fn a_customer_who_does_not_come_back_leaves_and_a_late_message_is_refused() {
        let t0 = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, t0);
        chats.attach(&id, outbox(1).0, 0, 4000).expect("attach");
        chats.detach(&id, 2, t0);
        assert!(
            chats.get(&id).is_some_and(Chat::connected),
            "another connection's detach is ignored"
        );
        chats.detach(&id, 1, t0);
        let left = chats.tick(t0 + Duration::from_secs(30), TIMING);
        assert!(
            matches!(
                left.as_slice(),
                [Event::Ended(Ended {
                    reason: EndReason::ContactLeft,
                    ..
                })]
            ),
            "{left:?}"
        );
        assert_eq!(
            chats.customer_message(&id, "c9", "late", t0),
            Err(SessionError::Ended)
        );
        assert!(chats.tick(t0 + ENDED_KEPT * 2, TIMING).is_empty());
        assert!(chats.is_empty(), "an ended chat is forgotten after a while");
    }

    #[test]
    fn consultation_messages_never_reach_the_customer_and_a_conference_shows_the_colleague() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, now);
        chats.accept(&id, "Sam", now).expect("accept");
        let (o, mut rx) = outbox(1);
        chats.attach(&id, o, 0, 4000).expect("attach");
        drain(&mut rx);
        let consultation = chats.consult(&id, "Bob").expect("consult");
        chats
            .accept(&consultation, "Bob Brown", now)
            .expect("colleague accepts");
        chats
            .agent_message(&consultation, "secret", now)
            .expect("consult message");
        chats.agent_typing(&consultation, true).expect("typing");
        assert!(
            drain(&mut rx).is_empty(),
            "the customer sees nothing of a consultation"
        );
        let events = chats.conference(&id, &consultation).expect("conference");
        assert!(matches!(events.as_slice(), [Event::PartyJoined(_)]));
        store_all(&mut chats);
        let seen = drain(&mut rx);
        assert!(
            seen.iter().any(|m| matches!(m, ServerMessage::Event(Numbered { event: ChatEvent::Joined { name }, .. }) if name == "Bob Brown")),
            "{seen:?}"
        );
    }

    #[test]
    fn a_transfer_shows_the_customer_who_left_and_who_joined() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, now);
        chats.accept(&id, "Sam", now).expect("accept");
        chats.transfer(&id, "Bob", None).expect("transfer");
        let kinds: Vec<&ChatEvent> = chats
            .get(&id)
            .map(|c| c.events.iter().map(|e| &e.event).collect())
            .unwrap_or_default();
        assert!(matches!(kinds[kinds.len() - 2], ChatEvent::Left { name } if name == "Sam"));
        assert!(matches!(kinds[kinds.len() - 1], ChatEvent::Joined { name } if name == "Bob"));
        chats
            .agent_message(&id, "Hi, Bob here", now)
            .expect("message");
        let last = chats
            .get(&id)
            .and_then(|c| c.events.last())
            .map(|e| e.event.clone());
        assert!(matches!(last, Some(ChatEvent::Line { name, .. }) if name == "Bob"));
    }

    #[test]
    fn in_a_conference_the_customer_sees_the_name_of_the_agent_who_wrote() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, now);
        chats.accept(&id, "Sam", now).expect("accept");
        chats
            .agent_message_from(&id, "Bob here too", Some("Bob"), now)
            .expect("message");
        let last = chats
            .get(&id)
            .and_then(|c| c.events.last())
            .map(|e| e.event.clone());
        assert!(matches!(last, Some(ChatEvent::Line { name, .. }) if name == "Bob"));
    }

    #[test]
    fn names_and_emails_are_checked() {
        assert_eq!(clean_name("  "), Err(SessionError::BadName));
        assert_eq!(clean_name(&"x".repeat(101)), Err(SessionError::BadName));
        assert_eq!(clean_name(" Jo\u{0} ").as_deref(), Ok("Jo"));
        for bad in ["", "jo", "@x.y", "jo@", "jo@x", "a b@x.y", "a@b@c.d"] {
            assert_eq!(clean_email(bad), Err(SessionError::BadEmail), "{bad}");
        }
        assert_eq!(
            clean_email(" jo@example.com ").as_deref(),
            Ok("jo@example.com")
        );
    }
}
