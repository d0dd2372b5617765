//! The webhook's two requests: X's challenge-response check (GET `crc_token`) and signed
//! Account Activity deliveries (POST). A POST is answered 200 only after its changes are synced.

use crate::Shared;
use crate::activity::{self, ActivityError};
use agentdesk_social::inbox::Counters;
use agentdesk_social::signature::{base64_sha256, verify_base64_sha256};
use agentdesk_social::webhook::{WebhookRequest, WebhookResponse};
use serde_json::json;

/// Answers one webhook request (on a blocking thread: it syncs to disk).
pub fn handle(shared: &Shared, request: WebhookRequest) -> WebhookResponse {
    match request.method.as_str() {
        "GET" => crc(shared, &request),
        "POST" => receive(shared, &request),
        _ => WebhookResponse::text(405, "GET or POST only"),
    }
}

/// `{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, crc_token))}`.
fn crc(shared: &Shared, request: &WebhookRequest) -> WebhookResponse {
    let Some(token) = request.param("crc_token") else {
        return WebhookResponse::text(400, "crc_token missing");
    };
    let response = base64_sha256(shared.consumer_secret.expose().as_bytes(), token.as_bytes());
    shared.host.info("answered X's CRC check");
    WebhookResponse::json(200, &json!({ "response_token": response }))
}

fn receive(shared: &Shared, request: &WebhookRequest) -> WebhookResponse {
    if let Err(e) = verify_base64_sha256(
        shared.consumer_secret.expose().as_bytes(),
        &request.body,
        request.header("x-twitter-webhooks-signature"),
    ) {
        Counters::add(&shared.counters.bad_signatures, 1);
        shared
            .host
            .warn(&format!("X webhook refused, nothing stored: {e}"));
        return WebhookResponse::text(403, format!("refused: {e}"));
    }
    let items = match activity::parse(&request.body, &shared.settings.account_id) {
        Ok(items) => items,
        Err(ActivityError::OtherAccount(account)) => {
            Counters::add(&shared.counters.ignored, 1);
            shared.host.warn(&format!(
                "a signed X event for account {account} was ignored"
            ));
            return WebhookResponse::text(200, "ignored");
        }
        Err(e) => {
            shared
                .host
                .error(&format!("a signed X webhook was refused: {e}"));
            return WebhookResponse::text(400, format!("refused: {e}"));
        }
    };
    let queue = &shared.settings.queue;
    let committed = shared.inbox.commit(
        |state| {
            let mut plan = state.plan(items);
            (std::mem::take(&mut plan.changes), plan)
        },
        |state, change| state.events(change, queue),
    );
    let plan = match committed {
        Ok((plan, committed)) => {
            if committed.lost > 0 {
                shared.host.warn(&format!(
                    "{} events not passed to the host (stopping); they are sent again at start",
                    committed.lost
                ));
            }
            plan
        }
        Err(e) => {
            shared.host.error(&format!(
                "cannot store an X webhook ({e}); answered 503 so that it is delivered again"
            ));
            return WebhookResponse::text(503, "cannot store now");
        }
    };
    Counters::add(&shared.counters.duplicates, plan.duplicates.len());
    Counters::add(&shared.counters.ignored, plan.ignored.len());
    if !plan.duplicates.is_empty() {
        shared.host.info(&format!(
            "dropped {} repeated X events: {}",
            plan.duplicates.len(),
            plan.duplicates.join(", ")
        ));
    }
    for why in &plan.ignored {
        shared.host.info(&format!("ignored {why}"));
    }
    WebhookResponse::text(200, "ok")
}
