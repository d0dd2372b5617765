//! The durable inbox both social channels receive into: a state behind a lock, its journal and
//! the host's outbox. `commit` decides and applies the changes under the state's lock, then
//! waits until they are synced: webhooks arriving together share one write and one sync (group
//! commit), a webhook is acknowledged only for what is on disk, and events leave, after their
//! sync, in the order their changes were applied. A failed write stops the inbox: what was
//! applied in memory may not be on disk, so nothing more is acknowledged until a restart reloads
//! the journal (the platforms deliver again what was not acknowledged).

use crate::deliver::Outbox;
use crate::journal::{Journal, JournalError, Journaled};
use plugin_api::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

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
    group: Mutex<Group>,
    synced: Condvar,
}

/// Changes applied in memory and not yet synced, and how far the journal is synced.
#[derive(Debug, Default)]
struct Group {
    /// Encoded changes waiting for the next write.
    lines: Vec<u8>,
    /// Their events, in order.
    events: Vec<Event>,
    /// Commits applied so far (each with changes counts one).
    applied: u64,
    /// Commits synced so far.
    synced: u64,
    /// A commit is writing and syncing now (the others wait for it).
    writing: bool,
    /// A write failed: what is in memory may not be on disk.
    failed: Option<String>,
    /// Writes and syncs done (for the log and the benchmark).
    syncs: u64,
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
            group: Mutex::new(Group::default()),
            synced: Condvar::new(),
        }
    }

    /// Writes and syncs of the journal so far (fewer than commits when they were grouped).
    pub fn syncs(&self) -> u64 {
        self.group().syncs
    }

    /// Commits that stored changes so far (with [`Inbox::syncs`]: how well they were grouped).
    pub fn commits(&self) -> u64 {
        self.group().applied
    }

    fn group(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Decides changes from the state, applies them, and returns once they are synced to the
    /// journal (with those of every commit applied before); the events each applied change means
    /// are queued after that sync. A commit with no changes still waits for what it decided on
    /// to be synced (a repeated delivery is acknowledged only once the first is on disk). Nothing
    /// is applied when the changes cannot be encoded; after a failed write, every commit fails.
    pub fn commit<R>(
        &self,
        decide: impl FnOnce(&S) -> (Vec<S::Change>, R),
        events: impl Fn(&S, &S::Change) -> Vec<Event>,
    ) -> Result<(R, Committed), JournalError> {
        let mut state = self.state();
        if let Some(why) = &self.group().failed {
            return Err(JournalError::Stopped(why.clone()));
        }
        let (changes, result) = decide(&state);
        let mut lines = Vec::new();
        for change in &changes {
            serde_json::to_writer(&mut lines, change)?;
            lines.push(b'\n');
        }
        let mut out = Vec::new();
        let count = changes.len();
        for change in changes {
            state.apply(change.clone());
            out.extend(events(&state, &change));
        }
        // Queued before the state is let go, so the journal's order is the order of application.
        let mine = {
            let mut group = self.group();
            if count > 0 {
                group.lines.extend_from_slice(&lines);
                group.events.append(&mut out);
                group.applied += 1;
            }
            group.applied
        };
        drop(state);
        let lost = self.durable(mine)?;
        Ok((
            result,
            Committed {
                changes: count,
                lost,
            },
        ))
    }

    /// Waits until commit `mine` is synced, writing and syncing what is waiting when no other
    /// commit is; returns the events this call could not queue.
    fn durable(&self, mine: u64) -> Result<usize, JournalError> {
        let mut group = self.group();
        let mut lost = 0;
        loop {
            if let Some(why) = &group.failed {
                return Err(JournalError::Stopped(why.clone()));
            }
            if group.synced >= mine {
                return Ok(lost);
            }
            if group.writing {
                group = self
                    .synced
                    .wait(group)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            group.writing = true;
            let lines = std::mem::take(&mut group.lines);
            let events = std::mem::take(&mut group.events);
            let upto = group.applied;
            drop(group);
            let written = self.journal.append_encoded(&lines);
            if written.is_ok() {
                lost += self.outbox.send(events);
            }
            group = self.group();
            group.writing = false;
            match written {
                Ok(()) => {
                    group.synced = upto;
                    group.syncs += 1;
                }
                // Returned to every commit from now on (the webhook handler logs it).
                Err(e) => group.failed = Some(e.to_string()),
            }
            self.synced.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::Seen;
    use plugin_api::ChannelStatus;
    use std::sync::Arc;

    fn event(text: &str) -> Event {
        Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: text.into(),
        })
    }

    #[test]
    fn commits_made_together_share_syncs_and_every_one_is_on_disk_with_its_events_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = Journal::new(dir.path(), "seen");
        let (outbox, mut events) = Outbox::to_channel();
        let inbox = Arc::new(Inbox::new(Seen::default(), journal.clone(), outbox));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for n in 0..50 {
                        let text = format!("t{t}-{n}");
                        inbox
                            .commit(|_| (vec![text.clone()], ()), |_, c| vec![event(c)])
                            .expect("commit");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let (back, loaded) = journal.load::<Seen>().expect("load");
        assert_eq!((back.0.len(), loaded.skipped), (400, 0));
        assert!(inbox.syncs() <= 400, "{}", inbox.syncs());
        // The events left in the order the changes were applied (which is the journal's).
        let mut sent = Vec::new();
        while let Ok(Event::ChannelStatus(s)) = events.try_recv() {
            sent.push(s.detail);
        }
        assert_eq!(sent, back.0);
    }

    #[test]
    fn after_a_failed_write_nothing_more_is_taken() {
        let dir = tempfile::tempdir().expect("dir");
        // The log's path is a directory: the write fails.
        std::fs::create_dir(dir.path().join("seen.log")).expect("block the log");
        let (outbox, mut events) = Outbox::to_channel();
        let inbox = Inbox::new(Seen::default(), Journal::new(dir.path(), "seen"), outbox);
        let first = inbox.commit(|_| (vec!["a".to_string()], ()), |_, c| vec![event(c)]);
        assert!(first.is_err(), "{first:?}");
        let later = inbox.commit(|_| (vec![], ()), |_, _| vec![]);
        assert!(matches!(later, Err(JournalError::Stopped(_))), "{later:?}");
        assert!(events.try_recv().is_err(), "nothing unsynced was sent");
    }

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
