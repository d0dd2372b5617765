//! The client interface over a core in this process: calls become requests to the core service's
//! thread (`CoreHandle::submit_*`), whose answers the [`Pending`]s take when they come. Nothing
//! here waits for the core.

use crate::command_ids::CommandIds;
use crate::{ClientError, Connection, DeskClient, DeskInfo, Pending, PluginTable, TeamView};
use agentdesk_host::core::{AgentCommand, Millis, Policy};
use agentdesk_host::runtime::Runtime;
use agentdesk_host::service::clock::Clock;
use agentdesk_host::service::{
    AgentSnapshot, Answer, CommandId, CoreHandle, Interact, LiveLine, Query,
};
use agentdesk_host::storage::history::{HistoryEntry, TranscriptLine};
use agentdesk_host::{AdminConfig, PluginHost};
use crossbeam_channel::Receiver;
use plugin_api::AttachmentRef;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A core service (and its plugins) in this process.
#[derive(Clone)]
pub struct InProcess {
    core: CoreHandle,
    /// The desk's information under the current rules (a reload replaces it; a session keeps
    /// the one it logged in with).
    info: Arc<RwLock<Arc<DeskInfo>>>,
    plugins: Option<Arc<PluginHost>>,
    clock: Arc<dyn Clock>,
    data_dir: Option<PathBuf>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

impl InProcess {
    /// A connection to `core`, whose rules are `policy`. With `plugins`, the plugin table is
    /// theirs; with `data_dir`, plugins' files are read from under it.
    pub fn new(
        core: CoreHandle,
        policy: &Policy,
        plugins: Option<Arc<PluginHost>>,
        clock: Arc<dyn Clock>,
        data_dir: Option<PathBuf>,
    ) -> Self {
        InProcess {
            core,
            info: Arc::new(RwLock::new(Arc::new(DeskInfo::from_policy(policy)))),
            plugins,
            clock,
            data_dir,
        }
    }

    /// A session for `agent` without logging in (a server answering for an agent whose login
    /// happened earlier, perhaps before a restart of the server).
    pub fn session(&self, agent: &str) -> Box<dyn DeskClient> {
        Box::new(Session {
            agent: agent.to_string(),
            connection: self.clone(),
            ids: CommandIds::new(),
            info: self.info(),
        })
    }

    /// The whole team now. Waits for the core: for servers and headless commands.
    pub fn team_now(&self) -> Result<TeamView, ClientError> {
        let mut agents = Vec::new();
        for (id, _) in &self.info().agents {
            if let Some(snapshot) = self.snapshot(id)? {
                agents.push(snapshot);
            }
        }
        let queues = match self.core.query(Query::Queues).map_err(ClientError::from)? {
            Answer::Queues(queues) => queues,
            _ => {
                return Err(ClientError::Unexpected {
                    asked: "the queues".into(),
                });
            }
        };
        Ok(TeamView {
            agents,
            queues,
            at: self.clock.now(),
        })
    }

    /// `agent`'s current snapshot (`None` for an unknown agent). Waits for the core: for servers.
    pub fn snapshot(&self, agent: &str) -> Result<Option<AgentSnapshot>, ClientError> {
        self.core.snapshot(agent).map_err(ClientError::from)
    }

    /// Sends `agent`'s snapshots, the current one first, into `updates`, which may follow other
    /// agents too (each snapshot names its agent): the hub publishes a whole team's from one
    /// reader.
    pub fn watch_into(
        &self,
        agent: &str,
        updates: crossbeam_channel::Sender<AgentSnapshot>,
    ) -> Result<(), ClientError> {
        self.core
            .watch_into(agent, updates)
            .map_err(ClientError::from)
    }

    /// The desk's information under the current rules.
    pub fn info(&self) -> Arc<DeskInfo> {
        match self.info.read() {
            Ok(info) => info.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the desk's information (after a reload).
    pub(crate) fn set_info(&self, info: DeskInfo) {
        match self.info.write() {
            Ok(mut current) => *current = Arc::new(info),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(info),
        }
    }

    /// The core, for the reload (`crate::reload`).
    pub(crate) fn core(&self) -> &CoreHandle {
        &self.core
    }

    /// Where plugins keep their files, if this core has a data directory.
    pub(crate) fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The plugins, if any.
    pub(crate) fn plugin_host(&self) -> Option<&Arc<PluginHost>> {
        self.plugins.as_ref()
    }

    fn table(&self) -> PluginTable {
        match &self.plugins {
            Some(plugins) => PluginTable::of(plugins.reports(), plugins.not_found()),
            None => PluginTable::default(),
        }
    }
}

impl Connection for InProcess {
    fn agents(&self) -> Pending<Vec<(String, String)>> {
        Pending::ready(Ok(self.info().agents.clone()))
    }

    fn login(&self, agent: &str) -> Pending<Box<dyn DeskClient>> {
        let session = Session {
            agent: agent.to_string(),
            connection: self.clone(),
            ids: CommandIds::new(),
            info: self.info(),
        };
        let id = session.next_id();
        let answer = self
            .core
            .submit_command(agent, Some(id.clone()), AgentCommand::LogIn);
        Pending::from_channel(answer, move |logged_in| {
            logged_in.map_err(ClientError::from)?;
            Ok(Box::new(session) as Box<dyn DeskClient>)
        })
        .for_command(id)
    }

    fn plugins(&self) -> Pending<PluginTable> {
        Pending::ready(Ok(self.table()))
    }

    fn team(&self) -> Pending<TeamView> {
        // Off the caller's thread: it asks the core once per agent.
        let (reply, answer) = crossbeam_channel::bounded(1);
        let connection = self.clone();
        let asked = std::thread::Builder::new()
            .name("client-team".into())
            .spawn(move || {
                let _ = reply.send(connection.team_now());
            });
        match asked {
            Ok(_) => Pending::from_channel(answer, |team| team),
            Err(e) => Pending::ready(Err(ClientError::failed("team", e.to_string()))),
        }
    }

    fn close(self: Box<Self>) {}
}

/// One agent's session with a core in this process.
struct Session {
    agent: String,
    connection: InProcess,
    ids: CommandIds,
    /// The desk's information as it was when the session began.
    info: Arc<DeskInfo>,
}

impl Session {
    fn query<T: Send + 'static>(
        &self,
        query: Query,
        asked: &'static str,
        take: impl FnOnce(Answer) -> Option<T> + Send + 'static,
    ) -> Pending<T> {
        let answer = self.connection.core.submit_query(query);
        Pending::from_channel(answer, move |answer| {
            let answer = answer.map_err(ClientError::from)?;
            take(answer).ok_or_else(|| ClientError::Unexpected {
                asked: asked.into(),
            })
        })
    }
}

/// A command's answer: done, or the core's refusal.
fn acknowledged(
    id: CommandId,
    answer: Receiver<Result<(), agentdesk_host::service::ClientError>>,
) -> Pending<()> {
    Pending::from_channel(answer, |done| done.map_err(ClientError::from)).for_command(id)
}

impl DeskClient for Session {
    fn agent(&self) -> &str {
        &self.agent
    }

    fn info(&self) -> &DeskInfo {
        &self.info
    }

    fn now(&self) -> Millis {
        self.connection.clock.now()
    }

    fn next_id(&self) -> CommandId {
        self.ids.next()
    }

    fn watch(&self) -> Receiver<AgentSnapshot> {
        match self.connection.core.watch(&self.agent) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(agent = self.agent, "no snapshots: {e}");
                crossbeam_channel::never()
            }
        }
    }

    fn command(&self, id: CommandId, command: AgentCommand) -> Pending<()> {
        let answer = self
            .connection
            .core
            .submit_command(&self.agent, Some(id.clone()), command);
        acknowledged(id, answer)
    }

    fn send_message(&self, id: CommandId, key: u64, text: &str) -> Pending<()> {
        let answer = self
            .connection
            .core
            .submit_message(&self.agent, Some(id.clone()), key, text);
        acknowledged(id, answer)
    }

    fn interact(&self, id: CommandId, key: u64, act: Interact) -> Pending<()> {
        let answer = self
            .connection
            .core
            .submit_interact(&self.agent, Some(id.clone()), key, act);
        acknowledged(id, answer)
    }

    fn live_lines(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<LiveLine>> {
        let query = Query::Live {
            agent: self.agent.clone(),
            key,
            offset,
            limit,
        };
        self.query(query, "live lines", |a| match a {
            Answer::LiveLines(lines) => Some(lines),
            _ => None,
        })
    }

    fn contact_history(&self, key: u64, limit: usize) -> Pending<Vec<HistoryEntry>> {
        self.query(
            Query::ContactHistory { key, limit },
            "contact history",
            |a| match a {
                Answer::Entries(entries) => Some(entries),
                _ => None,
            },
        )
    }

    fn presence(&self) -> Pending<Vec<crate::Presence>> {
        self.query(Query::Presence, "presence", |a| match a {
            Answer::Presence(all) => Some(all),
            _ => None,
        })
    }

    fn search(&self, text: Option<&str>, limit: usize) -> Pending<Vec<HistoryEntry>> {
        let query = Query::Search {
            contact: None,
            text: text.map(str::to_string),
            limit,
        };
        self.query(query, "a search", |a| match a {
            Answer::Entries(entries) => Some(entries),
            _ => None,
        })
    }

    fn recent(&self, filter: &crate::HistoryFilter, limit: usize) -> Pending<Vec<HistoryEntry>> {
        let query = Query::Recent {
            agent: self.agent.clone(),
            channel: filter.channel.clone(),
            outcome: filter.outcome.clone(),
            limit,
        };
        self.query(query, "the recent interactions", |a| match a {
            Answer::Entries(entries) => Some(entries),
            _ => None,
        })
    }

    fn transcript(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<TranscriptLine>> {
        let query = Query::Transcript { key, offset, limit };
        self.query(query, "a transcript", |a| match a {
            Answer::Lines(lines) => Some(lines),
            _ => None,
        })
    }

    fn file(&self, key: u64, attachment: &AttachmentRef) -> Pending<Vec<u8>> {
        self.connection
            .file_piece(&self.agent, key, attachment, 0, u64::MAX)
            .map(|(bytes, _)| Ok(bytes))
    }

    fn plugins(&self) -> Pending<PluginTable> {
        Pending::ready(Ok(self.connection.table()))
    }
}

/// The whole product in this process: the plugins of a configuration and the core over them,
/// with the journal and history in its data directory (`agentdesk run`).
pub struct Embedded {
    runtime: Runtime,
    connection: InProcess,
    stop_within: Duration,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedded")
    }
}

impl Embedded {
    /// Starts the plugins of `config`, then the core.
    pub fn start(config: &AdminConfig) -> Result<Self, ClientError> {
        let runtime = Runtime::start(config).map_err(|e| ClientError::failed("start", e))?;
        let connection = InProcess::new(
            runtime.core(),
            &runtime.policy,
            Some(runtime.plugins.clone()),
            runtime.clock.clone(),
            Some(runtime.data_dir.clone()),
        );
        // Every plugin's stop, plus the core's, well within this.
        let stop_within = Duration::from_millis(config.plugins.stop_deadline_ms)
            .saturating_mul(runtime.plugins.running_ids().len().max(1) as u32)
            + Duration::from_secs(5);
        Ok(Embedded {
            runtime,
            connection,
            stop_within,
        })
    }

    /// How long stopping may take at most.
    pub fn stop_within(&self) -> Duration {
        self.stop_within
    }

    /// The data directory (the ring tone lives there).
    pub fn data_dir(&self) -> &Path {
        &self.runtime.data_dir
    }

    /// The in-process connection (a hub serves it to remote desktops).
    pub fn in_process(&self) -> InProcess {
        self.connection.clone()
    }
}

impl Connection for Embedded {
    fn agents(&self) -> Pending<Vec<(String, String)>> {
        self.connection.agents()
    }

    fn login(&self, agent: &str) -> Pending<Box<dyn DeskClient>> {
        self.connection.login(agent)
    }

    fn plugins(&self) -> Pending<PluginTable> {
        self.connection.plugins()
    }

    fn team(&self) -> Pending<TeamView> {
        self.connection.team()
    }

    /// Stops the core (everything acknowledged is journaled), then the plugins.
    fn close(self: Box<Self>) {
        self.runtime.stop();
    }
}
