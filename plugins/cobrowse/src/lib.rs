//! The co-browse channel: the agent sees the customer's page live. A company's pages include
//! this plugin's script; it records the page with rrweb, masking in the customer's browser, and
//! sends it over a WebSocket; the plugin relays it to the agent's viewer (one-time link).
//!
//! Modules: `settings` (the admin's section), `sessions` (codes, secrets, viewer links, phases —
//! no sockets), `protocol` (wire messages), `relay` (what each side's messages do), `server`
//! (HTTP and the two WebSockets), `assets`.

pub mod assets;
pub mod protocol;
pub mod relay;
pub mod server;
pub mod sessions;
pub mod settings;

use plugin_api::runtime::PluginRuntime;
use plugin_api::store::StateFile;
use plugin_api::{
    ActionsChanged, CaseDataChanged, CaseField, ChannelKind, ChannelPlugin, ChannelStatus, Command,
    CustomAction, EndReason, ErrorCode, Event, Host, HostHello, InteractionId, Media, Offer,
    OrderedEmitter, PluginConfig, PluginDescriptor, PluginError, PluginHello, RejectCode, Reply,
    Route, unsupported,
};
use relay::Shared;
use serde::{Deserialize, Serialize};
use sessions::{Phase, Refusal, Session, code_of};
use settings::Settings;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The plugin id.
pub const ID: &str = "agentdesk.cobrowse";
/// The channel.
pub const CHANNEL: &str = ChannelKind::COBROWSE;
/// The file in the plugin's data directory naming the address the server listens on.
pub const ENDPOINT_FILE: &str = "endpoint.json";
/// The custom action that makes a new one-time viewer link.
pub const NEW_VIEW_LINK: &str = "new-view-link";
/// How often timers run.
const TICK: Duration = Duration::from_millis(250);
/// How often a linked offer the core could not link yet is tried again, and how many times
/// (the chat's `link-code` and this offer reach the core on separate queues).
const RELINK_AFTER: Duration = Duration::from_millis(300);
const RELINK_TRIES: u32 = 10;

/// Where the server listens, written to [`ENDPOINT_FILE`] at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The base URL, e.g. `http://127.0.0.1:8790` (the customer script is `<url>/cobrowse.js`).
    pub url: String,
    /// The port.
    pub port: u16,
    /// The public URL used in viewer links.
    pub public_url: String,
}

/// The offer for a session (its current attempt).
pub fn offer_for(session: &Session) -> Offer {
    let interaction = session.interaction();
    Offer {
        interaction: InteractionId::new(interaction.clone()),
        external_id: interaction,
        channel: ChannelKind::new(CHANNEL),
        media: Media::Cobrowse,
        route: Route::linked(session.code.clone()),
        contact: Default::default(),
        subject: Some(format!("Co-browse {}", session.code)),
        case_data: vec![code_field(&session.code)],
        actions: vec![],
        priority: 0,
    }
}

fn code_field(code: &str) -> CaseField {
    CaseField {
        key: "code".into(),
        label: Some("Session code".into()),
        value: code.into(),
    }
}

/// The plugin instance.
pub struct Cobrowse {
    host: Host,
    settings: Settings,
    running: Option<Running>,
}

struct Running {
    runtime: PluginRuntime,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

fn refused(e: Refusal) -> PluginError {
    let code = match e {
        Refusal::UnknownCode | Refusal::BadViewLink => ErrorCode::NOT_FOUND,
        Refusal::Random(_) => ErrorCode::FAILED,
        _ => ErrorCode::STATE,
    };
    PluginError::new(code, e.to_string())
}

/// Ends sessions whose code expired unused or whose customer stayed away too long, and logs
/// what was dropped (a viewer behind, an agent action for a page away, events for a stopping host).
async fn keep(shared: Arc<Shared>, host: Host, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(TICK);
    let mut logged = (0, 0);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let grace = shared.settings.reconnect_grace();
        let due = shared.sessions().due(Instant::now(), grace);
        for code in due {
            let session = shared
                .sessions()
                .get(&code)
                .map(|s| (s.phase, s.customer_gone_since.is_some()));
            let (reason, host) = match session {
                Some((Phase::Waiting, false)) => ("expired", EndReason::Timeout),
                Some((Phase::Offered, false)) => ("not-linked", EndReason::Timeout),
                _ => ("customer-left", EndReason::ContactLeft),
            };
            shared.end(&code, reason, Some(host));
        }
        let now = (
            shared.counts.dropped.load(Ordering::Relaxed),
            shared.counts.events_lost.load(Ordering::Relaxed),
        );
        if now != logged {
            host.warn(&format!(
                "co-browse dropped {} relayed batches or agent actions and {} host events so far \
                 (viewers behind are sent a new snapshot)",
                now.0, now.1
            ));
            logged = now;
        }
    }
}

/// Offers a session again, as a new interaction, after the core could not link it.
async fn relink(shared: Arc<Shared>, code: String) {
    tokio::time::sleep(RELINK_AFTER).await;
    let offer = {
        let mut sessions = shared.sessions();
        let Some(s) = sessions
            .get_mut(&code)
            .filter(|s| s.phase == Phase::Offered)
        else {
            return;
        };
        s.attempt += 1;
        offer_for(s)
    };
    if !shared.emit(Event::Offer(offer)) {
        shared.end(&code, "unavailable", None);
    }
}

impl Cobrowse {
    fn running(&self) -> Result<&Running, PluginError> {
        self.running
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::STATE, "co-browse is not running"))
    }

    /// The session a command names, checked against its current attempt.
    fn session_code(
        &self,
        shared: &Shared,
        interaction: &InteractionId,
    ) -> Result<String, PluginError> {
        let code = code_of(interaction.as_str()).ok_or_else(|| {
            PluginError::new(ErrorCode::NOT_FOUND, format!("no session `{interaction}`"))
        })?;
        match shared.sessions().get(code) {
            Some(s) if s.interaction() == interaction.as_str() => Ok(code.to_string()),
            _ => Err(PluginError::new(
                ErrorCode::NOT_FOUND,
                format!("no session `{interaction}`"),
            )),
        }
    }

    fn view_link_changed(
        &self,
        shared: &Shared,
        interaction: &InteractionId,
        code: &str,
        token: &str,
    ) {
        let fields = vec![
            code_field(code),
            CaseField {
                key: "view".into(),
                label: Some("Live view (opens once)".into()),
                value: shared.view_url(token),
            },
        ];
        let sent = shared.emit(Event::CaseDataChanged(CaseDataChanged {
            interaction: interaction.clone(),
            case_data: fields,
        }));
        if !sent {
            self.host
                .warn("the viewer link could not be sent to the host (stopping)");
        }
    }
}

impl ChannelPlugin for Cobrowse {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: ID.into(),
            name: "Co-browse".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(CHANNEL)],
            description: "The agent sees the customer's web page live; masked fields stay in the \
                          customer's browser."
                .into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings
            .validate()
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}")))?;
        Ok(Cobrowse {
            host,
            settings,
            running: None,
        })
    }

    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError> {
        if let Some(why) = assets::unavailable() {
            return Err(PluginError::new(ErrorCode::UNAVAILABLE, why));
        }
        if !hello.understands_event("link-code") {
            self.host.warn(
                "this host does not know `link-code` (plugin-api 1.3): co-browse offers cannot be \
                 linked to a chat and will be refused",
            );
        }
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
        let url = format!("http://{}:{port}", self.settings.bind);
        let public_url = if self.settings.public_url.is_empty() {
            url.clone()
        } else {
            self.settings.public_url.trim_end_matches('/').to_string()
        };
        let endpoint = Endpoint {
            url: url.clone(),
            port,
            public_url: public_url.clone(),
        };
        StateFile::new(&self.host.data_dir(), ENDPOINT_FILE)
            .save(&endpoint)
            .map_err(|e| PluginError::failed(format!("cannot write {ENDPOINT_FILE}: {e}")))?;
        let events = OrderedEmitter::new(self.host.clone(), "cobrowse-emit")?;
        let shared = Arc::new(Shared::new(self.settings.clone(), events, public_url));
        let (stop, stopped) = watch::channel(false);
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        handle.spawn(server::listen(listener, shared.clone(), stopped.clone()));
        handle.spawn(keep(shared.clone(), self.host.clone(), stopped));
        self.host.info(&format!(
            "co-browse listening on {url} (rrweb {}) for {}",
            assets::RRWEB_VERSION,
            hello.host
        ));
        let sent = shared.emit(Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("listening on {url}; viewer links on {}", shared.public_url),
        }));
        if !sent {
            self.host.warn("the channel status could not be sent");
        }
        self.running = Some(Running {
            runtime,
            shared,
            stop,
        });
        Ok(PluginHello {
            commands: ["accept", "reject", "end", "invoke-action", "mark-done"]
                .map(String::from)
                .to_vec(),
            events: [
                "offer",
                "ended",
                "case-data-changed",
                "actions-changed",
                "channel-status",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![Media::Cobrowse],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        let running = self.running()?;
        let shared = running.shared.clone();
        let now = Instant::now();
        match command {
            Command::Accept(a) => {
                let code = self.session_code(&shared, &a.interaction)?;
                let token = shared
                    .sessions()
                    .accept(&code, &a.agent.display_name, now)
                    .map_err(refused)?;
                if let Some(s) = shared.sessions().get(&code)
                    && let Some(customer) = &s.customer
                {
                    let told = customer.try_send(protocol::text(&protocol::ToCustomer::Agent {
                        name: &a.agent.display_name,
                    }));
                    if told.is_err() {
                        self.host.info(
                            "the customer's page is away; it learns of the agent when it is back",
                        );
                    }
                }
                self.view_link_changed(&shared, &a.interaction, &code, &token);
                let actions = shared.emit(Event::ActionsChanged(ActionsChanged {
                    interaction: a.interaction.clone(),
                    actions: vec![CustomAction {
                        id: NEW_VIEW_LINK.into(),
                        label: "New viewer link".into(),
                        enabled: true,
                    }],
                }));
                if !actions {
                    self.host
                        .warn("the viewer action could not be sent to the host (stopping)");
                }
            }
            Command::InvokeAction(invoke) if invoke.action == NEW_VIEW_LINK => {
                let interaction = invoke
                    .interaction
                    .ok_or_else(|| PluginError::invalid("`new-view-link` needs an interaction"))?;
                let code = self.session_code(&shared, &interaction)?;
                let token = shared.sessions().view_link(&code, now).map_err(refused)?;
                self.view_link_changed(&shared, &interaction, &code, &token);
            }
            Command::End(e) => {
                let code = self.session_code(&shared, &e.interaction)?;
                shared.end(&code, "agent-ended", None);
            }
            Command::Reject(r) => {
                let code = self.session_code(&shared, &r.interaction)?;
                let attempt = shared.sessions().get(&code).map(|s| s.attempt).unwrap_or(0);
                if r.code == RejectCode::NoSuchTarget && attempt < RELINK_TRIES {
                    if let Some(handle) = running.runtime.handle() {
                        handle.spawn(relink(shared.clone(), code));
                    }
                } else {
                    self.host.info(&format!(
                        "co-browse {code} refused by the core: {}",
                        r.reason
                    ));
                    shared.end(&code, "not-linked", None);
                }
            }
            Command::MarkDone(_) => {}
            other => return unsupported(&other),
        }
        Ok(Reply::done())
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        if running.stop.send(true).is_err() {
            self.host.info("co-browse tasks had already ended");
        }
        running.runtime.shutdown(Duration::from_millis(500));
        self.host.info("co-browse stopped");
        Ok(())
    }
}

plugin_api::export_plugin!(Cobrowse);
