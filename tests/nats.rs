//! A real `nats-server` for a test: started on a free loopback port, stopped (killed) when
//! dropped. CI installs Debian's `nats-server` (2.9).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`.
pub(crate) struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:<port>`.
    pub(crate) url: String,
    port: u16,
    conf: std::path::PathBuf,
}

impl NatsServer {
    /// Starts a server with no authorization on a free port; waits until it accepts connections.
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with `config` (nats-server's configuration format, e.g. an
    /// `authorization` block) on a free loopback port.
    pub(crate) fn start_with(config: &str) -> Self {
        let port = crate::mailserver::free_port();
        let file = std::env::temp_dir().join(format!("agentdesk-nats-{port}.conf"));
        std::fs::write(&file, format!("listen: 127.0.0.1:{port}\n{config}")).expect("conf");
        let server = NatsServer {
            child: spawn(&file),
            url: format!("nats://127.0.0.1:{port}"),
            port,
            conf: file,
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id (its memory, for the benchmarks).
    #[allow(dead_code)]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server the way an admin does (SIGTERM), so everything it stores is written.
    #[allow(dead_code)]
    pub(crate) fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        match Command::new("kill").args(["-TERM", &pid]).status() {
            Ok(status) if status.success() => {}
            other => eprintln!("nats-server not stopped: {other:?}"),
        }
        if let Err(e) = self.child.wait() {
            eprintln!("nats-server not reaped: {e}");
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and configuration.
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.conf);
        self.wait_listening();
    }
}

fn spawn(conf: &std::path::Path) -> Child {
    Command::new("nats-server")
        .args(["-c", &conf.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server runs (apt-get install nats-server)")
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("nats-server not killed: {e}");
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.conf);
    }
}
