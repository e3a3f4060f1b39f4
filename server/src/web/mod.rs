//! The dashboard: read-only pages for people, at `/`, beside the API.
//!
//! Pages are rendered on the server (`pages.rs`) from the same answers the
//! API gives, by the same functions, for the same caller: what a token may
//! not read through the API, its page does not show. The token is kept in
//! a cookie (HttpOnly, SameSite=Strict, Secure behind TLS) that a login
//! form sets; a visit without one is refused with that form. The job page
//! follows its job with a little JavaScript (`dashboard.js`) that long-polls
//! `/jobs/{id}/live`.

mod pages;

use crate::api::{Api, ApiError, Caller};
use crate::auth::Principal;
use maud::Markup;
use warp::http::header::{self, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// The cookie that carries the token.
pub const COOKIE: &str = "aquifer_token";
/// The largest login form read.
pub const FORM_BYTES_MAX: u64 = 4096;
/// How long a live request waits for news.
const LIVE_WAIT_MS: u64 = 20_000;

/// Every page of the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Queues, resources, wells and factories.
    Home,
    /// Jobs, filtered by state and owner.
    Jobs,
    /// One job: its state, its explanation and its stream, live.
    Job(u32),
    /// What has happened to a job since a point in its stream (JSON), for
    /// the job page's script.
    Live(u32),
    /// `GET` the form, `POST` a token.
    Login,
    /// `POST`: forget the token.
    Logout,
    Style,
    Script,
}

impl Page {
    /// Every page once (ids 0), for tests that must cover them all.
    pub const EVERY: &[Page] = &[
        Page::Home,
        Page::Jobs,
        Page::Job(0),
        Page::Live(0),
        Page::Login,
        Page::Logout,
        Page::Style,
        Page::Script,
    ];

    /// The method and path, with `{job}` for the id.
    #[must_use]
    pub fn template(self) -> (Method, &'static str) {
        match self {
            Page::Home => (Method::GET, "/"),
            Page::Jobs => (Method::GET, "/jobs"),
            Page::Job(_) => (Method::GET, "/jobs/{job}"),
            Page::Live(_) => (Method::GET, "/jobs/{job}/live"),
            Page::Login => (Method::POST, "/login"),
            Page::Logout => (Method::POST, "/logout"),
            Page::Style => (Method::GET, "/dashboard.css"),
            Page::Script => (Method::GET, "/dashboard.js"),
        }
    }

    /// Whether the page needs a signed-in caller.
    fn needs_login(self) -> bool {
        !matches!(
            self,
            Page::Login | Page::Logout | Page::Style | Page::Script
        )
    }
}

/// The page `path` names, if it names one; `None` for the API's paths.
/// A page's path with a method it does not take is a 405.
pub fn resolve(method: &Method, path: &str) -> Option<Result<Page, ApiError>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = *method == Method::GET || *method == Method::HEAD;
    let post = *method == Method::POST;
    let (page, ok) = match segments.as_slice() {
        [""] => (Page::Home, get),
        ["jobs"] | ["jobs", ""] => (Page::Jobs, get),
        ["jobs", id] => (Page::Job(id.parse().ok()?), get),
        ["jobs", id, "live"] => (Page::Live(id.parse().ok()?), get),
        ["login"] => (Page::Login, get || post),
        ["logout"] => (Page::Logout, post),
        ["dashboard.css"] => (Page::Style, get),
        ["dashboard.js"] => (Page::Script, get),
        _ => return None,
    };
    Some(if ok {
        Ok(page)
    } else {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this page does not take that method",
        ))
    })
}

/// A request for a page, as far as the dashboard reads it.
pub struct Visit {
    pub method: Method,
    pub query: String,
    pub cookie: Option<String>,
    /// `X-Forwarded-Proto`: `https` behind a proxy that ends TLS.
    pub forwarded_proto: Option<String>,
    pub origin: Option<String>,
    pub host: Option<String>,
    /// The login form, for `POST /login`.
    pub form: bytes::Bytes,
}

/// Answers a visit to `page`.
pub async fn serve(api: &Api, page: Page, visit: Visit) -> Response {
    let mut response = match answer(api, page, &visit).await {
        Ok(r) => r,
        Err(e) => html(e.status, pages::trouble(&e.message)),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn answer(api: &Api, page: Page, visit: &Visit) -> Result<Response, ApiError> {
    match page {
        Page::Style => return Ok(asset("text/css", include_str!("dashboard.css"))),
        Page::Script => {
            return Ok(asset("text/javascript", include_str!("dashboard.js")));
        }
        Page::Login if visit.method == Method::POST => return login(api, visit).await,
        Page::Login => return Ok(html(StatusCode::OK, pages::login(None))),
        Page::Logout => {
            same_origin(visit)?;
            return Ok(see_other("/login", Some(&cookie(visit, ""))));
        }
        Page::Home | Page::Jobs | Page::Job(_) | Page::Live(_) => {}
    }
    debug_assert!(page.needs_login());
    let Some(caller) = signed_in(api, visit).await else {
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("sign in with a token to see this page")),
        ));
    };
    match page {
        Page::Home => pages::home(api, &caller)
            .await
            .map(|m| html(StatusCode::OK, m)),
        Page::Jobs => {
            // A filter form's "any" is an empty value: no filter.
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&visit.query)
                .map_err(|e| ApiError::bad_request("bad_query", e.to_string()))?;
            let pairs: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
            let q = serde_urlencoded::from_str(&query).map_err(|e| {
                ApiError::bad_request("bad_query", format!("the filter is not valid: {e}"))
            })?;
            pages::jobs(api, &caller, q)
                .await
                .map(|m| html(StatusCode::OK, m))
        }
        Page::Job(id) => pages::job(api, caller, id)
            .await
            .map(|m| html(StatusCode::OK, m)),
        Page::Live(id) => {
            let q: LiveQuery = serde_urlencoded::from_str(&visit.query).map_err(|e| {
                ApiError::bad_request("bad_query", format!("the query is not valid: {e}"))
            })?;
            let live = pages::live(api, caller, id, q.after, LIVE_WAIT_MS).await?;
            Ok(warp::reply::json(&live).into_response())
        }
        Page::Login | Page::Logout | Page::Style | Page::Script => unreachable!("answered above"),
    }
}

use warp::Reply as _;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    #[serde(default)]
    after: u64,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

/// Checks the token of the form as the API would, and keeps it in the
/// cookie if it belongs to a person (a user or the admin).
async fn login(api: &Api, visit: &Visit) -> Result<Response, ApiError> {
    same_origin(visit)?;
    let form: LoginForm = serde_urlencoded::from_bytes(&visit.form)
        .map_err(|_| ApiError::bad_request("bad_form", "the form carries no token"))?;
    let token = form.token.trim();
    match caller_of(api, token).await {
        Some(_) => Ok(see_other("/", Some(&cookie(visit, token)))),
        None => Ok(html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("that token is not a user's or an admin's token")),
        )),
    }
}

/// The caller the cookie speaks for, if it holds a person's token.
async fn signed_in(api: &Api, visit: &Visit) -> Option<Caller> {
    let cookies = visit.cookie.as_deref()?;
    let token = (cookies.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find_map(|(k, v)| (k == COOKIE).then_some(v))?;
    caller_of(api, token).await
}

async fn caller_of(api: &Api, token: &str) -> Option<Caller> {
    if token.is_empty() {
        return None;
    }
    let caller = api.caller(Some(format!("Bearer {token}"))).await.ok()?;
    matches!(caller.principal, Principal::User(_) | Principal::Admin).then_some(caller)
}

/// Refuses a form posted from another site: the cookie is SameSite=Strict,
/// but a login or logout should not be forced on anybody either.
fn same_origin(visit: &Visit) -> Result<(), ApiError> {
    let (Some(origin), Some(host)) = (&visit.origin, &visit.host) else {
        return Ok(());
    };
    let origin_host = origin.split_once("://").map_or(origin.as_str(), |(_, h)| h);
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this form was posted from another site",
        ))
    }
}

/// The cookie that keeps `token` (or, empty, forgets it).
fn cookie(visit: &Visit, token: &str) -> String {
    let secure =
        (visit.forwarded_proto.as_deref()).is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let age = if token.is_empty() { "; Max-Age=0" } else { "" };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}{age}")
}

fn html(status: StatusCode, markup: Markup) -> Response {
    let mut r = warp::reply::html(markup.into_string()).into_response();
    *r.status_mut() = status;
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    (r.headers_mut()).insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn see_other(to: &'static str, set_cookie: Option<&str>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(to));
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    r
}
