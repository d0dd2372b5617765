//! Commands: what the host asks a plugin instance to do, and the plugin's [`Reply`].
//! Every command names the interaction it is about; new kinds may be added in any 1.x.

use super::types::{
    Address, AgentRef, AttachmentRef, CaseField, Contact, InteractionId, MessageContent, Target,
    WrapUpCode,
};
use crate::codec::{message_kind, vocabulary};
use serde::{Deserialize, Serialize};

/// The agent accepted an offered interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The interaction.
    pub interaction: InteractionId,
    /// Who accepted it (shown to the customer where the channel does that).
    pub agent: AgentRef,
}

/// The core declined an offered interaction (no agent, rejected, forwarded elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The interaction.
    pub interaction: InteractionId,
    /// Why, in words, for logs. Never match on it: `code` is what the channel answers by.
    #[serde(default)]
    pub reason: String,
    /// (1.1) Why, as a stable code for the channel's own answer (e.g. a SIP status). A 1.0 host
    /// sends none (`Unspecified`).
    #[serde(default)]
    pub code: RejectCode,
}

/// (1.1) Why the core rejected an offer, as a stable code. Closed here, open on the wire: a code
/// this plugin-api does not know decodes as `Unspecified`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectCode {
    /// The route names an agent or extension this host does not have (SIP: 404).
    NoSuchTarget,
    /// No agent on this host has the channel (SIP: 480).
    NoAgents,
    /// The channel is out of service on this host, e.g. its plugin was quarantined (SIP: 480).
    ChannelUnavailable,
    /// Every agent who could take it is busy (SIP: 486).
    Busy,
    /// The route kind is not one the host routes (SIP: 403).
    UnsupportedRoute,
    /// No code given (a 1.0 host), or one this plugin-api does not know.
    #[default]
    #[serde(other)]
    Unspecified,
}

/// End the interaction (hang up, close the chat, close the email).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// The interaction.
    pub interaction: InteractionId,
}

/// Send a message from the agent in a conversation (or an email reply body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// The interaction.
    pub interaction: InteractionId,
    /// The message; `id` lets the plugin acknowledge it.
    pub message: MessageContent,
    /// (1.1) The agent who writes it (in a conference, not always the owner). A 1.0 host sends
    /// none: label the message with the interaction's owner then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
}

/// The agent started or stopped typing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTyping {
    /// The interaction.
    pub interaction: InteractionId,
    /// True while typing.
    pub typing: bool,
}

/// Put a call (or other real-time interaction) on hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The interaction.
    pub interaction: InteractionId,
}

/// Resume a held interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The interaction.
    pub interaction: InteractionId,
}

/// Send DTMF digits on a call (`0-9`, `*`, `#`, `A-D`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendDtmf {
    /// The interaction.
    pub interaction: InteractionId,
    /// The digits, in order.
    pub digits: String,
}

/// Place an outbound call to an address. Answered with [`Reply::Created`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dial {
    /// Who to call.
    pub to: Address,
    /// The agent placing the call.
    pub agent: AgentRef,
    /// The contact being called, when known (party action from another interaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// The interaction this call was started from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<InteractionId>,
}

/// Start a new outbound written message (email, social message). Answered with [`Reply::Created`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compose {
    /// Recipients.
    pub to: Vec<Address>,
    /// The agent writing.
    pub agent: AgentRef,
    /// Subject, where the channel has one.
    #[serde(default)]
    pub subject: String,
    /// Body text.
    #[serde(default)]
    pub body: String,
    /// Attachments from the plugin's data directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// The interaction this was started from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<InteractionId>,
    /// (1.5) What the interaction it was started from is about (its subject and case data, never
    /// its channel or contact), e.g. for a colleague asked by IM about a customer's chat. A 1.0–1.4
    /// host sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
}

/// (1.5) What an interaction is about, as another channel's plugin may be told it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    /// Its subject, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Its case data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub case_data: Vec<CaseField>,
}

/// How a transfer is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum TransferMode {
    /// Hand over at once, without talking to the target first.
    Blind,
    /// Hand over after a consultation, which is joined to the original.
    Consultative {
        /// The consultation interaction (from [`Consult`]).
        consultation: InteractionId,
    },
}

/// Transfer an interaction to someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The interaction.
    pub interaction: InteractionId,
    /// Who gets it.
    pub target: Target,
    /// Blind or after consultation.
    pub mode: TransferMode,
}

/// Start a private consultation with a colleague about an interaction (the customer does not take
/// part). Answered with [`Reply::Created`] naming the consultation interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consult {
    /// The interaction consulted about.
    pub interaction: InteractionId,
    /// The colleague or number to consult.
    pub target: Target,
}

/// Bring a consulted colleague into the interaction with the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conference {
    /// The interaction with the customer.
    pub interaction: InteractionId,
    /// The consultation to merge into it.
    pub consultation: InteractionId,
}

/// (1.5) An agent who was brought into the interaction by a conference left it; the others
/// (the customer, the remaining agents) may be told. Sent only to a plugin that declared
/// `leave-conference` in its hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveConference {
    /// The interaction.
    pub interaction: InteractionId,
    /// The agent who left.
    pub agent: AgentRef,
}

/// Forward an agent's calls to another extension or number (`forward_to: None` turns it off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardCalls {
    /// The agent.
    pub agent: AgentRef,
    /// The agent's own extension.
    pub extension: String,
    /// Where calls go, or `None` to stop forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to: Option<Address>,
}

/// The agent finished the interaction, with an optional wrap-up code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkDone {
    /// The interaction.
    pub interaction: InteractionId,
    /// The wrap-up code chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_up: Option<WrapUpCode>,
}

/// Park an interaction in a workbin to continue later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutInWorkbin {
    /// The interaction.
    pub interaction: InteractionId,
    /// The workbin name.
    pub workbin: String,
}

/// The agent pressed one of the plugin's [`crate::CustomAction`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeAction {
    /// The interaction the action belongs to, or `None` for a channel-wide action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction: Option<InteractionId>,
    /// The action id.
    pub action: String,
}

message_kind! {
    Accept => "accept",
    Reject => "reject",
    End => "end",
    SendMessage => "send-message",
    SetTyping => "set-typing",
    Hold => "hold",
    Resume => "resume",
    SendDtmf => "send-dtmf",
    Dial => "dial",
    Compose => "compose",
    Transfer => "transfer",
    Consult => "consult",
    Conference => "conference",
    ForwardCalls => "forward-calls",
    MarkDone => "mark-done",
    PutInWorkbin => "put-in-workbin",
    InvokeAction => "invoke-action",
    // 1.5
    LeaveConference => "leave-conference",
}

vocabulary! {
    /// Every command the host can send to a plugin instance.
    pub enum Command {
        /// See [`Accept`].
        Accept(Accept),
        /// See [`Reject`].
        Reject(Reject),
        /// See [`End`].
        End(End),
        /// See [`SendMessage`].
        SendMessage(SendMessage),
        /// See [`SetTyping`].
        SetTyping(SetTyping),
        /// See [`Hold`].
        Hold(Hold),
        /// See [`Resume`].
        Resume(Resume),
        /// See [`SendDtmf`].
        SendDtmf(SendDtmf),
        /// See [`Dial`].
        Dial(Dial),
        /// See [`Compose`].
        Compose(Compose),
        /// See [`Transfer`].
        Transfer(Transfer),
        /// See [`Consult`].
        Consult(Consult),
        /// See [`Conference`].
        Conference(Conference),
        /// See [`ForwardCalls`].
        ForwardCalls(ForwardCalls),
        /// See [`MarkDone`].
        MarkDone(MarkDone),
        /// See [`PutInWorkbin`].
        PutInWorkbin(PutInWorkbin),
        /// See [`InvokeAction`].
        InvokeAction(InvokeAction),
        /// See [`LeaveConference`] (1.5).
        LeaveConference(LeaveConference),
    }
}

/// The command was carried out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// The command created a new interaction (dial, compose, consult).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The new interaction's id.
    pub interaction: InteractionId,
}

message_kind! {
    Done => "done",
    Created => "created",
}

vocabulary! {
    /// A plugin's successful answer to a [`Command`]; failures are a [`crate::PluginError`].
    pub enum Reply {
        /// See [`Done`].
        Done(Done),
        /// See [`Created`].
        Created(Created),
    }
}

impl Reply {
    /// The plain "done" answer.
    pub fn done() -> Self {
        Reply::Done(Done {})
    }
}
