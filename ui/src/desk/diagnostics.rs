//! Every plugin with its status and the refusal or quarantine reason, where its code runs, how
//! often its process was restarted and why it last ended.

use super::Desk;
use eframe::egui;

impl Desk {
    pub(super) fn diagnostics(&mut self, ui: &mut egui::Ui) {
        ui.heading("Plugins");
        let Some(plugins) = &self.plugins else {
            ui.label("no plugin host attached");
            return;
        };
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
            for r in plugins.reports() {
                ui.label(if r.name.is_empty() { &r.id } else { &r.name });
                ui.label(r.version.as_ref().map_or("-".into(), ToString::to_string));
                ui.label(
                    r.api_version
                        .as_ref()
                        .map_or("-".into(), ToString::to_string),
                );
                ui.label(r.channels.join(", "));
                ui.label(r.status.word());
                ui.label(r.status.reason().unwrap_or(""));
                ui.label(super::text::channel_health(r.channel_status.as_ref()));
                ui.label(r.isolation.word());
                ui.label(r.restarts.to_string());
                ui.label(r.last_exit.as_deref().unwrap_or("-"));
                ui.end_row();
            }
        });
    }
}
