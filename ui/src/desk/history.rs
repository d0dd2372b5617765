//! Past interactions: the contact's history next to an open interaction, and a search tab over
//! transcripts and subjects (the core's history queries; IM text is never there).

use super::Desk;
use agentdesk_host::service::{Answer, InteractionView, Query};
use agentdesk_host::storage::history::HistoryEntry;
use eframe::egui;

/// The search tab's state.
#[derive(Debug, Default)]
pub(super) struct Search {
    text: String,
    results: Option<Vec<HistoryEntry>>,
    transcript: Option<(u64, Vec<String>)>,
}

impl Desk {
    pub(super) fn contact_history(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        ui.strong("Contact history");
        let view = self.views.entry(i.key).or_default();
        if view.history.is_none() {
            let found = match self.core.query(Query::ContactOf(i.key)) {
                Ok(Answer::ContactId(Some(contact))) => {
                    match self.core.query(Query::Search {
                        contact: Some(contact),
                        text: None,
                        limit: 20,
                    }) {
                        Ok(Answer::Entries(entries)) => entries,
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            view.history = Some(found.into_iter().filter(|e| e.key != i.key).collect());
        }
        let entries = view.history.as_deref().unwrap_or_default();
        if entries.is_empty() {
            ui.label("no earlier interactions");
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            for e in entries {
                ui.label(entry_line(e));
            }
        });
    }

    pub(super) fn history_tab(&mut self, ui: &mut egui::Ui) {
        ui.heading("Search past interactions");
        ui.horizontal(|ui| {
            let label = ui.label("Search for");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.search.text)
                        .hint_text("words in transcripts"),
                )
                .labelled_by(label.id);
            let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Search").clicked() || entered {
                let query = Query::Search {
                    contact: None,
                    text: Some(self.search.text.clone()).filter(|t| !t.trim().is_empty()),
                    limit: 100,
                };
                match self.core.query(query) {
                    Ok(Answer::Entries(entries)) => self.search.results = Some(entries),
                    Ok(_) => {}
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
        });
        let Some(results) = self.search.results.clone() else {
            return;
        };
        ui.label(format!("{} found", results.len()));
        egui::ScrollArea::vertical().show(ui, |ui| {
            for e in &results {
                if ui.link(entry_line(e)).clicked() {
                    let lines = match self.core.query(Query::Transcript {
                        key: e.key,
                        offset: 0,
                        limit: 500,
                    }) {
                        Ok(Answer::Lines(lines)) => lines
                            .into_iter()
                            .map(|l| format!("{}: {}", l.party, l.text))
                            .collect(),
                        _ => Vec::new(),
                    };
                    self.search.transcript = Some((e.key, lines));
                }
            }
            if let Some((key, lines)) = &self.search.transcript {
                ui.separator();
                ui.strong(format!("Transcript of #{key}"));
                for line in lines {
                    ui.label(line);
                }
            }
        });
    }
}

fn entry_line(e: &HistoryEntry) -> String {
    let outcome = if e.outcome.is_empty() {
        "open"
    } else {
        &e.outcome
    };
    format!(
        "#{} {} {} · {}{}",
        e.key,
        e.channel,
        e.subject.as_deref().unwrap_or(""),
        outcome,
        e.wrap_up
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default()
    )
}
