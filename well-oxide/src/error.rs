//! The failures the oxide well meets, read from the generated client's
//! errors and sorted into what a job owner can act on: worth retrying at
//! once, worth asking again later, or needing an operator.

use aquifer_well::CreateError;
use futures_util::StreamExt as _;
use std::fmt;
use std::future::Future;

/// How much of an error body goes into a reason.
const ERROR_BODY_BYTES_MAX: usize = 4096;

/// What went wrong with one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer: the endpoint is unreachable, TLS failed, or it timed out.
    Unreachable(String),
    /// An answer with an error status.
    Status {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// An answer the well cannot read (often a rack whose API version is
    /// not the one the `oxide` crate was pinned to).
    Protocol(String),
    /// The rack did not get where the well waited for it to in time (an
    /// instance that would not stop).
    Stuck(String),
}

/// A failed step of a create or destroy: what the well was doing and what
/// the API said. Its text is what the job owner reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OxideError {
    pub step: String,
    pub failure: Failure,
}

impl fmt::Display for OxideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Unreachable(m) => write!(f, "{}: cannot reach the Oxide API: {m}", self.step),
            Failure::Status {
                status,
                code,
                message,
            } => {
                write!(f, "{}: {status}", self.step)?;
                if let Some(c) = code {
                    write!(f, " {c}")?;
                }
                write!(f, ": {message}")?;
                match status {
                    401 => write!(
                        f,
                        " (the well's Oxide credential was refused: the operator must renew it)"
                    ),
                    403 => write!(
                        f,
                        " (the well's Oxide credential lacks a privilege: project mode needs a silo admin, silo mode a fleet admin)"
                    ),
                    _ => Ok(()),
                }
            }
            Failure::Protocol(m) => write!(
                f,
                "{}: unreadable answer from the Oxide API (is the oxide crate pinned to the rack's release?): {m}",
                self.step
            ),
            Failure::Stuck(m) => write!(f, "{}: {m}", self.step),
        }
    }
}

impl OxideError {
    pub fn new(step: impl Into<String>, failure: Failure) -> OxideError {
        OxideError {
            step: step.into(),
            failure,
        }
    }

    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match &self.failure {
            Failure::Status { status, .. } => Some(*status),
            Failure::Unreachable(_) | Failure::Protocol(_) | Failure::Stuck(_) => None,
        }
    }

    /// A 404: the thing is gone, which a destroy counts as done.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A create that found its name taken: by this resource's own earlier
    /// attempt, since names carry the resource id.
    #[must_use]
    pub fn is_already_exists(&self) -> bool {
        matches!(&self.failure, Failure::Status { status: 400, code: Some(c), .. } if c == "ObjectAlreadyExists")
    }

    /// Worth trying the same call again at once (after a pause).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match &self.failure {
            Failure::Unreachable(_) => true,
            Failure::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            Failure::Protocol(_) | Failure::Stuck(_) => false,
        }
    }

    /// Whether a create that failed this way may pass later: the job keeps
    /// its place. A refused credential, a missing privilege or an answer
    /// the well cannot read needs an operator, so the job fails with the
    /// reason instead of waiting.
    #[must_use]
    pub fn may_pass_later(&self) -> bool {
        match &self.failure {
            Failure::Unreachable(_) => true,
            Failure::Status {
                status,
                code,
                message,
            } => match status {
                401 | 403 | 404 => false,
                400 => {
                    let m = message.to_ascii_lowercase();
                    code.as_deref() == Some("ObjectAlreadyExists")
                        || m.contains("quota")
                        || m.contains("capacity")
                }
                _ => true,
            },
            Failure::Stuck(_) => true,
            Failure::Protocol(_) => false,
        }
    }

    #[must_use]
    pub fn into_create_error(self) -> CreateError {
        CreateError {
            retryable: self.may_pass_later(),
            reason: format!("oxide: {self}"),
        }
    }

    /// Reads a failed call's answer into an error for `step`.
    pub async fn from_api<E: ErrorBody>(step: &str, e: oxide::Error<E>) -> OxideError {
        let failure = match e {
            oxide::Error::CommunicationError(e) => Failure::Unreachable(chain(&e)),
            oxide::Error::ErrorResponse(rv) => {
                let status = rv.status().as_u16();
                let (code, message) = rv.into_inner().read().await;
                Failure::Status {
                    status,
                    code,
                    message,
                }
            }
            oxide::Error::UnexpectedResponse(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                let (code, message) = parse_error_body(body.as_bytes());
                if (200..300).contains(&status) {
                    Failure::Protocol(format!("unexpected status {status}"))
                } else {
                    Failure::Status {
                        status,
                        code,
                        message,
                    }
                }
            }
            oxide::Error::InvalidRequest(m) => Failure::Protocol(format!("invalid request: {m}")),
            oxide::Error::InvalidResponsePayload(_, e) => {
                Failure::Protocol(format!("unexpected payload: {e}"))
            }
            oxide::Error::ResponseBodyError(e) | oxide::Error::InvalidUpgrade(e) => {
                Failure::Unreachable(chain(&e))
            }
            oxide::Error::Custom(m) => Failure::Protocol(m),
        };
        OxideError::new(step, failure)
    }
}

/// An error body of either shape the generated client hands back: a typed
/// `oxide::types::Error`, or the raw stream of the untyped device-flow
/// endpoints.
pub trait ErrorBody: Send {
    /// The error code and the message.
    fn read(self) -> impl Future<Output = (Option<String>, String)> + Send;
}

impl ErrorBody for oxide::types::Error {
    async fn read(self) -> (Option<String>, String) {
        nexus_error(self)
    }
}

/// The request id goes into the reason so that an operator can find the
/// call in Nexus's logs.
fn nexus_error(e: oxide::types::Error) -> (Option<String>, String) {
    (
        e.error_code,
        format!("{} (request {})", e.message, e.request_id),
    )
}

impl ErrorBody for oxide::ByteStream {
    async fn read(self) -> (Option<String>, String) {
        match read_stream(self, ERROR_BODY_BYTES_MAX).await {
            Ok(body) => parse_error_body(&body),
            Err(e) => (None, format!("unreadable error body: {e}")),
        }
    }
}

/// Up to `max` bytes of a streamed body.
pub async fn read_stream(s: oxide::ByteStream, max: usize) -> Result<Vec<u8>, String> {
    let mut s = s.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| chain(&e))?;
        out.extend_from_slice(&chunk);
        if out.len() > max {
            return Err(format!("more than {max} bytes"));
        }
    }
    Ok(out)
}

/// Nexus's error shape (`{error_code, message, request_id}`), OAuth's
/// (`{error, error_description}`), or text.
fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct OAuth {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<oxide::types::Error>(body) {
        return nexus_error(e);
    }
    if let Ok(e) = serde_json::from_slice::<OAuth>(body) {
        return (Some(e.error), e.error_description.unwrap_or_default());
    }
    let text = String::from_utf8_lossy(body);
    (None, text.chars().take(ERROR_BODY_BYTES_MAX).collect())
}

pub use aquifer_protocol::error::chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>, message: &str) -> OxideError {
        OxideError::new(
            "creating project aq-1",
            Failure::Status {
                status,
                code: code.map(str::to_string),
                message: message.into(),
            },
        )
    }

    #[test]
    fn failures_are_sorted_into_what_may_pass_later() {
        let unreachable = OxideError::new("x", Failure::Unreachable("refused".into()));
        assert!(unreachable.is_transient() && unreachable.may_pass_later());
        assert!(!status(401, None, "credentials missing or invalid").may_pass_later());
        assert!(!status(403, Some("Forbidden"), "Forbidden").may_pass_later());
        assert!(status(507, Some("InsufficientCapacity"), "no room").may_pass_later());
        assert!(status(400, Some("InvalidRequest"), "silo quota exceeded").may_pass_later());
        assert!(!status(400, Some("InvalidRequest"), "bad name").may_pass_later());
        assert!(status(503, None, "busy").is_transient());
        assert!(!status(507, None, "no room").is_transient());
        assert!(status(400, Some("ObjectAlreadyExists"), "exists").is_already_exists());
        let e = status(403, Some("Forbidden"), "Forbidden").into_create_error();
        assert!(!e.retryable);
        assert!(
            e.reason.contains("creating project aq-1: 403"),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("silo admin"), "{}", e.reason);
    }

    #[test]
    fn error_bodies_of_both_shapes_are_read() {
        let nexus = br#"{"request_id":"r1","error_code":"Forbidden","message":"Forbidden"}"#;
        assert_eq!(
            parse_error_body(nexus),
            (Some("Forbidden".into()), "Forbidden (request r1)".into())
        );
        let oauth = br#"{"error":"authorization_pending","error_description":"wait"}"#;
        assert_eq!(
            parse_error_body(oauth),
            (Some("authorization_pending".into()), "wait".into())
        );
        assert_eq!(parse_error_body(b"boom"), (None, "boom".into()));
    }
}
