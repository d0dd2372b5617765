//! Commands on their way: a click sends a command and returns at once; the control shows
//! "pending" until the answer comes (or the next snapshot makes it moot), and a refusal is shown
//! where the agent clicked, not in a corner.

use super::Desk;
use agentdesk_client::{AgentCommand, ClientError, Interact, Pending};
use eframe::egui;

/// Where on the desk a command was given, so its pending state and refusal show there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Spot {
    /// A channel's row in My Channels (and its ACW in the status bar).
    Channel(String),
    /// An interaction's actions (and its offer toast).
    Interaction(u64),
    /// An interaction's composer.
    Composer(u64),
    /// Do Not Disturb and forwarding.
    Presence,
    /// The Team Communicator (starting an IM).
    Communicator,
}

/// What the desk does when a command succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum After {
    Nothing,
    /// Open this interaction in the Interactions tab (an accepted offer).
    Open(u64),
    /// Empty the composer if it still holds the text sent.
    ClearComposer(u64, String),
    /// Empty the forwarding input.
    ClearForwarding,
}

/// One command on its way.
#[derive(Debug)]
pub(super) struct InFlight {
    spot: Spot,
    /// The control's words ("Ready demo"), for the pending note and the refusal.
    what: String,
    answer: Pending<()>,
    after: After,
    /// Not shown as pending (typing: advisory, sent at every keystroke).
    quiet: bool,
}

/// A refusal or failure shown at its spot until the next command there.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    what: String,
    reason: String,
}

impl Desk {
    /// Sends a routing command as this agent; its answer is taken in a later frame.
    pub(super) fn send(&mut self, spot: Spot, what: &str, command: AgentCommand, after: After) {
        let id = self.client.next_id();
        let answer = self.client.command(id, command);
        self.track(spot, what, answer, after);
    }

    /// Acts in an interaction (DTMF, typing, a custom action) without waiting.
    pub(super) fn act(&mut self, spot: Spot, what: &str, key: u64, act: Interact) {
        let quiet = matches!(act, Interact::Typing(_));
        let id = self.client.next_id();
        let answer = self.client.interact(id, key, act);
        self.track(spot, what, answer, After::Nothing);
        if let Some(last) = self.inflight.last_mut() {
            last.quiet = quiet;
        }
    }

    /// Follows a command's answer.
    pub(super) fn track(&mut self, spot: Spot, what: &str, answer: Pending<()>, after: After) {
        self.refusals.remove(&spot);
        self.inflight.push(InFlight {
            spot,
            what: what.to_string(),
            answer,
            after,
            quiet: false,
        });
    }

    /// Takes the answers that came since the last frame.
    pub(super) fn settle_answers(&mut self) {
        let mut done = Vec::new();
        self.inflight.retain_mut(|f| match f.answer.poll() {
            None => true,
            Some(answer) => {
                done.push((f.spot.clone(), f.what.clone(), answer, f.after.clone()));
                false
            }
        });
        for (spot, what, answer, after) in done {
            match answer {
                Ok(()) => self.after(after),
                Err(e) => self.refused(spot, what, &e),
            }
        }
    }

    fn refused(&mut self, spot: Spot, what: String, e: &ClientError) {
        let reason = e.to_string();
        tracing::info!(code = e.code(), "{what}: {reason}");
        self.last_refusal = Some(reason.clone());
        self.refusals.insert(spot, Refusal { what, reason });
    }

    fn after(&mut self, after: After) {
        match after {
            After::Nothing => {}
            After::Open(key) => {
                self.selected = Some(key);
                self.tab = super::Tab::Work;
            }
            After::ClearComposer(key, sent) => {
                if let Some(view) = self.views.get_mut(&key)
                    && view.composer.trim() == sent
                {
                    view.composer.clear();
                    view.typing_sent = false;
                }
            }
            After::ClearForwarding => self.forward_input.clear(),
        }
    }

    /// Whether anything is still on its way (the desk then looks again soon): a command, a
    /// query, a file.
    pub(super) fn waiting(&self) -> bool {
        !self.inflight.is_empty()
            || self.searching()
            || self.previews.coming()
            || self.plugins.coming()
            || self
                .views
                .values()
                .any(|v| v.lines_coming.is_some() || v.history_coming.is_some())
    }

    /// Shows, at `spot`, what is pending there and the last refusal there.
    pub(super) fn spot_status(&self, ui: &mut egui::Ui, spot: &Spot) {
        for f in self.inflight.iter().filter(|f| f.spot == *spot && !f.quiet) {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("{}: pending", f.what));
            });
        }
        if let Some(r) = self.refusals.get(spot) {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("{}: {}", r.what, r.reason),
            );
        }
    }
}
