//! The journal: every core event, in sequence, in one SQLite file in WAL mode. A batch (one group
//! commit) is one row holding its events as JSON, written in one transaction; once
//! `append` returns, the batch survives the process being killed (kill -9): it is in the WAL,
//! which the next open replays. (A power cut may lose the last batches: `synchronous = NORMAL`.)
//! One row per batch rather than per event: the per-row cost dominated (measured:
//! docs/performance.md); queries go to history tables, never to the journal.
//!
//! Every row carries the number of the format its events are written in (`format`, see
//! [`format`]): old rows are upgraded as they are read, rows from a newer agentdesk are an error.
//! The table layout itself has numbered migrations (`SCHEMA`). Snapshots of the core state, which
//! spare start-up most of the replay, live in a file of their own (`storage::snapshots`).
//!
//! Checkpoints (copying the WAL back into the database file, with its fsync) run on a thread of
//! their own with its own connection, so an append never waits for one: SQLite's automatic
//! checkpoint would run inside the commit of whichever append crossed the threshold.

pub mod format;

use crate::core::Stamped;
use crate::storage::migrations::{self, Migration, MigrationError, VersionStore};
use crossbeam_channel::{RecvTimeoutError, Sender};
use format::FormatError;
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
    /// The file's journal schema could not be brought up to date (or is newer than this code).
    #[error("journal {path}: {source}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Why.
        source: MigrationError,
    },
    /// A newer agentdesk wrote rows in a format this one cannot read.
    #[error(
        "journal {path}: a newer agentdesk wrote rows in format {found}; this one reads formats \
         up to {}: upgrade agentdesk",
        format::CURRENT
    )]
    FutureFormat {
        /// The file.
        path: PathBuf,
        /// The newest format in the file.
        found: u32,
    },
    /// A stored row could not be read back.
    #[error("journal {path}: the row from event {seq} is unreadable: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The row's first sequence number.
        seq: u64,
        /// Why.
        source: FormatError,
    },
    /// A batch could not be encoded.
    #[error("journal {path}: event {seq} cannot be encoded: {reason}")]
    Encode {
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

/// The journal's table layout, step by step (version in the table `journal_schema`).
const SCHEMA: [Migration; 2] = [
    Migration {
        to: 1,
        what: "the journal table (as every store before schema versions had it)",
        run: |tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS journal (
                    first_seq INTEGER PRIMARY KEY,
                    last_seq  INTEGER NOT NULL,
                    events    TEXT NOT NULL
                );",
            )
        },
    },
    Migration {
        to: 2,
        what: "row formats (rows so far are format 1)",
        run: |tx| {
            tx.execute_batch(
                "ALTER TABLE journal ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
                 CREATE TABLE journal_formats (format INTEGER PRIMARY KEY);
                 INSERT INTO journal_formats (format) VALUES (1);",
            )
        },
    },
];

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
    /// Opens (or creates) the journal at `path`, bringing its layout up to date. A file a newer
    /// agentdesk wrote (a newer layout or row format) is refused here, at start, with the reason.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let err = |source| StorageError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            // Opening names the real problem if the directory is truly missing.
            tracing::warn!("journal directory {}: {e}", dir.display());
        }
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        migrations::migrate(&mut conn, VersionStore::Table("journal_schema"), &SCHEMA).map_err(
            |source| StorageError::Schema {
                path: path.to_path_buf(),
                source,
            },
        )?;
        // Every format ever written into the file is listed, so a newer one is seen without
        // reading the rows.
        let newest: u32 = conn
            .query_row("SELECT MAX(format) FROM journal_formats", [], |r| {
                r.get::<_, Option<u32>>(0)
            })
            .map_err(err)?
            .unwrap_or(format::CURRENT);
        if newest > format::CURRENT {
            return Err(StorageError::FutureFormat {
                path: path.to_path_buf(),
                found: newest,
            });
        }
        conn.execute(
            "INSERT OR IGNORE INTO journal_formats (format) VALUES (?1)",
            [format::CURRENT],
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

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StorageError + '_ {
        move |source| StorageError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends a batch in one transaction, in the current row format.
    pub fn append(&mut self, events: &[Stamped]) -> Result<(), StorageError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut last = self.last;
        for stamped in events {
            if stamped.seq != last + 1 {
                return Err(StorageError::OutOfSequence {
                    path: self.path.clone(),
                    seq: stamped.seq,
                    last,
                });
            }
            last = stamped.seq;
        }
        self.buffer.clear();
        format::encode(events, &mut self.buffer).map_err(|e| StorageError::Encode {
            path: self.path.clone(),
            seq: first.seq,
            reason: e.to_string(),
        })?;
        let path = self.path.clone();
        let err = |source| StorageError::Sqlite {
            path: path.clone(),
            source,
        };
        // serde_json writes UTF-8 only.
        let json = std::str::from_utf8(&self.buffer).map_err(|e| StorageError::Encode {
            path: path.clone(),
            seq: first.seq,
            reason: e.to_string(),
        })?;
        let tx = self.conn.transaction().map_err(err)?;
        tx.prepare_cached(
            "INSERT INTO journal (first_seq, last_seq, events, format) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                first.seq as i64,
                last as i64,
                json,
                format::CURRENT
            ])
        })
        .map_err(err)?;
        tx.commit().map_err(err)?;
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.wrote(self.buffer.len());
        }
        self.last = last;
        Ok(())
    }

    /// Every stored event, in sequence.
    pub fn load(&self) -> Result<Vec<Stamped>, StorageError> {
        let mut events = Vec::new();
        self.for_each_after(0, |stamped| events.push(stamped))?;
        Ok(events)
    }

    /// Calls `each` with every stored event after sequence number `after`, in sequence, decoding
    /// one row at a time (a long journal is never held in memory whole). Returns how many.
    pub fn for_each_after(
        &self,
        after: u64,
        mut each: impl FnMut(Stamped),
    ) -> Result<u64, StorageError> {
        // The row holding event `after + 1` starts at the greatest first_seq not above it.
        let mut select = self
            .conn
            .prepare(
                "SELECT first_seq, format, events FROM journal
                 WHERE first_seq >= COALESCE(
                     (SELECT MAX(first_seq) FROM journal WHERE first_seq <= ?1), 0)
                 ORDER BY first_seq",
            )
            .map_err(self.sqlite())?;
        let mut rows = select
            .query([after.saturating_add(1) as i64])
            .map_err(self.sqlite())?;
        let mut count = 0;
        let mut expected = after + 1;
        while let Some(row) = rows.next().map_err(self.sqlite())? {
            let first = row.get::<_, i64>(0).map_err(self.sqlite())? as u64;
            let format = row.get::<_, u32>(1).map_err(self.sqlite())?;
            let text = row.get_ref(2).map_err(self.sqlite())?;
            let text = text.as_str().map_err(|e| StorageError::Format {
                path: self.path.clone(),
                seq: first,
                source: FormatError::Undecodable {
                    format,
                    reason: e.to_string(),
                },
            })?;
            let batch = format::decode(format, first, text).map_err(|source| match source {
                FormatError::Future { found } => StorageError::FutureFormat {
                    path: self.path.clone(),
                    found,
                },
                source => StorageError::Format {
                    path: self.path.clone(),
                    seq: first,
                    source,
                },
            })?;
            for stamped in batch.into_iter().filter(|s| s.seq > after) {
                if stamped.seq != expected {
                    return Err(StorageError::Format {
                        path: self.path.clone(),
                        seq: first,
                        source: FormatError::Undecodable {
                            format,
                            reason: format!("event {} where {expected} was due", stamped.seq),
                        },
                    });
                }
                expected += 1;
                count += 1;
                each(stamped);
            }
        }
        Ok(count)
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

    /// A journal file exactly as agentdesk wrote it before row formats and schema versions.
    fn old_journal(path: &Path, rows: &[(u64, u64, &str)]) {
        let conn = Connection::open(path).expect("old file");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE journal (
                first_seq INTEGER PRIMARY KEY,
                last_seq  INTEGER NOT NULL,
                events    TEXT NOT NULL
             );",
        )
        .expect("old table");
        for (first, last, json) in rows {
            conn.execute(
                "INSERT INTO journal (first_seq, last_seq, events) VALUES (?1, ?2, ?3)",
                params![*first as i64, *last as i64, json],
            )
            .expect("old row");
        }
    }

    #[test]
    fn a_journal_written_before_row_formats_is_read_and_appended_to() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite3");
        let v1 = serde_json::to_string(&[event(1), event(2)]).expect("old shape");
        old_journal(&path, &[(1, 2, &v1)]);
        let mut journal = Journal::open(&path).expect("migrated");
        assert_eq!(journal.last_seq(), 2);
        journal.append(&[event(3)]).expect("append in format 2");
        drop(journal);
        let journal = Journal::open(&path).expect("reopen");
        assert_eq!(
            journal.load().expect("load"),
            vec![event(1), event(2), event(3)]
        );
        let formats: Vec<u32> = journal
            .conn
            .prepare("SELECT format FROM journal ORDER BY first_seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("formats");
        assert_eq!(formats, vec![1, format::CURRENT]);
    }

    #[test]
    fn rows_of_a_newer_format_refuse_the_journal_at_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite3");
        let mut journal = Journal::open(&path).expect("open");
        journal.append(&[event(1)]).expect("append");
        // What a newer agentdesk writing format CURRENT + 1 leaves behind.
        journal
            .conn
            .execute_batch(&format!(
                "INSERT INTO journal_formats (format) VALUES ({0});
                 INSERT INTO journal (first_seq, last_seq, events, format) VALUES (2, 2, '?', {0});",
                format::CURRENT + 1
            ))
            .expect("newer rows");
        drop(journal);
        let err = Journal::open(&path).unwrap_err();
        assert!(
            matches!(err, StorageError::FutureFormat { found, .. } if found == format::CURRENT + 1),
            "{err}"
        );
        assert!(err.to_string().contains("upgrade agentdesk"), "{err}");
    }

    #[test]
    fn a_journal_layout_from_a_newer_agentdesk_is_refused_at_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite3");
        drop(Journal::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("file");
        conn.execute("UPDATE journal_schema SET version = 99", [])
            .expect("newer layout");
        drop(conn);
        let err = Journal::open(&path).unwrap_err();
        assert!(
            matches!(
                &err,
                StorageError::Schema {
                    source: MigrationError::Future { found: 99, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn reading_after_a_sequence_number_starts_inside_the_row_that_holds_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut journal = Journal::open(&dir.path().join("j.sqlite3")).expect("open");
        journal
            .append(&(1..=4).map(event).collect::<Vec<_>>())
            .expect("append");
        journal
            .append(&(5..=9).map(event).collect::<Vec<_>>())
            .expect("append");
        for after in [0, 3, 4, 5, 9] {
            let mut seen = Vec::new();
            let n = journal
                .for_each_after(after, |s| seen.push(s.seq))
                .expect("read");
            assert_eq!(seen, (after + 1..=9).collect::<Vec<_>>(), "after {after}");
            assert_eq!(n, 9 - after);
        }
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
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite3");
        let acked = crate::kill9::kill_after_acks(
            "storage::journal::tests::journal_kill_9_child",
            "AGENTDESK_JOURNAL_CHILD",
            &path,
            500,
        );
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
