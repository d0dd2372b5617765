//! The user agent fed datagrams directly (no host): what it answers, counts and logs.

use super::*;
use std::sync::Mutex;

#[test]
fn reject_codes_map_to_sip_statuses() {
    use plugin_api::RejectCode;
    assert_eq!(reject_status(RejectCode::NoSuchTarget), 404);
    assert_eq!(reject_status(RejectCode::NoAgents), 480);
    assert_eq!(reject_status(RejectCode::ChannelUnavailable), 480);
    assert_eq!(reject_status(RejectCode::Busy), 486);
    assert_eq!(reject_status(RejectCode::Unspecified), 603);
}

/// A user agent on a loopback socket, its log lines, and a peer socket.
fn agent() -> (
    tokio::runtime::Runtime,
    Ua,
    Arc<Mutex<Vec<String>>>,
    std::net::UdpSocket,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let socket = runtime
        .block_on(UdpSocket::bind("127.0.0.1:0"))
        .expect("socket");
    // The user agent sends with try_send_to: let the reactor see the socket writable first.
    runtime.block_on(socket.writable()).expect("writable");
    let (events, _) = mpsc::unbounded_channel();
    let (news, _) = mpsc::unbounded_channel();
    let media = Media::new(Vec::new(), 3, "127.0.0.1".parse().expect("ip"), news);
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = {
        let lines = lines.clone();
        Box::new(move |line: &str| lines.lock().expect("log").push(line.to_string()))
    };
    let ua = Ua::new(
        Settings::default(),
        std::env::temp_dir(),
        Arc::new(socket),
        events,
        media,
        log,
    )
    .expect("ua");
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("peer");
    peer.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    (runtime, ua, lines, peer)
}

#[test]
fn what_is_dropped_or_refused_is_logged_and_counted() {
    let (_runtime, mut ua, lines, peer) = agent();
    let from = peer.local_addr().expect("addr");
    ua.on_datagram(b"\x00\x01garbage", from);
    ua.on_datagram(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n", from);
    let port = from.port();
    let refused = format!(
        "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-1\r\n\
         From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
         Require: nothingwecando\r\n\r\n"
    );
    ua.on_datagram(refused.as_bytes(), from);
    // The same request again is answered from its transaction, not refused twice.
    ua.on_datagram(refused.as_bytes(), from);
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        let (n, _) = peer.recv_from(&mut buf).expect("an answer");
        assert!(buf[..n].starts_with(b"SIP/2.0 420 "));
    }
    assert_eq!(
        ua.counters(),
        Counters {
            dropped: 2,
            refused: 1,
            retransmissions: 1,
            ..Counters::default()
        }
    );
    let lines = lines.lock().expect("log").clone();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("dropped") && lines[0].contains("1 dropped so far"));
    assert!(lines[1].contains("without a Via branch") && lines[1].contains("2 dropped"));
    assert!(lines[2].contains("420") && lines[2].contains("1 refused so far"));
}

proptest::proptest! {
    #[test]
    fn the_checks_and_transaction_keys_never_panic_on_a_mutated_request(
        edits in proptest::collection::vec((0usize..300, proptest::prelude::any::<u8>()), 1..20),
    ) {
        let mut data = b"INVITE sip:2001@h SIP/2.0\r\nVia: SIP / 2.0 / UDP [::1]:5;branch=z9hG4bK-1\r\n\
            From: \"A \\\"B\\\"\" <sip:a@h>;tag=1\r\nTo: <sip:2001@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
            Require: x\r\nContent-Type: application/sdp\r\nContent-Length: 3\r\n\r\nabc"
            .to_vec();
        for (at, byte) in edits {
            let at = at % data.len();
            data[at] = byte;
        }
        match Message::parse(&data) {
            Ok(m) => {
                let _ = checks::syntax(&m);
                let _ = checks::semantics(&m, SDP);
                if let Some(key) = ServerKey::of(&m) {
                    let _ = key.with_method("INVITE");
                }
                let _ = m.top_via().map(transaction::sent_by);
            }
            Err(e) => {
                let _ = checks::unparsable(&e);
                let _ = checks::salvage(&data);
            }
        }
    }
}
