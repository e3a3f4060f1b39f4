//! The authorisation matrix: every endpoint of the router (`Route::EVERY`,
//! so a new endpoint is in this test from the moment it exists, and the
//! table below does not compile until it says what each caller gets)
//! against every kind of caller, each cell on a fresh server with the
//! same world in it. A cell's status is exact: a 404 where a 403 was
//! expected is a leak of what exists, a 200 where a 403 was expected is
//! a hole.

mod common;
mod harness;

use aquifer_server::api::route::Route;
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The kinds of caller, in the order of the table's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// No `Authorization` header.
    Nobody,
    /// A header that is not a bearer token.
    Malformed,
    /// A user's token after it was revoked.
    Revoked,
    /// Alice: a user without privileges, who owns the job in the paths.
    Owner,
    /// Bob: another user without privileges.
    Other,
    /// The bootstrap token.
    Admin,
    /// The well that serves `pg` and holds the resources in the paths.
    Well,
    /// A well of another type.
    OtherWell,
    /// The factory, which made every worker.
    Factory,
    /// A worker's one-time key, not yet used.
    Key,
    /// The agent of alice's running job.
    Worker,
    /// The job token of bob's running job.
    OtherJob,
    /// The job token of a job that has ended.
    EndedJob,
}

const WHO: [Who; 13] = [
    Who::Nobody,
    Who::Malformed,
    Who::Revoked,
    Who::Owner,
    Who::Other,
    Who::Admin,
    Who::Well,
    Who::OtherWell,
    Who::Factory,
    Who::Key,
    Who::Worker,
    Who::OtherJob,
    Who::EndedJob,
];

/// What each kind of caller gets from each endpoint, in `WHO`'s order:
/// nobody, malformed, revoked, owner, other user, admin, well, other well,
/// factory, one-time key, worker, other job, ended job.
///
/// The rules the rows follow: no credential, a malformed or revoked one,
/// a spent job's token and an unused worker key are 401 everywhere but
/// the agent's bootstrap; a job is 404 to all but its owner and admins,
/// so that its existence leaks to nobody; the admin API is 403 without
/// the privilege; each service's API is 403 to every other kind of
/// caller. A body of `{}` is 400 where the caller gets that far.
fn expected(route: Route) -> [u16; 13] {
    const USERS: [u16; 13] = [
        401, 401, 401, 200, 200, 200, 403, 403, 403, 401, 403, 403, 401,
    ];
    const JOB: [u16; 13] = [
        401, 401, 401, 200, 404, 200, 404, 404, 404, 401, 404, 404, 401,
    ];
    const NONE: [u16; 13] = [
        401, 401, 401, 403, 403, 403, 403, 403, 403, 401, 403, 403, 401,
    ];
    let only = |who: Who, status: u16| {
        let mut row = NONE;
        row[WHO.iter().position(|w| *w == who).expect("a column")] = status;
        row
    };
    match route {
        Route::Whoami => [
            401, 401, 401, 200, 200, 200, 200, 200, 200, 401, 200, 200, 401,
        ],
        Route::ListJobs => USERS,
        Route::SubmitJob => [
            401, 401, 401, 400, 400, 400, 403, 403, 403, 401, 403, 403, 401,
        ],
        Route::ShowJob(_) | Route::CancelJob(_) | Route::WatchJob(_) | Route::ExplainJob(_) => JOB,
        Route::ListTypes
        | Route::ListTargets
        | Route::ListUsers
        | Route::ListWells
        | Route::ListFactories
        | Route::ListResources
        | Route::SetPrivileges(_)
        | Route::RevokeUserTokens(_)
        | Route::RevokeWellTokens(_)
        | Route::RevokeFactoryTokens(_) => only(Who::Admin, 200),
        Route::DefineType
        | Route::DefineTarget
        | Route::CreateUser
        | Route::CreateWell
        | Route::CreateFactory
        | Route::HoldLeases => only(Who::Admin, 400),
        Route::IssueUserToken(_) | Route::IssueWellToken(_) | Route::IssueFactoryToken(_) => {
            only(Who::Admin, 201)
        }
        // The resource is ready, not held.
        Route::ReleaseHeld(_) => only(Who::Admin, 409),
        // The other well serves another type: it may not ask for `pg`.
        Route::WellLease => {
            let mut row = only(Who::Well, 200);
            row[7] = 400;
            row
        }
        // Each well lists its own resources.
        Route::WellResources => {
            let mut row = only(Who::Well, 200);
            row[7] = 200;
            row
        }
        Route::WellRenew(_) | Route::WellReady(_) | Route::WellFailed(_) => only(Who::Well, 200),
        // The resource is ready, not being destroyed.
        Route::WellDestroyed(_) | Route::WellDestroyFailed(_) => only(Who::Well, 409),
        Route::FactoryLease
        | Route::FactoryCreated(_)
        | Route::FactoryLost(_)
        | Route::FactoryWorkers => only(Who::Factory, 200),
        // The worker's job has not ended.
        Route::FactoryDestroyed(_) => only(Who::Factory, 409),
        // The key is in the body; without one the body is no request.
        Route::AgentBootstrap => [
            400, 400, 401, 401, 401, 401, 401, 401, 401, 200, 401, 401, 401,
        ],
        Route::AgentStart | Route::AgentOutput | Route::AgentControl | Route::AgentFinish => {
            only(Who::Worker, 200)
        }
        Route::JobResources => only(Who::OtherJob, 200),
        // Bob's job has no resource named `db`.
        Route::JobResource => only(Who::OtherJob, 404),
    }
}

/// The world every cell starts from, and the ids and tokens in it.
struct World {
    s: Server,
    tokens: std::collections::BTreeMap<&'static str, String>,
    job: u64,
    user: u64,
    well: u64,
    factory: u64,
    /// Alice's second job's resource, being created under `lease`.
    creating: u64,
    lease: u64,
    /// Alice's first job's resource, ready.
    ready: u64,
    /// The worker whose key is unused.
    worker: u64,
}

async fn ok(s: &Server, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, answer) = s.call(method, path, Some(token), body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

fn id(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("an id: {v}"))
}

fn token(v: &Value) -> String {
    v["token"].as_str().expect("a token").to_string()
}

/// A worker leased by the factory for the next job in line, with its key.
async fn next_worker(s: &Server, factory: &str) -> (u64, String) {
    let lease = ok(
        s,
        Method::POST,
        "/0/factory/lease",
        factory,
        Some(json!({"free": {"t": 1}, "wait_ms": 0})),
    )
    .await;
    let worker = id(&lease["lease"]["worker"]);
    let created = ok(
        s,
        Method::POST,
        &format!("/0/factory/workers/{worker}/created"),
        factory,
        None,
    )
    .await;
    (
        worker,
        created["bootstrap"].as_str().expect("a key").to_string(),
    )
}

/// The agent's check-in and start with `key`: (worker token, job token).
async fn started(s: &Server, key: &str) -> (String, String) {
    let (status, booted) = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!(status, 200, "{booted}");
    let worker = token(&booted);
    let start = ok(s, Method::POST, "/0/agent/start", &worker, Some(json!({}))).await;
    (worker, token(&start))
}

async fn world() -> World {
    let s = server().await;
    let post = |path: &'static str, body: Value| {
        let s = &s;
        async move { ok(s, Method::POST, path, BOOT, Some(body)).await }
    };
    post("/0/admin/types", json!({"name": "probe", "max_per_job": 1})).await;
    let well = post("/0/admin/wells", json!({"name": "lab", "pools": {"pg": 2}})).await;
    let other_well = post(
        "/0/admin/wells",
        json!({"name": "far", "pools": {"probe": 1}}),
    )
    .await;
    let factory = post(
        "/0/admin/factories",
        json!({"name": "f", "targets": {"t": 4}}),
    )
    .await;
    let alice = post("/0/admin/users", json!({"name": "alice"})).await;
    let bob = post("/0/admin/users", json!({"name": "bob"})).await;
    let dave = post("/0/admin/users", json!({"name": "dave"})).await;
    let dave_tokens = format!("/0/admin/users/{}/tokens", dave["id"]);
    ok(&s, Method::DELETE, &dave_tokens, BOOT, None).await;
    let (well_token, factory_token) = (token(&well), token(&factory));

    // Alice's job gets its database, then its second one is being made.
    let job = id(&s.submit(&token(&alice), harness::job()).await.1["id"]);
    let free = json!({"free": {"pg": 1}, "wait_ms": 0});
    let first = ok(
        &s,
        Method::POST,
        "/0/well/lease",
        &well_token,
        Some(free.clone()),
    )
    .await;
    let ready = id(&first["lease"]["resources"][0]);
    let ready_path = format!("/0/well/resources/{ready}/ready");
    let made = json!({"metadata": {"host": "h"}, "secrets": {"password": "p"}});
    ok(&s, Method::POST, &ready_path, &well_token, Some(made)).await;
    s.submit(&token(&alice), harness::job()).await;
    let second = ok(&s, Method::POST, "/0/well/lease", &well_token, Some(free)).await;
    let (lease, creating) = (
        id(&second["lease"]["id"]),
        id(&second["lease"]["resources"][0]),
    );
    // Bob's three jobs need only workers.
    let no_resources = || {
        let mut j = harness::job();
        j["resources"] = json!([]);
        j
    };
    for _ in 0..3 {
        s.submit(&token(&bob), no_resources()).await;
    }
    let (_, key) = next_worker(&s, &factory_token).await;
    let (worker_token, _) = started(&s, &key).await;
    let (_, key) = next_worker(&s, &factory_token).await;
    let (_, other_job) = started(&s, &key).await;
    let (_, key) = next_worker(&s, &factory_token).await;
    let (ended_worker, ended_job) = started(&s, &key).await;
    ok(
        &s,
        Method::POST,
        "/0/agent/finish",
        &ended_worker,
        Some(json!({"succeeded": true})),
    )
    .await;
    let (worker, unused_key) = next_worker(&s, &factory_token).await;
    let tokens = [
        ("revoked", token(&dave)),
        ("owner", token(&alice)),
        ("other", token(&bob)),
        ("well", well_token),
        ("other_well", token(&other_well)),
        ("factory", factory_token),
        ("key", unused_key),
        ("worker", worker_token),
        ("other_job", other_job),
        ("ended_job", ended_job),
    ]
    .into_iter()
    .collect();
    World {
        s,
        tokens,
        job,
        user: id(&alice["id"]),
        well: id(&well["id"]),
        factory: id(&factory["id"]),
        creating,
        lease,
        ready,
        worker,
    }
}

impl World {
    fn header(&self, who: Who) -> Option<String> {
        let bearer = |name: &str| Some(format!("Bearer {}", self.tokens[name]));
        match who {
            Who::Nobody => None,
            Who::Malformed => Some(format!("Basic {}", self.tokens["owner"])),
            Who::Admin => Some(format!("Bearer {BOOT}")),
            Who::Revoked => bearer("revoked"),
            Who::Owner => bearer("owner"),
            Who::Other => bearer("other"),
            Who::Well => bearer("well"),
            Who::OtherWell => bearer("other_well"),
            Who::Factory => bearer("factory"),
            Who::Key => bearer("key"),
            Who::Worker => bearer("worker"),
            Who::OtherJob => bearer("other_job"),
            Who::EndedJob => bearer("ended_job"),
        }
    }

    /// The request `who` makes of `route`: its method, path and body.
    fn request(&self, route: Route, who: Who) -> (Method, String, Option<Value>) {
        let (method, template) = route.template();
        let mut path = template
            .replace("{job}", &self.job.to_string())
            .replace("{user}", &self.user.to_string())
            .replace("{well}", &self.well.to_string())
            .replace("{factory}", &self.factory.to_string())
            .replace("{lease}", &self.lease.to_string())
            .replace("{worker}", &self.worker.to_string())
            .replace("{name}", "db");
        let resource = match route {
            Route::WellReady(_) | Route::WellFailed(_) => self.creating,
            _ => self.ready,
        };
        path = path.replace("{resource}", &resource.to_string());
        let body = match route {
            Route::WatchJob(_) | Route::AgentControl => {
                path.push_str("?wait_ms=0");
                None
            }
            Route::WellLease => Some(json!({"free": {"pg": 1}, "wait_ms": 0})),
            Route::FactoryLease => Some(json!({"free": {"t": 1}, "wait_ms": 0})),
            Route::AgentBootstrap => {
                let key = self
                    .header(who)
                    .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string));
                Some(key.map_or(json!({}), |k| json!({"key": k})))
            }
            Route::AgentOutput => Some(json!({"task": "test", "stream": "stdout", "text": "x"})),
            Route::AgentFinish => Some(json!({"succeeded": true})),
            Route::WellFailed(_) => Some(json!({"reason": "r", "retryable": true})),
            Route::WellReady(_) => Some(json!({"metadata": {}, "secrets": {}})),
            Route::SetPrivileges(_) => Some(json!({"grant": []})),
            Route::HoldLeases => Some(json!({})),
            r if r.takes_body() => Some(json!({})),
            _ => None,
        };
        (method, path, body)
    }

    async fn status(&self, route: Route, who: Who) -> (u16, String) {
        let (method, path, body) = self.request(route, who);
        let mut request = self
            .s
            .http
            .request(method, format!("{}{path}", self.s.base));
        // The bootstrap's credential is its body.
        if route != Route::AgentBootstrap
            && let Some(h) = self.header(who)
        {
            request = request.header("authorization", h);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("an answer");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        (status, text)
    }
}

#[tokio::test]
async fn every_endpoint_answers_every_kind_of_caller_as_the_table_says() {
    let mut wrong = Vec::new();
    let mut cells = 0;
    for &route in Route::EVERY {
        let row = expected(route);
        // Each cell on a world of its own: one caller's success (a
        // revocation, a cancellation) must not decide the next cell. The
        // cells of a row run side by side.
        let answers = futures_util::future::join_all(WHO.iter().map(|&who| async move {
            let w = world().await;
            w.status(route, who).await
        }))
        .await;
        let mut got = [0; 13];
        for (i, (status, text)) in answers.into_iter().enumerate() {
            got[i] = status;
            cells += 1;
            if status != row[i] {
                let who = WHO[i];
                wrong.push(format!(
                    "{route:?} as {who:?}: {status}, not {} ({text})",
                    row[i]
                ));
            }
        }
        eprintln!("{route:?} => {got:?}");
    }
    assert_eq!(cells, Route::EVERY.len() * WHO.len());
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
