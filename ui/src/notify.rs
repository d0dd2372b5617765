//! Desktop notifications for offers, so an agent whose window is behind another one still sees
//! the work arrive: the freedesktop Notifications service over the D-Bus session bus (what GNOME,
//! KDE, dunst, mako, ... serve), with an Accept action where the server supports actions. The
//! desk asks a [`Notifier`]; nothing blocks or fails without a bus. [`DbusNotifier`] talks to the
//! bus from a thread of its own (zbus); an Accept invoked in a notification comes back to the desk,
//! which accepts the offer through the client interface like its own Accept button.

use crossbeam_channel::{Receiver, Sender};
use std::collections::{BTreeMap, HashMap};
use zbus::zvariant::Value;

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// The action key of Accept in our notifications.
pub const ACCEPT: &str = "accept";

/// What a desktop notification says about one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferNote {
    /// The interaction offered.
    pub key: u64,
    /// The first line ("Incoming chat: Maria Lopez").
    pub summary: String,
    /// The rest (queue, waiting time, countdown, case data).
    pub body: String,
}

/// Where offer notifications go.
pub trait Notifier: Send {
    /// Shows `note`. Must return at once.
    fn offer(&mut self, note: &OfferNote);
    /// Takes back the notification of `key` (the offer was answered, missed or withdrawn).
    fn withdraw(&mut self, key: u64);
    /// The offers whose Accept was invoked in a notification since the last call.
    fn accepted(&mut self) -> Vec<u64>;
}

/// Why the session bus cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No connection to the bus.
    #[error("no D-Bus session bus: {0}")]
    Bus(#[from] zbus::Error),
    /// The notifier's thread could not start.
    #[error("the notification thread did not start: {0}")]
    Thread(#[from] std::io::Error),
}

enum Order {
    Show(OfferNote),
    Close(u64),
}

/// Notifications over D-Bus (org.freedesktop.Notifications).
pub struct DbusNotifier {
    orders: tokio::sync::mpsc::UnboundedSender<Order>,
    accepted: Receiver<u64>,
}

impl std::fmt::Debug for DbusNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbusNotifier").finish_non_exhaustive()
    }
}

impl DbusNotifier {
    /// Connects to the bus at `address` (`None`: the session bus of `DBUS_SESSION_BUS_ADDRESS`).
    /// `wake` is called (from the notifier's thread) when an Accept was invoked.
    pub fn connect(
        address: Option<&str>,
        wake: impl Fn() + Send + 'static,
    ) -> Result<Self, NotifyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let address = address.map(str::to_string);
        let connection = runtime.block_on(async move {
            match address {
                Some(a) => {
                    zbus::connection::Builder::address(a.as_str())?
                        .build()
                        .await
                }
                None => zbus::Connection::session().await,
            }
        })?;
        let actions = runtime.block_on(capabilities(&connection)).map_or_else(
            |e| {
                tracing::info!("the notification server does not say what it supports: {e}");
                false
            },
            |caps| caps.iter().any(|c| c == "actions"),
        );
        let signals = runtime.block_on(zbus::MessageStream::for_match_rule(
            zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .interface(SERVICE)?
                .build(),
            &connection,
            Some(64),
        ))?;
        let (orders, incoming) = tokio::sync::mpsc::unbounded_channel();
        let (accept, accepted) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || {
                runtime.block_on(serve(connection, actions, incoming, signals, accept, wake))
            })?;
        Ok(DbusNotifier { orders, accepted })
    }
}

impl Notifier for DbusNotifier {
    fn offer(&mut self, note: &OfferNote) {
        if self.orders.send(Order::Show(note.clone())).is_err() {
            tracing::warn!("offer #{} not notified: the notifier stopped", note.key);
        }
    }

    fn withdraw(&mut self, key: u64) {
        // A stopped notifier has nothing on screen to withdraw.
        let _ = self.orders.send(Order::Close(key));
    }

    fn accepted(&mut self) -> Vec<u64> {
        self.accepted.try_iter().collect()
    }
}

async fn capabilities(connection: &zbus::Connection) -> Result<Vec<String>, zbus::Error> {
    let reply = connection
        .call_method(Some(SERVICE), PATH, Some(SERVICE), "GetCapabilities", &())
        .await?;
    reply.body().deserialize::<Vec<String>>()
}

/// The notifier's loop: shows and closes notifications as the desk orders, and hands back the
/// offers whose Accept was invoked. Ends when the desk drops its notifier.
async fn serve(
    connection: zbus::Connection,
    actions: bool,
    mut orders: tokio::sync::mpsc::UnboundedReceiver<Order>,
    mut signals: zbus::MessageStream,
    accept: Sender<u64>,
    wake: impl Fn(),
) {
    use futures_util::StreamExt;
    // Notification id → offer key, while shown.
    let mut shown: BTreeMap<u32, u64> = BTreeMap::new();
    loop {
        tokio::select! {
            order = orders.recv() => match order {
                None => return,
                Some(Order::Show(note)) => match notify(&connection, actions, &note).await {
                    Ok(id) => {
                        shown.insert(id, note.key);
                    }
                    Err(e) => tracing::warn!("offer #{} not notified: {e}", note.key),
                },
                Some(Order::Close(key)) => {
                    let ids: Vec<u32> =
                        shown.iter().filter(|(_, k)| **k == key).map(|(id, _)| *id).collect();
                    for id in ids {
                        shown.remove(&id);
                        let closed = connection
                            .call_method(Some(SERVICE), PATH, Some(SERVICE), "CloseNotification", &id)
                            .await;
                        if let Err(e) = closed {
                            tracing::info!("notification {id} not closed: {e}");
                        }
                    }
                }
            },
            signal = signals.next() => {
                let Some(Ok(message)) = signal else {
                    if signal.is_none() {
                        tracing::warn!("the session bus closed: no more offer notifications");
                        return;
                    }
                    continue;
                };
                let header = message.header();
                let member = header.member().map(|m| m.as_str().to_string());
                match member.as_deref() {
                    Some("ActionInvoked") => {
                        let Ok((id, action)) = message.body().deserialize::<(u32, String)>() else {
                            tracing::warn!("an ActionInvoked signal with another shape was dropped");
                            continue;
                        };
                        // Kept until the desk withdraws it: a server that keeps notifications
                        // resident closes it then.
                        if action == ACCEPT && let Some(key) = shown.get(&id).copied() {
                            if accept.send(key).is_err() {
                                return;
                            }
                            wake();
                        }
                    }
                    Some("NotificationClosed") => {
                        if let Ok((id, _reason)) = message.body().deserialize::<(u32, u32)>() {
                            shown.remove(&id);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Shows one notification; its id.
async fn notify(
    connection: &zbus::Connection,
    actions: bool,
    note: &OfferNote,
) -> Result<u32, zbus::Error> {
    let actions: Vec<&str> = if actions {
        vec![ACCEPT, "Accept"]
    } else {
        Vec::new()
    };
    let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
    // Critical: the server keeps it on screen until the agent acts (or the desk withdraws it).
    hints.insert("urgency", Value::U8(2));
    hints.insert("category", Value::from("im.received"));
    let reply = connection
        .call_method(
            Some(SERVICE),
            PATH,
            Some(SERVICE),
            "Notify",
            &(
                "agentdesk",
                0u32,
                "call-start",
                note.summary.as_str(),
                note.body.as_str(),
                actions,
                hints,
                -1i32,
            ),
        )
        .await?;
    reply.body().deserialize::<u32>()
}
