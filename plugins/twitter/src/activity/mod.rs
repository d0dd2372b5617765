//! X's webhook payloads read into the channel's own items. The only module that knows X's JSON;
//! two formats, told apart by their shape: the Account Activity API's (`for_user_id`,
//! `direct_message_events`, `tweet_create_events`: [`account`]) and the X Activity API's event
//! envelope (`data.event_type`, `dm.received`, `post.mention.create`: [`xaa`]). Both give the
//! same items, so a DM or a mention is one interaction whichever format brought it.

mod account;
mod xaa;

use serde::Deserialize;

/// Who wrote, as X names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The user id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `@handle` without the `@`.
    pub handle: String,
}

/// One thing that happened, in the channel's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A direct message to the account.
    Dm {
        /// The DM event id.
        id: String,
        /// The sender.
        from: Author,
        /// The text.
        text: String,
        /// ms since the epoch.
        at_ms: u64,
    },
    /// A public post mentioning (or replying to) the account.
    Mention {
        /// The post id (replies go to it).
        id: String,
        /// The author.
        from: Author,
        /// The text.
        text: String,
        /// ms since the epoch.
        at_ms: u64,
    },
    /// Something the account itself sent (our own DM or post coming back), or not for us.
    Ignored(String),
}

/// Why a body is not an event of X's.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// Not JSON of an expected shape.
    #[error("not an X Account Activity or X Activity API event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// For another account than ours.
    #[error("an event for account {0}, not ours")]
    OtherAccount(String),
}

/// Reads every DM and mention of one webhook body, in order, in whichever of X's formats it is.
pub fn parse(body: &[u8], account: &str) -> Result<Vec<Item>, ActivityError> {
    #[derive(Deserialize)]
    struct Shape {
        data: Option<serde_json::Value>,
    }
    let shape: Shape = serde_json::from_slice(body)?;
    match shape.data {
        Some(data) if data.get("event_type").is_some() => xaa::parse(data, account),
        _ => account::parse(body, account),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct DmEvent {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    created_timestamp: String,
    message_create: Option<MessageCreate>,
}

#[derive(Debug, Deserialize)]
struct MessageCreate {
    sender_id: String,
    target: Target,
    message_data: MessageData,
}

#[derive(Debug, Deserialize)]
struct Target {
    recipient_id: String,
}

#[derive(Debug, Deserialize)]
struct MessageData {
    #[serde(default)]
    text: String,
}

/// The items of direct message events (the same objects in both formats); `user` gives a
/// sender's name and handle when the body has them.
fn direct_messages(
    events: Vec<DmEvent>,
    account: &str,
    user: impl Fn(&str) -> Option<(String, String)>,
) -> Vec<Item> {
    let mut items = Vec::new();
    for dm in events {
        let Some(message) = dm.message_create.filter(|_| dm.kind == "message_create") else {
            items.push(Item::Ignored(format!(
                "a direct message event of type {}",
                dm.kind
            )));
            continue;
        };
        if message.sender_id == account {
            items.push(Item::Ignored(format!(
                "our own direct message {} to {}",
                dm.id, message.target.recipient_id
            )));
            continue;
        }
        let (name, handle) = user(&message.sender_id).unwrap_or_default();
        items.push(Item::Dm {
            id: dm.id,
            from: Author {
                id: message.sender_id,
                name,
                handle,
            },
            text: message.message_data.text,
            at_ms: dm.created_timestamp.parse().unwrap_or(0),
        });
    }
    items
}
