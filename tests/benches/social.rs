//! Benchmark of the Messenger channel on loopback: signed webhook POST → plugin (signature check,
//! journal sync, group commit) → host → core → the agent's client snapshot, with 1,000 open
//! conversations (`SOCIAL_BENCH_CONVERSATIONS=100` for a quick run), 10 agents auto-answering.
//! A load client signs Messenger webhooks (`X-Hub-Signature-256`, HMAC-SHA256 of the raw body
//! with the app secret) and POSTs them from several connections at once (`SOCIAL_BENCH_CLIENTS`,
//! 16 by default), one webhook per connection as Meta sends them. One round = one message from
//! every customer; criterion's throughput line is webhooks/s. The latency of every message, from
//! the moment its POST starts to the first snapshot of its agent that counts its line, is
//! collected across rounds and its percentiles printed at the end, with the journal's syncs per
//! webhook (from the plugin's stop line).
//!
//! The Graph API is needed only for the customers' first messages (a profile lookup, before any
//! measurement): a stub on loopback answers it with a name.
//!
//! Run with `cargo bench -p agentdesk-tests --bench social`; figures go to docs/performance.md.

#[path = "common/line_timing.rs"]
mod line_timing;
use agentdesk_host::PluginHost;
use agentdesk_host::service::{CoreHandle, CoreService};
use agentdesk_tests::{build_workspace_plugin_release, start_bench_host};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use line_timing::Outstanding;
use serde_json::json;
use sha2::Sha256;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const AGENTS: usize = 10;
const PAGE: &str = "PAGE1";
const APP_ID: &str = "4242";
const APP_SECRET: &str = "bench-app-secret";

/// One webhook to send: the customer's index, the core key and line it should become.
struct Job {
    customer: usize,
    key: u64,
    line: usize,
    mid: String,
    /// When it is due (paced runs: latency counts from then, so a client falling behind shows).
    due: Option<Instant>,
}

struct Bench {
    _dir: tempfile::TempDir,
    _plugins: Arc<PluginHost>,
    service: Option<CoreService>,
    jobs: crossbeam_channel::Sender<Job>,
    /// Each customer's conversation key and the lines it has.
    conversations: Vec<(u64, usize)>,
    outstanding: Outstanding,
    pending: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    round: usize,
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn psid(customer: usize) -> String {
    format!("u{customer}")
}

/// A Messenger webhook with one customer message, as Meta sends it.
fn webhook(customer: usize, mid: &str, text: &str) -> Vec<u8> {
    let at = now_ms();
    json!({"object": "page", "entry": [{"id": PAGE, "time": at, "messaging": [
        {"sender": {"id": psid(customer)}, "recipient": {"id": PAGE}, "timestamp": at,
         "message": {"mid": mid, "text": text}}]}]})
    .to_string()
    .into_bytes()
}

/// POSTs a signed webhook on a connection of its own; returns the status.
fn post(authority: &str, body: &[u8]) -> u16 {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    let signature = hex::encode(mac.finalize().into_bytes());
    let Ok(mut stream) = TcpStream::connect(authority) else {
        return 0;
    };
    let _ = stream.set_nodelay(true);
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    if stream.write_all(&request).is_err() {
        return 0;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The Graph API's profile lookup, answered with a name for any id (first messages only).
fn graph_stub() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let id = first
                .split(' ')
                .nth(1)
                .and_then(|t| t.split('?').next())
                .and_then(|p| p.rsplit('/').next())
                .unwrap_or("")
                .to_string();
            let body = json!({"first_name": "Customer", "last_name": id, "id": id}).to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}/v21.0")
}

impl Bench {
    fn new(n: usize, clients: usize) -> Self {
        let library = build_workspace_plugin_release("agentdesk-facebook", "agentdesk_facebook");
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = dir.path().join("facebook.secrets");
        std::fs::write(
            &secrets,
            format!(
                "FACEBOOK_APP_SECRET={APP_SECRET}\nFACEBOOK_PAGE_TOKEN=bench-token\n\
                 FACEBOOK_VERIFY_TOKEN=bench-verify\n"
            ),
        )
        .expect("secrets");
        let settings = format!(
            "[plugins.settings.\"agentdesk.facebook\"]\nport = 0\npage_id = \"{PAGE}\"\n\
             app_id = \"{APP_ID}\"\ngraph_url = \"{}\"\nsecrets_file = \"{}\"\nworker_threads = 2\n\
             [channels.facebook]\ncapacity = {}\n",
            graph_stub(),
            secrets.display(),
            n.div_ceil(AGENTS) + 1
        );
        let (plugins, service, endpoint) = start_bench_host(
            dir.path(),
            &library,
            "agentdesk.facebook",
            "facebook",
            AGENTS,
            &settings,
        );
        let core = service.handle();
        let url = endpoint["url"].as_str().expect("webhook url");
        let authority = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("authority")
            .to_string();
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let outstanding: Outstanding = Arc::new(Mutex::new(HashMap::new()));
        let failures = Arc::new(AtomicUsize::new(0));
        let pending = Arc::new(AtomicUsize::new(0));
        for _ in 0..clients {
            let (queue, authority, outstanding, failures, pending) = (
                queue.clone(),
                authority.clone(),
                outstanding.clone(),
                failures.clone(),
                pending.clone(),
            );
            std::thread::spawn(move || {
                while let Ok(job) = queue.recv() {
                    let body = webhook(job.customer, &job.mid, &format!("message {}", job.mid));
                    if job.line > 0 {
                        let due = job.due.unwrap_or_else(Instant::now);
                        outstanding
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert((job.key, job.line), due);
                    }
                    let status = post(&authority, &body);
                    if status != 200 {
                        eprintln!("webhook for {} answered {status}", psid(job.customer));
                        failures.fetch_add(1, Ordering::SeqCst);
                        if job.line > 0 {
                            outstanding
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&(job.key, job.line));
                            pending.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        // Every customer's first message opens a conversation, offered and auto-answered.
        for customer in 0..n {
            jobs.send(Job {
                customer,
                key: 0,
                line: 0,
                mid: format!("first-{customer}"),
                due: None,
            })
            .expect("queue");
        }
        let opened = wait_for_all_accepted(&core, n);
        let conversations = (0..n)
            .map(|c| {
                *opened
                    .get(&format!("facebook:{}", psid(c)))
                    .expect("every conversation accepted")
            })
            .collect();
        let bench = Bench {
            _dir: dir,
            _plugins: plugins,
            service: Some(service),
            jobs,
            conversations,
            outstanding,
            pending,
            failures,
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

    /// Queues one message from each of `customers`; returns when every agent's snapshot shows
    /// them all.
    fn send(&mut self, customers: impl Iterator<Item = usize>) -> Duration {
        self.round += 1;
        let started = Instant::now();
        for customer in customers {
            let (key, lines) = &mut self.conversations[customer];
            *lines += 1;
            self.pending.fetch_add(1, Ordering::SeqCst);
            self.jobs
                .send(Job {
                    customer,
                    key: *key,
                    line: *lines,
                    mid: format!("m{}-{customer}", self.round),
                    due: None,
                })
                .expect("queue");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.pending.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "messages lost");
            std::thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(self.failures.load(Ordering::SeqCst), 0, "webhooks refused");
        started.elapsed()
    }

    /// Webhooks at a steady `rate` per second for `seconds`, customers in turn; returns when every
    /// agent's snapshot shows them all, with the time that took.
    fn paced(&mut self, rate: usize, seconds: usize) -> Duration {
        self.round += 1;
        let total = rate * seconds;
        let started = Instant::now();
        for i in 0..total {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let customer = i % self.conversations.len();
            let (key, lines) = &mut self.conversations[customer];
            *lines += 1;
            self.pending.fetch_add(1, Ordering::SeqCst);
            self.jobs
                .send(Job {
                    customer,
                    key: *key,
                    line: *lines,
                    mid: format!("p{}-{i}", self.round),
                    due: Some(due),
                })
                .expect("queue");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.pending.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "messages lost");
            std::thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(self.failures.load(Ordering::SeqCst), 0, "webhooks refused");
        started.elapsed()
    }

    fn take_latencies(&self) -> Vec<Duration> {
        line_timing::take_sorted(&self.latencies)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

/// Waits until the agents have accepted all `n` conversations; returns each conversation's core
/// key and its lines by the customer's address.
fn wait_for_all_accepted(core: &CoreHandle, n: usize) -> HashMap<String, (u64, usize)> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut keys = HashMap::new();
        for a in 0..AGENTS {
            let snapshot = core
                .snapshot(&format!("a{a}"))
                .expect("snapshot")
                .expect("agent");
            for i in snapshot.interactions {
                let accepted = matches!(i.state, agentdesk_host::core::InteractionState::Active);
                if let Some(address) = i.contact.addresses.first()
                    && accepted
                    && i.detail.lines > 0
                {
                    keys.insert(address.value.clone(), (i.key, i.detail.lines));
                }
            }
        }
        if keys.len() >= n {
            return keys;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} conversations accepted",
            keys.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints the plugin's log lines about its journal (its stop line: syncs for stored webhooks).
struct JournalLines;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JournalLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.contains("journal:") {
            println!("plugin: {}", message.0);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn social(c: &mut Criterion) {
    let n = setting("SOCIAL_BENCH_CONVERSATIONS", 1000);
    let clients = setting("SOCIAL_BENCH_CLIENTS", 16);
    use tracing_subscriber::layer::SubscriberExt;
    let _log =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(JournalLines));
    let mut bench = Bench::new(n, clients);
    let mut group = c.benchmark_group("social");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(
        format!("one signed webhook from each of {n} customers, {clients} connections"),
        |b| b.iter_custom(|iters| (0..iters).map(|_| bench.send(0..n)).sum()),
    );
    let burst = bench.take_latencies();
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function(
        format!("one signed webhook at a time, {n} conversations open"),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        next = (next + 1) % n;
                        bench.send(std::iter::once(next))
                    })
                    .sum()
            })
        },
    );
    group.finish();
    let single = bench.take_latencies();
    // The goal's load: a steady rate (latency from each webhook's due time).
    let rate = setting("SOCIAL_BENCH_RATE", 2000);
    let seconds = setting("SOCIAL_BENCH_SECONDS", 10);
    let took = bench.paced(rate, seconds);
    let paced = bench.take_latencies();
    println!(
        "social steady load: {} webhooks due at {rate}/s over {seconds} s, all in the agents' \
         snapshots after {took:?} ({:.0} webhooks/s)",
        rate * seconds,
        (rate * seconds) as f64 / took.as_secs_f64()
    );
    // Stops the plugin: its stop line says how many syncs the journal made.
    drop(bench);
    for (what, latencies) in [
        (format!("{clients} connections at once"), burst),
        ("one webhook at a time".to_string(), single),
        (format!("steady {rate}/s from their due time"), paced),
    ] {
        println!(
            "social latency, webhook POST -> agent snapshot, {n} conversations, {what}, {} webhooks: \
             p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
}

criterion_group!(benches, social);
criterion_main!(benches);
