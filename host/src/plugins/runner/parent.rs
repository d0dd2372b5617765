//! The host's side of a plugin runner: starting `agentdesk plugin-runner`, speaking frames to it,
//! noticing its end, restarting it with back-off and giving up after too many crashes.
//!
//! To the supervisor an isolated plugin is a [`PluginBox`] like any other: [`RemotePlugin`]
//! implements the plugin trait by forwarding each call, so the actor, its deadlines and the
//! reports stay one code path. What only a process has — an exit, a restart — lives here.

use super::connection::Connection;
use super::frame::ToRunner;
use crate::config::RunnerLimits;
use crate::plugins::host_services::{HostSide, PluginMetrics, RawEvent};
use abi_stable::std_types::RResult;
use plugin_api::{Envelope, ErrorCode, Plugin, PluginBox, PluginError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// What is needed to start a runner for one plugin.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// The plugin id.
    pub plugin_id: Arc<str>,
    /// The executable with the `plugin-runner` subcommand.
    pub executable: PathBuf,
    /// The plugin's library.
    pub library: PathBuf,
    /// Process limits and the restart policy.
    pub limits: RunnerLimits,
    /// Events that may wait inside the runner.
    pub event_queue: usize,
    /// The deadline of `start` when it is replayed after a restart.
    pub start_deadline: Duration,
}

/// What `create` needs, kept to replay it after a restart.
pub(super) struct Creation {
    config: Envelope,
    data_dir: String,
    /// Where the plugin's events go.
    pub(super) events: crossbeam_channel::Sender<RawEvent>,
    /// Its counters.
    pub(super) metrics: Arc<PluginMetrics>,
    /// Its host services (log, request), as in-process.
    pub(super) services: HostSide,
}

/// A runner's restarts and exits, for the admin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerReport {
    /// Restarts after a crash since the host started.
    pub restarts: u32,
    /// Why its process last ended, if it has.
    pub last_exit: Option<String>,
}

/// Quarantines the plugin's actor; handed over by the supervisor.
pub type GiveUp = Box<dyn Fn(String) + Send + Sync>;

#[derive(Default)]
struct State {
    restarts: u32,
    streak: u32,
    last_exit: Option<String>,
    up_since: Option<Instant>,
    hello: Option<Envelope>,
    started: bool,
    stopping: bool,
    given_up: bool,
    crashes: Vec<String>,
}

/// One isolated plugin's runner, across restarts.
pub struct Runner {
    spec: RunnerSpec,
    me: Weak<Runner>,
    connection: Mutex<Option<Arc<Connection>>>,
    creation: Mutex<Option<Creation>>,
    state: Mutex<State>,
    give_up: Mutex<Option<GiveUp>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("plugin_id", &self.spec.plugin_id)
            .finish_non_exhaustive()
    }
}

pub(super) fn unavailable(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::UNAVAILABLE, message)
}

impl Runner {
    /// Starts the runner and has it open and describe the library (the same checks as in the
    /// host); returns the runner and the descriptor envelope, or the plugin's refusal.
    pub fn launch(spec: RunnerSpec) -> Result<(Arc<Runner>, Envelope), PluginError> {
        let runner = Arc::new_cyclic(|me| Runner {
            spec,
            me: me.clone(),
            connection: Mutex::new(None),
            creation: Mutex::new(None),
            state: Mutex::new(State::default()),
            give_up: Mutex::new(None),
        });
        let connection = runner.connect()?;
        let library = runner.spec.library.display().to_string();
        let descriptor = connection.call(|seq| ToRunner::Describe { seq, library }, None)?;
        Ok((runner, descriptor))
    }

    /// Has the runner create the instance; keeps what it needs to do it again after a restart.
    pub fn create(
        &self,
        config: Envelope,
        data_dir: PathBuf,
        events: crossbeam_channel::Sender<RawEvent>,
        metrics: Arc<PluginMetrics>,
    ) -> Result<PluginBox, PluginError> {
        let services = HostSide::new(
            self.spec.plugin_id.clone(),
            events.clone(),
            data_dir.clone(),
            metrics.clone(),
        );
        *self.lock_creation() = Some(Creation {
            config,
            data_dir: data_dir.display().to_string(),
            events,
            metrics,
            services,
        });
        self.replay_create()?;
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| unavailable("the runner is gone"))?;
        Ok(plugin_api::Plugin_TO::from_value(
            RemotePlugin { runner: me },
            abi_stable::sabi_trait::TD_Opaque,
        ))
    }

    /// What to do when the plugin keeps dying: quarantine it with the reason.
    pub fn on_give_up(&self, give_up: GiveUp) {
        if let Ok(mut slot) = self.give_up.lock() {
            *slot = Some(give_up);
        }
    }

    /// Restarts and the last exit.
    pub fn report(&self) -> RunnerReport {
        let state = self.lock_state();
        RunnerReport {
            restarts: state.restarts,
            last_exit: state.last_exit.clone(),
        }
    }

    /// The crashes since the last call (each with its reason), for the agents' notices.
    pub fn take_crashes(&self) -> Vec<String> {
        std::mem::take(&mut self.lock_state().crashes)
    }

    /// The keeper's process id while a runner process is up.
    pub fn pid(&self) -> Option<u32> {
        self.current().map(|c| c.keeper_pid)
    }

    /// Kills the runner's worker (a missed deadline): the keeper cleans up, the exit is reported
    /// with `reason` and the runner is restarted like after any crash.
    pub fn kill(&self, reason: String) {
        if let Some(connection) = self.current() {
            connection.kill(reason);
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lock_creation(&self) -> std::sync::MutexGuard<'_, Option<Creation>> {
        self.creation.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Option<Arc<Connection>> {
        self.connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn connect(&self) -> Result<Arc<Connection>, PluginError> {
        let connection = Connection::spawn(&self.spec, self.me.clone())
            .map_err(|e| unavailable(format!("cannot start its runner process: {e}")))?;
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    fn replay_create(&self) -> Result<(), PluginError> {
        let connection = self
            .current()
            .ok_or_else(|| unavailable("its runner process is not running"))?;
        // Cloned out: the reader needs the creation while the plugin runs `create`.
        let (config, data_dir) = match self.lock_creation().as_ref() {
            Some(c) => (c.config.clone(), c.data_dir.clone()),
            None => return Err(unavailable("it was never created")),
        };
        connection
            .call(
                |seq| ToRunner::Create {
                    seq,
                    data_dir,
                    config,
                },
                Some(self.spec.start_deadline),
            )
            .map(|_| ())
    }

    /// `handle` on the calling thread with `deadline` (a miss kills the process, which is then
    /// restarted like after any crash); refused while the runner is down or restarting.
    pub fn handle(&self, command: Envelope, deadline: Duration) -> Result<Envelope, PluginError> {
        self.call(|seq| ToRunner::Handle { seq, command }, Some(deadline))
    }

    /// A call for the instance: refused while the runner is down or restarting.
    fn call(
        &self,
        make: impl FnOnce(u64) -> ToRunner,
        deadline: Option<Duration>,
    ) -> Result<Envelope, PluginError> {
        let connection = match self.current() {
            Some(c) if c.ready.load(Ordering::SeqCst) => c,
            _ => {
                let state = self.lock_state();
                let why = state.last_exit.as_deref().unwrap_or("not started");
                return Err(unavailable(format!(
                    "its process is being restarted (it ended: {why})"
                )));
            }
        };
        connection.call(make, deadline)
    }

    /// The first `start`. A process that dies in it is started again (describe, create, start)
    /// with the same back-off as after any crash, within the start deadline; one that keeps
    /// dying is given up (quarantined) with the reason, like a crash later on.
    fn start(&self, hello: Envelope) -> Result<Envelope, PluginError> {
        let began = Instant::now();
        loop {
            let connection = self
                .current()
                .ok_or_else(|| unavailable("its runner process is not running"))?;
            let error = match connection.call(
                |seq| ToRunner::Start {
                    seq,
                    hello: hello.clone(),
                },
                None,
            ) {
                Ok(answer) => {
                    let mut state = self.lock_state();
                    state.hello = Some(hello);
                    state.started = true;
                    state.up_since = Some(Instant::now());
                    connection.ready.store(true, Ordering::SeqCst);
                    return Ok(answer);
                }
                Err(e) => e,
            };
            // An error the plugin answered is its refusal to start, not a crash.
            let Some(reason) = connection.exit() else {
                return Err(error);
            };
            let delay = {
                let mut state = self.lock_state();
                state.last_exit = Some(reason.clone());
                state.streak += 1;
                state.crashes.push(reason.clone());
                let delay = self.backoff(state.streak);
                let late = began.elapsed() + delay >= self.spec.start_deadline;
                if state.streak > self.spec.limits.max_restarts || late || state.stopping {
                    state.given_up = true;
                    let verdict = format!(
                        "its process ended {} times in a row during start; the last time: {reason}",
                        state.streak
                    );
                    drop(state);
                    tracing::error!(plugin = &*self.spec.plugin_id, "{verdict}");
                    self.give_up(verdict.clone());
                    return Err(unavailable(verdict));
                }
                delay
            };
            tracing::warn!(
                plugin = &*self.spec.plugin_id,
                "its process ended during start ({reason}); starting it again in {} ms",
                delay.as_millis()
            );
            std::thread::sleep(delay);
            let connection = self.connect()?;
            let library = self.spec.library.display().to_string();
            let deadline = Some(self.spec.start_deadline);
            connection.call(|seq| ToRunner::Describe { seq, library }, deadline)?;
            self.replay_create()?;
            self.lock_state().restarts += 1;
        }
    }

    /// The wait before the restart after `streak` crashes in a row.
    fn backoff(&self, streak: u32) -> Duration {
        Duration::from_millis(
            self.spec
                .limits
                .restart_backoff_ms
                .saturating_mul(1 << streak.saturating_sub(1).min(16)),
        )
        .min(Duration::from_secs(5))
    }

    fn give_up(&self, verdict: String) {
        if let Some(give_up) = self.give_up.lock().ok().as_deref().and_then(Option::as_ref) {
            give_up(verdict);
        }
    }

    fn stop(&self) -> Result<(), PluginError> {
        self.lock_state().stopping = true;
        let Some(connection) = self.current() else {
            return Ok(());
        };
        connection
            .call(|seq| ToRunner::Stop { seq }, None)
            .map(|_| ())
    }

    /// The reader of `connection` saw its process end with `reason`.
    pub(super) fn ended(&self, connection: &Arc<Connection>, reason: String) {
        {
            let mut current = self.connection.lock().unwrap_or_else(|e| e.into_inner());
            match current.as_ref() {
                Some(c) if Arc::ptr_eq(c, connection) => *current = None,
                _ => return,
            }
        }
        let mut state = self.lock_state();
        state.last_exit = Some(reason.clone());
        if state.stopping || !state.started || state.given_up {
            tracing::info!(plugin = &*self.spec.plugin_id, "runner ended: {reason}");
            return;
        }
        let limits = self.spec.limits;
        let healthy = Duration::from_secs(limits.healthy_after_secs);
        if state.up_since.is_some_and(|t| t.elapsed() >= healthy) {
            state.streak = 0;
        }
        state.streak += 1;
        state.crashes.push(reason.clone());
        if state.streak > limits.max_restarts {
            state.given_up = true;
            let verdict = format!(
                "its process ended {} times in a row; the last time: {reason}",
                state.streak
            );
            drop(state);
            tracing::error!(plugin = &*self.spec.plugin_id, "{verdict}");
            self.give_up(verdict);
            return;
        }
        let delay = self.backoff(state.streak);
        drop(state);
        tracing::warn!(
            plugin = &*self.spec.plugin_id,
            "its process ended ({reason}); restarting in {} ms",
            delay.as_millis()
        );
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("restart:{}", self.spec.plugin_id))
            .spawn(move || {
                std::thread::sleep(delay);
                if let Some(runner) = me.upgrade() {
                    runner.restart();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(plugin = &*self.spec.plugin_id, "cannot restart: {e}");
        }
    }

    /// Starts a new process and replays describe, create and start. A failure ends that process,
    /// which counts as one more crash.
    fn restart(&self) {
        {
            let state = self.lock_state();
            if state.stopping || state.given_up {
                return;
            }
        }
        let hello = self.lock_state().hello.clone();
        let replay = || -> Result<Arc<Connection>, PluginError> {
            let connection = self.connect()?;
            let library = self.spec.library.display().to_string();
            let deadline = Some(self.spec.start_deadline);
            connection.call(|seq| ToRunner::Describe { seq, library }, deadline)?;
            self.replay_create()?;
            let hello = hello.ok_or_else(|| unavailable("it was never started"))?;
            connection.call(|seq| ToRunner::Start { seq, hello }, deadline)?;
            Ok(connection)
        };
        match replay() {
            Ok(connection) => {
                let mut state = self.lock_state();
                state.restarts += 1;
                state.up_since = Some(Instant::now());
                connection.ready.store(true, Ordering::SeqCst);
                tracing::warn!(
                    plugin = &*self.spec.plugin_id,
                    restarts = state.restarts,
                    "its process was restarted"
                );
            }
            Err(e) => match self.current() {
                Some(connection) => connection.kill(format!("the restart failed: {e}")),
                None => tracing::warn!(plugin = &*self.spec.plugin_id, "restart failed: {e}"),
            },
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(connection) = self.current() {
            connection.kill("the host let go of it".into());
        }
    }
}

/// The instance as the actor holds it: every call goes to the runner process.
pub struct RemotePlugin {
    runner: Arc<Runner>,
}

fn guarded(f: impl FnOnce() -> Result<Envelope, PluginError>) -> RResult<Envelope, PluginError> {
    // Host code behind the plugin vtable must not unwind either.
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(PluginError::failed("the runner proxy failed")))
        .into()
}

impl Plugin for RemotePlugin {
    fn start(&mut self, hello: Envelope) -> RResult<Envelope, PluginError> {
        guarded(|| self.runner.start(hello))
    }

    fn handle(&mut self, command: Envelope) -> RResult<Envelope, PluginError> {
        guarded(|| {
            self.runner
                .call(|seq| ToRunner::Handle { seq, command }, None)
        })
    }

    fn stop(&mut self) -> RResult<(), PluginError> {
        catch_unwind(AssertUnwindSafe(|| self.runner.stop()))
            .unwrap_or_else(|_| Err(PluginError::failed("the runner proxy failed")))
            .into()
    }
}
