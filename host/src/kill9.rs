//! The parent side of the kill -9 tests: runs one ignored test of this binary as a child that
//! prints `acked N` after each acknowledged write, kills it (SIGKILL: no destructor, no clean
//! close) once it has acknowledged `at_least`, and returns the last number it acknowledged.

use std::io::BufRead;
use std::path::Path;

/// Runs `child_test` (its full path, e.g. `storage::journal::tests::journal_kill_9_child`) with
/// `env` set to `path`, kills it after `at_least` acknowledgements, and returns the last one.
pub(crate) fn kill_after_acks(child_test: &str, env: &str, path: &Path, at_least: u64) -> u64 {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            child_test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut acked = 0u64;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.trim().parse().expect("number");
            if acked >= at_least {
                break;
            }
        }
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(
        acked >= at_least,
        "the child acknowledged only {acked} before stopping"
    );
    acked
}
