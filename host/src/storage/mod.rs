//! Embedded storage: the core's journal in one SQLite file (WAL). Only persistence lives here;
//! what the events mean is the core's business.

pub mod journal;

pub use journal::{Journal, StorageError};
