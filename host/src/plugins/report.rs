//! What the plugin host tells its callers: each plugin's status and report, what the configuration
//! names but nothing provides, decoded events and why a command failed. Plain data, no behaviour.

use super::actor::CallError;
use crate::config::Isolation;
use plugin_api::Event;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a plugin stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginStatus {
    /// Opened, created and started; taking commands.
    Loaded,
    /// Opened and checked (abi_stable's checks, `describe`), not started: `--verify-only`.
    Verified,
    /// Verified but not started: no agent served by this host has any of its channels.
    NotStarted(String),
    /// Not opened, or opened and refused by a check. The reason is for the admin.
    Refused(String),
    /// Opened but its `create` or `start` returned an error.
    Failed(String),
    /// It panicked or missed a deadline and takes no more calls.
    Quarantined(String),
    /// Stopped at shutdown.
    Stopped,
}

impl PluginStatus {
    /// Whether the admin has something to fix: refused, failed or quarantined.
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            PluginStatus::Refused(_) | PluginStatus::Failed(_) | PluginStatus::Quarantined(_)
        )
    }

    /// One word for tables: loaded, verified, not-started, refused, failed, quarantined, stopped.
    pub fn word(&self) -> &'static str {
        match self {
            PluginStatus::Loaded => "loaded",
            PluginStatus::Verified => "verified",
            PluginStatus::NotStarted(_) => "not-started",
            PluginStatus::Refused(_) => "refused",
            PluginStatus::Failed(_) => "failed",
            PluginStatus::Quarantined(_) => "quarantined",
            PluginStatus::Stopped => "stopped",
        }
    }

    /// The reason, when there is one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            PluginStatus::NotStarted(r)
            | PluginStatus::Refused(r)
            | PluginStatus::Failed(r)
            | PluginStatus::Quarantined(r) => Some(r),
            PluginStatus::Loaded | PluginStatus::Verified | PluginStatus::Stopped => None,
        }
    }
}

/// Something the configuration names that no plugin directory provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    /// A configured plugin directory that does not exist.
    Directory(PathBuf),
    /// An allowed plugin id with no manifest in any plugin directory.
    Plugin(String),
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFound::Directory(dir) => {
                write!(f, "plugin directory {} does not exist", dir.display())
            }
            NotFound::Plugin(id) => write!(
                f,
                "`{id}` is allowed but no plugin directory holds a manifest for it"
            ),
        }
    }
}

/// What the host knows about one plugin found in a plugin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginReport {
    /// The plugin id (the file name when the manifest could not be read).
    pub id: String,
    /// Name, vendor, versions and channels from the manifest, when readable.
    pub name: String,
    /// The vendor.
    pub vendor: String,
    /// The plugin's own version.
    pub version: Option<semver::Version>,
    /// The plugin-api version it was built against.
    pub api_version: Option<semver::Version>,
    /// Its channel kinds.
    pub channels: Vec<String>,
    /// The manifest (or orphan library) path.
    pub path: PathBuf,
    /// Its status.
    pub status: PluginStatus,
    /// The latest `channel-status` a running plugin reported (its own health), if any.
    pub channel_status: Option<plugin_api::ChannelStatus>,
    /// Where its code runs (the admin's rule; `process` for a plugin not allowed at all).
    pub isolation: Isolation,
    /// How often its runner process was restarted after a crash (isolated plugins only).
    pub restarts: u32,
    /// Why its runner process last ended: the signal or exit code and its last lines of
    /// standard error (isolated plugins only).
    pub last_exit: Option<String>,
}

/// A plugin event after decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEvent {
    /// The plugin that sent it.
    pub plugin_id: Arc<str>,
    /// The event (`Event::Unknown` for a kind this host does not know).
    pub event: Event,
}

/// Why a command could not be delivered or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No running plugin has that id.
    #[error("no running plugin `{0}`")]
    NoSuchPlugin(String),
    /// The plugin did not declare this command kind at start.
    #[error("plugin `{plugin}` does not support `{kind}`")]
    Unsupported {
        /// The plugin.
        plugin: String,
        /// The command kind.
        kind: String,
    },
    /// The call failed.
    #[error("plugin `{plugin}`: {error}")]
    Call {
        /// The plugin.
        plugin: String,
        /// What happened.
        error: CallError,
    },
    /// The plugin answered with something that is not a reply.
    #[error("plugin `{plugin}` answered badly: {reason}")]
    BadReply {
        /// The plugin.
        plugin: String,
        /// Why.
        reason: String,
    },
}
