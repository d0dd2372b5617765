//! The SIP user agent (RFC 3261 over UDP): the wire (what arrives, in what order it is checked,
//! where it goes), the timers, and the state they share. Synchronous and lock-protected: the
//! socket task, the timer task and the host's command thread all call into one [`Ua`].
//!
//! Split by who owns what: `transaction` (server and client transactions, their timers),
//! `checks` (what a request must be before we serve it), `dialog` (the call record and its
//! dialog), `inbound` (requests from the far end), `outbound` (answers to our requests and their
//! timeouts, media, ending), `features` (the core's commands), `register` (registration). Each
//! adds `impl Ua` methods for its own concern; requests are checked and dispatched only here.

mod bridge;
mod checks;
mod dialog;
mod features;
mod inbound;
mod outbound;
mod register;
mod registrar;
mod transaction;

pub use dialog::CallKind;
pub use registrar::Binding;

use crate::media::Media;
use crate::sdp::Codec;
use crate::settings::Settings;
use crate::sip::{self, Message};
use checks::Refusal;
use dialog::{Call, State};
use plugin_api::{
    Address, CaseField, EndReason, Event, InteractionId, MediaState, MediaStateChanged,
};
use register::Registration;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use transaction::{
    Arrival, ClientTransactions, Purpose, ServerKey, ServerTransactions, T1, T2, TX_LIFETIME,
};

/// What we accept, in `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO, REFER";
/// The body types each method we serve may carry (RFC 3261 §8.2.3).
const SDP: &[&str] = &["application/sdp"];
const SIPFRAG: &[&str] = &["message/sipfrag"];
const DTMF: &[&str] = &["application/dtmf-relay", "application/dtmf"];
/// The channel kind.
pub const CHANNEL: &str = "voice";
/// How long a connected call may wait for the far end's first RTP packet (at least).
const FIRST_RTP_GRACE: Duration = Duration::from_secs(10);

/// Why a command cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum UaError {
    /// No such call.
    #[error("no call `{0}`")]
    UnknownCall(String),
    /// The call is not in a state that allows it.
    #[error("call `{0}` is {1}")]
    WrongState(String, &'static str),
    /// The address cannot be called.
    #[error("cannot call {0}")]
    BadAddress(String),
    /// No SIP address is configured for the agent.
    #[error(
        "no SIP address for agent `{0}`: add `agents.{0}.uri` or an extension to the voice settings"
    )]
    NoAgentAddress(String),
    /// A socket or file could not be opened.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not supported by this channel.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Where the user agent writes what it drops or refuses (the host's log, in the plugin).
pub type Log = Box<dyn Fn(&str) + Send>;

/// What the user agent counted since it started: nothing it drops goes uncounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams dropped without an answer (unparsable and unanswerable, stray responses).
    pub dropped: u64,
    /// Requests refused by the checks (4xx/5xx before any dialog work).
    pub refused: u64,
    /// Retransmitted requests answered from their transaction.
    pub retransmissions: u64,
    /// Datagrams the socket would not send.
    pub send_failures: u64,
    /// Final non-2xx answers to INVITEs never acknowledged (Timer H).
    pub unacknowledged: u64,
    /// REGISTERs refused by the registrar (unknown extension, wrong credentials).
    pub registrations_refused: u64,
}

/// The user agent.
pub struct Ua {
    settings: Settings,
    data_dir: PathBuf,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    calls: HashMap<String, Call>,
    by_call_id: HashMap<String, String>,
    server: ServerTransactions,
    client: ClientTransactions,
    forwards: HashMap<String, Address>,
    events: mpsc::UnboundedSender<Event>,
    log: Log,
    counters: Counters,
    media: Media,
    next: u64,
    registration: Option<Registration>,
    codecs: Vec<Codec>,
    /// Agents' registered endpoints, by agent id.
    bindings: HashMap<String, registrar::Binding>,
    /// Nonces we challenged with: when, and the highest nonce count accepted with each.
    nonces: HashMap<String, (Instant, u32)>,
    /// Calls of ours the core never hears of (legs to agents' endpoints).
    internal: HashSet<String>,
    /// New calls are taken only from here (an endpoint takes calls from its registrar only).
    callers: Option<SocketAddr>,
}

fn now_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    secs.to_string()
}

/// The SIP status that answers the core's reason for rejecting an offer, by its stable code
/// (never by the reason's words).
pub fn reject_status(code: plugin_api::RejectCode) -> u16 {
    use plugin_api::RejectCode;
    match code {
        RejectCode::NoSuchTarget => 404,
        RejectCode::NoAgents | RejectCode::ChannelUnavailable => 480,
        RejectCode::Busy => 486,
        RejectCode::UnsupportedRoute => 403,
        RejectCode::Unspecified => 603,
    }
}

impl Ua {
    /// A user agent sending from `socket`; events go to `events`, what it drops to `log`.
    pub fn new(
        settings: Settings,
        data_dir: PathBuf,
        socket: Arc<UdpSocket>,
        events: mpsc::UnboundedSender<Event>,
        media: Media,
        log: Log,
    ) -> Result<Ua, UaError> {
        let local = socket.local_addr()?;
        let codecs = settings.codec_list();
        let registration = Registration::from_settings(&settings);
        Ok(Ua {
            settings,
            data_dir,
            socket,
            local,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            server: ServerTransactions::default(),
            client: ClientTransactions::default(),
            forwards: HashMap::new(),
            events,
            log,
            counters: Counters::default(),
            media,
            next: 0,
            registration,
            codecs,
            bindings: HashMap::new(),
            nonces: HashMap::new(),
            internal: HashSet::new(),
            callers: None,
        })
    }

    /// Registers with these credentials (an endpoint's, given rather than read from the
    /// environment) and takes new calls only from the registrar: what the desktop's endpoint
    /// does. Without a registrar in the settings, nothing changes.
    pub fn registrar_only(&mut self, username: &str, password: &str) -> Option<SocketAddr> {
        let registration = self.registration.as_mut()?;
        registration.set_credentials(username, password);
        let registrar = registration.registrar_addr();
        self.callers = Some(registrar);
        Some(registrar)
    }

    /// The port SIP listens on.
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// What was counted so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Reports an event. An event about a call minted by a command may overtake the command's
    /// reply: the host holds it until the reply has linked the call's id.
    fn emit(&self, event: Event) {
        if about_call(&event).is_some_and(|id| self.internal.contains(id)) {
            return; // a leg to an agent's endpoint: the core knows only the customer's call
        }
        if let Err(e) = self.events.send(event) {
            // Only after stop(): the delivering task is gone with the runtime.
            (self.log)(&format!(
                "voice event {} dropped: the channel is stopping",
                e.0.kind()
            ));
        }
    }

    fn state_changed(&self, id: &str, state: MediaState) {
        self.emit(Event::MediaStateChanged(MediaStateChanged {
            interaction: InteractionId::new(id),
            state,
        }));
    }

    fn contact(&self) -> String {
        format!(
            "<sip:{}@{}:{}>",
            self.settings.user,
            self.settings.public(),
            self.local.port()
        )
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/UDP {}:{};branch={branch};rport",
            self.settings.public(),
            self.local.port()
        )
    }

    /// A Via with a new branch of ours.
    fn new_via(&self) -> String {
        self.via(&format!("{}{}", transaction::MAGIC_COOKIE, sip::token()))
    }

    fn send_to(&mut self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.try_send_to(bytes, to) {
            self.counters.send_failures += 1;
            (self.log)(&format!(
                "SIP datagram to {to} not sent ({e}); {} so far, the transaction resends it",
                self.counters.send_failures
            ));
        }
    }

    /// Sends a response and records it in the request's server transaction.
    fn respond(&mut self, request: &Message, response: Message, to: SocketAddr) {
        let bytes = response.to_bytes();
        self.send_to(&bytes, to);
        if request.method() != Some("ACK")
            && let Some(key) = ServerKey::of(request)
        {
            self.server
                .answered(key, response.code().unwrap_or(0), bytes, to);
        }
    }

    fn reply(&mut self, request: &Message, code: u16, to: SocketAddr) {
        let mut response = Message::response(request, code, Some(&sip::token()));
        if code == 405 || code == 501 || code == 200 && request.method() == Some("OPTIONS") {
            response = response
                .with("Allow", ALLOW)
                .with("Accept", "application/sdp");
        }
        if code == 500 {
            response = response.with("Retry-After", "1");
        }
        self.respond(request, response, to);
    }

    /// Answers a request that the checks refused, and counts it.
    fn refuse(&mut self, request: &Message, refusal: Refusal, to: SocketAddr) {
        self.counters.refused += 1;
        (self.log)(&format!(
            "SIP {} from {to} refused: {} {} ({} refused so far)",
            request.method().unwrap_or("request"),
            refusal.code,
            refusal.reason,
            self.counters.refused
        ));
        let mut response = Message::response(request, refusal.code, Some(&sip::token()));
        response.start = sip::StartLine::Response {
            code: refusal.code,
            reason: refusal.reason,
        };
        for (name, value) in refusal.headers {
            response = response.with(name, value);
        }
        self.respond(request, response, to);
    }

    /// Sends a request as a client transaction (retransmitted until answered).
    fn send_request(&mut self, request: Message, to: SocketAddr, purpose: Purpose) {
        let bytes = request.to_bytes();
        self.send_to(&bytes, to);
        self.client.start(&request, bytes, to, purpose);
    }

    /// Drops a datagram we cannot answer, with a log line and a count.
    fn drop_datagram(&mut self, from: SocketAddr, why: &str) {
        self.counters.dropped += 1;
        (self.log)(&format!(
            "SIP datagram from {from} dropped: {why} ({} dropped so far)",
            self.counters.dropped
        ));
    }

    // ----- the wire -------------------------------------------------------------------------

    /// Takes in one datagram from `from`.
    pub fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive (RFC 5626 §4.4.1)
        }
        let message = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                // Answer when enough of the request survives to address a response.
                match checks::salvage(data) {
                    Some(salvaged) => self.refuse(&salvaged, checks::unparsable(&e), from),
                    None => self.drop_datagram(from, &e.to_string()),
                }
                return;
            }
        };
        if message.is_request() {
            self.on_request(message, from);
        } else {
            self.on_response(message, from);
        }
    }

    /// A request, checked in the order of RFC 3261 §8.2 and §17.2.3, then served.
    fn on_request(&mut self, request: Message, from: SocketAddr) {
        let method = request.method().unwrap_or_default().to_string();
        let is_ack = method == "ACK";
        if let Err(refusal) = checks::syntax(&request) {
            if is_ack || request.header("Via").is_none() {
                self.drop_datagram(from, &format!("{method}: {}", refusal.reason));
            } else {
                self.refuse(&request, refusal, from);
            }
            return;
        }
        let Some(key) = ServerKey::of(&request) else {
            self.drop_datagram(from, "no transaction key");
            return;
        };
        match self.server.arrive(&key, is_ack, from) {
            Arrival::New => {}
            Arrival::Retransmission(answer) => {
                self.counters.retransmissions += 1;
                if let Some((bytes, to)) = answer {
                    self.send_to(&bytes, to);
                }
                return;
            }
            Arrival::AckAbsorbed => return,
        }
        let in_dialog = request.to_tag().is_some();
        let accepted = match method.as_str() {
            "INVITE" | "OPTIONS" => Some(SDP),
            "BYE" | "CANCEL" => Some(&[][..]),
            "NOTIFY" => Some(SIPFRAG),
            "INFO" => Some(DTMF),
            _ => None,
        };
        if let Some(accepted) = accepted
            && let Err(refusal) = checks::semantics(&request, accepted)
        {
            self.refuse(&request, refusal, from);
            return;
        }
        match method.as_str() {
            "INVITE" if !in_dialog && self.callers.is_some_and(|c| c != from) => {
                let refusal = Refusal {
                    code: 403,
                    reason: "Forbidden: calls come from the registrar only".into(),
                    headers: Vec::new(),
                };
                self.refuse(&request, refusal, from);
            }
            "INVITE" if !in_dialog => self.on_invite(request, from),
            "INVITE" => self.on_reinvite(request, from),
            "ACK" => self.on_ack(&request),
            "CANCEL" => self.on_cancel(request, from),
            "BYE" => self.on_bye(request, from),
            "OPTIONS" => self.reply(&request, 200, from),
            "NOTIFY" => self.on_notify(request, from),
            "INFO" if in_dialog => match self.dialog_of(&request) {
                Some(id) => {
                    if self.in_order(&id, &request, from) {
                        self.reply(&request, 200, from);
                    }
                }
                None => self.reply(&request, 481, from),
            },
            "INFO" => self.reply(&request, 200, from),
            "REGISTER" if !in_dialog && self.settings.registrar_on() => {
                self.on_register(request, from)
            }
            // Being transferred, presence and registrations are not ours to serve.
            "REFER" | "SUBSCRIBE" | "REGISTER" | "MESSAGE" | "PUBLISH" | "UPDATE" | "PRACK" => {
                if in_dialog && self.dialog_of(&request).is_none() {
                    self.reply(&request, 481, from);
                } else {
                    self.reply(&request, 405, from);
                }
            }
            _ => self.reply(&request, 501, from),
        }
    }

    /// The call a request belongs to (Call-ID and our tag).
    fn dialog_of(&self, request: &Message) -> Option<String> {
        let id = self.by_call_id.get(request.call_id()?)?;
        let call = self.calls.get(id)?;
        // Requests from the far end carry our tag in To, whoever called.
        (request.to_tag() == Some(call.dialog.local_tag.as_str())).then(|| id.clone())
    }

    /// Checks CSeq order of an in-dialog request; answers 500 when it is older than the last.
    fn in_order(&mut self, id: &str, request: &Message, from: SocketAddr) -> bool {
        let Some((cseq, _)) = request.cseq() else {
            return false;
        };
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        if cseq <= call.dialog.remote_cseq && call.dialog.remote_cseq != 0 {
            self.reply(request, 500, from);
            return false;
        }
        call.dialog.remote_cseq = cseq;
        true
    }

    // ----- timers ---------------------------------------------------------------------------

    /// Retransmissions, transaction timeouts, dead calls, registration refresh.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let server = self.server.tick(now);
        for (bytes, to) in server.resend {
            self.send_to(&bytes, to);
        }
        if server.unacknowledged > 0 {
            self.counters.unacknowledged += server.unacknowledged as u64;
            (self.log)(&format!(
                "{} final answer(s) to INVITEs never acknowledged (Timer H); {} so far",
                server.unacknowledged, self.counters.unacknowledged
            ));
        }
        let client = self.client.tick(now);
        for (bytes, to) in client.resend {
            self.send_to(&bytes, to);
        }
        for tx in client.expired {
            self.client_timed_out(tx.purpose, tx.provisional, now);
        }
        // 2xx retransmissions until ACK; a call never ACKed is given up.
        let mut dead: Vec<(String, &'static str)> = Vec::new();
        let mut resend = Vec::new();
        let ring_limit = Duration::from_secs(self.settings.max_ring_secs);
        let media_timeout = self.settings.media_timeout();
        for call in self.calls.values_mut() {
            if let Some(unacked) = &mut call.unacked {
                if now >= unacked.give_up {
                    call.unacked = None;
                    dead.push((call.id.clone(), "the far end never acknowledged the answer"));
                } else if now >= unacked.next {
                    resend.push((unacked.bytes.clone(), unacked.to));
                    unacked.interval = (unacked.interval * 2).min(T2);
                    unacked.next = now + unacked.interval;
                }
            }
            if call.state == State::Ringing && call.started.elapsed() > ring_limit {
                dead.push((call.id.clone(), "ringing too long"));
            }
            if let Some(timeout) = media_timeout
                && call.state == State::Connected
                && call.leg_started
                && !call.local_hold
                && !call.remote_hold
                && self
                    .media
                    .silent_for(call.n)
                    .is_some_and(|(silent, heard)| {
                        // A far end that has not started sending yet gets a longer grace.
                        silent
                            > if heard {
                                timeout
                            } else {
                                timeout.max(FIRST_RTP_GRACE)
                            }
                    })
            {
                dead.push((
                    call.id.clone(),
                    "no audio from the far end: the peer is gone",
                ));
            }
        }
        for (bytes, to) in resend {
            self.send_to(&bytes, to);
        }
        for (id, why) in dead {
            self.hang_up(&id);
            let reason = if why == "ringing too long" {
                EndReason::Timeout
            } else {
                EndReason::Failed
            };
            self.finish(&id, Some((reason, why)));
        }
        self.expire_bindings(now);
        if self
            .registration
            .as_ref()
            .and_then(|r| r.next)
            .is_some_and(|due| now >= due)
        {
            self.register();
        }
    }

    /// Ends every call (the plugin stops): BYE, CANCEL or 480.
    pub fn shutdown(&mut self) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.hang_up(&id);
            self.finish(&id, Some((EndReason::Failed, "the voice channel stopped")));
        }
    }

    /// How many calls are up.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }
}

/// The call an event is about, for the events the user agent emits.
fn about_call(event: &Event) -> Option<&str> {
    match event {
        Event::MediaStateChanged(e) => Some(e.interaction.as_str()),
        Event::PartyJoined(e) => Some(e.interaction.as_str()),
        Event::PartyLeft(e) => Some(e.interaction.as_str()),
        Event::Ended(e) => Some(e.interaction.as_str()),
        Event::CaseDataChanged(e) => Some(e.interaction.as_str()),
        Event::Offer(e) => Some(e.interaction.as_str()),
        _ => None,
    }
}

fn field(key: &str, label: &str, value: &str) -> CaseField {
    CaseField {
        key: key.into(),
        label: Some(label.into()),
        value: value.into(),
    }
}

fn with_scheme(value: &str) -> String {
    let value = value.trim();
    if value.starts_with("sip:") {
        value.to_string()
    } else {
        format!("sip:{value}")
    }
}

fn escape_header(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace(';', "%3B")
        .replace('=', "%3D")
        .replace('@', "%40")
}

/// The first 2xx retransmission state for an answer sent now.
fn unacked(bytes: Vec<u8>, to: SocketAddr) -> dialog::Unacked {
    let now = Instant::now();
    dialog::Unacked {
        bytes,
        to,
        next: now + T1,
        interval: T1,
        give_up: now + TX_LIFETIME,
    }
}

#[cfg(test)]
mod tests;
