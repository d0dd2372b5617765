//! The team hub at scale (issue 16): 1,000 agents, each with open chats; customers write (plugin
//! events) and agents switch Do Not Disturb (commands), and every affected agent's snapshot is
//! delivered to its client. The same core, the same workload, measured both ways in one run:
//! - **in process**: the core service's snapshot stream for every agent (`InProcess::watch_into`),
//!   the embedded desktop's path;
//! - **over NATS**: the hub (`agentdesk_hub::Hub`) serving that core through a real `nats-server`
//!   on loopback, and a load client standing for the 1,000 desktops: one NATS connection that logs
//!   every agent in, subscribes to every agent's snapshot subject and sends the agents' commands
//!   on their request subjects, as the desktops would.
//!
//! Figures (printed, for docs/performance.md): p50/p99 from a customer's message entering the
//! core to the client holding (decoded) the snapshot that shows it; sustained inputs per second
//! for a burst of 3,000 messages and 1,000 commands until every snapshot showing them has
//! arrived; the memory of this process (core + hub + load client) and of `nats-server`.
//! Run with `cargo bench -p agentdesk-tests --bench hub_scale`.

#[path = "../mailserver.rs"]
#[allow(dead_code)]
mod mailserver;
#[path = "../nats.rs"]
#[allow(dead_code)]
mod nats;
// The core benchmarks' team: 1,000 chat agents answering automatically.
#[path = "../../host/benches/load/mod.rs"]
#[allow(dead_code)]
mod load;

use agentdesk_client::in_process::InProcess;
use agentdesk_client::remote::wire::{self, Answer, Envelope, Reply, Request};
use agentdesk_client::{AgentCommand, AgentSnapshot, CommandId};
use agentdesk_host::service::CoreHandle;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_hub::{Hub, HubOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam_channel::Receiver;
use futures_util::StreamExt;
use load::{AGENTS, agent_id, offer, policy};
use nats::NatsServer;
use plugin_api::{Event, InteractionId, MessageContent, MessageReceived, Party};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CHATS_PER_AGENT: usize = 2;
const WAIT: Duration = Duration::from_secs(60);
const PLUGIN: &str = "p";

static MESSAGES: AtomicU64 = AtomicU64::new(0);

fn message(chat: usize) -> Event {
    let n = MESSAGES.fetch_add(1, Ordering::Relaxed);
    Event::MessageReceived(MessageReceived {
        interaction: InteractionId::new(format!("c-{chat}")),
        from: Party {
            id: format!("customer-{chat}"),
            role: Party::CUSTOMER.into(),
            display_name: "Customer".into(),
            address: None,
        },
        message: MessageContent {
            id: format!("m-{n}"),
            text: format!("message {n}"),
            attachments: vec![],
        },
    })
}

fn vm_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What the clients have seen: per chat key, the transcript length last shown; per agent, DND.
#[derive(Default)]
struct Seen {
    lines: BTreeMap<u64, usize>,
    dnd: BTreeMap<String, bool>,
}

impl Seen {
    fn take(&mut self, snapshot: &AgentSnapshot) {
        self.dnd.insert(snapshot.agent.clone(), snapshot.dnd);
        for i in &snapshot.interactions {
            if i.owner.as_deref() == Some(snapshot.agent.as_str()) {
                let lines = self.lines.entry(i.key).or_default();
                *lines = (*lines).max(i.detail.lines);
            }
        }
    }
}

/// The running core with its team logged in, Ready and holding their chats.
struct Team {
    _dir: tempfile::TempDir,
    _service: agentdesk_host::service::CoreService,
    core: CoreHandle,
    in_process: InProcess,
    agents: usize,
    /// Chat number → (key, owner).
    chats: Vec<(u64, String)>,
    /// Transcript length expected per chat key.
    expected: BTreeMap<u64, usize>,
}

impl Team {
    fn start(agents: usize) -> Team {
        let dir = tempfile::tempdir().expect("tmp");
        let policy = policy();
        let service = agentdesk_tests::start_core(dir.path(), policy.clone(), None);
        let core = service.handle();
        for n in 0..agents {
            let session = core.login(&agent_id(n)).expect("login");
            for command in [
                AgentCommand::LogOnChannel {
                    channel: "chat".into(),
                },
                AgentCommand::SetReady {
                    channel: "chat".into(),
                },
            ] {
                session.send(command).expect("ready");
            }
        }
        let chats = agents * CHATS_PER_AGENT;
        for n in 0..chats {
            core.plugin_event(PLUGIN, offer(n as u64)).expect("offer");
        }
        let in_process = InProcess::new(
            core.clone(),
            &policy,
            None,
            Arc::new(SystemClock),
            Some(dir.path().to_path_buf()),
        );
        // Who holds which chat, once every chat is active.
        let deadline = Instant::now() + WAIT;
        let owners = loop {
            let mut owners = BTreeMap::new();
            for n in 0..agents {
                let snapshot = in_process
                    .snapshot(&agent_id(n))
                    .expect("snapshot")
                    .expect("agent");
                for i in snapshot.interactions {
                    owners.insert(i.key, agent_id(n));
                }
            }
            if owners.len() == chats {
                break owners;
            }
            assert!(
                Instant::now() < deadline,
                "only {} chats active",
                owners.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // Chats arrive in order and are keyed in order: chat n is the n-th key.
        let chats: Vec<(u64, String)> = owners.into_iter().collect();
        let expected = chats.iter().map(|(key, _)| (*key, 0)).collect();
        Team {
            _dir: dir,
            _service: service,
            core,
            in_process,
            agents,
            chats,
            expected,
        }
    }

    /// A customer writes in chat `n`; returns its key and owner.
    fn customer_writes(&mut self, n: usize) -> (u64, String) {
        let (key, owner) = self.chats[n % self.chats.len()].clone();
        self.core
            .plugin_event(PLUGIN, message(n % self.chats.len()))
            .expect("message");
        *self.expected.entry(key).or_default() += 1;
        (key, owner)
    }
}

/// Waits on `stream` until `done(seen)`; returns when.
fn until_seen(
    stream: &Receiver<(Instant, AgentSnapshot)>,
    seen: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) -> Instant {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, snapshot) = stream
            .recv_timeout(left)
            .expect("the snapshot arrives in time");
        seen.take(&snapshot);
        if done(seen) {
            return at;
        }
    }
}

/// One message at a time: from the plugin event to the client holding the snapshot showing it.
fn latencies(
    team: &mut Team,
    stream: &Receiver<(Instant, AgentSnapshot)>,
    seen: &mut Seen,
    samples: usize,
    offset: usize,
) -> Vec<Duration> {
    (0..samples)
        .map(|n| {
            let started = Instant::now();
            let (key, _) = team.customer_writes(offset + n * 7);
            let want = team.expected[&key];
            let at = until_seen(stream, seen, |s| s.lines.get(&key) >= Some(&want));
            at - started
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    eprintln!(
        "hub_scale: {what}: p50 {:.3?}, p99 {:.3?}, max {:.3?} ({} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
        samples.len()
    );
}

/// The load client: stands for every agent's desktop over one NATS connection.
struct LoadClient {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    snapshots: Receiver<(Instant, AgentSnapshot)>,
    next_id: AtomicU64,
}

impl LoadClient {
    fn connect(url: &str, agents: usize) -> LoadClient {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(async_nats::connect(url)).expect("connect");
        let (forward, snapshots) = crossbeam_channel::unbounded();
        let mut subscription = runtime
            .block_on(client.subscribe(wire::snapshots("*")))
            .expect("subscribe");
        runtime.spawn(async move {
            while let Some(message) = subscription.next().await {
                let at = Instant::now();
                let snapshot: AgentSnapshot = wire::decode(&message.payload).expect("snapshot");
                if forward.send((at, snapshot)).is_err() {
                    break;
                }
            }
        });
        let load = LoadClient {
            runtime,
            client,
            snapshots,
            next_id: AtomicU64::new(1),
        };
        // Every desktop logs in: the hub starts publishing its snapshots.
        let logins: Vec<Request> = (0..agents)
            .map(|_| Request::Login {
                id: load.command_id(),
            })
            .collect();
        let subjects = (0..agents).map(|n| wire::requests(&agent_id(n)));
        load.ask_all(subjects.zip(logins).collect());
        load
    }

    fn command_id(&self) -> CommandId {
        CommandId::new(format!(
            "load-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Sends every request at once and waits for every answer.
    fn ask_all(&self, requests: Vec<(String, Request)>) {
        let client = self.client.clone();
        self.runtime.block_on(async move {
            let asked = requests.into_iter().map(|(subject, request)| {
                let client = client.clone();
                let body = wire::encode(&Envelope {
                    v: wire::VERSION,
                    request,
                })
                .expect("encode");
                async move {
                    let answer = client.request(subject, body.into()).await.expect("answer");
                    match wire::decode::<Reply>(&answer.payload).expect("reply") {
                        Reply::Ok(Answer::Done | Answer::Welcome { .. }) => {}
                        other => panic!("refused: {other:?}"),
                    }
                }
            });
            futures_util::future::join_all(asked).await;
        });
    }
}

/// 3,000 messages and 1,000 DND switches (one per agent) as fast as they go in, until every
/// client holds the snapshots showing them all; returns inputs per second.
fn burst(
    team: &mut Team,
    stream: &Receiver<(Instant, AgentSnapshot)>,
    seen: &mut Seen,
    commands: impl FnOnce(&Team, Vec<(String, bool)>),
) -> f64 {
    let dnd: Vec<(String, bool)> = (0..team.agents)
        .map(|n| {
            let agent = agent_id(n);
            let on = !seen.dnd.get(&agent).copied().unwrap_or(false);
            (agent, on)
        })
        .collect();
    let messages = 3 * team.agents;
    let started = Instant::now();
    for n in 0..messages {
        team.customer_writes(n);
    }
    commands(team, dnd.clone());
    let expected = team.expected.clone();
    let done = until_seen(stream, seen, |s| {
        expected.iter().all(|(k, n)| s.lines.get(k) >= Some(n))
            && dnd.iter().all(|(a, on)| s.dnd.get(a) == Some(on))
    });
    (messages + team.agents) as f64 / (done - started).as_secs_f64()
}

fn scale(c: &mut Criterion) {
    let agents = AGENTS;
    let set_up = Instant::now();
    let mut team = Team::start(agents);
    eprintln!(
        "hub_scale: {agents} agents, {} chats open, set up in {:.1?}",
        team.chats.len(),
        set_up.elapsed()
    );

    // ---- in process ----
    let (forward, watched) = crossbeam_channel::unbounded();
    for n in 0..agents {
        team.in_process
            .watch_into(&agent_id(n), forward.clone())
            .expect("watch");
    }
    let (stamp, stream) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        while let Ok(snapshot) = watched.recv() {
            if stamp.send((Instant::now(), snapshot)).is_err() {
                break;
            }
        }
    });
    let mut seen = Seen::default();
    until_seen(&stream, &mut seen, |s| s.dnd.len() == agents);
    report(
        "in process, message -> snapshot",
        latencies(&mut team, &stream, &mut seen, 2_000, 0),
    );
    let local_rate = burst(&mut team, &stream, &mut seen, |team, dnd| {
        let answers: Vec<_> = dnd
            .into_iter()
            .map(|(agent, on)| {
                team.core
                    .submit_command(&agent, None, AgentCommand::SetDnd { on })
            })
            .collect();
        for answer in answers {
            answer.recv().expect("answered").expect("dnd");
        }
    });
    eprintln!("hub_scale: in process, sustained: {local_rate:.0} inputs/s");
    drop(forward);
    drop(stream);
    let mut group = c.benchmark_group("hub_scale");
    group.sample_size(10);

    // ---- over NATS ----
    let server = NatsServer::start();
    let options = HubOptions {
        desktop_grace: Duration::from_secs(3600),
        ..HubOptions::new(server.url.clone())
    };
    let hub = Hub::serve(&options, team.in_process.clone()).expect("the hub serves");
    let load = LoadClient::connect(&server.url, agents);
    let stream = load.snapshots.clone();
    let mut seen = Seen::default();
    until_seen(&stream, &mut seen, |s| s.dnd.len() == agents);
    report(
        "over NATS, message -> snapshot",
        latencies(&mut team, &stream, &mut seen, 2_000, 1),
    );
    let remote_rate = burst(&mut team, &stream, &mut seen, |_, dnd| {
        let requests = dnd
            .into_iter()
            .map(|(agent, on)| {
                let request = Request::Command {
                    id: load.command_id(),
                    command: AgentCommand::SetDnd { on },
                };
                (wire::requests(&agent), request)
            })
            .collect();
        load.ask_all(requests);
    });
    eprintln!(
        "hub_scale: over NATS, sustained: {remote_rate:.0} inputs/s ({:.2} x in process)",
        remote_rate / local_rate
    );
    eprintln!(
        "hub_scale: memory: this process (core + hub + load client) {} MiB resident, peak {} MiB; \
         nats-server {} MiB resident",
        vm_kib("self", "VmRSS:") >> 10,
        vm_kib("self", "VmHWM:") >> 10,
        vm_kib(&server.pid().to_string(), "VmRSS:") >> 10
    );
    // Criterion's own figure: one message to its snapshot over NATS, repeated.
    let mut n = 2;
    group.bench_function("message_to_remote_snapshot", |b| {
        b.iter_custom(|iters| {
            latencies(&mut team, &stream, &mut seen, iters as usize, n)
                .into_iter()
                .sum()
        });
        n += 1;
    });
    group.finish();
    eprintln!("hub_scale: hub counters: {:?}", hub.counters());
    hub.stop();
}

criterion_group!(benches, scale);
criterion_main!(benches);
