//! X's Account Activity API payload (`for_user_id`, `direct_message_events`,
//! `tweet_create_events`, `users`) read into the channel's items.

use super::{ActivityError, Author, DmEvent, Item, direct_messages};
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

/// Reads every DM and mention of one Account Activity body, in order.
pub fn parse(body: &[u8], account: &str) -> Result<Vec<Item>, ActivityError> {
    let activity: Activity = serde_json::from_slice(body)?;
    if activity.for_user_id != account {
        return Err(ActivityError::OtherAccount(activity.for_user_id));
    }
    let mut items = Vec::new();
    let users = &activity.users;
    items.extend(direct_messages(
        activity.direct_message_events,
        account,
        |id| {
            users
                .get(id)
                .map(|u| (u.name.clone(), u.screen_name.clone()))
        },
    ));
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
