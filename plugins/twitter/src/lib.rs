//! The X (Twitter) channel: direct messages and public mentions of the company's account arrive
//! as signed Account Activity webhooks and become interactions on the `twitter` channel (public
//! ones clearly marked); agents reply by direct message or public reply through the X API v2.
//!
//! Modules: `settings`, `activity` (X's JSON), `conversations` (state, duplicates, events),
//! `length` (X's weighted length), `hook` (CRC and deliveries), `api` (X API v2 calls), `send`
//! (retries and unknown outcomes). The shared pieces are in `agentdesk-social`.

pub mod activity;
pub mod api;
pub mod conversations;
pub mod hook;
pub mod length;
pub mod send;
pub mod settings;

use agentdesk_social::client::{HttpClient, tls_config};
use agentdesk_social::deliver::Outbox;
use agentdesk_social::inbox::{Counters, Inbox};
use agentdesk_social::journal::{Journal, Journaled};
use agentdesk_social::oauth1::Credentials;
use agentdesk_social::secrets::{Secret, Secrets};
use agentdesk_social::webhook::{self, Handler};
use api::XApi;
use conversations::{Change, Conversations, MOVE_TO_DM, REMEMBER_MS};
use plugin_api::runtime::PluginRuntime;
use plugin_api::store::StateFile;
use plugin_api::{
    ChannelKind, ChannelPlugin, ChannelStatus, Command, ErrorCode, Event, Host, HostHello, Media,
    PluginConfig, PluginDescriptor, PluginError, PluginHello, Reply, unsupported,
};
use send::{Destination, Outgoing};
use serde::{Deserialize, Serialize};
use settings::Settings;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The plugin id.
pub const ID: &str = "agentdesk.twitter";
/// The file in the data directory naming the webhook's address.
pub const ENDPOINT_FILE: &str = "endpoint.json";

/// Where the webhook listens, written to [`ENDPOINT_FILE`] at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// e.g. `http://127.0.0.1:8791/webhook` (any path is accepted).
    pub url: String,
    /// The port.
    pub port: u16,
}

/// What the webhook, the commands and the send tasks share.
pub struct Shared {
    settings: Settings,
    consumer_secret: Secret,
    api: XApi,
    inbox: Inbox<Conversations>,
    host: Host,
    counters: Counters,
}

/// The plugin instance.
pub struct Twitter {
    host: Host,
    settings: Settings,
    running: Option<Running>,
}

struct Running {
    runtime: PluginRuntime,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn not_found(interaction: &str) -> PluginError {
    PluginError::new(
        ErrorCode::NOT_FOUND,
        format!("no open X conversation {interaction}"),
    )
}

impl Twitter {
    fn running(&self) -> Result<&Running, PluginError> {
        self.running
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::STATE, "X is not running"))
    }

    fn change(&self, shared: &Shared, change: Change) -> Result<(), PluginError> {
        let queue = &shared.settings.queue;
        shared
            .inbox
            .commit(|_| (vec![change], ()), |s, c| s.events(c, queue))
            .map(|_| ())
            .map_err(|e| PluginError::failed(format!("cannot store the change: {e}")))
    }

    fn key_of(&self, shared: &Shared, interaction: &str) -> Result<String, PluginError> {
        shared
            .inbox
            .state()
            .by_interaction(interaction)
            .map(|(k, _)| k.to_string())
            .ok_or_else(|| not_found(interaction))
    }

    fn reply(&self, running: &Running, s: plugin_api::SendMessage) -> Result<Reply, PluginError> {
        let interaction = s.interaction.as_str();
        let to = {
            let state = running.shared.inbox.state();
            let (_, c) = state
                .by_interaction(interaction)
                .ok_or_else(|| not_found(interaction))?;
            if c.replies_private() {
                Destination::Dm(c.user_id.clone())
            } else {
                let tweet = c.reply_to.clone().ok_or_else(|| {
                    PluginError::new(ErrorCode::STATE, "Not sent: no post to reply to")
                })?;
                let weighted = length::weighted_length(&s.message.text);
                if weighted > length::MAX_WEIGHTED {
                    return Err(PluginError::new(
                        ErrorCode::STATE,
                        format!(
                            "Not sent: {weighted} characters as X counts them; a public reply \
                             allows {} (links count 23, CJK and emoji 2)",
                            length::MAX_WEIGHTED
                        ),
                    ));
                }
                Destination::Reply(tweet)
            }
        };
        let out = Outgoing {
            interaction: interaction.to_string(),
            send_id: s.message.id,
            to,
            text: s.message.text,
        };
        let handle = running
            .runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        handle.spawn(send::deliver(running.shared.clone(), out));
        Ok(Reply::done())
    }
}

impl ChannelPlugin for Twitter {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: ID.into(),
            name: "X (Twitter)".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(conversations::CHANNEL)],
            description: "Direct messages and public mentions on X, answered in agentdesk.".into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings
            .validate()
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}")))?;
        Ok(Twitter {
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
        let credentials = Credentials {
            consumer_key: get(&settings.consumer_key_var)?,
            consumer_secret: get(&settings.consumer_secret_var)?,
            token: get(&settings.access_token_var)?,
            token_secret: get(&settings.access_token_secret_var)?,
        };
        let tls = if settings.api_url.starts_with("https://") {
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
            .map_err(|e| PluginError::failed(format!("no local address: {e}")))?
            .port();
        let endpoint = Endpoint {
            url: format!("http://{}:{port}/webhook", settings.bind),
            port,
        };
        StateFile::new(&self.host.data_dir(), ENDPOINT_FILE)
            .save(&endpoint)
            .map_err(|e| PluginError::failed(format!("cannot write {ENDPOINT_FILE}: {e}")))?;
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        let (outbox, drain) = Outbox::new(self.host.clone());
        handle.spawn(drain);
        let restored = state.len();
        let again = state.redeliver(&settings.queue);
        let shared = Arc::new(Shared {
            consumer_secret: credentials.consumer_secret.clone(),
            api: XApi {
                base: settings.api_url.clone(),
                credentials,
                client: HttpClient::new(settings.send_timeout(), tls),
            },
            inbox: Inbox::new(state, journal, outbox),
            host: self.host.clone(),
            settings: settings.clone(),
            counters: Counters::default(),
        });
        let mut first = vec![Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("webhook listening on {}", endpoint.url),
        })];
        first.extend(again);
        let lost = shared.inbox.outbox().send(first);
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
            stopped,
        ));
        self.host.info(&format!(
            "X webhook on {} for {} ({restored} open conversations restored)",
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
                "mark-done",
                "invoke-action",
            ]
            .map(String::from)
            .to_vec(),
            events: [
                "offer",
                "message-received",
                "case-data-changed",
                "actions-changed",
                "channel-status",
                "conversation-rules",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![Media::Conversation],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        let running = self.running()?;
        let shared = running.shared.clone();
        match command {
            Command::Accept(a) => {
                self.key_of(&shared, a.interaction.as_str())?;
                Ok(Reply::done())
            }
            Command::SendMessage(s) => self.reply(running, s),
            Command::End(e) => {
                let key = self.key_of(&shared, e.interaction.as_str())?;
                self.change(&shared, Change::Closed { key })?;
                Ok(Reply::done())
            }
            Command::Reject(r) => {
                if let Ok(key) = self.key_of(&shared, r.interaction.as_str()) {
                    self.change(&shared, Change::Closed { key })?;
                }
                Ok(Reply::done())
            }
            Command::InvokeAction(a) if a.action == MOVE_TO_DM => {
                let interaction = a
                    .interaction
                    .ok_or_else(|| PluginError::invalid("move-to-dm needs an interaction"))?;
                let key = self.key_of(&shared, interaction.as_str())?;
                self.change(&shared, Change::MovedToDm { key })?;
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
            self.host.info("X tasks had already ended");
        }
        running.runtime.shutdown(Duration::from_millis(500));
        self.host.info(&format!(
            "X stopped; webhooks: {}; journal: {} syncs for {} stored webhooks",
            running.shared.counters.summary(),
            running.shared.inbox.syncs(),
            running.shared.inbox.commits()
        ));
        Ok(())
    }
}

plugin_api::export_plugin!(Twitter);
