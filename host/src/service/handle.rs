//! How clients reach the core service: the handle (`CoreHandle`, cheap to clone, usable from any
//! thread), one agent's session on it, and what crosses between them (requests, queries, answers,
//! errors with stable codes). The service's thread (`Worker`, in the parent module) answers.

use super::*;

/// Why a client request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The core refused the command (the rule is named).
    #[error(transparent)]
    Refused(#[from] CoreError),
    /// The command was accepted but could not be journaled; it is not acknowledged.
    #[error("the journal failed: {0}")]
    Journal(String),
    /// The service has stopped.
    #[error("the core service has stopped")]
    Stopped,
    /// A file asked for by an agent who takes part in the interaction, but which the
    /// interaction does not carry (another interaction's file, or a made-up path).
    #[error("interaction {key} carries no file `{path}`")]
    NotAttached {
        /// The interaction.
        key: u64,
        /// The path asked for.
        path: String,
    },
    /// The history store failed or is not configured.
    #[error("history: {0}")]
    History(String),
}

impl ClientError {
    /// A stable code for the failure (the core's refusal codes, `CoreError::code`, and
    /// `journal`, `stopped`, `history`); the message is for people.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Refused(refused) => refused.code(),
            ClientError::Journal(_) => "journal",
            ClientError::Stopped => "stopped",
            ClientError::History(_) => "history",
            ClientError::NotAttached { .. } => "not-attached",
        }
    }
}

pub(super) enum Request {
    Execute {
        agent: String,
        id: Option<CommandId>,
        command: AgentCommand,
        reply: Sender<Result<(), ClientError>>,
    },
    Plugin {
        plugin: Arc<str>,
        event: Event,
    },
    Link {
        key: u64,
        interaction: plugin_api::InteractionId,
    },
    /// A plugin refused or failed a command about an interaction.
    CommandFailed {
        key: u64,
        kind: String,
        notice: String,
    },
    /// A plugin was quarantined: isolate it (`Core::isolate`).
    PluginQuarantined {
        plugin: String,
        reason: String,
    },
    /// An isolated plugin's process ended and is being restarted: its open interactions may
    /// have lost what the plugin held for them.
    PluginCrashed {
        plugin: String,
        reason: String,
    },
    /// A plugin carried out a command the core waits for (hold, resume).
    CommandDone {
        key: u64,
        request: ChannelRequest,
    },
    Snapshot {
        agent: String,
        reply: Sender<Option<AgentSnapshot>>,
    },
    Watch {
        agent: String,
        updates: Sender<AgentSnapshot>,
    },
    Tick {
        reply: Sender<()>,
    },
    TimeInState {
        agent: String,
        channel: String,
        label: String,
        reply: Sender<Millis>,
    },
    SendMessage {
        agent: String,
        id: Option<CommandId>,
        key: u64,
        text: String,
        reply: Sender<Result<(), ClientError>>,
    },
    Interact {
        agent: String,
        id: Option<CommandId>,
        key: u64,
        act: Interact,
        reply: Sender<Result<(), ClientError>>,
    },
    Query {
        query: Query,
        reply: Sender<Result<Answer, ClientError>>,
    },
    /// New rules from the admin (a reload): see `Core::reconfigure`.
    Reconfigure {
        policy: Box<Policy>,
        reply: Sender<Result<RosterChange, ClientError>>,
    },
    Stop,
}

/// A question about history and contacts.
#[derive(Debug, Clone)]
pub enum Query {
    /// The interactions an agent handled last, newest first, of one channel and/or with one
    /// outcome when given (the desk's history opens with them).
    Recent {
        /// The agent.
        agent: String,
        /// Only this channel.
        channel: Option<String>,
        /// Only this outcome (`done`, `ended`, `abandoned`, ..., "" while open).
        outcome: Option<String>,
        /// At most this many.
        limit: usize,
    },
    /// Interactions of a contact and/or matching text, newest first.
    Search {
        /// The contact.
        contact: Option<ContactId>,
        /// Words to find in transcripts or subjects.
        text: Option<String>,
        /// At most this many.
        limit: usize,
    },
    /// A page of the live transcript of an open interaction the asking agent takes part in (IM
    /// included, from memory); for an interaction older than this process, from the history.
    Live {
        /// The agent asking.
        agent: String,
        /// The interaction.
        key: u64,
        /// Lines to skip.
        offset: usize,
        /// Lines to return.
        limit: usize,
    },
    /// A page of a stored transcript (never IM).
    Transcript {
        /// The interaction.
        key: u64,
        /// Lines to skip.
        offset: usize,
        /// Lines to return.
        limit: usize,
    },
    /// A contact.
    Contact(ContactId),
    /// The contact an interaction is linked to.
    ContactOf(u64),
    /// The other interactions of the contact an interaction is linked to, newest first (none
    /// when it has no contact).
    ContactHistory {
        /// The interaction.
        key: u64,
        /// At most this many.
        limit: usize,
    },
    /// Import contacts from CSV.
    ImportCsv(String),
    /// Add an address to a contact.
    AddAddress(ContactId, Address),
    /// Every channel's queue: how many wait and since when the oldest does.
    Queues,
    /// Whether `agent` may have the file at `path` of interaction `key`: they take part in it
    /// and it carries the file. Answered with the plugin that keeps it.
    Attachment {
        /// The agent asking.
        agent: String,
        /// The interaction.
        key: u64,
        /// The file's path in the plugin's data directory.
        path: String,
    },
    /// Every agent's presence (the Team Communicator).
    Presence,
}

/// One channel's queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueView {
    /// The channel.
    pub channel: String,
    /// Interactions waiting for an agent.
    pub waiting: usize,
    /// When the one waiting longest arrived.
    pub oldest_since: Option<Millis>,
}

/// Something an agent does inside an interaction that only its plugin acts on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "act", content = "value", rename_all = "kebab-case")]
pub enum Interact {
    /// Send DTMF digits on a call (`0-9`, `*`, `#`, `A-D`).
    Dtmf(String),
    /// The agent started or stopped typing.
    Typing(bool),
    /// Invoke a custom action the plugin declared for the interaction.
    Action(String),
}

/// The answer to a `Query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Search results.
    Entries(Vec<HistoryEntry>),
    /// Transcript lines.
    Lines(Vec<TranscriptLine>),
    /// Live transcript lines.
    LiveLines(Vec<LiveLine>),
    /// A contact, if it exists.
    Contact(Option<ContactRecord>),
    /// A contact id, if any.
    ContactId(Option<ContactId>),
    /// Rows imported and lines skipped.
    Imported(usize, Vec<String>),
    /// Queues.
    Queues(Vec<QueueView>),
    /// The plugin whose data directory keeps a file.
    Plugin(String),
    /// Every agent's presence.
    Presence(Vec<Presence>),
}

/// A client's handle on the core. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct CoreHandle {
    pub(super) requests: Sender<Request>,
}

impl std::fmt::Debug for CoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoreHandle")
    }
}

impl CoreHandle {
    /// Sends a request and returns where its answer will come, without waiting. If the service
    /// has stopped, the request (and its reply sender) is dropped: the answer's `recv` fails.
    fn submit<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Receiver<T> {
        let (reply, answer) = bounded(1);
        if self.requests.send(make(reply)).is_err() {
            tracing::debug!("the core service has stopped: request not sent");
        }
        answer
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T, ClientError> {
        self.submit(make).recv().map_err(|_| ClientError::Stopped)
    }

    /// Carries out an agent's command; returns once it is journaled (or refused).
    pub fn execute(&self, agent: &str, command: AgentCommand) -> Result<(), ClientError> {
        self.submit_command(agent, None, command)
            .recv()
            .map_err(|_| ClientError::Stopped)?
    }

    /// Submits an agent's command without waiting; the answer comes once it is journaled (or
    /// refused). With an id, a command already answered is answered again the same way and not
    /// carried out twice ([`answered`]).
    pub fn submit_command(
        &self,
        agent: &str,
        id: Option<CommandId>,
        command: AgentCommand,
    ) -> Receiver<Result<(), ClientError>> {
        self.submit(|reply| Request::Execute {
            agent: agent.into(),
            id,
            command,
            reply,
        })
    }

    /// Logs an agent's desktop in and returns its session.
    pub fn login(&self, agent: &str) -> Result<AgentSession, ClientError> {
        self.execute(agent, AgentCommand::LogIn)?;
        Ok(AgentSession {
            handle: self.clone(),
            agent: agent.into(),
        })
    }

    /// The current snapshot of an agent.
    pub fn snapshot(&self, agent: &str) -> Result<Option<AgentSnapshot>, ClientError> {
        self.ask(|reply| Request::Snapshot {
            agent: agent.into(),
            reply,
        })
    }

    /// A stream of snapshots of an agent: one now, then one after every change that concerns it.
    pub fn watch(&self, agent: &str) -> Result<Receiver<AgentSnapshot>, ClientError> {
        let (updates, stream) = unbounded();
        self.watch_into(agent, updates)?;
        Ok(stream)
    }

    /// Sends `agent`'s snapshots (the current one first) into `updates`, which may carry other
    /// agents' snapshots too (each names its agent): one reader can follow a whole team.
    pub fn watch_into(
        &self,
        agent: &str,
        updates: Sender<AgentSnapshot>,
    ) -> Result<(), ClientError> {
        self.requests
            .send(Request::Watch {
                agent: agent.into(),
                updates,
            })
            .map_err(|_| ClientError::Stopped)
    }

    /// Takes new rules from the admin (a reload of the configuration): the team (journaled) and
    /// the rest, from the next decision on. Answers what changed in the team once journaled.
    pub fn reconfigure(&self, policy: Policy) -> Receiver<Result<RosterChange, ClientError>> {
        let (reply, answer) = bounded(1);
        let request = Request::Reconfigure {
            policy: Box::new(policy),
            reply,
        };
        if let Err(e) = self.requests.send(request) {
            if let Request::Reconfigure { reply, .. } = e.into_inner() {
                let _ = reply.send(Err(ClientError::Stopped));
            }
        }
        answer
    }

    /// Runs the timers now (tests with a manual clock call this after advancing it).
    pub fn tick(&self) -> Result<(), ClientError> {
        self.ask(|reply| Request::Tick { reply })
    }

    /// Time an agent's channel spent in a state label, up to now.
    pub fn time_in_state(
        &self,
        agent: &str,
        channel: &str,
        label: &str,
    ) -> Result<Millis, ClientError> {
        self.ask(|reply| Request::TimeInState {
            agent: agent.into(),
            channel: channel.into(),
            label: label.into(),
            reply,
        })
    }

    /// Sends a message from an agent in their active chat or email; it goes to the plugin and to
    /// the transcript (never for IM).
    pub fn send_message(&self, agent: &str, key: u64, text: &str) -> Result<(), ClientError> {
        self.submit_message(agent, None, key, text)
            .recv()
            .map_err(|_| ClientError::Stopped)?
    }

    /// [`CoreHandle::send_message`] without waiting; idempotent by id like
    /// [`CoreHandle::submit_command`].
    pub fn submit_message(
        &self,
        agent: &str,
        id: Option<CommandId>,
        key: u64,
        text: &str,
    ) -> Receiver<Result<(), ClientError>> {
        self.submit(|reply| Request::SendMessage {
            agent: agent.into(),
            id,
            key,
            text: text.into(),
            reply,
        })
    }

    /// Acts inside an interaction the agent takes part in without changing its routing state
    /// (DTMF, typing, a plugin's custom action): the plugin is told.
    pub fn interact(&self, agent: &str, key: u64, act: Interact) -> Result<(), ClientError> {
        self.submit_interact(agent, None, key, act)
            .recv()
            .map_err(|_| ClientError::Stopped)?
    }

    /// [`CoreHandle::interact`] without waiting; idempotent by id like
    /// [`CoreHandle::submit_command`].
    pub fn submit_interact(
        &self,
        agent: &str,
        id: Option<CommandId>,
        key: u64,
        act: Interact,
    ) -> Receiver<Result<(), ClientError>> {
        self.submit(|reply| Request::Interact {
            agent: agent.into(),
            id,
            key,
            act,
            reply,
        })
    }

    /// Asks about history or contacts.
    pub fn query(&self, query: Query) -> Result<Answer, ClientError> {
        self.submit_query(query)
            .recv()
            .map_err(|_| ClientError::Stopped)?
    }

    /// [`CoreHandle::query`] without waiting.
    pub fn submit_query(&self, query: Query) -> Receiver<Result<Answer, ClientError>> {
        self.submit(|reply| Request::Query { query, reply })
    }

    /// Feeds a plugin event as if the plugin had emitted it (the headless driver and tests).
    pub fn plugin_event(&self, plugin: &str, event: Event) -> Result<(), ClientError> {
        self.requests
            .send(Request::Plugin {
                plugin: Arc::from(plugin),
                event,
            })
            .map_err(|_| ClientError::Stopped)
    }
}

/// One logged-in agent's desktop session.
#[derive(Debug, Clone)]
pub struct AgentSession {
    handle: CoreHandle,
    agent: String,
}

impl AgentSession {
    /// The agent.
    pub fn agent(&self) -> &str {
        &self.agent
    }
    /// Sends a command as this agent.
    pub fn send(&self, command: AgentCommand) -> Result<(), ClientError> {
        self.handle.execute(&self.agent, command)
    }
    /// This agent's snapshot.
    pub fn snapshot(&self) -> Result<AgentSnapshot, ClientError> {
        self.handle
            .snapshot(&self.agent)?
            .ok_or(ClientError::Stopped)
    }
    /// This agent's snapshot stream.
    pub fn watch(&self) -> Result<Receiver<AgentSnapshot>, ClientError> {
        self.handle.watch(&self.agent)
    }
}
