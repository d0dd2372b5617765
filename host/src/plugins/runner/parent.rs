//! The host's side of a plugin runner: starting `agentdesk plugin-runner`, speaking frames to it,
//! noticing its end, restarting it with back-off and giving up after too many crashes.
//!
//! To the supervisor an isolated plugin is a [`PluginBox`] like any other: [`RemotePlugin`]
//! implements the plugin trait by forwarding each call, so the actor, its deadlines and the
//! reports stay one code path. What only a process has — an exit, a restart — lives here.

use super::child::{ExitReport, RunnerArgs, SUBCOMMAND};
use super::frame::{FrameError, FromRunner, ToRunner, read_frame, write_frame};
use crate::config::RunnerLimits;
use crate::plugins::host_services::{HostSide, PluginMetrics, RawEvent};
use abi_stable::std_types::{RResult, RStr};
use plugin_api::{Envelope, ErrorCode, HostServices, LogLevel, Plugin, PluginBox, PluginError};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::{ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How many lines of a runner's standard error are kept for the exit reason.
const STDERR_TAIL: usize = 6;

/// How long the reader waits for room in the host's event queue before it drops an event.
const EVENT_WAIT: Duration = Duration::from_secs(1);

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
struct Creation {
    config: Envelope,
    data_dir: String,
    events: crossbeam_channel::Sender<RawEvent>,
    metrics: Arc<PluginMetrics>,
    services: HostSide,
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

fn unavailable(message: impl Into<String>) -> PluginError {
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

    fn lock_creation(&self) -> std::sync::MutexGuard<'_, Option<Creation>> {
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

    /// A call for the instance: refused while the runner is down or restarting.
    fn call(&self, make: impl FnOnce(u64) -> ToRunner) -> Result<Envelope, PluginError> {
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
        connection.call(make, None)
    }

    fn start(&self, hello: Envelope) -> Result<Envelope, PluginError> {
        let connection = self
            .current()
            .ok_or_else(|| unavailable("its runner process is not running"))?;
        let answer = connection.call(
            |seq| ToRunner::Start {
                seq,
                hello: hello.clone(),
            },
            None,
        )?;
        let mut state = self.lock_state();
        state.hello = Some(hello);
        state.started = true;
        state.up_since = Some(Instant::now());
        connection.ready.store(true, Ordering::SeqCst);
        Ok(answer)
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
    fn ended(&self, connection: &Arc<Connection>, reason: String) {
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
            if let Some(give_up) = self.give_up.lock().ok().as_deref().and_then(Option::as_ref) {
                give_up(verdict);
            }
            return;
        }
        let delay = Duration::from_millis(
            limits
                .restart_backoff_ms
                .saturating_mul(1 << (state.streak - 1).min(16)),
        )
        .min(Duration::from_secs(5));
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

/// One runner process: its input, the answers its reader collects, and how it ended.
struct Connection {
    plugin_id: Arc<str>,
    keeper_pid: u32,
    input: Mutex<std::io::BufWriter<ChildStdin>>,
    answers: Mutex<crossbeam_channel::Receiver<(u64, Result<Envelope, PluginError>)>>,
    seq: AtomicU64,
    /// Start has been replayed (or done): instance calls may go through.
    ready: AtomicBool,
    kill_reason: Mutex<Option<String>>,
    exit: Mutex<Option<String>>,
}

impl Connection {
    fn spawn(spec: &RunnerSpec, runner: Weak<Runner>) -> std::io::Result<Arc<Connection>> {
        let args = RunnerArgs {
            parent_pid: std::process::id() as i32,
            address_space_mb: spec.limits.address_space_mb,
            open_files: spec.limits.open_files,
            event_queue: spec.event_queue,
            worker: false,
        };
        let mut child = std::process::Command::new(&spec.executable)
            .arg(SUBCOMMAND)
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let missing = || std::io::Error::other("a pipe of the runner is missing");
        let input = child.stdin.take().ok_or_else(missing)?;
        let output = child.stdout.take().ok_or_else(missing)?;
        let errors = child.stderr.take().ok_or_else(missing)?;
        let (answers_tx, answers) = crossbeam_channel::unbounded();
        let connection = Arc::new(Connection {
            plugin_id: spec.plugin_id.clone(),
            keeper_pid: child.id(),
            input: Mutex::new(std::io::BufWriter::new(input)),
            answers: Mutex::new(answers),
            seq: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            kill_reason: Mutex::new(None),
            exit: Mutex::new(None),
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (stderr_done, stderr_closed) = crossbeam_channel::bounded::<()>(1);
        let (id, lines) = (spec.plugin_id.clone(), tail.clone());
        std::thread::Builder::new()
            .name(format!("runner-err:{}", spec.plugin_id))
            .spawn(move || {
                relay_stderr(&id, errors, &lines);
                drop(stderr_done);
            })?;
        let reader = connection.clone();
        std::thread::Builder::new()
            .name(format!("runner-in:{}", spec.plugin_id))
            .spawn(move || {
                let end = reader.read_all(output, answers_tx, &runner);
                // The process is gone or being killed: wait for it, then say why it ended.
                if let Some(reason) = end {
                    reader.kill(reason);
                }
                // Its last lines belong in the reason; the keeper closes stderr when it ends.
                if let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stderr_closed.recv_timeout(Duration::from_secs(2))
                {
                    tracing::debug!(plugin = &*reader.plugin_id, "runner stderr still open");
                }
                let status = child.wait();
                let reason = reader.exit_reason(status, &tail);
                if let Ok(mut exit) = reader.exit.lock() {
                    *exit = Some(reason.clone());
                }
                // Dropping the sender (inside read_all) already woke a waiting call; it reads
                // `exit` now that it is set.
                if let Some(runner) = runner.upgrade() {
                    runner.ended(&reader, reason);
                }
            })?;
        Ok(connection)
    }

    /// Reads frames until the process closes its output; returns a reason to kill it if it
    /// broke the protocol.
    fn read_all(
        self: &Arc<Self>,
        output: std::process::ChildStdout,
        answers: crossbeam_channel::Sender<(u64, Result<Envelope, PluginError>)>,
        runner: &Weak<Runner>,
    ) -> Option<String> {
        let mut output = std::io::BufReader::with_capacity(64 * 1024, output);
        let mut buf = Vec::new();
        let plugin = &*self.plugin_id;
        // Where events go, once the instance exists.
        let mut sink: Option<(crossbeam_channel::Sender<RawEvent>, Arc<PluginMetrics>)> = None;
        loop {
            let message =
                match read_frame(&mut output, &mut buf).and_then(|()| FromRunner::decode(&buf)) {
                    Ok(message) => message,
                    Err(FrameError::Closed) => return None,
                    Err(FrameError::Io(e)) => {
                        tracing::debug!(plugin, "runner output ended: {e}");
                        return None;
                    }
                    Err(e) => return Some(format!("it broke the runner protocol: {e}")),
                };
            match message {
                FromRunner::Answer { seq, answer } => {
                    if answers.send((seq, answer)).is_err() {
                        return None;
                    }
                }
                FromRunner::Emit(envelope) => {
                    if sink.is_none() {
                        let runner = runner.upgrade()?;
                        let creation = runner.lock_creation();
                        let Some(c) = creation.as_ref() else {
                            return Some("it emitted an event before it was created".into());
                        };
                        sink = Some((c.events.clone(), c.metrics.clone()));
                    }
                    let Some((events, metrics)) = &sink else {
                        return None;
                    };
                    let event = RawEvent {
                        plugin_id: self.plugin_id.clone(),
                        envelope,
                    };
                    let counter = match events.send_timeout(event, EVENT_WAIT) {
                        Ok(()) => &metrics.events_emitted,
                        Err(e) => {
                            tracing::warn!(plugin, "an event was dropped: {e}");
                            &metrics.events_dropped
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                FromRunner::Log { level, message } => {
                    match runner.upgrade() {
                        Some(runner) => match runner.lock_creation().as_ref() {
                            Some(c) => c.services.log(LogLevel(level), RStr::from(&*message)),
                            None => tracing::info!(target: "plugin", plugin, "{message}"),
                        },
                        None => return None,
                    };
                }
                FromRunner::Request { id, request } => {
                    let answer = match runner.upgrade() {
                        Some(runner) => match runner.lock_creation().as_ref() {
                            Some(c) => c.services.request(request).into_result(),
                            None => Err(PluginError::unsupported(request.kind.as_str())),
                        },
                        None => return None,
                    };
                    if let Err(e) = self.send(&ToRunner::RequestAnswer { id, answer }) {
                        tracing::warn!(plugin, "a request answer was not delivered: {e}");
                    }
                }
            }
        }
    }

    fn send(&self, message: &ToRunner) -> Result<(), FrameError> {
        let mut input = self.input.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *input, &message.encode())?;
        input.flush()?;
        Ok(())
    }

    /// One call and its answer; with a deadline, a late answer kills the process.
    fn call(
        &self,
        make: impl FnOnce(u64) -> ToRunner,
        deadline: Option<Duration>,
    ) -> Result<Envelope, PluginError> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if let Err(e) = self.send(&make(seq)) {
            tracing::debug!(
                plugin = &*self.plugin_id,
                "writing to the runner failed: {e}"
            );
            return Err(self.died(&answers));
        }
        let started = Instant::now();
        loop {
            let answer = match deadline {
                None => answers.recv().ok(),
                Some(d) => match answers.recv_timeout(d.saturating_sub(started.elapsed())) {
                    Ok(answer) => Some(answer),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        self.kill(format!(
                            "it did not answer within its deadline of {} ms",
                            d.as_millis()
                        ));
                        None
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
                },
            };
            match answer {
                Some((s, answer)) if s == seq => return answer,
                Some((s, _)) => {
                    tracing::warn!(plugin = &*self.plugin_id, "a late answer to call {s}")
                }
                None => return Err(self.died(&answers)),
            }
        }
    }

    /// The error of a call whose process ended; waits briefly for the exit to be known.
    fn died(
        &self,
        answers: &crossbeam_channel::Receiver<(u64, Result<Envelope, PluginError>)>,
    ) -> PluginError {
        // The reader drops its sender when the output closes; the exit follows shortly.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(reason) = self.exit.lock().ok().and_then(|e| e.clone()) {
                return unavailable(format!("its process ended: {reason}"));
            }
            if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
                answers.recv_timeout(Duration::from_millis(5))
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        unavailable("its process ended")
    }

    /// Kills the worker (and with it, through the keeper, everything it started).
    fn kill(&self, reason: String) {
        if let Ok(mut slot) = self.kill_reason.lock()
            && slot.is_none()
        {
            *slot = Some(reason);
        }
        let keeper = self.keeper_pid as i32;
        let children = super::child::children_of(keeper);
        let targets = if children.is_empty() {
            vec![keeper]
        } else {
            children
        };
        for pid in targets {
            if let Err(e) = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            ) && e != nix::errno::Errno::ESRCH
            {
                tracing::warn!(plugin = &*self.plugin_id, "cannot kill process {pid}: {e}");
            }
        }
    }

    fn exit_reason(
        &self,
        status: std::io::Result<std::process::ExitStatus>,
        tail: &Mutex<VecDeque<String>>,
    ) -> String {
        use std::os::unix::process::ExitStatusExt;
        let killed = self.kill_reason.lock().ok().and_then(|k| k.clone());
        let how = match status {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => match ExitReport::from_code(code) {
                    ExitReport::Code(c) => format!("exited with code {c}"),
                    ExitReport::Signal(n) => format!("killed by {}", signal_words(n)),
                },
                (None, Some(n)) => format!("its keeper was killed by {}", signal_words(n)),
                (None, None) => "ended".into(),
            },
            Err(e) => format!("ended (its status is unknown: {e})"),
        };
        let mut reason = match killed {
            Some(killed) => format!("{killed}; {how}"),
            None => how,
        };
        let lines: Vec<String> = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        if !lines.is_empty() {
            reason.push_str(&format!("; last output: {}", lines.join(" | ")));
        }
        reason
    }
}

/// `SIGSEGV (segmentation fault)` for 11.
pub fn signal_words(n: i32) -> String {
    use nix::sys::signal::Signal;
    let Ok(signal) = Signal::try_from(n) else {
        return format!("signal {n}");
    };
    let what = match signal {
        Signal::SIGSEGV => "segmentation fault",
        Signal::SIGABRT => "abort",
        Signal::SIGKILL => "killed",
        Signal::SIGBUS => "bus error",
        Signal::SIGILL => "illegal instruction",
        Signal::SIGFPE => "arithmetic error",
        Signal::SIGTERM => "terminated",
        Signal::SIGXCPU => "CPU time limit",
        _ => return signal.as_str().to_string(),
    };
    format!("{} ({what})", signal.as_str())
}

fn relay_stderr(plugin: &str, errors: std::process::ChildStderr, tail: &Mutex<VecDeque<String>>) {
    for line in std::io::BufReader::new(errors).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        tracing::warn!(target: "plugin", plugin, "runner: {line}");
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
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
        guarded(|| self.runner.call(|seq| ToRunner::Handle { seq, command }))
    }

    fn stop(&mut self) -> RResult<(), PluginError> {
        catch_unwind(AssertUnwindSafe(|| self.runner.stop()))
            .unwrap_or_else(|_| Err(PluginError::failed("the runner proxy failed")))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_for_the_admin() {
        assert_eq!(signal_words(11), "SIGSEGV (segmentation fault)");
        assert_eq!(signal_words(6), "SIGABRT (abort)");
        assert_eq!(signal_words(10), "SIGUSR1");
        assert_eq!(signal_words(200), "signal 200");
    }
}
