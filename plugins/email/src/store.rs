//! What survives a restart, in the plugin's data directory: per folder the UIDVALIDITY and the
//! highest UID offered (`folders.json`), every email interaction (`mails.jsonl`, append-only,
//! last line per id wins) and the drafts not yet sent (`outbox/<id>.json`).

use plugin_api::store::StateFile;
use plugin_api::{AttachmentRef, MessageReceived, Offer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a folder was read up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The folder's UIDVALIDITY when `last_uid` was taken.
    pub uidvalidity: u32,
    /// The highest UID offered.
    pub last_uid: u32,
}

/// What the agent's next message on an interaction does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Answer the sender.
    #[default]
    Reply,
    /// Answer the sender and every other recipient.
    ReplyAll,
    /// Forward to the addresses on the first line of the text.
    Forward,
    /// A new message (party action) to `Mail::to`.
    New,
}

/// One email interaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The plugin's interaction id.
    pub id: String,
    /// The folder, UIDVALIDITY and UID it came from (empty/0 for a new outbound message).
    #[serde(default)]
    pub folder: String,
    /// UIDVALIDITY.
    #[serde(default)]
    pub uidvalidity: u32,
    /// UID.
    #[serde(default)]
    pub uid: u32,
    /// Subject.
    #[serde(default)]
    pub subject: String,
    /// Sender's name.
    #[serde(default)]
    pub from_name: Option<String>,
    /// Sender's (reply) address.
    #[serde(default)]
    pub from: Option<String>,
    /// Recipients (for reply-all; for a new message, whom it goes to).
    #[serde(default)]
    pub to: Vec<String>,
    /// Copy recipients.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Message-ID.
    #[serde(default)]
    pub message_id: Option<String>,
    /// The thread before this message.
    #[serde(default)]
    pub references: Vec<String>,
    /// Date header.
    #[serde(default)]
    pub date: Option<String>,
    /// The text (for quoting).
    #[serde(default)]
    pub text: String,
    /// Stored attachments (forwarded with the message).
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
    /// Machine-sent, and why.
    #[serde(default)]
    pub automatic: Option<String>,
    /// The next message's mode.
    #[serde(default)]
    pub mode: Mode,
    /// Whether the core sent a command about it (so it surely has the offer).
    #[serde(default)]
    pub confirmed: bool,
    /// The offer as emitted (sent again at start while unconfirmed; the core drops a repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    /// The body message as emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<MessageReceived>,
}

/// A digest of what a message says — subject, sender, date, text, and its attachments' names and
/// sizes — as hex SHA-256. Trace headers a server adds on delivery are left out, so a second
/// delivery of a message has its digest, while another message reusing its Message-ID has not.
pub fn content_digest(
    subject: &str,
    from: Option<&str>,
    date: Option<&str>,
    text: &str,
    attachments: impl IntoIterator<Item = (String, u64)>,
) -> String {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    for field in [
        subject,
        from.unwrap_or_default(),
        date.unwrap_or_default(),
        text,
    ] {
        part(field.as_bytes());
    }
    for (name, size) in attachments {
        part(name.as_bytes());
        part(&size.to_le_bytes());
    }
    hex::encode(hash.finalize())
}

impl Mail {
    /// The [`content_digest`] of the message read.
    pub fn content_digest(&self) -> String {
        content_digest(
            &self.subject,
            self.from.as_deref(),
            self.date.as_deref(),
            &self.text,
            self.attachments.iter().map(|a| (a.name.clone(), a.size)),
        )
    }

    /// Notes that the core has it: the copies kept for sending again are no longer needed.
    pub fn confirm(&mut self) {
        self.confirmed = true;
        self.offer = None;
        self.body = None;
    }
}

/// A message waiting to be sent (kept until the SMTP server took it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The draft id (also the file name).
    pub id: String,
    /// The interaction it belongs to.
    pub interaction: String,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The message bytes (UTF-8: mail-builder encodes everything 7-bit).
    pub data: String,
    /// Set once the SMTP server accepted it; only the Sent copy and the flag remain to do.
    #[serde(default)]
    pub sent: bool,
}

/// The store. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    marks: BTreeMap<String, Watermark>,
    mails: HashMap<String, Mail>,
    // (folder, Message-ID, content digest) of every message read: a rebuilt folder (new
    // UIDVALIDITY) or a second delivery of the same message is not offered twice.
    seen: HashSet<(String, String, String)>,
}

impl Inner {
    fn insert(&mut self, mail: Mail) {
        if let Some(message_id) = &mail.message_id
            && !mail.folder.is_empty()
        {
            self.seen.insert((
                mail.folder.clone(),
                message_id.clone(),
                mail.content_digest(),
            ));
        }
        self.mails.insert(mail.id.clone(), mail);
    }
}

const MAILS: &str = "mails.jsonl";
const FOLDERS: &str = "folders.json";
const OUTBOX: &str = "outbox";

impl Store {
    /// Loads the store in `dir` (empty when new) and compacts the mail log.
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        let marks = StateFile::new(dir, FOLDERS).load::<BTreeMap<String, Watermark>>()?;
        let mut inner = Inner {
            marks,
            ..Inner::default()
        };
        match std::fs::read_to_string(dir.join(MAILS)) {
            Ok(text) => {
                for line in text.lines() {
                    // A line cut by a crash is the last one; it was never acted upon.
                    if let Ok(mail) = serde_json::from_str::<Mail>(line) {
                        inner.insert(mail);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let store = Store {
            dir: dir.to_path_buf(),
            inner: Arc::new(Mutex::new(inner)),
        };
        store.compact()?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn compact(&self) -> std::io::Result<()> {
        let inner = self.lock();
        let tmp = self.dir.join("mails.jsonl.tmp");
        {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            for mail in inner.mails.values() {
                serde_json::to_writer(&mut file, mail)?;
                file.write_all(b"\n")?;
            }
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(MAILS))
    }

    /// The watermark of a folder.
    pub fn watermark(&self, folder: &str) -> Watermark {
        self.lock().marks.get(folder).copied().unwrap_or_default()
    }

    /// Saves the watermark of a folder (atomically).
    pub fn set_watermark(&self, folder: &str, mark: Watermark) -> std::io::Result<()> {
        let mut inner = self.lock();
        inner.marks.insert(folder.to_string(), mark);
        StateFile::new(&self.dir, FOLDERS).save(&inner.marks)
    }

    /// Appends mails (new or changed) to the log and syncs it once.
    pub fn put(&self, mails: &[Mail]) -> std::io::Result<()> {
        if mails.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let mut bytes = Vec::new();
        for mail in mails {
            serde_json::to_writer(&mut bytes, mail)?;
            bytes.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(MAILS))?;
        file.write_all(&bytes)?;
        file.sync_data()?;
        for mail in mails {
            inner.insert(mail.clone());
        }
        Ok(())
    }

    /// A mail by interaction id.
    pub fn get(&self, id: &str) -> Option<Mail> {
        self.lock().mails.get(id).cloned()
    }

    /// Whether a mail with this id is known.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().mails.contains_key(id)
    }

    /// Whether a message with this Message-ID and content was read from this folder before.
    pub fn seen(&self, folder: &str, message_id: &str, digest: &str) -> bool {
        self.lock().seen.contains(&(
            folder.to_string(),
            message_id.to_string(),
            digest.to_string(),
        ))
    }

    /// Changes a mail and logs it; `None` when unknown.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut Mail),
    ) -> std::io::Result<Option<Mail>> {
        let Some(mut mail) = self.get(id) else {
            return Ok(None);
        };
        let before = mail.clone();
        change(&mut mail);
        if mail != before {
            self.put(std::slice::from_ref(&mail))?;
        }
        Ok(Some(mail))
    }

    /// Every mail the core may not have received (offered, never confirmed).
    pub fn unconfirmed(&self) -> Vec<Mail> {
        let mut out: Vec<Mail> = self
            .lock()
            .mails
            .values()
            .filter(|m| !m.confirmed && m.offer.is_some())
            .cloned()
            .collect();
        out.sort_by(|a, b| (&a.folder, a.uid).cmp(&(&b.folder, b.uid)));
        out
    }

    fn outbox(&self) -> PathBuf {
        self.dir.join(OUTBOX)
    }

    /// Keeps a draft until it is sent.
    pub fn save_draft(&self, draft: &Draft) -> std::io::Result<()> {
        StateFile::new(&self.outbox(), &format!("{}.json", draft.id)).save(draft)
    }

    /// Forgets a sent draft.
    pub fn remove_draft(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.outbox().join(format!("{id}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The drafts waiting, oldest name first.
    pub fn drafts(&self) -> std::io::Result<Vec<Draft>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(self.outbox()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect();
        names.sort();
        for name in names {
            if let Some(draft) =
                StateFile::new(&self.outbox(), &format!("{name}.json")).load::<Option<Draft>>()?
            {
                out.push(draft);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_marks_and_drafts_survive_a_reopen_and_the_last_change_wins() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        let mail = Mail {
            id: "em-1".into(),
            subject: "Hi".into(),
            ..Mail::default()
        };
        store.put(&[mail]).expect("put");
        store
            .update("em-1", |m| m.mode = Mode::Forward)
            .expect("update");
        store
            .set_watermark(
                "INBOX",
                Watermark {
                    uidvalidity: 9,
                    last_uid: 4,
                },
            )
            .expect("mark");
        store
            .save_draft(&Draft {
                id: "d1".into(),
                ..Draft::default()
            })
            .expect("draft");
        let again = Store::open(dir.path()).expect("reopen");
        assert_eq!(again.get("em-1").map(|m| m.mode), Some(Mode::Forward));
        assert_eq!(again.watermark("INBOX").last_uid, 4);
        assert_eq!(again.drafts().expect("drafts").len(), 1);
        again.remove_draft("d1").expect("remove");
        assert!(again.drafts().expect("drafts").is_empty());
    }
}
