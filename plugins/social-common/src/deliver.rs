//! Events to the host in order, from any task: a queue drained by one task that waits and tries
//! again while the host's queue is full. An event the host refuses otherwise is logged.

use plugin_api::{ErrorCode, Event, Host};
use std::time::Duration;
use tokio::sync::mpsc;

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Event>,
}

impl Outbox {
    /// The queue and the task that drains it (spawn the future on the plugin's runtime).
    pub fn new(host: Host) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Outbox { sender }, drain(host, receiver))
    }

    /// An outbox whose events the caller reads itself (tests).
    #[cfg(test)]
    pub(crate) fn to_channel() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Outbox { sender }, receiver)
    }

    /// Queues events. Returns how many could not be queued (the draining task has ended, i.e.
    /// the plugin is stopping): the caller logs them; stored events are sent again at start.
    pub fn send(&self, events: impl IntoIterator<Item = Event>) -> usize {
        events
            .into_iter()
            .filter(|e| self.sender.send(e.clone()).is_err())
            .count()
    }
}

async fn drain(host: Host, mut events: mpsc::UnboundedReceiver<Event>) {
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
