//! Outbound pacing: a token bucket per platform limit (Meta's Send API, X's endpoints) and the
//! back-off between retries. Pure arithmetic on instants passed in; no sleeping here.

use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(0.001),
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes a token now, or says how long to wait for one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// The wait before retry number `attempt` (1-based): doubling from `first`, at most `cap`.
pub fn backoff(attempt: u32, first: Duration, cap: Duration) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    first.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_interval() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 2.0, start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Ok(()));
        let wait = bucket.take(start).expect_err("empty");
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let first = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        assert_eq!(backoff(1, first, cap), first);
        assert_eq!(backoff(3, first, cap), Duration::from_millis(400));
        assert_eq!(backoff(30, first, cap), cap);
    }
}
