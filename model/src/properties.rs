//! The names of the properties the model checks, the checks on states
//! that need nothing but the core's state, and the checks on transitions
//! that a property on states cannot see. The model (`model::properties`)
//! and the replay of recorded histories (`replay`) both use them.

use aquifer_core::job::{GroupState, Phase, WorkerWant};
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::{
    AcquisitionPolicy, Effect, Event, Input, JobId, LeaseEnd, Outcome, ResourceId, RunOn, State,
    Time, TypeId, WorkerId, pending_effects,
};
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
pub const FIFO: &str = "fifo-within-type";
pub const DEADLINES: &str = "deadlines-kept";
pub const HOLD: &str = "nothing-granted-while-held";
pub const WORKER_LAST: &str = "worker-after-resources";
pub const DEPENDENCIES: &str = "dependencies-honoured";
pub const SEEN_HELD: &str = "a-resource-is-held";
pub const SEEN_MIXED_SIZES: &str = "groups-of-different-sizes-wait-together";
pub const SEEN_LATE_INPUT: &str = "an-input-after-a-deadline-before-its-tick";

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

/// The rules a single decision must keep, which only the transition
/// shows, each checked against the state before it and independently of
/// the core's own queues and indexes:
///
/// - `fifo-within-type` (rules 4 and 5): a lease of type `t` goes to the
///   oldest job with a group of `t` waiting, never to a younger one past
///   it, whatever their sizes (a retried group waits in its job's place);
/// - `deadlines-kept`: nothing expires or times out before its time, a
///   `Tick` leaves nothing due behind, and no lease or worker lease is
///   renewed or reported on at or after its expiry;
/// - `nothing-granted-while-held`: no lease of a resource or a worker
///   while an administrator holds leases.
pub fn check_rules(
    before: &State,
    after: &State,
    now: Time,
    input: &Input,
    events: &[Event],
) -> Option<&'static str> {
    for e in events {
        let broken =
            match e {
                Event::LeaseGranted {
                    job, group, rtype, ..
                } => {
                    if before.lease_hold {
                        Some(HOLD)
                    } else if oldest_waiting(before, rtype).is_some_and(|o| o < *job)
                        || !waiting_for(before, *job, *group)
                    {
                        Some(FIFO)
                    } else {
                        None
                    }
                }
                Event::WorkerLeased { .. } if before.lease_hold => Some(HOLD),
                Event::LeaseEnded {
                    lease,
                    cause: LeaseEnd::Expired,
                } => (before.leases.get(lease))
                    .and_then(|l| (l.expires_at > now).then_some(DEADLINES)),
                // A worker lease expires no earlier than its time, and its
                // worker is not taken as created at or after it.
                Event::WorkerLeaseExpired { worker } => (worker_lease_expiry(before, *worker))
                    .and_then(|t| (t > now).then_some(DEADLINES)),
                Event::WorkerCreated { worker } => (worker_lease_expiry(before, *worker))
                    .and_then(|t| (t <= now).then_some(DEADLINES)),
                Event::JobEnded {
                    job,
                    outcome: Outcome::TimedOut,
                } => (before.jobs.get(job)).and_then(|j| (j.deadline > now).then_some(DEADLINES)),
                Event::LeaseRenewed { lease, .. } => (before.leases.get(lease))
                    .and_then(|l| (l.expires_at <= now).then_some(DEADLINES)),
                Event::ResourceReady { resource } => match before.resources.get(resource) {
                    Some(r) => match r.state {
                        ResourceState::Creating { lease } => (before.leases.get(&lease))
                            .and_then(|l| (l.expires_at <= now).then_some(DEADLINES)),
                        _ => None,
                    },
                    None => None,
                },
                _ => None,
            };
        if broken.is_some() {
            return broken;
        }
    }
    if *input == Input::Tick && !nothing_due(after, now) {
        return Some(DEADLINES);
    }
    None
}

/// When a worker's lease expires, while it is leased and not yet made.
fn worker_lease_expiry(core: &State, worker: WorkerId) -> Option<Time> {
    match core.workers.get(&worker)?.state {
        WorkerState::Leased { expires_at } => Some(expires_at),
        _ => None,
    }
}

/// Whether `job`'s group `group` waits for instances: its job is
/// acquiring, the group was asked for, and fewer of its instances are
/// live than it needs.
fn waiting_for(core: &State, job: JobId, group: u8) -> bool {
    let Some(j) = core.jobs.get(&job) else {
        return false;
    };
    let Some(g) = j.groups.get(usize::from(group)) else {
        return false;
    };
    let live = (core.resources.values())
        .filter(|r| r.job == job && r.group == group && r.state.is_live())
        .count();
    j.phase == Phase::Acquiring
        && matches!(g.state, GroupState::Acquiring { .. })
        && live < usize::from(g.count)
}

/// The oldest job with a group of `rtype` waiting.
fn oldest_waiting(core: &State, rtype: &TypeId) -> Option<JobId> {
    core.jobs.iter().find_map(|(&id, j)| {
        (j.groups.iter().enumerate())
            .any(|(g, group)| {
                &group.rtype == rtype && waiting_for(core, id, u8::try_from(g).unwrap_or(u8::MAX))
            })
            .then_some(id)
    })
}

/// Nothing is due at `now`: no lease or worker lease past its expiry, no
/// job past its deadline that has not ended.
pub fn nothing_due(core: &State, now: Time) -> bool {
    core.leases.values().all(|l| l.expires_at > now)
        && core.workers.values().all(|w| match w.state {
            WorkerState::Leased { expires_at } => expires_at > now,
            _ => true,
        })
        && core.jobs.values().all(|j| j.is_ended() || j.deadline > now)
}

/// Rule 3: a job that has not ended asks for its worker only once every
/// instance of every group is ready (the worker ranks last). Counted from
/// the resources, not from the groups' own states.
pub fn worker_after_resources(core: &State) -> bool {
    if core.rules.acquisition != AcquisitionPolicy::Ordered {
        return true;
    }
    core.jobs.iter().all(|(&id, job)| {
        job.is_ended()
            || job.worker == WorkerWant::Idle
            || job.groups.iter().enumerate().all(|(g, group)| {
                let ready = (core.resources.values())
                    .filter(|r| {
                        r.job == id && usize::from(r.group) == g && r.state == ResourceState::Ready
                    })
                    .count();
                ready == usize::from(group.count)
            })
    })
}

/// Rule 8, from the submissions rather than the core's own bookkeeping:
/// a job acquires nothing (asks for no group or worker, holds nothing)
/// until every job it depends on has ended as it required (on success
/// unless it said otherwise) and its inputs are whole, and a job with a
/// dependency that ended otherwise has ended too. `depends_on` gives a
/// job's dependencies as submitted; `outcome` how a job ended, if it has
/// (also once the core has forgotten it); `inputs_whole` whether the
/// inputs a job's submitter said it would upload have arrived.
pub fn dependencies_honoured(
    core: &State,
    depends_on: impl Fn(JobId) -> Vec<(JobId, RunOn)>,
    outcome: impl Fn(JobId) -> Option<Outcome>,
    inputs_whole: impl Fn(JobId) -> bool,
) -> bool {
    core.jobs.iter().all(|(&id, job)| {
        let deps = depends_on(id);
        let failed = deps
            .iter()
            .any(|&(d, on)| outcome(d).is_some_and(|o| !on.met_by(o)));
        if failed && !job.is_ended() {
            return false;
        }
        let acquiring = matches!(job.phase, Phase::Acquiring | Phase::Running)
            || job.worker != WorkerWant::Idle
            || job.groups.iter().any(|g| g.state != GroupState::Idle)
            || core.resources.values().any(|r| r.job == id)
            || core.workers.values().any(|w| w.job == id);
        let settled = (deps.iter()).all(|&(d, on)| outcome(d).is_some_and(|o| on.met_by(o)));
        !acquiring || (settled && inputs_whole(id))
    })
}

/// How a job has ended, by the core's books.
#[must_use]
pub fn ended_as(core: &State, job: JobId) -> Option<Outcome> {
    match core.jobs.get(&job)?.phase {
        Phase::Ended(o) => Some(o),
        _ => None,
    }
}

/// Whether two groups of one type but of different sizes wait at once:
/// the shape in which a younger, smaller group could overtake.
pub fn mixed_sizes_wait(core: &State) -> bool {
    let mut sizes: std::collections::BTreeMap<&TypeId, BTreeSet<u16>> = Default::default();
    for (&id, job) in core.jobs.iter() {
        for (g, group) in job.groups.iter().enumerate() {
            if waiting_for(core, id, u8::try_from(g).unwrap_or(u8::MAX)) {
                sizes.entry(&group.rtype).or_default().insert(group.count);
            }
        }
    }
    sizes.values().any(|s| s.len() > 1)
}
