//! The email channel end to end: the packaged `agentdesk.email` plugin in a real `PluginHost`
//! (with the `CoreService`, and once with the real desktop), against Debian's Dovecot fed over LMTP
//! and a real SMTP server (`tests/mailserver.rs`). Replies are checked where they land: in the
//! recipients' mailboxes.

use crate::mailserver::{MailServer, free_port};
use crate::support::Install;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::{CoreHandle, CoreService, Interact};
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::first_party_library;
use plugin_api::{
    Address, Command, Event, InteractionId, MessageContent, MessageReceived, Offer, SendMessage,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EMAIL: &str = "agentdesk.email";
const WAIT: Duration = Duration::from_secs(60);

/// An installation with the packaged plugin; `settings` is its settings section.
pub(crate) fn setup(settings: &str, agents: &str) -> (Install, PathBuf, AdminConfig) {
    let install = Install::new();
    package(&first_party_library("agentdesk_email"), &install.plugins).expect("package");
    let extra = format!(
        "[plugins.settings.\"{EMAIL}\"]\n{settings}\n[channels.email]\ncapacity = 1000\n\
         answer_timeout_secs = 3600\n{agents}"
    );
    let config = AdminConfig::load(&install.write_config(&[EMAIL], &extra)).expect("config");
    let data = install.data.join("plugins").join(EMAIL);
    (install, data, config)
}

pub(crate) const ANN: &str = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"email\"]\n";
pub(crate) const BOB: &str = "[[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"email\"]\n";

/// The events of a plugin host, with waiting for the one that matters.
struct Events {
    seen: Vec<Event>,
}

impl Events {
    fn new() -> Self {
        Events { seen: Vec::new() }
    }

    /// Waits for an event matching `want` (events before it are kept in `seen`).
    fn wait(&mut self, host: &PluginHost, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; seen: {:#?}",
                self.seen.iter().map(Event::kind).collect::<Vec<_>>()
            );
            if let Some(e) = host.recv_event(Duration::from_millis(100)) {
                self.seen.push(e.event.clone());
                if want(&e.event) {
                    return e.event;
                }
            }
        }
    }

    /// Waits until `count` offers arrived in all; returns them by subject.
    fn offers(&mut self, host: &PluginHost, count: usize) -> BTreeMap<String, Offer> {
        while self.all_offers().len() < count {
            self.wait(host, &format!("{count} offers"), |e| {
                matches!(e, Event::Offer(_))
            });
        }
        let mut by_subject = BTreeMap::new();
        for offer in self.all_offers() {
            let subject = offer.subject.clone().unwrap_or_default();
            assert!(
                by_subject.insert(subject.clone(), offer).is_none(),
                "{subject} offered twice"
            );
        }
        by_subject
    }

    fn all_offers(&self) -> Vec<Offer> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Offer(o) => Some(o.clone()),
                _ => None,
            })
            .collect()
    }

    /// The customer's message of an interaction (the email body).
    fn body(&mut self, host: &PluginHost, interaction: &InteractionId) -> MessageReceived {
        let find = |seen: &[Event]| {
            seen.iter().find_map(|e| match e {
                Event::MessageReceived(m)
                    if &m.interaction == interaction && m.from.role == "customer" =>
                {
                    Some(m.clone())
                }
                _ => None,
            })
        };
        if let Some(m) = find(&self.seen) {
            return m;
        }
        let event = self.wait(host, "the body", |e| {
            matches!(e, Event::MessageReceived(m) if &m.interaction == interaction && m.from.role == "customer")
        });
        find(std::slice::from_ref(&event)).expect("body")
    }

    /// Waits for a system note on `interaction` containing `text`.
    fn note(&mut self, host: &PluginHost, interaction: &InteractionId, text: &str) -> String {
        match self.wait(host, &format!("a note `{text}`"), |e| {
            matches!(e, Event::MessageReceived(m) if &m.interaction == interaction
                && m.from.role == "system" && m.message.text.contains(text))
        }) {
            Event::MessageReceived(m) => m.message.text,
            _ => unreachable!(),
        }
    }
}

fn field(offer: &Offer, key: &str) -> Option<String> {
    offer
        .case_data
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value.clone())
}

fn message(from: &str, subject: &str, id: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n{headers}\r\n{body}"
    )
    .into_bytes()
}

pub(crate) const PDF: &[u8] = b"%PDF-1.4 not really a pdf \x00\x01\x02\xff";

pub(crate) fn html_with_attachment(id: &str) -> Vec<u8> {
    // base64 of PDF, computed by hand once: the test must not trust the code it tests.
    let pdf_b64 = "JVBERi0xLjQgbm90IHJlYWxseSBhIHBkZiAAAQL/";
    format!(
        "From: Carol Customer <carol@example.com>\r\nTo: support@example.com, boss@example.com\r\n\
         Subject: Invoice 4711 is wrong\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p {{color: red}}</style>\
         <script>alert('x')</script></head><body><p>The <b>invoice</b> total is wrong.</p></body></html>\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"invoice 4711.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice 4711.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf_b64}\r\n--b1--\r\n"
    )
    .into_bytes()
}

fn latin1(id: &str) -> Vec<u8> {
    let mut raw = format!(
        "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <customer@example.com>\r\n\
         To: support@example.com\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(b"Preis: 100 \x80, \x93gut\x94, sch\xf6n\r\n");
    raw
}

#[test]
fn incoming_mail_is_offered_with_its_text_attachments_charsets_and_loop_protection() {
    let server = MailServer::start(false);
    server.deliver(
        &["support@example.com"],
        &message(
            "Carl Customer <customer@example.com>",
            "My order",
            "plain-1@example.com",
            "",
            "Where is my order 1234?\r\n.leading dot\r\n",
        ),
    );
    server.deliver(
        &["support@example.com"],
        &html_with_attachment("html-1@example.com"),
    );
    let (install, data, config) = setup(
        &server.plugin_settings("automatic_queue = \"automatic\"\n"),
        ANN,
    );
    let host = PluginHost::start(&config, StartMode::Run);
    assert_eq!(host.running_ids(), vec![EMAIL.to_string()]);
    let mut events = Events::new();
    let offers = events.offers(&host, 2);

    let plain = &offers["My order"];
    assert_eq!(plain.route.name, "email", "the folder's queue");
    assert_eq!(plain.media, plugin_api::Media::Email);
    assert_eq!(plain.contact.display_name.as_deref(), Some("Carl Customer"));
    assert_eq!(
        plain.contact.addresses,
        vec![Address::email("customer@example.com")]
    );
    assert!(
        plain.external_id.contains("UIDVALIDITY=") && plain.external_id.ends_with(";UID=1"),
        "{}",
        plain.external_id
    );
    assert!(plain.actions.iter().any(|a| a.id == "reply-all"));
    assert!(plain.actions.iter().any(|a| a.id == "forward"));
    let body = events.body(&host, &plain.interaction);
    assert!(
        body.message
            .text
            .contains("Where is my order 1234?\n.leading dot"),
        "{body:?}"
    );

    let html = &offers["Invoice 4711 is wrong"];
    let body = events.body(&host, &html.interaction);
    assert!(
        body.message.text.contains("The invoice total is wrong."),
        "{body:?}"
    );
    assert!(
        !body.message.text.contains("alert") && !body.message.text.contains("color"),
        "scripts and styles are not text: {body:?}"
    );
    assert_eq!(body.message.attachments.len(), 1);
    let attachment = &body.message.attachments[0];
    assert_eq!(attachment.name, "invoice 4711.pdf");
    assert_eq!(attachment.content_type, "application/pdf");
    assert_eq!(attachment.size, PDF.len() as u64);
    assert_eq!(
        std::fs::read(data.join(&attachment.path)).expect("stored attachment"),
        PDF,
        "the attachment is a file in the data directory, byte for byte"
    );

    // Mail arriving while the plugin is connected (IDLE wakes it).
    server.deliver(&["support@example.com"], &latin1("latin-1@example.com"));
    server.deliver(
        &["support@example.com"],
        &message(
            "Broken <broken@example.com>",
            "Broken structure",
            "broken-1@example.com",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"MISSING\"\r\n",
            "This part has no boundary at all.\r\n",
        ),
    );
    server.deliver(
        &["support@example.com"],
        &message(
            "Out Of Office <customer@example.com>",
            "Auto: Re: My order",
            "auto-1@example.com",
            "Auto-Submitted: auto-replied\r\n",
            "I am away until Monday.\r\n",
        ),
    );
    server.deliver(
        &["support@example.com"],
        &message(
            "Mail Delivery System <MAILER-DAEMON@example.com>",
            "Undelivered Mail Returned to Sender",
            "bounce-1@example.com",
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n",
            "--r\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n--r--\r\n",
        ),
    );
    let offers = events.offers(&host, 6);

    let latin = &offers["Grüße aus Köln"];
    assert_eq!(latin.contact.display_name.as_deref(), Some("Jürgen Müller"));
    let body = events.body(&host, &latin.interaction);
    assert!(
        body.message.text.contains("Preis: 100 €, “gut”, schön"),
        "{body:?}"
    );

    let broken = &offers["Broken structure"];
    assert!(field(broken, "problem").is_some_and(|p| p.contains("MISSING")));
    let body = events.body(&host, &broken.interaction);
    assert!(body.message.text.contains("could not be read"), "{body:?}");
    assert!(
        body.message
            .text
            .contains("This part has no boundary at all.")
    );
    let raw = &body.message.attachments[0];
    assert_eq!(raw.name, "original.eml");
    let source = std::fs::read(data.join(&raw.path)).expect("raw source");
    assert!(
        String::from_utf8_lossy(&source).contains("boundary=\"MISSING\""),
        "the raw source is kept"
    );

    for subject in ["Auto: Re: My order", "Undelivered Mail Returned to Sender"] {
        let auto = &offers[subject];
        assert_eq!(
            auto.route.name, "automatic",
            "{subject} goes to the automatic queue"
        );
        assert!(field(auto, "automatic").is_some(), "{subject} is flagged");
    }
    assert_eq!(
        field(&offers["Auto: Re: My order"], "automatic").as_deref(),
        Some("Auto-Submitted: auto-replied")
    );
    assert!(
        server.sent().is_empty(),
        "nothing is ever answered automatically"
    );
    assert!(events.seen.iter().any(|e| matches!(e,
        Event::ChannelStatus(s) if s.healthy && s.detail.contains("connected to IMAP"))));
    drop(host);
    drop(install);
}

struct Core {
    service: CoreService,
    plugins: Arc<PluginHost>,
}

fn start_core(install: &Install, config: &AdminConfig) -> Core {
    let plugins = Arc::new(PluginHost::start(config, StartMode::Run));
    let policy = Policy::from_config(config, &["email".to_string()]);
    let service = agentdesk_tests::start_core(&install.data, policy, Some(plugins.clone()));
    Core { service, plugins }
}

fn ready(core: &CoreHandle, agent: &str) -> agentdesk_host::service::AgentSession {
    let session = core.login(agent).expect("login");
    for command in [
        AgentCommand::LogOnChannel {
            channel: "email".into(),
        },
        AgentCommand::SetReady {
            channel: "email".into(),
        },
    ] {
        // Already on and Ready after a restart.
        let _ = session.send(command);
    }
    session
}

/// The agent's interactions by subject once `done` holds (offers accepted as they come).
fn wait_for_subjects(
    core: &CoreHandle,
    agent: &agentdesk_host::service::AgentSession,
    what: &str,
    done: impl Fn(&BTreeMap<String, Vec<(u64, InteractionState)>>) -> bool,
) -> BTreeMap<String, Vec<(u64, InteractionState)>> {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        core.tick().expect("tick");
        let snapshot = agent.snapshot().expect("snapshot");
        let mut by_subject: BTreeMap<String, Vec<(u64, InteractionState)>> = BTreeMap::new();
        for i in &snapshot.interactions {
            if matches!(i.state, InteractionState::Offered { .. }) {
                let _ = agent.send(AgentCommand::Accept { key: i.key });
            }
            by_subject
                .entry(i.subject.clone().unwrap_or_default())
                .or_default()
                .push((i.key, i.state.clone()));
        }
        if done(&by_subject) {
            return by_subject;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            by_subject.keys().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    crate::support::wait_for(WAIT, what, probe)
}

/// A header's value in a raw message (first occurrence, unfolded).
fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n ", " ");
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn replies_reply_all_forwards_and_new_mail_thread_in_the_recipients_mailboxes() {
    let server = MailServer::start(false);
    // The customer's mail client keeps a copy of what they sent in their own mailbox.
    server.deliver(
        &["support@example.com", "customer@example.com"],
        &message(
            "Carl Customer <customer@example.com>",
            "My order",
            "order-1@example.com",
            "",
            "Where is my order 1234?\r\n",
        ),
    );
    server.deliver(
        &["support@example.com"],
        &html_with_attachment("invoice-1@example.com"),
    );
    let (install, _data, config) = setup(&server.plugin_settings(""), &format!("{ANN}{BOB}"));
    let core = start_core(&install, &config);
    let handle = core.service.handle();
    let ann = ready(&handle, "ann");
    let both = wait_for_subjects(&handle, &ann, "two emails", |s| {
        s.len() == 2 && s.values().all(|v| v[0].1 == InteractionState::Active)
    });
    let order = both["My order"][0].0;
    let invoice = both["Invoice 4711 is wrong"][0].0;

    // A reply: threaded, quoted, signed, in the customer's mailbox; a copy in Sent; \Answered.
    handle
        .send_message("ann", order, "Your order ships tomorrow.")
        .expect("reply");
    let (reply, to) = until("the reply at the SMTP server", || {
        server.sent().into_iter().next()
    });
    assert_eq!(to, vec!["customer@example.com"]);
    assert_eq!(
        header(&reply, "In-Reply-To").as_deref(),
        Some("<order-1@example.com>")
    );
    assert_eq!(
        header(&reply, "References").as_deref(),
        Some("<order-1@example.com>")
    );
    assert_eq!(header(&reply, "Subject").as_deref(), Some("Re: My order"));
    assert_eq!(
        header(&reply, "Auto-Submitted").as_deref(),
        Some("no"),
        "written by a person"
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("Your order ships tomorrow."), "{text}");
    assert!(
        text.contains("> Where is my order 1234?"),
        "the original is quoted: {text}"
    );
    // The signature separator "-- " is quoted-printable on the wire.
    assert!(
        text.contains("--=20\r\nExample Support Team"),
        "the signature: {text}"
    );
    let reply_id = header(&reply, "Message-ID").expect("Message-ID");
    let thread = until("the reply in the customer's mailbox, threaded", || {
        let out = server.imap(
            "customer",
            &["SELECT INBOX", "UID THREAD REFERENCES UTF-8 ALL"],
        );
        out[1]
            .iter()
            .find(|l| l.starts_with("* THREAD"))
            .filter(|l| l.contains('2'))
            .cloned()
    });
    assert!(
        thread.contains("(1 2)"),
        "the original and the reply are one thread in the customer's mailbox: {thread}"
    );
    let (flags, sent) = until("the Sent copy and the \\Answered flag", || {
        let out = server.imap(
            "support",
            &[
                "SELECT INBOX",
                "UID FETCH 1 (FLAGS)",
                "SELECT Sent",
                "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
            ],
        );
        let flags = out[1].join(" ");
        let sent = out[3].join(" ");
        (flags.contains("\\Answered") && sent.contains(&reply_id)).then_some((flags, sent))
    });
    assert!(flags.contains("\\Answered") && sent.contains(&reply_id));

    // Reply all: the sender and the other recipient (never the channel's own address).
    handle
        .interact("ann", invoice, Interact::Action("reply-all".into()))
        .expect("reply-all");
    handle
        .send_message("ann", invoice, "We are correcting it.")
        .expect("send");
    let (reply_all, to) = until("the reply-all", || server.sent().into_iter().nth(1));
    assert_eq!(to, vec!["carol@example.com", "boss@example.com"]);
    assert_eq!(
        header(&reply_all, "In-Reply-To").as_deref(),
        Some("<invoice-1@example.com>")
    );
    assert_eq!(
        header(&reply_all, "Subject").as_deref(),
        Some("Re: Invoice 4711 is wrong")
    );

    // Forward: recipients on the first line, the original and its attachment below.
    handle
        .interact("ann", invoice, Interact::Action("forward".into()))
        .expect("forward");
    handle
        .send_message(
            "ann",
            invoice,
            "To: carol@example.com Please check this invoice.",
        )
        .expect("send");
    let (forward, to) = until("the forward", || server.sent().into_iter().nth(2));
    assert_eq!(to, vec!["carol@example.com"]);
    assert_eq!(
        header(&forward, "Subject").as_deref(),
        Some("Fwd: Invoice 4711 is wrong")
    );
    let text = String::from_utf8_lossy(&forward);
    assert!(text.contains("Please check this invoice."));
    assert!(text.contains("Forwarded message"));
    assert!(
        text.contains("invoice 4711.pdf"),
        "the attachment goes along: {text}"
    );
    assert!(text.contains("JVBERi0xLjQgbm90IHJlYWxseSBhIHBkZiAAAQL/"));
    let carol = until("the forward in carol's mailbox", || {
        let out = server.imap(
            "carol",
            &["SELECT INBOX", "UID SEARCH SUBJECT \"Fwd: Invoice\""],
        );
        out[1]
            .iter()
            .find(|l| l.starts_with("* SEARCH ") && l.trim().len() > "* SEARCH".len())
            .cloned()
    });
    assert!(!carol.is_empty());

    // Consultation: Bob reads the email and comments privately; nothing goes to the customer.
    let bob = ready(&handle, "bob");
    ann.send(AgentCommand::Consult {
        key: order,
        colleague: "bob".into(),
    })
    .expect("consult");
    let consultation = until("the consultation offered to Bob", || {
        let s = bob.snapshot().ok()?;
        let i = s
            .interactions
            .iter()
            .find(|i| i.consult_about == Some(order))?;
        if matches!(i.state, InteractionState::Offered { .. }) {
            let _ = bob.send(AgentCommand::Accept { key: i.key });
        }
        (i.state == InteractionState::Active).then_some(i.key)
    });
    until("the email in Bob's consultation", || {
        let Ok(agentdesk_host::service::Answer::LiveLines(lines)) =
            handle.query(agentdesk_host::service::Query::Live {
                agent: "bob".into(),
                key: consultation,
                offset: 0,
                limit: 50,
            })
        else {
            return None;
        };
        lines
            .iter()
            .any(|l| l.line.text.contains("Where is my order 1234?"))
            .then_some(())
    });
    handle
        .send_message("bob", consultation, "Offer a voucher, privately.")
        .expect("comment");
    bob.send(AgentCommand::EndConsultation { consultation })
        .expect("end consultation");

    // Workbin and back: the interaction stays the same email.
    ann.send(AgentCommand::Park {
        key: invoice,
        workbin: "later".into(),
    })
    .expect("park");
    ann.send(AgentCommand::Unpark { key: invoice })
        .expect("unpark");

    // A new email to the contact from the party action.
    ann.send(AgentCommand::StartOutbound {
        channel: "email".into(),
        to: Address::email("customer@example.com"),
        from: Some(order),
    })
    .expect("outbound");
    let outbound = until("the outbound email interaction", || {
        ann.snapshot().ok().and_then(|s| {
            s.interactions
                .iter()
                .find(|i| i.key != order && i.key != invoice && i.channel == "email")
                .map(|i| i.key)
        })
    });
    // The plugin's id for it arrives with its `created` reply, a moment after the interaction
    // appears; a message sent before that is refused by the plugin (unknown id) and sent again.
    let deadline = Instant::now() + WAIT;
    while server.sent().len() < 4 {
        assert!(Instant::now() < deadline, "the new email was never sent");
        handle
            .send_message(
                "ann",
                outbound,
                "Subject: Your delivery\nIt left our warehouse today.",
            )
            .expect("send");
        let wait = Instant::now() + Duration::from_secs(3);
        while server.sent().len() < 4 && Instant::now() < wait {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (new_mail, to) = until("the new email", || server.sent().into_iter().nth(3));
    assert_eq!(to, vec!["customer@example.com"]);
    assert_eq!(
        header(&new_mail, "Subject").as_deref(),
        Some("Your delivery")
    );
    assert_eq!(header(&new_mail, "In-Reply-To"), None);
    assert!(String::from_utf8_lossy(&new_mail).contains("It left our warehouse today."));
    assert_eq!(server.sent().len(), 4, "sent once");
    assert!(
        server
            .sent()
            .iter()
            .all(|(m, _)| !String::from_utf8_lossy(m).contains("voucher")),
        "a colleague's comment in a consultation is never emailed"
    );
    core.service.stop();
    drop(core.plugins);
}

#[test]
fn a_restart_in_the_middle_and_mail_that_arrived_while_down_are_offered_exactly_once() {
    let server = MailServer::start(false);
    let total = 100;
    // A big attachment makes each message take a moment, so the stop lands mid-way.
    let filler = "QUJDRA==\r\n".repeat(8000);
    for n in 1..=total {
        let raw = format!(
            "From: c{n}@example.com\r\nTo: support@example.com\r\nSubject: batch {n}\r\n\
             Message-ID: <batch-{n}@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nmessage {n}\r\n--b\r\n\
             Content-Type: application/octet-stream; name=\"f{n}.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{filler}--b--\r\n"
        );
        server.deliver(&["support@example.com"], raw.as_bytes());
    }
    let (install, data, config) = setup(&server.plugin_settings("fetch_batch = 1\n"), ANN);
    let core = start_core(&install, &config);
    let handle = core.service.handle();
    let ann = ready(&handle, "ann");
    wait_for_subjects(&handle, &ann, "the first of the batch", |s| {
        s.keys().any(|k| k.starts_with("batch "))
    });
    core.service.stop();
    // What the plugin had recorded (and so offered) when the core stopped.
    let log = std::fs::read_to_string(data.join("mails.jsonl")).unwrap_or_default();
    let read_before_stop = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    drop(core.plugins);
    // Mail arrives while the host is down.
    for n in 1..=3 {
        server.deliver(
            &["support@example.com"],
            &message(
                &format!("late{n}@example.com"),
                &format!("while down {n}"),
                &format!("down-{n}@example.com"),
                "",
                "hello\r\n",
            ),
        );
    }

    let core = start_core(&install, &config);
    let handle = core.service.handle();
    let ann = ready(&handle, "ann");
    let all = wait_for_subjects(&handle, &ann, "everything after the restart", |s| {
        (1..=total).all(|n| s.contains_key(&format!("batch {n}")))
            && (1..=3).all(|n| s.contains_key(&format!("while down {n}")))
    });
    for (subject, interactions) in &all {
        assert_eq!(
            interactions.len(),
            1,
            "{subject} offered exactly once: {interactions:?}"
        );
    }
    assert_eq!(all.len(), total + 3, "nothing else: {:?}", all.keys());
    assert!(
        read_before_stop < total as u64 + 3,
        "the restart came before the plugin had read everything ({read_before_stop})"
    );
    core.service.stop();
    drop(core.plugins);
}

#[test]
fn the_server_going_away_and_back_loses_nothing_and_replies_wait_as_drafts_across_a_restart() {
    let mut server = MailServer::start(false);
    server.deliver(
        &["support@example.com"],
        &message(
            "a@example.com",
            "before",
            "before@example.com",
            "",
            "one\r\n",
        ),
    );
    let (install, data, config) = setup(&server.plugin_settings(""), ANN);
    let host = PluginHost::start(&config, StartMode::Run);
    let mut events = Events::new();
    let before = events.offers(&host, 1)["before"].interaction.clone();

    let uidvalidity = server.uidvalidity("support", "INBOX");
    server.stop_dovecot();
    // While it is down the mailbox is rebuilt: new UIDVALIDITY, new UIDs for the same messages.
    std::thread::sleep(Duration::from_millis(1100));
    server.forget_uids("support");
    match events.wait(
        &host,
        "the channel reporting the outage",
        |e| matches!(e, Event::ChannelStatus(s) if !s.healthy),
    ) {
        Event::ChannelStatus(s) => assert!(s.detail.contains("disconnected, retrying"), "{s:?}"),
        _ => unreachable!(),
    }
    // Mail keeps arriving at the mail store while IMAP is down.
    server.drop_into_maildir(
        "support",
        "1764000000.P1Q1.test",
        &message(
            "b@example.com",
            "during",
            "during@example.com",
            "",
            "two\r\n",
        ),
    );
    server.start_dovecot();
    events.wait(
        &host,
        "the channel healthy again",
        |e| matches!(e, Event::ChannelStatus(s) if s.healthy),
    );
    server.deliver(
        &["support@example.com"],
        &message(
            "c@example.com",
            "after",
            "after@example.com",
            "",
            "three\r\n",
        ),
    );
    let offers = events.offers(&host, 3);
    assert_eq!(
        offers.keys().collect::<Vec<_>>(),
        vec!["after", "before", "during"],
        "each once (the rebuilt mailbox's old message is not offered again), none lost"
    );
    assert_ne!(
        server.uidvalidity("support", "INBOX"),
        uidvalidity,
        "the mailbox was rebuilt"
    );

    // The SMTP server is away: the reply is kept as a draft, and sent when it is back.
    server.stop_smtp();
    let reply = Command::SendMessage(SendMessage {
        interaction: before.clone(),
        message: MessageContent {
            id: "r1".into(),
            text: "Got it.".into(),
            attachments: vec![],
        },
        agent: None,
    });
    host.send(EMAIL, &reply).expect("send");
    events.note(&host, &before, "kept as a draft");
    let outbox = data.join("outbox");
    assert_eq!(
        std::fs::read_dir(&outbox).expect("outbox").count(),
        1,
        "the draft is on disk"
    );
    assert!(server.sent().is_empty());
    // The host restarts while the draft waits; the new instance sends it.
    drop(host);
    let host = PluginHost::start(&config, StartMode::Run);
    let mut events = Events::new();
    server.start_smtp();
    events.note(&host, &before, "Sent to a@example.com");
    let (sent, _) = until("the reply", || server.sent().into_iter().next());
    assert!(String::from_utf8_lossy(&sent).contains("Got it."));
    until("the draft removed once filed in Sent", || {
        (std::fs::read_dir(&outbox).ok()?.count() == 0).then_some(())
    });
    assert_eq!(server.sent().len(), 1, "sent once");
    drop(host);
    drop(install);
}

#[test]
fn tls_and_starttls_with_a_ca_made_by_the_test_carry_mail_and_a_stranger_ca_is_refused() {
    let mut server = MailServer::start(true);
    server.deliver(
        &["support@example.com"],
        &message(
            "customer@example.com",
            "secure",
            "tls-1@example.com",
            "",
            "over TLS\r\n",
        ),
    );
    let (install, _data, config) = setup(&server.plugin_settings(""), ANN);
    let host = PluginHost::start(&config, StartMode::Run);
    let mut events = Events::new();
    let offer = events.offers(&host, 1)["secure"].clone();
    let reply = Command::SendMessage(SendMessage {
        interaction: offer.interaction.clone(),
        message: MessageContent {
            id: "r1".into(),
            text: "Answered over TLS.".into(),
            attachments: vec![],
        },
        agent: None,
    });
    host.send(EMAIL, &reply).expect("send");
    let (sent, to) = until("the reply over SMTPS", || server.sent().into_iter().next());
    assert_eq!(to, vec!["customer@example.com"]);
    assert!(String::from_utf8_lossy(&sent).contains("Answered over TLS."));
    until("the Sent copy appended over IMAPS", || {
        // The folder is created by the plugin's first APPEND: until then SELECT would be refused.
        let listed = server.imap("support", &["LIST \"\" \"Sent\""]);
        if !listed[0].iter().any(|l| l.contains("Sent")) {
            return None;
        }
        let out = server.imap("support", &["SELECT Sent"]);
        out[0]
            .iter()
            .any(|l| l.trim_end() == "* 1 EXISTS")
            .then_some(())
    });

    // STARTTLS on the plain IMAP port and on an SMTP server that requires it and a login (the
    // password from the environment): the same message, read and answered by a second
    // installation.
    let (starttls_port, starttls_out) = server.start_starttls_smtp();
    let starttls = server
        .plugin_settings("")
        .replace(
            &format!("imap_port = {}\nimap_security = \"tls\"", server.imaps),
            &format!("imap_port = {}\nimap_security = \"starttls\"", server.imap),
        )
        .replace(
            &format!("smtp_port = {}\nsmtp_security = \"tls\"", server.smtp),
            &format!("smtp_port = {starttls_port}\nsmtp_security = \"starttls\""),
        );
    assert_eq!(starttls.matches("starttls").count(), 2, "{starttls}");
    let (upgraded, _data, config) = setup(&starttls, ANN);
    let second = PluginHost::start(&config, StartMode::Run);
    let mut second_events = Events::new();
    let again = second_events.offers(&second, 1)["secure"].clone();
    let reply = Command::SendMessage(SendMessage {
        interaction: again.interaction.clone(),
        message: MessageContent {
            id: "r2".into(),
            text: "Answered after STARTTLS.".into(),
            attachments: vec![],
        },
        agent: None,
    });
    second.send(EMAIL, &reply).expect("send");
    second_events.note(&second, &again.interaction, "Sent to customer@example.com");
    let (sent, _) = until("the reply over SMTP with STARTTLS", || {
        crate::mailserver::sent_in(&starttls_out).into_iter().next()
    });
    assert!(String::from_utf8_lossy(&sent).contains("Answered after STARTTLS."));
    drop(second);
    drop(upgraded);

    // A CA that did not sign the server's certificate: refused, nothing offered.
    let stranger = crate::mailserver::make_ca(server.dir.path(), "stranger");
    let settings = server.plugin_settings("").replace(
        &server.tls.as_ref().expect("tls").ca.display().to_string(),
        &stranger.ca.display().to_string(),
    );
    let (other, _data, config) = setup(&settings, ANN);
    let refused = PluginHost::start(&config, StartMode::Run);
    let mut events = Events::new();
    match events.wait(
        &refused,
        "a TLS refusal",
        |e| matches!(e, Event::ChannelStatus(s) if !s.healthy && s.detail.contains("TLS")),
    ) {
        Event::ChannelStatus(s) => assert!(s.detail.contains("disconnected, retrying"), "{s:?}"),
        _ => unreachable!(),
    }
    assert!(
        events.all_offers().is_empty(),
        "nothing read from an untrusted server"
    );
    drop(refused);
    drop(host);
    drop((install, other));
}

#[test]
fn with_no_mail_server_the_plugin_starts_and_reports_disconnected_retrying() {
    let port = free_port();
    let (install, _data, config) = setup(&format!("imap_port = {port}\n"), ANN);
    let host = PluginHost::start(&config, StartMode::Run);
    assert_eq!(
        host.running_ids(),
        vec![EMAIL.to_string()],
        "the plugin runs"
    );
    let mut events = Events::new();
    match events.wait(
        &host,
        "the status",
        |e| matches!(e, Event::ChannelStatus(s) if s.detail.contains("refused")),
    ) {
        Event::ChannelStatus(s) => {
            assert!(!s.healthy);
            assert!(s.detail.contains("disconnected, retrying"), "{s:?}");
            assert!(s.detail.contains(&format!("127.0.0.1:{port}")), "{s:?}");
        }
        _ => unreachable!(),
    }
    drop(host);
    drop(install);
}

#[test]
fn without_an_automatic_queue_an_auto_reply_is_filed_not_offered() {
    let server = MailServer::start(false);
    server.deliver(
        &["support@example.com"],
        &message(
            "Vacation <customer@example.com>",
            "Out of office",
            "ooo-1@example.com",
            "Auto-Submitted: auto-replied\r\n",
            "Back on Monday.\r\n",
        ),
    );
    server.deliver(
        &["support@example.com"],
        &message(
            "customer@example.com",
            "Real question",
            "q-1@example.com",
            "",
            "Hi\r\n",
        ),
    );
    let (install, data, config) = setup(&server.plugin_settings("automatic_queue = \"\"\n"), ANN);
    let host = PluginHost::start(&config, StartMode::Run);
    let mut events = Events::new();
    // Read in UID order: once the second message is offered, the first was handled.
    let offers = events.offers(&host, 1);
    assert_eq!(offers.keys().collect::<Vec<_>>(), vec!["Real question"]);
    let log = std::fs::read_to_string(data.join("mails.jsonl")).expect("mail log");
    assert!(
        log.contains("Out of office") && log.contains("Auto-Submitted: auto-replied"),
        "the auto-reply is recorded as filed: {log}"
    );
    drop(host);
    drop(install);
}

#[test]
fn the_desktop_shows_an_email_with_its_attachment_and_replies_to_all_from_its_button() {
    use crate::shell::{click, has_label, ready_desk, settle};
    use eframe::egui;
    use egui_kittest::kittest::Queryable;

    let server = MailServer::start(false);
    server.deliver(
        &["support@example.com"],
        &html_with_attachment("desk-1@example.com"),
    );
    let (install, _data, config) = setup(&server.plugin_settings(""), ANN);
    let core = start_core(&install, &config);
    let policy = Policy::from_config(&config, &["email".to_string()]);
    let mut ann = ready_desk(core.service.handle(), &install, &policy, "email");
    let start = Instant::now();
    while !ann
        .state()
        .snapshot()
        .interactions
        .iter()
        .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    {
        assert!(start.elapsed() < WAIT, "the email was never offered");
        ann.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    ann.key_press(egui::Key::F2);
    ann.step();
    settle(&mut ann, "the sender", |h| {
        has_label(h, "From: carol@example.com")
    });
    settle(&mut ann, "the text of the HTML body", |h| {
        h.query_by_label_contains("The invoice total is wrong.")
            .is_some()
    });
    assert!(has_label(
        &ann,
        "Attachments: invoice 4711.pdf (application/pdf)"
    ));
    click(&mut ann, "Reply all");
    settle(&mut ann, "the reply-all note", |h| {
        h.query_by_label_contains(
            "Reply all: your next message goes to carol@example.com, boss@example.com",
        )
        .is_some()
    });
    ann.get_by_label("Message").focus();
    ann.get_by_label("Message")
        .type_text("Corrected invoice follows.");
    ann.step();
    click(&mut ann, "Send");
    let (reply, to) = until("the reply-all sent from the desktop", || {
        server.sent().into_iter().next()
    });
    assert_eq!(to, vec!["carol@example.com", "boss@example.com"]);
    assert!(String::from_utf8_lossy(&reply).contains("Corrected invoice follows."));
    assert_eq!(
        header(&reply, "In-Reply-To").as_deref(),
        Some("<desk-1@example.com>")
    );
    drop(ann);
    core.service.stop();
    drop(core.plugins);
}

#[test]
fn a_reused_message_id_is_offered_a_second_delivery_is_not_and_a_mail_without_from_is_readable() {
    let server = MailServer::start(false);
    let first = message(
        "a@example.com",
        "first",
        "reused@example.com",
        "",
        "the first text\r\n",
    );
    for mail in [
        first.clone(),
        // Delivered again: the same message, not offered twice.
        first,
        // Another message reusing the Message-ID (a broken client): offered.
        message(
            "b@example.com",
            "second",
            "reused@example.com",
            "",
            "another text\r\n",
        ),
        // No From and no Message-ID, otherwise well formed: offered, sender unknown.
        b"To: support@example.com\r\nSubject: anonymous\r\n\
          Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nwho am I?\r\n"
            .to_vec(),
    ] {
        server.deliver(&["support@example.com"], &mail);
    }
    let (_install, _data, config) = setup(&server.plugin_settings(""), ANN);
    let host = PluginHost::start(&config, StartMode::Run);
    let mut events = Events::new();
    let offers = events.offers(&host, 3);
    assert_eq!(
        offers.keys().collect::<Vec<_>>(),
        vec!["anonymous", "first", "second"]
    );
    let anonymous = &offers["anonymous"];
    assert_eq!(field(anonymous, "from").as_deref(), Some("unknown"));
    assert_eq!(field(anonymous, "problem"), None, "not flagged unreadable");
    let body = events.body(&host, &anonymous.interaction);
    assert_eq!(body.message.text, "who am I?");
    assert_eq!(body.from.display_name, "unknown");
    let second = events.body(&host, &offers["second"].interaction);
    assert_eq!(second.message.text, "another text");
    // Nothing more arrives: the second delivery of `first` stays unoffered.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(e) = host.recv_event(Duration::from_millis(100)) {
            events.seen.push(e.event);
        }
    }
    assert_eq!(events.all_offers().len(), 3, "{:#?}", events.all_offers());
}
