//! Answers: what `step` says back to whoever sent an input, beside the
//! events it persists. A handler answers from this, never by searching the
//! events for the one it hopes is there.

use crate::ids::{JobId, LeaseId, ResourceId, TargetId, TypeId, WorkerId};
use crate::time::Time;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Answer {
    /// The input was taken; there is nothing more to say than that.
    #[default]
    Done,
    /// `SubmitJob`: the job's id.
    Submitted { job: JobId },
    /// `RequestLease`: a group granted to the well. `deadline` is the job's,
    /// a hint for the lifetime of tokens the well makes.
    LeaseGranted {
        lease: LeaseId,
        job: JobId,
        rtype: TypeId,
        resources: Vec<ResourceId>,
        deadline: Time,
        expires_at: Time,
    },
    /// `RequestLease` or `RequestWorker`: nothing to grant now (nothing
    /// waiting fits, or an operator holds new leases).
    NoLease,
    /// `RenewLease`: the lease's new expiry.
    LeaseRenewed { expires_at: Time },
    /// `RequestWorker`: a job's worker for the factory to create by
    /// `expires_at`.
    WorkerLeased {
        worker: WorkerId,
        job: JobId,
        target: TargetId,
        expires_at: Time,
    },
    /// `StartJob`: the job has begun; it must end by `deadline`.
    Started { job: JobId, deadline: Time },
}
