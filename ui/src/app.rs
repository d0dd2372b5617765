//! The window: a login picker (or the agent given with `--agent`), then the agent's desktop.
//! Fonts get a system fallback for scripts the default font lacks (Noto CJK when installed).
//! The window reaches the core only through a [`Connection`]; logging in does not hold up a frame.

use crate::desk::Desk;
use crate::desk::layout::{self, Layout};
use crate::notify::DbusNotifier;
use crate::ring::{PlayerSink, RingSink, SilentSink};
use agentdesk_client::{Connection, DeskClient, Pending};
use eframe::egui;
use std::path::PathBuf;

/// The eframe application.
pub struct App {
    connection: Option<Box<dyn Connection>>,
    /// Where the ring tone is looked for.
    data_dir: PathBuf,
    /// Who may log in (id, name), once the core has said.
    agents: Vec<(String, String)>,
    agents_coming: Option<Pending<Vec<(String, String)>>>,
    login: Option<(String, Pending<Box<dyn DeskClient>>)>,
    ready: bool,
    desk: Option<Desk>,
    picked: Option<String>,
    error: Option<String>,
    /// The desk's layout as last saved (taken up when the desk opens).
    layout: Layout,
}

impl App {
    /// An app over a connection to a core; logs `agent` in at once when given (and with `ready`,
    /// makes them Ready on every channel).
    pub fn new(
        connection: Box<dyn Connection>,
        data_dir: PathBuf,
        agent: Option<String>,
        ready: bool,
        ctx: &egui::Context,
    ) -> Self {
        install_fallback_fonts(ctx);
        let agents_coming = Some(connection.agents());
        let login = agent.as_ref().map(|a| (a.clone(), connection.login(a)));
        App {
            connection: Some(connection),
            data_dir,
            agents: Vec::new(),
            agents_coming,
            login,
            ready,
            desk: None,
            picked: agent,
            error: None,
            layout: Layout::default(),
        }
    }

    /// Opens the desk with `layout` (as remembered from the last run).
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Takes the answers to the agent list and to a login when they come.
    fn poll(&mut self, ctx: &egui::Context) {
        if let Some(coming) = &mut self.agents_coming
            && let Some(answer) = coming.poll()
        {
            self.agents_coming = None;
            match answer {
                Ok(agents) => self.agents = agents,
                Err(e) => self.error = Some(format!("who may log in is unknown: {e}")),
            }
        }
        let Some((agent, coming)) = &mut self.login else {
            return;
        };
        let Some(answer) = coming.poll() else {
            ctx.request_repaint_after(std::time::Duration::from_millis(20));
            return;
        };
        let agent = agent.clone();
        self.login = None;
        match answer {
            Ok(client) => {
                let wake = ctx.clone();
                let desk = Desk::new(client, ring_sink(&self.data_dir), move || {
                    wake.request_repaint()
                });
                let mut desk = with_notifications(desk, ctx);
                desk.restore_layout(&self.layout);
                if std::mem::take(&mut self.ready) {
                    desk.ready_on_all_channels();
                }
                self.desk = Some(desk);
                self.error = None;
            }
            Err(e) => self.error = Some(format!("cannot log in as {agent}: {e}")),
        }
    }

    fn picker(&mut self, ui: &mut egui::Ui) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("agentdesk: log in");
            for (id, name) in &self.agents {
                ui.radio_value(&mut self.picked, Some(id.clone()), format!("{name} ({id})"));
            }
            if let Some(error) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
            if self.login.is_some() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("logging in");
                });
                return;
            }
            if ui
                .add_enabled(self.picked.is_some(), egui::Button::new("Log in"))
                .clicked()
                && let Some(agent) = self.picked.clone()
                && let Some(connection) = &self.connection
            {
                self.login = Some((agent.clone(), connection.login(&agent)));
            }
        });
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.poll(&ui.ctx().clone());
        match &mut self.desk {
            Some(desk) => desk.ui(ui),
            None => self.picker(ui),
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Some(desk) = &self.desk {
            storage.set_string(layout::KEY, desk.layout().to_json());
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.desk = None;
        if let Some(connection) = self.connection.take() {
            connection.close();
        }
    }
}

/// The desk with desktop notifications of offers over the D-Bus session bus, when there is one
/// (nothing fails without it).
fn with_notifications(mut desk: Desk, ctx: &egui::Context) -> Desk {
    let wake = ctx.clone();
    match DbusNotifier::connect(None, move || wake.request_repaint()) {
        Ok(notifier) => desk.set_notifier(Box::new(notifier)),
        Err(e) => tracing::info!("offers will not show as desktop notifications: {e}"),
    }
    desk
}

/// The system's audio player when there is one, else silence (nothing fails without sound).
fn ring_sink(data_dir: &std::path::Path) -> Box<dyn RingSink> {
    match PlayerSink::find(data_dir) {
        Some(sink) => Box::new(sink),
        None => {
            tracing::info!("no audio player found: offers will not ring aloud");
            Box::new(SilentSink::default())
        }
    }
}

/// Adds the first installed font of a list of wide-coverage system fonts as a fallback after
/// egui's own, so Chinese, Japanese, Korean, Arabic, ... text renders. Nothing fails without them.
pub fn install_fallback_fonts(ctx: &egui::Context) {
    const CANDIDATES: [&str; 4] = [
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    ];
    let mut fonts = egui::FontDefinitions::default();
    let mut added = false;
    for path in CANDIDATES {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        fonts.font_data.insert(
            name.clone(),
            std::sync::Arc::new(egui::FontData::from_owned(bytes)),
        );
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            fonts.families.entry(family).or_default().push(name.clone());
        }
        added = true;
    }
    if added {
        ctx.set_fonts(fonts);
    }
}

/// Opens the window over `connection` (the embedded product, or a hub) and runs until it is
/// closed. `data_dir` is where the ring tone is looked for; `grace` bounds how long closing may
/// take before the process ends regardless.
pub fn run(
    connection: Box<dyn Connection>,
    data_dir: PathBuf,
    grace: std::time::Duration,
    agent: Option<String>,
    ready: bool,
) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1200.0, 760.0])
            .with_title("agentdesk"),
        // The window's size and position and the panels' widths (egui's memory) are remembered
        // in the data directory; a damaged file is ignored (eframe logs it).
        persistence_path: Some(data_dir.join("desk-window.ron")),
        ..Default::default()
    };
    eframe::run_native(
        "agentdesk",
        options,
        Box::new(move |cc| {
            // SIGTERM/SIGINT close the window: `on_exit` stops the core, then the plugins.
            let ctx = cc.egui_ctx.clone();
            let watched = crate::signals::watch(move |name| {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                ctx.request_repaint();
                std::thread::sleep(grace);
                tracing::error!("{name}: the desktop did not close within {grace:?}; exiting");
                std::process::exit(1);
            });
            if let Err(e) = watched {
                tracing::error!(
                    "SIGTERM and SIGINT will end the desktop without stopping plugins: {e}"
                );
            }
            let saved = cc.storage.and_then(|s| s.get_string(layout::KEY));
            Ok(Box::new(
                App::new(connection, data_dir, agent, ready, &cc.egui_ctx)
                    .with_layout(Layout::load(saved.as_deref())),
            ))
        }),
    )
    .map_err(|e| e.to_string())
}
