//! The one back-off: capped exponential with jitter, for every retried
//! call and every failed destruction.
//!
//! The default cap is one second. A retry loop's job is to notice that the
//! server is back; a restart takes about a second, and a cap of ten meant a
//! well saw a four-second outage end five seconds late. Failures that cost
//! something to repeat (a destroy against a struggling cloud) choose a
//! higher cap.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Waits that double from `first` up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::RECONNECT
    }
}

impl Backoff {
    /// For calls to the aquifer server: see a restarted server within a
    /// second.
    pub const RECONNECT: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };

    /// The longest wait before retry number `attempt` (0 for the first
    /// retry): `first * 2^attempt`, never above `max`.
    #[must_use]
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.first
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The wait before retry number `attempt`, drawn from the upper half of
    /// the ceiling by `jitter` in `[0, 1]`. Jitter keeps a fleet that lost
    /// the server at once from returning at once; the lower bound keeps the
    /// wait from collapsing to nothing.
    #[must_use]
    pub fn wait(&self, attempt: u32, jitter: f64) -> Duration {
        self.ceiling(attempt)
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// `wait` with fresh jitter.
    #[must_use]
    pub fn wait_jittered(&self, attempt: u32) -> Duration {
        self.wait(attempt, jitter())
    }
}

/// A number in `[0, 1)` that differs between calls and processes. Std's
/// hasher is randomly keyed per instance, which is all the randomness
/// jitter needs.
#[must_use]
pub fn jitter() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // 53 bits fit an f64's mantissa exactly.
    #[allow(clippy::cast_precision_loss)]
    let x = (bits >> 11) as f64 / (1u64 << 53) as f64;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            first: MS(100),
            max: MS(1_000),
        };
        let ceilings: Vec<Duration> = (0..6).map(|a| b.ceiling(a)).collect();
        assert_eq!(
            ceilings,
            [MS(100), MS(200), MS(400), MS(800), MS(1_000), MS(1_000)]
        );
        assert_eq!(b.ceiling(u32::MAX), MS(1_000));
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let b = Backoff {
            first: MS(100),
            max: MS(10_000),
        };
        assert_eq!(b.wait(3, 0.0), MS(400));
        assert_eq!(b.wait(3, 0.5), MS(600));
        assert_eq!(b.wait(3, 7.0), MS(800));
        assert_eq!(b.wait(3, -1.0), MS(400));
        for attempt in 0..40 {
            let w = b.wait_jittered(attempt);
            let c = b.ceiling(attempt);
            assert!(
                w >= c / 2 && w <= c,
                "attempt {attempt}: {w:?} outside [{:?}, {c:?}]",
                c / 2
            );
        }
    }

    #[test]
    fn the_default_sees_a_restarted_server_within_a_second() {
        assert!((0..100).all(|a| Backoff::default().wait_jittered(a) <= Duration::from_secs(1)));
    }
}
