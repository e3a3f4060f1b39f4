//! The HTTP API (JSON over HTTP, bearer tokens, paths under `/0/`).
//!
//! Each endpoint is a plain async function from the caller and the request
//! to a status and a body, or an `ApiError`; warp only routes. Errors of
//! every kind become one JSON shape in `error.rs`.

pub mod admin;
pub mod agent;
mod error;
pub mod factory;
pub mod http;
pub mod inputs;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod outputs;
pub mod route;
pub mod well;

pub use error::ApiError;

use crate::auth::{AuthError, Principal};
use crate::driver::Handle;
use crate::store::Store;
use crate::wake::{Key, Wakers};
use aquifer_core::Privilege;
use route::Route;
use serde::Serialize;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use warp::Filter;
use warp::Reply as _;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// The largest request body accepted.
pub const BODY_BYTES_MAX: u64 = 1024 * 1024;

/// The largest body of the agent's bootstrap, which anybody may send (the
/// key in it is the credential): a key and its JSON, with room to spare.
pub const BOOTSTRAP_BODY_BYTES_MAX: u64 = 1024;

pub struct Api {
    pub handle: Handle,
    pub store: Store,
    /// The operator's token from the configuration, if any: it acts as
    /// admin and is compared in constant time.
    pub bootstrap_token: Option<String>,
    /// The driver's effect sink, which long-polls wait on.
    pub wakers: Arc<Wakers>,
    /// The core's limits, fixed at start: what can be refused before any
    /// lookup is refused here first.
    pub limits: aquifer_core::Limits,
    /// The HTTP server's bounds (body deadlines and budget among them).
    pub http: http::Http,
    /// Request body bytes being held, in KiB, out of
    /// `http.body_bytes_in_flight_max`.
    body_budget: Arc<tokio::sync::Semaphore>,
    /// Each principal's, and users', share of the long-poll places.
    pub shares: crate::wake::Shares,
    /// Output bytes taken per running job (since this process started), to
    /// bound what one job can write into the store.
    output_bytes: std::sync::Mutex<std::collections::BTreeMap<u32, u64>>,
    /// When each well and factory last called (ms, wall clock), since
    /// this process started.
    contacts: std::sync::Mutex<std::collections::BTreeMap<Principal, u64>>,
    /// Where jobs' files live; none if the operator set no place.
    pub objects: Option<crate::objects::Objects>,
    /// Output begins one at a time, so that two never take one number.
    output_begins: tokio::sync::Mutex<()>,
}

impl Api {
    #[must_use]
    /// `wakers` must be the sink the driver performs effects on, or
    /// long-polls never wake before their time is up.
    pub fn new(
        handle: Handle,
        store: Store,
        bootstrap_token: Option<String>,
        wakers: Arc<Wakers>,
        limits: aquifer_core::Limits,
        http: http::Http,
    ) -> Api {
        Api {
            handle,
            store,
            bootstrap_token,
            wakers,
            limits,
            http,
            body_budget: Arc::new(http.body_budget()),
            shares: crate::wake::Shares::new(http.waits_per_principal_max, http.user_waits_max),
            output_bytes: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            contacts: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            objects: None,
            output_begins: tokio::sync::Mutex::new(()),
        }
    }
}

impl Api {
    /// Keeps jobs' files in `objects`.
    #[must_use]
    pub fn with_objects(mut self, objects: Option<crate::objects::Objects>) -> Api {
        self.objects = objects;
        self
    }

    /// When `service` (a well or a factory) last called, in wall-clock
    /// ms, if it has since this process started.
    #[must_use]
    pub fn last_contact(&self, service: Principal) -> Option<u64> {
        let contacts = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        contacts.get(&service).copied()
    }

    fn contacted(&self, caller: &Caller) {
        if matches!(caller.principal, Principal::Well(_) | Principal::Factory(_)) {
            let mut contacts = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
            contacts.insert(caller.principal, now().ms());
        }
    }

    /// How much of the body budget is free, in bytes (KiB-rounded).
    #[must_use]
    pub fn body_bytes_free(&self) -> u64 {
        u64::try_from(self.body_budget.available_permits()).unwrap_or(u64::MAX) * 1024
    }
}

/// Who is calling, as far as the endpoint needs to know.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub privileges: BTreeSet<Privilege>,
}

/// Privileges that open parts of the admin API to a user; `admin.*`
/// opens all of it. The bootstrap token is admin outright.
pub mod privilege {
    pub const ALL: &str = "admin.*";
    /// Users, their privileges and tokens.
    pub const USERS: &str = "admin.users";
    /// Types, targets, wells and factories.
    pub const REGISTRY: &str = "admin.registry";
    /// The lease hold and held resources.
    pub const HOLDS: &str = "admin.holds";
    /// Reading (and cancelling) every user's jobs.
    pub const JOBS: &str = "admin.jobs";
}

/// Who the caller is, as `GET /0/whoami` shows it.
pub use aquifer_protocol::user::Whoami;

impl Caller {
    /// Whether the caller holds `privilege` (or is admin).
    #[must_use]
    pub fn may(&self, privilege: &str) -> bool {
        match self.principal {
            Principal::Admin => true,
            Principal::User(_) => self
                .privileges
                .iter()
                .any(|p| p.as_str() == privilege || p.as_str() == privilege::ALL),
            Principal::Well(_)
            | Principal::Factory(_)
            | Principal::Worker(_)
            | Principal::Job(_)
            | Principal::Bootstrap(_) => false,
        }
    }

    /// Refuses unless the caller holds `privilege`.
    pub fn require(&self, privilege: &str) -> Result<(), ApiError> {
        if self.may(privilege) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs an admin token or the privilege {privilege:?}"
            )))
        }
    }

    fn describe(&self) -> Whoami {
        use aquifer_protocol::user::PrincipalKind as Kind;
        let (kind, id) = match self.principal {
            Principal::Admin => (Kind::Admin, None),
            Principal::User(id) => (Kind::User, Some(id)),
            Principal::Well(id) => (Kind::Well, Some(id)),
            Principal::Factory(id) => (Kind::Factory, Some(id)),
            Principal::Worker(id) => (Kind::Worker, Some(id)),
            Principal::Job(id) => (Kind::Job, Some(id)),
            Principal::Bootstrap(id) => (Kind::Bootstrap, Some(id)),
        };
        Whoami {
            kind,
            id,
            privileges: self.privileges.clone(),
        }
    }
}

impl Api {
    pub(crate) async fn caller(&self, authorization: Option<String>) -> Result<Caller, ApiError> {
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
            // A bootstrap key is good for the agent's bootstrap only,
            // which checks it itself.
            Principal::Bootstrap(_) => return Err(AuthError::Invalid.into()),
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
/// The wall clock in ms, as records and `last_contact` read it.
#[must_use]
pub fn now_ms() -> u64 {
    now().ms()
}

pub(crate) fn now() -> aquifer_core::Time {
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

/// A request as routing sees it, before the caller is known.
struct Incoming {
    method: Method,
    path: String,
    query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    content_length: Option<u64>,
    headers: warp::http::HeaderMap,
}

/// Every route of the API: one filter that hands the request to
/// `dispatch`, which resolves the route (pure, in `route.rs`), then the
/// caller, then reads the body if the route takes one.
pub fn routes(api: Arc<Api>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method,
                  path: warp::path::FullPath,
                  query,
                  authorization,
                  content_type,
                  content_length,
                  headers,
                  body| {
                let incoming = Incoming {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    authorization,
                    content_type,
                    content_length,
                    headers,
                };
                let api = api.clone();
                async move {
                    let answer = match crate::web::resolve(&incoming.method, &incoming.path) {
                        Some(Ok(page)) => visit(&api, page, incoming, body).await,
                        Some(Err(e)) => Err(e),
                        None => dispatch(&api, incoming, body).await,
                    };
                    match answer {
                        Ok(response) => response,
                        Err(e) => e.into_response(),
                    }
                }
            },
        )
        .recover(|r: warp::Rejection| async move { Ok::<_, Infallible>(rejected(&r)) })
        .unify()
}

/// A visit to a page of the dashboard: the login form's body is read
/// here, under the same bounds as the API's bodies.
async fn visit<S, B>(
    api: &Api,
    page: crate::web::Page,
    incoming: Incoming,
    body: S,
) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let header = |name: &str| {
        (incoming.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let form = if page == crate::web::Page::Login && incoming.method == Method::POST {
        let form = "application/x-www-form-urlencoded";
        read_body(api, &incoming, body, crate::web::FORM_BYTES_MAX, form).await?
    } else {
        Body {
            bytes: bytes::Bytes::new(),
            _held: None,
        }
    };
    let visit = crate::web::Visit {
        method: incoming.method.clone(),
        query: incoming.query.clone(),
        cookie: header("cookie"),
        forwarded_proto: header("x-forwarded-proto"),
        origin: header("origin"),
        host: header("host"),
        form: form.bytes,
    };
    Ok(crate::web::serve(api, page, visit).await)
}

/// A request's body, and its share of the in-flight budget, held until
/// the answer is made.
struct Body {
    bytes: bytes::Bytes,
    _held: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Reads a body of at most `max` bytes declared as `media` (JSON for the
/// API), within the body deadline and the server's budget of body bytes
/// in flight.
async fn read_body<S, B>(
    api: &Api,
    incoming: &Incoming,
    body: S,
    max: u64,
    media: &str,
) -> Result<Body, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    use futures_util::StreamExt as _;
    // `application/json`, with or without parameters (charset).
    let essence = incoming
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next());
    if !essence.is_some_and(|c| c.trim().eq_ignore_ascii_case(media)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            format!("send the body as Content-Type: {media}"),
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("this endpoint takes bodies of at most {max} bytes"),
        )
    };
    let declared = match incoming.content_length {
        None => {
            return Err(ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "send a Content-Length",
            ));
        }
        Some(n) if n > max => return Err(too_large()),
        Some(n) => n,
    };
    // The declared length is what is held: hyper stops a body at it.
    let kib = u32::try_from(declared.div_ceil(1024)).map_err(|_| too_large())?;
    let held = if kib == 0 {
        None
    } else {
        let permit = api.body_budget.clone().try_acquire_many_owned(kib);
        Some(permit.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is reading as many bodies as it holds at once; send it again",
            )
        })?)
    };
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let read = async {
        let mut out = bytes::BytesMut::new();
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
            if out.len() + chunk.remaining() > limit {
                return Err(too_large());
            }
            while chunk.has_remaining() {
                let part = chunk.chunk();
                out.extend_from_slice(part);
                let n = part.len();
                chunk.advance(n);
            }
        }
        Ok(out.freeze())
    };
    let deadline = std::time::Duration::from_millis(api.http.body_read_ms);
    let bytes = tokio::time::timeout(deadline, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "slow_body",
            format!(
                "the body did not arrive within {} ms",
                api.http.body_read_ms
            ),
        )
    })??;
    Ok(Body { bytes, _held: held })
}

async fn dispatch<S, B>(api: &Api, incoming: Incoming, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let route = route::resolve(&incoming.method, &incoming.path)?;
    let caller = if route.needs_token() {
        Some(api.caller(incoming.authorization.clone()).await?)
    } else {
        None
    };
    // The bootstrap's one-time key, when it comes in the header, is
    // checked before a byte of the body is read.
    let boot = match (route, &incoming.authorization) {
        (Route::AgentBootstrap, Some(header)) => {
            let key = header.strip_prefix("Bearer ").ok_or(AuthError::Missing)?;
            Some(agent::boot_credential(api, key.trim()).await?)
        }
        _ => None,
    };
    let body = if route.takes_body() {
        read_body(api, &incoming, body, route.body_max(), route.media()).await?
    } else {
        Body {
            bytes: bytes::Bytes::new(),
            _held: None,
        }
    };
    let (body, _held) = (body.bytes, body._held);
    if route == Route::OpenApi {
        return Ok(openapi::answer());
    }
    let Some(caller) = caller else {
        return Ok(reply(agent::bootstrap(api, boot, &body).await));
    };
    api.contacted(&caller);
    let q = incoming.query.as_str();
    Ok(match route {
        Route::Whoami => reply(Ok((StatusCode::OK, caller.describe()))),
        Route::Queue => reply(jobs::queue(api, &caller).await),
        Route::Metrics => metrics::answer(api, &caller).await?,
        Route::OpenApi => openapi::answer(),
        Route::ListJobs => reply(jobs::list(api, &caller, parse_query(q)?).await),
        Route::SubmitJob => reply(jobs::submit(api, caller, body).await),
        Route::ShowJob(id) => reply(jobs::show(api, caller, id).await),
        Route::CancelJob(id) => reply(jobs::cancel(api, caller, id).await),
        Route::WatchJob(id) => reply(jobs::watch(api, &caller, id, parse_query(q)?).await),
        Route::ExplainJob(id) => reply(jobs::explain(api, &caller, id).await),
        Route::ListTypes => reply(admin::list_types(api, &caller).await),
        Route::DefineType => reply(admin::create_type(api, caller, &body).await),
        Route::ListTargets => reply(admin::list_targets(api, &caller).await),
        Route::DefineTarget => reply(admin::create_target(api, caller, &body).await),
        Route::ListUsers => reply(admin::list_users(api, &caller).await),
        Route::CreateUser => reply(admin::create_user(api, caller, &body, now()).await),
        Route::SetPrivileges(user) => reply(admin::set_privileges(api, &caller, user, &body).await),
        Route::IssueUserToken(user) => {
            reply(admin::issue_token(api, &caller, Principal::User(user)).await)
        }
        Route::RevokeUserTokens(user) => {
            reply(admin::revoke_tokens(api, &caller, Principal::User(user)).await)
        }
        Route::RevokeWellTokens(well) => {
            reply(admin::revoke_tokens(api, &caller, Principal::Well(well)).await)
        }
        Route::RevokeFactoryTokens(factory) => {
            reply(admin::revoke_tokens(api, &caller, Principal::Factory(factory)).await)
        }
        Route::ListWells => reply(admin::list_wells(api, &caller).await),
        Route::CreateWell => reply(admin::create_well(api, &caller, &body).await),
        Route::IssueWellToken(well) => {
            reply(admin::issue_token(api, &caller, Principal::Well(well)).await)
        }
        Route::ListFactories => reply(admin::list_factories(api, &caller).await),
        Route::CreateFactory => reply(admin::create_factory(api, &caller, &body).await),
        Route::IssueFactoryToken(factory) => {
            reply(admin::issue_token(api, &caller, Principal::Factory(factory)).await)
        }
        Route::HoldLeases => reply(admin::hold_leases(api, &caller, &body).await),
        Route::ListResources => reply(admin::list_resources(api, &caller).await),
        Route::ReleaseHeld(resource) => reply(admin::release_held(api, &caller, resource).await),
        Route::WellLease => reply(well::lease(api, &caller, &body).await),
        Route::WellRenew(lease) => reply(well::renew(api, &caller, lease).await),
        Route::WellReady(r) => reply(well::ready(api, &caller, r, &body).await),
        Route::WellFailed(r) => reply(well::failed(api, &caller, r, &body).await),
        Route::WellResources => reply(well::list(api, &caller).await),
        Route::WellDestroyed(r) => reply(well::destroyed(api, &caller, r).await),
        Route::WellDestroyFailed(r) => reply(well::destroy_failed(api, &caller, r, &body).await),
        Route::FactoryLease => reply(factory::lease(api, &caller, &body).await),
        Route::FactoryCreated(w) => reply(factory::created(api, &caller, w).await),
        Route::FactoryLost(w) => reply(factory::lost(api, &caller, w).await),
        Route::FactoryWorkers => reply(factory::list(api, &caller).await),
        Route::FactoryDestroyed(w) => reply(factory::destroyed(api, &caller, w).await),
        // Answered above, before a token is asked for.
        Route::AgentBootstrap => reply(agent::bootstrap(api, boot, &body).await),
        Route::AgentStart => reply(agent::start(api, &caller).await),
        Route::AgentOutput => reply(agent::output(api, &caller, &body).await),
        Route::AgentControl => reply(agent::control(api, &caller, parse_query(q)?).await),
        Route::AgentFinish => reply(agent::finish(api, &caller, &body).await),
        Route::JobResources => reply(agent::job_resources(api, &caller).await),
        Route::JobResource => {
            let name = incoming.path.rsplit('/').next().unwrap_or_default();
            reply(agent::job_resource(api, &caller, name).await)
        }
        Route::AgentOutputBegin => reply(outputs::begin(api, &caller, &body).await),
        Route::AgentOutputChunk(n) => {
            let job = outputs::agents_job(api, &caller).await?;
            let key = crate::objects::Key::output(n);
            reply(outputs::chunk(api, job, key, parse_query(q)?, &body).await)
        }
        Route::AgentOutputCommit(n) => {
            let job = outputs::agents_job(api, &caller).await?;
            let key = crate::objects::Key::output(n);
            let committed = outputs::commit(api, job, key, &body).await;
            reply(committed.map(|_| (StatusCode::OK, aquifer_protocol::Empty {})))
        }
        Route::ListOutputs(job) => reply(outputs::list(api, &caller, job).await),
        Route::GetOutput(job) => {
            let n = (incoming.path.rsplit('/').next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| ApiError::not_found("such output"))?;
            let range = incoming.headers.get("range").and_then(|v| v.to_str().ok());
            outputs::download(api, &caller, job, n, range).await?
        }
        Route::ListInputs(job) => reply(inputs::list(api, &caller, job).await),
        Route::InputBegin(job) => reply(inputs::begin(api, &caller, job, &body).await),
        Route::InputChunk(job) => {
            let n = input_number(&incoming.path)?;
            reply(inputs::chunk(api, &caller, job, n, parse_query(q)?, &body).await)
        }
        Route::InputCommit(job) => {
            let n = input_number(&incoming.path)?;
            reply(inputs::commit(api, &caller, job, n, &body).await)
        }
        Route::AgentInputs => reply(inputs::agent_list(api, &caller).await),
        Route::AgentInput(n) => {
            let range = incoming.headers.get("range").and_then(|v| v.to_str().ok());
            inputs::agent_get(api, &caller, n, range).await?
        }
        Route::JobStore => reply(agent::job_store(api, &caller).await),
        Route::JobStoreGet => {
            let key = incoming.path.rsplit('/').next().unwrap_or_default();
            reply(agent::job_store_get(api, &caller, key).await)
        }
        Route::JobStorePut => {
            let key = incoming.path.rsplit('/').next().unwrap_or_default();
            reply(agent::job_store_put(api, &caller, key, &body).await)
        }
    })
}

/// The input's number in `/0/jobs/{job}/inputs/{input}/chunk` (or
/// `commit`): the second-last segment.
fn input_number(path: &str) -> Result<u32, ApiError> {
    (path.trim_end_matches('/').rsplit('/').nth(1))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::not_found("such input"))
}

pub use aquifer_protocol::WAIT_MS_MAX;

/// Tries `attempt`; while it finds nothing and time is left, waits for a
/// wake on one of `keys` and tries again. `None` when the time is up.
pub(crate) async fn long_poll<T, F, Fut>(
    api: &Api,
    who: Principal,
    keys: Vec<Key>,
    wait_ms: u64,
    mut attempt: F,
) -> Result<Option<T>, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ApiError>>,
{
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms.min(WAIT_MS_MAX));
    // Taken the first time the request has to wait: an answer found at
    // once needs no place.
    let mut share = None;
    loop {
        // Admitted before the attempt, so a wake between "nothing for me"
        // and the wait still ends the wait.
        let waiter = api.wakers.registry.admit(keys.clone());
        if let Some(found) = attempt().await? {
            return Ok(Some(found));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        if share.is_none() {
            share = Some(api.shares.take(who).map_err(|refused| match refused {
                crate::wake::NoShare::Own { max } => ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_waits",
                    format!("you have {max} requests waiting already; end one first"),
                ),
                crate::wake::NoShare::Users { max } => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!("users hold all {max} of their places to wait; try again shortly"),
                ),
            })?);
        }
        let Ok(waiter) = waiter else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many requests are waiting; try again shortly",
            ));
        };
        if tokio::time::timeout_at(deadline, waiter).await.is_err() {
            return Ok(None);
        }
    }
}

/// Parses a query string into `T`, saying what is wrong in words.
fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query).map_err(|e| {
        ApiError::bad_request("bad_query", format!("the query string is not valid: {e}"))
    })
}

/// warp's own refusals (a header it cannot read, say) in the API's error
/// shape.
fn rejected(r: &warp::Rejection) -> Response {
    let e = if r.find::<warp::reject::InvalidHeader>().is_some() {
        ApiError::bad_request("bad_header", "a request header could not be read")
    } else {
        tracing::debug!(rejection = ?r, "refused by routing");
        ApiError::bad_request("bad_request", "the request could not be read")
    };
    e.into_response()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub use http::serve;
