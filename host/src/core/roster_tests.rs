//! The team changing while the core runs: work in hand survives, withdrawn channels get no new
//! offers, the roster is journaled so a replay (with any configuration file) agrees.

use super::testkit::*;
use super::*;
use crate::core::engine::RosterChange;

/// The test team with Bob's chat withdrawn, Carol added and the break reason renamed.
const RELOADED: &str = r#"
[core]
not_ready_reasons = ["coffee", "lunch"]
wrap_up_codes = [{ code = "sale", label = "Sale" }, { code = "info", label = "Information" }]

[channels.chat]
capacity = 1

[[agents]]
id = "ann"
name = "Ann"
channels = "all"
extension = "101"

[[agents]]
id = "bob"
name = "Bob"
channels = ["email"]

[[agents]]
id = "carol"
name = "Carol"
channels = ["chat"]
"#;

fn reload(day: &mut Day, text: &str) -> RosterChange {
    let (change, events) = day.core.reconfigure(day.now, policy_of(text));
    day.journal.extend(events);
    day.core
        .check_invariants()
        .expect("invariants after the reload");
    change
}

fn done(day: &mut Day, agent: &str, key: InteractionKey) {
    day.ok(
        agent,
        AgentCommand::MarkDone {
            key,
            wrap_up: Some("info".into()),
            next: None,
        },
    );
}

#[test]
fn a_withdrawn_channel_finishes_the_work_in_hand_and_gets_no_new_offers() {
    let mut day = Day::new();
    day.ready("bob", &["chat", "email"]);
    let chat = day.offer("chat");
    day.ok("bob", AgentCommand::Accept { key: chat });
    let change = reload(&mut day, RELOADED);
    assert_eq!(change.added, vec!["carol".to_string()]);
    assert_eq!(
        change.withdrawn,
        vec![("bob".to_string(), "chat".to_string())]
    );
    assert!(change.removed.is_empty());
    // Bob's chat is still his, and his channel still shows while he finishes it.
    assert_eq!(day.owner(chat), Some("bob".into()));
    assert_eq!(day.state(chat), InteractionState::Active);
    assert_eq!(day.channel("bob", "chat"), ChannelState::Ready);
    // A new chat goes to nobody but Carol, once she is Ready.
    let next = day.offer("chat");
    assert_eq!(day.state(next), InteractionState::Queued);
    day.ready("carol", &["chat"]);
    assert!(day.offered_to(next, "carol"));
    // Bob cannot make it Ready again, and his chat stays workable.
    let refused = day.run("bob", cmd_ready("chat")).expect_err("withdrawn");
    assert!(matches!(refused, CoreError::ChannelNotAssigned { .. }));
    day.contact_leaves(chat);
    done(&mut day, "bob", chat);
    // Done: the channel is logged off and forgotten; email goes on.
    let bob = day.core.agent("bob").expect("bob");
    assert!(!bob.channels.contains_key("chat"), "{:?}", bob.channels);
    assert!(bob.channels.contains_key("email"));
    day.core.check_invariants().expect("invariants");
}

#[test]
fn new_rules_apply_from_the_next_decision() {
    let mut day = Day::new();
    // What the plugins declared is theirs, not the file's: a reload keeps it.
    let mut declared = day.core.policy().clone();
    declared.never_saved.insert("im".into());
    day.core = Core::new(declared, day.now);
    day.ready("ann", &["chat"]);
    reload(&mut day, RELOADED);
    // `break` is gone, `coffee` is new.
    let refused = day
        .run("ann", cmd_not_ready("chat", "break"))
        .expect_err("break is no longer a reason");
    assert!(matches!(refused, CoreError::UnknownReason { .. }));
    day.ok("ann", cmd_not_ready("chat", "coffee"));
    day.ok("ann", cmd_ready("chat"));
    // Capacity 1 on chat now: the second chat waits.
    let first = day.offer("chat");
    day.ok("ann", AgentCommand::Accept { key: first });
    let second = day.offer("chat");
    assert_eq!(day.state(second), InteractionState::Queued);
    assert!(
        day.core.policy().never_saves("im"),
        "never saved survives a reload"
    );
}

#[test]
fn an_agent_taken_out_of_the_team_keeps_their_work_then_cannot_log_in() {
    let mut day = Day::new();
    day.ready("bob", &["email"]);
    let email = day.offer("email");
    day.ok("bob", AgentCommand::Accept { key: email });
    let without_bob = CONFIG.replace(
        "[[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"chat\", \"email\"]\n",
        "",
    );
    let change = reload(&mut day, &without_bob);
    assert_eq!(change.removed, vec!["bob".to_string()]);
    assert_eq!(day.owner(email), Some("bob".into()));
    day.contact_leaves(email);
    done(&mut day, "bob", email);
    assert!(
        day.core.agent("bob").is_none(),
        "Bob is gone once his work is done"
    );
    let refused = day
        .run("bob", AgentCommand::LogIn)
        .expect_err("not in the team");
    assert!(matches!(refused, CoreError::UnknownAgent { .. }));
    day.core.check_invariants().expect("invariants");
}

#[test]
fn the_journaled_roster_replays_to_the_same_team_whatever_the_file_says() {
    let mut day = Day::new();
    // A new journal records the team it started with.
    reload(&mut day, CONFIG);
    assert!(day.core.roster_recorded());
    day.ready("bob", &["chat", "email"]);
    let chat = day.offer("chat");
    day.ok("bob", AgentCommand::Accept { key: chat });
    reload(&mut day, RELOADED);
    day.ready("carol", &["chat"]);
    let carols = day.offer("chat");
    // The hub restarts with the new file: the replay starts from it, yet every event before the
    // reload was made under the old team, which the journal brings back first.
    let mut replayed = Core::new(policy_of(RELOADED), 1_000_000);
    for stamped in &day.journal {
        replayed.replay(stamped);
    }
    assert_eq!(
        replayed.agents().collect::<Vec<_>>(),
        day.core.agents().collect::<Vec<_>>()
    );
    assert_eq!(
        replayed.interactions().collect::<Vec<_>>(),
        day.core.interactions().collect::<Vec<_>>()
    );
    assert!(day.offered_to(carols, "carol"));
    replayed
        .check_invariants()
        .expect("invariants after replay");
}

#[test]
fn a_reload_without_changes_journals_nothing() {
    let mut day = Day::new();
    reload(&mut day, CONFIG);
    let before = day.journal.len();
    let change = reload(&mut day, CONFIG);
    assert!(change.is_empty());
    assert_eq!(day.journal.len(), before);
}
