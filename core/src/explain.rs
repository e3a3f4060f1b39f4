//! Reading the state for people: why a job is where it is (its acquisition
//! order, what it holds, the queue it waits in and its place there, who
//! holds what it wants, who serves it).
//! Pure reads of the state: the API serves them, nothing decides from them.

use crate::ids::{FactoryId, JobId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::job::{GroupState, Job, Phase, WorkerWant};
use crate::queue::{self, factory_room};
use crate::state::State;
use crate::time::Time;
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a job is where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub job: JobId,
    /// `blocked`, `acquiring`, `running` or `ended`.
    pub phase: &'static str,
    pub deadline: Time,
    /// One sentence: what the job waits for now, if anything.
    pub waiting_for: String,
    /// Dependencies that have not ended yet.
    pub depends_on: Vec<JobId>,
    /// When an operator holds new leases, nothing is granted to anyone.
    pub leases_held: bool,
    /// The acquisition order: one entry per type, in rank order.
    pub groups: Vec<GroupExplained>,
    pub worker: WorkerExplained,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupExplained {
    pub rtype: TypeId,
    pub count: u16,
    /// `not_yet` (an earlier group comes first), `queued`, `creating`,
    /// `ready`.
    pub state: &'static str,
    /// Failed or expired leases so far.
    pub failures: u8,
    /// The instances this job holds of this type, with their states.
    pub holds: Vec<Held>,
    /// Its place in the type's queue (1 is next), when queued.
    pub position: Option<usize>,
    /// The jobs ahead of it in that queue.
    pub ahead: Vec<JobId>,
    /// Other jobs holding instances of this type, with how many.
    pub holders: BTreeMap<JobId, u16>,
    /// The wells that serve the type, with their room by the books.
    pub wells: Vec<Serving>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Held {
    pub resource: ResourceId,
    pub well: WellId,
    pub state: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Serving {
    pub well: WellId,
    pub capacity: u16,
    pub room: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkerExplained {
    pub target: TargetId,
    /// `not_yet`, `queued`, or the bound worker's state.
    pub state: &'static str,
    pub worker: Option<WorkerId>,
    pub position: Option<usize>,
    pub ahead: Vec<JobId>,
    /// The factories that make workers for the target, with their room.
    pub factories: BTreeMap<FactoryId, u16>,
}

/// Explains a job the core still has; `None` once it has retired (the
/// store remembers how it ended).
#[must_use]
pub fn explain(state: &State, job: JobId) -> Option<Explanation> {
    let j = state.jobs.get(&job)?;
    let queue = queue::waiting(state);
    let groups: Vec<GroupExplained> = (j.groups.iter().enumerate())
        .map(|(index, g)| {
            let group = crate::job::group_index(index);
            let holds: Vec<Held> = (state.resources.iter())
                .filter(|(_, r)| r.job == job && r.group == group)
                .map(|(&resource, r)| Held {
                    resource,
                    well: r.well,
                    state: r.state.name(),
                })
                .collect();
            let of_type: Vec<JobId> = (queue.iter())
                .filter(|c| c.rtype == g.rtype)
                .map(|c| c.job)
                .collect();
            let place = of_type.iter().position(|&q| q == job);
            let mut holders = BTreeMap::new();
            for r in state.resources.values() {
                if r.rtype == g.rtype && r.job != job {
                    *holders.entry(r.job).or_insert(0u16) += 1;
                }
            }
            let wells = (state.wells.iter())
                .filter_map(|(&well, w)| {
                    let (_, pool) = w.pool_of(&g.rtype)?;
                    Some(Serving {
                        well,
                        capacity: pool.capacity,
                        room: queue::pool_room(state, well, &g.rtype),
                    })
                })
                .collect();
            let (state_name, failures) = match g.state {
                GroupState::Idle => ("not_yet", 0),
                GroupState::Ready => ("ready", 0),
                GroupState::Acquiring { failures } if place.is_some() => ("queued", failures),
                GroupState::Acquiring { failures } => ("creating", failures),
            };
            GroupExplained {
                rtype: g.rtype.clone(),
                count: g.count,
                state: state_name,
                failures,
                holds,
                position: place.map(|p| p + 1),
                ahead: place.map(|p| of_type[..p].to_vec()).unwrap_or_default(),
                holders,
                wells,
            }
        })
        .collect();
    let worker = worker_explained(state, job, j);
    let mut e = Explanation {
        job,
        phase: match j.phase {
            Phase::Blocked => "blocked",
            Phase::Acquiring => "acquiring",
            Phase::Running => "running",
            Phase::Ended(_) => "ended",
        },
        deadline: j.deadline,
        waiting_for: String::new(),
        depends_on: j.depends_on.iter().copied().collect(),
        leases_held: state.lease_hold,
        groups,
        worker,
    };
    e.waiting_for = summary(j, &e);
    Some(e)
}

fn worker_explained(state: &State, job: JobId, j: &Job) -> WorkerExplained {
    let ahead_all: Vec<JobId> = (state.jobs.iter())
        .filter(|(_, o)| {
            o.phase == Phase::Acquiring && o.worker == WorkerWant::Queued && o.target == j.target
        })
        .map(|(&id, _)| id)
        .collect();
    let place = ahead_all.iter().position(|&q| q == job);
    let (state_name, worker) = match j.worker {
        WorkerWant::Idle => ("not_yet", None),
        WorkerWant::Queued => ("queued", None),
        WorkerWant::Bound(w) => (
            state.workers.get(&w).map_or("gone", |w| w.state.name()),
            Some(w),
        ),
    };
    WorkerExplained {
        target: j.target.clone(),
        state: state_name,
        worker,
        position: place.map(|p| p + 1),
        ahead: place.map(|p| ahead_all[..p].to_vec()).unwrap_or_default(),
        factories: (state.factories.iter())
            .filter(|(_, f)| f.capacity.contains_key(&j.target))
            .map(|(&id, _)| (id, factory_room(state, id, &j.target)))
            .collect(),
    }
}

fn list(jobs: &[JobId]) -> String {
    let ids: Vec<String> = jobs.iter().map(ToString::to_string).collect();
    ids.join(", ")
}

/// The one sentence a person wants first.
fn summary(j: &Job, e: &Explanation) -> String {
    let held = if e.leases_held {
        " (an operator holds all new leases)"
    } else {
        ""
    };
    match j.phase {
        Phase::Ended(outcome) => return format!("nothing: it has ended ({outcome:?})"),
        Phase::Running => return "nothing: it is running".into(),
        Phase::Blocked => return format!("jobs it depends on to end: {}", list(&e.depends_on)),
        Phase::Acquiring => {}
    }
    if let Some(g) = e.groups.iter().find(|g| g.state != "ready") {
        return match (g.position, g.state) {
            (Some(p), _) => {
                let room: u16 = g.wells.iter().map(|w| w.room).sum();
                let who = if g.wells.is_empty() {
                    "no well serves it".to_string()
                } else if room < g.count && !g.holders.is_empty() {
                    let holders: Vec<JobId> = g.holders.keys().copied().collect();
                    format!("held by {}", list(&holders))
                } else {
                    format!("{room} free in its wells")
                };
                format!(
                    "{} × {}: place {p} in its queue, {who}{held}",
                    g.count, g.rtype
                )
            }
            (None, _) => format!("{} × {}: a well is creating them", g.count, g.rtype),
        };
    }
    let w = &e.worker;
    match (w.position, w.worker) {
        (Some(p), _) if w.factories.is_empty() => format!(
            "a worker for {}: place {p} in its queue, but no factory serves it",
            w.target
        ),
        (Some(p), _) => format!("a worker for {}: place {p} in its queue{held}", w.target),
        (None, Some(worker)) => format!("{worker} to come online and start the job"),
        (None, None) => "its worker to be asked for".into(),
    }
}
