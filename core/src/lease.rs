//! Leases: the grant of one group to one well, until it is fulfilled or
//! ends. Which group a well gets is the queue's business (`queue`).

use crate::ids::{JobId, ResourceId, WellId};
use crate::time::Time;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Lease {
    pub job: JobId,
    pub group: u8,
    pub well: WellId,
    pub resources: Vec<ResourceId>,
    /// Unless renewed or fulfilled by then, the lease expires: what it
    /// covers is released and the group goes back to its place.
    pub expires_at: Time,
}
