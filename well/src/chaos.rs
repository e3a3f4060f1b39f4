//! The `chaos` well, for tests: it makes nothing real, but fails, dawdles
//! and crashes as configured. What it has "made" is kept in a state file,
//! so a restarted chaos well owns up to what it made before it crashed and
//! reconcile can clean it up.
//!
//! Every decision comes from an RNG seeded with the configured seed and the
//! resource id (and, for destruction, the attempt), not from one shared
//! stream: the same configuration fails the same resources whatever order
//! concurrent creates happen to run in.

use crate::config::{ConfiguredWell, Serves, WellSettings};
use crate::statefile::{self, StateError};
use crate::well::{CreateError, CreateRequest, Created, Owned, Well};
use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

fn yes() -> bool {
    true
}

/// The `[well]` table of a chaos well (`kind = "chaos"`). It serves every
/// type in the configuration's `[capacity]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosConfig {
    #[serde(default)]
    pub seed: u64,
    /// The chance that a create fails (before making anything).
    #[serde(default)]
    pub create_fail_probability: f64,
    /// Whether those failures say the job may ask again.
    #[serde(default = "yes")]
    pub create_fail_retryable: bool,
    /// The chance that one attempt to destroy fails.
    #[serde(default)]
    pub destroy_fail_probability: f64,
    /// `[lo, hi]`: each create takes a uniform time in this range.
    #[serde(default)]
    pub create_delay_ms: [u64; 2],
    #[serde(default)]
    pub destroy_delay_ms: [u64; 2],
    /// The process exits during its Nth create, after making the thing and
    /// before anyone hears of it.
    #[serde(default)]
    pub crash_after_creates: Option<u64>,
    /// The chance that a create exits the process the same way.
    #[serde(default)]
    pub crash_in_create_probability: f64,
    /// The chance that a create never returns (before making anything),
    /// as a well stuck on a dead peer does: the runner's
    /// `create_timeout_ms` has to cut it off.
    #[serde(default)]
    pub create_hang_probability: f64,
    /// The chance that one attempt to destroy never returns, cut off by
    /// `destroy_timeout_ms`; the thing stays made until a later attempt.
    #[serde(default)]
    pub destroy_hang_probability: f64,
}

impl WellSettings for ChaosConfig {
    const KIND: &'static str = "chaos";

    fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("create_fail_probability", self.create_fail_probability),
            ("destroy_fail_probability", self.destroy_fail_probability),
            (
                "crash_in_create_probability",
                self.crash_in_create_probability,
            ),
            ("create_hang_probability", self.create_hang_probability),
            ("destroy_hang_probability", self.destroy_hang_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} is {p}: use a number from 0 to 1"));
            }
        }
        for (name, [lo, hi]) in [
            ("create_delay_ms", self.create_delay_ms),
            ("destroy_delay_ms", self.destroy_delay_ms),
        ] {
            if lo > hi {
                return Err(format!(
                    "{name} is [{lo}, {hi}]: the first bound is the lower"
                ));
            }
        }
        if self.crash_after_creates == Some(0) {
            return Err("crash_after_creates counts from 1".into());
        }
        Ok(())
    }

    fn serves(&self) -> Serves<'_> {
        Serves::Named
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChaosState {
    /// Resource id to type, for everything made and not yet destroyed.
    made: BTreeMap<u32, String>,
}

/// What a crash does. The default exits the process; tests put in a hook
/// that stops the runner instead, since exiting would end the test.
pub type CrashHook = Arc<dyn Fn() + Send + Sync>;

pub struct ChaosWell {
    config: ChaosConfig,
    path: PathBuf,
    state: Mutex<ChaosState>,
    creates: AtomicU64,
    destroy_attempts: Mutex<BTreeMap<u32, u64>>,
    crash: CrashHook,
}

/// splitmix64: spreads nearby seeds (resource 11, 12, ...) over the whole
/// seed space.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl ConfiguredWell for ChaosWell {
    type Settings = ChaosConfig;

    async fn from_settings(settings: ChaosConfig, data_dir: &Path) -> anyhow::Result<ChaosWell> {
        ChaosWell::open(settings, data_dir).context("opening the chaos well's state")
    }
}

impl ChaosWell {
    /// A chaos well whose state lives in `data_dir/chaos.json`.
    pub fn open(config: ChaosConfig, data_dir: &Path) -> Result<ChaosWell, StateError> {
        statefile::ensure_dir(data_dir)?;
        let path = data_dir.join("chaos.json");
        let state: ChaosState = statefile::load(&path)?;
        Ok(ChaosWell {
            config,
            path,
            state: Mutex::new(state),
            creates: AtomicU64::new(0),
            destroy_attempts: Mutex::new(BTreeMap::new()),
            crash: Arc::new(|| {
                tracing::error!("chaos: crashing on purpose");
                std::process::exit(101)
            }),
        })
    }

    /// Replaces what a crash does.
    #[must_use]
    pub fn with_crash(mut self, hook: CrashHook) -> ChaosWell {
        self.crash = hook;
        self
    }

    fn rng(&self, resource: u32, salt: u64) -> StdRng {
        let seed = mix(self.config.seed ^ mix(u64::from(resource) ^ mix(salt)));
        StdRng::seed_from_u64(seed)
    }

    async fn persist(&self, state: &ChaosState) -> Result<(), String> {
        let (path, state) = (self.path.clone(), state.clone());
        tokio::task::spawn_blocking(move || statefile::store(&path, &state))
            .await
            .map_err(|e| format!("writing the state file: {e}"))?
            .map_err(|e| e.to_string())
    }

    /// Draws only when `p` is above zero, so that a configuration without
    /// this kind of fault decides everything else as it did before.
    fn chance(rng: &mut StdRng, p: f64) -> bool {
        p > 0.0 && rng.random_bool(p)
    }

    async fn delay(rng: &mut StdRng, [lo, hi]: [u64; 2]) {
        if hi > 0 {
            let ms = rng.random_range(lo..=hi);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

impl Well for ChaosWell {
    async fn create(&self, req: &CreateRequest) -> Result<Created, CreateError> {
        let mut rng = self.rng(req.resource, 0);
        Self::delay(&mut rng, self.config.create_delay_ms).await;
        if Self::chance(&mut rng, self.config.create_hang_probability) {
            tracing::warn!(resource = req.resource, "chaos: this create hangs");
            std::future::pending::<()>().await;
        }
        if rng.random_bool(self.config.create_fail_probability) {
            return Err(CreateError {
                reason: format!("chaos: create of resource {} failed", req.resource),
                retryable: self.config.create_fail_retryable,
            });
        }
        {
            let mut state = self.state.lock().await;
            let mut next = state.clone();
            next.made.insert(req.resource, req.rtype.clone());
            self.persist(&next).await.map_err(CreateError::retryable)?;
            *state = next;
        }
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        let crash = self.config.crash_after_creates == Some(n)
            || rng.random_bool(self.config.crash_in_create_probability);
        if crash {
            (self.crash)();
            // Only a test's hook returns; the thing is made and nobody is
            // told, as after a real crash.
            std::future::pending::<()>().await;
        }
        let token: String = (0..16)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect();
        Ok(Created {
            metadata: BTreeMap::from([
                ("chaos".to_string(), "yes".to_string()),
                ("resource".to_string(), req.resource.to_string()),
                ("rtype".to_string(), req.rtype.clone()),
            ]),
            secrets: BTreeMap::from([("token".to_string(), token)]),
        })
    }

    async fn destroy(&self, resource: u32, _rtype: &str) -> Result<(), String> {
        let attempt = {
            let mut attempts = self.destroy_attempts.lock().await;
            let a = attempts.entry(resource).or_insert(0);
            *a += 1;
            *a
        };
        let mut rng = self.rng(resource, attempt);
        Self::delay(&mut rng, self.config.destroy_delay_ms).await;
        if Self::chance(&mut rng, self.config.destroy_hang_probability) {
            tracing::warn!(resource, attempt, "chaos: this destroy hangs");
            std::future::pending::<()>().await;
        }
        if rng.random_bool(self.config.destroy_fail_probability) {
            return Err(format!(
                "chaos: destroy of resource {resource} failed (attempt {attempt})"
            ));
        }
        let mut state = self.state.lock().await;
        if state.made.contains_key(&resource) {
            let mut next = state.clone();
            next.made.remove(&resource);
            self.persist(&next).await?;
            *state = next;
        }
        self.destroy_attempts.lock().await.remove(&resource);
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let state = self.state.lock().await;
        Ok((state.made.iter())
            .map(|(&resource, rtype)| Owned {
                resource,
                rtype: rtype.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn req(resource: u32) -> CreateRequest {
        CreateRequest {
            resource,
            rtype: "pg".into(),
            job: 1,
            deadline_ms: 0,
        }
    }

    /// Which of resources 0..100 fail to create under `config`.
    async fn failures(config: &ChaosConfig) -> Vec<u32> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let w = ChaosWell::open(config.clone(), dir.path()).expect("opened");
        let mut out = Vec::new();
        // Backwards, so the order of creates differs from the ids'.
        for r in (0..100).rev() {
            if w.create(&req(r)).await.is_err() {
                out.push(r);
            }
        }
        out.sort_unstable();
        out
    }

    #[tokio::test]
    async fn the_seed_decides_which_creates_fail() {
        let c = ChaosConfig {
            seed: 7,
            create_fail_probability: 0.3,
            ..ChaosConfig::default()
        };
        let a = failures(&c).await;
        assert_eq!(a, failures(&c).await, "same seed, same failures");
        assert!((15..=45).contains(&a.len()), "about 30 of 100: {}", a.len());
        let other = failures(&ChaosConfig { seed: 8, ..c }).await;
        assert_ne!(a, other, "another seed, other failures");
    }

    #[tokio::test]
    async fn what_it_made_survives_a_restart_until_destroyed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let c = ChaosConfig {
            create_fail_probability: 1.0,
            create_fail_retryable: false,
            ..ChaosConfig::default()
        };
        let w = ChaosWell::open(c, dir.path()).expect("opened");
        let e = w.create(&req(1)).await.expect_err("always fails");
        assert!(!e.retryable);
        assert_eq!(
            w.list_owned().await,
            Ok(vec![]),
            "a failed create made nothing"
        );

        let w = ChaosWell::open(ChaosConfig::default(), dir.path()).expect("opened");
        let made = w.create(&req(2)).await.expect("made");
        assert_eq!(made.metadata.get("resource").map(String::as_str), Some("2"));
        assert_eq!(made.secrets.get("token").map(String::len), Some(32));
        drop(w);
        let w = ChaosWell::open(ChaosConfig::default(), dir.path()).expect("reopened");
        let owned = Owned {
            resource: 2,
            rtype: "pg".into(),
        };
        assert_eq!(w.list_owned().await, Ok(vec![owned]));
        w.destroy(2, "pg").await.expect("destroyed");
        w.destroy(2, "pg").await.expect("idempotent");
        assert_eq!(w.list_owned().await, Ok(vec![]));
    }

    #[tokio::test]
    async fn destruction_fails_by_attempt_not_forever() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let c = ChaosConfig {
            destroy_fail_probability: 0.5,
            ..ChaosConfig::default()
        };
        let w = ChaosWell::open(c, dir.path()).expect("opened");
        w.create(&req(3)).await.expect("made");
        let mut attempts = 0;
        while w.destroy(3, "pg").await.is_err() {
            attempts += 1;
            assert!(attempts < 64, "a coin that never lands heads");
        }
        assert_eq!(w.list_owned().await, Ok(vec![]));
    }

    #[tokio::test]
    async fn it_crashes_on_the_nth_create_after_making_the_thing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let crashed = Arc::new(AtomicBool::new(false));
        let flag = crashed.clone();
        let c = ChaosConfig {
            crash_after_creates: Some(2),
            ..ChaosConfig::default()
        };
        let w = ChaosWell::open(c, dir.path())
            .expect("opened")
            .with_crash(Arc::new(move || flag.store(true, Ordering::SeqCst)));
        w.create(&req(1)).await.expect("the first");
        assert!(!crashed.load(Ordering::SeqCst));
        let second = tokio::time::timeout(Duration::from_millis(200), w.create(&req(2))).await;
        assert!(second.is_err(), "a crashed create never returns");
        assert!(crashed.load(Ordering::SeqCst));
        assert_eq!(
            w.list_owned().await.map(|o| o.len()),
            Ok(2),
            "the second was made"
        );
    }

    #[test]
    fn refuses_impossible_settings() {
        let ok = ChaosConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let p = ChaosConfig {
            create_fail_probability: 1.5,
            ..ChaosConfig::default()
        };
        assert!(p.validate().is_err());
        let d = ChaosConfig {
            destroy_delay_ms: [5, 1],
            ..ChaosConfig::default()
        };
        assert!(d.validate().is_err());
    }
}
