//! The fake's HTTP side: a request as the handlers see it, and answers in
//! Nexus's shapes (its error body, its status codes, its pages). The
//! handlers use it; the table that sends a request to them is `route`.

use super::state::{Actor, State};
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
