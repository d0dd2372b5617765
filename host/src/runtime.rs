//! The host as the desktop and the headless commands run it: the plugins (each on its own actor
//! thread) and the core service (its own thread) over the journal and history in the data
//! directory. Started before any window opens, so no plugin call ever runs on a UI thread.

use crate::config::AdminConfig;
use crate::core::Policy;
use crate::plugins::{PluginHost, StartMode};
use crate::service::clock::{Clock, SystemClock};
use crate::service::{CoreHandle, CoreService};
use crate::storage::{History, Journal};
use std::sync::Arc;

/// The running plugins and core.
pub struct Runtime {
    /// The plugins, for the diagnostics view.
    pub plugins: Arc<PluginHost>,
    /// The rules the core applies (reasons, wrap-up codes, ACW per channel, agents).
    pub policy: Policy,
    /// The core's clock.
    pub clock: Arc<dyn Clock>,
    /// The data directory (the store, the ring tone).
    pub data_dir: std::path::PathBuf,
    service: CoreService,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

impl Runtime {
    /// Starts the plugins of `config`, then the core over them with its journal and history in
    /// the data directory (one SQLite file).
    pub fn start(config: &AdminConfig) -> Result<Self, String> {
        let plugins = Arc::new(PluginHost::start(config, StartMode::Run));
        let mut channels: Vec<String> = plugins
            .running_ids()
            .iter()
            .filter_map(|id| plugins.descriptor(id))
            .flat_map(|d| d.channels.iter().map(|c| c.0.clone()))
            .collect();
        channels.sort();
        channels.dedup();
        let store = config.data_dir().join("agentdesk.sqlite3");
        let journal = Journal::open(&store).map_err(|e| e.to_string())?;
        let history = History::open(&store).map_err(|e| e.to_string())?;
        let policy = Policy::from_config(config, &channels);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let service = CoreService::start(
            policy.clone(),
            Some(journal),
            Some(history),
            Some(plugins.clone()),
            clock.clone(),
        )
        .map_err(|e| format!("cannot start the core: {e}"))?;
        Ok(Runtime {
            plugins,
            policy,
            clock,
            data_dir: config.data_dir(),
            service,
        })
    }

    /// A client handle on the core.
    pub fn core(&self) -> CoreHandle {
        self.service.handle()
    }

    /// Stops the core (everything acknowledged is journaled), then the plugins.
    pub fn stop(self) {
        self.service.stop();
    }
}
