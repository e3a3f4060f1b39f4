//! Workers: leased by a factory for one job once that job holds all its
//! resources (rule 3), created, brought online by the agent, released when
//! the job ends and forgotten when the factory confirms them destroyed.

use crate::ids::{FactoryId, JobId, TargetId};
use crate::time::Time;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Worker {
    pub job: JobId,
    pub factory: FactoryId,
    pub target: TargetId,
    pub state: WorkerState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum WorkerState {
    /// The factory was given the job and must create the worker by then.
    Leased { expires_at: Time },
    /// The factory made it; the agent has not checked in yet.
    Created,
    /// The agent has checked in with its bootstrap key.
    Online,
    /// The job is over (or the worker was lost): the factory must destroy it.
    Releasing,
}

impl WorkerState {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            WorkerState::Leased { .. } => "leased",
            WorkerState::Created => "created",
            WorkerState::Online => "online",
            WorkerState::Releasing => "releasing",
        }
    }

    /// What the server wants of it. A factory learns it from its listing;
    /// `Destroy` is the one rule behind `DestroyWorker` effects too.
    #[must_use]
    pub fn want(&self) -> Want {
        match self {
            WorkerState::Leased { .. } | WorkerState::Created | WorkerState::Online => Want::Keep,
            WorkerState::Releasing => Want::Destroy,
        }
    }
}

/// What the server wants a factory to do with a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Want {
    Keep,
    /// Destroy it and confirm (its agent stops its job first).
    Destroy,
}
