//! The web chat channel: customers chat from a widget page this plugin serves over HTTP and a
//! WebSocket; agents answer in agentdesk through the core. Host commands and plugin events only.
//!
//! Modules: `settings` (the admin's section), `limits` (abuse limits), `protocol` (the widget's
//! wire messages), `session` (the chats and what changes them), `store` (what survives a restart),
//! `server` (HTTP and WebSocket).

/// The abuse limits, shared with the co-browse channel.
pub use agentdesk_web::limits;
pub mod protocol;
pub mod server;
pub mod session;
pub mod settings;
pub mod store;

use plugin_api::runtime::PluginRuntime;
use plugin_api::store::StateFile;
use plugin_api::{
    ChannelKind, ChannelPlugin, ChannelStatus, Command, ErrorCode, Event, Host, HostHello, Media,
    OrderedEmitter, PluginConfig, PluginDescriptor, PluginError, PluginHello, Reply, Target,
    TransferMode, unsupported,
};
use serde::{Deserialize, Serialize};
use server::Shared;
use session::{Chats, SessionError, Timing};
use settings::Settings;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::ChatStore;
use tokio::sync::watch;

/// The plugin id.
pub const ID: &str = "agentdesk.chat";
/// The file in the plugin's data directory naming the address the server listens on.
pub const ENDPOINT_FILE: &str = "endpoint.json";
/// How often timers run.
const TICK: Duration = Duration::from_millis(200);
/// How long a host command waits for its changes to be stored: within the host's call deadline
/// (2 s by default, 1 s in the tests), so a disk that slow fails the command instead of getting
/// the plugin quarantined. A sync takes milliseconds.
const STORE_WAIT: Duration = Duration::from_millis(700);

/// Where the server listens, written to [`ENDPOINT_FILE`] at start (port 0 is chosen then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The widget page, e.g. `http://127.0.0.1:8780/`.
    pub url: String,
    /// The WebSocket, e.g. `ws://127.0.0.1:8780/ws`.
    pub websocket: String,
    /// The port.
    pub port: u16,
}

/// The plugin instance.
pub struct WebChat {
    host: Host,
    settings: Settings,
    store: ChatStore,
    running: Option<Running>,
}

struct Running {
    runtime: PluginRuntime,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

fn error(e: SessionError) -> PluginError {
    let code = match e {
        SessionError::UnknownChat(_) | SessionError::UnknownToken => ErrorCode::NOT_FOUND,
        SessionError::Ended | SessionError::WrongPhase(_) | SessionError::TooLong => {
            ErrorCode::STATE
        }
        SessionError::BadName | SessionError::BadEmail | SessionError::BadCode => {
            ErrorCode::INVALID
        }
        SessionError::Random(_) => ErrorCode::FAILED,
    };
    PluginError::new(code, e.to_string())
}

impl WebChat {
    fn shared(&self) -> Result<&Arc<Shared>, PluginError> {
        self.running
            .as_ref()
            .map(|r| &r.shared)
            .ok_or_else(|| PluginError::new(ErrorCode::STATE, "the web chat is not running"))
    }

    /// Waits until the changes a command made are stored: its reply acknowledges them.
    fn stored(&self, shared: &Shared) -> Result<(), PluginError> {
        let running = self
            .running
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::STATE, "the web chat is not running"))?;
        if running.runtime.block_on(shared.wait_stored(STORE_WAIT))? {
            Ok(())
        } else {
            Err(PluginError::failed(
                "the web chat could not save its chats in time (see the log)",
            ))
        }
    }
}

/// Writes one batch of changes and syncs it (a group commit: everything changed while the
/// previous batch was syncing goes in this one), then shows it to widgets and the host. The lock
/// is held only to take the batch and to release it. Returns false when the write failed (the
/// batch is taken again next time; nothing of it was shown).
async fn store_batch(shared: &Arc<Shared>, store: &ChatStore, host: &Host) -> bool {
    let mut batch = shared.chats().take_batch();
    let number = batch.number;
    let written = if batch.writes_nothing() {
        Ok(())
    } else {
        let changes = std::mem::take(&mut batch.changes);
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.append(&changes)).await {
            Ok(written) => written.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the writer failed: {e}")),
        }
    };
    match written {
        Ok(()) => {
            let events = shared.chats().stored(batch);
            let lost = shared.release(events);
            if lost > 0 {
                host.warn(&format!(
                    "{lost} events not sent to the host (stopping); they are sent again at start"
                ));
            }
            shared.mark_stored(number);
            true
        }
        Err(e) => {
            host.error(&format!("cannot save chats: {e}"));
            shared.chats().not_stored(batch);
            false
        }
    }
}

/// Runs the chats' timers and stores what changed, as soon as it changed.
async fn keep(shared: Arc<Shared>, store: ChatStore, host: Host, mut stop: watch::Receiver<bool>) {
    let timing = Timing {
        idle_warning: shared.settings.idle_warning(),
        idle_close: shared.settings.idle_close(),
        reconnect_grace: shared.settings.reconnect_grace(),
    };
    let mut ticks = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let events = shared.chats().tick(Instant::now(), timing);
                shared.emit(events);
            }
            () = shared.dirty.notified() => {}
            _ = stop.changed() => return,
        }
        if !store_batch(&shared, &store, &host).await {
            // A full disk or the like: try again a little later, not in a tight loop.
            tokio::time::sleep(TICK).await;
        }
    }
}

impl ChannelPlugin for WebChat {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: ID.into(),
            name: "Web chat".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(session::CHANNEL)],
            description: "Customers chat from a web page widget; agents answer in agentdesk."
                .into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings
            .validate()
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}")))?;
        let store = ChatStore::new(&host.data_dir());
        Ok(WebChat {
            host,
            settings,
            store,
            running: None,
        })
    }

    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError> {
        let chats: Chats = self
            .store
            .load(Instant::now())
            .map_err(|e| PluginError::failed(format!("cannot read saved chats: {e}")))?;
        self.store
            .compact(&chats)
            .map_err(|e| PluginError::failed(format!("cannot save chats: {e}")))?;
        let restored = chats.len();
        let redelivered = chats.redeliver(&self.settings.queue);
        let runtime = PluginRuntime::new(ID, self.settings.worker_threads)?;
        let address = format!("{}:{}", self.settings.bind, self.settings.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(address.clone()))?
            .map_err(|e| {
                PluginError::new(
                    ErrorCode::UNAVAILABLE,
                    format!("cannot listen on {address}: {e}"),
                )
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| PluginError::failed(format!("no local address: {e}")))?
            .port();
        let endpoint = Endpoint {
            url: format!("http://{}:{port}/", self.settings.bind),
            websocket: format!("ws://{}:{port}/ws", self.settings.bind),
            port,
        };
        StateFile::new(&self.host.data_dir(), ENDPOINT_FILE)
            .save(&endpoint)
            .map_err(|e| PluginError::failed(format!("cannot write {ENDPOINT_FILE}: {e}")))?;
        let events = OrderedEmitter::new(self.host.clone(), "chat-emit")?;
        let shared = Arc::new(Shared::new(self.settings.clone(), chats, events));
        // Stored already, so sent at once and before any new chat event: the host drops what
        // it had taken in before.
        shared.release(redelivered);
        let (stop, stopped) = watch::channel(false);
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        handle.spawn(server::listen(listener, shared.clone(), stopped.clone()));
        handle.spawn(keep(
            shared.clone(),
            self.store.clone(),
            self.host.clone(),
            stopped,
        ));
        self.host.info(&format!(
            "web chat listening on {} for {} ({restored} chats restored)",
            endpoint.url, hello.host
        ));
        shared.emit(vec![Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("listening on {}", endpoint.url),
        })]);
        self.running = Some(Running {
            runtime,
            shared,
            stop,
        });
        Ok(PluginHello {
            commands: [
                "accept",
                "reject",
                "end",
                "send-message",
                "set-typing",
                "consult",
                "conference",
                "leave-conference",
                "transfer",
                "mark-done",
            ]
            .map(String::from)
            .to_vec(),
            events: [
                "offer",
                "message-received",
                "typing",
                "party-joined",
                "party-left",
                "ended",
                "channel-status",
                "link-code",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![Media::Conversation],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        let shared = self.shared()?.clone();
        let now = Instant::now();
        let events = match command {
            Command::Accept(a) => {
                let mut chats = shared.chats();
                chats
                    .accept(a.interaction.as_str(), &a.agent.display_name, now)
                    .map_err(error)?;
                vec![]
            }
            Command::SendMessage(s) => {
                shared
                    .chats()
                    .agent_message_from(
                        s.interaction.as_str(),
                        &s.message.text,
                        s.agent.as_ref().map(|a| a.display_name.as_str()),
                        now,
                    )
                    .map_err(error)?;
                vec![]
            }
            Command::SetTyping(t) => {
                // Nothing to store: typing is shown at once and never acknowledged.
                return shared
                    .chats()
                    .agent_typing(t.interaction.as_str(), t.typing)
                    .map(|()| Reply::done())
                    .map_err(error);
            }
            Command::End(e) => shared
                .chats()
                .agent_ended(e.interaction.as_str(), now)
                .map_err(error)?,
            Command::Reject(r) => {
                shared.chats().rejected(r.interaction.as_str(), now);
                vec![]
            }
            Command::Consult(c) => {
                let Target::Agent { agent } = &c.target else {
                    return Err(PluginError::invalid(
                        "a web chat can be consulted about only with an agent",
                    ));
                };
                let id = shared
                    .chats()
                    .consult(c.interaction.as_str(), &agent.display_name)
                    .map_err(error)?;
                shared.emit(vec![]);
                self.stored(&shared)?;
                return Ok(Reply::Created(plugin_api::Created {
                    interaction: plugin_api::InteractionId::new(id),
                }));
            }
            Command::Conference(c) => shared
                .chats()
                .conference(c.interaction.as_str(), c.consultation.as_str())
                .map_err(error)?,
            Command::LeaveConference(l) => shared
                .chats()
                .leave_conference(l.interaction.as_str(), &l.agent.display_name)
                .map_err(error)?,
            Command::Transfer(t) => {
                let Target::Agent { agent } = &t.target else {
                    return Err(PluginError::new(
                        ErrorCode::UNSUPPORTED,
                        "a web chat can be transferred only to an agent",
                    ));
                };
                let consultation = match &t.mode {
                    TransferMode::Consultative { consultation } => Some(consultation.as_str()),
                    TransferMode::Blind => None,
                };
                shared
                    .chats()
                    .transfer(t.interaction.as_str(), &agent.display_name, consultation)
                    .map_err(error)?
            }
            Command::MarkDone(_) => vec![],
            other => return unsupported(&other),
        };
        shared.emit(events);
        self.stored(&shared)?;
        Ok(Reply::done())
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        // The tasks watch this channel; a send fails only when all of them have ended already.
        if running.stop.send(true).is_err() {
            self.host.info("web chat tasks had already ended");
        }
        running.runtime.shutdown(Duration::from_millis(500));
        // Everything is kept as a new snapshot (written atomically), including what changed
        // since the last batch and a batch the shutdown may have cut off mid-write; nothing of
        // it was shown yet, and its events for the host are sent again at the next start.
        let saved = self
            .store
            .compact(&running.shared.chats())
            .map_err(|e| PluginError::failed(format!("cannot save chats: {e}")));
        self.host.info("web chat stopped");
        saved
    }
}

plugin_api::export_plugin!(WebChat);
