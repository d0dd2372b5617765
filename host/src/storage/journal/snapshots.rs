//! Snapshots of the core state in the journal's file: opaque bytes (the core encodes them, with
//! their own format number) under the sequence number of the last event they include, with a
//! SHA-256 checksum. Written in one transaction each, so a kill -9 mid-write leaves the previous
//! snapshots and every journaled event as they were. Only storage here; what a snapshot holds is
//! `core::snapshot`'s business.

use super::{Journal, StorageError};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

/// How many snapshots are kept: the newest, and older ones to fall back to if it is damaged.
pub const KEEP: usize = 2;

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

fn checksum(format: u32, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(format.to_le_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

impl Journal {
    /// Stores a snapshot of the state after event `seq` (which must be journaled already) and
    /// forgets all but the newest [`KEEP`].
    pub fn save_snapshot(
        &mut self,
        seq: u64,
        format: u32,
        body: &[u8],
    ) -> Result<(), StorageError> {
        if seq > self.last {
            return Err(StorageError::Snapshot {
                path: self.path.clone(),
                seq,
                reason: format!("the journal ends at event {}", self.last),
            });
        }
        let path = self.path.clone();
        let err = |source| StorageError::Sqlite {
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
    pub fn snapshot_seqs(&self) -> Result<Vec<u64>, StorageError> {
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

    /// Reads the snapshot at `seq`, refusing it if its checksum does not match or it claims
    /// events the journal does not hold.
    pub fn read_snapshot(&self, seq: u64) -> Result<StoredSnapshot, StorageError> {
        let damaged = |reason: String| StorageError::Snapshot {
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
        if seq > self.last {
            return Err(damaged(format!(
                "it includes events up to {seq} but the journal ends at {}",
                self.last
            )));
        }
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
    use crate::core::{CoreEvent, Stamped};

    fn events(from: u64, to: u64) -> Vec<Stamped> {
        (from..=to)
            .map(|seq| Stamped {
                seq,
                at: seq,
                event: CoreEvent::AgentLoggedIn {
                    agent: "ann".into(),
                },
            })
            .collect()
    }

    #[test]
    fn the_newest_snapshots_are_kept_and_read_back_checked() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("j.sqlite3");
        let mut journal = Journal::open(&path).expect("open");
        journal.append(&events(1, 30)).expect("append");
        for seq in [10, 20, 30] {
            journal
                .save_snapshot(seq, 1, format!("state {seq}").as_bytes())
                .expect("save");
        }
        assert_eq!(journal.snapshot_seqs().expect("seqs"), vec![30, 20]);
        let read = journal.read_snapshot(30).expect("read");
        assert_eq!(read.body, b"state 30");
        let err = journal.save_snapshot(31, 1, b"ahead").unwrap_err();
        assert!(
            err.to_string().contains("journal ends at event 30"),
            "{err}"
        );
    }

    #[test]
    fn a_snapshot_whose_bytes_changed_on_disk_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("j.sqlite3");
        let mut journal = Journal::open(&path).expect("open");
        journal.append(&events(1, 5)).expect("append");
        journal.save_snapshot(5, 1, b"state").expect("save");
        journal
            .conn
            .execute("UPDATE snapshots SET body = X'7374617465FF'", [])
            .expect("damage");
        let err = journal.read_snapshot(5).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
