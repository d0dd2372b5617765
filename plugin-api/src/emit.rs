//! Sending events in order without ever blocking the caller: [`OrderedEmitter`] queues events and
//! one thread of its own hands them to the host, retrying `QUEUE_FULL` with back-off, so a burst
//! is delayed but never reordered or dropped. Nothing here knows about any channel.

use crate::abi::{ErrorCode, PluginError};
use crate::plugin::Host;
use crate::vocabulary::events::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The first wait after `QUEUE_FULL`; each further one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// What an [`OrderedEmitter`] did, readable while it runs.
#[derive(Debug, Default)]
pub struct EmitCounts {
    /// Events the host took.
    pub sent: AtomicU64,
    /// Tries refused with `QUEUE_FULL` (and tried again).
    pub retried: AtomicU64,
    /// Events given up: refused with another error, or still queued when `stop`'s time ran out.
    pub dropped: AtomicU64,
}

/// An ordered, non-blocking event sender. Create it in `start`, stop it in `stop`.
pub struct OrderedEmitter {
    queue: Option<mpsc::Sender<Event>>,
    thread: Option<JoinHandle<()>>,
    give_up: Arc<AtomicBool>,
    counts: Arc<EmitCounts>,
}

impl std::fmt::Debug for OrderedEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedEmitter")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl OrderedEmitter {
    /// Starts the sending thread (named `<thread_name>`).
    pub fn new(host: Host, thread_name: &str) -> Result<Self, PluginError> {
        let (queue, events) = mpsc::channel::<Event>();
        let give_up = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(EmitCounts::default());
        let thread = std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn({
                let (give_up, counts) = (give_up.clone(), counts.clone());
                move || send_in_order(&host, &events, &give_up, &counts)
            })
            .map_err(|e| PluginError::failed(format!("cannot start the emit thread: {e}")))?;
        Ok(OrderedEmitter {
            queue: Some(queue),
            thread: Some(thread),
            give_up,
            counts,
        })
    }

    /// Queues an event; never blocks. Fails only after [`OrderedEmitter::stop`].
    pub fn emit(&self, event: impl Into<Event>) -> Result<(), PluginError> {
        let stopped = || PluginError::new(ErrorCode::STATE, "the emitter was stopped");
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(event.into())
            .map_err(|_| stopped())
    }

    /// What it did so far.
    pub fn counts(&self) -> &EmitCounts {
        &self.counts
    }

    /// Sends what is queued, for at most `within`; what is left then is dropped (counted, and
    /// logged through the host). Returns how many were dropped by this stop.
    pub fn stop(&mut self, within: Duration) -> u64 {
        drop(self.queue.take());
        let before = self.counts.dropped.load(Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return 0;
        };
        let deadline = Instant::now() + within;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.give_up.store(true, Ordering::Relaxed);
        if thread.join().is_err() {
            // The thread only calls the host's services, which never panic across the ABI.
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.counts.dropped.load(Ordering::Relaxed) - before
    }
}

impl Drop for OrderedEmitter {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

fn send_in_order(
    host: &Host,
    events: &mpsc::Receiver<Event>,
    give_up: &AtomicBool,
    counts: &EmitCounts,
) {
    let mut dropped = 0u64;
    loop {
        let event = match events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut wait = FIRST_BACKOFF;
        loop {
            if give_up.load(Ordering::Relaxed) {
                dropped += 1;
                break;
            }
            match host.emit(event.clone()) {
                Ok(()) => {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) if e.code == ErrorCode::QUEUE_FULL => {
                    counts.retried.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    host.warn(&format!("event `{}` not delivered: {e}", event.kind()));
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        if give_up.load(Ordering::Relaxed) {
            dropped += events.try_iter().count() as u64;
        }
    }
    if dropped > 0 {
        counts.dropped.fetch_add(dropped, Ordering::Relaxed);
        host.warn(&format!(
            "{dropped} events not delivered: the plugin stopped first"
        ));
    }
}
