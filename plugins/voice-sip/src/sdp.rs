//! SDP offer/answer (RFC 3264) for one audio stream: G.711 (PCMU 0, PCMA 8) and RFC 4733
//! telephone events, with the direction attributes that carry hold.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// A G.711 codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// μ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    /// The encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
    /// The codec named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            _ => None,
        }
    }
    fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// The media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// The describing side only sends (it holds the other).
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// The answer's direction for an offer's.
    pub fn answer_to(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
    /// Whether the describing side sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// Whether the describing side receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// What a session description says about its audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Where the describing side receives RTP (port 0: the stream is refused).
    pub rtp: SocketAddr,
    /// Its codecs in order of preference.
    pub codecs: Vec<Codec>,
    /// The telephone-event payload type, if offered.
    pub telephone_event: Option<u8>,
    /// The direction.
    pub direction: Direction,
}

/// Why a description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// No `c=` address or no `m=audio` line.
    #[error("no audio stream with an address")]
    NoAudio,
    /// No G.711 codec we both have.
    #[error("no common codec")]
    NoCommonCodec,
    /// The audio stream is not plain RTP (`RTP/AVP`), e.g. SRTP or over TCP.
    #[error("audio over {0}, not RTP/AVP")]
    Transport(String),
    /// The audio stream has port 0: it is declined.
    #[error("the audio stream is declined (port 0)")]
    Declined,
}

impl Session {
    /// Parses the first audio stream of a description.
    pub fn parse(text: &str) -> Result<Session, SdpError> {
        let mut address: Option<IpAddr> = None;
        let mut media_address: Option<IpAddr> = None;
        let mut port: Option<u16> = None;
        let mut transport = String::new();
        let mut payload_types: Vec<u8> = Vec::new();
        let mut telephone_event = None;
        let mut direction = Direction::SendRecv;
        let mut in_audio = false;
        let mut seen_audio = false;
        for line in text.lines() {
            let line = line.trim();
            let Some((kind, value)) = line.split_once('=') else {
                continue;
            };
            match kind {
                "c" => {
                    let ip = value.split_whitespace().nth(2).and_then(|a| a.parse().ok());
                    if in_audio {
                        media_address = ip;
                    } else if !seen_audio {
                        address = ip;
                    }
                }
                "m" => {
                    in_audio = false;
                    let mut parts = value.split_whitespace();
                    if parts.next() == Some("audio") && !seen_audio {
                        seen_audio = true;
                        in_audio = true;
                        port = parts.next().and_then(|p| p.parse().ok());
                        transport = parts.next().unwrap_or_default().to_string();
                        payload_types = parts.filter_map(|p| p.parse().ok()).collect();
                    }
                }
                "a" if in_audio || !seen_audio => {
                    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
                    match name {
                        "sendrecv" => direction = Direction::SendRecv,
                        "sendonly" => direction = Direction::SendOnly,
                        "recvonly" => direction = Direction::RecvOnly,
                        "inactive" => direction = Direction::Inactive,
                        "rtpmap" if in_audio => {
                            let mut parts = rest.split_whitespace();
                            let pt: Option<u8> = parts.next().and_then(|p| p.parse().ok());
                            let encoding = parts.next().unwrap_or("");
                            if encoding
                                .to_ascii_lowercase()
                                .starts_with("telephone-event/8000")
                            {
                                telephone_event = pt;
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let ip = media_address.or(address).ok_or(SdpError::NoAudio)?;
        let port = port.ok_or(SdpError::NoAudio)?;
        // RTP/AVPF is RTP/AVP with feedback we may ignore (RFC 4585 §3.4).
        if !["RTP/AVP", "RTP/AVPF"].contains(&transport.as_str()) {
            return Err(SdpError::Transport(transport));
        }
        if port == 0 {
            return Err(SdpError::Declined);
        }
        // Hold in the old style (RFC 2543): a null connection address.
        if ip.is_unspecified() && direction == Direction::SendRecv {
            direction = Direction::Inactive;
        }
        let codecs = payload_types
            .iter()
            .filter_map(|pt| Codec::from_payload_type(*pt))
            .collect();
        Ok(Session {
            rtp: SocketAddr::new(ip, port),
            codecs,
            telephone_event,
            direction,
        })
    }

    /// The session description text; `version` increases with every change (RFC 4566 `o=`).
    pub fn render(&self, session_id: u64, version: u64) -> String {
        let ip = self.rtp.ip();
        let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
        let mut pts: Vec<String> = self
            .codecs
            .iter()
            .map(|c| c.payload_type().to_string())
            .collect();
        if let Some(te) = self.telephone_event {
            pts.push(te.to_string());
        }
        let mut s = String::with_capacity(300);
        let _ = write!(
            s,
            "v=0\r\no=agentdesk {session_id} {version} IN {family} {ip}\r\ns=agentdesk\r\n\
             c=IN {family} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {}\r\n",
            self.rtp.port(),
            pts.join(" ")
        );
        for codec in &self.codecs {
            let _ = write!(
                s,
                "a=rtpmap:{} {}/8000\r\n",
                codec.payload_type(),
                codec.name()
            );
        }
        if let Some(te) = self.telephone_event {
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        let _ = write!(s, "a=ptime:20\r\na={}\r\n", self.direction.attribute());
        s
    }
}

/// The codec to use: the offerer's first one that we allow.
pub fn choose(offered: &[Codec], ours: &[Codec]) -> Result<Codec, SdpError> {
    offered
        .iter()
        .find(|c| ours.contains(c))
        .copied()
        .ok_or(SdpError::NoCommonCodec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baresip_style_offer_parses_and_our_answer_round_trips() {
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
            a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let s = Session::parse(offer).expect("parses");
        assert_eq!(s.rtp, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(s.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(s.telephone_event, Some(101));
        assert_eq!(s.direction, Direction::SendOnly);
        assert_eq!(choose(&s.codecs, &[Codec::Pcmu]), Ok(Codec::Pcmu));
        let answer = Session {
            rtp: "127.0.0.1:5000".parse().unwrap(),
            codecs: vec![Codec::Pcmu],
            telephone_event: Some(101),
            direction: s.direction.answer_to(),
        };
        let back = Session::parse(&answer.render(1, 1)).expect("round trip");
        assert_eq!(back, answer);
        assert_eq!(back.direction, Direction::RecvOnly);
    }

    #[test]
    fn no_audio_or_no_common_codec_is_an_error() {
        assert_eq!(Session::parse("v=0\r\n"), Err(SdpError::NoAudio));
        let c = "c=IN IP4 127.0.0.1\r\n";
        assert_eq!(
            Session::parse(&format!("{c}m=audio 4000 RTP/SAVP 0\r\n")),
            Err(SdpError::Transport("RTP/SAVP".into()))
        );
        assert_eq!(
            Session::parse(&format!("{c}m=audio 0 RTP/AVP 0\r\n")),
            Err(SdpError::Declined)
        );
        let s = Session::parse("c=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 9\r\n").expect("parses");
        assert_eq!(s.direction, Direction::Inactive);
        assert_eq!(
            choose(&s.codecs, &[Codec::Pcmu]),
            Err(SdpError::NoCommonCodec)
        );
    }
}
