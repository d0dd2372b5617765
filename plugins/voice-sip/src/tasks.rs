//! The loops that drive a user agent: one reads SIP datagrams, one runs the timers and takes in
//! what the media plane reports. Both end when `stop` changes.

use crate::media::MediaNews;
use crate::sip;
use crate::ua::Ua;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often SIP timers run.
pub const TICK: Duration = Duration::from_millis(50);

/// The user agent, whoever held the lock last panicked or not.
pub fn lock(ua: &Mutex<Ua>) -> MutexGuard<'_, Ua> {
    ua.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads SIP datagrams until stopped; a datagram that hits a bug is reported to `bug`.
pub async fn listen(
    socket: Arc<tokio::net::UdpSocket>,
    ua: Arc<Mutex<Ua>>,
    mut stop: watch::Receiver<bool>,
    bug: impl Fn(&str),
) {
    let mut buf = vec![0u8; sip::MAX_MESSAGE];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    // Defence in depth: a bug met by one datagram must not stop the channel.
                    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        lock(&ua).on_datagram(&buf[..n], from)
                    }));
                    if served.is_err() {
                        bug(&format!("a SIP message from {from} hit a bug; it was dropped"));
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Runs SIP timers and takes in what the media plane reports.
pub async fn keep(
    ua: Arc<Mutex<Ua>>,
    mut news: mpsc::UnboundedReceiver<MediaNews>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ticks.tick() => lock(&ua).tick(),
            Some(MediaNews::Dtmf(leg, digit)) = news.recv() => lock(&ua).dtmf_received(leg, digit),
            _ = stop.changed() => return,
        }
    }
}
