//! The agent's desktop: one agent logged in through the core's client interface. It renders the
//! snapshots the core pushes and turns clicks and keys into commands; every rule (capacity, ACW,
//! wrap-up, who may do what) is the core's, whose refusals are shown as they come.

mod channels;
mod communicator;
mod diagnostics;
mod document;
mod global;
mod history;
mod inflight;
mod interaction;
mod keys;
pub mod layout;
mod limits;
pub mod links;
pub mod look;
mod offers;
mod recent;
mod responses;
mod status;
pub mod text;
mod transcript;
mod worklist;

use crate::notify::Notifier;
use crate::ring::RingSink;
use agentdesk_client::{
    AgentCommand, AgentSnapshot, ChannelState, DeskClient, HistoryEntry, InteractionState,
    InteractionView, LinkState, LiveLine, Pending,
};
use crossbeam_channel::Receiver;
use eframe::egui;
use inflight::{After, InFlight, Refusal, Spot};
use std::collections::{BTreeMap, BTreeSet};

/// The tabs of the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Interactions side by side.
    Work,
    /// Channel states, DND, forwarding.
    MyChannels,
    /// Search of past interactions.
    History,
    /// Plugins and their status.
    Diagnostics,
}

/// What the desktop keeps per open interaction (input in progress, the transcript fetched so far).
#[derive(Debug, Default)]
struct View {
    composer: String,
    lines: Vec<LiveLine>,
    layout: transcript::TranscriptLayout,
    wrap_up: Option<String>,
    dtmf: String,
    colleague: Option<String>,
    transfer_to: String,
    cobrowse_code: String,
    history: Option<Vec<HistoryEntry>>,
    typing_sent: bool,
    page: usize,
    /// Placeholders of a standard response the desk could not fill, while still in the composer.
    unfilled: Vec<String>,
    /// Transcript lines seen on screen (`None` until the first lines came).
    seen: Option<usize>,
    /// Transcript lines asked for and not yet come.
    lines_coming: Option<Pending<Vec<LiveLine>>>,
    /// The contact's history asked for and not yet come.
    history_coming: Option<Pending<Vec<HistoryEntry>>>,
}

/// One agent's desktop.
pub struct Desk {
    client: Box<dyn DeskClient>,
    updates: Receiver<AgentSnapshot>,
    snap: AgentSnapshot,
    /// Whether the first snapshot has come.
    connected: bool,
    /// Whether to go Ready everywhere when it does.
    ready_when_connected: bool,
    ring: Box<dyn RingSink>,
    /// The offers announced (rung, notified), while in the list.
    announced: BTreeMap<u64, offers::Ringing>,
    /// Desktop notifications of offers while the window is not focused.
    notifier: Option<Box<dyn Notifier>>,
    /// Offers that rang out unanswered, shown until their channel is Ready again.
    missed: Vec<offers::Missed>,
    tab: Tab,
    selected: Option<u64>,
    views: BTreeMap<u64, View>,
    not_ready_reason: String,
    forward_input: String,
    palette: Option<String>,
    communicator: Option<communicator::Communicator>,
    search: history::Search,
    recent: recent::Recent,
    previews: document::Previews,
    plugins: diagnostics::PluginsView,
    inflight: Vec<InFlight>,
    refusals: BTreeMap<Spot, Refusal>,
    /// The latest refusal (shown at its spot).
    last_refusal: Option<String>,
    /// A failure with no spot (a query), shown in a bar at the bottom.
    error: Option<String>,
    /// The window title last set.
    title: String,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("agent", &self.snap.agent)
            .finish()
    }
}

impl Desk {
    /// The desktop of a logged-in agent's session. `wake` is called (from another thread)
    /// whenever a new snapshot arrives, so the window repaints on events, not in a loop.
    pub fn new(
        client: Box<dyn DeskClient>,
        ring: Box<dyn RingSink>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let agent = client.agent().to_string();
        let watched = client.watch();
        let (forward, updates) = crossbeam_channel::unbounded();
        let forwarding = std::thread::Builder::new()
            .name(format!("desk-{agent}"))
            .spawn(move || {
                while let Ok(snapshot) = watched.recv() {
                    if forward.send(snapshot).is_err() {
                        return;
                    }
                    wake();
                }
            });
        let error = forwarding
            .err()
            .map(|e| format!("the desk cannot follow the core's snapshots: {e}"));
        let not_ready_reason = client
            .info()
            .not_ready_reasons
            .first()
            .cloned()
            .unwrap_or_default();
        // Until the first snapshot comes, an empty one (the desk says it is connecting).
        let snap = AgentSnapshot {
            agent: agent.clone(),
            name: agent,
            logged_in: false,
            dnd: false,
            forward_to: None,
            channels: Vec::new(),
            interactions: Vec::new(),
            seq: 0,
            at: 0,
        };
        // Offers already ringing when the desktop (re)starts are announced again.
        Desk {
            client,
            updates,
            snap,
            connected: false,
            ready_when_connected: false,
            ring,
            announced: BTreeMap::new(),
            notifier: None,
            missed: Vec::new(),
            tab: Tab::Work,
            selected: None,
            views: BTreeMap::new(),
            not_ready_reason,
            forward_input: String::new(),
            palette: None,
            communicator: None,
            search: history::Search::default(),
            recent: recent::Recent::default(),
            previews: document::Previews::default(),
            plugins: diagnostics::PluginsView::default(),
            inflight: Vec::new(),
            refusals: BTreeMap::new(),
            last_refusal: None,
            error,
            title: String::new(),
        }
    }

    /// The interactions ringing at this agent now.
    fn offers(&self) -> impl Iterator<Item = &InteractionView> {
        self.snap
            .interactions
            .iter()
            .filter(|i| matches!(i.state, InteractionState::Offered { .. }))
    }

    /// The agent's channels.
    fn channel_names(&self) -> Vec<String> {
        self.snap
            .channels
            .iter()
            .map(|c| c.channel.clone())
            .collect()
    }

    /// Logs on to every assigned channel and sets it Ready (`agentdesk run --ready`, and the
    /// global Ready on all), as soon as the agent's channels are known (the first snapshot).
    /// Channels already Ready are left alone.
    pub fn ready_on_all_channels(&mut self) {
        if !self.connected {
            self.ready_when_connected = true;
            return;
        }
        let channels: Vec<(String, ChannelState)> = self
            .snap
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::Ready)
            .map(|c| (c.channel.clone(), c.state.clone()))
            .collect();
        for (channel, state) in channels {
            let spot = Spot::Channel(channel.clone());
            if state == ChannelState::LoggedOff {
                let what = format!("Log on {channel}");
                let log_on = AgentCommand::LogOnChannel {
                    channel: channel.clone(),
                };
                self.send(spot.clone(), &what, log_on, After::Nothing);
            }
            let what = format!("Ready {channel}");
            self.send(
                spot,
                &what,
                AgentCommand::SetReady { channel },
                After::Nothing,
            );
        }
    }

    /// Raises a desktop notification for each offer that rings while the window is not focused.
    pub fn set_notifier(&mut self, notifier: Box<dyn Notifier>) {
        self.notifier = Some(notifier);
    }

    /// The latest snapshot shown.
    pub fn snapshot(&self) -> &AgentSnapshot {
        &self.snap
    }

    /// The last failure shown to the agent, else the last refusal.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref().or(self.last_refusal.as_deref())
    }

    /// The interaction whose view is open.
    pub fn selected(&self) -> Option<u64> {
        self.selected
    }

    /// Whether a command is on its way.
    pub fn is_waiting(&self) -> bool {
        self.waiting()
    }

    /// Takes in the snapshots and answers that arrived since the last frame.
    pub fn poll(&mut self) {
        while let Ok(snapshot) = self.updates.try_recv() {
            self.snap = snapshot;
            self.connected = true;
        }
        if self.connected && std::mem::take(&mut self.ready_when_connected) {
            self.ready_on_all_channels();
        }
        self.settle_answers();
        let open: BTreeSet<u64> = self.snap.interactions.iter().map(|i| i.key).collect();
        self.views.retain(|k, _| open.contains(k));
        self.offers_left(&open);
        self.refusals.retain(|spot, _| match spot {
            Spot::Interaction(k) | Spot::Composer(k) => open.contains(k),
            Spot::Channel(_) | Spot::Presence | Spot::Communicator => true,
        });
        if self.selected.is_some_and(|k| !open.contains(&k)) {
            self.selected = None;
        }
        if self.selected.is_none() {
            self.selected = self
                .snap
                .interactions
                .iter()
                .find(|i| !matches!(i.state, InteractionState::Offered { .. }))
                .map(|i| i.key);
        }
    }

    /// The core's clock now.
    fn now(&self) -> u64 {
        self.client.now()
    }

    /// Draws one frame.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.follow_offers(ui.ctx());
        self.follow_transcripts();
        self.update_title(ui.ctx());
        self.handle_keys(ui.ctx());
        // Timers on screen (time in state, ACW countdown, offer countdown) move once a second;
        // nothing else repaints without an event, except answers on their way, looked for often.
        let again = if self.waiting() {
            20
        } else if self.client.link() == LinkState::Reconnecting {
            250
        } else {
            1_000
        };
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(again));
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong(format!("agentdesk · {}", self.snap.name));
                if !self.connected {
                    ui.spinner();
                    ui.label("connecting to the core");
                }
                if self.client.link() == LinkState::Reconnecting {
                    ui.spinner();
                    ui.colored_label(ui.visuals().error_fg_color, "disconnected — reconnecting");
                }
                ui.separator();
                for (tab, label) in [
                    (Tab::Work, "Interactions"),
                    (Tab::MyChannels, "My Channels"),
                    (Tab::History, "History"),
                    (Tab::Diagnostics, "Diagnostics"),
                ] {
                    ui.selectable_value(&mut self.tab, tab, label);
                }
                ui.separator();
                self.global_control(ui);
            });
        });
        self.missed_notices(ui);
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if let Some(error) = self.error.clone() {
            egui::Panel::bottom("error").show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                    if ui.small_button("Dismiss").clicked() {
                        self.error = None;
                    }
                });
            });
        }
        self.offer_toasts(ui);
        self.command_palette(ui);
        self.communicator_window(ui);
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Work => self.work(ui),
            Tab::MyChannels => self.my_channels(ui),
            Tab::History => self.history_tab(ui),
            Tab::Diagnostics => self.diagnostics(ui),
        });
    }
}
