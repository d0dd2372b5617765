//! The History tab opens with the agent's own recent interactions — the last 24 hours first, then
//! earlier — filterable by channel and outcome: a typed query through the client interface
//! (`DeskClient::recent`), asked again when a filter changes or on Refresh.

use super::Desk;
use agentdesk_client::{HistoryEntry, HistoryFilter, Pending};
use eframe::egui;

/// How many recent interactions are listed.
const RECENT: usize = 200;
/// What "recent" splits at: the last 24 hours, then earlier.
const DAY_MS: u64 = 24 * 3600 * 1000;
/// The outcomes the filter offers (the history's codes) with their words.
const OUTCOMES: [(&str, &str); 6] = [
    ("", "open"),
    ("ended", "ended, not marked done"),
    ("done", "done"),
    ("abandoned", "abandoned"),
    ("rejected", "rejected"),
    ("forwarded", "forwarded"),
];

/// The recent list's state.
#[derive(Debug, Default)]
pub(super) struct Recent {
    filter: HistoryFilter,
    /// The filter of the list shown (or on its way); `None` until first asked.
    asked: Option<HistoryFilter>,
    entries: Vec<HistoryEntry>,
    coming: Option<Pending<Vec<HistoryEntry>>>,
}

impl Recent {
    /// Whether an answer is on its way.
    pub(super) fn coming(&self) -> bool {
        self.coming.is_some()
    }
}

impl Desk {
    /// The agent's recent interactions, with the channel and outcome filters; returns the key of
    /// an entry clicked (its transcript is then fetched by the search below).
    pub(super) fn recent_interactions(&mut self, ui: &mut egui::Ui) -> Option<u64> {
        self.take_recent();
        let channels: Vec<String> = self.channel_names();
        let recent = &mut self.recent;
        ui.heading("My recent interactions");
        let mut refresh = false;
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Channel")
                .selected_text(recent.filter.channel.clone().unwrap_or("all".into()))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut recent.filter.channel, None, "all channels");
                    for channel in &channels {
                        ui.selectable_value(
                            &mut recent.filter.channel,
                            Some(channel.clone()),
                            channel,
                        );
                    }
                });
            let outcome_words = |code: &Option<String>| match code {
                None => "all".to_string(),
                Some(c) => OUTCOMES
                    .iter()
                    .find(|(k, _)| k == c)
                    .map_or(c.clone(), |(_, w)| w.to_string()),
            };
            egui::ComboBox::from_label("Outcome")
                .selected_text(outcome_words(&recent.filter.outcome))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut recent.filter.outcome, None, "all outcomes");
                    for (code, words) in OUTCOMES {
                        ui.selectable_value(
                            &mut recent.filter.outcome,
                            Some(code.to_string()),
                            words,
                        );
                    }
                });
            refresh = ui.button("Refresh").clicked();
            if recent.coming.is_some() {
                ui.spinner();
            }
        });
        if refresh || recent.asked.as_ref() != Some(&recent.filter) {
            recent.asked = Some(recent.filter.clone());
            recent.coming = Some(self.client.recent(&recent.filter, RECENT));
        }
        let now = self.client.now();
        let recent = &self.recent;
        if recent.entries.is_empty() && recent.coming.is_none() {
            ui.label("nothing handled yet");
            return None;
        }
        let mut open = None;
        let (today, earlier): (Vec<&HistoryEntry>, Vec<&HistoryEntry>) = recent
            .entries
            .iter()
            .partition(|e| now.saturating_sub(e.arrived_at) < DAY_MS);
        egui::ScrollArea::vertical()
            .id_salt("recent")
            .max_height(ui.available_height() * 0.5)
            .show(ui, |ui| {
                for (title, entries) in [("Last 24 hours", &today), ("Earlier", &earlier)] {
                    if entries.is_empty() {
                        continue;
                    }
                    ui.strong(format!("{title} ({})", entries.len()));
                    for e in entries {
                        let ago = super::text::duration(now.saturating_sub(e.arrived_at));
                        let line = format!("{} · {ago} ago", super::history::entry_line(e));
                        if ui.link(line).clicked() {
                            open = Some(e.key);
                        }
                    }
                }
            });
        open
    }

    fn take_recent(&mut self) {
        if let Some(coming) = &mut self.recent.coming
            && let Some(answer) = coming.poll()
        {
            self.recent.coming = None;
            match answer {
                Ok(entries) => self.recent.entries = entries,
                Err(e) => self.error = Some(format!("recent interactions: {e}")),
            }
        }
    }
}
