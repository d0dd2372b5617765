//! Issue 15: a team at work on two computers. The `agentdesk hub` process runs the web chat
//! plugin and the core; Ann's and Bob's desktops are processes of their own on NATS
//! (`agentdesk-test-desk`); the customers are in headless Chromium. Ann takes a chat, consults
//! Bob privately and conferences him in; she takes a second chat, consults Bob about it and
//! transfers it to him. Each desk and each customer see what they should.

use crate::browser::Browser;
use crate::client_suite::until;
use crate::desk_process::DeskProcess;
use crate::nats::NatsServer;
use crate::support::Install;
use crate::team::start_hub;
use agentdesk_client::{AgentCommand, AgentSnapshot, InteractionState};
use agentdesk_host::plugins::package::package;
use agentdesk_tests::first_party_library;

const CHAT: &str = "agentdesk.chat";

fn ready(desk: &DeskProcess) {
    desk.ok(AgentCommand::LogOnChannel {
        channel: "chat".into(),
    });
    desk.ok(AgentCommand::SetReady {
        channel: "chat".into(),
    });
}

/// An interaction offered to the snapshot's own agent (a consultation an agent started shows as
/// offered to the colleague in the starter's snapshot too).
fn offered_to_me(s: &AgentSnapshot) -> Option<u64> {
    s.interactions
        .iter()
        .find(|i| matches!(&i.state, InteractionState::Offered { agent, .. } if *agent == s.agent))
        .map(|i| i.key)
}

/// Waits for an offer to `desk`'s agent and accepts it; returns its key.
fn accept_offer(desk: &DeskProcess, what: &str) -> u64 {
    let offered = until(&desk.snapshots, what, |s| offered_to_me(s).is_some());
    let key = offered_to_me(&offered).expect("offered");
    desk.ok(AgentCommand::Accept { key });
    key
}

#[test]
fn ann_and_bob_at_two_desktops_consult_conference_and_transfer_a_customer_chat() {
    let nats = NatsServer::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_chat"), &install.plugins).expect("package chat");
    let extra = format!(
        "[plugins.settings.\"{CHAT}\"]\nport = 0\n[channels.chat]\ncapacity = 2\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\n\
         [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"chat\"]\n"
    );
    let config = install.write_config(&[CHAT], &extra);
    let _hub = start_hub(&config, &nats.url);
    let endpoint = install
        .data
        .join("plugins")
        .join(CHAT)
        .join("endpoint.json");
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(endpoint).expect("endpoint.json"))
            .expect("endpoint");
    let widget = endpoint["url"].as_str().expect("url").to_string();

    let ann = DeskProcess::start(&nats.url, "ann");
    let bob = DeskProcess::start(&nats.url, "bob");
    ready(&ann);

    // The customer starts a chat in the widget; it rings at Ann's desk.
    let browser = Browser::open();
    browser.start_chat(&widget, "Cora", "cora@example.com");
    let key = accept_offer(&ann, "the customer's chat offered to Ann");
    browser.wait_line("Ann joined", |l| l == "Ann joined the chat");
    browser.say("My parcel is late");
    ann.wait_line(key, "My parcel is late");

    // Ann consults Bob, at his own desk, privately.
    ready(&bob);
    ann.ok(AgentCommand::Consult {
        key,
        colleague: "bob".into(),
    });
    let consultation = accept_offer(&bob, "the consultation offered to Bob");
    assert_ne!(consultation, key);
    bob.say(consultation, "Is she a VIP customer?");
    ann.wait_line(consultation, "Is she a VIP customer?");
    ann.say(key, "One moment please.");
    browser.wait_line("Ann's message", |l| l.ends_with("One moment please."));
    let page = browser.lines().join("\n");
    assert!(!page.contains("VIP"), "the consultation leaked: {page}");
    assert!(
        !page.contains("Bob"),
        "the customer sees Bob too early: {page}"
    );

    // Ann conferences Bob in: the customer sees him join, and he reads the customer.
    ann.ok(AgentCommand::Conference { consultation });
    browser.wait_line("Bob joining", |l| l == "Bob joined the chat");
    until(&bob.snapshots, "Bob in the conference", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.conference == vec!["bob".to_string()])
    });
    browser.say("Hello both of you");
    bob.wait_line(key, "Hello both of you");

    // A second customer; Bob takes a break so the chat rings at Ann's desk.
    bob.ok(AgentCommand::SetNotReady {
        channel: "chat".into(),
        reason: "break".into(),
    });
    let second = Browser::open();
    second.start_chat(&widget, "Tess", "tess@example.com");
    let tess = accept_offer(&ann, "the second customer's chat offered to Ann");
    assert_ne!(tess, key);
    second.wait_line("Ann joined", |l| l == "Ann joined the chat");
    second.say("Can someone check my invoice?");
    ann.wait_line(tess, "Can someone check my invoice?");

    // Ann consults Bob about it and transfers it to him: he takes over.
    bob.ok(AgentCommand::SetReady {
        channel: "chat".into(),
    });
    ann.ok(AgentCommand::Consult {
        key: tess,
        colleague: "bob".into(),
    });
    let about_tess = accept_offer(&bob, "the consultation about Tess offered to Bob");
    ann.ok(AgentCommand::TransferAfterConsultation {
        consultation: about_tess,
    });
    second.wait_line("Ann leaving", |l| l == "Ann left the chat");
    second.wait_line("Bob joining", |l| l == "Bob joined the chat");
    until(&bob.snapshots, "Bob owning Tess's chat", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == tess && i.owner.as_deref() == Some("bob"))
    });
    until(&ann.snapshots, "Tess's chat gone from Ann's desk", |s| {
        !s.interactions.iter().any(|i| i.key == tess)
    });
    bob.say(tess, "Hi, I'm taking over.");
    second.wait_line("Bob's message under his name", |l| {
        l == "BobHi, I'm taking over."
    });
    // Bob reads the whole conversation, from before he joined too.
    let lines = bob.lines(tess);
    assert!(
        lines
            .iter()
            .any(|l| l.line.text == "Can someone check my invoice?"),
        "{lines:?}"
    );
    // Ann no longer takes part: she cannot write in it.
    let refused = ann.command(AgentCommand::Hold { key: tess });
    assert!(refused.is_err(), "Ann acts on a chat transferred away");
    // The first customer never heard of the second.
    let page = browser.lines().join("\n");
    assert!(!page.contains("invoice"), "{page}");
}
