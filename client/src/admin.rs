//! The headless commands of `agentdesk` (for admins and vendors): the configuration, the plugin
//! check behind `agentdesk plugins`, packaging a plugin, scenarios. The command line needs
//! nothing else of the host.

use crate::{ClientError, Connection, DeskClient, Pending, PluginTable};
use agentdesk_host::{PluginHost, StartMode};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The admin's configuration (one TOML file).
pub use agentdesk_host::AdminConfig;
/// `agentdesk plugin-runner`: an isolated plugin's process (started by the host, never by hand).
pub use agentdesk_host::plugins::runner::{SUBCOMMAND as PLUGIN_RUNNER, run_plugin_runner};
/// A scenario's report and the live scenario runner.
pub use agentdesk_host::scenario::{
    is_live as is_live_scenario, run as run_scenario, run_live as run_live_scenario,
};

/// The configuration at `path`, or the built-in default without one.
pub fn load_config(path: Option<&Path>) -> Result<AdminConfig, String> {
    match path {
        Some(path) => AdminConfig::load(path).map_err(|e| e.to_string()),
        None => AdminConfig::builtin()
            .map_err(|e| format!("the built-in default configuration is invalid: {e}")),
    }
}

/// Writes the manifest for a built plugin library into `out` (with its settings schema, if
/// given) and copies the library there; returns the manifest's path.
pub fn package(
    library: &Path,
    out: &Path,
    settings_schema: Option<&Path>,
) -> Result<PathBuf, String> {
    agentdesk_host::plugins::package::package_with_schema(library, out, settings_schema)
        .map_err(|e| e.to_string())
}

/// The plugins of a configuration without a core (`agentdesk plugins`): found, verified and
/// loaded, and started unless only verifying. A [`Connection`] whose plugin table is theirs;
/// nobody can log in.
pub struct PluginCheck {
    host: PluginHost,
}

impl std::fmt::Debug for PluginCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginCheck")
    }
}

impl PluginCheck {
    /// Finds, verifies and loads the plugins of `config`; starts them unless `verify_only`.
    pub fn start(config: &AdminConfig, verify_only: bool) -> Self {
        let mode = if verify_only {
            StartMode::VerifyOnly
        } else {
            StartMode::Run
        };
        PluginCheck {
            host: PluginHost::start(config, mode),
        }
    }

    /// Takes in what started plugins report at once (their `channel-status`) for up to
    /// `at_most`, or until `interrupted` says so.
    pub fn settle(&self, at_most: Duration, interrupted: impl Fn() -> bool) {
        let until = Instant::now() + at_most;
        while !interrupted()
            && Instant::now() < until
            && self.host.recv_event(Duration::from_millis(200)).is_some()
        {}
    }
}

impl Connection for PluginCheck {
    fn agents(&self) -> Pending<Vec<(String, String)>> {
        Pending::ready(Ok(Vec::new()))
    }

    fn login(&self, _agent: &str) -> Pending<Box<dyn DeskClient>> {
        Pending::ready(Err(ClientError::failed(
            "no-core",
            "only the plugins are running: nobody can log in",
        )))
    }

    fn plugins(&self) -> Pending<PluginTable> {
        Pending::ready(Ok(PluginTable::of(
            self.host.reports(),
            self.host.not_found(),
        )))
    }

    fn team(&self) -> Pending<crate::TeamView> {
        Pending::ready(Err(ClientError::failed(
            "no-core",
            "only the plugins are running: there is no team",
        )))
    }

    /// Stops the plugins (each within its stop deadline).
    fn close(mut self: Box<Self>) {
        self.host.shutdown();
    }
}
