//! New offers announce themselves: a toast with the contact, the offer's countdown, Accept and
//! Reject (the ring and the window-attention request are sent once per offer by `Desk`).

use super::inflight::{After, Spot};
use super::{Desk, text};
use agentdesk_client::{AgentCommand, InteractionState};
use eframe::egui;

impl Desk {
    pub(super) fn offer_toasts(&mut self, ui: &mut egui::Ui) {
        let now = self.now();
        let offers: Vec<_> = self
            .snap
            .interactions
            .iter()
            .filter_map(|i| match &i.state {
                InteractionState::Offered { deadline, .. } => Some((i.clone(), *deadline)),
                _ => None,
            })
            .collect();
        for (n, (i, deadline)) in offers.into_iter().enumerate() {
            let who = super::interaction::contact_name(&i);
            egui::Window::new(format!("Incoming {} #{}", i.channel, i.key))
                .anchor(
                    egui::Align2::RIGHT_TOP,
                    egui::vec2(-8.0, 40.0 + 110.0 * n as f32),
                )
                .collapsible(false)
                .resizable(false)
                .show(ui.ctx(), |ui| {
                    ui.label(format!("{} from {who}", text::media(i.media)));
                    if let Some(subject) = &i.subject {
                        ui.label(subject);
                    }
                    ui.label(format!(
                        "answer within {}",
                        text::duration(deadline.saturating_sub(now))
                    ));
                    let spot = Spot::Interaction(i.key);
                    ui.horizontal(|ui| {
                        let what = format!("Accept #{}", i.key);
                        if ui.button(&what).on_hover_text("F2").clicked() {
                            let command = AgentCommand::Accept { key: i.key };
                            self.send(spot.clone(), &what, command, After::Open(i.key));
                        }
                        let what = format!("Reject #{}", i.key);
                        if ui.button(&what).on_hover_text("F3").clicked() {
                            let command = AgentCommand::Decline { key: i.key };
                            self.send(spot.clone(), &what, command, After::Nothing);
                        }
                    });
                    self.spot_status(ui, &spot);
                });
        }
    }
}
