//! My Channels: each assigned channel with its state, time in it and load; Ready, Not Ready with
//! a reason, log on/off per channel; Do Not Disturb for all channels; call forwarding.

use super::inflight::{After, Spot};
use super::look::{self, Look};
use super::{Desk, text};
use agentdesk_client::{AgentCommand, ChannelState};
use eframe::egui;
use plugin_api::Address;

impl Desk {
    pub(super) fn my_channels(&mut self, ui: &mut egui::Ui) {
        let now = self.now();
        ui.heading("My Channels");
        let mut dnd = self.snap.dnd;
        if ui
            .checkbox(&mut dnd, "Do Not Disturb (all channels)")
            .changed()
        {
            let what = if dnd {
                "Do Not Disturb on"
            } else {
                "Do Not Disturb off"
            };
            let command = AgentCommand::SetDnd { on: dnd };
            self.send(Spot::Presence, what, command, After::Nothing);
        }
        ui.horizontal(|ui| {
            ui.label("Not Ready reason:");
            egui::ComboBox::from_id_salt("reason")
                .selected_text(self.not_ready_reason.clone())
                .show_ui(ui, |ui| {
                    for reason in self.client.info().not_ready_reasons.clone() {
                        ui.selectable_value(&mut self.not_ready_reason, reason.clone(), reason);
                    }
                });
        });
        let channels = self.snap.channels.clone();
        egui::Grid::new("channels").striped(true).show(ui, |ui| {
            for h in ["Channel", "State", "Time", "Load", "", "Channel health", ""] {
                ui.strong(h);
            }
            ui.end_row();
            for ch in &channels {
                let name = &ch.channel;
                ui.label(name);
                let state = Look::of(&ch.state);
                look::chip(ui, state, &text::channel_state(&ch.state));
                ui.label(text::duration(now.saturating_sub(ch.since)));
                ui.label(format!("{}/{}", ch.load, ch.capacity));
                let spot = Spot::Channel(name.clone());
                ui.horizontal(|ui| {
                    if ch.state == ChannelState::LoggedOff {
                        let what = format!("Log on {name}");
                        if ui.button(&what).clicked() {
                            let command = AgentCommand::LogOnChannel {
                                channel: name.clone(),
                            };
                            self.send(spot.clone(), &what, command, After::Nothing);
                        }
                        return;
                    }
                    let what = format!("Ready {name}");
                    if ui
                        .add_enabled(ch.state != ChannelState::Ready, egui::Button::new(&what))
                        .clicked()
                    {
                        let command = AgentCommand::SetReady {
                            channel: name.clone(),
                        };
                        self.send(spot.clone(), &what, command, After::Nothing);
                    }
                    let what = format!("Not Ready {name}");
                    if ui.button(&what).clicked() {
                        let command = AgentCommand::SetNotReady {
                            channel: name.clone(),
                            reason: self.not_ready_reason.clone(),
                        };
                        self.send(spot.clone(), &what, command, After::Nothing);
                    }
                    let what = format!("Log off {name}");
                    if ui.button(&what).clicked() {
                        let command = AgentCommand::LogOffChannel {
                            channel: name.clone(),
                        };
                        self.send(spot.clone(), &what, command, After::Nothing);
                    }
                });
                // Out of service (its plugin was quarantined) comes first: no offers meanwhile.
                match &ch.unavailable {
                    Some(reason) => {
                        ui.colored_label(
                            ui.visuals().error_fg_color,
                            format!("unavailable: {reason}"),
                        );
                    }
                    None => {
                        ui.label(text::channel_health(ch.status.as_ref()));
                    }
                }
                ui.vertical(|ui| self.spot_status(ui, &spot));
                ui.end_row();
            }
        });
        ui.separator();
        ui.heading("Forward my calls");
        self.spot_status(ui, &Spot::Presence);
        match self.snap.forward_to.clone() {
            Some(to) => {
                ui.horizontal(|ui| {
                    ui.label(format!("Forwarded to {}", to.value));
                    if ui.button("Clear forwarding").clicked() {
                        let command = AgentCommand::SetForwarding { to: None };
                        self.send(Spot::Presence, "Clear forwarding", command, After::Nothing);
                    }
                });
            }
            None => {
                ui.horizontal(|ui| {
                    let label = ui.label("Forward to");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.forward_input)
                            .hint_text("extension or number")
                            .desired_width(160.0),
                    )
                    .labelled_by(label.id);
                    let target = self.forward_input.trim().to_string();
                    if ui
                        .add_enabled(!target.is_empty(), egui::Button::new("Set forwarding"))
                        .clicked()
                    {
                        let command = AgentCommand::SetForwarding {
                            to: Some(Address::phone(target)),
                        };
                        let after = After::ClearForwarding;
                        self.send(Spot::Presence, "Set forwarding", command, after);
                    }
                });
            }
        }
    }
}
