//! Outputs: the agent sends the files a job's rules match (begin, chunks,
//! commit; resumable, checked by size and SHA-256), and users list and
//! read them (with HTTP ranges). The bytes live in the object store
//! (`objects.rs`); the `outputs` rows say which are whole.

use super::agent::{not_running, worker_of};
use super::error::ApiError;
use super::{Api, Caller};
use crate::objects::{Key, ObjectError, Objects};
use crate::readmodel::Write;
use crate::store::{Files, OutputRow};
use aquifer_core::JobId;
use aquifer_protocol::outputs::{
    ChunkQuery, OutputBegin, OutputCommit, OutputUpload, OutputView, Received, relative_path,
};
use warp::Reply as _;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

pub(super) fn objects(api: &Api) -> Result<&Objects, ApiError> {
    api.objects.as_ref().ok_or_else(|| {
        // Not 503: asking again does not help until the operator acts.
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no_object_store",
            "this server keeps no outputs: its operator sets objects_dir",
        )
    })
}

pub(super) fn object_error(e: ObjectError) -> ApiError {
    match e {
        ObjectError::Offset { .. } => ApiError::new(StatusCode::CONFLICT, "offset", e.to_string()),
        ObjectError::Io { .. } | ObjectError::Bucket(_) => {
            tracing::error!(error = %e, "the object store failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "object_store",
                "the object store could not be written or read; try again",
            )
        }
    }
}

/// The running job of the calling agent.
pub(super) async fn agents_job(api: &Api, caller: &Caller) -> Result<JobId, ApiError> {
    let worker = worker_of(caller)?;
    let (job, _) = (api.handle)
        .read(move |s| s.running_job_of(worker))
        .await?
        .ok_or_else(not_running)?;
    Ok(job)
}

async fn row(api: &Api, job: JobId, key: Key) -> Result<OutputRow, ApiError> {
    let rows = api.store.files(key.files, job).await?;
    (rows.into_iter().find(|r| r.n == key.n))
        .ok_or_else(|| ApiError::not_found(format!("{} {}", what(key.files), key.n)))
}

fn what(files: Files) -> &'static str {
    match files {
        Files::Outputs => "output",
        Files::Inputs => "input",
    }
}

pub(super) fn sent_already(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "output_complete",
        format!("{path} is sent already"),
    )
}

/// Begins sending an output, or says how much of it is held (to resume).
pub async fn begin(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, OutputUpload), ApiError> {
    let job = agents_job(api, caller).await?;
    objects(api)?;
    let b: OutputBegin = super::parse_json(body)?;
    relative_path(&b.path).map_err(|why| ApiError::bad_request("bad_path", why))?;
    let file_max = api.http.output_file_bytes_max;
    if b.size > file_max {
        return Err(ApiError::bad_request(
            "limit_exceeded",
            format!("{}: an output is at most {file_max} bytes", b.path),
        ));
    }
    // One begin at a time, so that two never take the same number.
    let _one = api.output_begins.lock().await;
    let rows = api.store.outputs(job).await?;
    let prior = rows.iter().find(|r| r.path == b.path);
    let n = prior.map_or_else(|| rows.iter().map(|r| r.n).max().unwrap_or(0) + 1, |r| r.n);
    let fits = || {
        let others = rows.iter().filter(|r| r.path != b.path);
        let count = others.clone().count();
        let per_job = api.http.output_files_per_job_max as usize;
        if count >= per_job {
            return Err(ApiError::bad_request(
                "limit_exceeded",
                format!("a job keeps at most {per_job} outputs"),
            ));
        }
        let bytes: u64 = others.map(|r| r.size).sum::<u64>().saturating_add(b.size);
        let bytes_max = api.http.output_files_bytes_per_job_max;
        if bytes > bytes_max {
            return Err(ApiError::bad_request(
                "limit_exceeded",
                format!("a job keeps at most {bytes_max} bytes of outputs"),
            ));
        }
        Ok(())
    };
    begin_send(api, job, Key::output(n), &b, prior, fits).await
}

/// Begins (or resumes) sending `b` as `key` of `job`, given its row if it
/// was begun before. One already whole is refused; one begun at the same
/// size resumes where the store's copy ends. Otherwise (new, or a file
/// that changed size) it starts over under its number, what was held
/// dropped, once `fits` says the job's limits take it. Callers hold
/// `output_begins`.
pub(super) async fn begin_send(
    api: &Api,
    job: JobId,
    key: Key,
    b: &OutputBegin,
    prior: Option<&OutputRow>,
    fits: impl FnOnce() -> Result<(), ApiError>,
) -> Result<(StatusCode, OutputUpload), ApiError> {
    let objects = objects(api)?;
    if let Some(r) = prior {
        if r.complete {
            return Err(sent_already(&b.path));
        }
        if r.size == b.size {
            let received = (objects.received(job.0, key).await).map_err(object_error)?;
            let upload = OutputUpload {
                output: key.n,
                received,
            };
            return Ok((StatusCode::OK, upload));
        }
    }
    fits()?;
    if prior.is_some() {
        (objects.discard(job.0, key).await).map_err(object_error)?;
    }
    api.handle
        .record(vec![Write::OutputBegun {
            files: key.files,
            job,
            n: key.n,
            path: b.path.clone(),
            size: b.size,
            at_ms: super::now().ms(),
        }])
        .await?;
    let upload = OutputUpload {
        output: key.n,
        received: 0,
    };
    Ok((StatusCode::OK, upload))
}

/// Bytes of an output or input from `offset`, into `job`'s object.
pub async fn chunk(
    api: &Api,
    job: JobId,
    key: Key,
    q: ChunkQuery,
    body: &[u8],
) -> Result<(StatusCode, Received), ApiError> {
    let objects = objects(api)?;
    let r = row(api, job, key).await?;
    if r.complete {
        return Err(sent_already(&r.path));
    }
    if q.offset.saturating_add(body.len() as u64) > r.size {
        return Err(ApiError::bad_request(
            "too_large",
            format!("{} was begun at {} bytes; send no more", r.path, r.size),
        ));
    }
    let received = (objects.append(job.0, key, q.offset, body).await).map_err(object_error)?;
    Ok((StatusCode::OK, Received { received }))
}

/// The output or input is whole: checked, then listed. Answers whether
/// this commit made it whole (not one whose answer was lost).
pub async fn commit(api: &Api, job: JobId, key: Key, body: &[u8]) -> Result<bool, ApiError> {
    let objects = objects(api)?;
    let c: OutputCommit = super::parse_json(body)?;
    let r = row(api, job, key).await?;
    let sha256 = c.sha256.to_ascii_lowercase();
    if r.complete {
        return if r.sha256.as_deref() == Some(sha256.as_str()) {
            Ok(false)
        } else {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "output_complete",
                format!("{} is sent already, with another checksum", r.path),
            ))
        };
    }
    // A file that may change size (`%`) can have shrunk since its begin;
    // none can have grown past it (chunks stop there).
    if c.size > r.size {
        return Err(ApiError::bad_request(
            "too_large",
            format!("{} was begun at {} bytes", r.path, r.size),
        ));
    }
    // Whole already: the answer to an earlier commit was lost after the
    // object was checked and renamed.
    let whole = objects.is_whole(job.0, key).await
        || (objects.commit(job.0, key, c.size, &sha256).await).map_err(object_error)?;
    if !whole {
        return Err(ApiError::bad_request(
            "checksum",
            format!(
                "the bytes held of {} do not have that size and SHA-256; they are dropped: send it again",
                r.path
            ),
        ));
    }
    let recorded = Write::OutputCommitted {
        files: key.files,
        job,
        n: key.n,
        size: c.size,
        sha256,
    };
    api.handle.record(vec![recorded]).await?;
    Ok(true)
}

/// A job's whole outputs.
pub async fn list(
    api: &Api,
    caller: &Caller,
    id: u32,
) -> Result<(StatusCode, Vec<OutputView>), ApiError> {
    let job = JobId(id);
    super::jobs::visible(api, caller, job).await?;
    let rows = api.store.outputs(job).await?;
    let views = (rows.into_iter())
        .filter(|r| r.complete)
        .map(|r| OutputView {
            output: r.n,
            path: r.path,
            size: r.size,
            sha256: r.sha256.unwrap_or_default(),
        })
        .collect();
    Ok((StatusCode::OK, views))
}

/// One output's bytes, or the range a `Range` header asks for (206).
pub async fn download(
    api: &Api,
    caller: &Caller,
    id: u32,
    n: u32,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let job = JobId(id);
    super::jobs::visible(api, caller, job).await?;
    serve(api, job, Key::output(n), range).await
}

/// A whole object's bytes, or the range a `Range` header asks for (206).
pub(super) async fn serve(
    api: &Api,
    job: JobId,
    key: Key,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let objects = objects(api)?;
    let r = row(api, job, key).await?;
    if !r.complete {
        return Err(ApiError::not_found(format!(
            "{} {} (it is still being sent)",
            what(key.files),
            key.n
        )));
    }
    let (status, start, end) = match range.map(|h| parse_range(h, r.size)) {
        None => (StatusCode::OK, 0, r.size),
        Some(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Some(None) => {
            let mut refused = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                format!(
                    "give one range of bytes within the output's {} bytes",
                    r.size
                ),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", r.size)) {
                refused.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(refused);
        }
    };
    let stream = (objects.stream(job.0, key, start, end - start).await).map_err(object_error)?;
    let mut response = warp::reply::stream(stream).into_response();
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&(end - start).to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&r.sha256.unwrap_or_default()) {
        h.insert("x-aquifer-sha256", v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{}", end - 1, r.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// One `bytes=` range of an object of `size` bytes, as `[start, end)`:
/// `a-b`, `a-` or `-k` (the last `k`); `None` for anything else, or a
/// range that does not fit.
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let k: u64 = b.parse().ok()?;
            (size.saturating_sub(k), size)
        }
        (false, true) => (a.parse().ok()?, size),
        (false, false) => {
            let (start, last): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            (start, last.checked_add(1)?.min(size))
        }
        (true, true) => return None,
    };
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-4", 10), Some((0, 5)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 10)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 10)));
        assert_eq!(
            parse_range("bytes=8-99", 10),
            Some((8, 10)),
            "clipped to the end"
        );
        assert_eq!(parse_range("bytes=-30", 10), Some((0, 10)));
        for bad in [
            "bytes=10-",
            "bytes=5-4",
            "bytes=-0",
            "bytes=-",
            "0-4",
            "bytes=0-1,3-4",
            "bytes=a-b",
        ] {
            assert_eq!(parse_range(bad, 10), None, "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), None, "nothing to give");
    }
}
