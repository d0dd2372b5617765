//! The golden journal: a working day written by the core through its commands, committed under
//! `host/tests/golden/`, and replayed by a test that checks the resulting state and time-in-state
//! to the millisecond. A change that breaks reading journals already on customers' disks fails
//! here. Test-only.
//!
//! The files are never rewritten by a normal test run: `AGENTDESK_WRITE_GOLDEN=1 cargo test -p
//! agentdesk-host golden` writes them again, which is only right when the day itself changes
//! (a new event kind to cover), never to make a failing replay pass.

use super::testkit::*;
use super::*;
use crate::storage::Journal;
use plugin_api::{Address, EndReason, Ended, Event, InteractionId, Route};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The day's configuration (its own, so that changing the other tests' never changes it).
const GOLDEN_CONFIG: &str = r#"
[core]
not_ready_reasons = ["break", "lunch"]
wrap_up_codes = [{ code = "sale", label = "Sale" }, { code = "info", label = "Information" }]

[channels.voice]
answer_timeout_secs = 15
acw = { mode = "timed", secs = 30 }

[channels.email]
acw = { mode = "extendable", secs = 10 }

[[agents]]
id = "ann"
name = "Ann"
channels = "all"
extension = "101"

[[agents]]
id = "bob"
name = "Bob"
channels = ["chat", "email"]
"#;

/// Every event kind the core journals (`CoreEvent::kind`).
const EVERY_KIND: [&str; 33] = [
    "agent-logged-in",
    "agent-logged-out",
    "channel-state-changed",
    "dnd-changed",
    "forwarding-changed",
    "interaction-arrived",
    "interaction-offered",
    "interaction-accepted",
    "interaction-declined",
    "offer-missed",
    "interaction-rejected",
    "interaction-withdrawn",
    "interaction-forwarded",
    "interaction-held",
    "hold-requested",
    "hold-refused",
    "interaction-resumed",
    "interaction-transferred",
    "transfer-out-requested",
    "interaction-ended",
    "interaction-abandoned",
    "interaction-done",
    "interaction-parked",
    "interaction-unparked",
    "consultation-started",
    "conference-started",
    "transferred-after-consultation",
    "consultation-ended",
    "conference-left",
    "outbound-started",
    "plugin-id-linked",
    "roster-changed",
    "interaction-linked",
];

/// Events per journal row in the golden files (rows of several sizes, like group commits).
const ROW: usize = 7;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The policy the day runs under: the plugin "p" declared every command kind (so hold and
/// resume wait for its answer).
fn golden_policy() -> Policy {
    let mut policy = policy_of(GOLDEN_CONFIG);
    policy.capabilities.insert(
        "p".into(),
        plugin_api::Command::KNOWN_KINDS
            .iter()
            .map(|k| k.to_string())
            .collect(),
    );
    policy
}

fn done(key: InteractionKey, wrap_up: Option<&str>) -> AgentCommand {
    AgentCommand::MarkDone {
        key,
        wrap_up: wrap_up.map(str::to_string),
        next: None,
    }
}

fn offered_to(day: &Day, key: InteractionKey) -> String {
    match day.state(key) {
        InteractionState::Offered { agent, .. } => agent,
        other => panic!("{key} is {other:?}, not offered"),
    }
}

fn open_consultation(day: &Day, about: InteractionKey) -> InteractionKey {
    day.core
        .interactions()
        .find(|i| i.consult.as_ref().is_some_and(|c| c.about == about) && !i.state.is_closed())
        .map(|i| i.key)
        .expect("an open consultation")
}

/// The working day, driven through commands and plugin events only.
fn working_day() -> Day {
    let mut day = Day::from_config_text(GOLDEN_CONFIG);
    day.core = Core::new(golden_policy(), day.now);
    // A new journal records the team first, as the service does at start.
    let (_, recorded) = day.core.reconfigure(day.now, golden_policy());
    day.journal.extend(recorded);
    day.ready("ann", &["voice", "chat", "email"]);
    day.advance(5);
    day.ready("bob", &["chat", "email"]);
    day.ok("ann", AgentCommand::SetDnd { on: true });
    day.advance(10);
    day.ok("ann", AgentCommand::SetDnd { on: false });

    // A chat: hold asked and confirmed, resume refused by the channel then confirmed.
    let chat = day.offer("chat");
    let first = offered_to(&day, chat);
    day.ok(&first, AgentCommand::Accept { key: chat });
    day.advance(60);
    day.ok(&first, AgentCommand::Hold { key: chat });
    let held = day.core.channel_answered(day.now, chat, "hold", Ok(()));
    day.journal.extend(held);
    day.advance(15);
    day.ok(&first, AgentCommand::Resume { key: chat });
    let refused = day
        .core
        .channel_answered(day.now, chat, "resume", Err("line busy".into()));
    day.journal.extend(refused);
    day.ok(&first, AgentCommand::Resume { key: chat });
    let resumed = day.core.channel_answered(day.now, chat, "resume", Ok(()));
    day.journal.extend(resumed);

    // Consultations about it: one ended, one turned into a conference, one into a transfer.
    let colleague = if first == "ann" { "bob" } else { "ann" };
    let consult = |day: &mut Day| {
        day.ok(
            &first,
            AgentCommand::Consult {
                key: chat,
                colleague: colleague.into(),
            },
        );
        let c = open_consultation(day, chat);
        day.ok(colleague, AgentCommand::Accept { key: c });
        day.advance(20);
        c
    };
    let c = consult(&mut day);
    day.ok(colleague, AgentCommand::EndConsultation { consultation: c });
    let c = consult(&mut day);
    day.ok(&first, AgentCommand::Conference { consultation: c });
    day.advance(30);
    day.ok(colleague, AgentCommand::LeaveConference { key: chat });
    let c = consult(&mut day);
    day.ok(
        &first,
        AgentCommand::TransferAfterConsultation { consultation: c },
    );
    day.advance(45);
    day.ok(colleague, AgentCommand::End { key: chat });
    day.ok(colleague, done(chat, Some("sale")));

    // A chat declined by one agent and let ring out by the other; the contact gives up.
    let missed = day.offer("chat");
    let decliner = offered_to(&day, missed);
    day.ok(&decliner, AgentCommand::Decline { key: missed });
    day.advance(21);
    day.contact_leaves(missed);
    let everyone = ["ann", "bob"];
    for agent in everyone {
        if day.channel(agent, "chat") != ChannelState::Ready {
            day.ok(agent, cmd_ready("chat"));
        }
    }

    // A call; Not Ready (lunch) while on it is Pending; the call goes to an outside number,
    // then after-call work, then lunch.
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    day.advance(90);
    day.ok("ann", cmd_not_ready("voice", "lunch"));
    day.advance(30);
    day.ok(
        "ann",
        AgentCommand::Transfer {
            key: call,
            to: Route::extension("+1 555 0199"),
        },
    );
    day.contact_leaves(call);
    day.advance(20);
    day.ok("ann", done(call, Some("info")));
    day.advance(31);
    day.advance(600);
    day.ok("ann", cmd_ready("voice"));

    // A chat transferred blind to a queue reaches the other agent.
    let blind = day.offer("chat");
    let sender = offered_to(&day, blind);
    day.ok(&sender, AgentCommand::Accept { key: blind });
    day.advance(40);
    day.ok(
        &sender,
        AgentCommand::Transfer {
            key: blind,
            to: Route::queue("billing"),
        },
    );
    let receiver = offered_to(&day, blind);
    day.ok(&receiver, AgentCommand::Accept { key: blind });
    day.advance(120);
    day.ok(&receiver, AgentCommand::End { key: blind });
    day.ok(&receiver, done(blind, None));

    // An email parked in a workbin and taken back; its after-call work extended until done.
    let mail = day.offer("email");
    let writer = offered_to(&day, mail);
    day.ok(&writer, AgentCommand::Accept { key: mail });
    day.ok(
        &writer,
        AgentCommand::Park {
            key: mail,
            workbin: "later".into(),
        },
    );
    day.advance(300);
    day.ok(&writer, AgentCommand::Unpark { key: mail });
    day.advance(200);
    day.ok(&writer, AgentCommand::End { key: mail });
    day.ok(
        &writer,
        AgentCommand::ExtendAcw {
            channel: "email".into(),
            secs: None,
        },
    );
    day.advance(100);
    day.ok(&writer, done(mail, Some("sale")));

    // Forwarding: a call to Ann's extension goes to her mobile while it is set.
    let mobile = Address::phone("+15550199");
    day.ok(
        "ann",
        AgentCommand::SetForwarding {
            to: Some(mobile.clone()),
        },
    );
    day.offer_routed("voice", Route::extension("101"));
    day.ok("ann", AgentCommand::SetForwarding { to: None });

    // Nobody here takes faxes.
    day.offer("fax");

    // An outbound call the plugin names, which the contact ends.
    day.ok(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: Address::phone("+15550100"),
            from: None,
        },
    );
    let outbound = day.core.interactions().map(|i| i.key).max().expect("call");
    let linked = day
        .core
        .link_plugin_id(day.now, outbound, InteractionId::new("sip-call-77"));
    day.journal.extend(linked);
    day.advance(75);
    day.plugin(Event::Ended(Ended {
        interaction: InteractionId::new("sip-call-77"),
        reason: EndReason::ContactLeft,
        detail: String::new(),
    }));
    day.ok("ann", done(outbound, Some("info")));
    day.advance(31);

    // An email waits while everyone is on a break; its plugin is quarantined and it is withdrawn.
    for agent in everyone {
        day.ok(agent, cmd_not_ready("email", "break"));
    }
    day.offer("email");
    let isolated = day
        .core
        .isolate(day.now, "p", &["email".to_string()], "plugin quarantined");
    day.journal.extend(isolated.events);

    // The end of the day: a chat still open with whoever takes it; Bob logs out.
    day.advance(50);
    let open = day.offer("chat");
    let keeper = offered_to(&day, open);
    day.ok(&keeper, AgentCommand::Accept { key: open });
    day.advance(10);
    if keeper == "ann" {
        for channel in ["chat", "email"] {
            day.ok(
                "bob",
                AgentCommand::LogOffChannel {
                    channel: channel.into(),
                },
            );
        }
        day.ok("bob", AgentCommand::LogOut);
    } else {
        panic!("the last chat went to {keeper}; the day expects Ann (Bob logs out)");
    }
    day.advance(20);

    // A co-browse-like offer naming a session code waits until Ann types the code on her open
    // chat; it comes to her, linked to it, and she takes it.
    let linked = day.offer_routed("chat", Route::linked("123456789"));
    assert_eq!(day.state(linked), InteractionState::Queued);
    day.advance(15);
    day.ok(
        "ann",
        AgentCommand::LinkCode {
            key: open,
            code: "123 456 789".into(),
        },
    );
    assert_eq!(offered_to(&day, linked), "ann");
    day.ok("ann", AgentCommand::Accept { key: linked });
    day.advance(5);
    day
}

/// Writes `events` as a journal of today's layout and row format.
fn write_current(path: &Path, events: &[Stamped]) {
    let mut journal = Journal::open(path).expect("golden journal");
    for row in events.chunks(ROW) {
        journal.append(row).expect("append");
    }
}

/// Writes `events` as agentdesk wrote journals before row formats and schema versions (format 1).
fn write_format_1(path: &Path, events: &[Stamped]) {
    let conn = rusqlite::Connection::open(path).expect("old journal");
    conn.execute_batch(
        "CREATE TABLE journal (
            first_seq INTEGER PRIMARY KEY,
            last_seq  INTEGER NOT NULL,
            events    TEXT NOT NULL
         );",
    )
    .expect("old table");
    for row in events.chunks(ROW) {
        let json = serde_json::to_string(row).expect("format 1 is Stamped as serde writes it");
        conn.execute(
            "INSERT INTO journal (first_seq, last_seq, events) VALUES (?1, ?2, ?3)",
            rusqlite::params![row[0].seq as i64, row[row.len() - 1].seq as i64, json],
        )
        .expect("old row");
    }
}

#[test]
fn the_golden_working_day_journals_every_event_kind() {
    let day = working_day();
    let kinds: BTreeSet<&str> = day.journal.iter().map(|s| s.event.kind()).collect();
    let missing: Vec<&str> = EVERY_KIND
        .iter()
        .copied()
        .filter(|k| !kinds.contains(k))
        .collect();
    assert!(missing.is_empty(), "the day never journals {missing:?}");
    assert_eq!(
        kinds.len(),
        EVERY_KIND.len(),
        "a kind EVERY_KIND does not list"
    );
    day.core.check_invariants().expect("invariants");
    if std::env::var_os("AGENTDESK_WRITE_GOLDEN").is_some() {
        let dir = golden_dir();
        std::fs::create_dir_all(&dir).expect("golden dir");
        for (name, write) in [
            (
                "working-day.sqlite3",
                write_current as fn(&Path, &[Stamped]),
            ),
            ("working-day-format-1.sqlite3", write_format_1),
        ] {
            let path = dir.join(name);
            for stale in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{stale}", path.display()));
            }
            write(&path, &day.journal);
            // One self-contained file: the WAL is folded in when the last connection closes.
            assert!(!Path::new(&format!("{}-wal", path.display())).exists());
        }
        eprintln!("golden journals written to {}", dir.display());
    }
}

/// The state a journal leaves, in words: agents, open interactions, time-in-state, counters.
pub(crate) fn describe(core: &Core, now: Millis) -> String {
    let mut out = String::new();
    for agent in core.agents() {
        let _ = writeln!(
            out,
            "agent {} logged_in={} dnd={} forward_to={:?}",
            agent.id, agent.logged_in, agent.dnd, agent.forward_to
        );
        for (channel, ch) in &agent.channels {
            let _ = write!(
                out,
                "  {channel}: {:?} since {} load {}",
                ch.state, ch.since, ch.load
            );
            if let Some(label) = ch.state.label() {
                let so_far = core.time_in_state(&agent.id, channel, &label, now);
                let _ = write!(out, ", {label} to now {so_far}");
            }
            out.push('\n');
        }
    }
    for i in core.interactions() {
        let _ = writeln!(
            out,
            "interaction {} {} {:?} owner={:?} held={} handling={}",
            i.key,
            i.channel,
            i.state,
            i.owner,
            i.held,
            core.handling_time(i.key, now)
        );
    }
    for (agent, channel, label, ms) in core.stats().rows() {
        let _ = writeln!(
            out,
            "time {agent}/{channel}/{label}: closed {ms}, to now {}",
            core.time_in_state(agent, channel, label, now)
        );
    }
    let _ = write!(
        out,
        "last_seq {} dedup_keys {} next_timer {:?}",
        core.last_seq(),
        core.dedup_keys(),
        core.next_timer()
    );
    out
}

/// Replays a committed golden journal (a copy: opening migrates the file) into a fresh core.
fn replay_golden(name: &str) -> Core {
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join(name);
    std::fs::copy(golden_dir().join(name), &copy).expect("the golden journal is committed");
    let journal = Journal::open(&copy).expect("golden journal opens");
    let mut core = Core::new(golden_policy(), 1_000_000);
    journal
        .for_each_after(0, |stamped| core.replay(&stamped))
        .expect("every row reads");
    core.compact();
    core.check_invariants().expect("invariants after replay");
    core
}

/// The moment the figures are taken: after the day's last event (at 2,978,000; 2,943,000 in the
/// 1.4 day).
const END_OF_DAY: Millis = 3_000_000;

/// What the day leaves. Time-in-state in ms: `closed` spans, and `to now` with the open one.
const EXPECTED: &str = r#"agent ann logged_in=true dnd=false forward_to=None
  chat: Ready since 1000000 load 2, ready to now 2000000
  email: NotReady { reason: "break" } since 2883000 load 0, not-ready:break to now 117000
  voice: Ready since 2852000 load 0, ready to now 1319000
agent bob logged_in=false dnd=false forward_to=None
  chat: LoggedOff since 2943000 load 0
  email: LoggedOff since 2943000 load 0
interaction 13 chat Active owner=Some("ann") held=false handling=67000
interaction 14 chat Active owner=Some("ann") held=false handling=22000
time ann/chat/not-ready:logged-on: closed 0, to now 0
time ann/email/after-call-work: closed 400000, to now 400000
time ann/email/not-ready:logged-on: closed 0, to now 0
time ann/email/ready: closed 1483000, to now 1483000
time ann/voice/after-call-work: closed 20000, to now 20000
time ann/voice/not-ready:logged-on: closed 0, to now 0
time ann/voice/not-ready:lunch: closed 631000, to now 631000
time ann/voice/pending:lunch: closed 30000, to now 30000
time ann/voice/ready: closed 1171000, to now 1319000
time bob/chat/not-ready:logged-on: closed 0, to now 0
time bob/chat/not-ready:missed-offer: closed 0, to now 0
time bob/chat/ready: closed 1938000, to now 1938000
time bob/email/not-ready:break: closed 60000, to now 60000
time bob/email/not-ready:logged-on: closed 0, to now 0
time bob/email/ready: closed 1878000, to now 1878000
last_seq 100 dedup_keys 10 next_timer Some(1255000)"#;

/// What the journal written by the core of plugin-api 1.4 leaves (its day had no roster and no
/// linked offer).
const EXPECTED_1_4: &str = r#"agent ann logged_in=true dnd=false forward_to=None
  chat: Ready since 1000000 load 1, ready to now 2000000
  email: NotReady { reason: "break" } since 2883000 load 0, not-ready:break to now 117000
  voice: Ready since 2852000 load 0, ready to now 1319000
agent bob logged_in=false dnd=false forward_to=None
  chat: LoggedOff since 2943000 load 0
  email: LoggedOff since 2943000 load 0
interaction 13 chat Active owner=Some("ann") held=false handling=67000
time ann/chat/not-ready:logged-on: closed 0, to now 0
time ann/email/after-call-work: closed 400000, to now 400000
time ann/email/not-ready:logged-on: closed 0, to now 0
time ann/email/ready: closed 1483000, to now 1483000
time ann/voice/after-call-work: closed 20000, to now 20000
time ann/voice/not-ready:logged-on: closed 0, to now 0
time ann/voice/not-ready:lunch: closed 631000, to now 631000
time ann/voice/pending:lunch: closed 30000, to now 30000
time ann/voice/ready: closed 1171000, to now 1319000
time bob/chat/not-ready:logged-on: closed 0, to now 0
time bob/chat/not-ready:missed-offer: closed 0, to now 0
time bob/chat/ready: closed 1938000, to now 1938000
time bob/email/not-ready:break: closed 60000, to now 60000
time bob/email/not-ready:logged-on: closed 0, to now 0
time bob/email/ready: closed 1878000, to now 1878000
last_seq 95 dedup_keys 9 next_timer Some(1255000)"#;

#[test]
fn the_golden_journal_replays_to_the_same_state_and_time_in_state() {
    for (name, expected) in [
        ("working-day.sqlite3", EXPECTED),
        ("working-day-format-1.sqlite3", EXPECTED),
        // Written by the core of plugin-api 1.4 (before the team and links were journaled):
        // it still replays, to what it left then.
        ("working-day-1.4.sqlite3", EXPECTED_1_4),
    ] {
        let core = replay_golden(name);
        assert_eq!(describe(&core, END_OF_DAY), expected, "{name}");
    }
}

#[test]
fn a_snapshot_after_any_event_of_the_golden_day_plus_the_rest_replays_to_the_same_state() {
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("working-day.sqlite3");
    std::fs::copy(golden_dir().join("working-day.sqlite3"), &copy).expect("golden");
    let events = Journal::open(&copy).expect("open").load().expect("load");
    let whole = replay_golden("working-day.sqlite3");
    for cut in 0..=events.len() {
        let mut before = Core::new(golden_policy(), 1_000_000);
        for stamped in &events[..cut] {
            before.replay(stamped);
        }
        before.compact();
        let bytes = before.snapshot().encode().expect("encode");
        let snapshot =
            engine::StateSnapshot::decode(engine::SNAPSHOT_FORMAT, &bytes).expect("decode");
        let mut core = Core::restore(golden_policy(), 1_000_000, snapshot).expect("restore");
        core.check_invariants()
            .unwrap_or_else(|e| panic!("after event {cut}: {e}"));
        for stamped in &events[cut..] {
            core.replay(stamped);
        }
        core.compact();
        core.check_invariants()
            .unwrap_or_else(|e| panic!("snapshot after event {cut}, then the rest: {e}"));
        assert_eq!(
            describe(&core, END_OF_DAY),
            EXPECTED,
            "snapshot after event {cut}"
        );
        assert_eq!(
            core.snapshot().normalised(),
            whole.snapshot().normalised(),
            "snapshot after event {cut}"
        );
    }
}
