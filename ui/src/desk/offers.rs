//! New offers announce themselves: a toast with the contact, the offer's countdown, Accept and
//! Reject (the ring and the window-attention request are sent once per offer by `Desk`).

use super::{Desk, text};
use agentdesk_host::core::{AgentCommand, InteractionState};
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
                    ui.horizontal(|ui| {
                        if ui
                            .button(format!("Accept #{}", i.key))
                            .on_hover_text("F2")
                            .clicked()
                            && self.send(AgentCommand::Accept { key: i.key })
                        {
                            self.selected = Some(i.key);
                            self.tab = super::Tab::Work;
                        }
                        if ui
                            .button(format!("Reject #{}", i.key))
                            .on_hover_text("F3")
                            .clicked()
                        {
                            self.send(AgentCommand::Decline { key: i.key });
                        }
                    });
                });
        }
    }
}
