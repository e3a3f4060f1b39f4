//! The agent protocol (`docs/protocol.md`): bootstrap with a one-time key,
//! start the bound job (and get its `bmat` token), stream output, wait for
//! the job's end (cancellation, timeout), report completion. And the job
//! side, for `bmat`: the running job's resources by name.

use super::error::ApiError;
use super::well::bounded;
use super::{Api, Caller};
use crate::auth::{AuthError, Principal};
use crate::driver::DriverError;
use crate::readmodel::{Payload, Write};
use crate::wake::Key;

use aquifer_core::{Answer, Input, JobId, Rejection, TypeId, WorkerId};
use aquifer_protocol::Empty;
use aquifer_protocol::agent::{
    BootstrapRequest, Bootstrapped, Control, ControlQuery, Finish, JobResource, JobResources,
    Output, Started,
};
use aquifer_protocol::jobs::{StoreKeys, StoreValue};
use aquifer_protocol::path::decode_segment;
use std::collections::BTreeMap;
use warp::http::StatusCode;

/// The most output one call may carry, and one job may write in all (per
/// server process); past that, output is dropped with one note saying so.
pub const OUTPUT_CALL_BYTES_MAX: usize = 64 * 1024;
pub const OUTPUT_JOB_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// How many jobs' output counts are kept before those of ended jobs go.
const OUTPUT_COUNTS_PRUNE_AT: usize = 4096;

pub(super) fn worker_of(caller: &Caller) -> Result<WorkerId, ApiError> {
    match caller.principal {
        Principal::Worker(id) => u32::try_from(id)
            .map(WorkerId)
            .map_err(|_| ApiError::forbidden("not a worker's token")),
        _ => Err(ApiError::forbidden("this needs a worker's token")),
    }
}

/// What the bootstrap's `Authorization` header presents.
#[derive(Clone, Debug)]
pub enum BootCredential {
    /// An unused one-time key of this worker.
    Key(u64),
    /// This worker's token, which the agent proposed in an earlier try
    /// whose answer it never got: the same answer again.
    Token(u64, String),
}

/// Reads the bootstrap's credential, before any of the body.
pub async fn boot_credential(api: &Api, presented: &str) -> Result<BootCredential, ApiError> {
    match api.store.authenticate(presented).await? {
        Principal::Bootstrap(worker) => Ok(BootCredential::Key(worker)),
        Principal::Worker(worker) => Ok(BootCredential::Token(worker, presented.to_string())),
        _ => Err(AuthError::Invalid.into()),
    }
}

/// Trades the one-time key for the worker's token. Safe to retry: the key
/// is spent only after the driver has recorded the check-in, so a check-in
/// answered 503 (nothing recorded) can be sent again with the same key. Of
/// two uses of one key exactly one wins: the one that revokes it.
///
/// The key comes in the `Authorization` header, and `credential` is what
/// [`boot_credential`] made of it before the body was read; or, from
/// agents that predate that, in the body. An agent that proposes its
/// worker token in the body and loses the answer asks again with that
/// token in the header, and gets the same answer.
pub async fn bootstrap(
    api: &Api,
    credential: Option<BootCredential>,
    body: &[u8],
) -> Result<(StatusCode, Bootstrapped), ApiError> {
    let req: BootstrapRequest = if body.is_empty() {
        BootstrapRequest::default()
    } else {
        super::parse_json(body)?
    };
    let credential = match credential {
        Some(c) => c,
        None => boot_credential(api, req.key.as_deref().ok_or(AuthError::Missing)?).await?,
    };
    let worker = match credential {
        BootCredential::Key(worker) => worker,
        BootCredential::Token(worker, token) => {
            let worker = WorkerId(u32::try_from(worker).map_err(|_| AuthError::Invalid)?);
            return Ok((StatusCode::OK, Bootstrapped { worker, token }));
        }
    };
    let id = WorkerId(u32::try_from(worker).map_err(|_| AuthError::Invalid)?);
    match api
        .handle
        .send(Input::ReportWorkerOnline { worker: id })
        .await
    {
        // Already online, with the key still good: an earlier use of this
        // very key was recorded but its answer never came back (the token
        // was not issued, or was lost). The revocation below decides.
        Ok(_) | Err(DriverError::Rejected(Rejection::Duplicate { .. })) => {}
        Err(e) => return Err(e.into()),
    }
    let token = (api.store)
        .exchange_key(worker, req.token.as_deref(), super::now())
        .await?
        .ok_or(AuthError::Invalid)?;
    Ok((StatusCode::OK, Bootstrapped { worker: id, token }))
}

pub(super) fn not_running() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "job_not_running",
        "the job of this worker is not running",
    )
}

/// Starts the job bound to this worker. Asked again once it runs (the
/// first answer was lost), it answers again with a fresh job token.
pub async fn start(api: &Api, caller: &Caller) -> Result<(StatusCode, Started), ApiError> {
    let worker = worker_of(caller)?;
    let (job, deadline) = match api.handle.send(Input::StartJob { worker }).await {
        Ok(t) => match t.answer {
            Answer::Started { job, deadline } => (job, deadline),
            _ => return Err(not_running()),
        },
        Err(DriverError::Rejected(Rejection::Duplicate { .. })) => {
            let running = (api.handle)
                .read(move |s| s.running_job_of(worker))
                .await?
                .ok_or_else(not_running)?;
            // An agent that starts again (it restarted and lost its
            // token) gets a new token, and the ones issued before die: a
            // job has one live token, however often its agent asks.
            let job = Principal::Job(u64::from(running.0.0));
            api.store.revoke_tokens(job).await?;
            running
        }
        Err(e) => return Err(e.into()),
    };
    let row = api
        .store
        .job_row(job)
        .await?
        .ok_or_else(|| ApiError::not_found(job))?;
    let file: super::jobs::JobFile = serde_json::from_str(&row.spec)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let token = api
        .store
        .issue_token(Principal::Job(u64::from(job.0)), super::now())
        .await?;
    Ok((
        StatusCode::OK,
        Started {
            job,
            name: row.name,
            deadline_ms: deadline.ms(),
            tasks: file.tasks,
            token,
            output_rules: file.output_rules,
        },
    ))
}

/// A chunk of a task's output becomes an entry of the job's stream.
pub async fn output(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let worker = worker_of(caller)?;
    let o: Output = super::parse_json(body)?;
    if !super::jobs::valid_name(&o.task) {
        return Err(ApiError::bad_request(
            "bad_name",
            "task: use 1 to 63 letters, digits, '-', '_' or '.'",
        ));
    }
    if o.text.len() > OUTPUT_CALL_BYTES_MAX {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("send at most {OUTPUT_CALL_BYTES_MAX} bytes of output a call"),
        ));
    }
    // Everything the entry stores counts toward the job's cap: its whole
    // text as the store keeps it, as the store counts it after a restart.
    let entry =
        serde_json::json!({"event": "output", "task": o.task, "stream": o.stream, "text": o.text});
    let stored = entry.to_string().len() as u64;
    let (job, _) = (api.handle)
        .read(move |s| s.running_job_of(worker))
        .await?
        .ok_or_else(not_running)?;
    let lock = || {
        api.output_bytes
            .lock()
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "lock"))
    };
    // The counts of jobs that have ended are dropped now and then, so the
    // map holds about as many entries as jobs run at once.
    if lock()?.len() >= OUTPUT_COUNTS_PRUNE_AT {
        let running = api.handle.read(|s| s.running_jobs()).await?;
        lock()?.retain(|job, _| running.contains(&JobId(*job)));
    }
    // A job's first output since this process started counts what the
    // store already holds of it: a restart gives no job a fresh cap.
    if !lock()?.contains_key(&job.0) {
        let already = api.store.output_bytes(job).await?;
        lock()?.entry(job.0).or_insert(already);
    }
    let cap = api.http.output_bytes_per_job_max;
    let (before, after) = {
        let mut taken = lock()?;
        let n = taken.entry(job.0).or_insert(0);
        let before = *n;
        *n = n.saturating_add(stored);
        (before, *n)
    };
    let body = if after <= cap {
        entry
    } else if before <= cap {
        serde_json::json!({
            "event": "output_dropped",
            "task": o.task,
            "reason": format!("the job wrote more than {cap} bytes; the rest is dropped"),
        })
    } else {
        return Ok((StatusCode::OK, Empty {}));
    };
    api.handle
        .record(vec![Write::JobEvent {
            job,
            at_ms: super::now().ms(),
            body,
        }])
        .await?;
    // Output decides nothing, so no effect announces it: wake the job's
    // watchers here, now that it is committed.
    api.wakers.registry.wake(&Key::Job(job));
    Ok((StatusCode::OK, Empty {}))
}

/// Waits until the worker's job ends or the worker is released.
pub async fn control(
    api: &Api,
    caller: &Caller,
    q: ControlQuery,
) -> Result<(StatusCode, Control), ApiError> {
    let worker = worker_of(caller)?;
    let job = api
        .handle
        .read(move |s| s.workers.get(&worker).map(|w| w.job))
        .await?;
    let keys = job.map(Key::Job).into_iter().collect();
    let answer = super::long_poll(api, caller.principal, keys, q.wait_ms, || async move {
        let stop = api.handle.read(move |s| s.agent_must_stop(worker)).await?;
        Ok(stop.map(|stop| Control {
            ended: true,
            outcome: stop.outcome(),
        }))
    })
    .await?;
    Ok((StatusCode::OK, answer.unwrap_or_default()))
}

pub async fn finish(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let worker = worker_of(caller)?;
    let f: Finish = super::parse_json(body)?;
    let payload = f.reason.as_deref().map(|r| Payload::Reason(bounded(r)));
    api.handle
        .send_with(
            Input::FinishJob {
                worker,
                succeeded: f.succeeded,
            },
            payload,
        )
        .await?;
    Ok((StatusCode::OK, Empty {}))
}

/// The running job's resources, named as its job file names them: a
/// request's instances in resource-id order; `NAME` for one, `NAME/0`,
/// `NAME/1`, ... for several.
async fn named(api: &Api, caller: &Caller) -> Result<Vec<JobResource>, ApiError> {
    let job = match caller.principal {
        Principal::Job(id) => JobId(u32::try_from(id).map_err(|_| AuthError::Invalid)?),
        _ => {
            return Err(ApiError::forbidden(
                "this needs a job's token (bmat, in a job)",
            ));
        }
    };
    let held = api.handle.read(move |s| s.readable_resources(job)).await?;
    // The token is revoked when the job ends; this covers the instant
    // between the end and the revocation's commit.
    let mut by_type = held.ok_or(AuthError::Invalid)?;
    let row = api
        .store
        .job_row(job)
        .await?
        .ok_or_else(|| ApiError::not_found(job))?;
    let file: super::jobs::JobFile = serde_json::from_str(&row.spec)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let data = api.store.resource_data(job).await?;
    let mut out = Vec::new();
    for request in &file.resources {
        let rtype = TypeId::new(request.rtype.clone());
        let ids = by_type.entry(rtype.clone()).or_default();
        for i in 0..request.count {
            if ids.is_empty() {
                break;
            }
            let resource = ids.remove(0);
            let name = if request.count == 1 {
                request.name.clone()
            } else {
                format!("{}/{i}", request.name)
            };
            let d = data.get(&resource.0);
            out.push(JobResource {
                name,
                rtype: rtype.clone(),
                resource,
                metadata: d.map(|d| d.metadata.clone()).unwrap_or_default(),
                secrets: d.and_then(|d| d.secrets.clone()),
            });
        }
    }
    Ok(out)
}

pub async fn job_resources(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, JobResources), ApiError> {
    let mut resources = named(api, caller).await?;
    for r in &mut resources {
        r.secrets = None;
    }
    Ok((StatusCode::OK, JobResources { resources }))
}

pub async fn job_resource(
    api: &Api,
    caller: &Caller,
    name: &str,
) -> Result<(StatusCode, JobResource), ApiError> {
    let name = decode_segment(name);
    let mut resources = named(api, caller).await?;
    let known: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
    let Some(i) = resources.iter().position(|r| r.name == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "this job has no resource named {name:?}; it has: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let mut r = resources.swap_remove(i);
    r.secrets.get_or_insert_with(BTreeMap::new);
    Ok((StatusCode::OK, r))
}

/// The running job a job token speaks for; refused once it has ended.
async fn running_job(api: &Api, caller: &Caller) -> Result<JobId, ApiError> {
    let job = match caller.principal {
        Principal::Job(id) => JobId(u32::try_from(id).map_err(|_| AuthError::Invalid)?),
        _ => {
            return Err(ApiError::forbidden(
                "this needs a job's token (bmat, in a job)",
            ));
        }
    };
    // The token is revoked when the job ends; this covers the instant
    // between the end and the revocation's commit.
    let running = api.handle.read(move |s| s.readable_resources(job)).await?;
    running.ok_or(AuthError::Invalid)?;
    Ok(job)
}

/// The running job's store: its keys, each with whether it is secret.
pub async fn job_store(api: &Api, caller: &Caller) -> Result<(StatusCode, StoreKeys), ApiError> {
    let job = running_job(api, caller).await?;
    let entries = api.store.job_store(job).await?;
    let keys = (entries.into_iter())
        .map(|(k, (_, secret))| (k, secret))
        .collect();
    Ok((StatusCode::OK, StoreKeys { keys }))
}

/// One value of the running job's store.
pub async fn job_store_get(
    api: &Api,
    caller: &Caller,
    key: &str,
) -> Result<(StatusCode, StoreValue), ApiError> {
    let job = running_job(api, caller).await?;
    let key = decode_segment(key);
    let mut entries = api.store.job_store(job).await?;
    match entries.remove(&key) {
        Some((Some(value), secret)) => Ok((StatusCode::OK, StoreValue { value, secret })),
        _ => {
            let known: Vec<String> = entries.into_keys().collect();
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "this job's store has no key {key:?}; it has: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ))
        }
    }
}

/// Sets one value of the running job's store, for its later tasks.
pub async fn job_store_put(
    api: &Api,
    caller: &Caller,
    key: &str,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let job = running_job(api, caller).await?;
    let key = decode_segment(key);
    let value: StoreValue = super::parse_json(body)?;
    super::jobs::valid_store_entry(&key, &value)?;
    let entries = api.store.job_store(job).await?;
    if !entries.contains_key(&key) && entries.len() >= super::jobs::STORE_KEYS_MAX {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!(
                "a job's store has at most {} keys",
                super::jobs::STORE_KEYS_MAX
            ),
        ));
    }
    api.handle
        .record(vec![Write::StorePut { job, key, value }])
        .await?;
    Ok((StatusCode::OK, Empty {}))
}
