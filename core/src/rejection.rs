//! Rejections: inputs that do not fit the state. Data, never a panic; the
//! state is unchanged. Each has a stable `code()` that the API returns.

use crate::ids::{
    FactoryId, JobId, LeaseId, Privilege, ResourceId, TargetId, TypeId, WellId, WorkerId,
};
use crate::job::Outcome;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("no job {job}")]
    UnknownJob { job: JobId },
    #[error("no {lease}")]
    UnknownLease { lease: LeaseId },
    #[error("no resource {resource}")]
    UnknownResource { resource: ResourceId },
    #[error("no {worker}")]
    UnknownWorker { worker: WorkerId },
    #[error("no {well}")]
    UnknownWell { well: WellId },
    #[error("no {factory}")]
    UnknownFactory { factory: FactoryId },
    #[error("unknown target {target:?}")]
    UnknownTarget { target: TargetId },
    #[error("unknown resource type {rtype:?}")]
    UnknownType { rtype: TypeId },
    #[error("{what} is gone: it ended or expired earlier")]
    Gone { what: String },
    #[error("{what} belongs to someone else")]
    NotYours { what: String },
    #[error("{what} is not served by {by}")]
    NotServed { what: String, by: String },
    #[error("{lease} has expired; whatever it covered is being released")]
    LeaseExpired { lease: LeaseId },
    #[error("{what} was already reported")]
    Duplicate { what: String },
    #[error("{what} is {state}, and this needs it {wanted}")]
    WrongState {
        what: String,
        state: &'static str,
        wanted: &'static str,
    },
    #[error("{job} has already ended ({outcome:?})")]
    JobEnded { job: JobId, outcome: Outcome },
    #[error(
        "{job} has ended and left the scheduler since the submission looked; look up its outcome and submit again"
    )]
    DependencyRetired { job: JobId },
    #[error("{job} does not wait for inputs (it had none, or they are whole)")]
    NotAwaitingInputs { job: JobId },
    #[error("{job} is not running")]
    JobNotRunning { job: JobId },
    #[error("{job} does not hold everything it asked for yet")]
    JobNotReady { job: JobId },
    #[error("{what} requires the privilege {privilege:?}")]
    PrivilegeMissing { privilege: Privilege, what: String },
    #[error("{count} of {rtype} asked for; one job may have between 1 and {max}")]
    BadCount { rtype: TypeId, count: u16, max: u16 },
    #[error("too many {what}: at most {max}")]
    LimitExceeded { what: &'static str, max: u64 },
    #[error(
        "bad name {name:?}: use 1 to 63 lower-case letters, digits, '-', '.' or '_', starting with a letter"
    )]
    BadName { name: String },
    #[error("bad pool: {reason}")]
    BadPool { reason: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
}

impl Rejection {
    /// A stable, machine-readable code. Changing one breaks clients.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnknownJob { .. } => "unknown_job",
            Rejection::UnknownLease { .. } => "unknown_lease",
            Rejection::UnknownResource { .. } => "unknown_resource",
            Rejection::UnknownWorker { .. } => "unknown_worker",
            Rejection::UnknownWell { .. } => "unknown_well",
            Rejection::UnknownFactory { .. } => "unknown_factory",
            Rejection::UnknownTarget { .. } => "unknown_target",
            Rejection::UnknownType { .. } => "unknown_type",
            Rejection::Gone { .. } => "gone",
            Rejection::NotYours { .. } => "not_yours",
            Rejection::NotServed { .. } => "not_served",
            Rejection::LeaseExpired { .. } => "lease_expired",
            Rejection::Duplicate { .. } => "duplicate",
            Rejection::WrongState { .. } => "wrong_state",
            Rejection::JobEnded { .. } => "job_ended",
            Rejection::DependencyRetired { .. } => "dependency_retired",
            Rejection::NotAwaitingInputs { .. } => "not_awaiting_inputs",
            Rejection::JobNotRunning { .. } => "job_not_running",
            Rejection::JobNotReady { .. } => "job_not_ready",
            Rejection::PrivilegeMissing { .. } => "privilege_missing",
            Rejection::BadCount { .. } => "bad_count",
            Rejection::LimitExceeded { .. } => "limit_exceeded",
            Rejection::BadName { .. } => "bad_name",
            Rejection::BadPool { .. } => "bad_pool",
            Rejection::AlreadyExists { .. } => "already_exists",
        }
    }
}
