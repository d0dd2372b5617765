//! # agentdesk-client: the client interface
//!
//! Everything the desk (and the `agentdesk` command) gets from the host, and the only crate of the
//! host's they use. Commands go in; snapshots, live transcripts, history, files, the plugin table
//! and the desk's static information (reasons, wrap-up codes, colleagues) come out as data.
//!
//! - [`Connection`] is a way to reach a core: who may log in, logging in, the plugin table.
//! - [`DeskClient`] is one logged-in agent's session.
//!
//! Every call returns at once with a [`Pending`] answer: the desk polls it each frame and never
//! blocks on it. Every command carries a [`CommandId`]; the core answers a command sent again
//! with the same id with its first answer and does not act twice, so a client may retry after a
//! lost answer. Today's implementation is [`in_process`] (the core and plugins in this process);
//! a network implementation is another implementation of the same two traits.

pub mod admin;
mod command_ids;
mod error;
pub mod in_process;
mod info;
mod pending;
mod plugin_files;
mod plugin_table;
pub mod reload;
pub mod remote;
pub mod slow;

pub use error::ClientError;
pub use info::{DeskInfo, StandardResponse};
pub use pending::Pending;
pub use plugin_table::{MissingRow, PluginRow, PluginTable};

/// The Not Ready reason code the core sets on a channel whose offer rang out unanswered.
pub use agentdesk_host::core::policy::MISSED_OFFER;
/// The vocabulary the desk speaks with the core: commands, states and what a snapshot holds.
pub use agentdesk_host::core::{
    AgentCommand, ChannelState, DISCONNECTED, InteractionState, Millis, NextState,
};
pub use agentdesk_host::service::{
    AgentSnapshot, ChannelView, CommandId, DetailView, Interact, InteractionView, LiveLine,
    Presence, QueueView,
};

/// The whole team at a moment: every agent's snapshot and every channel's queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TeamView {
    /// Each agent of the configuration (logged in or not).
    pub agents: Vec<AgentSnapshot>,
    /// Each channel's queue.
    pub queues: Vec<QueueView>,
    /// The core's clock when it was taken.
    pub at: Millis,
}
pub use agentdesk_host::storage::history::{HistoryEntry, TranscriptLine};

/// Which of the agent's past interactions to list (the desk's history opens with them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryFilter {
    /// Only this channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// Only this outcome (`done`, `ended`, `abandoned`, `rejected`, `forwarded`, "" while open).
    #[serde(default)]
    pub outcome: Option<String>,
}

/// Numbers and addresses in a text (links on a transcript).
pub use agentdesk_host::contacts::recognise_addresses;

use crossbeam_channel::Receiver;
use plugin_api::AttachmentRef;

/// A way to reach a core: the agents who may log in, logging in, the plugin table.
pub trait Connection: Send {
    /// The agents who may log in (id, display name), for a login picker.
    fn agents(&self) -> Pending<Vec<(String, String)>>;
    /// Logs `agent` in; the answer is their session.
    fn login(&self, agent: &str) -> Pending<Box<dyn DeskClient>>;
    /// Every plugin with its status, and what the configuration names but nothing provides.
    fn plugins(&self) -> Pending<PluginTable>;
    /// Every agent's state and every queue (for supervisors, admins and scripts).
    fn team(&self) -> Pending<TeamView>;
    /// Ends the connection (in process: stops the core, then the plugins).
    fn close(self: Box<Self>);
}

/// Whether a session can reach its core now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Requests reach the core.
    Connected,
    /// The core (the hub) cannot be reached; the client keeps trying. Commands fail at once
    /// with the code `disconnected`.
    Reconnecting,
}

/// One logged-in agent's session with the core.
pub trait DeskClient: Send + Sync {
    /// Whether the core can be reached now (always, in process).
    fn link(&self) -> LinkState {
        LinkState::Connected
    }
    /// The agent.
    fn agent(&self) -> &str;
    /// The admin's rules the desk shows (reasons, wrap-up codes, colleagues, ...).
    fn info(&self) -> &DeskInfo;
    /// The core's clock now (for timers on screen).
    fn now(&self) -> Millis;
    /// A new id for a command (unique for this agent).
    fn next_id(&self) -> CommandId;
    /// A stream of the agent's snapshots: the current one soon, then one after every change.
    fn watch(&self) -> Receiver<AgentSnapshot>;
    /// Carries out a command as this agent; answered once it is durable, or refused with the
    /// rule's code. Sent again with the same id, it is answered the same and not done twice.
    fn command(&self, id: CommandId, command: AgentCommand) -> Pending<()>;
    /// Writes `text` in the agent's active conversation (idempotent by id like `command`).
    fn send_message(&self, id: CommandId, key: u64, text: &str) -> Pending<()>;
    /// DTMF, typing or a plugin's custom action in an interaction (idempotent by id).
    fn interact(&self, id: CommandId, key: u64, act: Interact) -> Pending<()>;
    /// A page of the live transcript of an interaction the agent takes part in.
    fn live_lines(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<LiveLine>>;
    /// The other interactions of the contact of `key`, newest first.
    fn contact_history(&self, key: u64, limit: usize) -> Pending<Vec<HistoryEntry>>;
    /// Every colleague's presence: logged in, Do Not Disturb, each channel's state.
    fn presence(&self) -> Pending<Vec<Presence>>;
    /// Past interactions whose transcript or subject has `text` (all, newest first, when none).
    fn search(&self, text: Option<&str>, limit: usize) -> Pending<Vec<HistoryEntry>>;
    /// The interactions this agent handled last, newest first, as `filter` says.
    fn recent(&self, filter: &HistoryFilter, limit: usize) -> Pending<Vec<HistoryEntry>>;
    /// A page of a stored transcript.
    fn transcript(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<TranscriptLine>>;
    /// The bytes of a file an interaction carries (a page preview, an email's attachment), for
    /// those taking part in it: another interaction's file is refused (`not-yours`,
    /// `not-attached`).
    fn file(&self, key: u64, attachment: &AttachmentRef) -> Pending<Vec<u8>>;
    /// Every plugin with its status (the Diagnostics tab).
    fn plugins(&self) -> Pending<PluginTable>;
}
