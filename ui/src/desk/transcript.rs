//! The transcript of an open interaction: every message in full, wrapped to the width, with
//! links on the numbers and addresses it holds. Only the messages on screen are laid out and
//! drawn; each message's height is measured once per width and kept, so a transcript of tens of
//! thousands of messages scrolls as fast as a short one.

use super::Desk;
use agentdesk_client::{LiveLine, recognise_addresses};
use eframe::egui;
use plugin_api::Address;
use std::sync::Arc;

/// Height of the sender's row and of the row of links under a message.
const ROW_HEIGHT: f32 = 20.0;

/// Where each message of a transcript starts at one width.
#[derive(Debug, Default)]
pub(super) struct TranscriptLayout {
    width: f32,
    /// The top of each measured message, then the bottom of the last one.
    tops: Vec<f32>,
}

impl TranscriptLayout {
    /// Measures the messages not measured yet (all of them when the width changed).
    fn update(&mut self, ui: &egui::Ui, lines: &[LiveLine], width: f32) {
        if (self.width - width).abs() > 0.5 || self.tops.len() > lines.len() + 1 {
            self.width = width;
            self.tops.clear();
        }
        if self.tops.is_empty() {
            self.tops.push(0.0);
        }
        let spacing = ui.spacing().item_spacing.y;
        let measured = self.tops.len() - 1;
        for line in &lines[measured..] {
            let top = self.tops.last().copied().unwrap_or_default();
            let height = Parts::of(ui, line, width).height(spacing);
            self.tops.push(top + height + spacing);
        }
    }

    fn total(&self) -> f32 {
        self.tops.last().copied().unwrap_or_default()
    }

    /// The first message whose bottom is below `y`.
    fn first_visible(&self, y: f32) -> usize {
        self.tops.partition_point(|top| *top <= y).saturating_sub(1)
    }
}

/// A message as drawn: its text laid out at the width, and the addresses to link.
struct Parts {
    text: Arc<egui::Galley>,
    links: Vec<(&'static str, &'static str, Address)>,
}

impl Parts {
    fn of(ui: &egui::Ui, line: &LiveLine, width: f32) -> Self {
        let text = egui::WidgetText::from(line.line.text.as_str()).into_galley(
            ui,
            Some(egui::TextWrapMode::Wrap),
            width,
            egui::TextStyle::Body,
        );
        let links = recognise_addresses(&line.line.text)
            .into_iter()
            .filter_map(|address| outbound(&address).map(|(verb, ch)| (verb, ch, address)))
            .collect();
        Parts { text, links }
    }

    fn height(&self, spacing: f32) -> f32 {
        let links = if self.links.is_empty() {
            0.0
        } else {
            spacing + ROW_HEIGHT
        };
        ROW_HEIGHT + spacing + self.text.size().y + links
    }
}

/// Lays out `add` left to right inside `rect` (of the transcript's content).
fn in_row<R>(ui: &mut egui::Ui, rect: egui::Rect, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    ui.scope_builder(
        egui::UiBuilder::new()
            .max_rect(rect)
            .layout(egui::Layout::left_to_right(egui::Align::Center)),
        add,
    )
    .inner
}

/// What an address lets the agent start, and on which channel.
pub(super) fn outbound(address: &Address) -> Option<(&'static str, &'static str)> {
    match address.kind.as_str() {
        Address::PHONE => Some(("Call", "voice")),
        Address::EMAIL => Some(("Email", "email")),
        _ => None,
    }
}

impl Desk {
    /// The transcript of `key`, scrolled to the newest message unless the agent scrolled up.
    pub(super) fn transcript(&mut self, ui: &mut egui::Ui, key: u64) {
        let view = self.views.entry(key).or_default();
        let (lines, layout) = (&view.lines, &mut view.layout);
        let mut clicked: Option<(&'static str, Address)> = None;
        egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show_viewport(ui, |ui, viewport| {
                let area = ui.max_rect();
                let width = area.width();
                layout.update(ui, lines, width);
                ui.set_height(layout.total());
                let spacing = ui.spacing().item_spacing.y;
                let first = layout.first_visible(viewport.min.y);
                for (n, line) in lines.iter().enumerate().skip(first) {
                    let top = layout.tops[n];
                    if top > viewport.max.y {
                        break;
                    }
                    let parts = Parts::of(ui, line, width);
                    let row = |y: f32, height: f32| {
                        egui::Rect::from_min_size(
                            egui::pos2(area.left(), area.top() + y),
                            egui::vec2(width, height),
                        )
                    };
                    let who = egui::RichText::new(format!("{}:", line.line.party));
                    let who = if line.from_agent {
                        who.italics()
                    } else {
                        who.strong()
                    };
                    in_row(ui, row(top, ROW_HEIGHT), |ui| ui.label(who));
                    let text_top = top + ROW_HEIGHT + spacing;
                    let text_height = parts.text.size().y;
                    in_row(ui, row(text_top, text_height), |ui| ui.label(parts.text));
                    if parts.links.is_empty() {
                        continue;
                    }
                    let links = row(text_top + text_height + spacing, ROW_HEIGHT);
                    in_row(ui, links, |ui| {
                        for (verb, channel, address) in parts.links {
                            if ui.link(format!("{verb} {}", address.value)).clicked() {
                                clicked = Some((channel, address));
                            }
                        }
                    });
                }
            });
        if let Some((channel, address)) = clicked {
            self.start_outbound(channel, address, key);
        }
    }
}
