//! The wire messages of the customer's script and the agent's viewer (JSON text frames).
//! Everything that arrives is hostile until checked: unknown kinds and fields are refused or
//! ignored, never trusted.

use serde::{Deserialize, Serialize};

/// The most rrweb events one batch may carry.
pub const MAX_EVENTS_PER_BATCH: usize = 2000;

/// From the customer's page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CustomerMessage {
    /// Start a session: the server answers with a code.
    Start,
    /// Come back to a session (reload, another page of the site).
    Resume {
        /// The session's code.
        code: String,
        /// The secret the server gave with it.
        secret: String,
    },
    /// Offer the session to the agent of the interaction that carries its code.
    Offer,
    /// rrweb events (already masked by the customer's browser), to relay to the viewer.
    Events {
        /// The events, relayed as they are.
        events: Vec<serde_json::Value>,
    },
    /// The customer stops co-browsing.
    Stop,
    /// The page refused an agent's action (form submission, a restricted element), in words.
    Refused {
        /// Why.
        reason: String,
    },
    /// The customer approves (`true`) the agent's request for write mode, or takes it back.
    Write {
        /// Approve or take back.
        allow: bool,
    },
}

/// From the agent's viewer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ViewerMessage {
    /// The agent stops co-browsing.
    Stop,
    /// Where the agent's pointer is on the customer's page (pointer mode and write mode).
    Pointer {
        /// CSS pixels from the left of the customer's viewport.
        x: f64,
        /// CSS pixels from the top.
        y: f64,
    },
    /// The agent asks for write mode; the customer approves in the banner.
    RequestWrite,
    /// Write mode: click an element (rrweb's node id).
    Click {
        /// The node.
        id: u64,
    },
    /// Write mode: set a field's value.
    SetValue {
        /// The node.
        id: u64,
        /// The new value.
        value: String,
    },
    /// Write mode: a key in a field (the customer's script refuses Enter and the like).
    Key {
        /// The node.
        id: u64,
        /// The key, as `KeyboardEvent.key`.
        key: String,
    },
    /// Write mode: scroll the page.
    Scroll {
        /// CSS pixels.
        x: f64,
        /// CSS pixels.
        y: f64,
    },
}

/// The largest value the agent may put into a field.
pub const MAX_VALUE_CHARS: usize = 10_000;

/// To the customer's page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToCustomer<'a> {
    /// The session's code and the secret to resume it with.
    Session {
        /// 9 digits, shown to the customer.
        code: &'a str,
        /// Kept by the page (session storage).
        secret: &'a str,
        /// Seconds the code can be used for.
        expires_in: u64,
    },
    /// Resumed; `phase` says where the session is.
    Resumed {
        /// `waiting`, `offered` or `active`.
        phase: &'a str,
    },
    /// Offered to the core; waiting for the agent.
    Offered,
    /// An agent accepted: "Your agent can see this page".
    Agent {
        /// The agent's name.
        name: &'a str,
    },
    /// Record now, from a full snapshot (a viewer opened, or needs to start over).
    Snapshot,
    /// The viewer closed: stop recording.
    Pause,
    /// A refusal with a stable code.
    Error {
        /// Stable.
        code: &'a str,
        /// In words.
        message: &'a str,
    },
    /// The session ended.
    Ended {
        /// Stable: `customer-stopped`, `agent-ended`, `expired`, `customer-left`, `not-linked`.
        reason: &'a str,
    },
    /// The agent's pointer.
    Pointer {
        /// CSS pixels.
        x: f64,
        /// CSS pixels.
        y: f64,
    },
    /// The agent asks for write mode.
    WriteRequested,
    /// Write mode is on (`true`) or off.
    Write {
        /// On or off.
        granted: bool,
    },
    /// Write mode: the agent clicks a node (the script checks what it is first).
    Click {
        /// rrweb's node id.
        id: u64,
    },
    /// Write mode: the agent sets a field's value.
    SetValue {
        /// rrweb's node id.
        id: u64,
        /// The value.
        value: &'a str,
    },
    /// Write mode: a key in a field.
    Key {
        /// rrweb's node id.
        id: u64,
        /// The key.
        key: &'a str,
    },
    /// Write mode: scroll.
    Scroll {
        /// CSS pixels.
        x: f64,
        /// CSS pixels.
        y: f64,
    },
}

/// To the agent's viewer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToViewer<'a> {
    /// The customer's page refused an action of the agent's.
    Refused {
        /// Why, as the page said (at most 100 characters).
        reason: &'a str,
    },
    /// Write mode: `off`, `requested` or `granted`.
    Write {
        /// The state.
        state: &'a str,
    },
    /// The customer's connection: `connected` or `away` (reconnecting).
    Customer {
        /// The state.
        state: &'a str,
    },
    /// A refusal with a stable code.
    Error {
        /// Stable.
        code: &'a str,
        /// In words.
        message: &'a str,
    },
    /// The session ended.
    Ended {
        /// Stable (see [`ToCustomer::Ended`]).
        reason: &'a str,
    },
}

/// Serialises a message (these types always serialise).
pub fn text<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!("{{\"type\":\"error\",\"code\":\"internal\",\"message\":\"{e}\"}}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_and_wrong_shapes_are_refused() {
        assert!(serde_json::from_str::<CustomerMessage>(r#"{"type":"input","x":1}"#).is_err());
        assert!(
            serde_json::from_str::<CustomerMessage>(r#"{"type":"events","events":3}"#).is_err()
        );
        assert_eq!(
            serde_json::from_str::<CustomerMessage>(r#"{"type":"events","events":[{"type":2}]}"#)
                .ok(),
            Some(CustomerMessage::Events {
                events: vec![serde_json::json!({"type": 2})]
            })
        );
    }
}
