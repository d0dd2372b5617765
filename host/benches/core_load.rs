//! The core under a contact centre's load: 1,000 agents (chat capacity 10, auto-answer) holding
//! 10,000 open interactions, journaling on.
//! - throughput: cycles of (contact ends, agent marks done, new offer routed and answered) through
//!   the core and the SQLite journal, group-committed every 64 cycles;
//! - latency: from a plugin event entering the core service to the updated snapshot reaching the
//!   agent's client (p50/p99 printed);
//! - peak memory (VmHWM) of the process at that load.
//!
//! Run with `cargo bench -p agentdesk-host --bench core_load`; figures go to docs/performance.md.

mod load;
use load::{AGENTS, agent_id, ended, offer, peak_memory_kib, policy};

use agentdesk_host::core::{AgentCommand, Core, InteractionState, Stamped};
use agentdesk_host::service::CoreService;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::storage::Journal;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPEN: usize = 10_000;

/// A core with every agent Ready and `OPEN` chats active; returns it with the journal batch.
fn loaded_core(now: u64) -> (Core, Vec<Stamped>) {
    let mut core = Core::new(policy(), now);
    let mut events = Vec::new();
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
            events.extend(
                core.execute(now, &agent_id(n), command)
                    .expect("agent set-up"),
            );
        }
    }
    for n in 1..=OPEN as u64 {
        events.extend(core.on_plugin_event(now, "chat", &offer(n)));
    }
    let active = core
        .interactions()
        .filter(|i| i.state == InteractionState::Active)
        .count();
    assert_eq!(active, OPEN, "every chat is active");
    (core, events)
}

fn throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut journal = Journal::open(&dir.path().join("journal.sqlite3")).expect("journal");
    let mut now = 1_000_000u64;
    let (mut core, setup) = loaded_core(now);
    journal.append(&setup).expect("journal set-up");
    eprintln!(
        "core_load: peak memory after set-up (1,000 agents, 10,000 open): {} KiB",
        peak_memory_kib()
    );
    let mut open: VecDeque<u64> = (1..=OPEN as u64).collect();
    let mut next = OPEN as u64 + 1;
    let mut journaled = 0u64;
    let mut inputs = 0u64;
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(3));
    group.sample_size(20);
    group.bench_function(
        "cycle: contact ends + mark done + new offer routed (3 inputs), journal on",
        |b| {
            b.iter_custom(|cycles| {
                let mut batch: Vec<Stamped> = Vec::with_capacity(64 * 6);
                let started = Instant::now();
                for cycle in 0..cycles {
                    now += 1;
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
                    inputs += 3;
                    if cycle % 64 == 63 {
                        journaled += batch.len() as u64;
                        journal.append(&batch).expect("journal");
                        batch.clear();
                        core.compact();
                    }
                }
                journaled += batch.len() as u64;
                journal.append(&batch).expect("journal");
                started.elapsed()
            })
        },
    );
    group.finish();
    eprintln!(
        "core_load: {:.2} journal events per input",
        journaled as f64 / inputs.max(1) as f64
    );
}

fn latency(c: &mut Criterion) {
    // For profiling the throughput cycle alone (criterion's name filter does not reach this loop).
    if std::env::var_os("CORE_LOAD_ONLY_THROUGHPUT").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).expect("journal");
    let service = CoreService::start(policy(), Some(journal), None, None, Arc::new(SystemClock))
        .expect("service");
    let core = service.handle();
    for n in 0..AGENTS {
        let agent = agent_id(n);
        core.execute(&agent, AgentCommand::LogIn).expect("log in");
        core.execute(
            &agent,
            AgentCommand::LogOnChannel {
                channel: "chat".into(),
            },
        )
        .expect("log on");
        core.execute(
            &agent,
            AgentCommand::SetReady {
                channel: "chat".into(),
            },
        )
        .expect("ready");
    }
    for n in 1..=OPEN as u64 {
        core.plugin_event("chat", offer(n)).expect("offer");
    }
    core.tick().expect("settled");
    // Which agent holds which chat.
    let mut owner = vec![String::new(); OPEN + 1];
    for n in 0..AGENTS {
        let snapshot = core
            .snapshot(&agent_id(n))
            .expect("snapshot")
            .expect("agent");
        for i in snapshot.interactions {
            owner[i.key as usize] = snapshot.agent.clone();
        }
    }
    // A plain loop rather than criterion: percentiles need every sample, and each sample uses up
    // one open chat.
    let _ = c;
    let mut samples: Vec<Duration> = Vec::with_capacity(5_000);
    for next in 1..=5_000u64 {
        let agent = &owner[next as usize];
        let updates = core.watch(agent).expect("watch");
        let _first = updates.recv().expect("first snapshot");
        let started = Instant::now();
        core.plugin_event("chat", ended(next)).expect("event");
        loop {
            let s = updates.recv().expect("update");
            if s.interactions
                .iter()
                .any(|i| i.key == next && i.state == InteractionState::Ended)
            {
                break;
            }
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .copied()
    };
    eprintln!(
        "core_load: plugin event -> snapshot over {} samples: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        samples.last()
    );
    eprintln!(
        "core_load: peak memory of the process (VmHWM): {} KiB",
        peak_memory_kib()
    );
    service.stop();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = throughput, latency
}
criterion_main!(benches);
