//! The nouns every message uses: interactions, channels, media, parties, addresses, case data.
//! Open sets (channel kinds, address kinds) are strings with well-known constants, so a newer peer's
//! value never fails to decode.

use serde::{Deserialize, Serialize};

/// Identifies one interaction within one plugin instance. Minted by the plugin (on an offer, or in
/// the [`crate::Reply::Created`] answer to a dial/compose/consult); the host keys it by plugin id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InteractionId(pub String);

impl InteractionId {
    /// Wraps a string.
    pub fn new(id: impl Into<String>) -> Self {
        InteractionId(id.into())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InteractionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel kind. Open: a vendor may ship a channel the host has never heard of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelKind(pub String);

impl ChannelKind {
    /// Telephony.
    pub const VOICE: &'static str = "voice";
    /// Web chat.
    pub const CHAT: &'static str = "chat";
    /// Email.
    pub const EMAIL: &'static str = "email";
    /// Facebook Messenger.
    pub const FACEBOOK: &'static str = "facebook";
    /// Twitter / X direct messages and mentions.
    pub const TWITTER: &'static str = "twitter";
    /// Workitems: faxes, PDFs and other documents.
    pub const WORKITEM: &'static str = "workitem";
    /// Co-browsing a customer's web page.
    pub const COBROWSE: &'static str = "cobrowse";
    /// Internal instant messages between agents (never saved to history).
    pub const IM: &'static str = "im";

    /// Wraps a string.
    pub fn new(kind: impl Into<String>) -> Self {
        ChannelKind(kind.into())
    }
    /// The kind as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an interaction is shown to the agent. The host's shell has one view per medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Media {
    /// A transcript with a composer (chat, social messaging, IM).
    Conversation,
    /// Headers, body, attachments, reply/forward.
    Email,
    /// A call: state, timer, hold, keypad.
    Call,
    /// A document with metadata, text and page previews (workitems).
    Document,
    /// A co-browsing session.
    Cobrowse,
    /// A medium this version does not know; shown as a generic interaction.
    #[serde(other)]
    Other,
}

/// A contact address: a phone number, an email address, a SIP URI, a social handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// What kind of address: see the constants on [`Address`]. Open set.
    pub kind: String,
    /// The address itself, e.g. `+44 20 7946 0000` or `jane@example.com`.
    pub value: String,
    /// An optional label such as "mobile" or "work".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Address {
    /// A telephone number.
    pub const PHONE: &'static str = "phone";
    /// An email address.
    pub const EMAIL: &'static str = "email";
    /// A SIP URI.
    pub const SIP: &'static str = "sip";
    /// A handle on a social network.
    pub const SOCIAL: &'static str = "social";
    /// (1.4) An agent of the host, by id (the colleague an internal IM is for).
    pub const AGENT: &'static str = "agent";

    /// An address of the given kind.
    pub fn new(kind: &str, value: impl Into<String>) -> Self {
        Address {
            kind: kind.to_string(),
            value: value.into(),
            label: None,
        }
    }
    /// A telephone number.
    pub fn phone(value: impl Into<String>) -> Self {
        Self::new(Self::PHONE, value)
    }
    /// An email address.
    pub fn email(value: impl Into<String>) -> Self {
        Self::new(Self::EMAIL, value)
    }
}

/// The customer (or other outside party) as the plugin knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The name to show, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Every address the plugin knows for the contact; the host links them to a contact record.
    #[serde(default)]
    pub addresses: Vec<Address>,
}

/// An agent as plugins see them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentRef {
    /// The agent's id in the admin configuration.
    pub id: String,
    /// The name to show to customers (e.g. "Sam joined the chat").
    pub display_name: String,
}

/// Where an offered interaction should go: a queue, an agent or an extension. The host's core
/// decides which agent gets it. `to` is an open set (see the constants), so a route kind added by a
/// later 1.x decodes everywhere and an older core can refuse it by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// What `name` names: [`Route::QUEUE`], [`Route::AGENT`] or [`Route::EXTENSION`].
    pub to: String,
    /// The queue name, agent id or extension.
    pub name: String,
}

impl Route {
    /// A named queue from the admin configuration.
    pub const QUEUE: &'static str = "queue";
    /// One agent, by id.
    pub const AGENT: &'static str = "agent";
    /// An agent's extension (voice).
    pub const EXTENSION: &'static str = "extension";
    /// (1.3) The owner of the open interaction that carries this session code ([`crate::LinkCode`],
    /// or the agent typed it on an interaction of theirs); the new interaction is linked to it.
    /// (1.5) Until something carries the code, the offer waits, queued, until it does or the
    /// plugin ends it; a 1.3–1.4 core refused it (`no-such-target`), a 1.0–1.2 core refuses it
    /// (`unsupported-route`).
    pub const LINKED: &'static str = "linked";

    /// To a queue.
    pub fn queue(name: impl Into<String>) -> Self {
        Route {
            to: Self::QUEUE.into(),
            name: name.into(),
        }
    }
    /// To one agent.
    pub fn agent(id: impl Into<String>) -> Self {
        Route {
            to: Self::AGENT.into(),
            name: id.into(),
        }
    }
    /// (1.3) To the owner of the interaction carrying `code`.
    pub fn linked(code: impl Into<String>) -> Self {
        Route {
            to: Self::LINKED.into(),
            name: code.into(),
        }
    }
    /// To an extension.
    pub fn extension(extension: impl Into<String>) -> Self {
        Route {
            to: Self::EXTENSION.into(),
            name: extension.into(),
        }
    }
}

/// Someone to transfer to, consult or conference in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Target {
    /// An agent served by the host.
    Agent {
        /// The agent.
        agent: AgentRef,
    },
    /// A queue.
    Queue {
        /// The queue name.
        queue: String,
    },
    /// An outside address (a number, an email address).
    Address {
        /// The address.
        address: Address,
    },
}

/// A participant in an interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// Stable within the interaction.
    pub id: String,
    /// The role: see the constants on [`Party`]. Open set.
    pub role: String,
    /// The name to show.
    pub display_name: String,
    /// How to reach them, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

impl Party {
    /// The customer.
    pub const CUSTOMER: &'static str = "customer";
    /// The agent handling the interaction.
    pub const AGENT: &'static str = "agent";
    /// A consulted or conferenced colleague.
    pub const COLLEAGUE: &'static str = "colleague";
    /// The system (greetings, notices).
    pub const SYSTEM: &'static str = "system";
}

/// A file the plugin stored in its data directory; referenced, never copied through the ABI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The file name to show.
    pub name: String,
    /// The path relative to the plugin's data directory.
    pub path: String,
    /// The MIME type, e.g. `application/pdf`.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// The size in bytes.
    #[serde(default)]
    pub size: u64,
}

fn default_content_type() -> String {
    "application/octet-stream".into()
}

/// A message in a conversation or an email body, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContent {
    /// Unique within the interaction; used to acknowledge and de-duplicate.
    pub id: String,
    /// Plain text. HTML is converted to text by the plugin; the shell never renders markup.
    pub text: String,
    /// Attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

/// One key/value pair of case data for the shell to show (order is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseField {
    /// A stable key.
    pub key: String,
    /// The label to show; the key is shown when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The value as text.
    pub value: String,
}

/// An action a plugin offers beyond the standard commands, shown by the shell as a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomAction {
    /// The id sent back in [`crate::InvokeAction`].
    pub id: String,
    /// The button label.
    pub label: String,
    /// Whether it can be used now.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A wrap-up code chosen when an interaction is marked done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapUpCode {
    /// The code from the admin configuration.
    pub code: String,
    /// Its label.
    #[serde(default)]
    pub label: String,
}
