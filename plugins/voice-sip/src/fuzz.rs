//! Property tests: whatever arrives on the wire, the parsers answer with a value or an error,
//! never a panic (the SIP head, SDP bodies, RTP packets, digest challenges).

use crate::audio::RtpPacket;
use crate::digest::Challenge;
use crate::sdp::Session;
use crate::sip::Message;
use proptest::prelude::*;

const INVITE: &str = "INVITE sip:2001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\n\
    From: <sip:a@b>;tag=1\r\nTo: <sip:2001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
    Content-Type: application/sdp\r\nContent-Length: 60\r\n\r\n\
    v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0 101\r\na=sendonly\r\n";

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Message::parse(&data);
        let _ = RtpPacket::parse(&data);
        let text = String::from_utf8_lossy(&data);
        let _ = Session::parse(&text);
        let _ = Challenge::parse(&text);
    }

    #[test]
    fn a_mutated_invite_never_panics(
        edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..20),
        cut in 0usize..400,
    ) {
        let mut data = INVITE.as_bytes().to_vec();
        for (at, byte) in edits {
            let at = at % data.len();
            data[at] = byte;
        }
        data.truncate(cut.max(1).min(data.len()));
        if let Ok(m) = Message::parse(&data) {
            let _ = m.missing_mandatory();
            let _ = (m.cseq(), m.branch(), m.from_tag(), m.to_tag(), m.call_id());
            let _ = Session::parse(&String::from_utf8_lossy(&m.body));
            let _ = Message::parse(&m.to_bytes());
        }
    }
}
