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
                let selected = self.selected == Some(i.key);
                let entry = entry_row(ui, i, row, selected, unread, now);
                if entry.clicked() {
                    self.selected = Some(i.key);
                }
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

/// One entry of the list, drawn as one widget (the list is redrawn every frame: no child layouts
/// per row): the channel's icon, `#key contact` cut to the width, the time on the right and the
/// unread count in a red bubble. Screen readers get `#key contact` as a selectable label.
fn entry_row(
    ui: &mut egui::Ui,
    i: &InteractionView,
    height: f32,
    selected: bool,
    unread: usize,
    now: u64,
) -> egui::Response {
    let who = super::interaction::contact_name(i);
    // What a screen reader says (and the text drawn before the bubble).
    let label = if unread > 0 {
        format!("#{} {who} ({unread} new)", i.key)
    } else {
        format!("#{} {who}", i.key)
    };
    let drawn = format!("#{} {who}", i.key);
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, height), egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, &label));
    if ui.is_rect_visible(rect) {
        let visuals = ui.style().interact_selectable(&response, selected);
        let painter = ui.painter();
        if selected || response.hovered() {
            painter.rect_filled(rect, 3.0, visuals.weak_bg_fill);
        }
        let pad = 4.0;
        let small = egui::TextStyle::Small.resolve(ui.style());
        // The channel's icon.
        let icon = painter.layout_no_wrap(
            look::icon(i.media).into(),
            small.clone(),
            egui::Color32::WHITE,
        );
        let icon_rect = egui::Rect::from_min_size(
            egui::pos2(
                rect.left() + 2.0,
                rect.center().y - icon.size().y / 2.0 - 1.0,
            ),
            icon.size() + egui::vec2(6.0, 2.0),
        );
        painter.rect_filled(icon_rect, 3.0, look::ICON_FILL);
        painter.galley(
            icon_rect.min + egui::vec2(3.0, 1.0),
            icon,
            egui::Color32::WHITE,
        );
        // From the right: the unread bubble, then the time.
        let mut right = rect.right() - pad;
        if unread > 0 {
            let count =
                painter.layout_no_wrap(unread.to_string(), small.clone(), egui::Color32::WHITE);
            let bubble = egui::Rect::from_min_max(
                egui::pos2(
                    right - count.size().x - 10.0,
                    rect.center().y - count.size().y / 2.0 - 1.0,
                ),
                egui::pos2(right, rect.center().y + count.size().y / 2.0 + 1.0),
            );
            painter.rect_filled(bubble, 8.0, Look::NotReady.colour());
            painter.galley(
                bubble.min + egui::vec2(5.0, 1.0),
                count,
                egui::Color32::WHITE,
            );
            right = bubble.left() - pad;
        }
        let (words, look) = since(i, now);
        let colour = look.map_or(visuals.text_color(), Look::colour);
        let body = egui::TextStyle::Body.resolve(ui.style());
        let time = painter.layout_no_wrap(words, body.clone(), colour);
        let time_pos = egui::pos2(right - time.size().x, rect.center().y - time.size().y / 2.0);
        let name_left = icon_rect.right() + pad;
        let name_width = (time_pos.x - pad - name_left).max(0.0);
        painter.galley(time_pos, time, colour);
        // The name, cut to what is left.
        let text_colour = if unread > 0 {
            ui.visuals().strong_text_color()
        } else {
            visuals.text_color()
        };
        let mut job = egui::text::LayoutJob::single_section(
            drawn,
            egui::TextFormat::simple(body, text_colour),
        );
        job.wrap = egui::text::TextWrapping::truncate_at_width(name_width);
        let name = painter.layout_job(job);
        let name_pos = egui::pos2(name_left, rect.center().y - name.size().y / 2.0);
        painter.galley(name_pos, name, text_colour);
    }
    response.on_hover_ui(|ui| {
        ui.label(format!(
            "{who} · {} · {}",
            i.channel,
            text::interaction_state(&i.state)
        ));
        if unread > 0 {
            ui.label(format!("{unread} new from the customer"));
        }
    })
}
