//! Internal IM between agents (`plugins/im`) through the real `agentdesk hub` process, a real
//! `nats-server` with JetStream on (its own store directory) and the agents' desktops as processes
//! of their own (`agentdesk-test-desk`, logging at trace): IMs reach the colleague's desktop,
//! and nothing of them is saved anywhere — searched for in every file the run wrote, with positive
//! controls that the same search finds a chat's text in the history and a message in a JetStream
//! stream. Bad input (unknown or unavailable colleague, oversized, flood) gets a clear word, and a
//! stream that would capture interaction detail stops the hub from starting.

use crate::client_suite::InProcessRig;
use crate::desk_process::DeskProcess;
use crate::nats::NatsServer;
use crate::support::Install;
use crate::team::{HubProcess, desk, ok, start_hub_with, until, within};
use agentdesk_client::{
    AgentCommand, AgentSnapshot, DeskClient, InteractionState, InteractionView,
};
use agentdesk_host::plugins::package::package;
use agentdesk_hub::im_guard::GuardError;
use agentdesk_hub::{Hub, HubError, HubOptions};
use agentdesk_tests::first_party_library;
use plugin_api::Address;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A text no run has written before.
fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{tag}{}x{nanos}", std::process::id())
}

/// A team on one machine: nats-server with JetStream (store in `store`), the hub process logging
/// at trace level into `log` with its own temporary directory, agents Ann, Bob and Cy on the
/// demo and IM channels.
struct Team {
    install: Install,
    nats: NatsServer,
    config: PathBuf,
    store: PathBuf,
    log: PathBuf,
    tmp: PathBuf,
    hub: Option<HubProcess>,
}

const IM_SETTINGS: &str = "[plugins.settings.\"agentdesk.im\"]\nmax_message_bytes = 1000\n\
    burst = 5\nper_second = 1.0\n";

impl Team {
    fn start() -> Team {
        let install = Install::new();
        let store = install.dir.path().join("nats-store");
        let tmp = install.dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        let log = install.dir.path().join("hub.log");
        let nats = NatsServer::start_with(&format!(
            "jetstream {{ store_dir: \"{}\" }}\n",
            store.display()
        ));
        package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
        package(&first_party_library("agentdesk_im"), &install.plugins).expect("package im");
        let extra = format!(
            "[plugins.settings.\"agentdesk.demo\"]\noffer_at_start = 1\n{IM_SETTINGS}\
             [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\", \"im\"]\n\
             [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"demo\", \"im\"]\n\
             [[agents]]\nid = \"cy\"\nname = \"Cy\"\nchannels = [\"im\"]\n"
        );
        let config = install.write_config(&["agentdesk.demo", "agentdesk.im"], &extra);
        let mut team = Team {
            install,
            nats,
            config,
            store,
            log,
            tmp,
            hub: None,
        };
        team.start_hub();
        team
    }

    fn start_hub(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("hub log");
        let tmp = self.tmp.clone();
        self.hub = Some(start_hub_with(&self.config, &self.nats.url, |command| {
            command
                .env("AGENTDESK_LOG", "trace")
                .env("TMPDIR", &tmp)
                .stderr(Stdio::from(log));
        }));
    }

    /// SIGTERM: the hub stops its core and plugins and exits.
    fn stop_hub(&mut self) {
        let Some(mut hub) = self.hub.take() else {
            return;
        };
        let pid = hub.0.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + WAIT;
        while hub.0.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "the hub did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no stop, no goodbye.
    fn kill_hub(&mut self) {
        drop(self.hub.take());
    }

    /// `agent`'s desktop as a process of its own (`agentdesk-test-desk`), logging at trace into
    /// `desks/<agent>.log`, with its home and temporary directory under `desks/` too.
    fn desk(&self, agent: &str) -> DeskProcess {
        let desks = self.desks();
        let home = desks.join(agent);
        std::fs::create_dir_all(&home).expect("desk home");
        let log = std::fs::File::create(desks.join(format!("{agent}.log"))).expect("desk log");
        let tmp = self.tmp.clone();
        DeskProcess::start_with(&self.nats.url, agent, |command| {
            command
                .env("AGENTDESK_LOG", "trace")
                .env("HOME", &home)
                .env("XDG_DATA_HOME", home.join("data"))
                .env("XDG_CONFIG_HOME", home.join("config"))
                .env("TMPDIR", &tmp)
                .stderr(Stdio::from(log));
        })
    }

    fn desks(&self) -> PathBuf {
        self.install.dir.path().join("desks")
    }

    /// Every place the run may have written to: data directory, NATS store, logs, temporary
    /// files, the desktops' homes and logs.
    fn written(&self) -> Vec<PathBuf> {
        vec![
            self.install.data.clone(),
            self.store.clone(),
            self.log.clone(),
            self.tmp.clone(),
            self.config.clone(),
            self.desks(),
        ]
    }
}

/// How often `needle` occurs in every file under `roots`, and in which files.
fn occurrences(roots: &[PathBuf], needle: &str) -> (usize, Vec<PathBuf>) {
    fn walk(path: &Path, needle: &[u8], found: &mut (usize, Vec<PathBuf>), files: &mut usize) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).expect("read dir").flatten() {
                walk(&entry.path(), needle, found, files);
            }
        } else if let Ok(bytes) = std::fs::read(path) {
            *files += 1;
            let n = bytes.windows(needle.len()).filter(|w| *w == needle).count();
            if n > 0 {
                found.0 += n;
                found.1.push(path.to_path_buf());
            }
        }
    }
    let mut found = (0, Vec::new());
    let mut files = 0;
    for root in roots {
        walk(root, needle.as_bytes(), &mut found, &mut files);
    }
    assert!(files > 0, "the search found no files: {roots:?}");
    found
}

/// The lines of a text file that hold `needle` (to show what leaked).
fn lines_with(file: &Path, needle: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(file).unwrap_or_default()).into_owned();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.chars().take(300).collect())
        .collect()
}

fn on_im(s: &AgentSnapshot) -> Vec<&InteractionView> {
    s.interactions
        .iter()
        .filter(|i| i.channel == "im")
        .collect()
}

fn ready(client: &dyn DeskClient, channel: &str) {
    let channel = channel.to_string();
    ok(
        client,
        AgentCommand::LogOnChannel {
            channel: channel.clone(),
        },
    );
    ok(client, AgentCommand::SetReady { channel });
}

impl DeskProcess {
    fn ready_on(&self, channel: &str) {
        let channel = channel.to_string();
        self.ok(AgentCommand::LogOnChannel {
            channel: channel.clone(),
        });
        self.ok(AgentCommand::SetReady { channel });
    }

    fn start_im(&self, to: &str) {
        self.ok(AgentCommand::StartOutbound {
            channel: "im".into(),
            to: Address::new(Address::AGENT, to),
            from: None,
        });
    }

    fn texts(&self, key: u64) -> Vec<String> {
        self.lines(key).into_iter().map(|l| l.line.text).collect()
    }
}

/// Ann opens an IM to Bob, writes `text` at once, Bob takes it: the keys of both sides.
fn ann_ims_bob(
    ann: &DeskProcess,
    bob: &DeskProcess,
    ann_sees: &crossbeam_channel::Receiver<AgentSnapshot>,
    bob_sees: &crossbeam_channel::Receiver<AgentSnapshot>,
    text: &str,
) -> (u64, u64) {
    ann.start_im("bob");
    let mine = until(ann_sees, "Ann's side of the IM", |s| {
        on_im(s).iter().any(|i| i.state == InteractionState::Active)
    });
    let mine = on_im(&mine)
        .into_iter()
        .find(|i| i.state == InteractionState::Active)
        .map(|i| i.key)
        .expect("active");
    ann.say(mine, text);
    let offered = until(bob_sees, "the IM ringing on Bob's desk", |s| {
        on_im(s)
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let theirs = on_im(&offered)
        .into_iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .expect("offered");
    // Who it is from; no text of the IM in the offer, not even as a subject.
    assert_eq!(theirs.contact.display_name.as_deref(), Some("Ann"));
    assert_eq!(theirs.subject, None);
    let theirs = theirs.key;
    bob.ok(AgentCommand::Accept { key: theirs });
    (mine, theirs)
}

#[test]
fn ims_reach_the_colleague_and_nothing_of_them_is_saved_even_when_the_hub_is_killed() {
    let (im, im_after, chat, stored) = (
        marker("imsecret"),
        marker("imlater"),
        marker("chatcontrol"),
        marker("streamcontrol"),
    );
    let mut team = Team::start();
    // Third control: a JetStream stream that captures nothing of ours keeps what it is sent (the
    // hub started with it in place: it captures no detail subject).
    crate::team::raw_request(
        &team.nats.url,
        "$JS.API.STREAM.CREATE.CONTROL",
        br#"{"name":"CONTROL","subjects":["control.>"],"storage":"file"}"#.to_vec(),
    );
    let answer =
        crate::team::raw_request(&team.nats.url, "control.note", stored.clone().into_bytes());
    assert_eq!(answer["stream"], "CONTROL", "{answer}");

    let ann = team.desk("ann");
    let bob = team.desk("bob");
    let (ann_sees, bob_sees) = (ann.snapshots.clone(), bob.snapshots.clone());
    ann.ready_on("im");
    bob.ready_on("im");
    let (mine, theirs) = ann_ims_bob(&ann, &bob, &ann_sees, &bob_sees, &format!("Hi Bob {im}"));
    // First control: Bob's desk shows the marker, and Ann sees Bob join.
    within(WAIT, "the first IM on Bob's desk", || {
        bob.texts(theirs).iter().any(|t| t.contains(&im))
    });
    until(&ann_sees, "Bob in Ann's IM", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == mine && i.detail.parties.iter().any(|p| p.display_name == "Bob"))
    });
    // Typing both ways, then Bob answers.
    bob.typing(theirs, true);
    until(&ann_sees, "Bob typing on Ann's desk", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == mine && i.detail.typing.iter().any(|t| t == "Bob"))
    });
    ann.typing(mine, true);
    until(&bob_sees, "Ann typing on Bob's desk", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == theirs && i.detail.typing.iter().any(|t| t == "Ann"))
    });
    bob.say(theirs, &format!("Sure {im}, go on"));
    within(WAIT, "Bob's answer on Ann's desk", || {
        ann.texts(mine).iter().any(|t| t.starts_with("Sure"))
    });

    // Group IM: Ann asks Cy in (a consultation, then a conference); Bob sees Cy join, and what
    // Cy writes; Cy sees what Bob writes.
    let cy = team.desk("cy");
    let cy_sees = cy.snapshots.clone();
    cy.ready_on("im");
    ann.ok(AgentCommand::Consult {
        key: mine,
        colleague: "cy".into(),
    });
    let asked = until(&cy_sees, "Cy asked to join", |s| {
        on_im(s)
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let consultation = on_im(&asked)[0].key;
    cy.ok(AgentCommand::Accept { key: consultation });
    ann.ok(AgentCommand::Conference { consultation });
    until(&cy_sees, "Cy in the IM", |s| {
        s.interactions.iter().any(|i| i.key == mine)
    });
    cy.say(mine, &format!("Cy here {im}"));
    until(&bob_sees, "Cy joined, on Bob's desk", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == theirs && i.detail.parties.iter().any(|p| p.display_name == "Cy"))
    });
    within(WAIT, "Cy's line on Bob's desk", || {
        bob.texts(theirs).iter().any(|t| t.starts_with("Cy here"))
    });
    bob.say(theirs, &format!("Welcome Cy {im}"));
    within(WAIT, "Bob's line on Cy's desk", || {
        cy.texts(mine).iter().any(|t| t.starts_with("Welcome Cy"))
    });
    // Cy leaves the group: Bob sees it (plugin-api 1.5 `leave-conference`).
    cy.ok(AgentCommand::LeaveConference { key: mine });
    until(&bob_sees, "Cy gone from Bob's IM", |s| {
        s.interactions.iter().any(|i| {
            i.key == theirs
                && i.detail.parties.iter().any(|p| p.display_name == "Ann")
                && i.detail.parties.iter().all(|p| p.display_name != "Cy")
        })
    });

    // Second control: a customer chat's text goes to the history, and the search finds it.
    ann.ready_on("demo");
    let offered = until(&ann_sees, "the demo chat", |s| {
        s.interactions
            .iter()
            .any(|i| i.channel == "demo" && matches!(i.state, InteractionState::Offered { .. }))
    });
    let chat_key = offered
        .interactions
        .iter()
        .find(|i| i.channel == "demo")
        .map(|i| i.key)
        .expect("demo");
    ann.ok(AgentCommand::Accept { key: chat_key });
    ann.say(chat_key, &format!("Order noted {chat}"));
    // An IM consultation about the chat ("Consult by IM"): Bob sees what the chat is about, its
    // subject and case data (as case data: nothing of an IM is journaled, not even a subject),
    // and that it is from Ann; the customer sees nothing; Ann's IM is
    // linked to the chat.
    ann.ok(AgentCommand::StartOutbound {
        channel: "im".into(),
        to: Address::new(Address::AGENT, "bob"),
        from: Some(chat_key),
    });
    let asked = until(&bob_sees, "the IM about the chat on Bob's desk", |s| {
        on_im(s).iter().any(|i| {
            matches!(i.state, InteractionState::Offered { .. })
                && i.detail
                    .case_data
                    .iter()
                    .any(|f| f.key == "about" && f.value.starts_with("Demo conversation"))
        })
    });
    let about = on_im(&asked)
        .into_iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .expect("offered")
        .clone();
    assert_eq!(about.contact.display_name.as_deref(), Some("Ann"));
    assert!(
        about
            .detail
            .case_data
            .iter()
            .any(|f| f.key == "order" && f.value.starts_with("A-")),
        "{:?}",
        about.detail.case_data
    );
    let consulting = until(&ann_sees, "Ann's IM linked to the chat", |s| {
        on_im(s)
            .iter()
            .any(|i| i.linked.contains(&chat_key) && i.state == InteractionState::Active)
    });
    let consulting = on_im(&consulting)
        .into_iter()
        .find(|i| i.linked.contains(&chat_key))
        .expect("linked");
    assert_eq!(consulting.contact.display_name.as_deref(), Some("Bob"));
    let consulting = consulting.key;
    bob.ok(AgentCommand::Accept { key: about.key });
    ann.say(consulting, &format!("Is this order fine? {im}"));
    within(WAIT, "the consultation on Bob's desk", || {
        bob.texts(about.key)
            .iter()
            .any(|t| t.starts_with("Is this order fine?"))
    });
    assert!(
        ann.texts(chat_key).iter().all(|t| !t.contains(&im)),
        "the chat's transcript shows nothing of the IM"
    );
    let found = ann.search(Some(&chat), 10);
    assert!(found.iter().any(|e| e.key == chat_key), "{found:?}");
    assert!(ann.search(Some(&im), 10).is_empty());
    let listed = ann.search(None, 100);
    assert!(listed.iter().all(|e| e.channel != "im"), "{listed:?}");

    // The hub killed mid-IM and started again: the IM is closed, not brought back empty.
    team.kill_hub();
    team.start_hub();
    let closed = |s: &AgentSnapshot| on_im(s).iter().all(|i| i.state.is_closed());
    let after = until(&ann_sees, "Ann's IM closed after the restart", |s| {
        closed(s) && s.interactions.iter().any(|i| i.key == chat_key)
    });
    assert!(
        on_im(&after)
            .iter()
            .all(|i| i.key != mine || i.state.is_closed())
    );
    until(&bob_sees, "Bob's IM closed after the restart", closed);
    // IM works again at once, and this one is open when the hub stops cleanly.
    let (_, theirs) = ann_ims_bob(&ann, &bob, &ann_sees, &bob_sees, &im_after);
    within(WAIT, "the IM after the restart", || {
        bob.texts(theirs).iter().any(|t| t.contains(&im_after))
    });
    team.stop_hub();
    drop((ann, bob, cy));
    team.nats.terminate();

    let written = team.written();
    for needle in [&im, &im_after] {
        let (n, files) = occurrences(&written, needle);
        for line in files.iter().flat_map(|f| lines_with(f, needle)) {
            eprintln!("saved: {line}");
        }
        assert_eq!(n, 0, "IM text was saved in {files:?}");
    }
    let (n, files) = occurrences(&[team.install.data.clone()], &chat);
    assert!(
        n > 0,
        "the chat control was not found in the data directory"
    );
    assert!(files.iter().all(|f| f.starts_with(&team.install.data)));
    let (n, _) = occurrences(&[team.store.clone()], &stored);
    assert!(n > 0, "the stream control was not found in the NATS store");
    // The logs were really written below info (at trace, what the hub and the desktops have is
    // debug lines; the NATS client's trace lines, which carry message bodies, are never written).
    for (who, log) in [
        ("the hub", team.log.clone()),
        ("Ann's desktop", team.desks().join("ann.log")),
        ("Bob's desktop", team.desks().join("bob.log")),
    ] {
        let log = std::fs::read_to_string(&log).expect("log");
        assert!(log.contains("DEBUG"), "no debug lines in {who}'s log");
        assert!(
            !log.lines()
                .any(|l| l.contains("TRACE") && l.contains("async_nats")),
            "the NATS client's trace reached {who}'s log"
        );
    }
}

/// The IM interactions of a snapshot not in `known`, newest last.
fn new_im(s: &AgentSnapshot, known: &[u64]) -> Option<u64> {
    on_im(s)
        .iter()
        .map(|i| i.key)
        .filter(|k| !known.contains(k))
        .max()
}

/// Ann starts an IM to `to`; returns its key once her desk has it.
fn ann_starts(
    ann: &DeskProcess,
    ann_sees: &crossbeam_channel::Receiver<AgentSnapshot>,
    to: &str,
    known: &mut Vec<u64>,
) -> u64 {
    ann.start_im(to);
    let s = until(ann_sees, "Ann's new IM", |s| new_im(s, known).is_some());
    let key = new_im(&s, known).expect("new");
    known.push(key);
    key
}

#[test]
fn an_im_nobody_can_take_is_refused_at_once_and_oversized_or_flooding_ones_are_not_sent() {
    let team = Team::start();
    let ann = team.desk("ann");
    let bob = team.desk("bob");
    let (ann_sees, bob_sees) = (ann.snapshots.clone(), bob.snapshots.clone());
    ann.ready_on("im");
    // Bob is on the IM channel but Not Ready (as it starts); Cy never logged in.
    bob.ok(AgentCommand::LogOnChannel {
        channel: "im".into(),
    });
    let mut known = Vec::new();

    // A colleague who does not exist, and one who is logged off: Ann is told at once, the IM
    // ends, nothing waits for later.
    for (to, words) in [
        ("nobody", "There is no colleague `nobody`."),
        ("cy", "cy is not available for IM now."),
        ("bob", "bob is not available for IM now."),
    ] {
        let started = Instant::now();
        let key = ann_starts(&ann, &ann_sees, to, &mut known);
        until(&ann_sees, &format!("the IM to {to} ended"), |s| {
            s.interactions
                .iter()
                .any(|i| i.key == key && i.state == InteractionState::Ended)
        });
        let told = started.elapsed();
        assert!(
            ann.texts(key).iter().any(|t| t == words),
            "{to}: {:?}",
            ann.texts(key)
        );
        eprintln!("IM to {to}: refused and told within {told:?}");
        ann.ok(AgentCommand::MarkDone {
            key,
            wrap_up: None,
            next: None,
        });
    }
    let bob_now = until(&bob_sees, "Bob's snapshot", |_| true);
    assert!(on_im(&bob_now).is_empty(), "nothing was kept for Bob");

    // Bob available: an oversized IM is not sent, and Ann is told why.
    bob.ok(AgentCommand::SetReady {
        channel: "im".into(),
    });
    let (mine, theirs) = ann_ims_bob(&ann, &bob, &ann_sees, &bob_sees, "short");
    within(WAIT, "the first IM", || bob.texts(theirs).len() == 1);
    ann.say(mine, &"x".repeat(1001));
    until(&ann_sees, "the oversized notice", |s| {
        s.interactions.iter().any(|i| {
            i.key == mine
                && i.detail
                    .notice
                    .as_deref()
                    .is_some_and(|n| n.contains("at most 1000 bytes, this one is 1001"))
        })
    });
    // A flood: five at once pass (the burst), the rest are refused with a notice.
    for n in 0..12 {
        ann.say(mine, &format!("flood {n}"));
    }
    until(&ann_sees, "the flood notice", |s| {
        s.interactions.iter().any(|i| {
            i.key == mine
                && i.detail
                    .notice
                    .as_deref()
                    .is_some_and(|n| n.contains("too many IMs"))
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let got = bob.texts(theirs);
    let floods = got.iter().filter(|t| t.starts_with("flood")).count();
    assert!((4..12).contains(&floods), "{got:?}");
    assert!(
        got.iter().all(|t| t.len() < 1001),
        "the oversized IM arrived"
    );
    assert!(got.iter().any(|t| t == "flood 0"), "{got:?}");
}

#[test]
fn the_hub_refuses_to_start_when_a_jetstream_stream_captures_interaction_detail() {
    let install = Install::new();
    let store = install.dir.path().join("nats-store");
    let nats = NatsServer::start_with(&format!(
        "jetstream {{ store_dir: \"{}\" }}\n",
        store.display()
    ));
    let rig = InProcessRig::new();
    let config = install.dir.path().join("agentdesk.toml");
    std::fs::write(&config, crate::client_suite::SUITE_CONFIG).expect("config");
    let options = HubOptions {
        config_file: Some(config),
        ..HubOptions::new(nats.url.clone())
    };
    // Without such a stream (and with JetStream on) the hub starts, and reloads.
    let hub = Hub::serve(&options, rig.connect_in_process()).expect("the hub starts");
    hub.reload().expect("a reload with nothing stored");
    let created = crate::team::raw_request(
        &nats.url,
        "$JS.API.STREAM.CREATE.EVERYTHING",
        br#"{"name":"EVERYTHING","subjects":["ad.>"],"storage":"file"}"#.to_vec(),
    );
    assert!(created["error"].is_null(), "{created}");
    // A running hub refuses a reload while such a stream exists, and keeps serving.
    let refused = hub.reload().expect_err("a stream captures detail");
    assert_eq!(refused.code(), "stored", "{refused:?}");
    hub.stop();
    let refused = Hub::serve(&HubOptions::new(nats.url.clone()), rig.connect_in_process())
        .expect_err("a stream captures detail");
    assert!(
        matches!(
            &refused,
            HubError::Stored(GuardError::Captured { stream, captured, .. })
                if stream == "EVERYTHING" && captured == "ad.>"
        ),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("internal IM must never be stored")
    );
}

#[test]
fn the_team_communicator_shows_presence_live_starts_an_im_and_the_desk_says_not_saved() {
    use crate::shell::{click, has_label, settle};
    use agentdesk_ui::desk::Desk;
    use agentdesk_ui::ring::{SilentSink, WavSink, chime_wav, ring_tone_wav};
    use eframe::egui;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    let team = Team::start();
    let ann = desk(&team.nats.url, "ann");
    let bob = desk(&team.nats.url, "bob");
    let bob_sees = bob.watch();
    ready(&*ann, "im");
    ready(&*bob, "im");
    // Ann's desk window, on a session of its own.
    let window = Desk::new(
        desk(&team.nats.url, "ann"),
        Box::new(SilentSink::default()),
        || {},
    );
    let mut ann_window = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, desk: &mut Desk| desk.ui(ui), window);
    settle(&mut ann_window, "Ann's desk connected", |h| {
        h.state().snapshot().logged_in
    });
    ann_window.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::T);
    settle(&mut ann_window, "the Team Communicator", |h| {
        has_label(h, "Find a colleague")
    });
    assert!(has_label(&ann_window, "Cy (cy)"));
    // Presence, live: Cy never logged in; Bob is Ready on im, then turns Do Not Disturb on.
    settle(&mut ann_window, "Cy's and Bob's presence", |h| {
        has_label(h, "logged off") && has_label(h, "demo: Logged off · im: Ready")
    });
    ok(&*bob, AgentCommand::SetDnd { on: true });
    settle(&mut ann_window, "Bob's Do Not Disturb", |h| {
        has_label(h, "Do Not Disturb · demo: Logged off · im: Ready")
    });
    ok(&*bob, AgentCommand::SetDnd { on: false });
    ann_window.get_by_label("Find a colleague").focus();
    ann_window.get_by_label("Find a colleague").type_text("bo");
    settle(&mut ann_window, "only Bob left", |h| {
        has_label(h, "Bob (bob)") && !has_label(h, "Cy (cy)")
    });
    click(&mut ann_window, "IM Bob");
    // The IM opens on Ann's desk, saying it is not saved, and rings on Bob's.
    settle(&mut ann_window, "the IM open and marked not saved", |h| {
        has_label(h, "not saved")
    });
    until(&bob_sees, "the IM ringing for Bob", |s| {
        on_im(s)
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }) && i.never_saved)
    });
    // On Bob's desk window it rings softly: the short, quiet chime, not a customer's ring.
    let rings = team.install.dir.path().join("bob-rings");
    std::fs::create_dir_all(&rings).expect("rings dir");
    let bob_window = Desk::new(
        desk(&team.nats.url, "bob"),
        Box::new(WavSink::new(&rings)),
        || {},
    );
    let mut bob_window = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, desk: &mut Desk| desk.ui(ui), bob_window);
    settle(&mut bob_window, "the IM rung on Bob's desk", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.never_saved && rings.join(format!("ring-{}.wav", i.key)).is_file())
    });
    let key = bob_window
        .state()
        .snapshot()
        .interactions
        .iter()
        .find(|i| i.never_saved)
        .map(|i| i.key)
        .expect("the IM");
    let rung = std::fs::read(rings.join(format!("ring-{key}.wav"))).expect("ring");
    assert_eq!(rung, chime_wav(), "an IM rings with the soft chime");
    assert_ne!(rung, ring_tone_wav());
}
