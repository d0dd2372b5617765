//! The journal: every core event, in sequence, in one SQLite file in WAL mode. A batch (one group
//! commit) is one row holding its events as a JSON array, written in one transaction; once
//! `append` returns, the batch survives the process being killed (kill -9): it is in the WAL,
//! which the next open replays. (A power cut may lose the last batches: `synchronous = NORMAL`.)
//! One row per batch rather than per event: the per-row cost dominated (measured:
//! docs/performance.md); queries go to history tables, never to the journal.
//!
//! Checkpoints (copying the WAL back into the database file, with its fsync) run on a thread of
//! their own with its own connection, so an append never waits for one: SQLite's automatic
//! checkpoint would run inside the commit of whichever append crossed the threshold.

use crate::core::Stamped;
use crossbeam_channel::{RecvTimeoutError, Sender};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite refused.
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A stored event could not be read back.
    #[error("journal {path}: event {seq} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// An append out of sequence.
    #[error("journal {path}: event {seq} appended after {last}: events must come in sequence")]
    OutOfSequence {
        /// The file.
        path: PathBuf,
        /// The event's sequence number.
        seq: u64,
        /// The last stored.
        last: u64,
    },
}

/// WAL bytes written between two nudges of the checkpointer.
const CHECKPOINT_EVERY_BYTES: usize = 4 << 20;
/// The checkpointer also runs this often when appends are few.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(2);

/// The journal file.
pub struct Journal {
    path: PathBuf,
    conn: Connection,
    last: u64,
    /// Reused serialisation buffer.
    buffer: Vec<u8>,
    checkpointer: Option<Checkpointer>,
}

/// The thread that checkpoints the WAL in the background.
struct Checkpointer {
    nudge: Sender<()>,
    written: usize,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts it on its own connection; `None` (automatic checkpoints stay on) if that fails.
    fn start(path: &Path) -> Option<Self> {
        let conn = Connection::open(path).ok()?;
        let (nudge, nudged) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || {
                loop {
                    let stop = matches!(
                        nudged.recv_timeout(CHECKPOINT_IDLE),
                        Err(RecvTimeoutError::Disconnected)
                    );
                    // PASSIVE: never blocks the writer; what it cannot copy now, it copies next time.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!("journal checkpoint: {e}");
                    }
                    if stop {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            nudge,
            written: 0,
            thread: Some(thread),
        })
    }

    fn wrote(&mut self, bytes: usize) {
        self.written += bytes;
        if self.written >= CHECKPOINT_EVERY_BYTES {
            self.written = 0;
            // Full: a nudge is already waiting.
            let _ = self.nudge.try_send(());
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(mut checkpointer) = self.checkpointer.take() {
            drop(checkpointer.nudge);
            if let Some(thread) = checkpointer.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("last", &self.last)
            .finish()
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let err = |source| StorageError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS journal (
                first_seq INTEGER PRIMARY KEY,
                last_seq  INTEGER NOT NULL,
                events    TEXT NOT NULL
            );",
        )
        .map_err(err)?;
        let checkpointer = Checkpointer::start(path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(err)?;
        }
        let last: u64 = conn
            .query_row(
                "SELECT COALESCE(MAX(last_seq), 0) FROM journal",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(err)? as u64;
        Ok(Journal {
            path: path.to_path_buf(),
            conn,
            last,
            buffer: Vec::new(),
            checkpointer,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last stored sequence number (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.last
    }

    /// Appends a batch in one transaction.
    pub fn append(&mut self, events: &[Stamped]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let err = |source| StorageError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut last = self.last;
        for stamped in events {
            if stamped.seq != last + 1 {
                return Err(StorageError::OutOfSequence {
                    path: path.clone(),
                    seq: stamped.seq,
                    last,
                });
            }
            last = stamped.seq;
        }
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, events).map_err(|e| StorageError::Corrupt {
            path: path.clone(),
            seq: events[0].seq,
            reason: format!("cannot be encoded: {e}"),
        })?;
        // serde_json writes UTF-8 only.
        let json = std::str::from_utf8(&self.buffer).unwrap_or_default();
        let first = events[0].seq as i64;
        let tx = self.conn.transaction().map_err(err)?;
        tx.prepare_cached("INSERT INTO journal (first_seq, last_seq, events) VALUES (?1, ?2, ?3)")
            .and_then(|mut insert| insert.execute(params![first, last as i64, json]))
            .map_err(err)?;
        tx.commit().map_err(err)?;
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.wrote(self.buffer.len());
        }
        self.last = events.last().map_or(self.last, |e| e.seq);
        Ok(())
    }

    /// Every stored event, in sequence.
    pub fn load(&self) -> Result<Vec<Stamped>, StorageError> {
        let err = |source| StorageError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let mut select = self
            .conn
            .prepare("SELECT first_seq, events FROM journal ORDER BY first_seq")
            .map_err(err)?;
        let rows = select
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(err)?;
        let mut events: Vec<Stamped> = Vec::new();
        for row in rows {
            let (first, json) = row.map_err(err)?;
            let batch: Vec<Stamped> =
                serde_json::from_str(&json).map_err(|e| StorageError::Corrupt {
                    path: self.path.clone(),
                    seq: first as u64,
                    reason: e.to_string(),
                })?;
            events.extend(batch);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CoreEvent;

    fn event(seq: u64) -> Stamped {
        Stamped {
            seq,
            at: 1000 + seq,
            event: CoreEvent::DndChanged {
                agent: "ann".into(),
                on: seq % 2 == 0,
            },
        }
    }

    #[test]
    fn appended_batches_are_read_back_in_sequence_after_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite3");
        let mut journal = Journal::open(&path).expect("open");
        journal.append(&[event(1), event(2)]).expect("append");
        journal.append(&[event(3)]).expect("append");
        drop(journal);
        let journal = Journal::open(&path).expect("reopen");
        assert_eq!(journal.last_seq(), 3);
        assert_eq!(
            journal.load().expect("load"),
            vec![event(1), event(2), event(3)]
        );
    }

    #[test]
    fn an_out_of_sequence_batch_is_refused_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut journal = Journal::open(&dir.path().join("j.sqlite3")).expect("open");
        journal.append(&[event(1)]).expect("append");
        let err = journal.append(&[event(2), event(4)]).unwrap_err();
        assert!(
            err.to_string().contains("event 4 appended after 2"),
            "{err}"
        );
        assert_eq!(
            journal.load().expect("load").len(),
            1,
            "the whole batch was rolled back"
        );
    }

    /// The child side of the kill -9 test: appends until killed, printing each acknowledged seq.
    #[test]
    #[ignore = "run by journal_survives_kill_9"]
    fn journal_kill_9_child() {
        let Some(path) = std::env::var_os("AGENTDESK_JOURNAL_CHILD") else {
            return;
        };
        let mut journal = Journal::open(Path::new(&path)).expect("open");
        let mut seq = journal.last_seq();
        loop {
            let batch: Vec<Stamped> = (1..=5).map(|n| event(seq + n)).collect();
            journal.append(&batch).expect("append");
            seq += 5;
            println!("acked {seq}");
        }
    }

    #[test]
    fn every_acknowledged_event_survives_kill_9() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite3");
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "storage::journal::tests::journal_kill_9_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AGENTDESK_JOURNAL_CHILD", &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut acked = 0u64;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(n) = line.strip_prefix("acked ") {
                acked = n.trim().parse().expect("number");
                if acked >= 500 {
                    break;
                }
            }
        }
        assert!(
            acked >= 500,
            "the child acknowledged only {acked} events before stopping"
        );
        // SIGKILL: no destructor, no checkpoint, no clean close.
        child.kill().expect("kill -9");
        let _ = child.wait();
        let journal = Journal::open(&path).expect("reopen after kill");
        let events = journal.load().expect("load");
        assert!(
            events.len() as u64 >= acked,
            "acknowledged {acked}, found {}",
            events.len()
        );
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1),
            "a gap in the journal"
        );
    }
}
