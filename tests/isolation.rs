//! Process isolation: a fixture plugin in a runner process of its own dies in every way no
//! in-process guard survives; the host keeps running, another plugin keeps serving, the reason is
//! clear, and the runner comes back or, when it keeps dying, is quarantined. Nothing outlives it.

use crate::support::{HostProcess, Install, drain, is_mapped, wait_for};
use agentdesk_host::config::Isolation;
use agentdesk_host::plugins::SendError;
use agentdesk_host::plugins::actor::CallError;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{FixtureSpec, config_text, install_fixture, isolate};
use plugin_api::{Command, Event, InvokeAction, Reply};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The runner of the tests' isolated plugins: the test host has the `plugin-runner` subcommand.
const RUNNER: &str = env!("CARGO_BIN_EXE_agentdesk-test-host");

fn crashy() -> FixtureSpec {
    FixtureSpec {
        channel: "crashy",
        ..FixtureSpec::new("crashy")
    }
}

fn steady() -> FixtureSpec {
    FixtureSpec::new("steady")
}

fn invoke(action: &str) -> Command {
    Command::InvokeAction(InvokeAction {
        interaction: None,
        action: action.into(),
    })
}

/// Installs `crashy` (isolated, with `settings`) and `steady` (in-process); writes the config
/// with `limits` as `[plugins.runner_limits]`; returns the config file and both libraries.
fn install(install: &Install, settings: &str, limits: &str) -> (PathBuf, PathBuf, PathBuf) {
    let crashy_lib = install_fixture(&install.plugins, crashy());
    let steady_lib = install_fixture(&install.plugins, steady());
    let (c, s) = (crashy().id(), steady().id());
    let extra =
        format!("[plugins.runner_limits]\n{limits}\n[plugins.settings.\"{c}\"]\n{settings}\n");
    let text = config_text(&install.plugins, &install.data, &[&c, &s], &extra);
    let path = install.dir.path().join("agentdesk.toml");
    std::fs::write(&path, isolate(&text, &[&c], Path::new(RUNNER))).expect("config");
    (path, crashy_lib, steady_lib)
}

fn start(config: &Path) -> PluginHost {
    PluginHost::start(&AdminConfig::load(config).expect("config"), StartMode::Run)
}

/// The plugin offers an interaction on request and the offer reaches the host.
fn assert_serves(host: &PluginHost, id: &str) {
    let reply = host
        .send(id, &invoke("offer"))
        .unwrap_or_else(|e| panic!("{id} does not answer: {e}"));
    let Reply::Created(created) = reply else {
        panic!("{id}: expected Created, got {reply:?}")
    };
    let events = drain(host, Duration::from_millis(200));
    assert!(
        events.iter().any(|e| &*e.plugin_id == id
            && matches!(&e.event, Event::Offer(o) if o.interaction == created.interaction)),
        "{id}'s offer did not arrive: {events:#?}"
    );
}

/// An event the plugin emits while it handles a call is in the host's queue by the time the call
/// returns, as in-process, although a runner sends events and answers on different streams.
fn assert_events_come_before_their_answers(host: &PluginHost, id: &str) {
    drain(host, Duration::from_millis(100));
    for n in 0..200 {
        let reply = host.send(id, &invoke("offer")).expect("offer");
        let Reply::Created(created) = reply else {
            panic!("{id}: expected Created, got {reply:?}")
        };
        let event = host
            .recv_event(Duration::ZERO)
            .unwrap_or_else(|| panic!("call {n}: the answer came before the event it follows"));
        assert!(
            matches!(&event.event, Event::Offer(o) if o.interaction == created.interaction),
            "call {n}: {event:?}"
        );
    }
}

/// Whether a process is gone (a zombie nobody reaps counts as gone: it runs nothing).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The process ids whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn read_pid(file: &Path) -> u32 {
    wait_for(
        Duration::from_secs(10),
        "the setsid child's pid file",
        || std::fs::read_to_string(file).ok()?.trim().parse().ok(),
    )
}

#[test]
fn an_isolated_plugin_survives_every_kind_of_crash_and_comes_back_while_another_keeps_serving() {
    let dir = Install::new();
    let pid_file = dir.dir.path().join("setsid.pid");
    let (config, crashy_lib, steady_lib) = install(
        &dir,
        // It prints on standard output too: the runner's protocol must not mind.
        &format!("pid_file = \"{}\"\nprint = true", pid_file.display()),
        // Every crash counts as the first: this test is about coming back, not giving up.
        "address_space_mb = 512\nhealthy_after_secs = 0\nrestart_backoff_ms = 20",
    );
    let host = start(&config);
    let (c, s) = (crashy().id(), steady().id());
    let report = host.report(&c).expect("report");
    assert_eq!(report.status.word(), "loaded", "{report:#?}");
    assert_eq!(report.isolation, Isolation::Process);
    assert_eq!(
        host.report(&s).expect("report").isolation,
        Isolation::InProcess
    );
    assert!(
        !is_mapped(&crashy_lib),
        "the isolated library is in the host"
    );
    assert!(is_mapped(&steady_lib));
    assert_serves(&host, &c);
    assert_serves(&host, &s);
    assert_events_come_before_their_answers(&host, &c);
    let cases = [
        ("segfault", "SIGSEGV"),
        ("abort", "SIGABRT"),
        ("stack-overflow", "stack"),
        ("oom", "memory allocation"),
        ("exit0", "exited with code 0"),
        ("loop", "did not answer within its deadline of 1000 ms"),
        ("setsid", "SIGABRT"),
    ];
    for (n, (kind, expected)) in cases.into_iter().enumerate() {
        let before = host.runner_pid(&c).expect("runner up");
        let err = host
            .send(&c, &invoke(&format!("crash-{kind}")))
            .expect_err("a crash is not an answer");
        assert!(
            matches!(&err, SendError::Call { error: CallError::Plugin(e), .. }
                if e.code == plugin_api::ErrorCode::UNAVAILABLE),
            "{kind}: {err}"
        );
        assert_serves(&host, &s);
        let report = wait_for(Duration::from_secs(15), "the runner's restart", || {
            let report = host.report(&c)?;
            (report.restarts as usize == n + 1 && host.runner_pid(&c).is_some()).then_some(report)
        });
        let reason = report.last_exit.clone().unwrap_or_default();
        assert!(reason.contains(expected), "{kind}: {reason}");
        assert_eq!(report.status.word(), "loaded", "{kind}: {report:#?}");
        assert_ne!(host.runner_pid(&c), Some(before));
        wait_for(Duration::from_secs(5), "the old runner to end", || {
            gone(before).then_some(())
        });
        assert_serves(&host, &c);
    }
    // The daemon the plugin started with `setsid` before it aborted did not survive it.
    let daemon = read_pid(&pid_file);
    wait_for(
        Duration::from_secs(5),
        "the setsid child to be killed",
        || gone(daemon).then_some(()),
    );
    assert_eq!(host.take_crashes().len(), cases.len());
}

#[test]
fn a_plugin_that_keeps_dying_is_quarantined_and_crashes_in_start_or_stop_are_reported() {
    // Two crashes in a row with one restart allowed: quarantined, with the reason.
    let dir = Install::new();
    let (config, _, _) = install(&dir, "", "max_restarts = 1\nrestart_backoff_ms = 20");
    let host = start(&config);
    let (c, s) = (crashy().id(), steady().id());
    assert!(host.send(&c, &invoke("crash-abort")).is_err());
    wait_for(Duration::from_secs(10), "the restart", || {
        (host.report(&c)?.restarts == 1 && host.runner_pid(&c).is_some()).then_some(())
    });
    assert_serves(&host, &c);
    assert!(host.send(&c, &invoke("crash-segfault")).is_err());
    let (_, reason) = wait_for(Duration::from_secs(10), "the quarantine", || {
        host.quarantined().into_iter().find(|(id, _)| id == &c)
    });
    assert!(
        reason.contains("2 times in a row") && reason.contains("SIGSEGV"),
        "{reason}"
    );
    let report = host.report(&c).expect("report");
    assert_eq!(report.status.word(), "quarantined");
    assert!(matches!(
        host.send(&c, &invoke("offer")),
        Err(SendError::Call {
            error: CallError::Quarantined(_),
            ..
        })
    ));
    assert_serves(&host, &s);
    drop(host);

    // A crash during the first start: the runner is started again and the plugin comes up.
    let dir = Install::new();
    let marker = dir.dir.path().join("crashed-once");
    let (config, _, _) = install(
        &dir,
        &format!(
            "crash_in = \"start\"\ncrash = \"segfault\"\ncrash_marker = \"{}\"",
            marker.display()
        ),
        "restart_backoff_ms = 20",
    );
    let host = start(&config);
    let report = host.report(&c).expect("report");
    assert_eq!(report.status.word(), "loaded", "{report:#?}");
    assert_eq!(report.restarts, 1, "{report:#?}");
    let reason = report.last_exit.clone().unwrap_or_default();
    assert!(reason.contains("SIGSEGV"), "{reason}");
    assert_serves(&host, &c);
    assert_serves(&host, &s);
    drop(host);

    // A crash during every start: given up after the restarts allowed, with the reason; the
    // other plugin runs.
    let dir = Install::new();
    let (config, _, _) = install(
        &dir,
        "crash_in = \"start\"\ncrash = \"segfault\"",
        "max_restarts = 2\nrestart_backoff_ms = 20",
    );
    let host = start(&config);
    let report = host.report(&c).expect("report");
    assert_eq!(report.status.word(), "quarantined", "{report:#?}");
    let reason = report.status.reason().unwrap_or_default();
    assert!(
        reason.contains("3 times in a row during start") && reason.contains("SIGSEGV"),
        "{reason}"
    );
    assert_serves(&host, &s);
    drop(host);

    // A crash during stop: shutdown goes on, the exit is reported, nothing is left running.
    let dir = Install::new();
    let (config, _, _) = install(&dir, "crash_in = \"stop\"\ncrash = \"abort\"", "");
    let mut host = start(&config);
    assert_serves(&host, &c);
    let keeper = host.runner_pid(&c).expect("runner up");
    host.shutdown();
    let report = host.report(&c).expect("report");
    let reason = report.last_exit.clone().unwrap_or_default();
    assert!(reason.contains("SIGABRT"), "{report:#?}");
    assert!(host.runner_pid(&c).is_none());
    wait_for(Duration::from_secs(5), "the runner to end", || {
        gone(keeper).then_some(())
    });
}

#[test]
fn when_the_host_is_killed_no_runner_and_no_setsid_child_survives() {
    let dir = Install::new();
    let pid_file = dir.dir.path().join("daemon.pid");
    let (config, _, _) = install(
        &dir,
        &format!(
            "setsid_at_start = true\npid_file = \"{}\"",
            pid_file.display()
        ),
        "",
    );
    let log = dir.dir.path().join("host.log");
    let ids = format!("{},{}", crashy().id(), steady().id());
    let host = HostProcess::start(&config, &log, "crashy", &ids);
    let keepers = children_of(host.pid());
    assert_eq!(keepers.len(), 1, "one runner for the one isolated plugin");
    let workers = children_of(keepers[0]);
    assert_eq!(workers.len(), 1, "the keeper runs one worker");
    let daemon = read_pid(&pid_file);
    assert!(!gone(daemon), "the daemon runs while the host does");
    host.kill();
    for pid in [keepers[0], workers[0], daemon] {
        wait_for(
            Duration::from_secs(5),
            "every runner process to end",
            || gone(pid).then_some(()),
        );
    }
}

#[test]
fn the_agent_of_an_open_interaction_hears_that_the_channels_process_ended_and_it_still_routes() {
    use agentdesk_host::core::{AgentCommand, Policy};
    let dir = Install::new();
    let (config, _, _) = install(&dir, "offers_at_start = 1", "restart_backoff_ms = 20");
    let config = AdminConfig::load(&config).expect("config");
    let plugins = std::sync::Arc::new(PluginHost::start(&config, StartMode::Run));
    let policy = Policy::from_config(&config, &["crashy".to_string(), "fixture".to_string()]);
    let service = agentdesk_tests::start_core(&dir.data, policy, Some(plugins.clone()));
    let core = service.handle();
    let a1 = core.login("a1").expect("login");
    for command in [
        AgentCommand::LogOnChannel {
            channel: "crashy".into(),
        },
        AgentCommand::SetReady {
            channel: "crashy".into(),
        },
    ] {
        a1.send(command).expect("ready");
    }
    let snapshot = || core.snapshot("a1").expect("snapshot").expect("agent");
    let key = wait_for(Duration::from_secs(10), "the offer", || {
        snapshot().interactions.first().map(|i| i.key)
    });
    a1.send(AgentCommand::Accept { key }).expect("accept");
    let c = crashy().id();
    assert!(plugins.send(&c, &invoke("crash-abort")).is_err());
    let notice = wait_for(Duration::from_secs(10), "the notice", || {
        snapshot()
            .interactions
            .iter()
            .find(|i| i.key == key)?
            .detail
            .notice
            .clone()
    });
    assert!(
        notice.contains("process ended") && notice.contains("SIGABRT"),
        "{notice}"
    );
    wait_for(Duration::from_secs(10), "the restart", || {
        (plugins.report(&c)?.restarts == 1).then_some(())
    });
    let view = snapshot();
    let crashy_row = view
        .channels
        .iter()
        .find(|ch| ch.channel == "crashy")
        .expect("crashy channel");
    assert!(
        crashy_row.unavailable.is_none(),
        "a restarted channel stays in routing: {crashy_row:?}"
    );
    service.stop();
}

#[test]
fn a_runner_that_breaks_the_protocol_is_stopped_with_that_reason() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Install::new();
    install_fixture(&dir.plugins, crashy());
    // A "runner" that answers with bytes that are no frame: their length field is far over the
    // limit, so the host must refuse them before reading on.
    let fake = dir.dir.path().join("fake-runner");
    std::fs::write(
        &fake,
        "#!/bin/sh\nprintf 'not a frame at all'\nexec sleep 30\n",
    )
    .expect("script");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let c = crashy().id();
    let text = config_text(&dir.plugins, &dir.data, &[&c], "");
    let path = dir.dir.path().join("agentdesk.toml");
    std::fs::write(&path, isolate(&text, &[&c], &fake)).expect("config");
    let started = std::time::Instant::now();
    let host = start(&path);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the host waited for the bad runner"
    );
    let report = host.report(&c).expect("report");
    assert_eq!(report.status.word(), "failed", "{report:#?}");
    let reason = report.status.reason().unwrap_or_default();
    assert!(
        reason.contains("broke the runner protocol") && reason.contains("over the limit"),
        "{reason}"
    );
}
