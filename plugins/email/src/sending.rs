//! Sending: the outbox of drafts worked off in order over SMTP, then the copy in the Sent folder
//! and `\\Answered` on the original over IMAP. A draft leaves the outbox only when all is done.

use crate::store::Draft;
use crate::{Ctx, imap, net, smtp};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

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
pub(crate) async fn outbox(
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
