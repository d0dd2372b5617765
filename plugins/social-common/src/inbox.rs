//! The durable inbox both social channels receive into: a state behind a lock, its journal and
//! the host's outbox. `commit` decides, syncs the changes, applies them and queues their events
//! in one step, so a webhook is acknowledged only for what is on disk, and events leave in the
//! order their changes were stored.

use crate::deliver::Outbox;
use crate::journal::{Journal, JournalError, Journaled};
use plugin_api::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// What a webhook server refused or dropped, counted for the log (every drop is also logged).
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests refused for their signature (403).
    pub bad_signatures: AtomicU64,
    /// Signed bodies that are not webhooks of the platform (400).
    pub malformed: AtomicU64,
    /// Repeated deliveries dropped.
    pub duplicates: AtomicU64,
    /// Items not acted on (other kinds, our own echoes of other tools, ...).
    pub ignored: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One line for the log, e.g. at stop.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} refused for their signature, {} malformed, {} repeated deliveries dropped, {} items ignored",
            get(&self.bad_signatures),
            get(&self.malformed),
            get(&self.duplicates),
            get(&self.ignored)
        )
    }
}

/// A journaled state with its outbox.
#[derive(Debug)]
pub struct Inbox<S> {
    state: Mutex<S>,
    journal: Journal,
    outbox: Outbox,
}

/// What a commit did besides the caller's own result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Changes stored.
    pub changes: usize,
    /// Events that could not be queued (the plugin is stopping): they are sent again at start.
    pub lost: usize,
}

impl<S: Journaled> Inbox<S>
where
    S::Change: Clone,
{
    /// An inbox around a loaded state.
    pub fn new(state: S, journal: Journal, outbox: Outbox) -> Self {
        Inbox {
            state: Mutex::new(state),
            journal,
            outbox,
        }
    }

    /// The state, for reading. Changes go through [`Inbox::commit`].
    pub fn state(&self) -> MutexGuard<'_, S> {
        // Changes are applied whole, so a panic elsewhere leaves the state consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The outbox (events that change no state: notices, channel status).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Decides changes from the state, syncs them to the journal, applies them and queues the
    /// events each applied change means. Nothing is applied or sent when the write fails.
    pub fn commit<R>(
        &self,
        decide: impl FnOnce(&S) -> (Vec<S::Change>, R),
        events: impl Fn(&S, &S::Change) -> Vec<Event>,
    ) -> Result<(R, Committed), JournalError> {
        let mut state = self.state();
        let (changes, result) = decide(&state);
        self.journal.append(&changes)?;
        let mut out = Vec::new();
        let count = changes.len();
        for change in changes {
            state.apply(change.clone());
            out.extend(events(&state, &change));
        }
        let lost = self.outbox.send(out);
        Ok((
            result,
            Committed {
                changes: count,
                lost,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_count() {
        let counters = Counters::default();
        Counters::add(&counters.duplicates, 3);
        Counters::add(&counters.bad_signatures, 1);
        assert_eq!(
            counters.summary(),
            "1 refused for their signature, 0 malformed, 3 repeated deliveries dropped, 0 items ignored"
        );
    }
}
