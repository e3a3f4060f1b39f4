//! Capped exponential back-off with jitter, for every retried HTTP call and
//! every failed destruction.

use std::time::Duration;

/// Waits that double from `base_ms` up to `cap_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base_ms: 100,
            cap_ms: 10_000,
        }
    }
}

impl Backoff {
    /// The longest wait before retry number `attempt` (0 for the first
    /// retry): `base_ms * 2^attempt`, never above `cap_ms`.
    #[must_use]
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        // 2^63 overflows any base; past it the cap rules anyway.
        let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// The wait before retry number `attempt`, drawn from the upper half
    /// of the ceiling by `jitter` in `[0, 1)`. Jitter keeps a fleet of
    /// wells that lost the server at once from returning at once; the
    /// lower bound keeps the wait from collapsing to nothing.
    #[must_use]
    pub fn wait(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self.ceiling_ms(attempt);
        let half = ceiling / 2;
        let j = jitter.clamp(0.0, 1.0);
        // The product is at most `half`, so the cast cannot truncate.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let extra = ((ceiling - half) as f64 * j) as u64;
        Duration::from_millis(half + extra)
    }

    /// `wait` with jitter from the thread's RNG.
    #[must_use]
    pub fn wait_jittered(&self, attempt: u32) -> Duration {
        self.wait(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1_000,
        };
        let ceilings: Vec<u64> = (0..6).map(|a| b.ceiling_ms(a)).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn huge_attempts_stay_at_the_cap() {
        let b = Backoff {
            base_ms: 250,
            cap_ms: 30_000,
        };
        assert_eq!(b.ceiling_ms(62), 30_000);
        assert_eq!(b.ceiling_ms(63), 30_000);
        assert_eq!(b.ceiling_ms(u32::MAX), 30_000);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 10_000,
        };
        assert_eq!(b.wait(3, 0.0), Duration::from_millis(400));
        assert_eq!(b.wait(3, 0.5), Duration::from_millis(600));
        assert!(b.wait(3, 0.999_999) <= Duration::from_millis(800));
        // Out-of-range jitter is clamped rather than trusted.
        assert_eq!(b.wait(3, 7.0), Duration::from_millis(800));
        assert_eq!(b.wait(3, -1.0), Duration::from_millis(400));
        for attempt in 0..40 {
            let w = b.wait_jittered(attempt);
            let c = Duration::from_millis(b.ceiling_ms(attempt));
            assert!(
                w >= c / 2 && w <= c,
                "attempt {attempt}: {w:?} outside [{:?}, {c:?}]",
                c / 2
            );
        }
    }
}
