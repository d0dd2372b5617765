//! `cargo xtask run [ARGS]`: build everything (host, shell and every plugin cdylib — `cargo run`
//! alone builds no cdylib), package the first-party plugins next to the binary, start agentdesk.
//! `cargo xtask test [ARGS]`: the same build, then every test of the workspace.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "run" => {
            let bin = build_and_package()?;
            let status = Command::new(bin)
                .args(&rest)
                .status()
                .context("cannot start agentdesk")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        "test" => {
            build_and_package()?;
            cargo(&["test", "--workspace"], &rest)
        }
        "package" => build_and_package().map(|_| ()),
        _ => bail!("usage: cargo xtask run [ARGS] | cargo xtask test [ARGS] | cargo xtask package"),
    }
}

fn cargo(args: &[&str], rest: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .args(rest)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// Builds the workspace and packages every cdylib member into `<target>/debug/plugins` (the
/// default configuration's plugin directory, `@exe/plugins`). Returns the agentdesk binary.
fn build_and_package() -> anyhow::Result<PathBuf> {
    install_web_assets();
    cargo(&["build", "--workspace"], &[])?;
    let metadata = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cargo metadata")?;
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let target =
        PathBuf::from(metadata["target_directory"].as_str().unwrap_or("target")).join("debug");
    let agentdesk = target.join("agentdesk");
    let plugin_dir = target.join("plugins");
    for package in metadata["packages"].as_array().into_iter().flatten() {
        for lib in package["targets"].as_array().into_iter().flatten() {
            let is_cdylib = lib["crate_types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|k| k == "cdylib"));
            if !is_cdylib {
                continue;
            }
            let name = lib["name"].as_str().unwrap_or_default().replace('-', "_");
            package_plugin(
                &agentdesk,
                &target.join(format!("lib{name}.so")),
                &plugin_dir,
            )?;
        }
    }
    Ok(agentdesk)
}

/// Installs the co-browse plugin's rrweb from its committed `package-lock.json` (`npm ci`), which
/// the plugin's build compiles in. Without npm (or offline) the build goes on: the co-browse
/// plugin then reports itself unavailable with the reason, and everything else works.
fn install_web_assets() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/cobrowse/web");
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(lock), Some(installed)) = (modified(&lock), modified(&installed))
        && installed >= lock
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!(
            "warning: `npm ci` in {} failed ({s}): the co-browse plugin will report itself \
             unavailable",
            web.display()
        ),
        Err(e) => eprintln!(
            "warning: cannot run npm ({e}): the co-browse plugin needs it at build time (rrweb) \
             and will report itself unavailable; everything else works"
        ),
    }
}

fn package_plugin(agentdesk: &Path, library: &Path, out: &Path) -> anyhow::Result<()> {
    let output = Command::new(agentdesk)
        .arg("package")
        .arg(library)
        .arg("--out")
        .arg(out)
        .output()
        .context("cannot run agentdesk package")?;
    if !output.status.success() {
        bail!(
            "packaging {} failed: {}",
            library.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
