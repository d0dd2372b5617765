//! The SIP user agent (RFC 3261 over UDP): transactions (retransmissions both ways, a response
//! cache for retransmitted requests), dialogs, calls and what the core's commands do to them.
//! Synchronous and lock-protected: the socket task, the timer task and the host's command thread
//! all call into one [`Ua`].

use crate::digest::Challenge;
use crate::media::{LegParams, Media};
use crate::sdp::{self, Codec, Direction, Session};
use crate::settings::{ForwardMode, Settings};
use crate::sip::{self, Message, SipUri};
use plugin_api::{
    Address, CaseField, ChannelKind, ChannelStatus, Contact, EndReason, Ended, Event,
    InteractionId, Media as MediaKind, MediaState, MediaStateChanged, Offer, Party, PartyJoined,
    Route, Target,
};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// RFC 3261 timer T1 (round-trip estimate).
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 timer T2 (largest retransmission interval of non-INVITE requests).
const T2: Duration = Duration::from_secs(4);
/// 64·T1: how long a transaction (and a cached response) lives.
const TX_LIFETIME: Duration = Duration::from_secs(32);
/// How long an outbound INVITE may ring after a provisional answer (RFC 3261 Timer C).
const TIMER_C: Duration = Duration::from_secs(180);
/// What we accept, in `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO, REFER";
/// The channel kind.
pub const CHANNEL: &str = "voice";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inbound, offered to the core, ringing.
    Ringing,
    /// Outbound, INVITE sent.
    Dialing,
    /// Answered.
    Connected,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Ringing => "ringing",
            State::Dialing => "dialing",
            State::Connected => "connected",
        }
    }
}

/// What a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A call with a customer (inbound or dialled).
    Customer,
    /// A consultation call to a colleague about another call.
    Consultation { about: String },
}

/// A transfer in progress on a call (we sent REFER).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transfer {
    /// The consultation call replaced, for a consultative transfer.
    consultation: Option<String>,
}

struct Call {
    id: String,
    n: u64,
    call_id: String,
    kind: Kind,
    state: State,
    inbound: bool,
    /// Our From/To value (name-addr with our tag).
    local: String,
    /// Theirs (with their tag once known).
    remote: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Where in-dialog requests go: the remote target (Contact).
    remote_target: String,
    peer: SocketAddr,
    /// Where the inbound INVITE came from (its responses go there).
    source: SocketAddr,
    /// The dialog's route set (RFC 3261 §12.1): Route headers of our in-dialog requests, which
    /// then go to the first of them (loose routing).
    route: Vec<String>,
    local_cseq: u32,
    remote_cseq: u32,
    /// The inbound INVITE being answered (ringing), or our outbound INVITE (dialing).
    invite: Option<Message>,
    /// The ACK we sent for our INVITE's 2xx, re-sent when the 2xx is retransmitted.
    ack: Option<Vec<u8>>,
    /// A 2xx we sent, retransmitted until the ACK: (bytes, to, next, interval, give up).
    unacked: Option<(Vec<u8>, SocketAddr, Instant, Duration, Instant)>,
    socket: Option<std::net::UdpSocket>,
    rtp: SocketAddr,
    remote_sdp: Option<Session>,
    codec: Codec,
    telephone_event: Option<u8>,
    sdp_version: u64,
    local_hold: bool,
    remote_hold: bool,
    /// Held inside the plugin during a consultation: the agent is taken out of the call's
    /// audio (no re-INVITE, so the conference or transfer that follows needs no signalling).
    parked: bool,
    /// Our re-INVITE in flight (hold true/false).
    reinvite: Option<bool>,
    leg_started: bool,
    started: Instant,
    hold_since: Option<Instant>,
    held_total: Duration,
    transfers: u32,
    transfer: Option<Transfer>,
    dtmf_in: String,
    recording: Option<PathBuf>,
    conference_with: Option<String>,
}

enum Purpose {
    Invite(String),
    ReInvite(String),
    Bye,
    Refer(String),
    Register,
}

struct ClientTx {
    bytes: Vec<u8>,
    to: SocketAddr,
    invite: bool,
    next: Instant,
    interval: Duration,
    deadline: Instant,
    provisional: bool,
    purpose: Purpose,
}

struct Cached {
    bytes: Vec<u8>,
    to: SocketAddr,
    at: Instant,
    final_code: bool,
}

struct Registration {
    uri: String,
    aor: String,
    dest: SocketAddr,
    username: String,
    password: Option<String>,
    expires: u32,
    call_id: String,
    tag: String,
    cseq: u32,
    nc: u32,
    challenge: Option<Challenge>,
    authorized_once: bool,
    next: Option<Instant>,
}

/// The user agent.
pub struct Ua {
    settings: Settings,
    data_dir: PathBuf,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    calls: HashMap<String, Call>,
    by_call_id: HashMap<String, String>,
    cache: HashMap<(String, String), Cached>,
    client: HashMap<String, ClientTx>,
    forwards: HashMap<String, Address>,
    events: mpsc::UnboundedSender<Event>,
    media: Media,
    next: u64,
    registration: Option<Registration>,
    /// Where offers for our extensions go while the core decides (extension -> agent).
    codecs: Vec<Codec>,
}

/// How long a connected call may wait for the far end's first RTP packet (at least).
const FIRST_RTP_GRACE: Duration = Duration::from_secs(10);

fn now_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    secs.to_string()
}

/// The SIP status that answers the core's reason for rejecting an offer.
pub fn reject_status(reason: &str) -> u16 {
    let r = reason.to_ascii_lowercase();
    if r.contains("no extension") || r.contains("no agent `") {
        404
    } else if r.contains("no agent") || r.contains("unavailable") || r.contains("not ready") {
        480
    } else if r.contains("busy") || r.contains("capacity") {
        486
    } else {
        603
    }
}

impl Ua {
    /// A user agent sending from `socket`; events go to `events`.
    pub fn new(
        settings: Settings,
        data_dir: PathBuf,
        socket: Arc<UdpSocket>,
        events: mpsc::UnboundedSender<Event>,
        media: Media,
    ) -> Result<Ua, UaError> {
        let local = socket.local_addr()?;
        let codecs = settings.codec_list();
        let mut ua = Ua {
            settings,
            data_dir,
            socket,
            local,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            cache: HashMap::new(),
            client: HashMap::new(),
            forwards: HashMap::new(),
            events,
            media,
            next: 0,
            registration: None,
            codecs,
        };
        ua.registration = ua.registration_from_settings();
        Ok(ua)
    }

    fn registration_from_settings(&self) -> Option<Registration> {
        let r = self.settings.registrar.as_ref()?;
        let uri = SipUri::parse(&r.uri)?;
        let dest = resolve(&uri.host, uri.port.unwrap_or(5060))?;
        let user = r.user.clone().unwrap_or_else(|| self.settings.user.clone());
        let username = std::env::var(&r.username_env).unwrap_or_else(|_| user.clone());
        let password = std::env::var(&r.password_env).ok();
        Some(Registration {
            uri: r.uri.clone(),
            aor: format!("sip:{user}@{}", self.settings.domain()),
            dest,
            username,
            password,
            expires: r.expires_secs,
            call_id: format!("{}@{}", sip::token(), self.settings.public()),
            tag: sip::token(),
            cseq: 0,
            nc: 0,
            challenge: None,
            authorized_once: false,
            next: Some(Instant::now()),
        })
    }

    /// The port SIP listens on.
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// Reports an event. An event about a call minted by a command may overtake the command's
    /// reply: the host holds it until the reply has linked the call's id.
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
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

    fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        let _ = self.socket.try_send_to(bytes, to);
    }

    /// Sends a response and remembers it for retransmitted requests.
    fn respond(&mut self, request: &Message, response: Message, to: SocketAddr) {
        let bytes = response.to_bytes();
        self.send_to(&bytes, to);
        if let (Some(branch), Some(method)) = (request.branch(), request.method())
            && method != "ACK"
        {
            self.cache.insert(
                (branch.to_string(), method.to_string()),
                Cached {
                    bytes,
                    to,
                    at: Instant::now(),
                    final_code: response.code().is_some_and(|c| c >= 200),
                },
            );
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

    /// Sends a request as a client transaction (retransmitted until answered).
    fn send_request(&mut self, request: Message, to: SocketAddr, purpose: Purpose) {
        let branch = request.branch().unwrap_or_default().to_string();
        let bytes = request.to_bytes();
        self.send_to(&bytes, to);
        let invite = request.method() == Some("INVITE");
        let now = Instant::now();
        self.client.insert(
            branch,
            ClientTx {
                bytes,
                to,
                invite,
                next: now + T1,
                interval: T1,
                deadline: now + TX_LIFETIME,
                provisional: false,
                purpose,
            },
        );
    }

    // ----- the wire -------------------------------------------------------------------------

    /// Takes in one datagram from `from`.
    pub fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive
        }
        let message = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                // Answer 400 when enough of the request survives to address a response.
                if let Some(salvaged) = salvage(data) {
                    let response = Message::response(&salvaged, 400, Some(&sip::token()));
                    let response = match response.start {
                        sip::StartLine::Response { code, .. } => Message {
                            start: sip::StartLine::Response {
                                code,
                                reason: format!("Bad Request ({e})"),
                            },
                            ..response
                        },
                        _ => response,
                    };
                    self.send_to(&response.to_bytes(), from);
                }
                return;
            }
        };
        if message.is_request() {
            self.on_request(message, from);
        } else {
            self.on_response(message);
        }
    }

    fn on_request(&mut self, request: Message, from: SocketAddr) {
        if let Some(missing) = request.missing_mandatory() {
            if request.header("Via").is_some() && request.method() != Some("ACK") {
                let response = Message {
                    start: sip::StartLine::Response {
                        code: 400,
                        reason: format!("Bad Request (missing or bad {missing})"),
                    },
                    ..Message::response(&request, 400, Some(&sip::token()))
                };
                self.send_to(&response.to_bytes(), from);
            }
            return;
        }
        let method = request.method().unwrap_or_default().to_string();
        // A retransmission: answer as before.
        if let Some(branch) = request.branch()
            && method != "ACK"
            && let Some(cached) = self.cache.get(&(branch.to_string(), method.clone()))
        {
            let (bytes, to) = (cached.bytes.clone(), cached.to);
            self.send_to(&bytes, to);
            return;
        }
        let in_dialog = request.to_tag().is_some();
        match method.as_str() {
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
        (request.to_tag() == Some(call.local_tag.as_str())).then(|| id.clone())
    }

    /// Checks CSeq order of an in-dialog request; answers 500 when it is older than the last.
    fn in_order(&mut self, id: &str, request: &Message, from: SocketAddr) -> bool {
        let Some((cseq, _)) = request.cseq() else {
            return false;
        };
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        if cseq <= call.remote_cseq && call.remote_cseq != 0 {
            self.reply(request, 500, from);
            return false;
        }
        call.remote_cseq = cseq;
        true
    }

    fn on_invite(&mut self, invite: Message, from: SocketAddr) {
        if invite
            .call_id()
            .is_some_and(|c| self.by_call_id.contains_key(c))
        {
            // Same Call-ID, another branch: a loop or a fork we already serve.
            self.reply(&invite, 482, from);
            return;
        }
        // No body: a late offer; ours goes in the 200 OK and the answer comes in the ACK.
        let session = if invite.body.is_empty() {
            None
        } else {
            match Session::parse(&String::from_utf8_lossy(&invite.body)) {
                Ok(s) => Some(s),
                Err(e) => {
                    let response = Message::response(&invite, 488, Some(&sip::token()))
                        .with("Warning", format!("399 agentdesk \"{e}\""));
                    self.respond(&invite, response, from);
                    return;
                }
            }
        };
        let chosen = match &session {
            Some(session) => sdp::choose(&session.codecs, &self.codecs),
            None => Ok(self.codecs[0]),
        };
        let codec = match chosen {
            Ok(c) => c,
            Err(e) => {
                let response = Message::response(&invite, 488, Some(&sip::token()))
                    .with("Warning", format!("304 agentdesk \"{e}\""));
                self.respond(&invite, response, from);
                return;
            }
        };
        let user = invite
            .uri()
            .and_then(SipUri::parse)
            .and_then(|u| u.user)
            .unwrap_or_default();
        // Forwarding pushed by the core: answer for the agent without ringing them.
        if let Some(to) = self.forwards.get(&user).cloned() {
            match (self.settings.forwarding, self.extension_of_address(&to)) {
                (ForwardMode::Reroute, Some(extension)) => {
                    self.ring(invite, from, session, codec, Route::extension(extension));
                }
                _ => {
                    self.redirect(&invite, &to, from);
                }
            }
            return;
        }
        let route = if self.settings.agent_of_extension(&user).is_some() {
            Route::extension(user)
        } else {
            Route::queue(self.settings.queue.clone())
        };
        self.ring(invite, from, session, codec, route);
    }

    /// A colleague's extension that an address names, if it is one of ours.
    fn extension_of_address(&self, address: &Address) -> Option<String> {
        let user = if address.kind == Address::SIP {
            SipUri::parse(&with_scheme(&address.value))?.user?
        } else {
            address.value.clone()
        };
        self.settings
            .agent_of_extension(&user)
            .map(|_| user.to_string())
    }

    fn redirect(&mut self, invite: &Message, to: &Address, from: SocketAddr) {
        let uri = self
            .address_uri(to)
            .unwrap_or_else(|_| with_scheme(&to.value));
        let response =
            Message::response(invite, 302, Some(&sip::token())).with("Contact", format!("<{uri}>"));
        self.respond(invite, response, from);
    }

    /// Offers an inbound call to the core and rings.
    fn ring(
        &mut self,
        invite: Message,
        from: SocketAddr,
        session: Option<Session>,
        codec: Codec,
        route: Route,
    ) {
        self.next += 1;
        let n = self.next;
        let id = format!("call-{}-{n}", now_stamp());
        let local_tag = sip::token();
        let from_value = invite.header("From").unwrap_or_default().to_string();
        let to_value = invite.header("To").unwrap_or_default().to_string();
        let remote_target = invite
            .header("Contact")
            .map(|c| sip::uri_of(c).to_string())
            .unwrap_or_else(|| sip::uri_of(&from_value).to_string());
        let dialog_route = route_set(&invite, false);
        let peer = dialog_route
            .first()
            .map(|r| sip::uri_of(r).to_string())
            .or_else(|| Some(remote_target.clone()))
            .and_then(|uri| SipUri::parse(&uri))
            .and_then(|u| resolve(&u.host, u.port.unwrap_or(5060)))
            .unwrap_or(from);
        let caller_uri = sip::uri_of(&from_value).to_string();
        let display = sip::display_name_of(&from_value);
        let mut addresses = vec![Address::new(Address::SIP, caller_uri.clone())];
        if let Some(user) = SipUri::parse(&caller_uri).and_then(|u| u.user)
            && user
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit())
            && !user.is_empty()
        {
            addresses.push(Address::phone(user));
        }
        let contact = Contact {
            display_name: display.clone(),
            addresses,
        };
        let te = session.as_ref().and_then(|s| s.telephone_event);
        let call = Call {
            id: id.clone(),
            n,
            call_id: invite.call_id().unwrap_or_default().to_string(),
            kind: Kind::Customer,
            state: State::Ringing,
            inbound: true,
            local: format!("{to_value};tag={local_tag}"),
            remote: from_value.clone(),
            local_tag: local_tag.clone(),
            remote_tag: invite.from_tag().map(String::from),
            remote_target,
            peer,
            source: from,
            route: dialog_route,
            local_cseq: 0,
            remote_cseq: invite.cseq().map_or(0, |(n, _)| n),
            invite: Some(invite.clone()),
            ack: None,
            unacked: None,
            socket: None,
            rtp: from,
            remote_sdp: session,
            codec,
            telephone_event: te,
            sdp_version: 1,
            local_hold: false,
            remote_hold: false,
            parked: false,
            reinvite: None,
            leg_started: false,
            started: Instant::now(),
            hold_since: None,
            held_total: Duration::ZERO,
            transfers: 0,
            transfer: None,
            dtmf_in: String::new(),
            recording: None,
            conference_with: None,
        };
        self.by_call_id.insert(call.call_id.clone(), id.clone());
        self.calls.insert(id.clone(), call);
        self.respond(&invite, Message::response(&invite, 100, None), from);
        let ringing =
            Message::response(&invite, 180, Some(&local_tag)).with("Contact", self.contact());
        self.respond(&invite, ringing, from);
        let dialled = sip::uri_of(invite.header("To").unwrap_or_default()).to_string();
        self.emit(Event::Offer(Offer {
            interaction: InteractionId::new(&id),
            external_id: invite.call_id().unwrap_or_default().to_string(),
            channel: ChannelKind::new(CHANNEL),
            media: MediaKind::Call,
            route,
            contact,
            subject: Some(format!(
                "Call from {}",
                display.unwrap_or_else(|| caller_uri.clone())
            )),
            case_data: vec![
                field("from", "From", &caller_uri),
                field("to", "Dialled", &dialled),
            ],
            actions: vec![],
            priority: 0,
        }));
        self.state_changed(&id, MediaState::Ringing);
    }

    fn on_ack(&mut self, ack: &Message) {
        let Some(id) = self.dialog_of(ack) else {
            return; // an ACK for a non-2xx final answer, absorbed by its transaction
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.unacked = None;
        if call.remote_sdp.is_some() || call.leg_started || call.state != State::Connected {
            return;
        }
        // The answer to our offer in a 200 OK to a late-offer INVITE.
        let answer = Session::parse(&String::from_utf8_lossy(&ack.body)).ok();
        let codec = answer
            .as_ref()
            .and_then(|a| sdp::choose(&a.codecs, &self.codecs).ok());
        let (Some(answer), Some(codec)) = (answer, codec) else {
            self.hang_up(&id);
            self.finish(
                &id,
                Some((EndReason::Failed, "no usable SDP answer in the ACK")),
            );
            return;
        };
        call.codec = codec;
        call.telephone_event = answer.telephone_event;
        call.remote_hold = !answer.direction.receives();
        call.remote_sdp = Some(answer);
        if let Err(e) = self.start_media(&id) {
            self.hang_up(&id);
            self.finish_with(
                &id,
                Some((EndReason::Failed, format!("cannot start audio: {e}"))),
            );
        }
    }

    fn on_cancel(&mut self, cancel: Message, from: SocketAddr) {
        let id = cancel
            .call_id()
            .and_then(|c| self.by_call_id.get(c))
            .cloned();
        let ringing = id.as_ref().and_then(|id| {
            let call = self.calls.get(id)?;
            let invite = call.invite.as_ref()?;
            (call.state == State::Ringing && invite.branch() == cancel.branch())
                .then(|| invite.clone())
        });
        let (Some(id), Some(invite)) = (id, ringing) else {
            self.reply(&cancel, 481, from);
            return;
        };
        self.reply(&cancel, 200, from);
        let local_tag = self.calls.get(&id).map(|c| c.local_tag.clone());
        let terminated = Message::response(&invite, 487, local_tag.as_deref());
        let to = self.calls.get(&id).map_or(from, |c| c.source);
        self.respond(&invite, terminated, to);
        self.finish(
            &id,
            Some((EndReason::ContactLeft, "the caller hung up while ringing")),
        );
    }

    fn on_bye(&mut self, bye: Message, from: SocketAddr) {
        let Some(id) = self.dialog_of(&bye) else {
            self.reply(&bye, 481, from);
            return;
        };
        if !self.in_order(&id, &bye, from) {
            return;
        }
        self.reply(&bye, 200, from);
        // A BYE in the early dialog (while ringing) also ends the INVITE.
        if let Some(call) = self.calls.get(&id)
            && call.state == State::Ringing
            && let Some(invite) = call.invite.clone()
        {
            let (tag, to) = (call.local_tag.clone(), call.source);
            let response = Message::response(&invite, 487, Some(&tag));
            self.respond(&invite, response, to);
        }
        let transferred = self.calls.get(&id).is_some_and(|c| c.transfer.is_some());
        let reason = if transferred {
            (EndReason::TransferredAway, "transferred")
        } else {
            (EndReason::ContactLeft, "the far end hung up")
        };
        self.finish(&id, Some(reason));
    }

    fn on_reinvite(&mut self, invite: Message, from: SocketAddr) {
        let Some(id) = self.dialog_of(&invite) else {
            self.reply(&invite, 481, from);
            return;
        };
        if !self.in_order(&id, &invite, from) {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.reinvite.is_some() || call.state != State::Connected {
            self.reply(&invite, 491, from);
            return;
        }
        let session = match Session::parse(&String::from_utf8_lossy(&invite.body)) {
            Ok(s) => s,
            Err(_) if invite.body.is_empty() => {
                // An offer-less re-INVITE: offer our current session again.
                let call = &self.calls[&id];
                Session {
                    rtp: call.remote_sdp.as_ref().map_or(from, |s| s.rtp),
                    codecs: vec![call.codec],
                    telephone_event: call.telephone_event,
                    direction: Direction::SendRecv,
                }
            }
            Err(_) => {
                self.reply(&invite, 488, from);
                return;
            }
        };
        let held = !session.direction.receives() || session.rtp.ip().is_unspecified();
        let (was_held, local_hold) = {
            let call = &self.calls[&id];
            (call.remote_hold, call.local_hold)
        };
        let ours = our_direction(session.direction, local_hold);
        if let Some(call) = self.calls.get_mut(&id) {
            call.remote_hold = held;
            call.remote_sdp = Some(session);
            call.sdp_version += 1;
            note_hold(call);
        }
        let body = self.local_sdp(&id, ours);
        let local_tag = self.calls[&id].local_tag.clone();
        let response = Message::response(&invite, 200, Some(&local_tag))
            .with("Contact", self.contact())
            .with_body("application/sdp", body.into_bytes());
        self.send_2xx(&id, &invite, response, from);
        self.apply_media(&id);
        if held != was_held {
            self.state_changed(
                &id,
                if held || local_hold {
                    MediaState::Held
                } else {
                    MediaState::Connected
                },
            );
        }
    }

    /// Sends a 2xx to an INVITE and retransmits it until the ACK (RFC 3261 §13.3.1.4).
    fn send_2xx(&mut self, id: &str, invite: &Message, response: Message, to: SocketAddr) {
        let bytes = response.to_bytes();
        self.respond(invite, response, to);
        if let Some(call) = self.calls.get_mut(id) {
            let now = Instant::now();
            call.unacked = Some((bytes, to, now + T1, T1, now + TX_LIFETIME));
        }
    }

    fn on_notify(&mut self, notify: Message, from: SocketAddr) {
        let Some(id) = self.dialog_of(&notify) else {
            self.reply(&notify, 481, from);
            return;
        };
        self.reply(&notify, 200, from);
        let is_refer = notify
            .header("Event")
            .is_some_and(|e| e.trim().starts_with("refer"));
        if !is_refer {
            return;
        }
        let frag = String::from_utf8_lossy(&notify.body).to_string();
        let code: Option<u16> = frag
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        match code {
            Some(c) if (200..300).contains(&c) => self.transfer_done(&id),
            Some(c) if c >= 300 => self.transfer_failed(&id, &format!("the target answered {c}")),
            _ => {}
        }
    }

    fn transfer_done(&mut self, id: &str) {
        let Some(transfer) = self.calls.get(id).and_then(|c| c.transfer.clone()) else {
            return;
        };
        self.hang_up(id);
        self.finish(id, Some((EndReason::TransferredAway, "transferred")));
        if let Some(consultation) = transfer.consultation {
            self.hang_up(&consultation);
            self.finish(
                &consultation,
                Some((EndReason::TransferredAway, "the customer was handed over")),
            );
        }
    }

    fn transfer_failed(&mut self, id: &str, why: &str) {
        if let Some(call) = self.calls.get_mut(id) {
            call.transfer = None;
            call.transfers = call.transfers.saturating_sub(1);
        }
        self.emit(Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("transfer of {id} failed: {why}; the call stays with the agent"),
        }));
    }

    fn on_response(&mut self, response: Message) {
        let Some(branch) = response.branch().map(String::from) else {
            return;
        };
        let code = response.code().unwrap_or(0);
        // A CANCEL shares its INVITE's branch: its answer is not the INVITE's.
        if response.method() == Some("CANCEL") {
            return;
        }
        let Some(tx) = self.client.get_mut(&branch) else {
            // A retransmitted 2xx to our INVITE: ACK again.
            if code / 100 == 2
                && response.method() == Some("INVITE")
                && let Some(call) = response
                    .call_id()
                    .and_then(|c| self.by_call_id.get(c))
                    .and_then(|id| self.calls.get(id))
                && let Some(ack) = &call.ack
            {
                self.send_to(ack, call.peer);
            }
            return;
        };
        if code < 200 {
            tx.provisional = true;
            if tx.invite {
                // Ringing: wait for an answer as long as a proxy would (RFC 3261 Timer C),
                // not the 32 s of an unanswered request.
                tx.deadline = Instant::now() + TIMER_C;
            }
            // Said again now: the core may not have known the call's id when it was dialled.
            if code > 100
                && let Purpose::Invite(id) = &tx.purpose
            {
                let id = id.clone();
                self.state_changed(&id, MediaState::Dialing);
            }
            return;
        }
        let Some(tx) = self.client.remove(&branch) else {
            return;
        };
        match tx.purpose {
            Purpose::Invite(id) => self.invite_answered(&id, &response, tx.to),
            Purpose::ReInvite(id) => self.reinvite_answered(&id, &response, tx.to),
            Purpose::Refer(id) => {
                if code >= 300 {
                    self.transfer_failed(&id, &format!("REFER answered {code}"));
                }
            }
            Purpose::Register => self.register_answered(&response),
            Purpose::Bye => {}
        }
    }

    fn ack_for(&self, call: &Call, response: &Message, branch: Option<&str>) -> Message {
        let uri = if branch.is_some() {
            call.invite
                .as_ref()
                .and_then(|i| i.uri())
                .unwrap_or(&call.remote_target)
                .to_string()
        } else {
            call.remote_target.clone()
        };
        let branch_given = branch.is_some();
        let branch = branch.map_or_else(|| format!("z9hG4bK{}", sip::token()), String::from);
        let cseq = response.cseq().map_or(call.local_cseq, |(n, _)| n);
        Message::request("ACK", &uri)
            .with("Via", self.via(&branch))
            .with("Max-Forwards", "70")
            .with("From", call.local.clone())
            .with(
                "To",
                response
                    .header("To")
                    .map_or_else(|| call.remote.clone(), String::from),
            )
            .with("Call-ID", call.call_id.clone())
            .with("CSeq", format!("{cseq} ACK"))
            .pipe(|ack| {
                if branch_given {
                    ack
                } else {
                    with_route(call, ack)
                }
            })
    }

    fn invite_answered(&mut self, id: &str, response: &Message, to: SocketAddr) {
        let code = response.code().unwrap_or(0);
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if code >= 300 {
            let branch = call
                .invite
                .as_ref()
                .and_then(|i| i.branch())
                .map(String::from);
            let ack = self.ack_for(call, response, branch.as_deref());
            self.send_to(&ack.to_bytes(), to);
            if matches!(code, 401 | 407) && self.retry_with_credentials(id, response) {
                return;
            }
            let cancelled = code == 487;
            let detail = format!("{code} {}", sip::reason(code));
            let reason = if cancelled {
                (EndReason::AgentEnded, "cancelled before answer".to_string())
            } else {
                (EndReason::Failed, format!("the far end answered {detail}"))
            };
            self.finish_with(id, Some((reason.0, reason.1)));
            return;
        }
        // 2xx: the dialog is established.
        let remote_target = response
            .header("Contact")
            .map(|c| sip::uri_of(c).to_string())
            .unwrap_or_else(|| call.remote_target.clone());
        let route = route_set(response, true);
        let peer = if self.settings.outbound_proxy.is_some() {
            call.peer
        } else {
            route
                .first()
                .map(|r| sip::uri_of(r).to_string())
                .unwrap_or_else(|| remote_target.clone())
                .as_str()
                .pipe(SipUri::parse)
                .and_then(|u| resolve(&u.host, u.port.unwrap_or(5060)))
                .unwrap_or(call.peer)
        };
        let session = Session::parse(&String::from_utf8_lossy(&response.body));
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.remote = response
            .header("To")
            .map_or_else(|| call.remote.clone(), String::from);
        call.remote_tag = response.to_tag().map(String::from);
        call.remote_target = remote_target;
        call.peer = peer;
        call.route = route;
        let session = match session {
            Ok(s) => s,
            Err(_) => {
                let ack = self.ack_for(&self.calls[id], response, None);
                self.send_to(&ack.to_bytes(), peer);
                self.hang_up(id);
                self.finish(id, Some((EndReason::Failed, "no usable SDP answer")));
                return;
            }
        };
        let codec = sdp::choose(&session.codecs, &self.codecs).unwrap_or(Codec::Pcmu);
        let call = self.calls.get_mut(id).expect("checked above");
        call.codec = codec;
        call.telephone_event = session
            .telephone_event
            .and(Some(self.settings.dtmf_payload_type));
        call.remote_hold = !session.direction.receives();
        call.remote_sdp = Some(session);
        call.state = State::Connected;
        let ack = self.ack_for(&self.calls[id], response, None).to_bytes();
        self.send_to(&ack, peer);
        if let Some(call) = self.calls.get_mut(id) {
            call.ack = Some(ack);
        }
        if let Err(e) = self.start_media(id) {
            self.hang_up(id);
            self.finish_with(
                id,
                Some((EndReason::Failed, format!("cannot start audio: {e}"))),
            );
            return;
        }
        self.state_changed(id, MediaState::Connected);
        let (kind, remote) = {
            let c = &self.calls[id];
            (c.kind.clone(), c.remote.clone())
        };
        let role = match kind {
            Kind::Customer => Party::CUSTOMER,
            Kind::Consultation { .. } => Party::COLLEAGUE,
        };
        self.emit(Event::PartyJoined(PartyJoined {
            interaction: InteractionId::new(id),
            party: Party {
                id: sip::uri_of(&remote).to_string(),
                role: role.into(),
                display_name: sip::display_name_of(&remote)
                    .unwrap_or_else(|| sip::uri_of(&remote).to_string()),
                address: Some(Address::new(Address::SIP, sip::uri_of(&remote))),
            },
        }));
    }

    /// Sends our INVITE again with digest credentials (the registrar's) after a 401/407, once.
    fn retry_with_credentials(&mut self, id: &str, response: &Message) -> bool {
        let code = response.code().unwrap_or(0);
        let (challenge_header, answer_header) = if code == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let Some(challenge) = response.header(challenge_header).and_then(Challenge::parse) else {
            return false;
        };
        let Some((username, password)) = self
            .registration
            .as_ref()
            .and_then(|r| Some((r.username.clone(), r.password.clone()?)))
        else {
            return false;
        };
        let via = {
            let branch = format!("z9hG4bK{}", sip::token());
            self.via(&branch)
        };
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        let Some(mut invite) = call.invite.clone() else {
            return false;
        };
        if invite.header(answer_header).is_some() {
            return false; // our credentials were refused already
        }
        let uri = invite.uri().unwrap_or_default().to_string();
        call.local_cseq += 1;
        invite.set("Via", via);
        invite.set("CSeq", format!("{} INVITE", call.local_cseq));
        let answer = challenge.answer("INVITE", &uri, &username, &password, 1, &sip::token());
        invite.headers.push((answer_header.to_string(), answer));
        call.invite = Some(invite.clone());
        let peer = call.peer;
        self.send_request(invite, peer, Purpose::Invite(id.into()));
        true
    }

    fn reinvite_answered(&mut self, id: &str, response: &Message, to: SocketAddr) {
        let code = response.code().unwrap_or(0);
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let ack = self.ack_for(call, response, None);
        if code >= 300 {
            // Non-2xx ACKs reuse the INVITE's branch; a new one is harmless for our peers'
            // transaction matching only when it is a 2xx, so keep the original here.
            let branch = response.branch().map(String::from);
            let ack = self.ack_for(call, response, branch.as_deref());
            self.send_to(&ack.to_bytes(), to);
            if let Some(call) = self.calls.get_mut(id) {
                let wanted = call.reinvite.take();
                if wanted == Some(call.local_hold) {
                    call.local_hold = !call.local_hold;
                    note_hold(call);
                }
            }
            return;
        }
        self.send_to(&ack.to_bytes(), to);
        let session = Session::parse(&String::from_utf8_lossy(&response.body)).ok();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.ack = Some(ack.to_bytes());
        call.reinvite = None;
        if let Some(session) = session {
            call.remote_sdp = Some(session);
        }
        let held = call.local_hold || call.remote_hold;
        self.apply_media(id);
        self.state_changed(
            id,
            if held {
                MediaState::Held
            } else {
                MediaState::Connected
            },
        );
    }

    // ----- media ----------------------------------------------------------------------------

    fn local_sdp(&mut self, id: &str, direction: Direction) -> String {
        let Some(call) = self.calls.get_mut(id) else {
            return String::new();
        };
        // An answer (or a later offer) names the negotiated codec; a first offer all of ours.
        let negotiated = call.remote_sdp.is_some();
        let session = Session {
            rtp: call.rtp,
            codecs: if negotiated {
                vec![call.codec]
            } else {
                self.codecs.clone()
            },
            telephone_event: if negotiated {
                call.telephone_event
            } else {
                Some(self.settings.dtmf_payload_type)
            },
            direction,
        };
        call.sdp_version += 1;
        session.render(call.n, call.sdp_version)
    }

    fn leg_params(call: &Call) -> Option<LegParams> {
        let remote = call.remote_sdp.as_ref()?;
        let ours = our_direction(remote.direction, call.local_hold);
        Some(LegParams {
            remote: remote.rtp,
            codec: call.codec,
            telephone_event: call.telephone_event,
            send: ours.sends() && remote.direction.receives() && remote.rtp.port() != 0,
            receive: ours.receives() && remote.direction.sends(),
        })
    }

    fn start_media(&mut self, id: &str) -> Result<(), UaError> {
        let Some(call) = self.calls.get_mut(id) else {
            return Ok(());
        };
        if call.remote_sdp.is_none() {
            return Ok(()); // a late offer: media starts when the ACK brings the answer
        }
        let Some(socket) = call.socket.take() else {
            return Ok(());
        };
        let recording = if self.settings.record {
            let dir = self
                .settings
                .path_in(&self.data_dir, &self.settings.recordings);
            Some(dir.join(format!("{}.wav", call.id)))
        } else {
            None
        };
        call.recording = recording.clone();
        let (n, params) = (call.n, Self::leg_params(call));
        self.media.open_room(n, recording)?;
        if let Some(params) = params {
            self.media.add_leg(n, n, socket, params)?;
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.leg_started = true;
        }
        Ok(())
    }

    fn apply_media(&mut self, id: &str) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if let Some(params) = Self::leg_params(call) {
            self.media.update_leg(call.n, params);
        }
        let agent_here = !call.local_hold && !call.parked;
        self.media.set_agent(call.n, agent_here);
    }

    // ----- ending ---------------------------------------------------------------------------

    /// Sends BYE (connected), CANCEL (dialing) or a final answer (ringing).
    fn hang_up(&mut self, id: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match call.state {
            State::Connected => {
                call.local_cseq += 1;
                let branch = format!("z9hG4bK{}", sip::token());
                let bye = Message::request("BYE", &call.remote_target)
                    .with("Max-Forwards", "70")
                    .with("From", call.local.clone())
                    .with("To", call.remote.clone())
                    .with("Call-ID", call.call_id.clone())
                    .with("CSeq", format!("{} BYE", call.local_cseq))
                    .pipe(|m| with_route(call, m));
                let peer = call.peer;
                let mut bye = bye;
                bye.headers.insert(0, ("Via".into(), self.via(&branch)));
                self.send_request(bye, peer, Purpose::Bye);
            }
            State::Dialing => {
                let Some(invite) = call.invite.clone() else {
                    return;
                };
                let cancel = Message::request("CANCEL", invite.uri().unwrap_or_default())
                    .with("Via", invite.header("Via").unwrap_or_default())
                    .with("Max-Forwards", "70")
                    .with("From", invite.header("From").unwrap_or_default())
                    .with("To", invite.header("To").unwrap_or_default())
                    .with("Call-ID", call.call_id.clone())
                    .with(
                        "CSeq",
                        format!("{} CANCEL", invite.cseq().map_or(1, |(n, _)| n)),
                    );
                let peer = call.peer;
                // The CANCEL has the INVITE's branch: key its transaction apart.
                let bytes = cancel.to_bytes();
                self.send_to(&bytes, peer);
            }
            State::Ringing => {
                if let Some(invite) = call.invite.clone() {
                    let tag = call.local_tag.clone();
                    let to = call.source;
                    let response = Message::response(&invite, 480, Some(&tag));
                    self.respond(&invite, response, to);
                }
            }
        }
    }

    fn finish(&mut self, id: &str, reason: Option<(EndReason, &str)>) {
        self.finish_with(id, reason.map(|(r, d)| (r, d.to_string())));
    }

    /// Forgets a call: its media stops, its record goes to the core as case data, and the core
    /// hears `ended` when the end did not come from it.
    fn finish_with(&mut self, id: &str, reason: Option<(EndReason, String)>) {
        // A dialing call that is cancelled stays until the 487 arrives.
        let Some(mut call) = self.calls.remove(id) else {
            return;
        };
        if call.state == State::Dialing
            && reason.is_none()
            && let Some(invite) = &call.invite
            && let Some(branch) = invite.branch()
            && self.client.contains_key(branch)
        {
            self.calls.insert(id.to_string(), call);
            return;
        }
        self.by_call_id.remove(&call.call_id);
        let rtp = if call.leg_started {
            let stats = self.media.stats(call.n);
            self.media.remove_leg(call.n);
            self.media.close_room(call.n);
            stats
        } else {
            None
        };
        note_hold(&mut call);
        if let Some(since) = call.hold_since.take() {
            call.held_total += since.elapsed();
        }
        if let Some(other) = &call.conference_with
            && let Some(partner) = self.calls.get_mut(other)
        {
            partner.conference_with = None;
            let party = Party {
                id: sip::uri_of(&call.remote).to_string(),
                role: Party::COLLEAGUE.into(),
                display_name: sip::display_name_of(&call.remote)
                    .unwrap_or_else(|| sip::uri_of(&call.remote).to_string()),
                address: Some(Address::new(Address::SIP, sip::uri_of(&call.remote))),
            };
            let partner_id = partner.id.clone();
            self.emit(Event::PartyLeft(plugin_api::PartyLeft {
                interaction: InteractionId::new(&partner_id),
                party,
            }));
        }
        // A consultation that ends without a conference gives the agent back to the customer.
        if let Kind::Consultation { about } = &call.kind
            && let Some(customer) = self.calls.get_mut(about)
            && customer.parked
        {
            customer.parked = false;
            note_hold(customer);
            let about = about.clone();
            self.apply_media(&about);
            if self.calls.get(&about).is_some_and(|c| !c.local_hold) {
                self.state_changed(&about, MediaState::Connected);
            }
        }
        let mut record = vec![
            field(
                "duration_secs",
                "Duration (s)",
                &call.started.elapsed().as_secs().to_string(),
            ),
            field(
                "hold_secs",
                "On hold (s)",
                &call.held_total.as_secs().to_string(),
            ),
            field("transfers", "Transfers", &call.transfers.to_string()),
        ];
        if let Some(rtp) = rtp {
            record.push(field(
                "rtp_received",
                "RTP packets received",
                &rtp.packets_in.to_string(),
            ));
            record.push(field(
                "rtp_sent",
                "RTP packets sent",
                &rtp.packets_out.to_string(),
            ));
            record.push(field(
                "rtp_concealed",
                "Audio frames lost or late",
                &rtp.lost.to_string(),
            ));
        }
        if !call.dtmf_in.is_empty() {
            record.push(field("dtmf", "Digits pressed", &call.dtmf_in));
        }
        if let Some(path) = &call.recording {
            record.push(field("recording", "Recording", &path.display().to_string()));
        }
        self.emit(Event::CaseDataChanged(plugin_api::CaseDataChanged {
            interaction: InteractionId::new(id),
            case_data: record,
        }));
        if let Some((reason, detail)) = reason {
            self.emit(Event::Ended(Ended {
                interaction: InteractionId::new(id),
                reason,
                detail,
            }));
        }
    }

    // ----- commands from the core -----------------------------------------------------------

    fn call(&self, id: &str) -> Result<&Call, UaError> {
        self.calls
            .get(id)
            .ok_or_else(|| UaError::UnknownCall(id.into()))
    }

    /// The core gave the call to an agent: answer it.
    pub fn accept(&mut self, id: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state == State::Connected || !call.inbound {
            return Ok(()); // re-offered after a transfer inside the core, or a consultation
        }
        let invite = call
            .invite
            .clone()
            .ok_or(UaError::WrongState(id.into(), "not ringing"))?;
        let to = call.source;
        let socket = self.media.bind_socket()?;
        let rtp = SocketAddr::new(
            self.settings
                .public()
                .parse()
                .unwrap_or(socket.local_addr()?.ip()),
            socket.local_addr()?.port(),
        );
        let direction = call
            .remote_sdp
            .as_ref()
            .map_or(Direction::SendRecv, |s| s.direction.answer_to());
        let te = call.telephone_event;
        if let Some(call) = self.calls.get_mut(id) {
            call.socket = Some(socket);
            call.rtp = rtp;
            call.state = State::Connected;
            call.telephone_event = te;
            call.remote_hold = !direction.sends();
        }
        let body = self.local_sdp(id, direction);
        let tag = self.calls[id].local_tag.clone();
        let response = Message::response(&invite, 200, Some(&tag))
            .with("Contact", self.contact())
            .with("Allow", ALLOW)
            .with_body("application/sdp", body.into_bytes());
        self.send_2xx(id, &invite, response, to);
        if let Some(call) = self.calls.get_mut(id) {
            call.invite = None;
        }
        self.start_media(id)?;
        self.state_changed(id, MediaState::Connected);
        Ok(())
    }

    /// The core declined the offer (no agent, no such extension).
    pub fn reject(&mut self, id: &str, reason: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state != State::Ringing {
            return Err(UaError::WrongState(id.into(), call.state.word()));
        }
        if let Some(invite) = call.invite.clone() {
            let (tag, to) = (call.local_tag.clone(), call.source);
            let code = reject_status(reason);
            let response = Message::response(&invite, code, Some(&tag));
            self.respond(&invite, response, to);
        }
        self.finish(id, None);
        Ok(())
    }

    /// The agent ended the call.
    pub fn end(&mut self, id: &str) -> Result<(), UaError> {
        self.call(id)?;
        self.hang_up(id);
        self.finish(id, None);
        Ok(())
    }

    /// Hold (true) or resume (false) with a re-INVITE.
    pub fn hold(&mut self, id: &str, hold: bool) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state != State::Connected {
            return Err(UaError::WrongState(id.into(), call.state.word()));
        }
        if call.local_hold == hold {
            return Ok(());
        }
        if call.reinvite.is_some() {
            return Err(UaError::WrongState(id.into(), "changing hold already"));
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.local_hold = hold;
            call.reinvite = Some(hold);
            note_hold(call);
        }
        let direction = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let body = self.local_sdp(id, direction);
        let Some(call) = self.calls.get_mut(id) else {
            return Ok(());
        };
        call.local_cseq += 1;
        let branch = format!("z9hG4bK{}", sip::token());
        let invite = Message::request("INVITE", &call.remote_target)
            .with("Max-Forwards", "70")
            .with("From", call.local.clone())
            .with("To", call.remote.clone())
            .with("Call-ID", call.call_id.clone())
            .with("CSeq", format!("{} INVITE", call.local_cseq))
            .pipe(|m| with_route(call, m))
            .with_body("application/sdp", body.into_bytes());
        let peer = call.peer;
        let mut invite = invite;
        invite.headers.insert(0, ("Via".into(), self.via(&branch)));
        invite.headers.push(("Contact".into(), self.contact()));
        self.send_request(invite, peer, Purpose::ReInvite(id.into()));
        // Stop speaking into a held call at once; the answer confirms the directions.
        self.apply_media(id);
        Ok(())
    }

    /// Sends DTMF digits (RFC 4733).
    pub fn dtmf(&mut self, id: &str, digits: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state != State::Connected || !call.leg_started {
            return Err(UaError::WrongState(id.into(), call.state.word()));
        }
        if call.telephone_event.is_none() {
            return Err(UaError::Unsupported(
                "the far end did not accept telephone events (RFC 4733)",
            ));
        }
        if self.media.send_dtmf(call.n, digits) == 0 {
            return Err(UaError::BadAddress(format!("no DTMF digits in `{digits}`")));
        }
        Ok(())
    }

    /// A DTMF digit arrived from the far end.
    pub fn dtmf_received(&mut self, leg: u64, digit: char) {
        let Some(call) = self.calls.values_mut().find(|c| c.n == leg) else {
            return;
        };
        call.dtmf_in.push(digit);
        let (id, digits) = (call.id.clone(), call.dtmf_in.clone());
        self.emit(Event::CaseDataChanged(plugin_api::CaseDataChanged {
            interaction: InteractionId::new(&id),
            case_data: vec![field("dtmf", "Digits pressed", &digits)],
        }));
    }

    /// The SIP URI an address is called at.
    pub fn address_uri(&self, address: &Address) -> Result<String, UaError> {
        let value = address.value.trim();
        match address.kind.as_str() {
            Address::SIP => {
                let uri = with_scheme(value);
                SipUri::parse(&uri).ok_or_else(|| UaError::BadAddress(value.into()))?;
                Ok(uri)
            }
            Address::PHONE => {
                let digits: String = value
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == '+' || *c == '*' || *c == '#')
                    .collect();
                if digits.is_empty() {
                    return Err(UaError::BadAddress(value.into()));
                }
                Ok(format!("sip:{digits}@{}", self.settings.domain()))
            }
            _ => Err(UaError::BadAddress(format!(
                "a {} address ({value})",
                address.kind
            ))),
        }
    }

    fn target_uri(&self, target: &Target) -> Result<String, UaError> {
        match target {
            Target::Agent { agent } => self
                .settings
                .agent_uri(&agent.id)
                .ok_or_else(|| UaError::NoAgentAddress(agent.id.clone())),
            Target::Address { address } => self.address_uri(address),
            Target::Queue { .. } => Err(UaError::Unsupported(
                "queues are served by the core: transfer inside agentdesk instead",
            )),
        }
    }

    /// Places a call; returns its interaction id.
    pub fn dial(
        &mut self,
        uri: &str,
        from_agent: Option<(&str, &str)>,
        kind: Kind2,
    ) -> Result<String, UaError> {
        let target = SipUri::parse(uri).ok_or_else(|| UaError::BadAddress(uri.into()))?;
        let peer = match &self.settings.outbound_proxy {
            Some(proxy) => proxy
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| UaError::BadAddress(proxy.clone()))?,
            None => resolve(&target.host, target.port.unwrap_or(5060))
                .ok_or_else(|| UaError::BadAddress(uri.into()))?,
        };
        let socket = self.media.bind_socket()?;
        let rtp = SocketAddr::new(
            self.settings
                .public()
                .parse()
                .unwrap_or(socket.local_addr()?.ip()),
            socket.local_addr()?.port(),
        );
        self.next += 1;
        let n = self.next;
        let id = format!("call-{}-{n}", now_stamp());
        let tag = sip::token();
        let call_id = format!("{}@{}", sip::token(), self.settings.public());
        let (user, display) = match from_agent {
            Some((agent, name)) => (
                self.settings
                    .agents
                    .get(agent)
                    .and_then(|l| l.extension.clone())
                    .unwrap_or_else(|| self.settings.user.clone()),
                name.to_string(),
            ),
            None => (self.settings.user.clone(), String::new()),
        };
        let local = if display.is_empty() {
            format!("<sip:{user}@{}>;tag={tag}", self.settings.domain())
        } else {
            format!(
                "\"{}\" <sip:{user}@{}>;tag={tag}",
                display.replace('"', ""),
                self.settings.domain()
            )
        };
        let kind = match kind {
            Kind2::Customer => Kind::Customer,
            Kind2::Consultation(about) => Kind::Consultation { about },
        };
        let call = Call {
            id: id.clone(),
            n,
            call_id: call_id.clone(),
            kind,
            state: State::Dialing,
            inbound: false,
            local: local.clone(),
            remote: format!("<{uri}>"),
            local_tag: tag,
            remote_tag: None,
            remote_target: uri.to_string(),
            peer,
            source: peer,
            route: Vec::new(),
            local_cseq: 1,
            remote_cseq: 0,
            invite: None,
            ack: None,
            unacked: None,
            socket: Some(socket),
            rtp,
            remote_sdp: None,
            codec: self.codecs[0],
            telephone_event: None,
            sdp_version: 0,
            local_hold: false,
            remote_hold: false,
            parked: false,
            reinvite: None,
            leg_started: false,
            started: Instant::now(),
            hold_since: None,
            held_total: Duration::ZERO,
            transfers: 0,
            transfer: None,
            dtmf_in: String::new(),
            recording: None,
            conference_with: None,
        };
        self.calls.insert(id.clone(), call);
        self.by_call_id.insert(call_id.clone(), id.clone());
        let body = self.local_sdp(&id, Direction::SendRecv);
        let branch = format!("z9hG4bK{}", sip::token());
        let invite = Message::request("INVITE", uri)
            .with("Via", self.via(&branch))
            .with("Max-Forwards", "70")
            .with("From", local)
            .with("To", format!("<{uri}>"))
            .with("Call-ID", call_id)
            .with("CSeq", "1 INVITE")
            .with("Contact", self.contact())
            .with("Allow", ALLOW)
            .with("User-Agent", "agentdesk")
            .with_body("application/sdp", body.into_bytes());
        if let Some(call) = self.calls.get_mut(&id) {
            call.invite = Some(invite.clone());
        }
        self.send_request(invite, peer, Purpose::Invite(id.clone()));
        self.state_changed(&id, MediaState::Dialing);
        Ok(id)
    }

    /// Starts a consultation call to a colleague about `about` (which goes on hold).
    pub fn consult(&mut self, about: &str, target: &Target) -> Result<String, UaError> {
        let call = self.call(about)?;
        if call.state != State::Connected {
            return Err(UaError::WrongState(about.into(), call.state.word()));
        }
        let uri = self.target_uri(target)?;
        if let Some(call) = self.calls.get_mut(about) {
            call.parked = true;
            note_hold(call);
        }
        self.apply_media(about);
        self.state_changed(about, MediaState::Held);
        self.dial(&uri, None, Kind2::Consultation(about.into()))
    }

    /// Joins the consulted colleague to the call: the plugin mixes the three parties.
    pub fn conference(&mut self, id: &str, consultation: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        let consult = self.call(consultation)?;
        if call.state != State::Connected || consult.state != State::Connected {
            return Err(UaError::WrongState(
                consultation.into(),
                "not connected on both legs",
            ));
        }
        let (room, leg) = (call.n, consult.n);
        let colleague = consult.remote.clone();
        if let Some(call) = self.calls.get_mut(id) {
            call.parked = false;
            note_hold(call);
        }
        self.media.move_leg(leg, room);
        self.apply_media(id);
        if !self.calls[id].local_hold {
            self.state_changed(id, MediaState::Connected);
        }
        if let Some(c) = self.calls.get_mut(id) {
            c.conference_with = Some(consultation.into());
        }
        if let Some(c) = self.calls.get_mut(consultation) {
            c.conference_with = Some(id.into());
        }
        self.emit(Event::PartyJoined(PartyJoined {
            interaction: InteractionId::new(id),
            party: Party {
                id: sip::uri_of(&colleague).to_string(),
                role: Party::COLLEAGUE.into(),
                display_name: sip::display_name_of(&colleague)
                    .unwrap_or_else(|| sip::uri_of(&colleague).to_string()),
                address: Some(Address::new(Address::SIP, sip::uri_of(&colleague))),
            },
        }));
        Ok(())
    }

    /// Transfers a call: a ringing one is redirected (302) or re-offered (forwarding); a
    /// connected one is REFERred, blind or with Replaces after a consultation.
    pub fn transfer(
        &mut self,
        id: &str,
        target: &Target,
        consultation: Option<&str>,
    ) -> Result<(), UaError> {
        let call = self.call(id)?;
        match call.state {
            State::Ringing => {
                let address = match target {
                    Target::Address { address } => address.clone(),
                    other => Address::new(Address::SIP, self.target_uri(other)?),
                };
                let invite = call
                    .invite
                    .clone()
                    .ok_or(UaError::WrongState(id.into(), "ringing without INVITE"))?;
                let from = call.source;
                if self.settings.forwarding == ForwardMode::Reroute
                    && let Some(extension) = self.extension_of_address(&address)
                {
                    // Offer the same call again, to the colleague's extension.
                    let session = call.remote_sdp.clone();
                    let codec = call.codec;
                    let call_id = call.call_id.clone();
                    self.calls.remove(id);
                    self.by_call_id.remove(&call_id);
                    self.ring(invite, from, session, codec, Route::extension(extension));
                    return Ok(());
                }
                self.redirect(&invite, &address, from);
                self.finish(id, None);
                Ok(())
            }
            State::Dialing => Err(UaError::WrongState(id.into(), "dialing")),
            State::Connected => {
                let mut refer_to = self.target_uri(target)?;
                if let Some(consultation) = consultation {
                    let consult = self.call(consultation)?;
                    let (Some(remote_tag), local_tag) =
                        (consult.remote_tag.clone(), consult.local_tag.clone())
                    else {
                        return Err(UaError::WrongState(consultation.into(), "not answered"));
                    };
                    let replaces = format!(
                        "{};to-tag={remote_tag};from-tag={local_tag}",
                        consult.call_id
                    );
                    refer_to = format!(
                        "{}?Replaces={}",
                        sip::uri_of(&consult.remote_target),
                        escape_header(&replaces)
                    );
                }
                let call = self.calls.get_mut(id).expect("checked above");
                call.transfer = Some(Transfer {
                    consultation: consultation.map(String::from),
                });
                call.transfers += 1;
                call.local_cseq += 1;
                let branch = format!("z9hG4bK{}", sip::token());
                let referred_by = sip::uri_of(&call.local).to_string();
                let refer = Message::request("REFER", &call.remote_target)
                    .with("Max-Forwards", "70")
                    .with("From", call.local.clone())
                    .with("To", call.remote.clone())
                    .with("Call-ID", call.call_id.clone())
                    .with("CSeq", format!("{} REFER", call.local_cseq))
                    .with("Refer-To", format!("<{refer_to}>"))
                    .with("Referred-By", format!("<{referred_by}>"))
                    .pipe(|m| with_route(call, m));
                let peer = call.peer;
                let mut refer = refer;
                refer.headers.insert(0, ("Via".into(), self.via(&branch)));
                refer.headers.push(("Contact".into(), self.contact()));
                self.send_request(refer, peer, Purpose::Refer(id.into()));
                Ok(())
            }
        }
    }

    /// Call forwarding for an extension, pushed by the core.
    pub fn forward(&mut self, extension: &str, to: Option<Address>) {
        match to {
            Some(to) => {
                self.forwards.insert(extension.to_string(), to);
            }
            None => {
                self.forwards.remove(extension);
            }
        }
    }

    // ----- registration ---------------------------------------------------------------------

    fn register(&mut self) {
        let contact = self.contact();
        let via_host = format!("{}:{}", self.settings.public(), self.local.port());
        let Some(r) = self.registration.as_mut() else {
            return;
        };
        r.cseq += 1;
        r.next = None;
        let branch = format!("z9hG4bK{}", sip::token());
        let mut register = Message::request("REGISTER", &r.uri)
            .with(
                "Via",
                format!("SIP/2.0/UDP {via_host};branch={branch};rport"),
            )
            .with("Max-Forwards", "70")
            .with("From", format!("<{}>;tag={}", r.aor, r.tag))
            .with("To", format!("<{}>", r.aor))
            .with("Call-ID", r.call_id.clone())
            .with("CSeq", format!("{} REGISTER", r.cseq))
            .with("Contact", contact)
            .with("Expires", r.expires.to_string())
            .with("User-Agent", "agentdesk");
        if let (Some(challenge), Some(password)) = (&r.challenge, &r.password) {
            r.nc += 1;
            let answer = challenge.answer(
                "REGISTER",
                &r.uri,
                &r.username,
                password,
                r.nc,
                &sip::token(),
            );
            register = register.with("Authorization", answer);
        }
        let dest = r.dest;
        self.send_request(register, dest, Purpose::Register);
    }

    fn register_answered(&mut self, response: &Message) {
        let code = response.code().unwrap_or(0);
        let Some(r) = self.registration.as_mut() else {
            return;
        };
        let status = match code {
            200..=299 => {
                let granted = response
                    .header("Contact")
                    .and_then(|c| sip::param(c, "expires"))
                    .or_else(|| response.header("Expires"))
                    .and_then(|e| e.trim().parse::<u64>().ok())
                    .unwrap_or(u64::from(r.expires))
                    .max(2);
                r.next = Some(Instant::now() + Duration::from_secs(granted / 2));
                r.authorized_once = false;
                Some((true, format!("registered as {} at {}", r.aor, r.uri)))
            }
            401 | 407 if !r.authorized_once && r.password.is_some() => {
                let name = if code == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                r.challenge = response.header(name).and_then(Challenge::parse);
                r.authorized_once = true;
                r.nc = 0;
                if r.challenge.is_some() {
                    self.register();
                    return;
                }
                Some((
                    false,
                    format!("registrar {} sent no digest challenge", r.uri),
                ))
            }
            _ => {
                r.authorized_once = false;
                r.next = Some(Instant::now() + Duration::from_secs(60));
                Some((
                    false,
                    format!(
                        "registration at {} failed: {code} {}",
                        r.uri,
                        sip::reason(code)
                    ),
                ))
            }
        };
        if let Some((healthy, detail)) = status {
            self.emit(Event::ChannelStatus(ChannelStatus { healthy, detail }));
        }
    }

    // ----- timers ---------------------------------------------------------------------------

    /// Retransmissions, transaction timeouts, dead calls, registration refresh.
    pub fn tick(&mut self) {
        let now = Instant::now();
        // Client transactions.
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for (branch, tx) in self.client.iter_mut() {
            if now >= tx.deadline {
                expired.push(branch.clone());
            } else if now >= tx.next && !(tx.invite && tx.provisional) {
                resend.push((tx.bytes.clone(), tx.to));
                tx.interval = if tx.invite {
                    tx.interval * 2
                } else {
                    (tx.interval * 2).min(T2)
                };
                tx.next = now + tx.interval;
            }
        }
        for (bytes, to) in resend {
            self.send_to(&bytes, to);
        }
        for branch in expired {
            let Some(tx) = self.client.remove(&branch) else {
                continue;
            };
            match tx.purpose {
                Purpose::Invite(id) => {
                    if tx.provisional {
                        self.hang_up(&id); // rang too long: CANCEL
                    }
                    self.finish(&id, Some((EndReason::Failed, "no answer from the far end")))
                }
                Purpose::ReInvite(id) => {
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.reinvite = None;
                    }
                }
                Purpose::Refer(id) => self.transfer_failed(&id, "REFER timed out"),
                Purpose::Register => {
                    if let Some(r) = self.registration.as_mut() {
                        r.next = Some(now + Duration::from_secs(30));
                        let detail = format!("registrar {} does not answer", r.uri);
                        self.emit(Event::ChannelStatus(ChannelStatus {
                            healthy: false,
                            detail,
                        }));
                    }
                }
                Purpose::Bye => {}
            }
        }
        // 2xx retransmissions until ACK; a call never ACKed is given up.
        let mut dead: Vec<(String, &'static str)> = Vec::new();
        let mut resend = Vec::new();
        let ring_limit = Duration::from_secs(self.settings.max_ring_secs);
        let media_timeout = self.settings.media_timeout();
        for call in self.calls.values_mut() {
            if let Some((bytes, to, next, interval, give_up)) = &mut call.unacked {
                if now >= *give_up {
                    call.unacked = None;
                    dead.push((call.id.clone(), "the far end never acknowledged the answer"));
                } else if now >= *next {
                    resend.push((bytes.clone(), *to));
                    *interval = (*interval * 2).min(T2);
                    *next = now + *interval;
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
        self.cache.retain(|_, c| {
            now.duration_since(c.at) < TX_LIFETIME
                || !c.final_code && now.duration_since(c.at) < TX_LIFETIME * 10
        });
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

/// What a dialled call is for (public form of the call kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind2 {
    /// A customer call.
    Customer,
    /// A consultation about the named call.
    Consultation(String),
}

/// Calls a function on a value (for builder chains).
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}

impl<T> Pipe for T {}

/// The route set a request (UAS: Record-Route in order) or a 2xx (UAC: reversed) gives.
fn route_set(message: &Message, reverse: bool) -> Vec<String> {
    let mut route: Vec<String> = message
        .headers_named("Record-Route")
        .flat_map(split_name_addrs)
        .collect();
    if reverse {
        route.reverse();
    }
    route
}

/// Comma-separated name-addrs of one header line (commas inside `<...>` or quotes kept).
fn split_name_addrs(value: &str) -> Vec<String> {
    let (mut out, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if depth == 0 && !quoted => {
                out.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Adds the dialog's Route headers to an in-dialog request.
fn with_route(call: &Call, mut message: Message) -> Message {
    for route in &call.route {
        message.headers.push(("Route".into(), route.clone()));
    }
    message
}

fn note_hold(call: &mut Call) {
    let held = call.local_hold || call.remote_hold || call.parked;
    match (held, call.hold_since) {
        (true, None) => call.hold_since = Some(Instant::now()),
        (false, Some(since)) => {
            call.held_total += since.elapsed();
            call.hold_since = None;
        }
        _ => {}
    }
}

/// Our direction, given the far end's and whether we hold.
fn our_direction(theirs: Direction, local_hold: bool) -> Direction {
    let answer = theirs.answer_to();
    if !local_hold {
        return answer;
    }
    match answer {
        Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
        Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
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

/// The first address of `host:port` (an IP literal is taken as is).
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

/// The headers of an unparsable request that a 400 answer needs, if present.
fn salvage(data: &[u8]) -> Option<Message> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let first = lines.next()?;
    if first.starts_with("SIP/2.0") || !first.contains("SIP/") {
        return None;
    }
    let method = first.split(' ').next()?.to_string();
    if method == "ACK" {
        return None;
    }
    let mut message = Message::request(&method, "sip:invalid");
    for line in lines {
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = match name.trim() {
                "v" => "Via",
                "f" => "From",
                "t" => "To",
                "i" => "Call-ID",
                other => other,
            };
            if ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                message
                    .headers
                    .push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    message.header("Via")?;
    message.header("Call-ID")?;
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_map_to_sip_statuses() {
        assert_eq!(reject_status("no extension `9` on this host"), 404);
        assert_eq!(
            reject_status("no agent on this host has channel `voice`"),
            480
        );
        assert_eq!(reject_status("declined"), 603);
    }

    #[test]
    fn a_held_call_answers_sendonly_or_inactive() {
        assert_eq!(
            our_direction(Direction::SendRecv, true),
            Direction::SendOnly
        );
        assert_eq!(
            our_direction(Direction::SendOnly, true),
            Direction::Inactive
        );
        assert_eq!(
            our_direction(Direction::SendOnly, false),
            Direction::RecvOnly
        );
    }

    #[test]
    fn a_garbled_request_still_yields_what_a_400_needs() {
        let m = salvage(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9\r\nCall-ID: 1\r\ngarbage\r\n\r\n")
            .expect("salvaged");
        assert_eq!(m.header("Call-ID"), Some("1"));
        assert!(salvage(b"\x00\x01").is_none());
    }
}
