//! Interactions side by side (issue 22), driven headless through the desk's real widgets over the
//! real core and the demo chat plugin (whose simulated customer answers every message): each
//! interaction keeps its draft, a customer message in an interaction not on screen shows as an
//! unread badge and a highlighted tab, and the composer is multi-line (Enter sends, Shift+Enter
//! starts a new line).

use crate::desk_glance::ready_on_all;
use crate::shell::{Rig, accept_new_chat, click, has_label, settle};
use agentdesk_host::service::{Answer, Query};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn composer(desk: &Harness<'_, agentdesk_ui::desk::Desk>) -> String {
    desk.get_by_label("Message").value().unwrap_or_default()
}

/// The agent's lines of `key` in the core's live transcript.
fn agent_lines(rig: &Rig, key: u64) -> Vec<String> {
    let Answer::LiveLines(lines) = rig
        .core
        .query(Query::Live {
            agent: "ann".into(),
            key,
            offset: 0,
            limit: 100,
        })
        .expect("live transcript")
    else {
        panic!("live lines")
    };
    lines
        .into_iter()
        .filter(|l| l.from_agent)
        .map(|l| l.line.text)
        .collect()
}

#[test]
fn drafts_stay_with_their_interaction_and_a_background_message_shows_unread() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    let a = accept_new_chat(&rig, &mut ann);
    let b = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    let (entry_a, entry_b) = (format!("#{a} Demo Customer"), format!("#{b} Demo Customer"));

    // A draft in A survives a visit to B.
    click(&mut ann, &entry_a);
    ann.get_by_label("Message").focus();
    ann.get_by_label("Message").type_text("draft for A");
    ann.step();
    click(&mut ann, &entry_b);
    assert_eq!(composer(&ann), "", "B has its own (empty) composer");
    click(&mut ann, &entry_a);
    assert_eq!(composer(&ann), "draft for A", "A's draft kept");

    // The customer writes in A while B is on screen.
    click(&mut ann, &entry_b);
    settle(&mut ann, "nothing unread yet", |h| h.state().unread(a) == 0);
    rig.core
        .send_message("ann", a, "Are you still there?")
        .expect("sent in A");
    let highlighted = format!("#{a} conversation (1 new)");
    settle(&mut ann, "A's tab highlighted", |h| {
        has_label(h, &highlighted)
    });
    assert_eq!(ann.state().unread(a), 1, "the customer's answer, not ours");
    assert_eq!(ann.state().unread(b), 0, "B is on screen");
    assert!(
        has_label(&ann, &format!("#{a} Demo Customer (1 new)")),
        "A's entry in the list counts it"
    );
    click(&mut ann, &highlighted);
    settle(&mut ann, "A read", |h| {
        h.state().unread(a) == 0 && has_label(h, &format!("#{a} conversation"))
    });
    assert_eq!(composer(&ann), "draft for A", "still A's draft");
}

#[test]
fn the_composer_sends_on_enter_and_starts_a_new_line_on_shift_enter() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    settle(&mut ann, "the composer", |h| has_label(h, "Message"));
    ann.get_by_label("Message").focus();
    ann.get_by_label("Message").type_text("first line");
    ann.step();
    ann.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    ann.step();
    ann.get_by_label("Message").type_text("second line");
    ann.step();
    assert_eq!(composer(&ann), "first line\nsecond line");
    assert!(agent_lines(&rig, chat).is_empty(), "nothing sent yet");
    ann.key_press(egui::Key::Enter);
    ann.step();
    settle(&mut ann, "the composer emptied", |h| composer(h).is_empty());
    assert_eq!(agent_lines(&rig, chat), ["first line\nsecond line"]);
}

#[test]
fn the_open_tab_is_remembered_for_the_next_desk() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    click(&mut ann, "History");
    let layout = ann.state().layout();
    let saved = layout.to_json();
    drop(ann);
    let mut again = rig.desk("ann");
    assert_eq!(again.state().tab(), agentdesk_ui::desk::Tab::Work);
    let restored = agentdesk_ui::desk::layout::Layout::load(Some(&saved));
    again.state_mut().restore_layout(&restored);
    assert_eq!(again.state().tab(), agentdesk_ui::desk::Tab::History);
}

/// What the demo channel would say of its conversation `n` (the demo numbers them from 1).
fn rules(n: usize, can_reply: bool, max_length: Option<u32>) -> plugin_api::Event {
    plugin_api::Event::ConversationRules(plugin_api::ConversationRules {
        interaction: plugin_api::InteractionId::new(format!("demo-{n}")),
        can_reply,
        reason: if can_reply {
            String::new()
        } else {
            "the 24-hour reply window closed".into()
        },
        window_closes_at: None,
        max_length,
        counting: plugin_api::LengthCounting::Characters,
        public: false,
    })
}

#[test]
fn the_composer_counts_characters_where_the_channel_limits_length_and_says_when_replies_close() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    settle(&mut ann, "the composer", |h| has_label(h, "Message"));
    rig.core
        .plugin_event("agentdesk.demo", rules(1, true, Some(10)))
        .expect("rules");
    settle(&mut ann, "the counter", |h| has_label(h, "0/10"));
    ann.get_by_label("Message").focus();
    ann.get_by_label("Message").type_text("hello");
    ann.step();
    assert!(has_label(&ann, "5/10"));
    ann.get_by_label("Message").type_text(" there, world");
    ann.step();
    assert!(has_label(&ann, "18/10"), "past the limit");
    ann.key_press(egui::Key::Enter);
    ann.step();
    ann.get_by_label("Send").click();
    ann.step();
    assert!(
        agent_lines(&rig, chat).is_empty(),
        "nothing too long is sent"
    );
    rig.core
        .plugin_event("agentdesk.demo", rules(1, false, Some(10)))
        .expect("rules");
    settle(&mut ann, "replies closed", |h| {
        has_label(h, "Replies are closed: the 24-hour reply window closed")
    });
    // A read receipt (plugin-api 1.2) shows under the transcript; a later delivery one does not
    // take it back.
    for state in [
        plugin_api::ReceiptState::Read,
        plugin_api::ReceiptState::Delivered,
    ] {
        let receipt = plugin_api::Event::Receipt(plugin_api::Receipt {
            interaction: plugin_api::InteractionId::new("demo-1"),
            state,
            message: None,
            up_to: Some(1),
        });
        rig.core
            .plugin_event("agentdesk.demo", receipt)
            .expect("receipt");
        settle(&mut ann, "the read receipt", |h| {
            has_label(h, "Read by the customer")
        });
    }
}

/// Picks `item` in the combo box `combo` (opening it unless it is still open: a click through
/// AccessKit does not close it).
fn choose(desk: &mut Harness<'_, agentdesk_ui::desk::Desk>, combo: &str, item: &str) {
    if !has_label(desk, item) {
        click(desk, combo);
    }
    click(desk, item);
}

#[test]
fn history_opens_with_the_agents_recent_interactions_filtered_by_channel_and_outcome() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "History");
    let entry = |h: &Harness<'_, agentdesk_ui::desk::Desk>| {
        h.query_by_label_contains(&format!("#{chat} demo "))
            .is_some()
    };
    settle(&mut ann, "the open chat among the recent ones", |h| {
        entry(h) && has_label(h, "Last 24 hours (1)")
    });
    choose(&mut ann, "Channel", "voice");
    settle(&mut ann, "no voice interaction", |h| {
        !entry(h) && has_label(h, "nothing handled yet")
    });
    choose(&mut ann, "Channel", "all channels");
    choose(&mut ann, "Outcome", "open");
    settle(&mut ann, "the chat is open", entry);
    choose(&mut ann, "Outcome", "done");
    settle(&mut ann, "and not done", |h| !entry(h));
}

#[test]
fn a_standard_response_is_found_with_a_slash_filled_in_and_an_unknown_placeholder_holds_send() {
    let rig = Rig::with_config(
        "[[core.responses]]\nname = \"Greeting\"\ncategory = \"Openers\"\n\
         text = \"Hello {contact.first_name}, this is {agent.name}.\"\n\
         [[core.responses]]\nname = \"Order status\"\ncategory = \"Orders\"\n\
         text = \"Order {order.id} left our warehouse today.\"\n\
         [[core.responses]]\nname = \"Billing only\"\nqueues = [\"billing\"]\ntext = \"Not for chats\"\n",
    );
    let mut ann = rig.desk("ann");
    ready_on_all(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    settle(&mut ann, "the composer", |h| has_label(h, "Message"));
    ann.get_by_label("Message").focus();
    ann.get_by_label("Message").type_text("/");
    ann.step();
    settle(&mut ann, "the responses of the chat's queue", |h| {
        has_label(h, "Openers: Greeting") && has_label(h, "Orders: Order status")
    });
    assert!(!has_label(&ann, "Billing only"), "another queue's response");
    ann.get_by_label("Message").type_text("greet");
    settle(&mut ann, "the list filtered", |h| {
        !has_label(h, "Orders: Order status") && has_label(h, "Openers: Greeting")
    });
    ann.key_press(egui::Key::Enter);
    ann.step();
    assert_eq!(composer(&ann), "Hello Demo, this is Ann.", "filled in");
    assert!(
        agent_lines(&rig, chat).is_empty(),
        "inserted for editing, not sent"
    );

    // A placeholder the desk cannot fill stays in the text and holds Send back.
    ann.get_by_label("Message").focus();
    ann.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    ann.step();
    ann.get_by_label("Message").type_text("/order");
    ann.step();
    click(&mut ann, "Orders: Order status");
    assert_eq!(composer(&ann), "Order {order.id} left our warehouse today.");
    settle(&mut ann, "the warning", |h| {
        has_label(
            h,
            "Fill in {order.id} before sending (the desk does not know it)",
        )
    });
    ann.get_by_label("Send").click();
    ann.step();
    assert!(
        agent_lines(&rig, chat).is_empty(),
        "not sent with the placeholder"
    );
}
