//! Commands are idempotent by id: a client gives each command an id, and a command that arrives
//! again with an id already answered gets the first answer without acting again (a retry after a
//! lost answer — a reconnect, later — must never accept, send or dial twice).
//!
//! The answers are remembered per agent, in memory, for the last `CAPACITY` commands: a retry
//! comes within seconds of the original, long before thousands of newer commands push it out.

use super::ClientError;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// A client's id for one command: unique per agent (a client makes them from a random session
/// nonce and a counter). The same id means the same command.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandId(pub String);

impl CommandId {
    /// An id from its text.
    pub fn new(id: impl Into<String>) -> Self {
        CommandId(id.into())
    }
}

impl std::fmt::Display for CommandId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many answers are remembered.
pub const CAPACITY: usize = 16_384;

type Key = (String, CommandId);

/// The answers given to commands with ids, oldest first out.
#[derive(Debug, Default)]
pub struct Answered {
    answers: HashMap<Key, Result<(), ClientError>>,
    order: VecDeque<Key>,
    repeats: u64,
}

impl Answered {
    /// The first answer to `id` from `agent`, if it was answered (counted as a repeat).
    pub fn repeat(&mut self, agent: &str, id: &CommandId) -> Option<Result<(), ClientError>> {
        let found = self.answers.get(&(agent.to_string(), id.clone())).cloned();
        if found.is_some() {
            self.repeats += 1;
            tracing::debug!(agent, %id, "command received again: answered as the first time");
        }
        found
    }

    /// Remembers the answer to `id` (the first one stays if it was already remembered).
    pub fn remember(&mut self, agent: &str, id: CommandId, answer: Result<(), ClientError>) {
        let key = (agent.to_string(), id);
        if self.answers.contains_key(&key) {
            return;
        }
        if self.order.len() >= CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.answers.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.answers.insert(key, answer);
    }

    /// Commands answered again from memory since the start.
    pub fn repeats(&self) -> u64 {
        self.repeats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_is_given_again_and_the_oldest_are_forgotten() {
        let mut answered = Answered::default();
        let first = CommandId::new("a-1");
        assert_eq!(answered.repeat("ann", &first), None);
        answered.remember("ann", first.clone(), Err(ClientError::Stopped));
        answered.remember("ann", first.clone(), Ok(()));
        assert_eq!(
            answered.repeat("ann", &first),
            Some(Err(ClientError::Stopped))
        );
        // Ids are per agent.
        assert_eq!(answered.repeat("bob", &first), None);
        for n in 0..CAPACITY {
            answered.remember("bob", CommandId::new(n.to_string()), Ok(()));
        }
        assert_eq!(answered.repeat("ann", &first), None, "pushed out");
        assert_eq!(
            answered.repeat("bob", &CommandId::new((CAPACITY - 1).to_string())),
            Some(Ok(()))
        );
        assert_eq!(answered.repeats(), 2);
    }
}
