//! The factory protocol (`docs/protocol.md`, the buildomat shape): a
//! long-polling lease of a worker for a job that holds all its resources,
//! the worker's creation (answered with the agent's one-time key), its loss,
//! the listing of a factory's workers, and destruction confirmed.

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use crate::driver::DriverError;
use crate::wake::Key;
use aquifer_core::{Answer, FactoryId, Input, Rejection, TargetId, WorkerId};
use aquifer_protocol::Empty;
use aquifer_protocol::factory::{
    Bootstrap, FactoryLeaseAnswer, FactoryLeaseRequest, Grant, Listed, Listing,
};
use std::collections::BTreeMap;
use warp::http::StatusCode;

fn factory_of(caller: &Caller) -> Result<FactoryId, ApiError> {
    match caller.principal {
        Principal::Factory(id) => u32::try_from(id)
            .map(FactoryId)
            .map_err(|_| ApiError::forbidden("not a factory's token")),
        _ => Err(ApiError::forbidden("this needs a factory's token")),
    }
}

pub async fn lease(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, FactoryLeaseAnswer), ApiError> {
    let factory = factory_of(caller)?;
    let req: FactoryLeaseRequest = super::parse_json(body)?;
    let free = req.asking();
    let mut keys: Vec<Key> = free.keys().cloned().map(Key::Target).collect();
    keys.push(Key::Factory(factory));
    let destroying = &req.destroying;
    let answer = super::long_poll(api, caller.principal, keys, req.wait_ms, || {
        let free = free.clone();
        async move {
            let answer = lease_once(api, factory, free).await?;
            Ok(answer.if_news(destroying))
        }
    })
    .await?;
    Ok((StatusCode::OK, answer.unwrap_or_default()))
}

async fn lease_once(
    api: &Api,
    factory: FactoryId,
    free: BTreeMap<TargetId, u16>,
) -> Result<FactoryLeaseAnswer, ApiError> {
    let t = api
        .handle
        .send(Input::RequestWorker { factory, free })
        .await?;
    let lease = match t.answer {
        Answer::WorkerLeased {
            worker,
            job,
            target,
            expires_at,
        } => Some(Grant {
            worker,
            job,
            target,
            expires_at_ms: expires_at.ms(),
        }),
        _ => None,
    };
    let destroy = (api.handle)
        .read(move |s| s.to_destroy_by_factory(factory))
        .await?;
    Ok(FactoryLeaseAnswer { lease, destroy })
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
            let again = (api.handle)
                .read(move |s| s.may_reissue_bootstrap(factory, worker))
                .await?;
            if !again {
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

pub async fn lost(
    api: &Api,
    caller: &Caller,
    worker: u32,
) -> Result<(StatusCode, Empty), ApiError> {
    let factory = factory_of(caller)?;
    api.handle
        .send(Input::ReportWorkerLost {
            factory,
            worker: WorkerId(worker),
        })
        .await?;
    Ok((StatusCode::OK, Empty {}))
}

pub async fn list(api: &Api, caller: &Caller) -> Result<(StatusCode, Listing), ApiError> {
    let factory = factory_of(caller)?;
    let workers = api
        .handle
        .read(move |s| {
            (s.workers.iter())
                .filter(|(_, w)| w.factory == factory)
                .map(|(id, w)| Listed {
                    id: *id,
                    job: w.job,
                    target: w.target.clone(),
                    state: (&w.state).into(),
                    want: w.state.want().into(),
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
) -> Result<(StatusCode, Empty), ApiError> {
    let factory = factory_of(caller)?;
    api.handle
        .send(Input::ConfirmWorkerDestroyed {
            factory,
            worker: WorkerId(worker),
        })
        .await?;
    // A slot is free at the factory now: its parked lease poll asks again.
    api.wakers.registry.wake(&Key::Factory(factory));
    Ok((StatusCode::OK, Empty {}))
}
