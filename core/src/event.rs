//! Events: the facts the core has decided, in the order they happened.
//! They are what the server persists; `apply` folds them into the state,
//! and replaying them rebuilds it.

use crate::ids::{FactoryId, JobId, LeaseId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::job::{Outcome, RunOn};
use crate::registry::{Pool, TargetSpec, TypeSpec};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    TypeDefined {
        rtype: TypeId,
        spec: TypeSpec,
    },
    TargetDefined {
        target: TargetId,
        spec: TargetSpec,
    },
    WellRegistered {
        well: WellId,
        pools: Vec<Pool>,
    },
    FactoryRegistered {
        factory: FactoryId,
        capacity: BTreeMap<TargetId, u16>,
    },
    LeasesHeld {
        held: bool,
    },

    JobSubmitted {
        job: JobId,
        target: TargetId,
        /// (type, count) in rank order.
        groups: Vec<(TypeId, u16)>,
        deadline: Time,
        /// The dependencies that had not ended at submission.
        depends_on: BTreeSet<JobId>,
        /// How those must end, where not on success.
        #[serde(
            default,
            skip_serializing_if = "BTreeMap::is_empty",
            deserialize_with = "crate::job::keyed_by_job"
        )]
        run_on: BTreeMap<JobId, RunOn>,
        /// Its submitter still has files to upload.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        awaits_inputs: bool,
        /// Who submitted it; logs written before owners were kept read 0.
        #[serde(default)]
        owner: u64,
    },
    DependencySettled {
        job: JobId,
        dependency: JobId,
    },
    /// The job's inputs are whole.
    InputsArrived {
        job: JobId,
    },
    AcquisitionBegan {
        job: JobId,
    },
    GroupQueued {
        job: JobId,
        group: u8,
    },
    LeaseGranted {
        lease: LeaseId,
        job: JobId,
        group: u8,
        rtype: TypeId,
        well: WellId,
        resources: Vec<ResourceId>,
        expires_at: Time,
    },
    LeaseRenewed {
        lease: LeaseId,
        expires_at: Time,
    },
    ResourceReady {
        resource: ResourceId,
    },
    /// Every resource of the lease is ready; the lease leaves the books.
    LeaseFulfilled {
        lease: LeaseId,
    },
    /// The lease ended before it was fulfilled; what it covered is released.
    LeaseEnded {
        lease: LeaseId,
        cause: LeaseEnd,
    },
    GroupReady {
        job: JobId,
        group: u8,
    },
    WorkerQueued {
        job: JobId,
    },
    WorkerLeased {
        worker: WorkerId,
        job: JobId,
        factory: FactoryId,
        expires_at: Time,
    },
    WorkerLeaseExpired {
        worker: WorkerId,
    },
    WorkerCreated {
        worker: WorkerId,
    },
    WorkerOnline {
        worker: WorkerId,
    },
    JobStarted {
        job: JobId,
    },
    JobEnded {
        job: JobId,
        outcome: Outcome,
    },
    ResourceReleased {
        resource: ResourceId,
    },
    WorkerReleased {
        worker: WorkerId,
    },
    DestroyFailed {
        resource: ResourceId,
    },
    ResourceHeld {
        resource: ResourceId,
    },
    HeldReleased {
        resource: ResourceId,
    },
    /// The well confirmed it gone: the resource leaves the books.
    ResourceDestroyed {
        resource: ResourceId,
    },
    WorkerDestroyed {
        worker: WorkerId,
    },
    /// Ended, and everything it held is confirmed gone.
    JobRetired {
        job: JobId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeaseEnd {
    Failed {
        resource: ResourceId,
        retryable: bool,
    },
    Expired,
    /// The job ended (cancelled, timed out, failed) while the lease was out.
    JobEnded,
}

impl Event {
    /// The job an event is about, when it is about one job directly.
    #[must_use]
    pub fn job(&self) -> Option<JobId> {
        match self {
            Event::JobSubmitted { job, .. }
            | Event::DependencySettled { job, .. }
            | Event::InputsArrived { job }
            | Event::AcquisitionBegan { job }
            | Event::GroupQueued { job, .. }
            | Event::LeaseGranted { job, .. }
            | Event::GroupReady { job, .. }
            | Event::WorkerQueued { job }
            | Event::WorkerLeased { job, .. }
            | Event::JobStarted { job }
            | Event::JobEnded { job, .. }
            | Event::JobRetired { job } => Some(*job),
            Event::TypeDefined { .. }
            | Event::TargetDefined { .. }
            | Event::WellRegistered { .. }
            | Event::FactoryRegistered { .. }
            | Event::LeasesHeld { .. }
            | Event::LeaseRenewed { .. }
            | Event::ResourceReady { .. }
            | Event::LeaseFulfilled { .. }
            | Event::LeaseEnded { .. }
            | Event::WorkerLeaseExpired { .. }
            | Event::WorkerCreated { .. }
            | Event::WorkerOnline { .. }
            | Event::ResourceReleased { .. }
            | Event::WorkerReleased { .. }
            | Event::DestroyFailed { .. }
            | Event::ResourceHeld { .. }
            | Event::HeldReleased { .. }
            | Event::ResourceDestroyed { .. }
            | Event::WorkerDestroyed { .. } => None,
        }
    }
}
