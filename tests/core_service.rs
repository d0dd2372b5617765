//! The core running as a service between real plugins and two agents' clients: routing of
//! plugin offers, the plugin told about accept and end, snapshots pushed to clients, and the
//! journal carrying everything (including de-duplication) across a restart.

use crate::support::Install;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::service::{AgentSnapshot, CoreService};
use agentdesk_host::storage::Journal;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::first_party_library;
use plugin_api::{ChannelKind, Command, Contact, InteractionId, InvokeAction, Media, Offer, Route};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const DEMO: &str = "agentdesk.demo";
const AGENTS: &str = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"demo\"]\n\
                      [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"demo\"]\n\
                      [channels.demo]\ncapacity = 1\n";

fn wait_for(
    stream: &crossbeam_channel::Receiver<AgentSnapshot>,
    what: &str,
    test: impl Fn(&AgentSnapshot) -> bool,
) -> AgentSnapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.recv_timeout(left) {
            Ok(snapshot) if test(&snapshot) => return snapshot,
            Ok(_) => continue,
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

fn ready(session: &agentdesk_host::service::AgentSession) {
    session
        .send(AgentCommand::LogOnChannel {
            channel: "demo".into(),
        })
        .expect("log on");
    session
        .send(AgentCommand::SetReady {
            channel: "demo".into(),
        })
        .expect("ready");
}

fn offered(s: &AgentSnapshot) -> Option<u64> {
    s.interactions
        .iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .map(|i| i.key)
}

#[test]
fn two_agents_take_plugin_offers_through_the_core_and_the_journal_survives_a_restart() {
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let config = AdminConfig::load(&install.write_config(&[DEMO], AGENTS)).expect("config");
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    let policy = Policy::from_config(&config, &["demo".to_string()]);
    let journal_path = install.data.join("journal.sqlite3");
    let service = CoreService::start(
        policy.clone(),
        Some(Journal::open(&journal_path).expect("journal")),
        Some(plugins.clone()),
        Arc::new(SystemClock),
    )
    .expect("service");
    let core = service.handle();
    let ann = core.login("ann").expect("ann logs in");
    ready(&ann);
    std::thread::sleep(Duration::from_millis(5));
    let bob = core.login("bob").expect("bob logs in (a second client)");
    ready(&bob);
    let ann_view = ann.watch().expect("watch");
    let bob_view = bob.watch().expect("watch");

    let new_conversation = Command::InvokeAction(InvokeAction {
        interaction: None,
        action: "new-conversation".into(),
    });
    plugins.send(DEMO, &new_conversation).expect("demo offers");
    let first = offered(&wait_for(
        &ann_view,
        "an offer to Ann, who has been idle longest",
        |s| offered(s).is_some(),
    ))
    .expect("offer");
    ann.send(AgentCommand::Accept { key: first })
        .expect("accept");
    let calls = plugins.metrics(DEMO).expect("metrics");
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.calls_ok.load(Ordering::Relaxed) < 2 {
        assert!(
            Instant::now() < deadline,
            "the demo plugin was never told about the accept"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    plugins
        .send(DEMO, &new_conversation)
        .expect("demo offers again");
    let second = offered(&wait_for(
        &bob_view,
        "the second offer to Bob (Ann is at capacity)",
        |s| offered(s).is_some(),
    ))
    .expect("offer");
    bob.send(AgentCommand::Accept { key: second })
        .expect("bob accepts");
    let refused = ann.send(AgentCommand::MarkDone {
        key: first,
        wrap_up: None,
        next: None,
    });
    assert!(
        refused.is_err(),
        "Mark Done on an active chat must be refused"
    );
    ann.send(AgentCommand::End { key: first }).expect("end");
    ann.send(AgentCommand::MarkDone {
        key: first,
        wrap_up: None,
        next: None,
    })
    .expect("done");
    let before = (ann.snapshot().expect("ann"), bob.snapshot().expect("bob"));
    service.stop();

    // Restart from the journal alone.
    let service = CoreService::start(
        policy,
        Some(Journal::open(&journal_path).expect("journal")),
        None,
        Arc::new(SystemClock),
    )
    .expect("restart");
    let core = service.handle();
    let after_bob = core.snapshot("bob").expect("snapshot").expect("bob");
    assert_eq!(
        after_bob.interactions, before.1.interactions,
        "Bob's chat is still his after a restart"
    );
    assert_eq!(after_bob.channels, before.1.channels);
    let after_ann = core.snapshot("ann").expect("snapshot").expect("ann");
    assert!(
        after_ann.interactions.is_empty(),
        "Ann's chat was marked done"
    );
    assert_eq!(after_ann.channels, before.0.channels);
    // A plugin re-sending its offer after a restart (same external id) creates nothing new.
    let demo_external = "demo-2";
    core.plugin_event(
        DEMO,
        plugin_api::Event::Offer(Offer {
            interaction: InteractionId::new("demo-2"),
            external_id: demo_external.into(),
            channel: ChannelKind::new("demo"),
            media: Media::Conversation,
            route: Route::queue("default"),
            contact: Contact::default(),
            subject: None,
            case_data: vec![],
            actions: vec![],
            priority: 0,
        }),
    )
    .expect("event");
    core.tick().expect("tick");
    let bob_after = core.snapshot("bob").expect("snapshot").expect("bob");
    assert_eq!(bob_after.interactions.len(), 1);
    assert_eq!(
        bob_after.seq, after_bob.seq,
        "the duplicate offer changed nothing"
    );
}
