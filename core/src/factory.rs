//! A factory's inputs: worker requests, and its reports about workers:
//! created, lost, destroyed. And the expiry of worker leases, which the
//! clock decides.

use crate::answer::Answer;
use crate::end::{end_job, retire_if_done};
use crate::event::Event;
use crate::ids::{FactoryId, TargetId, WorkerId};
use crate::job::{Failure, Outcome};
use crate::queue::{factory_room, worker_head};
use crate::rejection::Rejection;
use crate::state::State;
use crate::tx::{Tx, known_worker};
use crate::worker::{Worker, WorkerState};
use std::collections::BTreeMap;

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
) -> Result<Answer, Rejection> {
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
        return Ok(Answer::NoLease);
    }
    // The oldest job waiting for a worker of a target the factory has
    // room for.
    let chosen = (free.iter())
        .filter(|&(target, &n)| n > 0 && factory_room(&tx.state, factory, target) > 0)
        .filter_map(|(target, _)| worker_head(&tx.state, target))
        .min();
    let Some((job, j)) = chosen.and_then(|job| tx.state.jobs.get(&job).map(|j| (job, j))) else {
        return Ok(Answer::NoLease);
    };
    if tx.state.next_worker.exhausted(1) {
        return Err(Rejection::LimitExceeded {
            what: "worker ids",
            max: u64::from(u32::MAX),
        });
    }
    let target = j.target.clone();
    let (worker, expires_at) = (
        tx.state.next_worker,
        tx.now.plus_ms(tx.state.limits.worker_lease_ttl_ms),
    );
    tx.emit(Event::WorkerLeased {
        worker,
        job,
        factory,
        expires_at,
    });
    Ok(Answer::WorkerLeased {
        worker,
        job,
        target,
        expires_at,
    })
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
    end_job(tx, job, Outcome::Failed(Failure::WorkerLost));
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
    retire_if_done(tx, job);
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

impl State {
    /// Whether a repeated `created` report of `worker` by `factory` gets a
    /// new bootstrap key. `step` refuses the repeat as a duplicate (it
    /// decides nothing), but until the agent has checked in, the first
    /// answer and its key may have been lost on the way: the old key is
    /// revoked and a new one issued. Once the agent is online, never.
    #[must_use]
    pub fn may_reissue_bootstrap(&self, factory: FactoryId, worker: WorkerId) -> bool {
        (self.workers.get(&worker))
            .is_some_and(|w| w.factory == factory && w.state == WorkerState::Created)
    }
}
