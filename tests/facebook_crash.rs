//! Messenger exactly once when the whole process is killed: the packaged plugin and the core run
//! in `agentdesk-test-host`; the fake Graph API delivers 500 signed webhooks (50 customers × 10
//! messages) and, as Meta does, sends again every one not answered 200; the process gets
//! `kill -9` at random moments in the middle. At the end every message is in its customer's
//! transcript exactly once, and every customer has exactly one conversation.

use crate::social_fakes::{FACEBOOK, FakeGraph, config_extra, customer, entry, now_ms};
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

fn psid(n: usize) -> String {
    format!("P{n:05}")
}

/// Each customer's lines in the history, by customer, and how many conversations each has.
fn delivered(store: &Path) -> Vec<(usize, Vec<String>)> {
    let history = History::open(store).expect("history");
    (0..CUSTOMERS)
        .map(|n| {
            let subject = format!("Messenger: Messenger user …{}", psid(n));
            let entries = history.search(None, Some(&psid(n)), 10).expect("search");
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

fn random_delays(seed: u64) -> impl Iterator<Item = Duration> {
    let mut x = seed | 1;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_millis(150 + x % 450)
    })
}

#[test]
fn facebook_kill_9s_during_500_webhooks_lose_and_double_nothing() {
    let fake = FakeGraph::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_facebook"), &install.plugins).expect("package");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let extra = config_extra(&install, &fake.url, port, "");
    let config = install.write_config(&[FACEBOOK], &extra);
    let log = install.dir.path().join("host.log");
    fake.control(
        "config",
        json!({"webhook": format!("http://127.0.0.1:{port}/webhook")}),
    );
    let now = now_ms();
    // Message k of every customer before message k+1 of any, so conversations interleave.
    let webhooks: Vec<Value> = (0..MESSAGES)
        .flat_map(|k| {
            (0..CUSTOMERS).map(move |n| {
                json!([entry(vec![customer(
                    &psid(n),
                    &format!("mid-{n}-{k}"),
                    &format!("c{n}-m{k}"),
                    now + k as u64
                )])])
            })
        })
        .collect();
    let total = webhooks.len();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("kill times from seed {seed}");
    let mut delays = random_delays(seed);
    let mut host = HostProcess::start(&config, &log, "facebook", FACEBOOK);
    fake.control("queue", json!({"webhooks": webhooks, "pace_ms": PACE_MS}));
    let mut killed_with = Vec::new();
    for _ in 0..KILLS {
        std::thread::sleep(delays.next().unwrap_or(Duration::from_millis(300)));
        killed_with.push(fake.get("progress")["acked"].as_u64().unwrap_or(0));
        host.kill();
        host = HostProcess::start(&config, &log, "facebook", FACEBOOK);
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
        let found = delivered(&store);
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
