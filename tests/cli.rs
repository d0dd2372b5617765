//! The `agentdesk` command as an admin uses it: `plugins` (headless report), `package`, and a
//! configuration error naming file, line and key.

use crate::support::Install;
use agentdesk_host::plugins::package::package;
use agentdesk_tests::{FixtureSpec, first_party_library, install_fixture, workspace_artifacts};
use std::process::{Command, Output};

/// Runs the built `agentdesk` binary.
pub fn agentdesk(args: &[&str]) -> Output {
    agentdesk_env(args, &[])
}

/// Runs the built `agentdesk` binary with these environment variables.
pub fn agentdesk_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = workspace_artifacts().join("agentdesk");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo xtask test`",
        bin.display()
    );
    Command::new(bin)
        .args(args)
        .env_remove("AGENTDESK_CONFIG")
        .env_remove("AGENTDESK_HUB")
        .envs(env.iter().copied())
        .output()
        .expect("agentdesk runs")
}

#[test]
fn plugins_command_lists_every_plugin_with_its_status_and_reason() {
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let unlisted = FixtureSpec::new("cli-unlisted");
    install_fixture(&install.plugins, unlisted);
    let reporting = FixtureSpec::new("cli-status");
    install_fixture(&install.plugins, reporting);
    let extra = format!(
        "[plugins.settings.\"{}\"]\nstatus = \"watching the spool\"\n",
        reporting.id()
    );
    let config = install.write_config(&["agentdesk.demo", &reporting.id()], &extra);
    let out = agentdesk(&["plugins", "--config", &config.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused plugin fails the command: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 plugin(s) refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = text.lines().next().unwrap_or_default();
    for column in [
        "ID",
        "NAME",
        "VENDOR",
        "VERSION",
        "API",
        "CHANNELS",
        "STATUS",
        "ISOLATION",
        "RESTARTS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let demo = text
        .lines()
        .find(|l| l.starts_with("agentdesk.demo"))
        .expect("demo row");
    assert!(
        demo.contains("Demo conversations") && demo.contains("loaded"),
        "{demo}"
    );
    assert!(
        demo.contains(" in-process "),
        "the tests' config says so: {demo}"
    );
    assert!(
        text.contains(&format!(
            "{} (refused): not on the admin's allowlist",
            unlisted.id()
        )),
        "{text}"
    );
    // The latest channel-status a started plugin reported.
    assert!(
        text.contains(&format!(
            "{} channel status: ok: watching the spool",
            reporting.id()
        )),
        "{text}"
    );
}

#[test]
fn a_bad_configuration_file_is_named_with_line_and_key_and_nothing_starts() {
    let install = Install::new();
    let path = install.dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[plugins]\ndirectories = []\n\n[[agents]]\nid = \"a\"\nname = \"A\"\nchanels = \"all\"\n",
    )
    .expect("write");
    let out = agentdesk(&["plugins", "--config", &path.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml") && err.contains("line 7") && err.contains("chanels"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "a report was printed for a bad configuration"
    );
}

#[test]
fn package_refuses_a_library_that_is_not_a_plugin() {
    let install = Install::new();
    let not_plugin = install.dir.path().join("libnothing.so");
    std::fs::write(&not_plugin, b"not a library").expect("write");
    let out = agentdesk(&[
        "package",
        &not_plugin.display().to_string(),
        "--out",
        &install.plugins.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ELF header"));
    assert_eq!(
        std::fs::read_dir(&install.plugins).expect("dir").count(),
        0,
        "something was installed"
    );
}

#[test]
fn scenario_command_replays_a_working_day_and_matches_the_hand_computed_figures() {
    let file = agentdesk_tests::repo_root().join("tests/fixtures/scenarios/working-day.toml");
    let out = agentdesk(&["scenario", &file.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |first: &str| {
        text.lines()
            .find(|l| l.starts_with(first))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
    };
    assert_eq!(
        row("bob       chat      pending"),
        Some(vec!["bob", "chat", "pending:break", "600"])
    );
    assert_eq!(row("chat-1"), Some(vec!["chat-1", "1190"]), "{text}");
    assert!(!text.contains("MISMATCH"), "{text}");
}

#[test]
fn scenario_command_fails_when_a_figure_does_not_match() {
    let install = Install::new();
    let original = std::fs::read_to_string(
        agentdesk_tests::repo_root().join("tests/fixtures/scenarios/working-day.toml"),
    )
    .expect("scenario");
    let wrong = original.replace(
        "state = \"not-ready:break\"\nseconds = 900",
        "state = \"not-ready:break\"\nseconds = 1500",
    );
    assert_ne!(wrong, original, "the expectation to change was not found");
    let path = install.dir.path().join("wrong.toml");
    std::fs::write(&path, wrong).expect("write");
    let out = agentdesk(&["scenario", &path.display().to_string()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MISMATCH: bob chat not-ready:break: expected 1500 s, got 900 s"),
        "{text}"
    );
}

#[test]
fn scenario_steps_the_rules_forbid_are_reported_with_the_rule() {
    let install = Install::new();
    let path = install.dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "config = \"[[agents]]\\nid = \\\"ann\\\"\\nname = \\\"Ann\\\"\\nchannels = [\\\"chat\\\"]\\n\"\n\
         [[step]]\nat = \"09:00:00\"\nagent = \"ann\"\ncommand = \"log-in\"\n\
         [[step]]\nat = \"09:00:01\"\nagent = \"ann\"\ncommand = \"set-ready\"\nchannel = \"chat\"\n",
    )
    .expect("write");
    let out = agentdesk(&["scenario", &path.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("step 2") && err.contains("logged off"),
        "{err}"
    );
}

#[test]
fn plugins_resolves_relative_directories_from_the_config_reports_what_is_missing_and_speaks_json() {
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    // Relative to the config file's directory, wherever the command runs from.
    let config = install.dir.path().join("agentdesk.toml");
    std::fs::write(
        &config,
        "[host]\ndata_dir = \"data\"\n[plugins]\ndirectories = [\"plugins\", \"not-there\"]\n\
         [plugins.allow.\"agentdesk.demo\"]\n[plugins.allow.\"acme.missing\"]\n\
         [[agents]]\nid = \"a1\"\nname = \"A\"\nchannels = \"all\"\n",
    )
    .expect("config");
    let config = config.display().to_string();
    let out = agentdesk(&["plugins", "--config", &config, "--json"]);
    assert_eq!(out.status.code(), Some(1), "an allowed plugin is missing");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let demo = report["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == "agentdesk.demo"))
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(demo["status"], "loaded");
    assert_eq!(demo["channels"], serde_json::json!(["demo"]));
    // No `isolation` in the admin's rule: the plugin ran in `agentdesk plugin-runner`.
    assert_eq!(demo["isolation"], "process", "{report:#}");
    assert_eq!(demo["restarts"], 0);
    let not_found: Vec<&str> = report["not_found"]
        .as_array()
        .map(|n| n.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let not_there = install.dir.path().join("not-there");
    assert_eq!(
        not_found,
        vec![
            format!("plugin directory {} does not exist", not_there.display()),
            "`acme.missing` is allowed but no plugin directory holds a manifest for it".into(),
        ]
    );
    assert!(
        install
            .dir
            .path()
            .join("data/plugins/agentdesk.demo")
            .is_dir(),
        "the data directory is relative to the config too"
    );

    let verified = agentdesk(&["plugins", "--config", &config, "--verify-only"]);
    let text = String::from_utf8_lossy(&verified.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("agentdesk.demo"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.split_whitespace().any(|cell| cell == "verified"),
        "not started, so not `loaded`: {row}"
    );
    assert!(text.contains("Expected but not found:"), "{text}");
}

#[test]
fn sigterm_and_sigint_stop_the_plugins_of_a_running_command_before_it_exits() {
    let install = Install::new();
    let slow = FixtureSpec::new("cli-stop");
    install_fixture(&install.plugins, slow);
    for signal in ["TERM", "INT"] {
        let marker = install.dir.path().join(format!("stopped-{signal}"));
        let extra = format!(
            "[plugins.settings.\"{}\"]\nstart_delay_ms = 1500\nstop_marker = \"{}\"\n",
            slow.id(),
            marker.display()
        );
        let config = install.write_config(&[&slow.id()], &extra);
        let mut child = Command::new(workspace_artifacts().join("agentdesk"))
            .args(["plugins", "--config", &config.display().to_string()])
            .env_remove("AGENTDESK_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("agentdesk runs");
        // The plugin is starting (1.5 s) when the signal arrives.
        std::thread::sleep(std::time::Duration::from_millis(700));
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while child.try_wait().expect("wait").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "SIG{signal} did not end it"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
        assert!(
            marker.exists(),
            "SIG{signal} ended the command without the plugin's stop: {stderr}"
        );
    }
}
