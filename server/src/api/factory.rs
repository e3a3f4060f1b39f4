//! The factory protocol (`docs/protocol.md`, the buildomat shape): a
//! long-polling lease of a worker for a job that holds all its resources,
//! the worker's creation (answered with the agent's one-time key), its loss,
//! the listing of a factory's workers, and destruction confirmed.

use super::error::ApiError;
use super::well::Done;
use super::{Api, Caller, LeaseAnswer, LeaseRequest};
use crate::auth::Principal;
use crate::driver::DriverError;
use crate::wake::Key;
use aquifer_core::worker::WorkerState;
use aquifer_core::{Event, FactoryId, Input, Rejection, TargetId, WorkerId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use warp::http::StatusCode;

fn factory_of(caller: &Caller) -> Result<FactoryId, ApiError> {
    match caller.principal {
        Principal::Factory(id) => u32::try_from(id)
            .map(FactoryId)
            .map_err(|_| ApiError::forbidden("not a factory's token")),
        _ => Err(ApiError::forbidden("this needs a factory's token")),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Granted {
    pub worker: u32,
    pub job: u32,
    pub target: TargetId,
    pub expires_at_ms: u64,
}

pub async fn lease(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, LeaseAnswer<Granted>), ApiError> {
    let factory = factory_of(caller)?;
    let req: LeaseRequest = super::parse_json(body)?;
    let free = req.free(|t| TargetId::new(t));
    let mut keys: Vec<Key> = free.keys().cloned().map(Key::Target).collect();
    keys.push(Key::Factory(factory));
    let destroying = &req.destroying;
    let answer = super::long_poll(api, keys, req.wait_ms, || {
        let free = free.clone();
        async move { lease_once(api, factory, free, destroying).await }
    })
    .await?;
    Ok((StatusCode::OK, answer.unwrap_or_default()))
}

async fn lease_once(
    api: &Api,
    factory: FactoryId,
    free: BTreeMap<TargetId, u16>,
    destroying: &BTreeSet<u32>,
) -> Result<Option<LeaseAnswer<Granted>>, ApiError> {
    let t = api
        .handle
        .send(Input::RequestWorker { factory, free })
        .await?;
    let grant = t.events.iter().find_map(|e| match e {
        Event::WorkerLeased {
            worker,
            job,
            expires_at,
            ..
        } => Some((*worker, *job, *expires_at)),
        _ => None,
    });
    let (target, destroy) = api
        .handle
        .read(move |s| {
            let target = grant
                .and_then(|(w, ..)| s.workers.get(&w))
                .map(|w| w.target.clone());
            let destroy: Vec<u32> = (s.workers.iter())
                .filter(|(_, w)| w.factory == factory && w.state == WorkerState::Releasing)
                .map(|(id, _)| id.0)
                .collect();
            (target, destroy)
        })
        .await?;
    let lease = match (grant, target) {
        (Some((worker, job, expires_at)), Some(target)) => Some(Granted {
            worker: worker.0,
            job: job.0,
            target,
            expires_at_ms: expires_at.ms(),
        }),
        _ => None,
    };
    Ok(LeaseAnswer { lease, destroy }.if_news(destroying))
}

#[derive(Serialize)]
pub struct Bootstrap {
    /// The agent's one-time key.
    pub bootstrap: String,
}

/// The factory made the worker: the answer is the key its agent
/// bootstraps with. Asked again before the agent has used a key (the
/// first answer was lost), it revokes the old key and makes a new one.
pub async fn created(
    api: &Api,
    caller: &Caller,
    worker: u32,
) -> Result<(StatusCode, Bootstrap), ApiError> {
    let factory = factory_of(caller)?;
    let worker = WorkerId(worker);
    match api
        .handle
        .send(Input::ReportWorkerCreated { factory, worker })
        .await
    {
        Ok(_) => {}
        Err(DriverError::Rejected(Rejection::Duplicate { .. })) => {
            let waiting = api
                .handle
                .read(move |s| {
                    s.workers
                        .get(&worker)
                        .is_some_and(|w| w.factory == factory && w.state == WorkerState::Created)
                })
                .await?;
            if !waiting {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    format!("{worker} was reported created and its agent has checked in"),
                ));
            }
            api.store
                .revoke_tokens(Principal::Bootstrap(u64::from(worker.0)))
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let bootstrap = api
        .store
        .issue_token(Principal::Bootstrap(u64::from(worker.0)), super::now())
        .await?;
    Ok((StatusCode::OK, Bootstrap { bootstrap }))
}

pub async fn lost(api: &Api, caller: &Caller, worker: u32) -> Result<(StatusCode, Done), ApiError> {
    let factory = factory_of(caller)?;
    api.handle
        .send(Input::ReportWorkerLost {
            factory,
            worker: WorkerId(worker),
        })
        .await?;
    Ok((StatusCode::OK, Done {}))
}

#[derive(Serialize)]
pub struct Listed {
    pub id: u32,
    pub job: u32,
    pub target: TargetId,
    pub state: &'static str,
    /// `keep` or `destroy`.
    pub want: &'static str,
}

#[derive(Serialize)]
pub struct Listing {
    pub workers: Vec<Listed>,
}

pub async fn list(api: &Api, caller: &Caller) -> Result<(StatusCode, Listing), ApiError> {
    let factory = factory_of(caller)?;
    let workers = api
        .handle
        .read(move |s| {
            (s.workers.iter())
                .filter(|(_, w)| w.factory == factory)
                .map(|(id, w)| Listed {
                    id: id.0,
                    job: w.job.0,
                    target: w.target.clone(),
                    state: w.state.name(),
                    want: if w.state == WorkerState::Releasing {
                        "destroy"
                    } else {
                        "keep"
                    },
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, Listing { workers }))
}

pub async fn destroyed(
    api: &Api,
    caller: &Caller,
    worker: u32,
) -> Result<(StatusCode, Done), ApiError> {
    let factory = factory_of(caller)?;
    api.handle
        .send(Input::ConfirmWorkerDestroyed {
            factory,
            worker: WorkerId(worker),
        })
        .await?;
    Ok((StatusCode::OK, Done {}))
}
