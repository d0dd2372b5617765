//! SIP transactions over UDP (RFC 3261 §17): the server side matched as §17.2.3 says and its
//! answers kept for retransmitted requests, final non-2xx answers to an INVITE resent until the ACK
//! (Timers G, H, I); the client side resending our requests (Timers A/E, B/F). Holds no dialog or
//! call: what to answer is the user agent's business, when to send it again is decided here.

use crate::sip::{self, Message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 3261 timer T1 (round-trip estimate).
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 timer T2 (the longest retransmission interval).
pub const T2: Duration = Duration::from_secs(4);
/// RFC 3261 timer T4 (how long a message may stay in the network): Timer I over UDP.
pub const T4: Duration = Duration::from_secs(5);
/// 64·T1: Timers B, F, H and J, and how long an answered transaction is kept.
pub const TX_LIFETIME: Duration = Duration::from_secs(32);
/// How long an outbound INVITE may ring after a provisional answer (RFC 3261 Timer C).
pub const TIMER_C: Duration = Duration::from_secs(180);
/// A server transaction that never got a final answer is forgotten after this (a ringing call
/// ends long before: `max_ring_secs`).
const UNANSWERED_LIFETIME: Duration = Duration::from_secs(320);
/// How often answered transactions are swept out when no final answer is being resent: a scan
/// of the whole table every 50 ms tick (tens of thousands of entries at a high call rate, 32 s
/// each) would hold the user agent's lock for nothing.
const SWEEP: Duration = Duration::from_secs(1);
/// The prefix of RFC 3261 branches (§8.1.1.7); others come from RFC 2543 peers.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a server transaction (RFC 3261 §17.2.3). An ACK carries the method of the
/// INVITE it acknowledges; a CANCEL is a transaction of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// An RFC 3261 branch: the branch, the top Via's sent-by and the method.
    Branch {
        /// The top Via's branch (with the magic cookie).
        branch: String,
        /// The top Via's `host:port`, lower-cased, port 5060 when absent.
        sent_by: String,
        /// The method (ACK counted as INVITE).
        method: String,
    },
    /// An RFC 2543 request (no magic cookie): Request-URI, From tag, Call-ID, CSeq number, the
    /// whole top Via and the method. The To tag is left out so that the ACK of a non-2xx answer,
    /// which carries our tag, still finds its INVITE (the INVITE had none).
    Legacy {
        /// The Request-URI.
        uri: String,
        /// The From tag, if any.
        from_tag: Option<String>,
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        cseq: u32,
        /// The top Via, whitespace removed.
        via: String,
        /// The method (ACK counted as INVITE).
        method: String,
    },
}

impl ServerKey {
    /// The key of a request; `None` when it lacks a Via or a method.
    pub fn of(request: &Message) -> Option<ServerKey> {
        let via = request.top_via()?;
        let method = match request.method()? {
            "ACK" => "INVITE",
            other => other,
        }
        .to_string();
        match sip::param(via, "branch") {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => Some(ServerKey::Branch {
                branch: branch.to_string(),
                sent_by: sent_by(via)?,
                method,
            }),
            _ => Some(ServerKey::Legacy {
                uri: request.uri()?.to_string(),
                from_tag: request.from_tag().map(String::from),
                call_id: request.call_id()?.to_string(),
                cseq: request.cseq()?.0,
                via: via.split_whitespace().collect(),
                method,
            }),
        }
    }

    /// The same key with another method: the INVITE a CANCEL names (RFC 3261 §9.2).
    pub fn with_method(mut self, name: &str) -> ServerKey {
        match &mut self {
            ServerKey::Branch { method, .. } | ServerKey::Legacy { method, .. } => {
                *method = name.to_string();
            }
        }
        self
    }
}

/// The sent-by of a Via value (`SIP/2.0/UDP host:port;params`), normalised for comparison.
pub fn sent_by(via: &str) -> Option<String> {
    let head = via.split(';').next()?;
    // sent-protocol is `name / version / transport`, with optional whitespace around the slashes.
    let mut rest = head;
    for _ in 0..2 {
        rest = rest.split_once('/')?.1;
    }
    let rest = rest.trim_start();
    let transport_end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let host: String = rest[transport_end..]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let has_port = match host.rfind(']') {
        Some(end) => host[end..].contains(':'),
        None => host.contains(':'),
    };
    Some(if has_port {
        host
    } else {
        format!("{host}:5060")
    })
}

/// Where a server transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// No final answer yet (Trying, Proceeding).
    Proceeding,
    /// A final non-2xx answer to an INVITE, resent until the ACK (Timer G) or Timer H.
    Completed {
        next: Instant,
        interval: Duration,
        give_up: Instant,
    },
    /// The ACK came: further ACKs are absorbed until Timer I.
    Confirmed { until: Instant },
    /// A final answer to a non-INVITE (Timer J), or a 2xx to an INVITE (RFC 6026's Accepted):
    /// kept to answer retransmissions.
    Answered { until: Instant },
}

struct ServerTx {
    /// Where its responses go.
    to: SocketAddr,
    /// The last response sent.
    last: Option<Vec<u8>>,
    state: ServerState,
    created: Instant,
}

/// What a request is to the server transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// A new request (or the ACK of a 2xx, which belongs to the dialog): the user agent serves it.
    New,
    /// A retransmission: the transaction's last response is sent again (none yet: nothing).
    Retransmission(Option<(Vec<u8>, SocketAddr)>),
    /// The ACK of a final non-2xx answer, absorbed by its transaction.
    AckAbsorbed,
}

/// What the server transactions' timers ask for.
#[derive(Debug, Default)]
pub struct ServerTimers {
    /// Final answers to send again (Timer G).
    pub resend: Vec<(Vec<u8>, SocketAddr)>,
    /// Final non-2xx answers to INVITEs never acknowledged (Timer H fired).
    pub unacknowledged: usize,
}

/// The server transactions, by [`ServerKey`].
#[derive(Default)]
pub struct ServerTransactions {
    table: HashMap<ServerKey, ServerTx>,
    /// How many are resending a final answer (Completed): the ticks that must visit them.
    resending: usize,
    next_sweep: Option<Instant>,
}

impl ServerTransactions {
    /// Takes in a request that arrived from `from` with key `key`.
    pub fn arrive(&mut self, key: &ServerKey, is_ack: bool, from: SocketAddr) -> Arrival {
        let now = Instant::now();
        match self.table.get_mut(key) {
            None if is_ack => Arrival::New,
            None => {
                self.table.insert(
                    key.clone(),
                    ServerTx {
                        to: from,
                        last: None,
                        state: ServerState::Proceeding,
                        created: now,
                    },
                );
                Arrival::New
            }
            Some(tx) if is_ack => match tx.state {
                ServerState::Completed { .. } => {
                    tx.state = ServerState::Confirmed { until: now + T4 };
                    self.resending = self.resending.saturating_sub(1);
                    Arrival::AckAbsorbed
                }
                ServerState::Confirmed { .. } => Arrival::AckAbsorbed,
                // The ACK of a 2xx with the INVITE's own branch (RFC 2543 peers): the dialog's.
                ServerState::Proceeding | ServerState::Answered { .. } => Arrival::New,
            },
            Some(tx) => Arrival::Retransmission(tx.last.clone().map(|bytes| (bytes, tx.to))),
        }
    }

    /// Records the response `bytes` (status `code`) sent to `to` for the request with `key`.
    pub fn answered(&mut self, key: ServerKey, code: u16, bytes: Vec<u8>, to: SocketAddr) {
        let now = Instant::now();
        let invite = matches!(&key, ServerKey::Branch { method, .. } | ServerKey::Legacy { method, .. } if method == "INVITE");
        let tx = self.table.entry(key).or_insert(ServerTx {
            to,
            last: None,
            state: ServerState::Proceeding,
            created: now,
        });
        tx.to = to;
        tx.last = Some(bytes);
        if code >= 200 && tx.state == ServerState::Proceeding {
            tx.state = if invite && code >= 300 {
                self.resending += 1;
                ServerState::Completed {
                    next: now + T1,
                    interval: T1,
                    give_up: now + TX_LIFETIME,
                }
            } else {
                ServerState::Answered {
                    until: now + TX_LIFETIME,
                }
            };
        }
    }

    /// Runs the timers: resends what is due, forgets what is over.
    pub fn tick(&mut self, now: Instant) -> ServerTimers {
        let mut timers = ServerTimers::default();
        if self.resending == 0 && self.next_sweep.is_some_and(|due| now < due) {
            return timers;
        }
        self.next_sweep = Some(now + SWEEP);
        let mut resending = 0;
        self.table.retain(|_, tx| match &mut tx.state {
            ServerState::Proceeding => now.duration_since(tx.created) < UNANSWERED_LIFETIME,
            ServerState::Completed {
                next,
                interval,
                give_up,
            } => {
                if now >= *give_up {
                    timers.unacknowledged += 1;
                    return false;
                }
                if now >= *next {
                    if let Some(bytes) = &tx.last {
                        timers.resend.push((bytes.clone(), tx.to));
                    }
                    *interval = (*interval * 2).min(T2);
                    *next = now + *interval;
                }
                resending += 1;
                true
            }
            ServerState::Confirmed { until } | ServerState::Answered { until } => now < *until,
        });
        self.resending = resending;
        timers
    }

    /// How many server transactions are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }
}

/// What a client transaction of ours is for: what its final answer leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The INVITE of a call we dial.
    Invite(String),
    /// A re-INVITE (hold or resume) of a call.
    ReInvite(String),
    /// A BYE.
    Bye,
    /// A REFER (transfer) of a call.
    Refer(String),
    /// A REGISTER.
    Register,
}

/// A request of ours, resent until answered.
pub struct ClientTx {
    bytes: Vec<u8>,
    /// Where it goes.
    pub to: SocketAddr,
    invite: bool,
    next: Instant,
    interval: Duration,
    deadline: Instant,
    /// A provisional answer came (an INVITE is then no longer resent, and may ring Timer C).
    pub provisional: bool,
    /// What its answer leads to.
    pub purpose: Purpose,
}

/// What the client transactions' timers ask for.
#[derive(Default)]
pub struct ClientTimers {
    /// Requests to send again (Timers A and E).
    pub resend: Vec<(Vec<u8>, SocketAddr)>,
    /// Transactions that got no final answer in time (Timers B, F, C).
    pub expired: Vec<ClientTx>,
}

/// Our client transactions, by branch (we mint every branch, so it is unique; a CANCEL shares
/// its INVITE's and is not kept here).
#[derive(Default)]
pub struct ClientTransactions {
    table: HashMap<String, ClientTx>,
}

impl ClientTransactions {
    /// Starts a transaction for `request`, already sent as `bytes` to `to`.
    pub fn start(&mut self, request: &Message, bytes: Vec<u8>, to: SocketAddr, purpose: Purpose) {
        let now = Instant::now();
        let branch = request.branch().unwrap_or_default().to_string();
        self.table.insert(
            branch,
            ClientTx {
                bytes,
                to,
                invite: request.method() == Some("INVITE"),
                next: now + T1,
                interval: T1,
                deadline: now + TX_LIFETIME,
                provisional: false,
                purpose,
            },
        );
    }

    /// Whether a transaction with this branch is open.
    pub fn contains(&self, branch: &str) -> bool {
        self.table.contains_key(branch)
    }

    /// A provisional answer came for `branch`: its purpose, if it is ours.
    pub fn provisional(&mut self, branch: &str) -> Option<&Purpose> {
        let tx = self.table.get_mut(branch)?;
        tx.provisional = true;
        if tx.invite {
            // Ringing: wait for an answer as long as a proxy would (Timer C), not 32 s.
            tx.deadline = Instant::now() + TIMER_C;
        }
        Some(&tx.purpose)
    }

    /// A final answer came for `branch`: the transaction ends.
    pub fn finished(&mut self, branch: &str) -> Option<ClientTx> {
        self.table.remove(branch)
    }

    /// Runs the timers.
    pub fn tick(&mut self, now: Instant) -> ClientTimers {
        let mut timers = ClientTimers::default();
        let expired: Vec<String> = self
            .table
            .iter()
            .filter(|(_, tx)| now >= tx.deadline)
            .map(|(branch, _)| branch.clone())
            .collect();
        for branch in expired {
            if let Some(tx) = self.table.remove(&branch) {
                timers.expired.push(tx);
            }
        }
        for tx in self.table.values_mut() {
            if now >= tx.next && !(tx.invite && tx.provisional) {
                timers.resend.push((tx.bytes.clone(), tx.to));
                tx.interval = if tx.invite {
                    tx.interval * 2
                } else {
                    (tx.interval * 2).min(T2)
                };
                tx.next = now + tx.interval;
            }
        }
        timers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(via: &str, method: &str) -> Message {
        Message::parse(
            format!(
                "{method} sip:2001@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=f\r\n\
                 To: <sip:2001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("parses")
    }

    #[test]
    fn the_same_branch_from_two_senders_is_two_transactions() {
        let a = request("SIP/2.0/UDP 127.0.0.1:5001;branch=z9hG4bK-same", "INVITE");
        let b = request("SIP/2.0/UDP 127.0.0.1:5002;branch=z9hG4bK-same", "INVITE");
        assert_ne!(ServerKey::of(&a), ServerKey::of(&b));
        let spaced = request("SIP / 2.0 / UDP  127.0.0.1 ;branch=z9hG4bK-same", "INVITE");
        let default_port = request("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-same", "INVITE");
        assert_eq!(ServerKey::of(&spaced), ServerKey::of(&default_port));
    }

    #[test]
    fn an_ack_matches_its_invite_and_a_cancel_does_not() {
        let invite = request("SIP/2.0/UDP h:1;branch=z9hG4bK-1", "INVITE");
        let ack = request("SIP/2.0/UDP h:1;branch=z9hG4bK-1", "ACK");
        let cancel = request("SIP/2.0/UDP h:1;branch=z9hG4bK-1", "CANCEL");
        assert_eq!(ServerKey::of(&invite), ServerKey::of(&ack));
        assert_ne!(ServerKey::of(&invite), ServerKey::of(&cancel));
        assert_eq!(
            ServerKey::of(&cancel).map(|k| k.with_method("INVITE")),
            ServerKey::of(&invite)
        );
    }

    #[test]
    fn rfc_2543_branches_match_on_the_request_fields() {
        let a = request("SIP/2.0/UDP h:1;branch=old-1", "INVITE");
        let b = request("SIP/2.0/UDP h:1;branch=old-1", "INVITE");
        assert_eq!(ServerKey::of(&a), ServerKey::of(&b));
        assert!(matches!(ServerKey::of(&a), Some(ServerKey::Legacy { .. })));
        let other_call = Message {
            headers: a
                .headers
                .iter()
                .map(|(n, v)| {
                    let v = if n == "Call-ID" {
                        "d".into()
                    } else {
                        v.clone()
                    };
                    (n.clone(), v)
                })
                .collect(),
            ..a.clone()
        };
        assert_ne!(ServerKey::of(&a), ServerKey::of(&other_call));
    }

    #[test]
    fn a_final_failure_to_an_invite_is_resent_doubling_until_t2_then_given_up() {
        let mut txs = ServerTransactions::default();
        let invite = request("SIP/2.0/UDP h:1;branch=z9hG4bK-g", "INVITE");
        let key = ServerKey::of(&invite).expect("key");
        let to: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(txs.arrive(&key, false, to), Arrival::New);
        txs.answered(key.clone(), 486, b"486".to_vec(), to);
        let start = Instant::now();
        let mut sent = Vec::new();
        let mut at = start;
        while at < start + TX_LIFETIME + T1 {
            at += Duration::from_millis(50);
            let timers = txs.tick(at);
            sent.extend(timers.resend.iter().map(|_| at - start));
            if timers.unacknowledged == 1 {
                break;
            }
        }
        assert!(at >= start + TX_LIFETIME, "Timer H at 64*T1");
        let gaps: Vec<u128> = sent
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() / 100)
            .collect();
        // 0.5 s, 1 s, 2 s, 4 s, then 4 s each (give or take a tick).
        assert_eq!(&gaps[..4], &[10, 20, 40, 40]);
        assert!(gaps.iter().all(|g| *g <= 40), "{gaps:?}");
        assert_eq!(txs.len(), 0);
    }

    #[test]
    fn the_ack_stops_the_resending_and_is_absorbed() {
        let mut txs = ServerTransactions::default();
        let invite = request("SIP/2.0/UDP h:1;branch=z9hG4bK-a", "INVITE");
        let key = ServerKey::of(&invite).expect("key");
        let to: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        txs.arrive(&key, false, to);
        txs.answered(key.clone(), 488, b"488".to_vec(), to);
        assert_eq!(
            txs.arrive(&key, false, to),
            Arrival::Retransmission(Some((b"488".to_vec(), to)))
        );
        assert_eq!(txs.arrive(&key, true, to), Arrival::AckAbsorbed);
        assert_eq!(txs.arrive(&key, true, to), Arrival::AckAbsorbed);
        let timers = txs.tick(Instant::now() + Duration::from_secs(2));
        assert!(timers.resend.is_empty());
        assert_eq!(txs.tick(Instant::now() + T4 + T1).unacknowledged, 0);
        assert_eq!(txs.len(), 0);
    }
}
