//! Routing: a method and a path become a `Route`, or a refusal. Pure, so
//! the whole API surface reads in one match and is tested without sockets.

use super::ApiError;
use warp::http::{Method, StatusCode};

/// Declares `Route` and `Route::EVERY` from one list, so that no
/// endpoint can be left out of the list (ids in `EVERY` are 0).
macro_rules! routes {
    ($($(#[$doc:meta])* $name:ident $(($id:ty))?,)*) => {
        /// Every endpoint of the API, with the ids its path carries.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Route {
            $($(#[$doc])* $name $(($id))?,)*
        }

        impl Route {
            /// Every endpoint once, with ids of 0: for tests and documents
            /// that must cover the whole API.
            pub const EVERY: &[Route] = &[$(Route::$name $((0 as $id))?,)*];
        }
    };
}

routes! {
    Whoami,
    Queue,
    /// Prometheus's text format, at `/metrics`.
    Metrics,
    /// This API described in OpenAPI 3.1, at `/openapi.json`; open to all.
    OpenApi,
    ListJobs,
    SubmitJob,
    ShowJob(u32),
    CancelJob(u32),
    WatchJob(u32),
    ExplainJob(u32),
    ListTypes,
    DefineType,
    ListTargets,
    DefineTarget,
    ListUsers,
    CreateUser,
    SetPrivileges(u64),
    IssueUserToken(u64),
    RevokeUserTokens(u64),
    ListWells,
    CreateWell,
    IssueWellToken(u64),
    RevokeWellTokens(u64),
    ListFactories,
    CreateFactory,
    IssueFactoryToken(u64),
    RevokeFactoryTokens(u64),
    HoldLeases,
    ListResources,
    ReleaseHeld(u64),
    WellLease,
    WellRenew(u32),
    WellReady(u32),
    WellFailed(u32),
    WellResources,
    WellDestroyed(u32),
    WellDestroyFailed(u32),
    FactoryLease,
    FactoryCreated(u32),
    FactoryLost(u32),
    FactoryWorkers,
    FactoryDestroyed(u32),
    AgentBootstrap,
    AgentStart,
    AgentOutput,
    AgentControl,
    AgentFinish,
    JobResources,
    /// The name as it came in the path (percent-encoded).
    JobResource,
    AgentOutputBegin,
    AgentOutputChunk(u32),
    AgentOutputCommit(u32),
    ListOutputs(u32),
    /// The job's id; the output's number is the path's last segment.
    GetOutput(u32),
    ListInputs(u32),
    InputBegin(u32),
    /// The job's id; the input's number is the path's second-last segment.
    InputChunk(u32),
    InputCommit(u32),
    AgentInputs,
    AgentInput(u32),
    JobStore,
    /// The key as it came in the path (percent-encoded).
    JobStoreGet,
    JobStorePut,
}

impl Route {
    /// The method and path of the route, with its ids as `{job}`,
    /// `{user}`, `{well}`, `{factory}`, `{resource}`, `{lease}`, `{worker}`
    /// and `{name}`: what a document of the API shows.
    #[must_use]
    pub fn template(self) -> (Method, &'static str) {
        let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
        match self {
            Route::Whoami => (get, "/0/whoami"),
            Route::Queue => (get, "/0/queue"),
            Route::Metrics => (get, "/metrics"),
            Route::OpenApi => (get, "/openapi.json"),
            Route::ListJobs => (get, "/0/jobs"),
            Route::SubmitJob => (post, "/0/jobs"),
            Route::ShowJob(_) => (get, "/0/jobs/{job}"),
            Route::CancelJob(_) => (post, "/0/jobs/{job}/cancel"),
            Route::WatchJob(_) => (get, "/0/jobs/{job}/events"),
            Route::ExplainJob(_) => (get, "/0/jobs/{job}/explain"),
            Route::ListTypes => (get, "/0/admin/types"),
            Route::DefineType => (post, "/0/admin/types"),
            Route::ListTargets => (get, "/0/admin/targets"),
            Route::DefineTarget => (post, "/0/admin/targets"),
            Route::ListUsers => (get, "/0/admin/users"),
            Route::CreateUser => (post, "/0/admin/users"),
            Route::SetPrivileges(_) => (post, "/0/admin/users/{user}/privileges"),
            Route::IssueUserToken(_) => (post, "/0/admin/users/{user}/tokens"),
            Route::RevokeUserTokens(_) => (delete, "/0/admin/users/{user}/tokens"),
            Route::ListWells => (get, "/0/admin/wells"),
            Route::CreateWell => (post, "/0/admin/wells"),
            Route::IssueWellToken(_) => (post, "/0/admin/wells/{well}/tokens"),
            Route::RevokeWellTokens(_) => (delete, "/0/admin/wells/{well}/tokens"),
            Route::ListFactories => (get, "/0/admin/factories"),
            Route::CreateFactory => (post, "/0/admin/factories"),
            Route::IssueFactoryToken(_) => (post, "/0/admin/factories/{factory}/tokens"),
            Route::RevokeFactoryTokens(_) => (delete, "/0/admin/factories/{factory}/tokens"),
            Route::HoldLeases => (post, "/0/admin/hold"),
            Route::ListResources => (get, "/0/admin/resources"),
            Route::ReleaseHeld(_) => (post, "/0/admin/resources/{resource}/release"),
            Route::WellLease => (post, "/0/well/lease"),
            Route::WellRenew(_) => (post, "/0/well/leases/{lease}/renew"),
            Route::WellReady(_) => (post, "/0/well/resources/{resource}/ready"),
            Route::WellFailed(_) => (post, "/0/well/resources/{resource}/failed"),
            Route::WellResources => (get, "/0/well/resources"),
            Route::WellDestroyed(_) => (delete, "/0/well/resources/{resource}"),
            Route::WellDestroyFailed(_) => (post, "/0/well/resources/{resource}/destroy-failed"),
            Route::FactoryLease => (post, "/0/factory/lease"),
            Route::FactoryCreated(_) => (post, "/0/factory/workers/{worker}/created"),
            Route::FactoryLost(_) => (post, "/0/factory/workers/{worker}/lost"),
            Route::FactoryWorkers => (get, "/0/factory/workers"),
            Route::FactoryDestroyed(_) => (delete, "/0/factory/workers/{worker}"),
            Route::AgentBootstrap => (post, "/0/agent/bootstrap"),
            Route::AgentStart => (post, "/0/agent/start"),
            Route::AgentOutput => (post, "/0/agent/output"),
            Route::AgentControl => (get, "/0/agent/control"),
            Route::AgentFinish => (post, "/0/agent/finish"),
            Route::JobResources => (get, "/0/job/resources"),
            Route::JobResource => (get, "/0/job/resources/{name}"),
            Route::AgentOutputBegin => (post, "/0/agent/outputs"),
            Route::AgentOutputChunk(_) => (post, "/0/agent/outputs/{output}/chunk"),
            Route::AgentOutputCommit(_) => (post, "/0/agent/outputs/{output}/commit"),
            Route::ListOutputs(_) => (get, "/0/jobs/{job}/outputs"),
            Route::GetOutput(_) => (get, "/0/jobs/{job}/outputs/{output}"),
            Route::ListInputs(_) => (get, "/0/jobs/{job}/inputs"),
            Route::InputBegin(_) => (post, "/0/jobs/{job}/inputs"),
            Route::InputChunk(_) => (post, "/0/jobs/{job}/inputs/{input}/chunk"),
            Route::InputCommit(_) => (post, "/0/jobs/{job}/inputs/{input}/commit"),
            Route::AgentInputs => (get, "/0/agent/inputs"),
            Route::AgentInput(_) => (get, "/0/agent/inputs/{input}"),
            Route::JobStore => (get, "/0/job/store"),
            Route::JobStoreGet => (get, "/0/job/store/{key}"),
            Route::JobStorePut => (post, "/0/job/store/{key}"),
        }
    }

    /// Whether the route reads a JSON body.
    #[must_use]
    pub fn takes_body(self) -> bool {
        matches!(
            self,
            Route::SubmitJob
                | Route::DefineType
                | Route::DefineTarget
                | Route::CreateUser
                | Route::SetPrivileges(_)
                | Route::CreateWell
                | Route::CreateFactory
                | Route::HoldLeases
                | Route::WellLease
                | Route::WellReady(_)
                | Route::WellFailed(_)
                | Route::WellDestroyFailed(_)
                | Route::FactoryLease
                | Route::AgentBootstrap
                | Route::AgentOutput
                | Route::AgentFinish
                | Route::JobStorePut
                | Route::AgentOutputBegin
                | Route::AgentOutputChunk(_)
                | Route::AgentOutputCommit(_)
                | Route::InputBegin(_)
                | Route::InputChunk(_)
                | Route::InputCommit(_)
        )
    }

    /// The media type of the body the route reads: an output's chunk is
    /// its bytes; everything else is JSON.
    #[must_use]
    pub fn media(self) -> &'static str {
        if matches!(self, Route::AgentOutputChunk(_) | Route::InputChunk(_)) {
            "application/octet-stream"
        } else {
            "application/json"
        }
    }

    /// The largest body the route reads: the agent's bootstrap, open to
    /// anybody, carries only a key.
    #[must_use]
    pub fn body_max(self) -> u64 {
        if self == Route::AgentBootstrap {
            super::BOOTSTRAP_BODY_BYTES_MAX
        } else {
            super::BODY_BYTES_MAX
        }
    }

    /// Whether the route needs a token (the agent's bootstrap brings its
    /// one-time key in the body instead).
    #[must_use]
    pub fn needs_token(self) -> bool {
        !matches!(self, Route::AgentBootstrap | Route::OpenApi)
    }
}

fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}

fn id<T: std::str::FromStr>(segment: &str) -> Result<T, ApiError> {
    segment.parse().map_err(|_| no_route())
}

/// Resolves `path` (without the `/0/` prefix's leading slash) for `method`.
pub fn resolve(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    // Prometheus looks for `/metrics`, outside the versioned API.
    let rest = match segments.split_first() {
        Some((&"0", rest)) => rest,
        Some((&"metrics", [])) => return allowed(get.then_some(Route::Metrics), "GET"),
        Some((&"openapi.json", [])) => return allowed(get.then_some(Route::OpenApi), "GET"),
        _ => return Err(no_route()),
    };
    // Each arm names the methods its path takes; a known path with another
    // method is 405, an unknown path 404.
    let (route, methods) = match rest {
        ["whoami"] => (get.then_some(Route::Whoami), "GET"),
        ["queue"] => (get.then_some(Route::Queue), "GET"),
        ["jobs"] => (
            if get {
                Some(Route::ListJobs)
            } else if post {
                Some(Route::SubmitJob)
            } else {
                None
            },
            "GET, POST",
        ),
        ["jobs", job] => (get.then_some(Route::ShowJob(id(job)?)), "GET"),
        ["jobs", job, "cancel"] => (post.then_some(Route::CancelJob(id(job)?)), "POST"),
        ["jobs", job, "events"] => (get.then_some(Route::WatchJob(id(job)?)), "GET"),
        ["jobs", job, "explain"] => (get.then_some(Route::ExplainJob(id(job)?)), "GET"),
        ["jobs", job, "outputs"] => (get.then_some(Route::ListOutputs(id(job)?)), "GET"),
        ["jobs", job, "outputs", n] => {
            let _: u32 = id(n)?;
            (get.then_some(Route::GetOutput(id(job)?)), "GET")
        }
        ["jobs", job, "inputs"] => (
            pick(
                get,
                post,
                Route::ListInputs(id(job)?),
                Route::InputBegin(id(job)?),
            ),
            "GET, POST",
        ),
        ["jobs", job, "inputs", n, "chunk"] => {
            let _: u32 = id(n)?;
            (post.then_some(Route::InputChunk(id(job)?)), "POST")
        }
        ["jobs", job, "inputs", n, "commit"] => {
            let _: u32 = id(n)?;
            (post.then_some(Route::InputCommit(id(job)?)), "POST")
        }
        ["admin", "types"] => (
            pick(get, post, Route::ListTypes, Route::DefineType),
            "GET, POST",
        ),
        ["admin", "targets"] => (
            pick(get, post, Route::ListTargets, Route::DefineTarget),
            "GET, POST",
        ),
        ["admin", "users"] => (
            pick(get, post, Route::ListUsers, Route::CreateUser),
            "GET, POST",
        ),
        ["admin", "users", user, "privileges"] => {
            (post.then_some(Route::SetPrivileges(id(user)?)), "POST")
        }
        ["admin", "users", user, "tokens"] => (
            post_or_delete(
                post,
                delete,
                id(user)?,
                Route::IssueUserToken,
                Route::RevokeUserTokens,
            ),
            "POST, DELETE",
        ),
        ["admin", "wells"] => (
            pick(get, post, Route::ListWells, Route::CreateWell),
            "GET, POST",
        ),
        ["admin", "wells", well, "tokens"] => (
            post_or_delete(
                post,
                delete,
                id(well)?,
                Route::IssueWellToken,
                Route::RevokeWellTokens,
            ),
            "POST, DELETE",
        ),
        ["admin", "factories"] => (
            pick(get, post, Route::ListFactories, Route::CreateFactory),
            "GET, POST",
        ),
        ["admin", "factories", factory, "tokens"] => (
            post_or_delete(
                post,
                delete,
                id(factory)?,
                Route::IssueFactoryToken,
                Route::RevokeFactoryTokens,
            ),
            "POST, DELETE",
        ),
        ["admin", "hold"] => (post.then_some(Route::HoldLeases), "POST"),
        ["admin", "resources"] => (get.then_some(Route::ListResources), "GET"),
        ["admin", "resources", resource, "release"] => {
            (post.then_some(Route::ReleaseHeld(id(resource)?)), "POST")
        }
        ["well", "lease"] => (post.then_some(Route::WellLease), "POST"),
        ["well", "leases", lease, "renew"] => {
            (post.then_some(Route::WellRenew(id(lease)?)), "POST")
        }
        ["well", "resources"] => (get.then_some(Route::WellResources), "GET"),
        ["well", "resources", r] => (delete.then_some(Route::WellDestroyed(id(r)?)), "DELETE"),
        ["well", "resources", r, "ready"] => (post.then_some(Route::WellReady(id(r)?)), "POST"),
        ["well", "resources", r, "failed"] => (post.then_some(Route::WellFailed(id(r)?)), "POST"),
        ["well", "resources", r, "destroy-failed"] => {
            (post.then_some(Route::WellDestroyFailed(id(r)?)), "POST")
        }
        ["factory", "lease"] => (post.then_some(Route::FactoryLease), "POST"),
        ["factory", "workers"] => (get.then_some(Route::FactoryWorkers), "GET"),
        ["factory", "workers", w] => (delete.then_some(Route::FactoryDestroyed(id(w)?)), "DELETE"),
        ["factory", "workers", w, "created"] => {
            (post.then_some(Route::FactoryCreated(id(w)?)), "POST")
        }
        ["factory", "workers", w, "lost"] => (post.then_some(Route::FactoryLost(id(w)?)), "POST"),
        ["agent", "bootstrap"] => (post.then_some(Route::AgentBootstrap), "POST"),
        ["agent", "start"] => (post.then_some(Route::AgentStart), "POST"),
        ["agent", "output"] => (post.then_some(Route::AgentOutput), "POST"),
        ["agent", "control"] => (get.then_some(Route::AgentControl), "GET"),
        ["agent", "finish"] => (post.then_some(Route::AgentFinish), "POST"),
        ["job", "resources"] => (get.then_some(Route::JobResources), "GET"),
        ["job", "resources", _] => (get.then_some(Route::JobResource), "GET"),
        ["agent", "outputs"] => (post.then_some(Route::AgentOutputBegin), "POST"),
        ["agent", "outputs", n, "chunk"] => {
            (post.then_some(Route::AgentOutputChunk(id(n)?)), "POST")
        }
        ["agent", "outputs", n, "commit"] => {
            (post.then_some(Route::AgentOutputCommit(id(n)?)), "POST")
        }
        ["agent", "inputs"] => (get.then_some(Route::AgentInputs), "GET"),
        ["agent", "inputs", n] => (get.then_some(Route::AgentInput(id(n)?)), "GET"),
        ["job", "store"] => (get.then_some(Route::JobStore), "GET"),
        ["job", "store", _] if get => (Some(Route::JobStoreGet), "GET, POST"),
        ["job", "store", _] => (post.then_some(Route::JobStorePut), "GET, POST"),
        _ => return Err(no_route()),
    };
    allowed(route, methods)
}

/// The route, or 405 naming the methods its path takes.
fn allowed(route: Option<Route>, methods: &str) -> Result<Route, ApiError> {
    route.ok_or_else(|| {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this endpoint takes {methods}"),
        )
    })
}

/// A token collection: POST issues one, DELETE revokes them all.
fn post_or_delete(
    post: bool,
    delete: bool,
    id: u64,
    issue: fn(u64) -> Route,
    revoke: fn(u64) -> Route,
) -> Option<Route> {
    if post {
        Some(issue(id))
    } else if delete {
        Some(revoke(id))
    } else {
        None
    }
}

fn pick(get: bool, post: bool, on_get: Route, on_post: Route) -> Option<Route> {
    if get {
        Some(on_get)
    } else if post {
        Some(on_post)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route's template, its ids filled in, resolves to that route:
    /// the list, the templates and the router agree.
    #[test]
    fn every_route_is_listed_once_and_its_template_resolves_to_it() {
        let mut seen = std::collections::BTreeSet::new();
        for &route in Route::EVERY {
            let (method, template) = route.template();
            let path = [
                "{job}",
                "{user}",
                "{well}",
                "{factory}",
                "{resource}",
                "{lease}",
                "{worker}",
                "{output}",
                "{input}",
            ]
            .iter()
            .fold(template.to_string(), |p, id| p.replace(id, "0"))
            .replace("{name}", "db")
            .replace("{key}", "db");
            assert!(!path.contains('{'), "{template}");
            assert_eq!(
                resolve(&method, &path).expect(template),
                route,
                "{template}"
            );
            assert!(
                seen.insert((method.to_string(), template)),
                "{template} twice"
            );
        }
        assert_eq!(seen.len(), Route::EVERY.len());
    }

    #[test]
    fn paths_resolve_to_routes_and_refusals_say_which() {
        let ok = |m: Method, p: &str| resolve(&m, p).expect(p);
        assert_eq!(ok(Method::GET, "/0/jobs"), Route::ListJobs);
        assert_eq!(ok(Method::POST, "/0/jobs/"), Route::SubmitJob);
        assert_eq!(ok(Method::GET, "/0/jobs/7/events"), Route::WatchJob(7));
        assert_eq!(
            ok(Method::DELETE, "/0/admin/users/3/tokens"),
            Route::RevokeUserTokens(3)
        );
        let code = |m: Method, p: &str| resolve(&m, p).expect_err(p).code;
        assert_eq!(code(Method::GET, "/0/jobs/x"), "no_route");
        assert_eq!(code(Method::GET, "/0/jobs/99999999999"), "no_route");
        assert_eq!(code(Method::GET, "/1/jobs"), "no_route");
        assert_eq!(code(Method::DELETE, "/0/jobs"), "method_not_allowed");
        assert_eq!(code(Method::GET, "/0/jobs/1/cancel"), "method_not_allowed");
    }
}
