//! The client interface over NATS: a desktop on one computer, the hub (plugins, core, journal) on
//! another. Every call is a NATS request on the agent's own subject ([`wire`]); answers come back
//! on the connection's inbox and are taken by the desk's [`Pending`]s. Snapshots are published by
//! the hub on the agent's snapshot subject. The NATS client runs on a small tokio runtime of its
//! own, so nothing here blocks the caller.

mod nats_login;
pub mod wire;

pub use nats_login::{NatsLogin, connect as connect_nats};

use crate::command_ids::CommandIds;
use crate::reload::ReloadReport;
use crate::{
    AgentCommand, AgentSnapshot, ClientError, CommandId, Connection, DeskClient, DeskInfo,
    HistoryEntry, Interact, LinkState, LiveLine, Millis, Pending, PluginTable, TeamView,
    TranscriptLine,
};
use base64::Engine;
use crossbeam_channel::Receiver;
use futures_util::StreamExt;
use plugin_api::AttachmentRef;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wire::{Answer, Envelope, Reply, Request};

/// How to reach the hub.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The NATS server(s), e.g. `nats://hub.example:4222`.
    pub url: String,
    /// The agent this desktop is for: its replies come on `_INBOX_<agent>.>` only (the hub's
    /// NATS authorization lets only that agent's user subscribe there).
    pub agent: Option<String>,
    /// A supervisor's connection (`agentdesk team`): replies come on `_INBOX_team.>`.
    pub supervisor: bool,
    /// Connected with the hub's own key (`agentdesk hub reload`): replies come on
    /// `_INBOX_hub.>`.
    pub hub_key: bool,
    /// NATS user and password, if the server asks for them.
    pub user_password: Option<(String, String)>,
    /// The agent's nkey seed (`SU…`), if the server authenticates by nkey (a team's hub does).
    pub nkey_seed: Option<String>,
    /// The CA certificate (PEM) the NATS server's certificate must chain to: TLS is then
    /// required.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long a request waits for the hub.
    pub request_timeout: Duration,
}

impl RemoteOptions {
    /// Options for `url` with defaults (no credentials, 10 s per request).
    pub fn new(url: impl Into<String>) -> Self {
        RemoteOptions {
            url: url.into(),
            agent: None,
            supervisor: false,
            hub_key: false,
            user_password: None,
            nkey_seed: None,
            ca_file: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The link to NATS shared by a connection and its sessions.
struct Link {
    client: async_nats::Client,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
    /// Commands, sent one after the other (each after the previous one's answer), so the hub
    /// carries them out in the order the agent gave them.
    in_order: tokio::sync::mpsc::UnboundedSender<Ordered>,
}

/// A command waiting for its turn.
struct Ordered {
    subject: String,
    body: Vec<u8>,
    reply: crossbeam_channel::Sender<Result<Answer, ClientError>>,
}

/// Sends the commands of a link one at a time.
async fn send_in_order(
    client: async_nats::Client,
    timeout: Duration,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Ordered>,
) {
    while let Some(Ordered {
        subject,
        body,
        reply,
    }) = queue.recv().await
    {
        let _ = reply.send(ask_hub(client.clone(), timeout, subject, body).await);
    }
}

/// Sends `body` as a request on `subject` and decodes the hub's reply.
async fn ask_hub(
    client: async_nats::Client,
    timeout: Duration,
    subject: String,
    body: Vec<u8>,
) -> Result<Answer, ClientError> {
    match tokio::time::timeout(timeout, client.request(subject, body.into())).await {
        Err(_) => Err(ClientError::Timeout(timeout)),
        Ok(Err(e)) => Err(request_failed(&e)),
        Ok(Ok(message)) => match wire::decode::<Reply>(&message.payload)? {
            Reply::Ok(answer) => Ok(answer),
            Reply::Error(e) => Err(e),
        },
    }
}

/// Fetches a whole file piece by piece (see `DeskClient::file`).
async fn fetch_file(
    client: async_nats::Client,
    timeout: Duration,
    subject: String,
    key: u64,
    attachment: AttachmentRef,
) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    loop {
        let request = Request::File {
            key,
            attachment: attachment.clone(),
            offset: bytes.len() as u64,
            limit: wire::FILE_CHUNK,
        };
        let answer = ask_hub(
            client.clone(),
            timeout,
            subject.clone(),
            request_body(request)?,
        )
        .await?;
        let Answer::File { data, total } = answer else {
            return unexpected("a piece of a file");
        };
        let piece = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| ClientError::failed("malformed", e.to_string()))?;
        let empty = piece.is_empty();
        bytes.extend_from_slice(&piece);
        if bytes.len() as u64 >= total {
            return Ok(bytes);
        }
        if empty {
            return Err(ClientError::failed(
                "file",
                format!("the file shrank to {} bytes while being read", bytes.len()),
            ));
        }
    }
}

fn request_body(request: Request) -> Result<Vec<u8>, ClientError> {
    wire::encode(&Envelope {
        v: wire::VERSION,
        request,
    })
}

impl Link {
    /// Sends `body` as a request on `subject`; the answer comes to the returned [`Pending`].
    /// (The tasks hold the NATS client, never the link: dropping the last session or connection
    /// drops the runtime from the caller's thread.)
    fn ask(&self, subject: String, body: Result<Vec<u8>, ClientError>) -> Pending<Answer> {
        let body = match body {
            Ok(body) => body,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (reply, answer) = crossbeam_channel::bounded(1);
        let (client, timeout) = (self.client.clone(), self.timeout);
        self.runtime.spawn(async move {
            let _ = reply.send(ask_hub(client, timeout, subject, body).await);
        });
        Pending::from_channel(answer, |answer| answer)
    }

    fn request(&self, agent: &str, request: Request) -> Pending<Answer> {
        self.ask(wire::requests(agent), request_body(request))
    }

    /// A command: sent after every command sent before it was answered. (Queries and
    /// heartbeats go at once, in parallel.)
    fn command(&self, agent: &str, request: Request) -> Pending<Answer> {
        let body = match request_body(request) {
            Ok(body) => body,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (reply, answer) = crossbeam_channel::bounded(1);
        let ordered = Ordered {
            subject: wire::requests(agent),
            body,
            reply,
        };
        if self.in_order.send(ordered).is_err() {
            return Pending::ready(Err(ClientError::Stopped));
        }
        Pending::from_channel(answer, |answer| answer)
    }
}

/// What a failed NATS request means to the desk.
fn request_failed(e: &async_nats::RequestError) -> ClientError {
    use async_nats::RequestErrorKind;
    match e.kind() {
        // Nobody subscribed: the hub (and its core) is gone.
        RequestErrorKind::NoResponders => ClientError::Stopped,
        RequestErrorKind::TimedOut => ClientError::Timeout(Duration::ZERO),
        RequestErrorKind::MaxPayloadExceeded => ClientError::failed("too-large", e.to_string()),
        _ => ClientError::failed("link", e.to_string()),
    }
}

/// What a request while the hub is lost gets.
fn disconnected() -> ClientError {
    ClientError::failed("disconnected", "the hub cannot be reached: reconnecting")
}

/// An answer of the wrong kind.
fn unexpected<T>(asked: &str) -> Result<T, ClientError> {
    Err(ClientError::Unexpected {
        asked: asked.into(),
    })
}

/// A connection to a hub over NATS.
#[derive(Clone)]
pub struct Remote {
    link: Arc<Link>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remote")
    }
}

impl Remote {
    /// Connects to the NATS server(s) of `options` (waiting up to 10 s for the first connection).
    pub fn connect(options: &RemoteOptions) -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("desk-nats")
            .enable_all()
            .build()
            .map_err(|e| ClientError::failed("link", format!("no runtime for NATS: {e}")))?;
        let mut inbox = None;
        if let Some(agent) = &options.agent {
            if !wire::valid_agent(agent) {
                return Err(ClientError::failed(
                    "bad-agent",
                    format!("`{agent}` cannot be an agent id"),
                ));
            }
            inbox = Some(wire::inbox_prefix(agent));
        }
        if options.supervisor {
            inbox = Some(wire::TEAM_INBOX.to_owned());
        }
        if options.hub_key {
            inbox = Some(wire::HUB_INBOX.to_owned());
        }
        let login = NatsLogin {
            user_password: options.user_password.as_ref(),
            nkey_seed: options.nkey_seed.as_deref(),
            ca_file: options.ca_file.as_deref(),
        };
        let client = nats_login::connect(
            &runtime,
            "agentdesk desktop",
            &options.url,
            login,
            inbox.as_deref(),
        )
        .map_err(|e| ClientError::failed("no-hub", format!("{}: {e}", options.url)))?;
        let (in_order, queue) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(send_in_order(
            client.clone(),
            options.request_timeout,
            queue,
        ));
        Ok(Remote {
            link: Arc::new(Link {
                client,
                runtime,
                timeout: options.request_timeout,
                in_order,
            }),
        })
    }
}

impl Remote {
    /// Makes the hub re-read its admin file (`agentdesk hub reload`; the hub's key only). A bad
    /// file is refused with `bad-config`, naming the file, line and key; the hub keeps running
    /// with the configuration it had.
    pub fn reload_hub(&self) -> Pending<ReloadReport> {
        self.link
            .ask(wire::RELOAD.into(), request_body(Request::Reload))
            .map(|answer| match answer {
                Answer::Reloaded(report) => Ok(report),
                _ => unexpected("the reload"),
            })
    }
}

impl Connection for Remote {
    fn agents(&self) -> Pending<Vec<(String, String)>> {
        let body = wire::encode(&Envelope {
            v: wire::VERSION,
            request: Request::Agents,
        });
        self.link
            .ask(wire::AGENTS.into(), body)
            .map(|answer| match answer {
                Answer::Agents(agents) => Ok(agents),
                _ => unexpected("who may log in"),
            })
    }

    fn login(&self, agent: &str) -> Pending<Box<dyn DeskClient>> {
        if !wire::valid_agent(agent) {
            return Pending::ready(Err(ClientError::failed(
                "bad-agent",
                format!("`{agent}` cannot be an agent id"),
            )));
        }
        let session = Session {
            agent: agent.to_string(),
            link: self.link.clone(),
            info: DeskInfo::default(),
            ids: CommandIds::new(),
            offset_ms: 0,
            health: Arc::new(Health::default()),
        };
        let id = session.next_id();
        let asked_at = local_now();
        self.link
            .command(agent, Request::Login { id: id.clone() })
            .map(move |answer| match answer {
                Answer::Welcome { info, now } => {
                    let offset_ms = now as i64 - (asked_at + local_now()) as i64 / 2;
                    let mut session = session;
                    session.info = info;
                    session.offset_ms = offset_ms;
                    session.keep_in_touch();
                    Ok(Box::new(session) as Box<dyn DeskClient>)
                }
                _ => unexpected("a login"),
            })
            .for_command(id)
    }

    fn plugins(&self) -> Pending<PluginTable> {
        let body = wire::encode(&Envelope {
            v: wire::VERSION,
            request: Request::Plugins,
        });
        self.link
            .ask(wire::PLUGINS.into(), body)
            .map(|answer| match answer {
                Answer::Plugins(table) => Ok(table),
                _ => unexpected("the plugin table"),
            })
    }

    fn team(&self) -> Pending<TeamView> {
        self.link
            .ask(wire::TEAM.into(), request_body(Request::Team))
            .map(|answer| match answer {
                Answer::Team(team) => Ok(*team),
                _ => unexpected("the team"),
            })
    }

    fn close(self: Box<Self>) {}
}

fn local_now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// How often a session tells the hub it is there, and how long it waits for the answer: a lost
/// hub is noticed within the sum (1.5 s), at once when NATS knows nobody answers.
const HEARTBEAT: Duration = Duration::from_millis(500);
const HEARTBEAT_WAIT: Duration = Duration::from_secs(1);

/// Whether a session reaches its hub, as its heartbeats find.
#[derive(Default)]
struct Health {
    /// The last heartbeat went unanswered (starts false: the login was just answered).
    lost: AtomicBool,
    /// The session was dropped: its heartbeats stop.
    ended: AtomicBool,
    /// Woken when the hub answers again after it was lost (snapshot streams then ask afresh).
    back: tokio::sync::Notify,
}

/// One agent's session with a hub.
struct Session {
    agent: String,
    link: Arc<Link>,
    info: DeskInfo,
    ids: CommandIds,
    /// The hub's clock minus ours, measured at login.
    offset_ms: i64,
    health: Arc<Health>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.health.ended.store(true, Ordering::Relaxed);
    }
}

impl Session {
    /// A request as this agent; while the hub is lost, refused at once (`disconnected`).
    fn request(&self, request: Request) -> Pending<Answer> {
        if self.health.lost.load(Ordering::Relaxed) {
            return Pending::ready(Err(disconnected()));
        }
        self.link.request(&self.agent, request)
    }

    fn ask<T: Send + 'static>(
        &self,
        request: Request,
        asked: &'static str,
        take: impl FnOnce(Answer) -> Option<T> + Send + 'static,
    ) -> Pending<T> {
        self.request(request)
            .map(move |answer| take(answer).map_or_else(|| unexpected(asked), Ok))
    }

    /// Heartbeats: the hub learns the desktop is there (and, after a restart of the hub, starts
    /// publishing its snapshots again); the session learns whether the hub is.
    fn keep_in_touch(&self) {
        let (client, agent, health) = (
            self.link.client.clone(),
            self.agent.clone(),
            self.health.clone(),
        );
        let body = wire::encode(&Envelope {
            v: wire::VERSION,
            request: Request::Heartbeat,
        });
        let Ok(body) = body else {
            tracing::error!(agent, "no heartbeats: the request cannot be encoded");
            return;
        };
        let subject = wire::requests(&agent);
        self.link.runtime.spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            while !health.ended.load(Ordering::Relaxed) {
                ticks.tick().await;
                let asked = client.request(subject.clone(), body.clone().into());
                let answered =
                    matches!(tokio::time::timeout(HEARTBEAT_WAIT, asked).await, Ok(Ok(_)));
                let was_lost = health.lost.swap(!answered, Ordering::Relaxed);
                match (was_lost, answered) {
                    (false, false) => tracing::warn!(agent, "the hub is lost: reconnecting"),
                    (true, true) => {
                        tracing::info!(agent, "the hub answers again");
                        health.back.notify_waiters();
                    }
                    _ => {}
                }
            }
        });
    }

    /// A command, in the order given; while the hub is lost, refused at once.
    fn done(&self, id: CommandId, request: Request) -> Pending<()> {
        if self.health.lost.load(Ordering::Relaxed) {
            return Pending::ready(Err(disconnected()));
        }
        self.link
            .command(&self.agent, request)
            .map(|answer| match answer {
                Answer::Done => Ok(()),
                _ => unexpected("a command"),
            })
            .for_command(id)
    }
}

impl DeskClient for Session {
    fn link(&self) -> LinkState {
        if self.health.lost.load(Ordering::Relaxed) {
            LinkState::Reconnecting
        } else {
            LinkState::Connected
        }
    }

    fn agent(&self) -> &str {
        &self.agent
    }

    fn info(&self) -> &DeskInfo {
        &self.info
    }

    fn now(&self) -> Millis {
        (local_now() as i64).saturating_add(self.offset_ms).max(0) as Millis
    }

    fn next_id(&self) -> CommandId {
        self.ids.next()
    }

    fn watch(&self) -> Receiver<AgentSnapshot> {
        let (forward, stream) = crossbeam_channel::unbounded();
        let (client, agent, health) = (
            self.link.client.clone(),
            self.agent.clone(),
            self.health.clone(),
        );
        let timeout = self.link.timeout;
        let current = match request_body(Request::Snapshot) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(agent, "no snapshots: {e}");
                return stream;
            }
        };
        self.link.runtime.spawn(async move {
            let mut published = match client.subscribe(wire::snapshots(&agent)).await {
                Ok(subscription) => subscription,
                Err(e) => {
                    tracing::error!(agent, "no snapshots from the hub: {e}");
                    return;
                }
            };
            // Subscribed first, then the current one asked for (now, and whenever the hub
            // answers again after it was lost): nothing is missed, and an older snapshot
            // arriving after a newer one is dropped by its journal position.
            let mut last_seq = None;
            let mut pass = |snapshot: AgentSnapshot| -> bool {
                if last_seq.is_some_and(|seq| snapshot.seq < seq) {
                    return true;
                }
                last_seq = Some(snapshot.seq);
                forward.send(snapshot).is_ok()
            };
            let mut ask_current = true;
            loop {
                if std::mem::take(&mut ask_current) {
                    let subject = wire::requests(&agent);
                    let answer = ask_hub(client.clone(), timeout, subject, current.clone()).await;
                    if let Ok(Answer::Snapshot(snapshot)) = answer
                        && !pass(*snapshot)
                    {
                        return;
                    }
                }
                tokio::select! {
                    message = published.next() => {
                        let Some(message) = message else { return };
                        match wire::decode::<AgentSnapshot>(&message.payload) {
                            Ok(snapshot) => {
                                if !pass(snapshot) {
                                    return;
                                }
                            }
                            Err(e) => tracing::warn!(agent, "a snapshot dropped: {e}"),
                        }
                    }
                    () = health.back.notified() => ask_current = true,
                }
            }
        });
        stream
    }

    fn command(&self, id: CommandId, command: AgentCommand) -> Pending<()> {
        self.done(id.clone(), Request::Command { id, command })
    }

    fn send_message(&self, id: CommandId, key: u64, text: &str) -> Pending<()> {
        let text = text.to_string();
        self.done(id.clone(), Request::Message { id, key, text })
    }

    fn interact(&self, id: CommandId, key: u64, act: Interact) -> Pending<()> {
        self.done(id.clone(), Request::Interact { id, key, act })
    }

    fn live_lines(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<LiveLine>> {
        let request = Request::LiveLines { key, offset, limit };
        self.ask(request, "live lines", |a| match a {
            Answer::LiveLines(lines) => Some(lines),
            _ => None,
        })
    }

    fn contact_history(&self, key: u64, limit: usize) -> Pending<Vec<HistoryEntry>> {
        let request = Request::ContactHistory { key, limit };
        self.ask(request, "contact history", |a| match a {
            Answer::Entries(entries) => Some(entries),
            _ => None,
        })
    }

    fn presence(&self) -> Pending<Vec<crate::Presence>> {
        self.ask(Request::Presence, "presence", |a| match a {
            Answer::Presence(all) => Some(all),
            _ => None,
        })
    }

    fn search(&self, text: Option<&str>, limit: usize) -> Pending<Vec<HistoryEntry>> {
        let text = text.map(str::to_string);
        self.ask(Request::Search { text, limit }, "a search", |a| match a {
            Answer::Entries(entries) => Some(entries),
            _ => None,
        })
    }

    fn recent(&self, filter: &crate::HistoryFilter, limit: usize) -> Pending<Vec<HistoryEntry>> {
        let request = Request::Recent {
            filter: filter.clone(),
            limit,
        };
        self.ask(request, "the recent interactions", |a| match a {
            Answer::Entries(entries) => Some(entries),
            _ => None,
        })
    }

    fn transcript(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<TranscriptLine>> {
        let request = Request::Transcript { key, offset, limit };
        self.ask(request, "a transcript", |a| match a {
            Answer::Lines(lines) => Some(lines),
            _ => None,
        })
    }

    /// Fetched in pieces of [`wire::FILE_CHUNK`], one request after the other, so a recording
    /// of any size crosses NATS within its message limit.
    fn file(&self, key: u64, attachment: &AttachmentRef) -> Pending<Vec<u8>> {
        if self.health.lost.load(Ordering::Relaxed) {
            return Pending::ready(Err(disconnected()));
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        let (client, timeout) = (self.link.client.clone(), self.link.timeout);
        let (subject, attachment) = (wire::requests(&self.agent), attachment.clone());
        self.link.runtime.spawn(async move {
            let _ = reply.send(fetch_file(client, timeout, subject, key, attachment).await);
        });
        Pending::from_channel(answer, |bytes| bytes)
    }

    fn plugins(&self) -> Pending<PluginTable> {
        self.ask(Request::Plugins, "the plugin table", |a| match a {
            Answer::Plugins(table) => Some(table),
            _ => None,
        })
    }
}
