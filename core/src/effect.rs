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

/// The effects of a step's events, in order, without repeats. Destruction
/// is read off the difference between the states before and after (what
/// newly went into release), the rest off the events.
pub(crate) fn effects_of(before: &State, after: &State, events: &[Event]) -> Vec<Effect> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |e: Effect| {
        if seen.insert(e.clone()) {
            out.push(e);
        }
    };
    for event in events {
        if let Some(job) = event.job() {
            push(Effect::NotifyJob { job });
        }
        match event {
            Event::GroupQueued { .. } | Event::LeaseEnded { .. } => {
                // Whatever is waiting now may be granted: wake the wells of
                // those types (a lease that ended requeued its group).
                for c in lease::waiting(after) {
                    push(Effect::WakeWells { rtype: c.rtype });
                }
            }
            Event::WorkerQueued { job } => {
                if let Some(j) = after.jobs.get(job) {
                    push(Effect::WakeFactories {
                        target: j.target.clone(),
                    });
                }
            }
            Event::WorkerLeaseExpired { worker } => {
                if let Some(w) = after.workers.get(worker) {
                    push(Effect::WakeFactories {
                        target: w.target.clone(),
                    });
                }
            }
            _ => {}
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

/// Everything this state owes the outside world. The driver performs these
/// after a restart; they are also what a correct step's effects add up to.
#[must_use]
pub fn pending_effects(state: &State) -> Vec<Effect> {
    let mut out: BTreeSet<Effect> = BTreeSet::new();
    for c in lease::waiting(state) {
        out.insert(Effect::WakeWells { rtype: c.rtype });
    }
    for j in state.jobs.values() {
        if j.phase == Phase::Acquiring && j.worker == WorkerWant::Queued {
            out.insert(Effect::WakeFactories {
                target: j.target.clone(),
            });
        }
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
