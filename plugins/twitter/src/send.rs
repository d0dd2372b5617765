//! An agent's reply on its way to X: a direct message or a public reply, retried only while X
//! certainly did not take it (429 until `x-rate-limit-reset`, no connection), never resent when
//! the outcome is unknown (the agent is told instead).

use crate::Shared;
use crate::api::{Answer, plain};
use agentdesk_social::client::ClientError;
use agentdesk_social::limits::backoff;
use plugin_api::{ChannelStatus, Event, InteractionId, MessageContent, MessageReceived, Party};
use std::sync::Arc;
use std::time::Duration;

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A direct message to this user id.
    Dm(String),
    /// A public reply to this post id.
    Reply(String),
}

/// A reply to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The interaction (for notices).
    pub interaction: String,
    /// The host's message id.
    pub send_id: String,
    /// Where.
    pub to: Destination,
    /// The text.
    pub text: String,
}

/// Tells the agent something about their reply, as a system line in the transcript.
pub fn notify(shared: &Shared, interaction: &str, id: &str, text: String) {
    let event = Event::MessageReceived(MessageReceived {
        interaction: InteractionId::new(interaction),
        from: Party {
            id: "system".into(),
            role: Party::SYSTEM.into(),
            display_name: "X".into(),
            address: None,
        },
        message: MessageContent {
            id: format!("notice-{id}"),
            text,
            attachments: vec![],
        },
    });
    if shared.inbox.outbox().send([event]) > 0 {
        shared.host.warn(&format!(
            "a notice for {interaction} was not passed on (stopping)"
        ));
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sends one reply; every outcome but success ends in a log line and, where the agent must
/// know, a notice in the transcript.
pub async fn deliver(shared: Arc<Shared>, out: Outgoing) {
    let attempts = shared.settings.send_attempts;
    let first = Duration::from_millis(shared.settings.retry_first_ms);
    let mut why = String::new();
    for attempt in 1..=attempts {
        let answer = match &out.to {
            Destination::Dm(user) => shared.api.send_dm(user, &out.text).await,
            Destination::Reply(tweet) => shared.api.reply(tweet, &out.text).await,
        };
        let wait = match answer {
            Ok(Answer::Accepted(id)) => {
                shared.host.info(&format!(
                    "reply {} sent to X as {}",
                    out.send_id,
                    id.as_deref().unwrap_or("(no id)")
                ));
                return;
            }
            Ok(Answer::RateLimited { reset }) => {
                let wait = reset.map_or_else(
                    || backoff(attempt, first, first * 30),
                    |reset| Duration::from_secs(reset.saturating_sub(now_s()) + 1),
                );
                if wait.as_secs() > shared.settings.max_rate_limit_wait_secs {
                    notify(
                        &shared,
                        &out.interaction,
                        &out.send_id,
                        format!(
                            "Not sent: X's rate limit for this account resets in {} min; send it \
                             again later",
                            wait.as_secs() / 60 + 1
                        ),
                    );
                    return;
                }
                why = "X's rate limit".into();
                shared.host.warn(&format!(
                    "reply {}: X answered 429, waiting {wait:?} (attempt {attempt} of {attempts})",
                    out.send_id
                ));
                wait
            }
            Ok(Answer::Refused { status, detail }) => {
                shared.host.warn(&format!(
                    "reply {} refused by X: HTTP {status}: {detail}",
                    out.send_id
                ));
                if status == 401 {
                    let status = ChannelStatus {
                        healthy: false,
                        detail: "X refused the account's credentials: renew the access token"
                            .into(),
                    };
                    if shared.inbox.outbox().send([Event::ChannelStatus(status)]) > 0 {
                        shared
                            .host
                            .warn("a channel status was not passed on (stopping)");
                    }
                }
                notify(
                    &shared,
                    &out.interaction,
                    &out.send_id,
                    plain(status, &detail),
                );
                return;
            }
            Err(ClientError::NotSent(e)) => {
                why = format!("X could not be reached ({e})");
                shared.host.warn(&format!(
                    "reply {} not sent, attempt {attempt} of {attempts}: {e}",
                    out.send_id
                ));
                backoff(attempt, first, first * 30)
            }
            Err(ClientError::OutcomeUnknown(e)) => {
                shared
                    .host
                    .warn(&format!("reply {}: {e}; not sent again", out.send_id));
                notify(
                    &shared,
                    &out.interaction,
                    &out.send_id,
                    "Delivery unknown: X did not answer in time. The reply was not sent again, \
                     to avoid a double: check the conversation on X before repeating it."
                        .into(),
                );
                return;
            }
        };
        if attempt < attempts {
            tokio::time::sleep(wait).await;
        }
    }
    notify(
        &shared,
        &out.interaction,
        &out.send_id,
        format!("Not sent after {attempts} attempts: {why}"),
    );
}
