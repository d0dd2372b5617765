//! A reload of the admin's configuration in a running core: `agentdesk hub reload` and SIGHUP on
//! a hub. The team (agents and their channels) changes without a restart and without taking
//! anyone's work away (`agentdesk_host::core::RosterChange`); capacities, reasons, wrap-up codes
//! and ACW rules apply from the next decision; a plugin taken off the allowlist is stopped and
//! its channel taken out of service (its open interactions get a notice). A plugin newly allowed
//! starts at the next start of the hub: the report says so.

use crate::in_process::InProcess;
use crate::{ClientError, DeskInfo, Pending};
use agentdesk_host::AdminConfig;
use agentdesk_host::core::Policy;
use serde::{Deserialize, Serialize};

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Agents added to the team.
    pub added: Vec<String>,
    /// Agents taken out of the team (they finish the work in hand first).
    pub removed: Vec<String>,
    /// (agent, channel) newly assigned.
    pub assigned: Vec<(String, String)>,
    /// (agent, channel) withdrawn (the work in hand on it is finished first).
    pub withdrawn: Vec<(String, String)>,
    /// Plugins taken off the allowlist: stopped, their channels out of service.
    pub plugins_removed: Vec<String>,
    /// Plugins on the allowlist that are not running: they start at the next start.
    pub plugins_not_running: Vec<String>,
}

impl ReloadReport {
    /// One line per change, for the admin's terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let pairs = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(agent, channel)| format!("{agent}/{channel}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut line = |what: &str, list: String| {
            if !list.is_empty() {
                out.push_str(&format!("{what}: {list}\n"));
            }
        };
        line("agents added", self.added.join(", "));
        line("agents removed", self.removed.join(", "));
        line("channels assigned", pairs(&self.assigned));
        line("channels withdrawn", pairs(&self.withdrawn));
        line("plugins removed", self.plugins_removed.join(", "));
        line(
            "allowed plugins not running (they start when the hub restarts)",
            self.plugins_not_running.join(", "),
        );
        if out.is_empty() {
            out.push_str("the team is unchanged\n");
        }
        out
    }
}

impl InProcess {
    /// Takes `config` (already loaded and checked) as the running configuration.
    pub fn reload(&self, config: &AdminConfig) -> Pending<ReloadReport> {
        let mut report = ReloadReport::default();
        let mut channels = Vec::new();
        if let Some(plugins) = self.plugin_host() {
            let quarantined: Vec<String> = plugins
                .quarantined()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let running: Vec<String> = plugins
                .running_ids()
                .into_iter()
                .filter(|id| !quarantined.contains(id))
                .collect();
            for id in &running {
                if config.plugins.allow.contains_key(id) {
                    if let Some(descriptor) = plugins.descriptor(id) {
                        channels.extend(descriptor.channels.iter().map(|c| c.0.clone()));
                    }
                    continue;
                }
                match plugins.quarantine(id, "taken off the allowlist by a reload") {
                    Ok(()) => report.plugins_removed.push(id.clone()),
                    Err(e) => tracing::warn!(plugin = %id, "not stopped: {e}"),
                }
            }
            report.plugins_not_running = config
                .plugins
                .allow
                .keys()
                .filter(|id| !running.contains(id))
                .cloned()
                .collect();
        }
        channels.sort();
        channels.dedup();
        let policy = Policy::from_config(config, &channels);
        let info = DeskInfo::from_policy(&policy);
        let answer = self.core().reconfigure(policy);
        let connection = self.clone();
        Pending::from_channel(answer, move |changed| {
            let change = changed.map_err(ClientError::from)?;
            connection.set_info(info);
            Ok(ReloadReport {
                added: change.added,
                removed: change.removed,
                assigned: change.assigned,
                withdrawn: change.withdrawn,
                ..report
            })
        })
    }
}
