//! The durable inbox both social channels receive into: a state behind a lock, its journal and
//! the host's outbox. `commit` decides, syncs the changes, applies them and queues their events
//! in one step, so a webhook is acknowledged only for what is on disk, and events leave in the
//! order their changes were stored.

use crate::deliver::Outbox;
use crate::journal::{Journal, JournalError, Journaled};
use plugin_api::Event;
use std::sync::{Mutex, MutexGuard};

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
