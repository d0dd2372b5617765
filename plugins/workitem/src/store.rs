//! The channel's durable ledger: one small crash-safe record (plugin-api's `StateFile`) per file
//! taken, keyed by its content hash plus path, so that no file is offered twice across restarts.

use plugin_api::store::StateFile;
use plugin_api::{InteractionId, MessageReceived, Offer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where a taken file is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Being offered: written just before the offer is emitted. Found at start, it means the
    /// host stopped in between: the file is offered again and the core drops a repeat.
    #[default]
    Offering,
    /// Offered to the core; the file is where it was found.
    Offered,
    /// Marked done; the file is in the done folder.
    Done,
    /// Not offered: moved to the rejected folder (`on_problem = "reject"`).
    Rejected,
}

/// What the ledger keeps about one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The ledger key (also the core's external id).
    pub key: String,
    /// The path it was found at.
    pub found_at: PathBuf,
    /// Where it is now.
    pub path: PathBuf,
    /// sha256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its status.
    pub status: Status,
    /// Problems found in it.
    #[serde(default)]
    pub problems: Vec<String>,
    /// Whether the core has sent a command about it, so it surely received the offer.
    #[serde(default)]
    pub confirmed: bool,
    /// The offer as emitted: sent again at start while unconfirmed (the core drops a repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    /// The document message as emitted, sent again with the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<MessageReceived>,
}

impl Record {
    /// The plugin's interaction id for this file.
    pub fn interaction(&self) -> InteractionId {
        interaction_of(&self.key)
    }
}

/// The interaction id of a ledger key.
pub fn interaction_of(key: &str) -> InteractionId {
    InteractionId::new(format!("wi-{key}"))
}

/// The ledger key of an interaction id, if it is one of ours.
pub fn key_of(interaction: &InteractionId) -> Option<&str> {
    interaction
        .as_str()
        .strip_prefix("wi-")
        .filter(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The key of a file: its content hash and the path it was found at.
pub fn key_for(path: &Path, sha256: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(sha256.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_os_str().as_encoded_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The ledger: a directory of records.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
    // Serialises read-modify-write of a record between the workers and the command thread.
    lock: Arc<Mutex<()>>,
}

impl Ledger {
    /// The ledger in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Ledger {
            dir,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Loads the record of `key`, lets `change` edit it, and writes it back if `change` says so,
    /// with no other update in between. Returns the record as it is afterwards.
    pub fn update(
        &self,
        key: &str,
        change: impl FnOnce(&mut Record) -> std::io::Result<bool>,
    ) -> std::io::Result<Option<Record>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut record) = self.get(key)? else {
            return Ok(None);
        };
        if change(&mut record)? {
            self.put(&record)?;
        }
        Ok(Some(record))
    }

    fn file(&self, key: &str) -> StateFile {
        StateFile::new(&self.dir, &format!("{key}.json"))
    }

    /// The record of `key`, if the file was taken before.
    pub fn get(&self, key: &str) -> std::io::Result<Option<Record>> {
        self.file(key).load::<Option<Record>>()
    }

    /// Writes a record atomically.
    pub fn put(&self, record: &Record) -> std::io::Result<()> {
        self.file(&record.key).save(&Some(record))
    }

    /// Every record (for tests and diagnostics).
    pub fn all(&self) -> std::io::Result<Vec<Record>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if let Some(record) = self.get(key)? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_new_ledger_on_the_same_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let key = key_for(Path::new("/in/a.pdf"), "ab12");
        assert_ne!(key, key_for(Path::new("/in/b.pdf"), "ab12"), "path counts");
        assert_ne!(
            key,
            key_for(Path::new("/in/a.pdf"), "cd34"),
            "content counts"
        );
        let record = Record {
            key: key.clone(),
            found_at: "/in/a.pdf".into(),
            path: "/in/a.pdf".into(),
            sha256: "ab12".into(),
            status: Status::Done,
            ..Record::default()
        };
        Ledger::new(dir.path().into()).put(&record).expect("put");
        let again = Ledger::new(dir.path().into());
        assert_eq!(again.get(&key).expect("get"), Some(record.clone()));
        assert_eq!(again.all().expect("all"), vec![record.clone()]);
        assert_eq!(key_of(&record.interaction()), Some(key.as_str()));
        assert_eq!(key_of(&InteractionId::new("wi-../../etc")), None);
    }
}
