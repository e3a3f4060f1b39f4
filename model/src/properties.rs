//! The names of the properties the model checks, the checks on states
//! that need nothing but the core's state, and the checks on transitions
//! that a property on states cannot see. The model (`model::properties`)
//! and the replay of recorded histories (`replay`) both use them.

use aquifer_core::job::{Phase, WorkerWant};
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::{Effect, Event, ResourceId, State, WorkerId, pending_effects};
use std::collections::BTreeSet;

pub const NO_PANIC: &str = "core-never-panics";
pub const INVARIANTS: &str = "core-invariants";
pub const NO_DEADLOCK: &str = "no-deadlock";
pub const RUNS_WITH_ALL: &str = "runs-holding-everything";
pub const RANK_ORDER: &str = "rank-order";
pub const POOLS: &str = "pools-within-capacity";
pub const CONFIRMED: &str = "confirmed-before-forgotten";
pub const STALE: &str = "stale-reports-refused";
pub const REPLAY: &str = "replay-rebuilds-state";
pub const EFFECTS: &str = "effects-cover-obligations";
pub const SUCCEEDS: &str = "a-job-succeeds";
pub const SERVED_AFTER_EXPIRY: &str = "served-after-expiry";
pub const RESTART_MID_ACQUISITION: &str = "restart-mid-acquisition";

/// Checks made on each transition, which a property on states cannot
/// see: only confirmed destruction removes things from the books, and
/// the step's effects cover every new obligation.
pub fn check_transition(
    before: &State,
    after: &State,
    events: &[Event],
    effects: &[Effect],
) -> Option<&'static str> {
    let destroyed: BTreeSet<ResourceId> = events
        .iter()
        .filter_map(|e| match e {
            Event::ResourceDestroyed { resource } => Some(*resource),
            _ => None,
        })
        .collect();
    let workers_destroyed: BTreeSet<WorkerId> = events
        .iter()
        .filter_map(|e| match e {
            Event::WorkerDestroyed { worker } => Some(*worker),
            _ => None,
        })
        .collect();
    let vanished = before
        .resources
        .keys()
        .any(|r| !after.resources.contains_key(r) && !destroyed.contains(r))
        || before
            .workers
            .keys()
            .any(|w| !after.workers.contains_key(w) && !workers_destroyed.contains(w));
    if vanished {
        return Some(CONFIRMED);
    }
    let owed_before: BTreeSet<Effect> = pending_effects(before).into_iter().collect();
    let covered = pending_effects(after)
        .iter()
        .all(|e| owed_before.contains(e) || effects.contains(e));
    if !covered {
        return Some(EFFECTS);
    }
    None
}

/// A running job holds every instance it asked for, ready, and its worker,
/// online.
pub fn runs_with_all(core: &State) -> bool {
    core.jobs.iter().all(|(&id, job)| {
        if job.phase != Phase::Running {
            return true;
        }
        let groups_whole = job.groups.iter().enumerate().all(|(g, group)| {
            let ready = core
                .resources
                .values()
                .filter(|r| {
                    r.job == id && usize::from(r.group) == g && r.state == ResourceState::Ready
                })
                .count();
            ready == usize::from(group.count)
        });
        let worker_online = matches!(job.worker, WorkerWant::Bound(w)
            if core.workers.get(&w).is_some_and(|w| w.job == id && w.state == WorkerState::Online));
        groups_whole && worker_online
    })
}

/// A job never waits for a type ranked at or below one it holds, and never
/// waits for a resource while it holds a worker (the worker ranks last).
pub fn rank_order(core: &State) -> bool {
    let waiting = aquifer_core::queue::waiting(core);
    waiting.iter().all(|c| {
        let job = &core.jobs[&c.job];
        let holds_worker = matches!(job.worker, WorkerWant::Bound(w)
            if core.workers.get(&w).is_some_and(|w| w.state != WorkerState::Releasing));
        let holds_at_or_above = core
            .resources
            .values()
            .any(|r| r.job == c.job && r.state.is_live() && r.rtype >= c.rtype);
        !holds_worker && !holds_at_or_above
    })
}
