//! Loading plugins and every way it can go wrong: each case loads a real `.so` built for it, and
//! checks the reason given, that the host keeps running and that the other plugins keep working.

use crate::support::{Install, drain, is_mapped, status};
use agentdesk_host::PluginHost;
use agentdesk_host::plugins::package::package;
use agentdesk_host::plugins::{SendError, actor::CallError};
use agentdesk_tests::{
    Api, FixtureSpec, build_fixture, build_not_abi_stable, first_party_library, install_fixture,
    install_with_manifest,
};
use plugin_api::{
    AgentRef, Command, Envelope, ErrorCode, Event, Hold, InteractionId, InvokeAction, Reply,
};
use std::time::Duration;

const DEMO: &str = "agentdesk.demo";

fn install_demo(install: &Install) {
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
}

/// The error code a plugin answered with, when the call reached it and failed.
fn answered_code(result: &Result<Reply, SendError>) -> Option<ErrorCode> {
    match result {
        Err(SendError::Call {
            error: CallError::Plugin(e),
            ..
        }) => Some(e.code),
        _ => None,
    }
}

fn invoke(action: &str) -> Command {
    Command::InvokeAction(InvokeAction {
        interaction: None,
        action: action.into(),
    })
}

/// The demo plugin still does its job: offers, greets on accept, echoes.
fn assert_demo_works(host: &PluginHost) {
    let reply = host
        .send(DEMO, &invoke("new-conversation"))
        .expect("demo answers");
    let Reply::Created(created) = reply else {
        panic!("expected Created, got {reply:?}")
    };
    let accept = Command::Accept(plugin_api::Accept {
        interaction: created.interaction.clone(),
        agent: AgentRef {
            id: "a1".into(),
            display_name: "Sam".into(),
        },
    });
    host.send(DEMO, &accept).expect("accept");
    let events = drain(host, Duration::from_millis(300));
    let offered = events
        .iter()
        .any(|e| matches!(&e.event, Event::Offer(o) if o.interaction == created.interaction));
    let greeted = events.iter().any(|e| matches!(&e.event,
        Event::MessageReceived(m) if m.interaction == created.interaction && m.message.text.starts_with("Hi Sam!")));
    assert!(offered && greeted, "demo events: {events:#?}");
}

#[test]
fn first_party_demo_plugin_loads_and_works_through_the_abi() {
    let install = Install::new();
    install_demo(&install);
    let mut host = install.start(&[DEMO], "");
    let report = host.report(DEMO).expect("report");
    assert_eq!(report.status.word(), "loaded", "{report:#?}");
    assert_eq!(
        report.api_version.map(|v| v.to_string()).as_deref(),
        Some(plugin_api::API_VERSION)
    );
    assert_eq!(report.channels, vec!["demo".to_string()]);
    assert_demo_works(&host);
    // The plugin's durable store is in its own data directory.
    assert!(
        install
            .data
            .join("plugins")
            .join(DEMO)
            .join("demo-state.json")
            .exists()
    );
    host.shutdown();
    assert_eq!(status(&host, DEMO).0, "stopped");
}

#[test]
fn undeclared_unknown_and_malformed_commands_get_errors_and_the_plugin_keeps_working() {
    let install = Install::new();
    install_demo(&install);
    let host = install.start(&[DEMO], "");
    let hold = Command::Hold(Hold {
        interaction: InteractionId::new("demo-1"),
    });
    // Not declared at start: refused by the host without calling the plugin.
    assert!(matches!(
        host.send(DEMO, &hold),
        Err(SendError::Unsupported { .. })
    ));
    // Forced through anyway: the plugin answers "unsupported" itself.
    let forced = host.send_envelope(DEMO, hold.to_envelope());
    assert_eq!(
        answered_code(&forced),
        Some(ErrorCode::UNSUPPORTED),
        "{forced:?}"
    );
    // A kind from the future.
    let teleport = Envelope {
        kind: "teleport".into(),
        schema: 7,
        bytes: b"{}".to_vec().into(),
    };
    let answer = host.send_envelope(DEMO, teleport);
    assert_eq!(
        answered_code(&answer),
        Some(ErrorCode::UNSUPPORTED),
        "{answer:?}"
    );
    // A known kind with bytes that are not valid JSON.
    let garbage = Envelope {
        kind: "accept".into(),
        schema: 1,
        bytes: b"{not json".to_vec().into(),
    };
    let answer = host.send_envelope(DEMO, garbage);
    assert_eq!(
        answered_code(&answer),
        Some(ErrorCode::INVALID),
        "{answer:?}"
    );
    assert_eq!(status(&host, DEMO).0, "loaded");
    assert_demo_works(&host);
}

#[test]
fn plugin_not_on_the_allowlist_is_refused_and_never_opened() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec::new("unlisted");
    let library = install_fixture(&install.plugins, spec);
    let host = install.start(&[DEMO], "");
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "refused");
    assert!(reason.contains("allowlist"), "{reason}");
    assert!(!is_mapped(&library), "a refused plugin was dlopen'ed");
    assert_demo_works(&host);
}

#[test]
fn sha256_that_does_not_match_the_admin_pin_is_refused_before_opening() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec::new("pinned");
    let library = install_fixture(&install.plugins, spec);
    let pin = format!(
        "[plugins.allow.\"{}\"]\nsha256 = \"{}\"\n",
        spec.id(),
        "ab".repeat(32)
    );
    let host = install.start(&[DEMO], &pin);
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "refused");
    assert!(
        reason.contains("does not match the admin's pin"),
        "{reason}"
    );
    assert!(!is_mapped(&library));
    assert_demo_works(&host);
}

#[test]
fn library_changed_after_packaging_is_refused_before_opening() {
    let install = Install::new();
    let spec = FixtureSpec::new("tampered");
    let library = install_fixture(&install.plugins, spec);
    let bytes = std::fs::read(&library).expect("library");
    std::fs::write(&library, &bytes[..bytes.len() / 2]).expect("truncate");
    let host = install.start(&[&spec.id()], "");
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "refused");
    assert!(reason.contains("does not match its manifest"), "{reason}");
    assert!(!is_mapped(&library));
}

#[test]
fn truncated_library_with_a_matching_manifest_is_refused_by_the_loader() {
    let install = Install::new();
    install_demo(&install);
    let built = build_fixture(FixtureSpec::new("truncated"));
    let bytes = std::fs::read(&built).expect("library");
    let broken = install.dir.path().join(built.file_name().expect("name"));
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).expect("truncate");
    install_with_manifest(
        &install.plugins,
        &broken,
        "fixture.truncated",
        "1.0.0",
        "1.0.0",
        &["fixture"],
    );
    let host = install.start(&[DEMO, "fixture.truncated"], "");
    let (word, reason) = status(&host, "fixture.truncated");
    assert_eq!(word, "refused");
    assert!(reason.contains("truncated"), "{reason}");
    assert!(
        !is_mapped(&install.plugins.join(built.file_name().expect("name"))),
        "a truncated library was dlopen'ed"
    );
    assert_demo_works(&host);
}

#[test]
fn library_that_is_not_an_abi_stable_plugin_is_refused() {
    let install = Install::new();
    install_demo(&install);
    let library = build_not_abi_stable();
    install_with_manifest(
        &install.plugins,
        &library,
        "fixture.plain",
        "1.0.0",
        "1.0.0",
        &["fixture"],
    );
    let host = install.start(&[DEMO, "fixture.plain"], "");
    let (word, reason) = status(&host, "fixture.plain");
    assert_eq!(word, "refused");
    assert!(reason.contains("not an agentdesk plugin"), "{reason}");
    assert_demo_works(&host);
}

#[test]
fn plugin_built_against_another_major_is_refused_by_manifest_and_by_abi_stable() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec {
        api: Api::NextMajor,
        ..FixtureSpec::new("major")
    };
    let library = build_fixture(spec);
    // Honest manifest: refused before opening.
    install_with_manifest(
        &install.plugins,
        &library,
        "fixture.major",
        "1.0.0",
        "2.0.0",
        &["fixture"],
    );
    let host = install.start(&[DEMO, "fixture.major"], "");
    let (word, reason) = status(&host, "fixture.major");
    assert_eq!(word, "refused");
    assert!(
        reason.contains("built against plugin-api 2.0.0") && reason.contains("1.x"),
        "{reason}"
    );
    assert!(!is_mapped(
        &install.plugins.join(library.file_name().expect("name"))
    ));
    drop(host);
    // A manifest that lies about the API version: abi_stable's own version check catches it.
    let liar = Install::new();
    install_with_manifest(
        &liar.plugins,
        &library,
        "fixture.major",
        "1.0.0",
        "1.0.0",
        &["fixture"],
    );
    let host = liar.start(&["fixture.major"], "");
    let (word, reason) = status(&host, "fixture.major");
    assert_eq!(word, "refused");
    assert!(
        reason.contains("built against plugin-api 2.0.0, but this host speaks plugin-api 1.x"),
        "{reason}"
    );
}

#[test]
fn changed_layout_is_refused_with_the_decisive_lines_only() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec {
        api: Api::LayoutChanged,
        ..FixtureSpec::new("layout")
    };
    install_fixture(&install.plugins, spec);
    let host = install.start(&[DEMO, &spec.id()], "");
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "refused");
    assert!(reason.starts_with("incompatible ABI layout"), "{reason}");
    assert!(
        reason.contains("mismatched type / Expected: u8 / Found: u16"),
        "{reason}"
    );
    assert!(
        reason.contains("LogLevel"),
        "the summary should say where: {reason}"
    );
    assert!(
        reason.lines().count() == 1 && reason.len() < 400,
        "not a short summary: {reason}"
    );
    assert_demo_works(&host);
}

fn with_settings(id: &str, settings: &str) -> String {
    format!("[plugins.settings.\"{id}\"]\n{settings}\n")
}

#[test]
fn panic_in_create_quarantines_that_plugin_only() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec::new("panic-create");
    install_fixture(&install.plugins, spec);
    let host = install.start(
        &[DEMO, &spec.id()],
        &with_settings(&spec.id(), "panic_in = \"create\""),
    );
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "quarantined");
    assert!(
        reason.contains("panicked in `create`") && reason.contains("told to panic"),
        "{reason}"
    );
    assert_demo_works(&host);
}

#[test]
fn panic_in_a_later_call_quarantines_that_plugin_and_the_others_keep_working() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec::new("panic-handle");
    install_fixture(&install.plugins, spec);
    let host = install.start(
        &[DEMO, &spec.id()],
        &with_settings(&spec.id(), "panic_in = \"handle\""),
    );
    assert_eq!(status(&host, &spec.id()).0, "loaded");
    let first = host.send(&spec.id(), &invoke("offer"));
    assert_eq!(
        answered_code(&first),
        Some(ErrorCode::PANICKED),
        "{first:?}"
    );
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "quarantined");
    assert!(reason.contains("panicked in `handle`"), "{reason}");
    let second = host.send(&spec.id(), &invoke("offer"));
    assert!(
        matches!(
            second,
            Err(SendError::Call {
                error: CallError::Quarantined(_),
                ..
            })
        ),
        "{second:?}"
    );
    assert_demo_works(&host);
}

#[test]
fn panics_in_stop_and_drop_do_not_take_the_host_down() {
    for place in ["stop", "drop"] {
        let install = Install::new();
        install_demo(&install);
        let spec = FixtureSpec::new("panic-late");
        install_fixture(&install.plugins, spec);
        let mut host = install.start(
            &[DEMO, &spec.id()],
            &with_settings(&spec.id(), &format!("panic_in = \"{place}\"")),
        );
        assert_demo_works(&host);
        host.shutdown();
        assert_eq!(status(&host, DEMO).0, "stopped", "after a panic in {place}");
    }
}

#[test]
fn call_that_blocks_past_its_deadline_quarantines_the_plugin() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec::new("blocking");
    install_fixture(&install.plugins, spec);
    // The call deadline in the test config is 1000 ms.
    let host = install.start(
        &[DEMO, &spec.id()],
        &with_settings(&spec.id(), "block_ms = 4000"),
    );
    let answer = host.send(&spec.id(), &invoke("offer"));
    assert!(
        matches!(&answer, Err(SendError::Call { error: CallError::Quarantined(r), .. }) if r.contains("deadline of 1000 ms")),
        "{answer:?}"
    );
    assert_eq!(status(&host, &spec.id()).0, "quarantined");
    assert_demo_works(&host);
}

#[test]
fn two_plugins_with_the_same_id_load_the_highest_allowed_version() {
    let install = Install::new();
    let second_dir = install.dir.path().join("more-plugins");
    let old = FixtureSpec {
        version: "1.0.0",
        ..FixtureSpec::new("dup")
    };
    let new = FixtureSpec {
        version: "1.2.0",
        ..FixtureSpec::new("dup")
    };
    install_fixture(&install.plugins, old);
    install_fixture(&second_dir, new);
    let dirs = format!(
        "[plugins]\ndirectories = [\"{}\", \"{}\"]\n",
        install.plugins.display(),
        second_dir.display()
    );
    let config = agentdesk_tests::config_text(&install.plugins, &install.data, &[], "").replace(
        &format!(
            "[plugins]\ndirectories = [\"{}\"]\n",
            install.plugins.display()
        ),
        &dirs,
    );
    let run = |requirement: &str| {
        let text = format!(
            "{config}[plugins.allow.\"fixture.dup\"]\nversion = \"{requirement}\"\n\
             isolation = \"in-process\"\n"
        );
        let config = agentdesk_host::AdminConfig::parse(&text, "test").expect("config");
        PluginHost::start(&config, agentdesk_host::StartMode::Run).reports()
    };
    let reports = run("*");
    let by_version = |reports: &[agentdesk_host::PluginReport], v: &str| {
        reports
            .iter()
            .find(|r| r.version.as_ref().map(|x| x.to_string()).as_deref() == Some(v))
            .cloned()
            .expect("report")
    };
    assert_eq!(by_version(&reports, "1.2.0").status.word(), "loaded");
    let loser = by_version(&reports, "1.0.0").status;
    assert!(
        loser.word() == "refused"
            && loser
                .reason()
                .unwrap_or("")
                .contains("version 1.2.0 is the highest"),
        "{loser:?}"
    );
    let reports = run("<1.2");
    assert_eq!(
        by_version(&reports, "1.0.0").status,
        agentdesk_host::PluginStatus::Loaded
    );
    let refused = by_version(&reports, "1.2.0").status;
    assert!(
        refused
            .reason()
            .unwrap_or("")
            .contains("does not satisfy the admin's requirement `<1.2`"),
        "{refused:?}"
    );
}

#[test]
fn plugin_whose_channel_is_assigned_to_nobody_is_never_started() {
    let install = Install::new();
    install_demo(&install);
    let spec = FixtureSpec::new("unassigned");
    install_fixture(&install.plugins, spec);
    let agents = "[[agents]]\nid = \"a1\"\nname = \"A\"\nchannels = [\"demo\"]\n";
    let host = install.start(&[DEMO, &spec.id()], agents);
    let (word, reason) = status(&host, &spec.id());
    assert_eq!(word, "not-started");
    assert!(
        reason.contains("no agent served by this host has its channel fixture"),
        "{reason}"
    );
    assert!(!host.running_ids().contains(&spec.id()));
    assert!(
        !install.data.join("plugins").join(spec.id()).exists(),
        "an unassigned plugin got a data dir"
    );
    assert_demo_works(&host);
}

#[test]
fn orphan_libraries_and_broken_manifests_are_reported_not_opened() {
    let install = Install::new();
    install_demo(&install);
    let stray = install.plugins.join("libstray.so");
    std::fs::copy(build_fixture(FixtureSpec::new("stray")), &stray).expect("copy");
    std::fs::write(
        install.plugins.join("broken.plugin.toml"),
        "id = \"x\"\nname = 3\n",
    )
    .expect("write");
    let host = install.start(&[DEMO], "");
    let (word, reason) = status(&host, "libstray.so");
    assert!(
        word == "refused" && reason.contains("without a manifest"),
        "{reason}"
    );
    assert!(!is_mapped(&stray));
    let (word, reason) = status(&host, "broken.plugin.toml");
    assert!(
        word == "refused" && reason.contains("manifest is not valid"),
        "{reason}"
    );
    assert_demo_works(&host);
}

#[test]
fn a_full_event_queue_is_an_error_value_and_a_metric_not_a_stall() {
    let install = Install::new();
    let spec = FixtureSpec::new("flood");
    install_fixture(&install.plugins, spec);
    let host = install.start(&[&spec.id()], "").reports();
    drop(host);
    let config_path = install.write_config(&[&spec.id()], "");
    let text = std::fs::read_to_string(&config_path)
        .expect("config")
        .replace("[plugins]\n", "[plugins]\nevent_queue = 1\n");
    let config = agentdesk_host::AdminConfig::parse(&text, "test").expect("config");
    let host = PluginHost::start(&config, agentdesk_host::StartMode::Run);
    host.send(&spec.id(), &invoke("offer"))
        .expect("first offer fits in the queue");
    let second = host.send(&spec.id(), &invoke("offer"));
    assert_eq!(
        answered_code(&second),
        Some(ErrorCode::QUEUE_FULL),
        "{second:?}"
    );
    let metrics = host.metrics(&spec.id()).expect("metrics");
    assert_eq!(
        metrics
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(drain(&host, Duration::from_millis(100)).len(), 1);
    assert_eq!(status(&host, &spec.id()).0, "loaded");
}
