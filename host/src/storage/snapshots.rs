//! Snapshots of the core state, in a SQLite file of their own beside the journal
//! (`<journal>.snapshots.sqlite3`): opaque bytes (the core encodes them, with their own format
//! number) under the sequence number of the last journal event they include, with a SHA-256
//! checksum. Each is written in one transaction, so a kill -9 mid-write leaves the older ones as
//! they were; the journal never depends on them. Only storage here; what a snapshot holds is
//! `core::engine::state_snapshot`'s business.
//!
//! A file of its own rather than a table in the journal's: a snapshot of a long-running hub is
//! tens of MB (63 MB measured for 10 million events, docs/performance.md), and writing it in the
//! journal's file would hold SQLite's single write lock, and so every journal append, for as long.

use crate::storage::migrations::{self, Migration, MigrationError, VersionStore};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// How many snapshots are kept: the newest, and an older one to fall back to if it is damaged.
pub const KEEP: usize = 2;

/// The file's schema (version in `PRAGMA user_version`: this file holds nothing else).
const SCHEMA: [Migration; 1] = [Migration {
    to: 1,
    what: "snapshots",
    run: |tx| {
        tx.execute_batch(
            "CREATE TABLE snapshots (
                seq      INTEGER PRIMARY KEY,
                format   INTEGER NOT NULL,
                checksum TEXT NOT NULL,
                body     BLOB NOT NULL
             );",
        )
    },
}];

/// A failure of the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// SQLite refused.
    #[error("snapshots {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The schema is newer than this code, or could not be migrated.
    #[error("snapshots {path}: {source}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Why.
        source: MigrationError,
    },
    /// The snapshot's bytes are not the ones written, or it does not exist.
    #[error("snapshots {path}: snapshot at event {seq}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The snapshot.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// A snapshot read back, its checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The last journal event it includes.
    pub seq: u64,
    /// The format its body is encoded in (the core's snapshot format).
    pub format: u32,
    /// The encoded state.
    pub body: Vec<u8>,
}

/// The snapshot file.
pub struct SnapshotStore {
    path: PathBuf,
    conn: Connection,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("path", &self.path)
            .finish()
    }
}

fn checksum(format: u32, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(format.to_le_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

impl SnapshotStore {
    /// Where the snapshots of the journal at `journal` live.
    pub fn beside(journal: &Path) -> PathBuf {
        journal.with_extension("snapshots.sqlite3")
    }

    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, SnapshotError> {
        let err = |source| SnapshotError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        migrations::migrate(&mut conn, VersionStore::UserVersion, &SCHEMA).map_err(|source| {
            SnapshotError::Schema {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(SnapshotStore {
            path: path.to_path_buf(),
            conn,
        })
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> SnapshotError + '_ {
        move |source| SnapshotError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores a snapshot of the state after journal event `seq` (the caller has journaled it)
    /// and forgets all but the newest [`KEEP`].
    pub fn save(&mut self, seq: u64, format: u32, body: &[u8]) -> Result<(), SnapshotError> {
        let path = self.path.clone();
        let err = |source| SnapshotError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshots (seq, format, checksum, body) VALUES (?1, ?2, ?3, ?4)",
            params![seq as i64, format, checksum(format, body), body],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM snapshots WHERE seq NOT IN
                 (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?1)",
            [KEEP as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The sequence numbers of the stored snapshots, newest first.
    pub fn seqs(&self) -> Result<Vec<u64>, SnapshotError> {
        let mut select = self
            .conn
            .prepare("SELECT seq FROM snapshots ORDER BY seq DESC")
            .map_err(self.sqlite())?;
        let seqs = select
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(self.sqlite())?
            .map(|s| s.map(|s| s as u64))
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sqlite())?;
        Ok(seqs)
    }

    /// Reads the snapshot at `seq`, refusing it if its checksum does not match.
    pub fn read(&self, seq: u64) -> Result<StoredSnapshot, SnapshotError> {
        let damaged = |reason: String| SnapshotError::Damaged {
            path: self.path.clone(),
            seq,
            reason,
        };
        let row = self
            .conn
            .query_row(
                "SELECT format, checksum, body FROM snapshots WHERE seq = ?1",
                [seq as i64],
                |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sqlite())?;
        let Some((format, stored, body)) = row else {
            return Err(damaged("no such snapshot".into()));
        };
        let actual = checksum(format, &body);
        if actual != stored {
            return Err(damaged(format!(
                "checksum {actual} does not match the stored {stored}"
            )));
        }
        Ok(StoredSnapshot { seq, format, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_snapshots_are_kept_and_read_back_checked() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = SnapshotStore::beside(&dir.path().join("agentdesk.sqlite3"));
        assert!(path.ends_with("agentdesk.snapshots.sqlite3"), "{path:?}");
        let mut store = SnapshotStore::open(&path).expect("open");
        for seq in [10, 20, 30] {
            store
                .save(seq, 1, format!("state {seq}").as_bytes())
                .expect("save");
        }
        drop(store);
        let store = SnapshotStore::open(&path).expect("reopen");
        assert_eq!(store.seqs().expect("seqs"), vec![30, 20]);
        assert_eq!(store.read(30).expect("read").body, b"state 30");
    }

    #[test]
    fn a_snapshot_whose_bytes_changed_on_disk_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut store = SnapshotStore::open(&dir.path().join("s.sqlite3")).expect("open");
        store.save(5, 1, b"state").expect("save");
        store
            .conn
            .execute("UPDATE snapshots SET body = X'7374617465FF'", [])
            .expect("damage");
        let err = store.read(5).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
