//! One complete file becomes one workitem: hash, ledger check, inspection (outside tools, behind
//! `catch_unwind`), previews, then the offer and its document message, then the ledger record.

use crate::hints::{FilenamePatterns, hints_for, sidecar_of};
use crate::inspect::{self, Inspection};
use crate::settings::{OnProblem, Settings};
use crate::store::{Ledger, Record, Status, interaction_of, key_for};
use plugin_api::{
    Address, AttachmentRef, CaseField, ChannelKind, Contact, ErrorCode, Host, Media,
    MessageContent, MessageReceived, Offer, Party, Route,
};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Offered as a new workitem.
    Offered,
    /// Moved to the rejected folder.
    Rejected,
    /// Taken before (same content at the same path): nothing done.
    AlreadyTaken,
    /// Gone before it could be read, or the channel is stopping: it will be seen again.
    Skipped,
}

/// Everything a worker needs; shared by all workers.
#[derive(Debug)]
pub struct Intake {
    /// The host services.
    pub host: Host,
    /// The settings (folders absolute).
    pub settings: Settings,
    /// The compiled filename patterns.
    pub patterns: FilenamePatterns,
    /// The ledger.
    pub ledger: Ledger,
    /// The plugin's data directory.
    pub data_dir: PathBuf,
    /// Set when the channel stops: nothing more is offered or recorded.
    pub stopping: Arc<AtomicBool>,
}

impl Intake {
    /// Takes the file at `path`. Errors are logged here; a file that fails is never lost: it stays
    /// where it is and the next scan sees it again.
    pub fn take(&self, path: &Path) -> Outcome {
        match self.try_take(path) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.host
                    .error(&format!("workitem {}: {e}", path.display()));
                Outcome::Skipped
            }
        }
    }

    fn try_take(&self, path: &Path) -> Result<Outcome, String> {
        let (sha256, head, len) = match hash(path) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Skipped),
            Err(e) => return Err(format!("cannot read: {e}")),
        };
        let key = key_for(path, &sha256);
        let earlier = self
            .ledger
            .get(&key)
            .map_err(|e| format!("cannot read the ledger: {e}"))?;
        if earlier.is_some_and(|r| r.status != Status::Offering) {
            return Ok(Outcome::AlreadyTaken);
        }
        let settings = &self.settings;
        // The tools run in subprocesses; this guards our own parsing of what they print.
        let mut inspection =
            std::panic::catch_unwind(|| inspect::inspect(path, &head, len, settings))
                .unwrap_or_else(|panic| {
                    let mut failed = inspect::inspect(path, b"", 0, settings);
                    failed.problems = vec![format!(
                        "the file could not be inspected (internal error: {})",
                        plugin_api::plugin::panic_message(panic.as_ref())
                    )];
                    failed
                });
        let (hints, sidecar_problem) = hints_for(path, &self.patterns);
        inspection.problems.extend(sidecar_problem);
        let mut record = Record {
            key: key.clone(),
            found_at: path.to_path_buf(),
            path: path.to_path_buf(),
            sha256,
            status: Status::Offering,
            problems: inspection.problems.clone(),
            ..Record::default()
        };
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(Outcome::Skipped);
        }
        if !inspection.problems.is_empty() && settings.on_problem == OnProblem::Reject {
            record.path = reject(path, &settings.rejected_folder, &inspection.problems)
                .map_err(|e| format!("cannot move to the rejected folder: {e}"))?;
            record.status = Status::Rejected;
            self.ledger
                .put(&record)
                .map_err(|e| format!("cannot write the ledger: {e}"))?;
            self.host.warn(&format!(
                "workitem {} rejected: {}",
                path.display(),
                inspection.problems.join("; ")
            ));
            return Ok(Outcome::Rejected);
        }
        let previews = crate::preview::render(
            path,
            inspection.format,
            &self.data_dir.join("previews").join(&key),
            settings,
        );
        let name = file_name(path);
        let queue = hints
            .queue
            .clone()
            .unwrap_or_else(|| settings.queue_of(path));
        let mut case_data = vec![field("file", "File", &name)];
        if let Some(problem) =
            (!inspection.problems.is_empty()).then(|| inspection.problems.join("; "))
        {
            case_data.insert(0, field("problem", "Problem", &problem));
        }
        case_data.push(field("size", "Size", &format!("{len} bytes")));
        if let Some(due) = &hints.due {
            case_data.push(field("due", "Due", due));
        }
        for (key, label, value) in &inspection.metadata {
            case_data.push(field(key, label, value));
        }
        case_data.push(field("text", "Text", &inspection.text_source));
        match &previews {
            Ok(pages) => case_data.push(field(
                "previews",
                "Previews",
                &format!("{} page(s) at {} dpi", pages.len(), settings.preview_dpi),
            )),
            Err(note) => case_data.push(field("previews", "Previews", note)),
        }
        case_data.push(field("sha256", "SHA-256", &record.sha256));
        let title = hints
            .subject
            .clone()
            .or_else(|| inspection.title.clone())
            .unwrap_or_else(|| name.clone());
        let subject = if inspection.problems.is_empty() {
            title
        } else {
            format!("[problem] {title}")
        };
        let interaction = interaction_of(&key);
        let offer = Offer {
            interaction: interaction.clone(),
            external_id: key.clone(),
            channel: ChannelKind::new(ChannelKind::WORKITEM),
            media: Media::Document,
            route: Route::queue(queue),
            contact: contact_of(&inspection),
            subject: Some(subject),
            case_data,
            actions: vec![],
            priority: hints.priority.unwrap_or(0),
        };
        let mut attachments = vec![AttachmentRef {
            name: name.clone(),
            path: self.reference(path),
            content_type: inspection.format.content_type().into(),
            size: len,
        }];
        for (n, page) in previews.iter().flatten().enumerate() {
            attachments.push(AttachmentRef {
                name: format!("page {} preview", n + 1),
                path: self.reference(page),
                content_type: "image/png".into(),
                size: std::fs::metadata(page).map(|m| m.len()).unwrap_or_default(),
            });
        }
        let text = if inspection.text.is_empty() {
            format!("[{}]", inspection.text_source)
        } else {
            inspection.text.clone()
        };
        let document = MessageReceived {
            interaction: interaction.clone(),
            from: Party {
                id: "sender".into(),
                role: Party::CUSTOMER.into(),
                display_name: inspection.sender.clone().unwrap_or_else(|| name.clone()),
                address: None,
            },
            message: MessageContent {
                id: format!("{interaction}-document"),
                text,
                attachments,
            },
        };
        // `Offering` before the offer, `Offered` after it: a crash in between offers it again
        // after the restart, and the core drops the repeat by its external id. Mark Done or a
        // refusal may come in between; they move the file and win. A worker of a stopped
        // instance writes nothing more (the next instance may own the file by now).
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(Outcome::Skipped);
        }
        record.offer = Some(offer.clone());
        record.document = Some(document.clone());
        self.ledger
            .put(&record)
            .map_err(|e| format!("cannot write the ledger: {e}"))?;
        if !self.emit(offer) || !self.emit(document) {
            return Ok(Outcome::Skipped);
        }
        self.ledger
            .update(&key, |r| {
                let offering = r.status == Status::Offering;
                if offering {
                    r.status = Status::Offered;
                }
                Ok(offering)
            })
            .map_err(|e| format!("cannot write the ledger: {e}"))?;
        Ok(Outcome::Offered)
    }

    /// Sends again the offers the core may not have received: those recorded as offered that
    /// no command has named since. The host may have stopped its core before its plugins, and
    /// events still queued then are lost; the core drops a repeat by its external id.
    pub fn resend_unconfirmed(&self) {
        let records = match self.ledger.all() {
            Ok(records) => records,
            Err(e) => {
                self.host
                    .error(&format!("cannot read the workitem ledger: {e}"));
                return;
            }
        };
        for record in records {
            if record.status != Status::Offered || record.confirmed {
                continue;
            }
            if let (Some(offer), Some(document)) = (record.offer, record.document)
                && !(self.emit(offer) && self.emit(document))
            {
                return;
            }
        }
    }

    /// Emits, waiting while the host's queue is full. False when the channel stops first.
    fn emit(&self, event: impl Into<plugin_api::Event>) -> bool {
        let event = event.into();
        let mut wait = Duration::from_millis(5);
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return false;
            }
            match self.host.emit(event.clone()) {
                Ok(()) => return true,
                Err(e) if e.code == ErrorCode::QUEUE_FULL => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    self.host
                        .error(&format!("cannot emit a workitem event: {e}"));
                    return false;
                }
            }
        }
    }

    /// A file's reference for `AttachmentRef.path`: relative to the data directory when inside
    /// it, absolute otherwise (joining an absolute path onto the data directory yields it).
    fn reference(&self, path: &Path) -> String {
        path.strip_prefix(&self.data_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }
}

fn field(key: &str, label: &str, value: &str) -> CaseField {
    CaseField {
        key: key.into(),
        label: Some(label.into()),
        value: value.into(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The sender as a contact: a fax number as a phone address, anything else as a name.
fn contact_of(inspection: &Inspection) -> Contact {
    let Some(sender) = &inspection.sender else {
        return Contact::default();
    };
    let digits = sender.chars().filter(char::is_ascii_digit).count();
    let number_like: String = sender
        .chars()
        .take_while(|c| c.is_ascii_digit() || " +-().".contains(*c))
        .collect();
    let addresses = if digits >= 5 && number_like.chars().filter(char::is_ascii_digit).count() >= 5
    {
        vec![Address::phone(number_like.trim())]
    } else {
        vec![]
    };
    Contact {
        display_name: Some(sender.clone()),
        addresses,
    }
}

/// sha256 (hex), the first 8 KiB and the length of a file, reading it once.
fn hash(path: &Path) -> std::io::Result<(String, Vec<u8>, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 8192 {
            let more = (8192 - head.len()).min(n);
            head.extend_from_slice(&buf[..more]);
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), head, len))
}

/// Moves `path` (and its sidecar) into `folder` under a free name, keeping the bytes as they are.
pub fn move_into(path: &Path, folder: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?;
    let mut target = folder.join(name);
    let stem = path
        .file_stem()
        .unwrap_or(name)
        .to_string_lossy()
        .into_owned();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = folder.join(format!("{stem}-{n}{ext}"));
    }
    move_file(path, &target)?;
    let sidecar = sidecar_of(path);
    if sidecar.exists() {
        move_file(&sidecar, &sidecar_of(&target))?;
    }
    Ok(target)
}

fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Another file system: copy, make it durable, then remove the original.
        Err(e) if e.raw_os_error() == Some(18) => {
            std::fs::copy(from, to)?;
            std::fs::File::open(to)?.sync_all()?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Moves `path` into the rejected `folder` with `<name>.reason.txt` beside it.
pub fn reject(path: &Path, folder: &Path, problems: &[String]) -> std::io::Result<PathBuf> {
    let target = move_into(path, folder)?;
    let mut reason = target.as_os_str().to_os_string();
    reason.push(".reason.txt");
    std::fs::write(PathBuf::from(reason), format!("{}\n", problems.join("\n")))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_keeps_the_bytes_takes_the_sidecar_along_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("dir");
        let inbound = dir.path().join("in");
        let done = dir.path().join("done");
        std::fs::create_dir_all(&inbound).expect("in");
        for round in 0..2 {
            let doc = inbound.join("fax.tif");
            std::fs::write(&doc, format!("bytes {round}")).expect("doc");
            std::fs::write(sidecar_of(&doc), "{}").expect("sidecar");
            let moved = move_into(&doc, &done).expect("moved");
            assert!(!doc.exists());
            assert_eq!(
                std::fs::read_to_string(&moved).expect("read"),
                format!("bytes {round}")
            );
            assert!(sidecar_of(&moved).exists());
        }
        assert!(
            done.join("fax-2.tif").exists(),
            "the second got a free name"
        );
    }

    #[test]
    fn a_fax_number_becomes_a_phone_address_and_a_name_stays_a_name() {
        let mut inspection = inspect::inspect(Path::new("a"), b"", 0, &Settings::default());
        inspection.sender = Some("+1 555 0100 ACME".into());
        assert_eq!(
            contact_of(&inspection).addresses,
            vec![Address::phone("+1 555 0100")]
        );
        inspection.sender = Some("ACME Ltd".into());
        assert!(contact_of(&inspection).addresses.is_empty());
    }
}
