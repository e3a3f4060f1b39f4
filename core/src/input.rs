//! Inputs: everything the outside world can ask of or tell the scheduler.
//! Each is an imperative; `step` answers it with events and effects or a
//! rejection.

use crate::ids::{FactoryId, JobId, LeaseId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::job::JobSpec;
use crate::registry::{Pool, TargetSpec, TypeSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "input")]
pub enum Input {
    // Administrators.
    DefineType {
        rtype: TypeId,
        spec: TypeSpec,
    },
    DefineTarget {
        target: TargetId,
        spec: TargetSpec,
    },
    RegisterWell {
        well: WellId,
        pools: Vec<Pool>,
    },
    RegisterFactory {
        factory: FactoryId,
        capacity: BTreeMap<TargetId, u16>,
    },
    /// Stop (or resume) granting new leases to wells and factories.
    HoldLeases {
        held: bool,
    },
    /// An operator has dealt with a held resource; its well tries again.
    ReleaseHeld {
        resource: ResourceId,
    },

    // Users.
    SubmitJob(JobSpec),
    CancelJob {
        job: JobId,
    },
    /// The server holds every input the job's submitter said it would
    /// upload, whole.
    InputsComplete {
        job: JobId,
    },

    // Wells.
    RequestLease {
        well: WellId,
        free: BTreeMap<TypeId, u16>,
    },
    RenewLease {
        well: WellId,
        lease: LeaseId,
    },
    ReportReady {
        well: WellId,
        resource: ResourceId,
    },
    ReportFailed {
        well: WellId,
        resource: ResourceId,
        retryable: bool,
    },
    ConfirmDestroyed {
        well: WellId,
        resource: ResourceId,
    },
    ReportDestroyFailed {
        well: WellId,
        resource: ResourceId,
    },

    // Factories.
    RequestWorker {
        factory: FactoryId,
        free: BTreeMap<TargetId, u16>,
    },
    ReportWorkerCreated {
        factory: FactoryId,
        worker: WorkerId,
    },
    ReportWorkerLost {
        factory: FactoryId,
        worker: WorkerId,
    },
    ConfirmWorkerDestroyed {
        factory: FactoryId,
        worker: WorkerId,
    },

    // Agents.
    ReportWorkerOnline {
        worker: WorkerId,
    },
    StartJob {
        worker: WorkerId,
    },
    FinishJob {
        worker: WorkerId,
        succeeded: bool,
    },

    /// Time has passed: whatever is due at `now` (lease expiry, worker
    /// lease expiry, job timeout) happens.
    Tick,
}
