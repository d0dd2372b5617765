//! An agent's reply on its way to Meta: paced, retried only while Meta certainly did not take it
//! (rate limit, no connection), and never resent when the outcome is unknown — then the reply's
//! echo (it carries our `metadata`) decides, and without it the agent is told.

use crate::Shared;
use crate::graph::{Answer, Refusal, message_body};
use agentdesk_social::client::ClientError;
use agentdesk_social::limits::backoff;
use plugin_api::{ChannelStatus, Event, InteractionId, MessageContent, MessageReceived, Party};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A reply to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The customer.
    pub psid: String,
    /// The interaction (for notices).
    pub interaction: String,
    /// The host's message id.
    pub send_id: String,
    /// The text.
    pub text: String,
    /// `RESPONSE` or `MESSAGE_TAG`.
    pub messaging_type: &'static str,
    /// `HUMAN_AGENT` or none.
    pub tag: Option<&'static str>,
}

impl Outgoing {
    fn metadata(&self) -> String {
        format!("agentdesk:{}", self.send_id)
    }
}

/// Tells the agent something about their reply, as a system line in the transcript.
pub fn notify(shared: &Shared, interaction: &str, id: &str, text: String) {
    let event = Event::MessageReceived(MessageReceived {
        interaction: InteractionId::new(interaction),
        from: Party {
            id: "system".into(),
            role: Party::SYSTEM.into(),
            display_name: "Messenger".into(),
            address: None,
        },
        message: MessageContent {
            id: format!("notice-{id}"),
            text,
            attachments: vec![],
        },
    });
    if shared.outbox().send([event]) > 0 {
        shared.host.warn(&format!(
            "a notice for {interaction} was not passed on (stopping)"
        ));
    }
}

fn token_state(shared: &Shared, refused: bool) {
    if shared.token_refused.swap(refused, Ordering::SeqCst) == refused {
        return;
    }
    let status = if refused {
        ChannelStatus {
            healthy: false,
            detail: "Facebook refused the Page access token (expired or revoked): renew it and \
                     restart the channel"
                .into(),
        }
    } else {
        ChannelStatus {
            healthy: true,
            detail: "the Page access token works again".into(),
        }
    };
    if refused {
        shared.host.error(&status.detail);
    }
    if shared.outbox().send([Event::ChannelStatus(status)]) > 0 {
        shared
            .host
            .warn("a channel status was not passed on (stopping)");
    }
}

async fn pace(shared: &Shared) {
    loop {
        let wait = {
            let mut bucket = shared.bucket();
            match bucket.take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => wait,
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Waits for our echo of `metadata` for at most `wait`.
async fn echo_seen(shared: &Shared, metadata: &str, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if shared.echoes().get(metadata) == Some(&true) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one reply (see [`attempt`]) while its echo is watched for.
pub async fn deliver(shared: Arc<Shared>, out: Outgoing) {
    let metadata = out.metadata();
    shared.echoes().insert(metadata.clone(), false);
    attempt(&shared, &out, &metadata).await;
    shared.echoes().remove(&metadata);
}

/// Every outcome but success ends in a log line and, where the agent must know, a notice in the
/// transcript.
async fn attempt(shared: &Arc<Shared>, out: &Outgoing, metadata: &str) {
    let body = message_body(&out.psid, &out.text, out.messaging_type, out.tag, metadata);
    let attempts = shared.settings.send_attempts;
    let first = shared.settings.retry_first();
    let mut why = String::new();
    for attempt in 1..=attempts {
        pace(shared).await;
        match shared.graph.send(&body).await {
            Ok(Answer::Accepted(mid)) => {
                token_state(shared, false);
                shared.host.info(&format!(
                    "reply {} sent to Messenger as {}",
                    out.send_id,
                    mid.as_deref().unwrap_or("(no id)")
                ));
                return;
            }
            Ok(Answer::Refused(error)) => match error.refusal() {
                Refusal::RateLimited => {
                    why = error.plain();
                    shared.host.warn(&format!(
                        "reply {}: rate limited (code {}), attempt {attempt} of {attempts}",
                        out.send_id, error.code
                    ));
                }
                Refusal::TokenInvalid => {
                    token_state(shared, true);
                    notify(shared, &out.interaction, &out.send_id, error.plain());
                    return;
                }
                Refusal::OutsideWindow | Refusal::Other => {
                    shared.host.warn(&format!(
                        "reply {} refused: {} (code {})",
                        out.send_id, error.message, error.code
                    ));
                    notify(shared, &out.interaction, &out.send_id, error.plain());
                    return;
                }
            },
            Err(ClientError::NotSent(e)) => {
                why = format!("Facebook could not be reached ({e})");
                shared.host.warn(&format!(
                    "reply {} not sent, attempt {attempt} of {attempts}: {e}",
                    out.send_id
                ));
            }
            Err(ClientError::OutcomeUnknown(e)) => {
                shared.host.warn(&format!(
                    "reply {}: {e}; waiting for its echo instead of sending it again",
                    out.send_id
                ));
                if echo_seen(shared, metadata, shared.settings.echo_wait()).await {
                    shared.host.info(&format!(
                        "reply {} confirmed by its echo: not sent again",
                        out.send_id
                    ));
                } else {
                    notify(
                        shared,
                        &out.interaction,
                        &out.send_id,
                        "Delivery unknown: Facebook did not answer in time and the message did \
                         not come back as sent. It was not sent again, to avoid a double: check \
                         the Page inbox before repeating it."
                            .into(),
                    );
                }
                return;
            }
        }
        if attempt < attempts {
            tokio::time::sleep(backoff(attempt, first, first * 30)).await;
        }
    }
    notify(
        shared,
        &out.interaction,
        &out.send_id,
        format!("Not sent after {attempts} attempts: {why}"),
    );
}
