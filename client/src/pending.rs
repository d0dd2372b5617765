//! An answer still to come. Every call of the client interface returns at once with a
//! [`Pending`]; the desk polls it once a frame ([`Pending::poll`]) and never waits, while
//! command-line tools and tests wait for it ([`Pending::wait`]).

use crate::ClientError;
use agentdesk_host::service::CommandId;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// Where an answer comes from.
trait Source<T>: Send {
    /// The answer if it is there (waiting up to `wait` for it); `None` while it is not.
    fn poll(&mut self, wait: Option<Duration>) -> Option<Result<T, ClientError>>;
}

/// Turns what arrives into the answer's type.
type MapAnswer<A, T> = Box<dyn FnOnce(A) -> Result<T, ClientError> + Send>;

/// An answer from a channel, turned into its type by `map`. A closed channel means the side that
/// was to answer has gone: [`ClientError::Stopped`].
struct Mapped<A, T> {
    answer: Receiver<A>,
    map: Option<MapAnswer<A, T>>,
}

impl<A: Send, T> Source<T> for Mapped<A, T> {
    fn poll(&mut self, wait: Option<Duration>) -> Option<Result<T, ClientError>> {
        let received = match wait {
            None => self.answer.try_recv().map_err(|e| match e {
                TryRecvError::Empty => None,
                TryRecvError::Disconnected => Some(ClientError::Stopped),
            }),
            Some(wait) => self.answer.recv_timeout(wait).map_err(|e| match e {
                RecvTimeoutError::Timeout => None,
                RecvTimeoutError::Disconnected => Some(ClientError::Stopped),
            }),
        };
        match received {
            Ok(answer) => {
                let map = self.map.take()?;
                Some(map(answer))
            }
            Err(None) => None,
            Err(Some(stopped)) => Some(Err(stopped)),
        }
    }
}

/// An answer held back until a moment (a slow link, for tests and benchmarks).
struct Held<T> {
    inner: Pending<T>,
    until: Instant,
}

impl<T: Send + 'static> Source<T> for Held<T> {
    fn poll(&mut self, wait: Option<Duration>) -> Option<Result<T, ClientError>> {
        let left = self.until.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            match wait {
                Some(wait) if wait >= left => std::thread::sleep(left),
                _ => return None,
            }
        }
        self.inner.take(wait.map(|w| w.saturating_sub(left)))
    }
}

/// Another answer's value turned into this one's.
struct Then<A, T> {
    inner: Pending<A>,
    map: Option<MapAnswer<A, T>>,
}

impl<A: Send + 'static, T> Source<T> for Then<A, T> {
    fn poll(&mut self, wait: Option<Duration>) -> Option<Result<T, ClientError>> {
        let answer = self.inner.take(wait)?;
        let map = self.map.take()?;
        Some(answer.and_then(map))
    }
}

/// An answer a plain value, already there.
struct Ready<T>(Option<Result<T, ClientError>>);

impl<T: Send> Source<T> for Ready<T> {
    fn poll(&mut self, _wait: Option<Duration>) -> Option<Result<T, ClientError>> {
        self.0.take()
    }
}

/// The answer to one call of the client interface, still to come or already there.
pub struct Pending<T> {
    source: Box<dyn Source<T>>,
    id: Option<CommandId>,
    settled: bool,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .field("settled", &self.settled)
            .finish()
    }
}

impl<T: Send + 'static> Pending<T> {
    /// An answer that is already known.
    pub fn ready(answer: Result<T, ClientError>) -> Self {
        Pending {
            source: Box::new(Ready(Some(answer))),
            id: None,
            settled: false,
        }
    }

    /// The answer that will arrive on `answer`, turned into its type by `map`.
    pub fn from_channel<A: Send + 'static>(
        answer: Receiver<A>,
        map: impl FnOnce(A) -> Result<T, ClientError> + Send + 'static,
    ) -> Self {
        Pending {
            source: Box::new(Mapped {
                answer,
                map: Some(Box::new(map)),
            }),
            id: None,
            settled: false,
        }
    }

    /// This answer, for the command `id`.
    pub fn for_command(mut self, id: CommandId) -> Self {
        self.id = Some(id);
        self
    }

    /// The id of the command this answers, if it answers a command.
    pub fn id(&self) -> Option<&CommandId> {
        self.id.as_ref()
    }

    /// The same answer, not before `by` from now (a slow network, on purpose).
    pub fn held_for(self, by: Duration) -> Self {
        let id = self.id.clone();
        Pending {
            source: Box::new(Held {
                inner: self,
                until: Instant::now() + by,
            }),
            id,
            settled: false,
        }
    }

    /// The same answer turned into another type by `map` (which may find it wrong).
    pub fn map<U: Send + 'static>(
        self,
        map: impl FnOnce(T) -> Result<U, ClientError> + Send + 'static,
    ) -> Pending<U> {
        let id = self.id.clone();
        Pending {
            source: Box::new(Then {
                inner: self,
                map: Some(Box::new(map)),
            }),
            id,
            settled: false,
        }
    }

    /// The answer if it has come; `None` while it has not (and after it was taken once).
    /// Never waits.
    pub fn poll(&mut self) -> Option<Result<T, ClientError>> {
        self.take(None)
    }

    /// Whether the answer was taken.
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Waits for the answer, at most `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Result<T, ClientError> {
        if self.settled {
            return Err(ClientError::Unexpected {
                asked: "an answer already taken".into(),
            });
        }
        self.take(Some(timeout))
            .unwrap_or(Err(ClientError::Timeout(timeout)))
    }

    fn take(&mut self, wait: Option<Duration>) -> Option<Result<T, ClientError>> {
        if self.settled {
            return None;
        }
        let answer = self.source.poll(wait)?;
        self.settled = true;
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_polled_once_and_a_vanished_answerer_is_stopped() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut pending = Pending::from_channel(rx, |n: u32| Ok(n * 2));
        assert_eq!(pending.poll(), None);
        tx.send(21).expect("send");
        assert_eq!(pending.poll(), Some(Ok(42)));
        assert!(pending.is_settled());
        assert_eq!(pending.poll(), None);

        let (tx, rx) = crossbeam_channel::bounded::<u32>(1);
        drop(tx);
        let pending = Pending::from_channel(rx, Ok);
        assert_eq!(
            pending.wait(Duration::from_millis(10)),
            Err(ClientError::Stopped)
        );
    }

    #[test]
    fn a_held_answer_comes_after_its_delay_and_wait_times_out() {
        let mut held = Pending::ready(Ok(7)).held_for(Duration::from_millis(60));
        assert_eq!(held.poll(), None, "held back");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(held.poll(), Some(Ok(7)));

        let held = Pending::ready(Ok(8)).held_for(Duration::from_millis(30));
        assert_eq!(held.wait(Duration::from_secs(1)), Ok(8));

        let (_tx, rx) = crossbeam_channel::bounded::<u32>(1);
        let never = Pending::from_channel(rx, Ok);
        assert_eq!(
            never.wait(Duration::from_millis(5)),
            Err(ClientError::Timeout(Duration::from_millis(5)))
        );
    }
}
