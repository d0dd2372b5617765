//! The workitem channel: faxes (TIFF) and PDFs dropped in watched folders become workitems the
//! core routes like any interaction. This module is the plugin glue: threads, commands, Mark Done.

pub mod hints;
pub mod inspect;
pub mod intake;
pub mod preview;
pub mod settings;
pub mod store;
pub mod tools;
pub mod watch;

use crate::intake::{Intake, move_into, reject};
use crate::settings::Settings;
use crate::store::{Ledger, Status, key_of};
use crate::watch::{FolderWatch, WatchRule};
use plugin_api::{
    ChannelKind, ChannelPlugin, ChannelStatus, Command, Created, ErrorCode, Host, HostHello,
    InteractionId, Media, PluginConfig, PluginDescriptor, PluginError, PluginHello, Reply,
    unsupported,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The plugin id.
pub const PLUGIN_ID: &str = "agentdesk.workitem";
/// The ledger's directory under the data directory.
pub const LEDGER_DIR: &str = "ledger";

/// The plugin instance.
pub struct Workitem {
    host: Host,
    settings: Settings,
    data_dir: PathBuf,
    ledger: Ledger,
    stopping: Arc<AtomicBool>,
    watch: Option<FolderWatch>,
    workers: Vec<JoinHandle<()>>,
    consultations: u64,
}

impl Workitem {
    /// Moves the file of `interaction` into `folder` (when it is still where it was found) and
    /// records `status`; nothing to do for a consultation's id or a file already moved.
    fn file_away(
        &self,
        interaction: &InteractionId,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Reply, PluginError> {
        let Some(key) = key_of(interaction) else {
            return Ok(Reply::done());
        };
        let folder = match status {
            Status::Rejected => &self.settings.rejected_folder,
            _ => &self.settings.done_folder,
        };
        let moved = self
            .ledger
            .update(key, |record| {
                if !matches!(record.status, Status::Offering | Status::Offered) {
                    return Ok(false);
                }
                record.path = match reason {
                    Some(reason) => reject(&record.path, folder, &[reason.to_string()]),
                    None => move_into(&record.path, folder),
                }
                .map_err(|e| {
                    std::io::Error::other(format!(
                        "{} could not be moved to {}: {e}",
                        record.path.display(),
                        folder.display()
                    ))
                })?;
                record.status = status;
                record.confirmed = true;
                Ok(true)
            })
            .map_err(|e| PluginError::failed(format!("workitem `{interaction}`: {e}")))?;
        if moved.is_none() {
            return Err(PluginError::new(
                ErrorCode::NOT_FOUND,
                format!("no workitem `{interaction}` in the ledger"),
            ));
        }
        if let (Some(reason), Some(record)) = (reason, moved) {
            self.host.warn(&format!(
                "workitem {} moved to the rejected folder: {reason}",
                record.path.display()
            ));
        }
        Ok(Reply::done())
    }

    /// Notes that the core has the workitem (it sent a command about it): no resend at start.
    fn confirm(&self, interaction: &InteractionId) {
        let Some(key) = key_of(interaction) else {
            return;
        };
        let confirmed = self.ledger.update(key, |record| {
            let first = !record.confirmed;
            record.confirmed = true;
            Ok(first)
        });
        if let Err(e) = confirmed {
            self.host.warn(&format!(
                "workitem `{interaction}`: cannot write the ledger: {e}"
            ));
        }
    }

    /// Notes for the admin about tools that are missing (the channel works without them).
    fn missing_tools(&self) -> Vec<String> {
        let toolbox = self.settings.toolbox();
        [
            (tools::PDFINFO, "PDFs are not read"),
            (tools::PDFTOTEXT, "PDF text is not extracted"),
            (tools::PDFTOPPM, "no page previews"),
            (tools::TIFFINFO, "faxes are not read"),
            (tools::TIFF2PDF, "no fax previews"),
            (tools::TESSERACT, "faxes are not searchable (no OCR)"),
        ]
        .into_iter()
        .filter(|(tool, _)| toolbox.find(*tool).is_none())
        .map(|(tool, effect)| {
            format!(
                "`{}` is missing (install {}): {effect}",
                tool.name, tool.package
            )
        })
        .collect()
    }
}

impl ChannelPlugin for Workitem {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: PLUGIN_ID.into(),
            name: "Workitems".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(ChannelKind::WORKITEM)],
            description: "Faxes (TIFF) and PDFs from watched folders, with text and previews"
                .into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let data_dir = host.data_dir();
        let settings = config.parse::<Settings>()?.resolved(&data_dir);
        hints::FilenamePatterns::new(&settings.filename_patterns)
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("{PLUGIN_ID}: {e}")))?;
        Ok(Workitem {
            ledger: Ledger::new(data_dir.join(LEDGER_DIR)),
            host,
            settings,
            data_dir,
            stopping: Arc::new(AtomicBool::new(false)),
            watch: None,
            workers: Vec::new(),
            consultations: 0,
        })
    }

    fn start(&mut self, _hello: &HostHello) -> Result<PluginHello, PluginError> {
        let folders: Vec<PathBuf> = self
            .settings
            .inbound
            .iter()
            .map(|i| i.folder.clone())
            .collect();
        for folder in folders
            .iter()
            .chain([&self.settings.done_folder, &self.settings.rejected_folder])
        {
            std::fs::create_dir_all(folder).map_err(|e| {
                PluginError::new(
                    ErrorCode::UNAVAILABLE,
                    format!("cannot create folder {}: {e}", folder.display()),
                )
            })?;
        }
        let patterns = hints::FilenamePatterns::new(&self.settings.filename_patterns)
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, e.to_string()))?;
        let intake = Arc::new(Intake {
            host: self.host.clone(),
            settings: self.settings.clone(),
            patterns,
            ledger: self.ledger.clone(),
            data_dir: self.data_dir.clone(),
            stopping: self.stopping.clone(),
        });
        let resend = {
            let intake = intake.clone();
            std::thread::Builder::new()
                .name("workitem-resend".into())
                .spawn(move || intake.resend_unconfirmed())
                .map_err(|e| PluginError::failed(format!("cannot start a worker: {e}")))?
        };
        self.workers.push(resend);
        let (complete_tx, complete) = crossbeam_channel::unbounded::<PathBuf>();
        for n in 0..self.settings.workers {
            let (intake, complete) = (intake.clone(), complete.clone());
            let worker = std::thread::Builder::new()
                .name(format!("workitem-{n}"))
                .spawn(move || {
                    for path in complete {
                        if intake.stopping.load(Ordering::SeqCst) {
                            return;
                        }
                        intake.take(&path);
                    }
                })
                .map_err(|e| PluginError::failed(format!("cannot start a worker: {e}")))?;
            self.workers.push(worker);
        }
        let rule = WatchRule {
            folders,
            stable: self.settings.stable(),
            rescan: Duration::from_millis(self.settings.rescan_ms.max(100)),
        };
        let (watch, note) = watch::watch(rule, complete_tx);
        self.watch = Some(watch);
        let mut notes: Vec<String> = note.into_iter().collect();
        notes.extend(self.missing_tools());
        for note in &notes {
            self.host.warn(note);
        }
        let _ = self.host.emit(ChannelStatus {
            healthy: true,
            detail: if notes.is_empty() {
                "watching for faxes and PDFs".into()
            } else {
                notes.join("; ")
            },
        });
        Ok(PluginHello {
            commands: [
                "accept",
                "reject",
                "end",
                "transfer",
                "consult",
                "mark-done",
                "put-in-workbin",
            ]
            .map(String::from)
            .to_vec(),
            events: ["offer", "message-received", "channel-status"]
                .map(String::from)
                .to_vec(),
            media: vec![Media::Document],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        match command {
            Command::MarkDone(done) => self.file_away(&done.interaction, Status::Done, None),
            // The file stays where it is: the core keeps track of whose it is.
            // The core refused it (e.g. no agent has the channel): the file goes where the
            // admin looks for files nobody will handle.
            Command::Reject(refused) => {
                let reason = format!("refused by the core: {}", refused.reason);
                self.file_away(&refused.interaction, Status::Rejected, Some(&reason))
            }
            Command::Accept(plugin_api::Accept { interaction, .. })
            | Command::End(plugin_api::End { interaction })
            | Command::Transfer(plugin_api::Transfer { interaction, .. })
            | Command::PutInWorkbin(plugin_api::PutInWorkbin { interaction, .. }) => {
                self.confirm(&interaction);
                Ok(Reply::done())
            }
            Command::Consult(consult) => {
                self.confirm(&consult.interaction);
                self.consultations += 1;
                Ok(Reply::Created(Created {
                    interaction: InteractionId::new(format!(
                        "{}~consult-{}",
                        consult.interaction, self.consultations
                    )),
                }))
            }
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.stopping.store(true, Ordering::SeqCst);
        // Dropping the watcher closes the workers' queue once its thread has ended.
        self.watch = None;
        // A worker in the middle of a slow tool run is not waited for past the deadline: it
        // records nothing once `stopping` is set, and the file is taken again at the next start.
        let deadline = Instant::now() + Duration::from_millis(500);
        for worker in std::mem::take(&mut self.workers) {
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if worker.is_finished() {
                let _ = worker.join();
            }
        }
        self.host.info("workitem channel stopped");
        Ok(())
    }
}

plugin_api::export_plugin!(Workitem);
