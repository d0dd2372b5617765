//! Compiles rrweb (installed by `npm ci` in `web/`, which `cargo xtask` runs) into the plugin.
//! Without it the plugin still builds, and reports itself unavailable with the reason.

use std::path::Path;

const FILES: [(&str, &str); 2] = [
    ("rrweb.umd.min.cjs", "rrweb.js"),
    ("style.min.css", "rrweb.css"),
];

fn main() {
    let dist = Path::new("web/node_modules/rrweb/dist");
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let out = Path::new(&out);
    println!("cargo:rerun-if-changed=web/package-lock.json");
    let mut missing = None;
    for (from, to) in FILES {
        let from = dist.join(from);
        println!("cargo:rerun-if-changed={}", from.display());
        match std::fs::read(&from) {
            Ok(bytes) => write(&out.join(to), &bytes),
            Err(_) => {
                missing = Some(from);
                write(&out.join(to), b"");
            }
        }
    }
    let version = std::fs::read_to_string("web/node_modules/rrweb/package.json")
        .ok()
        .and_then(|text| {
            let at = text.find("\"version\"")?;
            let rest = &text[at + 9..];
            let start = rest.find('"')? + 1;
            let end = rest[start..].find('"')? + start;
            Some(rest[start..end].to_string())
        })
        .unwrap_or_default();
    println!("cargo:rustc-env=COBROWSE_RRWEB_VERSION={version}");
    let reason = match missing {
        Some(path) => format!(
            "rrweb is not installed ({} is missing): run `cargo xtask run` or `cargo xtask package`, \
             which run `npm ci` in plugins/cobrowse/web (needs npm)",
            path.display()
        ),
        None => String::new(),
    };
    println!("cargo:rustc-env=COBROWSE_MISSING_ASSETS={reason}");
}

fn write(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    if let Err(e) = std::fs::write(path, bytes) {
        println!("cargo:warning=cannot write {}: {e}", path.display());
    }
}
