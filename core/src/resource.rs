//! Resource instances: whose they are, which well makes them, where they
//! are in their life, and what the server wants of each.

use crate::ids::{JobId, LeaseId, TypeId, WellId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Resource {
    pub job: JobId,
    pub group: u8,
    pub rtype: TypeId,
    pub well: WellId,
    pub state: ResourceState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ResourceState {
    /// The well is creating it under `lease`.
    Creating {
        lease: LeaseId,
    },
    Ready,
    /// The server wants it gone; the well is destroying it. `failures`
    /// counts destroy failures in a row.
    Releasing {
        failures: u8,
    },
    /// Destruction failed too often: an operator must look. Its capacity
    /// stays counted, since it may still exist.
    Held,
}

impl ResourceState {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ResourceState::Creating { .. } => "creating",
            ResourceState::Ready => "ready",
            ResourceState::Releasing { .. } => "releasing",
            ResourceState::Held => "held",
        }
    }

    /// Whether the job still counts it towards its group.
    #[must_use]
    pub fn is_live(&self) -> bool {
        matches!(self, ResourceState::Creating { .. } | ResourceState::Ready)
    }

    /// What the server wants of it. A well learns it from its listing;
    /// `Release` is the one rule behind `DestroyResource` effects too.
    #[must_use]
    pub fn want(&self) -> Want {
        match self {
            ResourceState::Creating { .. } | ResourceState::Ready => Want::Keep,
            ResourceState::Releasing { .. } => Want::Release,
            ResourceState::Held => Want::Hold,
        }
    }
}

/// What the server wants a well to do with a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Want {
    /// Being created or ready: keep it.
    Keep,
    /// Destroy it and confirm.
    Release,
    /// Destruction failed too often: leave it for an operator.
    Hold,
}
