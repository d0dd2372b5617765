//! Benchmarks of the co-browse channel on loopback, the plugin run by plugin-api's `FakeHost` (the
//! relay is the plugin's own: the host only sees the offer and the accept).
//!
//! - `relay`: 200 sessions (`COBROWSE_BENCH_SESSIONS`), each a customer WebSocket replaying rrweb
//!   events recorded from the test site in Chromium (`tests/fixtures/cobrowse/acme-session.json`)
//!   and a viewer WebSocket. One round = one recorded batch on every session, until every viewer
//!   has it; criterion's throughput line is batches/s. The latency of every batch (customer send →
//!   viewer receive) is printed as percentiles at the end.
//! - `mirroring`: two headless Chromiums, the customer on an example page, the agent on the
//!   viewer: the time from a DOM change on the customer's page to the change in the agent's view,
//!   both read from the browsers' clocks (same machine); percentiles printed at the end. Skipped
//!   when chromedriver is missing.
//!
//! Run with `cargo bench -p agentdesk-tests --bench cobrowse`; figures go to docs/performance.md.

#[path = "../browser.rs"]
#[allow(dead_code)]
mod browser;
#[path = "../mailserver.rs"]
#[allow(dead_code)]
mod mailserver;

use agentdesk_cobrowse::Cobrowse;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use plugin_api::testing::{FakeHost, FakeHostOptions};
use plugin_api::{Accept, AgentRef, Command, Event, InteractionId};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sink = SplitSink<Socket, Message>;

const SITE: &str = "http://bench.example";

fn sessions() -> usize {
    std::env::var("COBROWSE_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn recording() -> (Value, Vec<Value>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/cobrowse/acme-session.json"
    );
    let text = std::fs::read_to_string(path).expect("recording");
    let recording: Value = serde_json::from_str(&text).expect("recording json");
    let incremental = recording["incremental"]
        .as_array()
        .expect("incremental")
        .clone();
    (recording["snapshot"].clone(), incremental)
}

fn plugin(n: usize) -> (FakeHost, String) {
    let limit = n * 2 + 10;
    let mut fake = FakeHost::with_options::<Cobrowse>(FakeHostOptions {
        settings: json!({
            "port": 0,
            "allowed_origins": [SITE],
            "max_connections_per_address": limit,
            "max_connections": limit,
            "messages_per_second": 10000,
            "message_burst": 10000,
            "worker_threads": 2,
        }),
        queue: 65536,
        deadline: Duration::from_secs(10),
    })
    .expect("create");
    fake.start().expect("start");
    let endpoint =
        std::fs::read_to_string(fake.data_dir().join("endpoint.json")).expect("endpoint");
    let endpoint: Value = serde_json::from_str(&endpoint).expect("endpoint json");
    (fake, endpoint["url"].as_str().expect("url").to_string())
}

async fn connect(url: &str, origin: &str) -> Socket {
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Origin", origin.parse().expect("origin"));
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(s, _)| s)
        .expect("connect")
}

async fn read_until(socket: &mut Socket, kind: &str) -> Value {
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if value["type"] == kind {
                return value;
            }
        }
    }
    panic!("closed before `{kind}`");
}

/// Accepts the session with `code` in the fake host and returns its viewer token.
fn accept(fake: &mut FakeHost, code: &str) -> String {
    let id = format!("cobrowse-{code}.1");
    fake.wait_for(
        Duration::from_secs(10),
        |e| matches!(e, Event::Offer(o) if o.interaction.as_str() == id),
    )
    .expect("offered");
    fake.handle(Command::Accept(Accept {
        interaction: InteractionId::new(id.clone()),
        agent: AgentRef {
            id: "a".into(),
            display_name: "Agent".into(),
        },
    }))
    .expect("accept");
    let event = fake
        .wait_for(
            Duration::from_secs(10),
            |e| matches!(e, Event::CaseDataChanged(c) if c.interaction.as_str() == id),
        )
        .expect("viewer link");
    let Event::CaseDataChanged(changed) = event else {
        unreachable!()
    };
    let link = changed
        .case_data
        .iter()
        .find(|f| f.key == "view")
        .expect("view")
        .value
        .clone();
    link.rsplit('/').next().expect("token").to_string()
}

struct Relay {
    _fake: FakeHost,
    runtime: tokio::runtime::Runtime,
    customers: Vec<Sink>,
    incremental: Vec<Value>,
    sent: Arc<Mutex<Vec<Instant>>>,
    pending: Arc<AtomicUsize>,
    done: Arc<Notify>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    round: usize,
    bytes: usize,
}

impl Relay {
    fn new(n: usize) -> Relay {
        let (mut fake, url) = plugin(n);
        let ws = url.replacen("http://", "ws://", 1);
        let (snapshot, incremental) = recording();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let pending = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let mut customers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut customer = runtime.block_on(connect(&format!("{ws}/ws/customer"), SITE));
            let code = runtime.block_on(async {
                customer
                    .send(Message::text(json!({"type": "start"}).to_string()))
                    .await
                    .expect("start");
                let session = read_until(&mut customer, "session").await;
                customer
                    .send(Message::text(json!({"type": "offer"}).to_string()))
                    .await
                    .expect("offer");
                session["code"].as_str().expect("code").to_string()
            });
            let token = accept(&mut fake, &code);
            let mut viewer = runtime.block_on(connect(&format!("{ws}/ws/view/{token}"), &url));
            runtime.block_on(async {
                read_until(&mut customer, "snapshot").await;
                let batch = json!({"type": "events", "events": snapshot});
                customer
                    .send(Message::text(batch.to_string()))
                    .await
                    .expect("snapshot");
                read_until(&mut viewer, "events").await;
            });
            let (sink, mut stream) = customer.split();
            // Read what the relay sends the page, as the script does.
            runtime.spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            let (sent, pending, done, latencies) = (
                sent.clone(),
                pending.clone(),
                done.clone(),
                latencies.clone(),
            );
            runtime.spawn(async move {
                while let Some(Ok(message)) = viewer.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let at = Instant::now();
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let Some(round) = value["events"]
                        .as_array()
                        .and_then(|e| e.last())
                        .and_then(|e| e["data"]["payload"]["round"].as_u64())
                    else {
                        continue;
                    };
                    let started = sent.lock().expect("sent").get(round as usize).copied();
                    if let Some(started) = started {
                        latencies.lock().expect("latencies").push(at - started);
                    }
                    if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                        done.notify_one();
                    }
                }
            });
            customers.push(sink);
        }
        Relay {
            _fake: fake,
            runtime,
            customers,
            incremental,
            sent,
            pending,
            done,
            latencies,
            round: 0,
            bytes: 0,
        }
    }

    /// One recorded batch on every session, until every viewer has it.
    fn round(&mut self) {
        let round = self.round;
        self.round += 1;
        let mut events = self.incremental[round % self.incremental.len()]
            .as_array()
            .expect("batch")
            .clone();
        // rrweb's custom event (type 5) names the round, for the viewers' clocks.
        events.push(json!({"type": 5, "timestamp": 0, "data": {"tag": "bench", "payload": {"round": round}}}));
        let text = json!({"type": "events", "events": events}).to_string();
        self.bytes += text.len() * self.customers.len();
        self.pending.store(self.customers.len(), Ordering::Release);
        self.sent.lock().expect("sent").push(Instant::now());
        let (customers, done) = (&mut self.customers, self.done.clone());
        self.runtime.block_on(async {
            let notified = done.notified();
            for sink in customers.iter_mut() {
                sink.send(Message::text(text.clone())).await.expect("send");
            }
            tokio::time::timeout(Duration::from_secs(30), notified)
                .await
                .expect("every viewer got the round");
        });
    }
}

fn percentiles(what: &str, mut all: Vec<Duration>) {
    if all.is_empty() {
        return;
    }
    all.sort();
    let at = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{what}: {} samples, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        all[all.len() - 1].as_secs_f64() * 1e3
    );
}

fn relay(c: &mut Criterion) {
    let n = sessions();
    let mut relay = Relay::new(n);
    let mut group = c.benchmark_group("cobrowse");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    group.bench_function(
        format!("relay {n} sessions, one recorded batch each"),
        |b| b.iter(|| relay.round()),
    );
    group.finish();
    let latencies = std::mem::take(&mut *relay.latencies.lock().expect("latencies"));
    println!(
        "relay: {} rounds, {:.1} MB relayed",
        relay.round,
        relay.bytes as f64 / 1e6
    );
    percentiles("relay latency (customer send → viewer receive)", latencies);
}

/// The example page, served on a port chosen now, for the mirroring benchmark.
fn serve_page(cobrowse: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bench</title></head><body>\
         <h1>Mirroring</h1><p id=\"news\">start</p>\
         <script src=\"{cobrowse}/cobrowse.js\"></script></body></html>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(&mut stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    origin
}

fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn mirroring(c: &mut Criterion) {
    if std::process::Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("mirroring: skipped (no chromedriver)");
        return;
    }
    // The page's origin must be allowed before the plugin starts: pick the plugin's port first.
    let port = browser::free_port();
    let cobrowse = format!("http://127.0.0.1:{port}");
    let site = serve_page(&cobrowse);
    let mut fake = FakeHost::with_options::<Cobrowse>(FakeHostOptions {
        settings: json!({"port": port, "allowed_origins": [site]}),
        deadline: Duration::from_secs(10),
        ..FakeHostOptions::default()
    })
    .expect("create");
    fake.start().expect("start");
    let customer = browser::Browser::open();
    let agent = browser::Browser::open();
    customer.goto(&format!("{site}/"));
    wait("the co-browse button", || {
        (customer.eval(
            "const b = document.getElementById('ad-cobrowse-button'); return !!(b && !b.hidden);",
        ) == json!(true))
        .then_some(())
    });
    customer.click("#ad-cobrowse-button");
    let code = wait("the code", || {
        customer
            .eval("return window.AgentdeskCobrowse.code;")
            .as_str()
            .map(str::to_string)
    });
    customer.eval("window.AgentdeskCobrowse.offer(); return null;");
    let token = accept(&mut fake, &code);
    agent.goto(&format!("{cobrowse}/view/{token}"));
    wait("the mirrored page", || {
        let shown = agent.eval(
            "const f = document.querySelector('#screen iframe'); const d = f && f.contentDocument;\
             return !!(d && d.getElementById('news'));",
        );
        (shown == json!(true)).then_some(())
    });
    // The agent's page notes when each change shows (its own clock, like the customer's).
    agent.eval(
        "window.seen = {}; const d = document.querySelector('#screen iframe').contentDocument;\
         new MutationObserver(() => { const p = d.getElementById('news');\
           const m = p && /change (\\d+)/.exec(p.textContent);\
           if (m && !window.seen[m[1]]) window.seen[m[1]] = Date.now(); })\
           .observe(d, {subtree: true, childList: true, characterData: true});\
         return null;",
    );
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut n = 0u64;
    let mut group = c.benchmark_group("cobrowse");
    group.sample_size(10);
    group.bench_function("mirroring a DOM change, customer page to agent view", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let sent = customer
                    .eval(&format!(
                        "const t = Date.now(); document.getElementById('news').textContent = 'change {n}'; return t;"
                    ))
                    .as_u64()
                    .expect("time");
                let seen = wait("the change in the agent's view", || {
                    agent.eval(&format!("return window.seen['{n}'] || null;")).as_u64()
                });
                let latency = Duration::from_millis(seen.saturating_sub(sent));
                latencies.lock().expect("latencies").push(latency);
                total += latency;
            }
            total
        })
    });
    group.finish();
    let all = std::mem::take(&mut *latencies.lock().expect("latencies"));
    percentiles("mirroring latency (browser clocks, ms resolution)", all);
}

criterion_group!(benches, relay, mirroring);
criterion_main!(benches);
