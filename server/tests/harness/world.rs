//! One world for tests that put every endpoint to every kind of caller:
//! users (one owning the jobs in the paths, one revoked), two wells, a
//! factory, running and ended jobs with their tokens, and an unused
//! worker key.

use super::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The kinds of caller, in the order of the table's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
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

pub const WHO: [Who; 13] = [
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

/// The world every cell starts from, and the ids and tokens in it.
pub struct World {
    pub s: Server,
    pub tokens: std::collections::BTreeMap<&'static str, String>,
    pub job: u64,
    pub user: u64,
    pub well: u64,
    pub factory: u64,
    /// Alice's second job's resource, being created under `lease`.
    pub creating: u64,
    pub lease: u64,
    /// Alice's first job's resource, ready.
    pub ready: u64,
    /// The worker whose key is unused.
    pub worker: u64,
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
pub async fn next_worker(s: &Server, factory: &str) -> (u64, String) {
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
pub async fn started(s: &Server, key: &str) -> (String, String) {
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

pub async fn world() -> World {
    world_on(server().await).await
}

/// The world on a server of the caller's.
pub async fn world_on(s: Server) -> World {
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
    let job = id(&s.submit(&token(&alice), super::job()).await.1["id"]);
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
    s.submit(&token(&alice), super::job()).await;
    let second = ok(&s, Method::POST, "/0/well/lease", &well_token, Some(free)).await;
    let (lease, creating) = (
        id(&second["lease"]["id"]),
        id(&second["lease"]["resources"][0]),
    );
    // Bob's three jobs need only workers.
    let no_resources = || {
        let mut j = super::job();
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
    pub fn header(&self, who: Who) -> Option<String> {
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
}
