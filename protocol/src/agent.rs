//! The agent protocol and the job's side of it, for `bmat`
//! (`docs/protocol.md`, "Agents", "bmat").

use crate::jobs::Task;
use crate::{JobId, ResourceId, TypeId, WorkerId};
use aquifer_core::Outcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /0/agent/bootstrap`. The one-time key is the credential, sent
/// as `Authorization: Bearer KEY`: the server checks it before it reads a
/// byte of the body, and then does not read `key`. Agents before 2026-12
/// sent the key only here; that is still taken (within the route's 1 KiB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The worker token the agent will use, which it made itself
    /// ([`crate::token::compose`] of random bytes), so that a try whose
    /// answer was lost can be asked again with that token in the header
    /// and answered the same. Without it the server makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Bootstrapped {
    pub worker: WorkerId,
    pub token: String,
}

/// `POST /0/agent/start`: the job bound to this worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Started {
    pub job: JobId,
    pub name: String,
    pub deadline_ms: u64,
    pub tasks: Vec<Task>,
    /// The job token, for `bmat`; it stops working when the job ends.
    pub token: String,
    /// What to keep when the tasks end (`crate::outputs::OutputRule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_rules: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// `POST /0/agent/output`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub task: String,
    pub stream: Stream,
    pub text: String,
}

/// `GET /0/agent/control?wait_ms=W`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ControlQuery {
    #[serde(default)]
    pub wait_ms: u64,
}

/// Whether the agent must stop: the job ended (cancelled, timed out) or
/// the worker is no longer wanted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Control {
    pub ended: bool,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

/// `POST /0/agent/finish`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Finish {
    pub succeeded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One of the running job's resources, by its name in the job file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobResource {
    pub name: String,
    pub rtype: TypeId,
    pub resource: ResourceId,
    pub metadata: BTreeMap<String, String>,
    /// Only when one resource is asked for by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
}

/// `GET /0/job/resources`: metadata only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobResources {
    pub resources: Vec<JobResource>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_leaves_out_a_missing_reason() {
        let ok = serde_json::to_string(&Finish {
            succeeded: true,
            reason: None,
        })
        .expect("serialises");
        assert_eq!(ok, r#"{"succeeded":true}"#);
    }

    #[test]
    fn control_reads_the_outcome_as_the_core_writes_it() {
        let c: Control =
            serde_json::from_str(r#"{"ended": true, "outcome": "cancelled"}"#).expect("parses");
        assert_eq!(c.outcome, Some(Outcome::Cancelled));
        let c: Control =
            serde_json::from_str(r#"{"ended": false, "outcome": null}"#).expect("parses");
        assert!(!c.ended);
    }
}
