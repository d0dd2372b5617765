//! The status bar: every channel's state and time in it, DND, forwarding, and the ACW countdown
//! with Extend where the policy allows it.

use super::inflight::{After, Spot};
use super::look::{self, Look};
use super::{Desk, text};
use agentdesk_client::{AgentCommand, ChannelState};
use eframe::egui;

impl Desk {
    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
        let now = self.now();
        let channels = self.snap.channels.clone();
        ui.horizontal_wrapped(|ui| {
            for ch in &channels {
                let since = text::duration(now.saturating_sub(ch.since));
                let words = format!("{}: {} {since}", ch.channel, text::channel_state(&ch.state));
                look::coloured(ui, Look::of(&ch.state), words);
                if let ChannelState::AfterCallWork {
                    ends_at, min_until, ..
                } = &ch.state
                {
                    match ends_at {
                        Some(end) => ui.strong(format!(
                            "ACW ends in {}",
                            text::duration(end.saturating_sub(now))
                        )),
                        None => ui.strong("ACW: no time limit"),
                    };
                    if let Some(min) = min_until.filter(|m| *m > now) {
                        ui.label(format!(
                            "(minimum {} left)",
                            text::duration(min.saturating_sub(now))
                        ));
                    }
                    if let Some(secs) = self.client.info().extendable_acw.get(&ch.channel).copied()
                    {
                        let spot = Spot::Channel(ch.channel.clone());
                        let what = format!("Extend {} ACW", ch.channel);
                        if ends_at.is_some()
                            && ui
                                .button(&what)
                                .on_hover_text(format!("{secs} more seconds of after-call work"))
                                .clicked()
                        {
                            let command = AgentCommand::ExtendAcw {
                                channel: ch.channel.clone(),
                                secs: Some(secs),
                            };
                            self.send(spot.clone(), &what, command, After::Nothing);
                        }
                        let what = format!("Stay in {} ACW", ch.channel);
                        if ends_at.is_some()
                            && ui
                                .button(&what)
                                .on_hover_text("After-call work until you leave it")
                                .clicked()
                        {
                            let command = AgentCommand::ExtendAcw {
                                channel: ch.channel.clone(),
                                secs: None,
                            };
                            self.send(spot.clone(), &what, command, After::Nothing);
                        }
                        self.spot_status(ui, &spot);
                    }
                }
                ui.separator();
            }
            if self.snap.dnd {
                look::coloured(ui, Look::DoNotDisturb, "Do Not Disturb");
                ui.separator();
            }
            match &self.snap.forward_to {
                Some(to) => ui.label(format!("Calls forwarded to {}", to.value)),
                None => ui.label("No forwarding"),
            };
        });
    }
}
