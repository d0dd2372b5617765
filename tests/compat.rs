//! The 1.x compatibility promise, both directions, with real libraries: a plugin built against
//! plugin-api 1.0.0 as released runs a whole conversation in this host; a plugin built against a
//! newer minor (1.6, which adds a command and an event kind) loads in this 1.5 host with its new
//! features off; and a 1.0 plugin loads and works in the real host crate rebuilt against the next minor (1.6).

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
        Some("1.6.0")
    );
    // The plugin declares the 1.6 command; this host has no such kind and never sends it.
    let hello = host.hello(&newer.id()).expect("hello");
    assert!(hello.supports("send-survey"));
    assert!(!Command::KNOWN_KINDS.contains(&"send-survey"));
    // Known vocabulary works; the 1.6 event arrives as Unknown and is counted, not a failure.
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
fn plugin_built_against_1_0_loads_and_works_in_a_host_built_against_the_next_minor() {
    let install = Install::new();
    let old = FixtureSpec {
        api: Api::Released1_0,
        ..FixtureSpec::new("old")
    };
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
        lines[0]["host_api"], "1.6.0",
        "the host must really be built against the next minor"
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
    // The 1.6 command: the host does not send it (not negotiated); forced, the 1.0 plugin answers
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

    // Both sides at 1.6: the new kinds work.
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

/// The compatibility promise itself: a conversation plugin built against plugin-api 1.0.0 as
/// released (`tests/fixtures/plugin-api-1.0.0/`) runs a whole conversation in this host — offer,
/// accept, messages both ways (this host's `send-message` carries 1.1's `agent`, which a 1.0
/// decoder ignores), end and Mark Done.
#[test]
fn a_plugin_built_against_the_released_1_0_runs_a_whole_conversation_in_this_host() {
    use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
    use agentdesk_host::service::clock::SystemClock;
    use agentdesk_host::service::{Answer, CoreService, Query};
    use std::sync::Arc;
    use std::time::Instant;

    let install = Install::new();
    let spec = FixtureSpec {
        source: "conversation/lib.rs",
        api: Api::Released1_0,
        ..FixtureSpec::new("conversation")
    };
    install_fixture(&install.plugins, spec);
    let agents = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"fixture\"]\n";
    let config = agentdesk_host::AdminConfig::load(&install.write_config(&[&spec.id()], agents))
        .expect("config");
    let plugins = Arc::new(agentdesk_host::PluginHost::start(
        &config,
        agentdesk_host::StartMode::Run,
    ));
    let report = plugins.report(&spec.id()).expect("report");
    assert_eq!(report.status.word(), "loaded", "{report:#?}");
    assert_eq!(
        report.api_version.map(|v| v.to_string()).as_deref(),
        Some("1.0.0")
    );
    let policy = Policy::from_config(&config, &["fixture".to_string()]);
    let service = CoreService::start(
        policy,
        None,
        None,
        Some(plugins.clone()),
        Arc::new(SystemClock),
    )
    .expect("service");
    let core = service.handle();
    let ann = core.login("ann").expect("login");
    ann.send(AgentCommand::LogOnChannel {
        channel: "fixture".into(),
    })
    .expect("log on");
    ann.send(AgentCommand::SetReady {
        channel: "fixture".into(),
    })
    .expect("ready");
    plugins
        .send(&spec.id(), &offer())
        .expect("the 1.0 plugin offers");
    let eventually = |what: &str, test: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !test() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let the_one = || {
        ann.snapshot()
            .expect("snapshot")
            .interactions
            .into_iter()
            .next()
    };
    eventually("the offer", &|| {
        the_one().is_some_and(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let key = the_one().map(|i| i.key).expect("offered");
    ann.send(AgentCommand::Accept { key }).expect("accept");
    let lines = || match core.query(Query::Live {
        agent: "ann".into(),
        key,
        offset: 0,
        limit: 50,
    }) {
        Ok(Answer::LiveLines(lines)) => lines.into_iter().map(|l| l.line.text).collect::<Vec<_>>(),
        other => panic!("live lines: {other:?}"),
    };
    eventually("the customer's greeting", &|| {
        lines().contains(&"Hello Ann".to_string())
    });
    core.send_message("ann", key, "How can I help?")
        .expect("the agent writes");
    eventually("the customer's answer to the agent's message", &|| {
        lines().contains(&"You said: How can I help?".to_string())
    });
    ann.send(AgentCommand::End { key }).expect("end");
    eventually("the end", &|| {
        the_one().is_some_and(|i| i.state == InteractionState::Ended)
    });
    ann.send(AgentCommand::MarkDone {
        key,
        wrap_up: None,
        next: None,
    })
    .expect("done");
    assert!(the_one().is_none(), "the conversation is closed");
    let metrics = plugins.metrics(&spec.id()).expect("metrics");
    assert_eq!(metrics.calls_failed.load(Ordering::Relaxed), 0);
    assert_eq!(metrics.events_malformed.load(Ordering::Relaxed), 0);
    service.stop();
}
