//! The real desktop window on a team: `agentdesk run --hub … --agent ann --ready` under Xvfb
//! (software OpenGL), talking to the `agentdesk hub` process over a real `nats-server`. The
//! window logs Ann in and makes her Ready through the hub, the demo customer's chat rings on it,
//! and SIGTERM closes it cleanly, saving its window state (a damaged saved state, left there
//! before it started, was ignored with a log line). (CI installs xvfb and libgl1-mesa-dri.)

use crate::nats::NatsServer;
use crate::support::Install;
use crate::team::{start_hub, within};
use agentdesk_client::remote::{Remote, RemoteOptions};
use agentdesk_client::{ChannelState, Connection, InteractionState, TeamView};
use agentdesk_host::plugins::package::package;
use agentdesk_tests::{first_party_library, workspace_artifacts};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A virtual X display, stopped when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let n = 100 + std::process::id() % 400;
        let child = Command::new("Xvfb")
            .args([
                &format!(":{n}"),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (apt-get install xvfb)");
        let socket = format!("/tmp/.X11-unix/X{n}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn team(url: &str) -> Option<TeamView> {
    let remote = Remote::connect(&RemoteOptions {
        supervisor: true,
        request_timeout: Duration::from_secs(3),
        ..RemoteOptions::new(url)
    })
    .ok()?;
    remote.team().wait(Duration::from_secs(5)).ok()
}

#[test]
fn the_real_window_works_through_the_hub() {
    let xvfb = Xvfb::start();
    let nats = NatsServer::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let extra = "[plugins.settings.\"agentdesk.demo\"]\noffer_at_start = 1\n\
                 [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\"]\n";
    let config = install.write_config(&["agentdesk.demo"], extra);
    let _hub = start_hub(&config, &nats.url);

    // A damaged saved window state: ignored, never a crash.
    let saved = install.data.join("desk-window.ron");
    std::fs::create_dir_all(&install.data).expect("data dir");
    std::fs::write(&saved, "(\"agentdesk.desk-layout\": not ron").expect("damaged state");
    let log = install.dir.path().join("window.log");
    let mut window = Command::new(workspace_artifacts().join("agentdesk"))
        .args(["--config", &config.display().to_string()])
        .args(["run", "--hub", &nats.url, "--agent", "ann", "--ready"])
        .env("DISPLAY", &xvfb.display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("AGENTDESK_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("the desktop starts");
    // Through the hub, as a supervisor sees it: Ann logged in by the window, Ready on demo, and
    // the demo customer's chat offered to her.
    within(
        Duration::from_secs(60),
        "Ann's window working through the hub",
        || {
            team(&nats.url).is_some_and(|t| {
                t.agents.iter().any(|a| {
                    a.agent == "ann"
                        && a.logged_in
                        && a.channels.iter().any(|c| c.state == ChannelState::Ready)
                        && a.interactions
                            .iter()
                            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
                })
            })
        },
    );
    assert!(
        window.try_wait().expect("wait").is_none(),
        "the window is still open"
    );
    // SIGTERM closes the window the usual way.
    let status = Command::new("kill")
        .args(["-TERM", &window.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = window.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = window.kill();
            panic!("the window did not close on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exited.success(), "{exited:?}");
    let logged = std::fs::read_to_string(&log).expect("the window's log");
    assert!(
        logged.contains("Failed to parse RON"),
        "the damaged state was logged: {logged}; state now: {:?}",
        std::fs::read_to_string(&saved)
    );
    // Closing saved the window state again, with the desk's layout in it.
    let state = std::fs::read_to_string(&saved).expect("saved on close");
    assert!(
        state.contains("agentdesk.desk-layout") && state.contains("interactions"),
        "{state}"
    );
}
