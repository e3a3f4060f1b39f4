//! The one table that sends each (method, path) to its handler. It sits
//! above the handlers and `http`, so no handler module imports it back.

use super::http::{Req, Resp};
use super::state::State;
use super::{auth, projects, system};
use chrono::{DateTime, Utc};
use warp::http::Method;

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
