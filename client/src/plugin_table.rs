//! The plugin table as data: every plugin found with its status, and what the configuration
//! names but nothing provides (Diagnostics and `agentdesk plugins`).

use agentdesk_host::{NotFound, PluginReport};
use serde::{Deserialize, Serialize};

/// One plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRow {
    /// The plugin id (the file name when the manifest could not be read).
    pub id: String,
    /// Its name (empty when unknown).
    pub name: String,
    /// Its vendor (empty when unknown).
    pub vendor: String,
    /// Its own version.
    pub version: Option<String>,
    /// The plugin-api version it was built against.
    pub api_version: Option<String>,
    /// Its channel kinds.
    pub channels: Vec<String>,
    /// The manifest (or orphan library) path.
    pub path: String,
    /// Its status word (`running`, `refused`, `quarantined`, ...).
    pub status: String,
    /// Why it is refused, failed or quarantined.
    pub reason: Option<String>,
    /// Whether its status is a problem for the admin (refused, failed, quarantined).
    pub problem: bool,
    /// The latest health it reported (`channel-status`), if any.
    pub channel_status: Option<plugin_api::ChannelStatus>,
    /// Where its code runs: `process` (a runner process of its own) or `in-process`.
    pub isolation: String,
    /// How often its runner process was restarted after a crash.
    pub restarts: u32,
    /// Why its runner process last ended (signal or exit code, last lines of its stderr).
    pub last_exit: Option<String>,
}

/// What the configuration names but nothing provides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRow {
    /// An allowed plugin (true) rather than a plugin directory (false).
    pub plugin: bool,
    /// The sentence for people.
    pub text: String,
}

/// The whole table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginTable {
    /// Every plugin found.
    pub plugins: Vec<PluginRow>,
    /// What was expected but not found.
    pub not_found: Vec<MissingRow>,
}

impl PluginTable {
    /// The table of a plugin host's reports.
    pub(crate) fn of(reports: Vec<PluginReport>, not_found: &[NotFound]) -> Self {
        PluginTable {
            plugins: reports
                .into_iter()
                .map(|r| PluginRow {
                    problem: r.status.is_problem(),
                    status: r.status.word().to_string(),
                    reason: r.status.reason().map(str::to_string),
                    id: r.id,
                    name: r.name,
                    vendor: r.vendor,
                    version: r.version.as_ref().map(ToString::to_string),
                    api_version: r.api_version.as_ref().map(ToString::to_string),
                    channels: r.channels,
                    path: r.path.display().to_string(),
                    channel_status: r.channel_status,
                    isolation: r.isolation.word().to_string(),
                    restarts: r.restarts,
                    last_exit: r.last_exit,
                })
                .collect(),
            not_found: not_found
                .iter()
                .map(|n| MissingRow {
                    plugin: matches!(n, NotFound::Plugin(_)),
                    text: n.to_string(),
                })
                .collect(),
        }
    }

    /// Plugins refused, failed or quarantined.
    pub fn problems(&self) -> usize {
        self.plugins.iter().filter(|p| p.problem).count()
    }

    /// Allowed plugins that were not found.
    pub fn missing_plugins(&self) -> usize {
        self.not_found.iter().filter(|n| n.plugin).count()
    }
}
