//! Inputs over HTTP: what a submission may name, the submitter's upload
//! (begin, chunks, commit: resumed, checked, bounded), and a job that
//! acquires nothing until every input is whole.

mod common;
mod harness;

use aquifer_server::api::http::Http;
use common::*;
use harness::*;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::Digest as _;

fn sha(bytes: &[u8]) -> String {
    aquifer_server::objects::hex(&sha2::Sha256::digest(bytes))
}

fn with_inputs(names: &[&str]) -> Value {
    let mut j = job();
    j["inputs"] = json!(names);
    j
}

async fn submitted(s: &Server, j: Value) -> u64 {
    let (status, body) = s.submit(BOOT, j).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().expect("an id")
}

async fn begin(s: &Server, job: u64, name: &str, size: u64) -> (u16, Value) {
    let body = json!({"path": name, "size": size});
    let path = format!("/0/jobs/{job}/inputs");
    s.call(Method::POST, &path, Some(BOOT), Some(body)).await
}

async fn chunk(s: &Server, job: u64, n: u64, offset: u64, bytes: &[u8]) -> (StatusCode, Value) {
    let res = (s.http)
        .post(format!(
            "{}/0/jobs/{job}/inputs/{n}/chunk?offset={offset}",
            s.base
        ))
        .bearer_auth(BOOT)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("an answer");
    (res.status(), res.json().await.expect("json"))
}

async fn commit(s: &Server, job: u64, n: u64, bytes: &[u8]) -> (u16, Value) {
    let body = json!({"size": bytes.len(), "sha256": sha(bytes)});
    let path = format!("/0/jobs/{job}/inputs/{n}/commit");
    s.call(Method::POST, &path, Some(BOOT), Some(body)).await
}

async fn explained(s: &Server, job: u64) -> Value {
    let (status, e) = (s.call(
        Method::GET,
        &format!("/0/jobs/{job}/explain"),
        Some(BOOT),
        None,
    ))
    .await;
    assert_eq!(status, 200, "{e}");
    e
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn names_that_leave_the_input_directory_or_clash_are_refused_at_submission() {
    let s = server().await;
    submitted(&s, with_inputs(&["src.tar", "config.json"])).await;
    for bad in [
        json!(["../etc"]),
        json!(["a/b"]),
        json!(["."]),
        json!([""]),
        json!(["x", "x"]),
    ] {
        let mut j = job();
        j["inputs"] = bad.clone();
        let (status, body) = s.submit(BOOT, j).await;
        assert_eq!((status, code(&body)), (400, "bad_input"), "{bad}: {body}");
    }
    let first = submitted(&s, job()).await;
    // A copied dependency's directory is a name like any input's.
    let mut j = with_inputs(&["build"]);
    j["depends_on"] = json!([{"job": first, "copy_outputs": true, "name": "build"}]);
    let (status, body) = s.submit(BOOT, j).await;
    assert_eq!((status, code(&body)), (400, "bad_input"), "{body}");
    let mut j = job();
    j["depends_on"] = json!([first, {"job": first, "on": "failure"}]);
    let (status, body) = s.submit(BOOT, j).await;
    assert_eq!((status, code(&body)), (400, "bad_dependency"), "{body}");
    let mut j = job();
    j["depends_on"] = json!([{"job": first, "on": "sometimes"}]);
    assert_eq!(s.submit(BOOT, j).await.0, 400);
    let many: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
    let mut j = job();
    j["inputs"] = json!(many);
    let (status, body) = s.submit(BOOT, j).await;
    assert_eq!((status, code(&body)), (400, "limit_exceeded"), "{body}");
}

#[tokio::test]
async fn a_job_acquires_nothing_until_its_inputs_are_uploaded_whole() {
    let s = server().await;
    let id = submitted(&s, with_inputs(&["a.txt", "b.bin"])).await;
    let e = explained(&s, id).await;
    assert_eq!(e["explanation"]["awaits_inputs"], true, "{e}");
    assert_eq!(e["explanation"]["waiting_for"], "its inputs to be uploaded");
    let (_, listed) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{id}/inputs"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(
        listed[1],
        json!({"input": 2, "name": "b.bin", "size": null, "complete": false, "sha256": null})
    );

    // An input the job file does not name is refused.
    let (status, body) = begin(&s, id, "c.txt", 1).await;
    assert_eq!((status, code(&body)), (400, "unknown_input"), "{body}");

    // The first: sent in two chunks, a resent chunk taken once.
    assert_eq!(
        begin(&s, id, "a.txt", 11).await,
        (200, json!({"output": 1, "received": 0}))
    );
    assert_eq!(chunk(&s, id, 1, 0, b"hello ").await.0, StatusCode::OK);
    assert_eq!(
        chunk(&s, id, 1, 0, b"hello ").await.1,
        json!({"received": 6})
    );
    // Begun again (a submitter that lost its place), it says where to go on.
    assert_eq!(
        begin(&s, id, "a.txt", 11).await.1,
        json!({"output": 1, "received": 6})
    );
    chunk(&s, id, 1, 6, b"world").await;
    // The wrong checksum drops what is held.
    let (status, body) = commit(&s, id, 1, b"hello there").await;
    assert_eq!((status, code(&body)), (400, "checksum"), "{body}");
    assert_eq!(begin(&s, id, "a.txt", 11).await.1["received"], 0);
    chunk(&s, id, 1, 0, b"hello world").await;
    assert_eq!(commit(&s, id, 1, b"hello world").await.0, 200);
    assert_eq!(explained(&s, id).await["explanation"]["phase"], "blocked");

    // The second, empty: the job begins once it is whole.
    assert_eq!(begin(&s, id, "b.bin", 0).await.0, 200);
    assert_eq!(commit(&s, id, 2, b"").await.0, 200);
    let e = explained(&s, id).await;
    assert_eq!(e["explanation"]["phase"], "acquiring", "{e}");
    // A commit whose answer was lost is answered again, harmlessly.
    assert_eq!(commit(&s, id, 2, b"").await.0, 200);
    let (status, body) = begin(&s, id, "a.txt", 11).await;
    assert_eq!((status, code(&body)), (409, "output_complete"), "{body}");
    let (_, listed) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{id}/inputs"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(listed[0]["sha256"], sha(b"hello world"), "{listed}");

    // Once the job has ended, its inputs are no longer taken.
    let other = submitted(&s, with_inputs(&["late.txt"])).await;
    s.call(
        Method::POST,
        &format!("/0/jobs/{other}/cancel"),
        Some(BOOT),
        None,
    )
    .await;
    let (status, body) = begin(&s, other, "late.txt", 1).await;
    assert_eq!((status, code(&body)), (409, "job_ended"), "{body}");
}

#[tokio::test]
async fn inputs_are_bounded_per_file_and_per_job_and_resume_across_a_restart() {
    let dir = tempfile::tempdir().expect("a dir");
    let url = sqlite_url(&dir);
    let tuning = Tuning {
        http: Http {
            input_file_bytes_max: 10,
            input_files_bytes_per_job_max: 15,
            ..Http::default()
        },
        ..Tuning::default()
    };
    let s = server_tuned(&url, dir, tuning).await;
    let id = submitted(&s, with_inputs(&["a", "b"])).await;
    let refused = |(status, body): (u16, Value)| {
        assert_eq!((status, code(&body)), (400, "limit_exceeded"), "{body}");
    };
    refused(begin(&s, id, "a", 11).await);
    assert_eq!(begin(&s, id, "a", 10).await.0, 200);
    refused(begin(&s, id, "b", 6).await);
    assert_eq!(begin(&s, id, "b", 5).await.0, 200);
    // A chunk past the size begun is refused.
    let (status, body) = chunk(&s, id, 2, 0, b"toolong").await;
    assert_eq!((status.as_u16(), code(&body)), (400, "too_large"), "{body}");
    chunk(&s, id, 1, 0, b"01234").await;
    let (_, s) = s.restart().await;
    assert_eq!(
        begin(&s, id, "a", 10).await.1,
        json!({"output": 1, "received": 5})
    );
    chunk(&s, id, 1, 5, b"56789").await;
    assert_eq!(commit(&s, id, 1, b"0123456789").await.0, 200);
}
