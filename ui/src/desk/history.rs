//! Past interactions: the contact's history next to an open interaction, and a search tab over
//! transcripts and subjects (the core's history queries; IM text is never there). Answers come
//! in later frames; until then the panel says it is searching.

use super::Desk;
use agentdesk_client::{HistoryEntry, InteractionView, Pending, TranscriptLine};
use eframe::egui;

/// The search tab's state.
#[derive(Debug, Default)]
pub(super) struct Search {
    text: String,
    results: Option<Vec<HistoryEntry>>,
    results_coming: Option<Pending<Vec<HistoryEntry>>>,
    transcript: Option<(u64, Vec<String>)>,
    transcript_coming: Option<(u64, Pending<Vec<TranscriptLine>>)>,
}

impl Desk {
    pub(super) fn contact_history(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        ui.strong("Contact history");
        let view = self.views.entry(i.key).or_default();
        if view.history.is_none() {
            let coming = view
                .history_coming
                .get_or_insert_with(|| self.client.contact_history(i.key, 20));
            match coming.poll() {
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("looking up the contact's history");
                    });
                    return;
                }
                Some(Ok(entries)) => view.history = Some(entries),
                Some(Err(e)) => {
                    view.history = Some(Vec::new());
                    self.error = Some(format!("contact history: {e}"));
                }
            }
            view.history_coming = None;
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
        self.take_search_answers();
        if let Some(key) = self.recent_interactions(ui) {
            let coming = self.client.transcript(key, 0, 500);
            self.search.transcript_coming = Some((key, coming));
        }
        ui.separator();
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
                let text = Some(self.search.text.trim()).filter(|t| !t.is_empty());
                self.search.results_coming = Some(self.client.search(text, 100));
            }
            if self.search.results_coming.is_some() {
                ui.spinner();
                ui.label("searching");
            }
        });
        let results = self.search.results.clone().unwrap_or_default();
        if self.search.results.is_some() {
            ui.label(format!("{} found", results.len()));
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            for e in &results {
                if ui.link(entry_line(e)).clicked() {
                    let coming = self.client.transcript(e.key, 0, 500);
                    self.search.transcript_coming = Some((e.key, coming));
                }
            }
            if let Some((key, _)) = &self.search.transcript_coming {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("fetching the transcript of #{key}"));
                });
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

    /// Takes the search results and transcript that came since the last frame.
    fn take_search_answers(&mut self) {
        if let Some(coming) = &mut self.search.results_coming
            && let Some(answer) = coming.poll()
        {
            self.search.results_coming = None;
            match answer {
                Ok(entries) => self.search.results = Some(entries),
                Err(e) => self.error = Some(format!("search: {e}")),
            }
        }
        if let Some((key, coming)) = &mut self.search.transcript_coming
            && let Some(answer) = coming.poll()
        {
            let key = *key;
            self.search.transcript_coming = None;
            match answer {
                Ok(lines) => {
                    let lines = lines
                        .into_iter()
                        .map(|l| format!("{}: {}", l.party, l.text))
                        .collect();
                    self.search.transcript = Some((key, lines));
                }
                Err(e) => self.error = Some(format!("transcript of #{key}: {e}")),
            }
        }
    }

    /// Whether a search or transcript is on its way.
    pub(super) fn searching(&self) -> bool {
        self.search.results_coming.is_some()
            || self.search.transcript_coming.is_some()
            || self.recent.coming()
    }
}
pub(super) fn entry_line(e: &HistoryEntry) -> String {
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
