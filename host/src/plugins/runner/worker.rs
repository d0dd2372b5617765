//! The runner's worker (`plugin-runner --worker`): loads the plugin with the host's checks, runs
//! its calls and relays its events, logs and requests as frames. Started by the keeper only.
//!
//! It has `PR_SET_PDEATHSIG(SIGKILL)` towards the keeper, an address-space and open-files limit and
//! no core dumps. It speaks [`super::frame`] on two Unix sockets that were its standard input and
//! output (moved off fds 0 and 1 first): the calls stream (the host's calls in, their answers out)
//! and the events stream (events, log lines and requests out, the requests' answers in). Its
//! standard error goes to the host's log.

use super::frame::{FromRunner, MAX_FRAME_BYTES, ToRunner, read_frame, write_frame};
use super::keeper::RunnerArgs;
use crate::plugins::loader;
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use nix::sys::signal::Signal;
use nix::unistd::getppid;
use plugin_api::{Envelope, ErrorCode, HostServices, LogLevel, Message, PluginBox, PluginError};
use std::collections::HashMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs the worker; returns its exit code.
pub(super) fn run(args: &RunnerArgs) -> i32 {
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

/// Runs the host's calls on this thread as they are read from the calls stream and writes each
/// answer back on it at once; events, log lines and requests go out on the events stream through
/// the writer thread, and the answers to requests come back on it; returns the exit code.
///
/// No hand-off between threads lies on a call's way: the thread that reads the call runs it and
/// writes its answer. The answer says how many events were queued before it, so the host keeps
/// them ahead of it although they travel on the other stream.
fn serve(event_queue: usize, calls: std::fs::File, events: std::fs::File) -> i32 {
    let cloned = calls
        .try_clone()
        .and_then(|answers| Ok((answers, events.try_clone()?)));
    let (answers, events_in) = match cloned {
        Ok(streams) => streams,
        Err(e) => {
            eprintln!("plugin-runner: cannot share its streams: {e}");
            return 2;
        }
    };
    let (out, outbox) = crossbeam_channel::bounded::<FromRunner>(event_queue);
    let writer = std::thread::Builder::new()
        .name("runner-out".into())
        .spawn(move || write_all(outbox, events));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            eprintln!("plugin-runner: cannot start its writer: {e}");
            return 2;
        }
    };
    let pending: Pending = Arc::default();
    let reader_pending = pending.clone();
    let reader = std::thread::Builder::new()
        .name("runner-in".into())
        .spawn(move || read_request_answers(reader_pending, events_in));
    if let Err(e) = reader {
        eprintln!("plugin-runner: cannot start its reader: {e}");
        return 2;
    }
    let emitted = Arc::new(AtomicU64::new(0));
    let mut plugin = Loaded::default();
    let mut input = std::io::BufReader::with_capacity(64 * 1024, calls);
    let mut output = std::io::BufWriter::with_capacity(64 * 1024, answers);
    let mut buf = Vec::new();
    // Ends when the host closes the calls stream (it is gone or dropped us) or after `stop`.
    loop {
        let call = match read_frame(&mut input, &mut buf).and_then(|()| ToRunner::decode(&buf)) {
            Ok(call) => call,
            Err(super::frame::FrameError::Closed) => break,
            Err(e) => {
                eprintln!("plugin-runner: bad input from the host: {e}");
                break;
            }
        };
        let (seq, answer, last) = plugin.run(call, &out, &pending, &emitted);
        // Every event the plugin queued before it answered is counted here (the count goes up
        // after the event is in the queue).
        let answer = FromRunner::Answer {
            seq,
            events_before: emitted.load(Ordering::SeqCst),
            answer,
        };
        let written = write_frame(&mut output, &answer.encode()).and_then(|()| Ok(output.flush()?));
        if let Err(e) = written {
            eprintln!("plugin-runner: writing to the host failed: {e}");
            break;
        }
        if last {
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

/// Hands the host's answers to the plugin's requests to the threads waiting for them.
fn read_request_answers(pending: Pending, input: std::fs::File) {
    let mut input = std::io::BufReader::with_capacity(64 * 1024, input);
    let mut buf = Vec::new();
    loop {
        let message = read_frame(&mut input, &mut buf).and_then(|()| ToRunner::decode(&buf));
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
            Ok(_) => {
                eprintln!("plugin-runner: a call on the events stream; it reads no more there");
                return;
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
        emitted: &Arc<AtomicU64>,
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
                    emitted: emitted.clone(),
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
                Err(PluginError::invalid(
                    "a request answer is not a call (it belongs on the events stream)",
                )),
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
    /// Events queued so far (counted once in the queue).
    emitted: Arc<AtomicU64>,
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
            Ok(Ok(())) => {
                self.emitted.fetch_add(1, Ordering::SeqCst);
                ROk(())
            }
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
