//! The agent's desktop: one agent logged in through the core's client interface. It renders the
//! snapshots the core pushes and turns clicks and keys into commands; every rule (capacity, ACW,
//! wrap-up, who may do what) is the core's, whose refusals are shown as they come.

mod channels;
mod diagnostics;
mod document;
mod history;
mod interaction;
mod keys;
mod offers;
mod status;
pub mod text;
mod transcript;

use crate::ring::{Ring, RingSink};
use agentdesk_host::PluginHost;
use agentdesk_host::config::AcwPolicy;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::service::clock::Clock;
use agentdesk_host::service::{
    AgentSession, AgentSnapshot, ClientError, CoreHandle, InteractionView, LiveLine,
};
use crossbeam_channel::Receiver;
use eframe::egui;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the desktop knows of the admin's rules (for pickers and buttons; the core enforces them).
#[derive(Debug, Clone, Default)]
pub struct DeskInfo {
    /// Not Ready reasons to pick from.
    pub not_ready_reasons: Vec<String>,
    /// Wrap-up codes (code, label).
    pub wrap_up_codes: Vec<(String, String)>,
    /// Whether Mark Done needs a code.
    pub wrap_up_required: bool,
    /// Channels whose ACW the agent may extend, with the policy's ACW length in seconds.
    pub extendable_acw: BTreeMap<String, u64>,
    /// Every agent (id, name): colleagues to consult.
    pub agents: Vec<(String, String)>,
    /// The host's data directory, where plugins keep the files they refer to (page previews).
    pub data_dir: Option<std::path::PathBuf>,
}

impl DeskInfo {
    /// The rules of `policy`.
    pub fn from_policy(policy: &Policy) -> Self {
        let channels: BTreeSet<&String> = policy.agents.iter().flat_map(|a| &a.channels).collect();
        DeskInfo {
            not_ready_reasons: policy.not_ready_reasons.clone(),
            wrap_up_codes: policy
                .wrap_up_codes
                .iter()
                .map(|c| (c.code.clone(), c.label.clone()))
                .collect(),
            wrap_up_required: policy.wrap_up_required,
            extendable_acw: channels
                .into_iter()
                .filter_map(|c| match policy.acw(c) {
                    AcwPolicy::Extendable { secs } => Some((c.clone(), secs)),
                    _ => None,
                })
                .collect(),
            agents: policy
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.name.clone()))
                .collect(),
            data_dir: None,
        }
    }
}

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
    history: Option<Vec<agentdesk_host::storage::history::HistoryEntry>>,
    typing_sent: bool,
    page: usize,
}

/// One agent's desktop.
pub struct Desk {
    session: AgentSession,
    core: CoreHandle,
    info: DeskInfo,
    clock: Arc<dyn Clock>,
    updates: Receiver<AgentSnapshot>,
    snap: AgentSnapshot,
    ring: Box<dyn RingSink>,
    announced: BTreeSet<u64>,
    plugins: Option<Arc<PluginHost>>,
    tab: Tab,
    selected: Option<u64>,
    views: BTreeMap<u64, View>,
    not_ready_reason: String,
    forward_input: String,
    palette: Option<String>,
    search: history::Search,
    previews: document::Previews,
    error: Option<String>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("agent", &self.snap.agent)
            .finish()
    }
}

impl Desk {
    /// Logs `agent` in through `core` and follows their snapshots. `wake` is called (from another
    /// thread) whenever a new snapshot arrives, so the window repaints on events, not in a loop.
    pub fn login(
        core: CoreHandle,
        agent: &str,
        info: DeskInfo,
        clock: Arc<dyn Clock>,
        ring: Box<dyn RingSink>,
        wake: impl Fn() + Send + 'static,
    ) -> Result<Self, ClientError> {
        let session = core.login(agent)?;
        let watched = session.watch()?;
        let snap = watched.recv().map_err(|_| ClientError::Stopped)?;
        let (forward, updates) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name(format!("desk-{agent}"))
            .spawn(move || {
                while let Ok(snapshot) = watched.recv() {
                    if forward.send(snapshot).is_err() {
                        return;
                    }
                    wake();
                }
            })
            .map_err(|_| ClientError::Stopped)?;
        let not_ready_reason = info.not_ready_reasons.first().cloned().unwrap_or_default();
        // Offers already ringing when the desktop (re)starts are announced again.
        Ok(Desk {
            session,
            core,
            info,
            clock,
            updates,
            snap,
            ring,
            announced: BTreeSet::new(),
            plugins: None,
            tab: Tab::Work,
            selected: None,
            views: BTreeMap::new(),
            not_ready_reason,
            forward_input: String::new(),
            palette: None,
            search: history::Search::default(),
            previews: document::Previews::default(),
            error: None,
        })
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

    /// Logs on to every assigned channel and sets it Ready (`agentdesk run --ready`).
    pub fn ready_on_all_channels(&mut self) {
        let channels = self.channel_names();
        for channel in channels {
            self.send(AgentCommand::LogOnChannel {
                channel: channel.clone(),
            });
            self.send(AgentCommand::SetReady { channel });
        }
    }

    /// Shows these plugins in the diagnostics tab.
    pub fn with_plugins(mut self, plugins: Arc<PluginHost>) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// The latest snapshot shown.
    pub fn snapshot(&self) -> &AgentSnapshot {
        &self.snap
    }

    /// The last refusal or failure shown to the agent.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The interaction whose view is open.
    pub fn selected(&self) -> Option<u64> {
        self.selected
    }

    /// Takes in the snapshots that arrived since the last frame.
    pub fn poll(&mut self) {
        while let Ok(snapshot) = self.updates.try_recv() {
            self.snap = snapshot;
        }
        let open: BTreeSet<u64> = self.snap.interactions.iter().map(|i| i.key).collect();
        self.views.retain(|k, _| open.contains(k));
        self.announced.retain(|k| open.contains(k));
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

    /// Sends a command as this agent; a refusal is shown in the error bar.
    fn send(&mut self, command: AgentCommand) -> bool {
        match self.session.send(command) {
            Ok(()) => {
                self.error = None;
                // The snapshot of the change is pushed by the core; take it now if it is there.
                self.poll();
                true
            }
            Err(e) => {
                self.error = Some(e.to_string());
                false
            }
        }
    }

    fn show_result(&mut self, result: Result<(), ClientError>) {
        self.error = result.err().map(|e| e.to_string());
    }

    /// The core's clock now.
    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Draws one frame.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.announce_offers(ui.ctx());
        self.handle_keys(ui.ctx());
        // Timers on screen (time in state, ACW countdown, offer countdown) move once a second;
        // nothing else repaints without an event.
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs(1));
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong(format!("agentdesk · {}", self.snap.name));
                ui.separator();
                for (tab, label) in [
                    (Tab::Work, "Interactions"),
                    (Tab::MyChannels, "My Channels"),
                    (Tab::History, "History"),
                    (Tab::Diagnostics, "Diagnostics"),
                ] {
                    ui.selectable_value(&mut self.tab, tab, label);
                }
            });
        });
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
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Work => self.work(ui),
            Tab::MyChannels => self.my_channels(ui),
            Tab::History => self.history_tab(ui),
            Tab::Diagnostics => self.diagnostics(ui),
        });
    }

    fn announce_offers(&mut self, ctx: &egui::Context) {
        let new: Vec<Ring> = self
            .offers()
            .filter(|i| !self.announced.contains(&i.key))
            .map(|i| Ring {
                key: i.key,
                channel: i.channel.clone(),
            })
            .collect();
        for ring in new {
            self.announced.insert(ring.key);
            self.ring.ring(&ring);
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Critical,
            ));
        }
    }
}
