//! X's Account Activity API payload (`for_user_id`, `direct_message_events`,
//! `tweet_create_events`, `users`) read into the channel's own items. The only module that knows
//! this JSON: the X Activity API (`dm.received`, `post.mention.create`) would be a second parser
//! producing the same items.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct Activity {
    for_user_id: String,
    #[serde(default)]
    direct_message_events: Vec<DmEvent>,
    #[serde(default)]
    tweet_create_events: Vec<Tweet>,
    #[serde(default)]
    users: BTreeMap<String, User>,
}

#[derive(Debug, Deserialize)]
struct DmEvent {
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

#[derive(Debug, Deserialize)]
struct User {
    #[serde(default)]
    name: String,
    #[serde(default)]
    screen_name: String,
}

#[derive(Debug, Deserialize)]
struct Tweet {
    id_str: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    truncated: bool,
    extended_tweet: Option<ExtendedTweet>,
    user: TweetUser,
    #[serde(default)]
    timestamp_ms: String,
    #[serde(default)]
    retweeted_status: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ExtendedTweet {
    full_text: String,
}

#[derive(Debug, Deserialize)]
struct TweetUser {
    id_str: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    screen_name: String,
}

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

/// Why a body is not an Account Activity event.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// Not JSON of the expected shape.
    #[error("not an Account Activity event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// For another account than ours.
    #[error("an event for account {0}, not ours")]
    OtherAccount(String),
}

/// Reads every DM and mention of one webhook body, in order.
pub fn parse(body: &[u8], account: &str) -> Result<Vec<Item>, ActivityError> {
    let activity: Activity = serde_json::from_slice(body)?;
    if activity.for_user_id != account {
        return Err(ActivityError::OtherAccount(activity.for_user_id));
    }
    let mut items = Vec::new();
    for dm in activity.direct_message_events {
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
        let user = activity.users.get(&message.sender_id);
        items.push(Item::Dm {
            id: dm.id,
            from: Author {
                id: message.sender_id.clone(),
                name: user.map(|u| u.name.clone()).unwrap_or_default(),
                handle: user.map(|u| u.screen_name.clone()).unwrap_or_default(),
            },
            text: message.message_data.text,
            at_ms: dm.created_timestamp.parse().unwrap_or(0),
        });
    }
    for tweet in activity.tweet_create_events {
        if tweet.user.id_str == account {
            items.push(Item::Ignored(format!("our own post {}", tweet.id_str)));
            continue;
        }
        if tweet.retweeted_status.is_some() {
            items.push(Item::Ignored(format!("a repost {}", tweet.id_str)));
            continue;
        }
        let text = match (tweet.truncated, tweet.extended_tweet) {
            (true, Some(extended)) => extended.full_text,
            _ => tweet.text,
        };
        items.push(Item::Mention {
            id: tweet.id_str,
            from: Author {
                id: tweet.user.id_str,
                name: tweet.user.name,
                handle: tweet.user.screen_name,
            },
            text,
            at_ms: tweet.timestamp_ms.parse().unwrap_or(0),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dms_and_mentions_are_read_and_our_own_are_ignored() {
        let body = br#"{"for_user_id":"100",
          "direct_message_events":[
            {"type":"message_create","id":"d1","created_timestamp":"1516403560557",
             "message_create":{"target":{"recipient_id":"100"},"sender_id":"200","message_data":{"text":"Hello"}}},
            {"type":"message_create","id":"d2","created_timestamp":"1516403560558",
             "message_create":{"target":{"recipient_id":"200"},"sender_id":"100","message_data":{"text":"our reply"}}}],
          "tweet_create_events":[
            {"id_str":"t1","text":"@acme short","truncated":true,"extended_tweet":{"full_text":"@acme the whole text"},
             "user":{"id_str":"300","name":"Pat","screen_name":"pat"},"timestamp_ms":"1516403560600"},
            {"id_str":"t2","text":"our public reply","user":{"id_str":"100","name":"Acme","screen_name":"acme"}}],
          "users":{"200":{"id":"200","name":"Jordan","screen_name":"jordan"}}}"#;
        let items = parse(body, "100").expect("parse");
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0],
            Item::Dm {
                id: "d1".into(),
                from: Author {
                    id: "200".into(),
                    name: "Jordan".into(),
                    handle: "jordan".into()
                },
                text: "Hello".into(),
                at_ms: 1516403560557
            }
        );
        assert!(matches!(&items[1], Item::Ignored(_)));
        assert!(matches!(&items[2], Item::Mention { text, .. } if text == "@acme the whole text"));
        assert!(matches!(&items[3], Item::Ignored(_)));
        assert!(matches!(
            parse(body, "999"),
            Err(ActivityError::OtherAccount(_))
        ));
    }
}
