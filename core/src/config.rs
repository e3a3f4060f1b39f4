//! The rules the core runs under and the limits it enforces.
//!
//! `Rules::production()` is the acquisition rule of DESIGN.md and the only
//! set the server accepts. The other variants exist so the model checker can
//! show, by counterexample, why each part of the rule is needed: every one
//! of them deadlocks.

use serde::{Deserialize, Serialize};

/// When a job asks for what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AcquisitionPolicy {
    /// One group outstanding at a time, in rank order, the worker last.
    Ordered,
    /// Mutant: every group and the worker outstanding at once.
    Parallel,
}

/// How a group of `count` instances of one type is granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantMode {
    /// The whole group in one lease, by one well with that many free slots.
    Together,
    /// Mutant: one instance per lease, so a job can hold part of a pool
    /// while it waits for more of it.
    OneByOne,
}

/// What a well's pool may serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PoolSharing {
    /// A pool belongs to exactly one resource type.
    PerType,
    /// Mutant: one pool may serve several types, so a rank no longer names
    /// one pool.
    Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Rules {
    pub acquisition: AcquisitionPolicy,
    pub grant: GrantMode,
    pub pools: PoolSharing,
}

impl Rules {
    /// The acquisition rule of DESIGN.md.
    #[must_use]
    pub const fn production() -> Rules {
        Rules {
            acquisition: AcquisitionPolicy::Ordered,
            grant: GrantMode::Together,
            pools: PoolSharing::PerType,
        }
    }
}

/// Limits and spans. Every queue and retry in the core is bounded by one of
/// these. Missing fields take their defaults when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// How long a well has to report on a lease before it expires; each
    /// renewal extends it by as much from the time of renewal.
    pub lease_ttl_ms: u64,
    /// How long a factory has to create the worker it leased.
    pub worker_lease_ttl_ms: u64,
    /// How many failed or expired leases one group may have: at this many
    /// the job fails rather than asking again.
    pub group_failures_max: u8,
    /// How many destroy failures in a row put a resource on hold for an
    /// operator.
    pub destroy_failures_max: u8,
    /// How many jobs may be in the books (not yet retired) at once; a
    /// submission beyond this is refused, not queued without bound.
    pub jobs_max: u32,
    /// How many of those one owner may have, so that one user cannot fill
    /// the books and lock every other user out.
    pub jobs_per_owner_max: u32,
    /// The most groups (distinct resource types) one job may ask for.
    pub groups_per_job_max: u8,
    /// The longest timeout a job may ask for.
    pub job_timeout_max_ms: u64,
    /// The most jobs one job may depend on.
    pub depends_per_job_max: u8,
}

impl Limits {
    /// The least a span may be: a lease or a job that ends before anybody
    /// can act on it is a misconfiguration, not a limit.
    pub const SPAN_MIN_MS: u64 = 1_000;

    /// Refuses limits the scheduler cannot work under, saying which and
    /// why: a count of 0 where at least one is needed (no destroy could
    /// ever fail, no job be queued), or a span under a second.
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("group_failures_max", u64::from(self.group_failures_max)),
            ("destroy_failures_max", u64::from(self.destroy_failures_max)),
            ("jobs_max", u64::from(self.jobs_max)),
            ("jobs_per_owner_max", u64::from(self.jobs_per_owner_max)),
            ("groups_per_job_max", u64::from(self.groups_per_job_max)),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(format!("limits: {name} must be at least 1"));
        }
        let spans = [
            ("lease_ttl_ms", self.lease_ttl_ms),
            ("worker_lease_ttl_ms", self.worker_lease_ttl_ms),
            ("job_timeout_max_ms", self.job_timeout_max_ms),
        ];
        if let Some((name, ms)) = spans.iter().find(|(_, ms)| *ms < Self::SPAN_MIN_MS) {
            return Err(format!(
                "limits: {name} is {ms} ms; it must be at least {} ms",
                Self::SPAN_MIN_MS
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lease_ttl_ms: 60_000,
            worker_lease_ttl_ms: 300_000,
            group_failures_max: 3,
            destroy_failures_max: 5,
            jobs_max: 100_000,
            jobs_per_owner_max: 10_000,
            groups_per_job_max: 16,
            job_timeout_max_ms: 7 * 24 * 3_600_000,
            depends_per_job_max: 16,
        }
    }
}
