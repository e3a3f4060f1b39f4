//! Reading the state for people: why a job is where it is (its acquisition
//! order, what it holds, the queue it waits in and its place there, who
//! holds what it wants, who serves it).
//! Pure reads of the state: the API serves them, nothing decides from them.

use crate::ids::{FactoryId, JobId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::job::{GroupState, Job, Phase, WorkerWant};
use crate::queue::{self, factory_room};
use crate::state::State;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a job is where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Explanation {
    pub job: JobId,
    /// `blocked`, `acquiring`, `running` or `ended`.
    pub phase: &'static str,
    pub deadline: Time,
    /// One sentence: what the job waits for now, if anything.
    pub waiting_for: String,
    /// Dependencies that have not ended yet.
    pub depends_on: Vec<JobId>,
    /// Its submitter has not yet uploaded all its inputs.
    pub awaits_inputs: bool,
    /// When an operator holds new leases, nothing is granted to anyone.
    pub leases_held: bool,
    /// The acquisition order: one entry per type, in rank order.
    pub groups: Vec<GroupExplained>,
    pub worker: WorkerExplained,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Held {
    pub resource: ResourceId,
    pub well: WellId,
    pub state: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Serving {
    pub well: WellId,
    pub capacity: u16,
    pub room: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// A phase as people and the API name it.
fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Blocked => "blocked",
        Phase::Acquiring => "acquiring",
        Phase::Running => "running",
        Phase::Ended(_) => "ended",
    }
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
        phase: phase_name(j.phase),
        deadline: j.deadline,
        waiting_for: String::new(),
        depends_on: j.depends_on.iter().copied().collect(),
        awaits_inputs: j.awaits_inputs,
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
        Phase::Ended(outcome) => return format!("nothing: it has ended ({outcome})"),
        Phase::Running => return "nothing: it is running".into(),
        Phase::Blocked => {
            let inputs = "its inputs to be uploaded";
            return match (e.depends_on.is_empty(), e.awaits_inputs) {
                (false, false) => format!("jobs it depends on to end: {}", list(&e.depends_on)),
                (false, true) => format!(
                    "jobs it depends on to end ({}) and {inputs}",
                    list(&e.depends_on)
                ),
                (true, _) => inputs.to_string(),
            };
        }
        Phase::Acquiring => {}
    }
    if let Some(g) = e.groups.iter().find(|g| g.state != "ready") {
        return match (g.position, g.state) {
            (Some(p), _) => {
                let room: u16 = g.wells.iter().map(|w| w.room).sum();
                if g.wells.is_empty() {
                    return format!(
                        "{} × {}: no well serves {}: the job waits until one is registered",
                        g.count, g.rtype, g.rtype
                    );
                }
                let who = if room < g.count && !g.holders.is_empty() {
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
            "a worker for {}: place {p} in its queue, but no factory serves it: \
             the job waits until one is registered",
            w.target
        ),
        (Some(p), _) if w.factories.values().all(|&room| room == 0) => format!(
            "a worker for {}: place {p} in its queue, every worker of its factories taken{held}",
            w.target
        ),
        (Some(p), _) => format!("a worker for {}: place {p} in its queue{held}", w.target),
        (None, Some(worker)) => format!("{worker} to come online and start the job"),
        (None, None) => "its worker to be asked for".into(),
    }
}

/// One job of a wait-for chain: what it waits for, and which job it stands
/// in the way of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Link {
    pub job: JobId,
    /// Steps from the job asked about, which is at 0.
    pub depth: u16,
    /// The job (one step nearer the one asked about) that waits on this
    /// one, and why: `holds 1 × a`, `is ahead of it for a`, `is a job it
    /// depends on`, `holds a worker for t`, `is ahead of it for a worker
    /// for t`.
    pub blocks: Option<(JobId, String)>,
    /// `blocked`, `acquiring`, `running` or `ended`.
    pub phase: &'static str,
    /// One sentence, as [`Explanation::waiting_for`].
    pub waiting_for: String,
}

/// Links a chain shows at most; the rest is left out (the chain of a
/// long queue is long, and the first links say the most).
pub const CHAIN_LINKS_MAX: usize = 64;

/// The whole wait-for chain of `job`, depth first: the job, then each job
/// it waits on (holders of what it waits for, jobs ahead of it, its
/// unfinished dependencies) with what those wait on in turn, down to jobs
/// that run, are being served, or have ended. Each job appears once.
/// `None` if the scheduler no longer has `job`.
#[must_use]
pub fn chain(state: &State, job: JobId) -> Option<Vec<Link>> {
    if !state.jobs.contains_key(&job) {
        return None;
    }
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::from([job]);
    // Depth first: the stack holds the links still to be shown, the next
    // on top, each filled in when it is taken.
    let mut stack = vec![Link {
        job,
        depth: 0,
        blocks: None,
        phase: "",
        waiting_for: String::new(),
    }];
    while let Some(mut link) = stack.pop() {
        if out.len() >= CHAIN_LINKS_MAX {
            break;
        }
        // Every job a chain names is one the scheduler has.
        let Some(e) = explain(state, link.job) else {
            continue;
        };
        let next: Vec<(JobId, String)> = blockers(state, &e)
            .into_iter()
            .filter(|(b, _)| seen.insert(*b))
            .collect();
        for (b, why) in next.into_iter().rev() {
            stack.push(Link {
                job: b,
                depth: link.depth.saturating_add(1),
                blocks: Some((link.job, why)),
                phase: "",
                waiting_for: String::new(),
            });
        }
        link.phase = e.phase;
        link.waiting_for = e.waiting_for;
        out.push(link);
    }
    Some(out)
}

/// The jobs `e`'s job waits on now, with why.
fn blockers(state: &State, e: &Explanation) -> Vec<(JobId, String)> {
    match e.phase {
        "blocked" => (e.depends_on.iter())
            .filter(|&&d| state.jobs.get(&d).is_some_and(|j| !j.is_ended()))
            .map(|&d| (d, "is a job it depends on".to_string()))
            .collect(),
        "acquiring" => match e.groups.iter().find(|g| g.state != "ready") {
            Some(g) if g.state == "queued" => {
                let room: u16 = g.wells.iter().map(|w| w.room).sum();
                let mut out: Vec<(JobId, String)> = (g.ahead.iter())
                    .map(|&a| (a, format!("is ahead of it for {}", g.rtype)))
                    .collect();
                if room < g.count {
                    out.extend(
                        (g.holders.iter()).map(|(&h, n)| (h, format!("holds {n} × {}", g.rtype))),
                    );
                }
                out
            }
            Some(_) => Vec::new(),
            None => worker_blockers(state, e),
        },
        _ => Vec::new(),
    }
}

fn worker_blockers(state: &State, e: &Explanation) -> Vec<(JobId, String)> {
    let w = &e.worker;
    if w.position.is_none() {
        return Vec::new();
    }
    let target = &w.target;
    let mut out: Vec<(JobId, String)> = (w.ahead.iter())
        .map(|&a| (a, format!("is ahead of it for a worker for {target}")))
        .collect();
    if w.factories.values().all(|&room| room == 0) {
        let mut holders: Vec<JobId> = (state.workers.values())
            .filter(|k| &k.target == target && w.factories.contains_key(&k.factory))
            .map(|k| k.job)
            .collect();
        holders.sort_unstable();
        holders.dedup();
        out.extend(
            holders
                .into_iter()
                .map(|h| (h, format!("holds a worker for {target}"))),
        );
    }
    out
}

/// What waits for and what holds one resource type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TypeLoad {
    /// Groups waiting in its queue for a lease.
    pub queued: u32,
    /// Instances by state: being created under a lease, ready, being
    /// destroyed, held for an operator.
    pub creating: u32,
    pub ready: u32,
    pub releasing: u32,
    pub held: u32,
    /// The capacity of the pools that serve it (a pool shared with other
    /// types counts whole for each).
    pub capacity: u32,
}

/// What waits for and what holds the workers of one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TargetLoad {
    /// Jobs that hold all their resources and wait for a worker.
    pub queued: u32,
    /// Workers of it in the books (leased, created, online, releasing).
    pub workers: u32,
    /// Jobs running on one.
    pub running: u32,
    /// Workers its factories may have at once, together.
    pub capacity: u32,
}

/// The queues and holdings of every type and target, for `aquifer queue`
/// and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Load {
    pub types: BTreeMap<TypeId, TypeLoad>,
    pub targets: BTreeMap<TargetId, TargetLoad>,
    /// Jobs in the books by phase: `blocked`, `acquiring`, `running`,
    /// `ended` (ended, not yet retired), each present.
    pub jobs: BTreeMap<String, u32>,
    /// Leases out to wells.
    pub leases: u32,
    /// An operator holds new leases.
    pub leases_held: bool,
}

/// Every defined type and target with its queue and holdings.
#[must_use]
pub fn load(state: &State) -> Load {
    use crate::resource::ResourceState;
    let mut types: BTreeMap<TypeId, TypeLoad> = (state.types.keys())
        .map(|t| (t.clone(), TypeLoad::default()))
        .collect();
    for c in queue::waiting(state) {
        types.entry(c.rtype).or_default().queued += 1;
    }
    for r in state.resources.values() {
        let l = types.entry(r.rtype.clone()).or_default();
        match r.state {
            ResourceState::Creating { .. } => l.creating += 1,
            ResourceState::Ready => l.ready += 1,
            ResourceState::Releasing { .. } => l.releasing += 1,
            ResourceState::Held => l.held += 1,
        }
    }
    for w in state.wells.values() {
        for p in &w.pools {
            for t in &p.types {
                types.entry(t.clone()).or_default().capacity += u32::from(p.capacity);
            }
        }
    }
    let mut jobs: BTreeMap<String, u32> = ["blocked", "acquiring", "running", "ended"]
        .into_iter()
        .map(|p| (p.to_string(), 0))
        .collect();
    let mut targets: BTreeMap<TargetId, TargetLoad> = (state.targets.keys())
        .map(|t| (t.clone(), TargetLoad::default()))
        .collect();
    for j in state.jobs.values() {
        *jobs.entry(phase_name(j.phase).to_string()).or_default() += 1;
        let l = targets.entry(j.target.clone()).or_default();
        match (j.phase, j.worker) {
            (Phase::Acquiring, WorkerWant::Queued) => l.queued += 1,
            (Phase::Running, _) => l.running += 1,
            _ => {}
        }
    }
    for w in state.workers.values() {
        targets.entry(w.target.clone()).or_default().workers += 1;
    }
    for f in state.factories.values() {
        for (t, &n) in &f.capacity {
            targets.entry(t.clone()).or_default().capacity += u32::from(n);
        }
    }
    Load {
        types,
        targets,
        jobs,
        leases: u32::try_from(state.leases.len()).unwrap_or(u32::MAX),
        leases_held: state.lease_hold,
    }
}
