//! The invariants every reachable state satisfies. The model checker checks
//! them in every state it visits; the server can check them after recovery.

use crate::config::{AcquisitionPolicy, GrantMode};
use crate::ids::{JobId, WorkerId};
use crate::index::Index;
use crate::job::{GroupState, Job, Phase, WorkerWant};
use crate::resource::ResourceState;
use crate::state::State;
use crate::worker::WorkerState;
use std::collections::BTreeMap;

/// A broken invariant, named, with what broke it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invariant {name} broken: {detail}")]
pub struct Violation {
    pub name: &'static str,
    pub detail: String,
}

fn ensure(ok: bool, name: &'static str, detail: impl FnOnce() -> String) -> Result<(), Violation> {
    if ok {
        Ok(())
    } else {
        Err(Violation {
            name,
            detail: detail(),
        })
    }
}

/// Checks every invariant; the first broken one is returned.
pub fn check(state: &State) -> Result<(), Violation> {
    check_ids(state)?;
    check_leases(state)?;
    check_resources(state)?;
    check_pools(state)?;
    let counts = counts(state);
    for (&id, job) in &state.jobs {
        check_job(state, &counts, id, job)?;
    }
    check_workers(state)?;
    // Last: a state whose books break a rule is named by that rule.
    ensure(
        state.index == Index::build(state),
        "indexes-match-books",
        || "the indexes kept by apply differ from those the books give".into(),
    )
}

fn check_ids(state: &State) -> Result<(), Violation> {
    let below = |max: Option<u32>, next: u32| max.is_none_or(|m| m < next);
    ensure(
        below(state.jobs.get_max().map(|(j, _)| j.0), state.next_job.0)
            && below(state.leases.get_max().map(|(l, _)| l.0), state.next_lease.0)
            && below(
                state.resources.get_max().map(|(r, _)| r.0),
                state.next_resource.0,
            )
            && below(
                state.workers.get_max().map(|(w, _)| w.0),
                state.next_worker.0,
            ),
        "ids-below-counters",
        || "an id at or above its counter".into(),
    )
}

fn check_leases(state: &State) -> Result<(), Violation> {
    for (&lease, l) in &state.leases {
        let group = state
            .jobs
            .get(&l.job)
            .and_then(|j| j.groups.get(usize::from(l.group)));
        ensure(
            matches!(group.map(|g| g.state), Some(GroupState::Acquiring { .. })),
            "lease-for-acquiring-group",
            || format!("{lease} is for a group that is not acquiring"),
        )?;
        for r in &l.resources {
            let res = state.resources.get(r);
            ensure(
                res.is_some_and(|res| {
                    res.job == l.job
                        && res.group == l.group
                        && res.well == l.well
                        && matches!(
                            res.state,
                            ResourceState::Creating { .. } | ResourceState::Ready
                        )
                }),
                "lease-covers-its-resources",
                || format!("{lease} covers resource {r}, which does not match it"),
            )?;
        }
    }
    Ok(())
}

fn check_resources(state: &State) -> Result<(), Violation> {
    for (&id, r) in &state.resources {
        let job = state.jobs.get(&r.job);
        ensure(job.is_some(), "resource-has-job", || {
            format!("resource {id} belongs to {}, not in the books", r.job)
        })?;
        ensure(
            state.wells.get(&r.well).is_some_and(|w| w.serves(&r.rtype)),
            "resource-well-serves-type",
            || format!("resource {id} is at a well that does not serve {}", r.rtype),
        )?;
        match r.state {
            ResourceState::Creating { lease } => ensure(
                state
                    .leases
                    .get(&lease)
                    .is_some_and(|l| l.resources.contains(&id)),
                "creating-under-lease",
                || format!("resource {id} is being created under {lease}, which does not cover it"),
            )?,
            ResourceState::Ready => ensure(
                job.is_some_and(|j| !j.is_ended()),
                "ready-only-for-live-jobs",
                || format!("resource {id} is ready for an ended job"),
            )?,
            ResourceState::Releasing { failures } => ensure(
                failures < state.limits.destroy_failures_max,
                "hold-after-failures",
                || format!("resource {id} failed to be destroyed {failures} times and is not held"),
            )?,
            ResourceState::Held => {}
        }
    }
    Ok(())
}

fn check_pools(state: &State) -> Result<(), Violation> {
    for (&well, w) in &state.wells {
        for pool in &w.pools {
            let used = state
                .resources
                .values()
                .filter(|r| r.well == well && pool.types.contains(&r.rtype))
                .count();
            ensure(
                used <= usize::from(pool.capacity),
                "pool-within-capacity",
                || format!("{well} holds {used} in a pool of {}", pool.capacity),
            )?;
        }
    }
    let mut workers: BTreeMap<_, usize> = BTreeMap::new();
    for w in state.workers.values() {
        *workers.entry((w.factory, w.target.clone())).or_insert(0) += 1;
    }
    for ((factory, target), used) in workers {
        let capacity = state
            .factories
            .get(&factory)
            .and_then(|f| f.capacity.get(&target))
            .copied()
            .unwrap_or(0);
        ensure(
            used <= usize::from(capacity),
            "factory-within-capacity",
            || format!("{factory} has {used} workers for {target}, capacity {capacity}"),
        )?;
    }
    Ok(())
}

/// How many instances each group has in the books: (live, ready), counted
/// in one pass so that checking stays linear in the size of the state.
type Counts = BTreeMap<(JobId, u8), (usize, usize)>;

fn counts(state: &State) -> Counts {
    let mut out = Counts::new();
    for r in state.resources.values() {
        let entry = out.entry((r.job, r.group)).or_insert((0, 0));
        if r.state.is_live() {
            entry.0 += 1;
        }
        if r.state == ResourceState::Ready {
            entry.1 += 1;
        }
    }
    out
}

fn check_job(state: &State, counts: &Counts, id: JobId, job: &Job) -> Result<(), Violation> {
    for (g, group) in job.groups.iter().enumerate() {
        let (live, ready) = counts
            .get(&(id, crate::job::group_index(g)))
            .copied()
            .unwrap_or((0, 0));
        let count = usize::from(group.count);
        ensure(live <= count, "group-within-count", || {
            format!("{id} group {g} has {live} live instances of {count}")
        })?;
        if group.state == GroupState::Ready && !job.is_ended() {
            ensure(ready == count, "ready-group-is-whole", || {
                format!("{id} group {g} is ready with {ready} of {count}")
            })?;
        }
        if group.state == GroupState::Idle {
            ensure(live == 0, "idle-group-holds-nothing", || {
                format!("{id} group {g} is idle but holds {live}")
            })?;
        }
    }
    if job.is_ended() {
        let holds = counts
            .range((id, 0)..=(id, u8::MAX))
            .any(|(_, &(live, _))| live > 0);
        ensure(!holds, "ended-job-holds-nothing", || {
            format!("{id} has ended but still holds resources")
        })?;
    }
    let worker_ok = match job.worker {
        WorkerWant::Bound(w) => bound_worker_ok(state, id, job, w),
        WorkerWant::Idle | WorkerWant::Queued => true,
    };
    ensure(worker_ok, "worker-bound-to-its-job", || {
        format!("{id}'s worker is not bound to it")
    })?;
    if job.phase == Phase::Running {
        let online = matches!(job.worker, WorkerWant::Bound(w)
            if state.workers.get(&w).is_some_and(|w| w.state == WorkerState::Online));
        ensure(
            job.all_groups_ready() && online,
            "running-holds-everything",
            || format!("{id} runs without all its resources and an online worker"),
        )?;
    }
    if job.phase == Phase::Blocked {
        let quiet = job.groups.iter().all(|g| g.state == GroupState::Idle)
            && job.worker == WorkerWant::Idle;
        ensure(quiet, "blocked-asks-for-nothing", || {
            format!("{id} waits for its dependencies or inputs but asks for something")
        })?;
    } else {
        ensure(
            job.depends_on.is_empty() && !job.awaits_inputs,
            "only-blocked-waits",
            || format!("{id} goes on while it waits for a dependency or its inputs"),
        )?;
    }
    let production = state.rules.acquisition == AcquisitionPolicy::Ordered
        && state.rules.grant == GrantMode::Together;
    if production && !job.is_ended() {
        check_ordered(id, job)?;
    }
    Ok(())
}

fn bound_worker_ok(state: &State, id: JobId, job: &Job, worker: WorkerId) -> bool {
    match state.workers.get(&worker) {
        Some(w) => w.job == id && (job.is_ended() || w.state != WorkerState::Releasing),
        // Destroyed workers leave the books; only an ended job may point at one.
        None => job.is_ended(),
    }
}

/// Rules 2 and 3: ready groups, then at most one acquiring, then idle ones;
/// the worker only once every group is ready.
fn check_ordered(id: JobId, job: &Job) -> Result<(), Violation> {
    let mut seen_unready = false;
    for (g, group) in job.groups.iter().enumerate() {
        let ok = match group.state {
            GroupState::Ready => !seen_unready,
            GroupState::Acquiring { .. } | GroupState::Idle => {
                let first = !seen_unready;
                seen_unready = true;
                first || group.state == GroupState::Idle
            }
        };
        ensure(ok, "rank-order", || {
            format!("{id} group {g} is out of acquisition order")
        })?;
    }
    ensure(
        job.all_groups_ready() || job.worker == WorkerWant::Idle,
        "worker-last",
        || format!("{id} wants a worker before holding all its resources"),
    )
}

fn check_workers(state: &State) -> Result<(), Violation> {
    for (&id, w) in &state.workers {
        let job = state.jobs.get(&w.job);
        ensure(job.is_some(), "worker-has-job", || {
            format!("{id} belongs to {}, not in the books", w.job)
        })?;
        if w.state != WorkerState::Releasing {
            ensure(
                job.is_some_and(|j| j.worker == WorkerWant::Bound(id) && !j.is_ended()),
                "live-worker-bound",
                || format!("{id} is {} but its job does not hold it", w.state.name()),
            )?;
        }
    }
    Ok(())
}
