//! The window: a login picker (or the agent given with `--agent`), then the agent's desktop.
//! Fonts get a system fallback for scripts the default font lacks (Noto CJK when installed).

use crate::desk::{Desk, DeskInfo};
use crate::ring::{PlayerSink, RingSink, SilentSink};
use agentdesk_host::runtime::Runtime;
use eframe::egui;

/// The eframe application.
pub struct App {
    runtime: Option<Runtime>,
    /// Who may log in (id, name), from the admin's configuration.
    agents: Vec<(String, String)>,
    desk: Option<Desk>,
    picked: Option<String>,
    error: Option<String>,
}

impl App {
    /// An app over a started runtime; logs `agent` in at once when given.
    pub fn new(runtime: Runtime, agent: Option<String>, ready: bool, ctx: &egui::Context) -> Self {
        install_fallback_fonts(ctx);
        let agents = DeskInfo::from_policy(&runtime.policy).agents;
        let mut app = App {
            runtime: Some(runtime),
            agents,
            desk: None,
            picked: agent.clone(),
            error: None,
        };
        if let Some(agent) = agent {
            app.log_in(&agent, ctx);
            if ready && let Some(desk) = &mut app.desk {
                desk.ready_on_all_channels();
            }
        }
        app
    }

    fn log_in(&mut self, agent: &str, ctx: &egui::Context) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        let wake = ctx.clone();
        match Desk::login(
            runtime.core(),
            agent,
            DeskInfo {
                data_dir: Some(runtime.data_dir.clone()),
                ..DeskInfo::from_policy(&runtime.policy)
            },
            runtime.clock.clone(),
            ring_sink(runtime),
            move || wake.request_repaint(),
        ) {
            Ok(desk) => {
                self.desk = Some(desk.with_plugins(runtime.plugins.clone()));
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
            if ui
                .add_enabled(self.picked.is_some(), egui::Button::new("Log in"))
                .clicked()
                && let Some(agent) = self.picked.clone()
            {
                let ctx = ui.ctx().clone();
                self.log_in(&agent, &ctx);
            }
        });
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        match &mut self.desk {
            Some(desk) => desk.ui(ui),
            None => self.picker(ui),
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.desk = None;
        if let Some(runtime) = self.runtime.take() {
            runtime.stop();
        }
    }
}

/// The system's audio player when there is one, else silence (nothing fails without sound).
fn ring_sink(runtime: &Runtime) -> Box<dyn RingSink> {
    match PlayerSink::find(&runtime.data_dir) {
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

/// Starts the host, opens the window and runs until it is closed.
pub fn run(
    config: agentdesk_host::AdminConfig,
    agent: Option<String>,
    ready: bool,
) -> Result<(), String> {
    let runtime = Runtime::start(&config)?;
    // Every plugin's stop, plus the core's, well within this; then the process ends regardless.
    let grace = std::time::Duration::from_millis(config.plugins.stop_deadline_ms)
        .saturating_mul(runtime.plugins.running_ids().len().max(1) as u32)
        + std::time::Duration::from_secs(5);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1200.0, 760.0])
            .with_title("agentdesk"),
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
            Ok(Box::new(App::new(runtime, agent, ready, &cc.egui_ctx)))
        }),
    )
    .map_err(|e| e.to_string())
}
