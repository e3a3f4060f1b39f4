//! The HTTP API (JSON over HTTP, bearer tokens, paths under `/0/`).
//!
//! Each endpoint is a plain async function from the caller and the request
//! to a status and a body, or an `ApiError`; warp only routes. Errors of
//! every kind become one JSON shape in `error.rs`.

pub mod admin;
mod error;
pub mod jobs;

pub use error::ApiError;

use crate::auth::{AuthError, Principal};
use crate::driver::Handle;
use crate::store::Store;
use aquifer_core::Privilege;
use serde::Serialize;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use warp::Filter;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

/// The largest request body accepted.
pub const BODY_BYTES_MAX: u64 = 1024 * 1024;

pub struct Api {
    pub handle: Handle,
    pub store: Store,
    /// The operator's token from the configuration, if any: it acts as
    /// admin and is compared in constant time.
    pub bootstrap_token: Option<String>,
}

/// Who is calling, as far as the endpoint needs to know.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub privileges: BTreeSet<Privilege>,
}

impl Api {
    async fn caller(&self, authorization: Option<String>) -> Result<Caller, ApiError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(AuthError::Missing)?
            .trim();
        if let Some(boot) = &self.bootstrap_token
            && crate::auth::same_secret(token, boot)
        {
            return Ok(Caller {
                principal: Principal::Admin,
                privileges: BTreeSet::new(),
            });
        }
        let principal = self.store.authenticate(token).await?;
        let privileges = match principal {
            // A token of a user who no longer exists speaks for nobody.
            Principal::User(user) => self
                .store
                .user_privileges(user)
                .await?
                .ok_or(AuthError::Invalid)?,
            Principal::Admin
            | Principal::Well(_)
            | Principal::Factory(_)
            | Principal::Worker(_)
            | Principal::Job(_) => BTreeSet::new(),
        };
        Ok(Caller {
            principal,
            privileges,
        })
    }
}

/// Wall-clock time for records (token and user creation). Scheduling time
/// is the driver's, not this.
fn now() -> aquifer_core::Time {
    use crate::driver::Clock as _;
    crate::driver::SystemClock.now()
}

/// Parses a JSON body, saying what is wrong with it in words.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("bad_json", format!("the body is not a valid request: {e}"))
    })
}

fn reply<T: Serialize>(result: Result<(StatusCode, T), ApiError>) -> Response {
    match result {
        Ok((status, body)) => {
            warp::reply::with_status(warp::reply::json(&body), status).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Routes a request with the caller resolved to an endpoint function.
fn authed<F, Fut, T>(
    api: Arc<Api>,
    f: F,
) -> impl Fn(Option<String>) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>> + Clone
where
    F: Fn(Arc<Api>, Caller) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(StatusCode, T), ApiError>> + Send + 'static,
    T: Serialize,
{
    move |authorization| {
        let (api, f) = (api.clone(), f.clone());
        Box::pin(async move {
            match api.caller(authorization).await {
                Ok(caller) => reply(f(api, caller).await),
                Err(e) => e.into_response(),
            }
        })
    }
}

fn json_body() -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|ct: Option<String>| async move {
            // `application/json`, with or without parameters (charset).
            let essence = ct.as_deref().and_then(|c| c.split(';').next());
            if essence.is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json")) {
                Ok(())
            } else {
                Err(warp::reject::custom(NotJson))
            }
        })
        .untuple_one()
        .and(warp::body::content_length_limit(BODY_BYTES_MAX))
        .and(warp::body::bytes())
}

/// A body that is not declared as JSON.
#[derive(Debug)]
struct NotJson;

impl warp::reject::Reject for NotJson {}

/// Every route of the API.
pub fn routes(api: Arc<Api>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let auth = warp::header::optional::<String>("authorization");
    let submit = warp::path!("0" / "jobs")
        .and(warp::post())
        .and(auth)
        .and(json_body())
        .then({
            let api = api.clone();
            move |authorization: Option<String>, body: bytes::Bytes| {
                let run = authed(api.clone(), move |api: Arc<Api>, caller| {
                    let body = body.clone();
                    async move { jobs::submit(&api, caller, body).await }
                });
                run(authorization)
            }
        });
    let show = warp::path!("0" / "jobs" / u32)
        .and(warp::get())
        .and(auth)
        .then({
            let api = api.clone();
            move |id: u32, authorization: Option<String>| {
                authed(api.clone(), move |api: Arc<Api>, caller| async move {
                    jobs::show(&api, caller, id).await
                })(authorization)
            }
        });
    let cancel = warp::path!("0" / "jobs" / u32 / "cancel")
        .and(warp::post())
        .and(auth)
        .then({
            let api = api.clone();
            move |id: u32, authorization: Option<String>| {
                authed(api.clone(), move |api: Arc<Api>, caller| async move {
                    jobs::cancel(&api, caller, id).await
                })(authorization)
            }
        });
    let admin = |path: &'static str| {
        warp::path("0")
            .and(warp::path("admin"))
            .and(warp::path(path))
            .and(warp::path::end())
            .and(warp::post())
            .and(auth)
            .and(json_body())
    };
    let types = admin("types").then({
        let api = api.clone();
        move |authorization: Option<String>, body: bytes::Bytes| {
            authed(api.clone(), move |api: Arc<Api>, caller| {
                let body = body.clone();
                async move { admin::create_type(&api, caller, &body).await }
            })(authorization)
        }
    });
    let targets = admin("targets").then({
        let api = api.clone();
        move |authorization: Option<String>, body: bytes::Bytes| {
            authed(api.clone(), move |api: Arc<Api>, caller| {
                let body = body.clone();
                async move { admin::create_target(&api, caller, &body).await }
            })(authorization)
        }
    });
    let users = admin("users").then({
        let api = api.clone();
        move |authorization: Option<String>, body: bytes::Bytes| {
            authed(api.clone(), move |api: Arc<Api>, caller| {
                let body = body.clone();
                async move { admin::create_user(&api, caller, &body, now()).await }
            })(authorization)
        }
    });
    submit
        .or(show)
        .unify()
        .or(cancel)
        .unify()
        .or(types)
        .unify()
        .or(targets)
        .unify()
        .or(users)
        .unify()
        .recover(|r: warp::Rejection| async move { Ok::<_, Infallible>(rejected(&r)) })
        .unify()
}

/// warp's own refusals (no route, wrong method, wrong content type, body
/// too large) in the API's error shape.
fn rejected(r: &warp::Rejection) -> Response {
    let e = if r.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("bodies are at most {BODY_BYTES_MAX} bytes"),
        )
    } else if r.find::<NotJson>().is_some() {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "send the body as Content-Type: application/json",
        )
    } else if r.find::<warp::reject::InvalidHeader>().is_some() {
        ApiError::bad_request("bad_header", "a request header could not be read")
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send a Content-Length",
        )
    } else {
        tracing::debug!(rejection = ?r, "refused by routing");
        ApiError::bad_request("bad_request", "the request could not be read")
    };
    e.into_response()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    api: Arc<Api>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(api))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}
