//! `apply`: folds one committed event into the state. It never fails: an
//! event it cannot accept is a bug in `step` or a corrupt log, and it
//! panics with the event rather than act on a state nobody decided. Each
//! arm matches the entity's state exhaustively, so a new variant breaks
//! the build here.

use crate::event::{Event, LeaseEnd};
use crate::ids::{JobId, LeaseId, ResourceId, TypeId, WellId, WorkerId};
use crate::index::Touch;
use crate::job::{Group, GroupState, Job, Phase, WorkerWant};
use crate::lease::Lease;
use crate::registry::{Factory, Well};
use crate::resource::{Resource, ResourceState};
use crate::state::{State, impossible};
use crate::time::Time;
use crate::worker::{Worker, WorkerState};
use std::collections::{BTreeMap, BTreeSet};

/// Folds one committed event into the state, and keeps the indexes over
/// its books.
pub fn apply(state: &mut State, event: &Event) {
    let touch = Touch::before(state, event);
    fold(state, event);
    touch.after(state, event);
}

fn fold(state: &mut State, event: &Event) {
    match event {
        Event::TypeDefined { rtype, spec } => {
            state.types.insert(rtype.clone(), spec.clone());
        }
        Event::TargetDefined { target, spec } => {
            state.targets.insert(target.clone(), spec.clone());
        }
        Event::WellRegistered { well, pools } => {
            let pools = pools.clone();
            state.wells.insert(*well, Well { pools });
        }
        Event::FactoryRegistered { factory, capacity } => {
            let capacity = capacity.clone();
            state.factories.insert(*factory, Factory { capacity });
        }
        Event::LeasesHeld { held } => state.lease_hold = *held,
        Event::JobSubmitted {
            job,
            target,
            groups,
            deadline,
            depends_on,
            run_on,
            awaits_inputs,
            owner,
        } => {
            apply_job_submitted(state, event, *job, target, groups, *deadline, *owner);
            let entry = state.job_mut(*job, event);
            entry.depends_on = depends_on.clone();
            entry.run_on = run_on.clone();
            entry.awaits_inputs = *awaits_inputs;
        }
        Event::DependencySettled { job, dependency } => {
            let entry = state.job_mut(*job, event);
            if !entry.depends_on.remove(dependency) {
                impossible(event, "not a dependency");
            }
            entry.run_on.remove(dependency);
        }
        Event::InputsArrived { job } => {
            let entry = state.job_mut(*job, event);
            if entry.phase != Phase::Blocked || !entry.awaits_inputs {
                impossible(event, "not awaiting inputs");
            }
            entry.awaits_inputs = false;
        }
        Event::AcquisitionBegan { job } => {
            let entry = state.job_mut(*job, event);
            match entry.phase {
                Phase::Blocked if entry.may_begin() => entry.phase = Phase::Acquiring,
                Phase::Blocked | Phase::Acquiring | Phase::Running | Phase::Ended(_) => {
                    impossible(event, "job not ready to acquire")
                }
            }
        }
        Event::GroupQueued { job, group } => {
            let g = state.group_mut(*job, *group, event);
            match g.state {
                GroupState::Idle => g.state = GroupState::Acquiring { failures: 0 },
                GroupState::Acquiring { .. } | GroupState::Ready => {
                    impossible(event, "group not idle")
                }
            }
        }
        Event::LeaseGranted {
            lease,
            job,
            group,
            rtype,
            well,
            resources,
            expires_at,
        } => apply_lease_granted(
            state,
            event,
            *lease,
            *job,
            *group,
            rtype,
            *well,
            resources,
            *expires_at,
        ),
        Event::LeaseRenewed { lease, expires_at } => match state.leases.get_mut(lease) {
            Some(l) => l.expires_at = *expires_at,
            None => impossible(event, "no such lease"),
        },
        Event::ResourceReady { resource } => {
            let r = state.resource_mut(*resource, event);
            match r.state {
                ResourceState::Creating { .. } => r.state = ResourceState::Ready,
                ResourceState::Ready | ResourceState::Releasing { .. } | ResourceState::Held => {
                    impossible(event, "resource not being created")
                }
            }
        }
        Event::LeaseFulfilled { lease } => {
            let l = state.take_lease(*lease, event);
            if l.resources
                .iter()
                .any(|r| state.resources.get(r).map(|r| r.state) != Some(ResourceState::Ready))
            {
                impossible(event, "lease not fulfilled");
            }
        }
        Event::LeaseEnded { lease, cause } => apply_lease_ended(state, event, *lease, *cause),
        Event::GroupReady { job, group } => {
            let g = state.group_mut(*job, *group, event);
            match g.state {
                GroupState::Acquiring { .. } => g.state = GroupState::Ready,
                GroupState::Idle | GroupState::Ready => impossible(event, "group not acquiring"),
            }
        }
        Event::WorkerQueued { job } => {
            let entry = state.job_mut(*job, event);
            match entry.worker {
                WorkerWant::Idle => entry.worker = WorkerWant::Queued,
                WorkerWant::Queued | WorkerWant::Bound(_) => {
                    impossible(event, "worker already wanted")
                }
            }
        }
        Event::WorkerLeased {
            worker,
            job,
            factory,
            expires_at,
        } => apply_worker_leased(state, event, *worker, *job, *factory, *expires_at),
        Event::WorkerLeaseExpired { worker } => apply_worker_lease_expired(state, event, *worker),
        Event::WorkerCreated { worker } => {
            let w = state.worker_mut(*worker, event);
            match w.state {
                WorkerState::Leased { .. } => w.state = WorkerState::Created,
                WorkerState::Created | WorkerState::Online | WorkerState::Releasing => {
                    impossible(event, "worker not leased")
                }
            }
        }
        Event::WorkerOnline { worker } => {
            let w = state.worker_mut(*worker, event);
            match w.state {
                WorkerState::Created => w.state = WorkerState::Online,
                WorkerState::Leased { .. } | WorkerState::Online | WorkerState::Releasing => {
                    impossible(event, "worker not created")
                }
            }
        }
        Event::JobStarted { job } => {
            let entry = state.job_mut(*job, event);
            match entry.phase {
                Phase::Acquiring => entry.phase = Phase::Running,
                Phase::Blocked | Phase::Running | Phase::Ended(_) => {
                    impossible(event, "job not acquiring")
                }
            }
        }
        Event::JobEnded { job, outcome } => {
            let entry = state.job_mut(*job, event);
            match entry.phase {
                Phase::Blocked | Phase::Acquiring | Phase::Running => {
                    entry.phase = Phase::Ended(*outcome)
                }
                Phase::Ended(_) => impossible(event, "job already ended"),
            }
        }
        Event::ResourceReleased { resource } => {
            let r = state.resource_mut(*resource, event);
            match r.state {
                ResourceState::Ready => r.state = ResourceState::Releasing { failures: 0 },
                ResourceState::Creating { .. }
                | ResourceState::Releasing { .. }
                | ResourceState::Held => impossible(event, "resource not ready"),
            }
        }
        Event::WorkerReleased { worker } => {
            let w = state.worker_mut(*worker, event);
            match w.state {
                WorkerState::Leased { .. } | WorkerState::Created | WorkerState::Online => {
                    w.state = WorkerState::Releasing
                }
                WorkerState::Releasing => impossible(event, "worker already releasing"),
            }
        }
        Event::DestroyFailed { resource } => {
            let r = state.resource_mut(*resource, event);
            match &mut r.state {
                ResourceState::Releasing { failures } => *failures = failures.saturating_add(1),
                ResourceState::Creating { .. } | ResourceState::Ready | ResourceState::Held => {
                    impossible(event, "resource not releasing")
                }
            }
        }
        Event::ResourceHeld { resource } => {
            let r = state.resource_mut(*resource, event);
            match r.state {
                ResourceState::Releasing { .. } => r.state = ResourceState::Held,
                ResourceState::Creating { .. } | ResourceState::Ready | ResourceState::Held => {
                    impossible(event, "resource not releasing")
                }
            }
        }
        Event::HeldReleased { resource } => {
            let r = state.resource_mut(*resource, event);
            match r.state {
                ResourceState::Held => r.state = ResourceState::Releasing { failures: 0 },
                ResourceState::Creating { .. }
                | ResourceState::Ready
                | ResourceState::Releasing { .. } => impossible(event, "resource not held"),
            }
        }
        Event::ResourceDestroyed { resource } => match state.resources.remove(resource) {
            Some(Resource {
                state: ResourceState::Releasing { .. } | ResourceState::Held,
                ..
            }) => {}
            Some(_) | None => impossible(event, "resource not being released"),
        },
        Event::WorkerDestroyed { worker } => match state.workers.remove(worker) {
            Some(Worker {
                state: WorkerState::Releasing,
                ..
            }) => {}
            Some(_) | None => impossible(event, "worker not being released"),
        },
        Event::JobRetired { job } => match state.jobs.remove(job) {
            Some(Job {
                phase: Phase::Ended(_),
                ..
            }) => {}
            Some(_) | None => impossible(event, "job not ended"),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_lease_granted(
    state: &mut State,
    event: &Event,
    lease: LeaseId,
    job: JobId,
    group: u8,
    rtype: &TypeId,
    well: WellId,
    resources: &[ResourceId],
    expires_at: Time,
) {
    if lease != state.next_lease || resources.first().is_some_and(|r| *r != state.next_resource) {
        impossible(event, "lease and resource ids are handed out in order");
    }
    match state.group_mut(job, group, event).state {
        GroupState::Acquiring { .. } => {}
        GroupState::Idle | GroupState::Ready => impossible(event, "group not acquiring"),
    }
    state.next_lease = lease.next();
    for resource in resources {
        state.next_resource = resource.next();
        let r = Resource {
            job,
            group,
            rtype: rtype.clone(),
            well,
            state: ResourceState::Creating { lease },
        };
        state.resources.insert(*resource, r);
    }
    let l = Lease {
        job,
        group,
        well,
        resources: resources.to_vec(),
        expires_at,
    };
    state.leases.insert(lease, l);
}

fn apply_job_submitted(
    state: &mut State,
    event: &Event,
    job: JobId,
    target: &crate::ids::TargetId,
    groups: &[(TypeId, u16)],
    deadline: Time,
    owner: u64,
) {
    if job != state.next_job {
        impossible(event, "job ids are handed out in order");
    }
    state.next_job = job.next();
    let groups = groups
        .iter()
        .map(|(rtype, count)| Group {
            rtype: rtype.clone(),
            count: *count,
            state: GroupState::Idle,
        })
        .collect();
    let entry = Job {
        target: target.clone(),
        groups,
        worker: WorkerWant::Idle,
        phase: Phase::Blocked,
        deadline,
        depends_on: BTreeSet::new(),
        run_on: BTreeMap::new(),
        awaits_inputs: false,
        owner,
    };
    state.jobs.insert(job, entry);
}

/// What the lease covered goes to release; a failed or expired lease
/// counts against its group.
fn apply_lease_ended(state: &mut State, event: &Event, lease: LeaseId, cause: LeaseEnd) {
    let l = state.take_lease(lease, event);
    for resource in &l.resources {
        let r = state.resource_mut(*resource, event);
        match r.state {
            ResourceState::Creating { .. } | ResourceState::Ready => {
                r.state = ResourceState::Releasing { failures: 0 }
            }
            ResourceState::Releasing { .. } | ResourceState::Held => {
                impossible(event, "resource already released")
            }
        }
    }
    match cause {
        LeaseEnd::Failed { .. } | LeaseEnd::Expired => {
            let g = state.group_mut(l.job, l.group, event);
            match &mut g.state {
                GroupState::Acquiring { failures } => *failures = failures.saturating_add(1),
                GroupState::Idle | GroupState::Ready => impossible(event, "group not acquiring"),
            }
        }
        LeaseEnd::JobEnded => {}
    }
}

fn apply_worker_leased(
    state: &mut State,
    event: &Event,
    worker: WorkerId,
    job: JobId,
    factory: crate::ids::FactoryId,
    expires_at: Time,
) {
    if worker != state.next_worker {
        impossible(event, "worker ids are handed out in order");
    }
    state.next_worker = worker.next();
    let entry = state.job_mut(job, event);
    match entry.worker {
        WorkerWant::Queued => entry.worker = WorkerWant::Bound(worker),
        WorkerWant::Idle | WorkerWant::Bound(_) => impossible(event, "worker not queued"),
    }
    let target = entry.target.clone();
    let w = Worker {
        job,
        factory,
        target,
        state: WorkerState::Leased { expires_at },
    };
    state.workers.insert(worker, w);
}

/// The worker goes to release (the factory may have started it) and its
/// job waits for a worker again.
fn apply_worker_lease_expired(state: &mut State, event: &Event, worker: WorkerId) {
    let w = state.worker_mut(worker, event);
    match w.state {
        WorkerState::Leased { .. } => w.state = WorkerState::Releasing,
        WorkerState::Created | WorkerState::Online | WorkerState::Releasing => {
            impossible(event, "worker not leased")
        }
    }
    let job = w.job;
    let entry = state.job_mut(job, event);
    match entry.worker {
        WorkerWant::Bound(bound) if bound == worker => entry.worker = WorkerWant::Queued,
        WorkerWant::Idle | WorkerWant::Queued | WorkerWant::Bound(_) => {
            impossible(event, "worker not bound to its job")
        }
    }
}
