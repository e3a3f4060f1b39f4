//! Listing, watching and explaining jobs over HTTP, and a restart in the
//! middle of a workload on both databases.

mod common;
mod harness;

use aquifer_core::*;
use common::*;
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

async fn user(s: &Server, name: &str, privileges: &[&str]) -> String {
    let (status, body) = s
        .call(
            Method::POST,
            "/0/admin/users",
            Some(BOOT),
            Some(json!({"name": name, "privileges": privileges})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("a token").to_string()
}

async fn submitted(s: &Server, token: &str) -> u64 {
    let (status, body) = s.submit(token, job()).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().expect("an id")
}

fn ids(body: &Value) -> Vec<u64> {
    (body.as_array().expect("a list").iter())
        .map(|j| j["id"].as_u64().expect("an id"))
        .collect()
}

#[tokio::test]
async fn lists_filter_by_state_and_owner_and_users_see_only_their_own() {
    let s = server().await;
    let alice = user(&s, "alice", &[]).await;
    let bob = user(&s, "bob", &[]).await;
    let auditor = user(&s, "auditor", &["admin.jobs"]).await;
    let a1 = submitted(&s, &alice).await;
    let b1 = submitted(&s, &bob).await;
    let a2 = submitted(&s, &alice).await;
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/0/jobs/{a1}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let list = |token: String, query: &'static str| {
        let s = &s;
        async move {
            let (status, body) = s
                .call(Method::GET, &format!("/0/jobs{query}"), Some(&token), None)
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            ids(&body)
        }
    };
    assert_eq!(list(alice.clone(), "").await, vec![a2, a1], "newest first");
    assert_eq!(list(alice.clone(), "?state=ended").await, vec![a1]);
    assert_eq!(list(alice.clone(), "?owner=bob").await, Vec::<u64>::new());
    // Whether a name is somebody's is not for alice to learn: a name
    // nobody has gets the same answer as bob's.
    assert_eq!(
        list(alice.clone(), "?owner=nobody").await,
        Vec::<u64>::new()
    );
    assert_eq!(list(alice.clone(), "?owner=alice").await, vec![a2, a1]);
    assert_eq!(list(bob.clone(), "").await, vec![b1]);
    assert_eq!(list(auditor.clone(), "").await, vec![a2, b1, a1]);
    assert_eq!(list(auditor.clone(), "?owner=bob").await, vec![b1]);
    assert_eq!(list(BOOT.into(), "?state=queued").await, vec![a2, b1]);
    assert_eq!(list(BOOT.into(), "?limit=1&before=3").await, vec![b1]);
    // The auditor may read bob's job, and alice may not.
    let (status, _) = s
        .call(Method::GET, &format!("/0/jobs/{b1}"), Some(&auditor), None)
        .await;
    assert_eq!(status, 200);
    for (bad, token) in [
        ("?state=lost", &alice),
        ("?limit=0", &alice),
        ("?colour=red", &alice),
        ("?owner=nobody", &auditor),
    ] {
        let (status, body) = s
            .call(Method::GET, &format!("/0/jobs{bad}"), Some(token), None)
            .await;
        assert_eq!((status, code(&body)), (400, "bad_query"), "{bad}: {body}");
    }
}

/// One user at her limit of jobs is refused; another user is not, and
/// the operator's jobs count apart from both.
#[tokio::test]
async fn each_user_has_a_limit_of_jobs_and_others_are_not_locked_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        jobs_per_owner_max: 2,
        ..Limits::default()
    };
    let s = server_with(&sqlite_url(&dir), dir, limits).await;
    let alice = user(&s, "alice", &[]).await;
    let bob = user(&s, "bob", &[]).await;
    submitted(&s, &alice).await;
    submitted(&s, &alice).await;
    let (status, body) = s.submit(&alice, job()).await;
    assert_eq!((status, code(&body)), (400, "limit_exceeded"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("one owner")),
        "{body}"
    );
    submitted(&s, &bob).await;
    submitted(&s, BOOT).await;
}

#[tokio::test]
async fn a_query_value_out_of_range_is_refused_not_a_crash() {
    let s = server().await;
    let id = submitted(&s, BOOT).await;
    let bad = [
        format!("/0/jobs/{id}/events?after=9223372036854775808"),
        format!("/0/jobs/{id}/events?after=18446744073709551616"),
        format!("/0/jobs/{id}/events?after=-1"),
        format!("/0/jobs/{id}/events?wait_ms=99999999999999999999"),
        format!("/0/jobs/{id}/events?limit=4294967296"),
        "/0/jobs?before=4294967296".to_string(),
        "/0/jobs?limit=-1".to_string(),
    ];
    for path in bad {
        let (status, body) = s.call(Method::GET, &path, Some(BOOT), None).await;
        assert_eq!((status, code(&body)), (400, "bad_query"), "{path}: {body}");
    }
    // The largest stream number that can be stored is a valid place to
    // read from: nothing comes after it.
    let (status, body) = (s.call(
        Method::GET,
        &format!("/0/jobs/{id}/events?after=9223372036854775807"),
        Some(BOOT),
        None,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(0), "{body}");
}

fn kinds(body: &Value) -> Vec<String> {
    (body["events"].as_array().expect("events").iter())
        .map(|e| e["event"]["event"].as_str().expect("a kind").to_string())
        .collect()
}

#[tokio::test]
async fn a_watch_streams_a_jobs_events_resumes_and_wakes_on_news() {
    let s = server().await;
    let id = submitted(&s, BOOT).await;
    let path = |q: &str| format!("/0/jobs/{id}/events{q}");
    let (status, first) = s.call(Method::GET, &path(""), Some(BOOT), None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        kinds(&first),
        ["job_submitted", "acquisition_began", "group_queued"]
    );
    assert_eq!(first["next"], 3);
    assert_eq!(first["ended"], false);

    // A long poll from where we are waits until something happens.
    let waiting = {
        let (http, base) = (s.http.clone(), s.base.clone());
        let url = format!("{base}{}", path("?after=3&wait_ms=30000"));
        tokio::spawn(async move {
            let res = http
                .get(url)
                .bearer_auth(BOOT)
                .send()
                .await
                .expect("answer");
            res.json::<Value>().await.expect("json")
        })
    };
    // Once the watch is parked, a lease granted to the well is news for
    // the job, and wakes it.
    let parked = async {
        while s.api.wakers.registry.admitted() == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), parked)
        .await
        .expect("the watch parks");
    let grant = s
        .handle
        .send(Input::RequestLease {
            well: WellId(1),
            free: BTreeMap::from([(TypeId::new("pg"), 2)]),
        })
        .await
        .expect("granted");
    assert!(matches!(grant.events[0], Event::LeaseGranted { .. }));
    let woken = waiting.await.expect("the watch returns");
    assert_eq!(kinds(&woken), ["lease_granted"], "{woken}");
    assert_eq!(woken["next"], 4);
    // The well the grant names by id comes with its name; a page that
    // names none carries no names.
    assert_eq!(woken["names"], json!({"wells": {"1": "well-1"}}), "{woken}");
    assert!(first.get("names").is_none(), "{first}");

    let (_, cancelled) = s
        .call(
            Method::POST,
            &format!("/0/jobs/{id}/cancel"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(cancelled["state"], "ended");
    let (_, rest) = s
        .call(Method::GET, &path("?after=4"), Some(BOOT), None)
        .await;
    assert_eq!(rest["ended"], true);
    let rest = kinds(&rest);
    assert!(rest.contains(&"job_ended".to_string()), "{rest:?}");
    assert!(rest.contains(&"lease_ended".to_string()), "{rest:?}");
    // A page that stops short of the end of an ended job's stream does not
    // say "ended", so a reader that stops there misses nothing.
    let (_, first_only) = s
        .call(Method::GET, &path("?limit=1"), Some(BOOT), None)
        .await;
    assert_eq!(
        (kinds(&first_only).len(), &first_only["ended"]),
        (1, &json!(false))
    );
    // An empty page of an ended job does not wait.
    let (_, empty) = s
        .call(
            Method::GET,
            &path("?after=99&wait_ms=60000"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!((kinds(&empty).len(), &empty["ended"]), (0, &json!(true)));
    // Nobody else's.
    let other = user(&s, "eve", &[]).await;
    let (status, body) = s.call(Method::GET, &path(""), Some(&other), None).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
}

/// Two jobs of 2 × pg, the first granted the well's two: the second waits
/// behind nobody in the queue but for the capacity the first holds.
async fn two_jobs_one_granted(s: &Server) -> (u64, u64) {
    let mut big = job();
    big["resources"] = json!([{"name": "db", "type": "pg", "count": 2}]);
    let first = s.submit(BOOT, big.clone()).await.1["id"]
        .as_u64()
        .expect("id");
    let second = s.submit(BOOT, big).await.1["id"].as_u64().expect("id");
    s.handle
        .send(Input::RequestLease {
            well: WellId(1),
            free: BTreeMap::from([(TypeId::new("pg"), 2)]),
        })
        .await
        .expect("granted");
    (first, second)
}

#[tokio::test]
async fn explain_says_where_a_job_waits_and_behind_whom() {
    let s = server().await;
    let (first, second) = two_jobs_one_granted(&s).await;
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{second}/explain"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = &body["explanation"];
    assert_eq!(e["phase"], "acquiring");
    let group = &e["groups"][0];
    assert_eq!(group["rtype"], "pg");
    assert_eq!(group["state"], "queued");
    assert_eq!(group["position"], 1);
    assert_eq!(group["holders"][first.to_string()], 2, "{body}");
    assert_eq!(group["wells"][0]["room"], 0);
    let why = e["waiting_for"].as_str().expect("a sentence");
    assert!(why.contains("held by job 1"), "{why}");
    // The chain goes on to the holder, and what it waits for.
    let chain = body["chain"].as_array().expect("a chain");
    assert_eq!(chain.len(), 2, "{body}");
    assert_eq!(
        (&chain[0]["job"], &chain[0]["depth"]),
        (&json!(second), &json!(0))
    );
    assert_eq!(chain[1]["job"], json!(first));
    assert_eq!(chain[1]["blocks"], json!(second));
    assert_eq!(chain[1]["why"], "holds 2 × pg");
    assert_eq!(chain[1]["phase"], "acquiring");
    // Once it has ended and retired, the store still says how it ended.
    let (_, _) = s
        .call(
            Method::POST,
            &format!("/0/jobs/{second}/cancel"),
            Some(BOOT),
            None,
        )
        .await;
    let (_, body) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{second}/explain"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(body["state"], "ended");
    assert_eq!(body["outcome"], "cancelled");
    assert!(body["explanation"].is_null(), "{body}");
    assert_eq!(body["chain"], json!([]));
}

#[tokio::test]
async fn metrics_count_a_known_workload_in_the_text_format() {
    let s = server().await;
    two_jobs_one_granted(&s).await;
    // The well calls once, over HTTP.
    let before_ms = aquifer_server::api::now_ms();
    let well = (s
        .store
        .issue_token(aquifer_server::auth::Principal::Well(1), Time::ZERO))
    .await
    .expect("a token");
    let (status, _) = s
        .call(Method::GET, "/0/well/resources", Some(&well), None)
        .await;
    assert_eq!(status, 200);
    let answer = (s.http)
        .get(format!("{}/metrics", s.base))
        .bearer_auth(BOOT)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let kind = answer.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = answer.text().await.expect("text");
    let sample = |name: &str| -> f64 {
        let line = (text.lines())
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("a value")
    };
    assert_eq!(sample(r#"aquifer_jobs{phase="acquiring"}"#), 2.0);
    assert_eq!(sample(r#"aquifer_jobs{phase="running"}"#), 0.0);
    assert_eq!(sample("aquifer_leases"), 1.0);
    assert_eq!(sample(r#"aquifer_type_queued{type="pg"}"#), 1.0);
    assert_eq!(
        sample(r#"aquifer_type_resources{type="pg",state="creating"}"#),
        2.0
    );
    assert_eq!(
        sample(r#"aquifer_type_resources{type="pg",state="held"}"#),
        0.0
    );
    assert_eq!(sample(r#"aquifer_type_capacity{type="pg"}"#), 2.0);
    assert_eq!(sample(r#"aquifer_target_queued{target="t"}"#), 0.0);
    // Three decisions at least were batched and committed (two
    // submissions, a grant); the buckets add up to the count.
    let batches = sample("aquifer_driver_batch_size_count");
    assert!(batches >= 3.0, "{text}");
    assert_eq!(
        sample(r#"aquifer_driver_batch_size_bucket{le="+Inf"}"#),
        batches
    );
    assert!(sample(r#"aquifer_driver_batch_size_bucket{le="128"}"#) <= batches);
    let commits = sample("aquifer_driver_commit_seconds_count");
    assert!(commits >= 3.0, "{text}");
    assert!(sample("aquifer_driver_commit_seconds_sum") > 0.0);
    assert_eq!(sample("aquifer_driver_commit_failures_total"), 0.0);
    // The first job's group waited for its grant; the second's waits
    // still. Nothing has started or been destroyed yet.
    assert_eq!(sample(r#"aquifer_type_wait_seconds_count{type="pg"}"#), 1.0);
    assert_eq!(
        sample(r#"aquifer_type_wait_seconds_bucket{type="pg",le="+Inf"}"#),
        1.0
    );
    let waited = sample(r#"aquifer_type_oldest_wait_seconds{type="pg"}"#);
    #[allow(clippy::cast_precision_loss)]
    let since_start = (aquifer_server::api::now_ms() - before_ms) as f64 / 1e3 + 60.0;
    assert!((0.0..since_start).contains(&waited), "{waited}");
    assert_eq!(sample("aquifer_handoff_seconds_count"), 0.0);
    assert!(
        !text.contains("aquifer_resource_lifetime_seconds_count"),
        "{text}"
    );
    let contact = sample(r#"aquifer_well_last_contact_timestamp_seconds{well="well-1"}"#);
    #[allow(clippy::cast_precision_loss)]
    let after = aquifer_server::api::now_ms() as f64 / 1e3;
    #[allow(clippy::cast_precision_loss)]
    let before = before_ms as f64 / 1e3;
    assert!(
        (before..=after).contains(&contact),
        "{before} {contact} {after}"
    );
    // Every line is a comment or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert_eq!(line.split_whitespace().count(), 2, "{line}");
    }
}

/// Everything a caller can read about the jobs: listings, each job and its
/// whole watch stream.
async fn observed(s: &Server) -> Vec<Value> {
    let (_, list) = s.call(Method::GET, "/0/jobs", Some(BOOT), None).await;
    let mut out = vec![list.clone()];
    for id in ids(&list) {
        let (_, shown) = s
            .call(Method::GET, &format!("/0/jobs/{id}"), Some(BOOT), None)
            .await;
        let (_, events) = s
            .call(
                Method::GET,
                &format!("/0/jobs/{id}/events"),
                Some(BOOT),
                None,
            )
            .await;
        out.extend([shown, events]);
    }
    out
}

async fn restart_mid_workload(s: Server) {
    let alice = user(&s, "alice", &[]).await;
    let jobs = [
        submitted(&s, &alice).await,
        submitted(&s, &alice).await,
        submitted(&s, &alice).await,
    ];
    // The well creates the first job's database and reports it ready, and
    // is in the middle of creating the second's.
    let lease = |s: &Server| {
        let handle = s.handle.clone();
        async move {
            let t = handle
                .send(Input::RequestLease {
                    well: WellId(1),
                    free: BTreeMap::from([(TypeId::new("pg"), 1)]),
                })
                .await
                .expect("granted");
            match &t.events[0] {
                Event::LeaseGranted { resources, .. } => resources[0],
                other => panic!("expected a grant, got {other:?}"),
            }
        }
    };
    let ready = lease(&s).await;
    s.handle
        .send(Input::ReportReady {
            well: WellId(1),
            resource: ready,
        })
        .await
        .expect("ready");
    let creating = lease(&s).await;
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/0/jobs/{}/cancel", jobs[2]),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let before = observed(&s).await;

    let (state, s) = s.restart().await;
    let recovered = s.handle.read(|s| s.clone()).await.expect("a state");
    assert_eq!(recovered, state, "the same state after the restart");
    assert_eq!(observed(&s).await, before, "the API shows the same jobs");
    // What the recovered state owes is owed again (the cancelled job's
    // nothing; the well's creation goes on under its lease).
    assert_eq!(s.effects.take(), pending_effects(&recovered));
    // Decisions are not taken twice: the ready report is a duplicate, the
    // lease in progress still counts, and ids go on where they were.
    let again = s
        .handle
        .send(Input::ReportReady {
            well: WellId(1),
            resource: ready,
        })
        .await;
    assert!(again.is_err(), "{again:?}");
    s.handle
        .send(Input::ReportReady {
            well: WellId(1),
            resource: creating,
        })
        .await
        .expect("the lease survived the restart");
    let next = submitted(&s, &alice).await;
    assert_eq!(next, jobs[2] + 1);
    // Alice's token still works, and nothing was lost.
    let (_, list) = s.call(Method::GET, "/0/jobs", Some(&alice), None).await;
    assert_eq!(ids(&list), vec![next, jobs[2], jobs[1], jobs[0]]);
    let (state, _s) = s.restart().await;
    let held: BTreeSet<ResourceId> = state.resources.keys().copied().collect();
    assert_eq!(held, BTreeSet::from([ready, creating]));
}

#[tokio::test]
async fn sqlite_restart_mid_workload_loses_and_repeats_nothing() {
    restart_mid_workload(server().await).await;
}

#[tokio::test]
async fn postgres_restart_mid_workload_loses_and_repeats_nothing() {
    if let Some(url) = postgres_url("api_restart").await {
        let dir = tempfile::tempdir().expect("temp dir");
        restart_mid_workload(server_on(&url, dir).await).await;
    }
}

/// The states a listing filters on mean what a job's owner means: its
/// turn in a queue, a lease out for it, a worker to come; a failed lease
/// puts it back in its queue.
#[tokio::test]
async fn job_states_say_queued_acquiring_and_waiting_for_a_worker() {
    let s = server().await;
    let state = |id: u64| {
        let s = &s;
        async move {
            let (_, body) = s
                .call(Method::GET, &format!("/0/jobs/{id}"), Some(BOOT), None)
                .await;
            body["state"].as_str().expect("a state").to_string()
        }
    };
    let listed = |q: &'static str| {
        let s = &s;
        async move {
            let (status, body) = s
                .call(Method::GET, &format!("/0/jobs?state={q}"), Some(BOOT), None)
                .await;
            assert_eq!(status, 200, "{body}");
            ids(&body)
        }
    };
    let (first, second) = two_jobs_one_granted(&s).await;
    assert_eq!(state(first).await, "acquiring");
    assert_eq!(state(second).await, "queued");
    assert_eq!(listed("queued").await, [second]);
    assert_eq!(listed("acquiring").await, [first]);
    // One of the first job's two fails, retryably: back in its queue.
    s.handle
        .send(Input::ReportFailed {
            well: WellId(1),
            resource: ResourceId(1),
            retryable: true,
        })
        .await
        .expect("reported");
    assert_eq!(state(first).await, "queued");
    // Both of its lease are destroyed; then the next grant goes to one
    // of the two, whose resources are made: it waits for a worker.
    for resource in [ResourceId(1), ResourceId(2)] {
        s.handle
            .send(Input::ConfirmDestroyed {
                well: WellId(1),
                resource,
            })
            .await
            .expect("destroyed");
    }
    let grant = s
        .handle
        .send(Input::RequestLease {
            well: WellId(1),
            free: BTreeMap::from([(TypeId::new("pg"), 2)]),
        })
        .await
        .expect("granted");
    let Some(Event::LeaseGranted { job, resources, .. }) = grant.events.first() else {
        panic!("a grant: {:?}", grant.events);
    };
    let granted = u64::from(job.0);
    assert_eq!(state(granted).await, "acquiring");
    for &resource in resources {
        s.handle
            .send(Input::ReportReady {
                well: WellId(1),
                resource,
            })
            .await
            .expect("ready");
    }
    assert_eq!(state(granted).await, "waiting_for_worker");
    assert_eq!(listed("waiting_for_worker").await, [granted]);
    let (status, body) = s
        .call(Method::GET, "/0/jobs?state=paused", Some(BOOT), None)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .expect("words")
            .contains("waiting_for_worker"),
        "{body}"
    );
}

/// Tags: kept with the job, shown with it, and a listing filtered by one
/// finds exactly the jobs that carry it; bad tags are refused.
async fn tags_find_their_jobs(s: &Server) {
    let tagged = |tags: Value| {
        let mut j = job();
        j["tags"] = tags;
        j
    };
    let (status, a) = s
        .submit(
            BOOT,
            tagged(json!({"repo": "oxide/aquifer", "commit": "abc"})),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    let (status, b) = s
        .submit(BOOT, tagged(json!({"repo": "oxide/omicron"})))
        .await;
    assert_eq!(status, 201, "{b}");
    let (_, shown) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{}", a["id"]),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(
        shown["tags"],
        json!({"repo": "oxide/aquifer", "commit": "abc"})
    );
    let listed = |q: &'static str| async move {
        let (status, body) = s
            .call(Method::GET, &format!("/0/jobs?tag={q}"), Some(BOOT), None)
            .await;
        (status, body)
    };
    let (_, only_a) = listed("repo%3Doxide%2Faquifer").await;
    assert_eq!(ids(&only_a), [a["id"].as_u64().expect("id")]);
    let (_, only_b) = listed("repo=oxide/omicron").await;
    assert_eq!(ids(&only_b), [b["id"].as_u64().expect("id")]);
    let (_, none) = listed("commit=abd").await;
    assert_eq!(ids(&none), Vec::<u64>::new());
    let (status, body) = listed("repo").await;
    assert_eq!((status, code(&body)), (400, "bad_query"), "{body}");
    for bad in [
        json!({"a b": "x"}),
        json!({"k": "line\nbreak"}),
        json!({"k": "x".repeat(257)}),
        Value::Object((0..33).map(|i| (format!("k{i}"), json!("v"))).collect()),
    ] {
        let (status, body) = s.submit(BOOT, tagged(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn output_rules_that_leave_the_work_directory_are_refused_at_submission() {
    let s = server().await;
    let mut j = job();
    j["output_rules"] = json!([
        "=report.xml",
        "%logs/*.log",
        "!tmp/*",
        "target/release/aquifer"
    ]);
    let (status, body) = s.submit(BOOT, j.clone()).await;
    assert_eq!(status, 201, "{body}");
    for bad in ["../secrets", "/etc/passwd", "=", "a//b", "!=x"] {
        j["output_rules"] = json!([bad]);
        let (status, body) = s.submit(BOOT, j.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (400, "bad_output_rule"),
            "{bad}: {body}"
        );
    }
    j["output_rules"] = json!(vec!["a"; 65]);
    let (status, body) = s.submit(BOOT, j).await;
    assert_eq!((status, code(&body)), (400, "limit_exceeded"), "{body}");
}

#[tokio::test]
async fn tags_find_their_jobs_on_sqlite() {
    tags_find_their_jobs(&server().await).await;
}

#[tokio::test]
async fn tags_find_their_jobs_on_postgres() {
    if let Some(url) = postgres_url("api_tags").await {
        let dir = tempfile::tempdir().expect("a temp dir");
        tags_find_their_jobs(&server_on(&url, dir).await).await;
    }
}
