//! The JSON messages between the widget and the server over the WebSocket. Wire types only;
//! what they do to a chat is in `session.rs`.
//!
//! Reliability: every event the server records in a chat has a sequence number (`seq`); a widget
//! that reconnects says the last `seq` it has (`resume`) and gets everything after it. Every
//! customer message has a client id (`cid`); the server acknowledges it (`ack`) once recorded, and
//! recognises a re-sent `cid`, so resending unacknowledged messages after a reconnect never
//! duplicates one.

use serde::{Deserialize, Serialize};

/// What the widget sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// Fields this version does not know are ignored, so a newer widget keeps working.
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// Start a new chat.
    Start {
        /// The customer's name.
        name: String,
        /// The customer's email address.
        email: String,
    },
    /// Continue a chat after a reconnect or a page reload.
    Resume {
        /// The secret the server handed out in `welcome`.
        token: String,
        /// The last `seq` the widget has (0: none).
        #[serde(default)]
        last_seq: u64,
    },
    /// A message from the customer.
    Message {
        /// The widget's id for it, unique within the chat.
        cid: String,
        /// Plain text.
        text: String,
    },
    /// The customer started or stopped typing.
    Typing {
        /// True while typing.
        typing: bool,
    },
    /// The customer ends the chat.
    Leave,
    /// The customer started co-browsing from this chat: the session's code (9 digits).
    Cobrowse {
        /// The code the co-browse script was given.
        code: String,
    },
}

/// Why a widget's text is not a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A JSON object whose `type` this version does not know (a newer widget's message).
    UnknownType(String),
    /// Not JSON, no `type`, or a known type with missing or mistyped fields.
    Malformed,
}

impl ClientMessage {
    /// Decodes a widget's text message.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        serde_json::from_str(text).map_err(|_| {
            #[derive(Deserialize)]
            struct Tagged {
                #[serde(rename = "type")]
                kind: String,
            }
            match serde_json::from_str::<Tagged>(text) {
                Ok(Tagged { kind }) if !KNOWN_TYPES.contains(&kind.as_str()) => {
                    ParseError::UnknownType(kind.chars().take(40).collect())
                }
                _ => ParseError::Malformed,
            }
        })
    }
}

/// The `type`s of [`ClientMessage`].
const KNOWN_TYPES: [&str; 6] = ["start", "resume", "message", "typing", "leave", "cobrowse"];

/// Who wrote a transcript line, as the widget shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Author {
    /// The customer.
    Customer,
    /// An agent.
    Agent,
    /// The chat service (greeting, notices).
    System,
}

/// One recorded event of a chat, numbered by `seq` (replayed on resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChatEvent {
    /// A message.
    Line {
        /// Who wrote it.
        author: Author,
        /// Their name.
        name: String,
        /// Plain text (the widget shows it as text, never as markup).
        text: String,
        /// The widget's id, for a customer's line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cid: Option<String>,
    },
    /// An agent joined.
    Joined {
        /// The agent's name.
        name: String,
    },
    /// An agent left.
    Left {
        /// The agent's name.
        name: String,
    },
    /// The chat ended.
    Ended {
        /// Why, in a sentence.
        reason: String,
    },
}

/// A recorded event with its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Numbered {
    /// Its sequence number within the chat, from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// The event.
    #[serde(flatten)]
    pub event: ChatEvent,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// The chat this connection is attached to.
    Welcome {
        /// The interaction id.
        chat: String,
        /// The secret to resume with (kept by the widget in its own storage).
        token: String,
        /// The customer's name.
        name: String,
        /// Whether the chat is over.
        ended: bool,
        /// The largest message accepted, in bytes of UTF-8 (the widget checks before sending).
        max_message_bytes: usize,
    },
    /// A recorded event.
    Event(Numbered),
    /// A customer message was recorded as `seq`.
    Ack {
        /// The widget's id.
        cid: String,
        /// Where it was recorded.
        seq: u64,
    },
    /// The chat's place in the queue (0: not queued any more).
    Queue {
        /// 1 for the next chat to be answered.
        position: usize,
    },
    /// An agent started or stopped typing.
    Typing {
        /// The agent's name.
        name: String,
        /// True while typing.
        typing: bool,
    },
    /// A notice not kept in the transcript (idle warning).
    Notice {
        /// The text.
        text: String,
    },
    /// The request could not be carried out; the connection stays open.
    Error {
        /// Why.
        message: String,
    },
}

impl ServerMessage {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail (string keys, no maps with other keys).
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"error\"}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_decode_and_garbage_is_an_error_not_a_panic() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"message","cid":"c1","text":"<b>hi</b>"}"#)
                .expect("message");
        assert_eq!(
            m,
            ClientMessage::Message {
                cid: "c1".into(),
                text: "<b>hi</b>".into()
            }
        );
        let resume: ClientMessage =
            serde_json::from_str(r#"{"type":"resume","token":"t"}"#).expect("resume");
        assert_eq!(
            resume,
            ClientMessage::Resume {
                token: "t".into(),
                last_seq: 0
            }
        );
        for bad in [
            "",
            "null",
            "{}",
            r#"{"type":"message","cid":1}"#,
            r#"{"type":"message","cid":"c1","text":"hi","text":"twice"}"#,
            "\u{0}\u{ffff}",
        ] {
            assert_eq!(
                ClientMessage::parse(bad),
                Err(ParseError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_newer_widgets_fields_are_ignored_and_its_new_types_are_told_apart_from_garbage() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"typing","typing":true,"draft":"hel"}"#),
            Ok(ClientMessage::Typing { typing: true })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"rate-agent","stars":5}"#),
            Err(ParseError::UnknownType("rate-agent".into()))
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"message"}"#),
            Err(ParseError::Malformed),
            "a known type with missing fields is malformed"
        );
    }

    #[test]
    fn markup_in_text_is_carried_verbatim_as_a_json_string() {
        let m = ServerMessage::Event(Numbered {
            seq: 3,
            at: 0,
            event: ChatEvent::Line {
                author: Author::Agent,
                name: "Sam".into(),
                text: "<script>alert(1)</script>".into(),
                cid: None,
            },
        });
        let json = m.to_json();
        assert!(json.contains(r#""seq":3"#), "{json}");
        assert!(json.contains(r#""kind":"line""#), "{json}");
        let back: ServerMessage = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, m);
    }
}
