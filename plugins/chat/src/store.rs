//! Where open chats survive a restart: a snapshot (`chats.json`, written atomically at start)
//! plus an append-only log of changes (`chats.log`, JSON lines, appended and synced every tick).
//! Appending costs what changed, never the size of every transcript.

use crate::session::{Change, Chats};
use plugin_api::store::StateFile;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The snapshot file in the plugin's data directory.
pub const SNAPSHOT: &str = "chats.json";
/// The log file in the plugin's data directory.
pub const LOG: &str = "chats.log";

/// A failure of the chat store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A change could not be encoded.
    #[error("cannot encode a change: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The snapshot and the log of one plugin instance.
#[derive(Debug, Clone)]
pub struct ChatStore {
    snapshot: StateFile,
    log: PathBuf,
}

impl ChatStore {
    /// The store in `dir` (the plugin's data directory).
    pub fn new(dir: &Path) -> Self {
        ChatStore {
            snapshot: StateFile::new(dir, SNAPSHOT),
            log: dir.join(LOG),
        }
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    }

    /// The chats as last saved: the snapshot with the log replayed on it. A torn last line (a
    /// crash in the middle of an append) is ignored.
    pub fn load(&self, now: Instant) -> Result<Chats, StoreError> {
        let mut chats: Chats = self
            .snapshot
            .load()
            .map_err(self.io(self.snapshot.path()))?;
        match File::open(&self.log) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(self.io(&self.log))?;
                    if let Ok(change) = serde_json::from_str::<Change>(&line) {
                        chats.apply(change);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(&self.log)(e)),
        }
        Ok(chats.restored(now))
    }

    /// Writes the whole state as the new snapshot and empties the log (at start, after `load`,
    /// and at stop).
    pub fn compact(&self, chats: &Chats) -> Result<(), StoreError> {
        self.snapshot
            .save(chats)
            .map_err(self.io(self.snapshot.path()))?;
        File::create(&self.log)
            .and_then(|f| f.sync_all())
            .map_err(self.io(&self.log))
    }

    /// Appends changes to the log and syncs it.
    pub fn append(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for change in changes {
            serde_json::to_writer(&mut text, change)?;
            text.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(self.io(&self.log))?;
        file.write_all(&text)
            .and_then(|()| file.sync_data())
            .map_err(self.io(&self.log))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_snapshot_plus_the_log_gives_back_every_chat_with_its_transcript_and_message_ids() {
        let dir = std::env::temp_dir().join(format!(
            "agentdesk-chat-store-{}-{}",
            std::process::id(),
            crate::session::random_hex(4).expect("random")
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = ChatStore::new(&dir);
        let now = Instant::now();
        let mut chats = store.load(now).expect("empty store");
        let (id, _) = chats
            .start("Jo", "jo@example.com", "Hello", "default", now)
            .expect("start");
        store.append(&chats.take_batch().changes).expect("append");
        store.compact(&chats).expect("compact");
        chats.accept(&id, "Sam", now).expect("accept");
        chats
            .customer_message(&id, "c1", "hi", now)
            .expect("message");
        store.append(&chats.take_batch().changes).expect("append");
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(LOG))
            .and_then(|mut f| f.write_all(b"{\"change\":\"events\",\"ch"))
            .expect("a torn line");
        let back = store.load(now).expect("load");
        let chat = back.get(&id).expect("the chat");
        assert_eq!(chat.events.len(), 3, "greeting, joined, message");
        assert_eq!(chat.agent.as_deref(), Some("Sam"));
        assert_eq!(chat.cids.get("c1"), Some(&3));
        let token = chat.token.clone();
        assert_eq!(back.by_token(&token).as_deref(), Ok(id.as_str()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
