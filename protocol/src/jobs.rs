//! The user API's job file (`docs/jobs.md`): what a submission carries.
//! The CLI reads it from TOML, the server from JSON; both are this type.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A job as a user writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub name: String,
    pub target: String,
    #[serde(default)]
    pub resources: Vec<ResourceRequest>,
    pub tasks: Vec<Task>,
    pub timeout_s: u64,
    #[serde(default)]
    pub depends_on: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequest {
    /// How the job's scripts refer to it (`bmat resource get NAME`).
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default = "one")]
    pub count: u16,
}

fn one() -> u16 {
    1
}

/// One script the agent runs, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    pub script: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}
