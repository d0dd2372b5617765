//! `PluginHost`: discovers, verifies, opens, creates, starts and supervises every plugin, and
//! keeps a report per plugin. Every problem becomes a report line; the host itself keeps going.

use super::actor::{CallError, Health, PluginActor};
use super::discovery::{Found, discover};
use super::host_services::{HostSide, PluginMetrics, RawEvent};
use super::manifest::Manifest;
pub use super::report::{NotFound, PluginEvent, PluginReport, PluginStatus, SendError};
use super::runner::{Runner, RunnerSpec};
use super::{loader, policy};
use crate::config::{AdminConfig, Isolation};
use plugin_api::{
    Command, Event, HostHello, Message, PluginConfig, PluginDescriptor, PluginError, PluginHello,
    Reply,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A library opened in the host, or a runner process that opened it.
enum Opened {
    InProcess(plugin_api::PluginRoot_Ref),
    Process(Arc<Runner>),
}

struct RunningPlugin {
    report: usize,
    actor: PluginActor,
    descriptor: PluginDescriptor,
    hello: PluginHello,
    metrics: Arc<PluginMetrics>,
    /// The latest `channel-status` it reported.
    channel_status: std::sync::Mutex<Option<plugin_api::ChannelStatus>>,
}

/// Deadlines and queue sizes, from `[plugins]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per `handle` call.
    pub call: Duration,
    /// For `start`.
    pub start: Duration,
    /// For `stop`.
    pub stop: Duration,
    /// Event queue capacity per plugin.
    pub event_queue: usize,
}

impl Limits {
    fn from_config(config: &AdminConfig) -> Self {
        Limits {
            call: Duration::from_millis(config.plugins.call_deadline_ms),
            start: Duration::from_millis(config.plugins.start_deadline_ms),
            stop: Duration::from_millis(config.plugins.stop_deadline_ms),
            event_queue: config.plugins.event_queue,
        }
    }
}

/// How far to go with each admitted plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Open, create and start assigned plugins (the product).
    Run,
    /// Verify and open (abi_stable's checks and `describe`) without creating instances.
    VerifyOnly,
}

/// Every plugin of this host.
pub struct PluginHost {
    limits: Limits,
    reports: Vec<PluginReport>,
    /// What the configuration names but nothing provides: plugin directories that do not exist,
    /// allowed plugins found in none of them.
    not_found: Vec<NotFound>,
    running: BTreeMap<String, RunningPlugin>,
    events: Vec<(Arc<str>, crossbeam_channel::Receiver<RawEvent>)>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("reports", &self.reports)
            .finish_non_exhaustive()
    }
}

/// The handshake the host sends to `start`.
pub fn host_hello() -> HostHello {
    HostHello {
        api_version: loader::host_api_version().to_string(),
        host: format!("agentdesk-host {}", env!("CARGO_PKG_VERSION")),
        commands: Command::KNOWN_KINDS.iter().map(|k| k.to_string()).collect(),
        events: Event::KNOWN_KINDS.iter().map(|k| k.to_string()).collect(),
    }
}

impl PluginHost {
    /// Discovers and brings up every plugin the configuration allows. Never fails as a whole.
    pub fn start(config: &AdminConfig, mode: StartMode) -> PluginHost {
        let mut host = PluginHost {
            limits: Limits::from_config(config),
            reports: Vec::new(),
            not_found: Vec::new(),
            running: BTreeMap::new(),
            events: Vec::new(),
        };
        let host_api = loader::host_api_version();
        // Admitted manifests grouped by id, to load the highest admissible version of each.
        let mut admitted: BTreeMap<String, Vec<(usize, Manifest)>> = BTreeMap::new();
        for found in discover(&config.plugin_directories()) {
            match found {
                Found::Manifest {
                    path,
                    manifest: Ok(manifest),
                } => {
                    let verdict = policy::admit(&manifest, &path, config, &host_api);
                    let index = host.push_report(&manifest, path, PluginStatus::Loaded);
                    host.reports[index].isolation = config.isolation(&manifest.id);
                    match verdict {
                        Ok(()) => admitted
                            .entry(manifest.id.clone())
                            .or_default()
                            .push((index, *manifest)),
                        Err(reason) => host.set_status(index, PluginStatus::Refused(reason)),
                    }
                }
                Found::Manifest {
                    path,
                    manifest: Err(e),
                } => {
                    host.push_unknown(path, PluginStatus::Refused(e.to_string()));
                }
                Found::OrphanLibrary { path } => host.push_unknown(
                    path,
                    PluginStatus::Refused(
                        "a library without a manifest is never opened; package it with \
                         `agentdesk package`"
                            .into(),
                    ),
                ),
                Found::UnreadableDirectory { path, reason } => host.push_unknown(
                    path,
                    PluginStatus::Refused(format!("cannot read the plugin directory: {reason}")),
                ),
            }
        }
        for dir in config.plugin_directories() {
            if !dir.exists() {
                host.not_found.push(NotFound::Directory(dir));
            }
        }
        for id in config.plugins.allow.keys() {
            if !host.reports.iter().any(|r| &r.id == id) {
                host.not_found.push(NotFound::Plugin(id.clone()));
            }
        }
        for (id, mut candidates) in admitted {
            candidates.sort_by(|a, b| b.1.version.cmp(&a.1.version));
            let mut winner: Option<semver::Version> = None;
            for (index, manifest) in candidates {
                if let Some(loaded) = &winner {
                    host.set_status(
                        index,
                        PluginStatus::Refused(format!(
                            "another copy of `{id}` is used instead: version {loaded} is the \
                             highest that satisfies the admin's requirement"
                        )),
                    );
                    continue;
                }
                let status = host.bring_up(index, &manifest, config, mode);
                if matches!(
                    status,
                    PluginStatus::Loaded | PluginStatus::Verified | PluginStatus::NotStarted(_)
                ) {
                    winner = Some(manifest.version.clone());
                }
                host.set_status(index, status);
            }
        }
        host
    }

    fn push_report(&mut self, m: &Manifest, path: PathBuf, status: PluginStatus) -> usize {
        self.reports.push(PluginReport {
            id: m.id.clone(),
            name: m.name.clone(),
            vendor: m.vendor.clone(),
            version: Some(m.version.clone()),
            api_version: Some(m.api_version.clone()),
            channels: m.channels.clone(),
            path,
            status,
            channel_status: None,
            isolation: Isolation::default(),
            restarts: 0,
            last_exit: None,
        });
        self.reports.len() - 1
    }

    fn push_unknown(&mut self, path: PathBuf, status: PluginStatus) {
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.reports.push(PluginReport {
            id,
            name: String::new(),
            vendor: String::new(),
            version: None,
            api_version: None,
            channels: Vec::new(),
            path,
            status,
            channel_status: None,
            isolation: Isolation::default(),
            restarts: 0,
            last_exit: None,
        });
    }

    fn set_status(&mut self, index: usize, status: PluginStatus) {
        if let PluginStatus::Refused(reason)
        | PluginStatus::Failed(reason)
        | PluginStatus::Quarantined(reason) = &status
        {
            tracing::warn!(plugin = %self.reports[index].id, status = status.word(), "{reason}");
        }
        self.reports[index].status = status;
    }

    fn bring_up(
        &mut self,
        index: usize,
        manifest: &Manifest,
        config: &AdminConfig,
        mode: StartMode,
    ) -> PluginStatus {
        let path = self.reports[index].path.clone();
        let library = manifest.library_path(&path);
        let (opened, descriptor) = match self.reports[index].isolation {
            Isolation::InProcess => {
                let root = match loader::open(&library) {
                    Ok(root) => root,
                    Err(e) => {
                        tracing::debug!(plugin = %manifest.id, "abi_stable's full report:\n{}", e.full);
                        return PluginStatus::Refused(e.summary);
                    }
                };
                match loader::describe(root) {
                    Ok(d) => (Opened::InProcess(root), d),
                    Err(reason) => return PluginStatus::Refused(reason),
                }
            }
            Isolation::Process => {
                let executable = match config.runner_executable() {
                    Ok(exe) => exe,
                    Err(e) => {
                        return PluginStatus::Failed(format!(
                            "cannot find the plugin runner executable: {e}"
                        ));
                    }
                };
                let spec = RunnerSpec {
                    plugin_id: Arc::from(manifest.id.as_str()),
                    executable,
                    library,
                    limits: config.plugins.runner_limits,
                    event_queue: self.limits.event_queue,
                    start_deadline: self.limits.start,
                };
                match Runner::launch(spec) {
                    Ok((runner, envelope)) => match PluginDescriptor::from_envelope(&envelope) {
                        Ok(d) => (Opened::Process(runner), d),
                        Err(e) => {
                            return PluginStatus::Refused(format!("describe answered badly: {e}"));
                        }
                    },
                    Err(e) if e.code == plugin_api::ErrorCode::INVALID => {
                        return PluginStatus::Refused(e.message.into());
                    }
                    Err(e) => return PluginStatus::Failed(e.message.into()),
                }
            }
        };
        if descriptor.id != manifest.id || descriptor.version != manifest.version.to_string() {
            return PluginStatus::Refused(format!(
                "the library says it is `{}` {} but its manifest says `{}` {}",
                descriptor.id, descriptor.version, manifest.id, manifest.version
            ));
        }
        let Some(channel) = policy::assigned_channel(&manifest.channels, config) else {
            return PluginStatus::NotStarted(format!(
                "no agent served by this host has its channel{} {}",
                if manifest.channels.len() == 1 {
                    ""
                } else {
                    "s"
                },
                manifest.channels.join(", ")
            ));
        };
        tracing::debug!(plugin = %manifest.id, channel, "starting: channel assigned");
        if mode == StartMode::VerifyOnly {
            return PluginStatus::Verified;
        }
        let data_dir = config.data_dir().join("plugins").join(&manifest.id);
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            return PluginStatus::Failed(format!(
                "cannot create its data directory {}: {e}",
                data_dir.display()
            ));
        }
        let plugin_id: Arc<str> = Arc::from(manifest.id.as_str());
        let metrics = Arc::new(PluginMetrics::default());
        let (events_tx, events_rx) = crossbeam_channel::bounded(self.limits.event_queue);
        let services = HostSide::new(
            plugin_id.clone(),
            events_tx.clone(),
            data_dir.clone(),
            metrics.clone(),
        )
        .into_abi();
        let plugin_config = PluginConfig {
            plugin_id: manifest.id.clone(),
            settings: config.plugin_settings(&manifest.id),
        };
        let created = match &opened {
            Opened::InProcess(root) => {
                (root.create())(services, plugin_config.to_envelope()).into_result()
            }
            Opened::Process(runner) => runner.create(
                plugin_config.to_envelope(),
                data_dir,
                events_tx,
                metrics.clone(),
            ),
        };
        let instance = match created {
            Ok(instance) => instance,
            Err(e) if e.code == plugin_api::ErrorCode::PANICKED => {
                return PluginStatus::Quarantined(e.message.into());
            }
            Err(e) => return PluginStatus::Failed(format!("create failed: {e}")),
        };
        let actor = match opened {
            Opened::InProcess(_) => PluginActor::spawn(plugin_id.clone(), instance),
            Opened::Process(runner) => {
                PluginActor::spawn_isolated(plugin_id.clone(), instance, runner)
            }
        };
        let actor = match actor {
            Ok(actor) => actor,
            Err(e) => return PluginStatus::Failed(format!("cannot start its thread: {e}")),
        };
        let hello = match actor.start(host_hello().to_envelope(), self.limits.start) {
            Ok(answer) => match PluginHello::from_envelope(&answer) {
                Ok(hello) => hello,
                Err(e) => return PluginStatus::Failed(format!("start answered badly: {e}")),
            },
            Err(CallError::Quarantined(reason)) => return PluginStatus::Quarantined(reason),
            Err(CallError::Plugin(e)) if e.code == plugin_api::ErrorCode::PANICKED => {
                return PluginStatus::Quarantined(e.message.into());
            }
            // An isolated plugin whose process kept dying in start has been given up.
            Err(e) => match actor.health() {
                Health::Quarantined(reason) => return PluginStatus::Quarantined(reason),
                _ => return PluginStatus::Failed(format!("start failed: {e}")),
            },
        };
        tracing::info!(plugin = %manifest.id, version = %manifest.version, "loaded and started");
        self.events.push((plugin_id, events_rx));
        self.running.insert(
            manifest.id.clone(),
            RunningPlugin {
                report: index,
                actor,
                descriptor,
                hello,
                metrics,
                channel_status: std::sync::Mutex::new(None),
            },
        );
        PluginStatus::Loaded
    }

    /// What the configuration names but nothing provides (see [`PluginHost::start`]).
    pub fn not_found(&self) -> &[NotFound] {
        &self.not_found
    }

    /// Every plugin found, with its current status (a running plugin that has been quarantined
    /// since start shows as quarantined).
    pub fn reports(&self) -> Vec<PluginReport> {
        let mut reports = self.reports.clone();
        for (id, running) in &self.running {
            reports[running.report].status = match running.actor.health() {
                Health::Running => PluginStatus::Loaded,
                Health::Quarantined(reason) => PluginStatus::Quarantined(reason),
                Health::Stopped => PluginStatus::Stopped,
            };
            reports[running.report].channel_status = self.channel_status(id);
            if let Some(runner) = running.actor.runner() {
                let runner = runner.report();
                reports[running.report].restarts = runner.restarts;
                reports[running.report].last_exit = runner.last_exit;
            }
        }
        reports
    }

    /// The report of one plugin id (the one that loaded, if several copies were found).
    pub fn report(&self, plugin_id: &str) -> Option<PluginReport> {
        let reports = self.reports();
        if let Some(running) = self.running.get(plugin_id) {
            return reports.get(running.report).cloned();
        }
        reports.into_iter().find(|r| r.id == plugin_id)
    }

    /// Ids of the running plugins.
    pub fn running_ids(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// What a running plugin declared at start.
    pub fn hello(&self, plugin_id: &str) -> Option<&PluginHello> {
        self.running.get(plugin_id).map(|r| &r.hello)
    }

    /// What a running plugin said about itself.
    pub fn descriptor(&self, plugin_id: &str) -> Option<&PluginDescriptor> {
        self.running.get(plugin_id).map(|r| &r.descriptor)
    }

    /// The running plugins that have been quarantined since start, with the reason.
    pub fn quarantined(&self) -> Vec<(String, String)> {
        self.running
            .iter()
            .filter_map(|(id, r)| match r.actor.health() {
                Health::Quarantined(reason) => Some((id.clone(), reason)),
                Health::Running | Health::Stopped => None,
            })
            .collect()
    }

    /// The crashes of isolated plugins since the last call, with their reasons: each one's
    /// interactions lost what the plugin held for them.
    pub fn take_crashes(&self) -> Vec<(String, String)> {
        let mut crashes = Vec::new();
        for (id, running) in &self.running {
            if let Some(runner) = running.actor.runner() {
                crashes.extend(runner.take_crashes().into_iter().map(|r| (id.clone(), r)));
            }
        }
        crashes
    }

    /// The process id of an isolated plugin's runner while it is up.
    pub fn runner_pid(&self, plugin_id: &str) -> Option<u32> {
        self.running.get(plugin_id)?.actor.runner()?.pid()
    }

    /// The latest `channel-status` a running plugin reported, if any.
    pub fn channel_status(&self, plugin_id: &str) -> Option<plugin_api::ChannelStatus> {
        let running = self.running.get(plugin_id)?;
        match running.channel_status.lock() {
            Ok(latest) => latest.clone(),
            Err(e) => {
                tracing::error!("channel status unreadable: {e}");
                None
            }
        }
    }

    /// A running plugin's counters.
    pub fn metrics(&self, plugin_id: &str) -> Option<Arc<PluginMetrics>> {
        self.running.get(plugin_id).map(|r| r.metrics.clone())
    }

    /// Sends one command and waits (at most the call deadline) for the reply. A command kind the
    /// plugin did not declare is refused here, without calling it.
    pub fn send(&self, plugin_id: &str, command: &Command) -> Result<Reply, SendError> {
        let running = self
            .running
            .get(plugin_id)
            .ok_or_else(|| SendError::NoSuchPlugin(plugin_id.to_string()))?;
        if !running.hello.supports(command.kind()) {
            return Err(SendError::Unsupported {
                plugin: plugin_id.to_string(),
                kind: command.kind().to_string(),
            });
        }
        self.send_envelope(plugin_id, command.to_envelope())
    }

    /// Sends an already encoded command, bypassing the capability check (for tests and newer
    /// vocabulary), and decodes the reply.
    pub fn send_envelope(
        &self,
        plugin_id: &str,
        command: plugin_api::Envelope,
    ) -> Result<Reply, SendError> {
        let running = self
            .running
            .get(plugin_id)
            .ok_or_else(|| SendError::NoSuchPlugin(plugin_id.to_string()))?;
        let answer = running.actor.handle(command, self.limits.call);
        let counter = if answer.is_ok() {
            &running.metrics.calls_ok
        } else {
            &running.metrics.calls_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let answer = answer.map_err(|error| SendError::Call {
            plugin: plugin_id.to_string(),
            error,
        })?;
        Reply::from_envelope(&answer).map_err(|e| SendError::BadReply {
            plugin: plugin_id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Waits up to `timeout` for the next event from any running plugin. Malformed events are
    /// counted and logged, then skipped.
    pub fn recv_event(&self, timeout: Duration) -> Option<PluginEvent> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let raw =
                self.next_raw(deadline.saturating_duration_since(std::time::Instant::now()))?;
            let running = self.running.get(&*raw.plugin_id);
            let metrics = running.map(|r| r.metrics.clone());
            // A quarantined plugin's threads may still emit: none of it reaches the core.
            if let Some(running) = running
                && let Health::Quarantined(_) = running.actor.health()
            {
                running
                    .metrics
                    .events_after_quarantine
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(plugin = &*raw.plugin_id, kind = %raw.envelope.kind, "event of a quarantined plugin dropped");
                continue;
            }
            match Event::from_envelope(&raw.envelope) {
                Ok(event) => {
                    if let (Event::ChannelStatus(status), Some(running)) = (&event, running) {
                        match running.channel_status.lock() {
                            Ok(mut latest) => *latest = Some(status.clone()),
                            Err(e) => tracing::error!("channel status not kept: {e}"),
                        }
                    }
                    if let (Event::Unknown(unknown), Some(m)) = (&event, &metrics) {
                        m.events_unknown.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(plugin = &*raw.plugin_id, kind = %unknown.kind, "event of an unknown kind");
                    }
                    return Some(PluginEvent {
                        plugin_id: raw.plugin_id,
                        event,
                    });
                }
                Err(e) => {
                    if let Some(m) = &metrics {
                        m.events_malformed.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(plugin = &*raw.plugin_id, "dropped a malformed event: {e}");
                }
            }
        }
    }

    fn next_raw(&self, timeout: Duration) -> Option<RawEvent> {
        if self.events.is_empty() {
            std::thread::sleep(timeout);
            return None;
        }
        let mut select = crossbeam_channel::Select::new();
        for (_, rx) in &self.events {
            select.recv(rx);
        }
        let op = select.select_timeout(timeout).ok()?;
        let index = op.index();
        op.recv(&self.events[index].1).ok()
    }

    /// Stops every running plugin, each within the stop deadline. A plugin that misses it is
    /// left behind (its library stays loaded) and reported as quarantined.
    pub fn shutdown(&mut self) {
        let deadline = self.limits.stop;
        for (id, running) in &mut self.running {
            match running.actor.stop(deadline) {
                Ok(()) => tracing::info!(plugin = %id, "stopped"),
                Err(CallError::Quarantined(reason)) => {
                    tracing::warn!(plugin = %id, "not stopped cleanly: {reason}");
                }
                Err(e) => tracing::warn!(plugin = %id, "stop failed: {e}"),
            }
        }
    }

    /// Quarantines a plugin by hand (admin action or a rule elsewhere in the host).
    pub fn quarantine(&self, plugin_id: &str, reason: &str) -> Result<(), PluginError> {
        let running = self
            .running
            .get(plugin_id)
            .ok_or_else(|| PluginError::new(plugin_api::ErrorCode::NOT_FOUND, plugin_id))?;
        running.actor.quarantine(reason.to_string());
        Ok(())
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}
