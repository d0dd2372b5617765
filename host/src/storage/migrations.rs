//! Numbered schema migrations for the embedded store: each step runs once, in its own
//! transaction together with the new version number. No table definitions here (their owners
//! hold them); only the bookkeeping.
//!
//! The journal and the history share one SQLite file, which has one `PRAGMA user_version`: the
//! history (the schema with the most steps) keeps its version there, the journal in a one-row
//! table of its own (`VersionStore::Table`).

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

/// One step: from `to - 1` to `to`.
pub(crate) struct Migration {
    /// The version after this step.
    pub to: u32,
    /// What the step does.
    pub what: &'static str,
    /// The step itself.
    pub run: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// Where a schema keeps its version number.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VersionStore {
    /// `PRAGMA user_version` of the file.
    UserVersion,
    /// A one-row table `<name>(version INTEGER NOT NULL)`.
    Table(&'static str),
}

/// A migration failure.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer agentdesk.
    #[error(
        "schema version {found} is newer than this agentdesk knows (up to {known}): upgrade agentdesk"
    )]
    Future {
        /// The file's version.
        found: u32,
        /// The newest this code knows.
        known: u32,
    },
    /// SQLite refused a step.
    #[error("migration to schema version {to} ({what}): {source}")]
    Step {
        /// The step's version.
        to: u32,
        /// What it does.
        what: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// The version could not be read or written.
    #[error("schema version: {0}")]
    Version(#[from] rusqlite::Error),
}

fn read(tx: &Transaction<'_>, store: VersionStore) -> rusqlite::Result<u32> {
    match store {
        VersionStore::UserVersion => tx.query_row("PRAGMA user_version", [], |r| r.get(0)),
        VersionStore::Table(name) => {
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {name} (version INTEGER NOT NULL)"
            ))?;
            Ok(tx
                .query_row(&format!("SELECT version FROM {name}"), [], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        }
    }
}

fn write(tx: &Transaction<'_>, store: VersionStore, version: u32) -> rusqlite::Result<()> {
    match store {
        VersionStore::UserVersion => tx.pragma_update(None, "user_version", version),
        VersionStore::Table(name) => tx.execute_batch(&format!(
            "DELETE FROM {name}; INSERT INTO {name} (version) VALUES ({version});"
        )),
    }
}

/// Brings the schema to the last step's version; returns the version found before.
/// `migrations` must be numbered 1, 2, 3... in order.
pub(crate) fn migrate(
    conn: &mut Connection,
    store: VersionStore,
    migrations: &[Migration],
) -> Result<u32, MigrationError> {
    let known = migrations.last().map_or(0, |m| m.to);
    // IMMEDIATE: two openers of one file (the journal and the history) never migrate at once.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = read(&tx, store)?;
    if found > known {
        return Err(MigrationError::Future { found, known });
    }
    for step in migrations.iter().filter(|m| m.to > found) {
        (step.run)(&tx).map_err(|source| MigrationError::Step {
            to: step.to,
            what: step.what,
            source,
        })?;
        write(&tx, store, step.to)?;
        tracing::info!("schema migrated to version {}: {}", step.to, step.what);
    }
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Migration; 2] = [
        Migration {
            to: 1,
            what: "a table",
            run: |tx| tx.execute_batch("CREATE TABLE t (a INTEGER)"),
        },
        Migration {
            to: 2,
            what: "a column",
            run: |tx| tx.execute_batch("ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 7"),
        },
    ];

    #[test]
    fn each_step_runs_once_and_a_newer_file_is_refused() {
        for store in [VersionStore::UserVersion, VersionStore::Table("t_schema")] {
            let mut conn = Connection::open_in_memory().expect("db");
            assert_eq!(migrate(&mut conn, store, &STEPS[..1]).expect("v1"), 0);
            conn.execute("INSERT INTO t (a) VALUES (1)", [])
                .expect("row");
            assert_eq!(migrate(&mut conn, store, &STEPS).expect("v2"), 1);
            assert_eq!(migrate(&mut conn, store, &STEPS).expect("again"), 2);
            let b: i64 = conn
                .query_row("SELECT b FROM t", [], |r| r.get(0))
                .expect("migrated row");
            assert_eq!(b, 7);
            let err = migrate(&mut conn, store, &STEPS[..1]).unwrap_err();
            assert!(
                matches!(err, MigrationError::Future { found: 2, known: 1 }),
                "{err}"
            );
        }
    }

    #[test]
    fn a_failing_step_leaves_the_version_where_it_was() {
        let mut conn = Connection::open_in_memory().expect("db");
        let broken = [Migration {
            to: 1,
            what: "broken",
            run: |tx| tx.execute_batch("ALTER TABLE missing ADD COLUMN x"),
        }];
        let err = migrate(&mut conn, VersionStore::UserVersion, &broken).unwrap_err();
        assert!(matches!(err, MigrationError::Step { to: 1, .. }), "{err}");
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, 0);
    }
}
