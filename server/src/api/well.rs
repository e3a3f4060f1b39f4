//! The well protocol (`docs/protocol.md`): long-polling lease requests,
//! renewal, ready and failed reports, the listing of a well's resources,
//! destruction confirmed or failed. A well touches only its own resources:
//! the core refuses reports from another well (`not_yours`).

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use crate::readmodel::Payload;
use crate::wake::Key;
use aquifer_core::{Answer, Input, LeaseId, ResourceId, WellId};
use aquifer_protocol::Empty;
use aquifer_protocol::well::{
    DestroyFailed, Failed, Grant, Listed, Listing, Ready, Renewed, WellLeaseAnswer,
    WellLeaseRequest,
};
use std::collections::BTreeMap;
use warp::http::StatusCode;

/// The most a ready report may carry (metadata and secrets together).
pub const REPORT_BYTES_MAX: usize = 64 * 1024;
/// The longest reason kept.
pub const REASON_BYTES_MAX: usize = 4096;

fn well_of(caller: &Caller) -> Result<WellId, ApiError> {
    match caller.principal {
        Principal::Well(id) => u32::try_from(id)
            .map(WellId)
            .map_err(|_| ApiError::forbidden("not a well's token")),
        _ => Err(ApiError::forbidden("this needs a well's token")),
    }
}

/// Asks for work; with none (and nothing to destroy), waits up to
/// `wait_ms` for a wake on one of the types asked for or on this well.
pub async fn lease(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, WellLeaseAnswer), ApiError> {
    let well = well_of(caller)?;
    let req: WellLeaseRequest = super::parse_json(body)?;
    let free = req.asking();
    let mut keys: Vec<Key> = free.keys().cloned().map(Key::Type).collect();
    keys.push(Key::Well(well));
    let destroying = &req.destroying;
    let answer = super::long_poll(api, caller.principal, keys, req.wait_ms, || {
        let free = free.clone();
        async move {
            let answer = lease_once(api, well, free).await?;
            Ok(answer.if_news(destroying))
        }
    })
    .await?;
    Ok((StatusCode::OK, answer.unwrap_or_default()))
}

async fn lease_once(
    api: &Api,
    well: WellId,
    free: BTreeMap<aquifer_core::TypeId, u16>,
) -> Result<WellLeaseAnswer, ApiError> {
    let t = api.handle.send(Input::RequestLease { well, free }).await?;
    let lease = match t.answer {
        Answer::LeaseGranted {
            lease,
            job,
            rtype,
            resources,
            deadline,
            expires_at,
        } => Some(Grant {
            id: lease,
            job,
            rtype,
            resources,
            deadline_ms: deadline.ms(),
            expires_at_ms: expires_at.ms(),
        }),
        _ => None,
    };
    let destroy = api.handle.read(move |s| s.to_destroy_by_well(well)).await?;
    Ok(WellLeaseAnswer { lease, destroy })
}

pub async fn renew(
    api: &Api,
    caller: &Caller,
    lease: u32,
) -> Result<(StatusCode, Renewed), ApiError> {
    let well = well_of(caller)?;
    let t = api
        .handle
        .send(Input::RenewLease {
            well,
            lease: LeaseId(lease),
        })
        .await?;
    let Answer::LeaseRenewed { expires_at } = t.answer else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the renewal was taken without a new expiry",
        ));
    };
    let expires_at_ms = expires_at.ms();
    Ok((StatusCode::OK, Renewed { expires_at_ms }))
}

fn check_ready(r: &Ready) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::bad_request("bad_report", m);
    if let Some(k) = r.metadata.keys().find(|k| r.secrets.contains_key(*k)) {
        return Err(bad(format!("{k:?} is both metadata and a secret")));
    }
    if (r.metadata.values().chain(r.secrets.values())).any(|v| v.contains('\0')) {
        return Err(bad("a value holds a NUL character".into()));
    }
    if let Some(k) =
        (r.metadata.keys().chain(r.secrets.keys())).find(|k| !super::jobs::valid_name(k))
    {
        return Err(bad(format!(
            "bad key {k:?}: use 1 to 63 letters, digits, '-', '_' or '.'"
        )));
    }
    let size: usize = (r.metadata.iter().chain(r.secrets.iter()))
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if size > REPORT_BYTES_MAX {
        return Err(bad(format!(
            "a report carries at most {REPORT_BYTES_MAX} bytes of metadata and secrets"
        )));
    }
    Ok(())
}

pub async fn ready(
    api: &Api,
    caller: &Caller,
    resource: u32,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let well = well_of(caller)?;
    let r: Ready = super::parse_json(body)?;
    check_ready(&r)?;
    let payload = Payload::Ready {
        metadata: r.metadata,
        secrets: r.secrets,
    };
    api.handle
        .send_with(
            Input::ReportReady {
                well,
                resource: ResourceId(resource),
            },
            Some(payload),
        )
        .await?;
    Ok((StatusCode::OK, Empty {}))
}

/// A reason, cut to a bounded length at a character boundary, with any
/// NUL character replaced: PostgreSQL's text cannot hold one, and one
/// caller's text must not fail the batch that carries everyone's writes.
pub(crate) fn bounded(reason: &str) -> String {
    let mut end = reason.len().min(REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].replace('\0', "\u{fffd}")
}

pub async fn failed(
    api: &Api,
    caller: &Caller,
    resource: u32,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let well = well_of(caller)?;
    let f: Failed = super::parse_json(body)?;
    api.handle
        .send_with(
            Input::ReportFailed {
                well,
                resource: ResourceId(resource),
                retryable: f.retryable,
            },
            Some(Payload::Reason(bounded(&f.reason))),
        )
        .await?;
    Ok((StatusCode::OK, Empty {}))
}

pub async fn list(api: &Api, caller: &Caller) -> Result<(StatusCode, Listing), ApiError> {
    let well = well_of(caller)?;
    let resources = api
        .handle
        .read(move |s| {
            (s.resources.iter())
                .filter(|(_, r)| r.well == well)
                .map(|(id, r)| Listed {
                    id: *id,
                    job: r.job,
                    rtype: r.rtype.clone(),
                    state: (&r.state).into(),
                    want: r.state.want().into(),
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, Listing { resources }))
}

pub async fn destroyed(
    api: &Api,
    caller: &Caller,
    resource: u32,
) -> Result<(StatusCode, Empty), ApiError> {
    let well = well_of(caller)?;
    api.handle
        .send(Input::ConfirmDestroyed {
            well,
            resource: ResourceId(resource),
        })
        .await?;
    // A slot is free at the well now. Its lease poll, parked with the count
    // it had before, must hear of it and ask again with the slot, or a
    // group that needs that slot waits out the whole poll.
    api.wakers.registry.wake(&Key::Well(well));
    Ok((StatusCode::OK, Empty {}))
}

pub async fn destroy_failed(
    api: &Api,
    caller: &Caller,
    resource: u32,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let well = well_of(caller)?;
    let f: DestroyFailed = super::parse_json(body)?;
    tracing::warn!(%well, resource, reason = %bounded(&f.reason), "a well could not destroy a resource");
    api.handle
        .send_with(
            Input::ReportDestroyFailed {
                well,
                resource: ResourceId(resource),
            },
            Some(Payload::Reason(bounded(&f.reason))),
        )
        .await?;
    Ok((StatusCode::OK, Empty {}))
}
