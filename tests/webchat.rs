//! The web chat channel end to end: the packaged `agentdesk.chat` plugin in a real `PluginHost`
//! and `CoreService`, customers in Debian's Chromium (driven through chromedriver) or on a raw
//! WebSocket, agents through the core's client interface. Every test checks the core's state too.

use crate::browser::{Browser, free_port};
use crate::support::Install;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::{
    AgentSession, AgentSnapshot, Answer, CoreHandle, CoreService, Interact, Query,
};
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::first_party_library;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CHAT: &str = "agentdesk.chat";
const WAIT: Duration = Duration::from_secs(15);

fn until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    crate::support::wait_for(WAIT, what, probe)
}

/// A host with the packaged web chat plugin, the core, and agents Ann and Bob.
struct Rig {
    install: Install,
    config: AdminConfig,
    plugins: Option<Arc<PluginHost>>,
    service: Option<CoreService>,
    core: CoreHandle,
    policy: Policy,
    url: String,
}

impl Rig {
    /// `settings` are extra lines of the plugin's settings section.
    fn new(settings: &str) -> Self {
        Self::build(settings, false)
    }

    /// Like [`Rig::new`] with the chat plugin in a runner process of its own.
    fn isolated(settings: &str) -> Self {
        Self::build(settings, true)
    }

    fn build(settings: &str, isolated: bool) -> Self {
        let install = Install::new();
        package(&first_party_library("agentdesk_chat"), &install.plugins).expect("package chat");
        let extra = format!(
            "[plugins.settings.\"{CHAT}\"]\n{settings}\n\
             [channels.chat]\ncapacity = 2\n\
             [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\n\
             [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"chat\"]\n"
        );
        let settings_has_port = settings.contains("port");
        let extra = if settings_has_port {
            extra
        } else {
            extra.replacen('\n', "\nport = 0\n", 1)
        };
        let path = install.write_config(&[CHAT], &extra);
        if isolated {
            let text = std::fs::read_to_string(&path).expect("config");
            let runner = Path::new(env!("CARGO_BIN_EXE_agentdesk-test-host"));
            std::fs::write(&path, agentdesk_tests::isolate(&text, &[CHAT], runner))
                .expect("config");
        }
        let config = AdminConfig::load(&path).expect("config");
        let policy = Policy::from_config(&config, &["chat".to_string()]);
        let (plugins, service) = Self::boot(&install, &config, &policy);
        let core = service.handle();
        let url = Self::endpoint(&install);
        Rig {
            install,
            config,
            plugins: Some(plugins),
            service: Some(service),
            core,
            policy,
            url,
        }
    }

    fn boot(
        install: &Install,
        config: &AdminConfig,
        policy: &Policy,
    ) -> (Arc<PluginHost>, CoreService) {
        let _ = std::fs::remove_file(Self::endpoint_file(install));
        let plugins = Arc::new(PluginHost::start(config, StartMode::Run));
        assert_eq!(
            plugins.running_ids(),
            vec![CHAT.to_string()],
            "{:#?}",
            plugins.reports()
        );
        let service =
            agentdesk_tests::start_core(&install.data, policy.clone(), Some(plugins.clone()));
        (plugins, service)
    }

    fn endpoint_file(install: &Install) -> PathBuf {
        install
            .data
            .join("plugins")
            .join(CHAT)
            .join("endpoint.json")
    }

    /// The widget's URL, from the file the plugin writes once it listens.
    fn endpoint(install: &Install) -> String {
        let text = std::fs::read_to_string(Self::endpoint_file(install)).expect("endpoint.json");
        let endpoint: Value = serde_json::from_str(&text).expect("endpoint json");
        endpoint["url"].as_str().expect("url").to_string()
    }

    fn websocket(&self) -> String {
        format!("{}ws", self.url.replacen("http://", "ws://", 1))
    }

    fn plugins(&self) -> &PluginHost {
        self.plugins.as_ref().expect("running")
    }

    /// Stops core and plugins as agentdesk does at exit, then starts both again on the same
    /// installation (same port when the settings fixed one).
    fn restart(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
        if let Some(plugins) = self.plugins.take() {
            let mut plugins = Arc::try_unwrap(plugins)
                .unwrap_or_else(|_| panic!("only the rig holds the plugin host"));
            plugins.shutdown();
        }
        let (plugins, service) = Self::boot(&self.install, &self.config, &self.policy);
        self.core = service.handle();
        self.url = Self::endpoint(&self.install);
        self.plugins = Some(plugins);
        self.service = Some(service);
    }

    /// Logs an agent in and makes their chat channel Ready.
    fn ready(&self, agent: &str) -> AgentSession {
        let session = self.core.login(agent).expect("log in");
        session
            .send(AgentCommand::LogOnChannel {
                channel: "chat".into(),
            })
            .expect("log on chat");
        session
            .send(AgentCommand::SetReady {
                channel: "chat".into(),
            })
            .expect("ready");
        session
    }

    fn snapshot(&self, agent: &str) -> AgentSnapshot {
        self.core.snapshot(agent).expect("snapshot").expect("agent")
    }

    /// Waits for an offer to `agent` and accepts it; returns its key.
    fn accept_offer(&self, agent: &str) -> u64 {
        let key = until("an offer", || {
            self.snapshot(agent)
                .interactions
                .iter()
                .find(|i| matches!(i.state, InteractionState::Offered { .. }))
                .map(|i| i.key)
        });
        self.core
            .execute(agent, AgentCommand::Accept { key })
            .expect("accept");
        key
    }

    /// The live transcript an agent sees: (party, text).
    fn lines(&self, agent: &str, key: u64) -> Vec<(String, String)> {
        match self.core.query(Query::Live {
            agent: agent.into(),
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

    fn wait_line(&self, agent: &str, key: u64, text: &str) {
        until(&format!("`{text}` in {agent}'s transcript"), || {
            self.lines(agent, key)
                .iter()
                .any(|(_, t)| t == text)
                .then_some(())
        });
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

/// The chat widget's page, as a customer uses it (also the team tests').
impl Browser {
    /// The text of every transcript line on the page.
    pub(crate) fn lines(&self) -> Vec<String> {
        let value = self.eval(
            "return [...document.querySelectorAll('#messages .line')].map(l => l.textContent);",
        );
        serde_json::from_value(value).unwrap_or_default()
    }

    pub(crate) fn wait_line(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        until(&format!("{what} on the page"), || {
            self.lines().into_iter().find(|l| test(l))
        })
    }

    pub(crate) fn text_of(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e && !e.hidden ? e.textContent : '';",
            json!(css)
        );
        self.eval(&script).as_str().unwrap_or_default().to_string()
    }

    pub(crate) fn start_chat(&self, url: &str, name: &str, email: &str) {
        self.goto(url);
        self.type_into("#name", name);
        self.type_into("#email", email);
        self.click("#start");
        until("the chat view", || {
            (!self.text_of("#chat").is_empty()).then_some(())
        });
    }

    pub(crate) fn say(&self, text: &str) {
        // A reload may restore what was left in the composer; start from an empty one.
        self.eval("document.getElementById('text').value = ''; return null;");
        self.type_into("#text", text);
        self.click("#send");
    }
}

#[test]
fn a_customer_and_an_agent_chat_both_ways_and_a_reload_resumes_without_duplicates() {
    let rig = Rig::new("");
    let _ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Jo Customer", "jo@example.com");
    let key = rig.accept_offer("ann");
    let view = rig.snapshot("ann");
    let chat = view
        .interactions
        .iter()
        .find(|i| i.key == key)
        .expect("chat");
    assert_eq!(chat.channel, "chat");
    assert_eq!(chat.contact.display_name.as_deref(), Some("Jo Customer"));
    browser.wait_line("Ann joined", |l| l == "Ann joined the chat");

    browser.say("Hello, I need help with order 42");
    rig.wait_line("ann", key, "Hello, I need help with order 42");

    browser.type_into("#text", "I am still typ");
    until("Ann to see the customer typing", || {
        let view = rig.snapshot("ann");
        let chat = view.interactions.iter().find(|i| i.key == key)?;
        chat.detail
            .typing
            .iter()
            .any(|n| n == "Jo Customer")
            .then_some(())
    });
    rig.core
        .interact("ann", key, Interact::Typing(true))
        .expect("typing");
    until("the typing indicator", || {
        (browser.text_of("#typing") == "Ann is typing…").then_some(())
    });
    rig.core
        .send_message("ann", key, "Sure, let me look it up.")
        .expect("send");
    browser.wait_line("Ann's answer", |l| l == "AnnSure, let me look it up.");

    browser.reload();
    browser.wait_line("the answer after a reload", |l| {
        l.ends_with("let me look it up.")
    });
    let lines = browser.lines();
    let count = |text: &str| lines.iter().filter(|l| l.ends_with(text)).count();
    assert_eq!(count("order 42"), 1, "{lines:?}");
    assert_eq!(count("let me look it up."), 1, "{lines:?}");
    assert_eq!(count("Ann joined the chat"), 1, "{lines:?}");
    browser.say("Thanks!");
    rig.wait_line("ann", key, "Thanks!");
    let from_customer: Vec<_> = rig
        .lines("ann", key)
        .into_iter()
        .filter(|(party, _)| party == "Jo Customer")
        .map(|(_, text)| text)
        .collect();
    assert_eq!(
        from_customer,
        vec!["Hello, I need help with order 42", "Thanks!"]
    );

    let Ok(Answer::ContactId(Some(contact))) = rig.core.query(Query::ContactOf(key)) else {
        panic!("the chat is not linked to a contact");
    };
    let Ok(Answer::Contact(Some(record))) = rig.core.query(Query::Contact(contact)) else {
        panic!("no contact record");
    };
    assert!(
        format!("{record:?}").contains("jo@example.com"),
        "the contact record holds the email: {record:?}"
    );
}

#[test]
fn markup_stays_text_on_both_sides() {
    let rig = Rig::new("");
    let _ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "<b>Mallory</b>", "mallory@example.com");
    let key = rig.accept_offer("ann");
    let attack = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">";
    browser.say(attack);
    rig.wait_line("ann", key, attack);
    let answer = "<img src=x onerror=\"window.owned = 3\"><i>bold</i>";
    rig.core.send_message("ann", key, answer).expect("send");
    browser.wait_line("the agent's markup as text", |l| l.ends_with(answer));
    browser.wait_line("the customer's markup as text", |l| l.ends_with(attack));
    let injected = browser.eval(
        "return [typeof window.pwned, typeof window.owned, \
         document.querySelectorAll('#messages img, #messages script, #messages i, #messages b').length];",
    );
    assert_eq!(injected, json!(["undefined", "undefined", 0]));
    let view = rig.snapshot("ann");
    let chat = view
        .interactions
        .iter()
        .find(|i| i.key == key)
        .expect("chat");
    assert_eq!(chat.contact.display_name.as_deref(), Some("<b>Mallory</b>"));
}

#[test]
fn the_queue_position_shows_while_no_agent_is_ready_and_leaving_then_abandons_the_chat() {
    let rig = Rig::new("");
    let ann = rig.core.login("ann").expect("log in");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Quinn", "quinn@example.com");
    until("the queue position", || {
        (browser.text_of("#queue") == "You are number 1 in the queue.").then_some(())
    });
    let entries = |rig: &Rig| match rig.core.query(Query::Search {
        contact: None,
        text: None,
        limit: 10,
    }) {
        Ok(Answer::Entries(entries)) => entries,
        other => panic!("{other:?}"),
    };
    let queued = until("the chat in the history", || {
        entries(&rig).into_iter().next()
    });
    assert_eq!(queued.outcome, "", "open while queued");
    browser.click("#end");
    browser.wait_line("the end of the chat", |l| l.starts_with("Chat ended"));
    until("the chat recorded as abandoned", || {
        entries(&rig)
            .into_iter()
            .find(|e| e.key == queued.key && e.outcome == "abandoned")
    });
    ann.send(AgentCommand::LogOnChannel {
        channel: "chat".into(),
    })
    .expect("log on");
    ann.send(AgentCommand::SetReady {
        channel: "chat".into(),
    })
    .expect("ready");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rig.snapshot("ann").interactions.is_empty(),
        "an abandoned chat is never offered"
    );
}

#[test]
fn a_consultation_is_hidden_from_the_customer_and_a_conference_shows_the_second_agent() {
    let rig = Rig::new("");
    let ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Cora", "cora@example.com");
    let key = rig.accept_offer("ann");
    browser.wait_line("Ann joined", |l| l == "Ann joined the chat");
    let bob = rig.ready("bob");
    ann.send(AgentCommand::Consult {
        key,
        colleague: "bob".into(),
    })
    .expect("consult");
    let consultation = rig.accept_offer("bob");
    assert_ne!(consultation, key);
    rig.core
        .send_message("bob", consultation, "Is she a VIP customer?")
        .expect("bob writes in the consultation");
    rig.wait_line("ann", consultation, "Is she a VIP customer?");
    rig.core
        .send_message("ann", key, "One moment please.")
        .expect("ann answers the customer");
    browser.wait_line("Ann's message", |l| l.ends_with("One moment please."));
    let page = browser.lines().join("\n");
    assert!(!page.contains("VIP"), "the consultation leaked: {page}");
    assert!(
        !page.contains("Bob"),
        "the customer must not see Bob yet: {page}"
    );

    ann.send(AgentCommand::Conference { consultation })
        .expect("conference");
    browser.wait_line("Bob joining", |l| l == "Bob joined the chat");
    let bob_view = bob.snapshot().expect("bob");
    let shared = bob_view
        .interactions
        .iter()
        .find(|i| i.key == key)
        .expect("Bob takes part in the chat");
    assert_eq!(shared.conference, vec!["bob".to_string()]);
    until("Bob listed as a party for Ann", || {
        let view = rig.snapshot("ann");
        let chat = view.interactions.iter().find(|i| i.key == key)?;
        chat.detail
            .parties
            .iter()
            .any(|p| p.display_name == "Bob")
            .then_some(())
    });
    browser.say("Hello both of you");
    rig.wait_line("bob", key, "Hello both of you");
    // Bob leaves the conference: the customer sees him go (plugin-api 1.5 `leave-conference`),
    // Ann keeps the chat.
    bob.send(AgentCommand::LeaveConference { key })
        .expect("leave");
    browser.wait_line("Bob leaving", |l| l == "Bob left the chat");
    until("Bob no longer a party for Ann", || {
        let view = rig.snapshot("ann");
        let chat = view.interactions.iter().find(|i| i.key == key)?;
        (chat.state == InteractionState::Active
            && chat.detail.parties.iter().all(|p| p.display_name != "Bob"))
        .then_some(())
    });
}

#[test]
fn a_transfer_after_consultation_hands_the_customer_to_the_colleague() {
    let rig = Rig::new("");
    let ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Tess", "tess@example.com");
    let key = rig.accept_offer("ann");
    let _bob = rig.ready("bob");
    ann.send(AgentCommand::Consult {
        key,
        colleague: "bob".into(),
    })
    .expect("consult");
    let consultation = rig.accept_offer("bob");
    ann.send(AgentCommand::TransferAfterConsultation { consultation })
        .expect("transfer");
    browser.wait_line("Ann leaving", |l| l == "Ann left the chat");
    browser.wait_line("Bob joining", |l| l == "Bob joined the chat");
    until("Bob owning the chat", || {
        rig.snapshot("bob")
            .interactions
            .iter()
            .find(|i| i.key == key && i.owner.as_deref() == Some("bob"))
            .map(|_| ())
    });
    rig.core
        .send_message("bob", key, "Hi, I'm taking over.")
        .expect("bob writes");
    browser.wait_line("Bob's message under his name", |l| {
        l == "BobHi, I'm taking over."
    });
}

#[test]
fn the_agent_ends_the_chat_and_the_transcript_is_in_the_history() {
    let rig = Rig::new("");
    let _ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Eve", "eve@example.com");
    let key = rig.accept_offer("ann");
    browser.say("Bye soon");
    rig.wait_line("ann", key, "Bye soon");
    rig.core.send_message("ann", key, "Goodbye!").expect("send");
    rig.core
        .execute("ann", AgentCommand::End { key })
        .expect("end");
    browser.wait_line("the end notice", |l| l == "Chat ended: Ann ended the chat");
    let disabled = browser.eval("return document.getElementById('text').disabled;");
    assert_eq!(disabled, json!(true), "no more messages after the end");
    let view = rig.snapshot("ann");
    let chat = view
        .interactions
        .iter()
        .find(|i| i.key == key)
        .expect("chat");
    assert_eq!(chat.state, InteractionState::Ended);
    let Ok(Answer::Lines(lines)) = rig.core.query(Query::Transcript {
        key,
        offset: 0,
        limit: 100,
    }) else {
        panic!("no transcript");
    };
    let texts: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.party.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(texts, vec![("Eve", "Bye soon"), ("Ann", "Goodbye!")]);
}

#[test]
fn an_idle_chat_is_warned_then_closed() {
    let rig = Rig::new("idle_warning_secs = 1\nidle_close_secs = 1\n");
    let _ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Ida", "ida@example.com");
    let key = rig.accept_offer("ann");
    browser.wait_line("the idle warning", |l| {
        l.starts_with("This chat will close in 1 seconds")
    });
    browser.wait_line("the close", |l| {
        l == "Chat ended: The chat was closed after a period of inactivity"
    });
    until("the chat ended in the core", || {
        rig.snapshot("ann")
            .interactions
            .iter()
            .find(|i| i.key == key && i.state == InteractionState::Ended)
            .map(|_| ())
    });
}

#[test]
fn an_active_chat_survives_a_host_restart_and_the_customer_resumes_it_with_its_transcript() {
    let port = free_port();
    let mut rig = Rig::new(&format!("port = {port}\n"));
    let _ann = rig.ready("ann");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Rita", "rita@example.com");
    let key = rig.accept_offer("ann");
    browser.say("Before the restart");
    rig.wait_line("ann", key, "Before the restart");
    rig.core.send_message("ann", key, "Noted.").expect("send");
    browser.wait_line("Ann's answer", |l| l.ends_with("Noted."));

    rig.restart();
    assert_eq!(rig.url, format!("http://127.0.0.1:{port}/"));
    browser.wait_line("the page reconnected (or still showing)", |l| {
        l.ends_with("Noted.")
    });
    browser.reload();
    browser.wait_line("the transcript after the restart", |l| {
        l.ends_with("Before the restart")
    });
    browser.say("After the restart");
    rig.wait_line("ann", key, "After the restart");
    rig.core
        .send_message("ann", key, "Still here.")
        .expect("same interaction after the restart");
    browser.wait_line("the answer in the same chat", |l| {
        l.ends_with("Still here.")
    });
    let lines = browser.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("Before the restart"))
            .count(),
        1,
        "{lines:?}"
    );
    let owner = rig
        .snapshot("ann")
        .interactions
        .iter()
        .find(|i| i.key == key)
        .and_then(|i| i.owner.clone());
    assert_eq!(owner.as_deref(), Some("ann"));
}

/// A raw WebSocket customer (no browser), for the limits.
struct RawClient {
    runtime: tokio::runtime::Runtime,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl RawClient {
    fn new() -> Self {
        RawClient {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn connect(&self, url: &str, origin: &str) -> Result<Socket, String> {
        self.runtime.block_on(async {
            let mut request = url.into_client_request().map_err(|e| e.to_string())?;
            request
                .headers_mut()
                .insert("Origin", origin.parse().map_err(|_| "origin".to_string())?);
            tokio_tungstenite::connect_async(request)
                .await
                .map(|(socket, _)| socket)
                .map_err(|e| e.to_string())
        })
    }

    fn send(&self, socket: &mut Socket, message: Value) -> bool {
        self.runtime
            .block_on(socket.send(Message::text(message.to_string())))
            .is_ok()
    }

    /// Reads until the server closes; returns the close code and reason.
    fn close_reason(&self, socket: &mut Socket) -> Option<(u16, String)> {
        self.runtime.block_on(async {
            let read = async {
                while let Some(message) = socket.next().await {
                    match message {
                        Ok(Message::Close(Some(frame))) => {
                            return Some((u16::from(frame.code), frame.reason.to_string()));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
                None
            };
            tokio::time::timeout(WAIT, read).await.ok().flatten()
        })
    }
}

#[test]
fn floods_oversize_messages_bad_origins_and_too_many_connections_are_refused_clearly() {
    let rig = Rig::new(
        "max_message_bytes = 100\nmessages_per_second = 5\nmessage_burst = 5\n\
         max_connections_per_address = 3\n",
    );
    let ws = rig.websocket();
    let origin = rig.url.trim_end_matches('/').to_string();
    let client = RawClient::new();
    let start = json!({"type": "start", "name": "Flo", "email": "flo@example.com"});

    let mut flood = client.connect(&ws, &origin).expect("connect");
    client.send(&mut flood, start.clone());
    for n in 0..40 {
        if !client.send(
            &mut flood,
            json!({"type": "message", "cid": format!("c{n}"), "text": "spam"}),
        ) {
            break;
        }
    }
    let (code, reason) = client.close_reason(&mut flood).expect("a close frame");
    assert_eq!(code, 1008, "{reason}");
    assert_eq!(reason, "too many messages: the limit is 5 per second");

    let mut big = client.connect(&ws, &origin).expect("connect");
    client.send(&mut big, start.clone());
    client.send(
        &mut big,
        json!({"type": "message", "cid": "c1", "text": "x".repeat(101)}),
    );
    let (code, reason) = client.close_reason(&mut big).expect("a close frame");
    assert_eq!(code, 1009, "{reason}");
    assert_eq!(reason, "message too large: 101 bytes, the limit is 100");

    let mut huge = client.connect(&ws, &origin).expect("connect");
    client.send(
        &mut huge,
        json!({"type": "message", "cid": "c1", "text": "y".repeat(1 << 20)}),
    );
    let closed = client.close_reason(&mut huge);
    assert!(
        closed.as_ref().is_none_or(|(code, _)| *code == 1009),
        "a megabyte frame is cut off: {closed:?}"
    );

    let refused = client
        .connect(&ws, "http://evil.example")
        .expect_err("bad origin");
    assert!(refused.contains("403"), "{refused}");

    // The closed connections give their places back as their tasks finish.
    std::thread::sleep(Duration::from_millis(300));
    let open: Vec<Socket> = (0..3)
        .map(|_| client.connect(&ws, &origin).expect("within the limit"))
        .collect();
    let mut fourth = client.connect(&ws, &origin).expect("handshake");
    let (code, reason) = client.close_reason(&mut fourth).expect("a close frame");
    assert_eq!(code, 1008);
    assert_eq!(
        reason,
        "too many connections from your address: the limit is 3"
    );
    drop(open);

    let (word, why) = crate::support::status(rig.plugins(), CHAT);
    assert_eq!(word, "loaded", "the plugin survives: {why}");
    // The server notices the dropped sockets and gives their places back.
    let welcome = until("a place after the others closed", || {
        let mut socket = client.connect(&ws, &origin).ok()?;
        client.send(&mut socket, start.clone());
        let first = client.runtime.block_on(async {
            tokio::time::timeout(WAIT, socket.next())
                .await
                .ok()
                .flatten()
        });
        match first {
            Some(Ok(Message::Text(text))) => Some(text.as_str().to_string()),
            _ => None,
        }
    });
    assert!(welcome.contains("\"type\":\"welcome\""), "{welcome}");
    until(
        "three chats in the history: flood, big and the last start",
        || {
            let entries = match rig.core.query(Query::Search {
                contact: None,
                text: None,
                limit: 20,
            }) {
                Ok(Answer::Entries(entries)) => entries,
                other => panic!("{other:?}"),
            };
            assert!(
                entries.len() <= 3,
                "a refused connection made a chat: {entries:?}"
            );
            (entries.len() == 3).then_some(())
        },
    );
}

/// Reads server messages until one satisfies `test`.
fn read_until(client: &RawClient, socket: &mut Socket, test: impl Fn(&Value) -> bool) -> Value {
    client.runtime.block_on(async {
        let read = async {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                    && test(&value)
                {
                    return Some(value);
                }
            }
            None
        };
        tokio::time::timeout(WAIT, read)
            .await
            .ok()
            .flatten()
            .expect("the awaited server message")
    })
}

#[test]
fn a_reconnecting_widget_resends_unacknowledged_messages_and_nothing_is_recorded_twice() {
    let rig = Rig::new("");
    let _ann = rig.ready("ann");
    let (ws, origin) = (rig.websocket(), rig.url.trim_end_matches('/').to_string());
    let client = RawClient::new();
    let mut first = client.connect(&ws, &origin).expect("connect");
    client.send(
        &mut first,
        json!({"type": "start", "name": "Rae", "email": "rae@example.com"}),
    );
    let welcome = read_until(&client, &mut first, |m| m["type"] == "welcome");
    let token = welcome["token"].as_str().expect("token").to_string();
    let key = rig.accept_offer("ann");
    read_until(&client, &mut first, |m| m["kind"] == "joined");
    client.send(
        &mut first,
        json!({"type": "message", "cid": "m1", "text": "first"}),
    );
    let ack = read_until(&client, &mut first, |m| m["type"] == "ack");
    assert_eq!(ack["cid"], "m1");
    let seq_m1 = ack["seq"].as_u64().expect("seq");
    drop(first);

    rig.core
        .send_message("ann", key, "while you were away")
        .expect("send");
    let mut second = client.connect(&ws, &origin).expect("reconnect");
    client.send(
        &mut second,
        json!({"type": "resume", "token": token, "last_seq": seq_m1}),
    );
    let missed = read_until(&client, &mut second, |m| m["type"] == "event");
    assert_eq!(missed["text"], "while you were away", "{missed}");
    assert_eq!(missed["seq"].as_u64(), Some(seq_m1 + 1));
    // The widget did not see the ack of m1 (say), so it sends m1 again, then m2.
    client.send(
        &mut second,
        json!({"type": "message", "cid": "m1", "text": "first"}),
    );
    let again = read_until(&client, &mut second, |m| m["type"] == "ack");
    assert_eq!(
        (again["cid"].as_str(), again["seq"].as_u64()),
        (Some("m1"), Some(seq_m1))
    );
    client.send(
        &mut second,
        json!({"type": "message", "cid": "m2", "text": "second"}),
    );
    read_until(&client, &mut second, |m| {
        m["type"] == "ack" && m["cid"] == "m2"
    });
    rig.wait_line("ann", key, "second");
    let from_customer: Vec<String> = rig
        .lines("ann", key)
        .into_iter()
        .filter(|(party, _)| party == "Rae")
        .map(|(_, text)| text)
        .collect();
    assert_eq!(from_customer, vec!["first", "second"]);

    let mut stranger = client.connect(&ws, &origin).expect("connect");
    client.send(
        &mut stranger,
        json!({"type": "resume", "token": "not-a-token", "last_seq": 0}),
    );
    let refused = read_until(&client, &mut stranger, |m| m["type"] == "error");
    assert_eq!(refused["message"], "this chat is no longer available");
}

#[test]
fn bad_settings_or_a_port_in_use_fail_the_channel_with_the_reason_and_the_host_keeps_running() {
    let install = Install::new();
    package(&first_party_library("agentdesk_chat"), &install.plugins).expect("package chat");
    let bad = format!("[plugins.settings.\"{CHAT}\"]\nallowed_origins = [\"shop.example\"]\n");
    let plugins = install.start(&[CHAT], &bad);
    let (word, reason) = crate::support::status(&plugins, CHAT);
    assert_eq!(word, "failed", "{reason}");
    assert!(reason.contains("allowed_origins"), "{reason}");
    drop(plugins);

    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let busy = format!("[plugins.settings.\"{CHAT}\"]\nport = {port}\n");
    let plugins = install.start(&[CHAT], &busy);
    let (word, reason) = crate::support::status(&plugins, CHAT);
    assert_eq!(word, "failed", "{reason}");
    assert!(
        reason.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{reason}"
    );
}

#[test]
fn the_customer_ends_an_active_chat_and_the_agent_sees_it_ended() {
    let rig = Rig::new("");
    let _ann = rig.ready("ann");
    let (ws, origin) = (rig.websocket(), rig.url.trim_end_matches('/').to_string());
    let client = RawClient::new();
    let mut socket = client.connect(&ws, &origin).expect("connect");
    client.send(
        &mut socket,
        json!({"type": "start", "name": "Lea", "email": "lea@example.com"}),
    );
    let key = rig.accept_offer("ann");
    read_until(&client, &mut socket, |m| m["kind"] == "joined");
    client.send(&mut socket, json!({"type": "leave"}));
    let ended = read_until(&client, &mut socket, |m| m["kind"] == "ended");
    assert_eq!(ended["reason"], "The customer ended the chat");
    until("the chat ended for Ann", || {
        rig.snapshot("ann")
            .interactions
            .iter()
            .find(|i| i.key == key && i.state == InteractionState::Ended)
            .map(|_| ())
    });
    assert!(
        rig.core.send_message("ann", key, "hello?").is_err(),
        "no message into an ended chat"
    );
}

#[test]
fn a_whole_chat_runs_the_same_through_the_chat_plugin_in_a_process_of_its_own() {
    let rig = Rig::isolated("");
    let report = rig.plugins().report(CHAT).expect("report");
    assert_eq!(
        report.isolation,
        agentdesk_host::config::Isolation::Process,
        "{report:#?}"
    );
    assert!(
        rig.plugins().runner_pid(CHAT).is_some(),
        "no runner process"
    );
    let _ann = rig.ready("ann");
    let (ws, origin) = (rig.websocket(), rig.url.trim_end_matches('/').to_string());
    let client = RawClient::new();
    let mut socket = client.connect(&ws, &origin).expect("connect");
    client.send(
        &mut socket,
        json!({"type": "start", "name": "Iso", "email": "iso@example.com"}),
    );
    let key = rig.accept_offer("ann");
    read_until(&client, &mut socket, |m| m["kind"] == "joined");
    client.send(
        &mut socket,
        json!({"type": "message", "cid": "i1", "text": "Hello from outside"}),
    );
    read_until(&client, &mut socket, |m| {
        m["type"] == "ack" && m["cid"] == "i1"
    });
    rig.wait_line("ann", key, "Hello from outside");
    rig.core
        .send_message("ann", key, "Hello from the desk")
        .expect("send");
    let answer = read_until(&client, &mut socket, |m| m["type"] == "event");
    assert_eq!(answer["text"], "Hello from the desk", "{answer}");
    client.send(&mut socket, json!({"type": "leave"}));
    let ended = read_until(&client, &mut socket, |m| m["kind"] == "ended");
    assert_eq!(ended["reason"], "The customer ended the chat");
    until("the chat ended for Ann", || {
        rig.snapshot("ann")
            .interactions
            .iter()
            .find(|i| i.key == key && i.state == InteractionState::Ended)
            .map(|_| ())
    });
    let metrics = rig.plugins().metrics(CHAT).expect("metrics");
    assert!(
        metrics
            .events_emitted
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert_eq!(rig.plugins().report(CHAT).map(|r| r.restarts), Some(0));
}

/// Every message until the server closes, and the close code and reason.
fn until_close(client: &RawClient, socket: &mut Socket) -> (Vec<Value>, Option<(u16, String)>) {
    client.runtime.block_on(async {
        let mut seen = Vec::new();
        let read = async {
            while let Some(message) = socket.next().await {
                match message {
                    Ok(Message::Text(text)) => {
                        seen.push(serde_json::from_str(text.as_str()).unwrap_or(Value::Null));
                    }
                    Ok(Message::Close(frame)) => {
                        return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            None
        };
        let close = tokio::time::timeout(WAIT, read).await.ok().flatten();
        (seen, close)
    })
}

#[test]
fn earned_acks_precede_a_limit_close_a_newer_widgets_messages_are_tolerated_and_bad_utf8_gets_1007()
{
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let rig = Rig::new("messages_per_second = 1\nmessage_burst = 4\n");
    let ws = rig.websocket();
    let origin = rig.url.trim_end_matches('/').to_string();
    let client = RawClient::new();
    let start = json!({"type": "start", "name": "Flo", "email": "flo@example.com"});

    // The start and three messages fit the burst (a fourth may fit what refilled); the fifth
    // trips the limit.
    let mut flood = client.connect(&ws, &origin).expect("connect");
    client.send(&mut flood, start.clone());
    for n in 0..5 {
        client.send(
            &mut flood,
            json!({"type": "message", "cid": format!("c{n}"), "text": "quick"}),
        );
    }
    let (seen, close) = until_close(&client, &mut flood);
    assert_eq!(close.map(|(code, _)| code), Some(1008));
    let acked: Vec<&str> = seen
        .iter()
        .filter(|m| m["type"] == "ack")
        .filter_map(|m| m["cid"].as_str())
        .collect();
    let recorded: Vec<&str> = seen
        .iter()
        .filter(|m| m["type"] == "event" && m["author"] == "customer")
        .filter_map(|m| m["cid"].as_str())
        .collect();
    assert_eq!(
        acked, recorded,
        "every recorded message is acked before the close"
    );
    assert!(
        (3..5).contains(&acked.len()),
        "the burst (and what refilled meanwhile) went through, the rest tripped the limit: \
         {seen:?}"
    );

    // A newer widget: an unknown field is ignored, an unknown type is refused and the
    // conversation goes on.
    let mut newer = client.connect(&ws, &origin).expect("connect");
    client.send(&mut newer, start.clone());
    read_until(&client, &mut newer, |m| m["type"] == "welcome");
    client.send(
        &mut newer,
        json!({"type": "message", "cid": "n1", "text": "hi", "mood": "happy"}),
    );
    read_until(&client, &mut newer, |m| {
        m["type"] == "ack" && m["cid"] == "n1"
    });
    client.send(&mut newer, json!({"type": "rate-agent", "stars": 5}));
    let refused = read_until(&client, &mut newer, |m| m["type"] == "error");
    assert_eq!(refused["message"], "unknown message type `rate-agent`");
    client.send(
        &mut newer,
        json!({"type": "message", "cid": "n2", "text": "still here"}),
    );
    read_until(&client, &mut newer, |m| {
        m["type"] == "ack" && m["cid"] == "n2"
    });

    // A text frame that is not UTF-8: closed with 1007 (RFC 6455 §8.1).
    let mut broken = client.connect(&ws, &origin).expect("connect");
    client.send(&mut broken, start);
    read_until(&client, &mut broken, |m| m["type"] == "welcome");
    let frame = Frame::message(vec![0x68, 0xff, 0xfe], OpCode::Data(Data::Text), true);
    client
        .runtime
        .block_on(broken.send(Message::Frame(frame)))
        .expect("send the raw frame");
    let (_, close) = until_close(&client, &mut broken);
    assert_eq!(close.map(|(code, _)| code), Some(1007));
}

#[test]
fn the_start_form_hides_once_the_chat_starts_and_a_new_chat_can_follow_an_ended_one() {
    let rig = Rig::new("");
    let browser = Browser::open();
    browser.start_chat(&rig.url, "Jo Customer", "jo@example.com");
    let shown = |css: &str| {
        browser.eval(&format!(
            "return getComputedStyle(document.querySelector({})).display !== 'none';",
            json!(css)
        )) == Value::Bool(true)
    };
    assert!(!shown("#start-form"), "the start form is hidden in a chat");
    browser.click("#end");
    until("the new-chat button", || shown("#new-chat").then_some(()));
    browser.click("#new-chat");
    until("the start form again", || {
        shown("#start-form").then_some(())
    });
    browser.eval("document.getElementById('name').value = ''; return null;");
    browser.type_into("#name", "Jo Again");
    browser.click("#start");
    until("the second chat", || {
        (browser.text_of("#status") == "Connected as Jo Again.").then_some(())
    });
    assert!(
        browser.text_of("#error").is_empty(),
        "{}",
        browser.text_of("#error")
    );
    let Answer::Entries(chats) = rig
        .core
        .query(Query::Search {
            contact: None,
            text: Some("Web chat with".into()),
            limit: 10,
        })
        .expect("search")
    else {
        panic!("entries")
    };
    assert_eq!(chats.len(), 2, "{chats:?}");
}
