//! The properties the model checks, and the checks on transitions that a
//! property on states cannot see.

use crate::model::Faults;
use crate::model::{
    AquiferModel, ModelState, SEEN_RESTART_MID_ACQUISITION, SEEN_SERVED_AFTER_EXPIRY, SEEN_SUCCESS,
};
use crate::scope::well_id;
use aquifer_core::invariants;
use aquifer_core::job::{Phase, WorkerWant};
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::{Effect, Event, ResourceId, State, WorkerId, pending_effects};
use stateright::{Model, Property};
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

/// Every property of the model, named.
pub(crate) fn all(model: &AquiferModel) -> Vec<Property<AquiferModel>> {
    let mut props = vec![
        Property::always(NO_PANIC, |_, s: &ModelState| s.broken != Some(NO_PANIC)),
        Property::always(INVARIANTS, |_, s: &ModelState| {
            invariants::check(&s.core).is_ok()
        }),
        Property::always(NO_DEADLOCK, |m: &AquiferModel, s: &ModelState| {
            m.done(s) || m.can_progress(s)
        }),
        Property::always(RUNS_WITH_ALL, |_, s: &ModelState| runs_with_all(&s.core)),
        Property::always(RANK_ORDER, |_, s: &ModelState| rank_order(&s.core)),
        Property::always(POOLS, |m: &AquiferModel, s: &ModelState| {
            m.pools_within_capacity(&s.core)
        }),
        Property::always(CONFIRMED, |_, s: &ModelState| s.broken != Some(CONFIRMED)),
        Property::always(EFFECTS, |_, s: &ModelState| s.broken != Some(EFFECTS)),
        Property::sometimes(SUCCEEDS, |_, s: &ModelState| s.seen & SEEN_SUCCESS != 0),
    ];
    if model.faults == Faults::All {
        props.extend([
            Property::always(STALE, |_, s: &ModelState| s.broken != Some(STALE)),
            Property::always(REPLAY, |_, s: &ModelState| s.broken != Some(REPLAY)),
            Property::sometimes(SERVED_AFTER_EXPIRY, |_, s: &ModelState| {
                s.seen & SEEN_SERVED_AFTER_EXPIRY != 0
            }),
            Property::sometimes(RESTART_MID_ACQUISITION, |_, s: &ModelState| {
                s.seen & SEEN_RESTART_MID_ACQUISITION != 0
            }),
        ]);
    }
    props
}

impl AquiferModel {
    /// Checks made on each transition, which a property on states cannot
    /// see: only confirmed destruction removes things from the books, and
    /// the step's effects cover every new obligation.
    pub(crate) fn check_transition(
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
}

impl AquiferModel {
    /// Everything submitted has ended and left the books, and every
    /// resource is destroyed or held for an operator.
    #[must_use]
    pub fn done(&self, s: &ModelState) -> bool {
        usize::from(s.submitted) == self.scope.jobs.len()
            && s.core.workers.is_empty()
            && s.core
                .resources
                .values()
                .all(|r| r.state == ResourceState::Held)
            && s.core.jobs.values().all(|j| j.is_ended())
    }

    /// Whether some party other than a fault can move the system on.
    #[must_use]
    pub fn can_progress(&self, s: &ModelState) -> bool {
        let mut actions = Vec::new();
        self.progress_actions(s, &mut actions);
        actions.into_iter().any(|a| {
            self.next_state(s, a)
                .is_some_and(|n| n.core != s.core || n.submitted != s.submitted)
        })
    }

    fn pools_within_capacity(&self, core: &State) -> bool {
        self.scope.wells.iter().enumerate().all(|(i, pools)| {
            pools.iter().all(|(types, capacity)| {
                let used = core
                    .resources
                    .values()
                    .filter(|r| r.well == well_id(i) && types.contains(&r.rtype.as_str()))
                    .count();
                used <= usize::from(*capacity)
            })
        })
    }
}

/// A running job holds every instance it asked for, ready, and its worker,
/// online.
pub(crate) fn runs_with_all(core: &State) -> bool {
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
pub(crate) fn rank_order(core: &State) -> bool {
    let waiting = aquifer_core::lease::waiting(core);
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
