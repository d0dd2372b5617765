//! Links out of an interaction: case data that is a web link opens in the system browser (a
//! co-browse viewer link, say: one-time, on the plugin's public address), and the co-browse
//! session code a caller reads out is typed on the call (the core then brings the session to this
//! agent, linked to the call).

use super::Desk;
use super::inflight::{After, Spot};
use agentdesk_client::{AgentCommand, InteractionState, InteractionView};
use eframe::egui;
use plugin_api::{CaseField, ChannelKind};

/// Whether `value` is a web address the desk may open (http or https only, nothing else).
pub fn is_web_link(value: &str) -> bool {
    let rest = ["https://", "http://"].iter().find_map(|scheme| {
        value
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &value[scheme.len()..])
    });
    rest.is_some_and(|host| !host.is_empty() && !host.starts_with('/'))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An interaction's case data as a grid; web links open in the system browser when clicked.
pub fn case_data_grid(ui: &mut egui::Ui, key: u64, fields: &[CaseField]) {
    egui::Grid::new(("case-data", key)).show(ui, |ui| {
        for field in fields {
            ui.label(field.label.as_deref().unwrap_or(&field.key));
            if is_web_link(&field.value) {
                ui.hyperlink_to(&field.value, &field.value)
                    .on_hover_text("opens in your web browser");
            } else {
                ui.label(&field.value);
            }
            ui.end_row();
        }
    });
}

impl Desk {
    /// On the agent's own live call, when co-browse is one of their channels: the code the
    /// customer reads out, linked to this call.
    pub(super) fn cobrowse_code(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let key = i.key;
        let mine = i.owner.as_deref() == Some(self.snap.agent.as_str());
        let has_cobrowse = self
            .snap
            .channels
            .iter()
            .any(|c| c.channel == ChannelKind::COBROWSE);
        if !mine || !has_cobrowse || i.state != InteractionState::Active {
            return;
        }
        let mut link = None;
        ui.horizontal(|ui| {
            let label = ui.label("Co-browse code");
            let view = self.views.entry(key).or_default();
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut view.cobrowse_code)
                        .hint_text("the code the customer reads out")
                        .desired_width(140.0),
                )
                .labelled_by(label.id);
            let code = view.cobrowse_code.trim().to_string();
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .add_enabled(!code.is_empty(), egui::Button::new("Link code"))
                .clicked()
                || (enter && !code.is_empty())
            {
                view.cobrowse_code.clear();
                link = Some(code);
            }
        });
        if let Some(code) = link {
            let command = AgentCommand::LinkCode { key, code };
            self.send(Spot::Interaction(key), "Link code", command, After::Nothing);
        }
    }
}
