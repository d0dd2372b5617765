//! Shared by the channel benchmarks (included with `#[path]`): the send instant of every
//! message not yet seen by its agent, and a thread per agent that times each new line in the
//! agent's snapshots.

use agentdesk_host::service::CoreHandle;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Send instants of messages not yet seen by their agent, by (core key, line number).
pub type Outstanding = Arc<Mutex<HashMap<(u64, usize), Instant>>>;

/// A thread that takes `agent`'s snapshots and, for every new line it finds outstanding, records
/// its latency and counts it off `pending`.
pub fn watch_lines(
    core: &CoreHandle,
    agent: &str,
    outstanding: Outstanding,
    pending: Arc<AtomicUsize>,
    latencies: Arc<Mutex<Vec<Duration>>>,
) {
    let stream = core.watch(agent).expect("watch");
    std::thread::spawn(move || {
        let mut seen: HashMap<u64, usize> = HashMap::new();
        while let Ok(snapshot) = stream.recv() {
            let now = Instant::now();
            for i in &snapshot.interactions {
                let last = seen.entry(i.key).or_insert(0);
                if i.detail.lines <= *last {
                    continue;
                }
                let mut outstanding = outstanding.lock().unwrap_or_else(|e| e.into_inner());
                for line in *last + 1..=i.detail.lines {
                    if let Some(sent) = outstanding.remove(&(i.key, line)) {
                        latencies
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(now - sent);
                        pending.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                *last = i.detail.lines;
            }
        }
    });
}

/// The latencies recorded so far, sorted; the record starts again empty.
pub fn take_sorted(latencies: &Mutex<Vec<Duration>>) -> Vec<Duration> {
    let mut taken = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    taken.sort();
    taken
}
