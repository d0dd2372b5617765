//! The desk at a glance and never missing work (issue 22), driven headless through its real
//! widgets over the real core and the demo chat plugin: the global state control and the window
//! title, the offer toast's countdown, and the notice a missed offer leaves.

use crate::shell::{Rig, click, has_label, settle};
use agentdesk_host::core::{ChannelState, InteractionState};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::Duration;

fn state(rig: &Rig, channel: &str) -> ChannelState {
    rig.snapshot("ann")
        .channels
        .into_iter()
        .find(|c| c.channel == channel)
        .map(|c| c.state)
        .expect("assigned")
}

/// The key of the offer ringing at the desk's agent, once there is one.
fn ringing(desk: &mut Harness<'_, agentdesk_ui::desk::Desk>) -> u64 {
    settle(desk, "an offer", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    desk.state()
        .snapshot()
        .interactions
        .iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .map(|i| i.key)
        .expect("offered")
}

/// Ready on every channel through the global control, once the desk knows its channels.
pub(crate) fn ready_on_all(desk: &mut Harness<'_, agentdesk_ui::desk::Desk>) {
    settle(desk, "the first snapshot", |h| {
        h.state().title() == "Logged off — Ann · agentdesk"
    });
    click(desk, "Ready on all");
    settle(desk, "Ready", |h| {
        h.state().title() == "Ready — Ann · agentdesk"
    });
}

#[test]
fn the_global_control_sets_every_channel_and_the_title_sums_the_agent_up() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    settle(&mut ann, "the first snapshot", |h| {
        h.state().title() == "Logged off — Ann · agentdesk"
    });
    click(&mut ann, "Ready on all");
    settle(&mut ann, "both channels Ready", |h| {
        h.state()
            .snapshot()
            .channels
            .iter()
            .all(|c| c.state == ChannelState::Ready)
    });
    assert_eq!(state(&rig, "demo"), ChannelState::Ready);
    assert_eq!(state(&rig, "voice"), ChannelState::Ready);
    settle(&mut ann, "the title", |h| {
        h.state().title() == "Ready — Ann · agentdesk"
    });
    assert!(has_label(&ann, "State: Ready"), "the global state in words");

    rig.new_chat();
    let chat = ringing(&mut ann);
    click(&mut ann, &format!("Accept #{chat}"));
    settle(&mut ann, "the title counting the chat", |h| {
        h.state().title() == "Ready · 1 chat — Ann · agentdesk"
    });

    click(&mut ann, "Not Ready on all");
    click(&mut ann, "Lunch");
    settle(&mut ann, "every channel out of Ready", |h| {
        h.state()
            .snapshot()
            .channels
            .iter()
            .all(|c| c.state != ChannelState::Ready)
    });
    // The chat keeps demo busy: Not Ready waits for it (Pending); voice is Not Ready at once.
    let lunch = || "Lunch".to_string();
    assert_eq!(
        state(&rig, "demo"),
        ChannelState::Pending { reason: lunch() }
    );
    assert_eq!(
        state(&rig, "voice"),
        ChannelState::NotReady { reason: lunch() }
    );
    settle(&mut ann, "the title", |h| {
        h.state().title() == "Pending · 1 chat — Ann · agentdesk"
    });

    click(&mut ann, "DND");
    assert!(rig.snapshot("ann").dnd, "Do Not Disturb on");
    settle(&mut ann, "the title", |h| {
        h.state().title() == "Do Not Disturb · 1 chat — Ann · agentdesk"
    });
    click(&mut ann, "DND");
    assert!(!rig.snapshot("ann").dnd, "and off again");
    click(&mut ann, "Ready on all");
    assert_eq!(state(&rig, "voice"), ChannelState::Ready);
}

/// The seconds an offer toast says are left ("answer within 0:19" → 19).
fn seconds_left(desk: &Harness<'_, agentdesk_ui::desk::Desk>) -> u64 {
    let node = format!("{:?}", desk.get_by_label_contains("answer within "));
    let at = node.find("answer within ").expect("the countdown") + "answer within ".len();
    let clock: String = node[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .collect();
    let (m, s) = clock.split_once(':').expect("m:ss");
    m.parse::<u64>().expect("minutes") * 60 + s.parse::<u64>().expect("seconds")
}

#[test]
fn the_offer_toast_shows_contact_queue_and_a_running_countdown() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    rig.new_chat();
    let key = ringing(&mut ann);
    settle(&mut ann, "the toast", |h| {
        has_label(h, &format!("Accept #{key}"))
    });
    assert!(
        has_label(&ann, "CHAT") && has_label(&ann, "Demo Customer"),
        "the icon and the contact"
    );
    assert!(
        ann.query_by_label_contains("on demo · queue ").is_some(),
        "the channel and the queue"
    );
    assert!(ann.query_by_label_contains("waiting 0:").is_some());
    let first = seconds_left(&ann);
    assert!((15..=20).contains(&first), "a 20 s offer: {first}");
    std::thread::sleep(Duration::from_millis(2_100));
    ann.step();
    let later = seconds_left(&ann);
    assert!(
        later + 2 <= first && later + 4 >= first,
        "the countdown runs: {first} s, then {later} s"
    );
    click(&mut ann, &format!("Reject #{key}"));
    settle(&mut ann, "the toast gone", |h| {
        !has_label(h, &format!("Accept #{key}"))
    });
}

#[test]
fn a_missed_offer_leaves_a_notice_whose_ready_button_brings_the_work_back() {
    let rig = Rig::with_demo_policy("capacity = 2\nanswer_timeout_secs = 1\n");
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    rig.new_chat();
    let key = ringing(&mut ann);
    // Nobody answers: the offer rings out, the core sets demo Not Ready (missed offer).
    settle(&mut ann, "the missed-offer notice", |h| {
        h.query_by_label_contains(&format!("Missed conversation #{key} from Demo Customer"))
            .is_some()
    });
    assert_eq!(
        state(&rig, "demo"),
        ChannelState::NotReady {
            reason: "missed-offer".into()
        }
    );
    assert!(
        ann.query_by_label_contains("Set it Ready to take work again")
            .is_some()
    );
    click(&mut ann, "Ready again on demo");
    assert_eq!(state(&rig, "demo"), ChannelState::Ready);
    settle(&mut ann, "the notice gone", |h| {
        !has_label(h, "Ready again on demo")
    });
    // Nobody else is Ready: the chat waited in its queue and rings at Ann again.
    let again = ringing(&mut ann);
    assert_eq!(again, key, "the missed chat is offered again");
}
