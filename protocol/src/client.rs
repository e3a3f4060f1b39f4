//! The one client of the aquifer API: JSON over reqwest, the bearer token,
//! one error type, one retry table and one back-off. Wells, factories, the
//! agent, `bmat` and the CLI all call the server through it.
//!
//! The retry table (`Kind` × failure → retry or not):
//!
//! | failure                                  | `Idempotent` | `Once` | `Single` |
//! |------------------------------------------|--------------|--------|----------|
//! | connection not made (nothing was sent)   | retry        | retry  | no       |
//! | no answer after sending (reset, timeout) | retry        | no     | no       |
//! | 503 (nothing changed), 429               | retry        | retry  | no       |
//! | 408, 500, 502, 504                       | retry        | no     | no       |
//! | any other status (400, 401, 403, 404, 409, 410, ...) | no | no | no     |
//! | an answer that is not the protocol       | no           | no     | no       |
//!
//! Reports and check-ins are `Idempotent`: the server treats a repeat as
//! the same report, so they are retried until they land (or the client's
//! patience runs out). A refusal is final whatever the kind: the same
//! request would get the same answer. `Once` is for calls that would act
//! twice if the server got them twice (a submission); `Single` for calls
//! whose caller loops anyway with fresher arguments (lease polls,
//! renewals).

use crate::agent::{
    BootstrapRequest, Bootstrapped, Control, Finish, JobResource, JobResources, Output, Started,
};
use crate::backoff::Backoff;
use crate::error::ErrorBody;
use crate::outputs::Sending;
use crate::{Empty, LeaseId, ResourceId, WorkerId, factory, path, well};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

pub use reqwest::Method;

/// How long a call may take before it counts as unanswered; a long-poll
/// adds its wait to it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How a call may be repeated (the rows of the retry table above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A read, or a report the server takes once however often it comes.
    Idempotent,
    /// A call that would act twice if the server got it twice.
    Once,
    /// One try; the caller loops with fresher arguments.
    Single,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No connection was made: the request was not sent.
    #[error("cannot reach the server at {base}: {detail}")]
    Unreached { base: String, detail: String },
    /// The request may have been sent, but no answer came.
    #[error("no answer from the server at {base}: {detail}")]
    Unanswered { base: String, detail: String },
    /// The server answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// An answer that is not what the protocol says.
    #[error("the server's answer to {path} makes no sense: {detail}")]
    BadAnswer { path: String, detail: String },
}

impl CallError {
    /// Whether a call of `kind` that failed so may succeed if sent again.
    #[must_use]
    pub fn is_retryable(&self, kind: Kind) -> bool {
        match (kind, self) {
            (Kind::Single, _) | (_, CallError::BadAnswer { .. }) => false,
            (_, CallError::Unreached { .. }) => true,
            (Kind::Idempotent, CallError::Unanswered { .. }) => true,
            (Kind::Once, CallError::Unanswered { .. }) => false,
            (_, CallError::Refused { status, .. }) => match status {
                503 | 429 => true,
                408 | 500 | 502 | 504 => kind == Kind::Idempotent,
                _ => false,
            },
        }
    }

    /// The HTTP status, if the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code, if the server answered with one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the server never answered (unreachable or silent).
    #[must_use]
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            CallError::Unreached { .. } | CallError::Unanswered { .. }
        )
    }
}

/// A server, a token, and how long to keep retrying.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    backoff: Backoff,
    patience: Option<Duration>,
}

impl std::fmt::Debug for Client {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("backoff", &self.backoff)
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base` (`http://host:port`, no path) that
    /// retries for as long as it is awaited.
    pub fn new(base: &str, token: Option<String>) -> Result<Client, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Under the server's 30 s for an idle connection, so that a
            // pooled one is not reused just as the server closes it.
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| CallError::Unreached {
                base: base.to_string(),
                detail: format!("cannot build an HTTP client: {}", describe(&e)),
            })?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            backoff: Backoff::default(),
            patience: None,
        })
    }

    /// The same server and connections, another token.
    #[must_use]
    pub fn with_token(&self, token: String) -> Client {
        Client {
            token: Some(token),
            ..self.clone()
        }
    }

    /// Retries stop `patience` after the first try (`None`: never).
    #[must_use]
    pub fn with_patience(mut self, patience: Option<Duration>) -> Client {
        self.patience = patience;
        self
    }

    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Client {
        self.backoff = backoff;
        self
    }

    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    #[must_use]
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// One call, retried as the table says for `kind`. `wait` is how long
    /// the server may hold it (a long-poll).
    pub async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        kind: Kind,
        method: Method,
        path: &str,
        body: Option<&B>,
        wait: Duration,
    ) -> Result<T, CallError> {
        self.call_with(kind, method, path, body.map(Sent::Json), wait)
            .await
    }

    /// A POST of raw bytes (`application/octet-stream`), retried as `kind`
    /// says: an output's chunk.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        kind: Kind,
        path: &str,
        bytes: &[u8],
    ) -> Result<T, CallError> {
        let sent: Option<Sent<'_, Empty>> = Some(Sent::Bytes(bytes));
        self.call_with(kind, Method::POST, path, sent, Duration::ZERO)
            .await
    }

    async fn call_with<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        kind: Kind,
        method: Method,
        path: &str,
        body: Option<Sent<'_, B>>,
        wait: Duration,
    ) -> Result<T, CallError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let e = match self.once(method.clone(), path, body, wait).await {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            let pause = self.backoff.wait_jittered(attempt);
            let patient = self
                .patience
                .is_none_or(|p| started.elapsed().saturating_add(pause) < p);
            if !(e.is_retryable(kind) && patient) {
                return Err(e);
            }
            // The first few are routine (a busy or restarting server);
            // after that somebody should know.
            if attempt < 3 {
                tracing::debug!(%method, %path, error = %e, ?pause, "retrying");
            } else {
                tracing::warn!(%method, %path, error = %e, attempt, ?pause, "retrying");
            }
            tokio::time::sleep(pause).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// One try: the status and the body's bytes, whatever the status.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<Sent<'_, B>>,
        wait: Duration,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), CallError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(CALL_TIMEOUT.saturating_add(wait));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(Sent::Json(body)) => request = request.json(body),
            Some(Sent::Bytes(bytes)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.to_vec());
            }
            None => {}
        }
        let transport = |e: reqwest::Error| {
            let (base, detail) = (self.base.clone(), describe(&e));
            if e.is_connect() {
                CallError::Unreached { base, detail }
            } else {
                CallError::Unanswered { base, detail }
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        Ok((status, bytes.to_vec()))
    }

    /// Reads a body of bytes (an output) chunk by chunk into `write`, not
    /// holding it whole; one try. Returns the `x-aquifer-sha256` the
    /// server sent with it, if any.
    pub async fn download(
        &self,
        path: &str,
        mut write: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<Option<String>, CallError> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let unanswered = |e: reqwest::Error| CallError::Unanswered {
            base: self.base.clone(),
            detail: describe(&e),
        };
        let mut response = request.send().await.map_err(unanswered)?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(unanswered)?;
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                code: "error".into(),
                message: format!("{path} failed"),
            });
            return Err(CallError::Refused {
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            });
        }
        let sha = (response.headers().get("x-aquifer-sha256"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        while let Some(chunk) = response.chunk().await.map_err(unanswered)? {
            write(&chunk).map_err(|e| CallError::Unanswered {
                base: self.base.clone(),
                detail: format!("writing what came: {e}"),
            })?;
        }
        Ok(sha)
    }

    /// One try, not retried, and the answer as it came: its status and its
    /// JSON body (`null` if it has none). For tests and probes that check
    /// what the server says, refusals included; everything else uses
    /// [`Client::call`] and its typed answers.
    pub async fn exchange<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(u16, serde_json::Value), CallError> {
        let body = body.map(Sent::Json);
        let (status, bytes) = self.send(method, path, body, Duration::ZERO).await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status.as_u16(), body))
    }

    async fn once<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<Sent<'_, B>>,
        wait: Duration,
    ) -> Result<T, CallError> {
        let (status, bytes) = self.send(method, path, body, wait).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| CallError::BadAnswer {
                path: path.to_string(),
                detail: format!("{status}: {e}"),
            });
        }
        // Errors are `{code, message}`; a proxy's error page is not, and
        // its status is still worth acting on.
        let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
            code: "error".into(),
            message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        });
        Err(CallError::Refused {
            status: status.as_u16(),
            code: body.code,
            message: if body.message.is_empty() {
                format!("{path} failed")
            } else {
                body.message
            },
        })
    }

    /// A GET, retried as a read.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.call(
            Kind::Idempotent,
            Method::GET,
            path,
            None::<&Empty>,
            Duration::ZERO,
        )
        .await
    }

    /// A POST that would act twice if sent twice.
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        self.call(Kind::Once, Method::POST, path, Some(body), Duration::ZERO)
            .await
    }

    /// A POST the server takes once however often it comes (a report).
    pub async fn report<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        self.call(
            Kind::Idempotent,
            Method::POST,
            path,
            Some(body),
            Duration::ZERO,
        )
        .await
    }

    /// A DELETE that confirms something is gone: 404 and 410 mean the
    /// server has already forgotten it, which is what it asks for.
    pub async fn confirm_gone(&self, path: &str) -> Result<(), CallError> {
        match self
            .call::<Empty, Empty>(Kind::Idempotent, Method::DELETE, path, None, Duration::ZERO)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.status(), Some(404 | 410)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // The well protocol.

    /// One lease poll, held up to `wait_ms`; not retried: the caller asks
    /// again with its view of what is free then.
    pub async fn well_lease(
        &self,
        request: &well::WellLeaseRequest,
    ) -> Result<well::WellLeaseAnswer, CallError> {
        let wait = Duration::from_millis(request.wait_ms);
        self.call(
            Kind::Single,
            Method::POST,
            path::WELL_LEASE,
            Some(request),
            wait,
        )
        .await
    }

    /// One renewal; the lease's new expiry.
    pub async fn well_renew(&self, lease: LeaseId) -> Result<well::Renewed, CallError> {
        let p = path::well_renew(lease);
        self.call(
            Kind::Single,
            Method::POST,
            &p,
            Some(&Empty {}),
            Duration::ZERO,
        )
        .await
    }

    pub async fn well_ready(&self, resource: ResourceId, r: &well::Ready) -> Result<(), CallError> {
        let _: Empty = self.report(&path::well_ready(resource), r).await?;
        Ok(())
    }

    pub async fn well_failed(
        &self,
        resource: ResourceId,
        f: &well::Failed,
    ) -> Result<(), CallError> {
        let _: Empty = self.report(&path::well_failed(resource), f).await?;
        Ok(())
    }

    pub async fn well_destroyed(&self, resource: ResourceId) -> Result<(), CallError> {
        self.confirm_gone(&path::well_resource(resource)).await
    }

    pub async fn well_destroy_failed(
        &self,
        resource: ResourceId,
        f: &well::DestroyFailed,
    ) -> Result<(), CallError> {
        let _: Empty = self.report(&path::well_destroy_failed(resource), f).await?;
        Ok(())
    }

    pub async fn well_resources(&self) -> Result<well::Listing, CallError> {
        self.get(path::WELL_RESOURCES).await
    }

    // The factory protocol.

    /// One lease poll, as `well_lease`.
    pub async fn factory_lease(
        &self,
        request: &factory::FactoryLeaseRequest,
    ) -> Result<factory::FactoryLeaseAnswer, CallError> {
        let wait = Duration::from_millis(request.wait_ms);
        self.call(
            Kind::Single,
            Method::POST,
            path::FACTORY_LEASE,
            Some(request),
            wait,
        )
        .await
    }

    pub async fn factory_created(&self, worker: WorkerId) -> Result<factory::Bootstrap, CallError> {
        self.report(&path::factory_created(worker), &Empty {}).await
    }

    pub async fn factory_lost(&self, worker: WorkerId) -> Result<(), CallError> {
        let _: Empty = self.report(&path::factory_lost(worker), &Empty {}).await?;
        Ok(())
    }

    pub async fn factory_destroyed(&self, worker: WorkerId) -> Result<(), CallError> {
        self.confirm_gone(&path::factory_worker(worker)).await
    }

    pub async fn factory_workers(&self) -> Result<factory::Listing, CallError> {
        self.get(path::FACTORY_WORKERS).await
    }

    // The agent protocol.

    /// Trades the one-time key for the worker's token; safe to retry: the
    /// key stays good until the server has recorded the check-in.
    ///
    /// The key goes in the header, which a server checks before it reads
    /// the body, and in the body too, for servers from before 2026-12.
    /// `token` is the worker token the agent proposes (see
    /// [`BootstrapRequest::token`]): when the key is refused, a try before
    /// may have spent it and its answer been lost, so the token is shown
    /// in its place and, if that try made it, the same answer comes back.
    pub async fn agent_bootstrap(&self, key: &str, token: &str) -> Result<Bootstrapped, CallError> {
        let body = BootstrapRequest {
            key: Some(key.into()),
            token: Some(token.into()),
        };
        let tried = (self.with_token(key.into()))
            .report(path::AGENT_BOOTSTRAP, &body)
            .await;
        match tried {
            Err(e) if e.status() == Some(401) => (self.with_token(token.into()))
                .report(path::AGENT_BOOTSTRAP, &BootstrapRequest::default())
                .await
                .map_err(|_| e),
            other => other,
        }
    }

    pub async fn agent_start(&self) -> Result<Started, CallError> {
        self.report(path::AGENT_START, &Empty {}).await
    }

    pub async fn agent_output(&self, o: &Output) -> Result<(), CallError> {
        let _: Empty = self.report(path::AGENT_OUTPUT, o).await?;
        Ok(())
    }

    /// Waits up to `wait_ms` for the job's end; one try.
    pub async fn agent_control(&self, wait_ms: u64) -> Result<Control, CallError> {
        let p = path::agent_control(wait_ms);
        let wait = Duration::from_millis(wait_ms);
        self.call(Kind::Single, Method::GET, &p, None::<&Empty>, wait)
            .await
    }

    /// Begins sending a file (an output or an input), or learns where a
    /// send broke off.
    pub async fn file_begin(
        &self,
        to: Sending,
        b: &crate::outputs::OutputBegin,
    ) -> Result<crate::outputs::OutputUpload, CallError> {
        self.report(&path::files(to), b).await
    }

    /// Bytes of a file from `offset`; the answer says how many the server
    /// holds (a resent chunk is not written twice).
    pub async fn file_chunk(
        &self,
        to: Sending,
        n: u32,
        offset: u64,
        bytes: &[u8],
    ) -> Result<crate::outputs::Received, CallError> {
        let p = path::file_chunk(to, n, offset);
        self.post_bytes(Kind::Idempotent, &p, bytes).await
    }

    pub async fn file_commit(
        &self,
        to: Sending,
        n: u32,
        c: &crate::outputs::OutputCommit,
    ) -> Result<(), CallError> {
        let _: Empty = self.report(&path::file_commit(to, n), c).await?;
        Ok(())
    }

    /// What the agent places in the job's input directory.
    pub async fn agent_inputs(&self) -> Result<Vec<crate::outputs::AgentInput>, CallError> {
        self.get(path::AGENT_INPUTS).await
    }

    pub async fn agent_finish(&self, f: &Finish) -> Result<(), CallError> {
        let _: Empty = self.report(path::AGENT_FINISH, f).await?;
        Ok(())
    }

    // The job's side, for bmat.

    pub async fn job_resources(&self) -> Result<JobResources, CallError> {
        self.get(path::JOB_RESOURCES).await
    }

    pub async fn job_resource(&self, name: &str) -> Result<JobResource, CallError> {
        self.get(&path::job_resource(name)).await
    }

    pub async fn job_store(&self) -> Result<crate::jobs::StoreKeys, CallError> {
        self.get(path::JOB_STORE).await
    }

    pub async fn job_store_get(&self, key: &str) -> Result<crate::jobs::StoreValue, CallError> {
        self.get(&path::job_store_key(key)).await
    }

    pub async fn job_store_put(
        &self,
        key: &str,
        value: &crate::jobs::StoreValue,
    ) -> Result<(), CallError> {
        let _: Empty = self.report(&path::job_store_key(key), value).await?;
        Ok(())
    }
}

/// A request's body: JSON, or raw bytes.
enum Sent<'a, B: ?Sized> {
    Json(&'a B),
    Bytes(&'a [u8]),
}

impl<B: ?Sized> Clone for Sent<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: ?Sized> Copy for Sent<'_, B> {}

fn describe(e: &reqwest::Error) -> String {
    crate::error::chain(e)
}

pub mod files;

#[cfg(test)]
mod tests;
