//! The clock the core service reads: the system clock in the product, a manual one in tests and
//! replays, so every timer (answer timeout, ACW) is deterministic there.

use crate::core::Millis;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of time in milliseconds.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Millis;
}

/// Wall-clock milliseconds since the UNIX epoch.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: Millis) -> Self {
        ManualClock(AtomicU64::new(now))
    }

    /// Moves it forward.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}
