//! A team survives its servers: the `agentdesk hub` process killed (SIGKILL) in the middle of a
//! chat and started again, and `nats-server` killed and started again. The desktop reconnects by
//! itself each time; the chat goes on with its transcript; nothing acknowledged is lost.

use crate::nats::NatsServer;
use crate::support::Install;
use crate::team::{desk, ok, start_hub, until, within};
use agentdesk_client::{AgentCommand, DeskClient, InteractionState, LinkState};
use agentdesk_host::plugins::package::package;
use agentdesk_tests::first_party_library;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn say(ann: &dyn DeskClient, key: u64, text: &str) {
    ann.send_message(ann.next_id(), key, text)
        .wait(WAIT)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn texts(ann: &dyn DeskClient, key: u64) -> Vec<String> {
    ann.live_lines(key, 0, 100)
        .wait(WAIT)
        .expect("lines")
        .into_iter()
        .map(|l| l.line.text)
        .collect()
}

#[test]
fn a_killed_hub_and_a_restarted_nats_server_are_survived_without_the_agent_doing_anything() {
    let mut nats = NatsServer::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let extra = "[plugins.settings.\"agentdesk.demo\"]\noffer_at_start = 1\n\
                 [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\"]\n";
    let config = install.write_config(&["agentdesk.demo"], extra);
    let hub = start_hub(&config, &nats.url);

    let ann = desk(&nats.url, "ann");
    let ann_sees = ann.watch();
    ok(
        &*ann,
        AgentCommand::LogOnChannel {
            channel: "demo".into(),
        },
    );
    ok(
        &*ann,
        AgentCommand::SetReady {
            channel: "demo".into(),
        },
    );
    let offered = until(&ann_sees, "the demo chat", |s| !s.interactions.is_empty());
    let key = offered.interactions[0].key;
    ok(&*ann, AgentCommand::Accept { key });
    say(&*ann, key, "First, before the crash");

    // SIGKILL: no stop, no goodbye.
    drop(hub);
    within(Duration::from_secs(10), "Ann's desktop noticing", || {
        ann.link() == LinkState::Reconnecting
    });
    let _hub = start_hub(&config, &nats.url);
    within(WAIT, "Ann's desktop reconnecting by itself", || {
        ann.link() == LinkState::Connected
    });
    // The chat is still Ann's, with what was acknowledged before the crash.
    let back = until(&ann_sees, "the chat after the restart", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.state == InteractionState::Active)
    });
    assert!(back.logged_in);
    let before = texts(&*ann, key);
    assert!(
        before.iter().any(|t| t == "First, before the crash"),
        "{before:?}"
    );
    say(&*ann, key, "Second, after the hub came back");

    // Now the NATS server itself goes and comes back on the same port.
    nats.restart();
    within(WAIT, "Ann's desktop through the NATS restart", || {
        ann.link() == LinkState::Connected
            && ann
                .command(ann.next_id(), AgentCommand::SetDnd { on: false })
                .wait(Duration::from_secs(2))
                .is_ok()
    });
    say(&*ann, key, "Third, after NATS came back");
    let after = texts(&*ann, key);
    for said in [
        "First, before the crash",
        "Second, after the hub came back",
        "Third, after NATS came back",
    ] {
        assert_eq!(
            after.iter().filter(|t| *t == said).count(),
            1,
            "{said}: {after:?}"
        );
    }
}
