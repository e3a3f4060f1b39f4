//! Capped exponential back-off for calls the server could not answer (503,
//! a refused connection): the delay doubles from `first` up to `max`, with
//! jitter so that many factories and agents do not retry in lockstep.

use crate::http::CallError;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub first: Duration,
    /// No delay is longer.
    pub max: Duration,
    /// Stop retrying once this much time has passed since the first try;
    /// `None` retries for as long as the caller waits.
    pub give_up_after: Option<Duration>,
}

impl Backoff {
    /// Retries for as long as the caller waits (the factory's loop, which
    /// ends on shutdown).
    pub const PATIENT: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(10),
        give_up_after: None,
    };

    /// Retries for up to ten minutes: long enough to ride out a server
    /// restart, short enough that an agent whose server is gone stops.
    pub const AGENT: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(10),
        give_up_after: Some(Duration::from_secs(600)),
    };

    /// The delay before retry number `attempt` (0 for the first retry),
    /// scaled by `jitter` in `[0, 1)` to between half and all of it.
    #[must_use]
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .first
            .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max);
        let capped = doubled.min(self.max);
        capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
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
    // 53 bits fit a f64's mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `attempt` until it succeeds, fails in a way retrying cannot help,
/// or `policy` gives up; sleeps between tries.
pub async fn retrying<T, F, Fut>(
    what: &str,
    policy: Backoff,
    mut attempt: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let started = Instant::now();
    let mut tries: u32 = 0;
    loop {
        match attempt().await {
            Err(e)
                if e.is_retryable()
                    && policy
                        .give_up_after
                        .is_none_or(|limit| started.elapsed() < limit) =>
            {
                let delay = policy.delay(tries, jitter());
                tracing::warn!(%e, ?delay, "{what}: will retry");
                tries = tries.saturating_add(1);
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(10),
        give_up_after: None,
    };

    #[test]
    fn delays_double_up_to_the_cap() {
        let full = |n| B.delay(n, 1.0);
        assert_eq!(full(0), Duration::from_millis(100));
        assert_eq!(full(1), Duration::from_millis(200));
        assert_eq!(full(6), Duration::from_millis(6400));
        assert_eq!(full(7), Duration::from_secs(10));
        assert_eq!(full(40), Duration::from_secs(10));
        assert_eq!(full(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_scales_to_between_half_and_all() {
        assert_eq!(B.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(B.delay(3, 0.5), Duration::from_millis(600));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_may_succeed_later() {
        let mut calls = 0;
        let r: Result<u8, CallError> = retrying("test", B, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(CallError::Transport("refused".into()))
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<u8, CallError> = retrying("test", B, || {
            calls += 1;
            async { Err(CallError::refused(404, "not_found", "no")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_limit() {
        let policy = Backoff {
            give_up_after: Some(Duration::from_secs(30)),
            ..B
        };
        let mut calls = 0u32;
        let r: Result<u8, CallError> = retrying("test", policy, || {
            calls += 1;
            async { Err(CallError::refused(503, "unavailable", "later")) }
        })
        .await;
        assert!(r.is_err());
        // 30 s of delays between 50 ms and 10 s each: a handful, not thousands.
        assert!((4..=40).contains(&calls), "{calls}");
    }
}
