//! X end to end: the packaged `agentdesk.twitter` plugin in a real `PluginHost` and
//! `CoreService`, X played by `tests/fakes/x_api.py` (independent Python: signs deliveries and
//! checks the CRC answer with `hmac`, verifies our OAuth 1.0a signatures with python3-oauthlib,
//! counts post length itself), agents through the core's client interface.

use crate::social_fakes::{FakeX, TWITTER, X_ACCOUNT as ACCOUNT, x_config_extra, x_dm as dm};
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

fn until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    crate::support::wait_for(WAIT, what, probe)
}

fn mention(id: &str, user: &str, handle: &str, text: &str) -> Value {
    json!({"tweet_create_events": [{"id_str": id, "text": text,
        "user": {"id_str": user, "name": format!("Name of {handle}"), "screen_name": handle},
        "timestamp_ms": crate::social_fakes::now_ms().to_string()}]})
}

struct Rig {
    fake: FakeX,
    service: Option<CoreService>,
    _plugins: Arc<PluginHost>,
    _install: Install,
    core: CoreHandle,
}

impl Rig {
    fn new() -> Self {
        let fake = FakeX::start();
        let install = Install::new();
        package(&first_party_library("agentdesk_twitter"), &install.plugins).expect("package");
        let extra = x_config_extra(&install, &fake.url, 0);
        let config = AdminConfig::load(&install.write_config(&[TWITTER], &extra)).expect("config");
        let policy = Policy::from_config(&config, &["twitter".to_string()]);
        let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
        assert_eq!(
            plugins.running_ids(),
            vec![TWITTER.to_string()],
            "{:#?}",
            plugins.reports()
        );
        let service = agentdesk_tests::start_core(&install.data, policy, Some(plugins.clone()));
        let core = service.handle();
        let endpoint = install
            .data
            .join("plugins")
            .join(TWITTER)
            .join("endpoint.json");
        let endpoint: Value =
            serde_json::from_str(&std::fs::read_to_string(endpoint).expect("endpoint"))
                .expect("json");
        fake.control("config", json!({"webhook": endpoint["url"]}));
        let session = core.login("ann").expect("log in");
        session
            .send(AgentCommand::LogOnChannel {
                channel: "twitter".into(),
            })
            .expect("log on");
        session
            .send(AgentCommand::SetReady {
                channel: "twitter".into(),
            })
            .expect("ready");
        Rig {
            fake,
            service: Some(service),
            _plugins: plugins,
            _install: install,
            core,
        }
    }

    fn snapshot(&self) -> AgentSnapshot {
        self.core.snapshot("ann").expect("snapshot").expect("ann")
    }

    fn accept(&self, subject: &str) -> u64 {
        let key = until(&format!("an offer `{subject}`"), || {
            self.snapshot()
                .interactions
                .iter()
                .find(|i| {
                    matches!(i.state, InteractionState::Offered { .. })
                        && i.subject.as_deref() == Some(subject)
                })
                .map(|i| i.key)
        });
        self.core
            .execute("ann", AgentCommand::Accept { key })
            .expect("accept");
        key
    }

    fn lines(&self, key: u64) -> Vec<String> {
        match self.core.query(Query::Live {
            agent: "ann".into(),
            key,
            offset: 0,
            limit: 1000,
        }) {
            Ok(Answer::LiveLines(lines)) => lines.into_iter().map(|l| l.line.text).collect(),
            other => panic!("live transcript: {other:?}"),
        }
    }

    fn wait_line(&self, key: u64, pattern: &str) -> String {
        until(&format!("a line containing `{pattern}`"), || {
            self.lines(key).into_iter().find(|t| t.contains(pattern))
        })
    }

    fn wait_sent(&self, count: usize) -> Vec<Value> {
        until(&format!("{count} calls at the fake"), || {
            let sent = self.fake.sent()["sent"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (sent.len() >= count).then_some(sent)
        })
    }

    /// The conversation rules the agent's view has (plugin-api 1.2).
    fn rules(&self, key: u64) -> Option<plugin_api::ConversationRules> {
        self.snapshot()
            .interactions
            .into_iter()
            .find(|i| i.key == key)?
            .detail
            .rules
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
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

#[test]
fn x_crc_signed_dm_and_a_dm_reply_signed_with_oauth() {
    let rig = Rig::new();
    let crc = rig.fake.control("crc", json!({}));
    assert_eq!(crc["ok"], true, "{crc}");
    let forged = dm("9001", "3001", "jordan", "forged");
    assert_eq!(rig.fake.deliver(forged.clone(), "bad", 1), json!([403]));
    assert_eq!(rig.fake.deliver(forged, "none", 1), json!([403]));
    assert_eq!(
        rig.fake
            .deliver(dm("9002", "3001", "jordan", "Hello from a DM"), "good", 2),
        json!([200, 200])
    );
    let key = rig.accept("X direct message: @jordan");
    rig.wait_line(key, "Hello from a DM");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.lines(key),
        ["Hello from a DM"],
        "once, the forged one never"
    );
    assert_eq!(rig.snapshot().interactions.len(), 1);
    rig.core
        .send_message("ann", key, "Thanks, looking into it")
        .expect("send");
    let sent = rig.wait_sent(1);
    assert_eq!(
        sent[0],
        json!({"kind": "dm", "to": "3001", "text": "Thanks, looking into it"})
    );
    // Our own DM coming back through the webhook is not shown again.
    let own = json!({"direct_message_events": [{"type": "message_create", "id": "9003",
        "created_timestamp": "1", "message_create": {"target": {"recipient_id": "3001"},
        "sender_id": ACCOUNT, "message_data": {"text": "Thanks, looking into it"}}}]});
    assert_eq!(rig.fake.deliver(own, "good", 1), json!([200]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.lines(key)
            .iter()
            .filter(|t| *t == "Thanks, looking into it")
            .count(),
        1
    );
    assert_eq!(rig.fake.sent()["refusals"], json!([]), "OAuth accepted");
    // X created the DM but its answer never came: the agent is told, nothing is sent again.
    rig.fake.control("config", json!({"hang_next": 1}));
    rig.core
        .send_message("ann", key, "slow answer")
        .expect("send");
    rig.wait_line(key, "Delivery unknown");
    std::thread::sleep(Duration::from_millis(500));
    let texts: Vec<Value> = rig.wait_sent(2).iter().map(|s| s["text"].clone()).collect();
    assert_eq!(
        texts,
        [json!("Thanks, looking into it"), json!("slow answer")]
    );
}

#[test]
fn x_public_mention_is_marked_public_replies_are_threaded_weighted_and_can_move_to_dm() {
    let rig = Rig::new();
    rig.fake.deliver(
        mention(
            "1460323737035677698",
            "4004",
            "pat",
            "@acme my order is late",
        ),
        "good",
        1,
    );
    let key = rig.accept("PUBLIC X mention: @pat");
    rig.wait_line(key, "my order is late");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.lines(key),
        ["@acme my order is late"],
        "a repeated post once"
    );
    let visibility = until("visibility", || rig.case(key, "x.visibility"));
    assert!(visibility.starts_with("PUBLIC"), "{visibility}");
    let rules = until("the rules", || rig.rules(key));
    assert_eq!(
        (rules.public, rules.max_length, rules.counting),
        (true, Some(280), plugin_api::LengthCounting::XWeighted),
        "{rules:?}"
    );
    // 250 letters and a 100-character link: 301 characters, 274 as X counts them.
    let long = format!("{} https://example.com/{}", "a".repeat(250), "p".repeat(80));
    assert!(long.chars().count() > 280);
    rig.core.send_message("ann", key, &long).expect("send");
    let sent = rig.wait_sent(1);
    assert_eq!(sent[0]["in_reply_to"], "1460323737035677698");
    assert_eq!(sent[0]["weighted"], 274, "the fake's own count");
    // Over X's count: refused before anything is sent, and the agent is told why.
    rig.core
        .send_message("ann", key, &"你".repeat(141))
        .expect("send");
    let notice = until("a notice", || {
        rig.snapshot()
            .interactions
            .iter()
            .find(|i| i.key == key)
            .and_then(|i| i.detail.notice.clone())
    });
    assert!(
        notice.contains("282 characters as X counts them"),
        "{notice}"
    );
    // A 429: waited out until x-rate-limit-reset, then sent once.
    rig.fake.control("config", json!({"rate_limit_next": 1}));
    rig.core
        .send_message("ann", key, "after the rate limit")
        .expect("send");
    let sent = rig.wait_sent(2);
    assert_eq!(sent[1]["text"], "after the rate limit");
    assert_eq!(rig.fake.sent()["refusals"], json!([429]));
    // One action moves the conversation to direct messages.
    rig.core
        .interact("ann", key, Interact::Action("move-to-dm".into()))
        .expect("move to DM");
    until("moved", || {
        rig.case(key, "x.visibility")
            .filter(|v| v.starts_with("moved to direct messages"))
    });
    let rules = until("private rules", || rig.rules(key).filter(|r| !r.public));
    assert_eq!(
        (rules.max_length, rules.counting),
        (Some(10_000), plugin_api::LengthCounting::Characters)
    );
    rig.core
        .send_message("ann", key, "Let's continue privately")
        .expect("send");
    let sent = rig.wait_sent(3);
    assert_eq!(sent[2]["kind"], "dm");
    assert_eq!(sent[2]["to"], "4004");
    // Revoked credentials: the agent reads who must act.
    rig.fake.control("config", json!({"revoked": true}));
    rig.core.send_message("ann", key, "one more").expect("send");
    let line = rig.wait_line(key, "credentials");
    assert!(line.contains("administrator must renew"), "{line}");
    assert_eq!(rig.fake.sent()["sent"].as_array().map(Vec::len), Some(3));
}

#[test]
fn x_activity_api_dm_and_mention_become_interactions_like_account_activity_ones() {
    let rig = Rig::new();
    // X Activity API envelopes (`dm.received`, `post.mention.create`), signed as before.
    assert_eq!(
        rig.fake
            .deliver_xaa(dm("7001", "3007", "robin", "Hello in the new format"), 1),
        json!([200])
    );
    let key = rig.accept("X direct message: @robin");
    rig.wait_line(key, "Hello in the new format");
    let contact = until("the contact", || {
        rig.snapshot()
            .interactions
            .into_iter()
            .find(|i| i.key == key)
            .and_then(|i| i.contact.display_name)
    });
    assert_eq!(contact, "Name of robin", "the name from the users map");
    // The same DM again in the old format is the same event: dropped, not a second line.
    assert_eq!(
        rig.fake.deliver(
            dm("7001", "3007", "robin", "Hello in the new format"),
            "good",
            1
        ),
        json!([200])
    );
    rig.fake.deliver_xaa(
        mention(
            "1460323737035677700",
            "4007",
            "sam",
            "@acme new-format mention",
        ),
        2,
    );
    let public = rig.accept("PUBLIC X mention: @sam");
    rig.wait_line(public, "new-format mention");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rig.lines(key), ["Hello in the new format"], "once");
    assert_eq!(
        rig.lines(public),
        ["@acme new-format mention"],
        "a repeated event once"
    );
    let visibility = until("visibility", || rig.case(public, "x.visibility"));
    assert!(visibility.starts_with("PUBLIC"), "{visibility}");
    // Our own DM in the new format (`dm.sent`) is not shown; the reply goes out as before.
    let own = json!({"direct_message_events": [{"type": "message_create", "id": "7002",
        "created_timestamp": "1", "message_create": {"target": {"recipient_id": "3007"},
        "sender_id": ACCOUNT, "message_data": {"text": "our own"}}}]});
    assert_eq!(rig.fake.deliver_xaa(own, 1), json!([200]));
    rig.core
        .send_message("ann", public, "Sorry, checking")
        .expect("send");
    let sent = rig.wait_sent(1);
    assert_eq!(sent[0]["in_reply_to"], "1460323737035677700");
    assert!(!rig.lines(key).iter().any(|t| t == "our own"));
}
