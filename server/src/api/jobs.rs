//! The job API: submit, list, show, cancel, watch and explain.

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use crate::driver::DriverError;
use crate::readmodel::{JobRecord, Payload};
use aquifer_core::{Answer, Event, Input, JobId, JobSpec, Outcome, Rejection, Request, TypeId};
use aquifer_protocol::jobs::{
    Dependency, Entry, JobState, JobView, ListQuery, ListedJob, Names, PAGE_MAX, RunOn,
    StreamEvent, Submitted, WatchQuery, Watched,
};
use aquifer_protocol::outputs::input_name;
use aquifer_protocol::user::{ChainLink, Explained, Explanation, Queue, UserId};
use std::collections::{BTreeMap, BTreeSet};
use warp::http::StatusCode;

/// Limits on what one submission may carry.
pub const TASKS_MAX: usize = 64;
pub const SCRIPT_BYTES_MAX: usize = 256 * 1024;
pub const ENV_BYTES_MAX: usize = 64 * 1024;
pub const RESOURCES_MAX: usize = 32;
pub const TAGS_MAX: usize = 32;
pub const OUTPUT_RULES_MAX: usize = 64;
/// Keys of a job's store, and the size of one value.
pub const STORE_KEYS_MAX: usize = 100;
pub const STORE_VALUE_BYTES_MAX: usize = 64 * 1024;
pub const TAG_VALUE_BYTES_MAX: usize = 256;

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
    if file.output_rules.len() > OUTPUT_RULES_MAX {
        return Err(bad(
            "limit_exceeded",
            format!("a job has at most {OUTPUT_RULES_MAX} output rules"),
        ));
    }
    for rule in &file.output_rules {
        rule.parse::<aquifer_protocol::outputs::OutputRule>()
            .map_err(|why| bad("bad_output_rule", why))?;
    }
    if file.store.len() > STORE_KEYS_MAX {
        return Err(bad(
            "limit_exceeded",
            format!("a job's store has at most {STORE_KEYS_MAX} keys"),
        ));
    }
    for (key, setting) in &file.store {
        valid_store_entry(key, &setting.value())?;
    }
    if file.tags.len() > TAGS_MAX {
        return Err(bad(
            "limit_exceeded",
            format!("a job has at most {TAGS_MAX} tags"),
        ));
    }
    for (key, value) in &file.tags {
        if !valid_name(key) {
            return Err(bad(
                "bad_tag",
                format!("bad tag {key:?}: use 1 to 63 letters, digits, '-', '_' or '.'"),
            ));
        }
        if value.len() > TAG_VALUE_BYTES_MAX || value.chars().any(char::is_control) {
            return Err(bad(
                "bad_tag",
                format!(
                    "tag {key:?}: a value is at most {TAG_VALUE_BYTES_MAX} bytes, without control characters"
                ),
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
    // Each dependency costs a lookup: refuse a list longer than the core
    // takes before making any.
    let depends_max = usize::from(api.limits.depends_per_job_max);
    if file.depends_on.len() > depends_max {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("depends_on names at most {depends_max} jobs"),
        ));
    }
    let dependencies: Vec<JobId> = file.depends_on.iter().map(Dependency::job).collect();
    check_files(api, &file)?;
    let timeout_ms = file
        .timeout_s
        .checked_mul(1000)
        .ok_or_else(|| ApiError::bad_request("limit_exceeded", "timeout_s is too large"))?;
    // A dependency may end and retire between the read of the outcomes and
    // the step (`dependency_retired`); its outcome is committed by then, so
    // one more read settles it. The job's record is built per try, not
    // copied, since it carries the whole job file.
    let mut retried = false;
    let t = loop {
        let spec = JobSpec {
            target: file.target.clone(),
            requests: requests.clone(),
            timeout_ms,
            depends_on: dependencies.iter().copied().collect(),
            run_on: (file.depends_on.iter())
                .filter(|d| d.on() != RunOn::Success)
                .map(|d| (d.job(), d.on()))
                .collect(),
            awaits_inputs: !file.inputs.is_empty(),
            retired_outcomes: dependency_outcomes(api, &caller, &dependencies).await?,
            privileges: caller.privileges.clone(),
            owner,
        };
        // The store is kept apart from the job file, which is kept for
        // good: its secret values must go when the job ends.
        let mut kept = file.clone();
        let store = std::mem::take(&mut kept.store);
        let record = JobRecord {
            owner,
            name: file.name.clone(),
            spec: serde_json::to_value(&kept)
                .map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?,
            store: (store.iter())
                .map(|(k, v)| (k.clone(), v.value()))
                .collect(),
        };
        match (api.handle)
            .send_with(Input::SubmitJob(spec), Some(Payload::Job(record)))
            .await
        {
            Err(DriverError::Rejected(Rejection::DependencyRetired { .. })) if !retried => {
                retried = true;
            }
            other => break other?,
        }
    };
    let Answer::Submitted { job } = t.answer else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the submission decided nothing",
        ));
    };
    Ok((StatusCode::CREATED, Submitted { id: job }))
}

/// The job file's inputs and copied dependencies: names that make one
/// path component each and do not clash, a dependency named once, and a
/// server that keeps files at all.
fn check_files(api: &Api, file: &JobFile) -> Result<(), ApiError> {
    let inputs_max = api.http.input_files_per_job_max as usize;
    if file.inputs.len() > inputs_max {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("inputs names at most {inputs_max} files"),
        ));
    }
    let mut jobs = BTreeSet::new();
    for dep in &file.depends_on {
        if !jobs.insert(dep.job()) {
            return Err(ApiError::bad_request(
                "bad_dependency",
                format!("depends_on names job {} twice", dep.job().0),
            ));
        }
    }
    let copied: Vec<String> = file
        .depends_on
        .iter()
        .filter_map(Dependency::copied_to)
        .collect();
    let mut names = BTreeSet::new();
    for name in file.inputs.iter().chain(&copied) {
        input_name(name).map_err(|why| ApiError::bad_request("bad_input", why))?;
        if !names.insert(name.as_str()) {
            return Err(ApiError::bad_request(
                "bad_input",
                format!("{name:?} names two inputs (or an input and a copied dependency)"),
            ));
        }
    }
    if !names.is_empty() && api.objects.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no_object_store",
            "this server keeps no files (inputs, copied outputs): its operator sets objects_dir",
        ));
    }
    Ok(())
}

/// The outcomes of the dependencies that have ended, from the read model:
/// the core forgets a job once it retires, and needs the outcome of a
/// retired dependency from here. A job the caller may not see is refused
/// as unknown, so ids leak nothing.
async fn dependency_outcomes(
    api: &Api,
    caller: &Caller,
    depends_on: &[JobId],
) -> Result<BTreeMap<JobId, Outcome>, ApiError> {
    let mut ended = BTreeMap::new();
    for &dep in depends_on {
        let job = visible(api, caller, dep).await.map_err(|_| {
            ApiError::bad_request(
                "unknown_dependency",
                format!(
                    "depends_on names job {}, but there is no such job of yours",
                    dep.0
                ),
            )
        })?;
        if let Some(outcome) = job.outcome {
            ended.insert(dep, outcome);
        }
    }
    Ok(ended)
}

/// A state as the store names it (the read model's `JobState`).
fn job_state(name: &str) -> JobState {
    name.parse().unwrap_or(JobState::Other)
}

/// A key and value of a job's store, or why not.
pub(crate) fn valid_store_entry(
    key: &str,
    value: &aquifer_protocol::jobs::StoreValue,
) -> Result<(), ApiError> {
    if !valid_name(key) {
        return Err(ApiError::bad_request(
            "bad_name",
            format!("bad store key {key:?}: use 1 to 63 letters, digits, '-', '_' or '.'"),
        ));
    }
    if value.value.len() > STORE_VALUE_BYTES_MAX {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("store key {key:?}: a value is at most {STORE_VALUE_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A job the caller may see: their own, or any for an admin. Another
/// user's job is "not found", not "forbidden", so ids leak nothing.
pub(crate) async fn visible(api: &Api, caller: &Caller, id: JobId) -> Result<JobView, ApiError> {
    let not_found = || ApiError::not_found(format!("job {}", id.0));
    let row = api.store.job_row(id).await?.ok_or_else(not_found)?;
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
        return Err(not_found());
    }
    let outcome: Option<Outcome> = row.outcome.and_then(|o| serde_json::from_str(&o).ok());
    // A reason is why a job failed: a failure it recovered from (a create
    // retried) stays in its event stream, not on a success.
    let reason = row.reason.filter(|_| outcome != Some(Outcome::Succeeded));
    // The tags are the job file's, as it was submitted.
    let tags = (serde_json::from_str::<serde_json::Value>(&row.spec).ok())
        .and_then(|spec| serde_json::from_value(spec.get("tags")?.clone()).ok())
        .unwrap_or_default();
    Ok(JobView {
        id,
        name: row.name,
        owner: UserId(row.owner),
        owner_name: row.owner_name,
        state: job_state(&row.state),
        outcome,
        reason,
        tags,
    })
}

pub async fn show(api: &Api, caller: Caller, id: u32) -> Result<(StatusCode, JobView), ApiError> {
    Ok((StatusCode::OK, visible(api, &caller, JobId(id)).await?))
}

pub async fn cancel(api: &Api, caller: Caller, id: u32) -> Result<(StatusCode, JobView), ApiError> {
    let id = JobId(id);
    let job = visible(api, &caller, id).await?;
    // The core forgets a job once it retires; the read model remembers
    // that it ended.
    if job.state == JobState::Ended {
        let outcome = serde_json::to_string(&job.outcome).unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_ended",
            format!("job {} has already ended ({outcome})", id.0),
        ));
    }
    api.handle.send(Input::CancelJob { job: id }).await?;
    Ok((StatusCode::OK, visible(api, &caller, id).await?))
}

/// Every type's and target's queue and holdings, for users and admins.
pub async fn queue(api: &Api, caller: &Caller) -> Result<(StatusCode, Queue), ApiError> {
    if !matches!(caller.principal, Principal::User(_) | Principal::Admin) {
        return Err(ApiError::forbidden("only users and admins read the queues"));
    }
    let load = api.handle.read(aquifer_core::explain::load).await?;
    Ok((StatusCode::OK, load))
}

pub async fn list(
    api: &Api,
    caller: &Caller,
    q: ListQuery,
) -> Result<(StatusCode, Vec<ListedJob>), ApiError> {
    if q.state == Some(JobState::Other) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("state is none of {}", JobState::NAMES),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > PAGE_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit is 1 to {PAGE_MAX}"),
        ));
    }
    // Without `admin.jobs`, a user sees their own jobs whatever they ask,
    // and learns nothing of other users: a name that is not theirs gets
    // the same empty page whether or not somebody has it.
    let owner = match caller.principal {
        Principal::User(me) if !caller.may(super::privilege::JOBS) => {
            if let Some(o) = &q.owner
                && !names_user(api, o, me).await?
            {
                return Ok((StatusCode::OK, Vec::new()));
            }
            Some(me)
        }
        Principal::User(_) | Principal::Admin => match &q.owner {
            None => None,
            Some(o) => Some(owner_id(api, o).await?),
        },
        Principal::Well(_)
        | Principal::Factory(_)
        | Principal::Worker(_)
        | Principal::Job(_)
        | Principal::Bootstrap(_) => {
            return Err(ApiError::forbidden("only users and admins list jobs"));
        }
    };
    let state = q.state.map(|s| s.to_string());
    let before = q.before.map(|b| b.0);
    let tag = match &q.tag {
        None => None,
        Some(t) => Some(t.split_once('=').ok_or_else(|| {
            ApiError::bad_request("bad_query", format!("tag {t:?} is not KEY=VALUE"))
        })?),
    };
    let jobs = (api.store)
        .list_jobs(owner, state.as_deref(), tag, before, limit)
        .await?
        .into_iter()
        .map(|j| ListedJob {
            id: JobId(j.id),
            owner: UserId(j.owner),
            owner_name: j.owner_name,
            name: j.name,
            state: job_state(&j.state),
            outcome: j.outcome.and_then(|o| serde_json::from_value(o).ok()),
            submitted_ms: j.submitted_ms,
        })
        .collect();
    Ok((StatusCode::OK, jobs))
}

/// Whether `owner` (an id or a name) names user `me`.
async fn names_user(api: &Api, owner: &str, me: u64) -> Result<bool, ApiError> {
    if let Ok(id) = owner.parse::<u64>() {
        return Ok(id == me);
    }
    Ok((api.store.list_users().await?)
        .into_iter()
        .any(|(id, name, _)| id == me && name == owner))
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

/// A job's stream after `after`: at once if there is something, else
/// after waiting (up to `wait_ms`) for news of the job: the driver's
/// `NotifyJob` effect, or task output recorded for it.
pub async fn watch(
    api: &Api,
    caller: &Caller,
    id: u32,
    q: WatchQuery,
) -> Result<(StatusCode, Watched), ApiError> {
    let id = JobId(id);
    // Stream numbers are stored as SQL integers: anything larger cannot
    // name an entry.
    if i64::try_from(q.after).is_err() {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("after is at most {}", i64::MAX),
        ));
    }
    let limit = q.limit.unwrap_or(PAGE_MAX).clamp(1, PAGE_MAX);
    let keys = vec![crate::wake::Key::Job(id)];
    let page = || async {
        let job = visible(api, caller, id).await?;
        let rows = api.store.job_events(id, q.after, limit).await?;
        // Ended, and this page reaches the end of what it wrote: a reader
        // that stops on `ended` misses nothing.
        let ended = job.state == JobState::Ended && rows.len() < limit as usize;
        let next = rows.last().map_or(q.after, |e| e.n);
        let events: Vec<Entry> = (rows.into_iter())
            .map(|row| Entry {
                n: row.n,
                at_ms: row.at_ms,
                event: StreamEvent::from(row.event),
            })
            .collect();
        let names = names(api, &events).await?;
        Ok::<_, ApiError>(Watched {
            events,
            next,
            ended,
            names,
        })
    };
    let found = super::long_poll(api, caller.principal, keys, q.wait_ms, || async {
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

/// The names of the wells and factories that `events` name by id.
async fn names(api: &Api, events: &[Entry]) -> Result<Names, ApiError> {
    let mut wells = BTreeSet::new();
    let mut factories = BTreeSet::new();
    for e in events {
        match &e.event {
            StreamEvent::Scheduled(Event::LeaseGranted { well, .. }) => {
                wells.insert(*well);
            }
            StreamEvent::Scheduled(Event::WorkerLeased { factory, .. }) => {
                factories.insert(*factory);
            }
            _ => {}
        }
    }
    names_of(api, wells, factories).await
}

/// The names of `wells` and `factories`, as their registrations gave them.
async fn names_of(
    api: &Api,
    wells: BTreeSet<aquifer_core::WellId>,
    factories: BTreeSet<aquifer_core::FactoryId>,
) -> Result<Names, ApiError> {
    use crate::users::Service;
    let mut names = Names::default();
    if !wells.is_empty() {
        let known = api.store.service_names(Service::Well).await?;
        names.wells = (wells.into_iter())
            .filter_map(|w| Some((w, known.get(&u64::from(w.0))?.clone())))
            .collect();
    }
    if !factories.is_empty() {
        let known = api.store.service_names(Service::Factory).await?;
        names.factories = (factories.into_iter())
            .filter_map(|f| Some((f, known.get(&u64::from(f.0))?.clone())))
            .collect();
    }
    Ok(names)
}

pub async fn explain(
    api: &Api,
    caller: &Caller,
    id: u32,
) -> Result<(StatusCode, Explained), ApiError> {
    let id = JobId(id);
    let job = visible(api, caller, id).await?;
    let (explanation, chain) = api
        .handle
        .read(move |s| {
            (
                aquifer_core::explain::explain(s, id),
                aquifer_core::explain::chain(s, id).unwrap_or_default(),
            )
        })
        .await?;
    let explanation = explanation.as_ref().map(Explanation::from);
    let mut wells = BTreeSet::new();
    let mut factories = BTreeSet::new();
    if let Some(x) = &explanation {
        for g in &x.groups {
            wells.extend(g.wells.iter().map(|w| w.well));
            wells.extend(g.holds.iter().map(|h| h.well));
        }
        factories.extend(x.worker.factories.keys().copied());
    }
    let names = names_of(api, wells, factories).await?;
    Ok((
        StatusCode::OK,
        Explained {
            id,
            name: job.name,
            state: job.state,
            outcome: job.outcome,
            explanation,
            chain: chain.iter().map(ChainLink::from).collect(),
            names,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::route::{Route, resolve};
    use super::*;
    use aquifer_protocol::path;
    use warp::http::Method;

    #[test]
    fn the_protocols_job_paths_reach_these_endpoints_and_their_queries_read_back() {
        let at = |m: Method, p: &str| resolve(&m, p.split('?').next().unwrap_or(p)).expect(p);
        let q = ListQuery {
            state: Some(JobState::Running),
            owner: Some("a b&c".into()),
            tag: Some("commit=a=b c".into()),
            before: Some(JobId(9)),
            limit: Some(5),
        };
        let listed = path::jobs_listed(&q);
        assert_eq!(at(Method::GET, &listed), Route::ListJobs);
        let (_, query) = listed.split_once('?').expect("a query");
        assert_eq!(serde_urlencoded::from_str::<ListQuery>(query), Ok(q));
        let w = WatchQuery {
            after: 3,
            wait_ms: 100,
            limit: Some(2),
        };
        let events = path::job_events(JobId(7), &w);
        assert_eq!(at(Method::GET, &events), Route::WatchJob(7));
        let (_, query) = events.split_once('?').expect("a query");
        assert_eq!(serde_urlencoded::from_str::<WatchQuery>(query), Ok(w));
        assert_eq!(at(Method::POST, path::JOBS), Route::SubmitJob);
        assert_eq!(at(Method::GET, &path::job(JobId(7))), Route::ShowJob(7));
        let cancel = path::job_cancel(JobId(7));
        assert_eq!(at(Method::POST, &cancel), Route::CancelJob(7));
        let explain = path::job_explain(JobId(7));
        assert_eq!(at(Method::GET, &explain), Route::ExplainJob(7));
        assert_eq!(at(Method::GET, path::WHOAMI), Route::Whoami);
    }
}
