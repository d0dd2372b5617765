//! Start-up of a hub that has run for months: a journal of 10 million events (set
//! `STARTUP_EVENTS` for another size) written by the core under load — 1,000 agents, 10,000
//! chats open at any time, contacts ending, agents marking done, new chats routed — over 60 days
//! of clock time, so de-duplication keys are pruned as in production (30-day window).
//! - `snapshot + tail`: the normal start-up: the newest snapshot, then the journal after it. The
//!   snapshot is taken 100,000 events before the end (the default `snapshot_every_events`: the
//!   worst case; a clean stop leaves nothing to replay).
//! - `full replay`: every event from the first (the start-up before snapshots, and the fallback
//!   when no snapshot is usable).
//! - `snapshot copy`: what a snapshot costs the core thread (copying its state); `snapshot encode +
//!   store`: the rest, done on the writer thread.
//!
//! Peak memory (VmHWM, reset before each start-up through /proc/self/clear_refs) is printed.
//! Run with `cargo bench -p agentdesk-host --bench startup`; figures go to docs/performance.md.

mod load;
use load::{AGENTS, agent_id, ended, offer, peak_memory_kib, policy};

use agentdesk_host::core::engine::{SNAPSHOT_FORMAT, StateSnapshot};
use agentdesk_host::core::{AgentCommand, Core, Stamped};
use agentdesk_host::service::recovery::{recover, replay_after};
use agentdesk_host::storage::{Journal, SnapshotStore};
use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

const OPEN: u64 = 10_000;
const DAYS: u64 = 60;
/// Events replayed after the snapshot in the worst case (the default `snapshot_every_events`).
const TAIL: u64 = 100_000;

fn events_wanted() -> u64 {
    std::env::var("STARTUP_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// Writes the journal (and one snapshot `TAIL` events before its end); returns the core's state.
fn write_journal(path: &Path, total: u64) -> Core {
    const START: u64 = 1_000_000;
    let mut now = START;
    let mut journal = Journal::open(path).expect("journal");
    let mut store = SnapshotStore::open(&SnapshotStore::beside(path)).expect("snapshots");
    let mut core = Core::new(policy(), now);
    let mut batch: Vec<Stamped> = Vec::new();
    for n in 0..AGENTS {
        for command in [
            AgentCommand::LogIn,
            AgentCommand::LogOnChannel {
                channel: "chat".into(),
            },
            AgentCommand::SetReady {
                channel: "chat".into(),
            },
        ] {
            batch.extend(core.execute(now, &agent_id(n), command).expect("set-up"));
        }
    }
    for n in 1..=OPEN {
        batch.extend(core.on_plugin_event(now, "chat", &offer(n)));
    }
    let mut open: VecDeque<u64> = (1..=OPEN).collect();
    let mut next = OPEN + 1;
    // About 5 events a cycle: the clock advances so that the journal spans `DAYS`.
    let step = (DAYS * 86_400_000 / (total / 5).max(1)).max(1);
    let snapshot_at = total.saturating_sub(TAIL);
    let mut snapshot_written = false;
    let started = Instant::now();
    while core.last_seq() < total {
        now += step;
        let Some(n) = open.pop_front() else { break };
        batch.extend(core.on_plugin_event(now, "chat", &ended(n)));
        let owner = core
            .interaction(n)
            .and_then(|i| i.owner.clone())
            .expect("owner");
        let done = AgentCommand::MarkDone {
            key: n,
            wrap_up: None,
            next: None,
        };
        batch.extend(core.execute(now, &owner, done).expect("mark done"));
        batch.extend(core.on_plugin_event(now, "chat", &offer(next)));
        open.push_back(next);
        next += 1;
        if batch.len() >= 256 {
            journal.append(&batch).expect("journal");
            batch.clear();
            core.compact();
            if !snapshot_written && core.last_seq() >= snapshot_at {
                let bytes = core.snapshot().encode().expect("encode");
                store
                    .save(core.last_seq(), SNAPSHOT_FORMAT, &bytes)
                    .expect("snapshot");
                snapshot_written = true;
                eprintln!(
                    "startup: snapshot at event {} is {} bytes ({} de-duplication keys)",
                    core.last_seq(),
                    bytes.len(),
                    core.dedup_keys()
                );
            }
        }
    }
    journal.append(&batch).expect("journal");
    core.compact();
    eprintln!(
        "startup: wrote {} events over {DAYS} days of clock time in {:.1?}; file {} MB",
        core.last_seq(),
        started.elapsed(),
        std::fs::metadata(path).map_or(0, |m| m.len()) >> 20
    );
    core
}

/// Runs `start` once with the peak-memory mark reset, and prints the peak it reached.
fn report_memory(what: &str, start: impl FnOnce() -> Core) {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("startup: peak memory not reset ({e}); the figure includes the set-up");
    }
    let started = Instant::now();
    let core = start();
    eprintln!(
        "startup: {what}: {:.2?} once, peak memory (VmHWM) {} MiB, {} open interactions",
        started.elapsed(),
        peak_memory_kib() >> 10,
        core.interactions().count()
    );
}

/// Where the time of a start from a snapshot goes, once.
fn phases(journal: &Journal, store: &SnapshotStore) {
    let started = Instant::now();
    let seq = store.seqs().expect("seqs")[0];
    let stored = store.read(seq).expect("read");
    let read = started.elapsed();
    let snapshot = StateSnapshot::decode(stored.format, &stored.body).expect("decode");
    let decoded = started.elapsed();
    let mut core = Core::restore(policy(), 1, snapshot).expect("restore");
    let restored = started.elapsed();
    let tail = replay_after(&mut core, journal, seq).expect("tail");
    let replayed = started.elapsed();
    eprintln!(
        "startup: phases: read + checksum {read:.2?} ({} MB), decode {:.2?}, restore {:.2?}, \
         replay of {tail} events {:.2?}",
        stored.body.len() >> 20,
        decoded - read,
        restored - decoded,
        replayed - restored
    );
}

fn startup(c: &mut Criterion) {
    let total = events_wanted();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let path = dir.path().join("journal.sqlite3");
    let end = write_journal(&path, total);
    let events = end.last_seq();
    drop(end);
    let journal = Journal::open(&path).expect("journal");
    let store = SnapshotStore::open(&SnapshotStore::beside(&path)).expect("snapshots");
    let start_from_snapshot = || {
        let recovered = recover(policy(), 1, &journal, Some(&store)).expect("recover");
        assert!(recovered.snapshot.is_some() && recovered.replayed <= TAIL + 256);
        recovered.core
    };
    let start_from_nothing = || {
        let mut core = Core::new(policy(), 1);
        replay_after(&mut core, &journal, 0).expect("replay");
        core
    };
    phases(&journal, &store);
    report_memory("snapshot + tail", start_from_snapshot);
    let mut group = c.benchmark_group(format!("startup, journal of {events} events"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.bench_function("snapshot + tail of 100,000 events", |b| {
        b.iter_with_large_drop(start_from_snapshot)
    });
    let core = start_from_snapshot();
    // The core thread's share of a snapshot: copying the state; the rest is the writer thread's.
    group.bench_function("snapshot copy (on the core thread)", |b| {
        b.iter_with_large_drop(|| core.snapshot())
    });
    let mut writer = SnapshotStore::open(&SnapshotStore::beside(&path)).expect("snapshots");
    group.bench_function("snapshot encode + store (on its own thread)", |b| {
        b.iter(|| {
            let bytes = core.snapshot().encode().expect("encode");
            writer
                .save(core.last_seq(), SNAPSHOT_FORMAT, &bytes)
                .expect("save");
        })
    });
    // Ten full replays of a long journal take minutes: criterion only for short ones.
    if events <= 1_000_000 {
        group.bench_function("full replay", |b| {
            b.iter_with_large_drop(start_from_nothing)
        });
    }
    report_memory("full replay", start_from_nothing);
    group.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
