//! IM latency from one desktop to another through the hub and a real `nats-server` on loopback,
//! with 1,000 agents connected: Ann's desktop sends, and the time runs until Bob's desktop has the
//! line (his snapshot says a line came, and the page of lines he then asks for holds it — what
//! the desk does). 998 other agents are logged in over NATS and send their heartbeats every
//! 500 ms, as their desktops would. Median and 99th percentile of single IMs are measured in the
//! same run; criterion reports the mean.
//!
//! Run with `cargo bench -p agentdesk-tests --bench im`; figures go to docs/performance.md.

use agentdesk_client::in_process::Embedded;
use agentdesk_client::remote::wire::{self, Envelope, Request};
use agentdesk_client::remote::{Remote, RemoteOptions};
use agentdesk_client::{AgentCommand, CommandId, Connection, DeskClient, InteractionState};
use agentdesk_host::AdminConfig;
use agentdesk_host::plugins::package::package;
use agentdesk_hub::{Hub, HubOptions};
use agentdesk_tests::{build_workspace_plugin_release, config_text};
use criterion::{Criterion, criterion_group, criterion_main};
use plugin_api::Address;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AGENTS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(30);

struct Nats(Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats(dir: &std::path::Path) -> (Nats, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, format!("listen: 127.0.0.1:{port}\n")).expect("conf");
    let child = Command::new("nats-server")
        .args(["-c", &conf.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Nats(child), format!("nats://127.0.0.1:{port}"))
}

/// Logs agents `a2`..`a999` in over NATS and keeps their heartbeats going every 500 ms.
fn crowd(url: String) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = ready.clone();
    runtime.spawn(async move {
        let client = async_nats::connect(url).await.expect("connect");
        let ask = |agent: String, request: Request| {
            let client = client.clone();
            async move {
                let body = wire::encode(&Envelope {
                    v: wire::VERSION,
                    request,
                })
                .expect("encode");
                client.request(wire::requests(&agent), body.into()).await
            }
        };
        let others: Vec<String> = (2..AGENTS).map(|n| format!("a{n}")).collect();
        for agent in &others {
            let id = CommandId::new(format!("{agent}-login"));
            ask(agent.clone(), Request::Login { id })
                .await
                .expect("login");
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            for agent in &others {
                tokio::spawn(ask(agent.clone(), Request::Heartbeat));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(std::sync::atomic::Ordering::Relaxed) < AGENTS - 2 {
        assert!(Instant::now() < deadline, "the crowd did not log in");
        std::thread::sleep(Duration::from_millis(50));
    }
    runtime
}

fn ok(client: &dyn DeskClient, command: AgentCommand) {
    client
        .command(client.next_id(), command)
        .wait(WAIT)
        .expect("command");
}

fn im_latency(c: &mut Criterion) {
    let work = tempfile::tempdir().expect("temp dir");
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins");
    let library = build_workspace_plugin_release("agentdesk-plugin-im", "agentdesk_im");
    package(&library, &plugins).expect("package");
    let mut agents = String::from(
        "[plugins.settings.\"agentdesk.im\"]\nburst = 1000000\nper_second = 1000000.0\n",
    );
    for n in 0..AGENTS {
        agents.push_str(&format!(
            "[[agents]]\nid = \"a{n}\"\nname = \"Agent {n}\"\nchannels = [\"im\"]\n"
        ));
    }
    let text = config_text(
        &plugins,
        &work.path().join("data"),
        &["agentdesk.im"],
        &agents,
    );
    let config = AdminConfig::parse(&text, "bench").expect("config");
    let embedded = Embedded::start(&config).expect("embedded");
    let (_nats, url) = nats(work.path());
    let hub = Hub::serve(&HubOptions::new(url.clone()), embedded.in_process()).expect("hub");
    let _crowd = crowd(url.clone());

    let desk = |agent: &str| {
        let options = RemoteOptions {
            agent: Some(agent.into()),
            ..RemoteOptions::new(url.clone())
        };
        let remote = Remote::connect(&options).expect("connect");
        remote.login(agent).wait(WAIT).expect("login")
    };
    let (ann, bob) = (desk("a0"), desk("a1"));
    for client in [&ann, &bob] {
        ok(
            &**client,
            AgentCommand::LogOnChannel {
                channel: "im".into(),
            },
        );
        ok(
            &**client,
            AgentCommand::SetReady {
                channel: "im".into(),
            },
        );
    }
    let bob_sees = bob.watch();
    ok(
        &*ann,
        AgentCommand::StartOutbound {
            channel: "im".into(),
            to: Address::new(Address::AGENT, "a1"),
            from: None,
        },
    );
    let (mine, theirs) = {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "the IM did not ring");
            let s = bob_sees.recv_timeout(WAIT).expect("snapshot");
            if let Some(i) = s
                .interactions
                .iter()
                .find(|i| matches!(i.state, InteractionState::Offered { .. }))
            {
                let theirs = i.key;
                ok(&*bob, AgentCommand::Accept { key: theirs });
                let a = ann.watch().recv_timeout(WAIT).expect("ann");
                let mine = a
                    .interactions
                    .iter()
                    .find(|i| i.channel == "im")
                    .expect("im")
                    .key;
                break (mine, theirs);
            }
        }
    };
    let mut shown = 0usize;
    // One IM, sent by Ann, until Bob's desk has its line.
    let mut one = |n: usize| -> Duration {
        while bob_sees.try_recv().is_ok() {}
        let text = format!("message {n}");
        let started = Instant::now();
        ann.send_message(ann.next_id(), mine, &text)
            .wait(WAIT)
            .expect("sent");
        loop {
            let s = bob_sees.recv_timeout(WAIT).expect("Bob's snapshot");
            let lines = s
                .interactions
                .iter()
                .find(|i| i.key == theirs)
                .map_or(0, |i| i.detail.lines);
            if lines > shown {
                let page = bob.live_lines(theirs, shown, 10).wait(WAIT).expect("lines");
                if page.iter().any(|l| l.line.text == text) {
                    shown = lines;
                    return started.elapsed();
                }
            }
        }
    };
    let mut samples: Vec<f64> = (0..2_000).map(|n| one(n).as_secs_f64() * 1e3).collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "IM desktop to desktop through the hub, {AGENTS} agents connected: median {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms ({} IMs)",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    );
    let mut group = c.benchmark_group("im");
    group.sample_size(20);
    let mut n = 1_000_000;
    group.bench_function("desktop_to_desktop_1000_agents", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    n += 1;
                    one(n)
                })
                .sum()
        })
    });
    group.finish();
    hub.stop();
}

criterion_group!(benches, im_latency);
criterion_main!(benches);
