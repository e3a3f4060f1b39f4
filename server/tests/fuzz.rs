//! Hostile input against the real HTTP API: generated requests to every
//! endpoint (`Route::EVERY`) from every kind of caller, with mutated
//! examples of each body, random bytes, broken ids, odd query strings
//! and content types. Whatever comes in, the answer is a 2xx with a JSON
//! body or a 4xx with the error shape, never a 5xx, a dropped connection
//! or a hang, and a refusal changes nothing: not the scheduler's state,
//! not its log.
//!
//! `AQUIFER_FUZZ_CASES` sets how many cases run (256 by default); a
//! failing case is shrunk and printed, and belongs in `CORPUS` once fixed.

mod common;
mod harness;

use aquifer_server::api::route::Route;
use harness::world::*;
use harness::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Cases run on one world before the next.
const WORLD_CASES: u32 = 50;

/// A clock that never moves: no deadline passes during the run, so the
/// only changes of state are the ones requests make.
struct Frozen;

impl aquifer_server::driver::Clock for Frozen {
    fn now(&self) -> aquifer_core::Time {
        aquifer_core::Time(1_000_000)
    }
}

/// One generated request.
#[derive(Clone, Debug)]
struct Case {
    method: Method,
    path: String,
    query: String,
    who: Who,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

/// A valid body for each route that reads one, to mutate.
fn example(route: Route) -> Value {
    match route {
        Route::SubmitJob => job(),
        Route::DefineType => json!({"name": "x", "max_per_job": 1}),
        Route::DefineTarget => json!({"name": "y"}),
        Route::CreateUser => json!({"name": "zed", "privileges": ["lab"]}),
        Route::SetPrivileges(_) => json!({"grant": ["lab"], "revoke": []}),
        Route::CreateWell => json!({"name": "w2", "pools": {"pg": 2}}),
        Route::CreateFactory => json!({"name": "f2", "targets": {"t": 1}}),
        Route::HoldLeases => json!({"held": false}),
        Route::WellLease => json!({"free": {"pg": 1}, "wait_ms": 0}),
        Route::WellReady(_) => json!({"metadata": {"host": "h"}, "secrets": {"pw": "s"}}),
        Route::WellFailed(_) => json!({"reason": "r", "retryable": true}),
        Route::WellDestroyFailed(_) => json!({"reason": "r"}),
        Route::FactoryLease => json!({"free": {"t": 1}, "wait_ms": 0}),
        Route::AgentBootstrap => json!({"key": "aq_00_00"}),
        Route::AgentOutput => json!({"task": "test", "stream": "stdout", "text": "x"}),
        Route::AgentFinish => json!({"succeeded": false, "reason": "r"}),
        Route::JobStorePut => json!({"value": "v", "secret": true}),
        Route::AgentOutputBegin => json!({"path": "out/report.xml", "size": 5}),
        Route::AgentOutputCommit(_) => json!({"size": 5, "sha256": "00"}),
        _ => json!({}),
    }
}

/// Any JSON value, with the strings and numbers that break parsers.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            ".*",
            "[a-z]{1,8}",
            Just("\u{0}".to_string()),
            Just("x".repeat(70_000)),
            Just("../../etc/passwd".to_string()),
            Just("admin.*".to_string()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A change to a JSON document, applied at the `at`-th node.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any_json()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), "[a-z_]{1,10}", any_json())
            .prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
    ]
}

/// The number of nodes of `v`, counted depth first.
fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(nodes).sum(),
        Value::Object(o) => o.values().map(nodes).sum(),
        _ => 0,
    }
}

/// The `at`-th node of `v`, depth first.
fn node(v: &mut Value, at: usize) -> &mut Value {
    if at == 0 {
        return v;
    }
    let mut at = at - 1;
    let children: Vec<&mut Value> = match v {
        Value::Array(a) => a.iter_mut().collect(),
        Value::Object(o) => o.values_mut().collect(),
        _ => unreachable!("a leaf has no node below it"),
    };
    for child in children {
        let n = nodes(child);
        if at < n {
            return node(child, at);
        }
        at -= n;
    }
    unreachable!("`at` is below the count")
}

fn apply(mut doc: Value, m: &Mutation) -> Value {
    let count = nodes(&doc);
    match m {
        Mutation::Replace(at, v) => *node(&mut doc, at % count) = v.clone(),
        Mutation::Remove(at) => {
            if let Value::Object(o) = node(&mut doc, at % count)
                && let Some(k) = o.keys().next().cloned()
            {
                o.remove(&k);
            }
        }
        Mutation::Insert(at, k, v) => match node(&mut doc, at % count) {
            Value::Object(o) => {
                o.insert(k.clone(), v.clone());
            }
            Value::Array(a) => a.push(v.clone()),
            other => *other = v.clone(),
        },
    }
    doc
}

/// A long-poll's wait is kept short, so that a valid wait is not taken
/// for a hang; a wait that is not a number stays, to be refused.
fn short_waits(doc: &mut Value) {
    if let Some(w) = doc.get_mut("wait_ms")
        && w.as_u64().is_some_and(|n| n > 50)
    {
        *w = json!(50);
    }
}

/// What goes where an id goes in a path.
fn path_id(real: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(real.to_string()),
        1 => Just("0".to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just("4294967296".to_string()),
        1 => Just("18446744073709551616".to_string()),
        1 => Just("-1".to_string()),
        1 => Just("%2e%2e".to_string()),
        1 => "[a-zA-Z%.]{0,6}",
    ]
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..50).prop_map(|n| n.to_string()),
        Just("9223372036854775808".to_string()),
        Just("-1".to_string()),
        Just("waiting".to_string()),
        Just("ended".to_string()),
        Just("alice".to_string()),
        "[a-z%&=+]{0,8}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("wait_ms"),
        Just("after"),
        Just("limit"),
        Just("before"),
        Just("state"),
        Just("owner"),
        Just("colour"),
    ];
    prop::collection::vec((key, query_value()), 0..4).prop_map(|pairs| {
        let mut q: Vec<String> = (pairs.iter())
            .map(|(k, v)| match v.parse::<u64>() {
                // A valid wait is a real wait: kept short (see `short_waits`).
                Ok(n) if *k == "wait_ms" && n > 50 => "wait_ms=50".to_string(),
                _ => format!("{k}={v}"),
            })
            .collect();
        // A real wait is bounded by the test, not by the server's cap.
        if !q.iter().any(|p| p.starts_with("wait_ms=")) {
            q.push("wait_ms=0".into());
        }
        format!("?{}", q.join("&"))
    })
}

fn case(w: &World) -> impl Strategy<Value = Case> + use<> {
    let ids = [
        w.job, w.user, w.well, w.factory, w.ready, w.lease, w.worker, w.creating,
    ];
    let route = prop::sample::select(Route::EVERY.to_vec());
    // Half the time the caller the endpoint is for, so that cases get
    // past authentication to the parsing and the decisions behind it.
    let who = prop_oneof![
        Just(None),
        prop::sample::select(WHO.to_vec()).prop_map(Some)
    ];
    let method = prop_oneof![
        8 => Just(None),
        1 => prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::PATCH]).prop_map(Some),
    ];
    let body = prop_oneof![
        6 => prop::collection::vec(mutation(), 0..4).prop_map(Some),
        1 => Just(None),
    ];
    let raw = prop_oneof![
        9 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Some),
    ];
    let content_type = prop_oneof![
        8 => Just(Some("application/json".to_string())),
        1 => Just(None),
        1 => prop_oneof![
            Just("text/plain".to_string()),
            Just("application/json; charset=latin1".to_string()),
            Just("APPLICATION/JSON".to_string()),
            "[ -~]{0,20}",
        ]
        .prop_map(Some),
    ];
    let id_choices: Vec<BoxedStrategy<String>> =
        ids.iter().map(|&id| path_id(id).boxed()).collect();
    (
        route,
        who,
        method,
        body,
        raw,
        content_type,
        query(),
        id_choices,
        "[a-z0-9%._-]{0,12}",
    )
        .prop_map(
            move |(route, who, method, mutations, raw, content_type, query, ids, name)| {
                let (default_method, template) = route.template();
                let path = template
                    .replace("{job}", &ids[0])
                    .replace("{user}", &ids[1])
                    .replace("{well}", &ids[2])
                    .replace("{factory}", &ids[3])
                    .replace("{resource}", &ids[4])
                    .replace("{lease}", &ids[5])
                    .replace("{worker}", &ids[6])
                    .replace("{name}", &name)
                    .replace("{key}", &name)
                    .replace("{output}", &ids[0]);
                let body = match (raw, mutations) {
                    (Some(bytes), _) => Some(bytes),
                    (None, None) => None,
                    (None, Some(mutations)) => {
                        let mut doc = mutations.iter().fold(example(route), apply);
                        short_waits(&mut doc);
                        Some(serde_json::to_vec(&doc).expect("json"))
                    }
                };
                Case {
                    method: method.unwrap_or(default_method),
                    path,
                    query,
                    who: who.unwrap_or_else(|| meant_for(route)),
                    content_type,
                    body,
                }
            },
        )
}

/// The kind of caller an endpoint is for.
fn meant_for(route: Route) -> Who {
    let (_, template) = route.template();
    match template.split('/').nth(2) {
        Some("admin") => Who::Admin,
        Some("well") => Who::Well,
        Some("factory") => Who::Factory,
        Some("agent") if route == Route::AgentBootstrap => Who::Key,
        Some("agent") => Who::Worker,
        Some("job") => Who::OtherJob,
        _ => Who::Owner,
    }
}

/// What a refusal must leave as it was.
async fn books(s: &Server) -> (aquifer_core::State, usize) {
    let state = s.handle.read(Clone::clone).await.expect("the driver runs");
    let log = s.store.history().await.expect("the log").len();
    (state, log)
}

/// How many answers of each status the run saw, to print.
static SEEN: std::sync::Mutex<std::collections::BTreeMap<u16, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

async fn check(w: &World, c: &Case) -> Result<(), TestCaseError> {
    let before = books(&w.s).await;
    let url = format!("{}{}{}", w.s.base, c.path, c.query);
    let mut request = w.s.http.request(c.method.clone(), url);
    if let Some(h) = w.header(c.who) {
        request = request.header("authorization", h);
    }
    if let Some(t) = &c.content_type {
        request = request.header("content-type", t);
    }
    if let Some(b) = &c.body {
        request = request.body(b.clone());
    }
    let answer = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .map_err(|_| TestCaseError::fail("no answer within 20 s"))?
        .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
    let status = answer.status().as_u16();
    if let Ok(mut seen) = SEEN.lock() {
        *seen.entry(status).or_insert(0) += 1;
    }
    let plain = (answer.headers().get("content-type"))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let text = answer.text().await.unwrap_or_default();
    prop_assert!(status < 500, "{status}: {text}");
    if plain && status == 200 {
        // `/metrics`, in Prometheus's text format: comments and samples.
        prop_assert!(
            (text.lines()).all(|l| l.starts_with('#') || l.split_whitespace().count() == 2),
            "{text}"
        );
        return Ok(());
    }
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{status}, not JSON ({e}): {text}")))?;
    if status >= 400 {
        prop_assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{status} without the error shape: {text}"
        );
        let after = books(&w.s).await;
        prop_assert!(
            before.1 == after.1,
            "a refusal ({status} {text}) wrote to the log"
        );
        prop_assert!(
            before.0 == after.0,
            "a refusal ({status} {text}) changed the state"
        );
    }
    Ok(())
}

/// Which store a run's worlds are on.
#[derive(Clone, Copy)]
enum On {
    Sqlite,
    Postgres,
}

async fn frozen_world(on: On) -> World {
    static WORLDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match on {
        On::Sqlite => common::sqlite_url(&dir),
        On::Postgres => {
            let n = WORLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            common::postgres_url(&format!("fuzz{n}"))
                .await
                .expect("a PostgreSQL server")
        }
    };
    let tuning = Tuning {
        clock: Some(Arc::new(Frozen)),
        ..Tuning::default()
    };
    let s = server_tuned(&url, dir, tuning).await;
    world_on(s).await
}

/// Runs `cases` generated cases on worlds on `on`.
fn fuzz(on: On, cases: u32) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // Successes change the world (a token revoked, a job cancelled): a
    // fresh one every so many cases keeps the cases reaching deep. Its
    // ids are the same each time, so the strategy stays valid.
    let fresh = || {
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), frozen_world(on))
                .await
                .expect("a fresh world within 60 s")
        })
    };
    let first = fresh();
    let strategy = case(&first);
    let world = std::cell::RefCell::new((first, 0_u32));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |c| {
        let mut w = world.borrow_mut();
        if w.1 == WORLD_CASES {
            let (old, _) = std::mem::replace(&mut *w, (fresh(), 0));
            runtime.block_on(old.s.stop());
        }
        w.1 += 1;
        let result = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(40), check(&w.0, &c))
                .await
                .unwrap_or_else(|_| Err(TestCaseError::fail("the case did not end within 40 s")))
        });
        if let Err(e) = &result {
            // Shown at once: shrinking may take a while.
            eprintln!("fuzz: failed: {e}\n  {c:?}");
        }
        result
    });
    let seen = SEEN.lock().map(|s| format!("{s:?}")).unwrap_or_default();
    eprintln!(
        "fuzz: {cases} cases in {:.1} s; answers by status so far: {seen}",
        started.elapsed().as_secs_f64()
    );
    let (last, _) = world.into_inner();
    runtime.block_on(last.s.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn cases() -> u32 {
    std::env::var("AQUIFER_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

#[test]
fn sqlite_any_request_gets_a_json_answer_below_500_and_a_refusal_changes_nothing() {
    fuzz(On::Sqlite, cases());
}

/// A quarter as many cases on PostgreSQL, whose text rules differ (a NUL
/// once failed whole batches there).
#[test]
fn postgres_any_request_gets_a_json_answer_below_500_and_a_refusal_changes_nothing() {
    if std::env::var_os("AQUIFER_TEST_POSTGRES_URL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AQUIFER_TEST_POSTGRES_URL"
        );
        return;
    }
    fuzz(On::Postgres, cases().div_ceil(4));
}

/// Inputs that once broke the server, each fixed with a test of its own;
/// they stay here so that no change brings one back.
#[tokio::test]
async fn the_corpus_of_found_cases_stays_fixed() {
    let w = frozen_world(On::Sqlite).await;
    let case = |method: Method, path: String, query: &str, who: Who, body: Option<Value>| Case {
        method,
        path,
        query: query.to_string(),
        who,
        content_type: Some("application/json".into()),
        body: body.map(|b| serde_json::to_vec(&b).expect("json")),
    };
    let id = w.job;
    let corpus = [
        // A stream number past i64 panicked the handler.
        case(
            Method::GET,
            format!("/0/jobs/{id}/events"),
            "?after=9223372036854775808",
            Who::Owner,
            None,
        ),
        // A NUL in a well's reason failed the whole batch on PostgreSQL.
        case(
            Method::POST,
            format!("/0/well/resources/{}/failed", w.creating),
            "",
            Who::Well,
            Some(json!({"reason": "bad\u{0}byte", "retryable": true})),
        ),
        case(
            Method::POST,
            format!("/0/well/resources/{}/ready", w.creating),
            "",
            Who::Well,
            Some(json!({"metadata": {}, "secrets": {"dsn": "a\u{0}b"}})),
        ),
        // 500,000 dependencies took 50 s of lookups.
        case(
            Method::POST,
            "/0/jobs".into(),
            "",
            Who::Owner,
            Some({
                let mut j = job();
                j["depends_on"] = json!((1..=20_000).collect::<Vec<u32>>());
                j
            }),
        ),
        // A megabyte task name was stored as output.
        case(
            Method::POST,
            "/0/agent/output".into(),
            "",
            Who::Worker,
            Some(json!({"task": "t".repeat(100_000), "stream": "stdout", "text": ""})),
        ),
        // A privilege no grant could give was accepted at creation.
        case(
            Method::POST,
            "/0/admin/users".into(),
            "",
            Who::Admin,
            Some(json!({"name": "odd", "privileges": ["bad priv!\u{0}"]})),
        ),
        // Probing user names through the owner filter.
        case(
            Method::GET,
            "/0/jobs".into(),
            "?owner=nobody",
            Who::Owner,
            None,
        ),
    ];
    for c in &corpus {
        if let Err(e) = check(&w, c).await {
            panic!("{c:?}: {e}");
        }
    }
}
