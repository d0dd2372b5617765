//! The registrar (RFC 3261 §10.3) for agents' own endpoints: the desktop's SIP endpoint, or a
//! SIP phone an admin assigns. A REGISTER for an extension is challenged (digest, `qop=auth`,
//! nonces of ours that expire, each answer counting up so a captured one cannot be replayed)
//! and accepted only with the password the admin configured for
//! that extension's agent; its Contact is then where that agent's calls are bridged to
//! (`bridge`). Anything else is refused, logged and counted.

use super::Ua;
use crate::digest::{self, Answer};
use crate::sip::{self, Message, SipUri};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a nonce we issued may be answered.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// The most nonces outstanding at once (a flood of unanswered REGISTERs cannot grow memory).
const MAX_NONCES: usize = 10_000;
/// The shortest registration granted (RFC 3261 §10.3 step 7 lets a registrar raise it).
const MIN_EXPIRES: u32 = 30;

/// Where an agent's endpoint is reached, learnt from its authenticated REGISTER.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The Contact URI it registered.
    pub contact: String,
    /// Where the REGISTER came from: requests to the endpoint go there (it works through NAT).
    pub addr: SocketAddr,
    /// When the registration lapses.
    pub expires: Instant,
}

impl Ua {
    /// A REGISTER from an agent's endpoint.
    pub(super) fn on_register(&mut self, request: Message, from: SocketAddr) {
        let aor = sip::uri_of(request.header("To").unwrap_or_default()).to_string();
        let extension = SipUri::parse(&aor).and_then(|u| u.user).unwrap_or_default();
        let Some((agent, password)) = self
            .settings
            .endpoint_of_extension(&extension)
            .map(|(a, p)| (a.to_string(), p))
        else {
            self.refuse_register(&request, from, &format!("{aor} is no agent's endpoint"));
            return;
        };
        let Some(answer) = request.header("Authorization").and_then(Answer::parse) else {
            self.challenge(&request, from, false);
            return;
        };
        let issued = self.nonces.get(&answer.nonce).copied();
        let Some((at, last_count)) = issued.filter(|(at, _)| at.elapsed() <= NONCE_LIFETIME) else {
            // Not ours, or too old: ask again (a genuine client answers the new nonce).
            self.nonces.remove(&answer.nonce);
            self.challenge(&request, from, issued.is_some());
            return;
        };
        // Each answer to a nonce counts up (`nc`); without `qop` a nonce serves once. A count
        // seen before is a replay (the Contact is not covered by the digest): refused.
        let count = match &answer.nc {
            Some(nc) if answer.qop.is_some() => u32::from_str_radix(nc, 16).unwrap_or(0),
            _ => 1,
        };
        if count <= last_count {
            self.counters.refused += 1;
            self.counters.registrations_refused += 1;
            (self.log)(&format!(
                "REGISTER from {from} for agent `{agent}` ({aor}) refused: an answer used \
                 before (a replay?); challenged again ({} refused so far)",
                self.counters.registrations_refused
            ));
            self.challenge(&request, from, true);
            return;
        }
        if answer.username != extension
            || answer.realm != self.settings.realm
            || !answer.verify("REGISTER", &password)
        {
            self.refuse_register(
                &request,
                from,
                &format!("wrong credentials for agent `{agent}` ({aor})"),
            );
            return;
        }
        self.nonces.insert(answer.nonce.clone(), (at, count));
        let contact = request.header("Contact").unwrap_or_default().trim();
        let asked = sip::param(contact, "expires")
            .or_else(|| request.header("Expires"))
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(3600);
        if contact.is_empty() {
            // A query: the current binding, if any.
            let response = self.registered(&request, &agent);
            self.respond(&request, response, from);
            return;
        }
        if contact == "*" || asked == 0 {
            self.bindings.remove(&agent);
            (self.log)(&format!("agent `{agent}`'s endpoint unregistered ({aor})"));
            let response = Message::response(&request, 200, Some(&sip::token()));
            self.respond(&request, response, from);
            return;
        }
        let granted = asked.clamp(
            MIN_EXPIRES,
            self.settings.max_registration_secs.max(MIN_EXPIRES),
        );
        let uri = sip::uri_of(contact).to_string();
        if SipUri::parse(&uri).is_none() {
            self.refuse_register(
                &request,
                from,
                &format!("Contact `{contact}` is no sip: URI"),
            );
            return;
        }
        let fresh = self
            .bindings
            .get(&agent)
            .is_none_or(|b| b.contact != uri || b.addr != from);
        self.bindings.insert(
            agent.clone(),
            Binding {
                contact: uri.clone(),
                addr: from,
                expires: Instant::now() + Duration::from_secs(u64::from(granted)),
            },
        );
        if fresh {
            (self.log)(&format!(
                "agent `{agent}`'s endpoint registered as {aor} at {uri} (from {from}, {granted} s)"
            ));
        }
        let response = self.registered(&request, &agent);
        self.respond(&request, response, from);
    }

    /// A 200 naming the agent's binding.
    fn registered(&self, request: &Message, agent: &str) -> Message {
        let mut response = Message::response(request, 200, Some(&sip::token()));
        if let Some(b) = self.bindings.get(agent) {
            let left = b
                .expires
                .saturating_duration_since(Instant::now())
                .as_secs();
            response = response.with("Contact", format!("<{}>;expires={left}", b.contact));
        }
        response
    }

    /// A 401 with a new nonce.
    fn challenge(&mut self, request: &Message, from: SocketAddr, stale: bool) {
        self.nonces
            .retain(|_, (issued, _)| issued.elapsed() <= NONCE_LIFETIME);
        if self.nonces.len() >= MAX_NONCES {
            self.refuse_register(request, from, "too many registrations under way");
            return;
        }
        let nonce = format!("{}{}", sip::token(), sip::token());
        self.nonces.insert(nonce.clone(), (Instant::now(), 0));
        let response = Message::response(request, 401, Some(&sip::token())).with(
            "WWW-Authenticate",
            digest::challenge(&self.settings.realm, &nonce, stale),
        );
        self.respond(request, response, from);
    }

    /// A 403, logged and counted.
    fn refuse_register(&mut self, request: &Message, from: SocketAddr, why: &str) {
        self.counters.refused += 1;
        self.counters.registrations_refused += 1;
        (self.log)(&format!(
            "REGISTER from {from} refused: {why} ({} refused so far)",
            self.counters.registrations_refused
        ));
        let response = Message::response(request, 403, Some(&sip::token()));
        self.respond(request, response, from);
    }

    /// The agent's endpoint, while registered.
    pub fn binding(&self, agent: &str) -> Option<&Binding> {
        self.bindings
            .get(agent)
            .filter(|b| b.expires > Instant::now())
    }

    /// Forgets lapsed registrations.
    pub(super) fn expire_bindings(&mut self, now: Instant) {
        let log = &self.log;
        self.bindings.retain(|agent, b| {
            let live = b.expires > now;
            if !live {
                log(&format!("agent `{agent}`'s endpoint registration lapsed"));
            }
            live
        });
    }
}
