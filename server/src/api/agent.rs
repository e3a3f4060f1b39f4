//! The agent protocol (`docs/protocol.md`): bootstrap with a one-time key,
//! start the bound job (and get its `bmat` token), stream output, wait for
//! the job's end (cancellation, timeout), report completion. And the job
//! side, for `bmat`: the running job's resources by name.

use super::error::ApiError;
use super::well::{Done, bounded};
use super::{Api, Caller};
use crate::auth::{AuthError, Principal};
use crate::driver::DriverError;
use crate::readmodel::{Payload, Write};
use crate::wake::Key;
use aquifer_core::job::Phase;
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::{Input, JobId, Rejection, State, TypeId, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use warp::http::StatusCode;

/// The most output one call may carry, and one job may write in all (per
/// server process); past that, output is dropped with one note saying so.
pub const OUTPUT_CALL_BYTES_MAX: usize = 64 * 1024;
pub const OUTPUT_JOB_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// How many jobs' output counts are kept before those of ended jobs go.
const OUTPUT_COUNTS_PRUNE_AT: usize = 4096;

fn worker_of(caller: &Caller) -> Result<WorkerId, ApiError> {
    match caller.principal {
        Principal::Worker(id) => u32::try_from(id)
            .map(WorkerId)
            .map_err(|_| ApiError::forbidden("not a worker's token")),
        _ => Err(ApiError::forbidden("this needs a worker's token")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    pub key: String,
}

#[derive(Serialize)]
pub struct Bootstrapped {
    pub worker: u32,
    pub token: String,
}

/// Trades the one-time key for the worker's token. The key is revoked
/// first, so of two uses exactly one wins.
pub async fn bootstrap(api: &Api, body: &[u8]) -> Result<(StatusCode, Bootstrapped), ApiError> {
    let req: BootstrapRequest = super::parse_json(body)?;
    let Principal::Bootstrap(worker) = api.store.authenticate(&req.key).await? else {
        return Err(AuthError::Invalid.into());
    };
    if api
        .store
        .revoke_tokens(Principal::Bootstrap(worker))
        .await?
        == 0
    {
        return Err(AuthError::Invalid.into());
    }
    let id = WorkerId(u32::try_from(worker).map_err(|_| AuthError::Invalid)?);
    api.handle
        .send(Input::ReportWorkerOnline { worker: id })
        .await?;
    let token = api
        .store
        .issue_token(Principal::Worker(worker), super::now())
        .await?;
    Ok((
        StatusCode::OK,
        Bootstrapped {
            worker: id.0,
            token,
        },
    ))
}

#[derive(Serialize)]
pub struct Started {
    pub job: u32,
    pub name: String,
    pub deadline_ms: u64,
    pub tasks: serde_json::Value,
    /// For `bmat`; it stops working when the job ends.
    pub token: String,
}

/// The worker's job, if this worker is still the one bound to it.
fn job_of(s: &State, worker: WorkerId) -> Option<(JobId, Phase, u64)> {
    let w = s.workers.get(&worker)?;
    let j = s.jobs.get(&w.job)?;
    Some((w.job, j.phase, j.deadline.ms()))
}

/// Starts the job bound to this worker. Asked again once it runs (the
/// first answer was lost), it answers again with a fresh job token.
pub async fn start(api: &Api, caller: &Caller) -> Result<(StatusCode, Started), ApiError> {
    let worker = worker_of(caller)?;
    match api.handle.send(Input::StartJob { worker }).await {
        Ok(_) | Err(DriverError::Rejected(Rejection::Duplicate { .. })) => {}
        Err(e) => return Err(e.into()),
    }
    let (job, phase, deadline_ms) = api
        .handle
        .read(move |s| job_of(s, worker))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job for {worker}")))?;
    if phase != Phase::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_not_running",
            format!("{job} is not running"),
        ));
    }
    let row = api
        .store
        .job_row(job)
        .await?
        .ok_or_else(|| ApiError::not_found(job))?;
    let spec: serde_json::Value = serde_json::from_str(&row.spec).unwrap_or_default();
    let token = api
        .store
        .issue_token(Principal::Job(u64::from(job.0)), super::now())
        .await?;
    Ok((
        StatusCode::OK,
        Started {
            job: job.0,
            name: row.name,
            deadline_ms,
            tasks: spec["tasks"].clone(),
            token,
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub task: String,
    pub stream: Stream,
    pub text: String,
}

#[derive(Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A chunk of a task's output becomes an entry of the job's stream.
pub async fn output(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Done), ApiError> {
    let worker = worker_of(caller)?;
    let o: Output = super::parse_json(body)?;
    if o.text.len() > OUTPUT_CALL_BYTES_MAX {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("send at most {OUTPUT_CALL_BYTES_MAX} bytes of output a call"),
        ));
    }
    let Some((job, Phase::Running, _)) = api.handle.read(move |s| job_of(s, worker)).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_not_running",
            "the job of this worker is not running",
        ));
    };
    let lock = || {
        api.output_bytes
            .lock()
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "lock"))
    };
    // The counts of jobs that have ended are dropped now and then, so the
    // map holds about as many entries as jobs run at once.
    if lock()?.len() >= OUTPUT_COUNTS_PRUNE_AT {
        let running: std::collections::BTreeSet<u32> = api
            .handle
            .read(|s| {
                (s.jobs.iter())
                    .filter(|(_, j)| j.phase == Phase::Running)
                    .map(|(id, _)| id.0)
                    .collect()
            })
            .await?;
        lock()?.retain(|job, _| running.contains(job));
    }
    let (before, after) = {
        let mut taken = lock()?;
        let n = taken.entry(job.0).or_insert(0);
        let before = *n;
        *n = n.saturating_add(o.text.len() as u64);
        (before, *n)
    };
    let body = if after <= OUTPUT_JOB_BYTES_MAX {
        serde_json::json!({"event": "output", "task": o.task, "stream": o.stream, "text": o.text})
    } else if before <= OUTPUT_JOB_BYTES_MAX {
        serde_json::json!({
            "event": "output_dropped",
            "task": o.task,
            "reason": format!("the job wrote more than {OUTPUT_JOB_BYTES_MAX} bytes; the rest is dropped"),
        })
    } else {
        return Ok((StatusCode::OK, Done {}));
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
    Ok((StatusCode::OK, Done {}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlQuery {
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Control {
    /// The job has ended (cancelled, timed out) or this worker is no
    /// longer wanted: stop everything.
    pub ended: bool,
    pub outcome: Option<serde_json::Value>,
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
    let answer = super::long_poll(api, keys, q.wait_ms, || async move {
        let over = api
            .handle
            .read(move |s| {
                let w = s.workers.get(&worker);
                let phase = w.and_then(|w| s.jobs.get(&w.job)).map(|j| j.phase);
                match (w.map(|w| w.state), phase) {
                    (Some(WorkerState::Releasing) | None, phase)
                    | (_, phase @ Some(Phase::Ended(_))) => Some(match phase {
                        Some(Phase::Ended(outcome)) => serde_json::to_value(outcome).ok(),
                        _ => None,
                    }),
                    _ => None,
                }
            })
            .await?;
        Ok(over.map(|outcome| Control {
            ended: true,
            outcome,
        }))
    })
    .await?;
    Ok((StatusCode::OK, answer.unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    pub succeeded: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

pub async fn finish(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Done), ApiError> {
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
    Ok((StatusCode::OK, Done {}))
}

#[derive(Serialize)]
pub struct JobResource {
    pub name: String,
    pub rtype: TypeId,
    pub resource: u32,
    pub metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
pub struct JobResources {
    pub resources: Vec<JobResource>,
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
    let held = api
        .handle
        .read(move |s| {
            let running = s.jobs.get(&job).is_some_and(|j| j.phase == Phase::Running);
            let mut by_type: BTreeMap<TypeId, Vec<u32>> = BTreeMap::new();
            for (id, r) in &s.resources {
                if r.job == job && r.state == ResourceState::Ready {
                    by_type.entry(r.rtype.clone()).or_default().push(id.0);
                }
            }
            running.then_some(by_type)
        })
        .await?;
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
            let d = data.get(&resource);
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
    let name = percent_decode(name);
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

/// Decodes `%XX` escapes (resource names may hold `/`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_with_escapes_decode() {
        assert_eq!(super::percent_decode("db%2F0"), "db/0");
        assert_eq!(super::percent_decode("plain"), "plain");
        assert_eq!(super::percent_decode("bad%zz"), "bad%zz");
    }
}
