//! Issue 15: the team changes without a restart. `agentdesk hub reload` (and SIGHUP) re-reads the
//! admin file: an agent is added, a channel withdrawn from an agent who has a chat open on it.
//! The chat goes on, across the reload and across a kill -9 and restart of the hub with the new
//! file (the journal records the team); no new offer reaches the withdrawn channel; a bad file
//! is refused with its file, line and key, and the running configuration stays.

use crate::cli::agentdesk_env;
use crate::client_suite::{ok, until};
use crate::nats::NatsServer;
use crate::support::Install;
use crate::team::{desk, start_hub};
use agentdesk_client::{AgentCommand, ChannelState, DeskClient, InteractionState, LinkState};
use agentdesk_host::plugins::package::package;
use agentdesk_tests::first_party_library;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// Two demo conversations wait from the start; one chat at a time per agent.
const SETTINGS: &str = "[plugins.settings.\"agentdesk.demo\"]\noffer_at_start = 2\n\
                        [channels.demo]\ncapacity = 1\n";

fn team(agents: &str, reasons: &str) -> String {
    format!("{SETTINGS}[core]\nnot_ready_reasons = [{reasons}]\n{agents}")
}

const ANN_BOB: &str = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\"]\n\
                       [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"demo\"]\n";

/// Bob's demo channel withdrawn (he keeps none), Carol added.
const ANN_BOB_CAROL: &str = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\"]\n\
                             [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = []\n\
                             [[agents]]\nid = \"carol\"\nname = \"Carol\"\nchannels = [\"demo\"]\n";

fn reload(nats: &str) -> std::process::Output {
    agentdesk_env(&["hub", "reload", "--nats", nats], &[])
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn log_on_ready(client: &dyn DeskClient, channel: &str) {
    ok(
        client,
        AgentCommand::LogOnChannel {
            channel: channel.into(),
        },
    );
    ok(
        client,
        AgentCommand::SetReady {
            channel: channel.into(),
        },
    );
}

#[test]
fn a_reload_withdraws_a_channel_under_a_live_chat_and_adds_an_agent() {
    let nats = NatsServer::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let config = install.write_config(&["agentdesk.demo"], &team(ANN_BOB, "\"break\""));
    let hub = start_hub(&config, &nats.url);

    // Bob takes the first demo chat and talks in it.
    let bob = desk(&nats.url, "bob");
    let bob_sees = bob.watch();
    log_on_ready(&*bob, "demo");
    let offered = until(&bob_sees, "a chat offered to Bob", |s| {
        s.interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let chat = offered.interactions[0].key;
    ok(&*bob, AgentCommand::Accept { key: chat });
    bob.send_message(bob.next_id(), chat, "Before the reload")
        .wait(WAIT)
        .expect("sent");

    // A bad file is refused with its file, line and key; the team stays as it was.
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{good}\n[channels.voice]\ncapacity = \"two\"\n"),
    )
    .expect("bad config");
    let refused = reload(&nats.url);
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("bad-config"), "{said}");
    assert!(said.contains(&config.display().to_string()), "{said}");
    assert!(said.contains("capacity"), "{said}");
    let not_yet = agentdesk_client::remote::Remote::connect(
        &agentdesk_client::remote::RemoteOptions::new(nats.url.clone()),
    )
    .expect("connect");
    let agents = agentdesk_client::Connection::agents(&not_yet)
        .wait(WAIT)
        .expect("agents");
    assert_eq!(agents.len(), 2, "the running team stays: {agents:?}");

    // The real change: Bob's demo channel withdrawn, Carol added.
    let changed = install.write_config(&["agentdesk.demo"], &team(ANN_BOB_CAROL, "\"break\""));
    assert_eq!(changed, config);
    let done = reload(&nats.url);
    let said = text(&done);
    assert!(done.status.success(), "{said}");
    assert!(said.contains("agents added: carol"), "{said}");
    assert!(said.contains("channels withdrawn: bob/demo"), "{said}");

    // Bob's chat goes on: his message reaches the customer, whose echo reaches him.
    bob.send_message(bob.next_id(), chat, "After the reload")
        .wait(WAIT)
        .expect("sent after the reload");
    until(&bob_sees, "the echo after the reload", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == chat && i.detail.lines >= 5)
    });
    // He cannot make the channel Ready again.
    let refused = bob
        .command(
            bob.next_id(),
            AgentCommand::SetReady {
                channel: "demo".into(),
            },
        )
        .wait(WAIT)
        .expect_err("withdrawn");
    assert_eq!(refused.code(), "channel-not-assigned", "{refused:?}");

    // Carol, new, logs in and gets the second chat; nothing goes to Bob.
    let carol = desk(&nats.url, "carol");
    let carol_sees = carol.watch();
    log_on_ready(&*carol, "demo");
    until(&carol_sees, "the second chat offered to Carol", |s| {
        s.interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });

    // kill -9 and a restart with the new file: Bob's chat is still his (the journal recorded the
    // team before the reload, so the replay agrees), and still on a withdrawn channel.
    drop(hub);
    let mut hub = start_hub(&config, &nats.url);
    let back = until(&bob_sees, "Bob's chat after the restart", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == chat && i.state == InteractionState::Active)
    });
    assert!(
        back.channels.iter().any(|c| c.channel == "demo"),
        "the channel shows while he finishes: {back:?}"
    );
    // (The new hub's first snapshot can reach him before the answer to the heartbeat that tells
    // his desktop the hub is back.)
    crate::team::within(WAIT, "Bob's desktop back on the hub", || {
        bob.link() == LinkState::Connected
    });
    // He ends it and marks it done: the withdrawn channel goes.
    ok(&*bob, AgentCommand::End { key: chat });
    ok(
        &*bob,
        AgentCommand::MarkDone {
            key: chat,
            wrap_up: None,
            next: None,
        },
    );
    let after = until(&bob_sees, "Bob without the demo channel", |s| {
        s.channels.is_empty() && s.interactions.is_empty()
    });
    assert!(after.logged_in, "{after:?}");

    // SIGHUP re-reads the file too: a new reason is accepted at once.
    crate::team::within(WAIT, "Carol's desktop back on the hub", || {
        carol.link() == LinkState::Connected
    });
    let coffee = || {
        carol
            .command(
                carol.next_id(),
                AgentCommand::SetNotReady {
                    channel: "demo".into(),
                    reason: "coffee".into(),
                },
            )
            .wait(WAIT)
    };
    let refused = coffee().expect_err("not a reason yet");
    assert_eq!(refused.code(), "unknown-reason");
    install.write_config(
        &["agentdesk.demo"],
        &team(ANN_BOB_CAROL, "\"break\", \"coffee\""),
    );
    let pid = hub.0.id().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    crate::team::within(WAIT, "the new reason after SIGHUP", || coffee().is_ok());
    let carol_now = until(&carol_sees, "Carol on a coffee break", |s| {
        s.channels.iter().any(|c| {
            matches!(&c.state, ChannelState::NotReady { reason } if reason == "coffee")
                || matches!(&c.state, ChannelState::Pending { reason } if reason == "coffee")
        })
    });
    assert_eq!(carol_now.agent, "carol");
    assert!(
        hub.0.try_wait().expect("wait").is_none(),
        "the hub still runs after SIGHUP"
    );

    // The demo plugin taken off the allowlist: stopped, with the reason in the plugin table.
    install.write_config(&[], &team(ANN_BOB_CAROL, "\"break\", \"coffee\""));
    let done = reload(&nats.url);
    let said = text(&done);
    assert!(done.status.success(), "{said}");
    assert!(said.contains("plugins removed: agentdesk.demo"), "{said}");
    let table = agentdesk_client::Connection::plugins(&not_yet)
        .wait(WAIT)
        .expect("plugin table");
    let demo = table
        .plugins
        .iter()
        .find(|p| p.id == "agentdesk.demo")
        .expect("the demo plugin's row");
    assert_eq!(demo.status, "quarantined", "{demo:?}");
    assert!(
        demo.reason.as_deref().unwrap_or("").contains("allowlist"),
        "{demo:?}"
    );
}
