//! Effects: what the driver does once a step's events are committed, and
//! `pending_effects`, what a state owes regardless of how it was reached.
//! Effects follow from state, not history, so a restarted server simply
//! performs the pending ones again. Every effect is idempotent.

use crate::event::Event;
use crate::ids::{FactoryId, JobId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::job::{Phase, WorkerWant};
use crate::lease;
use crate::resource::ResourceState;
use crate::state::State;
use crate::worker::WorkerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
        for c in lease::waiting(after) {
            push(Effect::WakeWells { rtype: c.rtype });
        }
    }
    if events.iter().any(|e| wakes(e).1) {
        for target in targets_waiting(after) {
            push(Effect::WakeFactories { target });
        }
    }
    for (&resource, r) in &after.resources {
        let was_releasing = before
            .resources
            .get(&resource)
            .is_some_and(|b| matches!(b.state, ResourceState::Releasing { .. }));
        if matches!(r.state, ResourceState::Releasing { .. }) && !was_releasing {
            push(Effect::DestroyResource {
                well: r.well,
                resource,
            });
        }
    }
    for (&worker, w) in &after.workers {
        let was_releasing = before
            .workers
            .get(&worker)
            .is_some_and(|b| b.state == WorkerState::Releasing);
        if w.state == WorkerState::Releasing && !was_releasing {
            push(Effect::DestroyWorker {
                factory: w.factory,
                worker,
            });
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
    state
        .jobs
        .values()
        .filter(|j| j.phase == Phase::Acquiring && j.worker == WorkerWant::Queued)
        .map(|j| j.target.clone())
        .collect()
}

/// The job an event concerns. Things that leave the books in the step are
/// found in the state before it.
fn job_of(before: &State, after: &State, event: &Event) -> Option<JobId> {
    crate::explain::subject(after, event).or_else(|| crate::explain::subject(before, event))
}

/// Everything this state owes the outside world. The driver performs these
/// after a restart; they are also what a correct step's effects add up to.
#[must_use]
pub fn pending_effects(state: &State) -> Vec<Effect> {
    let mut out: BTreeSet<Effect> = BTreeSet::new();
    for c in lease::waiting(state) {
        out.insert(Effect::WakeWells { rtype: c.rtype });
    }
    for target in targets_waiting(state) {
        out.insert(Effect::WakeFactories { target });
    }
    for (&resource, r) in &state.resources {
        if let ResourceState::Releasing { .. } = r.state {
            out.insert(Effect::DestroyResource {
                well: r.well,
                resource,
            });
        }
    }
    for (&worker, w) in &state.workers {
        if w.state == WorkerState::Releasing {
            out.insert(Effect::DestroyWorker {
                factory: w.factory,
                worker,
            });
        }
    }
    out.into_iter().collect()
}
