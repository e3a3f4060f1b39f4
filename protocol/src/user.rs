//! The user API's views of the scheduler (`docs/api.md`, "Users"): who a
//! token speaks for (`GET /0/whoami`) and why a job is where it is
//! (`GET /0/jobs/{id}/explain`); and the user id both APIs share.

use crate::jobs::{JobState, Outcome, by_name};
use crate::well::ResourceState;
use crate::{FactoryId, JobId, Privilege, ResourceId, TargetId, TypeId, WellId, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A user. The core keeps no books on users (the server's store does), so
/// this newtype lives here rather than among the core's ids. Jobs that the
/// bootstrap admin submitted belong to user 0, who is no stored user.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct UserId(pub u64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {}", self.0)
    }
}

/// What kind of principal a token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// The operator's bootstrap token.
    Admin,
    User,
    Well,
    Factory,
    /// An agent, on its worker's token.
    Worker,
    /// A running job, on the token `bmat` uses.
    Job,
    /// A worker's one-time key, good for the agent's bootstrap only.
    Bootstrap,
    /// A kind this client does not know (a newer server).
    #[serde(other)]
    Other,
}

impl fmt::Display for PrincipalKind {
    /// The name on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// `GET /0/whoami`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Whoami {
    pub kind: PrincipalKind,
    /// The principal's id among its kind (a user's, a well's, ...); `None`
    /// for the admin.
    pub id: Option<u64>,
    /// A user's privileges; empty for every other kind.
    #[serde(default)]
    pub privileges: BTreeSet<Privilege>,
}

/// `GET /0/jobs/{id}/explain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Explained {
    pub id: JobId,
    pub name: String,
    pub state: JobState,
    pub outcome: Option<Outcome>,
    /// The scheduler's view, while it still has the job (until it
    /// retires).
    pub explanation: Option<Explanation>,
    /// The whole wait-for chain, depth first: this job, then each job it
    /// waits on, with what those wait on in turn (at most 64 links).
    /// Empty once the job has retired.
    #[serde(default)]
    pub chain: Vec<ChainLink>,
    /// The names of the wells and factories the explanation names by id.
    #[serde(default, skip_serializing_if = "crate::jobs::Names::is_empty")]
    pub names: crate::jobs::Names,
}

/// One job of a wait-for chain (the core's `explain::chain`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChainLink {
    pub job: JobId,
    /// Steps from the job asked about, which is at 0.
    pub depth: u16,
    /// The job that waits on this one, one step nearer the one asked
    /// about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<JobId>,
    /// How it stands in that job's way: `holds 1 × pg`, `is ahead of it
    /// for pg`, `is a job it depends on`, `holds a worker for t`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// `blocked`, `acquiring`, `running` or `ended`.
    pub phase: String,
    pub waiting_for: String,
}

impl ChainLink {
    /// The link as a sentence: `job 3 (holds 1 × a): waits for …`.
    #[must_use]
    pub fn sentence(&self) -> String {
        let how = (self.why.as_ref()).map_or_else(String::new, |w| format!(" ({w})"));
        let what = match self.waiting_for.strip_prefix("nothing: ") {
            Some(done) => done.to_string(),
            None => format!("waits for {}", self.waiting_for),
        };
        format!("job {}{how}: {what}", self.job.0)
    }
}

impl From<&aquifer_core::explain::Link> for ChainLink {
    fn from(l: &aquifer_core::explain::Link) -> ChainLink {
        ChainLink {
            job: l.job,
            depth: l.depth,
            blocks: l.blocks.as_ref().map(|(j, _)| *j),
            why: l.blocks.as_ref().map(|(_, why)| why.clone()),
            phase: l.phase.to_string(),
            waiting_for: l.waiting_for.clone(),
        }
    }
}

/// Why a job is where it is (the core's `explain`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Explanation {
    pub job: JobId,
    pub phase: Phase,
    #[serde(rename = "deadline")]
    pub deadline_ms: u64,
    /// One sentence: what the job waits for now, if anything.
    pub waiting_for: String,
    /// Dependencies that have not ended yet.
    pub depends_on: Vec<JobId>,
    /// Its submitter has not yet uploaded all its inputs.
    #[serde(default)]
    pub awaits_inputs: bool,
    /// An operator holds new leases: nothing is granted to anyone.
    pub leases_held: bool,
    /// The acquisition order: one entry per type, in rank order.
    pub groups: Vec<GroupExplained>,
    pub worker: WorkerExplained,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for jobs it depends on, or for its inputs.
    Blocked,
    Acquiring,
    Running,
    Ended,
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GroupExplained {
    pub rtype: TypeId,
    pub count: u16,
    pub state: GroupState,
    /// Failed or expired leases so far.
    pub failures: u8,
    /// The instances this job holds of this type.
    pub holds: Vec<Held>,
    /// Its place in the type's queue (1 is next), when queued.
    pub position: Option<u32>,
    /// The jobs ahead of it in that queue.
    pub ahead: Vec<JobId>,
    /// Other jobs holding instances of this type, with how many.
    pub holders: BTreeMap<JobId, u16>,
    /// The wells that serve the type, with their room by the books.
    pub wells: Vec<Serving>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// An earlier group comes first.
    NotYet,
    Queued,
    Creating,
    Ready,
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Held {
    pub resource: ResourceId,
    pub well: WellId,
    pub state: ResourceState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Serving {
    pub well: WellId,
    pub capacity: u16,
    pub room: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkerExplained {
    pub target: TargetId,
    pub state: WorkerStatus,
    pub worker: Option<WorkerId>,
    pub position: Option<u32>,
    pub ahead: Vec<JobId>,
    /// The factories that make workers for the target, with their room.
    pub factories: BTreeMap<FactoryId, u16>,
}

/// Where the job's worker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    NotYet,
    Queued,
    Leased,
    Created,
    Online,
    Releasing,
    /// Bound to a worker that has left the books.
    Gone,
    #[serde(other)]
    Other,
}

fn place(position: Option<usize>) -> Option<u32> {
    position.map(|p| u32::try_from(p).unwrap_or(u32::MAX))
}

impl From<&aquifer_core::explain::Explanation> for Explanation {
    fn from(e: &aquifer_core::explain::Explanation) -> Explanation {
        let w = &e.worker;
        Explanation {
            job: e.job,
            phase: by_name(e.phase, Phase::Other),
            deadline_ms: e.deadline.ms(),
            waiting_for: e.waiting_for.clone(),
            depends_on: e.depends_on.clone(),
            awaits_inputs: e.awaits_inputs,
            leases_held: e.leases_held,
            groups: e.groups.iter().map(GroupExplained::from).collect(),
            worker: WorkerExplained {
                target: w.target.clone(),
                state: by_name(w.state, WorkerStatus::Other),
                worker: w.worker,
                position: place(w.position),
                ahead: w.ahead.clone(),
                factories: w.factories.clone(),
            },
        }
    }
}

impl From<&aquifer_core::explain::GroupExplained> for GroupExplained {
    fn from(g: &aquifer_core::explain::GroupExplained) -> GroupExplained {
        let holds = (g.holds.iter()).map(|h| Held {
            resource: h.resource,
            well: h.well,
            state: by_name(h.state, ResourceState::Other),
        });
        let wells = (g.wells.iter()).map(|s| Serving {
            well: s.well,
            capacity: s.capacity,
            room: s.room,
        });
        GroupExplained {
            rtype: g.rtype.clone(),
            count: g.count,
            state: by_name(g.state, GroupState::Other),
            failures: g.failures,
            holds: holds.collect(),
            position: place(g.position),
            ahead: g.ahead.clone(),
            holders: g.holders.clone(),
            wells: wells.collect(),
        }
    }
}

/// `GET /0/queue`: every type's queue and instances, every target's
/// queue and workers: the core's own query, as it serialises.
pub use aquifer_core::explain::{Load as Queue, TargetLoad, TypeLoad};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoami_reads_as_documented_and_tolerates_new_kinds() {
        let text = r#"{"kind": "user", "id": 3, "privileges": ["admin.jobs", "lab"]}"#;
        let me: Whoami = serde_json::from_str(text).expect("the documented answer");
        assert_eq!(me.kind, PrincipalKind::User);
        assert_eq!(me.id, Some(3));
        assert!(me.privileges.contains(&Privilege::new("lab")));
        let back = serde_json::to_value(&me).expect("json");
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).expect("json")
        );
        let admin = Whoami {
            kind: PrincipalKind::Admin,
            id: None,
            privileges: BTreeSet::new(),
        };
        assert_eq!(
            serde_json::to_string(&admin).expect("json"),
            r#"{"kind":"admin","id":null,"privileges":[]}"#
        );
        let newer: Whoami =
            serde_json::from_str(r#"{"kind": "robot", "id": 1, "since": 5}"#).expect("tolerated");
        assert_eq!(newer.kind, PrincipalKind::Other);
        assert_eq!(PrincipalKind::Bootstrap.to_string(), "bootstrap");
    }

    #[test]
    fn an_explanation_writes_the_json_the_core_wrote() {
        use aquifer_core::explain as core;
        let core = core::Explanation {
            job: JobId(5),
            phase: "acquiring",
            deadline: aquifer_core::Time(600),
            waiting_for: "1 × license: place 1 in its queue, held by job 4".into(),
            depends_on: vec![JobId(2)],
            awaits_inputs: false,
            leases_held: true,
            groups: vec![core::GroupExplained {
                rtype: TypeId::new("license"),
                count: 1,
                state: "queued",
                failures: 1,
                holds: vec![core::Held {
                    resource: ResourceId(3),
                    well: WellId(2),
                    state: "releasing",
                }],
                position: Some(1),
                ahead: vec![JobId(4)],
                holders: BTreeMap::from([(JobId(4), 1)]),
                wells: vec![core::Serving {
                    well: WellId(2),
                    capacity: 1,
                    room: 0,
                }],
            }],
            worker: core::WorkerExplained {
                target: TargetId::new("local"),
                state: "gone",
                worker: Some(WorkerId(9)),
                position: None,
                ahead: vec![],
                factories: BTreeMap::from([(FactoryId(1), 2)]),
            },
        };
        let wire = Explanation::from(&core);
        assert_eq!(wire.phase, Phase::Acquiring);
        assert_eq!(wire.groups[0].state, GroupState::Queued);
        assert_eq!(wire.groups[0].holds[0].state, ResourceState::Releasing);
        assert_eq!(wire.worker.state, WorkerStatus::Gone);
        let json = serde_json::to_value(&wire).expect("json");
        assert_eq!(json, serde_json::to_value(&core).expect("json"));
        let back: Explanation = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, wire);
    }

    #[test]
    fn names_the_core_may_add_read_as_other() {
        let group: GroupState = serde_json::from_str(r#""paused""#).expect("tolerated");
        let worker: WorkerStatus = serde_json::from_str(r#""asleep""#).expect("tolerated");
        assert_eq!((group, worker), (GroupState::Other, WorkerStatus::Other));
        assert_eq!(by_name("blocked", Phase::Other), Phase::Blocked);
        assert_eq!(by_name("nope", Phase::Other), Phase::Other);
    }

    #[test]
    fn user_ids_are_plain_numbers() {
        assert_eq!(serde_json::to_string(&UserId(7)).expect("json"), "7");
        assert_eq!(UserId(7).to_string(), "user 7");
    }
}
