//! Outputs over HTTP: the agent's begin, chunks and commit (resumed,
//! checked, bounded), and the owner's listing and ranged reads.

mod common;
mod harness;

use aquifer_server::api::http::Http;
use common::*;
use harness::world::*;
use harness::*;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::Digest as _;

fn sha(bytes: &[u8]) -> String {
    aquifer_server::objects::hex(&sha2::Sha256::digest(bytes))
}

struct Agent<'a> {
    s: &'a Server,
    token: String,
}

impl Agent<'_> {
    fn of(w: &World) -> Agent<'_> {
        Agent {
            s: &w.s,
            token: w.tokens["worker"].clone(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.s.call(method, path, Some(&self.token), body).await
    }

    async fn begin(&self, path: &str, size: u64) -> (u16, Value) {
        let body = json!({"path": path, "size": size});
        self.call(Method::POST, "/0/agent/outputs", Some(body))
            .await
    }

    async fn chunk(&self, n: u64, offset: u64, bytes: &[u8]) -> (StatusCode, Value) {
        let res = (self.s.http)
            .post(format!(
                "{}/0/agent/outputs/{n}/chunk?offset={offset}",
                self.s.base
            ))
            .bearer_auth(&self.token)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("an answer");
        (res.status(), res.json().await.expect("json"))
    }

    async fn commit(&self, n: u64, size: u64, sha256: &str) -> (u16, Value) {
        let body = json!({"size": size, "sha256": sha256});
        let path = format!("/0/agent/outputs/{n}/commit");
        self.call(Method::POST, &path, Some(body)).await
    }
}

/// The running job of the world's agent (alice's).
async fn agents_job(s: &Server) -> u64 {
    let (_, running) = s
        .call(
            Method::GET,
            "/0/jobs?state=running&owner=alice",
            Some(BOOT),
            None,
        )
        .await;
    running[0]["id"].as_u64().expect("alice's running job")
}

async fn read(s: &Server, token: &str, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = (s.http).get(format!("{}{path}", s.base)).bearer_auth(token);
    if let Some(r) = range {
        req = req.header(header::RANGE, r);
    }
    req.send().await.expect("an answer")
}

#[tokio::test]
async fn an_output_is_sent_resumed_checked_listed_and_read_in_ranges_on_sqlite() {
    sent_resumed_checked_listed_and_read(&world().await).await;
}

#[tokio::test]
async fn an_output_is_sent_resumed_checked_listed_and_read_in_ranges_on_postgres() {
    if let Some(url) = postgres_url("outputs").await {
        let dir = tempfile::tempdir().expect("a dir");
        sent_resumed_checked_listed_and_read(&world_on(server_on(&url, dir).await).await).await;
    }
}

/// The same on the S3 back end, against the S3-compatible server that
/// `AQUIFER_TEST_S3_URL` names (CI starts moto's; credentials come from
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`): the whole object is
/// in the bucket, not the server's directory, and retention deletes it
/// there.
#[cfg(feature = "s3")]
#[tokio::test]
async fn an_output_is_sent_resumed_checked_listed_and_read_in_ranges_on_s3() {
    let Some((endpoint, config)) = bucket("outputs").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a dir");
    let objects = dir.path().join("objects");
    let url = sqlite_url(&dir);
    let tuning = Tuning {
        s3: Some(config.clone()),
        ..Tuning::default()
    };
    let w = world_on(server_tuned(&url, dir, tuning).await).await;
    let job = agents_job(&w.s).await;
    sent_resumed_checked_listed_and_read(&w).await;
    let key = format!("{endpoint}/{}/ci/jobs/{job}/1", config.bucket);
    let held = reqwest::get(&key).await.expect("the bucket answers");
    assert_eq!(held.status(), StatusCode::OK, "{key}");
    assert_eq!(held.bytes().await.expect("bytes").as_ref(), b"hello world");
    // What retention's sweep does to a job's files.
    let store = w.s.api.objects.as_ref().expect("an object store");
    store
        .delete_job(u32::try_from(job).expect("an id"))
        .await
        .expect("deleted");
    let gone = reqwest::get(&key).await.expect("the bucket answers");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND, "{key}");
    let local = objects.join("jobs").join(job.to_string());
    let left: Vec<_> = (std::fs::read_dir(&local).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "only parts stay in the directory: {left:?}"
    );
}

/// A fresh bucket on the S3-compatible test server, or `None` when none
/// is configured outside CI.
#[cfg(feature = "s3")]
async fn bucket(name: &str) -> Option<(String, aquifer_server::objects::S3Config)> {
    let Ok(endpoint) = std::env::var("AQUIFER_TEST_S3_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AQUIFER_TEST_S3_URL (.ci/run starts moto)"
        );
        eprintln!("AQUIFER_TEST_S3_URL is not set: skipping the S3 half");
        return None;
    };
    let bucket = format!("aquifer-{name}-{}", std::process::id());
    let made = (reqwest::Client::new())
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 server answers");
    assert!(
        made.status().is_success(),
        "creating {bucket}: {}",
        made.status()
    );
    let config = aquifer_server::objects::S3Config {
        bucket,
        endpoint: Some(endpoint.clone()),
        region: "us-east-1".into(),
        prefix: "ci".into(),
        allow_http: true,
    };
    Some((endpoint, config))
}

async fn sent_resumed_checked_listed_and_read(w: &World) {
    let a = Agent::of(w);
    let job = agents_job(&w.s).await;
    let owner = w.tokens["owner"].clone();

    let (status, begun) = a.begin("out/report.txt", 11).await;
    assert_eq!(
        (status, &begun),
        (200, &json!({"output": 1, "received": 0}))
    );
    assert_eq!(a.chunk(1, 0, b"hello ").await.1, json!({"received": 6}));
    // A chunk sent again (its answer lost) is not written twice; a gap is
    // refused with what is held.
    assert_eq!(a.chunk(1, 0, b"hello ").await.1, json!({"received": 6}));
    let (status, gap) = a.chunk(1, 9, b"x").await;
    assert_eq!(status, StatusCode::CONFLICT, "{gap}");
    assert!(
        gap["message"].as_str().expect("words").contains("6 bytes"),
        "{gap}"
    );
    // Begun again (an agent that lost its place): where to go on from.
    assert_eq!(a.begin("out/report.txt", 11).await.1["received"], 6);
    let (status, over) = a.chunk(1, 6, b"world and more").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{over}");
    assert_eq!(a.chunk(1, 6, b"world").await.1, json!({"received": 11}));

    // Not listed until it is committed; a wrong checksum drops it.
    let list = format!("/0/jobs/{job}/outputs");
    assert_eq!(
        read(&w.s, &owner, &list, None)
            .await
            .json::<Value>()
            .await
            .expect("json"),
        json!([])
    );
    let (status, wrong) = a.commit(1, 11, &sha(b"hello there")).await;
    assert_eq!(
        (status, wrong["code"].as_str()),
        (400, Some("checksum")),
        "{wrong}"
    );
    assert_eq!(a.begin("out/report.txt", 11).await.1["received"], 0);
    a.chunk(1, 0, b"hello world").await;
    let digest = sha(b"hello world");
    assert_eq!(a.commit(1, 11, &digest).await.0, 200);
    assert_eq!(
        a.commit(1, 11, &digest).await.0,
        200,
        "a commit is answered again"
    );
    let (status, _) = a.begin("out/report.txt", 11).await;
    assert_eq!(status, 409, "sent already");

    let listed: Value = read(&w.s, &owner, &list, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed,
        json!([{"output": 1, "path": "out/report.txt", "size": 11, "sha256": digest}])
    );
    let one = format!("/0/jobs/{job}/outputs/1");
    let whole = read(&w.s, &owner, &one, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["x-aquifer-sha256"], digest.as_str());
    assert_eq!(whole.bytes().await.expect("bytes").as_ref(), b"hello world");
    let part = read(&w.s, &owner, &one, Some("bytes=6-")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()[header::CONTENT_RANGE], "bytes 6-10/11");
    assert_eq!(part.bytes().await.expect("bytes").as_ref(), b"world");
    let beyond = read(&w.s, &owner, &one, Some("bytes=20-")).await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()[header::CONTENT_RANGE], "bytes */11");
    // Nobody else's.
    let other = w.tokens["other"].clone();
    assert_eq!(
        read(&w.s, &other, &list, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        read(&w.s, &other, &one, None).await.status(),
        StatusCode::NOT_FOUND
    );

    // An empty output needs no chunk.
    assert_eq!(a.begin("empty", 0).await.1["output"], 2);
    assert_eq!(a.commit(2, 0, &sha(b"")).await.0, 200);
    for bad in ["../escape", "/etc/passwd", "a//b", "./a"] {
        let (status, refused) = a.begin(bad, 1).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (400, Some("bad_path")),
            "{bad}"
        );
    }
    // Only an agent sends outputs.
    let (status, _) = (w.s)
        .call(
            Method::POST,
            "/0/agent/outputs",
            Some(&owner),
            Some(json!({"path": "x", "size": 1})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn outputs_are_bounded_per_file_and_per_job() {
    let dir = tempfile::tempdir().expect("a dir");
    let url = sqlite_url(&dir);
    let tuning = Tuning {
        http: Http {
            output_file_bytes_max: 10,
            output_files_bytes_per_job_max: 15,
            output_files_per_job_max: 2,
            ..Http::default()
        },
        ..Tuning::default()
    };
    let w = world_on(server_tuned(&url, dir, tuning).await).await;
    let a = Agent::of(&w);
    let refused = |(status, body): (u16, Value)| {
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("limit_exceeded")),
            "{body}"
        );
    };
    refused(a.begin("big", 11).await);
    assert_eq!(a.begin("a", 10).await.0, 200);
    refused(a.begin("b", 6).await);
    assert_eq!(a.begin("b", 5).await.0, 200);
    refused(a.begin("c", 0).await);
}

#[tokio::test]
async fn a_send_cut_by_a_server_restart_resumes_where_it_stopped() {
    let w = world().await;
    let job = agents_job(&w.s).await;
    let a = Agent::of(&w);
    a.begin("log.txt", 8).await;
    a.chunk(1, 0, b"four").await;
    let owner = w.tokens["owner"].clone();
    let token = a.token.clone();
    let (_, s) = w.s.restart().await;
    let a = Agent { s: &s, token };
    assert_eq!(
        a.begin("log.txt", 8).await.1,
        json!({"output": 1, "received": 4})
    );
    a.chunk(1, 4, b"more").await;
    assert_eq!(a.commit(1, 8, &sha(b"fourmore")).await.0, 200);
    let got = read(&s, &owner, &format!("/0/jobs/{job}/outputs/1"), None).await;
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), b"fourmore");
}

/// Retention: the outputs of a job that has ended, submitted longer ago
/// than they are kept, are deleted (not those of a running job), and the
/// deletion is in its stream.
#[tokio::test]
async fn outputs_past_retention_are_deleted_and_the_deletion_recorded() {
    let w = world().await;
    let a = Agent::of(&w);
    let job = agents_job(&w.s).await;
    a.begin("keep.txt", 2).await;
    a.chunk(1, 0, b"ok").await;
    assert_eq!(a.commit(1, 2, &sha(b"ok")).await.0, 200);
    let far = aquifer_server::api::now_ms() + 3_600_000;
    let sweep = |now| aquifer_server::retention::sweep(&w.s.api, now, 60_000);
    assert_eq!(sweep(far).await.expect("swept"), 0, "the job still runs");
    let (status, _) = (w.s)
        .call(
            Method::POST,
            &format!("/0/jobs/{job}/cancel"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        sweep(aquifer_server::api::now_ms()).await.expect("swept"),
        0,
        "not old yet"
    );
    assert_eq!(sweep(far).await.expect("swept"), 1);
    assert_eq!(sweep(far).await.expect("swept"), 0, "once");
    let owner = w.tokens["owner"].clone();
    let listed: Value = read(&w.s, &owner, &format!("/0/jobs/{job}/outputs"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
    let gone = read(&w.s, &owner, &format!("/0/jobs/{job}/outputs/1"), None).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let (_, stream) = (w.s)
        .call(
            Method::GET,
            &format!("/0/jobs/{job}/events"),
            Some(BOOT),
            None,
        )
        .await;
    let last = stream["events"]
        .as_array()
        .expect("events")
        .last()
        .expect("one")
        .clone();
    assert_eq!(last["event"]["event"], "outputs_deleted", "{last}");
    assert_eq!(
        last["event"]["reason"],
        "they are kept 1 min after submission"
    );
}
