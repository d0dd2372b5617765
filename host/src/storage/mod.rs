//! Embedded storage in one SQLite file (WAL): the core's journal, and the history and contact
//! directory derived from it. Only persistence lives here; the rules are the core's business.

pub mod history;
pub mod journal;
mod migrations;
pub mod snapshots;
pub use migrations::MigrationError;

pub use history::{History, HistoryError, MessageMark, TranscriptLine};
pub use journal::{Journal, StorageError};
pub use snapshots::{SnapshotError, SnapshotStore};
