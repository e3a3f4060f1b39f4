//! The error shape: every refusal is `{"code", "message"}` with a 4xx
//! status, or 503 when the server could not record a decision (nothing
//! changed: retry). Codes are stable; messages are for people.
//!
//! The codes of the core's rejections are `aquifer_core::Rejection::code()`
//! (`unknown_job`, `duplicate`, `gone`, ...); the API adds its own below.

use serde::{Deserialize, Serialize};

/// An error answer's body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// An error and its causes on one line: an HTTP client's own text hides
/// the cause (refused, timed out, bad certificate) a level or two down.
#[must_use]
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The API's own codes (beside the core's rejection codes).
pub mod code {
    /// 503: the decision could not be recorded; nothing changed.
    pub const UNAVAILABLE: &str = "unavailable";
    /// 503: too many requests are queued or waiting; nothing changed.
    pub const BUSY: &str = "busy";
    /// 401: no token, or one the server does not know (or has revoked).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: the token is good but may not do this.
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const BAD_JSON: &str = "bad_json";
    pub const BAD_QUERY: &str = "bad_query";
    pub const BAD_REPORT: &str = "bad_report";
    pub const CONTENT_TYPE: &str = "content_type";
    pub const TOO_LARGE: &str = "too_large";
    pub const LENGTH_REQUIRED: &str = "length_required";
    pub const NO_ROUTE: &str = "no_route";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const INTERNAL: &str = "internal";
    /// The core's rejection of a report already made.
    pub const DUPLICATE: &str = "duplicate";
    /// The core's rejection of a report on something that left the books.
    pub const GONE: &str = "gone";
    pub const LEASE_EXPIRED: &str = "lease_expired";
    pub const JOB_NOT_RUNNING: &str = "job_not_running";
}
