//! A team: the real `agentdesk hub` process serving its core over a real `nats-server`, and two
//! agents' desktops reaching it the way a desktop on another computer does (`Remote`, each its
//! own NATS connection). The demo channel's customer is offered to Ann, who answers; Bob sees
//! only his own state; SIGTERM stops the hub cleanly.

use crate::client_suite::{ClientRig, NatsRig};
pub(crate) use crate::client_suite::{ok, until};
use crate::nats::NatsServer;
use crate::shell::{has_label, settle};
use crate::support::Install;
use agentdesk_client::remote::wire;
use agentdesk_client::remote::{Remote, RemoteOptions};
use agentdesk_client::{
    AgentCommand, ChannelState, Connection, DeskClient, InteractionState, LinkState,
};
use agentdesk_host::plugins::package::package;
use agentdesk_tests::{first_party_library, workspace_artifacts};
use agentdesk_ui::desk::Desk;
use agentdesk_ui::ring::SilentSink;
use eframe::egui;
use egui_kittest::Harness;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// The `agentdesk hub` process, killed if the test ends early.
pub(crate) struct HubProcess(pub(crate) Child);

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start_hub(config: &std::path::Path, nats: &str) -> HubProcess {
    start_hub_with(config, nats, |_| {})
}

/// [`start_hub`], with the command adjusted first (its environment, where its log goes).
pub(crate) fn start_hub_with(
    config: &std::path::Path,
    nats: &str,
    adjust: impl FnOnce(&mut Command),
) -> HubProcess {
    let mut command = Command::new(workspace_artifacts().join("agentdesk"));
    command
        .args([
            "hub",
            "--config",
            &config.display().to_string(),
            "--nats",
            nats,
        ])
        .env_remove("AGENTDESK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    adjust(&mut command);
    let mut child = command.spawn().expect("agentdesk hub starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the hub says it serves");
    assert!(line.contains("serving the team"), "{line}");
    HubProcess(child)
}

pub(crate) fn desk(nats: &str, agent: &str) -> Box<dyn DeskClient> {
    let options = RemoteOptions {
        agent: Some(agent.into()),
        ..RemoteOptions::new(nats)
    };
    let remote = Remote::connect(&options).expect("connect");
    remote.login(agent).wait(WAIT).expect("log in")
}

#[test]
fn the_hub_process_serves_two_agents_desktops_over_nats() {
    let nats = NatsServer::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let extra = "[plugins.settings.\"agentdesk.demo\"]\noffer_at_start = 1\n\
                 [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\"]\n\
                 [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"demo\"]\n";
    let config = install.write_config(&["agentdesk.demo"], extra);
    let mut hub = start_hub(&config, &nats.url);

    // Who may log in, before logging in (the picker).
    let picker = Remote::connect(&RemoteOptions::new(nats.url.clone())).expect("connect");
    let agents = picker.agents().wait(WAIT).expect("agents");
    assert_eq!(agents.len(), 2, "{agents:?}");
    let table = picker.plugins().wait(WAIT).expect("plugin table");
    assert!(
        table
            .plugins
            .iter()
            .any(|p| p.id == "agentdesk.demo" && p.status == "loaded"),
        "{table:?}"
    );

    let ann = desk(&nats.url, "ann");
    let bob = desk(&nats.url, "bob");
    let ann_sees = ann.watch();
    let bob_sees = bob.watch();
    ok(
        &*ann,
        AgentCommand::LogOnChannel {
            channel: "demo".into(),
        },
    );
    ok(
        &*ann,
        AgentCommand::SetReady {
            channel: "demo".into(),
        },
    );
    // The demo customer's conversation, waiting since the hub started, is offered to Ann.
    let offered = until(&ann_sees, "the demo chat offered to Ann", |s| {
        s.interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let key = offered.interactions[0].key;
    ok(&*ann, AgentCommand::Accept { key });
    ann.send_message(ann.next_id(), key, "How can I help?")
        .wait(WAIT)
        .expect("sent");
    // The demo customer echoes every message: the plugin in the hub got Ann's.
    until(&ann_sees, "the customer's echo", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.detail.lines >= 3)
    });
    let lines = ann.live_lines(key, 0, 10).wait(WAIT).expect("lines");
    assert!(
        lines
            .iter()
            .any(|l| l.from_agent && l.line.text == "How can I help?"),
        "{lines:?}"
    );
    assert!(lines.len() >= 3, "{lines:?}");
    // The team view, as a supervisor's script gets it from the hub.
    let out = crate::cli::agentdesk_env(&["team", "--hub", &nats.url], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("ann") && l.contains("demo") && l.contains("Ready")),
        "{text}"
    );
    assert!(text.contains(&format!("ann: #{key} demo active")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("demo") && l.split_whitespace().nth(1) == Some("0")),
        "no queue line for demo: {text}"
    );
    // Bob, on his own connection, sees only his own state: logged off, nothing of Ann's chat.
    let bob_now = until(&bob_sees, "Bob's snapshot", |_| true);
    assert_eq!(bob_now.agent, "bob");
    assert_eq!(bob_now.channels[0].state, ChannelState::LoggedOff);
    assert!(bob_now.interactions.is_empty());
    let refused = bob
        .live_lines(key, 0, 10)
        .wait(WAIT)
        .expect_err("not his chat");
    assert!(refused.is_refusal(), "{refused:?}");

    // SIGTERM: the hub stops its core and plugins and exits 0.
    let pid = hub.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = hub.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the hub did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // Nobody answers any more: the desktop hears that the core is gone.
    let gone = ann
        .command(ann.next_id(), AgentCommand::SetDnd { on: true })
        .wait(WAIT);
    let code = gone.err().map(|e| e.code().to_string());
    assert!(
        matches!(code.as_deref(), Some("stopped" | "disconnected")),
        "{code:?}"
    );
}

/// A raw NATS request (what any program on the network could send), answered as JSON.
pub(crate) fn raw_request(url: &str, subject: &str, body: Vec<u8>) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect");
        let answer = tokio::time::timeout(WAIT, client.request(subject.to_string(), body.into()))
            .await
            .expect("answered in time")
            .expect("answered");
        serde_json::from_slice(&answer.payload).expect("a JSON answer")
    })
}

fn error_code(answer: &serde_json::Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("(no error)")
}

#[test]
fn bad_requests_get_a_coded_error_and_the_body_never_names_the_agent() {
    let rig = NatsRig::new();
    let ann = rig.connect().login("ann").wait(WAIT).expect("ann");
    let bob = rig.connect().login("bob").wait(WAIT).expect("bob");
    let ann_subject = wire::requests("ann");
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("not JSON", b"{ready".to_vec(), "malformed"),
        (
            "an unknown request kind",
            br#"{"v":1,"request":{"kind":"launch-rockets"}}"#.to_vec(),
            "malformed",
        ),
        (
            "an older desktop",
            br#"{"v":0,"request":{"kind":"snapshot"}}"#.to_vec(),
            "unsupported-version",
        ),
        (
            "an oversized body",
            vec![b' '; wire::MAX_BODY + 1],
            "too-large",
        ),
    ];
    for (what, body, code) in cases {
        let answer = raw_request(rig.url(), &ann_subject, body);
        assert_eq!(error_code(&answer), code, "{what}: {answer}");
    }
    assert_eq!(rig.hub().counters().refused.load(Ordering::Relaxed), 4);
    // Ann's desktop works on as before.
    ok(&*ann, AgentCommand::SetDnd { on: false });

    // Bob sends, on his own subject, a command whose body names Ann: the body's word is ignored,
    // the command is Bob's.
    let mut body = serde_json::to_value(wire::Envelope {
        v: wire::VERSION,
        request: wire::Request::Command {
            id: bob.next_id(),
            command: AgentCommand::SetDnd { on: true },
        },
    })
    .expect("json");
    body["agent"] = "ann".into();
    body["request"]["agent"] = "ann".into();
    let answer = raw_request(
        rig.url(),
        &wire::requests("bob"),
        body.to_string().into_bytes(),
    );
    assert!(answer.get("ok").is_some(), "{answer}");
    let ann_now = until(&ann.watch(), "Ann's snapshot", |_| true);
    let bob_now = until(&bob.watch(), "Bob's snapshot", |s| s.dnd);
    assert!(!ann_now.dnd, "Ann's DND untouched");
    assert!(bob_now.dnd);
}

/// Polls `test` every 20 ms until it holds; returns how long that took, or fails after `at_most`.
pub(crate) fn within(at_most: Duration, what: &str, test: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !test() {
        assert!(
            started.elapsed() < at_most,
            "{what} did not happen within {at_most:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn a_desktop_notices_a_lost_hub_refuses_commands_meanwhile_and_carries_on_when_it_is_back() {
    let mut rig = NatsRig::new();
    let ann = rig.connect().login("ann").wait(WAIT).expect("ann");
    let ann_sees = ann.watch();
    until(&ann_sees, "the first snapshot", |_| true);
    assert_eq!(ann.link(), LinkState::Connected);
    // Ann's desk window, on a session of its own.
    let client = rig.connect().login("ann").wait(WAIT).expect("ann's desk");
    let desk = Desk::new(client, Box::new(SilentSink::default()), || {});
    let mut window = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, desk: &mut Desk| desk.ui(ui), desk);
    settle(&mut window, "the desk connected", |h| {
        h.state().snapshot().logged_in
    });
    assert!(!has_label(&window, "disconnected — reconnecting"));

    rig.stop_hub();
    let noticed = within(Duration::from_secs(10), "noticing the lost hub", || {
        ann.link() == LinkState::Reconnecting
    });
    eprintln!("the lost hub was noticed after {noticed:?}");
    settle(&mut window, "the desk saying so", |h| {
        has_label(h, "disconnected — reconnecting")
    });
    let refused = ann
        .command(ann.next_id(), AgentCommand::SetDnd { on: true })
        .wait(WAIT)
        .expect_err("no hub");
    assert_eq!(refused.code(), "disconnected", "{refused}");

    rig.start_hub();
    let back = within(Duration::from_secs(10), "the hub answering again", || {
        ann.link() == LinkState::Connected
    });
    eprintln!("the hub was back for the desktop after {back:?}");
    settle(&mut window, "the desk connected again", |h| {
        !has_label(h, "disconnected — reconnecting")
    });
    ok(&*ann, AgentCommand::SetDnd { on: true });
    // The new hub publishes Ann's snapshots again, without the desktop doing anything.
    until(&ann_sees, "DND on, published by the new hub", |s| s.dnd);
}

#[test]
fn a_silent_desktops_agent_goes_not_ready_and_keeps_their_chat_until_they_return() {
    let rig = NatsRig::with_grace(Duration::from_millis(1_500));
    let chat_state = |agent: &str| rig.core_snapshot(agent).channels[0].state.clone();
    let ann = rig.connect().login("ann").wait(WAIT).expect("ann");
    ok(
        &*ann,
        AgentCommand::LogOnChannel {
            channel: "chat".into(),
        },
    );
    ok(
        &*ann,
        AgentCommand::SetReady {
            channel: "chat".into(),
        },
    );
    let ann_sees = ann.watch();
    rig.customer_starts("c9", "Carol");
    let offered = until(&ann_sees, "an offer", |s| !s.interactions.is_empty());
    let key = offered.interactions[0].key;
    ok(&*ann, AgentCommand::Accept { key });
    let bob = rig.connect().login("bob").wait(WAIT).expect("bob");
    ok(
        &*bob,
        AgentCommand::LogOnChannel {
            channel: "chat".into(),
        },
    );
    ok(
        &*bob,
        AgentCommand::SetReady {
            channel: "chat".into(),
        },
    );
    // Capacity 2: Ann stays Ready with one chat. Her desktop dies (no more heartbeats).
    assert_eq!(chat_state("ann"), ChannelState::Ready);
    drop(ann_sees);
    drop(ann);
    let started = Instant::now();
    // With a chat open, Not Ready takes effect after it: Pending (no new offers meanwhile).
    within(
        Duration::from_secs(15),
        "Ann set Not Ready (disconnected)",
        || {
            chat_state("ann")
                == ChannelState::Pending {
                    reason: "disconnected".into(),
                }
        },
    );
    assert_eq!(
        rig.hub().counters().silent_desktops.load(Ordering::Relaxed),
        1
    );
    eprintln!(
        "a silent desktop was set away after {:?}",
        started.elapsed()
    );
    // Bob, whose desktop is alive, is untouched; Ann's chat is still hers.
    assert_eq!(chat_state("bob"), ChannelState::Ready);
    let ann_now = rig.core_snapshot("ann");
    assert!(
        ann_now
            .interactions
            .iter()
            .any(|i| i.key == key && i.state == InteractionState::Active),
        "{ann_now:?}"
    );
    // Ann is back: her chat is there, and she decides when she is Ready again.
    let ann = rig.connect().login("ann").wait(WAIT).expect("ann again");
    let back = until(&ann.watch(), "Ann's snapshot", |_| true);
    assert!(back.interactions.iter().any(|i| i.key == key));
    ok(
        &*ann,
        AgentCommand::SetReady {
            channel: "chat".into(),
        },
    );
    assert_eq!(chat_state("ann"), ChannelState::Ready);
}
