//! The history store's schema, as numbered migrations (version in `PRAGMA user_version`). A new
//! table, column or index is a new step at the end; a step never changes once released.

use crate::storage::migrations::{self, Migration, MigrationError, VersionStore};
use rusqlite::{Connection, Transaction};

/// Every step, in order.
const STEPS: [Migration; 2] = [
    Migration {
        to: 1,
        what: "the tables (and adopting a store from before schema versions)",
        run: adopt,
    },
    Migration {
        to: 2,
        what: "interactions indexed by arrival (search lists newest first)",
        run: |tx| {
            tx.execute_batch(
                "CREATE INDEX interactions_by_arrival ON interactions (arrived_at DESC, key DESC);",
            )
        },
    },
];

/// The newest version this code knows.
#[cfg(test)]
pub(super) const LATEST: u32 = STEPS.len() as u32;

/// Brings the store at `conn` up to date.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, MigrationError> {
    migrations::migrate(conn, VersionStore::UserVersion, &STEPS)
}

/// Version 1: the tables as they were when versions began. Stores from before then (version 0)
/// may lack some of them, or have older shapes, which this step recognises — the only place the
/// schema is probed; every later change is a numbered step.
fn adopt(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
         CREATE TABLE IF NOT EXISTS contact_addresses (
             key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, contact_id INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS contact_addresses_by_contact ON contact_addresses (contact_id);
         CREATE TABLE IF NOT EXISTS interactions (
             key INTEGER PRIMARY KEY, plugin TEXT NOT NULL, channel TEXT NOT NULL,
             contact_id INTEGER, subject TEXT, arrived_at INTEGER NOT NULL, agent TEXT,
             outcome TEXT NOT NULL DEFAULT '', wrap_up TEXT, handling_ms INTEGER);
         CREATE INDEX IF NOT EXISTS interactions_by_contact ON interactions (contact_id);
         CREATE VIRTUAL TABLE IF NOT EXISTS messages USING fts5(key UNINDEXED, at UNINDEXED, party UNINDEXED, text);
         CREATE TABLE IF NOT EXISTS details (key INTEGER PRIMARY KEY, json TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS message_marks (
             key INTEGER NOT NULL, id TEXT NOT NULL, digest TEXT NOT NULL,
             PRIMARY KEY (key, id, digest)) WITHOUT ROWID;",
    )?;
    // Stores from before content digests were kept: their ids carry the empty digest, which
    // matches any content (`Details::sight`).
    let ids_only: bool = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'message_ids'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    if ids_only {
        tx.execute_batch(
            "INSERT OR IGNORE INTO message_marks (key, id, digest) SELECT key, id, '' FROM message_ids;
             DROP TABLE message_ids;",
        )?;
    }
    // Stores created before handling time was kept.
    let has_handling: bool = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('interactions') WHERE name = 'handling_ms'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    if !has_handling {
        tx.execute_batch("ALTER TABLE interactions ADD COLUMN handling_ms INTEGER;")?;
    }
    Ok(())
}
