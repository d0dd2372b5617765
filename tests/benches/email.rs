//! Ingest rate of the email channel: messages per second fetched from Dovecot over IMAP, parsed
//! (MIME, charsets, HTML to text, attachments stored as files) and offered to the host. The release
//! build of the real plugin runs in a real `PluginHost`; the mailbox is seeded as Maildir files.
//!
//! `EMAIL_BENCH_MESSAGES` (default 10,000) sets the mailbox size:
//! `cargo bench -p agentdesk-tests --bench email`; with `EMAIL_BENCH_ONCE=1` a single pass is
//! timed instead of criterion's ten (`EMAIL_BENCH_ONCE=4`: four passes, each printed).

#[path = "../mailserver.rs"]
#[allow(dead_code)]
mod mailserver;

use agentdesk_host::plugins::package::package;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{build_workspace_plugin_release, config_text};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mailserver::MailServer;
use plugin_api::Event;
use std::path::Path;
use std::time::{Duration, Instant};

const EMAIL: &str = "agentdesk.email";

/// The mix, in turn: a plain-text question, an HTML message with a 6 KB PDF attachment, and a
/// windows-1252 message with an encoded subject.
fn message(n: usize) -> Vec<u8> {
    let head = format!(
        "From: Customer {n} <c{n}@example.com>\r\nTo: support@example.com\r\n\
         Message-ID: <bench-{n}@example.com>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
    );
    match n % 3 {
        0 => format!(
            "{head}Subject: Order {n}\r\n\r\n{}",
            "Where is my order? It was due last week and nothing has arrived yet.\r\n".repeat(20)
        )
        .into_bytes(),
        1 => format!(
            "{head}Subject: Invoice {n}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>The <b>invoice</b> \
             {n} is wrong.</p><script>x()</script></body></html>\r\n--b\r\n\
             Content-Type: application/pdf; name=\"invoice-{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n",
            "JVBERi0xLjQgbm90IHJlYWxseSBhIHBkZiBidXQgY2xvc2UgZW5vdWdoIGZvciBhIGJlbmNo\r\n"
                .repeat(80)
        )
        .into_bytes(),
        _ => {
            let mut raw = format!(
                "{head}Subject: =?ISO-8859-1?Q?Gr=FC=DFe_{n}?=\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=windows-1252\r\n\r\n"
            )
            .into_bytes();
            raw.extend_from_slice(&b"Preis: 100 \x80, \x93gut\x94, sch\xf6n.\r\n".repeat(10));
            raw
        }
    }
}

fn ingest_rate(c: &mut Criterion) {
    let count: usize = std::env::var("EMAIL_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let library = build_workspace_plugin_release("agentdesk-email", "agentdesk_email");
    let server = MailServer::start(false);
    for n in 0..count {
        server.drop_into_maildir("support", &format!("{n}.M{n}P1.bench"), &message(n));
    }
    // Dovecot indexes the new files at the first SELECT; that is not the plugin's work.
    let out = server.imap("support", &["SELECT INBOX"]);
    assert!(
        out[0]
            .iter()
            .any(|l| l.trim_end() == format!("* {count} EXISTS")),
        "the mailbox holds {count} messages: {:?}",
        out[0]
    );
    if let Ok(passes) = std::env::var("EMAIL_BENCH_ONCE") {
        for _ in 1..passes.parse::<usize>().unwrap_or(1) {
            let took = one_pass(&library, &server, count);
            eprintln!("email: a pass took {took:.1?}");
        }
        let fetched = fetch_only(&server, count);
        let took = one_pass(&library, &server, count);
        eprintln!(
            "email: {count} messages fetched, parsed and offered in {took:.1?}: {:.0} messages/s \
             (IMAP fetch alone: {fetched:.1?}, {:.0} messages/s)",
            count as f64 / took.as_secs_f64(),
            count as f64 / fetched.as_secs_f64()
        );
        return;
    }
    let mut group = c.benchmark_group("email");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(count as u64));
    group.bench_function(format!("imap_to_offer_{count}_messages"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += one_pass(&library, &server, count);
            }
            total
        })
    });
    group.bench_function(format!("imap_fetch_only_{count}_messages"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| fetch_only(&server, count)).sum())
    });
    group.finish();
}

/// The baseline: the same mailbox fetched with the plugin's IMAP client in batches of 200, nothing
/// parsed, stored or offered.
fn fetch_only(server: &MailServer, count: usize) -> Duration {
    let settings = agentdesk_email::settings::Settings {
        imap_port: server.imap,
        ..Default::default()
    };
    let password = mailserver::support_password();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let mut imap = agentdesk_email::imap::Imap::open(&settings, None, &password)
            .await
            .expect("login");
        imap.select("INBOX").await.expect("select");
        let uids = imap.uids_after(0).await.expect("search");
        let mut fetched = 0;
        for chunk in uids.chunks(200) {
            fetched += imap.fetch(chunk).await.expect("fetch").len();
        }
        let took = started.elapsed();
        assert_eq!(fetched, count);
        imap.logout().await;
        took
    })
}

/// A fresh installation (nothing read yet) on the seeded mailbox; the time from the host's start
/// until the last message's body is emitted.
fn one_pass(library: &Path, server: &MailServer, count: usize) -> Duration {
    let dir = tempfile::tempdir().expect("install");
    let (plugins, data) = (dir.path().join("plugins"), dir.path().join("data"));
    package(library, &plugins).expect("package");
    let extra = format!(
        "[plugins.settings.\"{EMAIL}\"]\n{}\n[channels.email]\ncapacity = 3\n",
        server.plugin_settings("")
    );
    let config_path = dir.path().join("agentdesk.toml");
    std::fs::write(&config_path, config_text(&plugins, &data, &[EMAIL], &extra)).expect("config");
    let config = AdminConfig::load(&config_path).expect("config");
    let started = Instant::now();
    let host = PluginHost::start(&config, StartMode::Run);
    assert_eq!(host.running_ids(), vec![EMAIL.to_string()]);
    let (mut offers, mut bodies) = (0, 0);
    let deadline = started + Duration::from_secs(120 + count as u64 / 10);
    while bodies < count {
        assert!(
            Instant::now() < deadline,
            "only {offers} offers and {bodies} bodies of {count}"
        );
        match host.recv_event(Duration::from_millis(100)).map(|e| e.event) {
            Some(Event::Offer(_)) => offers += 1,
            Some(Event::MessageReceived(m)) if m.from.role == "customer" => bodies += 1,
            _ => {}
        }
    }
    let took = started.elapsed();
    assert_eq!(offers, count, "every message offered once");
    drop(host);
    took
}

criterion_group!(benches, ingest_rate);
criterion_main!(benches);
