//! The job API over real HTTP on loopback: every refusal is a 4xx with a
//! JSON body and a stable code, nothing refused is stored, and users see
//! only their own jobs.

mod common;
mod harness;

use aquifer_core::*;
use aquifer_server::auth::Principal;
use common::*;
use harness::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[tokio::test]
async fn submit_show_and_cancel() {
    let s = server().await;
    let (status, body) = s.submit(BOOT, job()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], 1);
    let (status, body) = s
        .call(reqwest::Method::GET, "/0/jobs/1", Some(BOOT), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("queued")),
        "{body}"
    );
    let (status, body) = s
        .call(reqwest::Method::POST, "/0/jobs/1/cancel", Some(BOOT), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("ended")),
        "{body}"
    );
    assert_eq!(body["outcome"], "cancelled");
    let (status, body) = s
        .call(reqwest::Method::POST, "/0/jobs/1/cancel", Some(BOOT), None)
        .await;
    assert_eq!((status, code(&body)), (409, "job_ended"), "{body}");
}

#[tokio::test]
async fn bad_submissions_are_refused_with_a_code_and_store_nothing() {
    let s = server().await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut j = job();
        f(&mut j);
        j
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with(&|j| j["target"] = json!("nope")),
            400,
            "unknown_target",
        ),
        (
            with(&|j| j["resources"][0]["type"] = json!("nope")),
            400,
            "unknown_type",
        ),
        (
            with(&|j| j["resources"][0]["count"] = json!(3)),
            400,
            "bad_count",
        ),
        (
            with(&|j| {
                j["resources"] = json!([{"name": "db", "type": "pg"}, {"name": "db", "type": "pg"}])
            }),
            400,
            "duplicate_name",
        ),
        (with(&|j| j["name"] = json!("has space")), 400, "bad_name"),
        (with(&|j| j["surprise"] = json!(1)), 400, "bad_json"),
        (with(&|j| j["tasks"] = json!([])), 400, "limit_exceeded"),
        (
            with(&|j| j["tasks"][0]["script"] = json!("x".repeat(300 * 1024))),
            400,
            "limit_exceeded",
        ),
        (with(&|j| j["timeout_s"] = json!(0)), 400, "limit_exceeded"),
        (
            with(&|j| j["depends_on"] = json!([99])),
            400,
            "unknown_dependency",
        ),
        // More dependencies than a job may have (16 by default), none of
        // them real: refused for their number, before any is looked up.
        (
            with(&|j| j["depends_on"] = json!((1000..1017).collect::<Vec<u32>>())),
            400,
            "limit_exceeded",
        ),
    ];
    for (body, status, expected) in cases {
        let (got, answer) = s.submit(BOOT, body.clone()).await;
        assert_eq!(
            (got, code(&answer)),
            (status, expected),
            "{body} -> {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(
        s.store.job_row(JobId(1)).await.expect("read").is_none(),
        "nothing was stored"
    );
    assert!(
        s.store
            .events_after(0)
            .await
            .expect("read")
            .iter()
            .all(|(_, e)| !matches!(e, Event::JobSubmitted { .. }))
    );
}

#[tokio::test]
async fn malformed_requests_get_json_errors_not_500s() {
    let s = server().await;
    let url = format!("{}/0/jobs", s.base);
    let send = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.expect("answers");
        (
            res.status().as_u16(),
            res.json::<Value>().await.expect("JSON"),
        )
    };
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth(BOOT)
            .header("content-type", "application/json")
            .body("{nope"),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "bad_json"));
    let charset = send(
        s.http
            .post(&url)
            .bearer_auth(BOOT)
            .header("content-type", "application/json; charset=utf-8")
            .body(job().to_string()),
    )
    .await;
    assert_eq!(charset.0, 201, "a charset parameter is fine: {}", charset.1);
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth(BOOT)
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_eq!((status, code(&body)), (415, "content_type"));
    let big = "x".repeat(2 * 1024 * 1024);
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth(BOOT)
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!((status, code(&body)), (413, "too_large"));
    let (status, body) = s
        .call(reqwest::Method::GET, "/0/nothing", Some(BOOT), None)
        .await;
    assert_eq!((status, code(&body)), (404, "no_route"));
    let (status, body) = s
        .call(reqwest::Method::DELETE, "/0/jobs/1", Some(BOOT), None)
        .await;
    assert_eq!((status, code(&body)), (405, "method_not_allowed"));
    let (status, body) = s
        .call(reqwest::Method::GET, "/0/jobs/99", Some(BOOT), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
}

#[tokio::test]
async fn tokens_decide_who_may_do_what() {
    let s = server().await;
    let (status, body) = s
        .call(reqwest::Method::POST, "/0/jobs", None, Some(job()))
        .await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let (status, body) = s.submit("aq_not_a_token", job()).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let user = |name: &'static str| {
        let store = s.store.clone();
        async move {
            let (_, token) = store
                .create_user(name, &BTreeSet::new(), Time::ZERO)
                .await
                .expect("created")
                .expect("a new name");
            token
        }
    };
    let (alice, bob) = (user("alice").await, user("bob").await);
    // A token whose user does not exist speaks for nobody.
    let ghost = s
        .store
        .issue_token(Principal::User(99), Time::ZERO)
        .await
        .expect("token");
    let (status, body) = s.submit(&ghost, job()).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let well = s
        .store
        .issue_token(Principal::Well(1), Time::ZERO)
        .await
        .expect("token");
    let (status, _) = s.submit(&alice, job()).await;
    assert_eq!(status, 201);
    let (status, body) = s.submit(&well, job()).await;
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "a well's token does not submit jobs"
    );
    let (status, body) = s
        .call(reqwest::Method::GET, "/0/jobs/1", Some(&alice), None)
        .await;
    assert_eq!((status, body["owner"].as_u64()), (200, Some(1)));
    // Another user's job does not exist, as far as bob can tell.
    let (status, body) = s
        .call(reqwest::Method::GET, "/0/jobs/1", Some(&bob), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = s
        .call(reqwest::Method::POST, "/0/jobs/1/cancel", Some(&bob), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, _) = s
        .call(reqwest::Method::GET, "/0/jobs/1", Some(BOOT), None)
        .await;
    assert_eq!(status, 200, "the admin sees every job");
}

#[tokio::test]
async fn admins_define_types_targets_and_users_whose_privileges_count() {
    admin_flow(server().await).await;
}

#[tokio::test]
async fn admins_define_types_targets_and_users_on_postgres() {
    if let Some(url) = postgres_url("api_admin").await {
        let dir = tempfile::tempdir().expect("temp dir");
        admin_flow(server_on(&url, dir).await).await;
    }
}

async fn admin_flow(s: Server) {
    let post = |path: &'static str, token: String, body: Value| {
        let s = &s;
        async move {
            s.call(reqwest::Method::POST, path, Some(&token), Some(body))
                .await
        }
    };
    let boot = BOOT.to_string();
    let (status, _) = post(
        "/0/admin/types",
        boot.clone(),
        json!({"name": "lab-probe", "max_per_job": 1, "privilege": "lab"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = post(
        "/0/admin/types",
        boot.clone(),
        json!({"name": "lab-probe", "max_per_job": 1}),
    )
    .await;
    assert_eq!((status, code(&body)), (409, "already_exists"));
    let (status, body) = post(
        "/0/admin/types",
        boot.clone(),
        json!({"name": "Bad Name", "max_per_job": 1}),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "bad_name"));
    let (status, _) = post("/0/admin/targets", boot.clone(), json!({"name": "lab"})).await;
    assert_eq!(status, 201);
    let (status, alice) = post(
        "/0/admin/users",
        boot.clone(),
        json!({"name": "alice", "privileges": ["lab"]}),
    )
    .await;
    assert_eq!(status, 201, "{alice}");
    let (status, bob) = post("/0/admin/users", boot.clone(), json!({"name": "bob"})).await;
    assert_eq!(status, 201, "{bob}");
    let (status, body) = post("/0/admin/users", boot.clone(), json!({"name": "bob"})).await;
    assert_eq!((status, code(&body)), (409, "already_exists"));
    let alice = alice["token"].as_str().expect("a token").to_string();
    let bob = bob["token"].as_str().expect("a token").to_string();
    let (status, body) = post(
        "/0/admin/types",
        bob.clone(),
        json!({"name": "x", "max_per_job": 1}),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "users are not admins"
    );

    let lab_job = json!({
        "name": "probe", "target": "lab",
        "resources": [{"name": "probe", "type": "lab-probe"}],
        "tasks": [{"name": "t", "script": "true"}], "timeout_s": 60
    });
    let (status, body) = s.submit(&bob, lab_job.clone()).await;
    assert_eq!((status, code(&body)), (403, "privilege_missing"), "{body}");
    let (status, body) = s.submit(&alice, lab_job).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_job_may_depend_on_a_retired_job_of_its_owner_only() {
    let s = server().await;
    let (_, first) = s.submit(BOOT, job()).await;
    let id = first["id"].as_u64().expect("an id");
    // Cancelled while it holds nothing: it ends and leaves the core at once.
    let (status, _) = s
        .call(
            reqwest::Method::POST,
            &format!("/0/jobs/{id}/cancel"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let mut dependent = job();
    dependent["depends_on"] = json!([id]);
    let (status, body) = s.submit(BOOT, dependent.clone()).await;
    assert_eq!(status, 201, "{body}");
    // It depended on a cancelled job, so it fails at once, with a reason.
    let path = format!("/0/jobs/{}", body["id"]);
    let (_, shown) = s.call(reqwest::Method::GET, &path, Some(BOOT), None).await;
    assert_eq!(shown["state"], "ended", "{shown}");
    assert_eq!(shown["outcome"], json!({"failed": "dependency"}), "{shown}");
    // Another user cannot even learn that the job exists.
    let (_, carol) = s
        .store
        .create_user("carol", &BTreeSet::new(), Time::ZERO)
        .await
        .expect("created")
        .expect("new");
    let (status, body) = s.submit(&carol, dependent).await;
    assert_eq!((status, code(&body)), (400, "unknown_dependency"), "{body}");
}
