//! One plugin instance behind its own thread: a bounded request queue, a deadline on every call,
//! and quarantine when the plugin panics or misses a deadline (an isolated plugin that misses one
//! has its process killed and restarted instead). No decoding of messages here.

use plugin_api::{Envelope, ErrorCode, PluginBox, PluginError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many calls may wait for one plugin before new ones are refused as busy.
pub const REQUEST_QUEUE: usize = 64;

/// Why a call to a plugin did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an error.
    #[error("{0}")]
    Plugin(PluginError),
    /// The plugin is quarantined and takes no calls.
    #[error("the plugin is quarantined: {0}")]
    Quarantined(String),
    /// Too many calls are already waiting.
    #[error("the plugin is busy ({REQUEST_QUEUE} calls waiting)")]
    Busy,
    /// The plugin has been stopped.
    #[error("the plugin has been stopped")]
    Stopped,
}

impl CallError {
    /// The error as a `PluginError`, for code that only forwards it.
    pub fn into_plugin_error(self) -> PluginError {
        match self {
            CallError::Plugin(e) => e,
            other => PluginError::new(ErrorCode::UNAVAILABLE, other.to_string()),
        }
    }
}

/// Whether an instance is taking calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Taking calls.
    Running,
    /// Panicked or missed a deadline; takes no more calls.
    Quarantined(String),
    /// Stopped on request.
    Stopped,
}

enum Job {
    Start(Envelope),
    Handle(Envelope),
    Stop,
}

type Answer = Result<Envelope, PluginError>;

struct Request {
    job: Job,
    answer: crossbeam_channel::Sender<Answer>,
}

/// A running plugin instance.
pub struct PluginActor {
    plugin_id: Arc<str>,
    requests: crossbeam_channel::Sender<Request>,
    health: Arc<Mutex<Health>>,
    thread: Option<JoinHandle<()>>,
    /// The runner process of an isolated plugin.
    runner: Option<Arc<crate::plugins::runner::Runner>>,
    /// Callers of an isolated plugin's `handle` waiting or in their call (see [`Self::handle`]).
    direct: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for PluginActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginActor")
            .field("plugin_id", &self.plugin_id)
            .finish_non_exhaustive()
    }
}

impl PluginActor {
    /// Moves the instance onto its own thread.
    pub fn spawn(plugin_id: Arc<str>, instance: PluginBox) -> std::io::Result<Self> {
        let (requests, inbox) = crossbeam_channel::bounded::<Request>(REQUEST_QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("plugin:{plugin_id}"))
            .spawn(move || run(instance, inbox))?;
        Ok(PluginActor {
            plugin_id,
            requests,
            health: Arc::new(Mutex::new(Health::Running)),
            thread: Some(thread),
            runner: None,
            direct: Arc::default(),
        })
    }

    /// Like [`PluginActor::spawn`] for an instance in a runner process: a missed deadline kills
    /// the process (the runner restarts it), and a runner that gives up quarantines the actor.
    pub fn spawn_isolated(
        plugin_id: Arc<str>,
        instance: PluginBox,
        runner: Arc<crate::plugins::runner::Runner>,
    ) -> std::io::Result<Self> {
        let mut actor = Self::spawn(plugin_id.clone(), instance)?;
        let health = actor.health.clone();
        runner.on_give_up(Box::new(move |reason| {
            quarantine(&plugin_id, &health, reason);
        }));
        actor.runner = Some(runner);
        Ok(actor)
    }

    /// The runner of an isolated plugin.
    pub fn runner(&self) -> Option<&Arc<crate::plugins::runner::Runner>> {
        self.runner.as_ref()
    }

    /// The plugin id.
    pub fn plugin_id(&self) -> &str {
        &self.plugin_id
    }

    /// Current health.
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .map(|h| h.clone())
            .unwrap_or(Health::Quarantined("poisoned".into()))
    }

    /// Quarantines the instance: it takes no more calls.
    pub fn quarantine(&self, reason: String) {
        quarantine(&self.plugin_id, &self.health, reason);
    }

    /// `start` with a deadline.
    pub fn start(&self, hello: Envelope, deadline: Duration) -> Result<Envelope, CallError> {
        self.call(Job::Start(hello), "start", deadline)
    }

    /// `handle` with a deadline.
    pub fn handle(&self, command: Envelope, deadline: Duration) -> Result<Envelope, CallError> {
        match &self.runner {
            Some(runner) => self.handle_isolated(runner, command, deadline),
            None => self.call(Job::Handle(command), "handle", deadline),
        }
    }

    /// `handle` of an isolated plugin runs on the caller's thread: it writes the call to the
    /// runner and reads the answer itself, with the deadline as the socket's read timeout (a miss
    /// kills the process), so no hand-off to the actor's thread lies on the way. Calls still go
    /// one at a time (the runner's calls stream is held for a whole call) and at most
    /// [`REQUEST_QUEUE`] may wait.
    fn handle_isolated(
        &self,
        runner: &crate::plugins::runner::Runner,
        command: Envelope,
        deadline: Duration,
    ) -> Result<Envelope, CallError> {
        use std::sync::atomic::Ordering;
        match self.health() {
            Health::Running => {}
            Health::Quarantined(reason) => return Err(CallError::Quarantined(reason)),
            Health::Stopped => return Err(CallError::Stopped),
        }
        if self.direct.fetch_add(1, Ordering::SeqCst) >= REQUEST_QUEUE {
            self.direct.fetch_sub(1, Ordering::SeqCst);
            return Err(CallError::Busy);
        }
        let answer = runner.handle(command, deadline);
        self.direct.fetch_sub(1, Ordering::SeqCst);
        answer.map_err(|error| {
            if error.code == ErrorCode::PANICKED {
                self.quarantine(error.message.to_string());
            }
            CallError::Plugin(error)
        })
    }

    /// `stop` with a deadline; afterwards the instance takes no calls. A quarantined instance is
    /// not called (its thread may be stuck inside plugin code).
    pub fn stop(&mut self, deadline: Duration) -> Result<(), CallError> {
        let result = match self.health() {
            Health::Running => self.call(Job::Stop, "stop", deadline).map(|_| ()),
            Health::Stopped => return Ok(()),
            Health::Quarantined(reason) => Err(CallError::Quarantined(reason)),
        };
        if let Ok(mut health) = self.health.lock()
            && *health == Health::Running
        {
            *health = Health::Stopped;
        }
        if result.is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
        result
    }

    fn call(&self, job: Job, what: &str, deadline: Duration) -> Result<Envelope, CallError> {
        match self.health() {
            Health::Running => {}
            Health::Quarantined(reason) => return Err(CallError::Quarantined(reason)),
            Health::Stopped => return Err(CallError::Stopped),
        }
        let started = Instant::now();
        let (answer, reply) = crossbeam_channel::bounded(1);
        self.requests
            .try_send(Request { job, answer })
            .map_err(|e| match e {
                crossbeam_channel::TrySendError::Full(_) => CallError::Busy,
                crossbeam_channel::TrySendError::Disconnected(_) => CallError::Stopped,
            })?;
        match reply.recv_timeout(deadline.saturating_sub(started.elapsed())) {
            Ok(Ok(envelope)) => Ok(envelope),
            Ok(Err(error)) => {
                if error.code == ErrorCode::PANICKED {
                    self.quarantine(error.message.to_string());
                }
                Err(CallError::Plugin(error))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let reason = format!(
                    "`{what}` did not answer within its deadline of {} ms",
                    deadline.as_millis()
                );
                if let Some(runner) = &self.runner {
                    runner.kill(reason.clone());
                    return Err(CallError::Plugin(PluginError::new(
                        ErrorCode::UNAVAILABLE,
                        format!("{reason}: its process was killed"),
                    )));
                }
                self.quarantine(reason.clone());
                Err(CallError::Quarantined(reason))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(CallError::Stopped),
        }
    }
}

fn quarantine(plugin_id: &str, health: &Mutex<Health>, reason: String) {
    if let Ok(mut health) = health.lock()
        && *health == Health::Running
    {
        tracing::error!(plugin = plugin_id, "quarantined: {reason}");
        *health = Health::Quarantined(reason);
    }
}

fn run(mut instance: PluginBox, inbox: crossbeam_channel::Receiver<Request>) {
    while let Ok(Request { job, answer }) = inbox.recv() {
        let (result, last) = match job {
            Job::Start(hello) => (instance.start(hello).into_result(), false),
            Job::Handle(command) => (instance.handle(command).into_result(), false),
            Job::Stop => (
                instance.stop().into_result().map(|()| empty_envelope()),
                true,
            ),
        };
        // The caller may have given up (deadline); the answer is then dropped.
        let _ = answer.try_send(result);
        if last {
            break;
        }
    }
}

fn empty_envelope() -> Envelope {
    Envelope {
        kind: "done".into(),
        schema: 1,
        bytes: b"{}".to_vec().into(),
    }
}
