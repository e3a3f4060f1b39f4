//! The dashboard over HTTP: signing in and out, who may see which page,
//! what the pages show, and the live answer the job page follows. The
//! browser test (`tests/browser/`) drives the same pages in Chromium.

mod common;
mod harness;

use aquifer_core::{Input, TypeId, WellId};
use aquifer_server::auth::Principal;
use aquifer_server::web::{COOKIE, Page};
use harness::*;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A client that does not follow redirects, so that they can be read.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

async fn login(s: &Server, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = browser()
        .post(format!("{}/login", s.base))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", token)]).expect("a form"));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.expect("an answer")
}

async fn page(s: &Server, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = browser().get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.header(header::COOKIE, format!("{COOKIE}={t}"));
    }
    let res = req.send().await.expect("an answer");
    let status = res.status();
    (status, res.text().await.expect("a body"))
}

async fn user(s: &Server, name: &str, privileges: &[&str]) -> String {
    let body = json!({"name": name, "privileges": privileges});
    let (status, body) = s
        .call(Method::POST, "/0/admin/users", Some(BOOT), Some(body))
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("a token").to_string()
}

#[tokio::test]
async fn a_person_signs_in_with_a_token_kept_in_a_strict_http_only_cookie() {
    let s = server().await;
    let res = login(&s, BOOT, &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/");
    let cookie = res.headers()[header::SET_COOKIE].to_str().expect("text");
    assert_eq!(
        cookie,
        format!("{COOKIE}={BOOT}; Path=/; HttpOnly; SameSite=Strict")
    );
    // Behind a proxy that ends TLS, the cookie is Secure too.
    let res = login(&s, BOOT, &[("x-forwarded-proto", "https")]).await;
    let cookie = res.headers()[header::SET_COOKIE].to_str().expect("text");
    assert!(cookie.ends_with("SameSite=Strict; Secure"), "{cookie}");
    // Signing out forgets it.
    let res = browser()
        .post(format!("{}/logout", s.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()[header::SET_COOKIE].to_str().expect("text");
    assert!(cookie.starts_with(&format!("{COOKIE}=;")), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
}

#[tokio::test]
async fn only_a_persons_token_signs_in_and_never_from_another_site() {
    let s = server().await;
    let well = (s
        .store
        .issue_token(Principal::Well(1), aquifer_core::Time::ZERO))
    .await
    .expect("a token");
    for token in ["not-a-token", well.as_str(), ""] {
        let res = login(&s, token, &[]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert!(res.headers().get(header::SET_COOKIE).is_none());
        let body = res.text().await.expect("a body");
        assert!(body.contains("not a user's or an admin's token"), "{body}");
        // Nor does it open a page when it comes in the cookie.
        let (status, body) = page(&s, "/", Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let res = login(&s, BOOT, &[("origin", "https://elsewhere.example")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    let host = s.base.trim_start_matches("http://").to_string();
    let res = login(&s, BOOT, &[("origin", &format!("http://{host}"))]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // A form that is not a form.
    let res = browser()
        .post(format!("{}/login", s.base))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn every_page_but_the_login_is_refused_without_a_token() {
    let s = server().await;
    for &p in Page::EVERY {
        let (method, template) = p.template();
        let path = template.replace("{job}", "1");
        let res = browser()
            .request(method.clone(), format!("{}{path}", s.base))
            .send()
            .await
            .expect("an answer");
        let status = res.status();
        let body = res.text().await.expect("a body");
        match p {
            Page::Home | Page::Jobs | Page::Job(_) | Page::Live(_) => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
                assert!(body.contains(r#"action="/login""#), "{path}: {body}");
            }
            // Posted without a form.
            Page::Login => assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Page::Logout => assert_eq!(status, StatusCode::SEE_OTHER),
            Page::Style | Page::Script => assert_eq!(status, StatusCode::OK, "{path}"),
        }
    }
    // A page's path with a method it does not take.
    let res = browser()
        .delete(format!("{}/jobs", s.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The API's paths are the API's.
    let (status, _) = page(&s, "/0/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_show_queues_jobs_and_the_chain_to_whoever_may_read_them() {
    let s = server().await;
    // Job 1 holds both of the well's pg; job 2 of alice waits behind it.
    let mut big = job();
    big["resources"] = json!([{"name": "db", "type": "pg", "count": 2}]);
    let (status, body) = s.submit(BOOT, big.clone()).await;
    assert_eq!(status, 201, "{body}");
    let grant = s
        .handle
        .send(Input::RequestLease {
            well: WellId(1),
            free: BTreeMap::from([(TypeId::new("pg"), 2)]),
        })
        .await
        .expect("granted");
    assert!(!grant.events.is_empty());
    let alice = user(&s, "alice", &[]).await;
    big["name"] = json!("alices-job");
    let (status, body) = s.submit(&alice, big).await;
    assert_eq!(status, 201, "{body}");

    let (status, home) = page(&s, "/", Some(BOOT)).await;
    assert_eq!(status, StatusCode::OK, "{home}");
    for shown in [
        "signed in as the admin",
        "<td>pg</td><td>1</td><td>2</td>",
        "well-1",
        "alices-job",
    ] {
        assert!(home.contains(shown), "{shown} in {home}");
    }
    // Alice sees the queues and her jobs, not the admin's sections.
    let (status, home) = page(&s, "/", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("alices-job"), "{home}");
    assert!(!home.contains("integration"), "not the admin's job: {home}");
    assert!(
        home.contains("admin.holds"),
        "why resources are not shown: {home}"
    );
    assert!(!home.contains("well-1"), "{home}");

    let (status, list) = page(&s, "/jobs?state=queued&owner=alice", Some(BOOT)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        list.contains("alices-job") && !list.contains("integration"),
        "{list}"
    );
    // The form's "any" sends empty values.
    let (status, list) = page(&s, "/jobs?state=&owner=", Some(BOOT)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        list.contains("alices-job") && list.contains("integration"),
        "{list}"
    );
    let (status, list) = page(&s, "/jobs?state=sleeping", Some(BOOT)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{list}");

    let (status, job2) = page(&s, "/jobs/2", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{job2}");
    for shown in [
        "held by job 1",
        "job 1 (holds 2 × pg)",
        "submitted for t, asking for 2 × pg",
        "<td>well-1 0/2</td>",
        r#"data-after="3""#,
    ] {
        assert!(job2.contains(shown), "{shown} in {job2}");
    }
    let (status, job1) = page(&s, "/jobs/1", Some(&alice)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not hers: {job1}");
}

#[tokio::test]
async fn the_live_answer_brings_what_happened_since_and_the_job_as_it_stands() {
    let s = server().await;
    let (status, body) = s.submit(BOOT, job()).await;
    assert_eq!(status, 201, "{body}");
    let live = |after: u64| {
        let s = &s;
        async move {
            let (status, body) = page(s, &format!("/jobs/1/live?after={after}"), Some(BOOT)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            serde_json::from_str::<Value>(&body).expect("json")
        }
    };
    let waiting = tokio::spawn({
        let base = s.base.clone();
        async move {
            let res = browser()
                .get(format!("{base}/jobs/1/live?after=3"))
                .header(header::COOKIE, format!("{COOKIE}={BOOT}"))
                .send()
                .await
                .expect("an answer");
            res.json::<Value>().await.expect("json")
        }
    });
    while s.api.wakers.registry.admitted() == 0 {
        tokio::task::yield_now().await;
    }
    s.handle
        .send(Input::RequestLease {
            well: WellId(1),
            free: BTreeMap::from([(TypeId::new("pg"), 1)]),
        })
        .await
        .expect("granted");
    let woken = waiting.await.expect("the live request returns");
    assert_eq!(woken["next"], 4, "{woken}");
    assert_eq!(woken["ended"], false);
    // The group reads as its type although the submission is not in this
    // page, and the well by its name.
    let lines = woken["lines"].to_string();
    assert!(lines.contains("well well-1 creates 1 × pg"), "{lines}");
    let status = woken["status"].as_str().expect("html");
    assert!(status.contains("acquiring"), "{status}");

    let (code, _) = s
        .call(Method::POST, "/0/jobs/1/cancel", Some(BOOT), None)
        .await;
    assert_eq!(code, 200);
    let ended = live(4).await;
    assert_eq!(ended["ended"], true, "{ended}");
    let status = ended["status"].as_str().expect("html");
    assert!(status.contains("cancelled"), "{status}");
}
