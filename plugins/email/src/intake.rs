//! Reading the watched folders: one IMAP session per folder (IDLE or polling, reconnecting), and
//! each new message read, its attachments stored, recorded, then offered. No sending here.

use crate::settings::{Folder, Settings};
use crate::store::{self, Mail, Mode, Watermark};
use crate::{ATTACHMENTS, CHANNEL, Ctx, imap, inbound, net};
use plugin_api::{
    ActionsChanged, AttachmentRef, CaseField, ChannelKind, Contact, CustomAction, Event,
    InteractionId, Media, MessageContent, MessageReceived, Offer, Party, Route,
};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// How many UIDs the watermark may lag behind what was read.
const WATERMARK_EVERY: u32 = 2000;
/// The sender shown for a message without a From (or Reply-To) address.
const UNKNOWN_SENDER: &str = "unknown";

/// A short stable tag of a folder name (interaction ids stay short and file-name safe).
pub(crate) fn folder_tag(folder: &str) -> String {
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
    // One flat folder, `<interaction>.<n>.<name>`: a folder per message cost ext4 an inode-table
    // search per message (the directory allocator spreads folders over block groups), which the
    // benchmark showed as most of the ingest time after the first 10,000 messages.
    let dir = Path::new(ATTACHMENTS);
    std::fs::create_dir_all(data_dir.join(dir))?;
    for (n, part) in parts.iter().enumerate() {
        let name = safe_name(&part.name);
        let path = dir.join(format!("{id}.{n}.{name}"));
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
pub(crate) fn actions() -> Vec<CustomAction> {
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
pub(crate) fn ingest(
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
        // The same message delivered again (same Message-ID, same content) is not offered twice;
        // another message that reuses a Message-ID is (ids come from the UID, not from it).
        let digest = store::content_digest(
            &read.subject,
            read.from.as_deref(),
            read.date.as_deref(),
            &read.text,
            read.attachments
                .iter()
                .map(|p| (safe_name(&p.name), p.bytes.len() as u64)),
        );
        if let Some(message_id) = &read.message_id
            && (ctx.store.seen(&folder.name, message_id, &digest)
                || mails.iter().any(|m: &Mail| {
                    m.message_id.as_ref() == Some(message_id) && m.content_digest() == digest
                }))
        {
            ctx.host.info(&format!(
                "folder {}: UID {uid} is <{message_id}> with the content read before: not \
                 offered again",
                folder.name
            ));
            continue;
        }
        let attachments = save_attachments(&ctx.data_dir, &id, &read.attachments)?;
        let sender = read.from.clone().unwrap_or_else(|| UNKNOWN_SENDER.into());
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
    // The watermark only spares reading messages again: each message is in the mail log (synced)
    // before it is offered, and one read again is skipped. So it is saved every few thousand
    // messages and when a round ends, not per batch (each save costs two fsyncs).
    let mut saved = ctx.store.watermark(&folder.name);
    let save = |mark: Watermark, saved: &mut Watermark| -> std::io::Result<()> {
        if mark != *saved {
            ctx.store.set_watermark(&folder.name, mark)?;
            *saved = mark;
        }
        Ok(())
    };
    loop {
        let uids = imap.uids_after(mark.last_uid).await?;
        for chunk in uids.chunks(ctx.settings.fetch_batch) {
            if *stop.borrow() {
                save(mark, &mut saved)?;
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
            if mark.last_uid.saturating_sub(saved.last_uid) >= WATERMARK_EVERY
                || mark.uidvalidity != saved.uidvalidity
            {
                save(mark, &mut saved)?;
            }
        }
        save(mark, &mut saved)?;
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
pub(crate) async fn watch_folder(ctx: Arc<Ctx>, folder: Folder, mut stop: watch::Receiver<bool>) {
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
