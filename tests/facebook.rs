//! Facebook Messenger end to end: the packaged `agentdesk.facebook` plugin in a real
//! `PluginHost` and `CoreService`, Meta played by `tests/fakes/graph_api.py` (independent Python:
//! it signs the webhooks it delivers and checks our Send API calls as Meta does), agents through
//! the core's client interface.

use crate::social_fakes::{
    FACEBOOK, FakeGraph, PAGE, VERIFY, config_extra, customer, entry, http, now_ms, webhook_url,
};
use crate::support::Install;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::{AgentSnapshot, Answer, CoreHandle, CoreService, Interact, Query};
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::first_party_library;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const HOUR_MS: u64 = 3600 * 1000;

fn until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    crate::support::wait_for(WAIT, what, probe)
}

struct Rig {
    install: Install,
    fake: FakeGraph,
    service: Option<CoreService>,
    _plugins: Arc<PluginHost>,
    core: CoreHandle,
    webhook: String,
}

impl Rig {
    fn new(extra: &str) -> Self {
        let fake = FakeGraph::start();
        let install = Install::new();
        package(&first_party_library("agentdesk_facebook"), &install.plugins).expect("package");
        let text = config_extra(&install, &fake.url, 0, extra);
        let config = AdminConfig::load(&install.write_config(&[FACEBOOK], &text)).expect("config");
        let policy = Policy::from_config(&config, &["facebook".to_string()]);
        let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
        assert_eq!(
            plugins.running_ids(),
            vec![FACEBOOK.to_string()],
            "{:#?}",
            plugins.reports()
        );
        let service = agentdesk_tests::start_core(&install.data, policy, Some(plugins.clone()));
        let core = service.handle();
        let webhook = webhook_url(&install.data);
        fake.control("config", json!({"webhook": webhook}));
        let session = core.login("ann").expect("log in");
        session
            .send(AgentCommand::LogOnChannel {
                channel: "facebook".into(),
            })
            .expect("log on");
        session
            .send(AgentCommand::SetReady {
                channel: "facebook".into(),
            })
            .expect("ready");
        Rig {
            install,
            fake,
            service: Some(service),
            _plugins: plugins,
            core,
            webhook,
        }
    }

    fn snapshot(&self) -> AgentSnapshot {
        self.core.snapshot("ann").expect("snapshot").expect("ann")
    }

    /// Waits for the offer of the customer's conversation, accepts it and returns its key.
    fn accept(&self, psid: &str) -> u64 {
        let address = format!("facebook:{psid}");
        let key = until(&format!("an offer for {psid}"), || {
            self.snapshot()
                .interactions
                .iter()
                .find(|i| {
                    matches!(i.state, InteractionState::Offered { .. })
                        && i.contact.addresses.iter().any(|a| a.value == address)
                })
                .map(|i| i.key)
        });
        self.core
            .execute("ann", AgentCommand::Accept { key })
            .expect("accept");
        key
    }

    fn lines(&self, key: u64) -> Vec<(String, String)> {
        match self.core.query(Query::Live {
            agent: "ann".into(),
            key,
            offset: 0,
            limit: 1000,
        }) {
            Ok(Answer::LiveLines(lines)) => lines
                .into_iter()
                .map(|l| (l.line.party, l.line.text))
                .collect(),
            other => panic!("live transcript: {other:?}"),
        }
    }

    fn wait_line(&self, key: u64, pattern: &str) -> (String, String) {
        until(&format!("a line containing `{pattern}`"), || {
            self.lines(key)
                .into_iter()
                .find(|(_, t)| t.contains(pattern))
        })
    }

    fn case(&self, key: u64, field: &str) -> Option<String> {
        self.snapshot()
            .interactions
            .iter()
            .find(|i| i.key == key)?
            .detail
            .case_data
            .iter()
            .find(|f| f.key == field)
            .map(|f| f.value.clone())
    }

    /// The detail of an interaction as the agent's view has it.
    fn detail(&self, key: u64) -> Option<agentdesk_host::service::DetailView> {
        self.snapshot()
            .interactions
            .into_iter()
            .find(|i| i.key == key)
            .map(|i| i.detail)
    }

    fn send(&self, key: u64, text: &str) {
        self.core.send_message("ann", key, text).expect("send");
    }

    fn wait_sent(&self, count: usize) -> Vec<Value> {
        until(&format!("{count} messages at the fake"), || {
            let sent = self.fake.sent();
            (sent.len() >= count).then_some(sent)
        })
    }

    fn offers(&self) -> usize {
        self.snapshot().interactions.len()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

#[test]
fn facebook_first_message_is_offered_and_the_reply_reaches_meta_once() {
    let rig = Rig::new("");
    // The subscription handshake: only with our verify token.
    let (status, body) = http(
        "GET",
        &format!(
            "{}?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444",
            rig.webhook
        ),
        b"",
    );
    assert_eq!((status, body.as_str()), (200, "1158201444"));
    let (status, _) = http(
        "GET",
        &format!(
            "{}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
            rig.webhook
        ),
        b"",
    );
    assert_eq!(status, 403);

    rig.fake.control(
        "config",
        json!({"profiles": {"U100001": {"first_name": "Jo", "last_name": "Bloggs"}}}),
    );
    let now = now_ms();
    let statuses = rig.fake.deliver(
        json!([entry(vec![customer(
            "U100001",
            "m1",
            "Where is my order? ünïcode",
            now
        )])]),
        "good",
        1,
    );
    assert_eq!(statuses, [200]);
    let key = rig.accept("U100001");
    let view = rig.snapshot();
    let offer = view
        .interactions
        .iter()
        .find(|i| i.key == key)
        .expect("offer");
    assert_eq!(
        offer.subject.as_deref(),
        Some("Messenger: Jo Bloggs"),
        "the profile name"
    );
    rig.wait_line(key, "ünïcode");
    let window = until("the reply window in the case data", || {
        rig.case(key, "facebook.window")
    });
    assert!(window.starts_with("open, closes in 23 h"), "{window}");
    // The same as conversation rules (plugin-api 1.2), which the desk renders: a reply may be
    // sent, the window ends within 24 hours, 2,000 characters at most, not public.
    let rules = until("the conversation rules", || rig.detail(key)?.rules);
    assert!(rules.can_reply, "{rules:?}");
    let closes = rules.window_closes_at.expect("a window end");
    assert!(
        closes > now_ms() + 23 * 3_600_000 && closes <= now_ms() + 24 * 3_600_000,
        "{rules:?}"
    );
    assert_eq!(
        (rules.max_length, rules.counting, rules.public),
        (Some(2000), plugin_api::LengthCounting::Characters, false)
    );
    rig.fake.deliver(
        json!([entry(vec![customer(
            "U100001",
            "m2",
            "Order 1234",
            now + 1
        )])]),
        "good",
        1,
    );
    rig.wait_line(key, "Order 1234");
    // A photo: copied into the plugin's data directory and shown as an attachment.
    let photo = json!({"sender": {"id": "U100001"}, "recipient": {"id": PAGE}, "timestamp": now + 2,
        "message": {"mid": "m3", "attachments": [{"type": "image",
            "payload": {"url": format!("{}/_cdn/photo.png?sig=abc", rig.fake.url)}}]}});
    assert_eq!(
        rig.fake.deliver(json!([entry(vec![photo])]), "good", 1),
        [200]
    );
    let attachment = until("the photo", || {
        match rig.core.query(Query::Live {
            agent: "ann".into(),
            key,
            offset: 0,
            limit: 100,
        }) {
            Ok(Answer::LiveLines(lines)) => lines
                .into_iter()
                .find_map(|l| l.attachments.first().cloned()),
            _ => None,
        }
    });
    assert_eq!(
        (attachment.content_type.as_str(), attachment.name.as_str()),
        ("image/png", "image.png")
    );
    let stored = rig
        .install
        .data
        .join("plugins")
        .join(FACEBOOK)
        .join(&attachment.path);
    assert_eq!(
        std::fs::read(&stored).expect("the stored photo"),
        b"attachment bytes of photo.png"
    );
    assert_eq!(attachment.size, 29);

    rig.core
        .interact("ann", key, Interact::Typing(true))
        .expect("typing");
    rig.send(key, "It ships today");
    let sent = rig.wait_sent(1);
    assert_eq!(sent[0]["text"], "It ships today");
    assert_eq!(sent[0]["psid"], "U100001");
    assert_eq!(sent[0]["messaging_type"], "RESPONSE");
    assert_eq!(sent[0]["tag"], Value::Null);
    assert!(
        sent[0]["metadata"]
            .as_str()
            .is_some_and(|m| m.starts_with("agentdesk:"))
    );
    let actions = rig.fake.get("sent")["actions"].clone();
    for action in ["mark_seen", "typing_on"] {
        assert!(
            actions
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["action"] == action)),
            "{action}: {actions}"
        );
    }
    // The customer read it: the agent sees so.
    let read = json!({"sender": {"id": "U100001"}, "recipient": {"id": PAGE},
        "timestamp": now_ms(), "read": {"watermark": now_ms()}});
    assert_eq!(
        rig.fake.deliver(json!([entry(vec![read])]), "good", 1),
        [200]
    );
    let receipt = until("a read receipt", || {
        rig.case(key, "facebook.receipt")
            .filter(|r| r.starts_with("read"))
    });
    assert_eq!(receipt, "read, under a minute ago");
    let receipt = until("the read receipt event", || rig.detail(key)?.receipt);
    assert_eq!(receipt.state, plugin_api::ReceiptState::Read, "{receipt:?}");

    // Our echo comes back (the fake sends it) and is not shown a second time; a reply typed in
    // the Page inbox (another app id) is shown as outgoing.
    let inbox = json!({"sender": {"id": PAGE}, "recipient": {"id": "U100001"}, "timestamp": now_ms(),
        "message": {"mid": "m_inbox_1", "text": "Sent from the Page inbox", "is_echo": true, "app_id": 263902037430900u64}});
    assert_eq!(
        rig.fake.deliver(json!([entry(vec![inbox])]), "good", 1),
        [200]
    );
    let (party, _) = rig.wait_line(key, "Sent from the Page inbox");
    assert_eq!(party, "Page inbox");
    std::thread::sleep(Duration::from_millis(300));
    let lines = rig.lines(key);
    assert_eq!(
        lines.iter().filter(|(_, t)| t == "It ships today").count(),
        1,
        "{lines:?}"
    );
    assert_eq!(rig.fake.sent().len(), 1, "sent once");
    assert_eq!(
        rig.fake.get("sent")["profile_lookups"],
        1,
        "looked up once, for the new conversation"
    );
}

#[test]
fn facebook_repeated_and_batched_deliveries_make_each_message_once() {
    let rig = Rig::new("");
    let now = now_ms();
    let batch = json!([
        entry(vec![
            customer("U200001", "a1", "first of A", now),
            customer("U200002", "b1", "first of B", now)
        ]),
        entry(vec![
            customer("U200001", "a2", "second of A", now + 1),
            customer("U200001", "a1", "first of A", now)
        ]),
        entry(vec![
            json!({"sender": {"id": "U200002"}, "recipient": {"id": PAGE},
            "timestamp": now + 2,
            "postback": {"mid": "b2", "title": "Track my order", "payload": "TRACK_ORDER"}})
        ]),
    ]);
    assert_eq!(
        rig.fake.deliver(batch, "good", 2),
        [200, 200],
        "a repeated delivery is answered 200"
    );
    let a = rig.accept("U200001");
    let b = rig.accept("U200002");
    rig.wait_line(a, "second of A");
    rig.wait_line(b, "first of B");
    std::thread::sleep(Duration::from_millis(300));
    let texts = |key| {
        rig.lines(key)
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(a), ["first of A", "second of A"]);
    rig.wait_line(b, "Track my order");
    assert_eq!(texts(b), ["first of B", "Track my order"]);
    assert_eq!(
        until("the payload", || rig.case(b, "facebook.payload")),
        "TRACK_ORDER"
    );
    assert_eq!(rig.offers(), 2);
}

#[test]
fn facebook_unsigned_or_malformed_webhooks_are_refused_and_nothing_is_stored() {
    let rig = Rig::new("");
    let one = json!([entry(vec![customer("U300001", "x1", "forged", now_ms())])]);
    assert_eq!(rig.fake.deliver(one.clone(), "bad", 1), [403]);
    assert_eq!(rig.fake.deliver(one, "none", 1), [403]);
    let malformed = rig.fake.control("deliver", json!({"raw": "{\"object\":\"page\",\"entry\":[{\"messaging\":[{\"sender\":{}}]}]}", "sign": "good"}));
    assert_eq!(malformed["status"][0], 400, "{malformed}");
    let big = format!("{{\"object\":\"page\",\"pad\":\"{}\"}}", "x".repeat(70_000));
    let oversized = rig
        .fake
        .control("deliver", json!({"raw": big, "sign": "good"}));
    assert_eq!(oversized["status"][0], 413, "{oversized}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rig.offers(), 0);
    let log = rig
        .install
        .data
        .join("plugins")
        .join(FACEBOOK)
        .join("conversations.log");
    assert_eq!(
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0),
        0,
        "nothing stored"
    );
}

#[test]
fn facebook_after_24_hours_a_reply_carries_the_human_agent_tag_and_after_7_days_none_is_sent() {
    let rig = Rig::new("human_agent_tag = true");
    let now = now_ms();
    rig.fake.deliver(
        json!([entry(vec![customer(
            "U400001",
            "w1",
            "yesterday's question",
            now - 30 * HOUR_MS
        )])]),
        "good",
        1,
    );
    rig.fake.deliver(
        json!([entry(vec![customer(
            "U400002",
            "w2",
            "last week's question",
            now - 8 * 24 * HOUR_MS
        )])]),
        "good",
        1,
    );
    let recent = rig.accept("U400001");
    let old = rig.accept("U400002");
    let window = until("the window", || rig.case(recent, "facebook.window"));
    assert!(
        window.starts_with("24 hours passed: human agent replies only"),
        "{window}"
    );
    rig.send(recent, "Sorry for the wait");
    let sent = rig.wait_sent(1);
    assert_eq!(
        (sent[0]["messaging_type"].as_str(), sent[0]["tag"].as_str()),
        (Some("MESSAGE_TAG"), Some("HUMAN_AGENT"))
    );
    let window = until("the window", || rig.case(old, "facebook.window"));
    assert!(window.starts_with("closed"), "{window}");
    let rules = until("the rules", || rig.detail(old)?.rules);
    assert!(
        !rules.can_reply && rules.window_closes_at.is_none(),
        "{rules:?}"
    );
    assert!(rules.reason.contains("closed"), "{rules:?}");
    let rules = until("the rules", || rig.detail(recent)?.rules);
    assert!(rules.can_reply, "the human agent window: {rules:?}");
    rig.send(old, "Too late");
    let notice = until("a notice", || {
        rig.snapshot()
            .interactions
            .iter()
            .find(|i| i.key == old)
            .and_then(|i| i.detail.notice.clone())
    });
    assert!(notice.contains("reply window is closed"), "{notice}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rig.fake.sent().len(), 1, "nothing sent after 7 days");
    assert!(
        rig.fake.get("sent")["refusals"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "the fake refused nothing"
    );
}

#[test]
fn facebook_rate_limits_are_retried_unknown_outcomes_never_resent_and_token_errors_told() {
    let rig = Rig::new("");
    rig.fake.deliver(
        json!([entry(vec![customer("U500001", "r1", "hello", now_ms())])]),
        "good",
        1,
    );
    let key = rig.accept("U500001");
    // Two 613s, then accepted: sent once.
    rig.fake.control("config", json!({"rate_limit_next": 2}));
    rig.send(key, "after the limit");
    rig.wait_sent(1);
    assert_eq!(rig.fake.get("sent")["refusals"], json!([613, 613]));
    // No answer, but the echo comes back: not resent, nothing to tell.
    rig.fake.control("config", json!({"hang_next": 1}));
    rig.send(key, "slow but echoed");
    // No answer and no echo: the agent is told, and it is not resent either.
    std::thread::sleep(Duration::from_millis(2_500));
    rig.fake
        .control("config", json!({"hang_next": 1, "echoes": false}));
    rig.send(key, "slow and silent");
    rig.wait_line(key, "Delivery unknown");
    let texts: Vec<String> = rig
        .fake
        .sent()
        .iter()
        .map(|s| s["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        texts,
        ["after the limit", "slow but echoed", "slow and silent"]
    );
    let unknown = rig
        .lines(key)
        .iter()
        .filter(|(_, t)| t.starts_with("Delivery unknown"))
        .count();
    assert_eq!(unknown, 1, "only the silent one: {:?}", rig.lines(key));
    // Meta says the window is closed (error 10) although our clock says open: told in words.
    rig.fake
        .control("config", json!({"window_closed": ["U500001"]}));
    rig.send(key, "outside the window");
    let (_, text) = rig.wait_line(key, "reply window");
    assert!(
        text.starts_with("Not sent: Messenger's reply window"),
        "{text}"
    );
    rig.fake.control("config", json!({"window_closed": []}));
    // An expired token: the agent reads what happened and who must act.
    rig.fake.control("config", json!({"expire_token": true}));
    rig.send(key, "with an expired token");
    let (_, text) = rig.wait_line(key, "access token");
    assert!(text.contains("administrator must renew"), "{text}");
    assert_eq!(rig.fake.sent().len(), 3);
    assert_eq!(
        rig.fake.get("sent")["refusals"],
        json!([613, 613, 10, 190]),
        "each refused once, none retried"
    );
}

/// The channel's health as the plugin reports it (the core does not keep channel status yet, so
/// this reads the plugin host's events directly).
#[test]
fn facebook_a_refused_page_token_reports_the_channel_unhealthy() {
    let fake = FakeGraph::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_facebook"), &install.plugins).expect("package");
    let text = config_extra(&install, &fake.url, 0, "");
    let config = AdminConfig::load(&install.write_config(&[FACEBOOK], &text)).expect("config");
    let plugins = PluginHost::start(&config, StartMode::Run);
    fake.control("config", json!({"webhook": webhook_url(&install.data)}));
    let statuses = fake.deliver(
        json!([entry(vec![customer("U600001", "t1", "hello", now_ms())])]),
        "good",
        1,
    );
    assert_eq!(statuses, [200]);
    let mut seen = Vec::new();
    let interaction = until("the offer", || {
        let event = plugins.recv_event(Duration::from_millis(100))?;
        seen.push(event.event.kind().to_string());
        match event.event {
            plugin_api::Event::Offer(offer) => Some(offer.interaction),
            _ => None,
        }
    });
    assert_eq!(
        seen.first().map(String::as_str),
        Some("channel-status"),
        "healthy at start"
    );
    fake.control("config", json!({"expire_token": true}));
    let command = plugin_api::Command::SendMessage(plugin_api::SendMessage {
        interaction,
        message: plugin_api::MessageContent {
            id: "r1".into(),
            text: "hello back".into(),
            attachments: vec![],
        },
        agent: None,
    });
    plugins.send(FACEBOOK, &command).expect("send-message");
    let detail = until("an unhealthy channel status", || {
        match plugins.recv_event(Duration::from_millis(100))?.event {
            plugin_api::Event::ChannelStatus(s) if !s.healthy => Some(s.detail),
            _ => None,
        }
    });
    assert!(detail.contains("access token"), "{detail}");
}
