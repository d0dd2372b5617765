//! The runner's own side, `agentdesk plugin-runner`: a keeper process that reaps everything the
//! plugin leaves behind, and the worker it starts that loads the plugin and answers the host.
//!
//! Two processes because the one that crashes cannot clean up after itself. The keeper is a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`): whatever the worker spawns, even a `setsid` daemon, is
//! re-parented to the keeper when its parent dies, and the keeper kills and reaps all of it when
//! the worker dies or the host does (it watches its parent id). The worker has
//! `PR_SET_PDEATHSIG(SIGKILL)` towards the keeper, an address-space and open-files limit, and no
//! core dumps. It speaks [`super::frame`] on its standard input and output; its standard error
//! goes to the host's log. The keeper's exit status reports the worker's: see [`ExitReport`].

use super::frame::{FromRunner, MAX_FRAME_BYTES, ToRunner, read_frame, write_frame};
use crate::plugins::loader;
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid};
use plugin_api::{Envelope, ErrorCode, HostServices, LogLevel, Message, PluginBox, PluginError};
use std::collections::HashMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The subcommand word.
pub const SUBCOMMAND: &str = "plugin-runner";

/// How the keeper's exit code carries the worker's end: an exit code `c` of the worker is the
/// keeper's `min(c, 191)`; death by signal `n` is `192 + n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReport {
    /// The worker exited with this code (191 stands for 191 and above).
    Code(i32),
    /// The worker was killed by this signal number.
    Signal(i32),
}

impl ExitReport {
    const SIGNAL_BASE: i32 = 192;

    /// The keeper's exit code for it.
    pub fn to_code(self) -> i32 {
        match self {
            ExitReport::Code(c) => c.clamp(0, Self::SIGNAL_BASE - 1),
            ExitReport::Signal(n) => Self::SIGNAL_BASE + n.clamp(0, 63),
        }
    }

    /// Reads a keeper's exit code.
    pub fn from_code(code: i32) -> Self {
        if code >= Self::SIGNAL_BASE {
            ExitReport::Signal(code - Self::SIGNAL_BASE)
        } else {
            ExitReport::Code(code)
        }
    }
}

/// What the host passes on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerArgs {
    /// The process that must stay this process's parent (the host for the keeper, the keeper for
    /// the worker); when it is gone the runner goes too.
    pub parent_pid: i32,
    /// RLIMIT_AS in MiB, 0 for none.
    pub address_space_mb: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// How many events may wait to be written to the host.
    pub event_queue: usize,
    /// Whether this is the worker.
    pub worker: bool,
}

impl RunnerArgs {
    /// The arguments after the subcommand word.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--parent-pid".to_string(),
            self.parent_pid.to_string(),
            "--address-space-mb".into(),
            self.address_space_mb.to_string(),
            "--open-files".into(),
            self.open_files.to_string(),
            "--event-queue".into(),
            self.event_queue.to_string(),
        ];
        if self.worker {
            args.push("--worker".into());
        }
        args
    }

    /// Parses the arguments after the subcommand word.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = RunnerArgs {
            parent_pid: 0,
            address_space_mb: 0,
            open_files: 1024,
            event_queue: 1024,
            worker: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{name} needs a number"))
            };
            match arg.as_str() {
                "--worker" => parsed.worker = true,
                "--parent-pid" => {
                    parsed.parent_pid =
                        i32::try_from(value(arg)?).map_err(|_| "--parent-pid is out of range")?
                }
                "--address-space-mb" => parsed.address_space_mb = value(arg)?,
                "--open-files" => parsed.open_files = value(arg)?,
                "--event-queue" => parsed.event_queue = value(arg)?.max(1) as usize,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if parsed.parent_pid <= 1 {
            return Err("--parent-pid is required".into());
        }
        Ok(parsed)
    }
}

/// `agentdesk plugin-runner ARGS`: runs the keeper or the worker; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let args = match RunnerArgs::parse(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("plugin-runner: {e} (this command is started by the agentdesk host only)");
            return 2;
        }
    };
    if args.worker {
        worker(&args)
    } else {
        keeper(&args)
    }
}

fn keeper(args: &RunnerArgs) -> i32 {
    let host = Pid::from_raw(args.parent_pid);
    if getppid() != host {
        eprintln!("plugin-runner: the host is already gone");
        return 2;
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("plugin-runner: cannot become a child subreaper: {e}");
        return 2;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("plugin-runner: cannot find its own executable: {e}");
            return 2;
        }
    };
    let worker_args = RunnerArgs {
        parent_pid: getpid().as_raw(),
        worker: true,
        ..args.clone()
    };
    // The worker inherits standard input, output and error: the host's pipes.
    let worker = match std::process::Command::new(exe)
        .arg(SUBCOMMAND)
        .args(worker_args.to_args())
        .spawn()
    {
        Ok(child) => Pid::from_raw(child.id() as i32),
        Err(e) => {
            eprintln!("plugin-runner: cannot start the worker: {e}");
            return 2;
        }
    };
    // The host may die without a word (kill -9): then the worker goes, and the clean-up below
    // takes everything it left.
    let watcher = std::thread::Builder::new()
        .name("host-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                if getppid() != host {
                    if let Err(e) = kill(worker, Signal::SIGKILL) {
                        eprintln!("plugin-runner: the host is gone; killing the worker: {e}");
                    }
                    return;
                }
            }
        });
    if let Err(e) = watcher {
        eprintln!("plugin-runner: cannot watch the host: {e}");
        if let Err(e) = kill(worker, Signal::SIGKILL) {
            eprintln!("plugin-runner: cannot kill the worker: {e}");
        }
    }
    let report = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == worker => break ExitReport::Code(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == worker => {
                break ExitReport::Signal(signal as i32);
            }
            // An adopted orphan ended, or a status that is not an end.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("plugin-runner: waiting for the worker failed: {e}");
                break ExitReport::Code(2);
            }
        }
    };
    kill_and_reap_descendants();
    report.to_code()
}

/// Kills every process re-parented to this subreaper, and what they leave in turn, until none
/// is left.
fn kill_and_reap_descendants() {
    let me = getpid().as_raw();
    for _ in 0..1000 {
        let children = children_of(me);
        for child in &children {
            if let Err(e) = kill(Pid::from_raw(*child), Signal::SIGKILL)
                && e != Errno::ESRCH
            {
                eprintln!("plugin-runner: cannot kill process {child}: {e}");
            }
        }
        match waitpid(None, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) if children.is_empty() => return,
            Err(Errno::ECHILD) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                eprintln!("plugin-runner: reaping failed: {e}");
                return;
            }
        }
    }
    eprintln!("plugin-runner: processes are still being born; giving up the clean-up");
}

/// Process ids whose parent is `parent`, from `/proc/<pid>/stat`.
pub(super) fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold anything, so read after the last ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid: i32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

fn worker(args: &RunnerArgs) -> i32 {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        eprintln!("plugin-runner: cannot set the parent-death signal: {e}");
        return 2;
    }
    // The keeper may have died before the line above.
    if getppid().as_raw() != args.parent_pid {
        return 2;
    }
    if let Err(e) = apply_limits(args) {
        eprintln!("plugin-runner: {e}");
        return 2;
    }
    match protocol_pipes() {
        Ok((input, output)) => serve(args.event_queue, input, output),
        Err(e) => {
            eprintln!("plugin-runner: cannot set up its pipes: {e}");
            2
        }
    }
}

/// Moves the protocol off file descriptors 0 and 1, so a plugin that prints (or reads standard
/// input) cannot break a frame: its standard output goes to standard error, which the host logs,
/// and its standard input reads nothing.
fn protocol_pipes() -> Result<(std::fs::File, std::fs::File), String> {
    use nix::unistd::{dup, dup2_stdin, dup2_stdout};
    let input = dup(std::io::stdin()).map_err(|e| format!("dup stdin: {e}"))?;
    let output = dup(std::io::stdout()).map_err(|e| format!("dup stdout: {e}"))?;
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    dup2_stdin(&null).map_err(|e| format!("stdin to /dev/null: {e}"))?;
    dup2_stdout(std::io::stderr()).map_err(|e| format!("stdout to stderr: {e}"))?;
    Ok((std::fs::File::from(input), std::fs::File::from(output)))
}

fn apply_limits(args: &RunnerArgs) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let limit = |resource: Resource, wanted: u64, name: &str| -> Result<(), String> {
        let (_, hard) = getrlimit(resource).map_err(|e| format!("cannot read {name}: {e}"))?;
        let value = wanted.min(hard);
        setrlimit(resource, value, value).map_err(|e| format!("cannot set {name}: {e}"))
    };
    limit(Resource::RLIMIT_CORE, 0, "RLIMIT_CORE")?;
    limit(Resource::RLIMIT_NOFILE, args.open_files, "RLIMIT_NOFILE")?;
    if args.address_space_mb > 0 {
        limit(
            Resource::RLIMIT_AS,
            args.address_space_mb.saturating_mul(1024 * 1024),
            "RLIMIT_AS",
        )?;
    }
    Ok(())
}

type Pending = Arc<Mutex<HashMap<u64, crossbeam_channel::Sender<Result<Envelope, PluginError>>>>>;

/// Reads calls, runs them on this thread, answers through the writer; returns the exit code.
fn serve(event_queue: usize, input: std::fs::File, output: std::fs::File) -> i32 {
    let (out, outbox) = crossbeam_channel::bounded::<FromRunner>(event_queue);
    let writer = std::thread::Builder::new()
        .name("runner-out".into())
        .spawn(move || write_all(outbox, output));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            eprintln!("plugin-runner: cannot start its writer: {e}");
            return 2;
        }
    };
    let pending: Pending = Arc::default();
    let (calls_tx, calls) = crossbeam_channel::bounded::<ToRunner>(64);
    let reader_pending = pending.clone();
    let reader = std::thread::Builder::new()
        .name("runner-in".into())
        .spawn(move || read_all(calls_tx, reader_pending, input));
    if let Err(e) = reader {
        eprintln!("plugin-runner: cannot start its reader: {e}");
        return 2;
    }
    let mut plugin = Loaded::default();
    // Ends when the host closes our input (it is gone or dropped us) or after `stop`.
    while let Ok(call) = calls.recv() {
        let (seq, answer, last) = plugin.run(call, &out, &pending);
        if out.send(FromRunner::Answer { seq, answer }).is_err() || last {
            break;
        }
    }
    drop(out);
    if writer.join().is_err() {
        eprintln!("plugin-runner: the writer failed");
    }
    0
}

fn write_all(outbox: crossbeam_channel::Receiver<FromRunner>, output: std::fs::File) {
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, output);
    for message in outbox.iter() {
        let written = write_frame(&mut stdout, &message.encode()).and_then(|()| {
            if outbox.is_empty() {
                stdout.flush()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            // The host is gone: nobody is left to answer.
            eprintln!("plugin-runner: writing to the host failed: {e}");
            std::process::exit(3);
        }
    }
    if let Err(e) = stdout.flush() {
        eprintln!("plugin-runner: writing to the host failed: {e}");
    }
}

fn read_all(calls: crossbeam_channel::Sender<ToRunner>, pending: Pending, input: std::fs::File) {
    let mut stdin = std::io::BufReader::with_capacity(64 * 1024, input);
    let mut buf = Vec::new();
    loop {
        let message = read_frame(&mut stdin, &mut buf).and_then(|()| ToRunner::decode(&buf));
        match message {
            Ok(ToRunner::RequestAnswer { id, answer }) => {
                let waiting = pending.lock().ok().and_then(|mut p| p.remove(&id));
                match waiting {
                    Some(tx) => {
                        if tx.send(answer).is_err() {
                            eprintln!("plugin-runner: request {id} was answered too late");
                        }
                    }
                    None => eprintln!("plugin-runner: an answer to no request ({id})"),
                }
            }
            Ok(call) => {
                if calls.send(call).is_err() {
                    return;
                }
            }
            Err(super::frame::FrameError::Closed) => return,
            Err(e) => {
                eprintln!("plugin-runner: bad input from the host: {e}");
                return;
            }
        }
    }
}

/// The library and instance of this runner.
#[derive(Default)]
struct Loaded {
    root: Option<plugin_api::PluginRoot_Ref>,
    instance: Option<PluginBox>,
}

impl Loaded {
    fn run(
        &mut self,
        call: ToRunner,
        out: &crossbeam_channel::Sender<FromRunner>,
        pending: &Pending,
    ) -> (u64, Result<Envelope, PluginError>, bool) {
        let no_instance = || PluginError::failed("the runner has no plugin instance yet");
        match call {
            ToRunner::Describe { seq, library } => {
                let answer = match loader::open(std::path::Path::new(&library)) {
                    Ok(root) => {
                        self.root = Some(root);
                        loader::describe(root)
                            .map(|d| d.to_envelope())
                            .map_err(PluginError::invalid)
                    }
                    Err(e) => {
                        eprintln!("abi_stable's full report:\n{}", e.full);
                        Err(PluginError::invalid(e.summary))
                    }
                };
                (seq, answer, false)
            }
            ToRunner::Create {
                seq,
                data_dir,
                config,
            } => {
                let Some(root) = self.root else {
                    return (seq, Err(PluginError::failed("describe first")), false);
                };
                let services = RunnerServices {
                    out: out.clone(),
                    data_dir,
                    pending: pending.clone(),
                    next_request: AtomicU64::new(1),
                };
                let services = plugin_api::HostServices_TO::from_ptr(
                    abi_stable::std_types::RArc::new(services),
                    abi_stable::sabi_trait::TD_Opaque,
                );
                let answer = (root.create())(services, config)
                    .into_result()
                    .map(|instance| {
                        self.instance = Some(instance);
                        done()
                    });
                (seq, answer, false)
            }
            ToRunner::Start { seq, hello } => match &mut self.instance {
                Some(instance) => (seq, instance.start(hello).into_result(), false),
                None => (seq, Err(no_instance()), false),
            },
            ToRunner::Handle { seq, command } => match &mut self.instance {
                Some(instance) => (seq, instance.handle(command).into_result(), false),
                None => (seq, Err(no_instance()), false),
            },
            ToRunner::Stop { seq } => match &mut self.instance {
                Some(instance) => (seq, instance.stop().into_result().map(|()| done()), true),
                None => (seq, Ok(done()), true),
            },
            ToRunner::RequestAnswer { id, .. } => (
                id,
                Err(PluginError::invalid("a request answer is not a call")),
                false,
            ),
        }
    }
}

fn done() -> Envelope {
    Envelope {
        kind: "done".into(),
        schema: 1,
        bytes: b"{}".to_vec().into(),
    }
}

/// `HostServices` inside the runner: events and log lines become frames to the host.
struct RunnerServices {
    out: crossbeam_channel::Sender<FromRunner>,
    data_dir: String,
    pending: Pending,
    next_request: AtomicU64,
}

/// Room for the frame's own fields around an envelope.
const FRAME_OVERHEAD: usize = 1024;

// Called from plugin threads: nothing here may unwind into the plugin.
impl HostServices for RunnerServices {
    fn emit(&self, event: Envelope) -> RResult<(), PluginError> {
        if event.bytes.len() + event.kind.len() + FRAME_OVERHEAD > MAX_FRAME_BYTES {
            return RErr(PluginError::invalid(format!(
                "an event of {} bytes is over the runner's frame limit",
                event.bytes.len()
            )));
        }
        let sent = catch_unwind(AssertUnwindSafe(|| {
            self.out.try_send(FromRunner::Emit(event))
        }));
        match sent {
            Ok(Ok(())) => ROk(()),
            Ok(Err(crossbeam_channel::TrySendError::Full(_))) => RErr(PluginError::new(
                ErrorCode::QUEUE_FULL,
                "the host's event queue is full",
            )),
            Ok(Err(crossbeam_channel::TrySendError::Disconnected(_))) => RErr(PluginError::new(
                ErrorCode::UNAVAILABLE,
                "the host no longer takes events from this plugin",
            )),
            Err(_) => RErr(PluginError::failed("the runner failed to take the event")),
        }
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let line = FromRunner::Log {
            level: level.0,
            message: message.as_str().to_string(),
        };
        // A full queue sends the line to standard error, which the host logs too.
        if let Err(e) = self.out.try_send(line) {
            eprintln!("{}", message.as_str());
            drop(e);
        }
    }

    fn data_dir(&self) -> RString {
        RString::from(self.data_dir.as_str())
    }

    fn request(&self, request: Envelope) -> RResult<Envelope, PluginError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::bounded(1);
        match self.pending.lock() {
            Ok(mut pending) => {
                pending.insert(id, tx);
            }
            Err(_) => return RErr(PluginError::failed("the runner's request table is broken")),
        }
        if self.out.send(FromRunner::Request { id, request }).is_err() {
            return RErr(PluginError::new(ErrorCode::UNAVAILABLE, "the host is gone"));
        }
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(answer) => answer.into(),
            Err(_) => {
                if let Ok(mut pending) = self.pending.lock() {
                    pending.remove(&id);
                }
                RErr(PluginError::new(
                    ErrorCode::UNAVAILABLE,
                    "the host did not answer the request",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reports_survive_the_keepers_exit_code() {
        for report in [
            ExitReport::Code(0),
            ExitReport::Code(3),
            ExitReport::Signal(9),
            ExitReport::Signal(11),
        ] {
            assert_eq!(ExitReport::from_code(report.to_code()), report);
        }
        assert_eq!(ExitReport::Code(250).to_code(), 191);
    }

    #[test]
    fn arguments_round_trip_and_bad_ones_are_named() {
        let args = RunnerArgs {
            parent_pid: 42,
            address_space_mb: 512,
            open_files: 64,
            event_queue: 8,
            worker: true,
        };
        assert_eq!(RunnerArgs::parse(&args.to_args()), Ok(args));
        let err = RunnerArgs::parse(&["--open-files".into()]).unwrap_err();
        assert!(err.contains("--open-files"), "{err}");
        assert!(RunnerArgs::parse(&[]).unwrap_err().contains("--parent-pid"));
    }
}
