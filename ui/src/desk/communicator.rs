//! The Team Communicator (Ctrl+T): find a colleague by name or id and start an internal IM with
//! one click. Holds the window only; whether the colleague can take the IM is the core's answer
//! (told at once in the IM itself). Colleagues' live presence is not shown yet (planned).

use super::inflight::{After, Spot};
use super::{Desk, Tab};
use agentdesk_client::AgentCommand;
use eframe::egui;
use plugin_api::{Address, ChannelKind};

/// The window's state while it is open.
#[derive(Debug, Default)]
pub(super) struct Communicator {
    filter: String,
    focused: bool,
}

impl Desk {
    /// Opens the Team Communicator (or brings it back with its search).
    pub fn open_communicator(&mut self) {
        self.communicator.get_or_insert_with(Communicator::default);
    }

    pub(super) fn communicator_window(&mut self, ui: &mut egui::Ui) {
        let Some(mut state) = self.communicator.take() else {
            return;
        };
        let mut open = true;
        let mut start: Option<(String, String)> = None;
        let me = self.snap.agent.clone();
        let has_im = self
            .snap
            .channels
            .iter()
            .any(|c| c.channel == ChannelKind::IM);
        let needle = state.filter.to_lowercase();
        let colleagues: Vec<(String, String)> = self
            .client
            .info()
            .agents
            .iter()
            .filter(|(id, name)| {
                *id != me
                    && (needle.is_empty()
                        || name.to_lowercase().contains(&needle)
                        || id.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect();
        egui::Window::new("Team Communicator")
            .open(&mut open)
            .collapsible(false)
            .show(ui.ctx(), |ui| {
                let label = ui.label("Find a colleague");
                let field = ui
                    .add(egui::TextEdit::singleline(&mut state.filter).hint_text("name or id"))
                    .labelled_by(label.id);
                if !std::mem::replace(&mut state.focused, true) {
                    field.request_focus();
                }
                if !has_im {
                    ui.label("Internal IM is not one of your channels.");
                }
                if colleagues.is_empty() {
                    ui.label("No colleague matches.");
                }
                for (id, name) in &colleagues {
                    ui.horizontal(|ui| {
                        ui.label(format!("{name} ({id})"));
                        let button =
                            ui.add_enabled(has_im, egui::Button::new(format!("IM {name}")));
                        if button.clicked()
                            || (colleagues.len() == 1
                                && has_im
                                && field.lost_focus()
                                && ui.input(|i| i.key_pressed(egui::Key::Enter)))
                        {
                            start = Some((id.clone(), name.clone()));
                        }
                    });
                }
                self.spot_status(ui, &Spot::Communicator);
            });
        if let Some((id, name)) = start {
            let command = AgentCommand::StartOutbound {
                channel: ChannelKind::IM.into(),
                to: Address::new(Address::AGENT, id),
                from: None,
            };
            self.send(
                Spot::Communicator,
                &format!("IM {name}"),
                command,
                After::Nothing,
            );
            self.tab = Tab::Work;
        }
        if open {
            self.communicator = Some(state);
        }
    }
}
