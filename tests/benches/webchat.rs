//! Benchmark of the web chat channel on loopback: customer WebSocket → plugin → host → core →
//! the agent's client snapshot, with many concurrent chat connections (1,000 by default;
//! `WEBCHAT_BENCH_CONNECTIONS=100` for a quick run). One round = one message on every connection.
//! Criterion measures rounds (its throughput line is messages/s); the latency of every message,
//! from its send on the customer's socket to the first snapshot of its agent that counts it, is
//! collected across all rounds and its percentiles printed at the end.
//!
//! Run with `cargo bench -p agentdesk-tests --bench webchat`; figures go to docs/performance.md.

#[path = "common/line_timing.rs"]
mod line_timing;
use agentdesk_host::PluginHost;
use agentdesk_host::service::{CoreHandle, CoreService};
use agentdesk_tests::{build_workspace_plugin_release, start_bench_host};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use line_timing::Outstanding;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const AGENTS: usize = 10;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sink = SplitSink<Socket, Message>;

struct Bench {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    _plugins: Arc<PluginHost>,
    service: Option<CoreService>,
    /// Each customer's socket and its chat's core key.
    customers: Vec<(Sink, u64)>,
    lines: HashMap<u64, usize>,
    outstanding: Outstanding,
    pending: Arc<AtomicUsize>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    round: usize,
}

fn connections() -> usize {
    std::env::var("WEBCHAT_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

impl Bench {
    fn new(n: usize) -> Self {
        let library = build_workspace_plugin_release("agentdesk-plugin-chat", "agentdesk_chat");
        let dir = tempfile::tempdir().expect("temp dir");
        let per_agent = n.div_ceil(AGENTS) + 1;
        let settings = format!(
            "[plugins.settings.\"agentdesk.chat\"]\nport = 0\ngreeting = \"\"\n\
             max_connections_per_address = {limit}\nmax_connections = {limit}\n\
             messages_per_second = 1000\nmessage_burst = 1000\nworker_threads = 2\n\
             [channels.chat]\ncapacity = {per_agent}\n",
            limit = n + 100
        );
        let (plugins, service, endpoint) = start_bench_host(
            dir.path(),
            &library,
            "agentdesk.chat",
            "chat",
            AGENTS,
            &settings,
        );
        let core = service.handle();
        let url = endpoint["websocket"].as_str().expect("ws url").to_string();
        let origin = endpoint["url"]
            .as_str()
            .expect("url")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sinks: Vec<Sink> = runtime.block_on(async {
            let mut sinks = Vec::with_capacity(n);
            for i in 0..n {
                let mut request = url.as_str().into_client_request().expect("request");
                request
                    .headers_mut()
                    .insert("Origin", origin.parse().expect("origin"));
                let (socket, _) = tokio_tungstenite::connect_async(request)
                    .await
                    .expect("connect");
                let (mut sink, mut stream) = socket.split();
                let start = json!({"type": "start", "name": format!("c{i}"), "email": format!("c{i}@example.com")});
                sink.send(Message::text(start.to_string()))
                    .await
                    .expect("start");
                // Read everything the server sends (acks, events), as a widget does.
                tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
                sinks.push(sink);
            }
            sinks
        });
        let keys = wait_for_all_accepted(&core, n);
        let customers = sinks
            .into_iter()
            .enumerate()
            .map(|(i, sink)| {
                let key = keys
                    .get(&format!("c{i}"))
                    .copied()
                    .expect("every chat accepted");
                (sink, key)
            })
            .collect();
        let bench = Bench {
            _dir: dir,
            runtime,
            _plugins: plugins,
            service: Some(service),
            customers,
            lines: HashMap::new(),
            outstanding: Arc::new(Mutex::new(HashMap::new())),
            pending: Arc::new(AtomicUsize::new(0)),
            latencies: Arc::new(Mutex::new(Vec::new())),
            round: 0,
        };
        for a in 0..AGENTS {
            bench.watch(&core, &format!("a{a}"));
        }
        bench
    }

    /// A thread per agent that takes the agent's snapshots and times every new line.
    fn watch(&self, core: &CoreHandle, agent: &str) {
        line_timing::watch_lines(
            core,
            agent,
            self.outstanding.clone(),
            self.pending.clone(),
            self.latencies.clone(),
        );
    }

    /// One message on one connection (the next in turn) while all stay open; returns when its
    /// agent's snapshot shows it.
    fn single(&mut self) -> Duration {
        self.round += 1;
        let round = self.round;
        let started = Instant::now();
        let index = round % self.customers.len();
        let (sink, key) = &mut self.customers[index];
        let line = self.lines.entry(*key).or_insert(0);
        *line += 1;
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.outstanding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((*key, *line), Instant::now());
        let message = json!({"type": "message", "cid": format!("s{round}"), "text": "one"});
        self.runtime
            .block_on(sink.send(Message::text(message.to_string())))
            .expect("send");
        while self.pending.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        started.elapsed()
    }

    fn take_latencies(&self) -> Vec<Duration> {
        line_timing::take_sorted(&self.latencies)
    }

    /// One message on every connection; returns when every agent's snapshot shows them all.
    fn round(&mut self) -> Duration {
        self.round += 1;
        let round = self.round;
        let started = Instant::now();
        self.pending
            .fetch_add(self.customers.len(), Ordering::SeqCst);
        let (outstanding, lines) = (&self.outstanding, &mut self.lines);
        let customers = &mut self.customers;
        self.runtime.block_on(async {
            for (sink, key) in customers.iter_mut() {
                let line = lines.entry(*key).or_insert(0);
                *line += 1;
                outstanding
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((*key, *line), Instant::now());
                let message = json!({"type": "message", "cid": format!("r{round}"), "text": format!("message {round}")});
                sink.send(Message::text(message.to_string()))
                    .await
                    .expect("send");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.pending.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "messages lost");
            std::thread::sleep(Duration::from_micros(200));
        }
        started.elapsed()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

/// Waits until the agents have accepted all `n` chats; returns each customer name's core key.
fn wait_for_all_accepted(core: &CoreHandle, n: usize) -> HashMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut keys = HashMap::new();
        for a in 0..AGENTS {
            let snapshot = core
                .snapshot(&format!("a{a}"))
                .expect("snapshot")
                .expect("agent");
            for i in snapshot.interactions {
                if let Some(name) = i.contact.display_name {
                    keys.insert(name, i.key);
                }
            }
        }
        if keys.len() >= n {
            return keys;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} chats accepted",
            keys.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn webchat(c: &mut Criterion) {
    let n = connections();
    let mut bench = Bench::new(n);
    let mut group = c.benchmark_group("webchat");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(format!("one message on each of {n} connections"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bench.round()).sum());
    });
    let burst = bench.take_latencies();
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        format!("one message at a time, {n} connections open"),
        |b| {
            b.iter_custom(|iters| (0..iters).map(|_| bench.single()).sum());
        },
    );
    group.finish();
    let single = bench.take_latencies();
    for (what, latencies) in [
        ("bursts of one message per connection", burst),
        ("one message at a time", single),
    ] {
        println!(
            "webchat latency, customer socket -> agent snapshot, {n} connections, {what}, {} messages: \
             p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
}

criterion_group!(benches, webchat);
criterion_main!(benches);
