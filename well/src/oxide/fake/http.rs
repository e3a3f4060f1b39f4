//! The fake's HTTP side: a request as the handlers see it, answers in
//! Nexus's shapes (its error body, its status codes, its pages), and the
//! one table that sends each (method, path) to its handler.

use super::state::{Actor, State};
use super::{auth, projects, system};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use warp::http::Method;

pub struct Req {
    pub method: Method,
    /// The path's segments, percent-decoded.
    pub segs: Vec<String>,
    pub query: BTreeMap<String, String>,
    pub bearer: Option<String>,
    pub session: Option<String>,
    pub body: Vec<u8>,
}

pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    pub set_cookie: Option<String>,
}

/// A handler's answer; the error side is an answer too, so handlers can
/// use `?` on every refusal.
pub type Answer = Result<Resp, Resp>;

impl Resp {
    pub fn json<T: Serialize>(status: u16, v: &T) -> Resp {
        Resp {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            set_cookie: None,
        }
    }

    #[must_use]
    pub fn empty(status: u16) -> Resp {
        Resp {
            status,
            body: Vec::new(),
            set_cookie: None,
        }
    }

    /// Nexus's error body.
    #[must_use]
    pub fn error(status: u16, code: &str, message: &str) -> Resp {
        let e = oxide::types::Error {
            error_code: Some(code.into()),
            message: message.into(),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        Resp::json(status, &e)
    }
}

pub fn bad(message: &str) -> Resp {
    Resp::error(400, "InvalidRequest", message)
}

pub fn exists(what: &str, name: &str) -> Resp {
    Resp::error(
        400,
        "ObjectAlreadyExists",
        &format!("already exists: {what} \"{name}\""),
    )
}

/// Also what a caller without read access gets, as Nexus hides what one
/// may not see.
pub fn not_found(what: &str, sel: &str) -> Resp {
    let how = if sel.parse::<uuid::Uuid>().is_ok() {
        "id"
    } else {
        "name"
    };
    Resp::error(
        404,
        "ObjectNotFound",
        &format!("not found: {what} with {how} \"{sel}\""),
    )
}

pub fn forbidden() -> Resp {
    Resp::error(403, "Forbidden", "Forbidden")
}

pub fn unauthenticated() -> Resp {
    Resp::error(401, "Unauthorized", "credentials missing or invalid")
}

impl Req {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Resp> {
        serde_json::from_slice(&self.body)
            .map_err(|e| bad(&format!("unable to parse JSON body: {e}")))
    }

    pub fn form<T: DeserializeOwned>(&self) -> Result<T, Resp> {
        serde_urlencoded::from_bytes(&self.body)
            .map_err(|e| bad(&format!("unable to parse form body: {e}")))
    }

    #[must_use]
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// One page of `items` after the caller's `page_token`, `limit` long (or
/// the fake's page size), with the token of the next if there is one.
pub fn page<T: Serialize>(req: &Req, items: Vec<T>, page_size: usize) -> Answer {
    let start: usize = match req.q("page_token") {
        Some(t) => t.parse().map_err(|_| bad("bad page token"))?,
        None => 0,
    };
    let limit = match req.q("limit") {
        Some(l) => l.parse().map_err(|_| bad("bad limit"))?,
        None => page_size.max(1),
    };
    let total = items.len();
    let end = start.saturating_add(limit).min(total);
    let next = (end < total).then(|| end.to_string());
    let items: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    Ok(Resp::json(
        200,
        &serde_json::json!({"items": items, "next_page": next}),
    ))
}

/// The caller, or 401.
pub fn actor(st: &State, req: &Req, now: DateTime<Utc>) -> Result<Actor, Resp> {
    st.authenticate(req.bearer.as_deref(), req.session.as_deref(), now)
        .ok_or_else(unauthenticated)
}

/// Sends the request to its handler. Every call runs with the state
/// locked, so each is atomic, as a Nexus transaction would be.
pub fn route(st: &mut State, req: &Req, now: DateTime<Utc>) -> Resp {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let m = &req.method;
    let answer = match segs.as_slice() {
        ["v1", "login", silo, "local"] if m == Method::POST => auth::login(st, req, silo),
        ["v1", "logout"] if m == Method::POST => auth::logout(st, req, now),
        ["device", "auth"] if m == Method::POST => auth::device_auth(st, req),
        ["device", "confirm"] if m == Method::POST => auth::device_confirm(st, req, now),
        ["device", "token"] if m == Method::POST => auth::device_token(st, req),
        ["v1", "me"] if m == Method::GET => auth::me(st, req, now),
        ["v1", "auth-settings"] if m == Method::GET => auth::auth_settings(st, req, now),
        ["v1", "users"] if m == Method::GET => auth::users(st, req, now),
        ["v1", "users", id, "logout"] if m == Method::POST => auth::user_logout(st, req, id, now),
        ["v1", "system", rest @ ..] => system::route(st, req, m, rest, now),
        ["v1", "projects"] if m == Method::GET => projects::list(st, req, now),
        ["v1", "projects"] if m == Method::POST => projects::create(st, req, now),
        ["v1", "projects", p] if m == Method::GET => projects::view(st, req, p, now),
        ["v1", "projects", p] if m == Method::DELETE => projects::delete(st, req, p, now),
        ["v1", "projects", p, "policy"] if m == Method::GET => projects::policy(st, req, p, now),
        ["v1", "projects", p, "policy"] if m == Method::PUT => {
            projects::set_policy(st, req, p, now)
        }
        ["v1", "instances", id, "stop"] if m == Method::POST => {
            projects::stop_instance(st, req, id, now)
        }
        ["v1", "vpcs"] if m == Method::POST => projects::create_vpc(st, req, now),
        ["v1", kind] if m == Method::GET => projects::list_things(st, req, kind, now),
        ["v1", kind, id] if m == Method::DELETE => projects::delete_thing(st, req, kind, id, now),
        _ => Err(Resp::error(
            404,
            "NotFound",
            &format!("the fake Oxide API has no {m} {}", req.segs.join("/")),
        )),
    };
    answer.unwrap_or_else(|e| e)
}
