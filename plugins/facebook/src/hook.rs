//! The webhook's two requests: Meta's subscription handshake (GET) and signed deliveries (POST).
//! A POST is answered 200 only after what it changed is synced to the journal; a POST that got
//! no 200 changes nothing that a second delivery would not change the same way.

use crate::Shared;
use crate::payload::{self, PayloadError};
use agentdesk_social::inbox::Counters;
use agentdesk_social::signature::verify_hex_sha256;
use agentdesk_social::webhook::{WebhookRequest, WebhookResponse};
use std::collections::BTreeMap;

/// Answers one webhook request (on a blocking thread: it syncs to disk).
pub fn handle(shared: &Shared, request: WebhookRequest) -> WebhookResponse {
    match request.method.as_str() {
        "GET" => verify(shared, &request),
        "POST" => receive(shared, &request),
        _ => WebhookResponse::text(405, "GET or POST only"),
    }
}

/// The subscription handshake: `hub.mode=subscribe` with our verify token gets the challenge.
fn verify(shared: &Shared, request: &WebhookRequest) -> WebhookResponse {
    let token_ok = request.param("hub.verify_token").is_some_and(|t| {
        // Compared as HMACs so the time taken says nothing about the token.
        let key = b"agentdesk-verify";
        agentdesk_social::signature::hmac_sha256(key, t.as_bytes())
            == agentdesk_social::signature::hmac_sha256(
                key,
                shared.secrets.verify_token.expose().as_bytes(),
            )
    });
    match (request.param("hub.mode"), request.param("hub.challenge")) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            shared.host.info("Messenger webhook subscription verified");
            WebhookResponse::text(200, challenge)
        }
        _ => {
            shared
                .host
                .warn("a webhook verification request was refused (wrong mode or token)");
            WebhookResponse::text(403, "verification refused")
        }
    }
}

/// Profile names of customers about to open a conversation: from the cache, else looked up (a
/// failed lookup is logged and the conversation opens with the id-based name).
fn names(shared: &Shared, items: &[crate::payload::Item]) -> BTreeMap<String, String> {
    let newcomers: Vec<String> = shared
        .conversations()
        .newcomers(items)
        .into_iter()
        .map(String::from)
        .collect();
    let mut names = BTreeMap::new();
    for psid in newcomers {
        if let Some(name) = shared.names().get(&psid) {
            names.insert(psid, name.clone());
            continue;
        }
        match shared.runtime.block_on(shared.graph.profile(&psid)) {
            Ok(Some(name)) => {
                shared.names().insert(psid.clone(), name.clone());
                names.insert(psid, name);
            }
            Ok(None) => {}
            Err(e) => shared
                .host
                .warn(&format!("no profile name for a customer: {e}")),
        }
    }
    names
}

fn receive(shared: &Shared, request: &WebhookRequest) -> WebhookResponse {
    let signature = request.header("x-hub-signature-256");
    if let Err(e) = verify_hex_sha256(
        shared.secrets.app_secret.expose().as_bytes(),
        &request.body,
        signature,
    ) {
        Counters::add(&shared.counters.bad_signatures, 1);
        shared
            .host
            .warn(&format!("webhook refused, nothing stored: {e}"));
        return WebhookResponse::text(403, format!("refused: {e}"));
    }
    let items = match payload::parse(&request.body) {
        Ok(items) => items,
        Err(PayloadError::OtherObject(object)) => {
            Counters::add(&shared.counters.ignored, 1);
            shared.host.warn(&format!(
                "a signed webhook for `{object}` was ignored: not a Page"
            ));
            return WebhookResponse::text(200, "ignored");
        }
        Err(e) => {
            Counters::add(&shared.counters.malformed, 1);
            shared
                .host
                .error(&format!("a signed webhook was refused: {e}"));
            return WebhookResponse::text(400, format!("refused: {e}"));
        }
    };
    let mut items = items;
    crate::files::download(shared, &mut items);
    let names = names(shared, &items);
    let view = shared.view(crate::now_ms());
    let app_id = &shared.settings.app_id;
    let committed = shared.inbox.commit(
        |state| {
            let mut plan = state.plan(items, app_id, &names);
            (std::mem::take(&mut plan.changes), plan)
        },
        |state, change| state.events(change, &view),
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
                "cannot store a webhook ({e}); answered 503 so that Meta delivers it again"
            ));
            return WebhookResponse::text(503, "cannot store now");
        }
    };
    if !plan.own_echoes.is_empty() {
        let mut in_flight = shared.echoes();
        for metadata in plan.own_echoes {
            // Echoes of sends no longer in flight settle nothing: dropped.
            if let Some(seen) = in_flight.get_mut(&metadata) {
                *seen = true;
            }
        }
    }
    if !plan.duplicates.is_empty() {
        Counters::add(&shared.counters.duplicates, plan.duplicates.len());
        shared.host.info(&format!(
            "dropped {} repeated deliveries: {}",
            plan.duplicates.len(),
            plan.duplicates.join(", ")
        ));
    }
    for why in &plan.ignored {
        Counters::add(&shared.counters.ignored, 1);
        shared.host.info(&format!("ignored {why}"));
    }
    WebhookResponse::text(200, "EVENT_RECEIVED")
}
