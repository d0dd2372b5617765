//! The voice channel: a SIP user agent (RFC 3261 over UDP) with G.711 RTP audio. Inbound
//! INVITEs are offered to the core and ring until it decides; the core's commands answer, reject,
//! hold, transfer (REFER), consult, conference (mixed here) and forward. Without an audio device
//! the agent's voice is a WAV file and calls are recorded to WAV files.
//!
//! The SIP stack (user agent, SDP, RTP, audio) is `agentdesk-voice-sip`, shared with the
//! desktop's own endpoint; its modules are re-exported here.

#[cfg(feature = "device")]
pub use agentdesk_voice_sip::device;
pub use agentdesk_voice_sip::{audio, digest, media, sdp, settings, sip, tasks, ua};

use media::Media;
use plugin_api::runtime::PluginRuntime;
use plugin_api::store::StateFile;
use plugin_api::{
    ChannelKind, ChannelPlugin, ChannelStatus, Command, Created, ErrorCode, Event, Host, HostHello,
    InteractionId, Media as MediaKind, PluginConfig, PluginDescriptor, PluginError, PluginHello,
    Reply, TransferMode, unsupported,
};
use serde::{Deserialize, Serialize};
use settings::Settings;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasks::lock;
use tokio::sync::{mpsc, watch};
use ua::{CallKind, Ua, UaError};

/// The plugin id.
pub const ID: &str = "agentdesk.voice";
/// The file in the plugin's data directory naming the address SIP listens on.
pub const ENDPOINT_FILE: &str = "endpoint.json";

/// Where SIP listens, written to [`ENDPOINT_FILE`] at start (port 0 is chosen then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Our SIP URI, e.g. `sip:agentdesk@127.0.0.1:5060`.
    pub uri: String,
    /// The address.
    pub host: String,
    /// The UDP port.
    pub port: u16,
}

/// The plugin instance.
pub struct Voice {
    host: Host,
    settings: Settings,
    running: Option<Running>,
}

struct Running {
    runtime: PluginRuntime,
    ua: Arc<Mutex<Ua>>,
    stop: watch::Sender<bool>,
}

fn error(e: UaError) -> PluginError {
    let code = match e {
        UaError::UnknownCall(_) => ErrorCode::NOT_FOUND,
        UaError::WrongState(..) => ErrorCode::STATE,
        UaError::BadAddress(_) | UaError::NoAgentAddress(_) => ErrorCode::INVALID,
        UaError::Unsupported(_) => ErrorCode::UNSUPPORTED,
        UaError::Io(_) => ErrorCode::FAILED,
    };
    PluginError::new(code, e.to_string())
}

/// Emits events in order; when the host's queue is full, waits a little and tries again.
async fn deliver(host: Host, mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        loop {
            match host.emit(event.clone()) {
                Ok(()) => break,
                Err(e) if e.code == ErrorCode::QUEUE_FULL => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    host.warn(&format!("event {} not delivered: {e}", event.kind()));
                    break;
                }
            }
        }
    }
}

impl ChannelPlugin for Voice {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: ID.into(),
            name: "Voice".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(ua::CHANNEL)],
            description: "Telephone calls over SIP and RTP (G.711), answered in agentdesk.".into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings
            .validate()
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}")))?;
        Ok(Voice {
            host,
            settings,
            running: None,
        })
    }

    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError> {
        let data = self.host.data_dir();
        let voice = if self.settings.play.is_empty() {
            Vec::new()
        } else {
            let path = self.settings.path_in(&data, &self.settings.play);
            audio::read_wav(&path).map_err(|e| {
                PluginError::new(
                    ErrorCode::CONFIG,
                    format!("settings of `{ID}`: `play` {}: {e}", path.display()),
                )
            })?
        };
        let runtime = PluginRuntime::new(ID, self.settings.worker_threads)?;
        let address = format!("{}:{}", self.settings.bind, self.settings.port);
        let socket = runtime
            .block_on(tokio::net::UdpSocket::bind(address.clone()))?
            .map_err(|e| {
                PluginError::new(
                    ErrorCode::UNAVAILABLE,
                    format!("cannot listen on udp {address}: {e}"),
                )
            })?;
        let socket = Arc::new(socket);
        let port = socket
            .local_addr()
            .map_err(|e| PluginError::failed(format!("no local address: {e}")))?
            .port();
        let endpoint = Endpoint {
            uri: format!(
                "sip:{}@{}:{port}",
                self.settings.user,
                self.settings.public()
            ),
            host: self.settings.public(),
            port,
        };
        StateFile::new(&data, ENDPOINT_FILE)
            .save(&endpoint)
            .map_err(|e| PluginError::failed(format!("cannot write {ENDPOINT_FILE}: {e}")))?;
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        let (events, outbox) = mpsc::unbounded_channel();
        let (news, news_in) = mpsc::unbounded_channel();
        let bind = self
            .settings
            .bind
            .parse()
            .map_err(|_| PluginError::new(ErrorCode::CONFIG, "`bind` is not an IP address"))?;
        let media = Media::new(voice, self.settings.jitter_frames, bind, news);
        #[cfg(feature = "device")]
        let media = media.with_device(device::Device::open().map_err(|e| {
            PluginError::new(
                ErrorCode::UNAVAILABLE,
                format!("cannot open the audio device (arecord/aplay): {e}"),
            )
        })?);
        let ua = Ua::new(
            self.settings.clone(),
            data.clone(),
            socket.clone(),
            events.clone(),
            media.clone(),
            {
                let host = self.host.clone();
                Box::new(move |line: &str| host.warn(line))
            },
        )
        .map_err(error)?;
        let ua = Arc::new(Mutex::new(ua));
        let (stop, stopped) = watch::channel(false);
        handle.spawn(deliver(self.host.clone(), outbox));
        let host = self.host.clone();
        handle.spawn(tasks::listen(
            socket,
            ua.clone(),
            stopped.clone(),
            move |bug| host.error(bug),
        ));
        handle.spawn(tasks::keep(ua.clone(), news_in, stopped.clone()));
        handle.spawn(media::clock(media, stopped));
        self.host.info(&format!(
            "voice listening on {} (udp) for {}",
            endpoint.uri, hello.host
        ));
        let _ = events.send(Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("SIP on udp {}:{port}", self.settings.public()),
        }));
        self.running = Some(Running { runtime, ua, stop });
        Ok(PluginHello {
            commands: [
                "accept",
                "reject",
                "end",
                "hold",
                "resume",
                "send-dtmf",
                "dial",
                "transfer",
                "consult",
                "conference",
                "forward-calls",
                "mark-done",
            ]
            .map(String::from)
            .to_vec(),
            events: [
                "offer",
                "media-state-changed",
                "party-joined",
                "party-left",
                "ended",
                "case-data-changed",
                "channel-status",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![MediaKind::Call],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        let running = self.running.as_ref().ok_or_else(|| {
            PluginError::new(ErrorCode::STATE, "the voice channel is not running")
        })?;
        let handle = running
            .runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        // Sockets made by commands register with the plugin's runtime.
        let _entered = handle.enter();
        let mut ua = lock(&running.ua);
        let created = |id: String| {
            Reply::Created(Created {
                interaction: InteractionId::new(id),
            })
        };
        match command {
            Command::Accept(a) => ua
                .accept(a.interaction.as_str(), &a.agent.id)
                .map_err(error)?,
            Command::Reject(r) => ua.reject(r.interaction.as_str(), r.code).map_err(error)?,
            Command::End(e) => ua.end(e.interaction.as_str()).map_err(error)?,
            Command::Hold(h) => ua.hold(h.interaction.as_str(), true).map_err(error)?,
            Command::Resume(r) => ua.hold(r.interaction.as_str(), false).map_err(error)?,
            Command::SendDtmf(d) => ua.dtmf(d.interaction.as_str(), &d.digits).map_err(error)?,
            Command::Dial(d) => {
                let uri = ua.address_uri(&d.to).map_err(error)?;
                let id = ua
                    .dial(
                        &uri,
                        Some((&d.agent.id, &d.agent.display_name)),
                        CallKind::Customer,
                    )
                    .map_err(error)?;
                return Ok(created(id));
            }
            Command::Consult(c) => {
                let id = ua
                    .consult(c.interaction.as_str(), &c.target)
                    .map_err(error)?;
                return Ok(created(id));
            }
            Command::Conference(c) => ua
                .conference(c.interaction.as_str(), c.consultation.as_str())
                .map_err(error)?,
            Command::Transfer(t) => {
                let consultation = match &t.mode {
                    TransferMode::Consultative { consultation } => Some(consultation.as_str()),
                    TransferMode::Blind => None,
                };
                ua.transfer(t.interaction.as_str(), &t.target, consultation)
                    .map_err(error)?
            }
            Command::ForwardCalls(f) => {
                if f.extension.is_empty() {
                    return Err(PluginError::invalid(format!(
                        "agent `{}` has no extension to forward",
                        f.agent.id
                    )));
                }
                ua.forward(&f.extension, f.forward_to.clone());
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
        lock(&running.ua).shutdown();
        let _ = running.stop.send(true);
        running.runtime.shutdown(Duration::from_millis(500));
        self.host.info("voice stopped");
        Ok(())
    }
}

plugin_api::export_plugin!(Voice);
