//! Conversation rules and receipts (plugin-api 1.2): what a messaging platform allows right now
//! (reply window, message length, public or private) and how far the customer got with our
//! messages. Optional data: a 1.0/1.1 host decodes these kinds as `Unknown` and counts them. Until
//! the desk renders them, plugins keep showing the same facts as case data as well.

use super::types::InteractionId;
use serde::{Deserialize, Serialize};

/// How a platform counts a message's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LengthCounting {
    /// Unicode characters (Messenger).
    #[default]
    Characters,
    /// X's weighted length: most Latin 1, CJK and emoji 2, each link 23.
    XWeighted,
    /// A rule this version does not know: show the limit, let the platform judge.
    #[serde(other)]
    Other,
}

impl LengthCounting {
    /// The length of `text` counted this way (what a limit in [`ConversationRules`] means):
    /// characters, or X's weighted length; a rule this version does not know counts characters.
    pub fn length(self, text: &str) -> usize {
        match self {
            LengthCounting::XWeighted => super::x_weighted::weighted_length(text),
            LengthCounting::Characters | LengthCounting::Other => text.chars().count(),
        }
    }
}

/// What replies in a conversation may be now. Every field but `interaction` is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRules {
    /// The interaction.
    pub interaction: InteractionId,
    /// False when no reply can be sent now; the desk disables the composer with `reason`.
    #[serde(default = "yes")]
    pub can_reply: bool,
    /// Why, or what the window is, in the agent's words ("closes in 3 h 10 min").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When the current reply window ends (ms since the epoch), for a countdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_closes_at: Option<u64>,
    /// The largest reply, counted as `counting` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// How the length is counted.
    #[serde(default)]
    pub counting: LengthCounting,
    /// True when replies are public (everyone can read them).
    #[serde(default)]
    pub public: bool,
}

fn yes() -> bool {
    true
}

/// How far the customer got with our messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptState {
    /// Delivered to the customer's device.
    Delivered,
    /// Read by the customer.
    Read,
    /// A state this version does not know.
    #[serde(other)]
    Other,
}

/// A delivery or read receipt: every message we sent up to `up_to` (ms since the epoch), or the
/// one message `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The interaction.
    pub interaction: InteractionId,
    /// Delivered or read.
    pub state: ReceiptState,
    /// The message id, when the platform names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Everything sent up to this time (ms since the epoch), when the platform gives a watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
}
