//! The core running as a service between real plugins and two agents' clients: routing of
//! plugin offers, the plugin told about accept and end, snapshots pushed to clients, and the
//! journal carrying everything (including de-duplication) across a restart.

use crate::support::Install;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::service::{AgentSnapshot, CoreService};
use agentdesk_host::storage::{History, Journal};
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
        Some(History::open(&journal_path).expect("history")),
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
    let stored = History::open(&journal_path)
        .expect("history")
        .handling(first)
        .expect("query");
    assert!(
        stored.is_some(),
        "the handling time of a closed chat is kept in the history"
    );

    // Restart from the journal alone.
    let service = CoreService::start(
        policy,
        Some(Journal::open(&journal_path).expect("journal")),
        Some(History::open(&journal_path).expect("history")),
        None,
        Arc::new(SystemClock),
    )
    .expect("restart");
    let core = service.handle();
    let after_bob = core.snapshot("bob").expect("snapshot").expect("bob");
    // What a channel can do is the running plugin's hello, not journaled: this restart runs none.
    let journaled = |mut views: Vec<agentdesk_host::service::InteractionView>| {
        views.iter_mut().for_each(|v| v.commands.clear());
        views
    };
    assert_eq!(
        journaled(after_bob.interactions.clone()),
        journaled(before.1.interactions.clone()),
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

fn offer_event(id: &str, channel: &str, contact: Contact) -> plugin_api::Event {
    plugin_api::Event::Offer(Offer {
        interaction: InteractionId::new(id),
        external_id: id.into(),
        channel: ChannelKind::new(channel),
        media: Media::Conversation,
        route: Route::queue("default"),
        contact,
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    })
}

fn message_event(id: &str, text: &str) -> plugin_api::Event {
    plugin_api::Event::MessageReceived(plugin_api::MessageReceived {
        interaction: InteractionId::new(id),
        from: plugin_api::Party {
            id: "customer".into(),
            role: plugin_api::Party::CUSTOMER.into(),
            display_name: "Jo".into(),
            address: None,
        },
        message: plugin_api::MessageContent {
            id: format!("{id}-m"),
            text: text.into(),
            attachments: vec![],
        },
    })
}

#[test]
fn chat_transcripts_are_searchable_by_words_and_contact_and_im_text_never_reaches_disk() {
    use agentdesk_host::service::{Answer, Query};
    let install = Install::new();
    let agents = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\", \"im\"]\n";
    let config = AdminConfig::load(&install.write_config(&[], agents)).expect("config");
    let mut policy = Policy::from_config(&config, &[]);
    // What the IM plugin's hello declares (no plugins run here).
    policy.never_saved.insert("im".into());
    std::fs::create_dir_all(&install.data).expect("data dir");
    let service = agentdesk_tests::start_core(&install.data, policy, None);
    let core = service.handle();
    let ann = core.login("ann").expect("login");
    for channel in ["chat", "im"] {
        ann.send(AgentCommand::LogOnChannel {
            channel: channel.into(),
        })
        .expect("log on");
        ann.send(AgentCommand::SetReady {
            channel: channel.into(),
        })
        .expect("ready");
    }
    let jo = Contact {
        display_name: Some("Jo".into()),
        addresses: vec![plugin_api::Address::email("jo@example.com")],
    };
    core.plugin_event("web", offer_event("c1", "chat", jo))
        .expect("offer");
    core.plugin_event("web", offer_event("i1", "im", Contact::default()))
        .expect("offer");
    core.tick().expect("tick");
    let keys: Vec<u64> = ann
        .snapshot()
        .expect("snapshot")
        .interactions
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(keys.len(), 2, "both offered to Ann");
    for key in &keys {
        ann.send(AgentCommand::Accept { key: *key })
            .expect("accept");
    }
    let (chat, im) = (keys[0], keys[1]);
    core.plugin_event(
        "web",
        message_event("c1", "My parcel never arrived, call me on +44 20 7946 0958"),
    )
    .expect("msg");
    core.plugin_event("web", message_event("i1", "the launch code is 0000"))
        .expect("msg");
    core.send_message("ann", chat, "Sorry to hear that, checking now")
        .expect("send");
    core.send_message("ann", im, "top secret reply")
        .expect("send");
    let refused = core.send_message("ann", 999, "nobody");
    assert!(refused.is_err());

    let Answer::Entries(found) = core
        .query(Query::Search {
            contact: None,
            text: Some("parcel".into()),
            limit: 10,
        })
        .expect("search")
    else {
        panic!("entries")
    };
    assert_eq!(found.iter().map(|e| e.key).collect::<Vec<_>>(), vec![chat]);
    let Answer::Lines(lines) = core
        .query(Query::Transcript {
            key: chat,
            offset: 0,
            limit: 10,
        })
        .expect("page")
    else {
        panic!("lines")
    };
    assert_eq!(
        lines.iter().map(|l| l.party.as_str()).collect::<Vec<_>>(),
        vec!["Jo", "Ann"]
    );
    let numbers = agentdesk_host::contacts::recognise_addresses(&lines[0].text);
    assert_eq!(
        numbers,
        vec![plugin_api::Address::phone("+44 20 7946 0958")],
        "a number the desktop can offer to call"
    );
    let Answer::ContactId(Some(contact)) = core.query(Query::ContactOf(chat)).expect("contact")
    else {
        panic!("linked")
    };
    let Answer::Entries(of_jo) = core
        .query(Query::Search {
            contact: Some(contact),
            text: None,
            limit: 10,
        })
        .expect("q")
    else {
        panic!("entries")
    };
    assert_eq!(of_jo.len(), 1);
    let Answer::Lines(im_lines) = core
        .query(Query::Transcript {
            key: im,
            offset: 0,
            limit: 10,
        })
        .expect("page")
    else {
        panic!("lines")
    };
    assert!(im_lines.is_empty(), "IM text is not in the history");
    service.stop();
    let mut chat_text_seen = false;
    for entry in std::fs::read_dir(&install.data).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        for secret in [&b"launch code"[..], &b"top secret"[..]] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "IM text found in {}",
                path.display()
            );
        }
        chat_text_seen |= bytes.windows(6).any(|w| w == b"parcel");
    }
    assert!(
        chat_text_seen,
        "the scan must find the chat text, or it proves nothing about IM text"
    );
}

#[test]
fn a_party_action_reaches_the_plugin_and_the_plugins_call_id_is_linked_to_the_core_call() {
    let install = Install::new();
    let spec = agentdesk_tests::FixtureSpec {
        channel: "voice",
        ..agentdesk_tests::FixtureSpec::new("dialer")
    };
    agentdesk_tests::install_fixture(&install.plugins, spec);
    let agents = format!(
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"voice\"]\n\
         [plugins.settings.\"{}\"]\nrefuse = [\"hold\"]\n",
        spec.id()
    );
    let config = AdminConfig::load(&install.write_config(&[&spec.id()], &agents)).expect("config");
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    assert_eq!(plugins.running_ids(), vec![spec.id()]);
    let policy = Policy::from_config(&config, &["voice".to_string()]);
    let service = CoreService::start(
        policy,
        None,
        None,
        Some(plugins.clone()),
        Arc::new(SystemClock),
    )
    .expect("service");
    let core = service.handle();
    let ann = core.login("ann").expect("login");
    ann.send(AgentCommand::LogOnChannel {
        channel: "voice".into(),
    })
    .expect("log on");
    let number = plugin_api::Address::phone("+15550100");
    ann.send(AgentCommand::StartOutbound {
        channel: "voice".into(),
        to: number,
        from: None,
    })
    .expect("dial");
    let call = ann
        .snapshot()
        .expect("snapshot")
        .interactions
        .first()
        .map(|i| i.key)
        .expect("a call");
    // The plugin reported "dialing" for its own id, "dialed-1", before its reply named that id;
    // the host held the event until the reply linked the id to the call.
    let view = |ann: &agentdesk_host::service::AgentSession| {
        ann.snapshot()
            .expect("snapshot")
            .interactions
            .into_iter()
            .find(|i| i.key == call)
            .expect("the call")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while view(&ann).detail.media_state != Some(plugin_api::MediaState::Dialing) {
        assert!(
            Instant::now() < deadline,
            "the event sent before the reply never reached the call: {:#?}",
            view(&ann)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A hold the plugin declared but refuses: the core asked, and records what happened — the
    // call is not on hold — and the agent is told why, by the call.
    ann.send(AgentCommand::Hold { key: call }).expect("hold");
    assert!(
        !view(&ann).held,
        "a hold is recorded only when the channel confirms it"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while view(&ann).detail.notice.is_none() {
        assert!(Instant::now() < deadline, "no notice of the refused hold");
        std::thread::sleep(Duration::from_millis(20));
    }
    let notice = view(&ann).detail.notice.unwrap_or_default();
    assert!(notice.contains("the fixture refuses hold"), "{notice}");
    assert!(!view(&ann).held, "the refused hold left the call as it was");
    // Rolled back, not stuck: the agent may ask again (and is refused again).
    ann.send(AgentCommand::Hold { key: call })
        .expect("a second hold is asked, not refused as pending");
    // A command the plugin never declared (this fixture has no resume) is refused by the core,
    // with a stable code.
    let refused = ann
        .send(AgentCommand::Resume { key: call })
        .expect_err("no resume declared");
    assert_eq!(refused.code(), "unsupported");
    // The plugin's events reach the call by its id.
    let ended = plugin_api::Event::Ended(plugin_api::Ended {
        interaction: InteractionId::new("dialed-1"),
        reason: plugin_api::EndReason::ContactLeft,
        detail: String::new(),
    });
    core.plugin_event(&spec.id(), ended).expect("event");
    let deadline = Instant::now() + Duration::from_secs(10);
    while view(&ann).state != InteractionState::Ended {
        assert!(
            Instant::now() < deadline,
            "the plugin's call id was never linked: {:#?}",
            view(&ann)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        plugins
            .metrics(&spec.id())
            .expect("metrics")
            .calls_ok
            .load(Ordering::Relaxed)
            >= 1
    );
    service.stop();
}

#[test]
fn a_message_received_again_is_dropped_and_a_reused_id_with_other_content_is_kept_across_a_restart()
{
    use agentdesk_host::service::{Answer, Query};
    let install = Install::new();
    let agents = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\n";
    let config = AdminConfig::load(&install.write_config(&[], agents)).expect("config");
    let policy = Policy::from_config(&config, &[]);
    std::fs::create_dir_all(&install.data).expect("data dir");
    let texts = |core: &agentdesk_host::service::CoreHandle| -> Vec<String> {
        let Answer::Lines(lines) = core
            .query(Query::Transcript {
                key: 1,
                offset: 0,
                limit: 10,
            })
            .expect("transcript")
        else {
            panic!("lines")
        };
        lines.into_iter().map(|l| l.text).collect()
    };
    let service = agentdesk_tests::start_core(&install.data, policy.clone(), None);
    let core = service.handle();
    core.plugin_event("web", offer_event("c1", "chat", Contact::default()))
        .expect("offer");
    // `message_event` gives every message of c1 the same id.
    for text in ["hello", "hello", "a different message"] {
        core.plugin_event("web", message_event("c1", text))
            .expect("message");
    }
    core.tick().expect("tick");
    assert_eq!(texts(&core), vec!["hello", "a different message"]);
    service.stop();

    let service = agentdesk_tests::start_core(&install.data, policy, None);
    let core = service.handle();
    for text in ["hello", "a different message", "a third"] {
        core.plugin_event("web", message_event("c1", text))
            .expect("message after the restart");
    }
    core.tick().expect("tick");
    assert_eq!(
        texts(&core),
        vec!["hello", "a different message", "a third"],
        "what was stored is recognised after the restart; new content is kept"
    );
}

#[test]
fn a_quarantined_plugin_is_isolated_its_waiting_work_withdrawn_and_its_channel_unavailable() {
    let install = Install::new();
    let spec = agentdesk_tests::FixtureSpec::new("isolated");
    agentdesk_tests::install_fixture(&install.plugins, spec);
    let extra = format!(
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"fixture\"]\n\
         [channels.fixture]\ncapacity = 2\n\
         [plugins.settings.\"{}\"]\noffers_at_start = 3\nstatus = \"listening on test\"\n",
        spec.id()
    );
    let config = AdminConfig::load(&install.write_config(&[&spec.id()], &extra)).expect("config");
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    let policy = Policy::from_config(&config, &["fixture".to_string()]);
    std::fs::create_dir_all(&install.data).expect("data dir");
    let store = install.data.join("store.sqlite3");
    let service = CoreService::start(
        policy,
        None,
        Some(History::open(&store).expect("history")),
        Some(plugins.clone()),
        Arc::new(SystemClock),
    )
    .expect("service");
    let ann = service.handle().login("ann").expect("login");
    let view = ann.watch().expect("watch");
    ann.send(AgentCommand::LogOnChannel {
        channel: "fixture".into(),
    })
    .expect("log on");
    ann.send(AgentCommand::SetReady {
        channel: "fixture".into(),
    })
    .expect("ready");
    let offered_two = wait_for(&view, "two offers (capacity 2) and the status", |s| {
        s.interactions.len() == 2 && s.channels[0].status.is_some()
    });
    // The plugin's channel-status is on Ann's My Channels row and in the plugin report.
    let status = offered_two.channels[0].status.clone().expect("status");
    assert!(status.healthy && status.detail == "listening on test");
    assert_eq!(
        plugins
            .report(&spec.id())
            .and_then(|r| r.channel_status)
            .map(|s| s.detail),
        Some("listening on test".to_string())
    );
    let active = offered_two.interactions[0].key;
    ann.send(AgentCommand::Accept { key: active })
        .expect("accept");
    // The plugin's own thread will offer again after the quarantine.
    plugins
        .send(
            &spec.id(),
            &Command::InvokeAction(InvokeAction {
                interaction: None,
                action: "offer-later".into(),
            }),
        )
        .expect("offer-later");
    plugins
        .quarantine(&spec.id(), "panicked in handle (test)")
        .expect("quarantine");
    let isolated = wait_for(&view, "the channel unavailable, its offer withdrawn", |s| {
        s.channels[0].unavailable.is_some()
            && s.interactions.len() == 1
            && s.interactions[0].detail.notice.is_some()
    });
    assert_eq!(
        isolated.channels[0].unavailable.as_deref(),
        Some("panicked in handle (test)")
    );
    assert_eq!(isolated.interactions[0].key, active);
    let notice = isolated.interactions[0]
        .detail
        .notice
        .clone()
        .unwrap_or_default();
    assert!(notice.contains("panicked in handle (test)"), "{notice}");
    // The late offer is dropped and counted; nothing new reaches Ann, who is still Ready.
    let metrics = plugins.metrics(&spec.id()).expect("metrics");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.events_after_quarantine.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the late offer never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = ann.snapshot().expect("snapshot");
    assert_eq!(after.interactions.len(), 1, "{:#?}", after.interactions);
    assert_eq!(
        after.channels[0].state,
        agentdesk_host::core::ChannelState::Ready
    );
    // The withdrawn ones are closed in the history as such.
    let agentdesk_host::service::Answer::Entries(entries) = service
        .handle()
        .query(agentdesk_host::service::Query::Search {
            contact: None,
            text: None,
            limit: 10,
        })
        .expect("history")
    else {
        panic!("entries")
    };
    let withdrawn = entries.iter().filter(|e| e.outcome == "withdrawn").count();
    assert_eq!(withdrawn, 2, "{entries:#?}");
    service.stop();
}
