//! Command ids for one session: a random prefix per session (so two sessions, or two runs, of one
//! agent never share an id) and a counter. The core answers a repeated id once (idempotency), so a
//! command retried after a reconnect acts once.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use agentdesk_host::service::CommandId;

/// Hands out the command ids of one session.
pub(crate) struct CommandIds {
    nonce: u64,
    next: AtomicU64,
}

impl CommandIds {
    pub(crate) fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self {
            nonce: hasher.finish(),
            next: AtomicU64::new(1),
        }
    }

    /// The next id: never handed out before by this session.
    pub(crate) fn next(&self) -> CommandId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        CommandId::new(format!("{:016x}-{n}", self.nonce))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_within_and_across_sessions() {
        let (a, b) = (CommandIds::new(), CommandIds::new());
        let first = a.next();
        assert_ne!(first, a.next());
        assert_ne!(first, b.next());
    }
}
