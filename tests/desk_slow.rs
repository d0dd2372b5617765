//! The desk over a core whose answers and snapshots come late on purpose (`agentdesk_client::
//! slow::Slow`, as over a slow network): it keeps drawing frames, shows what is pending at the
//! control that was clicked, settles when the answer comes, and shows a refusal there too.

use crate::shell::{Rig, accept_new_chat, click, settle};
use agentdesk_client::slow::Slow;
use agentdesk_client::{ChannelState, DeskClient};
use agentdesk_ui::desk::Desk;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::Duration;

/// How late every answer and snapshot comes.
const DELAY: Duration = Duration::from_millis(400);

fn demo_state(desk: &Harness<'_, Desk>) -> Option<ChannelState> {
    desk.state()
        .snapshot()
        .channels
        .iter()
        .find(|c| c.channel == "demo")
        .map(|c| c.state.clone())
}

/// Steps frames while `label` is shown; returns how many were drawn.
fn frames_while_shown(desk: &mut Harness<'_, Desk>, label: &str) -> usize {
    let mut frames = 0;
    while desk.query_by_label(label).is_some() {
        desk.step();
        frames += 1;
        std::thread::sleep(Duration::from_millis(5));
        assert!(frames < 2_000, "`{label}` never went away");
    }
    frames
}

#[test]
fn over_a_slow_core_the_desk_keeps_drawing_shows_pending_where_clicked_and_then_the_answer() {
    let rig = Rig::new();
    let mut ann = rig.desk_with("ann", |c| {
        Box::new(Slow::new(c, DELAY)) as Box<dyn DeskClient>
    });
    // The first snapshot is late: the desk draws meanwhile and says it is connecting.
    ann.step();
    assert!(ann.query_by_label("connecting to the core").is_some());
    let connecting = frames_while_shown(&mut ann, "connecting to the core");
    assert!(connecting >= 5, "only {connecting} frames while connecting");

    click(&mut ann, "My Channels");
    click(&mut ann, "Log on demo");
    // The click returned at once: the control says the command is pending, and the desk has
    // not yet heard of it (its snapshot still shows the channel logged off).
    assert!(ann.query_by_label("Log on demo: pending").is_some());
    assert_eq!(demo_state(&ann), Some(ChannelState::LoggedOff));
    let pending = frames_while_shown(&mut ann, "Log on demo: pending");
    assert!(pending >= 5, "only {pending} frames while pending");
    settle(&mut ann, "the channel logged on", |h| {
        demo_state(h).is_some_and(|s| s != ChannelState::LoggedOff)
    });
    assert_eq!(ann.state().error(), None);

    // A refusal shows at the control clicked: logging off a channel with a chat open is refused.
    click(&mut ann, "Ready demo");
    settle(&mut ann, "Ready", |h| {
        demo_state(h) == Some(ChannelState::Ready)
    });
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "My Channels");
    click(&mut ann, "Log off demo");
    settle(&mut ann, "the refusal beside the channel", |h| {
        h.query_by_label_contains("Log off demo: ").is_some()
            && h.query_by_label("Log off demo: pending").is_none()
    });
    let refusal = format!("{:?}", ann.get_by_label_contains("Log off demo: "));
    assert!(refusal.contains("open interaction"), "{refusal}");
    assert!(
        ann.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.key == chat),
        "the chat stays"
    );
    assert_ne!(demo_state(&ann), Some(ChannelState::LoggedOff));
}
