//! The vendor's path, as docs/plugin-guide.md tells it: copy the template plugin into a crate
//! outside this workspace, `cargo build --release`, `agentdesk package`, drop it into a plugin
//! directory, and `agentdesk plugins` shows it loaded; then it really offers an interaction.

use crate::cli::agentdesk;
use crate::support::Install;
use agentdesk_tests::{repo_root, target_dir, write_if_changed};
use plugin_api::Event;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

#[test]
fn vendor_copies_the_template_builds_packages_and_the_host_loads_it() {
    let install = Install::new();
    // Outside the workspace: a directory of its own under the system temp dir.
    let vendor = tempfile::tempdir().expect("vendor dir");
    let crate_dir = vendor.path().join("acme-sms");
    copy_dir(&repo_root().join("plugins/template"), &crate_dir);
    let manifest_path = crate_dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).expect("template manifest");
    let api = repo_root().join("plugin-api");
    assert!(
        manifest.contains("path = \"../../plugin-api\""),
        "the template's plugin-api line moved"
    );
    let manifest = manifest.replace(
        "path = \"../../plugin-api\"",
        &format!("path = \"{}\"", api.display()),
    );
    write_if_changed(&manifest_path, &manifest);
    let _ = std::fs::copy(repo_root().join("Cargo.lock"), crate_dir.join("Cargo.lock"));
    let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet"])
        .current_dir(&crate_dir)
        // Shares compiled dependencies with the other fixtures; the crate itself stays outside.
        .env("CARGO_TARGET_DIR", target_dir().join("fixtures"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        build.status.success(),
        "vendor build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let library = target_dir().join("fixtures/release/libacme_sms_plugin.so");

    let packaged = agentdesk(&[
        "package",
        &library.display().to_string(),
        "--out",
        &install.plugins.display().to_string(),
    ]);
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    let manifest = std::fs::read_to_string(install.plugins.join("acme.sms.plugin.toml"))
        .expect("manifest written");
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

    // And it works: an SMS dropped in the spool becomes an offer in the host.
    let host = install.start(&["acme.sms"], &settings);
    std::fs::write(spool.join("m1.txt"), "+15550123\nWhere is my parcel?\n").expect("sms");
    let event = host
        .recv_event(Duration::from_secs(5))
        .expect("an offer from the vendor plugin");
    match event.event {
        Event::Offer(offer) => assert_eq!(offer.contact.addresses[0].value, "+15550123"),
        other => panic!("expected an offer, got {other:?}"),
    }
}
