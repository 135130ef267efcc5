use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::CoordError;

/// A keyed rate limiter local to this process (GCRA from the `governor`
/// crate), for dropping floods of events cheaply before they reach Redis.
/// Limits shared by all replicas use [`super::Coordinator::check_rate`].
///
/// It reads the system's monotonic clock, not `tokio::time`, so paused time in
/// tests does not affect it.
pub struct LocalLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl LocalLimiter {
    /// Allows bursts of `limit` events per key, refilled evenly over `window`
    /// (one event per `window / limit`).
    pub fn new(limit: u32, window: Duration) -> Result<Self, CoordError> {
        let burst = NonZeroU32::new(limit).ok_or_else(|| CoordError::InvalidOption {
            name: "local rate limit",
            reason: "must allow at least 1 event".to_string(),
        })?;
        let quota = Quota::with_period(window / limit)
            .ok_or_else(|| CoordError::InvalidOption {
                name: "local rate window",
                reason: format!("{window:?} divided by {limit} events is zero"),
            })?
            .allow_burst(burst);
        Ok(Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one event for `key`. Returns the time until the next event
    /// would be allowed when the limit is reached.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose limit has fully refilled, so that the memory used
    /// stays proportional to recently active keys. Call it periodically.
    pub fn forget_idle_keys(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Number of keys currently tracked.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_limiter_allows_burst_then_limits() {
        let limiter = LocalLimiter::new(3, Duration::from_secs(60)).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check("alice"), Ok(()));
        }
        let wait = limiter.check("alice").unwrap_err();
        assert!(wait > Duration::ZERO, "wait {wait:?}");
        assert!(wait <= Duration::from_secs(20), "wait {wait:?}");
    }

    #[test]
    fn local_limiter_keys_are_independent() {
        let limiter = LocalLimiter::new(1, Duration::from_secs(60)).unwrap();
        assert_eq!(limiter.check("alice"), Ok(()));
        assert!(limiter.check("alice").is_err());
        assert_eq!(limiter.check("bob"), Ok(()));
        assert_eq!(limiter.tracked_keys(), 2);
    }

    #[test]
    fn local_limiter_rejects_zero_limit() {
        assert!(LocalLimiter::new(0, Duration::from_secs(1)).is_err());
    }
}
