//! Interactions side by side: the list of open interactions (each on one line: the channel's
//! icon, the contact, time since it started or in after-call work, and a badge counting the
//! customer's messages not seen yet) and the tab row above the view (a tab with unread messages
//! is highlighted). Transcripts of interactions not on screen are followed too, so the desk knows
//! when a customer writes in one.

use super::look::{self, Look};
use super::{Desk, Tab, text};
use agentdesk_client::{InteractionState, InteractionView};
use eframe::egui;

impl Desk {
    /// Fetches new transcript lines of every open interaction and marks what is on screen seen.
    pub(super) fn follow_transcripts(&mut self) {
        let list: Vec<InteractionView> = self
            .snap
            .interactions
            .iter()
            .filter(|i| i.detail.lines > 0)
            .cloned()
            .collect();
        for i in &list {
            self.refresh_transcript(i);
        }
        if self.tab == Tab::Work
            && let Some(key) = self.selected
            && let Some(view) = self.views.get_mut(&key)
        {
            view.seen = Some(view.lines.len());
        }
    }

    /// The customer's messages in `key` not seen on screen yet.
    pub fn unread(&self, key: u64) -> usize {
        let Some(view) = self.views.get(&key) else {
            return 0;
        };
        let seen = view.seen.unwrap_or(view.lines.len());
        view.lines
            .iter()
            .skip(seen)
            .filter(|l| !l.from_agent)
            .count()
    }

    /// The list on the left: one line per interaction.
    pub(super) fn work_list(&mut self, ui: &mut egui::Ui, list: &[InteractionView]) {
        let now = self.now();
        ui.strong(format!("Open interactions ({})", list.len()));
        // One line per entry, so only the rows on screen are laid out, however many are open.
        let row = ui
            .spacing()
            .interact_size
            .y
            .max(ui.text_style_height(&egui::TextStyle::Body));
        egui::ScrollArea::vertical().show_rows(ui, row, list.len(), |ui, rows| {
            for i in &list[rows] {
                let unread = self.unread(i.key);
                ui.horizontal(|ui| {
                    look::media_icon(ui, i.media);
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        if unread > 0 {
                            badge(ui, unread);
                        }
                        let (words, look) = since(i, now);
                        match look {
                            Some(look) => look::coloured(ui, look, words),
                            None => ui.label(words),
                        };
                        ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                            ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
                            let who = super::interaction::contact_name(i);
                            let mut label = egui::RichText::new(format!("#{} {who}", i.key));
                            if unread > 0 {
                                label = label.strong();
                            }
                            let entry = ui
                                .add(egui::Button::selectable(
                                    self.selected == Some(i.key),
                                    label,
                                ))
                                .on_hover_text(format!(
                                    "{who} · {} · {}",
                                    i.channel,
                                    text::interaction_state(&i.state)
                                ));
                            if entry.clicked() {
                                self.selected = Some(i.key);
                            }
                        });
                    });
                });
            }
        });
    }

    /// The tab row above the view; a tab with new customer messages is highlighted.
    pub(super) fn work_tabs(&mut self, ui: &mut egui::Ui, list: &[InteractionView], on: u64) {
        ui.horizontal_wrapped(|ui| {
            for t in list {
                let unread = self.unread(t.key);
                let mut label = format!("#{} {}", t.key, text::media(t.media));
                if unread > 0 {
                    label.push_str(&format!(" ({unread} new)"));
                }
                let mut label = egui::RichText::new(label);
                if unread > 0 {
                    label = label.strong().color(Look::AfterCallWork.colour());
                }
                if ui
                    .selectable_label(t.key == on, label)
                    .on_hover_text(super::interaction::contact_name(t))
                    .clicked()
                {
                    self.selected = Some(t.key);
                }
            }
        });
    }
}

/// How long an interaction has been where it is: since accepted, in after-call work (ended,
/// waiting for Mark Done), ringing, or in the workbin.
fn since(i: &InteractionView, now: u64) -> (String, Option<Look>) {
    match (&i.state, i.ended_at, i.accepted_at) {
        (InteractionState::Ended, Some(ended), _) => (
            format!("ACW {}", text::duration(now.saturating_sub(ended))),
            Some(Look::AfterCallWork),
        ),
        (InteractionState::Offered { .. }, _, _) => ("ringing".into(), Some(Look::Ready)),
        (InteractionState::InWorkbin { .. }, _, _) => ("workbin".into(), None),
        (_, _, Some(accepted)) => (text::duration(now.saturating_sub(accepted)), None),
        _ => (text::duration(now.saturating_sub(i.arrived_at)), None),
    }
}

/// The count of unread messages in a red bubble.
fn badge(ui: &mut egui::Ui, unread: usize) {
    egui::Frame::new()
        .fill(Look::NotReady.colour())
        .corner_radius(8.0)
        .inner_margin(egui::Margin::symmetric(5, 0))
        .show(ui, |ui| {
            ui.label(
                egui::RichText::new(unread.to_string())
                    .small()
                    .strong()
                    .color(egui::Color32::WHITE),
            )
        })
        .response
        .on_hover_text(format!("{unread} new from the customer"));
}
