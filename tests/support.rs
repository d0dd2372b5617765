//! Set-up shared by the test modules: a temporary plugin directory, data directory and config.

use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::config_text;
use std::path::PathBuf;
use std::time::Duration;

/// A temporary installation: a plugin directory, a data directory and a config file.
pub struct Install {
    pub dir: tempfile::TempDir,
    pub plugins: PathBuf,
    pub data: PathBuf,
}

impl Install {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&plugins).expect("plugin dir");
        Install { dir, plugins, data }
    }

    /// Writes the config (see `config_text`) and returns its path.
    pub fn write_config(&self, allow: &[&str], extra: &str) -> PathBuf {
        let path = self.dir.path().join("agentdesk.toml");
        std::fs::write(&path, config_text(&self.plugins, &self.data, allow, extra))
            .expect("config");
        path
    }

    /// Writes the config and starts a host on it.
    pub fn start(&self, allow: &[&str], extra: &str) -> PluginHost {
        let config = AdminConfig::load(&self.write_config(allow, extra)).expect("valid config");
        PluginHost::start(&config, StartMode::Run)
    }
}

/// The status word and reason of a plugin id.
pub fn status(host: &PluginHost, id: &str) -> (String, String) {
    let report = host
        .report(id)
        .unwrap_or_else(|| panic!("no report for {id}: {:#?}", host.reports()));
    (
        report.status.word().to_string(),
        report.status.reason().unwrap_or_default().to_string(),
    )
}

/// Whether a library file is mapped into this process (i.e. was dlopen'ed).
pub fn is_mapped(path: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    maps.lines().any(|l| l.ends_with(&*path.to_string_lossy()))
}

/// Collects events for a little while.
pub fn drain(host: &PluginHost, wait: Duration) -> Vec<agentdesk_host::plugins::PluginEvent> {
    let mut events = Vec::new();
    while let Some(event) = host.recv_event(wait) {
        events.push(event);
    }
    events
}

/// Polls `probe` every 50 ms until it finds something; fails the test naming `what` after `wait`.
pub fn wait_for<T>(wait: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `agentdesk-test-host` on a config, for tests that `kill -9` it; killed when dropped.
pub struct HostProcess {
    child: std::process::Child,
}

impl HostProcess {
    /// Starts it for `channel` and waits for `ready <expect>`; its log goes to `log`.
    pub fn start(
        config: &std::path::Path,
        log: &std::path::Path,
        channel: &str,
        expect: &str,
    ) -> Self {
        use std::io::BufRead;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("host log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agentdesk-test-host"))
            .arg(config)
            .arg(channel)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("agentdesk-test-host");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let host = HostProcess { child };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(line)) => assert_eq!(line.trim(), format!("ready {expect}"), "host start"),
            other => panic!("the host did not start: {other:?}"),
        }
        host
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Closes its standard input: it stops the plugins and the core cleanly.
    pub fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the host exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the host did not stop");
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pseudo-random waits of `min_ms` to `min_ms + spread_ms` for kill times, from a seed the test
/// prints, so that a failure can be replayed.
pub fn random_delays(seed: u64, min_ms: u64, spread_ms: u64) -> impl Iterator<Item = Duration> {
    let mut x = seed | 1;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_millis(min_ms + x % spread_ms)
    })
}
