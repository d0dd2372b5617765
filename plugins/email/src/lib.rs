//! The email channel: mailboxes watched over IMAP become email interactions the core routes;
//! agents reply, reply to all and forward over SMTP. This module is the plugin glue: commands,
//! drafts, the context the tasks share, the channel status.
//!
//! Modules: `settings` (the admin's section), `net` (TCP/TLS), `imap` and `smtp` (the two
//! protocols), `inbound` (reading a message), `outbound` (writing one), `intake` (the folder
//! watchers), `sending` (the outbox), `store` (what survives a restart). Exactly-once: every message has a stable interaction id and external id derived from
//! its folder, UIDVALIDITY and UID; it is recorded before it is offered and the folder's watermark
//! moves after, so a restart re-offers at most what the core then drops as a repeat.

pub mod imap;
pub mod inbound;
pub mod intake;
pub mod net;
pub mod outbound;
pub mod sending;
pub mod settings;
pub mod smtp;
pub mod store;

use plugin_api::runtime::PluginRuntime;
use plugin_api::{
    ChannelKind, ChannelPlugin, ChannelStatus, Command, Created, ErrorCode, Event, Host, HostHello,
    InteractionId, Media, MessageContent, MessageReceived, Party, PluginConfig, PluginDescriptor,
    PluginError, PluginHello, Reply, unsupported,
};
use settings::{Security, Settings};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Draft, Mail, Mode, Store};
use tokio::sync::{mpsc, watch};

/// The plugin id.
pub const ID: &str = "agentdesk.email";
/// The channel kind.
pub const CHANNEL: &str = ChannelKind::EMAIL;
/// The health of a connection not yet tried.
const CONNECTING: &str = "connecting";
/// Where attachments are stored, under the data directory.
pub const ATTACHMENTS: &str = "attachments";

/// The plugin instance.
pub struct Email {
    host: Host,
    settings: Settings,
    data_dir: PathBuf,
    running: Option<Running>,
    consultations: u64,
}

struct Running {
    runtime: PluginRuntime,
    ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
}

/// What the tasks share.
pub(crate) struct Ctx {
    host: Host,
    settings: Settings,
    password: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    store: Store,
    data_dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    wake_outbox: mpsc::UnboundedSender<()>,
    // Per connection ("imap INBOX", "smtp"): `None` when fine, else the error.
    health: Mutex<(BTreeMap<String, Option<String>>, String)>,
}

impl Ctx {
    fn emit(&self, event: impl Into<Event>) {
        let _ = self.events.send(event.into());
    }

    /// Notes a connection's health and reports the channel's when it changed.
    fn health(&self, what: &str, problem: Option<String>) {
        let mut guard = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let (by_what, last) = &mut *guard;
        by_what.insert(what.to_string(), problem);
        let problems: Vec<String> = by_what
            .iter()
            .filter_map(|(w, p)| p.as_ref().map(|p| format!("{w}: {p}")))
            .collect();
        let s = &self.settings;
        let connecting = by_what.values().all(|p| p.as_deref() == Some(CONNECTING));
        let (healthy, detail) = if connecting {
            (
                false,
                format!("connecting to IMAP {}:{}", s.imap_host, s.imap_port),
            )
        } else if problems.is_empty() {
            let folders: Vec<&str> = s.folders.iter().map(|f| f.name.as_str()).collect();
            (
                true,
                format!(
                    "connected to IMAP {}:{} ({})",
                    s.imap_host,
                    s.imap_port,
                    folders.join(", ")
                ),
            )
        } else {
            (
                false,
                format!("disconnected, retrying: {}", problems.join("; ")),
            )
        };
        if detail != *last {
            *last = detail.clone();
            if healthy {
                self.host.info(&detail);
            } else {
                self.host.warn(&detail);
            }
            self.emit(ChannelStatus { healthy, detail });
        }
    }

    fn system_note(&self, interaction: &str, text: String) {
        self.emit(MessageReceived {
            interaction: InteractionId::new(interaction),
            from: Party {
                id: "system".into(),
                role: Party::SYSTEM.into(),
                display_name: "Email".into(),
                address: None,
            },
            message: MessageContent {
                id: format!("{interaction}-note-{}", random_hex(6)),
                text,
                attachments: vec![],
            },
        });
    }
}

/// Random lowercase hex of `bytes` bytes (for Message-IDs and ids of new messages).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{nanos:x}");
    }
    hex::encode(buf)
}

/// Emits events in order; when the host's queue is full, waits a little and tries again.
async fn deliver(host: Host, mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        loop {
            match host.emit(event.clone()) {
                Ok(()) => break,
                Err(e) if e.code == ErrorCode::QUEUE_FULL => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    host.warn(&format!("event {} not delivered: {e}", event.kind()));
                    break;
                }
            }
        }
    }
}

/// Splits `Subject: …` off the first line of the agent's text, if it is there.
fn subject_line(text: &str) -> (Option<String>, String) {
    let mut lines = text.splitn(2, '\n');
    let first = lines.next().unwrap_or_default();
    match first.strip_prefix("Subject:") {
        Some(subject) => (
            Some(subject.trim().to_string()),
            lines.next().unwrap_or_default().to_string(),
        ),
        None => (None, text.to_string()),
    }
}

impl Email {
    fn ctx(&self) -> Result<&Arc<Ctx>, PluginError> {
        self.running
            .as_ref()
            .map(|r| &r.ctx)
            .ok_or_else(|| PluginError::new(ErrorCode::STATE, "the email channel is not running"))
    }

    fn mail(&self, id: &InteractionId) -> Result<Mail, PluginError> {
        self.ctx()?.store.get(id.as_str()).ok_or_else(|| {
            PluginError::new(ErrorCode::NOT_FOUND, format!("no email interaction `{id}`"))
        })
    }

    fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut Mail),
    ) -> Result<Option<Mail>, PluginError> {
        self.ctx()?
            .store
            .update(id, change)
            .map_err(|e| PluginError::failed(format!("cannot save email `{id}`: {e}")))
    }

    /// Notes that the core has the interaction (it sent a command about it).
    fn confirm(&self, id: &InteractionId) -> Result<Reply, PluginError> {
        let base = id.as_str().split('~').next().unwrap_or_default();
        self.update(base, Mail::confirm)?;
        Ok(Reply::done())
    }

    fn is_own(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.settings.address)
    }

    /// The message the agent's `text` makes of `mail`, per its mode.
    fn draft(&self, mail: &Mail, text: &str) -> Result<Draft, PluginError> {
        let s = &self.settings;
        let (subject_override, text) = subject_line(text);
        let who = match (&mail.from_name, &mail.from) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (None, Some(address)) => address.clone(),
            _ => "(unknown sender)".into(),
        };
        let mut references = mail.references.clone();
        references.extend(mail.message_id.iter().cloned());
        let mut out = outbound::Outgoing {
            from_name: s.display_name.clone(),
            from: s.address.clone(),
            message_id: format!(
                "{}@{}",
                random_hex(12),
                s.address.rsplit('@').next().unwrap_or("localhost")
            ),
            ..outbound::Outgoing::default()
        };
        match mail.mode {
            Mode::Reply | Mode::ReplyAll => {
                let sender = mail.from.clone().ok_or_else(|| {
                    PluginError::invalid("the message has no sender address to reply to")
                })?;
                out.to = vec![sender.clone()];
                if mail.mode == Mode::ReplyAll {
                    for a in &mail.to {
                        if !self.is_own(a) && !out.to.iter().any(|t| t.eq_ignore_ascii_case(a)) {
                            out.to.push(a.clone());
                        }
                    }
                    out.cc = mail
                        .cc
                        .iter()
                        .filter(|a| {
                            !self.is_own(a) && !out.to.iter().any(|t| t.eq_ignore_ascii_case(a))
                        })
                        .cloned()
                        .collect();
                }
                out.subject = outbound::reply_subject(&mail.subject);
                out.in_reply_to = mail.message_id.clone();
                out.references = references;
                let quote = outbound::quoted(&who, mail.date.as_deref(), &mail.text);
                out.text = outbound::body(&text, Some(&quote), &s.signature);
            }
            Mode::Forward => {
                let (to, note) = outbound::leading_recipients(&text);
                out.to = to;
                if out.to.is_empty() {
                    return Err(PluginError::invalid(
                        "forward: start your text with the recipients' addresses",
                    ));
                }
                let note = note.as_str();
                out.subject = outbound::forward_subject(&mail.subject);
                let original = outbound::forwarded(
                    &who,
                    mail.date.as_deref(),
                    &mail.subject,
                    &mail.to,
                    &mail.text,
                );
                out.text = outbound::body(note, Some(&original), &s.signature);
                for a in &mail.attachments {
                    let bytes = std::fs::read(self.data_dir.join(&a.path)).map_err(|e| {
                        PluginError::failed(format!("attachment {} is unreadable: {e}", a.name))
                    })?;
                    out.attachments
                        .push((a.name.clone(), a.content_type.clone(), bytes));
                }
            }
            Mode::New => {
                out.to = mail.to.clone();
                out.subject = if mail.subject.is_empty() {
                    format!("Message from {}", s.display_name)
                } else {
                    mail.subject.clone()
                };
                out.in_reply_to = mail.message_id.clone();
                out.references = references;
                out.text = outbound::body(&text, None, &s.signature);
            }
        }
        if let Some(subject) = subject_override {
            out.subject = subject;
        }
        let mut recipients = out.to.clone();
        recipients.extend(out.cc.iter().cloned());
        let data = outbound::build(&out)
            .map_err(|e| PluginError::failed(format!("cannot build the message: {e}")))?;
        Ok(Draft {
            id: format!(
                "{}-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default(),
                random_hex(4)
            ),
            interaction: mail.id.clone(),
            from: s.address.clone(),
            to: recipients,
            data: String::from_utf8_lossy(&data).into_owned(),
            sent: false,
        })
    }

    /// Keeps a draft of the agent's text and wakes the sender.
    fn send(&self, id: &InteractionId, text: &str) -> Result<Reply, PluginError> {
        if id.as_str().contains("~consult-") {
            // A colleague's private comment in a consultation: never sent to the customer.
            return Ok(Reply::done());
        }
        let mail = self.mail(id)?;
        let ctx = self.ctx()?;
        let draft = match self.draft(&mail, text) {
            Ok(draft) => draft,
            Err(e) => {
                ctx.system_note(id.as_str(), format!("Not sent: {}", e.message));
                return Err(e);
            }
        };
        ctx.store
            .save_draft(&draft)
            .map_err(|e| PluginError::failed(format!("cannot keep the draft: {e}")))?;
        let mail_id = mail.id.clone();
        let message_id = draft
            .data
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .map(|m| m.trim().trim_matches(['<', '>']).to_string());
        self.update(&mail_id, |m| {
            m.confirm();
            if m.mode == Mode::New {
                // Later messages of a new thread answer the previous one.
                if let Some(sent) = &message_id {
                    m.references.extend(m.message_id.take());
                    m.message_id = Some(sent.clone());
                }
            } else {
                m.mode = Mode::Reply;
            }
        })?;
        let _ = ctx.wake_outbox.send(());
        Ok(Reply::done())
    }

    fn invoke(&self, id: Option<InteractionId>, action: &str) -> Result<Reply, PluginError> {
        let id = id.ok_or_else(|| PluginError::invalid("email actions need an interaction"))?;
        let mail = self.mail(&id)?;
        let (mode, note) = match action {
            "reply" => (
                Mode::Reply,
                format!(
                    "Reply: your next message goes to {}, with the original quoted.",
                    mail.from.clone().unwrap_or_default()
                ),
            ),
            "reply-all" => {
                let mut all: Vec<String> = mail.from.iter().cloned().collect();
                all.extend(
                    mail.to
                        .iter()
                        .chain(&mail.cc)
                        .filter(|a| !self.is_own(a))
                        .cloned(),
                );
                all.dedup();
                (
                    Mode::ReplyAll,
                    format!(
                        "Reply all: your next message goes to {}, with the original quoted.",
                        all.join(", ")
                    ),
                )
            }
            "forward" => (
                Mode::Forward,
                "Forward: start your next message with the recipients' addresses, then your \
                 note; the original and its attachments go below it."
                    .to_string(),
            ),
            other => {
                return Err(PluginError::invalid(format!(
                    "unknown email action `{other}`"
                )));
            }
        };
        self.update(id.as_str(), |m| {
            m.mode = mode;
            m.confirm();
        })?;
        self.ctx()?.system_note(id.as_str(), note);
        Ok(Reply::done())
    }

    /// Gives the consulted colleague the email to read (the customer takes no part: their
    /// comments are never sent). The copy may reach the host before the `created` reply that
    /// tells the core the consultation's id; the host holds it until then.
    fn show_to_colleague(
        &self,
        about: &InteractionId,
        consultation: &InteractionId,
    ) -> Result<(), PluginError> {
        let mail = self.mail(about)?;
        let running = self.running.as_ref().ok_or_else(|| {
            PluginError::new(ErrorCode::STATE, "the email channel is not running")
        })?;
        let who = match (&mail.from_name, &mail.from) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (_, Some(address)) => address.clone(),
            _ => "(unknown sender)".into(),
        };
        let copy = MessageReceived {
            interaction: consultation.clone(),
            from: Party {
                id: "customer".into(),
                role: Party::CUSTOMER.into(),
                display_name: who.clone(),
                address: mail.from.clone().map(plugin_api::Address::email),
            },
            message: MessageContent {
                id: format!("{consultation}-email"),
                text: format!(
                    "[The email you are consulted about; your comments stay private.]\n\
                     From: {who}\nSubject: {}\n\n{}",
                    mail.subject, mail.text
                ),
                attachments: mail.attachments.clone(),
            },
        };
        running.ctx.emit(copy);
        Ok(())
    }

    fn compose(&self, compose: plugin_api::Compose) -> Result<Reply, PluginError> {
        let to: Vec<String> = compose
            .to
            .iter()
            .filter(|a| a.kind == plugin_api::Address::EMAIL)
            .map(|a| a.value.clone())
            .collect();
        if to.is_empty() {
            return Err(PluginError::invalid(
                "compose: no email address to write to",
            ));
        }
        let id = format!("out-{}", random_hex(8));
        let mail = Mail {
            id: id.clone(),
            subject: compose.subject.clone(),
            to,
            mode: Mode::New,
            confirmed: true,
            ..Mail::default()
        };
        self.ctx()?
            .store
            .put(&[mail])
            .map_err(|e| PluginError::failed(format!("cannot save email `{id}`: {e}")))?;
        let interaction = InteractionId::new(id);
        if !compose.body.trim().is_empty() {
            self.send(&interaction, &compose.body)?;
        }
        Ok(Reply::Created(Created { interaction }))
    }
}

impl ChannelPlugin for Email {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: ID.into(),
            name: "Email".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(CHANNEL)],
            description: "Mailboxes watched over IMAP; replies, reply-all and forwards over SMTP."
                .into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings
            .validate()
            .map_err(|e| PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}")))?;
        let data_dir = host.data_dir();
        Ok(Email {
            host,
            settings,
            data_dir,
            running: None,
            consultations: 0,
        })
    }

    fn start(&mut self, _hello: &HostHello) -> Result<PluginHello, PluginError> {
        let s = &self.settings;
        let tls = if s.imap_security != Security::None || s.smtp_security != Security::None {
            Some(net::tls_config(s.ca_file.as_deref()).map_err(|e| {
                PluginError::new(ErrorCode::CONFIG, format!("settings of `{ID}`: {e}"))
            })?)
        } else {
            None
        };
        let store = Store::open(&self.data_dir)
            .map_err(|e| PluginError::failed(format!("cannot read the email store: {e}")))?;
        let runtime = PluginRuntime::new(ID, s.worker_threads)?;
        let handle = runtime
            .handle()
            .ok_or_else(|| PluginError::failed("the runtime is gone"))?;
        let (events, outgoing) = mpsc::unbounded_channel();
        let (wake_outbox, woken) = mpsc::unbounded_channel();
        let ctx = Arc::new(Ctx {
            host: self.host.clone(),
            settings: s.clone(),
            password: s.password(),
            tls,
            store,
            data_dir: self.data_dir.clone(),
            events,
            wake_outbox,
            health: Mutex::new((BTreeMap::new(), String::new())),
        });
        // Offers the core may not have received before the last stop: sent again (the core
        // drops a repeat by external id).
        let unconfirmed = ctx.store.unconfirmed();
        let resent = unconfirmed.len();
        for mail in unconfirmed {
            if let (Some(offer), Some(body)) = (mail.offer, mail.body) {
                ctx.emit(offer);
                ctx.emit(body);
            }
        }
        let (stop, stopped) = watch::channel(false);
        handle.spawn(deliver(self.host.clone(), outgoing));
        for folder in &s.folders {
            ctx.health(
                &format!("IMAP {}", folder.name),
                Some(CONNECTING.to_string()),
            );
            handle.spawn(intake::watch_folder(
                ctx.clone(),
                folder.clone(),
                stopped.clone(),
            ));
        }
        handle.spawn(sending::outbox(ctx.clone(), woken, stopped));
        self.host.info(&format!(
            "email channel watching {} folder(s) of {}@{}:{} ({resent} unconfirmed offers sent again)",
            s.folders.len(),
            s.account,
            s.imap_host,
            s.imap_port
        ));
        self.running = Some(Running { runtime, ctx, stop });
        Ok(PluginHello {
            commands: [
                "accept",
                "reject",
                "end",
                "send-message",
                "compose",
                "transfer",
                "consult",
                "mark-done",
                "put-in-workbin",
                "invoke-action",
            ]
            .map(String::from)
            .to_vec(),
            events: [
                "offer",
                "message-received",
                "actions-changed",
                "channel-status",
            ]
            .map(String::from)
            .to_vec(),
            media: vec![Media::Email],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        match command {
            Command::Accept(plugin_api::Accept { interaction, .. })
            | Command::Reject(plugin_api::Reject { interaction, .. })
            | Command::End(plugin_api::End { interaction })
            | Command::Transfer(plugin_api::Transfer { interaction, .. })
            | Command::MarkDone(plugin_api::MarkDone { interaction, .. })
            | Command::PutInWorkbin(plugin_api::PutInWorkbin { interaction, .. }) => {
                // The message stays in its folder; the core keeps track of whose it is.
                self.confirm(&interaction)
            }
            Command::Consult(consult) => {
                self.confirm(&consult.interaction)?;
                self.consultations += 1;
                // Unique across restarts too: the counter alone starts again at 1.
                let id = InteractionId::new(format!(
                    "{}~consult-{}-{}",
                    consult.interaction,
                    self.consultations,
                    random_hex(3)
                ));
                self.show_to_colleague(&consult.interaction, &id)?;
                Ok(Reply::Created(Created { interaction: id }))
            }
            Command::SendMessage(send) => self.send(&send.interaction, &send.message.text),
            Command::InvokeAction(invoke) => self.invoke(invoke.interaction, &invoke.action),
            Command::Compose(compose) => self.compose(compose),
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        let _ = running.stop.send(true);
        drop(running.ctx);
        running.runtime.shutdown(Duration::from_millis(500));
        self.host.info("email channel stopped");
        Ok(())
    }
}

plugin_api::export_plugin!(Email);
