//! What clients (the desktop, tests, the headless driver) ask the core to do, and the typed
//! refusals naming the rule that forbids it. State is unchanged when a command is refused.

use super::model::{InteractionKey, NextState};
use plugin_api::{Address, Route};
use serde::{Deserialize, Serialize};

/// A command from an agent's desktop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum AgentCommand {
    /// Log the desktop in: the agent becomes routable (channels stay logged off).
    LogIn,
    /// Log the desktop out: every channel goes logged off. Refused while work is open.
    LogOut,
    /// Log on to one channel (it starts Not Ready, reason "logged-on").
    LogOnChannel {
        /// The channel.
        channel: String,
    },
    /// Log off one channel; the others are untouched. Refused while it has open work.
    LogOffChannel {
        /// The channel.
        channel: String,
    },
    /// Ready on one channel.
    SetReady {
        /// The channel.
        channel: String,
    },
    /// Not Ready on one channel with a configured reason (Pending while work is open, if enabled).
    SetNotReady {
        /// The channel.
        channel: String,
        /// The reason code.
        reason: String,
    },
    /// Do Not Disturb on all channels.
    SetDnd {
        /// On?
        on: bool,
    },
    /// Forward my calls (or stop).
    SetForwarding {
        /// Where to; `None` stops forwarding.
        to: Option<Address>,
    },
    /// Accept an offer.
    Accept {
        /// The interaction.
        key: InteractionKey,
    },
    /// Decline an offer.
    Decline {
        /// The interaction.
        key: InteractionKey,
    },
    /// Hold a live interaction.
    Hold {
        /// The interaction.
        key: InteractionKey,
    },
    /// Resume a held interaction.
    Resume {
        /// The interaction.
        key: InteractionKey,
    },
    /// End an interaction.
    End {
        /// The interaction.
        key: InteractionKey,
    },
    /// Transfer blind to a queue, an agent or an extension.
    Transfer {
        /// The interaction.
        key: InteractionKey,
        /// Where to.
        to: Route,
    },
    /// Mark an interaction done, with a wrap-up code and optionally the next state.
    MarkDone {
        /// The interaction.
        key: InteractionKey,
        /// The wrap-up code.
        wrap_up: Option<String>,
        /// The state after ACW, if the agent chooses one.
        next: Option<NextState>,
    },
    /// Extend after-call work by `secs`, or indefinitely (`None`), where the policy allows it.
    ExtendAcw {
        /// The channel.
        channel: String,
        /// Seconds, or `None` for until Mark Done / Ready.
        secs: Option<u64>,
    },
    /// Put an email or workitem in a workbin (frees capacity).
    Park {
        /// The interaction.
        key: InteractionKey,
        /// The workbin.
        workbin: String,
    },
    /// Take it back from the workbin.
    Unpark {
        /// The interaction.
        key: InteractionKey,
    },
    /// Consult a colleague privately about an active interaction (offered to them directly).
    Consult {
        /// The interaction.
        key: InteractionKey,
        /// The colleague's agent id.
        colleague: String,
    },
    /// Bring the consulted colleague into the interaction (calls and chats).
    Conference {
        /// The consultation.
        consultation: InteractionKey,
    },
    /// Hand the interaction to the consulted colleague.
    TransferAfterConsultation {
        /// The consultation.
        consultation: InteractionKey,
    },
    /// End a consultation (either side).
    EndConsultation {
        /// The consultation.
        consultation: InteractionKey,
    },
    /// Leave an interaction one was conferenced into.
    LeaveConference {
        /// The interaction.
        key: InteractionKey,
    },
    /// The session code the customer reads out (co-browse during a call) goes on this
    /// interaction: an offer that names it comes to this agent, linked to it (`core::links`).
    LinkCode {
        /// The interaction (the agent's, active).
        key: InteractionKey,
        /// The code (spaces are ignored).
        code: String,
    },
    /// Start an outbound interaction on `channel` to `to` (call a number, email an address),
    /// from an interaction with the same contact (party action) or from nowhere (dial pad).
    StartOutbound {
        /// The channel (e.g. "voice", "email").
        channel: String,
        /// The address.
        to: Address,
        /// The interaction it is started from.
        from: Option<InteractionKey>,
    },
}

/// A refused command. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "kebab-case")]
pub enum CoreError {
    /// No such agent.
    #[error("unknown agent `{agent}`")]
    UnknownAgent {
        /// The agent.
        agent: String,
    },
    /// The desktop is not logged in.
    #[error("agent `{agent}` is not logged in")]
    NotLoggedIn {
        /// The agent.
        agent: String,
    },
    /// The channel is not assigned to the agent.
    #[error("channel `{channel}` is not assigned to agent `{agent}`")]
    ChannelNotAssigned {
        /// The agent.
        agent: String,
        /// The channel.
        channel: String,
    },
    /// The channel is logged off.
    #[error("channel `{channel}` is logged off: log on first")]
    ChannelLoggedOff {
        /// The channel.
        channel: String,
    },
    /// The channel (or the desktop) has open work.
    #[error("channel `{channel}` has {open} open interaction(s): finish them first")]
    OpenWork {
        /// The channel.
        channel: String,
        /// How many.
        open: u32,
    },
    /// A Not Ready reason that is not configured.
    #[error("`{reason}` is not a configured Not Ready reason")]
    UnknownReason {
        /// The reason.
        reason: String,
    },
    /// No such interaction.
    #[error("unknown interaction {key}")]
    UnknownInteraction {
        /// The key.
        key: InteractionKey,
    },
    /// The interaction is not this agent's.
    #[error("interaction {key} does not belong to agent `{agent}`")]
    NotYours {
        /// The key.
        key: InteractionKey,
        /// The agent.
        agent: String,
    },
    /// The interaction's state does not allow the command.
    #[error("interaction {key} is {state}: {rule}")]
    WrongState {
        /// The key.
        key: InteractionKey,
        /// Its state.
        state: String,
        /// The rule.
        rule: String,
    },
    /// A session code the core cannot keep.
    #[error("session code not kept: {why}")]
    BadCode {
        /// Why.
        why: String,
    },
    /// Accepting would exceed the channel's capacity.
    #[error("channel `{channel}` is at its capacity of {capacity}")]
    AtCapacity {
        /// The channel.
        channel: String,
        /// The capacity.
        capacity: u32,
    },
    /// Mark Done needs a wrap-up code.
    #[error("a wrap-up code is required")]
    WrapUpRequired,
    /// A wrap-up code that is not configured.
    #[error("`{code}` is not a configured wrap-up code")]
    UnknownWrapUp {
        /// The code.
        code: String,
    },
    /// The colleague cannot be consulted now.
    #[error("colleague `{agent}` cannot be consulted: {reason}")]
    ColleagueUnavailable {
        /// The colleague.
        agent: String,
        /// Why.
        reason: String,
    },
    /// No running plugin serves the channel.
    #[error("no plugin serves channel `{channel}`")]
    NoPluginFor {
        /// The channel.
        channel: String,
    },
    /// The channel is not in after-call work, or its policy does not allow this.
    #[error("channel `{channel}`: {rule}")]
    AcwRule {
        /// The channel.
        channel: String,
        /// The rule.
        rule: String,
    },
    /// The interaction's channel plugin did not declare the command in its hello.
    #[error("the channel of interaction {key} cannot {command}")]
    Unsupported {
        /// The interaction.
        key: InteractionKey,
        /// The command kind (`hold`, `set-typing`, ...).
        command: String,
    },
    /// The channel is out of service on this host (its plugin was quarantined).
    #[error("channel `{channel}` is unavailable: {reason}")]
    ChannelUnavailable {
        /// The channel.
        channel: String,
        /// Why.
        reason: String,
    },
}

impl CoreError {
    /// A stable code for the refusal, for clients and logs to act on; the message is for people.
    /// Codes are never reused or renamed.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::UnknownAgent { .. } => "unknown-agent",
            CoreError::NotLoggedIn { .. } => "not-logged-in",
            CoreError::ChannelNotAssigned { .. } => "channel-not-assigned",
            CoreError::ChannelLoggedOff { .. } => "channel-logged-off",
            CoreError::OpenWork { .. } => "open-work",
            CoreError::UnknownReason { .. } => "unknown-reason",
            CoreError::UnknownInteraction { .. } => "unknown-interaction",
            CoreError::NotYours { .. } => "not-yours",
            CoreError::WrongState { .. } => "wrong-state",
            CoreError::BadCode { .. } => "bad-code",
            CoreError::AtCapacity { .. } => "at-capacity",
            CoreError::WrapUpRequired => "wrap-up-required",
            CoreError::UnknownWrapUp { .. } => "unknown-wrap-up",
            CoreError::ColleagueUnavailable { .. } => "colleague-unavailable",
            CoreError::NoPluginFor { .. } => "no-plugin",
            CoreError::AcwRule { .. } => "acw-rule",
            CoreError::Unsupported { .. } => "unsupported",
            CoreError::ChannelUnavailable { .. } => "channel-unavailable",
        }
    }
}
