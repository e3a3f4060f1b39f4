//! Workers: leased by a factory for one job once that job holds all its
//! resources (rule 3), created, brought online by the agent, released when
//! the job ends and forgotten when the factory confirms them destroyed.

use crate::event::Event;
use crate::ids::{FactoryId, JobId, TargetId, WorkerId};
use crate::job::{Failure, Outcome, Phase, WorkerWant};
use crate::rejection::Rejection;
use crate::state::State;
use crate::step::Tx;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Worker {
    pub job: JobId,
    pub factory: FactoryId,
    pub target: TargetId,
    pub state: WorkerState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkerState {
    /// The factory was given the job and must create the worker by then.
    Leased { expires_at: Time },
    /// The factory made it; the agent has not checked in yet.
    Created,
    /// The agent has checked in with its bootstrap key.
    Online,
    /// The job is over (or the worker was lost): the factory must destroy it.
    Releasing,
}

impl WorkerState {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            WorkerState::Leased { .. } => "leased",
            WorkerState::Created => "created",
            WorkerState::Online => "online",
            WorkerState::Releasing => "releasing",
        }
    }
}

/// How many more workers for `target` the factory may have by the books.
pub fn factory_room(state: &State, factory: FactoryId, target: &TargetId) -> u16 {
    let Some(&capacity) = state
        .factories
        .get(&factory)
        .and_then(|f| f.capacity.get(target))
    else {
        return 0;
    };
    let used = state
        .workers
        .values()
        .filter(|w| w.factory == factory && &w.target == target)
        .count();
    capacity.saturating_sub(u16::try_from(used).unwrap_or(u16::MAX))
}

pub(crate) fn known_worker(tx: &Tx, worker: WorkerId) -> Result<&Worker, Rejection> {
    tx.state
        .workers
        .get(&worker)
        .ok_or(if worker < tx.state.next_worker {
            Rejection::Gone {
                what: worker.to_string(),
            }
        } else {
            Rejection::UnknownWorker { worker }
        })
}

fn owned(tx: &Tx, factory: FactoryId, worker: WorkerId) -> Result<&Worker, Rejection> {
    let w = known_worker(tx, worker)?;
    if w.factory != factory {
        return Err(Rejection::NotYours {
            what: worker.to_string(),
        });
    }
    Ok(w)
}

/// The factory asks for work with free slots per target: it gets the
/// oldest job that holds all its resources and waits for a worker of one
/// of those targets, or nothing.
pub(crate) fn handle_request(
    tx: &mut Tx,
    factory: FactoryId,
    free: BTreeMap<TargetId, u16>,
) -> Result<(), Rejection> {
    let f = tx
        .state
        .factories
        .get(&factory)
        .ok_or(Rejection::UnknownFactory { factory })?;
    if let Some(target) = free.keys().find(|t| !f.capacity.contains_key(*t)) {
        return Err(Rejection::NotServed {
            what: format!("target {target}"),
            by: factory.to_string(),
        });
    }
    if tx.state.lease_hold {
        return Ok(());
    }
    let chosen = tx.state.jobs.iter().find(|(_, j)| {
        j.phase == Phase::Acquiring
            && j.worker == WorkerWant::Queued
            && free.get(&j.target).is_some_and(|&n| n > 0)
            && factory_room(&tx.state, factory, &j.target) > 0
    });
    let Some((&job, _)) = chosen else {
        return Ok(());
    };
    if tx.state.next_worker.exhausted(1) {
        return Err(Rejection::LimitExceeded {
            what: "worker ids",
            max: u64::from(u32::MAX),
        });
    }
    tx.emit(Event::WorkerLeased {
        worker: tx.state.next_worker,
        job,
        factory,
        expires_at: tx.now.plus_ms(tx.state.limits.worker_lease_ttl_ms),
    });
    Ok(())
}

pub(crate) fn handle_created(
    tx: &mut Tx,
    factory: FactoryId,
    worker: WorkerId,
) -> Result<(), Rejection> {
    let w = owned(tx, factory, worker)?;
    match w.state {
        WorkerState::Leased { expires_at } if expires_at > tx.now => {
            tx.emit(Event::WorkerCreated { worker });
            Ok(())
        }
        WorkerState::Leased { .. } => Err(Rejection::Gone {
            what: format!("the lease of {worker}"),
        }),
        WorkerState::Created | WorkerState::Online => Err(Rejection::Duplicate {
            what: format!("creation of {worker}"),
        }),
        WorkerState::Releasing => Err(Rejection::WrongState {
            what: worker.to_string(),
            state: w.state.name(),
            wanted: "leased",
        }),
    }
}

/// The agent on the worker checked in.
pub(crate) fn handle_online(tx: &mut Tx, worker: WorkerId) -> Result<(), Rejection> {
    let w = known_worker(tx, worker)?;
    match w.state {
        WorkerState::Created => {
            tx.emit(Event::WorkerOnline { worker });
            Ok(())
        }
        WorkerState::Online => Err(Rejection::Duplicate {
            what: format!("check-in of {worker}"),
        }),
        WorkerState::Leased { .. } | WorkerState::Releasing => Err(Rejection::WrongState {
            what: worker.to_string(),
            state: w.state.name(),
            wanted: "created",
        }),
    }
}

/// The factory says a worker is gone without being asked. Its job fails;
/// the worker is released so the factory confirms and its slot comes back.
pub(crate) fn handle_lost(
    tx: &mut Tx,
    factory: FactoryId,
    worker: WorkerId,
) -> Result<(), Rejection> {
    let w = owned(tx, factory, worker)?;
    if w.state == WorkerState::Releasing {
        return Err(Rejection::WrongState {
            what: worker.to_string(),
            state: w.state.name(),
            wanted: "leased, created or online",
        });
    }
    let job = w.job;
    crate::end::end_job(tx, job, Outcome::Failed(Failure::WorkerLost));
    Ok(())
}

pub(crate) fn handle_destroyed(
    tx: &mut Tx,
    factory: FactoryId,
    worker: WorkerId,
) -> Result<(), Rejection> {
    let w = owned(tx, factory, worker)?;
    if w.state != WorkerState::Releasing {
        return Err(Rejection::WrongState {
            what: worker.to_string(),
            state: w.state.name(),
            wanted: "releasing",
        });
    }
    let job = w.job;
    tx.emit(Event::WorkerDestroyed { worker });
    crate::end::retire_if_done(tx, job);
    Ok(())
}

/// Worker leases whose factory never created the worker: the worker is
/// released (the factory reconciles what it may have started) and the job
/// waits for a worker again at its old place.
pub(crate) fn expire_due(tx: &mut Tx) {
    let due: Vec<WorkerId> = tx
        .state
        .workers
        .iter()
        .filter(
            |(_, w)| matches!(w.state, WorkerState::Leased { expires_at } if expires_at <= tx.now),
        )
        .map(|(id, _)| *id)
        .collect();
    for worker in due {
        tx.emit(Event::WorkerLeaseExpired { worker });
    }
}
