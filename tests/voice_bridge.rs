//! Voice at the agent's own endpoint: the voice plugin as the registrar of agents' endpoints
//! (SIP digest with the passwords of the admin configuration) and as the bridge (B2BUA) that
//! carries each customer call to the answering agent's registered endpoint. The endpoints here
//! are real SIP phones (baresip) registered as the agents' extensions; the customer is baresip
//! too. Audio is proven by frequency, as in the voice tests.

use crate::voice::{
    Baresip, CUSTOMER_HZ, Raw, Rig, VOICE, assert_tone, read_channel, tone_blocks, until,
};
use agentdesk_host::core::{AgentCommand, InteractionState};
use agentdesk_host::service::Interact;
use agentdesk_phone::{Phone, PhoneConfig};
use plugin_api::{MediaState, Route};
use std::time::Duration;

/// Ann's and Bob's phones' voices (the plugin's own WAV, the host's "agent", is 1200 Hz).
const ANN_PHONE_HZ: f64 = 900.0;
const BOB_PHONE_HZ: f64 = 700.0;
const ANN_PASSWORD: &str = "ann-phone-secret";
const BOB_PASSWORD: &str = "bob-phone-secret";

/// A host whose voice channel is the registrar for Ann (2001) and Bob (2002).
fn rig() -> Rig {
    Rig::with_lines(
        &format!(
            "[plugins.settings.\"{VOICE}\".agents.bob]\nextension = \"2002\"\npassword = \"{BOB_PASSWORD}\"\n"
        ),
        &format!("password = \"{ANN_PASSWORD}\""),
        "",
        20,
    )
}

fn phone(rig: &Rig, user: &str, hz: f64, password: &str) -> Baresip {
    let phone = Baresip::registered(user, hz, &rig.target(), password);
    until(&format!("{user}'s phone registered"), || {
        phone.is_registered().then_some(())
    });
    phone
}

/// A REGISTER for `user` from `raw`, with an `Authorization` line when given.
fn register(raw: &Raw, rig: &Rig, user: &str, cseq: u32, authorization: Option<&str>) -> String {
    let port = raw.port();
    let target = rig.target();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\n"));
    format!(
        "REGISTER sip:{target} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-reg-{user}-{cseq}\n\
         From: <sip:{user}@{target}>;tag=forger\nTo: <sip:{user}@{target}>\n\
         Call-ID: reg-{user}-{port}\nCSeq: {cseq} REGISTER\nContact: <sip:{user}@127.0.0.1:{port}>\n\
         Expires: 60\nMax-Forwards: 70\n{auth}Content-Length: 0\n\n"
    )
}

/// The registrar's challenge: its realm and nonce (and that it asks for `qop=auth`).
#[derive(Clone)]
struct Challenge {
    realm: String,
    nonce: String,
}

impl Challenge {
    /// An `Authorization` value for REGISTER with `qop=auth` (RFC 2617 §3.2.2), written here
    /// independently of the plugin's digest code.
    fn answer(&self, uri: &str, user: &str, password: &str, cnonce: &str) -> String {
        let md5 = |s: String| {
            use md5::Digest as _;
            md5::Md5::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let ha1 = md5(format!("{user}:{}:{password}", self.realm));
        let ha2 = md5(format!("REGISTER:{uri}"));
        let response = md5(format!("{ha1}:{}:00000001:{cnonce}:auth:{ha2}", self.nonce));
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\", response=\"{response}\"",
            self.realm, self.nonce
        )
    }
}

fn challenge_of(response: &str) -> Challenge {
    let line = response
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate:"))
        .unwrap_or_else(|| panic!("a challenge in:\n{response}"));
    assert!(line.trim().starts_with("Digest "), "{line}");
    assert!(line.contains("qop=\"auth\""), "{line}");
    let quoted = |name: &str| {
        line.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .to_string()
    };
    Challenge {
        realm: quoted("realm"),
        nonce: quoted("nonce"),
    }
}

#[test]
fn voice_bridge_registrar_challenges_and_refuses_forged_registrations() {
    let rig = rig();
    let raw = Raw::new(rig.target());
    let uri = format!("sip:{}", rig.target());
    // No credentials: a challenge.
    raw.send(&register(&raw, &rig, "2001", 1, None));
    let challenge = challenge_of(&raw.expect(401));
    assert_eq!(challenge.realm, "agentdesk");
    // The wrong password for Ann: refused.
    let wrong = challenge.answer(&uri, "2001", "guessed", "c1");
    raw.send(&register(&raw, &rig, "2001", 2, Some(&wrong)));
    raw.expect(403);
    // Bob's password presented for Ann's extension: refused.
    let bobs = challenge.answer(&uri, "2002", BOB_PASSWORD, "c2");
    raw.send(&register(&raw, &rig, "2001", 3, Some(&bobs)));
    raw.expect(403);
    // A nonce the registrar never issued: challenged again, never accepted.
    let made_up = Challenge {
        nonce: "made-up".into(),
        ..challenge.clone()
    }
    .answer(&uri, "2001", ANN_PASSWORD, "c3");
    raw.send(&register(&raw, &rig, "2001", 4, Some(&made_up)));
    raw.expect(401);
    // An extension that is no agent's endpoint: refused.
    raw.send(&register(&raw, &rig, "2999", 5, None));
    raw.expect(403);
    // Ann's password on a fresh nonce: registered, and the binding is named.
    raw.send(&register(&raw, &rig, "2001", 6, None));
    let challenge = challenge_of(&raw.expect(401));
    let right = challenge.answer(&uri, "2001", ANN_PASSWORD, "c4");
    raw.send(&register(&raw, &rig, "2001", 7, Some(&right)));
    let ok = raw.expect(200);
    assert!(
        ok.contains(&format!("sip:2001@127.0.0.1:{}", raw.port())),
        "{ok}"
    );
    // The same answer again (as an eavesdropper would replay it): not accepted, challenged.
    raw.send(&register(&raw, &rig, "2001", 8, Some(&right)));
    raw.expect(401);
}

/// Ann's binding as the registrar tells it (an authenticated REGISTER without Contact).
fn binding_of_ann(rig: &Rig) -> Option<String> {
    let raw = Raw::new(rig.target());
    let port = raw.port();
    let target = rig.target();
    let query = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{target} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-q-{cseq}\n\
             From: <sip:2001@{target}>;tag=q\nTo: <sip:2001@{target}>\nCall-ID: q-{port}\n\
             CSeq: {cseq} REGISTER\nMax-Forwards: 70\n{auth}Content-Length: 0\n\n"
        )
    };
    raw.send(&query(1, ""));
    let challenge = challenge_of(&raw.expect(401));
    let answer = challenge.answer(&format!("sip:{target}"), "2001", ANN_PASSWORD, "q");
    raw.send(&query(2, &format!("Authorization: {answer}\n")));
    let ok = raw.expect(200);
    ok.lines()
        .find(|l| l.starts_with("Contact:"))
        .map(String::from)
}

#[test]
fn voice_bridge_carries_a_customer_call_to_the_agents_registered_phone_both_ways() {
    let rig = rig();
    let ann_phone = phone(&rig, "2001", ANN_PHONE_HZ, ANN_PASSWORD);
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    rig.ready("ann");
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("ann");
    assert!(
        !ann_phone.established(),
        "the phone rings only once Ann accepts"
    );
    rig.exec("ann", AgentCommand::Accept { key });
    rig.wait_media("ann", key, MediaState::Connected);
    until("the customer connected", || {
        customer.established().then_some(())
    });
    until("Ann's phone connected", || {
        ann_phone.established().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    // DTMF keeps working from the desk (on the plugin's leg), and keys pressed on Ann's phone
    // reach the customer too.
    rig.core
        .interact("ann", key, Interact::Dtmf("4".into()))
        .expect("dtmf");
    until("the customer received the desk's digit", || {
        customer
            .log()
            .contains("received event: '4' (end=1)")
            .then_some(())
    });
    ann_phone.cmd("sndcode", "7");
    until("the customer received the phone's digit", || {
        customer
            .log()
            .contains("received event: '7' (end=1)")
            .then_some(())
    });
    // Hold and resume from the desk act on the customer's leg; Ann's phone stays on the call.
    rig.exec("ann", AgentCommand::Hold { key });
    rig.wait_media("ann", key, MediaState::Held);
    assert!(ann_phone.established(), "Ann's phone stays on a held call");
    rig.resume("ann", key);
    rig.wait_media("ann", key, MediaState::Connected);
    std::thread::sleep(Duration::from_secs(1));
    customer.cmd("hangup", "");
    let ended = rig.wait_state("ann", key, InteractionState::Ended);
    until("Ann's phone hung up", || {
        (!ann_phone.established()).then_some(())
    });
    assert!(
        ended.detail.case_data.iter().any(|f| f.key == "recording"),
        "the call record is kept: {:?}",
        ended.detail.case_data
    );
    ann_phone.assert_heard(CUSTOMER_HZ, "Ann's phone heard the customer");
    customer.assert_heard(ANN_PHONE_HZ, "the customer heard Ann's phone");
    let recording = rig.recordings().pop().expect("a recording");
    assert_tone(&recording, 0, CUSTOMER_HZ, "the recording's customer side");
    assert_tone(
        &recording,
        1,
        ANN_PHONE_HZ,
        "the recording's agent side is Ann's phone",
    );
    let (agent_side, rate) = read_channel(&recording, 1);
    assert!(
        tone_blocks(&agent_side, rate, crate::voice::AGENT_HZ) <= 2,
        "the host's own voice file is not the agent once a phone is bridged"
    );
}

#[test]
fn voice_bridge_a_transfer_inside_agentdesk_moves_the_call_to_bobs_phone() {
    let rig = rig();
    let ann_phone = phone(&rig, "2001", ANN_PHONE_HZ, ANN_PASSWORD);
    let bob_phone = phone(&rig, "2002", BOB_PHONE_HZ, BOB_PASSWORD);
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    rig.ready("ann");
    rig.ready("bob");
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("ann");
    rig.exec("ann", AgentCommand::Accept { key });
    until("Ann's phone connected", || {
        ann_phone.established().then_some(())
    });
    rig.exec(
        "ann",
        AgentCommand::Transfer {
            key,
            to: Route::agent("bob"),
        },
    );
    let offered = rig.wait_offer("bob");
    rig.exec("bob", AgentCommand::Accept { key: offered });
    until("Bob's phone connected", || {
        bob_phone.established().then_some(())
    });
    until("Ann's phone hung up", || {
        (!ann_phone.established()).then_some(())
    });
    assert!(customer.established(), "the customer stays on the line");
    std::thread::sleep(Duration::from_secs(2));
    bob_phone.assert_heard(CUSTOMER_HZ, "Bob's phone heard the customer");
    customer.assert_heard(BOB_PHONE_HZ, "the customer heard Bob's phone");
    // Bob hangs up his phone: the call ends, for the customer and on Bob's desk.
    bob_phone.cmd("hangup", "");
    rig.wait_state("bob", offered, InteractionState::Ended);
    until("the customer hung up", || {
        (!customer.established()).then_some(())
    });
}

#[test]
fn voice_bridge_the_desktops_endpoint_registers_answers_and_takes_calls_from_its_registrar_only() {
    let rig = rig();
    let dir = tempfile::tempdir().expect("dir");
    let tone = dir.path().join("ann.wav");
    crate::voice::write_tone(&tone, ANN_PHONE_HZ, 10);
    // A wrong password: the registrar refuses it, and the endpoint says so.
    let forged =
        Phone::start(PhoneConfig::new(&rig.target(), "ann", "2001", "guessed")).expect("starts");
    until("the wrong password refused", || {
        let status = forged.status();
        (!status.registered && status.detail.contains("403")).then_some(())
    });
    drop(forged);
    let phone = Phone::start(PhoneConfig {
        play: Some(tone),
        recordings: Some(dir.path().join("calls")),
        ..PhoneConfig::new(&rig.target(), "ann", "2001", ANN_PASSWORD)
    })
    .expect("the endpoint starts");
    until("Ann's endpoint registered", || {
        phone.status().registered.then_some(())
    });
    // Somebody else calling the endpoint directly is refused: calls come through the hub.
    let stranger = Raw::new(format!("127.0.0.1:{}", phone.port()));
    stranger.send(&stranger.plain("INVITE", "z9hG4bK-stranger", "", ""));
    stranger.expect(403);
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    rig.ready("ann");
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("ann");
    rig.exec("ann", AgentCommand::Accept { key });
    until("the endpoint answered", || {
        (phone.status().calls == 1).then_some(())
    });
    until("the customer connected", || {
        customer.established().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    customer.cmd("hangup", "");
    rig.wait_state("ann", key, InteractionState::Ended);
    until("the endpoint hung up", || {
        (phone.status().calls == 0).then_some(())
    });
    assert_eq!(phone.status().answered, 1);
    // A desk that closes takes its registration back.
    assert!(binding_of_ann(&rig).is_some(), "registered while running");
    drop(phone);
    assert_eq!(binding_of_ann(&rig), None, "unregistered when stopped");
    customer.assert_heard(ANN_PHONE_HZ, "the customer heard Ann's endpoint");
    let recording = std::fs::read_dir(dir.path().join("calls"))
        .expect("the endpoint's recordings")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("a recording");
    assert_tone(
        &recording,
        0,
        CUSTOMER_HZ,
        "Ann's endpoint heard the customer",
    );
}

/// Ann takes a customer's call on her phone and consults Bob, whose phone answers: Ann's phone,
/// Bob's phone, the customer, the call's key and the consultation's.
fn consulting_bob(rig: &Rig) -> (Baresip, Baresip, Baresip, u64, u64) {
    let ann_phone = phone(rig, "2001", ANN_PHONE_HZ, ANN_PASSWORD);
    let bob_phone = phone(rig, "2002", BOB_PHONE_HZ, BOB_PASSWORD);
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    rig.ready("ann");
    rig.ready("bob");
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("ann");
    rig.exec("ann", AgentCommand::Accept { key });
    until("Ann's phone connected", || {
        ann_phone.established().then_some(())
    });
    rig.exec(
        "ann",
        AgentCommand::Consult {
            key,
            colleague: "bob".into(),
        },
    );
    rig.wait_media("ann", key, MediaState::Held);
    let consultation = until("the consultation", || {
        rig.find("bob", |i| i.consult_about == Some(key))
            .map(|i| i.key)
    });
    if rig
        .find("bob", |i| {
            i.key == consultation && matches!(i.state, InteractionState::Offered { .. })
        })
        .is_some()
    {
        rig.exec("bob", AgentCommand::Accept { key: consultation });
    }
    until("Bob's phone connected", || {
        bob_phone.established().then_some(())
    });
    (ann_phone, bob_phone, customer, key, consultation)
}

#[test]
fn voice_bridge_consulting_bob_calls_his_phone_and_the_transfer_hands_it_the_customer() {
    let rig = rig();
    let (ann_phone, bob_phone, customer, _key, consultation) = consulting_bob(&rig);
    std::thread::sleep(Duration::from_secs(1));
    rig.exec(
        "ann",
        AgentCommand::TransferAfterConsultation { consultation },
    );
    until("Ann's phone hung up", || {
        (!ann_phone.established()).then_some(())
    });
    assert!(customer.established(), "the customer stays on the line");
    assert!(bob_phone.established(), "Bob's phone keeps its call");
    // Only what Bob's phone hears after the hand-over comes from the customer.
    std::thread::sleep(Duration::from_secs(2));
    bob_phone.assert_heard(CUSTOMER_HZ, "Bob's phone heard the customer");
    customer.assert_heard(BOB_PHONE_HZ, "the customer heard Bob's phone");
    customer.cmd("hangup", "");
    until("Bob's phone hung up", || {
        (!bob_phone.established()).then_some(())
    });
}

#[test]
fn voice_bridge_a_conference_keeps_both_phones_and_the_customer_hearing_each_other() {
    let rig = rig();
    let (ann_phone, bob_phone, customer, key, consultation) = consulting_bob(&rig);
    rig.exec("ann", AgentCommand::Conference { consultation });
    rig.wait_media("ann", key, MediaState::Connected);
    std::thread::sleep(Duration::from_secs(2));
    for (phone, who) in [(&ann_phone, "Ann's"), (&bob_phone, "Bob's")] {
        assert!(phone.established(), "{who} phone stays in the conference");
    }
    assert!(
        customer.established(),
        "the customer stays in the conference"
    );
    customer.assert_heard(ANN_PHONE_HZ, "the customer heard Ann's phone");
    customer.assert_heard(BOB_PHONE_HZ, "the customer heard Bob's phone");
    bob_phone.assert_heard(CUSTOMER_HZ, "Bob's phone heard the customer");
    // The customer's hang-up ends the conference for everyone: no phone is left on a call the
    // desk no longer shows.
    customer.cmd("hangup", "");
    until("both phones hung up", || {
        (!ann_phone.established() && !bob_phone.established()).then_some(())
    });
}
