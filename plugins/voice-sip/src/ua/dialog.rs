//! Dialogs and the call record (RFC 3261 §12): the dialog state made once for inbound and for
//! outbound calls, the one constructor of [`Call`], in-dialog requests and the route set. No
//! sockets and no events here: the user agent sends what these build.

use crate::sdp::{Codec, Direction, Session};
use crate::sip::{self, Message, SipUri};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Inbound, offered to the core, ringing.
    Ringing,
    /// Outbound, INVITE sent.
    Dialing,
    /// Answered.
    Connected,
}

impl State {
    /// The state in words, for errors.
    pub fn word(self) -> &'static str {
        match self {
            State::Ringing => "ringing",
            State::Dialing => "dialing",
            State::Connected => "connected",
        }
    }
}

/// What a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    /// A call with a customer (inbound or dialled).
    Customer,
    /// A consultation call to a colleague about another call.
    Consultation {
        /// The call consulted about.
        about: String,
    },
    /// The leg to an agent's own endpoint (desktop or SIP phone) that a customer call is
    /// bridged to: internal, never reported to the core.
    Endpoint {
        /// The customer call it carries the agent's audio for.
        about: String,
        /// The agent.
        agent: String,
    },
}

/// A transfer in progress on a call (we sent REFER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The consultation call replaced, for a consultative transfer.
    pub consultation: Option<String>,
}

/// The dialog of a call (RFC 3261 §12.1): who is who, where in-dialog requests go, the order.
pub struct Dialog {
    pub call_id: String,
    /// Our From/To value (name-addr with our tag).
    pub local: String,
    /// Theirs (with their tag once known).
    pub remote: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Where in-dialog requests go: the remote target (Contact).
    pub remote_target: String,
    /// Where in-dialog requests are sent (the first route, or the remote target).
    pub peer: SocketAddr,
    /// The route set: Route headers of our in-dialog requests (loose routing).
    pub route: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
}

impl Dialog {
    /// The dialog a UAS makes from an INVITE it answers (§12.1.1), `from` the INVITE's source.
    pub fn answering(invite: &Message, local_tag: String, from: SocketAddr) -> Dialog {
        let from_value = invite.header("From").unwrap_or_default().to_string();
        let to_value = invite.header("To").unwrap_or_default();
        let remote_target = invite
            .header("Contact")
            .map(|c| sip::uri_of(c).to_string())
            .unwrap_or_else(|| sip::uri_of(&from_value).to_string());
        let route = route_set(invite, false);
        let peer = route
            .first()
            .map(|r| sip::uri_of(r).to_string())
            .or_else(|| Some(remote_target.clone()))
            .and_then(|uri| SipUri::parse(&uri))
            .and_then(|u| resolve(&u.host, u.port.unwrap_or(5060)))
            .unwrap_or(from);
        Dialog {
            call_id: invite.call_id().unwrap_or_default().to_string(),
            local: format!("{to_value};tag={local_tag}"),
            remote: from_value,
            local_tag,
            remote_tag: invite.from_tag().map(String::from),
            remote_target,
            peer,
            route,
            local_cseq: 0,
            remote_cseq: invite.cseq().map_or(0, |(n, _)| n),
        }
    }

    /// The dialog a UAC starts with its INVITE to `uri` (§12.1.2 completes it from the 2xx).
    pub fn calling(
        call_id: String,
        local: String,
        local_tag: String,
        uri: &str,
        peer: SocketAddr,
    ) -> Dialog {
        Dialog {
            call_id,
            local,
            remote: format!("<{uri}>"),
            local_tag,
            remote_tag: None,
            remote_target: uri.to_string(),
            peer,
            route: Vec::new(),
            local_cseq: 1,
            remote_cseq: 0,
        }
    }

    /// A new in-dialog request (§12.2.1.1) with the next CSeq, its Via first and its route set.
    pub fn request(&mut self, method: &str, via: String) -> Message {
        self.local_cseq += 1;
        let mut message = Message::request(method, &self.remote_target)
            .with("Via", via)
            .with("Max-Forwards", "70")
            .with("From", self.local.clone())
            .with("To", self.remote.clone())
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} {method}", self.local_cseq));
        self.add_route(&mut message);
        message
    }

    /// Adds the dialog's Route headers to an in-dialog request.
    pub fn add_route(&self, message: &mut Message) {
        for route in &self.route {
            message.headers.push(("Route".into(), route.clone()));
        }
    }
}

/// A call: its dialog, its media and what the agent did with it.
pub struct Call {
    pub id: String,
    /// The call's number: its media room and leg.
    pub n: u64,
    pub kind: CallKind,
    pub state: State,
    pub inbound: bool,
    pub dialog: Dialog,
    /// Where the inbound INVITE came from (its responses go there).
    pub source: SocketAddr,
    /// The inbound INVITE being answered (ringing), or our outbound INVITE (dialing).
    pub invite: Option<Message>,
    /// The ACK we sent for our INVITE's 2xx, re-sent when the 2xx is retransmitted.
    pub ack: Option<Vec<u8>>,
    /// A 2xx we sent, retransmitted until the ACK (RFC 3261 §13.3.1.4).
    pub unacked: Option<Unacked>,
    pub socket: Option<std::net::UdpSocket>,
    pub rtp: SocketAddr,
    pub remote_sdp: Option<Session>,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
    pub sdp_version: u64,
    pub local_hold: bool,
    pub remote_hold: bool,
    /// Held inside the plugin during a consultation: the agent is taken out of the call's
    /// audio (no re-INVITE, so the conference or transfer that follows needs no signalling).
    pub parked: bool,
    /// Our re-INVITE in flight (hold true/false).
    pub reinvite: Option<bool>,
    pub leg_started: bool,
    pub started: Instant,
    pub hold_since: Option<Instant>,
    pub held_total: Duration,
    pub transfers: u32,
    pub transfer: Option<Transfer>,
    pub dtmf_in: String,
    pub recording: Option<PathBuf>,
    pub conference_with: Option<String>,
    /// The agent who has the call (accepted or dialled it); for a consultation, the colleague
    /// whose registered endpoint it was dialled to (none when dialled elsewhere).
    pub agent: Option<String>,
    /// The leg to that agent's endpoint the call is bridged to.
    pub bridge: Option<String>,
}

/// A 2xx to an INVITE awaiting its ACK.
pub struct Unacked {
    pub bytes: Vec<u8>,
    pub to: SocketAddr,
    pub next: Instant,
    pub interval: Duration,
    pub give_up: Instant,
}

impl Call {
    /// The one constructor of a call record, inbound (`Ringing`) or outbound (`Dialing`).
    pub fn new(
        id: String,
        n: u64,
        kind: CallKind,
        state: State,
        dialog: Dialog,
        source: SocketAddr,
        codec: Codec,
    ) -> Call {
        Call {
            id,
            n,
            kind,
            state,
            inbound: state == State::Ringing,
            rtp: source,
            dialog,
            source,
            invite: None,
            ack: None,
            unacked: None,
            socket: None,
            remote_sdp: None,
            codec,
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
            agent: None,
            bridge: None,
        }
    }

    /// Starts or stops the hold clock after a change of `local_hold`, `remote_hold` or `parked`.
    pub fn note_hold(&mut self) {
        let held = self.local_hold || self.remote_hold || self.parked;
        match (held, self.hold_since) {
            (true, None) => self.hold_since = Some(Instant::now()),
            (false, Some(since)) => {
                self.held_total += since.elapsed();
                self.hold_since = None;
            }
            _ => {}
        }
    }
}

/// The route set a request (UAS: Record-Route in order) or a 2xx (UAC: reversed) gives.
pub fn route_set(message: &Message, reverse: bool) -> Vec<String> {
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

/// Our direction, given the far end's and whether we hold.
pub fn our_direction(theirs: Direction, local_hold: bool) -> Direction {
    let answer = theirs.answer_to();
    if !local_hold {
        return answer;
    }
    match answer {
        Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
        Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
    }
}

/// The first address of `host:port` (an IP literal is taken as is).
pub fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_answering_dialog_takes_the_callers_contact_tags_and_record_route() {
        let invite = Message::parse(
            b"INVITE sip:2001@h SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\n\
              Record-Route: <sip:127.0.0.1:7000;lr>, <sip:127.0.0.1:7001;lr>\r\n\
              From: <sip:a@h>;tag=theirs\r\nTo: <sip:2001@h>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\n\
              Contact: <sip:a@127.0.0.1:5999>\r\n\r\n",
        )
        .expect("parses");
        let from = "127.0.0.1:5999".parse().expect("addr");
        let mut dialog = Dialog::answering(&invite, "ours".into(), from);
        assert_eq!(dialog.remote_tag.as_deref(), Some("theirs"));
        assert_eq!(dialog.local, "<sip:2001@h>;tag=ours");
        assert_eq!(dialog.remote_cseq, 7);
        assert_eq!(dialog.peer, "127.0.0.1:7000".parse().expect("addr"));
        let bye = dialog.request("BYE", "SIP/2.0/UDP x;branch=z9hG4bK-2".into());
        assert_eq!(bye.uri(), Some("sip:a@127.0.0.1:5999"));
        assert_eq!(bye.cseq(), Some((1, "BYE")));
        assert_eq!(bye.headers_named("Route").count(), 2);
        assert_eq!(bye.to_tag(), Some("theirs"));
    }
}
