//! What each side's messages do to a session, without sockets: the customer's (start, resume,
//! offer, events, write approval, stop) and the viewer's (pointer, write request, actions). The
//! relay never looks inside rrweb events: the customer's browser masked them; the viewer treats
//! them as hostile.

use crate::offer_for;
use crate::protocol::{
    CustomerMessage, MAX_EVENTS_PER_BATCH, MAX_VALUE_CHARS, ToCustomer, ToViewer, ViewerMessage,
    text,
};
use crate::sessions::{Phase, Refusal, Session, Sessions, WriteMode};
use crate::settings::Settings;
use agentdesk_web::limits::ConnectionLimits;
use plugin_api::{EndReason, Ended, Event, InteractionId, OrderedEmitter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::mpsc;

/// Counters for the diagnostics and the benchmark.
#[derive(Debug, Default)]
pub struct RelayCounts {
    /// Batches of rrweb events relayed to a viewer.
    pub relayed: AtomicU64,
    /// Batches that arrived while no viewer was open (not kept: a viewer starts from a snapshot).
    pub unseen: AtomicU64,
    /// Batches dropped because a viewer fell behind (it is sent a new snapshot), and agent
    /// actions dropped because the page was away or behind.
    pub dropped: AtomicU64,
    /// Events for the host that could not go (the plugin was stopping).
    pub events_lost: AtomicU64,
}

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub settings: Settings,
    sessions: Mutex<Sessions>,
    pub(crate) limits: Arc<ConnectionLimits>,
    /// Events for the host, in order.
    pub events: OrderedEmitter,
    /// Where agents' browsers reach this server (viewer links).
    pub public_url: String,
    pub(crate) next_connection: AtomicU64,
    /// Counters.
    pub counts: RelayCounts,
}

impl Shared {
    /// Shared state for a server reachable at `public_url`.
    pub fn new(settings: Settings, events: OrderedEmitter, public_url: String) -> Self {
        let limits = Arc::new(ConnectionLimits::new(
            settings.max_connections_per_address,
            settings.max_connections,
        ));
        let sessions = Sessions::new(settings.code_ttl(), settings.view_link_ttl());
        Shared {
            settings,
            sessions: Mutex::new(sessions),
            limits,
            events,
            public_url,
            next_connection: AtomicU64::new(1),
            counts: RelayCounts::default(),
        }
    }

    /// The sessions, locked (a panic elsewhere never makes them unusable).
    pub fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an event to the host; one that cannot go (the plugin is stopping) is logged by the
    /// emitter's owner through the returned count.
    pub fn emit(&self, event: Event) -> bool {
        self.events.emit(event).is_ok()
    }

    /// The viewer link for a token.
    pub fn view_url(&self, token: &str) -> String {
        format!("{}/view/{token}", self.public_url.trim_end_matches('/'))
    }

    /// Ends a session: tells both sides with `reason`, and the host with `host_reason` (none when
    /// the host asked for it, or nothing was offered).
    pub fn end(&self, code: &str, reason: &str, host_reason: Option<EndReason>) {
        let Some(session) = self.sessions().end(code, Instant::now()) else {
            return;
        };
        tell(&session.customer, text(&ToCustomer::Ended { reason }));
        tell(&session.viewer, text(&ToViewer::Ended { reason }));
        if let Some(host_reason) = host_reason
            && session.phase != Phase::Waiting
        {
            let sent = self.emit(Event::Ended(Ended {
                interaction: InteractionId::new(session.interaction()),
                reason: host_reason,
                detail: reason.to_string(),
            }));
            if !sent {
                self.counts.events_lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Sends to a connection if one is open; a full or closed queue means that side is going away
/// (its task ends the session or it reconnects), so nothing else is to be done.
pub(crate) fn tell(to: &Option<mpsc::Sender<String>>, message: String) -> bool {
    to.as_ref().is_some_and(|tx| tx.try_send(message).is_ok())
}

fn attach(session: &mut Session, connection: u64, tx: &mpsc::Sender<String>) {
    session.customer = Some(tx.clone());
    session.customer_connection = connection;
    session.customer_gone_since = None;
}

/// What a customer page's message does; `Some` is the answer to send back.
pub(crate) fn on_customer(
    shared: &Shared,
    code: &mut Option<String>,
    connection: u64,
    tx: &mpsc::Sender<String>,
    message: CustomerMessage,
) -> Result<Option<String>, Refusal> {
    let now = Instant::now();
    match message {
        CustomerMessage::Start => {
            if code.is_some() {
                return Err(Refusal::WrongPhase(Phase::Waiting));
            }
            let mut sessions = shared.sessions();
            let (new, secret) = sessions.start(now)?;
            if let Some(s) = sessions.get_mut(&new) {
                attach(s, connection, tx);
            }
            *code = Some(new.clone());
            Ok(Some(text(&ToCustomer::Session {
                code: &new,
                secret: &secret,
                expires_in: shared.settings.code_ttl_secs,
            })))
        }
        CustomerMessage::Resume {
            code: wanted,
            secret,
        } => {
            let mut sessions = shared.sessions();
            let s = sessions.resume(&wanted, &secret)?;
            // A newer page replaces an older one still open (two tabs: the last one is shown).
            tell(&s.customer, text(&ToCustomer::Ended { reason: "replaced" }));
            attach(s, connection, tx);
            let phase = match s.phase {
                Phase::Waiting => "waiting",
                Phase::Offered => "offered",
                Phase::Active => "active",
            };
            let reply = text(&ToCustomer::Resumed { phase });
            if s.phase == Phase::Active {
                if let Some(agent) = &s.agent {
                    tell(&s.customer, text(&ToCustomer::Agent { name: agent }));
                }
                if s.write == WriteMode::Granted {
                    // The page that comes back (another page of the site) is told again.
                    tell(&s.customer, text(&ToCustomer::Write { granted: true }));
                }
                if s.viewer.is_some() {
                    // A reconnect resumes from a full snapshot.
                    tell(&s.customer, text(&ToCustomer::Snapshot));
                    tell(&s.viewer, text(&ToViewer::Customer { state: "connected" }));
                }
            }
            *code = Some(wanted);
            Ok(Some(reply))
        }
        CustomerMessage::Offer => {
            let wanted = code.clone().ok_or(Refusal::UnknownCode)?;
            let offer = {
                let mut sessions = shared.sessions();
                sessions.offer(&wanted, now)?;
                let s = sessions.get(&wanted).ok_or(Refusal::UnknownCode)?;
                offer_for(s)
            };
            if !shared.emit(Event::Offer(offer)) {
                shared.counts.events_lost.fetch_add(1, Ordering::Relaxed);
                shared.end(&wanted, "unavailable", None);
                return Err(Refusal::Unavailable);
            }
            Ok(Some(text(&ToCustomer::Offered)))
        }
        CustomerMessage::Events { events } => {
            if events.len() > MAX_EVENTS_PER_BATCH {
                return Err(Refusal::TooManyEvents);
            }
            let Some(wanted) = code.as_deref() else {
                return Err(Refusal::UnknownCode);
            };
            let sessions = shared.sessions();
            let Some(s) = sessions
                .get(wanted)
                .filter(|s| s.customer_connection == connection)
            else {
                return Err(Refusal::UnknownCode);
            };
            match &s.viewer {
                None => {
                    shared.counts.unseen.fetch_add(1, Ordering::Relaxed);
                }
                Some(viewer) => {
                    let batch = serde_json::json!({"type": "events", "events": events}).to_string();
                    if viewer.try_send(batch).is_ok() {
                        shared.counts.relayed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // The viewer fell behind: what it has is incomplete; start it over.
                        shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
                        tell(&s.customer, text(&ToCustomer::Snapshot));
                    }
                }
            }
            Ok(None)
        }
        CustomerMessage::Refused { reason } => {
            let Some(wanted) = code.as_deref() else {
                return Err(Refusal::UnknownCode);
            };
            let reason: String = reason.chars().take(100).collect();
            let sessions = shared.sessions();
            if let Some(s) = sessions.get(wanted) {
                tell(&s.viewer, text(&ToViewer::Refused { reason: &reason }));
            }
            Ok(None)
        }
        CustomerMessage::Write { allow } => {
            let Some(wanted) = code.as_deref() else {
                return Err(Refusal::UnknownCode);
            };
            let mut sessions = shared.sessions();
            let s = sessions.get_mut(wanted).ok_or(Refusal::UnknownCode)?;
            s.write = match (allow, s.write) {
                // Approval only answers the agent's request.
                (true, WriteMode::Requested | WriteMode::Granted) => WriteMode::Granted,
                (true, WriteMode::Off) => return Err(Refusal::WrongPhase(s.phase)),
                (false, _) => WriteMode::Off,
            };
            let granted = s.write == WriteMode::Granted;
            tell(
                &s.viewer,
                text(&ToViewer::Write {
                    state: s.write.word(),
                }),
            );
            Ok(Some(text(&ToCustomer::Write { granted })))
        }
        CustomerMessage::Stop => {
            if let Some(wanted) = code.as_deref() {
                shared.end(wanted, "customer-stopped", Some(EndReason::ContactLeft));
            }
            Ok(None)
        }
    }
}

/// What the agent's viewer asks of the customer's page. Pointer moves always go; a request for
/// write mode goes to the customer's banner; actions go only once the customer approved (the
/// customer's script checks again, and refuses form submission and restricted elements).
pub(crate) fn on_viewer(
    shared: &Shared,
    code: &str,
    connection: u64,
    message: ViewerMessage,
) -> Result<(), Refusal> {
    let mut sessions = shared.sessions();
    let s = sessions
        .get_mut(code)
        .filter(|s| s.viewer_connection == connection)
        .ok_or(Refusal::UnknownCode)?;
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let out = match message {
        ViewerMessage::Stop => return Ok(()),
        ViewerMessage::Pointer { x, y } => ToCustomer::Pointer {
            x: finite(x),
            y: finite(y),
        },
        ViewerMessage::RequestWrite => {
            if s.write == WriteMode::Granted {
                return Ok(());
            }
            s.write = WriteMode::Requested;
            tell(
                &s.viewer,
                text(&ToViewer::Write {
                    state: s.write.word(),
                }),
            );
            ToCustomer::WriteRequested
        }
        _ if s.write != WriteMode::Granted => return Err(Refusal::WriteNotGranted),
        ViewerMessage::Click { id } => ToCustomer::Click { id },
        ViewerMessage::SetValue { id, ref value } => {
            let value: String = value.chars().take(MAX_VALUE_CHARS).collect();
            let sent = tell(
                &s.customer,
                text(&ToCustomer::SetValue { id, value: &value }),
            );
            if !sent {
                shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        ViewerMessage::Key { id, ref key } => {
            let key: String = key.chars().take(32).collect();
            if !tell(&s.customer, text(&ToCustomer::Key { id, key: &key })) {
                shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        ViewerMessage::Scroll { x, y } => ToCustomer::Scroll {
            x: finite(x),
            y: finite(y),
        },
    };
    if !tell(&s.customer, text(&out)) {
        // The page is away or behind: an agent's pointer move or click is not worth queueing.
        shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
