//! Never miss work. Each new offer rings once, asks the window manager for attention, and shows a
//! toast: the channel's icon, the contact, the queue, how long the contact has waited, a preview
//! of the case data and a visible countdown, with Accept and Reject. While the window is not
//! focused the offer is also a desktop notification (with Accept where the server has actions);
//! an Accept invoked there accepts the offer as the toast's button does. An offer that rang out
//! unanswered leaves a notice saying so and how to get Ready again.

use super::inflight::{After, Spot};
use super::look::{self, Look};
use super::{Desk, text};
use crate::notify::OfferNote;
use crate::ring::Ring;
use agentdesk_client::{
    AgentCommand, ChannelState, InteractionState, InteractionView, MISSED_OFFER, Millis,
};
use eframe::egui;
use plugin_api::Route;
use std::collections::BTreeSet;

/// Case-data fields shown in a toast (the rest is in the interaction once accepted).
const PREVIEW_FIELDS: usize = 3;

/// An offer the desk has announced, while it is in the agent's list.
#[derive(Debug)]
pub(super) struct Ringing {
    /// The offer as last seen ringing.
    view: InteractionView,
    /// When the desk first saw it (the countdown's full length runs from here).
    seen_at: Millis,
    /// Whether a desktop notification of it is up.
    notified: bool,
}

/// An offer that rang out unanswered.
#[derive(Debug, Clone)]
pub(super) struct Missed {
    key: u64,
    channel: String,
    words: String,
}

impl Desk {
    /// Announces new offers, raises and takes back desktop notifications, and accepts the offers
    /// accepted from a notification.
    pub(super) fn follow_offers(&mut self, ctx: &egui::Context) {
        let now = self.now();
        let new: Vec<InteractionView> = self
            .offers()
            .filter(|i| !self.announced.contains_key(&i.key))
            .cloned()
            .collect();
        for view in new {
            self.ring.ring(&Ring {
                key: view.key,
                channel: view.channel.clone(),
                // Internal IM (never saved): a colleague, not a customer, so a soft chime.
                soft: view.never_saved,
            });
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Critical,
            ));
            let ringing = Ringing {
                view,
                seen_at: now,
                notified: false,
            };
            self.announced.insert(ringing.view.key, ringing);
        }
        let ringing_now: BTreeSet<u64> = self.offers().map(|i| i.key).collect();
        let unfocused = ctx.input(|i| i.viewport().focused) == Some(false);
        let keys: Vec<u64> = self.announced.keys().copied().collect();
        for key in keys {
            let still = ringing_now.contains(&key);
            let latest = still
                .then(|| {
                    self.snap
                        .interactions
                        .iter()
                        .find(|i| i.key == key)
                        .cloned()
                })
                .flatten();
            let Some(ringing) = self.announced.get_mut(&key) else {
                continue;
            };
            if let Some(view) = latest {
                ringing.view = view;
            }
            let Some(notifier) = self.notifier.as_mut() else {
                continue;
            };
            if still && unfocused && !ringing.notified {
                ringing.notified = true;
                notifier.offer(&note(&ringing.view, now));
            } else if !still && ringing.notified {
                ringing.notified = false;
                notifier.withdraw(key);
            }
        }
        let accepted = self
            .notifier
            .as_mut()
            .map(|n| n.accepted())
            .unwrap_or_default();
        for key in accepted {
            let what = format!("Accept #{key}");
            self.send(
                Spot::Interaction(key),
                &what,
                AgentCommand::Accept { key },
                After::Open(key),
            );
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
    }

    /// Forgets the offers that left the agent's list (`open`): one whose channel the core then
    /// set Not Ready for a missed offer rang out unanswered, and leaves a notice.
    pub(super) fn offers_left(&mut self, open: &BTreeSet<u64>) {
        let gone: Vec<u64> = self
            .announced
            .keys()
            .filter(|k| !open.contains(k))
            .copied()
            .collect();
        for key in gone {
            let Some(ringing) = self.announced.remove(&key) else {
                continue;
            };
            if ringing.notified
                && let Some(notifier) = self.notifier.as_mut()
            {
                notifier.withdraw(key);
            }
            let view = ringing.view;
            let missed = self.snap.channels.iter().any(|c| {
                c.channel == view.channel
                    && matches!(&c.state, ChannelState::NotReady { reason } if reason == MISSED_OFFER)
            });
            if missed {
                let what = text::media(view.media);
                let words = format!(
                    "Missed {what} #{key} from {}: it rang out without an answer, so it went back \
                     to the queue and your {} channel is now Not Ready (missed offer). \
                     Set it Ready to take work again.",
                    super::interaction::contact_name(&view),
                    view.channel
                );
                self.missed.push(Missed {
                    key,
                    channel: view.channel,
                    words,
                });
            }
        }
        // A notice goes once its channel is no longer Not Ready for the missed offer.
        let channels = &self.snap.channels;
        self.missed.retain(|m| {
            channels.iter().any(|c| {
                c.channel == m.channel
                    && matches!(&c.state, ChannelState::NotReady { reason } if reason == MISSED_OFFER)
            })
        });
    }

    /// The notices of missed offers, in a band under the tabs.
    pub(super) fn missed_notices(&mut self, ui: &mut egui::Ui) {
        if self.missed.is_empty() {
            return;
        }
        let mut dismissed = Vec::new();
        egui::Panel::top("missed-offers").show(ui, |ui| {
            for m in self.missed.clone() {
                ui.horizontal_wrapped(|ui| {
                    look::chip(ui, Look::NotReady, "Missed offer");
                    ui.label(&m.words);
                    let what = format!("Ready again on {}", m.channel);
                    if ui.button(&what).clicked() {
                        let command = AgentCommand::SetReady {
                            channel: m.channel.clone(),
                        };
                        self.send(
                            Spot::Channel(m.channel.clone()),
                            &what,
                            command,
                            After::Nothing,
                        );
                    }
                    if ui.small_button(format!("Dismiss #{}", m.key)).clicked() {
                        dismissed.push(m.key);
                    }
                });
                self.spot_status(ui, &Spot::Channel(m.channel.clone()));
            }
        });
        self.missed.retain(|m| !dismissed.contains(&m.key));
    }

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
        let mut top = 40.0;
        for (i, deadline) in offers {
            let who = super::interaction::contact_name(&i);
            let seen_at = self.announced.get(&i.key).map_or(now, |r| r.seen_at);
            let left = deadline.saturating_sub(now);
            let full = deadline.saturating_sub(seen_at).max(1);
            let stroke = egui::Stroke::new(2.0, Look::Ready.colour());
            let shown = egui::Window::new(format!("Incoming {} #{}", text::media(i.media), i.key))
                .id(egui::Id::unique(("offer", i.key)))
                .frame(egui::Frame::window(ui.style()).stroke(stroke))
                .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-8.0, top))
                .collapsible(false)
                .resizable(false)
                .show(ui.ctx(), |ui| {
                    ui.set_max_width(320.0);
                    ui.horizontal(|ui| {
                        look::media_icon(ui, i.media);
                        ui.heading(&who);
                    });
                    ui.label(format!(
                        "{} on {} · {}",
                        text::media(i.media),
                        i.channel,
                        queue_words(i.route.as_ref())
                    ));
                    ui.label(format!(
                        "waiting {}",
                        text::duration(now.saturating_sub(i.arrived_at))
                    ));
                    if let Some(subject) = &i.subject {
                        ui.label(subject);
                    }
                    for field in i.detail.case_data.iter().take(PREVIEW_FIELDS) {
                        ui.label(format!(
                            "{}: {}",
                            field.label.as_deref().unwrap_or(&field.key),
                            field.value
                        ));
                    }
                    let countdown = format!("answer within {}", text::duration(left));
                    ui.add(
                        egui::ProgressBar::new(left as f32 / full as f32)
                            .desired_width(300.0)
                            .fill(Look::AfterCallWork.colour()),
                    );
                    ui.strong(countdown);
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
            top += shown.map_or(150.0, |r| r.response.rect.height() + 8.0);
        }
    }
}

/// Where an offer was routed, in words.
fn queue_words(route: Option<&Route>) -> String {
    match route {
        Some(r) if r.to == Route::QUEUE => format!("queue {}", r.name),
        Some(r) if r.to == Route::AGENT => "routed to you".into(),
        Some(r) if r.to == Route::EXTENSION => format!("extension {}", r.name),
        Some(r) => format!("{} {}", r.to, r.name),
        None => "no queue".into(),
    }
}

/// What the desktop notification of an offer says.
pub(super) fn note(i: &InteractionView, now: Millis) -> OfferNote {
    let summary = format!(
        "Incoming {}: {}",
        text::media(i.media),
        super::interaction::contact_name(i)
    );
    let mut body = vec![format!(
        "{} · waiting {}",
        queue_words(i.route.as_ref()),
        text::duration(now.saturating_sub(i.arrived_at))
    )];
    if let InteractionState::Offered { deadline, .. } = i.state {
        body.push(format!(
            "answer within {}",
            text::duration(deadline.saturating_sub(now))
        ));
    }
    if let Some(subject) = &i.subject {
        body.push(subject.clone());
    }
    for field in i.detail.case_data.iter().take(PREVIEW_FIELDS) {
        body.push(format!(
            "{}: {}",
            field.label.as_deref().unwrap_or(&field.key),
            field.value
        ));
    }
    OfferNote {
        key: i.key,
        summary,
        body: body.join("\n"),
    }
}
