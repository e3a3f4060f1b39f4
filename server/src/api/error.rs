//! API errors: every failure becomes one JSON reply, here, with a status,
//! a stable code and a message a person can act on.

use crate::auth::AuthError;
use crate::driver::DriverError;
use crate::store::StoreError;
use aquifer_core::Rejection;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    #[must_use]
    pub fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
        };
        let json = warp::reply::json(&body);
        warp::reply::with_status(json, self.status).into_response()
    }
}

use warp::Reply as _;

/// The status each rejection code answers with.
fn status_of(rejection: &Rejection) -> StatusCode {
    match rejection {
        Rejection::UnknownJob { .. }
        | Rejection::UnknownLease { .. }
        | Rejection::UnknownResource { .. }
        | Rejection::UnknownWorker { .. }
        | Rejection::UnknownWell { .. }
        | Rejection::UnknownFactory { .. } => StatusCode::NOT_FOUND,
        Rejection::Gone { .. } => StatusCode::GONE,
        Rejection::NotYours { .. } | Rejection::PrivilegeMissing { .. } => StatusCode::FORBIDDEN,
        Rejection::LeaseExpired { .. }
        | Rejection::Duplicate { .. }
        | Rejection::WrongState { .. }
        | Rejection::JobEnded { .. }
        | Rejection::DependencyRetired { .. }
        | Rejection::NotAwaitingInputs { .. }
        | Rejection::JobNotRunning { .. }
        | Rejection::JobNotReady { .. }
        | Rejection::AlreadyExists { .. } => StatusCode::CONFLICT,
        Rejection::UnknownTarget { .. }
        | Rejection::UnknownType { .. }
        | Rejection::NotServed { .. }
        | Rejection::BadCount { .. }
        | Rejection::LimitExceeded { .. }
        | Rejection::BadName { .. }
        | Rejection::BadPool { .. } => StatusCode::BAD_REQUEST,
    }
}

impl From<DriverError> for ApiError {
    fn from(e: DriverError) -> ApiError {
        match e {
            DriverError::Rejected(r) => ApiError::new(status_of(&r), r.code(), r.to_string()),
            DriverError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            DriverError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Missing | AuthError::Malformed | AuthError::Invalid => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            AuthError::Random(_) | AuthError::Store(_) => {
                tracing::error!(error = %e, "authentication failed inside the server");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server cannot check tokens right now",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "store");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is not available",
        )
    }
}
