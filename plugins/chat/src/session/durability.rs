//! What of the chats is stored, and when the rest of the world may see it. An acknowledgement
//! means durable: a recorded event reaches the widget (with the ack of a customer's line), and
//! an event reaches the host, only after the batch holding it was written and synced. A crash can
//! therefore lose only what nobody was shown, and no `seq` or message id is ever shown twice
//! with different content. No file I/O here: the store writes what [`Chats::take_batch`] gives.

use super::{Chat, Chats, Consultation, Phase};
use crate::protocol::{Author, ChatEvent, Numbered, ServerMessage};
use plugin_api::{EndReason, Ended, Event};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// A chat without its transcript: what a [`Change::Chat`] line carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatHeader {
    id: String,
    token: String,
    name: String,
    email: String,
    phase: Phase,
    order: u64,
    agent: Option<String>,
    colleagues: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_as: Option<EndReason>,
}

/// One line of the store's append-only log: what changed since the last line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A chat's header (new or changed).
    Chat(ChatHeader),
    /// Events recorded in a chat, in order.
    Events {
        /// The chat.
        chat: String,
        /// The new events.
        events: Vec<Numbered>,
    },
    /// A chat was forgotten.
    Forget {
        /// The chat.
        chat: String,
    },
    /// The open consultations, all of them.
    Consultations {
        /// By consultation id.
        consultations: BTreeMap<String, Consultation>,
    },
}

/// What one write to the store holds, and what to release once it is synced.
#[derive(Debug, Default)]
pub struct Batch {
    /// The log lines to append.
    pub changes: Vec<Change>,
    /// Per chat: how many of its events the lines reach.
    marks: Vec<(String, usize)>,
    forgotten: Vec<String>,
    consultations: bool,
    /// Events for the host taken with the lines.
    events: Vec<Event>,
    /// This batch's number (1, 2, ...).
    pub number: u64,
}

impl Batch {
    /// Whether there is nothing to write (its events, if any, may go at once).
    pub fn writes_nothing(&self) -> bool {
        self.changes.is_empty()
    }
}

impl Chats {
    /// After loading from disk: everything loaded is stored. Rebuilds the token index and starts
    /// every open chat's reconnect grace and idle clock at `now` (no widget is attached).
    pub fn restored(mut self, now: Instant) -> Self {
        self.by_token = self
            .chats
            .values()
            .map(|c| (c.token.clone(), c.id.clone()))
            .collect();
        for chat in self.chats.values_mut() {
            chat.saved_events = chat.events.len();
            chat.written_events = chat.events.len();
            chat.stored = true;
            chat.disconnected_at = Some(now);
            chat.last_activity = Some(now);
            if chat.phase == Phase::Ended {
                chat.ended_at = Some(now);
            }
        }
        self
    }

    /// What the host must hear again after a restart, because the process may have stopped
    /// after storing a chat but before the host took in what was reported: every kept chat's
    /// offer (or its end) and every customer line. The host recognises what it already has
    /// (offers by external id, messages by id and content).
    pub fn redeliver(&self, queue: &str) -> Vec<Event> {
        let mut out = Vec::new();
        for chat in self.chats.values() {
            out.push(Event::Offer(chat.offer(queue)));
            for numbered in &chat.events {
                if let ChatEvent::Line {
                    author: Author::Customer,
                    text,
                    ..
                } = &numbered.event
                {
                    out.push(chat.customer_line(numbered.seq, text));
                }
            }
            if let Some(reason) = chat.ended_as.filter(|_| chat.phase == Phase::Ended) {
                let detail = chat
                    .events
                    .iter()
                    .rev()
                    .find_map(|e| match &e.event {
                        ChatEvent::Ended { reason } => Some(reason.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                out.push(Event::Ended(Ended {
                    interaction: chat.interaction(),
                    reason,
                    detail,
                }));
            }
        }
        out
    }

    /// Queues events for the host until what they report is stored.
    pub fn report(&mut self, events: Vec<Event>) {
        self.outgoing.extend(events);
    }

    /// How many batches were taken so far: a change made now is stored by batch `taken() + 1`.
    pub fn taken(&self) -> u64 {
        self.batches
    }

    /// Takes what changed since the last batch, as log lines, with the host events queued so
    /// far: O(changes), so it runs under the lock however long the transcripts are.
    pub fn take_batch(&mut self) -> Batch {
        self.batches += 1;
        let mut batch = Batch {
            number: self.batches,
            events: std::mem::take(&mut self.outgoing),
            forgotten: std::mem::take(&mut self.forgotten),
            consultations: std::mem::take(&mut self.consultations_changed),
            ..Batch::default()
        };
        for id in std::mem::take(&mut self.touched) {
            let Some(chat) = self.chats.get_mut(&id) else {
                continue;
            };
            batch.changes.push(Change::Chat(chat.header()));
            if chat.events.len() > chat.written_events {
                batch.changes.push(Change::Events {
                    chat: id.clone(),
                    events: chat.events[chat.written_events..].to_vec(),
                });
                chat.written_events = chat.events.len();
            }
            batch.marks.push((id, chat.events.len()));
        }
        for chat in &batch.forgotten {
            batch.changes.push(Change::Forget { chat: chat.clone() });
        }
        if batch.consultations {
            batch.changes.push(Change::Consultations {
                consultations: self.consultations.clone(),
            });
        }
        batch
    }

    /// The batch is written and synced: shows its events to the widgets (with the acks of the
    /// customers' lines and the welcome of new chats) and returns the host's events to send.
    pub fn stored(&mut self, batch: Batch) -> Vec<Event> {
        let mut welcomed = false;
        for (id, mark) in batch.marks {
            let Some(chat) = self.chats.get_mut(&id) else {
                continue;
            };
            chat.stored = true;
            if let Some(max_message_bytes) = chat.welcome_waiting.take() {
                chat.welcome(max_message_bytes);
                welcomed = true;
            }
            let from = chat.saved_events.min(mark);
            let shown: Vec<Numbered> = chat.events[from..mark].to_vec();
            chat.saved_events = chat.saved_events.max(mark);
            for numbered in shown {
                let ack = match &numbered.event {
                    ChatEvent::Line { cid: Some(cid), .. } => Some(ServerMessage::Ack {
                        cid: cid.clone(),
                        seq: numbered.seq,
                    }),
                    _ => None,
                };
                chat.push(ServerMessage::Event(numbered));
                if let Some(ack) = ack {
                    chat.push(ack);
                }
            }
        }
        if welcomed {
            self.announce_queue();
        }
        batch.events
    }

    /// The batch could not be stored: everything in it is taken again by the next one, and
    /// nothing of it was shown.
    pub fn not_stored(&mut self, batch: Batch) {
        for (id, _) in batch.marks {
            if let Some(chat) = self.chats.get_mut(&id) {
                chat.written_events = chat.saved_events;
                self.touched.insert(id);
            }
        }
        let mut forgotten = batch.forgotten;
        forgotten.append(&mut self.forgotten);
        self.forgotten = forgotten;
        self.consultations_changed |= batch.consultations;
        let mut events = batch.events;
        events.append(&mut self.outgoing);
        self.outgoing = events;
    }

    /// Replays one log line onto state loaded from the snapshot (idempotent: an event already
    /// present is skipped, a later header replaces an earlier one).
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Chat(h) => {
                self.next_order = self.next_order.max(h.order);
                let chat = self
                    .chats
                    .entry(h.id.clone())
                    .or_insert_with(|| Chat::new(h.id.clone(), h.token.clone(), h.phase, h.order));
                chat.token = h.token;
                chat.name = h.name;
                chat.email = h.email;
                chat.phase = h.phase;
                chat.order = h.order;
                chat.agent = h.agent;
                chat.colleagues = h.colleagues;
                chat.ended_as = h.ended_as;
            }
            Change::Events { chat, events } => {
                let Some(chat) = self.chats.get_mut(&chat) else {
                    return;
                };
                for event in events {
                    if event.seq != chat.events.len() as u64 + 1 {
                        continue;
                    }
                    if let ChatEvent::Line { cid: Some(cid), .. } = &event.event {
                        chat.cids.insert(cid.clone(), event.seq);
                    }
                    chat.events.push(event);
                }
            }
            Change::Forget { chat } => {
                self.chats.remove(&chat);
            }
            Change::Consultations { consultations } => self.consultations = consultations,
        }
    }
}

impl Chat {
    fn header(&self) -> ChatHeader {
        ChatHeader {
            id: self.id.clone(),
            token: self.token.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            phase: self.phase,
            order: self.order,
            agent: self.agent.clone(),
            colleagues: self.colleagues.clone(),
            ended_as: self.ended_as,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{drain, outbox, started, store_all};
    use super::*;
    use tokio::sync::mpsc;

    fn acks(messages: &[ServerMessage]) -> Vec<(String, u64)> {
        messages
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Ack { cid, seq } => Some((cid.clone(), *seq)),
                _ => None,
            })
            .collect()
    }

    /// A stored chat with a widget attached and a customer message `c1` recorded, not stored.
    fn with_an_unstored_message() -> (Chats, String, mpsc::Receiver<ServerMessage>) {
        let now = Instant::now();
        let mut chats = Chats::default();
        let id = started(&mut chats, now);
        let (o, mut rx) = outbox(1);
        chats.attach(&id, o, 1, 4000).expect("attach");
        drain(&mut rx);
        let events = chats.customer_message(&id, "c1", "hi", now).expect("c1");
        chats.report(events);
        (chats, id, rx)
    }

    #[test]
    fn nothing_is_acknowledged_or_shown_before_it_is_stored() {
        let now = Instant::now();
        let (mut chats, id, mut rx) = with_an_unstored_message();
        chats
            .customer_message(&id, "c1", "hi", now)
            .expect("resent");
        assert!(drain(&mut rx).is_empty(), "no ack and no event yet");
        let batch = chats.take_batch();
        assert!(
            batch
                .changes
                .iter()
                .any(|c| matches!(c, Change::Events { events, .. } if events.len() == 1)),
            "{batch:?}"
        );
        let released = chats.stored(batch);
        assert!(
            matches!(released.as_slice(), [Event::MessageReceived(m)] if m.message.id == format!("{id}-2")),
            "the host hears of it only now: {released:?}"
        );
        let shown = drain(&mut rx);
        assert!(matches!(&shown[0], ServerMessage::Event(n) if n.seq == 2));
        assert_eq!(acks(&shown), vec![("c1".to_string(), 2)]);
    }

    #[test]
    fn a_batch_that_could_not_be_stored_is_taken_again_and_nothing_of_it_is_shown() {
        let (mut chats, _, mut rx) = with_an_unstored_message();
        let failed = chats.take_batch();
        chats.not_stored(failed);
        assert!(drain(&mut rx).is_empty());
        let again = chats.take_batch();
        assert!(
            again
                .changes
                .iter()
                .any(|c| matches!(c, Change::Events { events, .. } if events.len() == 1)),
            "the line is written again: {again:?}"
        );
        assert_eq!(chats.stored(again).len(), 1, "and reported once");
        assert_eq!(acks(&drain(&mut rx)), vec![("c1".to_string(), 2)]);
    }

    #[test]
    fn a_new_chat_is_welcomed_once_it_is_stored() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let (id, _) = chats
            .start("Jo", "jo@example.com", "Hello", "default", now)
            .expect("start");
        let (o, mut rx) = outbox(1);
        chats.attach(&id, o, 0, 4000).expect("attach");
        assert!(drain(&mut rx).is_empty(), "no token before it is stored");
        store_all(&mut chats);
        let shown = drain(&mut rx);
        assert!(
            matches!(&shown[0], ServerMessage::Welcome { chat, .. } if *chat == id),
            "{shown:?}"
        );
        assert!(matches!(&shown[1], ServerMessage::Event(n) if n.seq == 1));
        assert!(
            shown
                .iter()
                .any(|m| matches!(m, ServerMessage::Queue { position: 1 }))
        );
    }

    #[test]
    fn changes_are_taken_once_and_replay_into_the_same_state() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let (id, _) = chats
            .start("Jo", "jo@example.com", "Hello", "default", now)
            .expect("start");
        chats
            .customer_message(&id, "c1", "hello", now)
            .expect("message");
        let first = chats.take_batch();
        assert_eq!(first.changes.len(), 2, "a header and the events: {first:?}");
        chats.stored(Batch::default());
        assert!(chats.take_batch().changes.is_empty(), "nothing twice");
        chats.accept(&id, "Sam", now).expect("accept");
        let second = chats.take_batch();
        assert!(
            matches!(&second.changes[1], Change::Events { events, .. } if events.len() == 1),
            "only the new event: {second:?}"
        );
        let mut back = Chats::default();
        let lines = first
            .changes
            .into_iter()
            .chain(second.changes.clone())
            .chain(second.changes);
        for change in lines {
            let line = serde_json::to_string(&change).expect("encode");
            back.apply(serde_json::from_str(&line).expect("decode"));
        }
        let back = back.restored(now);
        let token = chats.get(&id).map(|c| c.token.clone()).expect("token");
        assert_eq!(back.by_token(&token).as_deref(), Ok(id.as_str()));
        let chat = back.get(&id).expect("chat");
        assert_eq!(chat.events.len(), 3, "a replayed line is not applied twice");
        assert_eq!(chat.phase, Phase::Active);
        assert!(chat.cids.contains_key("c1"));
    }

    #[test]
    fn a_restart_tells_the_host_again_of_every_kept_chat_its_lines_and_its_end() {
        let now = Instant::now();
        let mut chats = Chats::default();
        let open = started(&mut chats, now);
        chats
            .customer_message(&open, "c1", "one", now)
            .expect("one");
        chats.accept(&open, "Sam", now).expect("accept");
        chats
            .agent_message(&open, "agent line", now)
            .expect("agent");
        let left = started(&mut chats, now);
        chats.customer_left(&left, "The customer ended the chat", now);
        store_all(&mut chats);
        let again = chats.redeliver("default");
        let about = |id: &str| -> Vec<String> {
            again
                .iter()
                .filter(|e| match e {
                    Event::Offer(o) => o.interaction.as_str() == id,
                    Event::MessageReceived(m) => m.interaction.as_str() == id,
                    Event::Ended(e) => e.interaction.as_str() == id,
                    _ => false,
                })
                .map(|e| e.kind().to_string())
                .collect()
        };
        assert_eq!(about(&open), vec!["offer", "message-received"]);
        assert_eq!(about(&left), vec!["offer", "ended"]);
        assert!(again.iter().any(|e| matches!(e,
            Event::Ended(e) if e.reason == EndReason::ContactLeft
                && e.detail == "The customer ended the chat")));
    }
}
