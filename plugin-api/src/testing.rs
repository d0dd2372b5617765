//! A host for a plugin's own tests (feature `testing`): [`FakeHost`] drives a [`ChannelPlugin`]
//! through the same entry points, panic guard and encoding as the agentdesk host, on a thread of
//! its own with a deadline per call, and enforces the host's rules: commands the plugin did not
//! declare are refused, the event queue is bounded (`QUEUE_FULL`), every event is decoded and
//! checked. It records what the plugin emitted and logged. No agentdesk host code is involved.

use crate::abi::{
    Envelope, ErrorCode, HostServices, HostServices_TO, LogLevel, PluginBox, PluginError,
};
use crate::codec::Message;
use crate::plugin::{ChannelPlugin, create_entry};
use crate::vocabulary::commands::{Command, Reply};
use crate::vocabulary::events::Event;
use crate::vocabulary::session::{HostHello, PluginConfig, PluginHello};
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

/// How the fake host is set up.
#[derive(Debug, Clone)]
pub struct FakeHostOptions {
    /// The plugin's settings section (what the admin wrote under `[plugins.settings."<id>"]`).
    pub settings: serde_json::Value,
    /// Events that may wait before `emit` answers `QUEUE_FULL` (the host's default is 1,024).
    pub queue: usize,
    /// Deadline of `start`, `handle` and `stop` (the host's defaults: 10 s, 2 s, 5 s).
    pub deadline: Duration,
}

impl Default for FakeHostOptions {
    fn default() -> Self {
        FakeHostOptions {
            settings: serde_json::json!({}),
            queue: 1024,
            deadline: Duration::from_secs(2),
        }
    }
}

/// Something the plugin did that the agentdesk host would refuse or drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An event that does not decode (the host drops it and counts it as malformed).
    MalformedEvent {
        /// Its kind.
        kind: String,
        /// Why it does not decode.
        error: String,
    },
    /// An event of a kind the plugin did not declare in its hello.
    UndeclaredEvent {
        /// Its kind.
        kind: String,
    },
    /// `emit` while the queue was full (the plugin must retry or use `OrderedEmitter`).
    QueueFull,
    /// A call that took longer than its deadline (the host quarantines the plugin).
    MissedDeadline {
        /// Which call.
        call: String,
        /// How long it had.
        deadline: Duration,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::MalformedEvent { kind, error } => {
                write!(f, "event `{kind}` does not decode: {error}")
            }
            Violation::UndeclaredEvent { kind } => {
                write!(f, "event `{kind}` was not declared in the plugin's hello")
            }
            Violation::QueueFull => write!(f, "an event was emitted while the queue was full"),
            Violation::MissedDeadline { call, deadline } => {
                write!(f, "`{call}` took longer than its deadline of {deadline:?}")
            }
        }
    }
}

impl std::error::Error for Violation {}

/// Why a call through the fake host did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin answered with an error (a panic arrives as `ErrorCode::PANICKED`).
    Plugin(PluginError),
    /// The host refuses: the command kind was not declared in the plugin's hello.
    Undeclared(String),
    /// The call missed its deadline; the plugin is quarantined, like in the host.
    MissedDeadline(Duration),
    /// The plugin was quarantined earlier and takes no more calls.
    Quarantined,
    /// The answer did not decode.
    Malformed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Plugin(e) => write!(f, "the plugin answered: {e}"),
            CallError::Undeclared(kind) => {
                write!(
                    f,
                    "`{kind}` was not declared by the plugin: the host never sends it"
                )
            }
            CallError::MissedDeadline(d) => write!(f, "missed the deadline of {d:?}"),
            CallError::Quarantined => write!(f, "the plugin is quarantined"),
            CallError::Malformed(e) => write!(f, "the answer does not decode: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// What the plugin sent and said, shared with its host services.
#[derive(Debug)]
struct Recorder {
    queue: usize,
    events: Mutex<VecDeque<Envelope>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
    violations: Mutex<Vec<Violation>>,
    refused: AtomicU64,
    data_dir: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
struct Services(Arc<Recorder>);

impl HostServices for Services {
    fn emit(&self, event: Envelope) -> RResult<(), PluginError> {
        let mut events = lock(&self.0.events);
        if events.len() >= self.0.queue {
            self.0.refused.fetch_add(1, Ordering::Relaxed);
            lock(&self.0.violations).push(Violation::QueueFull);
            return RErr(PluginError::new(
                ErrorCode::QUEUE_FULL,
                "the host's event queue is full",
            ));
        }
        events.push_back(event);
        ROk(())
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        lock(&self.0.logs).push((level, message.as_str().to_string()));
    }

    fn data_dir(&self) -> RString {
        RString::from(self.0.data_dir.display().to_string())
    }

    fn request(&self, request: Envelope) -> RResult<Envelope, PluginError> {
        RErr(PluginError::unsupported(request.kind.as_str()))
    }
}

enum Call {
    Start(Envelope),
    Handle(Envelope),
    Stop,
}

type Answer = Result<Option<Envelope>, PluginError>;

/// A fake agentdesk host around one plugin instance.
pub struct FakeHost {
    calls: mpsc::Sender<(Call, mpsc::Sender<Answer>)>,
    recorder: Arc<Recorder>,
    deadline: Duration,
    hello: Option<PluginHello>,
    quarantined: bool,
    seen: Vec<Event>,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("data_dir", &self.recorder.data_dir)
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl FakeHost {
    /// Creates the plugin with the default options and these settings.
    pub fn create<P: ChannelPlugin>(settings: serde_json::Value) -> Result<Self, CallError> {
        Self::with_options::<P>(FakeHostOptions {
            settings,
            ..FakeHostOptions::default()
        })
    }

    /// Creates the plugin (its `create`, through the same guard the exported library uses) with
    /// a fresh data directory, removed when the fake host is dropped.
    pub fn with_options<P: ChannelPlugin>(options: FakeHostOptions) -> Result<Self, CallError> {
        let data_dir = fresh_dir();
        let recorder = Arc::new(Recorder {
            queue: options.queue,
            events: Mutex::new(VecDeque::new()),
            logs: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            refused: AtomicU64::new(0),
            data_dir,
        });
        let services = HostServices_TO::from_ptr(
            abi_stable::std_types::RArc::new(Services(recorder.clone())),
            abi_stable::sabi_trait::TD_Opaque,
        );
        let config = PluginConfig {
            plugin_id: P::descriptor().id,
            settings: options.settings,
        }
        .to_envelope();
        let plugin: PluginBox = create_entry::<P>(services, config)
            .into_result()
            .map_err(CallError::Plugin)?;
        let (calls, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("fake-host-plugin".into())
            .spawn(move || serve(plugin, &inbox))
            .map_err(|e| CallError::Plugin(PluginError::failed(e.to_string())))?;
        Ok(FakeHost {
            calls,
            recorder,
            deadline: options.deadline,
            hello: None,
            quarantined: false,
            seen: Vec::new(),
        })
    }

    fn call(&mut self, call: Call, what: &str) -> Result<Option<Envelope>, CallError> {
        if self.quarantined {
            return Err(CallError::Quarantined);
        }
        let (reply, answer) = mpsc::channel();
        if self.calls.send((call, reply)).is_err() {
            self.quarantined = true;
            return Err(CallError::Quarantined);
        }
        match answer.recv_timeout(self.deadline) {
            Ok(answer) => {
                if let Err(e) = &answer
                    && e.code == ErrorCode::PANICKED
                {
                    self.quarantined = true;
                }
                answer.map_err(CallError::Plugin)
            }
            Err(_) => {
                self.quarantined = true;
                lock(&self.recorder.violations).push(Violation::MissedDeadline {
                    call: what.to_string(),
                    deadline: self.deadline,
                });
                Err(CallError::MissedDeadline(self.deadline))
            }
        }
    }

    /// Starts the plugin with a host hello that knows every kind of this plugin-api; returns
    /// (and keeps) the plugin's hello.
    pub fn start(&mut self) -> Result<PluginHello, CallError> {
        let hello = HostHello {
            api_version: crate::API_VERSION.to_string(),
            host: "plugin-api FakeHost".into(),
            commands: Command::KNOWN_KINDS.iter().map(|k| k.to_string()).collect(),
            events: Event::KNOWN_KINDS.iter().map(|k| k.to_string()).collect(),
        };
        let answer = self
            .call(Call::Start(hello.to_envelope()), "start")?
            .ok_or_else(|| CallError::Malformed("no hello".into()))?;
        let hello =
            PluginHello::from_envelope(&answer).map_err(|e| CallError::Malformed(e.to_string()))?;
        self.hello = Some(hello.clone());
        Ok(hello)
    }

    /// Sends a command, as the host would: refused unless the plugin declared its kind.
    pub fn handle(&mut self, command: Command) -> Result<Reply, CallError> {
        let kind = command.kind().to_string();
        let declared = self
            .hello
            .as_ref()
            .is_some_and(|h| h.commands.contains(&kind));
        if !declared {
            return Err(CallError::Undeclared(kind));
        }
        let answer = self
            .call(Call::Handle(command.to_envelope()), &kind)?
            .ok_or_else(|| CallError::Malformed("no reply".into()))?;
        Reply::from_envelope(&answer).map_err(|e| CallError::Malformed(e.to_string()))
    }

    /// Stops the plugin.
    pub fn stop(&mut self) -> Result<(), CallError> {
        self.call(Call::Stop, "stop").map(|_| ())
    }

    /// Decodes and checks what was emitted since the last call; returns every event so far.
    pub fn events(&mut self) -> &[Event] {
        let fresh: Vec<Envelope> = lock(&self.recorder.events).drain(..).collect();
        for envelope in fresh {
            let kind = envelope.kind.to_string();
            match Event::from_envelope(&envelope) {
                Ok(event) => {
                    let declared = self.hello.as_ref().is_none_or(|h| h.events.contains(&kind));
                    if !declared {
                        lock(&self.recorder.violations)
                            .push(Violation::UndeclaredEvent { kind: kind.clone() });
                    }
                    self.seen.push(event);
                }
                Err(e) => lock(&self.recorder.violations).push(Violation::MalformedEvent {
                    kind,
                    error: e.to_string(),
                }),
            }
        }
        &self.seen
    }

    /// Waits (polling) for an event `want` accepts, among every event emitted so far; `None`
    /// after `timeout`.
    pub fn wait_for(&mut self, timeout: Duration, want: impl Fn(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().iter().find(|e| want(e)) {
                return Some(e.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What the plugin logged.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        lock(&self.recorder.logs).clone()
    }

    /// What the plugin did that the host would refuse or drop (after [`FakeHost::events`]).
    pub fn violations(&mut self) -> Vec<Violation> {
        self.events();
        lock(&self.recorder.violations).clone()
    }

    /// Panics listing every violation, if any: end a test with it.
    pub fn assert_clean(&mut self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "the plugin broke the host's rules:\n{}",
            violations
                .iter()
                .map(|v| format!("- {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The plugin's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.recorder.data_dir
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        // The plugin thread ends when the call channel closes (or stays in a call that missed its
        // deadline, as a quarantined plugin would).
        let _ = std::fs::remove_dir_all(&self.recorder.data_dir);
    }
}

fn serve(mut plugin: PluginBox, inbox: &mpsc::Receiver<(Call, mpsc::Sender<Answer>)>) {
    while let Ok((call, reply)) = inbox.recv() {
        let answer = match call {
            Call::Start(hello) => plugin.start(hello).into_result().map(Some),
            Call::Handle(command) => plugin.handle(command).into_result().map(Some),
            Call::Stop => plugin.stop().into_result().map(|()| None),
        };
        // The fake host gave up on this call (deadline): nobody waits for the answer.
        let _ = reply.send(answer);
    }
}

fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "plugin-api-fake-host-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // A directory that cannot be made shows up as the plugin's own I/O error.
    let _ = std::fs::create_dir_all(&dir);
    dir
}
