//! Keyboard operation: F2 accept, F3 reject, F4 end, F6 next interaction, F9 mark done, Ctrl+K
//! the command palette (every command by name), Ctrl+T the Team Communicator.

use super::inflight::{After, Spot};
use super::{Desk, Tab};
use agentdesk_client::AgentCommand;
use eframe::egui;

/// A command the palette lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PaletteCommand {
    Accept,
    Reject,
    End,
    Next,
    MarkDone,
    ReadyAll,
    NotReadyAll,
    ToggleDnd,
    Communicator,
    Show(Tab),
}

const PALETTE: [(PaletteCommand, &str); 12] = [
    (PaletteCommand::Accept, "Accept the offer (F2)"),
    (PaletteCommand::Reject, "Reject the offer (F3)"),
    (PaletteCommand::End, "End / hang up (F4)"),
    (PaletteCommand::Next, "Next interaction (F6)"),
    (PaletteCommand::MarkDone, "Mark Done (F9)"),
    (PaletteCommand::ReadyAll, "Ready on all channels"),
    (PaletteCommand::NotReadyAll, "Not Ready on all channels"),
    (PaletteCommand::ToggleDnd, "Do Not Disturb on/off"),
    (
        PaletteCommand::Communicator,
        "Team Communicator: IM a colleague (Ctrl+T)",
    ),
    (PaletteCommand::Show(Tab::Work), "Show interactions"),
    (PaletteCommand::Show(Tab::MyChannels), "Show My Channels"),
    (PaletteCommand::Show(Tab::Diagnostics), "Show diagnostics"),
];

impl Desk {
    pub(super) fn handle_keys(&mut self, ctx: &egui::Context) {
        let pressed = |key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, key));
        let command = if pressed(egui::Key::F2) {
            Some(PaletteCommand::Accept)
        } else if pressed(egui::Key::F3) {
            Some(PaletteCommand::Reject)
        } else if pressed(egui::Key::F4) {
            Some(PaletteCommand::End)
        } else if pressed(egui::Key::F6) {
            Some(PaletteCommand::Next)
        } else if pressed(egui::Key::F9) {
            Some(PaletteCommand::MarkDone)
        } else {
            None
        };
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::K)) {
            self.palette = Some(String::new());
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::T)) {
            self.open_communicator();
        }
        if let Some(command) = command {
            self.run(command);
        }
    }

    fn offered(&self) -> Option<u64> {
        self.offers().next().map(|i| i.key)
    }

    fn run(&mut self, command: PaletteCommand) {
        match command {
            PaletteCommand::Accept => {
                if let Some(key) = self.offered() {
                    let (spot, what) = (Spot::Interaction(key), format!("Accept #{key}"));
                    self.send(spot, &what, AgentCommand::Accept { key }, After::Open(key));
                }
            }
            PaletteCommand::Reject => {
                if let Some(key) = self.offered() {
                    let (spot, what) = (Spot::Interaction(key), format!("Reject #{key}"));
                    self.send(spot, &what, AgentCommand::Decline { key }, After::Nothing);
                }
            }
            PaletteCommand::End => {
                if let Some(key) = self.selected {
                    let command = AgentCommand::End { key };
                    self.send(Spot::Interaction(key), "End", command, After::Nothing);
                }
            }
            PaletteCommand::Next => {
                let keys: Vec<u64> = self.snap.interactions.iter().map(|i| i.key).collect();
                let at = self
                    .selected
                    .and_then(|k| keys.iter().position(|x| *x == k));
                self.selected = match at {
                    Some(n) => keys.get((n + 1) % keys.len()).copied(),
                    None => keys.first().copied(),
                };
                self.tab = Tab::Work;
            }
            PaletteCommand::MarkDone => {
                if let Some(key) = self.selected {
                    let wrap_up = self.views.get(&key).and_then(|v| v.wrap_up.clone());
                    let command = AgentCommand::MarkDone {
                        key,
                        wrap_up,
                        next: None,
                    };
                    self.send(Spot::Interaction(key), "Mark Done", command, After::Nothing);
                }
            }
            PaletteCommand::ReadyAll | PaletteCommand::NotReadyAll => {
                let channels = self.channel_names();
                for channel in channels {
                    let spot = Spot::Channel(channel.clone());
                    let (what, command) = if command == PaletteCommand::ReadyAll {
                        (
                            format!("Ready {channel}"),
                            AgentCommand::SetReady { channel },
                        )
                    } else {
                        let reason = self.not_ready_reason.clone();
                        let what = format!("Not Ready {channel}");
                        (what, AgentCommand::SetNotReady { channel, reason })
                    };
                    self.send(spot, &what, command, After::Nothing);
                }
            }
            PaletteCommand::Communicator => self.open_communicator(),
            PaletteCommand::ToggleDnd => {
                let on = !self.snap.dnd;
                let what = if on {
                    "Do Not Disturb on"
                } else {
                    "Do Not Disturb off"
                };
                self.send(
                    Spot::Presence,
                    what,
                    AgentCommand::SetDnd { on },
                    After::Nothing,
                );
            }
            PaletteCommand::Show(tab) => self.tab = tab,
        }
    }

    pub(super) fn command_palette(&mut self, ui: &mut egui::Ui) {
        let Some(mut filter) = self.palette.take() else {
            return;
        };
        let mut chosen = None;
        let mut open = true;
        egui::Window::new("Command palette")
            .open(&mut open)
            .collapsible(false)
            .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 60.0))
            .show(ui.ctx(), |ui| {
                let label = ui.label("Command");
                let edit = ui
                    .add(egui::TextEdit::singleline(&mut filter).hint_text("type to filter"))
                    .labelled_by(label.id);
                edit.request_focus();
                let needle = filter.to_lowercase();
                let matching: Vec<_> = PALETTE
                    .iter()
                    .filter(|(_, label)| label.to_lowercase().contains(&needle))
                    .collect();
                if ui.input(|i| i.key_pressed(egui::Key::Enter))
                    && let Some((command, _)) = matching.first()
                {
                    chosen = Some(*command);
                }
                for (command, label) in matching {
                    if ui.button(*label).clicked() {
                        chosen = Some(*command);
                    }
                }
            });
        let escaped = ui.input(|i| i.key_pressed(egui::Key::Escape));
        if let Some(command) = chosen {
            self.run(command);
        } else if open && !escaped {
            self.palette = Some(filter);
        }
    }
}
