//! Links out of an interaction in the desk: a web link in case data (a co-browse viewer link)
//! opens in the system browser, and a co-browse code typed on a call reaches the core.

use crate::shell::{Rig, accept_new_chat, click, settle};
use agentdesk_client::InteractionState;
use agentdesk_ui::desk::links::{case_data_grid, is_web_link};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use plugin_api::CaseField;

#[test]
fn only_http_and_https_addresses_are_web_links() {
    for link in [
        "https://hub.example.com/view/abc",
        "HTTP://127.0.0.1:8792/view/x",
    ] {
        assert!(is_web_link(link), "{link}");
    }
    for not in [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "https://a b",
        "A-00042",
        "",
    ] {
        assert!(!is_web_link(not), "{not}");
    }
}

#[test]
fn a_viewer_link_in_case_data_opens_in_the_browser_and_other_values_are_text() {
    let link = "http://127.0.0.1:8792/view/one-time-token";
    let fields = vec![
        CaseField {
            key: "view".into(),
            label: Some("Live view".into()),
            value: link.into(),
        },
        CaseField {
            key: "code".into(),
            label: Some("Session code".into()),
            value: "javascript:alert(1)".into(),
        },
    ];
    let mut harness = Harness::new_ui(move |ui| case_data_grid(ui, 7, &fields));
    harness.get_by_label("javascript:alert(1)");
    harness.get_by_label(link).click();
    harness.step();
    let opened: Vec<String> = harness
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|c| match c {
            egui::OutputCommand::OpenUrl(open) => Some(open.url.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(opened, vec![link.to_string()]);
}

#[test]
fn a_cobrowse_code_typed_on_a_call_is_taken_by_the_core_and_a_bad_one_refused() {
    let rig = Rig::with_channels(&["demo", "voice", "cobrowse"]);
    let mut ann = rig.desk("ann");
    click(&mut ann, "My Channels");
    for channel in ["demo", "voice"] {
        click(&mut ann, &format!("Log on {channel}"));
        click(&mut ann, &format!("Ready {channel}"));
    }
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    click(&mut ann, "Party actions");
    click(&mut ann, "Call +15550100");
    settle(&mut ann, "the call, active", |h| {
        h.state().snapshot().interactions.iter().any(|i| {
            i.channel == "voice" && i.state == InteractionState::Active && i.linked.contains(&chat)
        })
    });
    let call = ann
        .state()
        .snapshot()
        .interactions
        .iter()
        .find(|i| i.channel == "voice")
        .map(|i| i.key)
        .expect("call");
    click(&mut ann, &format!("#{call} Demo Customer"));
    // Too long to be a code: the core refuses it, and the desk says so at the call.
    ann.get_by_label("Co-browse code").focus();
    ann.get_by_label("Co-browse code")
        .type_text(&"9".repeat(65));
    ann.step();
    click(&mut ann, "Link code");
    settle(&mut ann, "the refusal", |h| {
        h.query_by_label_contains("session code not kept").is_some()
    });
    ann.get_by_label("Co-browse code").focus();
    ann.get_by_label("Co-browse code").type_text("123 456 789");
    ann.step();
    click(&mut ann, "Link code");
    // Answered, and not refused (a code no session names yet is kept for when it comes).
    settle(&mut ann, "the code taken", |h| {
        !h.state().is_waiting() && h.query_by_label_contains("session code not kept").is_none()
    });
}
