//! The runner's keeper, `agentdesk plugin-runner`: a child subreaper that starts the worker, reaps
//! everything the plugin leaves behind and reports how the worker ended. No plugin code here.
//!
//! Two processes because the one that crashes cannot clean up after itself. The keeper is a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`): whatever the worker spawns, even a `setsid` daemon, is
//! re-parented to the keeper when its parent dies, and the keeper kills and reaps all of it when
//! the worker dies or the host does (it watches its parent id). The keeper's exit status reports
//! the worker's: see [`ExitReport`].

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid};
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
        super::worker::run(&args)
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
