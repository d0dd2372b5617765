//! The core as a running service: one thread owns the core and the journal; clients (the desktop,
//! tests, the headless driver) reach it only through `CoreHandle` — commands in, snapshots out.
//! Plugin events are pumped in from the plugin host; plugin commands go out on their own thread,
//! so a slow plugin never holds up routing.

pub mod answered;
pub mod clock;
pub mod detail;
pub mod early;
pub mod effects;
mod handle;
mod link_wait;
mod queries;
pub mod recovery;
pub mod snapshot;

use crate::core::model::ChannelRequest;
use crate::core::{
    AgentCommand, Core, CoreError, CoreEvent, InteractionKey, InteractionState, Millis, Policy,
    RosterChange, Stamped,
};
use crate::plugins::PluginHost;
use crate::storage::history::{ContactId, ContactRecord, HistoryEntry, TranscriptLine};
use crate::storage::{History, Journal, MessageMark, StorageError};
pub use answered::CommandId;
use clock::Clock;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
pub use detail::{DetailView, LiveLine};
use handle::Request;
pub use handle::{AgentSession, Answer, ClientError, CoreHandle, Interact, Query, QueueView};
use plugin_api::{Address, Command, Event, MessageContent, SendMessage};
pub use snapshot::{AgentSnapshot, ChannelView, InteractionView, Presence};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The running service.
pub struct CoreService {
    handle: CoreHandle,
    core_thread: Option<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for CoreService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoreService")
    }
}

impl CoreService {
    /// Starts the core with `policy`, replaying `journal` first (if any), taking events from and
    /// sending commands to `plugins` (if any).
    pub fn start(
        mut policy: Policy,
        mut journal: Option<Journal>,
        history: Option<History>,
        plugins: Option<Arc<PluginHost>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StorageError> {
        if let Some(plugins) = &plugins {
            // Outbound interactions of a channel go to the running plugin that serves it and
            // declared `dial` or `compose`.
            for id in plugins.running_ids() {
                let hello = plugins.hello(&id).cloned().unwrap_or_default();
                // What each plugin can do is its hello's word, never its channel's name.
                policy
                    .capabilities
                    .insert(id.clone(), hello.commands.iter().cloned().collect());
                let outbound = hello.supports("dial") || hello.supports("compose");
                // So is whether a channel's interactions may be saved (internal IM: never).
                policy
                    .never_saved
                    .extend(hello.never_saved.iter().map(|c| c.0.clone()));
                let channels = plugins
                    .descriptor(&id)
                    .map(|d| d.channels.clone())
                    .unwrap_or_default();
                for channel in channels.into_iter().filter(|_| outbound) {
                    policy
                        .channel_plugins
                        .entry(channel.0)
                        .or_insert_with(|| id.clone());
                }
            }
        }
        let mut history = history;
        if let Some(history) = &mut history {
            history.never_save(policy.never_saved.iter().cloned());
        }
        let snapshot_every = policy.snapshot_every;
        let (core, snapshots) = match &mut journal {
            Some(journal) => {
                let store = recovery::open_store(journal);
                let started = policy.clone();
                let recovered = recovery::recover(policy, clock.now(), journal, store.as_ref())?;
                let last = recovered.snapshot.unwrap_or(0);
                let schedule = recovery::SnapshotSchedule::new(snapshot_every, last, store);
                let mut core = recovered.core;
                // The journal records the team: the configuration's, if it changed while the
                // hub was down (or the journal is new).
                let (change, events) = core.reconfigure(clock.now(), started);
                if !events.is_empty() {
                    journal.append(&events)?;
                    tracing::info!(?change, "the team recorded in the journal");
                }
                (core, schedule)
            }
            None => (
                Core::new(policy, clock.now()),
                recovery::SnapshotSchedule::new(0, 0, None),
            ),
        };
        let (requests, inbox) = unbounded::<Request>();
        let stop = Arc::new(AtomicBool::new(false));
        let mut helpers = Vec::new();
        let (dispatch, outbox) = unbounded::<effects::PluginCommand>();
        let worker_plugins = plugins.clone();
        // The latest health each plugin reported, kept by the plugin host across core restarts.
        let statuses: BTreeMap<String, plugin_api::ChannelStatus> = plugins
            .iter()
            .flat_map(|p| {
                p.running_ids().into_iter().flat_map(|id| {
                    let status = p.channel_status(&id);
                    let channels: Vec<String> = p
                        .descriptor(&id)
                        .map(|d| d.channels.iter().map(|c| c.0.clone()).collect())
                        .unwrap_or_default();
                    channels
                        .into_iter()
                        .filter_map(move |c| status.clone().map(|s| (c, s)))
                })
            })
            .collect();
        let plugin_channels: BTreeMap<String, Vec<String>> = plugins
            .iter()
            .flat_map(|p| {
                p.running_ids().into_iter().map(|id| {
                    let channels = p
                        .descriptor(&id)
                        .map(|d| d.channels.iter().map(|c| c.0.clone()).collect())
                        .unwrap_or_default();
                    (id, channels)
                })
            })
            .collect();
        if let Some(plugins) = plugins {
            helpers.push(spawn("core-plugin-events", {
                let (plugins, requests, stop) = (plugins.clone(), requests.clone(), stop.clone());
                move || pump_plugin_events(&plugins, &requests, &stop)
            }));
            let links = requests.clone();
            helpers.push(spawn("core-plugin-commands", move || {
                dispatch_commands(&plugins, &outbox, &links)
            }));
        }
        let core_thread = spawn("core", move || {
            let mut worker = Worker {
                core,
                answered: answered::Answered::default(),
                journal,
                history,
                clock,
                dispatch,
                plugin_channels,
                statuses,
                agents_changed: BTreeSet::new(),
                plugins: worker_plugins,
                watchers: BTreeMap::new(),
                details: detail::Details::default(),
                early: early::EarlyEvents::default(),
                link_wait: link_wait::LinkWait::default(),
                detail_changed: BTreeSet::new(),
                snapshots,
            };
            worker.restore_transcripts();
            worker.settle_unanswered();
            worker.run(&inbox);
            worker.snapshot_at_stop();
        });
        Ok(CoreService {
            handle: CoreHandle { requests },
            core_thread: Some(core_thread),
            helpers,
            stop,
        })
    }

    /// A client handle.
    pub fn handle(&self) -> CoreHandle {
        self.handle.clone()
    }

    /// Stops the service; everything acknowledged is in the journal.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.handle.requests.send(Request::Stop);
        if let Some(thread) = self.core_thread.take() {
            let _ = thread.join();
        }
        self.stop.store(true, Ordering::SeqCst);
        for helper in self.helpers.drain(..) {
            let _ = helper.join();
        }
    }
}

impl Drop for CoreService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    // A thread that cannot be created leaves the service without it; the OS is out of resources
    // and the panic says so at start-up.
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

fn pump_plugin_events(plugins: &PluginHost, requests: &Sender<Request>, stop: &AtomicBool) {
    let mut isolated = BTreeSet::new();
    while !stop.load(Ordering::SeqCst) {
        // A quarantine happens on a plugin's actor; the core hears of it here, once.
        for (plugin, reason) in plugins.quarantined() {
            if isolated.insert(plugin.clone())
                && requests
                    .send(Request::PluginQuarantined { plugin, reason })
                    .is_err()
            {
                return;
            }
        }
        for (plugin, reason) in plugins.take_crashes() {
            if requests
                .send(Request::PluginCrashed { plugin, reason })
                .is_err()
            {
                return;
            }
        }
        if let Some(event) = plugins.recv_event(Duration::from_millis(50))
            && requests
                .send(Request::Plugin {
                    plugin: event.plugin_id,
                    event: event.event,
                })
                .is_err()
        {
            return;
        }
    }
}

fn dispatch_commands(
    plugins: &PluginHost,
    outbox: &Receiver<effects::PluginCommand>,
    links: &Sender<Request>,
) {
    while let Ok(effects::PluginCommand {
        plugin,
        command,
        link,
        about,
    }) = outbox.recv()
    {
        let kind = command.kind().to_string();
        let answered = plugins.send(&plugin, &command);
        // The core waits for the answer to some commands before it changes state.
        if let (Some(key), Ok(_), Some(request)) =
            (about, &answered, ChannelRequest::of_kind(&kind))
            && links.send(Request::CommandDone { key, request }).is_err()
        {
            tracing::warn!(plugin, "the core stopped before the answer to {key}");
        }
        match answered {
            Ok(plugin_api::Reply::Created(created)) => {
                if let Some(key) = link {
                    let _ = links.send(Request::Link {
                        key,
                        interaction: created.interaction,
                    });
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(
                    plugin,
                    command = command.kind(),
                    "plugin command failed: {e}"
                );
                // Typing is advisory: a channel without it is not worth a notice.
                if let Some(key) = about.filter(|_| !matches!(command, Command::SetTyping(_)))
                    && links
                        .send(Request::CommandFailed {
                            key,
                            notice: format!("The channel could not {kind}: {e}"),
                            kind,
                        })
                        .is_err()
                {
                    tracing::warn!(plugin, "the core stopped before the failure of {key}");
                }
            }
        }
    }
}

/// The repliers waiting for a batch's commit: one command, and the same command sent again with
/// its id within the batch.
struct Ack {
    remembered: Option<(String, CommandId)>,
    replies: Vec<Sender<Result<(), ClientError>>>,
}

struct Worker {
    core: Core,
    /// Answers to commands with ids, given again to a repeat.
    answered: answered::Answered,
    journal: Option<Journal>,
    history: Option<History>,
    clock: Arc<dyn Clock>,
    dispatch: Sender<effects::PluginCommand>,
    /// The channels of each running plugin.
    plugin_channels: BTreeMap<String, Vec<String>>,
    /// The latest `channel-status` by channel.
    statuses: BTreeMap<String, plugin_api::ChannelStatus>,
    /// Agents whose snapshot changed outside the core (a channel's status).
    agents_changed: BTreeSet<String>,
    /// For the plugins' counters.
    plugins: Option<Arc<PluginHost>>,
    watchers: BTreeMap<String, Vec<Sender<AgentSnapshot>>>,
    details: detail::Details,
    early: early::EarlyEvents,
    /// Commands about interactions whose channel has not named them yet.
    link_wait: link_wait::LinkWait,
    /// Interactions whose detail changed since the last commit (their people get a snapshot).
    detail_changed: BTreeSet<InteractionKey>,
    /// When the core state is written as a snapshot (see `recovery`).
    snapshots: recovery::SnapshotSchedule,
}

impl Worker {
    /// Serves requests. Group commit: up to `BATCH` waiting requests are applied together and
    /// journaled in one transaction; none is acknowledged (nor answered) before that commit.
    fn run(&mut self, inbox: &Receiver<Request>) {
        const BATCH: usize = 256;
        loop {
            let first = match inbox.recv_timeout(self.until_next_timer()) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    let events = self.core.tick(self.clock.now());
                    let _ = self.commit(&events);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match inbox.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            let mut events = Vec::new();
            let mut acks: Vec<Ack> = Vec::new();
            let mut in_batch: BTreeMap<(String, CommandId), usize> = BTreeMap::new();
            let mut reads = Vec::new();
            let mut reconfigured = Vec::new();
            let mut stop = false;
            for request in batch {
                match request {
                    Request::Execute {
                        agent,
                        id,
                        command,
                        reply,
                    } => {
                        if let Some(answer) = self.repeated(&agent, id.as_ref()) {
                            let _ = reply.send(answer);
                            continue;
                        }
                        // The same id twice in one batch: the second waits for the first's commit.
                        let remembered = id.map(|id| (agent.clone(), id));
                        if let Some(at) = remembered.as_ref().and_then(|r| in_batch.get(r)) {
                            let ack: &mut Ack = &mut acks[*at];
                            ack.replies.push(reply);
                            continue;
                        }
                        match self.core.execute(now, &agent, command) {
                            Ok(done) => {
                                events.extend(done);
                                if let Some(r) = &remembered {
                                    in_batch.insert(r.clone(), acks.len());
                                }
                                acks.push(Ack {
                                    remembered,
                                    replies: vec![reply],
                                });
                            }
                            Err(refused) => {
                                let answer = Err(ClientError::Refused(refused));
                                if let Some((agent, id)) = remembered {
                                    self.answered.remember(&agent, id, answer.clone());
                                }
                                let _ = reply.send(answer);
                            }
                        }
                    }
                    Request::Plugin { plugin, event } => match self.unlinked(&plugin, &event) {
                        Some(id) => self.early.hold(&plugin, &id, event, now),
                        None => self.take_plugin_event(now, &plugin, &event, &mut events),
                    },
                    Request::SendMessage {
                        agent,
                        id,
                        key,
                        text,
                        reply,
                    } => {
                        let answer = match self.repeated(&agent, id.as_ref()) {
                            Some(answer) => answer,
                            None => self.send_message(&agent, key, text, now),
                        };
                        self.remember(&agent, id, &answer);
                        let _ = reply.send(answer);
                    }
                    Request::Interact {
                        agent,
                        id,
                        key,
                        act,
                        reply,
                    } => {
                        let answer = match self.repeated(&agent, id.as_ref()) {
                            Some(answer) => answer,
                            None => self.interact(&agent, key, act),
                        };
                        self.remember(&agent, id, &answer);
                        let _ = reply.send(answer);
                    }
                    // Only while the interaction is active: a refused `end` of a call the
                    // customer already left, say, is nothing the agent must act on.
                    Request::CommandFailed { key, kind, notice } => {
                        // The agent hears of it where they act: on the interaction, or for a
                        // consultation, on the interaction it is about.
                        let told = self.core.interaction(key).and_then(|i| {
                            let about = i.consult.as_ref().map_or(key, |c| c.about);
                            let active = self
                                .core
                                .interaction(about)
                                .is_some_and(|a| a.state == InteractionState::Active);
                            active.then_some(about)
                        });
                        // What the core recorded on the request is rolled back (core::confirm).
                        events.extend(self.core.channel_answered(
                            now,
                            key,
                            &kind,
                            Err(notice.clone()),
                        ));
                        if let Some(told) = told {
                            self.details.notice(told, notice);
                            self.detail_changed.insert(told);
                        }
                        if matches!(kind.as_str(), "dial" | "compose" | "consult") {
                            let dropped = self.link_wait.refused(key).len();
                            if dropped > 0 {
                                tracing::warn!(
                                    "{dropped} commands about {key} dropped: its channel did \
                                     not create it"
                                );
                            }
                        }
                    }
                    Request::PluginQuarantined { plugin, reason } => {
                        self.isolate(now, &plugin, &reason, &mut events);
                    }
                    Request::PluginCrashed { plugin, reason } => {
                        self.plugin_crashed(&plugin, &reason);
                    }
                    Request::CommandDone { key, request } => {
                        let kind = request.kind();
                        events.extend(self.core.channel_answered(now, key, kind, Ok(())));
                    }
                    Request::Link { key, interaction } => {
                        let id = interaction.as_str().to_string();
                        let held = self.link_wait.linked(key, &interaction);
                        events.extend(self.core.link_plugin_id(now, key, interaction));
                        for command in held {
                            self.send_to_plugin(command);
                        }
                        // Events the plugin sent about its new id before this reply was linked.
                        if let Some(plugin) = self.core.interaction(key).map(|i| i.plugin.clone()) {
                            for event in self.early.release(&plugin, &id) {
                                self.take_plugin_event(now, &plugin, &event, &mut events);
                            }
                        }
                    }
                    Request::Tick { reply } => {
                        events.extend(self.core.tick(now));
                        reads.push(Request::Tick { reply });
                    }
                    Request::Reconfigure { policy, reply } => {
                        let (change, done) = self.reconfigure(now, *policy);
                        events.extend(done);
                        reconfigured.push((change, reply));
                    }
                    Request::Stop => stop = true,
                    read => reads.push(read),
                }
            }
            self.early.expire(now);
            let committed = self.commit(&events);
            for ack in acks {
                if let Some((agent, id)) = ack.remembered {
                    self.answered.remember(&agent, id, committed.clone());
                }
                for reply in ack.replies {
                    let _ = reply.send(committed.clone());
                }
            }
            for (change, reply) in reconfigured {
                let _ = reply.send(committed.clone().map(|()| change));
            }
            for read in reads {
                self.answer(read, now);
            }
            if stop {
                return;
            }
        }
    }

    /// Takes the admin's new rules (`Core::reconfigure` keeps what the running plugins declared).
    fn reconfigure(&mut self, now: Millis, policy: Policy) -> (RosterChange, Vec<Stamped>) {
        let (change, events) = self.core.reconfigure(now, policy);
        if !change.is_empty() {
            tracing::info!(
                added = ?change.added,
                removed = ?change.removed,
                assigned = ?change.assigned,
                withdrawn = ?change.withdrawn,
                "the team changed"
            );
        }
        (change, events)
    }

    /// The first answer to a command sent again with the same id.
    fn repeated(&mut self, agent: &str, id: Option<&CommandId>) -> Option<Result<(), ClientError>> {
        self.answered.repeat(agent, id?)
    }

    fn remember(&mut self, agent: &str, id: Option<CommandId>, answer: &Result<(), ClientError>) {
        if let Some(id) = id {
            self.answered.remember(agent, id, answer.clone());
        }
    }

    /// Answers a request that changes nothing (after the batch it came in is committed).
    fn answer(&mut self, request: Request, now: Millis) {
        match request {
            Request::Snapshot { agent, reply } => {
                let _ = reply.send(snapshot::of_agent(
                    &self.core,
                    &self.details,
                    &self.statuses,
                    &agent,
                    now,
                ));
            }
            Request::Watch { agent, updates } => {
                if let Some(first) =
                    snapshot::of_agent(&self.core, &self.details, &self.statuses, &agent, now)
                    && updates.send(first).is_ok()
                {
                    self.watchers.entry(agent).or_default().push(updates);
                }
            }
            Request::Tick { reply } => {
                let _ = reply.send(());
            }
            Request::TimeInState {
                agent,
                channel,
                label,
                reply,
            } => {
                let _ = reply.send(self.core.time_in_state(&agent, &channel, &label, now));
            }
            Request::Query { query, reply } => {
                let _ = reply.send(self.query(query));
            }
            Request::Execute { .. }
            | Request::Plugin { .. }
            | Request::SendMessage { .. }
            | Request::Interact { .. }
            | Request::Link { .. }
            | Request::CommandFailed { .. }
            | Request::CommandDone { .. }
            | Request::PluginQuarantined { .. }
            | Request::PluginCrashed { .. }
            | Request::Reconfigure { .. }
            | Request::Stop => {}
        }
    }

    fn send_message(
        &mut self,
        agent: &str,
        key: u64,
        text: String,
        now: Millis,
    ) -> Result<(), ClientError> {
        let i = self.core.check_send(agent, key)?;
        let (plugin, interaction, channel) = (
            i.plugin.clone(),
            i.plugin_interaction.clone(),
            i.channel.clone(),
        );
        let name = self
            .core
            .agent(agent)
            .map_or_else(|| agent.to_string(), |a| a.name.clone());
        let speaker = plugin_api::AgentRef {
            id: agent.to_string(),
            display_name: name.clone(),
        };
        if let Some(history) = &mut self.history {
            history
                .add_message(key, &channel, now, &name, &text, None)
                .map_err(|e| ClientError::History(e.to_string()))?;
        }
        self.details.agent_wrote(key, now, &name, &text);
        self.detail_changed.insert(key);
        let id = format!("{key}-{now}");
        let message = MessageContent {
            id,
            text,
            attachments: vec![],
        };
        let command = Command::SendMessage(SendMessage {
            interaction,
            message,
            agent: Some(speaker),
        });
        self.send_to_plugin(effects::PluginCommand {
            plugin,
            command,
            link: None,
            about: Some(key),
        });
        Ok(())
    }

    /// After a restart: holds and resumes the channel never answered are rolled back, and open
    /// interactions of never-saved channels (IM) are closed (journaled).
    fn settle_unanswered(&mut self) {
        let now = self.clock.now();
        let mut events = self.core.unanswered_after_restart(now);
        events.extend(self.core.close_never_saved(now));
        if let Err(e) = self.commit(&events) {
            tracing::error!("unanswered requests not rolled back: {e}");
        }
    }

    /// After a restart: the transcripts of open interactions, from the history.
    fn restore_transcripts(&mut self) {
        let Some(history) = &self.history else {
            return;
        };
        let open: Vec<InteractionKey> = self
            .core
            .interactions()
            .filter(|i| !i.state.is_closed())
            .map(|i| i.key)
            .collect();
        for key in open {
            let declared = match history.detail(key) {
                Ok(json) => json
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default(),
                Err(e) => {
                    tracing::error!("detail of {key} not restored: {e}");
                    detail::Declared::default()
                }
            };
            let stored = history
                .transcript(key, 0, usize::MAX >> 1)
                .and_then(|lines| Ok((lines, history.message_marks(key)?)));
            match stored {
                Ok((lines, ids)) => self.details.restore(key, declared, lines, ids),
                Err(e) => tracing::error!("transcript of {key} not restored: {e}"),
            }
        }
    }

    /// Takes a quarantined plugin's channels out of routing, withdraws its waiting work and tells
    /// the people of its open interactions why.
    fn isolate(&mut self, now: Millis, plugin: &str, reason: &str, out: &mut Vec<Stamped>) {
        let channels = self
            .plugin_channels
            .get(plugin)
            .cloned()
            .unwrap_or_default();
        tracing::warn!(
            plugin,
            "quarantined: its channels {channels:?} leave routing"
        );
        let done = self.core.isolate(now, plugin, &channels, reason);
        out.extend(done.events);
        let with_them = self
            .core
            .agents()
            .filter(|a| channels.iter().any(|c| a.channels.contains_key(c)))
            .map(|a| a.id.clone());
        self.agents_changed.extend(with_them);
        for key in done.open {
            let notice =
                format!("The channel stopped working and can no longer act on this: {reason}");
            self.details.notice(key, notice);
            self.detail_changed.insert(key);
        }
    }

    /// Tells the people of an isolated plugin's open interactions that its process ended (it is
    /// restarted, but what it held for them in memory is gone).
    fn plugin_crashed(&mut self, plugin: &str, reason: &str) {
        tracing::warn!(plugin, "its process ended: {reason}");
        let open: Vec<_> = self
            .core
            .interactions()
            .filter(|i| i.plugin == plugin && !i.state.is_closed())
            .map(|i| i.key)
            .collect();
        for key in open {
            let notice = format!(
                "The channel's process ended and was restarted; it may no longer know this                  interaction: {reason}"
            );
            self.details.notice(key, notice);
            self.detail_changed.insert(key);
        }
    }

    /// Keeps the latest `channel-status` of a plugin's channels for My Channels.
    fn channel_status(&mut self, plugin: &str, status: &plugin_api::ChannelStatus) {
        let channels = self
            .plugin_channels
            .get(plugin)
            .cloned()
            .unwrap_or_default();
        for channel in channels {
            self.statuses.insert(channel.clone(), status.clone());
            let with_it = self
                .core
                .agents()
                .filter(|a| a.channels.contains_key(&channel))
                .map(|a| a.id.clone());
            self.agents_changed.extend(with_it);
        }
    }

    /// Applies a plugin event to the core and to the interaction's detail.
    fn take_plugin_event(
        &mut self,
        now: Millis,
        plugin: &str,
        event: &Event,
        out: &mut Vec<Stamped>,
    ) {
        if let Event::ChannelStatus(status) = event {
            self.channel_status(plugin, status);
        }
        out.extend(self.core.on_plugin_event(now, plugin, event));
        self.note_detail(plugin, event, now);
    }

    /// The plugin's interaction id an event is about, when the core does not know it (yet): see
    /// [`early`]. An offer introduces its id, so it is never early.
    fn unlinked(&self, plugin: &str, event: &Event) -> Option<String> {
        if matches!(event, Event::Offer(_)) {
            return None;
        }
        let id = detail::interaction_of(event)?;
        match self.core.interaction_by_plugin_id(plugin, id) {
            Some(_) => None,
            None => Some(id.as_str().to_string()),
        }
    }

    /// Takes in what a plugin event says about an interaction (after the core applied it, so an
    /// offer already has its key): its detail, and a message into the stored transcript.
    fn note_detail(&mut self, plugin: &str, event: &Event, now: Millis) {
        let Some(id) = detail::interaction_of(event) else {
            return;
        };
        let Some(i) = self.core.interaction_by_plugin_id(plugin, id) else {
            return;
        };
        let key = i.key;
        if let Event::MessageReceived(message) = event {
            let id = &message.message.id;
            let digest = detail::content_digest(&message.message);
            let metrics = self.plugins.as_ref().and_then(|p| p.metrics(plugin));
            match self.details.sight(key, id, &digest) {
                detail::Sight::New => {}
                detail::Sight::Duplicate => {
                    if let Some(m) = &metrics {
                        m.messages_duplicate.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(plugin, "message {id} of {key} received again; dropped");
                    return;
                }
                detail::Sight::Reused { earlier } => {
                    if let Some(m) = &metrics {
                        m.message_ids_reused.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(
                        plugin,
                        "message id {id} of {key} reused for other content (digest {digest}, \
                         earlier {}); kept as a new message",
                        earlier.join(", ")
                    );
                }
            }
            // A customer's or colleague's message goes to the stored transcript (never IM text).
            if let Some(history) = &mut self.history
                && let Err(e) = history.add_message(
                    key,
                    &i.channel,
                    now,
                    &message.from.display_name,
                    &message.message.text,
                    Some(MessageMark {
                        id,
                        digest: &digest,
                    }),
                )
            {
                tracing::error!("transcript not saved: {e}");
            }
        }
        let change = self.details.on_plugin_event(key, event, now);
        if change == detail::Change::Declared
            && !self.core.policy().never_saves(&i.channel)
            && let Some(history) = &mut self.history
        {
            let declared = self.details.declared(key);
            let saved = serde_json::to_string(&declared)
                .map_err(|e| e.to_string())
                .and_then(|json| history.save_detail(key, &json).map_err(|e| e.to_string()));
            if let Err(e) = saved {
                tracing::error!("detail of {key} not stored: {e}");
            }
        }
        if change != detail::Change::None {
            self.detail_changed.insert(key);
        }
    }

    fn interact(&mut self, agent: &str, key: u64, act: Interact) -> Result<(), ClientError> {
        let i = self.core.taking_part(agent, key)?;
        let interaction = i.plugin_interaction.clone();
        let kind = match &act {
            Interact::Dtmf(_) => "send-dtmf",
            Interact::Typing(_) => "set-typing",
            Interact::Action(_) => "invoke-action",
        };
        if !self.core.policy().supports(&i.plugin, kind) {
            return Err(ClientError::Refused(CoreError::Unsupported {
                key,
                command: kind.into(),
            }));
        }
        let command = match act {
            Interact::Dtmf(digits) => Command::SendDtmf(plugin_api::SendDtmf {
                interaction,
                digits,
            }),
            Interact::Typing(typing) => Command::SetTyping(plugin_api::SetTyping {
                interaction,
                typing,
            }),
            Interact::Action(action) => Command::InvokeAction(plugin_api::InvokeAction {
                interaction: Some(interaction),
                action,
            }),
        };
        let plugin = i.plugin.clone();
        self.send_to_plugin(effects::PluginCommand {
            plugin,
            command,
            link: None,
            about: Some(key),
        });
        Ok(())
    }

    /// Hands a command to the dispatcher thread. A core without plugins (scenarios, tests) has
    /// none: the command is logged and dropped.
    /// An outbound composed from another interaction is told that one's case data too (1.5
    /// `Compose.about`; the core keeps the subject, the details the case data).
    fn add_case_data(&self, command: &mut effects::PluginCommand, events: &[Stamped]) {
        let (Command::Compose(compose), Some(key)) = (&mut command.command, command.link) else {
            return;
        };
        let Some(about) = &mut compose.about else {
            return;
        };
        let from = events.iter().find_map(|s| match &s.event {
            CoreEvent::OutboundStarted {
                key: k,
                related: Some(from),
                ..
            } if *k == key => Some(*from),
            _ => None,
        });
        if let Some(from) = from {
            about.case_data = self.details.view(from).case_data;
        }
    }

    fn send_to_plugin(&mut self, command: effects::PluginCommand) {
        // An interaction the core started is named by its channel's reply: until then, what is
        // said about it waits (an IM written the moment it is opened).
        let Some(command) = self.link_wait.hold(command) else {
            return;
        };
        if let Some(key) = command.link {
            self.link_wait.expect(key);
        }
        if let Err(unsent) = self.dispatch.send(command) {
            let unsent = unsent.into_inner();
            tracing::debug!(
                plugin = %unsent.plugin,
                kind = unsent.command.kind(),
                "no plugin dispatcher: command not sent"
            );
        }
    }

    /// Journals a batch (the acknowledgement), then tells plugins and watchers.
    fn commit(&mut self, events: &[Stamped]) -> Result<(), ClientError> {
        if events.is_empty() && self.detail_changed.is_empty() && self.agents_changed.is_empty() {
            return Ok(());
        }
        if let Some(journal) = &mut self.journal
            && let Err(e) = journal.append(events)
        {
            tracing::error!("journal append failed: {e}");
            return Err(ClientError::Journal(e.to_string()));
        }
        if let Some(history) = &mut self.history
            && let Err(e) = history.record(events)
        {
            tracing::error!("history not recorded: {e}");
        }
        for mut command in effects::plugin_commands(&self.core, events) {
            self.add_case_data(&mut command, events);
            self.send_to_plugin(command);
        }
        // Who to tell, including colleagues the batch removed from an interaction.
        let mut concerned = self.core.take_concerned();
        concerned.append(&mut self.agents_changed);
        for key in std::mem::take(&mut self.detail_changed) {
            concerned.extend(self.core.participants(key));
        }
        let now = self.clock.now();
        if let Some(history) = &mut self.history {
            let closed: Vec<(u64, Millis)> = self
                .core
                .closed_since_compact()
                .iter()
                .map(|k| (*k, self.core.handling_time(*k, now)))
                .collect();
            if let Err(e) = history.set_handling(&closed) {
                tracing::error!("handling time not stored: {e}");
            }
        }
        self.details.forget(self.core.closed_since_compact());
        self.core.compact();
        self.snapshots.after_commit(&self.core);
        for agent in concerned {
            let Some(watchers) = self.watchers.get_mut(&agent) else {
                continue;
            };
            let Some(snapshot) =
                snapshot::of_agent(&self.core, &self.details, &self.statuses, &agent, now)
            else {
                continue;
            };
            watchers.retain(|w| w.send(snapshot.clone()).is_ok());
        }
        Ok(())
    }

    /// The last snapshot, so the next start replays nothing.
    fn snapshot_at_stop(&mut self) {
        self.snapshots.at_stop(&self.core);
    }

    fn until_next_timer(&self) -> Duration {
        let now = self.clock.now();
        let next = self
            .core
            .next_timer()
            .map_or(500, |due| due.saturating_sub(now));
        Duration::from_millis(next.clamp(1, 500))
    }
}
