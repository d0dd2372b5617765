//! The 1.x compatibility promise, both directions, with real libraries: a plugin built against a
//! newer minor (1.1, which added a command and an event kind) loads in this 1.0 host with its new
//! features off, and a plugin built against 1.0 loads and works in the real host crate rebuilt
//! against 1.1.

use crate::support::{Install, drain, status};
use agentdesk_host::plugins::SendError;
use agentdesk_tests::{Api, FixtureSpec, build_next_minor_host, install_fixture};
use plugin_api::{Command, Envelope, ErrorCode, Event, InvokeAction};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn offer() -> Command {
    Command::InvokeAction(InvokeAction {
        interaction: None,
        action: "offer".into(),
    })
}

#[test]
fn plugin_built_against_a_newer_minor_loads_in_this_host_with_new_features_off() {
    let install = Install::new();
    let newer = FixtureSpec {
        api: Api::NextMinor,
        ..FixtureSpec::new("newer")
    };
    install_fixture(&install.plugins, newer);
    let host = install.start(&[&newer.id()], "");
    let report = host.report(&newer.id()).expect("report");
    assert_eq!(report.status.word(), "loaded", "{report:#?}");
    assert_eq!(
        report.api_version.map(|v| v.to_string()).as_deref(),
        Some("1.1.0")
    );
    // The plugin declares the 1.1 command; this host has no such kind and never sends it.
    let hello = host.hello(&newer.id()).expect("hello");
    assert!(hello.supports("send-survey"));
    assert!(!Command::KNOWN_KINDS.contains(&"send-survey"));
    // Known vocabulary works; the 1.1 event arrives as Unknown and is counted, not a failure.
    host.send(&newer.id(), &offer()).expect("offer works");
    let events = drain(&host, Duration::from_millis(300));
    assert!(
        events.iter().any(|e| matches!(e.event, Event::Offer(_))),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.event, Event::Unknown(u) if u.kind == "sentiment-changed")),
        "{events:#?}"
    );
    let metrics = host.metrics(&newer.id()).expect("metrics");
    assert_eq!(metrics.events_unknown.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.events_malformed.load(Ordering::Relaxed), 0);
    assert_eq!(status(&host, &newer.id()).0, "loaded");
}

#[test]
fn plugin_built_against_1_0_loads_and_works_in_a_host_built_against_1_1() {
    let install = Install::new();
    let old = FixtureSpec::new("old");
    let newer = FixtureSpec {
        api: Api::NextMinor,
        ..FixtureSpec::new("next")
    };
    install_fixture(&install.plugins, old);
    install_fixture(&install.plugins, newer);
    let config = install.write_config(&[&old.id(), &newer.id()], "");
    let host_binary = build_next_minor_host();
    let output = std::process::Command::new(&host_binary)
        .arg(&config)
        .output()
        .expect("compat host runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "compat host failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let find = |key: &str, id: &str| {
        lines
            .iter()
            .find(|l| l[key] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} {id} in:\n{stdout}"))
    };
    assert_eq!(
        lines[0]["host_api"], "1.1.0",
        "the host must really be built against 1.1"
    );
    assert_eq!(find("report", &old.id())["status"], "loaded");
    assert_eq!(find("report", &newer.id())["status"], "loaded");

    let old_run = find("plugin", &old.id());
    assert!(
        old_run["offer"]
            .as_str()
            .unwrap_or("")
            .starts_with("Ok(Created"),
        "{old_run}"
    );
    assert_eq!(old_run["events"], serde_json::json!(["offer"]));
    // The 1.1 command: the host does not send it (not negotiated); forced, the 1.0 plugin answers
    // "unsupported" and keeps working.
    assert!(
        old_run["survey_negotiated"]
            .as_str()
            .unwrap_or("")
            .contains("Unsupported"),
        "{old_run}"
    );
    assert!(
        old_run["survey_forced"]
            .as_str()
            .unwrap_or("")
            .contains("UNSUPPORTED")
            || old_run["survey_forced"]
                .as_str()
                .unwrap_or("")
                .contains("code: ErrorCode(1)"),
        "{old_run}"
    );
    assert_eq!(old_run["status_after"], "loaded");

    // Both sides at 1.1: the new kinds work.
    let new_run = find("plugin", &newer.id());
    assert_eq!(
        new_run["events"],
        serde_json::json!(["offer", "sentiment-changed"])
    );
    assert!(
        new_run["survey_negotiated"]
            .as_str()
            .unwrap_or("")
            .contains("survey-csat"),
        "{new_run}"
    );
}

#[test]
fn an_envelope_of_an_unknown_kind_sent_to_a_plugin_is_answered_unsupported() {
    let install = Install::new();
    let old = FixtureSpec::new("old");
    install_fixture(&install.plugins, old);
    let host = install.start(&[&old.id()], "");
    let envelope = Envelope {
        kind: "send-survey".into(),
        schema: 1,
        bytes: br#"{"interaction":"x","survey":"s"}"#.to_vec().into(),
    };
    match host.send_envelope(&old.id(), envelope) {
        Err(SendError::Call {
            error: agentdesk_host::plugins::actor::CallError::Plugin(e),
            ..
        }) => {
            assert_eq!(e.code, ErrorCode::UNSUPPORTED);
            assert!(e.message.contains("send-survey"), "{e}");
        }
        other => panic!("expected unsupported, got {other:?}"),
    }
}
