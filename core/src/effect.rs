//! Effects: what the driver does once a step's events are committed, and
//! `pending_effects`, what a state owes regardless of how it was reached.
//! Effects follow from state, not history, so a restarted server simply
//! performs the pending ones again. Every effect is idempotent. Also here:
//! what each well and factory must destroy now (the same rule, per owner),
//! and which job an event concerns (whom `NotifyJob` tells).

use crate::event::Event;
use crate::ids::{FactoryId, JobId, LeaseId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::queue;
use crate::resource;
use crate::state::State;
use crate::worker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Work is waiting for this type: wake wells long-polling for it.
    WakeWells { rtype: TypeId },
    /// A job is waiting for a worker of this target: wake factories.
    WakeFactories { target: TargetId },
    /// The well must destroy this resource (it learns so from its listing,
    /// and a long-polling well is woken).
    DestroyResource { well: WellId, resource: ResourceId },
    /// The factory must destroy this worker (and the agent stop its job).
    DestroyWorker {
        factory: FactoryId,
        worker: WorkerId,
    },
    /// Something about this job changed: tell whoever watches it.
    NotifyJob { job: JobId },
}

/// The effects of a step's events, in order, without repeats. `before`
/// and `after` are the states around the step.
pub(crate) fn effects_of(before: &State, after: &State, events: &[Event]) -> Vec<Effect> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |e: Effect| {
        if seen.insert(e.clone()) {
            out.push(e);
        }
    };
    for event in events {
        if let Some(job) = job_of(before, after, event) {
            push(Effect::NotifyJob { job });
        }
    }
    // Long-polling wells and factories are woken whenever work may have
    // appeared or room may have come back, so a freed slot is handed on at
    // once rather than at the end of a poll. A spurious wake costs one
    // empty lease request.
    if events.iter().any(|e| wakes(e).0) {
        for rtype in queue::waiting_types(after) {
            push(Effect::WakeWells { rtype });
        }
    }
    if events.iter().any(|e| wakes(e).1) {
        for target in targets_waiting(after) {
            push(Effect::WakeFactories { target });
        }
    }
    for (resource, well) in resources_to_destroy(after) {
        let owed_before = (before.resources.get(&resource))
            .is_some_and(|b| b.state.want() == resource::Want::Release);
        if !owed_before {
            push(Effect::DestroyResource { well, resource });
        }
    }
    for (worker, factory) in workers_to_destroy(after) {
        let owed_before =
            (before.workers.get(&worker)).is_some_and(|b| b.state.want() == worker::Want::Destroy);
        if !owed_before {
            push(Effect::DestroyWorker { factory, worker });
        }
    }
    out
}

/// Whether an event may let a waiting group (first) or a waiting job's
/// worker (second) be granted now: new work, a requeue, capacity back, a
/// queue's head leaving, or the lease hold lifted.
fn wakes(event: &Event) -> (bool, bool) {
    match event {
        Event::GroupQueued { .. } | Event::LeaseEnded { .. } | Event::ResourceDestroyed { .. } => {
            (true, false)
        }
        Event::WorkerQueued { .. }
        | Event::WorkerLeaseExpired { .. }
        | Event::WorkerDestroyed { .. } => (false, true),
        Event::JobEnded { .. } | Event::JobRetired { .. } => (true, true),
        Event::LeasesHeld { held } => (!held, !held),
        Event::TypeDefined { .. }
        | Event::TargetDefined { .. }
        | Event::WellRegistered { .. }
        | Event::FactoryRegistered { .. }
        | Event::JobSubmitted { .. }
        | Event::DependencySettled { .. }
        | Event::InputsArrived { .. }
        | Event::AcquisitionBegan { .. }
        | Event::LeaseGranted { .. }
        | Event::LeaseRenewed { .. }
        | Event::ResourceReady { .. }
        | Event::LeaseFulfilled { .. }
        | Event::GroupReady { .. }
        | Event::WorkerLeased { .. }
        | Event::WorkerCreated { .. }
        | Event::WorkerOnline { .. }
        | Event::JobStarted { .. }
        | Event::ResourceReleased { .. }
        | Event::WorkerReleased { .. }
        | Event::DestroyFailed { .. }
        | Event::ResourceHeld { .. }
        | Event::HeldReleased { .. } => (false, false),
    }
}

/// Targets for which a job waits for a worker.
fn targets_waiting(state: &State) -> BTreeSet<TargetId> {
    state.index.workers_wanted.keys().cloned().collect()
}

/// The job an event concerns. Things that leave the books in the step are
/// found in the state before it.
fn job_of(before: &State, after: &State, event: &Event) -> Option<JobId> {
    subject(after, event).or_else(|| subject(before, event))
}

/// lease or worker where the event does not name the job. Pass the state
/// just before the event (or after it, for things the event creates).
#[must_use]
pub fn subject(state: &State, event: &Event) -> Option<JobId> {
    let resource = |r: &ResourceId| state.resources.get(r).map(|r| r.job);
    let lease = |l: &LeaseId| state.leases.get(l).map(|l| l.job);
    let worker = |w: &WorkerId| state.workers.get(w).map(|w| w.job);
    match event {
        Event::ResourceReady { resource: r }
        | Event::ResourceReleased { resource: r }
        | Event::DestroyFailed { resource: r }
        | Event::ResourceHeld { resource: r }
        | Event::HeldReleased { resource: r }
        | Event::ResourceDestroyed { resource: r } => resource(r),
        Event::LeaseRenewed { lease: l, .. }
        | Event::LeaseFulfilled { lease: l }
        | Event::LeaseEnded { lease: l, .. } => lease(l),
        Event::WorkerLeaseExpired { worker: w }
        | Event::WorkerCreated { worker: w }
        | Event::WorkerOnline { worker: w }
        | Event::WorkerReleased { worker: w }
        | Event::WorkerDestroyed { worker: w } => worker(w),
        Event::TypeDefined { .. }
        | Event::TargetDefined { .. }
        | Event::WellRegistered { .. }
        | Event::FactoryRegistered { .. }
        | Event::LeasesHeld { .. }
        | Event::JobSubmitted { .. }
        | Event::DependencySettled { .. }
        | Event::InputsArrived { .. }
        | Event::AcquisitionBegan { .. }
        | Event::GroupQueued { .. }
        | Event::LeaseGranted { .. }
        | Event::GroupReady { .. }
        | Event::WorkerQueued { .. }
        | Event::WorkerLeased { .. }
        | Event::JobStarted { .. }
        | Event::JobEnded { .. }
        | Event::JobRetired { .. } => event.job(),
    }
}

/// The resources the server wants destroyed, with their wells. The one
/// rule behind `DestroyResource` effects and a well's destroy list.
fn resources_to_destroy(state: &State) -> impl Iterator<Item = (ResourceId, WellId)> + '_ {
    (state.resources.iter())
        .filter(|(_, r)| r.state.want() == resource::Want::Release)
        .map(|(&id, r)| (id, r.well))
}

/// The workers the server wants destroyed, with their factories. The one
/// rule behind `DestroyWorker` effects and a factory's destroy list.
fn workers_to_destroy(state: &State) -> impl Iterator<Item = (WorkerId, FactoryId)> + '_ {
    (state.workers.iter())
        .filter(|(_, w)| w.state.want() == worker::Want::Destroy)
        .map(|(&id, w)| (id, w.factory))
}

impl State {
    /// What `well` must destroy now: the resources this state owes a
    /// `DestroyResource` effect to `well` for, in id order.
    #[must_use]
    pub fn to_destroy_by_well(&self, well: WellId) -> Vec<ResourceId> {
        (resources_to_destroy(self))
            .filter(|&(_, w)| w == well)
            .map(|(r, _)| r)
            .collect()
    }

    /// What `factory` must destroy now: the workers this state owes a
    /// `DestroyWorker` effect to `factory` for, in id order.
    #[must_use]
    pub fn to_destroy_by_factory(&self, factory: FactoryId) -> Vec<WorkerId> {
        (workers_to_destroy(self))
            .filter(|&(_, f)| f == factory)
            .map(|(w, _)| w)
            .collect()
    }
}

/// Everything this state owes the outside world. The driver performs these
/// after a restart; they are also what a correct step's effects add up to.
#[must_use]
pub fn pending_effects(state: &State) -> Vec<Effect> {
    let mut out: BTreeSet<Effect> = BTreeSet::new();
    for rtype in queue::waiting_types(state) {
        out.insert(Effect::WakeWells { rtype });
    }
    for target in targets_waiting(state) {
        out.insert(Effect::WakeFactories { target });
    }
    for (resource, well) in resources_to_destroy(state) {
        out.insert(Effect::DestroyResource { well, resource });
    }
    for (worker, factory) in workers_to_destroy(state) {
        out.insert(Effect::DestroyWorker { factory, worker });
    }
    out.into_iter().collect()
}
