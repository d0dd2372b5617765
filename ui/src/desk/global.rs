//! The global state control at the top of the desk, beside the tabs: the agent's state as a
//! whole in its colour, Ready on all channels, Not Ready on all with a reason, Do Not Disturb;
//! and the window title that says the same ("Ready · 2 chats"). Each click is the same commands
//! the per-channel controls send, one per channel; the core's answers show at the control.

use super::inflight::{After, Spot};
use super::{Desk, look};
use agentdesk_client::{AgentCommand, ChannelState};
use eframe::egui;

impl Desk {
    pub(super) fn global_control(&mut self, ui: &mut egui::Ui) {
        let me = look::agent(&self.snap);
        look::chip(ui, me, &format!("State: {}", me.word())).on_hover_ui(|ui| {
            ui.label(self.state_summary());
        });
        let can_ready = self
            .snap
            .channels
            .iter()
            .any(|c| c.state != ChannelState::Ready && c.unavailable.is_none());
        if ui
            .add_enabled(can_ready, egui::Button::new("Ready on all"))
            .on_hover_text("Log on to every channel of yours and take offers on all of them")
            .clicked()
        {
            self.ready_on_all_channels();
        }
        let can_not_ready = self
            .snap
            .channels
            .iter()
            .any(|c| c.state != ChannelState::LoggedOff);
        ui.add_enabled_ui(can_not_ready, |ui| {
            ui.menu_button("Not Ready on all", |ui| {
                ui.label("Reason:");
                for reason in self.client.info().not_ready_reasons.clone() {
                    if ui.button(&reason).clicked() {
                        self.not_ready_reason = reason.clone();
                        self.not_ready_on_all_channels(&reason);
                        ui.close();
                    }
                }
            })
            .response
            .on_hover_text("Stop offers on every channel, for a reason");
        });
        let mut dnd = self.snap.dnd;
        if ui
            .toggle_value(&mut dnd, "DND")
            .on_hover_text("Do Not Disturb: no offers on any channel, whatever their state")
            .clicked()
        {
            let what = if dnd { "DND on" } else { "DND off" };
            let command = AgentCommand::SetDnd { on: dnd };
            self.send(Spot::Presence, what, command, After::Nothing);
        }
    }

    /// Sets every logged-on channel Not Ready with `reason` (a channel handling work becomes
    /// Pending: the core's rule).
    pub(super) fn not_ready_on_all_channels(&mut self, reason: &str) {
        let channels: Vec<String> = self
            .snap
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::LoggedOff)
            .map(|c| c.channel.clone())
            .collect();
        for channel in channels {
            let what = format!("Not Ready {channel}");
            let command = AgentCommand::SetNotReady {
                channel: channel.clone(),
                reason: reason.to_string(),
            };
            self.send(Spot::Channel(channel), &what, command, After::Nothing);
        }
    }

    /// Every channel's state in words, one a line (the global state's hover text).
    fn state_summary(&self) -> String {
        self.snap
            .channels
            .iter()
            .map(|c| format!("{}: {}", c.channel, super::text::channel_state(&c.state)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Puts the agent's state and work in the window title when they change.
    pub(super) fn update_title(&mut self, ctx: &egui::Context) {
        if !self.connected {
            return;
        }
        let title = look::title(&self.snap);
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    /// The window title last set ("Ready · 2 chats — Ann · agentdesk").
    pub fn title(&self) -> &str {
        &self.title
    }
}
