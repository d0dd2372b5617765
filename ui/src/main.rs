//! The `agentdesk` command: the desktop (default), `plugins` (headless report) and `package`.

use agentdesk_host::plugins::package::package;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(
    name = "agentdesk",
    version,
    about = "The agentdesk contact-centre agent desktop"
)]
struct Cli {
    /// The admin configuration file (TOML). Without it the built-in default is used.
    #[arg(long, global = true, env = "AGENTDESK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Action>,
}

#[derive(Subcommand)]
enum Action {
    /// Open the desktop (the default).
    Run {
        /// Log this agent in at once instead of showing the picker.
        #[arg(long)]
        agent: Option<String>,
        /// With --agent: log on to every assigned channel and set it Ready at once.
        #[arg(long, requires = "agent")]
        ready: bool,
    },
    /// List every plugin found in the plugin directories with its status, without a window.
    /// Exits 1 when a plugin is refused, failed or quarantined, or an allowed one is not found.
    Plugins {
        /// Only verify and open the libraries; do not create or start instances.
        #[arg(long)]
        verify_only: bool,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a working day from a scenario file through the core, without a window, and print the
    /// time-in-state report; exits 1 if the file's expected figures do not match. A scenario
    /// with `mode = "live"` runs the real plugins of its configuration and plays its agents.
    Scenario {
        /// The scenario (TOML).
        file: PathBuf,
    },
    /// Write the manifest for a built plugin library and copy it into a plugin directory.
    Package {
        /// The plugin's shared library (e.g. target/release/libacme_sms.so).
        library: PathBuf,
        /// The directory to install into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    // `agentdesk plugin-runner`: started by the host for an isolated plugin, never by hand; it
    // speaks frames on stdin/stdout, so it is dispatched before any parsing or logging.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(agentdesk_host::plugins::runner::SUBCOMMAND) {
        let code = agentdesk_host::plugins::runner::run_plugin_runner(&args[1..]);
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX));
    }
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain only: an admin needs the file, line and key, not a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The headless commands print their own report; their log shows only errors unless asked.
    let default_level = if matches!(cli.command, None | Some(Action::Run { .. })) {
        "warn"
    } else {
        "error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AGENTDESK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command.unwrap_or(Action::Run {
        agent: None,
        ready: false,
    }) {
        Action::Package { library, out } => {
            let manifest = package(&library, &out)?;
            println!("packaged {} -> {}", library.display(), manifest.display());
            Ok(())
        }
        Action::Scenario { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read scenario {}", file.display()))?;
            if agentdesk_host::scenario::is_live(&text) {
                let mut out = std::io::stdout();
                agentdesk_host::scenario::run_live(
                    &text,
                    &file.display().to_string(),
                    file.parent(),
                    &mut out,
                )?;
                return Ok(());
            }
            let report = agentdesk_host::scenario::run(&text, &file.display().to_string())?;
            print!("{}", report.render());
            if !report.mismatches.is_empty() {
                anyhow::bail!(
                    "{} expected figure(s) did not match",
                    report.mismatches.len()
                );
            }
            Ok(())
        }
        Action::Plugins { verify_only, json } => {
            let config = load_config(cli.config.as_deref())?;
            let mode = if verify_only {
                StartMode::VerifyOnly
            } else {
                StartMode::Run
            };
            // A signal while the plugins run stops them (with their stop deadline) before exiting.
            let signalled = Arc::new(Mutex::new(None));
            let flag = signalled.clone();
            agentdesk_ui::signals::watch(move |name| match flag.lock() {
                Ok(mut seen) => *seen = Some(name),
                Err(e) => tracing::error!("{name} not recorded: {e}"),
            })
            .context("cannot watch SIGTERM and SIGINT")?;
            let interrupted = || signalled.lock().map(|s| *s).unwrap_or(None);
            let mut host = PluginHost::start(&config, mode);
            // What the started plugins report at once (their `channel-status`), for up to 1 s.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while interrupted().is_none()
                && std::time::Instant::now() < until
                && host
                    .recv_event(std::time::Duration::from_millis(200))
                    .is_some()
            {}
            if let Some(name) = interrupted() {
                host.shutdown();
                anyhow::bail!("{name}: the plugins were stopped");
            }
            let reports = host.reports();
            let not_found = host.not_found().to_vec();
            host.shutdown();
            if json {
                print!(
                    "{}",
                    agentdesk_ui::plugin_table::render_json(&reports, &not_found)
                );
            } else {
                print!(
                    "{}",
                    agentdesk_ui::plugin_table::render(&reports, &not_found)
                );
            }
            let problems = reports.iter().filter(|r| r.status.is_problem()).count();
            let missing_plugins = not_found
                .iter()
                .filter(|n| matches!(n, agentdesk_host::NotFound::Plugin(_)))
                .count();
            if problems + missing_plugins > 0 {
                anyhow::bail!(
                    "{problems} plugin(s) refused, failed or quarantined; {missing_plugins} allowed \
                     plugin(s) not found"
                );
            }
            Ok(())
        }
        Action::Run { agent, ready } => {
            let config = load_config(cli.config.as_deref())?;
            agentdesk_ui::app::run(config, agent, ready)
                .map_err(|e| anyhow::anyhow!("the desktop failed: {e}"))
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<AdminConfig> {
    match path {
        Some(path) => Ok(AdminConfig::load(path)?),
        None => AdminConfig::builtin().context("the built-in default configuration is invalid"),
    }
}
