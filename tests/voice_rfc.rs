//! The voice channel's answers to unusual and hostile SIP, sent as raw datagrams to the packaged
//! plugin: transactions matched as RFC 3261 §17.2.3 says, one test per class of RFC 4475's
//! torture messages (§8.2 refusals), final failures resent until the ACK (Timer G), and a normal
//! call after a burst of all of them.

use crate::voice::{Raw, Rig, VOICE, to_tag, until};
use agentdesk_host::core::{AgentCommand, InteractionState};
use std::time::{Duration, Instant};

/// An offer we can take (`send` makes the line ends CRLF).
const OFFER: &str = "v=0\no=raw 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
    m=audio 7000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
const SDP_TYPE: &str = "Content-Type: application/sdp\n";

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Asserts that no offer reached Ann (nothing rang).
fn nothing_rang(rig: &Rig) {
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        rig.snapshot("ann").interactions.is_empty(),
        "a refused request must not ring: {:?}",
        rig.snapshot("ann").interactions
    );
}

#[test]
fn voice_the_same_branch_from_two_senders_is_two_transactions() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let (a, b) = (Raw::new(rig.target()), Raw::new(rig.target()));
    // An RFC 3261 branch (magic cookie): matched with the sender's sent-by, so both ring.
    for raw in [&a, &b] {
        raw.send(&raw.plain("INVITE", "z9hG4bK-shared", SDP_TYPE, OFFER));
    }
    for raw in [&a, &b] {
        let ringing = raw.expect(180);
        let call_id = format!("z9hG4bK-shared-{}", raw.port());
        assert_eq!(header(&ringing, "Call-ID"), Some(call_id.as_str()));
    }
    until("two offers", || {
        (rig.snapshot("ann").interactions.len() == 2).then_some(())
    });
    // An RFC 2543 branch (no cookie): matched on the request's own fields.
    let options: Vec<String> = [&a, &b]
        .iter()
        .map(|raw| raw.plain("OPTIONS", "old-style-1", "", ""))
        .collect();
    let mut first = Vec::new();
    for (raw, text) in [&a, &b].iter().zip(&options) {
        raw.send(text);
        let ok = raw.expect(200);
        let call_id = format!("old-style-1-{}", raw.port());
        assert_eq!(header(&ok, "Call-ID"), Some(call_id.as_str()));
        first.push(ok);
    }
    // A's OPTIONS again is a retransmission: the same answer, to A alone.
    a.send(&options[0]);
    assert_eq!(a.expect(200), first[0]);
    for raw in [&a, &b] {
        assert_eq!(
            raw.next_within(Duration::from_millis(300)),
            None,
            "a sender gets only the answers to its own requests"
        );
    }
}

#[test]
fn voice_a_required_extension_we_lack_is_refused_with_420_naming_it() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let raw = Raw::new(rig.target());
    let extra = format!("Require: nothingwecando, 100rel\n{SDP_TYPE}");
    raw.send(&raw.plain("INVITE", "z9hG4bK-require", &extra, OFFER));
    let refused = raw.expect(420);
    assert_eq!(
        header(&refused, "Unsupported"),
        Some("nothingwecando, 100rel")
    );
    raw.send(&raw.plain("OPTIONS", "z9hG4bK-require-o", "Require: foo\n", ""));
    assert_eq!(header(&raw.expect(420), "Unsupported"), Some("foo"));
    nothing_rang(&rig);
}

#[test]
fn voice_malformed_requests_are_refused_with_400() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let raw = Raw::new(rig.target());
    let cases: Vec<(&str, String)> = vec![
        (
            "two Content-Length",
            raw.plain(
                "INVITE",
                "z9hG4bK-m1",
                &format!("Content-Length: 4\n{SDP_TYPE}"),
                OFFER,
            ),
        ),
        (
            "two Call-ID",
            raw.plain(
                "INVITE",
                "z9hG4bK-m2",
                &format!("Call-ID: other\n{SDP_TYPE}"),
                OFFER,
            ),
        ),
        (
            "two CSeq",
            raw.plain(
                "INVITE",
                "z9hG4bK-m3",
                &format!("CSeq: 2 INVITE\n{SDP_TYPE}"),
                OFFER,
            ),
        ),
        (
            "two To",
            raw.plain(
                "INVITE",
                "z9hG4bK-m4",
                &format!("To: <sip:2002@h>\n{SDP_TYPE}"),
                OFFER,
            ),
        ),
        (
            "two From",
            raw.plain("OPTIONS", "z9hG4bK-m5", "From: <sip:x@h>;tag=2\n", ""),
        ),
        (
            "an unterminated quoted string",
            raw.plain("INVITE", "z9hG4bK-m6", SDP_TYPE, OFFER)
                .replace("From: <sip:raw", "From: \"Mr. J. User <sip:raw"),
        ),
        (
            "<...> as Request-URI",
            raw.plain("INVITE", "z9hG4bK-m7", SDP_TYPE, OFFER)
                .replacen("INVITE sip:2001@", "INVITE <sip:2001@", 1)
                .replacen(" SIP/2.0\n", "> SIP/2.0\n", 1),
        ),
    ];
    for (what, text) in &cases {
        raw.send(text);
        let answer = raw
            .next_within(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no answer to {what}"));
        assert!(
            answer.starts_with("SIP/2.0 400 "),
            "{what}: expected 400, got\n{answer}"
        );
    }
    nothing_rang(&rig);
}

#[test]
fn voice_unsupported_version_scheme_body_and_offer_get_505_416_415_and_488() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let raw = Raw::new(rig.target());
    raw.send(&raw.plain("INVITE", "z9hG4bK-v", SDP_TYPE, OFFER).replacen(
        " SIP/2.0\n",
        " SIP/7.0\n",
        1,
    ));
    raw.expect(505);
    raw.send(&raw.plain("OPTIONS", "z9hG4bK-s", "", "").replacen(
        "OPTIONS sip:2001@",
        "OPTIONS nobodyknows:2001@",
        1,
    ));
    raw.expect(416);
    raw.send(&raw.plain(
        "INVITE",
        "z9hG4bK-b",
        "Content-Type: application/unknownformat\n",
        "<unknown/>\n",
    ));
    let refused = raw.expect(415);
    assert_eq!(header(&refused, "Accept"), Some("application/sdp"));
    // Offers with nothing we can take: answered at once, never offered to an agent.
    for (branch, media) in [
        ("z9hG4bK-o1", "m=audio 7000 RTP/SAVP 0"),
        ("z9hG4bK-o2", "m=audio 0 RTP/AVP 0"),
        ("z9hG4bK-o3", "m=audio 7000 RTP/AVP 18"),
    ] {
        let offer = OFFER.replace("m=audio 7000 RTP/AVP 0", media);
        raw.send(&raw.plain("INVITE", branch, SDP_TYPE, &offer));
        raw.expect(488);
    }
    nothing_rang(&rig);
}

#[test]
fn voice_a_final_failure_is_resent_doubling_until_the_ack() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let raw = Raw::new(rig.target());
    let offer = OFFER.replace("RTP/AVP 0", "RTP/AVP 18");
    let invite = raw.plain("INVITE", "z9hG4bK-timer-g", SDP_TYPE, &offer);
    raw.send(&invite);
    let start = Instant::now();
    let first = raw.expect(488);
    // Timer G: again after 0.5 s, 1 s, 2 s (T1 doubling up to T2).
    let mut at = vec![Duration::ZERO];
    while at.len() < 4 {
        let again = raw
            .next_within(Duration::from_secs(3))
            .expect("the 488 is resent until the ACK");
        assert_eq!(again, first, "the same response again");
        at.push(start.elapsed());
    }
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, expected) in gaps.iter().zip([500u64, 1000, 2000]) {
        let expected = Duration::from_millis(expected);
        assert!(
            *gap + Duration::from_millis(150) > expected
                && *gap < expected + Duration::from_millis(400),
            "gaps {gaps:?}"
        );
    }
    // The ACK (same branch, our To tag) ends it: nothing more in the next 4.5 s (the next copy
    // was due 4 s after the last).
    let ack = raw.plain("ACK", "z9hG4bK-timer-g", "", "").replace(
        &format!("To: <sip:2001@{}>", rig.target()),
        &format!("To: <sip:2001@{}>;tag={}", rig.target(), to_tag(&first)),
    );
    raw.send(&ack);
    assert_eq!(raw.next_within(Duration::from_millis(4500)), None);
}

#[test]
fn voice_a_normal_call_works_after_a_burst_of_hostile_requests() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let hostile = Raw::new(rig.target());
    let mut sent = 0;
    for round in 0..20 {
        let b = |n: u32| format!("z9hG4bK-burst-{round}-{n}");
        let burst = [
            hostile.plain(
                "INVITE",
                &b(1),
                &format!("Content-Length: 4\n{SDP_TYPE}"),
                OFFER,
            ),
            hostile.plain("INVITE", &b(2), &format!("Call-ID: x\n{SDP_TYPE}"), OFFER),
            hostile
                .plain("INVITE", &b(3), SDP_TYPE, OFFER)
                .replace("From: <sip:raw", "From: \"open <sip:raw"),
            hostile
                .plain("INVITE", &b(4), SDP_TYPE, OFFER)
                .replacen(" SIP/2.0\n", " SIP/7.0\n", 1),
            hostile
                .plain("OPTIONS", &b(5), "", "")
                .replacen("OPTIONS sip:", "OPTIONS tel:", 1),
            hostile.plain("OPTIONS", &b(6), "Require: nothingwecando\n", ""),
            hostile.plain("INVITE", &b(7), "Content-Type: text/x-nonsense\n", "junk\n"),
            hostile.plain(
                "INVITE",
                &b(8),
                SDP_TYPE,
                &OFFER.replace("RTP/AVP 0", "RTP/SAVP 0"),
            ),
        ];
        for text in &burst {
            hostile.send(text);
            sent += 1;
        }
    }
    // Every request gets its refusal (488s are resent by Timer G: count branches, not datagrams).
    let mut answered = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.len() < sent && Instant::now() < deadline {
        let Some(answer) = hostile.next_within(Duration::from_secs(2)) else {
            break;
        };
        let code: u16 = answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert!((400..600).contains(&code), "a refusal, not\n{answer}");
        let branch = header(&answer, "Via")
            .and_then(|v| v.split("branch=").nth(1))
            .map(|b| b.split(';').next().unwrap_or(b).to_string());
        answered.insert(branch.expect("a Via with the branch"));
    }
    assert_eq!(answered.len(), sent, "every hostile request is answered");
    assert!(rig.snapshot("ann").interactions.is_empty());
    // A normal call: rings, is accepted, talks, hangs up.
    let caller = Raw::new(rig.target());
    caller.send(&caller.request("INVITE", 1, "", OFFER));
    caller.expect(180);
    let key = rig.wait_offer("ann");
    rig.exec("ann", AgentCommand::Accept { key });
    let ok = caller.expect(200);
    let tag = to_tag(&ok);
    caller.send(&caller.request("ACK", 1, &tag, ""));
    caller.send(&caller.request("BYE", 2, &tag, ""));
    loop {
        // Skip any 2xx retransmission that crossed the ACK.
        let answer = caller
            .next_within(Duration::from_secs(5))
            .expect("an answer to BYE");
        if header(&answer, "CSeq") == Some("2 BYE") {
            assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
            break;
        }
    }
    rig.wait_state("ann", key, InteractionState::Ended);
    assert_eq!(rig.plugins.running_ids(), vec![VOICE.to_string()]);
}
