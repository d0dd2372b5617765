//! The open Messenger conversations and what a webhook changes in them: one interaction per
//! customer (by Page-scoped id) until the agent ends it, message ids seen (duplicates), receipts.
//! No I/O: `plan` decides, the caller stores the changes, then `apply` makes them true.

use crate::payload::{Attachment, Item};
use crate::show::{message, offer, short, shown};
use agentdesk_social::journal::Journaled;
use plugin_api::{ChannelKind, Event};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The channel kind.
pub const CHANNEL: &str = ChannelKind::FACEBOOK;
/// Message ids are remembered this long (Meta retries a failed delivery for hours, not days).
pub const REMEMBER_MS: u64 = 7 * 24 * 3600 * 1000;

/// Who wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Author {
    /// The customer.
    Customer,
    /// Someone answering from the Page's own inbox or phone (an echo not from this app).
    PageInbox,
}

/// A stored attachment reference (the file stays at Meta's URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttachment {
    /// image, video, audio, file.
    pub kind: String,
    /// Meta's URL.
    pub url: Option<String>,
    /// The downloaded copy in the data directory, when the download worked.
    #[serde(default)]
    pub file: Option<plugin_api::AttachmentRef>,
}

/// One message of a conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Meta's message id.
    pub mid: String,
    /// Who wrote it.
    pub author: Author,
    /// The text.
    pub text: String,
    /// A quick reply's or postback's payload.
    #[serde(default)]
    pub payload: Option<String>,
    /// Attachments.
    #[serde(default)]
    pub attachments: Vec<StoredAttachment>,
    /// When Meta received it (ms since the epoch).
    pub at_ms: u64,
}

/// An open conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Our interaction id.
    pub interaction: String,
    /// The customer's name from their Graph profile, when it could be looked up.
    #[serde(default)]
    pub name: Option<String>,
    /// The offer's external id (from the first message id).
    pub external_id: String,
    /// When the customer last wrote (the window runs from here).
    pub last_customer_ms: u64,
    /// The last quick-reply or postback payload.
    #[serde(default)]
    pub last_payload: Option<String>,
    /// Delivery receipt watermark.
    #[serde(default)]
    pub delivered_ms: u64,
    /// Read receipt watermark.
    #[serde(default)]
    pub read_ms: u64,
    /// Every line, in order.
    pub lines: Vec<Line>,
}

/// A change, as written to the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A customer's first message opened a conversation.
    Opened {
        /// The customer.
        psid: String,
        /// Our id.
        interaction: String,
        /// The offer's external id.
        external_id: String,
        /// The customer's name, when the profile lookup worked.
        #[serde(default)]
        name: Option<String>,
    },
    /// A line joined the customer's open conversation.
    Line {
        /// The customer.
        psid: String,
        /// The line.
        line: Line,
    },
    /// A receipt moved a watermark.
    Receipt {
        /// The customer.
        psid: String,
        /// True for a read receipt, false for delivery.
        read: bool,
        /// The watermark.
        watermark: u64,
    },
    /// The conversation ended (the agent ended it, or the core declined it).
    Closed {
        /// The customer.
        psid: String,
    },
    /// Message ids older than this were forgotten.
    Forgot {
        /// ms since the epoch.
        before_ms: u64,
    },
}

/// Every open conversation and the message ids seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversations {
    open: BTreeMap<String, Conversation>,
    /// Message id → when it was stored.
    seen: BTreeMap<String, u64>,
    next: u64,
}

/// What a webhook's items mean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// To store, then apply.
    pub changes: Vec<Change>,
    /// `metadata` of our own echoes (confirm sends whose outcome was unknown).
    pub own_echoes: Vec<String>,
    /// Message ids already stored: dropped.
    pub duplicates: Vec<String>,
    /// Items not acted on, with why (logged and counted by the caller).
    pub ignored: Vec<String>,
}

/// What the events need besides the state.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// The queue offers go to.
    pub queue: &'a str,
    /// Whether the HUMAN_AGENT tag is enabled.
    pub human_agent_tag: bool,
    /// Now, ms since the epoch.
    pub now_ms: u64,
}

impl Journaled for Conversations {
    type Change = Change;

    fn apply(&mut self, change: Change) {
        match change {
            Change::Opened {
                psid,
                interaction,
                external_id,
                name,
            } => {
                self.next += 1;
                self.open.insert(
                    psid,
                    Conversation {
                        interaction,
                        name,
                        external_id,
                        last_customer_ms: 0,
                        last_payload: None,
                        delivered_ms: 0,
                        read_ms: 0,
                        lines: Vec::new(),
                    },
                );
            }
            Change::Line { psid, line } => {
                self.seen.insert(line.mid.clone(), line.at_ms);
                if let Some(c) = self.open.get_mut(&psid) {
                    if line.author == Author::Customer {
                        c.last_customer_ms = c.last_customer_ms.max(line.at_ms);
                        if line.payload.is_some() {
                            c.last_payload.clone_from(&line.payload);
                        }
                    }
                    c.lines.push(line);
                }
            }
            Change::Receipt {
                psid,
                read,
                watermark,
            } => {
                if let Some(c) = self.open.get_mut(&psid) {
                    let mark = if read {
                        &mut c.read_ms
                    } else {
                        &mut c.delivered_ms
                    };
                    *mark = (*mark).max(watermark);
                }
            }
            Change::Closed { psid } => {
                self.open.remove(&psid);
            }
            Change::Forgot { before_ms } => self.seen.retain(|_, at| *at >= before_ms),
        }
    }
}

fn stored(attachments: &[Attachment]) -> Vec<StoredAttachment> {
    attachments
        .iter()
        .map(|a| StoredAttachment {
            kind: a.kind.clone(),
            url: a.url.clone(),
            file: a.file.clone(),
        })
        .collect()
}

impl Conversations {
    /// Number of open conversations.
    pub fn len(&self) -> usize {
        self.open.len()
    }
    /// True when none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
    /// The open conversation of a customer.
    pub fn get(&self, psid: &str) -> Option<&Conversation> {
        self.open.get(psid)
    }
    /// Whether a message id is stored already.
    pub fn has_seen(&self, mid: &str) -> bool {
        self.seen.contains_key(mid)
    }
    /// The customer of an interaction.
    pub fn by_interaction(&self, interaction: &str) -> Option<(&str, &Conversation)> {
        self.open
            .iter()
            .find(|(_, c)| c.interaction == interaction)
            .map(|(p, c)| (p.as_str(), c))
    }

    /// Customers whose next message would open a conversation (their profile is looked up first).
    pub fn newcomers<'a>(&self, items: &'a [Item]) -> BTreeSet<&'a str> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Customer { psid, .. } if !self.open.contains_key(psid) => Some(psid.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Decides what the items of one webhook change (`names`: profile names looked up).
    pub fn plan(
        &self,
        items: Vec<Item>,
        our_app_id: &str,
        names: &BTreeMap<String, String>,
    ) -> Plan {
        let mut plan = Plan::default();
        let mut batch_mids = BTreeSet::new();
        let mut opened: BTreeMap<String, ()> = BTreeMap::new();
        let mut next = self.next;
        for item in items {
            match item {
                Item::Customer {
                    psid,
                    mid,
                    text,
                    payload,
                    attachments,
                    at_ms,
                } => {
                    if self.seen.contains_key(&mid) || !batch_mids.insert(mid.clone()) {
                        plan.duplicates.push(mid);
                        continue;
                    }
                    if !self.open.contains_key(&psid) && !opened.contains_key(&psid) {
                        next += 1;
                        opened.insert(psid.clone(), ());
                        plan.changes.push(Change::Opened {
                            psid: psid.clone(),
                            interaction: format!("fb-{next}-{}", short(&mid)),
                            external_id: format!("facebook:{mid}"),
                            name: names.get(&psid).cloned(),
                        });
                    }
                    plan.changes.push(Change::Line {
                        psid,
                        line: Line {
                            mid,
                            author: Author::Customer,
                            text,
                            payload,
                            attachments: stored(&attachments),
                            at_ms,
                        },
                    });
                }
                // Echoes: our app's are our own sends; any other (the Page inbox, the Pages app,
                // another tool of the Page) is an outgoing line the agent must see.
                Item::Echo {
                    psid,
                    mid,
                    text,
                    app_id,
                    metadata,
                    at_ms,
                } => {
                    if app_id.as_deref() == Some(our_app_id) {
                        // Our own send coming back: the agent's line is already shown.
                        plan.own_echoes.extend(metadata);
                        continue;
                    }
                    if self.seen.contains_key(&mid) || !batch_mids.insert(mid.clone()) {
                        plan.duplicates.push(mid);
                        continue;
                    }
                    if !self.open.contains_key(&psid) && !opened.contains_key(&psid) {
                        plan.ignored.push(format!(
                            "a Page inbox reply to {psid}, who has no open conversation"
                        ));
                        continue;
                    }
                    plan.changes.push(Change::Line {
                        psid,
                        line: Line {
                            mid,
                            author: Author::PageInbox,
                            text,
                            payload: None,
                            attachments: vec![],
                            at_ms,
                        },
                    });
                }
                Item::Delivered { psid, .. } | Item::Read { psid, .. }
                    if !self.open.contains_key(&psid) =>
                {
                    plan.ignored.push(format!(
                        "a receipt from {psid}, who has no open conversation"
                    ));
                }
                Item::Delivered { psid, watermark } => plan.changes.push(Change::Receipt {
                    psid,
                    read: false,
                    watermark,
                }),
                Item::Read { psid, watermark } => plan.changes.push(Change::Receipt {
                    psid,
                    read: true,
                    watermark,
                }),
                Item::Ignored(why) => plan.ignored.push(why),
            }
        }
        plan
    }

    /// The events a change (already applied) means for the host.
    pub fn events(&self, change: &Change, view: &View<'_>) -> Vec<Event> {
        match change {
            Change::Opened { psid, .. } => self
                .open
                .get(psid)
                .map(|c| vec![Event::Offer(offer(psid, c, view))])
                .unwrap_or_default(),
            Change::Line { psid, line } => {
                let Some(c) = self.open.get(psid) else {
                    return vec![];
                };
                let mut events = vec![Event::MessageReceived(message(psid, c, line))];
                if line.author == Author::Customer {
                    events.extend(shown(psid, c, view));
                }
                events
            }
            Change::Receipt { psid, .. } => self
                .open
                .get(psid)
                .map(|c| shown(psid, c, view))
                .unwrap_or_default(),
            Change::Closed { .. } | Change::Forgot { .. } => vec![],
        }
    }

    /// Everything stored about the open conversations, as events, for the host after a start:
    /// the core drops what it already has (offers by external id, messages by id and content).
    pub fn redeliver(&self, view: &View<'_>) -> Vec<Event> {
        let mut events = Vec::new();
        for (psid, c) in &self.open {
            events.push(Event::Offer(offer(psid, c, view)));
            events.extend(
                c.lines
                    .iter()
                    .map(|l| Event::MessageReceived(message(psid, c, l))),
            );
            events.extend(shown(psid, c, view));
        }
        events
    }

    /// The case data of every open conversation (the window's time left moves on).
    pub fn refresh(&self, view: &View<'_>) -> Vec<Event> {
        self.open
            .iter()
            .flat_map(|(psid, c)| shown(psid, c, view))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{Offer, Party};

    fn customer(psid: &str, mid: &str, at_ms: u64) -> Item {
        Item::Customer {
            psid: psid.into(),
            mid: mid.into(),
            text: format!("text of {mid}"),
            payload: None,
            attachments: vec![],
            at_ms,
        }
    }

    fn echo(psid: &str, mid: &str, app_id: Option<&str>, metadata: Option<&str>) -> Item {
        Item::Echo {
            psid: psid.into(),
            mid: mid.into(),
            text: "from the Page".into(),
            app_id: app_id.map(String::from),
            metadata: metadata.map(String::from),
            at_ms: 5,
        }
    }

    fn run(state: &mut Conversations, items: Vec<Item>) -> (Plan, Vec<Event>) {
        let plan = state.plan(items, "APP", &BTreeMap::new());
        let view = View {
            queue: "social",
            human_agent_tag: false,
            now_ms: 10,
        };
        let mut events = Vec::new();
        for change in plan.changes.clone() {
            state.apply(change.clone());
            events.extend(state.events(&change, &view));
        }
        (plan, events)
    }

    #[test]
    fn the_first_message_offers_later_ones_join_and_repeats_are_dropped() {
        let mut state = Conversations::default();
        let (_, events) = run(
            &mut state,
            vec![
                customer("U1", "m1", 1),
                customer("U1", "m2", 2),
                customer("U1", "m1", 1),
            ],
        );
        let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
        assert_eq!(
            kinds,
            [
                "offer",
                "message-received",
                "case-data-changed",
                "message-received",
                "case-data-changed"
            ]
        );
        let (plan, events) = run(
            &mut state,
            vec![customer("U1", "m2", 2), customer("U1", "m3", 3)],
        );
        assert_eq!(plan.duplicates, ["m2"]);
        assert!(matches!(&events[0], Event::MessageReceived(m) if m.message.id == "m3"));
        assert_eq!(state.get("U1").map(|c| c.lines.len()), Some(3));
    }

    #[test]
    fn our_echoes_are_hidden_and_page_inbox_echoes_are_outgoing_lines() {
        let mut state = Conversations::default();
        run(&mut state, vec![customer("U1", "m1", 1)]);
        let (plan, events) = run(
            &mut state,
            vec![
                echo("U1", "e1", Some("APP"), Some("agentdesk:7")),
                echo("U1", "e2", Some("263902037430900"), None),
                echo("U9", "e3", None, None),
            ],
        );
        assert_eq!(plan.own_echoes, ["agentdesk:7"]);
        assert_eq!(plan.ignored.len(), 1, "U9 has no conversation");
        let [Event::MessageReceived(line)] = events.as_slice() else {
            panic!("one line: {events:?}");
        };
        assert_eq!(
            (line.from.role.as_str(), line.message.id.as_str()),
            (Party::AGENT, "e2")
        );
    }

    #[test]
    fn after_the_agent_ends_it_the_next_message_is_a_new_offer_and_everything_open_is_redelivered()
    {
        let mut state = Conversations::default();
        run(&mut state, vec![customer("U1", "m1", 1)]);
        state.apply(Change::Closed { psid: "U1".into() });
        let (_, events) = run(
            &mut state,
            vec![customer("U1", "m2", 2), customer("U2", "n1", 2)],
        );
        let offers: Vec<&Offer> = events
            .iter()
            .filter_map(|e| match e {
                Event::Offer(o) => Some(o),
                _ => None,
            })
            .collect();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].external_id, "facebook:m2");
        assert_ne!(offers[0].interaction, offers[1].interaction);
        let view = View {
            queue: "social",
            human_agent_tag: false,
            now_ms: 10,
        };
        let again = state.redeliver(&view);
        assert_eq!(again.iter().filter(|e| e.kind() == "offer").count(), 2);
        assert_eq!(
            again
                .iter()
                .filter(|e| e.kind() == "message-received")
                .count(),
            2
        );
    }
}
