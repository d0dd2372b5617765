//! The desktop window. For now a diagnostics view: every plugin with its status and reason,
//! channel-wide plugin actions, and the latest plugin events. Rendering and input only.

use agentdesk_host::{AdminConfig, PluginHost, PluginReport, StartMode};
use eframe::egui;
use plugin_api::{Command, CustomAction, Event, InvokeAction};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EVENT_LINES: usize = 200;

/// What the window shows; written by the host worker, read by the window.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Every plugin and its status.
    pub reports: Vec<PluginReport>,
    /// Channel-wide custom actions of running plugins.
    pub actions: Vec<(String, CustomAction)>,
    /// The latest events, newest last.
    pub events: VecDeque<String>,
    /// The last failed request.
    pub last_error: Option<String>,
}

enum Request {
    Invoke { plugin: String, action: String },
}

/// Owns the plugin host on its own thread, so plugin calls never run on the UI thread.
pub struct HostWorker {
    snapshot: Arc<Mutex<Snapshot>>,
    requests: std::sync::mpsc::Sender<Request>,
    repaint: Arc<Mutex<Option<egui::Context>>>,
}

impl HostWorker {
    /// Starts the host with `config` on a worker thread.
    pub fn spawn(config: AdminConfig) -> std::io::Result<Self> {
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let repaint: Arc<Mutex<Option<egui::Context>>> = Arc::new(Mutex::new(None));
        let (requests, inbox) = std::sync::mpsc::channel();
        let (shared, wake) = (snapshot.clone(), repaint.clone());
        std::thread::Builder::new()
            .name("host".into())
            .spawn(move || {
                let mut host = PluginHost::start(&config, StartMode::Run);
                let actions = host
                    .running_ids()
                    .into_iter()
                    .flat_map(|id| {
                        let actions = host
                            .hello(&id)
                            .map(|h| h.actions.clone())
                            .unwrap_or_default();
                        actions.into_iter().map(move |a| (id.clone(), a))
                    })
                    .collect();
                update(&shared, &wake, |s| {
                    s.reports = host.reports();
                    s.actions = actions;
                });
                loop {
                    match inbox.try_recv() {
                        Ok(Request::Invoke { plugin, action }) => {
                            let command = Command::InvokeAction(InvokeAction {
                                interaction: None,
                                action,
                            });
                            let result = host.send(&plugin, &command);
                            update(&shared, &wake, |s| {
                                s.last_error = result.err().map(|e| e.to_string());
                                s.reports = host.reports();
                            });
                        }
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                        Err(std::sync::mpsc::TryRecvError::Empty) => {}
                    }
                    if let Some(event) = host.recv_event(Duration::from_millis(50)) {
                        let line = format!("{}: {}", event.plugin_id, describe(&event.event));
                        update(&shared, &wake, |s| {
                            s.events.push_back(line);
                            while s.events.len() > EVENT_LINES {
                                s.events.pop_front();
                            }
                        });
                    }
                }
                host.shutdown();
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

fn describe(event: &Event) -> String {
    match event {
        Event::Offer(o) => format!(
            "offer {} on {} from {}",
            o.interaction,
            o.channel,
            o.contact
                .display_name
                .as_deref()
                .unwrap_or("unknown contact")
        ),
        Event::MessageReceived(m) => format!("{} says: {}", m.from.display_name, m.message.text),
        Event::Ended(e) => format!("{} ended ({:?})", e.interaction, e.reason),
        Event::Unknown(u) => format!("event of unknown kind `{}`", u.kind),
        other => other.kind().to_string(),
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
                            let _ = self.worker.requests.send(Request::Invoke {
                                plugin: plugin.clone(),
                                action: action.id.clone(),
                            });
                        }
                    }
                });
            }
            if let Some(error) = &snapshot.last_error {
                ui.colored_label(egui::Color32::RED, error);
            }
            ui.separator();
            ui.label(egui::RichText::new("Events").strong());
            egui::ScrollArea::vertical()
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for line in &snapshot.events {
                        ui.label(line);
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
