//! The client interface's behaviour, written once against [`ClientRig`] so every implementation
//! runs the same suite: the in-process one, and the hub's over a real `nats-server`. Login,
//! channel states, offers, messages both ways, history queries, files, refusals with their codes,
//! command ids answered once, and a stopped core.

use crate::nats::NatsServer;
use crate::support::Install;
use agentdesk_client::in_process::InProcess;
use agentdesk_client::remote::{Remote, RemoteOptions};
use agentdesk_client::{
    AgentCommand, AgentSnapshot, ChannelState, ClientError, Connection, DeskClient, HistoryFilter,
    InteractionState, InteractionView,
};
use agentdesk_host::AdminConfig;
use agentdesk_host::core::Policy;
use agentdesk_host::service::CoreService;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_hub::{Hub, HubOptions};
use plugin_api::{
    AttachmentRef, ChannelKind, Contact, Event, InteractionId, Media, MessageContent,
    MessageReceived, Offer, Party, Route,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The plugin the rig's customers write through.
pub(crate) const PLUGIN: &str = "acme.chat";
const WAIT: Duration = Duration::from_secs(15);

/// A core with agents `ann` and `bob` on channel `chat` (capacity 2, wrap-up codes `sale` and
/// `info`, Not Ready reasons `Break` and `Lunch`), customers who write on it, and connections.
pub(crate) trait ClientRig {
    /// A new connection to the core.
    fn connect(&self) -> Box<dyn Connection>;
    /// Customer `id` (named `name`) starts a chat on `chat`.
    fn customer_starts(&self, id: &str, name: &str);
    /// Customer `id` writes in their chat (message id `message`).
    fn customer_writes(&self, id: &str, message: &str, text: &str) {
        self.customer_sends(id, message, text, vec![]);
    }
    /// Customer `id` writes in their chat with files attached.
    fn customer_sends(&self, id: &str, message: &str, text: &str, files: Vec<AttachmentRef>);
    /// Puts a file in the plugin's data (what a plugin keeps and refers to).
    fn plugin_file(&self, path: &str, bytes: &[u8]);
    /// Stops the core.
    fn stop_core(&mut self);
}

/// The settings every rig serves.
pub(crate) const SUITE_CONFIG: &str = "[core]\nnot_ready_reasons = [\"Break\", \"Lunch\"]\n\
    wrap_up_codes = [{ code = \"sale\", label = \"Sale\" }, { code = \"info\", label = \"Information\" }]\n\
    [channels.chat]\ncapacity = 2\n\
    [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\n\
    [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"chat\"]\n";

/// The core service in this process, reached through `InProcess`.
pub(crate) struct InProcessRig {
    install: Install,
    policy: Policy,
    service: Option<CoreService>,
}

impl InProcessRig {
    pub(crate) fn new() -> Self {
        let install = Install::new();
        let config = AdminConfig::parse(SUITE_CONFIG, "suite").expect("config");
        let policy = Policy::from_config(&config, &["chat".to_string()]);
        let service = agentdesk_tests::start_core(&install.data, policy.clone(), None);
        InProcessRig {
            install,
            policy,
            service: Some(service),
        }
    }

    fn event(&self, event: Event) {
        let service = self.service.as_ref().expect("core running");
        service
            .handle()
            .plugin_event(PLUGIN, event)
            .expect("event in");
    }
}

impl Drop for InProcessRig {
    fn drop(&mut self) {
        self.stop_core();
    }
}

impl InProcessRig {
    pub(crate) fn connect_in_process(&self) -> InProcess {
        let service = self.service.as_ref().expect("core running");
        InProcess::new(
            service.handle(),
            &self.policy,
            None,
            Arc::new(SystemClock),
            Some(self.install.data.clone()),
        )
    }
}

impl ClientRig for InProcessRig {
    fn connect(&self) -> Box<dyn Connection> {
        Box::new(self.connect_in_process())
    }

    fn customer_starts(&self, id: &str, name: &str) {
        self.event(Event::Offer(Offer {
            interaction: InteractionId::new(id),
            external_id: id.into(),
            channel: ChannelKind::new("chat"),
            media: Media::Conversation,
            route: Route::queue("default"),
            contact: Contact {
                display_name: Some(name.into()),
                addresses: vec![],
            },
            subject: None,
            case_data: vec![],
            actions: vec![],
            priority: 0,
        }));
    }

    fn customer_sends(&self, id: &str, message: &str, text: &str, files: Vec<AttachmentRef>) {
        self.event(Event::MessageReceived(MessageReceived {
            interaction: InteractionId::new(id),
            from: Party {
                id: id.into(),
                role: Party::CUSTOMER.into(),
                display_name: "Customer".into(),
                address: None,
            },
            message: MessageContent {
                id: message.into(),
                text: text.into(),
                attachments: files,
            },
        }));
    }

    fn plugin_file(&self, path: &str, bytes: &[u8]) {
        let file = self.install.data.join("plugins").join(PLUGIN).join(path);
        std::fs::create_dir_all(file.parent().expect("a directory")).expect("mkdir");
        std::fs::write(file, bytes).expect("write");
    }

    fn stop_core(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

/// The same core served by a hub over a real `nats-server`, reached through `Remote`: what a
/// desktop on another computer does.
pub(crate) struct NatsRig {
    core: InProcessRig,
    hub: Option<Hub>,
    nats: NatsServer,
}

impl NatsRig {
    pub(crate) fn new() -> Self {
        Self::with_grace(Duration::from_secs(30))
    }

    /// A rig whose hub sets an agent Not Ready after `grace` of silence from their desktop.
    pub(crate) fn with_grace(grace: Duration) -> Self {
        let core = InProcessRig::new();
        let nats = NatsServer::start();
        let options = HubOptions {
            desktop_grace: grace,
            ..HubOptions::new(nats.url.clone())
        };
        let served = core.connect_in_process();
        let hub = Hub::serve(&options, served).expect("the hub serves");
        NatsRig {
            core,
            hub: Some(hub),
            nats,
        }
    }
}

impl NatsRig {
    /// Stops the hub only (the core runs on): what desktops see when the hub's process or its
    /// link to NATS goes away.
    pub(crate) fn stop_hub(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop();
        }
    }

    /// Serves the core again through a new hub.
    pub(crate) fn start_hub(&mut self) {
        let options = HubOptions::new(self.nats.url.clone());
        let served = self.core.connect_in_process();
        self.hub = Some(Hub::serve(&options, served).expect("the hub serves again"));
    }

    /// An agent's snapshot straight from the core.
    pub(crate) fn core_snapshot(&self, agent: &str) -> AgentSnapshot {
        self.core
            .connect_in_process()
            .snapshot(agent)
            .expect("snapshot")
            .expect("known agent")
    }

    /// The NATS server's URL.
    pub(crate) fn url(&self) -> &str {
        &self.nats.url
    }

    /// The hub.
    pub(crate) fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("hub running")
    }
}

impl ClientRig for NatsRig {
    fn connect(&self) -> Box<dyn Connection> {
        let options = RemoteOptions::new(self.nats.url.clone());
        Box::new(Remote::connect(&options).expect("connect to NATS"))
    }
    fn customer_starts(&self, id: &str, name: &str) {
        self.core.customer_starts(id, name);
    }
    fn customer_sends(&self, id: &str, message: &str, text: &str, files: Vec<AttachmentRef>) {
        self.core.customer_sends(id, message, text, files);
    }
    fn plugin_file(&self, path: &str, bytes: &[u8]) {
        self.core.plugin_file(path, bytes);
    }
    fn stop_core(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop();
        }
        self.core.stop_core();
    }
}

// ---- the suite: each function takes any rig ----

fn log_in(rig: &dyn ClientRig, agent: &str) -> Box<dyn DeskClient> {
    rig.connect().login(agent).wait(WAIT).expect("log in")
}

pub(crate) fn ok(client: &dyn DeskClient, command: AgentCommand) {
    let what = format!("{command:?}");
    client
        .command(client.next_id(), command)
        .wait(WAIT)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

pub(crate) fn until(
    stream: &crossbeam_channel::Receiver<AgentSnapshot>,
    what: &str,
    test: impl Fn(&AgentSnapshot) -> bool,
) -> AgentSnapshot {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.recv_timeout(left) {
            Ok(s) if test(&s) => return s,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

fn is_offered(i: &InteractionView) -> bool {
    matches!(i.state, InteractionState::Offered { .. })
}

fn ready(client: &dyn DeskClient) {
    ok(
        client,
        AgentCommand::LogOnChannel {
            channel: "chat".into(),
        },
    );
    ok(
        client,
        AgentCommand::SetReady {
            channel: "chat".into(),
        },
    );
}

/// Ann Ready, a customer's chat offered to her and accepted; returns its key.
fn accepted_chat(rig: &dyn ClientRig, ann: &dyn DeskClient, customer: &str) -> u64 {
    let stream = ann.watch();
    rig.customer_starts(customer, "Carol");
    let offered = until(&stream, "an offer", |s| {
        s.interactions.iter().any(is_offered)
    });
    let key = offered
        .interactions
        .iter()
        .find(|i| is_offered(i))
        .expect("offered")
        .key;
    ok(ann, AgentCommand::Accept { key });
    until(&stream, "the chat active", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.state == InteractionState::Active)
    });
    key
}

pub(crate) fn login_serves_the_agents_rules_and_a_first_snapshot(rig: &dyn ClientRig) {
    let connection = rig.connect();
    let agents = connection.agents().wait(WAIT).expect("agents");
    assert_eq!(
        agents,
        vec![
            ("ann".to_string(), "Ann".to_string()),
            ("bob".into(), "Bob".into())
        ]
    );
    let ann = connection.login("ann").wait(WAIT).expect("log in");
    assert_eq!(ann.agent(), "ann");
    let info = ann.info();
    assert_eq!(info.not_ready_reasons, ["Break", "Lunch"]);
    assert_eq!(
        info.wrap_up_codes,
        [
            ("sale".to_string(), "Sale".to_string()),
            ("info".into(), "Information".into())
        ]
    );
    let first = until(&ann.watch(), "the first snapshot", |_| true);
    assert!(first.logged_in);
    assert_eq!(first.name, "Ann");
    assert_eq!(first.channels.len(), 1);
    assert_eq!(first.channels[0].state, ChannelState::LoggedOff);
    let unknown = connection
        .login("mallory")
        .wait(WAIT)
        .err()
        .expect("refused");
    assert!(unknown.is_refusal(), "{unknown:?}");
    assert_eq!(unknown.code(), "unknown-agent");
}

pub(crate) fn states_change_and_refusals_carry_the_rules_code(rig: &dyn ClientRig) {
    let ann = log_in(rig, "ann");
    let stream = ann.watch();
    ready(&*ann);
    until(&stream, "Ready", |s| {
        s.channels[0].state == ChannelState::Ready
    });
    ok(
        &*ann,
        AgentCommand::SetNotReady {
            channel: "chat".into(),
            reason: "Lunch".into(),
        },
    );
    until(&stream, "Not Ready: Lunch", |s| {
        s.channels[0].state
            == ChannelState::NotReady {
                reason: "Lunch".into(),
            }
    });
    let refused = ann
        .command(
            ann.next_id(),
            AgentCommand::SetNotReady {
                channel: "chat".into(),
                reason: "Nap".into(),
            },
        )
        .wait(WAIT)
        .expect_err("not a reason of the admin's");
    assert!(refused.is_refusal());
    assert_eq!(refused.code(), "unknown-reason", "{refused}");
    let refused = ann
        .command(ann.next_id(), AgentCommand::Accept { key: 999_999 })
        .wait(WAIT)
        .expect_err("no such interaction");
    assert_eq!(refused.code(), "unknown-interaction", "{refused}");
}

pub(crate) fn commands_are_carried_out_in_the_order_given(rig: &dyn ClientRig) {
    let ann = log_in(rig, "ann");
    // Given at once, answered later: Ready needs the log-on before it.
    let answers: Vec<_> = (0..20)
        .flat_map(|_| {
            [
                ann.command(
                    ann.next_id(),
                    AgentCommand::LogOnChannel {
                        channel: "chat".into(),
                    },
                ),
                ann.command(
                    ann.next_id(),
                    AgentCommand::SetReady {
                        channel: "chat".into(),
                    },
                ),
                ann.command(
                    ann.next_id(),
                    AgentCommand::LogOffChannel {
                        channel: "chat".into(),
                    },
                ),
            ]
        })
        .collect();
    for (n, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.wait(WAIT), Ok(()), "command {n}");
    }
}

pub(crate) fn an_offer_is_accepted_and_messages_go_both_ways(rig: &dyn ClientRig) {
    let ann = log_in(rig, "ann");
    ready(&*ann);
    let key = accepted_chat(rig, &*ann, "c1");
    rig.customer_writes("c1", "m1", "Where is my parcel?");
    ann.send_message(ann.next_id(), key, "Let me look")
        .wait(WAIT)
        .expect("sent");
    let stream = ann.watch();
    until(&stream, "two lines", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.detail.lines >= 2)
    });
    let lines = ann.live_lines(key, 0, 10).wait(WAIT).expect("lines");
    let texts: Vec<&str> = lines.iter().map(|l| l.line.text.as_str()).collect();
    assert_eq!(texts, ["Where is my parcel?", "Let me look"]);
    assert_eq!(lines[1].line.party, "Ann");
    // A page further on.
    let rest = ann.live_lines(key, 1, 10).wait(WAIT).expect("page");
    assert_eq!(rest.len(), 1);
    // Bob takes no part in Ann's chat: its transcript is not his to read.
    let bob = log_in(rig, "bob");
    let refused = bob.live_lines(key, 0, 10).wait(WAIT).expect_err("not his");
    assert!(refused.is_refusal(), "{refused:?}");
}

pub(crate) fn a_command_sent_again_with_its_id_is_answered_once_and_done_once(rig: &dyn ClientRig) {
    let ann = log_in(rig, "ann");
    ready(&*ann);
    let key = accepted_chat(rig, &*ann, "c2");
    // The same message twice with one id (a retry after a lost answer): one line, one send.
    let id = ann.next_id();
    ann.send_message(id.clone(), key, "Only once")
        .wait(WAIT)
        .expect("sent");
    ann.send_message(id, key, "Only once")
        .wait(WAIT)
        .expect("the first answer again");
    // A refused command sent again is refused again, the same way, even once it would succeed.
    let id = ann.next_id();
    let first = ann
        .command(
            id.clone(),
            AgentCommand::MarkDone {
                key,
                wrap_up: None,
                next: None,
            },
        )
        .wait(WAIT)
        .expect_err("still active: not done");
    ok(&*ann, AgentCommand::End { key });
    let again = ann
        .command(
            id,
            AgentCommand::MarkDone {
                key,
                wrap_up: None,
                next: None,
            },
        )
        .wait(WAIT)
        .expect_err("the first answer, not a second try");
    assert_eq!(first, again);
    let lines = ann.live_lines(key, 0, 10).wait(WAIT).expect("lines");
    let sent: Vec<&str> = lines
        .iter()
        .map(|l| l.line.text.as_str())
        .filter(|t| *t == "Only once")
        .collect();
    assert_eq!(sent.len(), 1, "{lines:?}");
    // Two ids, two commands: both happen (Mark Done now succeeds).
    ok(
        &*ann,
        AgentCommand::MarkDone {
            key,
            wrap_up: Some("sale".into()),
            next: None,
        },
    );
    // Sent twice at once, before either is answered: accepted once, both told so (a second
    // accept would be refused: the chat is no longer offered).
    let stream = ann.watch();
    rig.customer_starts("c2b", "Dave");
    let offered = until(&stream, "a second offer", |s| {
        s.interactions.iter().any(is_offered)
    });
    let key = offered
        .interactions
        .iter()
        .find(|i| is_offered(i))
        .expect("offered")
        .key;
    let id = ann.next_id();
    let first = ann.command(id.clone(), AgentCommand::Accept { key });
    let second = ann.command(id, AgentCommand::Accept { key });
    assert_eq!(first.wait(WAIT), Ok(()));
    assert_eq!(second.wait(WAIT), Ok(()));
    let refused = ann
        .command(ann.next_id(), AgentCommand::Accept { key })
        .wait(WAIT)
        .expect_err("a new id is a new command");
    assert_eq!(refused.code(), "wrong-state", "{refused}");
}

pub(crate) fn a_colleague_is_consulted_conferenced_in_and_given_the_chat(rig: &dyn ClientRig) {
    let ann = log_in(rig, "ann");
    let bob = log_in(rig, "bob");
    ready(&*ann);
    let key = accepted_chat(rig, &*ann, "c4");
    ready(&*bob);
    let bob_sees = bob.watch();
    ok(
        &*ann,
        AgentCommand::Consult {
            key,
            colleague: "bob".into(),
        },
    );
    // The consultation is offered to Bob, on his own desk.
    let offered = until(&bob_sees, "the consultation offered to Bob", |s| {
        s.interactions.iter().any(is_offered)
    });
    let consultation = offered
        .interactions
        .iter()
        .find(|i| is_offered(i))
        .expect("offered");
    assert_eq!(consultation.consult_about, Some(key));
    let consultation = consultation.key;
    ok(&*bob, AgentCommand::Accept { key: consultation });
    ok(&*ann, AgentCommand::Conference { consultation });
    until(&bob_sees, "Bob in the conference", |s| {
        s.interactions.iter().any(|i| i.key == key)
    });
    // Ann hands the chat to Bob after a second consultation.
    ok(
        &*ann,
        AgentCommand::Consult {
            key,
            colleague: "bob".into(),
        },
    );
    let offered = until(&bob_sees, "the second consultation", |s| {
        s.interactions.iter().any(is_offered)
    });
    let second = offered
        .interactions
        .iter()
        .find(|i| is_offered(i))
        .expect("offered")
        .key;
    ok(&*bob, AgentCommand::Accept { key: second });
    ok(
        &*ann,
        AgentCommand::TransferAfterConsultation {
            consultation: second,
        },
    );
    let bobs = until(&bob_sees, "the chat Bob's", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.owner.as_deref() == Some("bob"))
    });
    assert!(bobs.interactions.iter().any(|i| i.key == key));
}

pub(crate) fn history_is_searched_and_a_stored_transcript_read(rig: &dyn ClientRig) {
    let ann = log_in(rig, "ann");
    ready(&*ann);
    let key = accepted_chat(rig, &*ann, "c3");
    rig.customer_writes("c3", "m1", "My invoice number is 4711");
    let stream = ann.watch();
    until(&stream, "the line", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.detail.lines >= 1)
    });
    ok(&*ann, AgentCommand::End { key });
    ok(
        &*ann,
        AgentCommand::MarkDone {
            key,
            wrap_up: Some("info".into()),
            next: None,
        },
    );
    let found = ann.search(Some("invoice"), 10).wait(WAIT).expect("search");
    assert_eq!(found.iter().map(|e| e.key).collect::<Vec<_>>(), [key]);
    assert_eq!(found[0].wrap_up.as_deref(), Some("info"));
    assert!(
        ann.search(Some("zebra"), 10)
            .wait(WAIT)
            .expect("search")
            .is_empty()
    );
    // The agent's own recent interactions (what the desk's history opens with), filtered.
    let recent = |agent: &dyn DeskClient, channel: Option<&str>, outcome: Option<&str>| {
        let filter = HistoryFilter {
            channel: channel.map(str::to_string),
            outcome: outcome.map(str::to_string),
        };
        let found = agent.recent(&filter, 10).wait(WAIT).expect("recent");
        found.iter().map(|e| e.key).collect::<Vec<_>>()
    };
    assert_eq!(recent(&*ann, None, None), [key]);
    assert_eq!(recent(&*ann, Some("chat"), Some("done")), [key]);
    assert!(recent(&*ann, Some("email"), None).is_empty());
    assert!(recent(&*ann, None, Some("abandoned")).is_empty());
    let bob = log_in(rig, "bob");
    assert!(recent(&*bob, None, None).is_empty(), "only Ann's");
    let lines = ann.transcript(key, 0, 10).wait(WAIT).expect("transcript");
    assert_eq!(lines[0].text, "My invoice number is 4711");
    let none = ann.contact_history(key, 10).wait(WAIT).expect("history");
    assert!(none.iter().all(|e| e.key != key), "not itself: {none:?}");
}

pub(crate) fn a_file_reaches_only_those_taking_part_and_only_if_the_interaction_carries_it(
    rig: &dyn ClientRig,
) {
    let ann = log_in(rig, "ann");
    let bob = log_in(rig, "bob");
    ready(&*ann);
    let key = accepted_chat(rig, &*ann, "c-files");
    // Bigger than two pieces of a remote fetch, with no repeating pattern a bug could hide in.
    let invoice: Vec<u8> = (0..700_000u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    rig.plugin_file("mail/1/invoice.pdf", &invoice);
    rig.plugin_file("pages/1.png", b"\x89PNG fake");
    rig.plugin_file("pages/2.png", b"\x89PNG another interaction's page");
    let file = |path: &str, size: usize| AttachmentRef {
        name: path.rsplit('/').next().unwrap_or(path).into(),
        content_type: "application/octet-stream".into(),
        path: path.into(),
        size: size as u64,
    };
    let carried = [
        file("mail/1/invoice.pdf", invoice.len()),
        file("pages/1.png", 9),
        file("../../agentdesk.sqlite3", 0),
    ];
    rig.customer_sends("c-files", "m-files", "Here is my invoice", carried.to_vec());
    let stream = ann.watch();
    until(&stream, "the message with its files", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == key && i.detail.lines >= 1)
    });
    let bytes = ann.file(key, &carried[0]).wait(WAIT).expect("the invoice");
    assert!(
        bytes == invoice,
        "{} bytes back, {} sent",
        bytes.len(),
        invoice.len()
    );
    let page = ann.file(key, &carried[1]).wait(WAIT).expect("the page");
    assert_eq!(page, b"\x89PNG fake");
    // A file the interaction does not carry, though it exists in the plugin's data.
    let other = ann
        .file(key, &file("pages/2.png", 30))
        .wait(WAIT)
        .expect_err("not this interaction's file");
    assert_eq!(other.code(), "not-attached");
    // A path a plugin reported outside its data directory is never read.
    let outside = ann
        .file(key, &carried[2])
        .wait(WAIT)
        .expect_err("outside the plugin's files");
    assert_eq!(outside.code(), "file-outside");
    // Bob takes no part in Ann's chat.
    let not_his = bob
        .file(key, &carried[0])
        .wait(WAIT)
        .expect_err("not Bob's interaction");
    assert_eq!(not_his.code(), "not-yours");
}

/// A core that is gone is said to be: `stopped`, or over a network, `disconnected` once the
/// client has noticed that nothing answers (never a hang, never success).
fn is_gone(answer: Result<(), ClientError>) -> bool {
    match answer {
        Err(ClientError::Stopped) => true,
        Err(e) => e.code() == "disconnected",
        Ok(()) => false,
    }
}

pub(crate) fn a_stopped_core_answers_stopped(rig: &mut dyn ClientRig) {
    let ann = log_in(rig, "ann");
    rig.stop_core();
    let answer = ann
        .command(ann.next_id(), AgentCommand::SetDnd { on: true })
        .wait(WAIT);
    assert!(is_gone(answer.clone()), "{answer:?}");
    let answer = ann.search(None, 10).wait(WAIT).map(|_| ());
    assert!(is_gone(answer.clone()), "{answer:?}");
}

/// The suite against one implementation: `$rig` makes a fresh rig for each test.
macro_rules! client_suite {
    ($name:ident, $rig:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn login_serves_the_agents_rules_and_a_first_snapshot() {
                super::login_serves_the_agents_rules_and_a_first_snapshot(&$rig);
            }
            #[test]
            fn states_change_and_refusals_carry_the_rules_code() {
                super::states_change_and_refusals_carry_the_rules_code(&$rig);
            }
            #[test]
            fn commands_are_carried_out_in_the_order_given() {
                super::commands_are_carried_out_in_the_order_given(&$rig);
            }
            #[test]
            fn an_offer_is_accepted_and_messages_go_both_ways() {
                super::an_offer_is_accepted_and_messages_go_both_ways(&$rig);
            }
            #[test]
            fn a_command_sent_again_with_its_id_is_answered_once_and_done_once() {
                super::a_command_sent_again_with_its_id_is_answered_once_and_done_once(&$rig);
            }
            #[test]
            fn a_colleague_is_consulted_conferenced_in_and_given_the_chat() {
                super::a_colleague_is_consulted_conferenced_in_and_given_the_chat(&$rig);
            }
            #[test]
            fn history_is_searched_and_a_stored_transcript_read() {
                super::history_is_searched_and_a_stored_transcript_read(&$rig);
            }
            #[test]
            fn a_file_reaches_only_those_taking_part_and_only_if_the_interaction_carries_it() {
                super::a_file_reaches_only_those_taking_part_and_only_if_the_interaction_carries_it(
                    &$rig,
                );
            }
            #[test]
            fn a_stopped_core_answers_stopped() {
                super::a_stopped_core_answers_stopped(&mut $rig);
            }
        }
    };
}

client_suite!(in_process, InProcessRig::new());
client_suite!(over_nats, NatsRig::new());
