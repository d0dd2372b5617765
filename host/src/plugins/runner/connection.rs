//! One runner process as the host sees it: spawning it, writing calls, reading answers, events,
//! logs and requests, killing it, and turning its end into a reason for the admin.
//!
//! Two Unix sockets join it to the host. On the calls stream (the runner's standard input) the
//! calling thread writes a call and reads its answer itself: no other thread lies on a call's way.
//! On the events stream (its standard output) a reader thread takes events, log lines and requests
//! and writes the requests' answers back. An answer carries how many events the runner queued
//! before it; the caller waits until the reader has taken that many, so an event emitted during a
//! call still reaches the host before the call returns, as in-process.

use super::frame::{FrameError, FromRunner, ToRunner, read_frame, write_frame};
use super::keeper::{ExitReport, RunnerArgs, SUBCOMMAND};
use super::parent::{Runner, RunnerSpec, unavailable};
use crate::plugins::host_services::{PluginMetrics, RawEvent};
use abi_stable::std_types::RStr;
use plugin_api::{Envelope, HostServices, LogLevel, PluginError};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How many lines of a runner's standard error are kept for the exit reason.
const STDERR_TAIL: usize = 6;

/// How long the reader waits for room in the host's event queue before it drops an event.
const EVENT_WAIT: Duration = Duration::from_secs(1);

/// The calls stream, held by the thread making a call for the whole call.
struct Calls {
    output: std::io::BufWriter<UnixStream>,
    input: std::io::BufReader<UnixStream>,
    buf: Vec<u8>,
    /// The read timeout set on the socket.
    timeout: Option<Duration>,
}

/// How many events the reader has taken from the events stream, and whether it has stopped.
#[derive(Default)]
struct Taken {
    count: AtomicU64,
    waiting: AtomicBool,
    lock: Mutex<bool>,
    changed: Condvar,
}

impl Taken {
    fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.changed.notify_all();
        }
    }

    fn end(&self) {
        let mut ended = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        *ended = true;
        self.changed.notify_all();
    }

    /// Waits until `n` events were taken or the reader stopped.
    fn wait_for(&self, n: u64) {
        if self.count.load(Ordering::SeqCst) >= n {
            return;
        }
        self.waiting.store(true, Ordering::SeqCst);
        let mut ended = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*ended && self.count.load(Ordering::SeqCst) < n {
            ended = match self.changed.wait_timeout(ended, Duration::from_millis(50)) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
}

/// One runner process: its two streams, the events its reader took, and how it ended.
pub(super) struct Connection {
    plugin_id: Arc<str>,
    /// The keeper's process id.
    pub(super) keeper_pid: u32,
    calls: Mutex<Calls>,
    /// The events stream's writing half: answers to the plugin's requests.
    requests_out: Mutex<std::io::BufWriter<UnixStream>>,
    taken: Taken,
    seq: AtomicU64,
    /// Start has been replayed (or done): instance calls may go through.
    pub(super) ready: AtomicBool,
    kill_reason: Mutex<Option<String>>,
    exit: Mutex<Option<String>>,
}

impl Connection {
    pub(super) fn spawn(
        spec: &RunnerSpec,
        runner: Weak<Runner>,
    ) -> std::io::Result<Arc<Connection>> {
        let args = RunnerArgs {
            parent_pid: std::process::id() as i32,
            address_space_mb: spec.limits.address_space_mb,
            open_files: spec.limits.open_files,
            event_queue: spec.event_queue,
            worker: false,
        };
        // Both sockets are close-on-exec here; the child gets its ends as fds 0 and 1 only.
        let (calls, runner_calls) = UnixStream::pair()?;
        let (events, runner_events) = UnixStream::pair()?;
        let mut child = std::process::Command::new(&spec.executable)
            .arg(SUBCOMMAND)
            .args(args.to_args())
            .stdin(Stdio::from(OwnedFd::from(runner_calls)))
            .stdout(Stdio::from(OwnedFd::from(runner_events)))
            .stderr(Stdio::piped())
            .spawn()?;
        let missing = || std::io::Error::other("a pipe of the runner is missing");
        let errors = child.stderr.take().ok_or_else(missing)?;
        let calls = Calls {
            output: std::io::BufWriter::new(calls.try_clone()?),
            input: std::io::BufReader::with_capacity(64 * 1024, calls),
            buf: Vec::new(),
            timeout: None,
        };
        let requests_out = std::io::BufWriter::new(events.try_clone()?);
        let connection = Arc::new(Connection {
            plugin_id: spec.plugin_id.clone(),
            keeper_pid: child.id(),
            calls: Mutex::new(calls),
            requests_out: Mutex::new(requests_out),
            taken: Taken::default(),
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
                let end = reader.read_all(events, &runner);
                reader.taken.end();
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
                // A waiting call saw its stream end; it reads `exit` now that it is set.
                if let Some(runner) = runner.upgrade() {
                    runner.ended(&reader, reason);
                }
            })?;
        Ok(connection)
    }

    /// Reads the events stream until the process closes it; returns a reason to kill it if it
    /// broke the protocol.
    fn read_all(self: &Arc<Self>, output: UnixStream, runner: &Weak<Runner>) -> Option<String> {
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
                FromRunner::Answer { seq, .. } => {
                    return Some(format!(
                        "it broke the runner protocol: the answer to call {seq} came on the \
                         events stream"
                    ));
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
                    self.taken.add();
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
                    if let Err(e) = self.answer_request(&ToRunner::RequestAnswer { id, answer }) {
                        tracing::warn!(plugin, "a request answer was not delivered: {e}");
                    }
                }
            }
        }
    }

    fn answer_request(&self, message: &ToRunner) -> Result<(), FrameError> {
        let mut output = self.requests_out.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *output, &message.encode())?;
        output.flush()?;
        Ok(())
    }

    /// One call and its answer, read on this thread; with a deadline, a late answer kills the
    /// process.
    pub(super) fn call(
        &self,
        make: impl FnOnce(u64) -> ToRunner,
        deadline: Option<Duration>,
    ) -> Result<Envelope, PluginError> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let calls = &mut *calls;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let written = write_frame(&mut calls.output, &make(seq).encode())
            .and_then(|()| Ok(calls.output.flush()?));
        if let Err(e) = written {
            tracing::debug!(
                plugin = &*self.plugin_id,
                "writing to the runner failed: {e}"
            );
            return Err(self.died());
        }
        let started = Instant::now();
        loop {
            // The socket's read timeout is the time left (at least a millisecond: zero is none).
            let timeout = deadline.map(|d| {
                d.saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1))
            });
            if timeout != calls.timeout {
                if let Err(e) = calls.input.get_ref().set_read_timeout(timeout) {
                    tracing::warn!(plugin = &*self.plugin_id, "cannot set a deadline: {e}");
                }
                calls.timeout = timeout;
            }
            let read = read_frame(&mut calls.input, &mut calls.buf)
                .and_then(|()| FromRunner::decode(&calls.buf));
            match read {
                Ok(FromRunner::Answer {
                    seq: s,
                    events_before,
                    answer,
                }) if s == seq => {
                    self.taken.wait_for(events_before);
                    return answer;
                }
                Ok(FromRunner::Answer { seq: s, .. }) => {
                    tracing::warn!(plugin = &*self.plugin_id, "a late answer to call {s}")
                }
                Ok(_) => {
                    self.kill(
                        "it broke the runner protocol: only answers belong on the calls stream"
                            .into(),
                    );
                    return Err(self.died());
                }
                Err(FrameError::Io(e)) if timed_out(&e) => {
                    let d = deadline.unwrap_or_default();
                    self.kill(format!(
                        "it did not answer within its deadline of {} ms",
                        d.as_millis()
                    ));
                    return Err(self.died());
                }
                Err(FrameError::Closed | FrameError::Io(_)) => return Err(self.died()),
                Err(e) => {
                    self.kill(format!("it broke the runner protocol: {e}"));
                    return Err(self.died());
                }
            }
        }
    }

    /// The error of a call whose process ended; waits briefly for the exit to be known.
    fn died(&self) -> PluginError {
        // The reader sets the exit once the process is gone, shortly after its streams close.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(reason) = self.exit.lock().ok().and_then(|e| e.clone()) {
                return unavailable(format!("its process ended: {reason}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        unavailable("its process ended")
    }

    /// Why its process ended, once it has (and the reader has seen it go).
    pub(super) fn exit(&self) -> Option<String> {
        self.exit.lock().ok().and_then(|e| e.clone())
    }

    /// Kills the worker (and with it, through the keeper, everything it started).
    pub(super) fn kill(&self, reason: String) {
        if let Ok(mut slot) = self.kill_reason.lock()
            && slot.is_none()
        {
            *slot = Some(reason);
        }
        let keeper = self.keeper_pid as i32;
        let children = super::keeper::children_of(keeper);
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

/// Whether a read on a socket with a read timeout ran out of time.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
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
        // A backtrace (RUST_BACKTRACE set) would push the line that says what happened out.
        if is_backtrace_line(&line) {
            continue;
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// A line of a Rust backtrace: `stack backtrace:`, `  12: path::to::fn`, `      at src/x.rs:1`
/// or the note after it.
fn is_backtrace_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    let frame = trimmed
        .split_once(": ")
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    frame
        || trimmed.starts_with("at ")
        || trimmed == "stack backtrace:"
        || trimmed.starts_with("note: Some details are omitted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtraces_stay_out_of_the_exit_reason() {
        for line in [
            "stack backtrace:",
            "   0: __rustc::rust_begin_unwind",
            "  23: agentdesk_host::plugins::runner::worker::serve",
            "             at ./src/lib.rs:12:5",
            "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
        ] {
            assert!(is_backtrace_line(line), "{line}");
        }
        for line in [
            "memory allocation of 1048576 bytes failed",
            "thread 'main' has overflowed its stack",
            "plugin-runner: bad input from the host: i/o: 3: broken",
        ] {
            assert!(!is_backtrace_line(line), "{line}");
        }
    }

    #[test]
    fn signals_are_named_for_the_admin() {
        assert_eq!(signal_words(11), "SIGSEGV (segmentation fault)");
        assert_eq!(signal_words(6), "SIGABRT (abort)");
        assert_eq!(signal_words(10), "SIGUSR1");
        assert_eq!(signal_words(200), "signal 200");
    }
}
