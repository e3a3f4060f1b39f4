//! The factory and agent halves of `docs/protocol.md` as Rust types: what
//! this crate sends and what it reads back. Unknown states read as
//! `Other` so that a newer server does not break an older factory.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /0/factory/lease`.
#[derive(Debug, Serialize)]
pub struct LeaseRequest<'a> {
    pub free: &'a BTreeMap<String, u16>,
    pub wait_ms: u64,
    /// Workers this factory destroys already: not news to wait for.
    pub destroying: &'a std::collections::BTreeSet<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LeaseAnswer {
    pub lease: Option<Lease>,
    /// This factory's workers the server wants destroyed now.
    #[serde(default)]
    pub destroy: Vec<u32>,
}

/// A worker to make for a job.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Lease {
    pub worker: u32,
    pub job: u32,
    pub target: String,
    /// When the server gives up on the worker if it is not created; unknown
    /// (0) for a lease taken over from the listing after a restart.
    #[serde(default)]
    pub expires_at_ms: u64,
}

/// `POST /0/factory/workers/{id}/created`.
#[derive(Debug, Deserialize)]
pub struct Bootstrap {
    pub bootstrap: String,
}

/// `GET /0/factory/workers`.
#[derive(Debug, Deserialize)]
pub struct Listing {
    pub workers: Vec<Listed>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Listed {
    pub id: u32,
    pub job: u32,
    pub target: String,
    pub state: ListedState,
    pub want: Want,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListedState {
    Leased,
    Created,
    Online,
    Releasing,
    #[serde(other)]
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    Keep,
    Destroy,
    #[serde(other)]
    Other,
}

/// An empty body (`{}`), for calls that take none.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// An empty answer (`{}`).
#[derive(Debug, Deserialize)]
pub struct Done {}

/// `POST /0/agent/bootstrap`.
#[derive(Debug, Serialize)]
pub struct BootstrapRequest<'a> {
    pub key: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Bootstrapped {
    pub worker: u32,
    pub token: String,
}

/// `POST /0/agent/start`: the job bound to this worker.
#[derive(Debug, Deserialize)]
pub struct Started {
    pub job: u32,
    pub name: String,
    pub deadline_ms: u64,
    pub tasks: Vec<Task>,
    /// The job token, for `bmat`.
    pub token: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Task {
    pub name: String,
    pub script: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// `POST /0/agent/output`.
#[derive(Debug, Serialize)]
pub struct Output<'a> {
    pub task: &'a str,
    pub stream: Stream,
    pub text: &'a str,
}

/// `GET /0/agent/control`.
#[derive(Debug, Deserialize)]
pub struct Control {
    pub ended: bool,
    #[serde(default)]
    pub outcome: Option<serde_json::Value>,
}

/// `POST /0/agent/finish`.
#[derive(Debug, Serialize)]
pub struct Finish<'a> {
    pub succeeded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
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
        assert_eq!(l.workers[0].state, ListedState::Online);
        assert_eq!(l.workers[0].want, Want::Keep);
        assert_eq!(l.workers[1].state, ListedState::Other);
        assert_eq!(l.workers[1].want, Want::Other);
    }

    #[test]
    fn lease_answers_read_with_and_without_a_lease() {
        let a: LeaseAnswer = serde_json::from_str(
            r#"{"lease": {"worker": 5, "job": 3, "target": "u", "expires_at_ms": 9}, "destroy": [2]}"#,
        )
        .expect("parses");
        assert_eq!(a.lease.map(|l| l.worker), Some(5));
        assert_eq!(a.destroy, vec![2]);
        let a: LeaseAnswer =
            serde_json::from_str(r#"{"lease": null, "destroy": []}"#).expect("parses");
        assert!(a.lease.is_none());
    }

    #[test]
    fn finish_leaves_out_a_missing_reason() {
        let ok = serde_json::to_string(&Finish {
            succeeded: true,
            reason: None,
        })
        .expect("serialises");
        assert_eq!(ok, r#"{"succeeded":true}"#);
    }
}
