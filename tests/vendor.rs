//! The vendor's path, as docs/plugin-guide.md tells it: copy the template plugin into a crate
//! outside this workspace, `cargo build --release`, `agentdesk package`, drop it into a plugin
//! directory, and `agentdesk plugins` shows it loaded; then it really offers an interaction.

use crate::cli::agentdesk;
use crate::support::Install;
use agentdesk_tests::{repo_root, target_dir, write_if_changed};
use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read template") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A git repository holding plugin-api alone, tagged `plugin-api-v<version>` as a release would
/// be: vendors depend on the tag, so the crate must build on its own, outside the workspace.
fn plugin_api_release(dir: &Path) -> (String, String) {
    copy_dir(&repo_root().join("plugin-api"), &dir.join("plugin-api"));
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Release",
                "-c",
                "user.email=release@example.com",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let tag = format!("plugin-api-v{}", plugin_api::API_VERSION);
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "plugin-api release"]);
    git(&["tag", &tag]);
    (format!("file://{}", dir.display()), tag)
}

fn cargo_in(dir: &Path, args: &[&str]) {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        // Shares compiled dependencies with the other fixtures; the crate itself stays outside.
        .env("CARGO_TARGET_DIR", target_dir().join("fixtures"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "vendor `cargo {}` failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies a template out of the workspace into `vendor/<name>`, with plugin-api from a local
/// git tag, and runs the template's own FakeHost tests there. Returns the crate directory.
fn vendor_crate(vendor: &Path, template: &str, name: &str) -> std::path::PathBuf {
    let (repository, tag) = plugin_api_release(&vendor.join(format!("agentdesk-{name}")));
    let crate_dir = vendor.join(name);
    copy_dir(&repo_root().join("plugins").join(template), &crate_dir);
    let manifest_path = crate_dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).expect("template manifest");
    let path_line = "path = \"../../plugin-api\"";
    assert_eq!(
        manifest.matches(path_line).count(),
        2,
        "the template's plugin-api lines moved"
    );
    let manifest = manifest.replace(
        path_line,
        &format!("git = \"{repository}\", tag = \"{tag}\""),
    );
    write_if_changed(&manifest_path, &manifest);
    std::fs::copy(repo_root().join("Cargo.lock"), crate_dir.join("Cargo.lock"))
        .expect("a lock file with the workspace's versions");
    // Its own tests first: the template runs itself under plugin-api's FakeHost.
    cargo_in(&crate_dir, &["test", "--quiet"]);
    crate_dir
}

/// Writes a live scenario (Ann, on `channel`, with `config` plus her agent entry) and plays it
/// with `agentdesk scenario`; returns what it printed.
fn play(install: &Install, config: &Path, channel: &str, steps: &[&str]) -> String {
    let config_text = std::fs::read_to_string(config).expect("config");
    let steps = steps
        .iter()
        .map(|step| format!("\n[[step]]\nagent = \"ann\"\n{step}\n"))
        .collect::<String>();
    let scenario = install.dir.path().join("day.toml");
    std::fs::write(
        &scenario,
        format!(
            "mode = \"live\"\nconfig = '''\n{config_text}\n[[agents]]\nid = \"ann\"\n\
             name = \"Ann\"\nchannels = [\"{channel}\"]\n'''\n{steps}"
        ),
    )
    .expect("scenario");
    let played = agentdesk(&["scenario", &scenario.display().to_string()]);
    let printed = String::from_utf8_lossy(&played.stdout).into_owned();
    assert!(
        played.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&played.stderr)
    );
    printed
}

/// `agentdesk package` of a vendor's library into the installation's plugin directory, with
/// the settings schema the vendor wrote, if any.
fn package_into(install: &Install, library: &Path, schema: Option<&Path>) {
    let (library, out) = (
        library.display().to_string(),
        install.plugins.display().to_string(),
    );
    let mut args = vec!["package", &library, "--out", &out];
    let schema = schema.map(|s| s.display().to_string());
    if let Some(schema) = &schema {
        args.extend(["--settings-schema", schema]);
    }
    let packaged = agentdesk(&args);
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
}

/// The steps that bring Ann to Ready on `channel`.
fn ready_on(channel: &str) -> [String; 3] {
    [
        "command = \"log-in\"".to_string(),
        format!("command = \"log-on-channel\"\nchannel = \"{channel}\""),
        format!("command = \"set-ready\"\nchannel = \"{channel}\""),
    ]
}

#[test]
fn vendor_copies_the_template_builds_packages_and_the_host_loads_it() {
    let install = Install::new();
    // Outside the workspace: a directory of its own under the system temp dir.
    let vendor = tempfile::tempdir().expect("vendor dir");
    let crate_dir = vendor_crate(vendor.path(), "template", "acme-sms");
    cargo_in(&crate_dir, &["build", "--release", "--quiet"]);
    let library = target_dir().join("fixtures/release/libacme_sms_plugin.so");

    package_into(
        &install,
        &library,
        Some(&crate_dir.join("settings.schema.json")),
    );
    let manifest = std::fs::read_to_string(install.plugins.join("acme.sms.plugin.toml"))
        .expect("manifest written");
    assert!(manifest.contains("settings_schema"), "{manifest}");
    let sha = agentdesk_host::plugins::manifest::sha256_file(
        &install.plugins.join("libacme_sms_plugin.so"),
    )
    .expect("sha");
    assert!(
        manifest.contains(&format!("sha256 = \"{sha}\"")),
        "{manifest}"
    );
    assert!(
        manifest.contains(&format!(
            "api_version = \"{}\"",
            agentdesk_tests::CURRENT_API
        )),
        "{manifest}"
    );

    let spool = install.dir.path().join("spool");
    std::fs::create_dir_all(&spool).expect("spool");
    let settings = format!(
        "[plugins.settings.\"acme.sms\"]\nspool = \"{}\"\n",
        spool.display()
    );
    // A mistyped setting is refused when the configuration loads, with file, line and key, by
    // the schema the vendor declared; nothing starts.
    let mistyped = install.write_config(&["acme.sms"], &format!("{settings}spol = \"/tmp\"\n"));
    let refused = agentdesk(&["plugins", "--config", &mistyped.display().to_string()]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&mistyped.display().to_string())
            && said.contains("plugins.settings.\"acme.sms\".spol")
            && said.contains("not a setting of this plugin")
            && said.contains("line "),
        "{said}"
    );
    let config = install.write_config(&["acme.sms"], &settings);
    let listed = agentdesk(&["plugins", "--config", &config.display().to_string()]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("acme.sms"))
        .unwrap_or_else(|| panic!("no row:\n{table}"));
    for cell in [
        "Acme SMS",
        "Acme",
        "0.1.0",
        agentdesk_tests::CURRENT_API,
        "sms",
        "loaded",
    ] {
        assert!(row.contains(cell), "`{cell}` missing in: {row}");
    }

    // And it works, played headless by `agentdesk scenario`: an SMS dropped in the spool becomes
    // an offer, which Ann accepts, ends and marks done.
    std::fs::write(spool.join("m1.txt"), "+15550123\nWhere is my parcel?\n").expect("sms");
    let ready = ready_on("sms");
    let mut steps: Vec<&str> = ready.iter().map(String::as_str).collect();
    steps.extend([
        "wait = \"offer\"\nas = \"sms1\"",
        "command = \"accept\"\ninteraction = \"sms1\"",
        "command = \"end\"\ninteraction = \"sms1\"",
        "command = \"mark-done\"\ninteraction = \"sms1\"",
        "wait = \"done\"\ninteraction = \"sms1\"",
    ]);
    let printed = play(&install, &config, "sms", &steps);
    for seen in [
        "plugin acme.sms loaded",
        "ann: #1 (sms +15550123) offered to ann",
        "ann: #1 is sms1",
        "ann: sms1 (sms +15550123) active",
        "ann: sms1 (sms +15550123) ended",
        "transcript of sms1:\n  +15550123: Where is my parcel?",
    ] {
        assert!(printed.contains(seen), "`{seen}` missing:\n{printed}");
    }
}

#[test]
fn the_conversation_template_talks_both_ways_through_the_core() {
    let install = Install::new();
    let vendor = tempfile::tempdir().expect("vendor dir");
    let crate_dir = vendor_crate(vendor.path(), "template-conversation", "acme-relay");
    // A debug build is enough to package and load (it shares the test build's dependencies).
    cargo_in(&crate_dir, &["build", "--quiet"]);
    let library = target_dir().join("fixtures/debug/libacme_relay_plugin.so");
    package_into(&install, &library, None);
    let config = install.write_config(&["acme.relay"], "");
    let folder = install.data.join("plugins/acme.relay/relay");
    std::fs::create_dir_all(folder.join("in")).expect("relay folder");
    std::fs::write(folder.join("in/c1-1.txt"), "My order is late\n").expect("customer");
    let ready = ready_on("relay");
    let mut steps: Vec<&str> = ready.iter().map(String::as_str).collect();
    steps.extend([
        "wait = \"offer\"\nas = \"c1\"",
        "command = \"accept\"\ninteraction = \"c1\"",
        "reply = \"Let me check that for you\"\ninteraction = \"c1\"",
        "command = \"end\"\ninteraction = \"c1\"",
        "wait = \"ended\"\ninteraction = \"c1\"",
        "command = \"mark-done\"\ninteraction = \"c1\"",
        "wait = \"done\"\ninteraction = \"c1\"",
    ]);
    let printed = play(&install, &config, "relay", &steps);
    assert!(
        printed.contains(
            "transcript of c1:\n  c1: My order is late\n  Ann: Let me check that for you"
        ),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("out/c1.txt")).expect("delivered"),
        "Agent: Let me check that for you\n"
    );
    assert!(folder.join("out/c1.ended").exists(), "its side was closed");
}

#[test]
fn plugin_api_stands_alone_with_the_workspaces_own_pins() {
    let read = |path: &str| -> toml::Table {
        let text = std::fs::read_to_string(repo_root().join(path)).expect(path);
        text.parse().expect("TOML")
    };
    let api = read("plugin-api/Cargo.toml");
    let workspace = read("Cargo.toml");
    let package = api["package"].as_table().expect("[package]");
    for key in ["edition", "rust-version", "license", "version"] {
        assert!(
            package.get(key).is_some_and(|v| !v.is_table()),
            "plugin-api's `{key}` must be written out, not inherited"
        );
    }
    let pins = workspace["workspace"]["dependencies"]
        .as_table()
        .expect("[workspace.dependencies]");
    let version = |value: &toml::Value| -> String {
        match value {
            toml::Value::String(v) => v.clone(),
            other => other["version"].as_str().unwrap_or_default().to_string(),
        }
    };
    let mut checked = 0;
    for section in ["dependencies", "dev-dependencies"] {
        for (name, spec) in api[section].as_table().expect(section) {
            assert!(
                spec.get("workspace").is_none(),
                "plugin-api's `{name}` inherits from the workspace"
            );
            let pinned = pins.get(name).map(version).unwrap_or_default();
            assert_eq!(
                version(spec),
                pinned,
                "plugin-api's `{name}` differs from the workspace pin"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} dependencies checked");
    let template = std::fs::read_to_string(repo_root().join("plugins/template/Cargo.toml"))
        .expect("template manifest");
    assert!(
        template.contains(&format!(
            "abi_stable = {{ version = \"{}\"",
            version(&pins["abi_stable"])
        )),
        "the template pins the host's abi_stable"
    );
}
