//! The fake's door: every call passes it on the way in, where it may be
//! delayed, held until a test releases it, failed with an injected error,
//! or failed with a 500 before or after it takes effect; and the warp
//! server that turns HTTP into the fake's requests and its answers back.

use super::http::{Req, Resp};
use super::route::route;
use super::state::State;
use chrono::Utc;
use rand::Rng as _;
use rand::rngs::StdRng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use warp::Filter as _;
use warp::http::Method;

/// Random failures and delays for every call.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The chance that a call answers 500.
    pub error_rate: f64,
    /// Of those failures, the share that happen after the call took
    /// effect (its answer lost), the others before.
    pub after_share: f64,
    /// Each call first waits a uniform time up to this.
    pub delay_ms: u64,
    pub seed: u64,
}

/// An error answered to the next `times` calls whose method and path
/// match: instead of the call, or (`after`) once the call took effect, as
/// when an answer is lost on its way back.
pub(super) struct Injected {
    pub(super) method: Method,
    pub(super) path_prefix: String,
    pub(super) times: u32,
    pub(super) after: bool,
    pub(super) status: u16,
    pub(super) code: String,
    pub(super) message: String,
}

/// A call held at the door until released.
pub(super) struct HoldRec {
    pub(super) method: Method,
    pub(super) path_prefix: String,
    pub(super) arrived: Arc<Notify>,
    pub(super) release: Arc<Notify>,
}

/// The handle a test holds on a held call.
pub struct Held {
    pub(super) arrived: Arc<Notify>,
    pub(super) release: Arc<Notify>,
}

impl Held {
    /// Waits until a matching call has arrived (and is held).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the held call through (or the next one, if none has come).
    pub fn release(&self) {
        self.release.notify_one();
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) faults: Mutex<(Faults, StdRng)>,
    pub(super) injected: Mutex<Vec<Injected>>,
    pub(super) holds: Mutex<Vec<HoldRec>>,
    pub(super) calls: AtomicU64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked leaves the state as it was at the panic;
    // the test that caused it fails anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a call's roll of the dice decided.
enum Fate {
    Normal,
    FailBefore,
    FailAfter,
}

impl Shared {
    fn roll(&self) -> (Duration, Fate) {
        let mut g = lock(&self.faults);
        let (f, rng) = &mut *g;
        let delay = if f.delay_ms > 0 {
            Duration::from_millis(rng.random_range(0..=f.delay_ms))
        } else {
            Duration::ZERO
        };
        let fate = if f.error_rate > 0.0 && rng.random_bool(f.error_rate.clamp(0.0, 1.0)) {
            if rng.random_bool(f.after_share.clamp(0.0, 1.0)) {
                Fate::FailAfter
            } else {
                Fate::FailBefore
            }
        } else {
            Fate::Normal
        };
        (delay, fate)
    }

    /// The injected error for this call, if any, and whether it comes
    /// after the call.
    fn injected(&self, method: &Method, path: &str) -> Option<(Resp, bool)> {
        let mut all = lock(&self.injected);
        let at = all
            .iter()
            .position(|i| i.method == method && path.starts_with(&i.path_prefix))?;
        let i = &mut all[at];
        let resp = (Resp::error(i.status, &i.code, &i.message), i.after);
        i.times -= 1;
        if i.times == 0 {
            all.remove(at);
        }
        Some(resp)
    }

    fn hold(&self, method: &Method, path: &str) -> Option<HoldRec> {
        let mut all = lock(&self.holds);
        let at = all
            .iter()
            .position(|h| h.method == method && path.starts_with(&h.path_prefix))?;
        Some(all.remove(at))
    }

    async fn handle(&self, req: Req, path: String) -> Resp {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (delay, fate) = self.roll();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(h) = self.hold(&req.method, &path) {
            h.arrived.notify_one();
            h.release.notified().await;
        }
        let injected = self.injected(&req.method, &path);
        if let Some((r, false)) = injected {
            return r;
        }
        if matches!(fate, Fate::FailBefore) {
            return Resp::error(500, "Internal", "injected fault, before the call");
        }
        let resp = route(&mut lock(&self.state), &req, Utc::now());
        if let Some((r, true)) = injected {
            return r;
        }
        if matches!(fate, Fate::FailAfter) {
            return Resp::error(500, "Internal", "injected fault, after the call");
        }
        resp
    }
}

/// Serves the fake until `shutdown`.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let routes = warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap,
                  body: bytes::Bytes| {
                let shared = shared.clone();
                async move {
                    let path = path.as_str().to_string();
                    let req = request(method, &path, &query, &headers, body.to_vec());
                    reply(shared.handle(req, path).await)
                }
            },
        );
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

fn request(
    method: Method,
    path: &str,
    query: &str,
    headers: &warp::http::HeaderMap,
    body: Vec<u8>,
) -> Req {
    let decode = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("x={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map_or_else(|| s.to_string(), |(_, v)| v)
    };
    let segs = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let query = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let session = header("cookie").and_then(|c| {
        c.split(';')
            .find_map(|kv| kv.trim().strip_prefix("session="))
            .map(str::to_string)
    });
    Req {
        method,
        segs,
        query,
        bearer,
        session,
        body,
    }
}

fn reply(r: Resp) -> warp::reply::Response {
    let mut res = warp::reply::Response::new(r.body.into());
    *res.status_mut() = warp::http::StatusCode::from_u16(r.status)
        .unwrap_or(warp::http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    if !res_body_empty(r.status) {
        h.insert(
            warp::http::header::CONTENT_TYPE,
            warp::http::HeaderValue::from_static("application/json"),
        );
    }
    if let Some(c) = r
        .set_cookie
        .and_then(|c| warp::http::HeaderValue::from_str(&c).ok())
    {
        h.insert(warp::http::header::SET_COOKIE, c);
    }
    res
}

/// 204s carry no body and so no content type.
fn res_body_empty(status: u16) -> bool {
    status == 204
}
