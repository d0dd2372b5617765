//! Benchmarks of process isolation (release builds of real plugin libraries and of the runner):
//! - one command round trip through an isolated plugin against the same plugin in-process, with
//!   the median and 99th percentile of single calls measured in the same run;
//! - events per second from a plugin, isolated against in-process (emitted, framed, decoded);
//! - discover + verify + load + start of 8 plugins, in-process against isolated.
//!
//! Run with `cargo bench -p agentdesk-tests --bench isolation`; figures go to docs/performance.md.

use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{
    FixtureSpec, Profile, build_fixture_in, build_workspace_plugin_release, config_text,
    install_with_manifest, isolate,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plugin_api::{Command, InvokeAction, MarkDone};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// The runner: the test host has the `plugin-runner` subcommand, as `agentdesk` does.
const RUNNER: &str = env!("CARGO_BIN_EXE_agentdesk-test-host");

/// Events per `burst` call.
const BURST: u32 = 100_000;

/// A host on `allow` (installed in `plugins`), the `isolated` ones in runner processes.
fn start(work: &Path, allow: &[&str], isolated: &[&str], extra: &str) -> PluginHost {
    let text = config_text(&work.join("plugins"), &work.join("data"), allow, extra)
        .replace("call_deadline_ms = 1000", "call_deadline_ms = 60000");
    let text = isolate(&text, isolated, Path::new(RUNNER));
    let config = AdminConfig::parse(&text, "bench").expect("config");
    let host = PluginHost::start(&config, StartMode::Run);
    assert_eq!(
        host.running_ids().len(),
        allow.len(),
        "{:#?}",
        host.reports()
    );
    host
}

fn percentiles(host: &PluginHost, command: &Command) -> (f64, f64) {
    let mut micros: Vec<f64> = (0..20_000)
        .map(|_| {
            let started = Instant::now();
            black_box(host.send("agentdesk.demo", command).expect("reply"));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    (at(0.5), at(0.99))
}

fn round_trip(c: &mut Criterion) {
    let library = build_workspace_plugin_release("agentdesk-plugin-demo", "agentdesk_demo");
    let hosts: Vec<(&str, tempfile::TempDir, PluginHost)> =
        [("in-process", false), ("isolated", true)]
            .into_iter()
            .map(|(name, isolated)| {
                let work = tempfile::tempdir().expect("tmp");
                agentdesk_host::plugins::package::package(&library, &work.path().join("plugins"))
                    .expect("package");
                let ids: &[&str] = if isolated { &["agentdesk.demo"] } else { &[] };
                let host = start(work.path(), &["agentdesk.demo"], ids, "");
                (name, work, host)
            })
            .collect();
    let command = Command::MarkDone(MarkDone {
        interaction: plugin_api::InteractionId::new("demo-1"),
        wrap_up: None,
    });
    let mut group = c.benchmark_group("isolation/command round trip");
    for (name, _, host) in &hosts {
        group.bench_function(*name, |b| {
            b.iter(|| {
                black_box(
                    host.send("agentdesk.demo", black_box(&command))
                        .expect("reply"),
                )
            })
        });
    }
    group.finish();
    let figures: Vec<(f64, f64)> = hosts
        .iter()
        .map(|(_, _, h)| percentiles(h, &command))
        .collect();
    for ((name, _, _), (p50, p99)) in hosts.iter().zip(&figures) {
        println!("round trip {name}: median {p50:.1} µs, p99 {p99:.1} µs (20,000 single calls)");
    }
    println!(
        "added by isolation: median {:.1} µs, p99 {:.1} µs",
        figures[1].0 - figures[0].0,
        figures[1].1 - figures[0].1
    );
}

fn events(c: &mut Criterion) {
    let spec = FixtureSpec::new("burst");
    let library = build_fixture_in(spec, Profile::Release);
    let id = spec.id();
    let mut group = c.benchmark_group("isolation/events from a plugin");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(u64::from(BURST)));
    for (name, isolated) in [("in-process", false), ("isolated", true)] {
        let work = tempfile::tempdir().expect("tmp");
        install_with_manifest(
            &work.path().join("plugins"),
            &library,
            &id,
            "1.0.0",
            "1.0.0",
            &["fixture"],
        );
        let extra = format!("[plugins.settings.\"{id}\"]\nburst = {BURST}\n");
        let ids: Vec<&str> = if isolated { vec![&id] } else { vec![] };
        let host = start(work.path(), &[&id], &ids, &extra);
        let burst = Command::InvokeAction(InvokeAction {
            interaction: None,
            action: "burst".into(),
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    std::thread::scope(|scope| {
                        scope.spawn(|| host.send(&id, &burst).expect("burst"));
                        let mut received = 0;
                        while received < BURST {
                            host.recv_event(Duration::from_secs(10)).expect("an event");
                            received += 1;
                        }
                    });
                    total += started.elapsed();
                }
                total
            })
        });
        // In-process a full queue is refused to the plugin, which retries; isolated, the host's
        // reader waits for room and drops only after a second: none may be lost here.
        if isolated {
            let metrics = host.metrics(&id).expect("metrics");
            let dropped = metrics
                .events_dropped
                .load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(dropped, 0, "{name}: events were dropped");
        }
    }
    group.finish();
}

fn startup(c: &mut Criterion) {
    let specs: Vec<FixtureSpec> = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]
        .into_iter()
        .map(FixtureSpec::new)
        .collect();
    let libraries: Vec<_> = specs
        .iter()
        .map(|s| build_fixture_in(*s, Profile::Release))
        .collect();
    let work = tempfile::tempdir().expect("tmp");
    let mut round = 0u32;
    let mut group = c.benchmark_group("isolation/discover + verify + load + start, 8 plugins");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (name, isolated) in [("in-process", false), ("isolated", true)] {
        group.bench_function(name, |b| {
            // Fresh copies every iteration: each load is a real dlopen (in the host or in a new
            // runner) and a real sha256. Installation and shutdown are not timed.
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let dir = work.path().join(format!("round-{round}"));
                    let mut ids = Vec::new();
                    for (spec, library) in specs.iter().zip(&libraries) {
                        install_with_manifest(
                            &dir.join("plugins"),
                            library,
                            &spec.id(),
                            "1.0.0",
                            "1.0.0",
                            &["fixture"],
                        );
                        ids.push(spec.id());
                    }
                    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let isolated_ids: &[&str] = if isolated { &ids } else { &[] };
                    let text = isolate(
                        &config_text(&dir.join("plugins"), &dir.join("data"), &ids, ""),
                        isolated_ids,
                        Path::new(RUNNER),
                    );
                    let config = AdminConfig::parse(&text, "bench").expect("config");
                    let started = Instant::now();
                    let host = PluginHost::start(&config, StartMode::Run);
                    total += started.elapsed();
                    assert_eq!(host.running_ids().len(), 8, "{:#?}", host.reports());
                    drop(host);
                    let _ = std::fs::remove_dir_all(&dir);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip, events, startup);
criterion_main!(benches);
