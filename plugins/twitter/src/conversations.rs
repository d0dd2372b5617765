//! The open X conversations: one per customer for direct messages and one per customer for
//! public mentions (clearly marked public), ids seen (duplicates), and whether a public one was
//! moved to direct messages. No I/O: `plan` decides, the caller stores, then `apply`.

use crate::activity::{Author, Item};
use crate::length::{MAX_WEIGHTED, URL_WEIGHT};
use agentdesk_social::journal::Journaled;
use plugin_api::{
    Address, CaseDataChanged, CaseField, ChannelKind, Contact, ConversationRules, CustomAction,
    Event, InteractionId, LengthCounting, Media, MessageContent, MessageReceived, Offer, Party,
    Route,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The channel kind.
pub const CHANNEL: &str = ChannelKind::TWITTER;
/// The custom action that moves a public conversation to direct messages.
pub const MOVE_TO_DM: &str = "move-to-dm";
/// Ids are remembered this long.
pub const REMEMBER_MS: u64 = 7 * 24 * 3600 * 1000;

/// A public conversation or a private one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    /// Direct messages.
    Private,
    /// Public posts: everyone reads the replies.
    Public,
}

/// An open conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Our interaction id.
    pub interaction: String,
    /// The offer's external id.
    pub external_id: String,
    /// DM or public.
    pub visibility: Visibility,
    /// The customer.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Handle without `@`.
    pub handle: String,
    /// The customer's latest post (public replies answer it).
    #[serde(default)]
    pub reply_to: Option<String>,
    /// A public conversation the agent moved to direct messages.
    #[serde(default)]
    pub moved_to_dm: bool,
    /// Lines: (id, text, ms).
    pub lines: Vec<(String, String, u64)>,
}

impl Conversation {
    /// Whether replies go out as direct messages.
    pub fn replies_private(&self) -> bool {
        self.visibility == Visibility::Private || self.moved_to_dm
    }
}

/// A change, as written to the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A first DM or mention opened a conversation.
    Opened {
        /// `dm:<user>` or `public:<user>`.
        key: String,
        /// The conversation.
        conversation: Conversation,
    },
    /// The customer wrote.
    Line {
        /// The conversation key.
        key: String,
        /// Event or post id.
        id: String,
        /// Text.
        text: String,
        /// When.
        at_ms: u64,
        /// For a public post: its id, which replies answer.
        public: bool,
    },
    /// The agent moved a public conversation to direct messages.
    MovedToDm {
        /// The key.
        key: String,
    },
    /// Ended by the agent or declined by the core.
    Closed {
        /// The key.
        key: String,
    },
    /// Ids older than this were forgotten.
    Forgot {
        /// ms since the epoch.
        before_ms: u64,
    },
}

/// Every open conversation and the ids seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversations {
    open: BTreeMap<String, Conversation>,
    seen: BTreeMap<String, u64>,
    next: u64,
}

/// What a webhook's items mean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// To store, then apply.
    pub changes: Vec<Change>,
    /// Ids already stored: dropped.
    pub duplicates: Vec<String>,
    /// Not acted on, with why.
    pub ignored: Vec<String>,
}

impl Journaled for Conversations {
    type Change = Change;

    fn apply(&mut self, change: Change) {
        match change {
            Change::Opened { key, conversation } => {
                self.next += 1;
                self.open.insert(key, conversation);
            }
            Change::Line {
                key,
                id,
                text,
                at_ms,
                public,
            } => {
                self.seen.insert(id.clone(), at_ms);
                if let Some(c) = self.open.get_mut(&key) {
                    if public {
                        c.reply_to = Some(id.clone());
                    }
                    c.lines.push((id, text, at_ms));
                }
            }
            Change::MovedToDm { key } => {
                if let Some(c) = self.open.get_mut(&key) {
                    c.moved_to_dm = true;
                }
            }
            Change::Closed { key } => {
                self.open.remove(&key);
            }
            Change::Forgot { before_ms } => self.seen.retain(|_, at| *at >= before_ms),
        }
    }
}

fn key_of(visibility: Visibility, user: &str) -> String {
    match visibility {
        Visibility::Private => format!("dm:{user}"),
        Visibility::Public => format!("public:{user}"),
    }
}

impl Conversations {
    /// Number open.
    pub fn len(&self) -> usize {
        self.open.len()
    }
    /// None open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
    /// The conversation of an interaction, with its key.
    pub fn by_interaction(&self, interaction: &str) -> Option<(&str, &Conversation)> {
        self.open
            .iter()
            .find(|(_, c)| c.interaction == interaction)
            .map(|(k, c)| (k.as_str(), c))
    }

    /// Decides what one webhook's items change; repeats (also within the batch) are dropped.
    pub fn plan(&self, items: Vec<Item>) -> Plan {
        let mut plan = Plan::default();
        let mut batch = BTreeSet::new();
        let mut opened = BTreeSet::new();
        let mut next = self.next;
        for item in items {
            let (visibility, id, from, text, at_ms) = match item {
                Item::Dm {
                    id,
                    from,
                    text,
                    at_ms,
                } => (Visibility::Private, id, from, text, at_ms),
                Item::Mention {
                    id,
                    from,
                    text,
                    at_ms,
                } => (Visibility::Public, id, from, text, at_ms),
                Item::Ignored(why) => {
                    plan.ignored.push(why);
                    continue;
                }
            };
            if self.seen.contains_key(&id) || !batch.insert(id.clone()) {
                plan.duplicates.push(id);
                continue;
            }
            let key = key_of(visibility, &from.id);
            if !self.open.contains_key(&key) && opened.insert(key.clone()) {
                next += 1;
                plan.changes.push(Change::Opened {
                    key: key.clone(),
                    conversation: new_conversation(next, visibility, &id, &from),
                });
            }
            plan.changes.push(Change::Line {
                key,
                id,
                text,
                at_ms,
                public: visibility == Visibility::Public,
            });
        }
        plan
    }

    /// The events a change (already applied) means for the host.
    pub fn events(&self, change: &Change, queue: &str) -> Vec<Event> {
        match change {
            Change::Opened { key, .. } => self
                .open
                .get(key)
                .map(|c| {
                    vec![
                        Event::Offer(offer(c, queue)),
                        Event::ConversationRules(rules(c)),
                    ]
                })
                .unwrap_or_default(),
            Change::Line { key, id, text, .. } => self
                .open
                .get(key)
                .map(|c| vec![Event::MessageReceived(message(c, id, text))])
                .unwrap_or_default(),
            Change::MovedToDm { key } => self
                .open
                .get(key)
                .map(|c| {
                    vec![
                        Event::CaseDataChanged(CaseDataChanged {
                            interaction: InteractionId::new(&c.interaction),
                            case_data: case_data(c),
                        }),
                        Event::ActionsChanged(plugin_api::ActionsChanged {
                            interaction: InteractionId::new(&c.interaction),
                            actions: actions(c),
                        }),
                        Event::ConversationRules(rules(c)),
                    ]
                })
                .unwrap_or_default(),
            Change::Closed { .. } | Change::Forgot { .. } => vec![],
        }
    }

    /// Everything stored about open conversations, for the host after a start.
    pub fn redeliver(&self, queue: &str) -> Vec<Event> {
        let mut events = Vec::new();
        for c in self.open.values() {
            events.push(Event::Offer(offer(c, queue)));
            events.push(Event::ConversationRules(rules(c)));
            events.extend(
                c.lines
                    .iter()
                    .map(|(id, text, _)| Event::MessageReceived(message(c, id, text))),
            );
        }
        events
    }
}

fn new_conversation(n: u64, visibility: Visibility, id: &str, from: &Author) -> Conversation {
    let prefix = match visibility {
        Visibility::Private => "x-dm",
        Visibility::Public => "x-public",
    };
    Conversation {
        interaction: format!("{prefix}-{n}"),
        external_id: format!("twitter:{id}"),
        visibility,
        user_id: from.id.clone(),
        name: if from.name.is_empty() {
            format!("X user {}", from.id)
        } else {
            from.name.clone()
        },
        handle: from.handle.clone(),
        reply_to: None,
        moved_to_dm: false,
        lines: vec![],
    }
}

fn address(c: &Conversation) -> Address {
    Address::new(Address::SOCIAL, format!("x:@{}", c.handle))
}

fn offer(c: &Conversation, queue: &str) -> Offer {
    let subject = match c.visibility {
        Visibility::Private => format!("X direct message: @{}", c.handle),
        Visibility::Public => format!("PUBLIC X mention: @{}", c.handle),
    };
    Offer {
        interaction: InteractionId::new(&c.interaction),
        external_id: c.external_id.clone(),
        channel: ChannelKind::new(CHANNEL),
        media: Media::Conversation,
        route: Route::queue(queue),
        contact: Contact {
            display_name: Some(c.name.clone()),
            addresses: vec![address(c)],
        },
        subject: Some(subject),
        case_data: case_data(c),
        actions: actions(c),
        priority: 0,
    }
}

fn message(c: &Conversation, id: &str, text: &str) -> MessageReceived {
    MessageReceived {
        interaction: InteractionId::new(&c.interaction),
        from: Party {
            id: format!("customer-{}", c.user_id),
            role: Party::CUSTOMER.into(),
            display_name: c.name.clone(),
            address: Some(address(c)),
        },
        message: MessageContent {
            id: id.to_string(),
            text: text.to_string(),
            attachments: vec![],
        },
    }
}

fn field(key: &str, label: &str, value: String) -> CaseField {
    CaseField {
        key: key.into(),
        label: Some(label.into()),
        value,
    }
}

/// The case data: who, whether replies are public, and the length rule.
pub fn case_data(c: &Conversation) -> Vec<CaseField> {
    let visibility = match (c.visibility, c.moved_to_dm) {
        (Visibility::Private, _) => "private: direct messages".to_string(),
        (Visibility::Public, false) => "PUBLIC: replies are posts everyone can read".to_string(),
        (Visibility::Public, true) => "moved to direct messages: replies are private".to_string(),
    };
    let mut fields = vec![
        field("x.handle", "X account", format!("@{}", c.handle)),
        field("x.visibility", "Visibility", visibility),
    ];
    if !c.replies_private() {
        fields.push(field(
            "x.length",
            "Reply length",
            format!("at most {MAX_WEIGHTED} as X counts (CJK and emoji 2, links {URL_WEIGHT})"),
        ));
    }
    fields
}

/// The longest direct message X accepts, in characters.
pub const MAX_DM: u32 = 10_000;

/// What a reply may be now (plugin-api 1.2): public posts are counted as X counts them, direct
/// messages by characters; X has no reply window.
pub fn rules(c: &Conversation) -> ConversationRules {
    let private = c.replies_private();
    ConversationRules {
        interaction: InteractionId::new(&c.interaction),
        can_reply: true,
        reason: if private {
            "Replies are direct messages".into()
        } else {
            "PUBLIC: replies are posts everyone can read".into()
        },
        window_closes_at: None,
        max_length: Some(if private { MAX_DM } else { MAX_WEIGHTED as u32 }),
        counting: if private {
            LengthCounting::Characters
        } else {
            LengthCounting::XWeighted
        },
        public: !private,
    }
}

fn actions(c: &Conversation) -> Vec<CustomAction> {
    if c.visibility == Visibility::Public {
        vec![CustomAction {
            id: MOVE_TO_DM.into(),
            label: "Continue in direct messages".into(),
            enabled: !c.moved_to_dm,
        }]
    } else {
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(id: &str, user: &str) -> Item {
        Item::Dm {
            id: id.into(),
            from: Author {
                id: user.into(),
                name: "Jo".into(),
                handle: "jo".into(),
            },
            text: format!("dm {id}"),
            at_ms: 1,
        }
    }

    fn mention(id: &str, user: &str) -> Item {
        Item::Mention {
            id: id.into(),
            from: Author {
                id: user.into(),
                name: "Jo".into(),
                handle: "jo".into(),
            },
            text: format!("@acme {id}"),
            at_ms: 2,
        }
    }

    #[test]
    fn dms_and_mentions_of_one_customer_are_two_conversations_and_repeats_are_dropped() {
        let mut state = Conversations::default();
        let plan = state.plan(vec![dm("d1", "7"), mention("t1", "7"), dm("d1", "7")]);
        assert_eq!(plan.duplicates, ["d1"]);
        let mut events = Vec::new();
        for change in plan.changes {
            state.apply(change.clone());
            events.extend(state.events(&change, "social"));
        }
        let offers: Vec<&Offer> = events
            .iter()
            .filter_map(|e| match e {
                Event::Offer(o) => Some(o),
                _ => None,
            })
            .collect();
        assert_eq!(offers.len(), 2);
        assert!(
            offers[1]
                .subject
                .as_deref()
                .is_some_and(|s| s.starts_with("PUBLIC"))
        );
        assert_eq!(offers[1].actions[0].id, MOVE_TO_DM);
        let (_, public) = state
            .by_interaction(offers[1].interaction.as_str())
            .expect("open");
        assert_eq!(public.reply_to.as_deref(), Some("t1"));
        assert!(!public.replies_private());
        let again = state.plan(vec![mention("t1", "7"), dm("d2", "7")]);
        assert_eq!(again.duplicates, ["t1"]);
        assert_eq!(again.changes.len(), 1, "d2 joins the open DM conversation");
    }
}
