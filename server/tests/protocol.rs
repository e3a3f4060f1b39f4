//! The well, factory, agent and bmat protocols over HTTP, end to end on
//! one server: a job gets its resource and worker, its agent starts it and
//! streams output, `bmat` reads metadata and secrets while it runs, and
//! after it ends everything is destroyed and the job retires. And the bad
//! inputs of each protocol are refused without a change of state.

mod common;
mod harness;

use harness::*;
use reqwest::Method;
use serde_json::{Value, json};

struct Client<'a> {
    s: &'a Server,
    token: String,
}

impl Client<'_> {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.s
            .call(Method::POST, path, Some(&self.token), Some(body))
            .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.s
            .call(Method::GET, path, Some(&self.token), None)
            .await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.s
            .call(Method::DELETE, path, Some(&self.token), None)
            .await
    }
}

async fn registered<'a>(s: &'a Server, path: &str, body: Value) -> Client<'a> {
    let (status, made) = s.call(Method::POST, path, Some(BOOT), Some(body)).await;
    assert_eq!(status, 201, "{made}");
    Client {
        s,
        token: made["token"].as_str().expect("a token").to_string(),
    }
}

fn id(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("an id: {v}"))
}

#[tokio::test]
async fn a_job_gets_its_resource_and_worker_runs_and_everything_is_destroyed() {
    let s = server().await;
    let boot = Client {
        s: &s,
        token: BOOT.into(),
    };
    boot.post("/0/admin/types", json!({"name": "probe", "max_per_job": 1}))
        .await;
    let well = registered(
        &s,
        "/0/admin/wells",
        json!({"name": "lab", "pools": {"probe": 1}}),
    )
    .await;
    let other_well = registered(
        &s,
        "/0/admin/wells",
        json!({"name": "lab2", "pools": {"probe": 1}}),
    )
    .await;
    let factory = registered(
        &s,
        "/0/admin/factories",
        json!({"name": "local", "targets": {"t": 1}}),
    )
    .await;
    let other_factory = registered(
        &s,
        "/0/admin/factories",
        json!({"name": "far", "targets": {"t": 1}}),
    )
    .await;

    // A well long-polls before there is work; the submission wakes it.
    let waiting = {
        let (http, base, token) = (s.http.clone(), s.base.clone(), well.token.clone());
        tokio::spawn(async move {
            let res = http
                .post(format!("{base}/0/well/lease"))
                .bearer_auth(token)
                .json(&json!({"free": {"probe": 1}, "wait_ms": 30000}))
                .send()
                .await
                .expect("an answer");
            res.json::<Value>().await.expect("json")
        })
    };
    let parked = async {
        while s.api.wakers.registry.admitted() == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), parked)
        .await
        .expect("the well's request waits");
    let mut job = job();
    job["resources"] = json!([{"name": "probe", "type": "probe"}]);
    job["tasks"] = json!([{"name": "t", "script": "bmat resource get probe"}]);
    let (status, submitted) = s.submit(BOOT, job).await;
    assert_eq!(status, 201, "{submitted}");
    let job_id = id(&submitted["id"]);
    let lease = waiting.await.expect("the well's request returns");
    let granted = &lease["lease"];
    assert_eq!(granted["job"], json!(job_id), "{lease}");
    assert_eq!(granted["rtype"], "probe");
    assert!(id(&granted["deadline_ms"]) > id(&granted["expires_at_ms"]) - 60_000);
    let resource = id(&granted["resources"][0]);

    // Renewal, and a report from a well that does not hold the resource.
    let (status, renewed) = well
        .post(
            &format!("/0/well/leases/{}/renew", granted["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    let ready = json!({"metadata": {"host": "probe-1"}, "secrets": {"password": "hunter2"}});
    let (status, body) = other_well
        .post(
            &format!("/0/well/resources/{resource}/ready"),
            ready.clone(),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "not_yours"), "{body}");
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{resource}/ready"),
            json!({"metadata": {"k": "a"}, "secrets": {"k": "b"}}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_report"), "{body}");
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{resource}/ready"),
            ready.clone(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = well
        .post(&format!("/0/well/resources/{resource}/ready"), ready)
        .await;
    assert_eq!((status, code(&body)), (409, "duplicate"), "{body}");
    let (_, listed) = well.get("/0/well/resources").await;
    assert_eq!(listed["resources"][0]["want"], "keep", "{listed}");

    // The factory gets the worker, bound to the job; another factory
    // cannot claim it.
    let (status, lease) = factory
        .post("/0/factory/lease", json!({"free": {"t": 1}}))
        .await;
    assert_eq!(status, 200, "{lease}");
    assert_eq!(lease["lease"]["job"], json!(job_id));
    let worker = id(&lease["lease"]["worker"]);
    let created = format!("/0/factory/workers/{worker}/created");
    let (status, body) = other_factory.post(&created, json!({})).await;
    assert_eq!((status, code(&body)), (403, "not_yours"), "{body}");
    let (status, lost) = factory.post(&created, json!({})).await;
    assert_eq!(status, 200, "{lost}");
    // The answer was lost, say: asked again, the factory gets a new key and
    // the first stops working.
    let (status, key) = factory.post(&created, json!({})).await;
    assert_eq!(status, 200, "{key}");
    let key = key["bootstrap"].as_str().expect("a key").to_string();
    assert_ne!(lost["bootstrap"].as_str(), Some(key.as_str()));
    let (status, _) = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            Some(json!({"key": lost["bootstrap"]})),
        )
        .await;
    assert_eq!(status, 401, "the replaced key is dead");
    // The key is nobody's API token.
    let (status, _) = s.call(Method::GET, "/0/whoami", Some(&key), None).await;
    assert_eq!(status, 401);

    // The agent bootstraps once; the key does not work twice.
    let (status, boot_answer) = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!(status, 200, "{boot_answer}");
    let (status, body) = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
    let (status, body) = factory.post(&created, json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (409, "duplicate"),
        "no new key once the agent has checked in"
    );
    let agent = Client {
        s: &s,
        token: boot_answer["token"].as_str().expect("a token").to_string(),
    };
    let (status, started) = agent.post("/0/agent/start", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["tasks"][0]["script"], "bmat resource get probe");
    let bmat = Client {
        s: &s,
        token: started["token"].as_str().expect("a job token").to_string(),
    };
    let (status, listed) = bmat.get("/0/job/resources").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["resources"][0]["name"], "probe");
    assert_eq!(listed["resources"][0]["metadata"]["host"], "probe-1");
    assert!(listed["resources"][0].get("secrets").is_none(), "{listed}");
    let (status, one) = bmat.get("/0/job/resources/probe").await;
    assert_eq!(
        (status, &one["secrets"]["password"]),
        (200, &json!("hunter2"))
    );
    let (status, body) = bmat.get("/0/job/resources/nope").await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().expect("words").contains("probe"));
    // A job token is not a user's.
    let (status, _) = bmat.get("/0/jobs").await;
    assert_eq!(status, 403);

    // An agent that starts again gets a new job token, and the first one
    // dies: one live token per job.
    let (status, again) = agent.post("/0/agent/start", json!({})).await;
    assert_eq!(status, 200, "{again}");
    let (status, _) = bmat.get("/0/job/resources").await;
    assert_eq!(status, 401, "the token of the first start was revoked");
    let bmat = Client {
        s: &s,
        token: again["token"].as_str().expect("a job token").to_string(),
    };
    let (status, _) = bmat.get("/0/job/resources").await;
    assert_eq!(status, 200);

    let (status, _) = agent
        .post(
            "/0/agent/output",
            json!({"task": "t", "stream": "stdout", "text": "hello\n"}),
        )
        .await;
    assert_eq!(status, 200);
    // A task name is a name, not a second place for a megabyte of text.
    let (status, body) = agent
        .post(
            "/0/agent/output",
            json!({"task": "t".repeat(100_000), "stream": "stdout", "text": ""}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_name"), "{body}");
    let (_, control) = agent.get("/0/agent/control?wait_ms=0").await;
    assert_eq!(control["ended"], false);
    let (status, body) = agent
        .post("/0/agent/finish", json!({"succeeded": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, control) = agent.get("/0/agent/control?wait_ms=30000").await;
    assert_eq!(
        (&control["ended"], &control["outcome"]),
        (&json!(true), &json!("succeeded"))
    );
    let (status, _) = bmat.get("/0/job/resources/probe").await;
    assert_eq!(status, 401, "the job token ends with the job");

    // The stream has the story, output included; secrets are in no event.
    let (_, stream) = boot.get(&format!("/0/jobs/{job_id}/events")).await;
    let text = stream.to_string();
    assert!(text.contains("hello"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // Clean-up: both learn what to destroy and confirm; the job retires.
    let (_, work) = well
        .post("/0/well/lease", json!({"free": {}, "wait_ms": 30000}))
        .await;
    assert_eq!(work["destroy"], json!([resource]), "{work}");
    let (status, _) = well.delete(&format!("/0/well/resources/{resource}")).await;
    assert_eq!(status, 200);
    let (_, work) = factory
        .post("/0/factory/lease", json!({"free": {}, "wait_ms": 30000}))
        .await;
    assert_eq!(work["destroy"], json!([worker]), "{work}");
    let (status, _) = factory
        .delete(&format!("/0/factory/workers/{worker}"))
        .await;
    assert_eq!(status, 200);
    let retired = s
        .handle
        .read(move |st| st.jobs.is_empty() && st.resources.is_empty() && st.workers.is_empty())
        .await
        .expect("a state");
    assert!(retired, "nothing is left in the books");
    let (status, _) = well.delete(&format!("/0/well/resources/{resource}")).await;
    assert_eq!(status, 410, "a second confirmation finds it gone");
    let (status, _) = agent.get("/0/agent/control").await;
    assert_eq!(status, 401, "the worker's token ends with the worker");

    // The whole history is a path of the model's transition function.
    let history = s.store.history().await.expect("the history");
    let replayed = aquifer_model::replay::replay(
        aquifer_core::Rules::production(),
        aquifer_core::Limits::default(),
        &history,
    )
    .expect("the log replays through the model");
    assert!(replayed.events > 20, "{replayed:?}");
}

/// A new well `name` with two slots of `pg`, a job submitted, and the
/// lease the well got for it: (the well, the job's id, the resources).
async fn leased<'a>(s: &'a Server, name: &str, job: Value) -> (Client<'a>, u64, Vec<u64>) {
    let well = registered(
        s,
        "/0/admin/wells",
        json!({"name": name, "pools": {"pg": 2}}),
    )
    .await;
    let (_, submitted) = s.submit(BOOT, job).await;
    let job_id = id(&submitted["id"]);
    let (_, lease) = well.post("/0/well/lease", json!({"free": {"pg": 2}})).await;
    let resources = (lease["lease"]["resources"]
        .as_array()
        .expect("resources")
        .iter())
    .map(id)
    .collect();
    (well, job_id, resources)
}

/// A well's reason with a NUL character in it, on each store: kept with
/// the character replaced, and the batch that carried it (with everyone
/// else's writes) commits.
async fn a_reason_with_nul_is_kept_without_it(s: Server) {
    let (well, job_id, resources) = leased(&s, "nul", job()).await;
    let resource = resources[0];
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{resource}/failed"),
            json!({"reason": "bad\0byte", "retryable": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, shown) = s
        .call(Method::GET, &format!("/0/jobs/{job_id}"), Some(BOOT), None)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["reason"], "bad\u{fffd}byte", "{shown}");
    // A NUL in a ready report's values is refused outright.
    let (_, submitted) = s.submit(BOOT, job()).await;
    assert!(submitted["id"].is_u64(), "{submitted}");
    let (_, lease) = well.post("/0/well/lease", json!({"free": {"pg": 2}})).await;
    let resource = id(&lease["lease"]["resources"][0]);
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{resource}/ready"),
            json!({"metadata": {}, "secrets": {"dsn": "a\0b"}}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_report"), "{body}");
}

#[tokio::test]
async fn sqlite_a_reason_with_nul_is_kept_without_it() {
    a_reason_with_nul_is_kept_without_it(server().await).await;
}

#[tokio::test]
async fn postgres_a_reason_with_nul_is_kept_without_it() {
    let Some(url) = common::postgres_url("nul").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    a_reason_with_nul_is_kept_without_it(server_on(&url, dir).await).await;
}

#[tokio::test]
async fn a_ready_instance_released_with_its_lease_loses_its_secret() {
    let s = server().await;
    let mut two = job();
    two["resources"][0]["count"] = json!(2);
    let (well, job_id, resources) = leased(&s, "pair", two).await;
    let (first, second) = (resources[0], resources[1]);
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{first}/ready"),
            json!({"metadata": {"host": "h"}, "secrets": {"dsn": "pg://u:pw@h"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let data = |s: &Server| {
        let store = s.store.clone();
        async move {
            let job = aquifer_core::JobId(u32::try_from(job_id).expect("small"));
            store.resource_data(job).await.expect("read")
        }
    };
    let before = data(&s).await;
    let kept = u32::try_from(first).expect("small");
    assert!(before[&kept].secrets.is_some(), "{before:?}");
    // The other instance fails for good: the lease ends, and with it the
    // ready instance goes to release without a `ResourceReleased` event.
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{second}/failed"),
            json!({"reason": "no room", "retryable": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = data(&s).await;
    assert_eq!(after[&kept].secrets, None, "{after:?}");
    assert_eq!(after[&kept].metadata, before[&kept].metadata);
}

/// A destroy that keeps failing ends with the resource held and the
/// well's last reason beside it for the operator; once the resource is
/// destroyed, its reason goes with it. On each store.
async fn a_held_resource_shows_the_wells_reason(s: Server) {
    let (well, job_id, resources) = leased(&s, "stuck", job()).await;
    let resource = resources[0];
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/0/jobs/{job_id}/cancel"),
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let limit = s
        .handle
        .read(|s| s.limits.destroy_failures_max)
        .await
        .expect("limits");
    for i in 1..=limit {
        let (status, body) = well
            .post(
                &format!("/0/well/resources/{resource}/destroy-failed"),
                json!({"reason": format!("attempt {i}: the disk is read-only")}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, listed) = s
        .call(Method::GET, "/0/admin/resources", Some(BOOT), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    let held = &listed[0];
    assert_eq!(held["state"], "held", "{listed}");
    assert_eq!(
        held["reason"],
        format!("attempt {limit}: the disk is read-only"),
        "{listed}"
    );
    let release = format!("/0/admin/resources/{resource}/release");
    let (status, _) = s.call(Method::POST, &release, Some(BOOT), None).await;
    assert_eq!(status, 200);
    let (status, _) = well.delete(&format!("/0/well/resources/{resource}")).await;
    assert_eq!(status, 200);
    assert!(
        s.store.resource_reasons().await.expect("read").is_empty(),
        "the reason is gone with the resource"
    );
}

#[tokio::test]
async fn sqlite_a_held_resource_shows_the_wells_reason() {
    a_held_resource_shows_the_wells_reason(server().await).await;
}

#[tokio::test]
async fn postgres_a_held_resource_shows_the_wells_reason() {
    let Some(url) = common::postgres_url("held").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    a_held_resource_shows_the_wells_reason(server_on(&url, dir).await).await;
}

/// The cap on a job's output counts what was stored before a restart: a
/// job gets no fresh cap when the server starts again.
#[tokio::test]
async fn sqlite_a_jobs_output_cap_holds_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::sqlite_url(&dir);
    a_jobs_output_cap_holds_across_a_restart(&url, dir).await;
}

#[tokio::test]
async fn postgres_a_jobs_output_cap_holds_across_a_restart() {
    let Some(url) = common::postgres_url("cap").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    a_jobs_output_cap_holds_across_a_restart(&url, dir).await;
}

async fn a_jobs_output_cap_holds_across_a_restart(url: &str, dir: tempfile::TempDir) {
    let http = aquifer_server::api::http::Http {
        // One entry of 30 bytes of text fits (with its JSON), two do not.
        output_bytes_per_job_max: 120,
        ..aquifer_server::api::http::Http::default()
    };
    let tuning = Tuning {
        http,
        ..Tuning::default()
    };
    let s = server_tuned(url, dir, tuning).await;
    let w = world::world_on(s).await;
    let worker = w.tokens["worker"].clone();
    let job = w.job;
    async fn say(s: &Server, worker: &str, text: &str) {
        let body = json!({"task": "test", "stream": "stdout", "text": text});
        let (status, answer) = s
            .call(Method::POST, "/0/agent/output", Some(worker), Some(body))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    say(&w.s, &worker, &"a".repeat(30)).await;
    let (_, s) = w.s.restart().await;
    say(&s, &worker, &"b".repeat(30)).await;
    let (_, stream) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{job}/events?limit=1000"),
            Some(BOOT),
            None,
        )
        .await;
    let text = stream.to_string();
    assert!(text.contains(&"a".repeat(30)), "{text}");
    assert!(
        !text.contains(&"b".repeat(30)),
        "past the cap after the restart: {text}"
    );
    assert!(text.contains("output_dropped"), "{text}");
}

/// A create that failed and was retried is history, not the reason of a
/// job that then succeeded: the event stream keeps it, the view does not.
#[tokio::test]
async fn a_job_that_succeeds_after_a_retried_create_has_no_failure_reason() {
    let s = server().await;
    let (well, job_id, resources) = leased(&s, "restarted", job()).await;
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{}/failed", resources[0]),
            json!({"reason": "the well restarted while creating it", "retryable": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, lease) = well.post("/0/well/lease", json!({"free": {"pg": 2}})).await;
    let resource = id(&lease["lease"]["resources"][0]);
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{resource}/ready"),
            json!({"metadata": {}, "secrets": {}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let factory = registered(
        &s,
        "/0/admin/factories",
        json!({"name": "local", "targets": {"t": 1}}),
    )
    .await;
    let (_, key) = world::next_worker(&s, &factory.token).await;
    let (worker_token, _) = world::started(&s, &key).await;
    let agent = Client {
        s: &s,
        token: worker_token,
    };
    let (status, body) = agent
        .post("/0/agent/finish", json!({"succeeded": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, shown) = s
        .call(Method::GET, &format!("/0/jobs/{job_id}"), Some(BOOT), None)
        .await;
    assert_eq!(shown["outcome"], "succeeded", "{shown}");
    assert_eq!(shown["reason"], Value::Null, "{shown}");
    let (_, stream) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{job_id}/events"),
            Some(BOOT),
            None,
        )
        .await;
    assert!(
        stream.to_string().contains("the well restarted"),
        "{stream}"
    );
}

#[tokio::test]
async fn a_failed_create_gives_the_owner_its_reason() {
    let s = server().await;
    let (well, job_id, resources) = leased(&s, "flaky", job()).await;
    let resource = resources[0];
    let (status, body) = well
        .post(
            &format!("/0/well/resources/{resource}/failed"),
            json!({"reason": "password authentication failed for user admin", "retryable": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, shown) = s
        .call(Method::GET, &format!("/0/jobs/{job_id}"), Some(BOOT), None)
        .await;
    assert_eq!(shown["outcome"], json!({"failed": "resource"}), "{shown}");
    assert_eq!(
        shown["reason"],
        "password authentication failed for user admin"
    );
    let (_, stream) = s
        .call(
            Method::GET,
            &format!("/0/jobs/{job_id}/events"),
            Some(BOOT),
            None,
        )
        .await;
    assert!(stream.to_string().contains("resource_failed"), "{stream}");
    // A well asking for a type it does not serve.
    let (status, body) = well
        .post("/0/well/lease", json!({"free": {"gpu": 1}}))
        .await;
    assert_eq!((status, code(&body)), (400, "not_served"), "{body}");
    // A user's token is not a well's.
    let (status, _) = s
        .call(Method::GET, "/0/well/resources", Some(BOOT), None)
        .await;
    assert_eq!(status, 403);
}

/// A check-in the driver could not record (503, nothing changed) is safe to
/// send again with the same key: the key is spent only once the check-in
/// is recorded. Before, the key was revoked first, the retry got 401 and
/// the job failed as `worker_lost`.
#[tokio::test]
async fn a_check_in_answered_503_can_be_sent_again_with_the_same_key() {
    let s = server().await;
    let factory = registered(
        &s,
        "/0/admin/factories",
        json!({"name": "f", "targets": {"t": 1}}),
    )
    .await;
    let mut job = job();
    job["resources"] = json!([]);
    let (status, submitted) = s.submit(BOOT, job).await;
    assert_eq!(status, 201, "{submitted}");
    let (status, lease) = factory
        .post("/0/factory/lease", json!({"free": {"t": 1}}))
        .await;
    assert_eq!(status, 200, "{lease}");
    let worker = id(&lease["lease"]["worker"]);
    let (status, key) = factory
        .post(&format!("/0/factory/workers/{worker}/created"), json!({}))
        .await;
    assert_eq!(status, 200, "{key}");
    let key = key["bootstrap"].clone();

    // Another writer appends to the log: the driver's next commit fails,
    // it answers 503 and stops until a restart recovers.
    let seq = s.store.events_after(0).await.expect("read").len() as u64;
    s.store
        .append(
            seq,
            aquifer_core::Time::ZERO,
            &[aquifer_core::Event::LeasesHeld { held: true }],
            &[],
        )
        .await
        .expect("sneak in");
    let check_in = json!({"key": key});
    let (status, body) = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            Some(check_in.clone()),
        )
        .await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");

    let (_, s) = s.restart().await;
    let (status, boot) = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            Some(check_in.clone()),
        )
        .await;
    assert_eq!(status, 200, "the same key works after the 503: {boot}");
    let agent = Client {
        s: &s,
        token: boot["token"].as_str().expect("a token").to_string(),
    };
    let (status, started) = agent.post("/0/agent/start", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["job"], submitted["id"]);
    // Spent now: a third use is refused.
    let (status, body) = s
        .call(Method::POST, "/0/agent/bootstrap", None, Some(check_in))
        .await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
}

/// The agent proposes its worker token. A bootstrap that spent the key
/// but whose answer was lost (the server died before sending it) is asked
/// again, the key is refused, and the proposed token gets the same answer:
/// the worker is not lost to a restart.
#[tokio::test]
async fn a_bootstrap_whose_answer_was_lost_is_answered_again() {
    let w = world::world().await;
    let key = w.tokens["key"].clone();
    let proposed = aquifer_protocol::token::compose(&[7; 8], &[9; 32]);
    let boot = |header: String, body: Value| {
        let request = (w.s.http)
            .post(format!("{}/0/agent/bootstrap", w.s.base))
            .header("authorization", format!("Bearer {header}"))
            .json(&body);
        async move {
            let answer = request.send().await.expect("an answer");
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or_default())
        }
    };
    // The first try: answered, but the agent never hears it.
    let (status, lost) = boot(key.clone(), json!({"token": proposed})).await;
    assert_eq!(status, 200, "{lost}");
    assert_eq!(lost["token"], json!(proposed));
    assert_eq!(lost["worker"], json!(w.worker));
    let (status, _) = boot(key.clone(), json!({"token": proposed})).await;
    assert_eq!(status, 401, "the key is spent");
    // The one client tries the key, then its token: the same answer.
    let client = aquifer_protocol::Client::new(&w.s.base, None).expect("a client");
    let again = (client.agent_bootstrap(&key, &proposed).await).expect("answered again");
    assert_eq!(
        (again.worker.0, again.token.as_str()),
        (u32::try_from(w.worker).expect("small"), proposed.as_str())
    );
    let (status, started) =
        w.s.call(
            Method::POST,
            "/0/agent/start",
            Some(&proposed),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "the proposed token is the worker's: {started}");
    // Someone with the spent key and another token gets nothing.
    let other = aquifer_protocol::token::compose(&[8; 8], &[9; 32]);
    let refused = client.agent_bootstrap(&key, &other).await;
    assert_eq!(refused.err().and_then(|e| e.status()), Some(401));

    // A proposal whose id is taken is refused, and the key stays good.
    let (status, made) =
        w.s.call(
            Method::POST,
            "/0/admin/factories",
            Some(BOOT),
            Some(json!({"name": "f2", "targets": {"t": 1}})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let mut bare = job();
    bare["resources"] = json!([]);
    w.s.submit(BOOT, bare).await;
    let factory = made["token"].as_str().expect("a token");
    let (_, second) = world::next_worker(&w.s, factory).await;
    let (status, body) = boot(second.clone(), json!({"token": proposed})).await;
    assert_eq!(status, 401, "{body}");
    let fresh = aquifer_protocol::token::compose(&[5; 8], &[6; 32]);
    let (status, body) = boot(second, json!({"token": fresh})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"], json!(fresh));
}
