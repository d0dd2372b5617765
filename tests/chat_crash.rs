//! Web chat exactly once when the whole process is killed: the packaged plugin and the core run
//! in `agentdesk-test-host`, twenty customers on raw WebSockets send bursts of messages, and the
//! process gets `kill -9` at a random moment, twenty times. After every restart each customer
//! resumes with its token and resends what was not acknowledged, as the widget does; then what
//! was acknowledged, what the customer's replay shows and what the agent's transcript holds are
//! the same messages, each once.

use crate::mailserver::free_port;
use crate::support::{HostProcess, Install};
use agentdesk_host::plugins::package::package;
use agentdesk_host::storage::History;
use agentdesk_tests::first_party_library;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CHAT: &str = "agentdesk.chat";
const ROUNDS: usize = 20;
const CUSTOMERS: usize = 20;
/// Between two messages of one customer in a burst.
const PACE: Duration = Duration::from_millis(30);
const WAIT: Duration = Duration::from_secs(20);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One customer across every round. Each message's text is its client id.
#[derive(Debug, Default)]
struct Customer {
    name: String,
    token: Option<String>,
    sent: Vec<String>,
    acked: BTreeSet<String>,
}

impl Customer {
    fn unacked(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter(|c| !self.acked.contains(*c))
            .cloned()
            .collect()
    }
}

async fn connect(ws: &str, origin: &str) -> Socket {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut request = ws.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("origin"));
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => return socket,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot connect to the web chat: {e}"),
        }
    }
}

async fn send(socket: &mut Socket, message: Value) -> bool {
    socket
        .send(Message::text(message.to_string()))
        .await
        .is_ok()
}

async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Starts or resumes the customer's chat; returns the client ids of the customer's lines the
/// replay shows, in order (the replay ends with the queue position: nobody answers these chats).
async fn attach(socket: &mut Socket, customer: &mut Customer) -> Vec<String> {
    let hello = match &customer.token {
        None => json!({"type": "start", "name": customer.name, "email": "c@example.com"}),
        Some(token) => json!({"type": "resume", "token": token, "last_seq": 0}),
    };
    assert!(send(socket, hello).await, "start or resume");
    let mut replayed = Vec::new();
    let mut welcomed = false;
    let read = async {
        while let Some(m) = next(socket).await {
            match m["type"].as_str() {
                Some("welcome") => {
                    customer.token = m["token"].as_str().map(String::from);
                    welcomed = true;
                }
                Some("event") if m["author"] == "customer" => {
                    replayed.push(m["cid"].as_str().unwrap_or_default().to_string());
                }
                Some("ack") => {
                    customer
                        .acked
                        .insert(m["cid"].as_str().unwrap_or_default().to_string());
                }
                Some("queue") if welcomed => return,
                Some("error") => panic!("{}: refused: {m}", customer.name),
                _ => {}
            }
        }
        panic!("{}: the connection closed during the replay", customer.name);
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("{}: no replay", customer.name));
    replayed
}

/// After a restart: resumes, resends what was not acknowledged and waits for every ack, then
/// resumes once more on a new connection. Checks that the first replay held everything
/// acknowledged before, and that the second replay is exactly what is acknowledged now, each
/// message once. Returns the second connection.
async fn settle(ws: String, origin: String, mut customer: Customer) -> (Customer, Socket) {
    let acked_before = customer.acked.clone();
    let mut socket = connect(&ws, &origin).await;
    let replayed: BTreeSet<String> = attach(&mut socket, &mut customer)
        .await
        .into_iter()
        .collect();
    assert!(
        acked_before.is_subset(&replayed),
        "{}: acknowledged but not replayed: {:?}",
        customer.name,
        acked_before.difference(&replayed).collect::<Vec<_>>()
    );
    for cid in customer.unacked() {
        assert!(
            send(
                &mut socket,
                json!({"type": "message", "cid": cid, "text": cid})
            )
            .await,
            "resend"
        );
    }
    let wait = async {
        while customer.acked.len() < customer.sent.len() {
            match next(&mut socket).await {
                Some(m) if m["type"] == "ack" => {
                    customer
                        .acked
                        .insert(m["cid"].as_str().unwrap_or_default().to_string());
                }
                Some(_) => {}
                None => panic!("{}: closed while resending", customer.name),
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("{}: resent messages not acknowledged", customer.name));
    drop(socket);
    let mut socket = connect(&ws, &origin).await;
    let replayed = attach(&mut socket, &mut customer).await;
    let distinct: BTreeSet<String> = replayed.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        replayed.len(),
        "{}: a message replayed twice",
        customer.name
    );
    assert_eq!(
        distinct, customer.acked,
        "{}: replay and acknowledgements differ",
        customer.name
    );
    (customer, socket)
}

/// Sends a message every [`PACE`] until the connection breaks (the host was killed).
async fn burst(mut customer: Customer, mut socket: Socket, round: usize) -> Customer {
    let mut ticks = tokio::time::interval(PACE);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let cid = format!("r{round}m{}", customer.sent.len());
                customer.sent.push(cid.clone());
                if !send(&mut socket, json!({"type": "message", "cid": cid, "text": cid})).await {
                    return customer;
                }
            }
            m = next(&mut socket) => match m {
                Some(m) if m["type"] == "ack" => {
                    customer.acked.insert(m["cid"].as_str().unwrap_or_default().to_string());
                }
                Some(_) => {}
                None => return customer,
            },
        }
    }
}

/// The customer lines of every chat in the agent's history, by customer name.
fn delivered(store: &Path, customers: &[Customer]) -> Vec<Vec<String>> {
    let history = History::open(store).expect("history");
    customers
        .iter()
        .map(|c| {
            let entries = history.search(None, Some(&c.name), 10).expect("search");
            let found: Vec<_> = entries
                .iter()
                .filter(|e| e.subject.as_deref() == Some(&format!("Web chat with {}", c.name)))
                .collect();
            let [entry] = found.as_slice() else {
                panic!("{}: {} chats in the history", c.name, found.len());
            };
            history
                .transcript(entry.key, 0, 1 << 20)
                .expect("transcript")
                .into_iter()
                .filter(|l| l.party == c.name)
                .map(|l| l.text)
                .collect()
        })
        .collect()
}

/// Waits until the agent's transcripts hold exactly the acknowledged messages, each once.
fn check_delivered(store: &Path, customers: &[Customer], round: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = delivered(store, customers);
        let mismatch = customers.iter().zip(&lines).find(|(c, lines)| {
            let distinct: BTreeSet<String> = lines.iter().cloned().collect();
            distinct.len() != lines.len() || distinct != c.acked
        });
        let Some((customer, lines)) = mismatch else {
            return;
        };
        let distinct: BTreeSet<&String> = lines.iter().collect();
        assert_eq!(
            distinct.len(),
            lines.len(),
            "round {round}: {} has a message twice in the agent's transcript",
            customer.name
        );
        assert!(
            Instant::now() < deadline,
            "round {round}: {}: the agent has {} messages, {} were acknowledged; missing {:?}",
            customer.name,
            lines.len(),
            customer.acked.len(),
            customer
                .acked
                .iter()
                .filter(|c| !lines.contains(c))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn twenty_kill_9s_during_bursts_lose_and_double_no_acknowledged_message() {
    let install = Install::new();
    package(&first_party_library("agentdesk_chat"), &install.plugins).expect("package chat");
    let port = free_port();
    let extra = format!(
        "[plugins.settings.\"{CHAT}\"]\nport = {port}\nmessages_per_second = 100\n\
         message_burst = 100\nmax_connections_per_address = 100\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\n"
    );
    let config: PathBuf = install.write_config(&[CHAT], &extra);
    let log = install.dir.path().join("host.log");
    let store = install.data.join("agentdesk.sqlite3");
    let (ws, origin) = (
        format!("ws://127.0.0.1:{port}/ws"),
        format!("http://127.0.0.1:{port}"),
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("kill times from seed {seed}");
    let mut delays = crate::support::random_delays(seed, 100, 500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut customers: Vec<Customer> = (0..CUSTOMERS)
        .map(|n| Customer {
            name: format!("Rae Q{n:02}Z"),
            ..Customer::default()
        })
        .collect();
    for round in 0..=ROUNDS {
        let host = HostProcess::start(&config, &log, "chat", CHAT);
        let settled: Vec<(Customer, Socket)> = runtime.block_on(async {
            let tasks: Vec<_> = customers
                .drain(..)
                .map(|c| tokio::spawn(settle(ws.clone(), origin.clone(), c)))
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.expect("a customer failed"));
            }
            out
        });
        let (settled_customers, sockets): (Vec<Customer>, Vec<Socket>) =
            settled.into_iter().unzip();
        check_delivered(&store, &settled_customers, round);
        if round == ROUNDS {
            drop(sockets);
            customers = settled_customers;
            host.stop();
            break;
        }
        let tasks: Vec<_> = settled_customers
            .into_iter()
            .zip(sockets)
            .map(|(c, s)| runtime.spawn(burst(c, s, round)))
            .collect();
        std::thread::sleep(delays.next().unwrap_or(Duration::from_millis(300)));
        host.kill();
        customers = runtime.block_on(async {
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.expect("a customer failed"));
            }
            out
        });
    }
    let sent: usize = customers.iter().map(|c| c.sent.len()).sum();
    let acked: usize = customers.iter().map(|c| c.acked.len()).sum();
    eprintln!("{sent} messages sent over {ROUNDS} kills, {acked} acknowledged and delivered");
    assert_eq!(sent, acked, "every message was acknowledged in the end");
    assert!(
        sent > CUSTOMERS * ROUNDS,
        "the bursts sent messages: {sent}"
    );
}
