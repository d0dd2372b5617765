//! The desktop window. For now a diagnostics view: every plugin with its status and reason,
//! channel-wide plugin actions, and each agent's channels and open interactions as the core
//! reports them. Rendering and input only.

use agentdesk_host::core::{ChannelState, Policy};
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::service::{AgentSnapshot, CoreService};
use agentdesk_host::storage::{History, Journal};
use agentdesk_host::{AdminConfig, PluginHost, PluginReport, StartMode};
use eframe::egui;
use plugin_api::{Command, CustomAction, InvokeAction};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the window shows; written by the host worker, read by the window.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Every plugin and its status.
    pub reports: Vec<PluginReport>,
    /// Channel-wide custom actions of running plugins.
    pub actions: Vec<(String, CustomAction)>,
    /// Every agent as the core sees them.
    pub agents: Vec<AgentSnapshot>,
    /// The last failed request.
    pub last_error: Option<String>,
}

enum Request {
    Invoke { plugin: String, action: String },
}

/// Owns the plugin host and the core service on its own thread, so plugin calls never run on
/// the UI thread.
pub struct HostWorker {
    snapshot: Arc<Mutex<Snapshot>>,
    requests: std::sync::mpsc::Sender<Request>,
    repaint: Arc<Mutex<Option<egui::Context>>>,
}

impl HostWorker {
    /// Starts the plugins and the core with `config` on a worker thread.
    pub fn spawn(config: AdminConfig) -> std::io::Result<Self> {
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let repaint: Arc<Mutex<Option<egui::Context>>> = Arc::new(Mutex::new(None));
        let (requests, inbox) = std::sync::mpsc::channel();
        let (shared, wake) = (snapshot.clone(), repaint.clone());
        std::thread::Builder::new()
            .name("host".into())
            .spawn(move || {
                let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
                let actions = plugins
                    .running_ids()
                    .into_iter()
                    .flat_map(|id| {
                        let actions = plugins
                            .hello(&id)
                            .map(|h| h.actions.clone())
                            .unwrap_or_default();
                        actions.into_iter().map(move |a| (id.clone(), a))
                    })
                    .collect();
                update(&shared, &wake, |s| {
                    s.reports = plugins.reports();
                    s.actions = actions;
                });
                let service = match start_core(&config, &plugins) {
                    Ok(service) => service,
                    Err(e) => {
                        update(&shared, &wake, |s| s.last_error = Some(e));
                        return;
                    }
                };
                let core = service.handle();
                let agent_ids: Vec<String> = config.agents.iter().map(|a| a.id.clone()).collect();
                loop {
                    match inbox.recv_timeout(Duration::from_millis(250)) {
                        Ok(Request::Invoke { plugin, action }) => {
                            let command = Command::InvokeAction(InvokeAction {
                                interaction: None,
                                action,
                            });
                            let result = plugins.send(&plugin, &command);
                            update(&shared, &wake, |s| {
                                s.last_error = result.err().map(|e| e.to_string())
                            });
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    }
                    let agents = agent_ids
                        .iter()
                        .filter_map(|id| core.snapshot(id).ok().flatten())
                        .collect();
                    update(&shared, &wake, |s| {
                        s.agents = agents;
                        s.reports = plugins.reports();
                    });
                }
                service.stop();
            })?;
        Ok(HostWorker {
            snapshot,
            requests,
            repaint,
        })
    }

    /// A copy of what to show.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The core service over the running plugins, with its journal and history in the data directory.
fn start_core(config: &AdminConfig, plugins: &Arc<PluginHost>) -> Result<CoreService, String> {
    let mut channels: Vec<String> = plugins
        .running_ids()
        .iter()
        .filter_map(|id| plugins.descriptor(id))
        .flat_map(|d| d.channels.iter().map(|c| c.0.clone()))
        .collect();
    channels.sort();
    channels.dedup();
    let store = config.data_dir().join("agentdesk.sqlite3");
    let journal = Journal::open(&store).map_err(|e| e.to_string())?;
    let history = History::open(&store).map_err(|e| e.to_string())?;
    let policy = Policy::from_config(config, &channels);
    CoreService::start(
        policy,
        Some(journal),
        Some(history),
        Some(plugins.clone()),
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("cannot start the core: {e}"))
}

fn update(
    shared: &Mutex<Snapshot>,
    wake: &Mutex<Option<egui::Context>>,
    f: impl FnOnce(&mut Snapshot),
) {
    if let Ok(mut snapshot) = shared.lock() {
        f(&mut snapshot);
    }
    if let Ok(ctx) = wake.lock()
        && let Some(ctx) = ctx.as_ref()
    {
        ctx.request_repaint();
    }
}

fn state_text(state: &ChannelState) -> String {
    match state {
        ChannelState::LoggedOff => "logged off".into(),
        ChannelState::Ready => "Ready".into(),
        ChannelState::NotReady { reason } => format!("Not Ready ({reason})"),
        ChannelState::AfterCallWork { .. } => "After Call Work".into(),
        ChannelState::Pending { reason } => format!("Pending ({reason})"),
    }
}

/// The eframe application.
pub struct Shell {
    worker: HostWorker,
}

impl Shell {
    /// A shell over a running host worker.
    pub fn new(worker: HostWorker, ctx: &egui::Context) -> Self {
        if let Ok(mut slot) = worker.repaint.lock() {
            *slot = Some(ctx.clone());
        }
        Shell { worker }
    }

    /// Draws one frame.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let snapshot = self.worker.snapshot();
        egui::Panel::top("title").show(ui, |ui| {
            ui.heading("agentdesk");
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.label(egui::RichText::new("Plugins").strong());
            egui::Grid::new("plugins").striped(true).show(ui, |ui| {
                for h in ["Plugin", "Version", "API", "Channels", "Status", "Reason"] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for r in &snapshot.reports {
                    ui.label(if r.name.is_empty() { &r.id } else { &r.name });
                    ui.label(r.version.as_ref().map_or("-".into(), ToString::to_string));
                    ui.label(
                        r.api_version
                            .as_ref()
                            .map_or("-".into(), ToString::to_string),
                    );
                    ui.label(r.channels.join(", "));
                    ui.label(r.status.word());
                    ui.label(r.status.reason().unwrap_or(""));
                    ui.end_row();
                }
            });
            if !snapshot.actions.is_empty() {
                ui.separator();
                ui.horizontal(|ui| {
                    for (plugin, action) in &snapshot.actions {
                        let button =
                            ui.add_enabled(action.enabled, egui::Button::new(&action.label));
                        if button.clicked() {
                            let request = Request::Invoke {
                                plugin: plugin.clone(),
                                action: action.id.clone(),
                            };
                            let _ = self.worker.requests.send(request);
                        }
                    }
                });
            }
            if let Some(error) = &snapshot.last_error {
                ui.colored_label(egui::Color32::RED, error);
            }
            ui.separator();
            ui.label(egui::RichText::new("Agents").strong());
            egui::Grid::new("agents").striped(true).show(ui, |ui| {
                for h in ["Agent", "Desktop", "Channels", "Open interactions"] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for a in &snapshot.agents {
                    ui.label(&a.name);
                    ui.label(if a.logged_in {
                        "logged in"
                    } else {
                        "logged out"
                    });
                    let channels: Vec<String> = a
                        .channels
                        .iter()
                        .map(|c| format!("{}: {}", c.channel, state_text(&c.state)))
                        .collect();
                    ui.label(channels.join(", "));
                    ui.label(a.interactions.len().to_string());
                    ui.end_row();
                }
            });
        });
    }
}

impl eframe::App for Shell {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        Shell::ui(self, ui);
    }
}

/// Opens the desktop window and runs until it is closed.
pub fn run(config: AdminConfig) -> Result<(), String> {
    let worker = HostWorker::spawn(config).map_err(|e| format!("cannot start the host: {e}"))?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([900.0, 600.0])
            .with_title("agentdesk"),
        ..Default::default()
    };
    eframe::run_native(
        "agentdesk",
        options,
        Box::new(|cc| Ok(Box::new(Shell::new(worker, &cc.egui_ctx)))),
    )
    .map_err(|e| e.to_string())
}
