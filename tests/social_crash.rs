//! The social channels exactly once when the whole process is killed: the packaged plugin and
//! the core run in `agentdesk-test-host`; the fake platform delivers 500 signed webhooks (50
//! customers × 10 messages) and, as Meta and X do, sends again every one not answered 200; the
//! process gets `kill -9` at random moments in the middle. At the end every message is in its
//! customer's transcript exactly once, and every customer has exactly one conversation.

use crate::social_fakes::{
    FACEBOOK, Fake, FakeGraph, FakeX, TWITTER, config_extra, customer, entry, now_ms,
    x_config_extra, x_dm,
};
use crate::support::{HostProcess, Install};
use agentdesk_host::plugins::package::package;
use agentdesk_host::storage::History;
use agentdesk_tests::first_party_library;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const CUSTOMERS: usize = 50;
const MESSAGES: usize = 10;
const KILLS: usize = 8;
/// Each of the fake's four senders waits this long after a delivery: about 5 s for all.
const PACE_MS: u64 = 40;

/// One platform's case: its plugin, its fake, how its webhooks look and how its conversations
/// are named.
struct Case<'a> {
    plugin: &'static str,
    channel: &'static str,
    library: &'static str,
    fake: &'a Fake,
    /// The plugin's settings, webhooks on the given port.
    config: &'a dyn Fn(&Install, u16) -> String,
    /// The fake's `queue` control body for these deliveries.
    queue: &'a dyn Fn(Vec<Value>) -> Value,
    /// Delivery number `k` of customer `n`.
    webhook: &'a dyn Fn(usize, usize) -> Value,
    /// Customer `n`'s id, as the history finds it, and the subject of their conversation.
    customer: &'a dyn Fn(usize) -> (String, String),
}

/// Each customer's lines in the history, by customer, and how many conversations each has.
fn delivered(store: &Path, case: &Case<'_>) -> Vec<(usize, Vec<String>)> {
    let history = History::open(store).expect("history");
    (0..CUSTOMERS)
        .map(|n| {
            let (id, subject) = (case.customer)(n);
            let entries = history.search(None, Some(&id), 10).expect("search");
            let mine: Vec<_> = entries
                .iter()
                .filter(|e| e.subject.as_deref() == Some(&subject))
                .collect();
            let lines = mine
                .iter()
                .flat_map(|e| history.transcript(e.key, 0, 1000).expect("transcript"))
                .map(|l| l.text)
                .collect();
            (mine.len(), lines)
        })
        .collect()
}

fn expected(n: usize) -> Vec<String> {
    (0..MESSAGES).map(|k| format!("c{n}-m{k}")).collect()
}

fn kill_9s_during_500_webhooks(case: Case<'_>) {
    let fake = case.fake;
    let install = Install::new();
    package(&first_party_library(case.library), &install.plugins).expect("package");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let extra = (case.config)(&install, port);
    let config = install.write_config(&[case.plugin], &extra);
    let log = install.dir.path().join("host.log");
    fake.control(
        "config",
        json!({"webhook": format!("http://127.0.0.1:{port}/webhook")}),
    );
    // Message k of every customer before message k+1 of any, so conversations interleave.
    let webhooks: Vec<Value> = (0..MESSAGES)
        .flat_map(|k| (0..CUSTOMERS).map(move |n| (case.webhook)(n, k)))
        .collect();
    let total = webhooks.len();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("kill times from seed {seed}");
    let mut delays = crate::support::random_delays(seed, 150, 450);
    let mut host = HostProcess::start(&config, &log, case.channel, case.plugin);
    fake.control("queue", (case.queue)(webhooks));
    let mut killed_with = Vec::new();
    for _ in 0..KILLS {
        std::thread::sleep(delays.next().unwrap_or(Duration::from_millis(300)));
        killed_with.push(fake.get("progress")["acked"].as_u64().unwrap_or(0));
        host.kill();
        host = HostProcess::start(&config, &log, case.channel, case.plugin);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let progress = fake.get("progress");
        if progress["acked"].as_u64() == Some(total as u64) {
            eprintln!(
                "{total} webhooks in {} attempts; killed after {killed_with:?} acknowledged",
                progress["attempts"]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every webhook was acknowledged: {progress}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        killed_with
            .iter()
            .any(|&acked| acked > 0 && (acked as usize) < total),
        "three kills or more fell in the middle of the deliveries: {killed_with:?}"
    );
    let store = install.data.join("agentdesk.sqlite3");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = delivered(&store, &case);
        let wrong = found
            .iter()
            .enumerate()
            .find(|(n, (conversations, lines))| {
                let mut sorted = lines.clone();
                sorted.sort();
                let mut want = expected(*n);
                want.sort();
                *conversations != 1 || sorted != want
            });
        let Some((n, (conversations, lines))) = wrong else {
            break;
        };
        let mut distinct = lines.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            lines.len(),
            "customer {n}: a message twice: {lines:?}"
        );
        assert!(
            *conversations <= 1,
            "customer {n}: {conversations} conversations"
        );
        assert!(
            Instant::now() < deadline,
            "customer {n}: {conversations} conversations, lines {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    host.stop();
}

#[test]
fn facebook_kill_9s_during_500_webhooks_lose_and_double_nothing() {
    let fake = FakeGraph::start();
    let url = fake.url.clone();
    let now = now_ms();
    let psid = |n: usize| format!("P{n:05}");
    kill_9s_during_500_webhooks(Case {
        plugin: FACEBOOK,
        channel: "facebook",
        library: "agentdesk_facebook",
        fake: &fake,
        config: &|install, port| config_extra(install, &url, port, ""),
        queue: &|webhooks| json!({"webhooks": webhooks, "pace_ms": PACE_MS}),
        webhook: &|n, k| {
            json!([entry(vec![customer(
                &psid(n),
                &format!("mid-{n}-{k}"),
                &format!("c{n}-m{k}"),
                now + k as u64
            )])])
        },
        customer: &|n| {
            let id = psid(n);
            let subject = format!("Messenger: Messenger user …{id}");
            (id, subject)
        },
    });
}

#[test]
fn x_kill_9s_during_500_webhooks_lose_and_double_nothing() {
    let fake = FakeX::start();
    let url = fake.url.clone();
    let handle = |n: usize| format!("cust{n:05}");
    kill_9s_during_500_webhooks(Case {
        plugin: TWITTER,
        channel: "twitter",
        library: "agentdesk_twitter",
        fake: &fake,
        config: &|install, port| x_config_extra(install, &url, port),
        queue: &|activities| json!({"activities": activities, "pace_ms": PACE_MS}),
        webhook: &|n, k| {
            x_dm(
                &format!("dm-{n}-{k}"),
                &format!("{}", 7_000_000 + n),
                &handle(n),
                &format!("c{n}-m{k}"),
            )
        },
        customer: &|n| (handle(n), format!("X direct message: @{}", handle(n))),
    });
}
