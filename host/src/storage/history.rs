//! History and contacts in the embedded store: one row per interaction (who, when, outcome,
//! wrap-up), transcripts with full-text search, and the contact directory that links
//! interactions by address. Nothing of a never-saved channel (internal IM, as its plugin's hello
//! declares) is written here: no row, no contact, no text.
//!
//! Over 600 lines: a third of it is tests (among them stores of every earlier shape, migrated);
//! the schema's steps live in `history/schema.rs`. Splitting the contact directory from the
//! interaction history is the next cut if it grows.

use crate::contacts::address_key;
use crate::core::{CoreEvent, InteractionKey, Millis, Stamped};
use plugin_api::{Address, Contact};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod schema;

/// A contact's id in the directory.
pub type ContactId = i64;

/// A contact as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// Its id.
    pub id: ContactId,
    /// Display name (may be empty).
    pub name: String,
    /// Every known address.
    pub addresses: Vec<Address>,
}

/// One interaction in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The core's key.
    pub key: InteractionKey,
    /// Channel kind.
    pub channel: String,
    /// The contact, when known.
    pub contact: Option<ContactId>,
    /// Subject.
    pub subject: Option<String>,
    /// Arrival.
    pub arrived_at: Millis,
    /// The agent who handled it last.
    pub agent: Option<String>,
    /// `done`, `ended`, `abandoned`, `rejected`, `forwarded`, or empty while open.
    pub outcome: String,
    /// Wrap-up code.
    pub wrap_up: Option<String>,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// When.
    pub at: Millis,
    /// Who (display name).
    pub party: String,
    /// What was written.
    pub text: String,
}

/// A failure of the history store.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// SQLite refused.
    #[error("history {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date (or is newer than this agentdesk).
    #[error("history {path}: {source}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::storage::MigrationError,
    },
}

/// How a plugin message is recognised when it is sent again: its id and a digest of its content.
#[derive(Debug, Clone, Copy)]
pub struct MessageMark<'a> {
    /// The plugin's message id.
    pub id: &'a str,
    /// The digest of its content (`service::detail::content_digest`).
    pub digest: &'a str,
}

/// The history and contact store.
pub struct History {
    path: PathBuf,
    conn: Connection,
    /// Channels whose interactions are never saved (`Policy::never_saved`).
    never_saved: BTreeSet<String>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("path", &self.path).finish()
    }
}

impl History {
    /// Opens (or creates) the store at `path` (it may be the journal's file).
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let err = |source| HistoryError::Sqlite {
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
        schema::migrate(&mut conn).map_err(|source| HistoryError::Schema {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(History {
            path: path.to_path_buf(),
            conn,
            never_saved: BTreeSet::new(),
        })
    }

    /// Declares channels whose interactions this store must never hold (internal IM): their
    /// arrivals are not listed, their contacts not linked, their messages refused.
    pub fn never_save(&mut self, channels: impl IntoIterator<Item = String>) {
        self.never_saved.extend(channels);
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        move |source| HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Records what a batch of core events means for the history (before `Core::compact`).
    pub fn record(&mut self, events: &[Stamped]) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let err = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for stamped in events {
            let outcome = |key: &InteractionKey, outcome: &str| {
                tx.execute(
                    "UPDATE interactions SET outcome = ?2 WHERE key = ?1",
                    params![*key as i64, outcome],
                )
            };
            match &stamped.event {
                CoreEvent::InteractionArrived {
                    key,
                    plugin,
                    channel,
                    contact,
                    subject,
                    ..
                } => {
                    if self.never_saved.contains(channel) {
                        continue;
                    }
                    let contact_id = resolve_contact(&tx, contact).map_err(err)?;
                    tx.execute(
                        "INSERT OR IGNORE INTO interactions (key, plugin, channel, contact_id, subject, arrived_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![*key as i64, plugin, channel, contact_id, subject, stamped.at as i64],
                    )
                    .map_err(err)?;
                }
                CoreEvent::InteractionAccepted { key, agent } => {
                    tx.execute(
                        "UPDATE interactions SET agent = ?2 WHERE key = ?1",
                        params![*key as i64, agent],
                    )
                    .map_err(err)?;
                }
                CoreEvent::InteractionEnded { key, .. } => {
                    outcome(key, "ended").map_err(err)?;
                }
                CoreEvent::InteractionAbandoned { key } => {
                    outcome(key, "abandoned").map_err(err)?;
                }
                CoreEvent::InteractionRejected { key, .. } => {
                    outcome(key, "rejected").map_err(err)?;
                }
                CoreEvent::InteractionForwarded { key, .. } => {
                    outcome(key, "forwarded").map_err(err)?;
                }
                CoreEvent::InteractionWithdrawn { key, .. } => {
                    outcome(key, "withdrawn").map_err(err)?;
                }
                CoreEvent::InteractionDone { key, wrap_up, .. } => {
                    tx.execute(
                        "UPDATE interactions SET outcome = 'done', wrap_up = ?2 WHERE key = ?1",
                        params![*key as i64, wrap_up.as_ref().map(|w| w.code.clone())],
                    )
                    .map_err(err)?;
                }
                _ => {}
            }
        }
        tx.commit().map_err(err)
    }

    /// Stores what a plugin declared about an interaction (case data, actions, parties: JSON
    /// written by the service), replacing what was stored before.
    pub fn save_detail(&mut self, key: InteractionKey, json: &str) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "INSERT INTO details (key, json) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET json = excluded.json",
                params![key as i64, json],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// What `save_detail` stored for an interaction.
    pub fn detail(&self, key: InteractionKey) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row(
                "SELECT json FROM details WHERE key = ?1",
                params![key as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Stores the final handling time of closed interactions.
    pub fn set_handling(&mut self, times: &[(InteractionKey, Millis)]) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let err = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for (key, ms) in times {
            tx.execute(
                "UPDATE interactions SET handling_ms = ?2 WHERE key = ?1",
                params![*key as i64, *ms as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The stored handling time of an interaction (set when it closed).
    pub fn handling(&self, key: InteractionKey) -> Result<Option<Millis>, HistoryError> {
        self.conn
            .query_row(
                "SELECT handling_ms FROM interactions WHERE key = ?1",
                params![key as i64],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(|v| v.flatten().map(|ms| ms as Millis))
            .map_err(self.err())
    }

    /// Adds a transcript line to an interaction; says whether it was added. IM text is refused
    /// here, whoever asks. A line whose message id and content digest the interaction already
    /// has (a plugin that sent the message again after a restart) is not added twice; the same
    /// id with other content is another message.
    pub fn add_message(
        &mut self,
        key: InteractionKey,
        channel: &str,
        at: Millis,
        party: &str,
        text: &str,
        mark: Option<MessageMark<'_>>,
    ) -> Result<bool, HistoryError> {
        if self.never_saved.contains(channel) {
            return Ok(false);
        }
        let err = |source| HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        };
        // One transaction: a crash between the mark and the line would make the message look
        // stored when it is sent again.
        let tx = self.conn.transaction().map_err(err)?;
        if let Some(mark) = mark {
            let new = tx
                .execute(
                    "INSERT OR IGNORE INTO message_marks (key, id, digest) VALUES (?1, ?2, ?3)",
                    params![key as i64, mark.id, mark.digest],
                )
                .map_err(err)?;
            if new == 0 {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT INTO messages (key, at, party, text) VALUES (?1, ?2, ?3, ?4)",
            params![key as i64, at as i64, party, text],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// The (id, content digest) of every plugin message stored in an interaction's transcript.
    pub fn message_marks(
        &self,
        key: InteractionKey,
    ) -> Result<Vec<(String, String)>, HistoryError> {
        let mut select = self
            .conn
            .prepare("SELECT id, digest FROM message_marks WHERE key = ?1")
            .map_err(self.err())?;
        let rows = select
            .query_map(params![key as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// A page of an interaction's transcript, oldest first.
    pub fn transcript(
        &self,
        key: InteractionKey,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<TranscriptLine>, HistoryError> {
        let mut select = self
            .conn
            .prepare("SELECT at, party, text FROM messages WHERE key = ?1 ORDER BY rowid LIMIT ?2 OFFSET ?3")
            .map_err(self.err())?;
        let rows = select
            .query_map(params![key as i64, limit as i64, offset as i64], |r| {
                Ok(TranscriptLine {
                    at: r.get::<_, i64>(0)? as u64,
                    party: r.get(1)?,
                    text: r.get(2)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Interactions of a contact and/or whose transcript or subject matches `text` (full-text
    /// words), newest first.
    pub fn search(
        &self,
        contact: Option<ContactId>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, HistoryError> {
        let fts_query = text.map(|t| {
            t.split_whitespace()
                .map(|w| format!("\"{}\"", w.replace('"', "")))
                .collect::<Vec<_>>()
                .join(" ")
        });
        let mut select = self
            .conn
            .prepare(
                "SELECT key, channel, contact_id, subject, arrived_at, agent, outcome, wrap_up FROM interactions i
                 WHERE (?1 IS NULL OR contact_id = ?1)
                   AND (?2 IS NULL OR key IN (SELECT key FROM messages WHERE messages MATCH ?2)
                        OR subject LIKE '%' || ?3 || '%')
                 ORDER BY arrived_at DESC, key DESC LIMIT ?4",
            )
            .map_err(self.err())?;
        let rows = select
            .query_map(params![contact, fts_query, text, limit as i64], entry_of)
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The interactions `agent` handled last, newest first: of one channel and/or with one
    /// outcome (`done`, `ended`, ..., "" while open) when given.
    pub fn recent(
        &self,
        agent: &str,
        channel: Option<&str>,
        outcome: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, HistoryError> {
        let mut select = self
            .conn
            .prepare(
                "SELECT key, channel, contact_id, subject, arrived_at, agent, outcome, wrap_up FROM interactions
                 WHERE agent = ?1 AND (?2 IS NULL OR channel = ?2) AND (?3 IS NULL OR outcome = ?3)
                 ORDER BY arrived_at DESC, key DESC LIMIT ?4",
            )
            .map_err(self.err())?;
        let rows = select
            .query_map(params![agent, channel, outcome, limit as i64], entry_of)
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The contact an interaction is linked to.
    pub fn contact_of(&self, key: InteractionKey) -> Result<Option<ContactId>, HistoryError> {
        self.conn
            .query_row(
                "SELECT contact_id FROM interactions WHERE key = ?1",
                params![key as i64],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.err())
    }

    /// A contact with its addresses.
    pub fn contact(&self, id: ContactId) -> Result<Option<ContactRecord>, HistoryError> {
        let name: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM contacts WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        let Some(name) = name else { return Ok(None) };
        let mut select = self
            .conn
            .prepare("SELECT kind, value FROM contact_addresses WHERE contact_id = ?1 ORDER BY kind, value")
            .map_err(self.err())?;
        let addresses = select
            .query_map(params![id], |r| {
                Ok(Address::new(
                    &r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                ))
            })
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        Ok(Some(ContactRecord {
            id,
            name,
            addresses,
        }))
    }

    /// The contact that has `address`, if any.
    pub fn find_contact(&self, address: &Address) -> Result<Option<ContactId>, HistoryError> {
        let Some(key) = address_key(address) else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT contact_id FROM contact_addresses WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Creates or updates the contact with these addresses (merging contacts that share one).
    pub fn upsert_contact(&mut self, contact: &Contact) -> Result<Option<ContactId>, HistoryError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| HistoryError::Sqlite {
                path: path.clone(),
                source,
            })?;
        let id = resolve_contact(&tx, contact).map_err(|source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        })?;
        tx.commit()
            .map_err(|source| HistoryError::Sqlite { path, source })?;
        Ok(id)
    }

    /// An agent adds a number or address to a contact (merging another contact that had it).
    pub fn add_address(
        &mut self,
        id: ContactId,
        address: &Address,
    ) -> Result<ContactId, HistoryError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| HistoryError::Sqlite {
                path: path.clone(),
                source,
            })?;
        // Attach to `id` first so the merge keeps it.
        if let Some(key) = address_key(address) {
            let owner: Option<ContactId> = tx
                .query_row(
                    "SELECT contact_id FROM contact_addresses WHERE key = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|source| HistoryError::Sqlite {
                    path: path.clone(),
                    source,
                })?;
            if let Some(other) = owner.filter(|o| *o != id) {
                merge(&tx, id.min(other), id.max(other)).map_err(|source| {
                    HistoryError::Sqlite {
                        path: path.clone(),
                        source,
                    }
                })?;
            } else if owner.is_none() {
                tx.execute(
                    "INSERT INTO contact_addresses (key, kind, value, contact_id) VALUES (?1, ?2, ?3, ?4)",
                    params![key, address.kind, address.value.trim(), id],
                )
                .map_err(|source| HistoryError::Sqlite { path: path.clone(), source })?;
            }
        }
        tx.commit().map_err(|source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let kept = self.find_contact(address)?.unwrap_or(id);
        Ok(kept)
    }

    /// Imports contacts from CSV with a header naming `name`, `phone` and/or `email` columns
    /// (other columns are ignored; several numbers in one cell may be separated by `;`).
    /// Returns (rows imported, rows skipped with their line numbers and reasons).
    pub fn import_csv(&mut self, csv: &str) -> Result<(usize, Vec<String>), HistoryError> {
        let mut lines = csv
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Ok((0, Vec::new()));
        };
        let columns: Vec<String> = split_csv(header)
            .into_iter()
            .map(|c| c.trim().to_lowercase())
            .collect();
        let col = |name: &str| columns.iter().position(|c| c == name);
        let (name_col, phone_col, email_col) = (col("name"), col("phone"), col("email"));
        let mut imported = 0;
        let mut skipped = Vec::new();
        for (n, line) in lines {
            let cells = split_csv(line);
            let cell = |i: Option<usize>| {
                i.and_then(|i| cells.get(i))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_default()
            };
            let mut addresses = Vec::new();
            for phone in cell(phone_col).split(';').filter(|p| !p.trim().is_empty()) {
                addresses.push(Address::phone(phone.trim()));
            }
            for email in cell(email_col).split(';').filter(|e| !e.trim().is_empty()) {
                addresses.push(Address::email(email.trim()));
            }
            addresses.retain(|a| address_key(a).is_some());
            if addresses.is_empty() {
                skipped.push(format!("line {}: no phone or email", n + 1));
                continue;
            }
            let name = cell(name_col);
            self.upsert_contact(&Contact {
                display_name: (!name.is_empty()).then_some(name),
                addresses,
            })?;
            imported += 1;
        }
        Ok((imported, skipped))
    }
}

/// Finds the contacts owning any of the addresses, merges them into the oldest, adds the missing
/// addresses and the name (if it had none). `None` when the contact has no usable address.
fn resolve_contact(
    tx: &rusqlite::Transaction<'_>,
    contact: &Contact,
) -> rusqlite::Result<Option<ContactId>> {
    let keyed: Vec<(String, &Address)> = contact
        .addresses
        .iter()
        .filter_map(|a| address_key(a).map(|k| (k, a)))
        .collect();
    if keyed.is_empty() {
        return Ok(None);
    }
    let mut owners: Vec<ContactId> = Vec::new();
    for (key, _) in &keyed {
        let owner: Option<ContactId> = tx
            .query_row(
                "SELECT contact_id FROM contact_addresses WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?;
        owners.extend(owner);
    }
    owners.sort();
    owners.dedup();
    let id = match owners.first() {
        Some(id) => *id,
        None => {
            tx.execute("INSERT INTO contacts (name) VALUES ('')", [])?;
            tx.last_insert_rowid()
        }
    };
    for other in owners.iter().skip(1) {
        merge(tx, id, *other)?;
    }
    for (key, address) in keyed {
        tx.execute(
            "INSERT OR IGNORE INTO contact_addresses (key, kind, value, contact_id) VALUES (?1, ?2, ?3, ?4)",
            params![key, address.kind, address.value.trim(), id],
        )?;
    }
    if let Some(name) = contact
        .display_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    {
        tx.execute(
            "UPDATE contacts SET name = ?2 WHERE id = ?1 AND name = ''",
            params![id, name.trim()],
        )?;
    }
    Ok(Some(id))
}

/// Moves everything of contact `from` to `into` and deletes `from`.
fn merge(tx: &rusqlite::Transaction<'_>, into: ContactId, from: ContactId) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE contact_addresses SET contact_id = ?1 WHERE contact_id = ?2",
        params![into, from],
    )?;
    tx.execute(
        "UPDATE interactions SET contact_id = ?1 WHERE contact_id = ?2",
        params![into, from],
    )?;
    tx.execute(
        "UPDATE contacts SET name = (SELECT name FROM contacts WHERE id = ?2) WHERE id = ?1 AND name = ''",
        params![into, from],
    )?;
    tx.execute("DELETE FROM contacts WHERE id = ?1", params![from])?;
    Ok(())
}

/// Splits one CSV line (double quotes around cells, `""` inside them).
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cell)),
            other => cell.push(other),
        }
    }
    cells.push(cell);
    cells
}

/// A history entry from a row of `key, channel, contact_id, subject, arrived_at, agent, outcome,
/// wrap_up` (the listing queries' columns).
fn entry_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        key: r.get::<_, i64>(0)? as u64,
        channel: r.get(1)?,
        contact: r.get(2)?,
        subject: r.get(3)?,
        arrived_at: r.get::<_, i64>(4)? as u64,
        agent: r.get(5)?,
        outcome: r.get(6)?,
        wrap_up: r.get(7)?,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CoreEvent;
    use plugin_api::{InteractionId, Media, Route};

    fn arrived(seq: u64, key: InteractionKey, channel: &str, contact: Contact) -> Stamped {
        Stamped {
            seq,
            at: 1000 * seq,
            event: CoreEvent::InteractionArrived {
                key,
                plugin: "p".into(),
                interaction: InteractionId::new(format!("i{key}")),
                external_id: format!("e{key}"),
                channel: channel.into(),
                media: Media::Conversation,
                route: Route::queue("default"),
                contact,
                subject: Some(format!("subject {key}")),
                priority: 0,
                related: None,
            },
        }
    }

    fn contact(name: &str, addresses: Vec<Address>) -> Contact {
        Contact {
            display_name: Some(name.into()),
            addresses,
        }
    }

    fn store() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().expect("tmp");
        let history = History::open(&dir.path().join("store.sqlite3")).expect("open");
        (dir, history)
    }

    #[test]
    fn interactions_link_to_one_contact_merged_across_channels_by_address() {
        let (_dir, mut h) = store();
        h.record(&[arrived(
            1,
            1,
            "chat",
            contact("Jo", vec![Address::email("jo@example.com")]),
        )])
        .expect("record");
        h.record(&[arrived(
            2,
            2,
            "voice",
            contact("", vec![Address::phone("+44 20 7946 0958")]),
        )])
        .expect("record");
        let (jo, caller) = (
            h.contact_of(1).expect("q").expect("linked"),
            h.contact_of(2).expect("q").expect("linked"),
        );
        assert_ne!(jo, caller, "nothing links them yet");
        // An email arrives from Jo quoting the same phone number: the two contacts are one person.
        let both = vec![
            Address::email("JO@example.com"),
            Address::phone("+44 (20) 7946-0958"),
        ];
        h.record(&[arrived(3, 3, "email", contact("Jo Bloggs", both))])
            .expect("record");
        let merged = h.contact_of(3).expect("q").expect("linked");
        assert_eq!(h.contact_of(1).expect("q"), Some(merged));
        assert_eq!(h.contact_of(2).expect("q"), Some(merged));
        let record = h.contact(merged).expect("q").expect("exists");
        assert_eq!(record.name, "Jo");
        assert_eq!(record.addresses.len(), 2);
        let all = h.search(Some(merged), None, 10).expect("search");
        assert_eq!(all.iter().map(|e| e.key).collect::<Vec<_>>(), vec![3, 2, 1]);
    }

    #[test]
    fn transcripts_are_searchable_by_text_and_paged() {
        let (_dir, mut h) = store();
        h.record(&[arrived(
            1,
            1,
            "chat",
            contact("Jo", vec![Address::email("jo@example.com")]),
        )])
        .expect("record");
        h.record(&[arrived(
            2,
            2,
            "chat",
            contact("Al", vec![Address::email("al@example.com")]),
        )])
        .expect("record");
        for (n, text) in [
            "Hello",
            "My parcel never arrived",
            "It was order A-17",
            "Thanks",
        ]
        .iter()
        .enumerate()
        {
            h.add_message(1, "chat", n as u64, "Jo", text, None)
                .expect("message");
        }
        h.add_message(2, "chat", 9, "Al", "Where is my invoice?", None)
            .expect("message");
        let found = h.search(None, Some("parcel arrived"), 10).expect("search");
        assert_eq!(found.iter().map(|e| e.key).collect::<Vec<_>>(), vec![1]);
        let by_subject = h.search(None, Some("subject 2"), 10).expect("search");
        assert_eq!(
            by_subject.iter().map(|e| e.key).collect::<Vec<_>>(),
            vec![2]
        );
        let page = h.transcript(1, 1, 2).expect("page");
        assert_eq!(
            page.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            vec!["My parcel never arrived", "It was order A-17"]
        );
    }

    #[test]
    fn a_message_sent_again_with_its_id_and_content_is_stored_once_and_a_reused_id_is_kept() {
        let (_dir, mut h) = store();
        h.record(&[arrived(1, 1, "workitem", Contact::default())])
            .expect("record");
        let mark = |id, digest| Some(MessageMark { id, digest });
        assert!(
            h.add_message(1, "workitem", 1, "Fax", "page one", mark("m1", "d1"))
                .expect("add")
        );
        assert!(
            !h.add_message(1, "workitem", 2, "Fax", "page one", mark("m1", "d1"))
                .expect("again")
        );
        assert!(
            h.add_message(1, "workitem", 3, "Fax", "page two", mark("m2", "d2"))
                .expect("add")
        );
        assert!(
            h.add_message(1, "workitem", 4, "Fax", "other page", mark("m1", "d3"))
                .expect("a reused id with other content")
        );
        // The same id in another interaction is another message.
        assert!(
            h.add_message(2, "workitem", 5, "Fax", "page one", mark("m1", "d1"))
                .expect("add")
        );
        let lines = h.transcript(1, 0, 10).expect("transcript");
        assert_eq!(
            lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            vec!["page one", "page two", "other page"]
        );
        let mut marks = h.message_marks(1).expect("marks");
        marks.sort();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            marks,
            vec![pair("m1", "d1"), pair("m1", "d3"), pair("m2", "d2")]
        );
    }

    #[test]
    fn ids_stored_before_digests_were_kept_carry_the_empty_digest() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("old.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE message_ids (key INTEGER NOT NULL, id TEXT NOT NULL,
                 PRIMARY KEY (key, id)) WITHOUT ROWID;
             INSERT INTO message_ids VALUES (1, 'm1');",
        )
        .expect("an old store");
        drop(conn);
        let h = History::open(&path).expect("upgraded");
        assert_eq!(
            h.message_marks(1).expect("marks"),
            vec![("m1".to_string(), String::new())]
        );
        drop(h);
        History::open(&path).expect("opens again");
    }

    #[test]
    fn a_never_saved_channel_is_neither_listed_nor_given_text() {
        let (dir, mut h) = store();
        h.never_save(["im".to_string()]);
        let colleague = contact("Ann", vec![Address::new(Address::AGENT, "ann")]);
        h.record(&[arrived(1, 1, "im", colleague)]).expect("record");
        assert!(h.search(None, None, 10).expect("search").is_empty());
        assert_eq!(h.contact_of(1).expect("contact"), None);
        assert!(
            !h.add_message(1, "im", 1, "Sam", "the secret launch code is 1234", None)
                .expect("call")
        );
        assert!(h.transcript(1, 0, 10).expect("page").is_empty());
        drop(h);
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            assert!(
                !bytes.windows(11).any(|w| w == b"launch code"),
                "IM text reached disk"
            );
        }
    }

    #[test]
    fn csv_import_merges_with_known_contacts_and_reports_skipped_lines() {
        let (_dir, mut h) = store();
        h.record(&[arrived(
            1,
            1,
            "chat",
            contact("", vec![Address::email("jo@example.com")]),
        )])
        .expect("record");
        let csv = concat!(
            "name,phone,email,company\n",
            "\"Bloggs, Jo\",+44 20 7946 0958;0207 946 0000,jo@example.com,Acme\n",
            "Al,,al@example.com,\n",
            "Nobody,,,\n",
        );
        let (imported, skipped) = h.import_csv(csv).expect("import");
        assert_eq!(imported, 2);
        assert_eq!(skipped, vec!["line 4: no phone or email".to_string()]);
        let jo = h
            .find_contact(&Address::phone("+442079460958"))
            .expect("q")
            .expect("found");
        assert_eq!(
            h.contact_of(1).expect("q"),
            Some(jo),
            "the chat's contact is the imported one"
        );
        let record = h.contact(jo).expect("q").expect("exists");
        assert_eq!(record.name, "Bloggs, Jo");
        assert_eq!(record.addresses.len(), 3);
    }

    #[test]
    fn handling_time_is_stored_and_an_older_store_gets_the_column() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("old.sqlite3");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE interactions (key INTEGER PRIMARY KEY, plugin TEXT NOT NULL, channel TEXT NOT NULL,
                 contact_id INTEGER, subject TEXT, arrived_at INTEGER NOT NULL, agent TEXT,
                 outcome TEXT NOT NULL DEFAULT '', wrap_up TEXT);",
            )
            .expect("old schema");
        }
        let mut h = History::open(&path).expect("open migrates");
        h.record(&[arrived(
            1,
            7,
            "chat",
            contact("Jo", vec![Address::email("jo@example.com")]),
        )])
        .expect("record");
        assert_eq!(h.handling(7).expect("q"), None);
        h.set_handling(&[(7, 61_000)]).expect("set");
        assert_eq!(h.handling(7).expect("q"), Some(61_000));
    }

    fn user_version(path: &Path) -> u32 {
        Connection::open(path)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .expect("user_version")
    }

    #[test]
    fn a_store_created_by_the_schema_before_versions_is_migrated_with_its_rows() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("old.sqlite3");
        {
            // The tables and rows an agentdesk from before handling time, content digests and
            // schema versions wrote (user_version 0).
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
                 CREATE TABLE contact_addresses (
                     key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, contact_id INTEGER NOT NULL);
                 CREATE TABLE interactions (key INTEGER PRIMARY KEY, plugin TEXT NOT NULL, channel TEXT NOT NULL,
                     contact_id INTEGER, subject TEXT, arrived_at INTEGER NOT NULL, agent TEXT,
                     outcome TEXT NOT NULL DEFAULT '', wrap_up TEXT);
                 CREATE VIRTUAL TABLE messages USING fts5(key UNINDEXED, at UNINDEXED, party UNINDEXED, text);
                 CREATE TABLE details (key INTEGER PRIMARY KEY, json TEXT NOT NULL);
                 CREATE TABLE message_ids (key INTEGER NOT NULL, id TEXT NOT NULL,
                     PRIMARY KEY (key, id)) WITHOUT ROWID;
                 INSERT INTO contacts VALUES (1, 'Jo');
                 INSERT INTO contact_addresses VALUES ('email:jo@example.com', 'email', 'jo@example.com', 1);
                 INSERT INTO interactions VALUES (7, 'p', 'chat', 1, 'refund', 5000, 'ann', 'done', 'sale');
                 INSERT INTO messages VALUES (7, 5100, 'Jo', 'my parcel never came');
                 INSERT INTO message_ids VALUES (7, 'm1');",
            )
            .expect("old schema");
        }
        assert_eq!(user_version(&path), 0);
        let mut h = History::open(&path).expect("open migrates");
        assert_eq!(user_version(&path), schema::LATEST);
        let found = h.search(None, Some("parcel"), 10).expect("search");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].key, found[0].contact, found[0].wrap_up.as_deref()),
            (7, Some(1), Some("sale"))
        );
        assert_eq!(
            h.message_marks(7).expect("marks"),
            vec![("m1".to_string(), String::new())]
        );
        h.set_handling(&[(7, 61_000)]).expect("the new column");
        assert_eq!(h.handling(7).expect("q"), Some(61_000));
        let indexes: i64 = h
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'interactions_by_arrival'",
                [],
                |r| r.get(0),
            )
            .expect("index");
        assert_eq!(indexes, 1, "migration 2 ran");
        drop(h);
        History::open(&path).expect("opens again without migrating");
        assert_eq!(user_version(&path), schema::LATEST);
    }

    #[test]
    fn a_store_from_a_newer_agentdesk_is_refused_with_its_version() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("new.sqlite3");
        drop(History::open(&path).expect("open"));
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "user_version", 42))
            .expect("newer");
        let err = History::open(&path).unwrap_err();
        assert!(
            matches!(
                &err,
                HistoryError::Schema {
                    source: crate::storage::MigrationError::Future { found: 42, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_agent_adds_a_number_to_a_contact() {
        let (_dir, mut h) = store();
        let jo = h
            .upsert_contact(&contact("Jo", vec![Address::email("jo@example.com")]))
            .expect("upsert")
            .expect("id");
        let kept = h
            .add_address(jo, &Address::phone("+1 555 0100 123"))
            .expect("add");
        assert_eq!(kept, jo);
        assert_eq!(
            h.find_contact(&Address::phone("+15550100123")).expect("q"),
            Some(jo)
        );
    }
}
