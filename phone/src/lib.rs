//! The agent's voice endpoint at their own desk. In a team the hub's voice channel owns the
//! customers' calls; the agent's headset is here. The endpoint registers with the hub's voice
//! channel as the agent's extension (SIP digest with the password the admin gave the agent),
//! takes the calls that channel bridges to it — from that registrar only — and plays and
//! records them through the desk computer's audio device (feature `device`) or WAV files.
//!
//! It is the voice channel's own user agent (`agentdesk-voice-sip`), configured as an endpoint:
//! no second SIP stack.

use agentdesk_voice_sip::media::Media;
use agentdesk_voice_sip::settings::{Registrar, Settings};
use agentdesk_voice_sip::tasks::{self, lock};
use agentdesk_voice_sip::{audio, media, ua::Ua};
use plugin_api::Event;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the endpoint needs: where the hub's voice channel is, and who the agent is there.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// The hub's voice channel, `host:port` (its SIP address).
    pub registrar: String,
    /// The agent's extension (the user it registers as).
    pub extension: String,
    /// The agent's endpoint password (from the admin's voice settings).
    pub password: String,
    /// The agent's id (whose calls it takes).
    pub agent: String,
    /// The address SIP and RTP bind to.
    pub bind: IpAddr,
    /// The address put in our Contact and SDP (default: `bind`).
    pub public_address: Option<String>,
    /// A WAV file (8 kHz mono) played as the agent's voice when there is no audio device.
    pub play: Option<PathBuf>,
    /// Where each call is recorded (stereo WAV: far end left, agent right); none: not recorded.
    pub recordings: Option<PathBuf>,
    /// The registration lifetime asked for, in seconds (refreshed at half).
    pub expires_secs: u32,
}

impl PhoneConfig {
    /// An endpoint on loopback for `agent` at `registrar`, with no audio files.
    pub fn new(registrar: &str, agent: &str, extension: &str, password: &str) -> PhoneConfig {
        PhoneConfig {
            registrar: registrar.into(),
            extension: extension.into(),
            password: password.into(),
            agent: agent.into(),
            bind: IpAddr::from([127, 0, 0, 1]),
            public_address: None,
            play: None,
            recordings: None,
            expires_secs: 60,
        }
    }
}

/// The environment variables an endpoint's settings come from (the password never from a flag:
/// a command line is visible to every user of the machine).
pub mod env {
    /// The hub's voice channel, `host:port`: the endpoint starts when it is set.
    pub const REGISTRAR: &str = "AGENTDESK_VOICE_REGISTRAR";
    /// The agent's extension.
    pub const EXTENSION: &str = "AGENTDESK_VOICE_EXTENSION";
    /// The agent's endpoint password.
    pub const PASSWORD: &str = "AGENTDESK_VOICE_PASSWORD";
    /// A WAV file played as the agent's voice (without an audio device).
    pub const PLAY: &str = "AGENTDESK_VOICE_PLAY";
    /// A directory each call is recorded to.
    pub const RECORDINGS: &str = "AGENTDESK_VOICE_RECORDINGS";
    /// The local address to bind (default 127.0.0.1; the desk's LAN address in a real team).
    pub const BIND: &str = "AGENTDESK_VOICE_BIND";
}

impl PhoneConfig {
    /// The endpoint the environment describes for `agent` (see [`env`]), with `registrar` and
    /// `extension` given (flags) or else from the environment; `None` when no registrar is
    /// named (the desk has no endpoint of its own).
    pub fn from_env(
        agent: &str,
        registrar: Option<String>,
        extension: Option<String>,
    ) -> Result<Option<PhoneConfig>, PhoneError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(registrar) = registrar.or_else(|| var(env::REGISTRAR)) else {
            return Ok(None);
        };
        let extension = extension.or_else(|| var(env::EXTENSION)).ok_or_else(|| {
            PhoneError::Config(format!(
                "no extension: set {} or --voice-extension",
                env::EXTENSION
            ))
        })?;
        let password = var(env::PASSWORD)
            .ok_or_else(|| PhoneError::Config(format!("no password: set {}", env::PASSWORD)))?;
        let mut config = PhoneConfig::new(&registrar, agent, &extension, &password);
        if let Some(bind) = var(env::BIND) {
            config.bind = bind.parse().map_err(|_| {
                PhoneError::Config(format!("{}: `{bind}` is no IP address", env::BIND))
            })?;
        }
        config.play = var(env::PLAY).map(PathBuf::from);
        config.recordings = var(env::RECORDINGS).map(PathBuf::from);
        Ok(Some(config))
    }
}

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// A value that cannot work.
    #[error("voice endpoint: {0}")]
    Config(String),
    /// The voice file cannot be read.
    #[error("voice endpoint: cannot read {0}: {1}")]
    Wav(PathBuf, audio::WavError),
    /// A socket, the runtime or the audio device.
    #[error("voice endpoint: {0}")]
    Io(#[from] std::io::Error),
}

/// How the endpoint stands, for the desk to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneStatus {
    /// Whether the registrar accepted the registration.
    pub registered: bool,
    /// The last word on the registration.
    pub detail: String,
    /// Calls answered so far.
    pub answered: u64,
    /// Calls up now.
    pub calls: usize,
}

/// A running endpoint; stopped when dropped.
pub struct Phone {
    runtime: Option<tokio::runtime::Runtime>,
    ua: Arc<Mutex<Ua>>,
    stop: watch::Sender<bool>,
    status: Arc<Mutex<PhoneStatus>>,
    registrar: SocketAddr,
    port: u16,
}

impl Phone {
    /// Starts the endpoint: it registers at once and answers the registrar's calls.
    pub fn start(config: PhoneConfig) -> Result<Phone, PhoneError> {
        if config.extension.is_empty() || config.password.is_empty() {
            return Err(PhoneError::Config(
                "an extension and its password are needed to register".into(),
            ));
        }
        let settings = Settings {
            bind: config.bind.to_string(),
            port: 0,
            public_address: config.public_address.clone(),
            user: config.extension.clone(),
            registrar: Some(Registrar {
                uri: format!("sip:{}", config.registrar),
                user: Some(config.extension.clone()),
                expires_secs: config.expires_secs,
                ..Registrar::default()
            }),
            record: config.recordings.is_some(),
            recordings: config
                .recordings
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            ..Settings::default()
        };
        settings.validate().map_err(PhoneError::Config)?;
        let voice = match &config.play {
            Some(path) => audio::read_wav(path).map_err(|e| PhoneError::Wav(path.clone(), e))?,
            None => Vec::new(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("agentdesk-phone")
            .enable_all()
            .build()?;
        let socket = runtime.block_on(tokio::net::UdpSocket::bind((config.bind, 0)))?;
        let socket = Arc::new(socket);
        let port = socket.local_addr()?.port();
        let (events, mut heard) = mpsc::unbounded_channel();
        let (news, news_in) = mpsc::unbounded_channel();
        let media = Media::new(voice, settings.jitter_frames, config.bind, news);
        #[cfg(feature = "device")]
        let media = media.with_device(agentdesk_voice_sip::device::Device::open()?);
        let data = config.recordings.clone().unwrap_or_else(std::env::temp_dir);
        let _entered = runtime.enter();
        let mut ua = Ua::new(
            settings,
            data,
            socket.clone(),
            events,
            media.clone(),
            Box::new(|line: &str| tracing::warn!(target: "agentdesk_phone", "{line}")),
        )
        .map_err(|e| PhoneError::Config(e.to_string()))?;
        let registrar = ua
            .registrar_only(&config.extension, &config.password)
            .ok_or_else(|| {
                PhoneError::Config(format!("cannot reach the registrar {}", config.registrar))
            })?;
        let ua = Arc::new(Mutex::new(ua));
        let status = Arc::new(Mutex::new(PhoneStatus::default()));
        let (stop, stopped) = watch::channel(false);
        runtime.spawn(tasks::listen(
            socket,
            ua.clone(),
            stopped.clone(),
            |bug| tracing::error!(target: "agentdesk_phone", "{bug}"),
        ));
        runtime.spawn(tasks::keep(ua.clone(), news_in, stopped.clone()));
        runtime.spawn(media::clock(media, stopped));
        let (answering, noting, agent) = (ua.clone(), status.clone(), config.agent.clone());
        runtime.spawn(async move {
            while let Some(event) = heard.recv().await {
                match event {
                    // A call from our registrar (others are refused before they ring): answer.
                    Event::Offer(offer) => {
                        let answered = lock(&answering).accept(offer.interaction.as_str(), &agent);
                        let mut status = lock_status(&noting);
                        match answered {
                            Ok(()) => status.answered += 1,
                            Err(e) => tracing::warn!(
                                target: "agentdesk_phone",
                                "call {} not answered: {e}",
                                offer.interaction.as_str()
                            ),
                        }
                    }
                    Event::ChannelStatus(s) => {
                        let mut status = lock_status(&noting);
                        if status.registered != s.healthy {
                            tracing::info!(target: "agentdesk_phone", "{}", s.detail);
                        }
                        status.registered = s.healthy;
                        status.detail = s.detail;
                    }
                    _ => {}
                }
            }
        });
        drop(_entered);
        Ok(Phone {
            runtime: Some(runtime),
            ua,
            stop,
            status,
            registrar,
            port,
        })
    }

    /// How it stands.
    pub fn status(&self) -> PhoneStatus {
        let mut status = lock_status(&self.status).clone();
        status.calls = lock(&self.ua).call_count();
        status
    }

    /// The registrar it registers with (and takes calls from).
    pub fn registrar(&self) -> SocketAddr {
        self.registrar
    }

    /// The UDP port its SIP listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Hangs up, takes the registration back (the registrar then stops bridging calls here at
    /// once) and stops.
    pub fn stop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        {
            let _entered = runtime.enter();
            let mut ua = lock(&self.ua);
            ua.shutdown();
            ua.unregister();
        }
        // The registrar's answer (or its challenge, answered) arrives within milliseconds.
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while std::time::Instant::now() < deadline {
            let status = lock_status(&self.status);
            if status.detail.starts_with("unregistered") {
                break;
            }
            drop(status);
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.stop.send(true);
        runtime.shutdown_timeout(Duration::from_millis(500));
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock_status(status: &Mutex<PhoneStatus>) -> std::sync::MutexGuard<'_, PhoneStatus> {
    status.lock().unwrap_or_else(|p| p.into_inner())
}
