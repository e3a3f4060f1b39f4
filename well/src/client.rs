//! The well's side of the wire (`docs/protocol.md`, "Wells"): the request
//! and answer shapes, one call each, and the retry policy that decides
//! which failures are worth another try.

use crate::backoff::Backoff;
use crate::well::Created;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long any call but the lease poll may take before it counts as a
/// connection failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than its `wait_ms` a lease poll may take: the server's
/// answer, the network, a busy database.
const POLL_SLACK: Duration = Duration::from_secs(15);

/// A lease the server granted: create one thing per resource id.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Grant {
    pub id: u32,
    pub job: u32,
    pub rtype: String,
    pub resources: Vec<u32>,
    pub deadline_ms: u64,
    pub expires_at_ms: u64,
}

/// What a lease poll asks with: free slots per type, and the resources
/// this runner is destroying already (so that the server does not answer
/// at once with them as news).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asking {
    pub free: BTreeMap<String, u16>,
    pub destroying: std::collections::BTreeSet<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct LeaseAnswer {
    pub lease: Option<Grant>,
    #[serde(default)]
    pub destroy: Vec<u32>,
}

/// A resource's state in the server's books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    Creating,
    Ready,
    Releasing,
    Held,
    /// A state this runner does not know (a newer server): treated as
    /// "leave it be".
    #[serde(other)]
    Other,
}

/// What the server wants of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Want {
    Keep,
    Release,
    Hold,
    #[serde(other)]
    Other,
}

/// One of this well's resources in the server's books.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Listed {
    pub id: u32,
    #[serde(default)]
    pub job: u32,
    pub rtype: String,
    pub state: ServerState,
    pub want: Want,
}

#[derive(Deserialize)]
struct Listing {
    resources: Vec<Listed>,
}

#[derive(Deserialize)]
struct Renewed {
    expires_at_ms: u64,
}

#[derive(Serialize)]
struct LeaseRequest<'a> {
    free: &'a BTreeMap<String, u16>,
    wait_ms: u64,
    /// What this runner is destroying already: not news to wait for.
    destroying: &'a std::collections::BTreeSet<u32>,
}

#[derive(Serialize)]
struct Failed<'a> {
    reason: &'a str,
    retryable: bool,
}

#[derive(Serialize)]
struct Ready<'a> {
    metadata: &'a BTreeMap<String, String>,
    secrets: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct DestroyFailed<'a> {
    reason: &'a str,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The server could not be reached, or did not answer in time, or
    /// answered something that is not the protocol.
    #[error("transport: {0}")]
    Transport(String),
    /// The server answered with an error.
    #[error("{status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
}

impl CallError {
    /// Whether the same call may succeed later. 503 is the protocol's
    /// "nothing changed, retry"; other 5xx, 408 and 429 are the network's
    /// and proxies' versions of it. 401 is retried too: a report is never
    /// dropped because of a token an operator may yet fix, and the wait is
    /// capped. The rest of 4xx (400, 403, 404, 409, 410) is final: the
    /// same request will get the same answer.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Status { status, .. } => matches!(status, 401 | 408 | 429) || *status >= 500,
        }
    }

    /// The HTTP status, if the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Transport(_) => None,
            CallError::Status { status, .. } => Some(*status),
        }
    }

    /// The protocol's error code, if the server answered with one.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            CallError::Transport(_) => "",
            CallError::Status { code, .. } => code,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A well's connection to the server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    backoff: Backoff,
}

impl Client {
    /// A client for the server at `url` (`http://host:port`, no path).
    pub fn new(url: &str, token: &str, backoff: Backoff) -> Result<Client, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CallError::Transport(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            backoff,
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                CallError::Transport(format!("a {status} answer that is not the protocol: {e}"))
            });
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.code, b.message),
            Err(_) => (
                String::new(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(CallError::Status {
            status: status.as_u16(),
            code,
            message,
        })
    }

    /// `send`, again and again with back-off while the failure is
    /// retryable. Callers that must not wait forever run this on a task
    /// they can abort.
    async fn send_retrying<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T, CallError> {
        let mut attempt: u32 = 0;
        loop {
            match self.send(method.clone(), path, body, CALL_TIMEOUT).await {
                Err(e) if e.is_retryable() => {
                    let wait = self.backoff.wait_jittered(attempt);
                    // The first few are routine (a busy server); after that
                    // somebody should know.
                    if attempt < 3 {
                        tracing::debug!(%path, error = %e, ?wait, "retrying");
                    } else {
                        tracing::warn!(%path, error = %e, attempt, ?wait, "retrying");
                    }
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
                other => return other,
            }
        }
    }

    /// One lease poll: asks for work for `free` and waits up to `wait_ms`.
    /// Not retried here: the poller retries with its own view of `free`.
    pub async fn lease(&self, asking: &Asking, wait_ms: u64) -> Result<LeaseAnswer, CallError> {
        let body = LeaseRequest {
            free: &asking.free,
            wait_ms,
            destroying: &asking.destroying,
        };
        let timeout = Duration::from_millis(wait_ms) + POLL_SLACK;
        self.send(reqwest::Method::POST, "/0/well/lease", Some(&body), timeout)
            .await
    }

    /// One renewal; the new expiry.
    pub async fn renew(&self, lease: u32) -> Result<u64, CallError> {
        // The renewal carries nothing; an empty object keeps it a
        // well-formed JSON request should the server ever read a body.
        let r: Renewed = self
            .send(
                reqwest::Method::POST,
                &format!("/0/well/leases/{lease}/renew"),
                Some(&serde_json::json!({})),
                CALL_TIMEOUT,
            )
            .await?;
        Ok(r.expires_at_ms)
    }

    pub async fn ready(&self, resource: u32, created: &Created) -> Result<(), CallError> {
        let body = Ready {
            metadata: &created.metadata,
            secrets: &created.secrets,
        };
        let path = format!("/0/well/resources/{resource}/ready");
        let _: IgnoredAny = self
            .send_retrying(reqwest::Method::POST, &path, Some(&body))
            .await?;
        Ok(())
    }

    pub async fn failed(
        &self,
        resource: u32,
        reason: &str,
        retryable: bool,
    ) -> Result<(), CallError> {
        let body = Failed { reason, retryable };
        let path = format!("/0/well/resources/{resource}/failed");
        let _: IgnoredAny = self
            .send_retrying(reqwest::Method::POST, &path, Some(&body))
            .await?;
        Ok(())
    }

    /// Confirms a destruction. 404 and 410 mean the server has already
    /// forgotten the resource, which is what a confirmation asks for.
    pub async fn confirm_destroyed(&self, resource: u32) -> Result<(), CallError> {
        let path = format!("/0/well/resources/{resource}");
        match self
            .send_retrying::<IgnoredAny>(reqwest::Method::DELETE, &path, None::<&()>)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.status(), Some(404 | 410)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn destroy_failed(&self, resource: u32, reason: &str) -> Result<(), CallError> {
        let path = format!("/0/well/resources/{resource}/destroy-failed");
        let _: IgnoredAny = self
            .send_retrying(
                reqwest::Method::POST,
                &path,
                Some(&DestroyFailed { reason }),
            )
            .await?;
        Ok(())
    }

    /// Every resource of this well in the server's books.
    pub async fn resources(&self) -> Result<Vec<Listed>, CallError> {
        let l: Listing = self
            .send_retrying(reqwest::Method::GET, "/0/well/resources", None::<&()>)
            .await?;
        Ok(l.resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> CallError {
        CallError::Status {
            status,
            code: String::new(),
            message: String::new(),
        }
    }

    #[test]
    fn which_failures_are_retried() {
        assert!(CallError::Transport("refused".into()).is_retryable());
        for s in [401, 408, 429, 500, 502, 503, 504] {
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [400, 403, 404, 409, 410, 413] {
            assert!(!status(s).is_retryable(), "{s}");
        }
    }

    #[test]
    fn answers_parse_and_tolerate_what_is_new() {
        let a: LeaseAnswer = serde_json::from_str(
            r#"{"lease": {"id": 7, "job": 3, "rtype": "pg", "resources": [11, 12],
                "deadline_ms": 5, "expires_at_ms": 6}, "destroy": [4]}"#,
        )
        .expect("a lease answer");
        assert_eq!(a.lease.map(|l| l.resources), Some(vec![11, 12]));
        assert_eq!(a.destroy, [4]);
        let l: Listing = serde_json::from_str(
            r#"{"resources": [{"id": 1, "job": 2, "rtype": "pg", "state": "frozen", "want": "hold"}]}"#,
        )
        .expect("a listing");
        assert_eq!(l.resources[0].state, ServerState::Other);
        assert_eq!(l.resources[0].want, Want::Hold);
    }
}
