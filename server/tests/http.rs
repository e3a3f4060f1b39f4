//! The HTTP server against clients that misbehave on the wire: headers or
//! a body sent too slowly, a large body on the open bootstrap endpoint,
//! more bodies or connections than the server holds, and a stop while a
//! request is stalled. Each is cut off after a bound and nobody else is
//! kept waiting.

mod common;
use aquifer_server::api::http::Http;
use aquifer_server::auth::Principal;
use common::sqlite_url;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const BOOT: &str = "bootstrap-token-for-tests-only";

/// Generous bounds for a result that must come: a failure, not a hang,
/// when the server does not cut a client off.
const MUST_COME: Duration = Duration::from_secs(30);

async fn server(http: Http) -> (aquifer_server::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = aquifer_server::start(aquifer_server::Config {
        bootstrap_token: Some(BOOT.into()),
        http,
        ..aquifer_server::Config::loopback(&sqlite_url(&dir))
    })
    .await
    .expect("a server");
    (running, dir)
}

async fn connect(r: &aquifer_server::Running) -> TcpStream {
    let addr = r.url.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connected")
}

/// Everything the server sends until it closes the connection.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(MUST_COME, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// The head of a POST with a JSON body of `length` bytes, none of it sent.
fn post_head(path: &str, token: Option<&str>, length: u64) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// The first answer to a request of which only `head` is sent: one that
/// comes from the head alone, before any body.
async fn answer_to_head(r: &aquifer_server::Running, head: &str) -> String {
    let mut stream = connect(r).await;
    stream.write_all(head.as_bytes()).await.expect("sent");
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(MUST_COME, stream.read(&mut answer))
        .await
        .expect("an answer before any body")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn half_sent_headers_and_idle_connections_are_closed() {
    let (r, _dir) = server(Http {
        header_read_ms: 200,
        ..Http::default()
    })
    .await;
    let mut half = connect(&r).await;
    half.write_all(b"GET /0/whoami HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("sent");
    until_closed(&mut half).await;
    // Connected and silent: closed too.
    let mut idle = connect(&r).await;
    until_closed(&mut idle).await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused() {
    let (r, _dir) = server(Http {
        body_read_ms: 200,
        ..Http::default()
    })
    .await;
    let mut slow = connect(&r).await;
    let head = post_head("/0/jobs", Some(BOOT), 100);
    slow.write_all(head.as_bytes()).await.expect("sent");
    slow.write_all(b"{\"name\":").await.expect("sent");
    let answer = until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("slow_body"), "{answer}");
}

#[tokio::test]
async fn the_open_bootstrap_takes_a_key_not_a_megabyte() {
    let (r, _dir) = server(Http::default()).await;
    let head = post_head("/0/agent/bootstrap", None, 1024 * 1024);
    let answer = answer_to_head(&r, &head).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("at most 1024 bytes"), "{answer}");
    assert_eq!(
        r.api.body_bytes_free(),
        Http::default().body_bytes_in_flight_max
    );
}

#[tokio::test]
async fn the_bootstrap_key_is_checked_before_the_body_is_read() {
    // A body that never comes would hold the request for ten minutes:
    // only an answer from the head alone arrives in time.
    let (r, _dir) = server(Http {
        body_read_ms: 600_000,
        ..Http::default()
    })
    .await;
    let head = post_head("/0/agent/bootstrap", Some("not-a-key"), 100);
    let answer = answer_to_head(&r, &head).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn bodies_past_the_budget_are_refused_as_busy_and_the_budget_comes_back() {
    let budget = aquifer_server::api::BODY_BYTES_MAX;
    let (r, _dir) = server(Http {
        body_bytes_in_flight_max: budget,
        ..Http::default()
    })
    .await;
    let mut stalled = connect(&r).await;
    let head = post_head("/0/jobs", Some(BOOT), budget);
    stalled.write_all(head.as_bytes()).await.expect("sent");
    tokio::time::timeout(MUST_COME, async {
        while r.api.body_bytes_free() == budget {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stalled body holds the budget");
    let http = reqwest::Client::new();
    let submit = || {
        http.post(format!("{}/0/jobs", r.url))
            .bearer_auth(BOOT)
            .json(&serde_json::json!({"name": "x"}))
            .send()
    };
    let busy = submit().await.expect("an answer");
    assert_eq!(busy.status(), 503);
    let body: serde_json::Value = busy.json().await.expect("json");
    assert_eq!(body["code"], "busy", "{body}");
    drop(stalled);
    tokio::time::timeout(MUST_COME, async {
        while r.api.body_bytes_free() < budget {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a closed connection gives its share back");
    let refused = submit().await.expect("an answer");
    assert_eq!(refused.status(), 400, "read and judged, not busy");
}

#[tokio::test]
async fn connections_past_the_bound_wait_for_one_to_close() {
    let (r, _dir) = server(Http {
        connections_max: 2,
        ..Http::default()
    })
    .await;
    let held = [connect(&r).await, connect(&r).await];
    let mut third = connect(&r).await;
    third
        .write_all(b"GET /0/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("sent");
    let mut first = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut first)).await;
    assert!(
        early.is_err(),
        "the third connection is not served while two are open"
    );
    drop(held);
    let answer = until_closed(&mut third).await;
    assert!(answer.contains(" 401 "), "served once one closed: {answer}");
}

#[tokio::test]
async fn a_stop_waits_for_a_stalled_request_only_as_long_as_the_grace() {
    let (r, _dir) = server(Http {
        shutdown_grace_ms: 100,
        body_read_ms: 600_000,
        ..Http::default()
    })
    .await;
    let mut stalled = connect(&r).await;
    let head = post_head("/0/jobs", Some(BOOT), 100);
    stalled.write_all(head.as_bytes()).await.expect("sent");
    tokio::time::timeout(MUST_COME, async {
        while r.api.body_bytes_free() == Http::default().body_bytes_in_flight_max {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the request is being read");
    tokio::time::timeout(MUST_COME, r.stop())
        .await
        .expect("the stop does not wait for the stalled body");
    until_closed(&mut stalled).await;
}

/// One user's long-polls cannot take the places of others: each principal
/// has a share, users together have theirs, and wells keep room.
#[tokio::test]
async fn one_users_watches_leave_room_for_other_users_and_for_wells() {
    use serde_json::{Value, json};
    let (r, _dir) = server(Http {
        waits_per_principal_max: 2,
        user_waits_max: 3,
        ..Http::default()
    })
    .await;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, token: String, body: Option<Value>| {
        let (http, url) = (http.clone(), r.url.clone());
        async move {
            let mut request = http
                .request(method, format!("{url}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let answer = request.send().await.expect("an answer");
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let post = |path: &str, token: &str, body: Value| {
        call(reqwest::Method::POST, path.into(), token.into(), Some(body))
    };
    post("/0/admin/targets", BOOT, json!({"name": "t"})).await;
    post(
        "/0/admin/types",
        BOOT,
        json!({"name": "pg", "max_per_job": 1}),
    )
    .await;
    let (_, well) = post(
        "/0/admin/wells",
        BOOT,
        json!({"name": "w", "pools": {"pg": 1}}),
    )
    .await;
    let well_id = Principal::Well(well["id"].as_u64().expect("an id"));
    let well = well["token"].as_str().expect("a token").to_string();
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (_, made) = post("/0/admin/users", BOOT, json!({"name": name})).await;
        let token = made["token"].as_str().expect("a token").to_string();
        let user = Principal::User(made["id"].as_u64().expect("an id"));
        let job = json!({"name": "j", "target": "t", "tasks": [{"name": "a", "script": "true"}], "timeout_s": 600});
        let (status, submitted) = post("/0/jobs", &token, job).await;
        assert_eq!(status, 201, "{submitted}");
        let id = submitted["id"].as_u64().expect("an id");
        let (_, seen) = call(
            reqwest::Method::GET,
            format!("/0/jobs/{id}/events"),
            token.clone(),
            None,
        )
        .await;
        let watch = format!("/0/jobs/{id}/events?after={}&wait_ms=30000", seen["next"]);
        users.push((token, watch, user));
    }
    // Waits until the places are taken (a share is taken after the
    // registry's admission, so the shares, not the admissions, say when).
    let held = |p: Principal| r.api.shares.held(p);
    let hold = |token: &String, path: &String| {
        tokio::spawn(call(
            reqwest::Method::GET,
            path.clone(),
            token.clone(),
            None,
        ))
    };
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let mut holding = vec![hold(&alice.0, &alice.1), hold(&alice.0, &alice.1)];
    until(|| held(alice.2) == 2).await;
    let (status, body) = call(reqwest::Method::GET, alice.1.clone(), alice.0.clone(), None).await;
    assert_eq!(
        (status, &body["code"]),
        (429, &json!("too_many_waits")),
        "{body}"
    );
    holding.push(hold(&bob.0, &bob.1));
    until(|| held(bob.2) == 1).await;
    let (status, body) = call(reqwest::Method::GET, carol.1.clone(), carol.0.clone(), None).await;
    assert_eq!((status, &body["code"]), (503, &json!("busy")), "{body}");
    // The well still finds a place to wait for work.
    holding.push(tokio::spawn(call(
        reqwest::Method::POST,
        "/0/well/lease".into(),
        well,
        Some(json!({"free": {"pg": 1}, "wait_ms": 30000})),
    )));
    until(|| held(well_id) == 1).await;
    // A watch that has its answer at once needs no place.
    let (status, _) = call(
        reqwest::Method::GET,
        carol.1.replace("wait_ms=30000", "wait_ms=0"),
        carol.0.clone(),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for h in holding {
        h.abort();
    }
}

/// Waits until `cond` holds, or fails after `MUST_COME`.
async fn until(cond: impl Fn() -> bool) {
    tokio::time::timeout(MUST_COME, async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the requests wait");
}
