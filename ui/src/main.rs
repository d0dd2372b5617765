//! The `agentdesk` command: the desktop (default), `plugins` (headless report) and `package`.

use agentdesk_client::Connection;
use agentdesk_client::admin::{self, AdminConfig, PluginCheck};
use agentdesk_client::in_process::Embedded;
use agentdesk_client::remote::{Remote, RemoteOptions};
use agentdesk_hub::{Hub, HubOptions};
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
enum HubAction {
    /// Make the running hub re-read its admin file (as SIGHUP does) and print what changed:
    /// agents added or removed, channels assigned or withdrawn, plugins removed. Connects to
    /// --nats with the hub's own credentials. A bad file is refused with its file, line and
    /// key, and the hub keeps the configuration it has.
    Reload,
    /// Print the `authorization` block for nats-server, written from the admin file: each
    /// agent's nkey may use only their own subjects.
    NatsConfig,
    /// Make a NATS user key: prints the public key (for `nats_key` in the admin file) and writes
    /// the seed, which must stay secret, to a new file (mode 0600).
    Nkey {
        /// Where the seed goes (refused if it exists).
        #[arg(long)]
        seed_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum Action {
    /// Open the desktop (the default).
    Run {
        /// Log this agent in at once instead of showing the picker.
        #[arg(long)]
        agent: Option<String>,
        /// The team hub's NATS server (e.g. nats://hub.example:4222): the desktop of one agent of
        /// a team, instead of the whole product in this process. Credentials, if the server asks
        /// for them, come from AGENTDESK_NATS_USER and AGENTDESK_NATS_PASSWORD.
        #[arg(long, env = "AGENTDESK_HUB")]
        hub: Option<String>,
        /// With --agent: log on to every assigned channel and set it Ready at once.
        #[arg(long, requires = "agent")]
        ready: bool,
        /// With --hub and --agent: the hub's voice channel (`host:port`) this desk's own voice
        /// endpoint registers with, as the agent's extension; the password comes from
        /// AGENTDESK_VOICE_PASSWORD.
        #[arg(long, env = "AGENTDESK_VOICE_REGISTRAR", requires_all = ["hub", "agent"])]
        voice_registrar: Option<String>,
        /// The agent's extension the endpoint registers as.
        #[arg(long, env = "AGENTDESK_VOICE_EXTENSION", requires = "voice_registrar")]
        voice_extension: Option<String>,
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
    /// Serve the team: run the plugins, the core, the journal and history headless, and answer
    /// the desktops of every agent of the configuration over NATS until SIGTERM or SIGINT.
    Hub {
        /// What else to do than serving.
        #[command(subcommand)]
        action: Option<HubAction>,
        /// The NATS server(s) to serve on (e.g. nats://127.0.0.1:4222). Credentials, if the
        /// server asks for them: the nkey seed in the file AGENTDESK_NATS_SEED_FILE names, or
        /// AGENTDESK_NATS_USER and AGENTDESK_NATS_PASSWORD.
        #[arg(long, env = "AGENTDESK_NATS", global = true)]
        nats: Option<String>,
    },
    /// Print every agent's per-channel state and time in it, their open interactions, and each
    /// queue's waiting count and oldest wait, from a team hub (a supervisor's NATS key: the seed
    /// file AGENTDESK_NATS_SEED_FILE names; CA: AGENTDESK_NATS_CA).
    Team {
        /// The hub's NATS server.
        #[arg(long, env = "AGENTDESK_HUB")]
        hub: String,
        /// Print JSON instead of tables.
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
        /// The plugin's settings schema (JSON Schema): the admin's settings for the plugin are
        /// checked against it when the configuration loads.
        #[arg(long)]
        settings_schema: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    // `agentdesk plugin-runner`: started by the host for an isolated plugin, never by hand; it
    // speaks frames on stdin/stdout, so it is dispatched before any parsing or logging.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(admin::PLUGIN_RUNNER) {
        let code = admin::run_plugin_runner(&args[1..]);
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
    agentdesk_ui::logging::init(default_level);
    match cli.command.unwrap_or(Action::Run {
        agent: None,
        hub: None,
        ready: false,
        voice_registrar: None,
        voice_extension: None,
    }) {
        Action::Package {
            library,
            out,
            settings_schema,
        } => {
            let manifest = admin::package(&library, &out, settings_schema.as_deref())
                .map_err(anyhow::Error::msg)?;
            println!("packaged {} -> {}", library.display(), manifest.display());
            Ok(())
        }
        Action::Scenario { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read scenario {}", file.display()))?;
            if admin::is_live_scenario(&text) {
                let mut out = std::io::stdout();
                admin::run_live_scenario(
                    &text,
                    &file.display().to_string(),
                    file.parent(),
                    &mut out,
                )?;
                return Ok(());
            }
            let report = admin::run_scenario(&text, &file.display().to_string())?;
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
            // A signal while the plugins run stops them (with their stop deadline) before exiting.
            let signalled = Arc::new(Mutex::new(None));
            let flag = signalled.clone();
            agentdesk_ui::signals::watch(move |name| match flag.lock() {
                Ok(mut seen) => *seen = Some(name),
                Err(e) => tracing::error!("{name} not recorded: {e}"),
            })
            .context("cannot watch SIGTERM and SIGINT")?;
            let interrupted = || signalled.lock().map(|s| *s).unwrap_or(None);
            let check = PluginCheck::start(&config, verify_only);
            // What the started plugins report at once (their `channel-status`), for up to 1 s.
            check.settle(std::time::Duration::from_secs(1), || {
                interrupted().is_some()
            });
            let check: Box<dyn Connection> = Box::new(check);
            if let Some(name) = interrupted() {
                check.close();
                anyhow::bail!("{name}: the plugins were stopped");
            }
            let table = check.plugins().wait(std::time::Duration::from_secs(10));
            check.close();
            let table = table.context("no plugin table")?;
            if json {
                print!("{}", agentdesk_ui::plugin_table::render_json(&table));
            } else {
                print!("{}", agentdesk_ui::plugin_table::render(&table));
            }
            let (problems, missing_plugins) = (table.problems(), table.missing_plugins());
            if problems + missing_plugins > 0 {
                anyhow::bail!(
                    "{problems} plugin(s) refused, failed or quarantined; {missing_plugins} allowed \
                     plugin(s) not found"
                );
            }
            Ok(())
        }
        Action::Hub {
            action: Some(HubAction::Reload),
            nats,
        } => {
            let nats = nats.context("the reload needs --nats (or AGENTDESK_NATS)")?;
            let (user_password, nkey_seed, ca_file) = nats_credentials()?;
            let options = RemoteOptions {
                hub_key: true,
                user_password,
                nkey_seed,
                ca_file,
                ..RemoteOptions::new(nats)
            };
            let report = Remote::connect(&options)?
                .reload_hub()
                .wait(std::time::Duration::from_secs(30))
                .map_err(|e| anyhow::anyhow!("the hub refused the reload ({}): {e}", e.code()))?;
            print!("{}", report.render());
            Ok(())
        }
        Action::Hub {
            action: Some(HubAction::NatsConfig),
            ..
        } => {
            let config = load_config(cli.config.as_deref())?;
            print!("{}", agentdesk_hub::authorization::nats_config(&config)?);
            Ok(())
        }
        Action::Hub {
            action: Some(HubAction::Nkey { seed_file }),
            ..
        } => {
            let (public, seed) = agentdesk_hub::authorization::new_user_key();
            write_secret(&seed_file, &seed)?;
            println!("{public}");
            Ok(())
        }
        Action::Team { hub, json } => {
            let (user_password, nkey_seed, ca_file) = nats_credentials()?;
            let options = RemoteOptions {
                supervisor: true,
                user_password,
                nkey_seed,
                ca_file,
                ..RemoteOptions::new(hub)
            };
            let remote = Remote::connect(&options)?;
            let team = remote
                .team()
                .wait(std::time::Duration::from_secs(15))
                .context("no team view from the hub")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&team)?);
            } else {
                print!("{}", agentdesk_ui::team_table::render(&team));
            }
            Ok(())
        }
        Action::Hub { action: None, nats } => {
            let nats = nats.context("the hub needs --nats (or AGENTDESK_NATS)")?;
            let config = load_config(cli.config.as_deref())?;
            let (user_password, nkey_seed, ca_file) = nats_credentials()?;
            let embedded = Embedded::start(&config)?;
            let options = HubOptions {
                user_password,
                nkey_seed,
                ca_file,
                desktop_grace: std::time::Duration::from_secs(config.hub.desktop_grace_secs),
                config_file: cli.config.clone(),
                ..HubOptions::new(nats)
            };
            let hub = match Hub::serve(&options, embedded.in_process()) {
                Ok(hub) => hub,
                Err(e) => {
                    Box::new(embedded).close();
                    return Err(e.into());
                }
            };
            let (signalled, stop) = std::sync::mpsc::channel();
            let hangup = signalled.clone();
            agentdesk_ui::signals::watch(move |name| {
                if signalled.send(Some(name)).is_err() {
                    tracing::error!("{name}: the hub had already stopped");
                }
            })
            .context("cannot watch SIGTERM and SIGINT")?;
            agentdesk_ui::signals::on_hangup(move || {
                if hangup.send(None).is_err() {
                    tracing::error!("SIGHUP: the hub had already stopped");
                }
            })
            .context("cannot watch SIGHUP")?;
            println!("agentdesk hub: serving the team on {}", options.url);
            // SIGHUP (None) reloads; SIGTERM or SIGINT (their name) stops.
            let name = loop {
                match stop.recv() {
                    Ok(Some(name)) => break name,
                    // The outcome goes to the hub's log (`Hub::reload` writes it), not to
                    // stdout, which nobody may be reading any more.
                    Ok(None) => match hub.reload() {
                        Ok(report) => tracing::debug!(?report, "SIGHUP: reloaded"),
                        Err(e) => tracing::debug!(code = e.code(), "SIGHUP: reload refused"),
                    },
                    Err(_) => break "the signal watcher ended",
                }
            };
            tracing::warn!("{name}: the hub stops");
            hub.stop();
            Box::new(embedded).close();
            Ok(())
        }
        Action::Run {
            agent,
            hub,
            ready,
            voice_registrar,
            voice_extension,
        } => {
            let config = load_config(cli.config.as_deref())?;
            // The agent's own voice endpoint, alive as long as the desk.
            let _phone = match (&hub, &agent) {
                (Some(_), Some(agent)) => {
                    agentdesk_phone::PhoneConfig::from_env(agent, voice_registrar, voice_extension)?
                        .map(agentdesk_phone::Phone::start)
                        .transpose()?
                }
                _ => None,
            };
            let (connection, grace): (Box<dyn Connection>, _) = match hub {
                Some(url) => {
                    let (user_password, nkey_seed, ca_file) = nats_credentials()?;
                    let options = RemoteOptions {
                        agent: agent.clone(),
                        user_password,
                        nkey_seed,
                        ca_file,
                        ..RemoteOptions::new(url)
                    };
                    let remote = Remote::connect(&options)?;
                    (Box::new(remote), std::time::Duration::from_secs(5))
                }
                None => {
                    let embedded = Embedded::start(&config)?;
                    let grace = embedded.stop_within();
                    (Box::new(embedded), grace)
                }
            };
            agentdesk_ui::app::run(connection, config.data_dir(), grace, agent, ready)
                .map_err(|e| anyhow::anyhow!("the desktop failed: {e}"))
        }
    }
}

/// NATS credentials: the nkey seed in the file AGENTDESK_NATS_SEED_FILE names, and/or user and
/// password from AGENTDESK_NATS_USER and AGENTDESK_NATS_PASSWORD (never flags: a command line is
/// visible to every user of the machine).
/// (user and password, nkey seed, CA file from AGENTDESK_NATS_CA: TLS required when set).
type Credentials = (Option<(String, String)>, Option<String>, Option<PathBuf>);

fn nats_credentials() -> anyhow::Result<Credentials> {
    let user_password = std::env::var("AGENTDESK_NATS_USER").ok().map(|user| {
        let password = std::env::var("AGENTDESK_NATS_PASSWORD").unwrap_or_default();
        (user, password)
    });
    let seed = match std::env::var_os("AGENTDESK_NATS_SEED_FILE").map(PathBuf::from) {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the nkey seed file {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let ca = std::env::var_os("AGENTDESK_NATS_CA").map(PathBuf::from);
    Ok((user_password, seed, ca))
}

/// Writes a secret to a new file only its owner may read.
fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{secret}").with_context(|| format!("cannot write {}", path.display()))
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<AdminConfig> {
    admin::load_config(path).map_err(anyhow::Error::msg)
}
