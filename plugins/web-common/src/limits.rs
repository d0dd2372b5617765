//! Abuse limits, as plain logic with explicit time: a token bucket per connection, open
//! connections per source address, and the size check. No sockets here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Why a connection is closed or refused by a limit; the text is the WebSocket close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// A message larger than allowed.
    #[error("message too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many messages too fast.
    #[error("too many messages: the limit is {per_second} per second")]
    Flood {
        /// The average allowed.
        per_second: u32,
    },
    /// Too many connections from one address.
    #[error("too many connections from your address: the limit is {limit}")]
    PerAddress {
        /// The limit.
        limit: u32,
    },
    /// Too many connections in total.
    #[error("the chat server is full, try again later")]
    Full,
}

/// Checks a message's size against the limit.
pub fn check_size(text: &str, limit: usize) -> Result<(), LimitExceeded> {
    if text.len() > limit {
        return Err(LimitExceeded::TooLarge {
            size: text.len(),
            limit,
        });
    }
    Ok(())
}

/// A token bucket: `per_second` tokens a second, up to `per_second + burst` saved.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: u32,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(per_second.max(1)) + f64::from(burst);
        RateLimiter {
            per_second: per_second.max(1),
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token for a message arriving at `now`.
    pub fn take(&mut self, now: Instant) -> Result<(), LimitExceeded> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * f64::from(self.per_second)).min(self.capacity);
        if self.tokens < 1.0 {
            return Err(LimitExceeded::Flood {
                per_second: self.per_second,
            });
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

/// Open connections per source address and in total. A [`ConnectionSlot`] gives its place back
/// when dropped, so no exit path can leak one.
#[derive(Debug)]
pub struct ConnectionLimits {
    per_address: u32,
    total: u32,
    open: Mutex<(HashMap<IpAddr, u32>, u32)>,
}

impl ConnectionLimits {
    /// Limits of `per_address` connections per address and `total` in all.
    pub fn new(per_address: u32, total: u32) -> Self {
        ConnectionLimits {
            per_address,
            total,
            open: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Takes a place for a connection from `address`.
    pub fn open(
        self: &std::sync::Arc<Self>,
        address: IpAddr,
    ) -> Result<ConnectionSlot, LimitExceeded> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (by_address, total) = &mut *open;
        if *total >= self.total {
            return Err(LimitExceeded::Full);
        }
        let count = by_address.entry(address).or_insert(0);
        if *count >= self.per_address {
            return Err(LimitExceeded::PerAddress {
                limit: self.per_address,
            });
        }
        *count += 1;
        *total += 1;
        Ok(ConnectionSlot {
            limits: self.clone(),
            address,
        })
    }

    /// Open connections from `address`.
    pub fn open_from(&self, address: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0.get(&address).copied().unwrap_or(0)
    }

    fn close(&self, address: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (by_address, total) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(count) = by_address.get_mut(&address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_address.remove(&address);
            }
        }
    }
}

/// One connection's place; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: std::sync::Arc<ConnectionLimits>,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.close(self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_burst_above_the_rate_is_refused_and_the_bucket_refills_with_time() {
        let t0 = Instant::now();
        let mut bucket = RateLimiter::new(5, 2, t0);
        for _ in 0..7 {
            bucket.take(t0).expect("within rate + burst");
        }
        assert_eq!(bucket.take(t0), Err(LimitExceeded::Flood { per_second: 5 }));
        bucket
            .take(t0 + Duration::from_millis(250))
            .expect("a quarter second later one token is back");
        assert!(bucket.take(t0 + Duration::from_millis(250)).is_err());
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_never_refused() {
        let t0 = Instant::now();
        let mut bucket = RateLimiter::new(10, 0, t0);
        for n in 0..200 {
            bucket
                .take(t0 + Duration::from_millis(100 * n))
                .expect("steady 10/s");
        }
    }

    #[test]
    fn connections_per_address_are_counted_and_given_back_on_drop() {
        let limits = Arc::new(ConnectionLimits::new(2, 3));
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = limits.open(a).expect("first");
        let _second = limits.open(a).expect("second");
        assert_eq!(
            limits.open(a).unwrap_err(),
            LimitExceeded::PerAddress { limit: 2 }
        );
        let _other = limits.open(b).expect("another address has its own count");
        assert_eq!(limits.open(b).unwrap_err(), LimitExceeded::Full);
        drop(first);
        assert_eq!(limits.open_from(a), 1);
        limits.open(a).expect("a place came back");
    }

    #[test]
    fn size_is_measured_in_utf8_bytes() {
        assert!(check_size("abc", 3).is_ok());
        let err = check_size("é", 1).unwrap_err();
        assert_eq!(err, LimitExceeded::TooLarge { size: 2, limit: 1 });
        assert!(err.to_string().contains("too large"));
    }
}
