//! The `agentdesk` command as an admin uses it: `plugins` (headless report), `package`, and a
//! configuration error naming file, line and key.

use crate::support::Install;
use agentdesk_host::plugins::package::package;
use agentdesk_tests::{FixtureSpec, first_party_library, install_fixture, workspace_artifacts};
use std::process::{Command, Output};

/// Runs the built `agentdesk` binary.
pub fn agentdesk(args: &[&str]) -> Output {
    let bin = workspace_artifacts().join("agentdesk");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo xtask test`",
        bin.display()
    );
    Command::new(bin)
        .args(args)
        .env_remove("AGENTDESK_CONFIG")
        .output()
        .expect("agentdesk runs")
}

#[test]
fn plugins_command_lists_every_plugin_with_its_status_and_reason() {
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let unlisted = FixtureSpec::new("cli-unlisted");
    install_fixture(&install.plugins, unlisted);
    let config = install.write_config(&["agentdesk.demo"], "");
    let out = agentdesk(&["plugins", "--config", &config.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = text.lines().next().unwrap_or_default();
    for column in [
        "ID", "NAME", "VENDOR", "VERSION", "API", "CHANNELS", "STATUS",
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
        text.contains(&format!(
            "{} (refused): not on the admin's allowlist",
            unlisted.id()
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
