//! Jobs: what they ask for, where they are in their acquisition order, and
//! how they end. The inputs that change them live with whoever sends them
//! (`submit`, `agent`); acquiring and ending are `acquire` and `end`.

use crate::ids::{JobId, Privilege, TargetId, TypeId, WorkerId};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One resource request as a user writes it. Requests of the same type add
/// up into one group (rule 1); their names live in the store, not here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Request {
    pub rtype: TypeId,
    pub count: u16,
}

/// What a submission carries into the core. The owner's privileges are
/// checked against the target and types and then forgotten.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobSpec {
    pub target: TargetId,
    pub requests: Vec<Request>,
    pub timeout_ms: u64,
    pub depends_on: BTreeSet<JobId>,
    /// How each dependency must end for the job to run, where it is not
    /// the default `RunOn::Success` (rule 8).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "keyed_by_job"
    )]
    pub run_on: BTreeMap<JobId, RunOn>,
    /// The job's submitter still has files to upload: it acquires nothing
    /// until `Input::InputsComplete` says they are whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaits_inputs: bool,
    /// The outcomes of dependencies that have already left the books, as
    /// the store recorded them: the core forgets retired jobs, the caller
    /// does not.
    #[serde(deserialize_with = "keyed_by_job")]
    pub retired_outcomes: BTreeMap<JobId, Outcome>,
    pub privileges: BTreeSet<Privilege>,
    /// Who submits it (the store's user id; 0 is the operator), for the
    /// per-owner limit on jobs in the books.
    #[serde(default)]
    pub owner: u64,
}

/// How a dependency must end for the job that waits on it to run; a job
/// whose dependency ends otherwise fails (`Failure::Dependency`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunOn {
    /// It succeeded.
    #[default]
    Success,
    /// It ended any other way: failed, cancelled or timed out.
    Failure,
    /// It ended, however.
    Either,
}

impl RunOn {
    #[must_use]
    pub fn met_by(self, outcome: Outcome) -> bool {
        match self {
            RunOn::Success => outcome == Outcome::Succeeded,
            RunOn::Failure => outcome != Outcome::Succeeded,
            RunOn::Either => true,
        }
    }
}

/// Values keyed by job id, read from JSON object keys. Inside an
/// internally tagged enum (a logged `Input::SubmitJob`) serde hands the
/// keys over as strings, which a `JobId` does not take: read as strings,
/// then parsed, they come back whatever the enclosing shape.
pub(crate) fn keyed_by_job<'de, D, T>(d: D) -> Result<BTreeMap<JobId, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    use serde::de::Error as _;
    let keyed: BTreeMap<String, T> = BTreeMap::deserialize(d)?;
    (keyed.into_iter())
        .map(|(job, outcome)| {
            let id = job
                .parse::<u32>()
                .map_err(|_| D::Error::custom(format!("{job:?} is not a job id")))?;
            Ok((JobId(id), outcome))
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Job {
    pub target: TargetId,
    /// One group per type, in rank order: the acquisition order.
    pub groups: Vec<Group>,
    pub worker: WorkerWant,
    pub phase: Phase,
    /// Counted from submission; wells get it as a hint for token lifetimes.
    pub deadline: Time,
    /// The jobs this one still waits for (rule 8). Emptied as they end.
    pub depends_on: BTreeSet<JobId>,
    /// How those must end, where not on success (`JobSpec::run_on`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_on: BTreeMap<JobId, RunOn>,
    /// Its inputs are not yet whole (`JobSpec::awaits_inputs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaits_inputs: bool,
    /// Who submitted it (see `JobSpec::owner`).
    #[serde(default)]
    pub owner: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Group {
    pub rtype: TypeId,
    pub count: u16,
    pub state: GroupState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum GroupState {
    /// Not asked for yet.
    Idle,
    /// In the queue of its type (its place is its job's id), or being
    /// created under a lease. `failures` counts failed and expired leases.
    Acquiring { failures: u8 },
    /// Every instance is ready.
    Ready,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum WorkerWant {
    Idle,
    Queued,
    Bound(WorkerId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Phase {
    /// Waiting for the jobs it depends on or for its inputs; holds and
    /// asks for nothing.
    Blocked,
    /// Acquiring resources, then a worker, then waiting for the agent.
    Acquiring,
    Running,
    Ended(Outcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed(Failure),
    Cancelled,
    TimedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A task exited non-zero (the agent said so).
    Tasks,
    /// A well could not create a resource and said retrying would not help,
    /// or the group failed more often than the limit allows.
    Resource,
    /// The worker went away.
    WorkerLost,
    /// A job this one depends on did not end as it required (on success,
    /// unless the job said otherwise).
    Dependency,
}

impl std::fmt::Display for Outcome {
    /// In words, for people: `succeeded`, `failed: its tasks`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed(Failure::Tasks) => "failed: its tasks",
            Outcome::Failed(Failure::Resource) => "failed: a resource",
            Outcome::Failed(Failure::WorkerLost) => "failed: its worker was lost",
            Outcome::Failed(Failure::Dependency) => {
                "failed: a job it depends on did not end as required"
            }
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timed out",
        })
    }
}

impl Job {
    /// Whether it may begin acquiring: nothing it waits for is left.
    #[must_use]
    pub fn may_begin(&self) -> bool {
        self.phase == Phase::Blocked && self.depends_on.is_empty() && !self.awaits_inputs
    }

    /// How dependency `dep` must end for this job to run.
    #[must_use]
    pub fn runs_on(&self, dep: JobId) -> RunOn {
        self.run_on.get(&dep).copied().unwrap_or_default()
    }

    #[must_use]
    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    /// The first group not yet ready: under the ordered policy, the only one
    /// that may be outstanding.
    #[must_use]
    pub fn first_unready(&self) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.state != GroupState::Ready)
    }

    #[must_use]
    pub fn all_groups_ready(&self) -> bool {
        self.first_unready().is_none()
    }
}

/// Group indices are bounded by `Limits::groups_per_job_max` (a `u8`).
pub(crate) fn group_index(group: usize) -> u8 {
    u8::try_from(group).expect("groups per job are limited to a u8")
}
