//! The Team Communicator (Ctrl+T): find a colleague by name or id, see their presence (asked
//! again every second while the window is open) and start an internal IM with one click. Holds
//! the window only; whether the colleague can take the IM is the core's answer (told at once in
//! the IM itself).

use super::inflight::{After, Spot};
use super::{Desk, Tab, text};
use agentdesk_client::{AgentCommand, Pending, Presence};
use eframe::egui;
use plugin_api::{Address, ChannelKind};
use std::time::{Duration, Instant};

/// How often presence is asked for while the window is open.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);

/// The window's state while it is open.
#[derive(Default)]
pub(super) struct Communicator {
    filter: String,
    focused: bool,
    presence: Vec<Presence>,
    asking: Option<Pending<Vec<Presence>>>,
    asked_at: Option<Instant>,
    failed: Option<String>,
}

impl Communicator {
    /// Takes in the latest presence and asks again when it is due.
    fn refresh(&mut self, client: &dyn agentdesk_client::DeskClient) {
        if let Some(asking) = &mut self.asking {
            match asking.poll() {
                None => return,
                Some(Ok(presence)) => {
                    self.presence = presence;
                    self.failed = None;
                }
                Some(Err(e)) => self.failed = Some(format!("presence not known: {e}")),
            }
            self.asking = None;
        }
        if self
            .asked_at
            .is_none_or(|at| at.elapsed() >= PRESENCE_EVERY)
        {
            self.asked_at = Some(Instant::now());
            self.asking = Some(client.presence());
        }
    }

    /// How a colleague looks as a whole (the colour their words are shown in).
    fn look(&self, agent: &str) -> super::look::Look {
        use super::look::{Look, overall};
        match self.presence.iter().find(|p| p.agent == agent) {
            Some(p) if p.logged_in => overall(p.dnd, p.channels.iter().map(|(_, s)| Look::of(s))),
            _ => Look::LoggedOff,
        }
    }

    /// A colleague's presence in words: logged off, Do Not Disturb, each channel's state.
    fn words(&self, agent: &str) -> String {
        let Some(p) = self.presence.iter().find(|p| p.agent == agent) else {
            return String::new();
        };
        if !p.logged_in {
            return "logged off".into();
        }
        let channels: Vec<String> = p
            .channels
            .iter()
            .map(|(channel, state)| format!("{channel}: {}", text::channel_state(state)))
            .collect();
        let dnd = if p.dnd { "Do Not Disturb · " } else { "" };
        format!("{dnd}{}", channels.join(" · "))
    }
}

impl Desk {
    /// Opens the Team Communicator (or brings it back with its search).
    pub fn open_communicator(&mut self) {
        self.communicator.get_or_insert_with(Communicator::default);
    }

    pub(super) fn communicator_window(&mut self, ui: &mut egui::Ui) {
        let Some(mut state) = self.communicator.take() else {
            return;
        };
        state.refresh(&*self.client);
        let mut open = true;
        let mut start: Option<(String, String)> = None;
        let me = self.snap.agent.clone();
        let has_im = self
            .snap
            .channels
            .iter()
            .any(|c| c.channel == ChannelKind::IM);
        let needle = state.filter.to_lowercase();
        let colleagues: Vec<(String, String)> = self
            .client
            .info()
            .agents
            .iter()
            .filter(|(id, name)| {
                *id != me
                    && (needle.is_empty()
                        || name.to_lowercase().contains(&needle)
                        || id.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect();
        egui::Window::new("Team Communicator")
            .open(&mut open)
            .collapsible(false)
            .show(ui.ctx(), |ui| {
                let label = ui.label("Find a colleague");
                let field = ui
                    .add(egui::TextEdit::singleline(&mut state.filter).hint_text("name or id"))
                    .labelled_by(label.id);
                if !std::mem::replace(&mut state.focused, true) {
                    field.request_focus();
                }
                if !has_im {
                    ui.label("Internal IM is not one of your channels.");
                }
                if colleagues.is_empty() {
                    ui.label("No colleague matches.");
                }
                if let Some(failed) = &state.failed {
                    ui.colored_label(ui.visuals().error_fg_color, failed);
                }
                for (id, name) in &colleagues {
                    ui.horizontal(|ui| {
                        ui.label(format!("{name} ({id})"));
                        super::look::coloured(ui, state.look(id), state.words(id));
                        let button =
                            ui.add_enabled(has_im, egui::Button::new(format!("IM {name}")));
                        if button.clicked()
                            || (colleagues.len() == 1
                                && has_im
                                && field.lost_focus()
                                && ui.input(|i| i.key_pressed(egui::Key::Enter)))
                        {
                            start = Some((id.clone(), name.clone()));
                        }
                    });
                }
                self.spot_status(ui, &Spot::Communicator);
            });
        if let Some((id, name)) = start {
            let command = AgentCommand::StartOutbound {
                channel: ChannelKind::IM.into(),
                to: Address::new(Address::AGENT, id),
                from: None,
            };
            self.send(
                Spot::Communicator,
                &format!("IM {name}"),
                command,
                After::Nothing,
            );
            self.tab = Tab::Work;
        }
        if open {
            self.communicator = Some(state);
        }
    }
}
