//! The crates keep to their seams: the desk (`ui/`) reaches the host only through the client
//! interface (`agentdesk-client`), so a desk on another computer needs nothing else.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_desk_depends_on_the_client_interface_and_not_on_the_host() {
    let ui = workspace().join("ui");
    let manifest = std::fs::read_to_string(ui.join("Cargo.toml")).expect("ui manifest");
    assert!(
        !manifest.contains("agentdesk-host"),
        "ui/Cargo.toml depends on the host"
    );
    assert!(manifest.contains("agentdesk-client"));
    let mut files = Vec::new();
    rust_files(&ui, &mut files);
    assert!(files.len() > 10, "the desk's sources: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        assert!(
            !text.contains("agentdesk_host"),
            "{} names the host: only agentdesk_client may",
            file.display()
        );
    }
}
