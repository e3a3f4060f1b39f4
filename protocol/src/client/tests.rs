//! The retry table, against a scripted HTTP server on loopback.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn refused(status: u16) -> CallError {
    CallError::Refused {
        status,
        code: String::new(),
        message: String::new(),
    }
}

#[test]
fn the_retry_table() {
    let unreached = CallError::Unreached {
        base: String::new(),
        detail: String::new(),
    };
    let unanswered = CallError::Unanswered {
        base: String::new(),
        detail: String::new(),
    };
    let bad = CallError::BadAnswer {
        path: String::new(),
        detail: String::new(),
    };
    use Kind::{Idempotent, Once, Single};
    let rows: [(&CallError, [bool; 3]); 3] = [
        (&unreached, [true, true, false]),
        (&unanswered, [true, false, false]),
        (&bad, [false, false, false]),
    ];
    for (e, want) in rows {
        let got = [Idempotent, Once, Single].map(|k| e.is_retryable(k));
        assert_eq!(got, want, "{e:?}");
    }
    for (status, want) in [
        (503, [true, true, false]),
        (429, [true, true, false]),
        (408, [true, false, false]),
        (500, [true, false, false]),
        (502, [true, false, false]),
        (504, [true, false, false]),
        (400, [false, false, false]),
        (401, [false, false, false]),
        (403, [false, false, false]),
        (404, [false, false, false]),
        (409, [false, false, false]),
        (410, [false, false, false]),
        (413, [false, false, false]),
    ] {
        let got = [Idempotent, Once, Single].map(|k| refused(status).is_retryable(k));
        assert_eq!(got, want, "{status}");
    }
}

/// A server that answers each request with the next of `script` (status,
/// body), then 200 `{}` for ever; it counts the requests it saw.
async fn scripted(script: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (status, body) = script.get(n).copied().unwrap_or((200, "{}"));
            // Read the request head (and whatever body came with it).
            let mut buf = vec![0u8; 16 * 1024];
            let _ = sock.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (base, seen)
}

fn fast(base: &str) -> Client {
    Client::new(base, Some("t".into()))
        .expect("client")
        .with_backoff(Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
        })
}

const UNAVAILABLE: (u16, &str) = (503, r#"{"code":"unavailable","message":"try again"}"#);

#[tokio::test]
async fn a_report_is_retried_through_503s_until_it_lands() {
    let (base, seen) = scripted(vec![UNAVAILABLE, UNAVAILABLE, (502, "<html>proxy</html>")]).await;
    fast(&base)
        .well_ready(ResourceId(1), &well::Ready::default())
        .await
        .expect("lands on the fourth try");
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_refusal_is_final_and_keeps_its_code() {
    let (base, seen) = scripted(vec![(409, r#"{"code":"duplicate","message":"already"}"#)]).await;
    let e = fast(&base)
        .well_ready(ResourceId(1), &well::Ready::default())
        .await
        .expect_err("refused");
    assert_eq!(e.status(), Some(409));
    assert_eq!(e.code(), Some("duplicate"));
    assert_eq!(e.to_string(), "already (duplicate, HTTP 409)");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_submission_is_retried_on_503_but_not_on_a_proxy_error() {
    let (base, seen) = scripted(vec![UNAVAILABLE, (502, "bad gateway")]).await;
    let e = fast(&base)
        .post::<serde_json::Value, _>(path::JOBS, &Empty {})
        .await
        .expect_err("a 502 may have reached the server");
    assert_eq!(e.status(), Some(502));
    assert_eq!(e.code(), Some("error"));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_poll_is_tried_once() {
    let (base, seen) = scripted(vec![UNAVAILABLE]).await;
    let e = fast(&base)
        .well_lease(&well::WellLeaseRequest {
            free: Default::default(),
            wait_ms: 0,
            destroying: Default::default(),
        })
        .await
        .expect_err("one try");
    assert_eq!(e.code(), Some("unavailable"));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn patience_ends_the_retries() {
    // A port nobody listens on: every try is refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let client = fast(&base).with_patience(Some(Duration::from_millis(50)));
    let e = client
        .get::<Empty>(path::WHOAMI)
        .await
        .expect_err("gives up");
    assert!(matches!(e, CallError::Unreached { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("cannot reach the server at http://127.0.0.1:")
    );
}

#[tokio::test]
async fn a_destroy_confirmation_of_something_forgotten_is_done() {
    let (base, _) = scripted(vec![(410, r#"{"code":"gone","message":"gone"}"#)]).await;
    fast(&base)
        .factory_destroyed(WorkerId(3))
        .await
        .expect("410 counts as confirmed");
}

#[tokio::test]
async fn an_answer_that_is_not_the_protocol_is_named() {
    let (base, _) = scripted(vec![(200, r#"{"lease": 7}"#)]).await;
    let e = fast(&base)
        .factory_lease(&factory::FactoryLeaseRequest {
            free: Default::default(),
            wait_ms: 0,
            destroying: Default::default(),
        })
        .await
        .expect_err("not a lease answer");
    assert!(matches!(e, CallError::BadAnswer { .. }), "{e:?}");
}

#[tokio::test]
async fn an_exchange_is_one_try_with_the_answer_as_it_came() {
    let (base, seen) = scripted(vec![UNAVAILABLE, (502, "<html>proxy</html>")]).await;
    let client = fast(&base);
    let (status, body) = (client.exchange(Method::POST, "/0/jobs", Some(&Empty {})))
        .await
        .expect("an answer");
    assert_eq!(status, 503);
    assert_eq!(body["code"], "unavailable");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "not retried");
    let (status, body) = (client.exchange(Method::GET, "/0/whoami", None::<&Empty>))
        .await
        .expect("an answer");
    assert_eq!((status, body), (502, serde_json::Value::Null));
}
