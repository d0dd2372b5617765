//! The email channel: mailboxes watched over IMAP become email interactions the core routes;
//! agents reply, reply to all and forward over SMTP. This module is the plugin glue and its tasks.
//!
//! Modules: `settings` (the admin's section), `net` (TCP/TLS), `imap` and `smtp` (the two
//! protocols), `inbound` (reading a message), `outbound` (writing one), `store` (what survives a
//! restart). Exactly-once: every message has a stable interaction id and external id derived from
//! its folder, UIDVALIDITY and UID; it is recorded before it is offered and the folder's watermark
//! moves after, so a restart re-offers at most what the core then drops as a repeat.

pub mod imap;
pub mod inbound;
pub mod net;
pub mod outbound;
pub mod settings;
pub mod smtp;
pub mod store;

use plugin_api::runtime::PluginRuntime;
use plugin_api::{
    ActionsChanged, AttachmentRef, CaseField, ChannelKind, ChannelPlugin, ChannelStatus, Command,
    Contact, Created, CustomAction, ErrorCode, Event, Host, HostHello, InteractionId, Media,
    MessageContent, MessageReceived, Offer, Party, PluginConfig, PluginDescriptor, PluginError,
    PluginHello, Reply, Route, unsupported,
};
use settings::{Folder, Security, Settings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Draft, Mail, Mode, Store, Watermark};
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
struct Ctx {
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
fn random_hex(bytes: usize) -> String {
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

/// A short stable tag of a folder name (interaction ids stay short and file-name safe).
fn folder_tag(folder: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(folder.as_bytes())[..4])
}

/// The interaction id of a message.
pub fn interaction_id(folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!("em-{}-{uidvalidity}-{uid}", folder_tag(folder))
}

/// The external id of a message (the core de-duplicates offers by it).
pub fn external_id(settings: &Settings, folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!(
        "imap://{}@{}:{}/{folder};UIDVALIDITY={uidvalidity}/;UID={uid}",
        settings.account, settings.imap_host, settings.imap_port
    )
}

/// A file name safe to create: no separators, no control characters, no leading dot.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    let short: String = trimmed.chars().take(120).collect();
    if short.is_empty() {
        "attachment".into()
    } else {
        short
    }
}

fn save_attachments(
    data_dir: &Path,
    id: &str,
    parts: &[inbound::Part],
) -> std::io::Result<Vec<AttachmentRef>> {
    let mut out = Vec::new();
    if parts.is_empty() {
        return Ok(out);
    }
    let dir = Path::new(ATTACHMENTS).join(id);
    std::fs::create_dir_all(data_dir.join(&dir))?;
    for (n, part) in parts.iter().enumerate() {
        let name = safe_name(&part.name);
        let file = if out.iter().any(|a: &AttachmentRef| a.name == name) {
            format!("{n}-{name}")
        } else {
            name.clone()
        };
        let path = dir.join(&file);
        std::fs::write(data_dir.join(&path), &part.bytes)?;
        out.push(AttachmentRef {
            name,
            path: path.to_string_lossy().into_owned(),
            content_type: part.content_type.clone(),
            size: part.bytes.len() as u64,
        });
    }
    Ok(out)
}

/// The custom actions of an email interaction.
fn actions() -> Vec<CustomAction> {
    vec![
        CustomAction {
            id: "reply-all".into(),
            label: "Reply all".into(),
            enabled: true,
        },
        CustomAction {
            id: "forward".into(),
            label: "Forward".into(),
            enabled: true,
        },
    ]
}

fn field(key: &str, label: &str, value: impl Into<String>) -> CaseField {
    CaseField {
        key: key.into(),
        label: Some(label.into()),
        value: value.into(),
    }
}

/// Reads, stores and offers fetched messages; records them before offering them.
fn ingest(
    ctx: &Ctx,
    folder: &Folder,
    uidvalidity: u32,
    fetched: Vec<(u32, Vec<u8>)>,
) -> std::io::Result<usize> {
    let mut mails = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    for (uid, raw) in fetched {
        let id = interaction_id(&folder.name, uidvalidity, uid);
        if ctx.store.contains(&id) {
            continue;
        }
        let read = inbound::read(&raw);
        let attachments = save_attachments(&ctx.data_dir, &id, &read.attachments)?;
        let sender = read.from.clone().unwrap_or_default();
        let who = read.from_name.clone().unwrap_or_else(|| sender.clone());
        let mut case_data = vec![field("from", "From", sender.clone())];
        if !read.to.is_empty() {
            case_data.push(field("to", "To", read.to.join(", ")));
        }
        if !read.cc.is_empty() {
            case_data.push(field("cc", "Cc", read.cc.join(", ")));
        }
        if let Some(date) = &read.date {
            case_data.push(field("date", "Date", date.clone()));
        }
        case_data.push(field("folder", "Folder", folder.name.clone()));
        let mut notes = Vec::new();
        if let Some(why) = &read.automatic {
            case_data.push(field("automatic", "Automatic message", why.clone()));
            notes.push(format!(
                "[Automatic message ({why}): recognised by loop protection, never answered \
                 automatically.]"
            ));
        }
        if let Some(problem) = &read.problem {
            case_data.push(field("problem", "Problem", problem.clone()));
        }
        let route = match &read.automatic {
            Some(_) => Route::queue(ctx.settings.automatic_queue.clone()),
            None => Route::queue(folder.queue.clone()),
        };
        let filed = read.automatic.is_some() && ctx.settings.automatic_queue.is_empty();
        let text = if notes.is_empty() {
            read.text.clone()
        } else {
            format!("{}\n\n{}", notes.join("\n"), read.text)
        };
        let offer = Offer {
            interaction: InteractionId::new(id.clone()),
            external_id: external_id(&ctx.settings, &folder.name, uidvalidity, uid),
            channel: ChannelKind::new(CHANNEL),
            media: Media::Email,
            route,
            contact: Contact {
                display_name: read.from_name.clone(),
                addresses: read
                    .from
                    .iter()
                    .map(|a| plugin_api::Address::email(a.clone()))
                    .collect(),
            },
            subject: Some(if read.subject.is_empty() {
                "(no subject)".into()
            } else {
                read.subject.clone()
            }),
            case_data,
            actions: actions(),
            priority: 0,
        };
        let body = MessageReceived {
            interaction: InteractionId::new(id.clone()),
            from: Party {
                id: "customer".into(),
                role: Party::CUSTOMER.into(),
                display_name: who,
                address: read
                    .from
                    .as_ref()
                    .map(|a| plugin_api::Address::email(a.clone())),
            },
            message: MessageContent {
                id: format!("{id}-body"),
                text,
                attachments: attachments.clone(),
            },
        };
        let mail = Mail {
            id: id.clone(),
            folder: folder.name.clone(),
            uidvalidity,
            uid,
            subject: read.subject,
            from_name: read.from_name,
            from: read.from,
            to: read.to,
            cc: read.cc,
            message_id: read.message_id,
            references: read.references,
            date: read.date,
            text: read.text,
            attachments,
            automatic: read.automatic,
            mode: Mode::Reply,
            confirmed: filed,
            offer: (!filed).then(|| offer.clone()),
            body: (!filed).then(|| body.clone()),
        };
        if filed {
            ctx.host.info(&format!(
                "filed automatic message {id} from {sender} (no automatic_queue configured)"
            ));
        } else {
            events.push(offer.into());
            events.push(
                ActionsChanged {
                    interaction: InteractionId::new(id),
                    actions: actions(),
                }
                .into(),
            );
            events.push(body.into());
        }
        mails.push(mail);
    }
    ctx.store.put(&mails)?;
    for event in events {
        ctx.emit(event);
    }
    Ok(mails.len())
}

/// One IMAP session on one folder: fetches what is new, then waits (IDLE or polling).
async fn watch_session(
    ctx: &Arc<Ctx>,
    folder: &Folder,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), net::NetError> {
    let mut imap = imap::Imap::open(&ctx.settings, ctx.tls.as_ref(), &ctx.password).await?;
    let selected = imap.select(&folder.name).await?;
    ctx.health(&format!("IMAP {}", folder.name), None);
    let mut mark = ctx.store.watermark(&folder.name);
    if mark.uidvalidity != selected.uidvalidity {
        if mark.uidvalidity != 0 {
            ctx.host.warn(&format!(
                "folder {} has a new UIDVALIDITY ({} was {}): its messages are read again",
                folder.name, selected.uidvalidity, mark.uidvalidity
            ));
        }
        mark = Watermark {
            uidvalidity: selected.uidvalidity,
            last_uid: 0,
        };
    }
    loop {
        let uids = imap.uids_after(mark.last_uid).await?;
        for chunk in uids.chunks(ctx.settings.fetch_batch) {
            if *stop.borrow() {
                return Ok(());
            }
            let fetched = imap.fetch(chunk).await?;
            if fetched.len() < chunk.len() {
                // Expunged between SEARCH and FETCH, or a body the server did not send as a
                // literal: named in the log, never silently skipped.
                let missing: Vec<String> = chunk
                    .iter()
                    .filter(|uid| !fetched.iter().any(|(f, _)| f == *uid))
                    .map(u32::to_string)
                    .collect();
                ctx.host.warn(&format!(
                    "folder {}: no message came back for UID {}",
                    folder.name,
                    missing.join(", ")
                ));
            }
            let highest = fetched.iter().map(|(uid, _)| *uid).max().unwrap_or(0);
            let (task_ctx, task_folder) = (ctx.clone(), folder.clone());
            let uidvalidity = mark.uidvalidity;
            tokio::task::spawn_blocking(move || {
                ingest(&task_ctx, &task_folder, uidvalidity, fetched)
            })
            .await
            .map_err(|e| net::NetError::Io(std::io::Error::other(e.to_string())))??;
            mark.last_uid = mark.last_uid.max(highest);
            ctx.store.set_watermark(&folder.name, mark)?;
        }
        if ctx.settings.idle && imap.idle {
            if imap.idle(ctx.settings.poll_interval(), stop).await? == imap::Woken::Stopping {
                imap.logout().await;
                return Ok(());
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(ctx.settings.poll_interval()) => {}
                _ = stop.changed() => {
                    imap.logout().await;
                    return Ok(());
                }
            }
            imap.noop().await?;
        }
    }
}

/// Watches one folder for as long as the plugin runs, reconnecting after failures.
async fn watch_folder(ctx: Arc<Ctx>, folder: Folder, mut stop: watch::Receiver<bool>) {
    loop {
        let result = watch_session(&ctx, &folder, &mut stop).await;
        if *stop.borrow() {
            return;
        }
        let problem = match result {
            Ok(()) => "the session ended".to_string(),
            Err(e) => format!("{}:{}: {e}", ctx.settings.imap_host, ctx.settings.imap_port),
        };
        ctx.health(&format!("IMAP {}", folder.name), Some(problem));
        tokio::select! {
            _ = tokio::time::sleep(ctx.settings.reconnect()) => {}
            _ = stop.changed() => return,
        }
    }
}

/// After the SMTP server took a draft: the copy in Sent, and `\Answered` on the original.
async fn file_sent(ctx: &Ctx, draft: &Draft) -> Result<(), net::NetError> {
    let mut imap = imap::Imap::open(&ctx.settings, ctx.tls.as_ref(), &ctx.password).await?;
    let sent = &ctx.settings.sent_folder;
    imap.ensure_folder(sent).await?;
    imap.append(sent, "\\Seen", draft.data.as_bytes()).await?;
    if let Some(mail) = ctx.store.get(&draft.interaction)
        && mail.uid != 0
    {
        let selected = imap.select(&mail.folder).await?;
        if selected.uidvalidity == mail.uidvalidity {
            imap.mark_answered(mail.uid).await?;
        }
    }
    imap.logout().await;
    Ok(())
}

/// Sends the drafts, oldest first, until the servers fail; then waits and tries again.
async fn outbox(
    ctx: Arc<Ctx>,
    mut wake: mpsc::UnboundedReceiver<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut told: std::collections::HashSet<String> = Default::default();
    loop {
        let drafts = match ctx.store.drafts() {
            Ok(drafts) => drafts,
            Err(e) => {
                ctx.host.error(&format!("cannot read the outbox: {e}"));
                Vec::new()
            }
        };
        for mut draft in drafts {
            if *stop.borrow() {
                return;
            }
            if !draft.sent {
                let envelope = smtp::Envelope {
                    from: &draft.from,
                    to: &draft.to,
                    data: draft.data.as_bytes(),
                };
                match smtp::send(&ctx.settings, ctx.tls.as_ref(), &ctx.password, envelope).await {
                    Ok(()) => {
                        draft.sent = true;
                        if let Err(e) = ctx.store.save_draft(&draft) {
                            ctx.host.error(&format!("draft {}: {e}", draft.id));
                        }
                        ctx.health("SMTP", None);
                        ctx.system_note(
                            &draft.interaction,
                            format!("Sent to {}.", draft.to.join(", ")),
                        );
                    }
                    Err(e) => {
                        let s = &ctx.settings;
                        ctx.health(
                            "SMTP",
                            Some(format!("{}:{}: {e}", s.smtp_host, s.smtp_port)),
                        );
                        if told.insert(draft.id.clone()) {
                            ctx.system_note(
                                &draft.interaction,
                                format!("Not sent yet ({e}); kept as a draft and sent when the server answers."),
                            );
                        }
                        break;
                    }
                }
            }
            match file_sent(&ctx, &draft).await {
                Ok(()) => {
                    if let Err(e) = ctx.store.remove_draft(&draft.id) {
                        ctx.host.error(&format!("draft {}: {e}", draft.id));
                    }
                }
                Err(e) => {
                    ctx.host.warn(&format!(
                        "message {} was sent; its Sent copy and \\Answered flag wait: {e}",
                        draft.id
                    ));
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.recv() => {}
            _ = tokio::time::sleep(ctx.settings.reconnect()) => {}
            _ = stop.changed() => return,
        }
    }
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
    /// comments are never sent). The core learns the consultation's id from the `created`
    /// reply, so the copy follows a moment later.
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
        let ctx = running.ctx.clone();
        if let Some(handle) = running.runtime.handle() {
            handle.spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                ctx.emit(copy);
            });
        }
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
            handle.spawn(watch_folder(ctx.clone(), folder.clone(), stopped.clone()));
        }
        handle.spawn(outbox(ctx.clone(), woken, stopped));
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
