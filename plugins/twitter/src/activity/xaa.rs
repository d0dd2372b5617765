//! The X Activity API's event envelope (`data.event_uuid`, `filter`, `event_type`, `payload`,
//! `includes`) as X documents it (docs.x.com, "X Activity API event payload examples"):
//! `dm.received` / `dm.sent` carry the legacy `direct_message_events` with a `users` map whose
//! values are wrapped in `data`; `post.mention.create` carries a v2 Post (`id`, `text`,
//! `author_id`, `created_at`) with its author in `includes.users`. Other event types are ignored.

use super::{ActivityError, Author, DmEvent, Item, direct_messages};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    filter: Filter,
    event_type: String,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    includes: Includes,
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    user_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Includes {
    #[serde(default)]
    users: Vec<User>,
}

/// A v2 user; X's examples give it bare or wrapped in `data`, both are read.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum User {
    Wrapped { data: V2User },
    Bare(V2User),
}

impl User {
    fn get(&self) -> &V2User {
        match self {
            User::Wrapped { data } | User::Bare(data) => data,
        }
    }
}

#[derive(Debug, Deserialize)]
struct V2User {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    username: String,
}

#[derive(Debug, Deserialize)]
struct DmPayload {
    #[serde(default)]
    direct_message_events: Vec<DmEvent>,
    #[serde(default)]
    users: BTreeMap<String, User>,
}

#[derive(Debug, Deserialize)]
struct Post {
    id: String,
    #[serde(default)]
    text: String,
    author_id: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    referenced_tweets: Vec<Reference>,
    /// The whole text of a long post (`text` is then cut).
    note_tweet: Option<NoteTweet>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct NoteTweet {
    text: String,
}

/// Reads one event envelope's `data`.
pub fn parse(data: Value, account: &str) -> Result<Vec<Item>, ActivityError> {
    let event: Event = serde_json::from_value(data)?;
    match event.filter.user_id {
        Some(user) if user == account => {}
        Some(user) => return Err(ActivityError::OtherAccount(user)),
        None => {
            return Ok(vec![Item::Ignored(format!(
                "an X Activity event of type {} not filtered on a user",
                event.event_type
            ))]);
        }
    }
    match event.event_type.as_str() {
        "dm.received" | "dm.sent" => {
            let payload: DmPayload = serde_json::from_value(event.payload)?;
            let users = &payload.users;
            Ok(direct_messages(
                payload.direct_message_events,
                account,
                |id| {
                    users
                        .get(id)
                        .map(|u| (u.get().name.clone(), u.get().username.clone()))
                },
            ))
        }
        "post.mention.create" => {
            let post: Post = serde_json::from_value(event.payload)?;
            if post.author_id == account {
                return Ok(vec![Item::Ignored(format!("our own post {}", post.id))]);
            }
            if post.referenced_tweets.iter().any(|r| r.kind == "retweeted") {
                return Ok(vec![Item::Ignored(format!("a repost {}", post.id))]);
            }
            let author = event
                .includes
                .users
                .iter()
                .map(User::get)
                .find(|u| u.id == post.author_id);
            Ok(vec![Item::Mention {
                from: Author {
                    id: post.author_id.clone(),
                    name: author.map(|u| u.name.clone()).unwrap_or_default(),
                    handle: author.map(|u| u.username.clone()).unwrap_or_default(),
                },
                text: post.note_tweet.map_or(post.text, |n| n.text),
                at_ms: rfc3339_ms(&post.created_at).unwrap_or(0),
                id: post.id,
            }])
        }
        other => Ok(vec![Item::Ignored(format!(
            "an X Activity event of type {other}"
        ))]),
    }
}

/// `2026-07-24T21:23:23.000Z` (UTC, as X writes it) in ms since the epoch.
fn rfc3339_ms(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    if text.len() < 20 || !text.ends_with('Z') {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let millis = match text.get(19..20) {
        Some(".") => {
            let fraction = text.get(20..text.len() - 1)?;
            let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
            digits.parse::<i64>().ok()?
        }
        _ => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_dates_become_epoch_milliseconds() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        // 1516403560557 ms is 2018-01-19T23:12:40.557Z.
        assert_eq!(
            rfc3339_ms("2018-01-19T23:12:40.557Z"),
            Some(1_516_403_560_557)
        );
        assert_eq!(rfc3339_ms("2024-02-29T12:00:00Z"), Some(1_709_208_000_000));
        assert_eq!(rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn a_dm_and_a_mention_in_the_documented_envelope_are_read_and_our_own_ignored() {
        let dm = br#"{"data":{"event_uuid":"-6850472171600526495","filter":{"user_id":"100"},
          "event_type":"dm.received","tag":"dm-inbound","payload":{"direct_message_events":[
            {"type":"message_create","id":"d1","created_timestamp":"1516403560557",
             "message_create":{"target":{"recipient_id":"100"},"sender_id":"200",
               "message_data":{"text":"hello!","entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],
            "users":{"200":{"data":{"id":"200","name":"Jordan","username":"jordan"}}}}}}"#;
        let items = super::super::parse(dm, "100").expect("dm");
        assert_eq!(
            items,
            vec![Item::Dm {
                id: "d1".into(),
                from: Author {
                    id: "200".into(),
                    name: "Jordan".into(),
                    handle: "jordan".into()
                },
                text: "hello!".into(),
                at_ms: 1516403560557
            }]
        );
        let mention = br#"{"data":{"event_uuid":"2080765813578191303","filter":{"user_id":"100"},
          "event_type":"post.mention.create","tag":"mentions","payload":{
            "created_at":"2018-01-19T23:12:40.557Z","conversation_id":"t1","text":"hey @acme",
            "entities":{"mentions":[{"start":4,"end":9,"username":"acme","id":"100"}]},
            "author_id":"300","id":"t1","lang":"und"},
          "includes":{"users":[{"id":"300","name":"Pat","username":"pat"},
                               {"id":"100","name":"Acme","username":"acme"}]}}}"#;
        let items = super::super::parse(mention, "100").expect("mention");
        assert_eq!(
            items,
            vec![Item::Mention {
                id: "t1".into(),
                from: Author {
                    id: "300".into(),
                    name: "Pat".into(),
                    handle: "pat".into()
                },
                text: "hey @acme".into(),
                at_ms: 1516403560557
            }]
        );
        let own = br#"{"data":{"filter":{"user_id":"100"},"event_type":"dm.sent","payload":{
          "direct_message_events":[{"type":"message_create","id":"d2","created_timestamp":"1",
            "message_create":{"target":{"recipient_id":"200"},"sender_id":"100","message_data":{"text":"hi"}}}]}}}"#;
        assert!(matches!(
            &super::super::parse(own, "100").expect("own")[..],
            [Item::Ignored(_)]
        ));
        let other =
            br#"{"data":{"filter":{"user_id":"999"},"event_type":"dm.received","payload":{}}}"#;
        assert!(matches!(
            super::super::parse(other, "100"),
            Err(ActivityError::OtherAccount(_))
        ));
        let profile = br#"{"data":{"filter":{"user_id":"100"},"event_type":"profile.update.bio",
          "payload":{"before":"a","after":"b"}}}"#;
        assert!(matches!(
            &super::super::parse(profile, "100").expect("profile")[..],
            [Item::Ignored(_)]
        ));
        let broken = br#"{"data":{"filter":{"user_id":"100"},"event_type":"post.mention.create","payload":{"text":"no id"}}}"#;
        assert!(matches!(
            super::super::parse(broken, "100"),
            Err(ActivityError::Malformed(_))
        ));
    }
}
