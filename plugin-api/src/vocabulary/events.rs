//! Events: what a plugin instance reports to the host through [`crate::Host::emit`].
//! Every event names the interaction it is about; new kinds may be added in any 1.x.

use super::conversation::{ConversationRules, Receipt};
use super::types::{
    CaseField, ChannelKind, Contact, CustomAction, InteractionId, Media, MessageContent, Party,
    Route,
};
use crate::codec::{message_kind, vocabulary};
use serde::{Deserialize, Serialize};

/// A new inbound interaction for the core to route. The core de-duplicates offers durably by
/// (plugin id, `external_id`), so re-offering after a restart is safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The plugin's id for this interaction.
    pub interaction: InteractionId,
    /// The id of the thing in the outside world (SIP Call-ID, IMAP UIDVALIDITY/UID, file hash).
    pub external_id: String,
    /// The channel it arrived on (a plugin may serve several).
    pub channel: ChannelKind,
    /// How to show it.
    pub media: Media,
    /// Where to send it; the core picks the agent.
    pub route: Route,
    /// Who it is from.
    #[serde(default)]
    pub contact: Contact,
    /// A subject or title to show in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Key/value case data for the shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub case_data: Vec<CaseField>,
    /// Custom actions available on this interaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CustomAction>,
    /// Higher is more urgent; 0 when absent.
    #[serde(default)]
    pub priority: i32,
}

/// A message arrived from a party (customer, colleague) in an interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReceived {
    /// The interaction.
    pub interaction: InteractionId,
    /// Who wrote it.
    pub from: Party,
    /// The message.
    pub message: MessageContent,
}

/// A party started or stopped typing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// The interaction.
    pub interaction: InteractionId,
    /// Who.
    pub party: Party,
    /// True while typing.
    pub typing: bool,
}

/// The state of a real-time interaction (call, co-browse) as the channel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaState {
    /// Offered, not yet answered.
    Ringing,
    /// Outbound, waiting for the far end.
    Dialing,
    /// Connected.
    Connected,
    /// On hold.
    Held,
    /// A state this version does not know.
    #[serde(other)]
    Other,
}

/// The media state of an interaction changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStateChanged {
    /// The interaction.
    pub interaction: InteractionId,
    /// The new state.
    pub state: MediaState,
}

/// A party joined the interaction (conference, colleague, customer reconnected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyJoined {
    /// The interaction.
    pub interaction: InteractionId,
    /// Who joined.
    pub party: Party,
}

/// A party left the interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyLeft {
    /// The interaction.
    pub interaction: InteractionId,
    /// Who left.
    pub party: Party,
}

/// Why an interaction ended on the channel's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The customer hung up, closed the chat or left.
    ContactLeft,
    /// Ended because the host asked ([`crate::End`]).
    AgentEnded,
    /// Closed after an idle timeout.
    Timeout,
    /// A technical failure (connection lost, peer gone).
    Failed,
    /// Handed to someone outside the host (blind transfer to a number).
    TransferredAway,
    /// A reason this version does not know.
    #[serde(other)]
    Other,
}

/// The interaction ended on the channel's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// The interaction.
    pub interaction: InteractionId,
    /// Why.
    pub reason: EndReason,
    /// Details for the history and logs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Replace the case data shown for an interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseDataChanged {
    /// The interaction.
    pub interaction: InteractionId,
    /// The complete new case data.
    pub case_data: Vec<CaseField>,
}

/// Replace the custom actions (and their enabled state) of an interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsChanged {
    /// The interaction.
    pub interaction: InteractionId,
    /// The complete new list.
    pub actions: Vec<CustomAction>,
}

/// The channel's own health (server connection, listening port), shown to agents and admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// False when the channel cannot currently take or deliver interactions.
    pub healthy: bool,
    /// A sentence for the diagnostics view.
    pub detail: String,
}

/// (1.3) This interaction carries a session code that another channel's offer may name
/// ([`crate::Route::LINKED`]): e.g. the code of a co-browse session the customer started from a
/// chat. The core keeps the code while the interaction is open (once: a second offer naming it
/// waits for another carrier, 1.5) and routes the linked offer to this interaction's owner. A 1.0–1.2 host decodes it as
/// `Unknown` and counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCode {
    /// The interaction that carries the code.
    pub interaction: InteractionId,
    /// The code, as the other channel will name it (e.g. 9 digits).
    pub code: String,
}

message_kind! {
    Offer => "offer",
    MessageReceived => "message-received",
    Typing => "typing",
    MediaStateChanged => "media-state-changed",
    PartyJoined => "party-joined",
    PartyLeft => "party-left",
    Ended => "ended",
    CaseDataChanged => "case-data-changed",
    ActionsChanged => "actions-changed",
    ChannelStatus => "channel-status",
    // 1.2
    ConversationRules => "conversation-rules",
    Receipt => "receipt",
    // 1.3
    LinkCode => "link-code",
}

vocabulary! {
    /// Every event a plugin instance can report.
    pub enum Event {
        /// See [`Offer`].
        Offer(Offer),
        /// See [`MessageReceived`].
        MessageReceived(MessageReceived),
        /// See [`Typing`].
        Typing(Typing),
        /// See [`MediaStateChanged`].
        MediaStateChanged(MediaStateChanged),
        /// See [`PartyJoined`].
        PartyJoined(PartyJoined),
        /// See [`PartyLeft`].
        PartyLeft(PartyLeft),
        /// See [`Ended`].
        Ended(Ended),
        /// See [`CaseDataChanged`].
        CaseDataChanged(CaseDataChanged),
        /// See [`ActionsChanged`].
        ActionsChanged(ActionsChanged),
        /// See [`ChannelStatus`].
        ChannelStatus(ChannelStatus),
        /// See [`ConversationRules`] (1.2).
        ConversationRules(ConversationRules),
        /// See [`Receipt`] (1.2).
        Receipt(Receipt),
        /// See [`LinkCode`] (1.3).
        LinkCode(LinkCode),
    }
}
