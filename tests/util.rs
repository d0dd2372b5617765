//! Helpers shared by the end-to-end tests: repository paths, and the builder that compiles fixture
//! plugins (and a host) against real or deliberately altered copies of plugin-api.
//!
//! Fixture crates are generated under `target/fixture-src/` and built into `target/fixtures/`
//! with their own cargo invocation. They cannot be workspace members: the altered copies of the
//! API must keep the package name `plugin-api`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Where the workspace's own debug artifacts are (the first-party plugins, `agentdesk`).
pub fn workspace_artifacts() -> PathBuf {
    target_dir().join("debug")
}

/// A first-party plugin library built by `cargo build --workspace` (done by `cargo xtask test`).
pub fn first_party_library(lib_name: &str) -> PathBuf {
    let path = workspace_artifacts().join(format!("lib{lib_name}.so"));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo xtask test`, which builds the plugins first",
        path.display()
    );
    path
}

/// Which plugin-api a fixture is compiled against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The real plugin-api of this repository (1.5.0).
    Current,
    /// plugin-api 1.0.0 exactly as released (`tests/fixtures/plugin-api-1.0.0/`, never edited):
    /// what vendors' oldest plugins are built against.
    Released1_0,
    /// A copy at 1.6.0 (the next minor) that adds a command kind (`send-survey`) and an event kind
    /// (`sentiment-changed`), as a later minor release would.
    NextMinor,
    /// A copy at 2.0.0 (nothing else changed).
    NextMajor,
    /// A copy still at this version whose `LogLevel` is a u16 instead of a u8: a layout change.
    LayoutChanged,
}

impl Api {
    /// The plugin-api version it is.
    pub fn version(self) -> &'static str {
        match self {
            Api::Current | Api::LayoutChanged => CURRENT_API,
            Api::Released1_0 => "1.0.0",
            Api::NextMinor => "1.6.0",
            Api::NextMajor => "2.0.0",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Api::Current => "current",
            Api::Released1_0 => "released-1-0",
            Api::NextMinor => "next-minor",
            Api::NextMajor => "next-major",
            Api::LayoutChanged => "layout-changed",
        }
    }
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The version of this repository's plugin-api (its `Cargo.toml`).
pub const CURRENT_API: &str = "1.5.0";

/// The directory of the plugin-api crate for `api`, generating the altered copy if needed.
pub fn api_dir(api: Api) -> PathBuf {
    let real = repo_root().join("plugin-api");
    if api == Api::Current {
        return real;
    }
    let dir = target_dir()
        .join("fixture-src")
        .join(format!("plugin-api-{}", api.key()));
    // The released 1.0 sources are used as they are; the others are altered copies of ours.
    let source = match api {
        Api::Released1_0 => repo_root().join("tests/fixtures/plugin-api-1.0.0"),
        _ => real,
    };
    let mut files = read_tree(&source.join("src"), Path::new(""));
    let manifest = std::fs::read_to_string(source.join("Cargo.toml")).expect("plugin-api manifest");
    let current = format!(
        "version = \"{}\"",
        if api == Api::Released1_0 {
            "1.0.0"
        } else {
            CURRENT_API
        }
    );
    let manifest = standalone_manifest(
        &manifest,
        &[(
            current.as_str(),
            &format!("version = \"{}\"", api.version()),
        )],
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    match api {
        Api::NextMinor => {
            patch(
                &mut files,
                "vocabulary/commands.rs",
                &[
                    (
                        "        InvokeAction(InvokeAction),\n",
                        "        InvokeAction(InvokeAction),\n        /// See [`SendSurvey`].\n        SendSurvey(SendSurvey),\n",
                    ),
                    (
                        "    InvokeAction => \"invoke-action\",\n",
                        "    InvokeAction => \"invoke-action\",\n    SendSurvey => \"send-survey\",\n",
                    ),
                    (
                        "/// The command was carried out.",
                        "/// (1.1) Ask the customer to fill in a survey.\n#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]\npub struct SendSurvey {\n    /// The interaction.\n    pub interaction: InteractionId,\n    /// The survey.\n    pub survey: String,\n}\n\n/// The command was carried out.",
                    ),
                ],
            );
            patch(
                &mut files,
                "vocabulary/events.rs",
                &[
                    (
                        "        ChannelStatus(ChannelStatus),\n",
                        "        ChannelStatus(ChannelStatus),\n        /// See [`SentimentChanged`].\n        SentimentChanged(SentimentChanged),\n",
                    ),
                    (
                        "    ChannelStatus => \"channel-status\",\n",
                        "    ChannelStatus => \"channel-status\",\n    SentimentChanged => \"sentiment-changed\",\n",
                    ),
                    (
                        "message_kind! {\n    Offer",
                        "/// (1.1) The customer's mood changed.\n#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\npub struct SentimentChanged {\n    /// The interaction.\n    pub interaction: InteractionId,\n    /// -1 (angry) to 1 (happy).\n    pub score: f32,\n}\n\nmessage_kind! {\n    Offer",
                    ),
                ],
            );
        }
        Api::LayoutChanged => {
            patch(
                &mut files,
                "abi.rs",
                &[(
                    "pub struct LogLevel(pub u8);",
                    "pub struct LogLevel(pub u16);",
                )],
            );
        }
        _ => {}
    }
    for (relative, text) in &files {
        write_if_changed(&dir.join("src").join(relative), text);
    }
    dir
}

/// Turns a workspace member's manifest into a standalone one: workspace inheritance is replaced by
/// explicit values taken from the workspace manifest, and `replacements` are applied first.
fn standalone_manifest(manifest: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = manifest.to_string();
    for (from, to) in replacements {
        assert!(text.contains(from), "`{from}` not found in a manifest");
        text = text.replacen(from, to, 1);
    }
    let workspace: toml::Table = toml::from_str(
        &std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("workspace manifest"),
    )
    .expect("workspace manifest parses");
    let mut doc: toml::Table = toml::from_str(&text).expect("member manifest parses");
    let ws_package = workspace["workspace"]["package"]
        .as_table()
        .cloned()
        .unwrap_or_default();
    let ws_deps = workspace["workspace"]["dependencies"]
        .as_table()
        .cloned()
        .unwrap_or_default();
    if let Some(package) = doc.get_mut("package").and_then(|p| p.as_table_mut()) {
        for (key, value) in package.iter_mut() {
            if value.get("workspace").is_some() {
                *value = ws_package[key].clone();
            }
        }
    }
    for section in ["dependencies", "dev-dependencies"] {
        let Some(deps) = doc.get_mut(section).and_then(|d| d.as_table_mut()) else {
            continue;
        };
        for (name, value) in deps.iter_mut() {
            if value.get("workspace").is_none() {
                continue;
            }
            let mut resolved = match ws_deps[name].clone() {
                toml::Value::String(v) => {
                    let mut t = toml::Table::new();
                    t.insert("version".into(), toml::Value::String(v));
                    t
                }
                toml::Value::Table(t) => t,
                other => panic!("unexpected workspace dependency {name}: {other}"),
            };
            if let Some(path) = resolved.get("path").and_then(|p| p.as_str()) {
                let absolute = repo_root().join(path).display().to_string();
                resolved.insert("path".into(), toml::Value::String(absolute));
            }
            if let Some(extra) = value.get("features").cloned() {
                let mut features = resolved
                    .get("features")
                    .and_then(|f| f.as_array())
                    .cloned()
                    .unwrap_or_default();
                features.extend(extra.as_array().cloned().unwrap_or_default());
                resolved.insert("features".into(), toml::Value::Array(features));
            }
            if let Some(optional) = value.get("optional").cloned() {
                resolved.insert("optional".into(), optional);
            }
            *value = toml::Value::Table(resolved);
        }
    }
    doc.remove("lints");
    doc.remove("dev-dependencies");
    // Only the library is built from a generated manifest.
    for target in ["bench", "test", "example", "bin"] {
        doc.remove(target);
    }
    doc.insert("workspace".into(), toml::Value::Table(toml::Table::new()));
    toml::to_string(&doc).expect("manifest serializes")
}

/// A fixture plugin to build from `tests/fixtures/plugin/lib.rs` (or another source there).
#[derive(Debug, Clone, Copy)]
pub struct FixtureSpec {
    /// Its source, relative to `tests/fixtures/`.
    pub source: &'static str,
    /// Package name; the plugin id is `fixture.<package>`.
    pub package: &'static str,
    /// Package (= plugin) version.
    pub version: &'static str,
    /// The plugin-api it is built against.
    pub api: Api,
    /// The channel kind it reports.
    pub channel: &'static str,
}

impl FixtureSpec {
    /// A fixture at version 1.0.0 built against the real plugin-api, on channel "fixture".
    pub const fn new(package: &'static str) -> Self {
        FixtureSpec {
            source: "plugin/lib.rs",
            package,
            version: "1.0.0",
            api: Api::Current,
            channel: "fixture",
        }
    }

    /// The plugin id it reports.
    pub fn id(&self) -> String {
        format!("fixture.{}", self.package)
    }

    fn key(&self) -> String {
        let source = match self.source {
            "plugin/lib.rs" => String::new(),
            other => format!("-{}", other.trim_end_matches("/lib.rs").replace('/', "-")),
        };
        format!(
            "{}-{}-{}-{}{source}",
            self.package,
            self.version,
            self.api.key(),
            self.channel
        )
        .replace('.', "-")
    }
}

/// Builds a fixture plugin and returns the path of a copy of its library that belongs to this
/// spec alone (`target/fixtures/out/...`).
pub fn build_fixture(spec: FixtureSpec) -> PathBuf {
    build_fixture_in(spec, Profile::Debug)
}

/// Which cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `dev` (tests).
    Debug,
    /// `release` (benchmarks).
    Release,
}

/// Like [`build_fixture`], with a choice of profile.
pub fn build_fixture_in(spec: FixtureSpec, profile: Profile) -> PathBuf {
    let key = spec.key();
    let dir = target_dir().join("fixture-src").join(&key);
    // A package of its own per spec: cargo does not refresh the copy of a library it finds up to
    // date, so two specs sharing a package name would hand back each other's library.
    let package = format!("fx-{key}");
    let lib_name = package.replace('-', "_");
    let api = api_dir(spec.api);
    let manifest = format!(
        "[package]\nname = \"{package}\"\nversion = \"{version}\"\nedition = \"2024\"\n\n\
         [lib]\nname = \"{lib_name}\"\ncrate-type = [\"cdylib\"]\npath = \"{source}\"\n\n\
         [features]\nnext = []\n\n\
         [dependencies]\nplugin-api = {{ path = \"{api}\" }}\nabi_stable = {{ version = \"=0.11.3\", default-features = false }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
        version = spec.version,
        source = repo_root()
            .join("tests/fixtures")
            .join(spec.source)
            .display(),
        api = api.display(),
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    let mut features = Vec::new();
    if spec.api == Api::NextMinor {
        features.push("next");
    }
    let env = [
        ("FIXTURE_ID", spec.id()),
        ("FIXTURE_CHANNEL", spec.channel.to_string()),
    ];
    let built = cargo_build(&dir, &features, &env, profile).join(format!("lib{lib_name}.so"));
    let out = target_dir()
        .join("fixtures/out")
        .join(format!("{key}-{profile:?}"));
    std::fs::create_dir_all(&out).expect("fixture output dir");
    let copy = out.join(format!("lib{lib_name}.so"));
    // Tests build the same fixture in parallel: copy under a name of this test's own, then rename
    // (atomic), so no test ever reads a library another one is still writing.
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let partial = out.join(format!(".lib{lib_name}.so.{}.{n}", std::process::id()));
    std::fs::copy(&built, &partial).expect("copy fixture library");
    std::fs::rename(&partial, &copy).expect("move fixture library into place");
    copy
}

/// Builds a plain cdylib that is not an abi_stable plugin.
pub fn build_not_abi_stable() -> PathBuf {
    let dir = target_dir().join("fixture-src/not-abi-stable");
    let manifest = format!(
        "[package]\nname = \"not-abi-stable\"\nversion = \"1.0.0\"\nedition = \"2024\"\n\n\
         [lib]\nname = \"not_abi_stable\"\ncrate-type = [\"cdylib\"]\npath = \"{}\"\n\n[workspace]\n",
        repo_root()
            .join("tests/fixtures/not-abi-stable/lib.rs")
            .display()
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    cargo_build(&dir, &[], &[], Profile::Debug).join("libnot_abi_stable.so")
}

/// Builds the real host crate against the plugin-api 1.1 copy, plus a small binary that drives
/// it (`tests/fixtures/compat-host/main.rs`); returns the binary.
pub fn build_next_minor_host() -> PathBuf {
    let api = api_dir(Api::NextMinor);
    let host_dir = target_dir().join("fixture-src/host-next-minor");
    let host_manifest =
        std::fs::read_to_string(repo_root().join("host/Cargo.toml")).expect("host manifest");
    let mut host_manifest = standalone_manifest(&host_manifest, &[]);
    host_manifest = host_manifest.replace(
        &format!("path = \"{}\"", repo_root().join("plugin-api").display()),
        &format!("path = \"{}\"", api.display()),
    );
    host_manifest.push_str(&format!(
        "\n[lib]\npath = \"{}\"\n",
        repo_root().join("host/src/lib.rs").display()
    ));
    write_if_changed(&host_dir.join("Cargo.toml"), &host_manifest);
    let dir = target_dir().join("fixture-src/compat-host");
    let manifest = format!(
        "[package]\nname = \"compat-host\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
         [[bin]]\nname = \"compat-host\"\npath = \"{main}\"\n\n\
         [dependencies]\nagentdesk-host = {{ path = \"{host}\" }}\nplugin-api = {{ path = \"{api}\" }}\n\
         serde_json = \"1\"\n\n[workspace]\n",
        main = repo_root()
            .join("tests/fixtures/compat-host/main.rs")
            .display(),
        host = host_dir.display(),
        api = api.display(),
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    cargo_build(&dir, &[], &[], Profile::Debug).join("compat-host")
}

/// Runs `cargo build` for a generated crate into `target/fixtures`; returns its output directory.
fn cargo_build(dir: &Path, features: &[&str], env: &[(&str, String)], profile: Profile) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // The workspace lock file pins the same dependency versions the host was built with.
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        let _ = std::fs::copy(repo_root().join("Cargo.lock"), &lock);
    }
    let fixtures_target = target_dir().join("fixtures");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&fixtures_target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if !features.is_empty() {
        cargo.arg("--features").arg(features.join(","));
    }
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    for (k, v) in env {
        cargo.env(k, v);
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building fixture {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    fixtures_target.join(if profile == Profile::Release {
        "release"
    } else {
        "debug"
    })
}

/// Builds a first-party plugin of the workspace in release (into `target/fixtures`, so it never
/// waits for the lock of the workspace's own build) and returns its library.
pub fn build_workspace_plugin_release(package: &str, lib_name: &str) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let fixtures_target = target_dir().join("fixtures");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            package,
            "--target-dir",
        ])
        .arg(&fixtures_target)
        .current_dir(repo_root())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    fixtures_target
        .join("release")
        .join(format!("lib{lib_name}.so"))
}

/// Writes a manifest for `library` (copied into `plugin_dir`) with the given facts, as a vendor's
/// packaging step would; the sha256 is the library's.
pub fn install_with_manifest(
    plugin_dir: &Path,
    library: &Path,
    id: &str,
    version: &str,
    api_version: &str,
    channels: &[&str],
) -> PathBuf {
    std::fs::create_dir_all(plugin_dir).expect("plugin dir");
    let file_name = library.file_name().expect("library file name");
    let target = plugin_dir.join(file_name);
    std::fs::copy(library, &target).expect("copy library");
    let manifest = agentdesk_host::plugins::manifest::Manifest {
        manifest_version: 1,
        id: id.into(),
        name: format!("Test plugin {id}"),
        vendor: "tests".into(),
        version: version.parse().expect("version"),
        api_version: api_version.parse().expect("api version"),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        library: file_name.to_string_lossy().into_owned(),
        sha256: agentdesk_host::plugins::manifest::sha256_file(&target).expect("sha256"),
        description: String::new(),
        settings_schema: None,
    };
    let path = plugin_dir.join(format!("{id}.plugin.toml"));
    std::fs::write(&path, manifest.to_toml()).expect("write manifest");
    path
}

/// Installs a built fixture with a manifest matching its spec; returns the installed library.
pub fn install_fixture(plugin_dir: &Path, spec: FixtureSpec) -> PathBuf {
    let library = build_fixture(spec);
    let api_version = spec.api.version();
    install_with_manifest(
        plugin_dir,
        &library,
        &spec.id(),
        spec.version,
        api_version,
        &[spec.channel],
    );
    plugin_dir.join(library.file_name().expect("library file name"))
}

fn read_tree(root: &Path, relative: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join(relative)).expect("read source tree") {
        let entry = entry.expect("dir entry");
        let rel = relative.join(entry.file_name());
        if entry.path().is_dir() {
            files.extend(read_tree(root, &rel));
        } else {
            files.push((
                rel,
                std::fs::read_to_string(entry.path()).expect("source file"),
            ));
        }
    }
    files
}

fn patch(files: &mut [(PathBuf, String)], relative: &str, replacements: &[(&str, &str)]) {
    let (_, text) = files
        .iter_mut()
        .find(|(rel, _)| rel == Path::new(relative))
        .unwrap_or_else(|| panic!("plugin-api has no src/{relative} to patch"));
    for (from, to) in replacements {
        assert_eq!(
            text.matches(from).count(),
            1,
            "fixture patch anchor `{from}` must occur exactly once in plugin-api/src/{relative}"
        );
        *text = text.replacen(from, to, 1);
    }
}

/// Writes a file only when its content changes, so cargo does not rebuild for nothing.
pub fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path)
        .map(|t| t == text)
        .unwrap_or(false)
    {
        return;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dir");
    }
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, text).expect("write file");
    std::fs::rename(&tmp, path).expect("rename file");
}

/// A configuration that allows the given plugin ids (any version, in the host's process), with one
/// agent on all channels, plugins in `plugin_dir` and data in `data_dir`; `extra` is appended.
pub fn config_text(plugin_dir: &Path, data_dir: &Path, allow: &[&str], extra: &str) -> String {
    let mut text = format!(
        "[host]\ndata_dir = \"{}\"\n\n[plugins]\ndirectories = [\"{}\"]\ncall_deadline_ms = 1000\n\
         start_deadline_ms = 3000\nstop_deadline_ms = 1000\n\n",
        data_dir.display(),
        plugin_dir.display()
    );
    // These tests are about the plugins themselves, in the host's own process (process isolation
    // has its own tests: `isolated_config_text`).
    for id in allow {
        text.push_str(&format!(
            "[plugins.allow.\"{id}\"]\nversion = \"*\"\nisolation = \"in-process\"\n\n"
        ));
    }
    if !extra.contains("[[agents]]") {
        text.push_str("[[agents]]\nid = \"a1\"\nname = \"Agent One\"\nchannels = \"all\"\n\n");
    }
    text.push_str(extra);
    text
}

/// Turns a [`config_text`] into one where the plugins `ids` run isolated, each in a process of its
/// own started from `runner` (an executable with the `plugin-runner` subcommand: `agentdesk`, or
/// `agentdesk-test-host` in tests).
pub fn isolate(text: &str, ids: &[&str], runner: &Path) -> String {
    let mut text = text.replacen(
        "[plugins]\n",
        &format!("[plugins]\nrunner = \"{}\"\n", runner.display()),
        1,
    );
    for id in ids {
        let rule =
            format!("[plugins.allow.\"{id}\"]\nversion = \"*\"\nisolation = \"in-process\"\n");
        assert!(text.contains(&rule), "`{id}` is not allowed in the config");
        text = text.replace(&rule, &rule.replace("in-process", "process"));
    }
    text
}

/// The core service as the desktop runs it: journal and history in `<data_dir>/agentdesk.sqlite3`
/// (one file), the system clock, and the given plugins (if any).
pub fn start_core(
    data_dir: &Path,
    policy: agentdesk_host::core::Policy,
    plugins: Option<std::sync::Arc<agentdesk_host::PluginHost>>,
) -> agentdesk_host::service::CoreService {
    let store = data_dir.join("agentdesk.sqlite3");
    agentdesk_host::service::CoreService::start(
        policy,
        Some(agentdesk_host::storage::Journal::open(&store).expect("journal")),
        Some(agentdesk_host::storage::History::open(&store).expect("history")),
        plugins,
        std::sync::Arc::new(agentdesk_host::service::clock::SystemClock),
    )
    .expect("the core service starts")
}

/// A host for a channel benchmark, as agentdesk runs it: the plugin `library` packaged and loaded
/// (allowed as `id`), the core service with journal and history, and `agents` agents `a0`, `a1`,
/// ... with only `channel`, auto-answering, logged on and Ready. `settings` holds the plugin's
/// section and any `[channels.<channel>]` rules. Returns the plugins, the service and the
/// plugin's `endpoint.json`.
pub fn start_bench_host(
    dir: &Path,
    library: &Path,
    id: &str,
    channel: &str,
    agents: usize,
    settings: &str,
) -> (
    std::sync::Arc<agentdesk_host::PluginHost>,
    agentdesk_host::service::CoreService,
    serde_json::Value,
) {
    use agentdesk_host::core::{AgentCommand, Policy};
    let (plugin_dir, data) = (dir.join("plugins"), dir.join("data"));
    std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
    agentdesk_host::plugins::package::package(library, &plugin_dir).expect("package");
    let mut extra = settings.to_string();
    for a in 0..agents {
        extra.push_str(&format!(
            "\n[[agents]]\nid = \"a{a}\"\nname = \"Agent {a}\"\nchannels = [\"{channel}\"]\n\
             auto_answer = [\"{channel}\"]\n"
        ));
    }
    let config_path = dir.join("agentdesk.toml");
    std::fs::write(&config_path, config_text(&plugin_dir, &data, &[id], &extra)).expect("config");
    let config = agentdesk_host::AdminConfig::load(&config_path).expect("config");
    let plugins = std::sync::Arc::new(agentdesk_host::PluginHost::start(
        &config,
        agentdesk_host::StartMode::Run,
    ));
    assert_eq!(plugins.running_ids().len(), 1, "{:#?}", plugins.reports());
    let service = start_core(
        &data,
        Policy::from_config(&config, &[channel.to_string()]),
        Some(plugins.clone()),
    );
    let core = service.handle();
    for a in 0..agents {
        let agent = format!("a{a}");
        core.login(&agent).expect("login");
        for command in [
            AgentCommand::LogOnChannel {
                channel: channel.into(),
            },
            AgentCommand::SetReady {
                channel: channel.into(),
            },
        ] {
            core.execute(&agent, command).expect("ready");
        }
    }
    let endpoint = data.join("plugins").join(id).join("endpoint.json");
    let endpoint = serde_json::from_str(&std::fs::read_to_string(endpoint).expect("endpoint"))
        .expect("endpoint json");
    (plugins, service, endpoint)
}

/// The path of a peer program, or a failure naming the Debian package to install.
pub fn tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is missing: apt-get install {package}"))
}

/// A UDP+TCP port free now whose next port is free too (baresip binds TLS on port + 1).
pub fn free_pair() -> u16 {
    use std::net::{TcpListener, UdpSocket};
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if port < 65000
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}
