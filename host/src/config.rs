//! The admin configuration: one TOML file (serde) with a compiled-in default.
//! Only parsing, validation and path expansion live here; nothing is started from it.

use semver::VersionReq;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The configuration used when no file is given.
pub const DEFAULT_CONFIG: &str = include_str!("../default-config.toml");

/// A configuration that could not be used. Nothing starts half-configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad key or value (the message names line and key).
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file (or `<built-in default>`).
        path: String,
        /// The TOML parser's message with line, column and key.
        message: String,
    },
    /// The values parse but contradict each other or are out of range.
    #[error("configuration file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and at which key.
        message: String,
    },
}

/// The whole admin file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Host-wide settings.
    #[serde(default)]
    pub host: HostSection,
    /// Plugin directories, policy and settings.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// The agents this host serves.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Contact-centre rules: Not Ready reasons, wrap-up codes, Pending, cross-channel rules.
    #[serde(default)]
    pub core: CoreSection,
    /// Per-channel rules: capacity, answer timeout, after-call work.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelPolicy>,
    /// The team hub's NATS identity.
    #[serde(default)]
    pub hub: HubSection,
    /// The directory of the file it was read from: relative paths in it resolve against this
    /// (none for the built-in default and parsed text: then against the working directory).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// `[core]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreSection {
    /// Not Ready reasons agents may choose.
    pub not_ready_reasons: Vec<String>,
    /// Wrap-up codes for Mark Done.
    pub wrap_up_codes: Vec<WrapUpCodeConfig>,
    /// Whether Mark Done needs a wrap-up code.
    pub wrap_up_required: bool,
    /// Whether Not Ready chosen while handling work becomes Pending (deferred until the work ends).
    pub pending: bool,
    /// Days a closed interaction's (plugin id, external id) is remembered to refuse a re-sent
    /// offer of it.
    pub dedup_days: u64,
    /// Cross-channel rules: while busy on one channel, no new offers on others.
    pub exclusive: Vec<ExclusiveRule>,
    /// A snapshot of the core state is written after this many journal events (and at stop), so
    /// start-up replays only what follows it. 0: only at stop.
    pub snapshot_every_events: u64,
    /// Standard responses agents insert from the composer.
    pub responses: Vec<StandardResponse>,
}

impl Default for CoreSection {
    fn default() -> Self {
        CoreSection {
            not_ready_reasons: vec![
                "break".into(),
                "lunch".into(),
                "meeting".into(),
                "training".into(),
            ],
            wrap_up_codes: Vec::new(),
            wrap_up_required: false,
            pending: true,
            dedup_days: 30,
            exclusive: Vec::new(),
            snapshot_every_events: 100_000,
            responses: Vec::new(),
        }
    }
}

/// `[[core.responses]]`: a standard (canned) response. Its text may hold placeholders the desk
/// fills in: `{contact.name}`, `{contact.first_name}`, `{agent.name}`, `{agent.first_name}`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StandardResponse {
    /// Its name, as agents search for it.
    pub name: String,
    /// Its category (responses are listed by category).
    #[serde(default)]
    pub category: String,
    /// The queues it is offered for (their interactions); empty: every queue.
    #[serde(default)]
    pub queues: Vec<String>,
    /// The text, with placeholders.
    pub text: String,
}

/// `[[core.wrap_up_codes]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WrapUpCodeConfig {
    /// The code.
    pub code: String,
    /// Its label.
    pub label: String,
}

/// `[[core.exclusive]]`: while an agent has work on `busy_on`, they get no offers on `blocks`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExclusiveRule {
    /// The channel whose work blocks.
    pub busy_on: String,
    /// The channels that get no new offers meanwhile.
    pub blocks: Vec<String>,
}

/// `[channels.<kind>]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelPolicy {
    /// Interactions at once per agent (defaults: voice 1, chat 2, email 3, others 1).
    pub capacity: Option<u32>,
    /// Seconds an offer rings before it goes to the next agent.
    pub answer_timeout_secs: u64,
    /// Seconds before an interaction an agent declined, missed or transferred away may be offered
    /// to that agent again when nobody else can take it.
    pub reoffer_after_secs: u64,
    /// After-call work.
    pub acw: AcwPolicy,
    /// The state after ACW (or after the last interaction when there is no ACW).
    pub after_acw: AfterAcw,
}

impl Default for ChannelPolicy {
    fn default() -> Self {
        ChannelPolicy {
            capacity: None,
            answer_timeout_secs: 20,
            reoffer_after_secs: 30,
            acw: AcwPolicy::None,
            after_acw: AfterAcw::Ready,
        }
    }
}

impl ChannelPolicy {
    /// The capacity, with the defaults per channel kind.
    pub fn capacity_for(&self, channel: &str) -> u32 {
        self.capacity.unwrap_or(match channel {
            "chat" | "facebook" | "twitter" => 2,
            "email" | "workitem" => 3,
            "im" => 5,
            _ => 1,
        })
    }
}

/// After-call work policy of one channel.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AcwPolicy {
    /// No ACW: the channel returns to its next state when the work ends.
    None,
    /// ACW for `secs`; Mark Done ends it early.
    Timed {
        /// Seconds.
        secs: u64,
    },
    /// ACW for `secs`; the agent may extend it indefinitely; Mark Done ends it.
    Extendable {
        /// Seconds before it ends on its own.
        secs: u64,
    },
    /// ACW of at least `secs` that cannot be left early; it ends at Mark Done or when the
    /// minimum has passed, whichever is later.
    Minimum {
        /// Seconds.
        secs: u64,
    },
}

/// Where a channel goes after ACW.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AfterAcw {
    /// Ready for the next interaction.
    Ready,
    /// Not Ready (system reason "after-call-work").
    NotReady,
}

/// `[host]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSection {
    /// Where durable data lives (plugins get `data_dir/plugins/<id>`).
    pub data_dir: String,
}

impl Default for HostSection {
    fn default() -> Self {
        HostSection {
            data_dir: "@data".into(),
        }
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsSection {
    /// Directories searched for `*.plugin.toml` manifests.
    pub directories: Vec<String>,
    /// Deadline for one `handle` call, in milliseconds.
    pub call_deadline_ms: u64,
    /// Deadline for `start`, in milliseconds.
    pub start_deadline_ms: u64,
    /// Deadline for `stop` at shutdown, in milliseconds.
    pub stop_deadline_ms: u64,
    /// Capacity of each plugin's event queue.
    pub event_queue: usize,
    /// The allowlist: only these plugin ids are ever loaded.
    pub allow: BTreeMap<String, AllowRule>,
    /// Each plugin's own settings, handed to its `create` as JSON.
    pub settings: BTreeMap<String, toml::Table>,
    /// The `agentdesk` executable whose `plugin-runner` runs isolated plugins (`@exe` expanded);
    /// none: this very executable.
    pub runner: Option<String>,
    /// Limits of every plugin runner process.
    pub runner_limits: RunnerLimits,
}

/// `[plugins.runner_limits]`: what one plugin runner process may use, and how often it may die.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RunnerLimits {
    /// Address space (RLIMIT_AS) in MiB; 0 leaves it unlimited.
    pub address_space_mb: u64,
    /// Open files (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Restarts after a crash before the plugin is quarantined (a runner that ran for
    /// `healthy_after_secs` starts counting afresh).
    pub max_restarts: u32,
    /// Seconds of running after which earlier crashes are forgotten.
    pub healthy_after_secs: u64,
    /// The first restart waits this long; each next one twice as long, up to 5 s.
    pub restart_backoff_ms: u64,
}

impl Default for RunnerLimits {
    fn default() -> Self {
        RunnerLimits {
            address_space_mb: 4096,
            open_files: 1024,
            max_restarts: 3,
            healthy_after_secs: 60,
            restart_backoff_ms: 100,
        }
    }
}

impl Default for PluginsSection {
    fn default() -> Self {
        PluginsSection {
            directories: vec!["@exe/plugins".into()],
            call_deadline_ms: 2000,
            start_deadline_ms: 10_000,
            stop_deadline_ms: 5000,
            event_queue: 1024,
            allow: BTreeMap::new(),
            settings: BTreeMap::new(),
            runner: None,
            runner_limits: RunnerLimits::default(),
        }
    }
}

/// `[plugins.allow."<id>"]`: one allowed plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// Which plugin versions may load, as a semver requirement (`"*"`, `"^1.2"`).
    #[serde(default = "any_version")]
    pub version: VersionReq,
    /// If set, the library's sha256 must be exactly this (hex).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Whether it runs in a process of its own (the default) or inside the host. Only the
    /// admin's file decides this; nothing a plugin or its manifest says does.
    #[serde(default)]
    pub isolation: Isolation,
}

/// Where a plugin's code runs.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In a child process (`agentdesk plugin-runner`): a crash of any kind takes only the plugin
    /// down. Crash isolation, not a security sandbox.
    #[default]
    Process,
    /// Inside the host process: fastest, but an abort or a segfault takes the host down.
    InProcess,
}

impl Isolation {
    /// The word used in the config and in reports: `process` or `in-process`.
    pub fn word(self) -> &'static str {
        match self {
            Isolation::Process => "process",
            Isolation::InProcess => "in-process",
        }
    }
}

fn any_version() -> VersionReq {
    VersionReq::STAR
}

/// `[[agents]]`: one agent and their channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// A stable id (login name).
    pub id: String,
    /// The name shown to customers and colleagues.
    pub name: String,
    /// `"all"`, or a list of channel kinds.
    pub channels: ChannelAssignment,
    /// The agent's phone extension, for calls routed by extension.
    #[serde(default)]
    pub extension: Option<String>,
    /// Channels on which offers are answered automatically.
    #[serde(default)]
    pub auto_answer: Vec<String>,
    /// The agent's NATS user in a team: the public key (`U…`) of their nkey. The seed stays on
    /// the agent's computer; `agentdesk hub nats-config` gives this key only the agent's own
    /// subjects.
    #[serde(default)]
    pub nats_key: Option<String>,
}

/// `[hub]`: the team hub's NATS identity and how it treats silent desktops.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// The hub's NATS user: the public key (`U…`) of its nkey (the seed stays on the hub's server).
    pub nats_key: Option<String>,
    /// Seconds without a word from an agent's desktop after which their Ready channels are set
    /// Not Ready with the reason `disconnected` (their open interactions stay theirs).
    pub desktop_grace_secs: u64,
    /// NATS user keys (`U…`) that may ask for the team view (`agentdesk team`): supervisors.
    pub supervisor_keys: Vec<String>,
}

impl Default for HubSection {
    fn default() -> Self {
        HubSection {
            nats_key: None,
            desktop_grace_secs: 30,
            supervisor_keys: Vec::new(),
        }
    }
}

/// Which channels an agent has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelAssignment {
    /// Every channel any loaded plugin serves.
    All,
    /// Exactly these channel kinds.
    Some(Vec<String>),
}

impl<'de> Deserialize<'de> for ChannelAssignment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Word(w)) if w == "all" => Ok(ChannelAssignment::All),
            Ok(Raw::Word(w)) => Err(serde::de::Error::custom(format!(
                "channels must be \"all\" or a list such as [\"chat\", \"email\"], not \"{w}\""
            ))),
            Ok(Raw::List(list)) => Ok(ChannelAssignment::Some(list)),
            Err(_) => Err(serde::de::Error::custom(
                "channels must be \"all\" or a list such as [\"chat\", \"email\"]",
            )),
        }
    }
}

impl ChannelAssignment {
    /// Whether this assignment includes the channel kind.
    pub fn includes(&self, channel: &str) -> bool {
        match self {
            ChannelAssignment::All => true,
            ChannelAssignment::Some(list) => list.iter().any(|c| c == channel),
        }
    }
}

impl AdminConfig {
    /// The compiled-in default.
    pub fn builtin() -> Result<Self, ConfigError> {
        Self::parse(DEFAULT_CONFIG, "<built-in default>")
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = path.display().to_string();
        let mut config = Self::parse(&text, &origin)?;
        config.base_dir = Some(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        );
        // Each plugin's settings against the schema its manifest declares, before anything starts.
        crate::plugins::settings_schema::check_config(&config, &text, &origin)?;
        Ok(config)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: AdminConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: origin.into(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.plugins.call_deadline_ms == 0 || self.plugins.start_deadline_ms == 0 {
            return Err(
                "plugins.call_deadline_ms and plugins.start_deadline_ms must be > 0".into(),
            );
        }
        if self.plugins.event_queue == 0 {
            return Err("plugins.event_queue must be > 0".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.id.trim().is_empty() {
                return Err(format!("agents[{i}].id is empty"));
            }
            if !seen.insert(agent.id.as_str()) {
                return Err(format!(
                    "agents[{i}].id: agent `{}` is defined twice",
                    agent.id
                ));
            }
        }
        for reason in &self.core.not_ready_reasons {
            if reason.trim().is_empty() {
                return Err("core.not_ready_reasons has an empty reason".into());
            }
        }
        if self.core.wrap_up_required && self.core.wrap_up_codes.is_empty() {
            return Err("core.wrap_up_required is true but core.wrap_up_codes is empty".into());
        }
        for (channel, policy) in &self.channels {
            if policy.capacity == Some(0) {
                return Err(format!("channels.{channel}.capacity must be at least 1"));
            }
        }
        let limits = &self.plugins.runner_limits;
        if limits.open_files == 0 {
            return Err("plugins.runner_limits.open_files must be > 0".into());
        }
        if limits.address_space_mb != 0 && limits.address_space_mb < 64 {
            return Err(
                "plugins.runner_limits.address_space_mb must be 0 (unlimited) or at least 64"
                    .into(),
            );
        }
        for (id, rule) in &self.plugins.allow {
            if let Some(pin) = &rule.sha256
                && (pin.len() != 64 || !pin.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(format!(
                    "plugins.allow.\"{id}\".sha256 must be 64 hexadecimal digits"
                ));
            }
        }
        Ok(())
    }

    /// Plugin directories with `@exe` expanded, relative ones against the config file's
    /// directory.
    pub fn plugin_directories(&self) -> Vec<PathBuf> {
        self.plugins
            .directories
            .iter()
            .map(|d| self.resolve(d))
            .collect()
    }

    /// The data directory with `@data`/`@exe` expanded, a relative one against the config file's
    /// directory.
    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.host.data_dir)
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let expanded = expand(path);
        match &self.base_dir {
            Some(base) if expanded.is_relative() => base.join(expanded),
            _ => expanded,
        }
    }

    /// Where an allowed plugin runs (process isolation unless the admin's rule says otherwise).
    pub fn isolation(&self, plugin_id: &str) -> Isolation {
        self.plugins
            .allow
            .get(plugin_id)
            .map(|rule| rule.isolation)
            .unwrap_or_default()
    }

    /// The executable that runs isolated plugins: `plugins.runner`, else this executable.
    pub fn runner_executable(&self) -> std::io::Result<PathBuf> {
        match &self.plugins.runner {
            Some(path) => Ok(self.resolve(path)),
            None => std::env::current_exe(),
        }
    }

    /// Whether some agent served by this host has the channel.
    pub fn channel_assigned(&self, channel: &str) -> bool {
        self.agents.iter().any(|a| a.channels.includes(channel))
    }

    /// A plugin's settings as JSON (an empty object when it has none).
    pub fn plugin_settings(&self, plugin_id: &str) -> serde_json::Value {
        match self.plugins.settings.get(plugin_id) {
            Some(table) => serde_json::to_value(table).unwrap_or_default(),
            None => serde_json::Value::Object(Default::default()),
        }
    }
}

/// Expands `@exe` (the executable's directory) and `@data` (the default data directory).
pub fn expand(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("@exe") {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        return exe_dir.join(rest.trim_start_matches('/'));
    }
    if let Some(rest) = path.strip_prefix("@data") {
        return default_data_dir().join(rest.trim_start_matches('/'));
    }
    PathBuf::from(path)
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGENTDESK_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("agentdesk");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/agentdesk"),
        None => PathBuf::from("agentdesk-data"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relative_directories_resolve_against_the_config_files_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("agentdesk.toml");
        std::fs::write(
            &file,
            "[host]\ndata_dir = \"data\"\n[plugins]\ndirectories = [\"plugins\", \"/opt/x\"]\n",
        )
        .expect("write");
        let config = super::AdminConfig::load(&file).expect("config");
        assert_eq!(
            config.plugin_directories(),
            vec![dir.path().join("plugins"), "/opt/x".into()]
        );
        assert_eq!(config.data_dir(), dir.path().join("data"));
    }

    use super::*;

    #[test]
    fn builtin_default_parses_and_assigns_all_channels() {
        let config = AdminConfig::builtin().expect("default config");
        assert!(config.channel_assigned("chat"));
        assert!(config.plugins.allow.contains_key("agentdesk.demo"));
        assert!(config.plugins.allow.contains_key("agentdesk.workitem"));
        assert!(config.plugins.allow.contains_key("agentdesk.email"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "[plugins]\ndirectories = []\ncall_deadline = 5\n";
        let err = AdminConfig::parse(text, "admin.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("call_deadline"), "{err}");
    }

    #[test]
    fn bad_channel_assignment_is_explained() {
        let text = "[[agents]]\nid = \"a\"\nname = \"A\"\nchannels = \"some\"\n";
        let err = AdminConfig::parse(text, "admin.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4") && err.contains("\"all\""), "{err}");
    }

    #[test]
    fn one_or_some_channels_are_assigned_and_others_not() {
        let text = "[[agents]]\nid = \"a\"\nname = \"A\"\nchannels = [\"chat\"]\n\
                    [[agents]]\nid = \"b\"\nname = \"B\"\nchannels = [\"email\", \"voice\"]\n";
        let config = AdminConfig::parse(text, "t").expect("valid");
        assert!(config.channel_assigned("chat") && config.channel_assigned("voice"));
        assert!(!config.channel_assigned("workitem"));
    }

    #[test]
    fn duplicate_agent_and_bad_pin_are_refused() {
        let dup = "[[agents]]\nid = \"a\"\nname = \"A\"\nchannels = \"all\"\n\
                   [[agents]]\nid = \"a\"\nname = \"A2\"\nchannels = \"all\"\n";
        assert!(
            AdminConfig::parse(dup, "t")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let pin = "[plugins.allow.\"x\"]\nsha256 = \"abc\"\n";
        assert!(
            AdminConfig::parse(pin, "t")
                .unwrap_err()
                .to_string()
                .contains("64 hexadecimal")
        );
    }

    #[test]
    fn isolation_is_process_unless_the_admins_rule_says_in_process() {
        let text = "[plugins.allow.\"acme.sms\"]\n\
                    [plugins.allow.\"acme.fax\"]\nisolation = \"in-process\"\n\
                    [plugins.allow.\"acme.web\"]\nisolation = \"process\"\n";
        let config = AdminConfig::parse(text, "t").expect("valid");
        assert_eq!(config.isolation("acme.sms"), Isolation::Process);
        assert_eq!(config.isolation("acme.fax"), Isolation::InProcess);
        assert_eq!(config.isolation("acme.web"), Isolation::Process);
        assert_eq!(config.isolation("not.allowed"), Isolation::Process);
        let bad = "[plugins.allow.\"acme.sms\"]\nisolation = \"sandbox\"\n";
        let err = AdminConfig::parse(bad, "admin.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("in-process"),
            "{err}"
        );
    }

    #[test]
    fn the_builtin_default_runs_exactly_the_bundled_plugins_in_process() {
        let config = AdminConfig::builtin().expect("default config");
        assert!(!config.plugins.allow.is_empty());
        for id in config.plugins.allow.keys() {
            assert!(id.starts_with("agentdesk."), "{id} is not first-party");
            assert_eq!(config.isolation(id), Isolation::InProcess, "{id}");
        }
        assert_eq!(config.isolation("acme.sms"), Isolation::Process);
        assert_eq!(config.plugins.runner_limits, RunnerLimits::default());
    }

    #[test]
    fn runner_limits_are_read_and_checked() {
        let text =
            "[plugins.runner_limits]\naddress_space_mb = 512\nopen_files = 64\nmax_restarts = 1\n";
        let config = AdminConfig::parse(text, "t").expect("valid");
        let limits = config.plugins.runner_limits;
        assert_eq!((limits.address_space_mb, limits.open_files), (512, 64));
        assert_eq!(limits.max_restarts, 1);
        assert_eq!(
            limits.restart_backoff_ms, 100,
            "unset keys keep their default"
        );
        for bad in ["open_files = 0", "address_space_mb = 10"] {
            let text = format!("[plugins.runner_limits]\n{bad}\n");
            let err = AdminConfig::parse(&text, "t").unwrap_err().to_string();
            assert!(err.contains("runner_limits"), "{err}");
        }
    }

    #[test]
    fn plugin_settings_become_json() {
        let text = "[plugins.settings.\"acme.sms\"]\nport = 8080\ngreeting = \"hi\"\n";
        let config = AdminConfig::parse(text, "t").expect("valid");
        let json = config.plugin_settings("acme.sms");
        assert_eq!(json["port"], 8080);
        assert_eq!(config.plugin_settings("other"), serde_json::json!({}));
    }
}
