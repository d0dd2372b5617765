//! What a desktop shows inside an open interaction, beyond the core's routing state: the live
//! transcript (IM included, which never reaches disk), case data and custom actions declared by the
//! plugin, the media state of a call, the parties, who is typing. Kept in memory while the
//! interaction is open and forgotten when it closes; after a restart the transcript of an open
//! interaction is read back from the history (IM text is not: it was never stored).

use crate::core::{InteractionKey, Millis};
use crate::storage::TranscriptLine;
use plugin_api::{
    AttachmentRef, CaseField, ConversationRules, CustomAction, Event, InteractionId, MediaState,
    MessageContent, Party, Receipt,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The interaction a plugin event is about, if any.
pub fn interaction_of(event: &Event) -> Option<&InteractionId> {
    Some(match event {
        Event::Offer(e) => &e.interaction,
        Event::MessageReceived(e) => &e.interaction,
        Event::Typing(e) => &e.interaction,
        Event::MediaStateChanged(e) => &e.interaction,
        Event::PartyJoined(e) => &e.interaction,
        Event::PartyLeft(e) => &e.interaction,
        Event::Ended(e) => &e.interaction,
        Event::CaseDataChanged(e) => &e.interaction,
        Event::ActionsChanged(e) => &e.interaction,
        Event::LinkCode(e) => &e.interaction,
        Event::ConversationRules(e) => &e.interaction,
        Event::Receipt(e) => &e.interaction,
        _ => return None,
    })
}

/// The detail of one interaction as a client sees it (the transcript's text is fetched by page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailView {
    /// Case data declared by the plugin (latest values).
    pub case_data: Vec<CaseField>,
    /// Custom actions declared by the plugin, with their enabled state.
    pub actions: Vec<CustomAction>,
    /// A call's media state, once the plugin reported one.
    pub media_state: Option<MediaState>,
    /// Parties present besides the agent (customer, colleagues, ...).
    pub parties: Vec<Party>,
    /// Display names of the parties typing now.
    pub typing: Vec<String>,
    /// Transcript lines so far (fetch them with a transcript query).
    pub lines: usize,
    /// The last command the channel refused or failed, in words (e.g. a transfer it could not
    /// make); the agent's request did not happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// (plugin-api 1.2) What a reply may be now — the window, the length limit and how it is
    /// counted, public or not — when the channel says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<ConversationRules>,
    /// (1.2) How far the customer got with our messages: the latest receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// What a plugin declared about an interaction that must survive a restart (kept in the
/// history store; transcripts are kept there line by line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    /// Case data.
    pub case_data: Vec<CaseField>,
    /// Custom actions.
    pub actions: Vec<CustomAction>,
    /// Parties.
    pub parties: Vec<Party>,
}

/// What a plugin event changed in a detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// What only lives while the interaction is open (messages, typing, media state).
    Live,
    /// What must survive a restart (see [`Declared`]).
    Declared,
}

/// One transcript line with what came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveLine {
    /// Time, sender and text.
    #[serde(flatten)]
    pub line: TranscriptLine,
    /// Attachments (an email's files), by reference.
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
    /// Written by an agent of this desktop (shown on the right).
    pub from_agent: bool,
}

impl LiveLine {
    /// A line read back from the history (which keeps neither attachments nor the author's side).
    pub fn stored(line: TranscriptLine) -> Self {
        LiveLine {
            line,
            attachments: vec![],
            from_agent: false,
        }
    }
}

#[derive(Debug, Default)]
struct Detail {
    view: DetailView,
    lines: Vec<LiveLine>,
    /// The plugin messages taken in, by id, with the digests of their contents: one sent again
    /// (after a restart of the plugin or the host) is not shown or stored twice.
    message_marks: HashMap<String, Vec<String>>,
}

/// What a plugin message's id and content say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sight {
    /// Never seen: take it in.
    New,
    /// The same id with the same content: sent again; drop it.
    Duplicate,
    /// The same id as earlier messages with other content: a new message all the same (the
    /// channel reused an id); take it in and warn.
    Reused {
        /// The digests of the earlier messages with this id.
        earlier: Vec<String>,
    },
}

/// A digest of a message's content — its text and its attachments' names, types and sizes; not
/// its id, nor where the plugin keeps the files — as hex SHA-256.
pub fn content_digest(message: &MessageContent) -> String {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(message.text.as_bytes());
    for a in &message.attachments {
        part(a.name.as_bytes());
        part(a.content_type.as_bytes());
        part(&a.size.to_le_bytes());
    }
    hex::encode(hash.finalize())
}

/// The details of every open interaction of this host.
#[derive(Debug, Default)]
pub struct Details {
    by_key: HashMap<InteractionKey, Detail>,
}

impl Details {
    /// The view of an interaction (empty when nothing is known yet).
    pub fn view(&self, key: InteractionKey) -> DetailView {
        self.by_key
            .get(&key)
            .map(|d| d.view.clone())
            .unwrap_or_default()
    }

    /// Lines `offset..offset+limit` of the live transcript, or `None` when the interaction has
    /// no live detail (closed, or older than this process).
    pub fn lines(&self, key: InteractionKey, offset: usize, limit: usize) -> Option<Vec<LiveLine>> {
        let d = self.by_key.get(&key)?;
        Some(d.lines.iter().skip(offset).take(limit).cloned().collect())
    }

    /// Whether a line of the interaction's live transcript carries the file at `path`.
    pub fn carries(&self, key: InteractionKey, path: &str) -> bool {
        self.by_key.get(&key).is_some_and(|d| {
            d.lines
                .iter()
                .any(|l| l.attachments.iter().any(|a| a.path == path))
        })
    }

    /// What must survive a restart of an interaction's detail.
    pub fn declared(&self, key: InteractionKey) -> Declared {
        let view = self.view(key);
        Declared {
            case_data: view.case_data,
            actions: view.actions,
            parties: view.parties,
        }
    }

    /// Restores an open interaction after a restart: what was declared and the transcript.
    pub fn restore(
        &mut self,
        key: InteractionKey,
        declared: Declared,
        lines: Vec<TranscriptLine>,
        message_marks: Vec<(String, String)>,
    ) {
        let d = self.by_key.entry(key).or_default();
        d.message_marks.clear();
        for (id, digest) in message_marks {
            d.message_marks.entry(id).or_default().push(digest);
        }
        d.view.case_data = declared.case_data;
        d.view.actions = declared.actions;
        d.view.parties = declared.parties;
        d.lines = lines.into_iter().map(LiveLine::stored).collect();
        d.view.lines = d.lines.len();
    }

    /// Notes what the channel said when it failed a command about the interaction.
    pub fn notice(&mut self, key: InteractionKey, notice: String) {
        self.by_key.entry(key).or_default().view.notice = Some(notice);
    }

    /// Notes a plugin message by id and content digest, and says whether it is new. An id
    /// stored before digests were kept (empty digest) matches any content.
    pub fn sight(&mut self, key: InteractionKey, message_id: &str, digest: &str) -> Sight {
        let marks = &mut self.by_key.entry(key).or_default().message_marks;
        match marks.get_mut(message_id) {
            None => {
                marks.insert(message_id.to_string(), vec![digest.to_string()]);
                Sight::New
            }
            Some(earlier) if earlier.iter().any(|d| d == digest || d.is_empty()) => {
                Sight::Duplicate
            }
            Some(earlier) => {
                let seen = earlier.clone();
                earlier.push(digest.to_string());
                Sight::Reused { earlier: seen }
            }
        }
    }

    /// Adds a line an agent wrote.
    pub fn agent_wrote(&mut self, key: InteractionKey, at: Millis, name: &str, text: &str) {
        let d = self.by_key.entry(key).or_default();
        d.lines.push(LiveLine {
            line: TranscriptLine {
                at,
                party: name.to_string(),
                text: text.to_string(),
            },
            attachments: vec![],
            from_agent: true,
        });
        d.view.lines = d.lines.len();
    }

    /// Takes in a plugin event about the interaction `key`; says what it changed.
    pub fn on_plugin_event(&mut self, key: InteractionKey, event: &Event, at: Millis) -> Change {
        let d = self.by_key.entry(key).or_default();
        let view = &mut d.view;
        let change = match event {
            Event::Offer(_)
            | Event::PartyJoined(_)
            | Event::PartyLeft(_)
            | Event::CaseDataChanged(_)
            | Event::ActionsChanged(_) => Change::Declared,
            Event::MessageReceived(_)
            | Event::Typing(_)
            | Event::MediaStateChanged(_)
            | Event::ConversationRules(_)
            | Event::Receipt(_) => Change::Live,
            _ => Change::None,
        };
        match event {
            Event::Offer(offer) => {
                view.case_data = offer.case_data.clone();
                view.actions = offer.actions.clone();
                let customer = &offer.contact;
                if let Some(name) = &customer.display_name
                    && !view.parties.iter().any(|p| p.role == Party::CUSTOMER)
                {
                    view.parties.push(Party {
                        id: "customer".into(),
                        role: Party::CUSTOMER.into(),
                        display_name: name.clone(),
                        address: customer.addresses.first().cloned(),
                    });
                }
            }
            Event::MessageReceived(m) => {
                view.typing.retain(|n| *n != m.from.display_name);
                d.lines.push(LiveLine {
                    line: TranscriptLine {
                        at,
                        party: m.from.display_name.clone(),
                        text: m.message.text.clone(),
                    },
                    attachments: m.message.attachments.clone(),
                    from_agent: false,
                });
                view.lines = d.lines.len();
            }
            Event::Typing(t) => {
                let name = &t.party.display_name;
                let listed = view.typing.contains(name);
                if t.typing && !listed {
                    view.typing.push(name.clone());
                } else if !t.typing && listed {
                    view.typing.retain(|n| n != name);
                } else {
                    return Change::None;
                }
            }
            Event::MediaStateChanged(m) => view.media_state = Some(m.state),
            Event::PartyJoined(p) => {
                view.parties.retain(|q| q.id != p.party.id);
                view.parties.push(p.party.clone());
            }
            Event::PartyLeft(p) => {
                view.parties.retain(|q| q.id != p.party.id);
                view.typing.retain(|n| *n != p.party.display_name);
            }
            Event::CaseDataChanged(c) => {
                for field in &c.case_data {
                    match view.case_data.iter_mut().find(|f| f.key == field.key) {
                        Some(old) => *old = field.clone(),
                        None => view.case_data.push(field.clone()),
                    }
                }
            }
            Event::ActionsChanged(a) => view.actions = a.actions.clone(),
            Event::ConversationRules(r) => view.rules = Some(r.clone()),
            // A read receipt is not taken back by a later delivery one.
            Event::Receipt(r) => {
                let read = |r: &Receipt| r.state == plugin_api::ReceiptState::Read;
                if !view
                    .receipt
                    .as_ref()
                    .is_some_and(|old| read(old) && !read(r))
                {
                    view.receipt = Some(r.clone());
                }
            }
            _ => {}
        }
        change
    }

    /// Forgets closed interactions.
    pub fn forget(&mut self, keys: &[InteractionKey]) {
        for key in keys {
            self.by_key.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{ActionsChanged, CaseDataChanged, MessageContent, MessageReceived, Typing};

    fn party(name: &str) -> Party {
        Party {
            id: name.to_lowercase(),
            role: Party::CUSTOMER.into(),
            display_name: name.into(),
            address: None,
        }
    }

    #[test]
    fn conversation_rules_and_the_latest_receipt_are_kept_and_a_read_is_not_taken_back() {
        let mut details = Details::default();
        let id = InteractionId::new("c1");
        let receipt = |state| {
            Event::Receipt(plugin_api::Receipt {
                interaction: id.clone(),
                state,
                message: None,
                up_to: Some(5),
            })
        };
        let delivered = receipt(plugin_api::ReceiptState::Delivered);
        assert_eq!(details.on_plugin_event(7, &delivered, 1), Change::Live);
        let state = |d: &Details| d.view(7).receipt.map(|r| r.state);
        assert_eq!(state(&details), Some(plugin_api::ReceiptState::Delivered));
        details.on_plugin_event(7, &receipt(plugin_api::ReceiptState::Read), 2);
        details.on_plugin_event(7, &delivered, 3);
        assert_eq!(state(&details), Some(plugin_api::ReceiptState::Read));
        let rules = Event::ConversationRules(plugin_api::ConversationRules {
            interaction: id.clone(),
            can_reply: false,
            reason: "closed".into(),
            window_closes_at: None,
            max_length: Some(2000),
            counting: plugin_api::LengthCounting::Characters,
            public: false,
        });
        assert_eq!(details.on_plugin_event(7, &rules, 4), Change::Live);
        assert!(details.view(7).rules.is_some_and(|r| !r.can_reply));
    }

    #[test]
    fn messages_typing_case_data_and_actions_update_the_view_and_are_forgotten_on_close() {
        let mut details = Details::default();
        let id = InteractionId::new("c1");
        let typing = Event::Typing(Typing {
            interaction: id.clone(),
            party: party("Ann"),
            typing: true,
        });
        assert_eq!(details.on_plugin_event(7, &typing, 1), Change::Live);
        assert_eq!(
            details.on_plugin_event(7, &typing, 2),
            Change::None,
            "already typing"
        );
        assert_eq!(details.view(7).typing, vec!["Ann".to_string()]);
        let message = Event::MessageReceived(MessageReceived {
            interaction: id.clone(),
            from: party("Ann"),
            message: MessageContent {
                id: "m1".into(),
                text: "hello".into(),
                attachments: vec![],
            },
        });
        details.on_plugin_event(7, &message, 3);
        details.agent_wrote(7, 4, "Bob", "hi Ann");
        let view = details.view(7);
        assert!(view.typing.is_empty(), "a message ends typing");
        assert_eq!(view.lines, 2);
        let lines = details.lines(7, 1, 10).expect("live");
        assert_eq!(lines[0].line.text, "hi Ann");
        assert!(lines[0].from_agent);
        let field = |v: &str| CaseField {
            key: "order".into(),
            label: Some("Order".into()),
            value: v.into(),
        };
        details.on_plugin_event(
            7,
            &Event::CaseDataChanged(CaseDataChanged {
                interaction: id.clone(),
                case_data: vec![field("1")],
            }),
            5,
        );
        details.on_plugin_event(
            7,
            &Event::CaseDataChanged(CaseDataChanged {
                interaction: id.clone(),
                case_data: vec![field("2")],
            }),
            6,
        );
        assert_eq!(details.view(7).case_data, vec![field("2")]);
        details.on_plugin_event(
            7,
            &Event::ActionsChanged(ActionsChanged {
                interaction: id,
                actions: vec![CustomAction {
                    id: "refund".into(),
                    label: "Refund".into(),
                    enabled: false,
                }],
            }),
            7,
        );
        assert!(!details.view(7).actions[0].enabled);
        details.forget(&[7]);
        assert_eq!(details.view(7), DetailView::default());
        assert!(details.lines(7, 0, 10).is_none());
    }
}
