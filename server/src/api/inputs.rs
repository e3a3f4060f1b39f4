//! Inputs: the files a job's submitter uploads after submitting it, in the
//! same three steps as outputs (begin, chunks, commit; resumable, checked
//! by size and SHA-256). Once every input the job file names is whole,
//! the core hears `InputsComplete` and the job may begin acquiring.
//!
//! And the agent's side: what it places in the job's input directory
//! before the first task, listed and read by number. That is the job's
//! inputs (at `NAME`) and the outputs of each dependency with
//! `copy_outputs` (at `DEPENDENCY/PATH`).

use super::error::ApiError;
use super::outputs::{agents_job, begin_send, objects, serve};
use super::{Api, Caller};
use crate::auth::Principal;
use crate::objects::Key;
use crate::store::{Files, OutputRow};
use aquifer_core::{Input, JobId, Rejection};
use aquifer_protocol::Empty;
use aquifer_protocol::jobs::JobFile;
use aquifer_protocol::outputs::{
    AgentInput, ChunkQuery, InputView, OutputBegin, OutputUpload, Received,
};
use warp::http::StatusCode;
use warp::reply::Response;

/// The job file of a job, as it was submitted.
async fn job_file(api: &Api, job: JobId) -> Result<(u64, JobFile), ApiError> {
    let row = (api.store.job_row(job).await?)
        .ok_or_else(|| ApiError::not_found(format!("job {}", job.0)))?;
    let file = serde_json::from_str(&row.spec).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("job {}'s file does not read back: {e}", job.0),
        )
    })?;
    Ok((row.owner, file))
}

/// The job's file, if the caller submitted it (or is the admin): only
/// its submitter uploads its inputs. Another's job is not found, as for
/// every job the caller may not see.
async fn submitters(api: &Api, caller: &Caller, job: JobId) -> Result<JobFile, ApiError> {
    let not_found = || ApiError::not_found(format!("job {}", job.0));
    let (owner, file) = job_file(api, job).await.map_err(|_| not_found())?;
    let mine = match caller.principal {
        Principal::User(user) => owner == user,
        Principal::Admin => true,
        _ => false,
    };
    if mine { Ok(file) } else { Err(not_found()) }
}

/// The number (from 1) of the input called `name` in `file`.
fn number_of(file: &JobFile, name: &str) -> Option<u32> {
    let at = file.inputs.iter().position(|n| n == name)?;
    u32::try_from(at + 1).ok()
}

/// The job's inputs as the job file names them, with how far each is.
pub async fn list(
    api: &Api,
    caller: &Caller,
    id: u32,
) -> Result<(StatusCode, Vec<InputView>), ApiError> {
    let job = JobId(id);
    super::jobs::visible(api, caller, job).await?;
    let (_, file) = job_file(api, job).await?;
    let rows = api.store.files(Files::Inputs, job).await?;
    let views = (file.inputs.iter().enumerate())
        .map(|(i, name)| {
            let input = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let row = rows.iter().find(|r| r.n == input);
            InputView {
                input,
                name: name.clone(),
                size: row.map(|r| r.size),
                complete: row.is_some_and(|r| r.complete),
                sha256: row.filter(|r| r.complete).and_then(|r| r.sha256.clone()),
            }
        })
        .collect();
    Ok((StatusCode::OK, views))
}

/// Refuses an upload to a job that no longer waits for its inputs.
async fn still_waiting(api: &Api, job: JobId) -> Result<(), ApiError> {
    let view = api.store.job_row(job).await?;
    if view.is_some_and(|r| r.outcome.is_some()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_ended",
            format!("job {} has ended: its inputs are no longer taken", job.0),
        ));
    }
    Ok(())
}

/// Begins sending the input `path` names, or says how much is held.
pub async fn begin(
    api: &Api,
    caller: &Caller,
    id: u32,
    body: &[u8],
) -> Result<(StatusCode, OutputUpload), ApiError> {
    let job = JobId(id);
    let file = submitters(api, caller, job).await?;
    objects(api)?;
    let b: OutputBegin = super::parse_json(body)?;
    let n = number_of(&file, &b.path).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_input",
            format!("job {id}'s file names no input {:?}", b.path),
        )
    })?;
    still_waiting(api, job).await?;
    let file_max = api.http.input_file_bytes_max;
    if b.size > file_max {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("{}: an input is at most {file_max} bytes", b.path),
        ));
    }
    let _one = api.output_begins.lock().await;
    let rows = api.store.files(Files::Inputs, job).await?;
    let fits = || {
        let others: u64 = (rows.iter().filter(|r| r.n != n)).map(|r| r.size).sum();
        let bytes_max = api.http.input_files_bytes_per_job_max;
        if others.saturating_add(b.size) > bytes_max {
            return Err(ApiError::bad_request(
                "limit_exceeded",
                format!("a job takes at most {bytes_max} bytes of inputs"),
            ));
        }
        Ok(())
    };
    let prior = rows.iter().find(|r| r.n == n);
    begin_send(api, job, Key::input(n), &b, prior, fits).await
}

/// Bytes of an input from `offset`.
pub async fn chunk(
    api: &Api,
    caller: &Caller,
    id: u32,
    n: u32,
    q: ChunkQuery,
    body: &[u8],
) -> Result<(StatusCode, Received), ApiError> {
    let job = JobId(id);
    submitters(api, caller, job).await?;
    still_waiting(api, job).await?;
    super::outputs::chunk(api, job, Key::input(n), q, body).await
}

/// An input is whole; once all are, the job may begin.
pub async fn commit(
    api: &Api,
    caller: &Caller,
    id: u32,
    n: u32,
    body: &[u8],
) -> Result<(StatusCode, Empty), ApiError> {
    let job = JobId(id);
    let file = submitters(api, caller, job).await?;
    still_waiting(api, job).await?;
    super::outputs::commit(api, job, Key::input(n), body).await?;
    // Whether or not this commit was the one that made it whole (its
    // answer may have been lost after the core heard), the core is told
    // once every input is: a second telling is refused and harmless.
    let rows = api.store.files(Files::Inputs, job).await?;
    let whole = |i: usize| {
        (rows.iter()).any(|r| r.complete && usize::try_from(r.n).is_ok_and(|n| n == i + 1))
    };
    if (0..file.inputs.len()).all(whole) {
        match api.handle.send(Input::InputsComplete { job }).await {
            Ok(_)
            | Err(crate::driver::DriverError::Rejected(Rejection::NotAwaitingInputs { .. })) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((StatusCode::OK, Empty {}))
}

/// One file the agent places: where, and which object holds it.
struct Placed {
    path: String,
    job: JobId,
    key: Key,
    row: OutputRow,
}

/// What the calling agent's job finds in its input directory, in order:
/// its inputs, then each copied dependency's outputs.
async fn placed(api: &Api, caller: &Caller) -> Result<Vec<Placed>, ApiError> {
    let job = agents_job(api, caller).await?;
    let (_, file) = job_file(api, job).await?;
    let mut out = Vec::new();
    let inputs = api.store.files(Files::Inputs, job).await?;
    for row in inputs.into_iter().filter(|r| r.complete) {
        out.push(Placed {
            path: row.path.clone(),
            job,
            key: Key::input(row.n),
            row,
        });
    }
    for dep in &file.depends_on {
        let Some(dir) = dep.copied_to() else {
            continue;
        };
        let outputs = api.store.outputs(dep.job()).await?;
        for row in outputs.into_iter().filter(|r| r.complete) {
            out.push(Placed {
                path: format!("{dir}/{}", row.path),
                job: dep.job(),
                key: Key::output(row.n),
                row,
            });
        }
    }
    Ok(out)
}

pub async fn agent_list(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<AgentInput>), ApiError> {
    let views = (placed(api, caller).await?.into_iter().enumerate())
        .map(|(i, p)| AgentInput {
            input: u32::try_from(i + 1).unwrap_or(u32::MAX),
            path: p.path,
            size: p.row.size,
            sha256: p.row.sha256.unwrap_or_default(),
        })
        .collect();
    Ok((StatusCode::OK, views))
}

pub async fn agent_get(
    api: &Api,
    caller: &Caller,
    n: u32,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let all = placed(api, caller).await?;
    let p = (n.checked_sub(1))
        .and_then(|i| all.into_iter().nth(usize::try_from(i).ok()?))
        .ok_or_else(|| ApiError::not_found(format!("input {n}")))?;
    serve(api, p.job, p.key, range).await
}
