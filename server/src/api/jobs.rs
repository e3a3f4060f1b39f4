//! The job API: submit, list, show, cancel, watch and explain.

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use crate::driver::DriverError;
use crate::readmodel::{JobRecord, Payload};
use aquifer_core::{Answer, Input, JobId, JobSpec, Outcome, Rejection, Request, TargetId, TypeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use warp::http::StatusCode;

/// Limits on what one submission may carry.
pub const TASKS_MAX: usize = 64;
pub const SCRIPT_BYTES_MAX: usize = 256 * 1024;
pub const ENV_BYTES_MAX: usize = 64 * 1024;
pub const RESOURCES_MAX: usize = 32;

pub use aquifer_protocol::jobs::{JobFile, ResourceRequest, Task};

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks what the core does not see (names, tasks, sizes) and builds the
/// core's part of the submission.
fn validate(file: &JobFile) -> Result<Vec<Request>, ApiError> {
    let bad = ApiError::bad_request;
    if !valid_name(&file.name) {
        return Err(bad(
            "bad_name",
            format!(
                "bad job name {:?}: use 1 to 63 letters, digits, '-', '_' or '.'",
                file.name
            ),
        ));
    }
    if file.tasks.is_empty() || file.tasks.len() > TASKS_MAX {
        return Err(bad(
            "limit_exceeded",
            format!("a job has 1 to {TASKS_MAX} tasks"),
        ));
    }
    if file.resources.len() > RESOURCES_MAX {
        return Err(bad(
            "limit_exceeded",
            format!("a job asks for at most {RESOURCES_MAX} resources"),
        ));
    }
    let mut names = BTreeSet::new();
    for r in &file.resources {
        if !valid_name(&r.name) {
            return Err(bad("bad_name", format!("bad resource name {:?}", r.name)));
        }
        if !names.insert(r.name.as_str()) {
            return Err(bad(
                "duplicate_name",
                format!("two resources are named {:?}", r.name),
            ));
        }
    }
    let mut task_names = BTreeSet::new();
    for t in &file.tasks {
        if !valid_name(&t.name) || !task_names.insert(t.name.as_str()) {
            return Err(bad(
                "bad_name",
                format!("task names must be valid and distinct: {:?}", t.name),
            ));
        }
        if t.script.len() > SCRIPT_BYTES_MAX {
            return Err(bad(
                "limit_exceeded",
                format!(
                    "task {:?}: scripts are at most {SCRIPT_BYTES_MAX} bytes",
                    t.name
                ),
            ));
        }
        let env: usize = t.env.iter().map(|(k, v)| k.len() + v.len()).sum();
        if env > ENV_BYTES_MAX {
            return Err(bad(
                "limit_exceeded",
                format!("task {:?}: env is at most {ENV_BYTES_MAX} bytes", t.name),
            ));
        }
    }
    Ok(file
        .resources
        .iter()
        .map(|r| Request {
            rtype: TypeId::new(r.rtype.clone()),
            count: r.count,
        })
        .collect())
}

#[derive(Serialize)]
pub struct Submitted {
    pub id: u32,
}

pub async fn submit(
    api: &Api,
    caller: Caller,
    body: bytes::Bytes,
) -> Result<(StatusCode, Submitted), ApiError> {
    let owner = match caller.principal {
        Principal::User(id) => id,
        Principal::Admin => 0,
        _ => return Err(ApiError::forbidden("only users and admins submit jobs")),
    };
    let file: JobFile = super::parse_json(&body)?;
    let requests = validate(&file)?;
    let timeout_ms = file
        .timeout_s
        .checked_mul(1000)
        .ok_or_else(|| ApiError::bad_request("limit_exceeded", "timeout_s is too large"))?;
    let spec = JobSpec {
        target: TargetId::new(file.target.clone()),
        requests,
        timeout_ms,
        depends_on: file.depends_on.iter().map(|&j| JobId(j)).collect(),
        retired_outcomes: dependency_outcomes(api, &caller, &file.depends_on).await?,
        privileges: caller.privileges.clone(),
    };
    let record = JobRecord {
        owner,
        name: file.name.clone(),
        spec: serde_json::to_value(&file)
            .map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?,
    };
    let t = match (api.handle)
        .send_with(
            Input::SubmitJob(spec.clone()),
            Some(Payload::Job(record.clone())),
        )
        .await
    {
        // A dependency ended and retired between the read of the outcomes
        // above and the step; its outcome is committed now, so one more
        // read settles it.
        Err(DriverError::Rejected(Rejection::DependencyRetired { .. })) => {
            let spec = JobSpec {
                retired_outcomes: dependency_outcomes(api, &caller, &file.depends_on).await?,
                ..spec
            };
            (api.handle)
                .send_with(Input::SubmitJob(spec), Some(Payload::Job(record)))
                .await?
        }
        other => other?,
    };
    let Answer::Submitted { job } = t.answer else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the submission decided nothing",
        ));
    };
    let id = job.0;
    Ok((StatusCode::CREATED, Submitted { id }))
}

/// The outcomes of the dependencies that have ended, from the read model:
/// the core forgets a job once it retires, and needs the outcome of a
/// retired dependency from here. A job the caller may not see is refused
/// as unknown, so ids leak nothing.
async fn dependency_outcomes(
    api: &Api,
    caller: &Caller,
    depends_on: &[u32],
) -> Result<BTreeMap<JobId, Outcome>, ApiError> {
    let mut ended = BTreeMap::new();
    for &dep in depends_on {
        let job = visible(api, caller, dep).await.map_err(|_| {
            ApiError::bad_request(
                "unknown_dependency",
                format!("depends_on names job {dep}, but there is no such job of yours"),
            )
        })?;
        if let Some(outcome) = job.outcome.and_then(|o| serde_json::from_value(o).ok()) {
            ended.insert(JobId(dep), outcome);
        }
    }
    Ok(ended)
}

#[derive(Serialize)]
pub struct JobView {
    pub id: u32,
    pub name: String,
    pub owner: u64,
    pub state: String,
    pub outcome: Option<serde_json::Value>,
    /// Why it failed, in words, when a well or its tasks said.
    pub reason: Option<String>,
}

/// A job the caller may see: their own, or any for an admin. Another
/// user's job is "not found", not "forbidden", so ids leak nothing.
async fn visible(api: &Api, caller: &Caller, id: u32) -> Result<JobView, ApiError> {
    let row = api
        .store
        .job_row(JobId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    let mine = match caller.principal {
        Principal::User(user) => row.owner == user || caller.may(super::privilege::JOBS),
        Principal::Admin => true,
        Principal::Well(_)
        | Principal::Factory(_)
        | Principal::Worker(_)
        | Principal::Job(_)
        | Principal::Bootstrap(_) => false,
    };
    if !mine {
        return Err(ApiError::not_found(format!("job {id}")));
    }
    Ok(JobView {
        id,
        name: row.name,
        owner: row.owner,
        state: row.state,
        outcome: row.outcome.and_then(|o| serde_json::from_str(&o).ok()),
        reason: row.reason,
    })
}

pub async fn show(api: &Api, caller: Caller, id: u32) -> Result<(StatusCode, JobView), ApiError> {
    Ok((StatusCode::OK, visible(api, &caller, id).await?))
}

pub async fn cancel(api: &Api, caller: Caller, id: u32) -> Result<(StatusCode, JobView), ApiError> {
    let job = visible(api, &caller, id).await?;
    // The core forgets a job once it retires; the read model remembers
    // that it ended.
    if job.state == "ended" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_ended",
            format!(
                "job {id} has already ended ({})",
                job.outcome.unwrap_or_default()
            ),
        ));
    }
    api.handle.send(Input::CancelJob { job: JobId(id) }).await?;
    Ok((StatusCode::OK, visible(api, &caller, id).await?))
}

/// The largest page of a listing or a watch.
pub const PAGE_MAX: u32 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `waiting`, `acquiring`, `running` or `ended`.
    pub state: Option<String>,
    /// A user's name or id; another user's jobs need `admin.jobs`.
    pub owner: Option<String>,
    /// Only jobs older than this id (the next page).
    pub before: Option<u32>,
    pub limit: Option<u32>,
}

pub async fn list(
    api: &Api,
    caller: &Caller,
    q: ListQuery,
) -> Result<(StatusCode, Vec<crate::store::ListedJob>), ApiError> {
    if let Some(state) = &q.state
        && !["waiting", "acquiring", "running", "ended"].contains(&state.as_str())
    {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("state {state:?} is none of waiting, acquiring, running, ended"),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit is 1 to {PAGE_MAX}"),
        ));
    }
    let owner = match &q.owner {
        None => None,
        Some(o) => Some(owner_id(api, o).await?),
    };
    // Without `admin.jobs`, a user sees their own jobs whatever they ask.
    let owner = match caller.principal {
        Principal::User(me) if !caller.may(super::privilege::JOBS) => {
            if owner.is_some_and(|o| o != me) {
                return Ok((StatusCode::OK, Vec::new()));
            }
            Some(me)
        }
        Principal::User(_) | Principal::Admin => owner,
        Principal::Well(_)
        | Principal::Factory(_)
        | Principal::Worker(_)
        | Principal::Job(_)
        | Principal::Bootstrap(_) => {
            return Err(ApiError::forbidden("only users and admins list jobs"));
        }
    };
    let jobs = (api.store)
        .list_jobs(owner, q.state.as_deref(), q.before, limit)
        .await?;
    Ok((StatusCode::OK, jobs))
}

/// A user named by id or name; the bootstrap admin's jobs are owner 0.
async fn owner_id(api: &Api, owner: &str) -> Result<u64, ApiError> {
    if let Ok(id) = owner.parse::<u64>() {
        return Ok(id);
    }
    if owner == "admin" {
        return Ok(0);
    }
    (api.store.list_users().await?)
        .into_iter()
        .find(|(_, name, _)| name == owner)
        .map(|(id, _, _)| id)
        .ok_or_else(|| ApiError::bad_request("bad_query", format!("no user is named {owner:?}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    /// The last entry already seen; 0 for the whole stream.
    #[serde(default)]
    pub after: u64,
    /// How long to wait for a new entry when there is none yet.
    #[serde(default)]
    pub wait_ms: u64,
    pub limit: Option<u32>,
}

#[derive(Serialize)]
pub struct Watched {
    pub events: Vec<crate::store::JobEventRow>,
    /// Pass as `after` to continue.
    pub next: u64,
    /// The job has ended; nothing but its clean-up follows.
    pub ended: bool,
}

/// A job's stream after `after`: at once if there is something, else
/// after waiting (up to `wait_ms`) for news of the job: the driver's
/// `NotifyJob` effect, or task output recorded for it.
pub async fn watch(
    api: &Api,
    caller: &Caller,
    id: u32,
    q: WatchQuery,
) -> Result<(StatusCode, Watched), ApiError> {
    let limit = q.limit.unwrap_or(PAGE_MAX).clamp(1, PAGE_MAX);
    let keys = vec![crate::wake::Key::Job(JobId(id))];
    let page = || async {
        let job = visible(api, caller, id).await?;
        let events = api.store.job_events(JobId(id), q.after, limit).await?;
        // Ended, and this page reaches the end of what it wrote: a reader
        // that stops on `ended` misses nothing.
        let ended = job.state == "ended" && events.len() < limit as usize;
        let next = events.last().map_or(q.after, |e| e.n);
        Ok::<_, ApiError>(Watched {
            events,
            next,
            ended,
        })
    };
    let found = super::long_poll(api, keys, q.wait_ms, || async {
        let w = page().await?;
        Ok((!w.events.is_empty() || w.ended).then_some(w))
    })
    .await?;
    let answer = match found {
        Some(w) => w,
        // Time is up: answer what there is (nothing new).
        None => page().await?,
    };
    Ok((StatusCode::OK, answer))
}

#[derive(Serialize)]
pub struct Explained {
    pub id: u32,
    pub name: String,
    pub state: String,
    pub outcome: Option<serde_json::Value>,
    /// The core's view, while it still has the job (until it retires).
    pub explanation: Option<aquifer_core::explain::Explanation>,
}

pub async fn explain(
    api: &Api,
    caller: &Caller,
    id: u32,
) -> Result<(StatusCode, Explained), ApiError> {
    let job = visible(api, caller, id).await?;
    let explanation = api
        .handle
        .read(move |s| aquifer_core::explain::explain(s, JobId(id)))
        .await?;
    Ok((
        StatusCode::OK,
        Explained {
            id,
            name: job.name,
            state: job.state,
            outcome: job.outcome,
            explanation,
        },
    ))
}
