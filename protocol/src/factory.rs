//! The factory protocol (`docs/protocol.md`, "Factories").

use crate::{JobId, LeaseAnswer, LeaseRequest, TargetId, WorkerId};
use serde::{Deserialize, Serialize};

/// `POST /0/factory/lease`: free slots per target.
pub type FactoryLeaseRequest = LeaseRequest<TargetId, WorkerId>;
/// The answer: a worker to make, and the workers to destroy now.
pub type FactoryLeaseAnswer = LeaseAnswer<Grant, WorkerId>;

/// A worker to make for a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "FactoryGrant"))]
pub struct Grant {
    pub worker: WorkerId,
    pub job: JobId,
    pub target: TargetId,
    /// When the server gives up on the worker if it is not created; 0 for
    /// a lease taken over from the listing after a restart.
    #[serde(default)]
    pub expires_at_ms: u64,
}

/// `POST /0/factory/workers/{id}/created`: the agent's one-time key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Bootstrap {
    pub bootstrap: String,
}

/// `GET /0/factory/workers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "FactoryListing"))]
pub struct Listing {
    pub workers: Vec<Listed>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "FactoryListed"))]
pub struct Listed {
    pub id: WorkerId,
    pub job: JobId,
    pub target: TargetId,
    pub state: WorkerState,
    pub want: Want,
}

/// A worker's state in the server's books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Leased,
    Created,
    Online,
    Releasing,
    #[serde(other)]
    Other,
}

/// What the server wants of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Want {
    Keep,
    Destroy,
    #[serde(other)]
    Other,
}

impl From<&aquifer_core::worker::WorkerState> for WorkerState {
    fn from(s: &aquifer_core::worker::WorkerState) -> WorkerState {
        use aquifer_core::worker::WorkerState as Core;
        match s {
            Core::Leased { .. } => WorkerState::Leased,
            Core::Created => WorkerState::Created,
            Core::Online => WorkerState::Online,
            Core::Releasing => WorkerState::Releasing,
        }
    }
}

impl From<aquifer_core::worker::Want> for Want {
    fn from(w: aquifer_core::worker::Want) -> Want {
        use aquifer_core::worker::Want as Core;
        match w {
            Core::Keep => Want::Keep,
            Core::Destroy => Want::Destroy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_read_with_unknown_states() {
        let l: Listing = serde_json::from_str(
            r#"{"workers": [
                {"id": 1, "job": 2, "target": "t", "state": "online", "want": "keep"},
                {"id": 3, "job": 4, "target": "t", "state": "paused", "want": "later"}
            ]}"#,
        )
        .expect("parses");
        assert_eq!(l.workers[0].state, WorkerState::Online);
        assert_eq!(l.workers[0].want, Want::Keep);
        assert_eq!(l.workers[1].state, WorkerState::Other);
        assert_eq!(l.workers[1].want, Want::Other);
    }

    #[test]
    fn lease_answers_read_with_and_without_a_lease() {
        let a: FactoryLeaseAnswer = serde_json::from_str(
            r#"{"lease": {"worker": 5, "job": 3, "target": "u", "expires_at_ms": 9}, "destroy": [2]}"#,
        )
        .expect("parses");
        assert_eq!(a.lease.map(|l| l.worker), Some(WorkerId(5)));
        assert_eq!(a.destroy, vec![WorkerId(2)]);
        let a: FactoryLeaseAnswer =
            serde_json::from_str(r#"{"lease": null, "destroy": []}"#).expect("parses");
        assert!(a.lease.is_none());
    }
}
