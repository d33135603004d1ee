//! A token bucket for ICMP error messages.
//!
//! RFC 1812 section 4.3.2.8 asks routers to limit the rate at which they originate ICMP errors,
//! so that a flood of bad packets cannot turn the node into an amplifier. The clock is passed
//! in, so tests drive it deterministically.

use std::time::Instant;

/// Tokens refill at `rate_per_sec` up to `burst`; each message takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: u32,
    burst: u32,
    /// Tokens in millionths, so that sub-token refills over short intervals are not lost.
    micro_tokens: u64,
    last_refill: Option<Instant>,
}

const MICRO: u64 = 1_000_000;

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate_per_sec,
            burst,
            micro_tokens: u64::from(burst) * MICRO,
            last_refill: None,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.micro_tokens >= MICRO {
            self.micro_tokens -= MICRO;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now: Instant) {
        let Some(last) = self.last_refill else {
            self.last_refill = Some(now);
            return;
        };
        // A clock that went backwards (it cannot with Instant, but tests may feed any value)
        // simply adds nothing.
        let elapsed = now.saturating_duration_since(last);
        let added = elapsed
            .as_micros()
            .saturating_mul(u128::from(self.rate_per_sec));
        let cap = u64::from(self.burst) * MICRO;
        let added = u64::try_from(added).unwrap_or(u64::MAX);
        self.micro_tokens = self.micro_tokens.saturating_add(added).min(cap);
        if now > last {
            self.last_refill = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_is_available_at_once_then_refused() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100, 5);
        for i in 0..5 {
            assert!(bucket.try_take(t0), "token {i} of the burst");
        }
        assert!(!bucket.try_take(t0));
    }

    #[test]
    fn tokens_refill_at_the_configured_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100, 5);
        while bucket.try_take(t0) {}
        // 100 per second is one per 10 ms: 9 ms is not enough, 10 ms is.
        assert!(!bucket.try_take(t0 + Duration::from_millis(9)));
        assert!(bucket.try_take(t0 + Duration::from_millis(10)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(10)));
        // 35 ms later: three more tokens.
        let t1 = t0 + Duration::from_millis(45);
        assert_eq!((0..10).filter(|_| bucket.try_take(t1)).count(), 3);
    }

    #[test]
    fn refill_never_exceeds_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, 3);
        while bucket.try_take(t0) {}
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 3);
    }

    #[test]
    fn zero_rate_allows_only_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0, 1);
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0 + Duration::from_secs(10)));
    }
}
