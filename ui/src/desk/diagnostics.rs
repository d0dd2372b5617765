//! Every plugin with its status and the refusal or quarantine reason, where its code runs, how
//! often its process was restarted and why it last ended: the plugin table served by the client,
//! fetched again every few seconds while the tab is open.

use super::Desk;
use agentdesk_client::{Pending, PluginTable};
use eframe::egui;
use std::time::{Duration, Instant};

/// How often the table is fetched again while it is shown.
const REFRESH: Duration = Duration::from_secs(2);

/// The plugin table as last fetched.
#[derive(Debug, Default)]
pub(super) struct PluginsView {
    table: Option<Result<PluginTable, String>>,
    coming: Option<Pending<PluginTable>>,
    fetched: Option<Instant>,
}

impl PluginsView {
    /// Whether the table is on its way.
    pub(super) fn coming(&self) -> bool {
        self.coming.is_some()
    }
}

impl Desk {
    pub(super) fn diagnostics(&mut self, ui: &mut egui::Ui) {
        ui.heading("Plugins");
        let view = &mut self.plugins;
        if let Some(coming) = &mut view.coming
            && let Some(answer) = coming.poll()
        {
            view.table = Some(answer.map_err(|e| e.to_string()));
            view.coming = None;
        }
        if view.coming.is_none() && view.fetched.is_none_or(|at| at.elapsed() >= REFRESH) {
            view.coming = Some(self.client.plugins());
            view.fetched = Some(Instant::now());
        }
        let table = match &view.table {
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("fetching the plugin table");
                });
                return;
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("no plugin table: {e}"));
                return;
            }
            Some(Ok(table)) => table,
        };
        if table.plugins.is_empty() {
            ui.label("no plugins");
        }
        egui::Grid::new("plugins").striped(true).show(ui, |ui| {
            for h in [
                "Plugin",
                "Version",
                "API",
                "Channels",
                "Status",
                "Reason",
                "Channel status",
                "Isolation",
                "Restarts",
                "Last exit",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for r in &table.plugins {
                ui.label(if r.name.is_empty() { &r.id } else { &r.name });
                ui.label(r.version.as_deref().unwrap_or("-"));
                ui.label(r.api_version.as_deref().unwrap_or("-"));
                ui.label(r.channels.join(", "));
                ui.label(&r.status);
                ui.label(r.reason.as_deref().unwrap_or(""));
                ui.label(super::text::channel_health(r.channel_status.as_ref()));
                ui.label(&r.isolation);
                ui.label(r.restarts.to_string());
                ui.label(r.last_exit.as_deref().unwrap_or("-"));
                ui.end_row();
            }
        });
        for missing in &table.not_found {
            ui.colored_label(ui.visuals().warn_fg_color, &missing.text);
        }
    }
}
