//! The well protocol (`docs/protocol.md`): long-polling lease requests,
//! renewal, ready and failed reports, the listing of a well's resources,
//! destruction confirmed or failed. A well touches only its own resources:
//! the core refuses reports from another well (`not_yours`).

use super::error::ApiError;
use super::{Api, Caller, LeaseAnswer, LeaseRequest};
use crate::auth::Principal;
use crate::readmodel::Payload;
use crate::wake::Key;
use aquifer_core::resource::ResourceState;
use aquifer_core::{Event, Input, LeaseId, ResourceId, TypeId, WellId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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

#[derive(Clone, Debug, Serialize)]
pub struct Granted {
    pub id: u32,
    pub job: u32,
    pub rtype: TypeId,
    pub resources: Vec<u32>,
    pub deadline_ms: u64,
    pub expires_at_ms: u64,
}

/// Asks for work; with none (and nothing to destroy), waits up to
/// `wait_ms` for a wake on one of the types asked for or on this well.
pub async fn lease(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, LeaseAnswer<Granted>), ApiError> {
    let well = well_of(caller)?;
    let req: LeaseRequest = super::parse_json(body)?;
    let free = req.free(|t| TypeId::new(t));
    let mut keys: Vec<Key> = free.keys().cloned().map(Key::Type).collect();
    keys.push(Key::Well(well));
    let destroying = &req.destroying;
    let answer = super::long_poll(api, keys, req.wait_ms, || {
        let free = free.clone();
        async move { lease_once(api, well, free, destroying).await }
    })
    .await?;
    Ok((StatusCode::OK, answer.unwrap_or_default()))
}

async fn lease_once(
    api: &Api,
    well: WellId,
    free: BTreeMap<TypeId, u16>,
    destroying: &BTreeSet<u32>,
) -> Result<Option<LeaseAnswer<Granted>>, ApiError> {
    let t = api.handle.send(Input::RequestLease { well, free }).await?;
    let grant = t.events.iter().find_map(|e| match e {
        Event::LeaseGranted {
            lease,
            job,
            rtype,
            resources,
            expires_at,
            ..
        } => Some((*lease, *job, rtype.clone(), resources.clone(), *expires_at)),
        _ => None,
    });
    let granted_job = grant.as_ref().map(|(_, job, ..)| *job);
    let (deadline, destroy) = api
        .handle
        .read(move |s| {
            let deadline = granted_job
                .and_then(|job| s.jobs.get(&job))
                .map_or(0, |j| j.deadline.ms());
            let destroy: Vec<u32> = (s.resources.iter())
                .filter(|(_, r)| {
                    r.well == well && matches!(r.state, ResourceState::Releasing { .. })
                })
                .map(|(id, _)| id.0)
                .collect();
            (deadline, destroy)
        })
        .await?;
    let lease = grant.map(|(lease, job, rtype, resources, expires_at)| Granted {
        id: lease.0,
        job: job.0,
        rtype,
        resources: resources.iter().map(|r| r.0).collect(),
        deadline_ms: deadline,
        expires_at_ms: expires_at.ms(),
    });
    Ok(LeaseAnswer { lease, destroy }.if_news(destroying))
}

#[derive(Serialize)]
pub struct Renewed {
    pub expires_at_ms: u64,
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
    let expires_at_ms = t
        .events
        .iter()
        .find_map(|e| match e {
            Event::LeaseRenewed { expires_at, .. } => Some(expires_at.ms()),
            _ => None,
        })
        .unwrap_or_default();
    Ok((StatusCode::OK, Renewed { expires_at_ms }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct Done {}

fn check_ready(r: &Ready) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::bad_request("bad_report", m);
    if let Some(k) = r.metadata.keys().find(|k| r.secrets.contains_key(*k)) {
        return Err(bad(format!("{k:?} is both metadata and a secret")));
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
) -> Result<(StatusCode, Done), ApiError> {
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
    Ok((StatusCode::OK, Done {}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failed {
    pub reason: String,
    pub retryable: bool,
}

/// A reason, cut to a bounded length at a character boundary.
pub(crate) fn bounded(reason: &str) -> String {
    let mut end = reason.len().min(REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

pub async fn failed(
    api: &Api,
    caller: &Caller,
    resource: u32,
    body: &[u8],
) -> Result<(StatusCode, Done), ApiError> {
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
    Ok((StatusCode::OK, Done {}))
}

#[derive(Serialize)]
pub struct Listed {
    pub id: u32,
    pub job: u32,
    pub rtype: TypeId,
    pub state: &'static str,
    /// `keep`, `release` or `hold`.
    pub want: &'static str,
}

#[derive(Serialize)]
pub struct Listing {
    pub resources: Vec<Listed>,
}

pub async fn list(api: &Api, caller: &Caller) -> Result<(StatusCode, Listing), ApiError> {
    let well = well_of(caller)?;
    let resources = api
        .handle
        .read(move |s| {
            (s.resources.iter())
                .filter(|(_, r)| r.well == well)
                .map(|(id, r)| Listed {
                    id: id.0,
                    job: r.job.0,
                    rtype: r.rtype.clone(),
                    state: r.state.name(),
                    want: match r.state {
                        ResourceState::Creating { .. } | ResourceState::Ready => "keep",
                        ResourceState::Releasing { .. } => "release",
                        ResourceState::Held => "hold",
                    },
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
) -> Result<(StatusCode, Done), ApiError> {
    let well = well_of(caller)?;
    api.handle
        .send(Input::ConfirmDestroyed {
            well,
            resource: ResourceId(resource),
        })
        .await?;
    Ok((StatusCode::OK, Done {}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestroyFailed {
    #[serde(default)]
    pub reason: String,
}

pub async fn destroy_failed(
    api: &Api,
    caller: &Caller,
    resource: u32,
    body: &[u8],
) -> Result<(StatusCode, Done), ApiError> {
    let well = well_of(caller)?;
    let f: DestroyFailed = super::parse_json(body)?;
    tracing::warn!(%well, resource, reason = %bounded(&f.reason), "a well could not destroy a resource");
    api.handle
        .send(Input::ReportDestroyFailed {
            well,
            resource: ResourceId(resource),
        })
        .await?;
    Ok((StatusCode::OK, Done {}))
}
