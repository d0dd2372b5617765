//! # agentdesk-hub: one core serving the desktops of a team over NATS
//!
//! The hub runs the plugins, the core, the journal and history (an `Embedded` product, or any
//! `InProcess` core) and answers the client interface's requests that desktops send over NATS
//! (`agentdesk_client::remote::wire` holds the subjects and the encoding). The acting agent is the
//! one the request's subject names — a subject NATS's authorization lets only that agent's user
//! publish on — never a field of the body. Each agent's snapshots are published on their own
//! subject whenever they change.
//!
//! Everything NATS-facing runs on a small tokio runtime; calls into the core (which may wait for a
//! journal commit) run on its blocking pool, so a slow commit never holds up other requests.

pub mod authorization;
pub mod im_guard;

use agentdesk_client::admin::load_config;
use agentdesk_client::in_process::InProcess;
use agentdesk_client::reload::ReloadReport;
use agentdesk_client::remote::wire::{self, Answer, Reply, Request};
use agentdesk_client::remote::{NatsLogin, connect_nats};
use agentdesk_client::{ClientError, Connection, DeskClient};
use base64::Engine;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a request may wait for the core.
const CORE_WAIT: Duration = Duration::from_secs(30);

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No tokio runtime.
    #[error("no runtime for the hub: {0}")]
    Runtime(std::io::Error),
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        reason: String,
    },
    /// The core did not say who its agents are.
    #[error("the core did not answer: {0}")]
    Core(String),
    /// A JetStream stream could store interaction detail (or the streams cannot be checked).
    #[error(transparent)]
    Stored(#[from] im_guard::GuardError),
    /// A subscription failed.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
}

/// How the hub reaches NATS.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// The NATS server(s).
    pub url: String,
    /// The hub's NATS user and password, if the server asks for them.
    pub user_password: Option<(String, String)>,
    /// The hub's nkey seed (`SU…`), if the server authenticates by nkey.
    pub nkey_seed: Option<String>,
    /// Silence from a desktop after which its agent's Ready channels go Not Ready
    /// (`disconnected`).
    pub desktop_grace: Duration,
    /// The CA certificate (PEM) the NATS server's certificate must chain to: TLS is then
    /// required.
    pub ca_file: Option<std::path::PathBuf>,
    /// The admin file a reload re-reads (`agentdesk hub reload`, SIGHUP); without one the hub
    /// refuses reloads.
    pub config_file: Option<std::path::PathBuf>,
}

impl HubOptions {
    /// Options for `url` with no credentials and a 30 s grace.
    pub fn new(url: impl Into<String>) -> Self {
        HubOptions {
            url: url.into(),
            user_password: None,
            nkey_seed: None,
            desktop_grace: Duration::from_secs(30),
            ca_file: None,
            config_file: None,
        }
    }
}

/// What the hub counts (for logs and tests).
#[derive(Debug, Default)]
pub struct HubCounters {
    /// Requests answered (with a result or an error).
    pub answered: AtomicU64,
    /// Requests refused before reaching the core (malformed, too large, wrong version, bad
    /// subject).
    pub refused: AtomicU64,
    /// Messages dropped: no reply subject, or the reply could not be sent.
    pub dropped: AtomicU64,
    /// Snapshots published.
    pub snapshots: AtomicU64,
    /// Agents set Not Ready because their desktop went silent.
    pub silent_desktops: AtomicU64,
}

struct State {
    core: InProcess,
    /// The admin file a reload re-reads.
    config_file: Option<std::path::PathBuf>,
    client: async_nats::Client,
    sessions: Mutex<BTreeMap<String, Arc<dyn DeskClient>>>,
    counters: Arc<HubCounters>,
    /// When each agent's desktop was last heard from, and whether the hub already set them
    /// Not Ready for their silence.
    heard: Mutex<BTreeMap<String, (Instant, bool)>>,
    /// The hub's runtime (a reload checks JetStream from a blocking thread).
    runtime: tokio::runtime::Handle,
    /// Where every agent's snapshots go for the team's one publisher.
    snapshots: crossbeam_channel::Sender<agentdesk_client::AgentSnapshot>,
}

/// A running hub.
pub struct Hub {
    runtime: Option<tokio::runtime::Runtime>,
    counters: Arc<HubCounters>,
    state: Arc<State>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("counters", &self.counters)
            .finish()
    }
}

impl Hub {
    /// Connects to NATS and serves `core` until stopped. Returns once the hub's subscriptions are
    /// in place at the server.
    pub fn serve(options: &HubOptions, core: InProcess) -> Result<Hub, HubError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hub-nats")
            .enable_all()
            .build()
            .map_err(HubError::Runtime)?;
        let login = NatsLogin {
            user_password: options.user_password.as_ref(),
            nkey_seed: options.nkey_seed.as_deref(),
            ca_file: options.ca_file.as_deref(),
        };
        let client = connect_nats(&runtime, "agentdesk hub", &options.url, login, None).map_err(
            |reason| HubError::Connect {
                url: options.url.clone(),
                reason,
            },
        )?;
        let counters = Arc::new(HubCounters::default());
        let (snapshots, to_publish) = crossbeam_channel::unbounded();
        {
            // Detached: it ends when the core and the hub drop their ends of the channel.
            let (client, runtime, counters) =
                (client.clone(), runtime.handle().clone(), counters.clone());
            std::thread::Builder::new()
                .name("hub-snapshots".into())
                .spawn(move || publish_snapshots(to_publish, client, runtime, counters))
                .map_err(HubError::Runtime)?;
        }
        let agents = core
            .agents()
            .wait(CORE_WAIT)
            .map_err(|e| HubError::Core(e.to_string()))?;
        let protected = im_guard::protected_subjects(agents.iter().map(|(id, _)| id.as_str()));
        runtime.block_on(im_guard::refuse_capturing_streams(&client, &protected))?;
        let state = Arc::new(State {
            snapshots,
            core,
            config_file: options.config_file.clone(),
            runtime: runtime.handle().clone(),
            client: client.clone(),
            sessions: Mutex::new(BTreeMap::new()),
            counters: counters.clone(),
            heard: Mutex::new(BTreeMap::new()),
        });
        runtime.spawn(watch_silence(state.clone(), options.desktop_grace));
        runtime.block_on(async {
            let subjects = [
                wire::ALL_REQUESTS,
                wire::AGENTS,
                wire::PLUGINS,
                wire::TEAM,
                wire::RELOAD,
            ];
            for subject in subjects {
                let subscription =
                    client
                        .subscribe(subject)
                        .await
                        .map_err(|e| HubError::Subscribe {
                            subject: subject.into(),
                            reason: e.to_string(),
                        })?;
                tokio::spawn(serve_subject(state.clone(), subscription));
            }
            client.flush().await.map_err(|e| HubError::Subscribe {
                subject: "(flush)".into(),
                reason: e.to_string(),
            })
        })?;
        tracing::info!(url = options.url, "the hub serves the team");
        Ok(Hub {
            runtime: Some(runtime),
            counters,
            state,
        })
    }

    /// Re-reads the admin file and takes it as the running configuration (SIGHUP). A bad file
    /// is refused (`bad-config`, with file, line and key) and the running configuration stays.
    pub fn reload(&self) -> Result<ReloadReport, ClientError> {
        self.state.reload()
    }

    /// What the hub has counted.
    pub fn counters(&self) -> &HubCounters {
        &self.counters
    }

    /// Stops serving (the core is the caller's to stop).
    pub fn stop(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve_subject(state: Arc<State>, mut subscription: async_nats::Subscriber) {
    while let Some(message) = subscription.next().await {
        tokio::spawn(answer(state.clone(), message));
    }
}

async fn answer(state: Arc<State>, message: async_nats::Message) {
    let Some(reply_to) = message.reply.clone() else {
        state.counters.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(subject = %message.subject, "a request without a reply subject: dropped");
        return;
    };
    let reply = match handle(&state, message.subject.as_str(), &message.payload).await {
        Ok(answer) => Reply::Ok(answer),
        Err(e) => Reply::Error(e),
    };
    let body = match wire::encode(&reply) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!("an answer could not be encoded: {e}");
            state.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    match state.client.publish(reply_to, body.into()).await {
        Ok(()) => {
            state.counters.answered.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            state.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("an answer was not sent: {e}");
        }
    }
}

/// Waits for a pending answer off the runtime's threads.
async fn settled<T: Send + 'static>(
    pending: agentdesk_client::Pending<T>,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(move || pending.wait(CORE_WAIT))
        .await
        .unwrap_or(Err(ClientError::Stopped))
}

async fn handle(state: &Arc<State>, subject: &str, body: &[u8]) -> Result<Answer, ClientError> {
    let request = wire::decode_request(body).inspect_err(|_| {
        state.counters.refused.fetch_add(1, Ordering::Relaxed);
    })?;
    if subject == wire::AGENTS {
        return settled(state.core.agents()).await.map(Answer::Agents);
    }
    if subject == wire::PLUGINS {
        return settled(state.core.plugins()).await.map(Answer::Plugins);
    }
    if subject == wire::TEAM {
        return settled(state.core.team())
            .await
            .map(|team| Answer::Team(Box::new(team)));
    }
    if subject == wire::RELOAD {
        let state = state.clone();
        return tokio::task::spawn_blocking(move || state.reload())
            .await
            .unwrap_or(Err(ClientError::Stopped))
            .map(Answer::Reloaded);
    }
    let Some(agent) = wire::agent_of(subject) else {
        state.counters.refused.fetch_add(1, Ordering::Relaxed);
        return Err(ClientError::Failed {
            code: "bad-subject".into(),
            message: format!("{subject} names no agent"),
        });
    };
    // Only the configuration's agents get a session (and a snapshot publisher): a request
    // naming anyone else is refused before it costs anything.
    if !state.serves(agent) {
        state.counters.refused.fetch_add(1, Ordering::Relaxed);
        return Err(ClientError::Refused {
            code: "unknown-agent".into(),
            message: format!("unknown agent `{agent}`"),
        });
    }
    state.heard_from(agent);
    let session = state.session(agent);
    match request {
        Request::Agents => settled(state.core.agents()).await.map(Answer::Agents),
        Request::Plugins => settled(session.plugins()).await.map(Answer::Plugins),
        // The team view is a supervisor's and the reload the hub's key's, each on its own
        // subject, never an agent's.
        Request::Team | Request::Reload => Err(ClientError::Refused {
            code: "not-allowed".into(),
            message: "asked for on its own subject, not an agent's".into(),
        }),
        Request::Login { id } => {
            settled(session.command(id, agentdesk_client::AgentCommand::LogIn)).await?;
            Ok(Answer::Welcome {
                info: session.info().clone(),
                now: session.now(),
            })
        }
        Request::Snapshot => {
            let (core, asked) = (state.core.clone(), agent.to_string());
            let snapshot = tokio::task::spawn_blocking(move || core.snapshot(&asked))
                .await
                .unwrap_or(Err(ClientError::Stopped))?;
            snapshot
                .map(|s| Answer::Snapshot(Box::new(s)))
                .ok_or_else(|| ClientError::Refused {
                    code: "unknown-agent".into(),
                    message: format!("unknown agent `{agent}`"),
                })
        }
        Request::Now => Ok(Answer::Now(session.now())),
        Request::Heartbeat => Ok(Answer::Done),
        Request::Command { id, command } => settled(session.command(id, command))
            .await
            .map(|()| Answer::Done),
        Request::Message { id, key, text } => settled(session.send_message(id, key, &text))
            .await
            .map(|()| Answer::Done),
        Request::Interact { id, key, act } => settled(session.interact(id, key, act))
            .await
            .map(|()| Answer::Done),
        Request::LiveLines { key, offset, limit } => {
            settled(session.live_lines(key, offset, limit))
                .await
                .map(Answer::LiveLines)
        }
        Request::ContactHistory { key, limit } => settled(session.contact_history(key, limit))
            .await
            .map(Answer::Entries),
        Request::Search { text, limit } => settled(session.search(text.as_deref(), limit))
            .await
            .map(Answer::Entries),
        Request::Recent { filter, limit } => settled(session.recent(&filter, limit))
            .await
            .map(Answer::Entries),
        Request::Presence => settled(session.presence()).await.map(Answer::Presence),
        Request::Transcript { key, offset, limit } => {
            settled(session.transcript(key, offset, limit))
                .await
                .map(Answer::Lines)
        }
        Request::File {
            key,
            attachment,
            offset,
            limit,
        } => {
            let limit = limit.min(wire::FILE_CHUNK);
            let piece = state
                .core
                .file_piece(agent, key, &attachment, offset, limit);
            let (bytes, total) = settled(piece).await?;
            Ok(Answer::File {
                data: base64::engine::general_purpose::STANDARD.encode(bytes),
                total,
            })
        }
    }
}

/// Sets the Ready channels of agents whose desktop has been silent longer than `grace` Not Ready
/// (`disconnected`), once per silence: nothing rings on a dead desktop. Their open
/// interactions stay theirs; when the desktop speaks again, the agent decides what is next.
async fn watch_silence(state: Arc<State>, grace: Duration) {
    let mut ticks = tokio::time::interval(Duration::from_millis(250).min(grace));
    loop {
        ticks.tick().await;
        for agent in state.newly_silent(grace) {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.set_away(&agent));
        }
    }
}

impl State {
    fn heard(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Instant, bool)>> {
        match self.heard.lock() {
            Ok(heard) => heard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn heard_from(&self, agent: &str) {
        self.heard()
            .insert(agent.to_string(), (Instant::now(), false));
    }

    /// Agents silent longer than `grace` not yet set away (now marked).
    fn newly_silent(&self, grace: Duration) -> Vec<String> {
        let mut heard = self.heard();
        heard
            .iter_mut()
            .filter(|(_, (at, away))| !*away && at.elapsed() > grace)
            .map(|(agent, (_, away))| {
                *away = true;
                agent.clone()
            })
            .collect()
    }

    /// Sets `agent`'s Ready channels Not Ready (`disconnected`).
    fn set_away(&self, agent: &str) {
        let snapshot = match self.core.snapshot(agent) {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(agent, "a silent desktop's agent not set away: {e}");
                return;
            }
        };
        if !snapshot.logged_in {
            return;
        }
        let session = self.core.session(agent);
        let ready = snapshot
            .channels
            .iter()
            .filter(|c| c.state == agentdesk_client::ChannelState::Ready);
        for channel in ready {
            let away = agentdesk_client::AgentCommand::SetNotReady {
                channel: channel.channel.clone(),
                reason: agentdesk_client::DISCONNECTED.into(),
            };
            match session.command(session.next_id(), away).wait(CORE_WAIT) {
                Ok(()) => tracing::warn!(
                    agent,
                    channel = channel.channel,
                    "the desktop went silent: Not Ready (disconnected)"
                ),
                Err(e) => tracing::warn!(agent, channel = channel.channel, "not set away: {e}"),
            }
        }
        self.counters
            .silent_desktops
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the hub answers for `agent`: one of the configuration's agents, or one taken out
    /// of the team by a reload whose desktop is still at work (their session goes on until they
    /// log out).
    fn serves(&self, agent: &str) -> bool {
        self.core.info().agents.iter().any(|(id, _)| id == agent)
            || match self.sessions.lock() {
                Ok(sessions) => sessions.contains_key(agent),
                Err(poisoned) => poisoned.into_inner().contains_key(agent),
            }
    }

    /// Re-reads the admin file and takes it (see [`Hub::reload`]).
    fn reload(&self) -> Result<ReloadReport, ClientError> {
        let Some(path) = &self.config_file else {
            return Err(ClientError::Refused {
                code: "no-config-file".into(),
                message: "this hub was started without --config: there is no file to re-read"
                    .into(),
            });
        };
        let config = match load_config(Some(path)) {
            Ok(config) => config,
            Err(reason) => {
                tracing::error!("reload refused, the running configuration stays: {reason}");
                return Err(ClientError::Refused {
                    code: "bad-config".into(),
                    message: reason,
                });
            }
        };
        // Agents the file adds have detail subjects too: no stream may capture them either.
        let protected = im_guard::protected_subjects(config.agents.iter().map(|a| a.id.as_str()));
        let checked = self
            .runtime
            .block_on(im_guard::refuse_capturing_streams(&self.client, &protected));
        if let Err(e) = checked {
            tracing::error!("reload refused, the running configuration stays: {e}");
            return Err(ClientError::Refused {
                code: "stored".into(),
                message: e.to_string(),
            });
        }
        let report = self
            .core
            .reload(&config)
            .wait(CORE_WAIT)
            .inspect_err(|e| tracing::error!("the reload failed: {e}"))?;
        tracing::info!(changes = %report.render().trim_end(), "reloaded {}", path.display());
        Ok(report)
    }

    /// The session answering for `agent`; the first one also starts publishing their snapshots.
    fn session(self: &Arc<Self>, agent: &str) -> Arc<dyn DeskClient> {
        let mut sessions = match self.sessions.lock() {
            Ok(sessions) => sessions,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(session) = sessions.get(agent) {
            return session.clone();
        }
        let session: Arc<dyn DeskClient> = Arc::from(self.core.session(agent));
        sessions.insert(agent.to_string(), session.clone());
        self.publish_snapshots(agent);
        session
    }

    /// Publishes every snapshot of `agent` on their snapshot subject, through the team's one
    /// publisher ([`publish_snapshots`]).
    fn publish_snapshots(&self, agent: &str) {
        if let Err(e) = self.core.watch_into(agent, self.snapshots.clone()) {
            tracing::error!(agent, "snapshots will not be published: {e}");
        }
    }
}

/// The team's snapshot publisher: every agent's snapshots arrive on one channel (each names its
/// agent) and go out on that agent's snapshot subject, in order. One thread for the whole team,
/// however many agents it has; it ends when the core stops.
fn publish_snapshots(
    stream: crossbeam_channel::Receiver<agentdesk_client::AgentSnapshot>,
    client: async_nats::Client,
    runtime: tokio::runtime::Handle,
    counters: Arc<HubCounters>,
) {
    while let Ok(snapshot) = stream.recv() {
        let agent = snapshot.agent.clone();
        let body = match wire::encode(&snapshot) {
            Ok(body) => body,
            Err(e) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(agent, "a snapshot could not be encoded: {e}");
                continue;
            }
        };
        let (client, subject) = (client.clone(), wire::snapshots(&agent));
        match runtime.block_on(async move { client.publish(subject, body.into()).await }) {
            Ok(()) => {
                counters.snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(agent, "a snapshot was not published: {e}");
            }
        }
    }
}
