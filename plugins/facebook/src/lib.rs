//! The Facebook Messenger channel: a Page's conversations arrive as signed webhooks, become
//! interactions on the `facebook` channel, and agents' replies go out through the Send API
//! within Messenger's messaging window. Host commands and plugin events only.
//!
//! Modules: `settings`, `payload` (Meta's JSON), `conversations` (state, duplicates, events),
//! `window` (the 24-hour rule), `hook` (the webhook requests), `graph` (Send API and its errors),
//! `send` (retries and unknown outcomes), `files` (attachments), `show` (what the agent sees). The shared pieces are in `agentdesk-social`.

pub mod conversations;
pub mod files;
pub mod graph;
pub mod hook;
pub mod payload;
pub mod send;
pub mod settings;
pub mod show;
pub mod window;

use agentdesk_social::client::{HttpClient, tls_config};
use agentdesk_social::deliver::Outbox;
use agentdesk_social::inbox::{Counters, Inbox};
use agentdesk_social::journal::{Journal, Journaled};
use agentdesk_social::limits::TokenBucket;
use agentdesk_social::secrets::{Secret, Secrets};
use agentdesk_social::webhook::{self, Handler};
use conversations::{Change, Conversations, REMEMBER_MS, View};
use graph::Graph;
use plugin_api::runtime::PluginRuntime;
use plugin_api::store::StateFile;
use plugin_api::{
    ChannelKind, ChannelPlugin, ChannelStatus, Command, ErrorCode, Event, Host, HostHello, Media,
    PluginConfig, PluginDescriptor, PluginError, PluginHello, Reply, unsupported,
};
use serde::{Deserialize, Serialize};
use settings::Settings;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use window::ReplyWindow;

/// The plugin id.
pub const ID: &str = "agentdesk.facebook";
/// The file in the data directory naming the webhook's address.
pub const ENDPOINT_FILE: &str = "endpoint.json";
/// How often the reply window shown to agents is brought up to date.
const REFRESH: Duration = Duration::from_secs(60);

/// Where the webhook listens, written to [`ENDPOINT_FILE`] at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// e.g. `http://127.0.0.1:8790/webhook` (any path is accepted).
    pub url: String,
    /// The port.
    pub port: u16,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The secrets the channel uses; never logged.
#[derive(Debug)]
pub struct FacebookSecrets {
    /// Signs webhooks.
    pub app_secret: Secret,
    /// The handshake's verify token.
    pub verify_token: Secret,
}

/// What the webhook, the commands and the send tasks share.
pub struct Shared {
    settings: Settings,
    secrets: FacebookSecrets,
    graph: Graph,
    inbox: Inbox<Conversations>,
    host: Host,
    /// Replies in flight, by `metadata`: whether their echo came back yet. Only sends in flight
    /// are kept, so the map stays small.
    echoes: Mutex<BTreeMap<String, bool>>,
    names: Mutex<BTreeMap<String, String>>,
    runtime: tokio::runtime::Handle,
    bucket: Mutex<TokenBucket>,
    token_refused: AtomicBool,
    counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves consistent data here (changes apply whole).
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn conversations(&self) -> MutexGuard<'_, Conversations> {
        self.inbox.state()
    }
    fn outbox(&self) -> &Outbox {
        self.inbox.outbox()
    }
    fn echoes(&self) -> MutexGuard<'_, BTreeMap<String, bool>> {
        lock(&self.echoes)
    }
    fn names(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        lock(&self.names)
    }
    fn bucket(&self) -> MutexGuard<'_, TokenBucket> {
        lock(&self.bucket)
    }
    fn view(&self, now_ms: u64) -> View<'_> {
        View {
            queue: &self.settings.queue,
            human_agent_tag: self.settings.human_agent_tag,
            now_ms,
        }
    }
}

/// The plugin instance.
pub struct Facebook {
    host: Host,
    settings: Settings,
    running: Option<Running>,
}

struct Running {
    runtime: PluginRuntime,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

fn failed(what: &str) -> impl FnOnce(String) -> PluginError + '_ {
    move |e| PluginError::failed(format!("{what}: {e}"))
}

async fn refresh(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(REFRESH);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let events = {
                    let state = shared.conversations();
                    state.refresh(&shared.view(now_ms()))
                };
                if shared.outbox().send(events) > 0 {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

impl Facebook {
    fn shared(&self) -> Result<(&Arc<Shared>, &PluginRuntime), PluginError> {
        self.running
            .as_ref()
            .map(|r| (&r.shared, &r.runtime))
            .ok_or_else(|| PluginError::new(ErrorCode::STATE, "Messenger is not running"))
    }

    /// Stores and applies a change a command made.
    fn change(&self, shared: &Shared, change: Change) -> Result<(), PluginError> {
        shared
            .inbox
            .commit(|_| (vec![change], ()), |_, _| vec![])
            .map(|_| ())
            .map_err(|e| PluginError::failed(format!("cannot store the change: {e}")))
    }

    fn psid_of(&self, shared: &Shared, interaction: &str) -> Result<String, PluginError> {
        shared
            .conversations()
            .by_interaction(interaction)
            .map(|(p, _)| p.to_string())
            .ok_or_else(|| {
                PluginError::new(
                    ErrorCode::NOT_FOUND,
                    format!("no open Messenger conversation {interaction}"),
                )
            })
    }

    fn reply(
        &self,
        shared: &Arc<Shared>,
        runtime: &PluginRuntime,
        s: plugin_api::SendMessage,
    ) -> Result<Reply, PluginError> {
        let interaction = s.interaction.as_str();
        let (psid, last) = {
            let state = shared.conversations();
            let (psid, c) = state.by_interaction(interaction).ok_or_else(|| {
                PluginError::new(
                    ErrorCode::NOT_FOUND,
                    format!("no open Messenger conversation {interaction}"),
                )
            })?;
            (psid.to_string(), c.last_customer_ms)
        };
        let chars = s.message.text.chars().count();
        if chars > self.settings.max_message_chars {
            return Err(PluginError::new(
                ErrorCode::STATE,
                format!(
                    "Not sent: {chars} characters; Messenger allows {}",
                    self.settings.max_message_chars
                ),
            ));
        }
        let now = now_ms();
        let window = ReplyWindow::at(last, now, self.settings.human_agent_tag);
        let Some((messaging_type, tag)) = window.messaging() else {
            return Err(PluginError::new(
                ErrorCode::STATE,
                format!("Not sent: the reply window is {}", window.describe(now)),
            ));
        };
        let out = send::Outgoing {
            psid,
            interaction: interaction.to_string(),
            send_id: s.message.id,
            text: s.message.text,
            messaging_type,
            tag,
        };
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        handle.spawn(send::deliver(shared.clone(), out));
        Ok(Reply::done())
    }

    fn action(
        &self,
        shared: &Arc<Shared>,
        runtime: &PluginRuntime,
        psid: String,
        action: &'static str,
    ) {
        let Some(handle) = runtime.handle() else {
            shared.host.warn(&format!(
                "sender action {action} not sent: the runtime is gone"
            ));
            return;
        };
        let shared = shared.clone();
        handle.spawn(async move {
            match shared.graph.sender_action(&psid, action).await {
                Ok(graph::Answer::Accepted(_)) => {}
                Ok(graph::Answer::Refused(e)) => shared
                    .host
                    .warn(&format!("sender action {action} refused: {}", e.plain())),
                Err(e) => shared.host.warn(&format!("sender action {action}: {e}")),
            }
        });
    }
}

impl ChannelPlugin for Facebook {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: ID.into(),
            name: "Facebook Messenger".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(conversations::CHANNEL)],
            description: "Messages to a Facebook Page, answered in agentdesk.".into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings
            .validate()
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}")))?;
        Ok(Facebook {
            host,
            settings,
            running: None,
        })
    }

    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError> {
        let settings = self.settings.clone();
        let config = |e: String| PluginError::new(ErrorCode::CONFIG, format!("`{ID}`: {e}"));
        let secrets =
            Secrets::load(settings.secrets_file.as_deref()).map_err(|e| config(e.to_string()))?;
        let get = |name: &str| secrets.get(name).map_err(|e| config(e.to_string()));
        let facebook_secrets = FacebookSecrets {
            app_secret: get(&settings.app_secret_var)?,
            verify_token: get(&settings.verify_token_var)?,
        };
        let token = get(&settings.page_token_var)?;
        let tls = if settings.graph_url.starts_with("https://") {
            Some(tls_config(settings.ca_file.as_deref()).map_err(|e| config(e.to_string()))?)
        } else {
            None
        };
        let journal = Journal::new(&self.host.data_dir(), "conversations");
        let (mut state, loaded) = journal
            .load::<Conversations>()
            .map_err(|e| PluginError::failed(format!("cannot read conversations: {e}")))?;
        if loaded.skipped > 0 {
            self.host.warn(&format!(
                "{} unreadable lines in the conversation log were skipped (a crash mid-write)",
                loaded.skipped
            ));
        }
        state.apply(Change::Forgot {
            before_ms: now_ms().saturating_sub(REMEMBER_MS),
        });
        journal
            .compact(&state)
            .map_err(|e| PluginError::failed(format!("cannot store conversations: {e}")))?;
        let runtime = PluginRuntime::new(ID, settings.worker_threads)?;
        let address = format!("{}:{}", settings.bind, settings.port);
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
            .map_err(|e| failed("no local address")(e.to_string()))?
            .port();
        let endpoint = Endpoint {
            url: format!("http://{}:{port}/webhook", settings.bind),
            port,
        };
        StateFile::new(&self.host.data_dir(), ENDPOINT_FILE)
            .save(&endpoint)
            .map_err(|e| failed("cannot write endpoint.json")(e.to_string()))?;
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        let (outbox, drain) = Outbox::new(self.host.clone());
        handle.spawn(drain);
        let graph = Graph {
            base: settings.graph_url.clone(),
            page_id: settings.page_id.clone(),
            token,
            client: HttpClient::new(settings.send_timeout(), tls),
        };
        let restored = state.len();
        let bucket = TokenBucket::new(
            settings.sends_per_second,
            settings.sends_per_second,
            std::time::Instant::now(),
        );
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            secrets: facebook_secrets,
            graph,
            inbox: Inbox::new(state, journal, outbox),
            host: self.host.clone(),
            echoes: Mutex::new(BTreeMap::new()),
            names: Mutex::new(BTreeMap::new()),
            runtime: handle.clone(),
            bucket: Mutex::new(bucket),
            token_refused: AtomicBool::new(false),
            counters: Counters::default(),
        });
        // Everything stored goes to the host again, before any new webhook is taken: the core
        // drops offers and messages it already has.
        let again = shared.conversations().redeliver(&shared.view(now_ms()));
        let mut first = vec![Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("webhook listening on {}", endpoint.url),
        })];
        first.extend(again);
        let lost = shared.outbox().send(first);
        if lost > 0 {
            self.host
                .warn(&format!("{lost} stored events not passed on at start"));
        }
        let (stop, stopped) = watch::channel(false);
        let for_hook = shared.clone();
        let handler: Handler = Arc::new(move |request| hook::handle(&for_hook, request));
        handle.spawn(webhook::listen(
            listener,
            handler,
            settings.max_body_bytes,
            stopped.clone(),
        ));
        handle.spawn(refresh(shared.clone(), stopped));
        self.host.info(&format!(
            "Messenger webhook on {} for {} ({restored} open conversations restored)",
            endpoint.url, hello.host
        ));
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
                "mark-done",
            ]
            .map(String::from)
            .to_vec(),
            events: [
                "offer",
                "message-received",
                "case-data-changed",
                "channel-status",
                "conversation-rules",
                "receipt",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![Media::Conversation],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        let (shared, runtime) = self.shared()?;
        let (shared, runtime) = (shared.clone(), runtime);
        match command {
            Command::Accept(a) => {
                let psid = self.psid_of(&shared, a.interaction.as_str())?;
                self.action(&shared, runtime, psid, "mark_seen");
                Ok(Reply::done())
            }
            Command::SendMessage(s) => self.reply(&shared, runtime, s),
            Command::SetTyping(t) => {
                let psid = self.psid_of(&shared, t.interaction.as_str())?;
                let action = if t.typing { "typing_on" } else { "typing_off" };
                self.action(&shared, runtime, psid, action);
                Ok(Reply::done())
            }
            Command::End(e) => {
                let psid = self.psid_of(&shared, e.interaction.as_str())?;
                self.change(&shared, Change::Closed { psid })?;
                Ok(Reply::done())
            }
            Command::Reject(r) => {
                // Declined by the core: the customer's next message is offered anew.
                if let Ok(psid) = self.psid_of(&shared, r.interaction.as_str()) {
                    self.change(&shared, Change::Closed { psid })?;
                }
                Ok(Reply::done())
            }
            Command::MarkDone(_) => Ok(Reply::done()),
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        if running.stop.send(true).is_err() {
            self.host.info("Messenger tasks had already ended");
        }
        running.runtime.shutdown(Duration::from_millis(500));
        self.host.info(&format!(
            "Messenger stopped; webhooks: {}; journal: {} syncs for {} stored webhooks",
            running.shared.counters.summary(),
            running.shared.inbox.syncs(),
            running.shared.inbox.commits()
        ));
        Ok(())
    }
}

plugin_api::export_plugin!(Facebook);
