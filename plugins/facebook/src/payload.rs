//! Meta's webhook payload (`object: "page"`, `entry[].messaging[]`) read into the few things the
//! channel acts on. The only module that knows the JSON shape of what Meta sends.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    messaging: Vec<Messaging>,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Messaging {
    sender: Id,
    recipient: Id,
    #[serde(default)]
    timestamp: u64,
    message: Option<Message>,
    postback: Option<Postback>,
    delivery: Option<Delivery>,
    read: Option<Read>,
}

#[derive(Debug, Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<RawAttachment>,
    #[serde(default)]
    is_echo: bool,
    app_id: Option<Value>,
    metadata: Option<String>,
    quick_reply: Option<QuickReply>,
}

#[derive(Debug, Deserialize)]
struct QuickReply {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct RawAttachment {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Postback {
    mid: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    payload: String,
}

#[derive(Debug, Deserialize)]
struct Delivery {
    #[serde(default)]
    watermark: u64,
}

#[derive(Debug, Deserialize)]
struct Read {
    #[serde(default)]
    watermark: u64,
}

/// An attachment as Meta describes it (the file stays at Meta's URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// image, video, audio, file, ...
    pub kind: String,
    /// Where Meta serves it, when given.
    pub url: Option<String>,
    /// The copy in the plugin's data directory, once downloaded.
    pub file: Option<plugin_api::AttachmentRef>,
}

/// One thing that happened, in the channel's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The customer wrote (a message, a quick reply or a postback button).
    Customer {
        /// Page-scoped id of the customer.
        psid: String,
        /// Message id (for a postback without one: derived from its timestamp).
        mid: String,
        /// The text (a postback's button title).
        text: String,
        /// Quick reply or postback payload.
        payload: Option<String>,
        /// Attachments.
        attachments: Vec<Attachment>,
        /// When Meta received it (ms since the epoch).
        at_ms: u64,
    },
    /// A copy of a message the Page sent to the customer.
    Echo {
        /// The customer it went to.
        psid: String,
        /// Message id.
        mid: String,
        /// The text.
        text: String,
        /// The app that sent it (absent when a person used the Page inbox).
        app_id: Option<String>,
        /// The Send API's `metadata`, returned as it was sent.
        metadata: Option<String>,
        /// When it was sent.
        at_ms: u64,
    },
    /// The customer's device received our messages up to `watermark`.
    Delivered {
        /// The customer.
        psid: String,
        /// ms since the epoch.
        watermark: u64,
    },
    /// The customer read our messages up to `watermark`.
    Read {
        /// The customer.
        psid: String,
        /// ms since the epoch.
        watermark: u64,
    },
    /// Something this channel does not act on (counted and logged by the caller).
    Ignored(String),
}

/// Why a body is not a Messenger webhook.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of the expected shape.
    #[error("not a Messenger webhook: {0}")]
    Malformed(#[from] serde_json::Error),
    /// JSON, but for another product (Instagram, WhatsApp, ...).
    #[error("a webhook for `{0}`, not for a Page")]
    OtherObject(String),
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads every entry and every messaging item of a webhook body, in order.
pub fn parse(body: &[u8]) -> Result<Vec<Item>, PayloadError> {
    let webhook: Webhook = serde_json::from_slice(body)?;
    if webhook.object != "page" {
        return Err(PayloadError::OtherObject(webhook.object));
    }
    let mut items = Vec::new();
    for entry in webhook.entry {
        for m in entry.messaging {
            items.push(item(m));
        }
    }
    Ok(items)
}

fn item(m: Messaging) -> Item {
    if let Some(message) = m.message {
        let attachments = message
            .attachments
            .iter()
            .map(|a| Attachment {
                kind: a.kind.clone(),
                url: a
                    .payload
                    .as_ref()
                    .and_then(|p| p.get("url"))
                    .and_then(Value::as_str)
                    .map(String::from),
                file: None,
            })
            .collect();
        if message.is_echo {
            return Item::Echo {
                psid: m.recipient.id,
                mid: message.mid,
                text: message.text.unwrap_or_default(),
                app_id: message.app_id.as_ref().map(text_of),
                metadata: message.metadata,
                at_ms: m.timestamp,
            };
        }
        return Item::Customer {
            psid: m.sender.id,
            mid: message.mid,
            text: message.text.unwrap_or_default(),
            payload: message.quick_reply.map(|q| q.payload),
            attachments,
            at_ms: m.timestamp,
        };
    }
    if let Some(postback) = m.postback {
        let mid = postback
            .mid
            .unwrap_or_else(|| format!("postback-{}-{}", m.sender.id, m.timestamp));
        return Item::Customer {
            psid: m.sender.id,
            mid,
            text: postback.title,
            payload: Some(postback.payload),
            attachments: vec![],
            at_ms: m.timestamp,
        };
    }
    if let Some(delivery) = m.delivery {
        return Item::Delivered {
            psid: m.sender.id,
            watermark: delivery.watermark,
        };
    }
    if let Some(read) = m.read {
        return Item::Read {
            psid: m.sender.id,
            watermark: read.watermark,
        };
    }
    Item::Ignored(format!(
        "an event from {} of a kind not handled",
        m.sender.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batched_post_gives_every_item_of_every_entry_in_order() {
        let body = br#"{"object":"page","entry":[
          {"id":"P","time":1,"messaging":[
            {"sender":{"id":"U1"},"recipient":{"id":"P"},"timestamp":10,
             "message":{"mid":"m1","text":"hi","quick_reply":{"payload":"YES"}}},
            {"sender":{"id":"P"},"recipient":{"id":"U1"},"timestamp":11,
             "message":{"mid":"m2","text":"ok","is_echo":true,"app_id":1234,"metadata":"agentdesk:x"}}]},
          {"id":"P","time":2,"messaging":[
            {"sender":{"id":"U2"},"recipient":{"id":"P"},"timestamp":12,
             "postback":{"mid":"m3","title":"Track order","payload":"TRACK"}},
            {"sender":{"id":"U2"},"recipient":{"id":"P"},"timestamp":13,
             "message":{"mid":"m4","attachments":[{"type":"image","payload":{"url":"https://x/i.png"}}]}},
            {"sender":{"id":"U2"},"recipient":{"id":"P"},"timestamp":14,"read":{"watermark":13}}]}]}"#;
        let items = parse(body).expect("parse");
        assert_eq!(items.len(), 5);
        assert!(
            matches!(&items[0], Item::Customer { psid, payload: Some(p), .. } if psid == "U1" && p == "YES")
        );
        assert_eq!(
            items[1],
            Item::Echo {
                psid: "U1".into(),
                mid: "m2".into(),
                text: "ok".into(),
                app_id: Some("1234".into()),
                metadata: Some("agentdesk:x".into()),
                at_ms: 11
            }
        );
        assert!(
            matches!(&items[2], Item::Customer { text, payload: Some(p), .. } if text == "Track order" && p == "TRACK")
        );
        assert!(matches!(&items[3], Item::Customer { attachments, .. }
            if attachments[0] == Attachment { kind: "image".into(), url: Some("https://x/i.png".into()), file: None }));
        assert_eq!(
            items[4],
            Item::Read {
                psid: "U2".into(),
                watermark: 13
            }
        );
    }

    #[test]
    fn other_products_and_broken_json_are_refused() {
        assert!(matches!(
            parse(br#"{"object":"instagram","entry":[]}"#),
            Err(PayloadError::OtherObject(o)) if o == "instagram"
        ));
        assert!(matches!(
            parse(b"{\"object\":"),
            Err(PayloadError::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"object":"page","entry":[{"messaging":[{"sender":{}}]}]}"#),
            Err(PayloadError::Malformed(_))
        ));
    }
}
