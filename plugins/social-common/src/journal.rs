//! The durable state of a social channel: a snapshot (written atomically at start) plus an
//! append-only log of changes, each append synced before it is acknowledged. Generic: the
//! plugin's state says how a change applies; nothing platform-specific here.

use plugin_api::store::StateFile;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A state kept by a [`Journal`]: a snapshot value and the changes that apply to it.
pub trait Journaled: Serialize + DeserializeOwned + Default {
    /// One change, as written to the log.
    type Change: Serialize + DeserializeOwned;
    /// Applies a change (at run time and when the log is replayed at start).
    fn apply(&mut self, change: Self::Change);
}

/// A failure of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
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
    /// An earlier write failed; nothing is taken until a restart reloads the journal.
    #[error("stopped after a failed write ({0}); restart the plugin")]
    Stopped(String),
}

/// What loading found besides the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Changes replayed from the log.
    pub replayed: usize,
    /// Lines that could not be read back (a torn last line after a crash, or damage).
    pub skipped: usize,
}

/// The snapshot and the log of one plugin instance, in its data directory.
#[derive(Debug, Clone)]
pub struct Journal {
    snapshot: StateFile,
    log: PathBuf,
}

impl Journal {
    /// `<name>.json` and `<name>.log` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Journal {
            snapshot: StateFile::new(dir, &format!("{name}.json")),
            log: dir.join(format!("{name}.log")),
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, source }
    }

    /// The state as last saved: the snapshot with the log replayed on it.
    pub fn load<S: Journaled>(&self) -> Result<(S, Loaded), JournalError> {
        let mut state: S = self
            .snapshot
            .load()
            .map_err(Self::io(self.snapshot.path()))?;
        let mut loaded = Loaded::default();
        match File::open(&self.log) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(Self::io(&self.log))?;
                    match serde_json::from_str::<S::Change>(&line) {
                        Ok(change) => {
                            state.apply(change);
                            loaded.replayed += 1;
                        }
                        Err(_) => loaded.skipped += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Self::io(&self.log)(e)),
        }
        Ok((state, loaded))
    }

    /// Writes the whole state as the new snapshot, then empties the log (at start, after load).
    pub fn compact<S: Journaled>(&self, state: &S) -> Result<(), JournalError> {
        self.snapshot
            .save(state)
            .map_err(Self::io(self.snapshot.path()))?;
        File::create(&self.log)
            .and_then(|f| f.sync_all())
            .map_err(Self::io(&self.log))
    }

    /// Appends changes and syncs them: when this returns `Ok`, they survive a crash.
    pub fn append<C: Serialize>(&self, changes: &[C]) -> Result<(), JournalError> {
        let mut text = Vec::new();
        for change in changes {
            serde_json::to_writer(&mut text, change)?;
            text.push(b'\n');
        }
        self.append_encoded(&text)
    }

    /// Appends changes already encoded one per line, and syncs them.
    pub fn append_encoded(&self, text: &[u8]) -> Result<(), JournalError> {
        if text.is_empty() {
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(Self::io(&self.log))?;
        file.write_all(text)
            .and_then(|()| file.sync_data())
            .map_err(Self::io(&self.log))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde::Deserialize;

    /// A state that keeps every change it is given (for the journal's and the inbox's tests).
    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    pub(crate) struct Seen(pub(crate) Vec<String>);

    impl Journaled for Seen {
        type Change = String;
        fn apply(&mut self, change: String) {
            self.0.push(change);
        }
    }

    #[test]
    fn the_snapshot_plus_the_log_gives_back_every_change_and_a_torn_line_is_counted() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = Journal::new(dir.path(), "seen");
        let (mut state, _) = journal.load::<Seen>().expect("empty");
        state.apply("a".into());
        journal.compact(&state).expect("compact");
        journal
            .append(&["b".to_string(), "c".to_string()])
            .expect("append");
        OpenOptions::new()
            .append(true)
            .open(dir.path().join("seen.log"))
            .and_then(|mut f| f.write_all(b"\"d"))
            .expect("torn line");
        let (back, loaded) = journal.load::<Seen>().expect("load");
        assert_eq!(back, Seen(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(
            loaded,
            Loaded {
                replayed: 2,
                skipped: 1
            }
        );
    }
}
