//! End to end: the real server, wells, local factory, agents and `bmat`,
//! each its own process, on loopback. Every test ends by checking that
//! nothing is left (no resource in the books, no worker directory, no
//! process of the run) and by replaying the server's history through the
//! model.

use aquifer_e2e::Stack;
use aquifer_protocol::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Types `a` and `b`, target `local`, a slot well for `a` (two items),
/// a chaos well for `b` with `chaos` settings, and the local factory with
/// `workers` workers. Returns the factory's workers directory.
async fn world(s: &mut Stack, chaos: &str, workers: u16) -> anyhow::Result<PathBuf> {
    s.define_type("a", 1).await?;
    s.define_type("b", 1).await?;
    s.define_target("local").await?;
    let slot = s
        .register("wells", json!({"name": "slots", "pools": {"a": 2}}))
        .await?;
    let chaos_token = s
        .register("wells", json!({"name": "chaos", "pools": {"b": 2}}))
        .await?;
    let factory = s
        .register(
            "factories",
            json!({"name": "local", "targets": {"local": workers}}),
        )
        .await?;
    let url = s.url.clone();
    let dir = s.dir.path().to_path_buf();
    s.spawn_service(
        "slots",
        &["well", "run"],
        &format!(
            r#"url = "{url}"
token = "{slot}"
data_dir = "{d}"
reconcile_interval_ms = 1000
[well]
kind = "slot"
rtype = "a"
[well.items.a-one]
metadata = {{ colour = "red" }}
[well.items.a-two]
metadata = {{ colour = "blue" }}
"#,
            d = dir.join("slots").display()
        ),
    )?;
    write_chaos(s, &chaos_token, chaos)?;
    std::fs::write(dir.join("chaos.token"), &chaos_token)?;
    let workers_dir = dir.join("factory").join("workers");
    s.spawn_service(
        "factory",
        &["factory", "local"],
        &format!(
            r#"url = "{url}"
token = "{factory}"
data_dir = "{d}"
reconcile_interval_ms = 1000
[targets]
local = {workers}
[agent_env]
AQUIFER_E2E_RUN = "{run}"
"#,
            d = dir.join("factory").display(),
            run = s.run,
        ),
    )?;
    Ok(workers_dir)
}

/// (Re)starts the chaos well with `settings` under `[well]`.
fn write_chaos(s: &mut Stack, token: &str, settings: &str) -> anyhow::Result<()> {
    let config = format!(
        r#"url = "{url}"
token = "{token}"
data_dir = "{d}"
reconcile_interval_ms = 500
[capacity]
b = 2
[well]
kind = "chaos"
{settings}
"#,
        url = s.url,
        d = s.dir.path().join("chaos").display()
    );
    s.spawn_service("chaos", &["well", "run"], &config)
}

fn job(name: &str, resources: Value, script: &str, timeout_s: u64) -> Value {
    json!({
        "name": name,
        "target": "local",
        "resources": resources,
        "tasks": [{"name": "main", "script": script}],
        "timeout_s": timeout_s,
    })
}

/// One type `rtype` (at most as many a job as there are `items`) served by
/// a slot well with those items, polling for 20 s at a time, and target
/// `local` with the local factory's `workers` workers. Returns the
/// factory's workers directory.
async fn slot_world(s: &mut Stack, rtype: &str, items: &[&str], workers: u16) -> PathBuf {
    let n = u16::try_from(items.len()).expect("a few items");
    s.define_type(rtype, n).await.expect("type");
    s.define_target("local").await.expect("target");
    let well = s
        .register("wells", json!({"name": rtype, "pools": {rtype: n}}))
        .await
        .expect("well");
    let factory = s
        .register(
            "factories",
            json!({"name": "local", "targets": {"local": workers}}),
        )
        .await
        .expect("factory");
    let dir = s.dir.path().to_path_buf();
    let url = s.url.clone();
    let items: String = items
        .iter()
        .map(|i| format!("[well.items.{i}]\n"))
        .collect();
    s.spawn_service(
        rtype,
        &["well", "run"],
        &format!(
            "url = \"{url}\"\ntoken = \"{well}\"\ndata_dir = \"{}\"\nwait_ms = 20000\n[well]\nkind = \"slot\"\nrtype = \"{rtype}\"\n{items}",
            dir.join(rtype).display()
        ),
    )
    .expect("well");
    s.spawn_service(
        "factory",
        &["factory", "local"],
        &format!(
            "url = \"{url}\"\ntoken = \"{factory}\"\ndata_dir = \"{}\"\n[targets]\nlocal = {workers}\n[agent_env]\nAQUIFER_E2E_RUN = \"{}\"\n",
            dir.join("factory").display(),
            s.run
        ),
    )
    .expect("factory");
    dir.join("factory").join("workers")
}

async fn outcome(s: &Stack, id: u64) -> anyhow::Result<Value> {
    Ok(s.retired(id).await?["outcome"].clone())
}

async fn end(s: Stack, workers: &std::path::Path) {
    s.assert_clean(workers).await.expect("nothing is left");
    let replayed = s
        .finish()
        .await
        .expect("the history replays through the model");
    assert!(replayed >= 5, "{replayed} inputs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reads_resources_of_two_wells_and_everything_is_destroyed() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(&mut s, "", 2).await.expect("a world");
    let script = r#"
set -eu
echo "colour=$(bmat resource get first colour)"
echo "chaos=$(bmat resource get second chaos)"
test -n "$(bmat resource get second token)"
bmat resource get nothing 2>/dev/null && exit 9
echo done
"#;
    let id = s
        .submit(job(
            "two",
            json!([{"name": "first", "type": "a"}, {"name": "second", "type": "b"}]),
            script,
            60,
        ))
        .await
        .expect("submitted");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    let out = s.output(id).await.expect("output");
    assert!(
        out.contains("colour=red") || out.contains("colour=blue"),
        "{out}"
    );
    assert!(out.contains("chaos=") && out.contains("done"), "{out}");
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_jobs_than_slots_of_two_types_all_finish() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(&mut s, "", 4).await.expect("a world");
    // Five jobs each want one `a` (two items) and one `b` (two slots):
    // at most two run at once, the rest queue, and none deadlocks.
    let mut ids = Vec::new();
    for i in 0..5 {
        let resources = json!([{"name": "x", "type": "a"}, {"name": "y", "type": "b"}]);
        ids.push(
            s.submit(job(&format!("queue-{i}"), resources, "sleep 0.2", 120))
                .await
                .expect("submitted"),
        );
    }
    for &id in &ids {
        assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    }
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_slot_is_handed_on_as_soon_as_it_is_destroyed() {
    let mut s = Stack::start().await.expect("a server");
    let workers = slot_world(&mut s, "probe", &["only"], 4).await;
    let n = 21;
    let mut ids = Vec::new();
    for i in 0..n {
        let resources = json!([{"name": "p", "type": "probe"}]);
        ids.push(
            s.submit(job(&format!("one-{i}"), resources, "true", 120))
                .await
                .expect("submitted"),
        );
    }
    // When each job's probe was destroyed, and when the next job's lease
    // was granted, by the server's clock.
    let mut destroyed = Vec::new();
    let mut granted = Vec::new();
    for &id in &ids {
        let seen = s
            .follow(id, |e| e["event"] == "job_retired")
            .await
            .expect("retired");
        let page = s
            .ok(Method::GET, &format!("/0/jobs/{id}/events"), None)
            .await
            .expect("events");
        let at = |kind: &str| {
            (page["events"].as_array().into_iter().flatten())
                .find(|e| e["event"]["event"] == kind)
                .and_then(|e| e["at_ms"].as_u64())
                .unwrap_or_else(|| panic!("job {id} has no {kind}: {seen:?}"))
        };
        granted.push(at("lease_granted"));
        destroyed.push(at("resource_destroyed"));
        let shown = s
            .ok(Method::GET, &format!("/0/jobs/{id}"), None)
            .await
            .expect("job");
        assert_eq!(shown["outcome"], "succeeded", "{shown}");
    }
    // One probe: each job's lease comes after the previous one's probe is
    // gone, never before (the pool is never over-committed).
    let mut handoff_ms: Vec<u64> = Vec::new();
    for i in 1..n {
        assert!(
            granted[i] >= destroyed[i - 1],
            "job {} was granted the probe at {} before it was destroyed at {}",
            ids[i],
            granted[i],
            destroyed[i - 1]
        );
        handoff_ms.push(granted[i] - destroyed[i - 1]);
    }
    handoff_ms.sort_unstable();
    let p = |q: f64| handoff_ms[((handoff_ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "handoff from destroy confirmation to the next grant over {} handoffs: p50 {} ms, p99 {} ms",
        handoff_ms.len(),
        p(0.5),
        p(0.99)
    );
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_killed_mid_create_cleans_up_and_the_request_is_served_again() {
    let limits = aquifer_core::Limits {
        lease_ttl_ms: 1500,
        ..aquifer_core::Limits::default()
    };
    let mut s = Stack::start_with(limits).await.expect("a server");
    let workers = world(&mut s, "crash_after_creates = 1", 2)
        .await
        .expect("a world");
    let id = s
        .submit(job(
            "crash",
            json!([{"name": "y", "type": "b"}]),
            "bmat resource get y chaos",
            60,
        ))
        .await
        .expect("submitted");
    let status = s.wait_service_exit("chaos").await.expect("the well exits");
    assert_eq!(status.code(), Some(101), "it crashed mid-create");
    // What it made is on record in its data directory; the lease expires
    // and the request waits at its place until the well is back.
    s.follow(id, |e| e["event"] == "lease_ended")
        .await
        .expect("the lease expires");
    let token = std::fs::read_to_string(s.dir.path().join("chaos.token")).expect("token");
    write_chaos(&mut s, &token, "").expect("the well restarts");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    // The restarted well destroyed what its first life made: its records
    // name nothing.
    let records = std::fs::read_to_string(s.dir.path().join("chaos").join("chaos.json"))
        .expect("the chaos well's records");
    let made: Value = serde_json::from_str(&records).expect("JSON");
    assert_eq!(made["made"], json!({}), "{records}");
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_fails_the_job_with_the_wells_reason() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(
        &mut s,
        "create_fail_probability = 1.0\ncreate_fail_retryable = false",
        2,
    )
    .await
    .expect("a world");
    let id = s
        .submit(job(
            "doomed",
            json!([{"name": "y", "type": "b"}]),
            "true",
            60,
        ))
        .await
        .expect("submitted");
    let shown = s.retired(id).await.expect("retired");
    assert_eq!(shown["outcome"], json!({"failed": "resource"}), "{shown}");
    assert!(
        shown["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{shown}"
    );
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_while_acquiring_waiting_for_a_worker_and_running() {
    let mut s = Stack::start().await.expect("a server");
    // Creates of `b` take 3 s, so a job is caught acquiring.
    let workers = world(&mut s, "create_delay_ms = [3000, 3000]", 1)
        .await
        .expect("a world");
    // Running: the only worker runs a long task.
    let running = s
        .submit(job("long", json!([]), "echo started; sleep 300", 600))
        .await
        .expect("submitted");
    s.follow(running, |e| e["event"] == "output")
        .await
        .expect("it runs");
    // Waiting for a worker: it holds its `a` and waits for the worker.
    let waiting = s
        .submit(job(
            "waits",
            json!([{"name": "x", "type": "a"}]),
            "true",
            600,
        ))
        .await
        .expect("submitted");
    s.follow(waiting, |e| e["event"] == "worker_queued")
        .await
        .expect("it waits for a worker");
    // Acquiring: its `b` is being created.
    let acquiring = s
        .submit(job(
            "slow",
            json!([{"name": "y", "type": "b"}]),
            "true",
            600,
        ))
        .await
        .expect("submitted");
    s.follow(acquiring, |e| e["event"] == "lease_granted")
        .await
        .expect("it acquires");
    // The check at the end sees a job's processes: the running one's
    // agent and `sleep` carry the run's marker now.
    assert!(s.strays().len() >= 2, "{:?}", s.strays());
    for id in [acquiring, waiting, running] {
        s.ok(Method::POST, &format!("/0/jobs/{id}/cancel"), None)
            .await
            .expect("cancelled");
    }
    for id in [acquiring, waiting, running] {
        assert_eq!(outcome(&s, id).await.expect("retired"), json!("cancelled"));
    }
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_overruns_its_timeout_is_killed() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(&mut s, "", 1).await.expect("a world");
    let id = s
        .submit(job(
            "slowpoke",
            json!([{"name": "x", "type": "a"}]),
            "echo begun; sleep 300 & sleep 300",
            3,
        ))
        .await
        .expect("submitted");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("timed_out"));
    end(s, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run_loses_nothing() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(&mut s, "", 2).await.expect("a world");
    let id = s
        .submit(job(
            "survivor",
            json!([{"name": "x", "type": "a"}, {"name": "y", "type": "b"}]),
            "echo before; sleep 2; echo after; bmat resource get x colour",
            120,
        ))
        .await
        .expect("submitted");
    s.follow(id, |e| e["event"] == "output")
        .await
        .expect("it runs");
    s.restart_server().await.expect("the server restarts");
    let waiting = s
        .submit(job(
            "after-restart",
            json!([{"name": "x", "type": "a"}]),
            "true",
            120,
        ))
        .await
        .expect("submitted after the restart");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    assert_eq!(
        outcome(&s, waiting).await.expect("retired"),
        json!("succeeded")
    );
    let out = s.output(id).await.expect("output");
    assert!(out.contains("after"), "{out}");
    end(s, &workers).await;
}

/// The postgres well as a process: two jobs each get a database, connect
/// with what `bmat` gives them, make a table, and cannot reach the other's
/// database; afterwards nothing with the well's prefix is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_get_postgres_databases_through_bmat_and_nothing_is_left() {
    let Ok(admin) = std::env::var("AQUIFER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AQUIFER_TEST_POSTGRES_URL"
        );
        eprintln!("AQUIFER_TEST_POSTGRES_URL is not set: skipping");
        return;
    };
    let mut s = Stack::start().await.expect("a server");
    s.define_type("postgres", 1).await.expect("type");
    s.define_target("local").await.expect("target");
    let well = s
        .register("wells", json!({"name": "pg", "pools": {"postgres": 2}}))
        .await
        .expect("well");
    let factory = s
        .register(
            "factories",
            json!({"name": "local", "targets": {"local": 2}}),
        )
        .await
        .expect("factory");
    // A prefix of this run's own, so parallel runs on one cluster do not
    // count each other's databases as orphans.
    let prefix = format!("aqe{}_", std::process::id());
    let dir = s.dir.path().to_path_buf();
    let url = s.url.clone();
    s.spawn_service(
        "pg",
        &["well", "run"],
        &format!(
            "url = \"{url}\"\ntoken = \"{well}\"\ndata_dir = \"{}\"\n[capacity]\npostgres = 2\n[well]\nkind = \"postgres\"\nrtype = \"postgres\"\nadmin_url = \"{admin}\"\nprefix = \"{prefix}\"\n",
            dir.join("pg").display()
        ),
    )
    .expect("the postgres well");
    s.spawn_service(
        "factory",
        &["factory", "local"],
        &format!(
            "url = \"{url}\"\ntoken = \"{factory}\"\ndata_dir = \"{}\"\n[targets]\nlocal = 2\n[agent_env]\nAQUIFER_E2E_RUN = \"{}\"\n",
            dir.join("factory").display(),
            s.run
        ),
    )
    .expect("the factory");
    // Each job makes a table in its database, then finds the other job's
    // database name in a file the first one wrote and fails to connect.
    let shared = dir.join("first-db");
    let first = s
        .submit(job(
            "pg-first",
            json!([{"name": "db", "type": "postgres"}]),
            &format!(
                "set -eu\npsql -v ON_ERROR_STOP=1 \"$(bmat resource get db dsn)\" -c 'create table t (x int)' -c 'insert into t values (42)'\nbmat resource get db database > {f}.tmp && mv {f}.tmp {f}\nsleep 3",
                f = shared.display()
            ),
            60,
        ))
        .await
        .expect("submitted");
    let second = s
        .submit(job(
            "pg-second",
            json!([{"name": "db", "type": "postgres"}]),
            &format!(
                "set -u\nwhile [ ! -s {f} ]; do sleep 0.1; done\nother=$(cat {f})\nhost=$(bmat resource get db host); port=$(bmat resource get db port)\nuser=$(bmat resource get db user); export PGPASSWORD=$(bmat resource get db password)\nif psql -h \"$host\" -p \"$port\" -U \"$user\" -d \"$other\" -c 'select 1' 2>err; then echo reached the other database; exit 7; fi\ngrep -q 'permission denied' err || {{ cat err; exit 6; }}\npsql -v ON_ERROR_STOP=1 \"$(bmat resource get db dsn)\" -c 'create table mine (y text)' || exit 8\necho kept apart",
                f = shared.display()
            ),
            60,
        ))
        .await
        .expect("submitted");
    assert_eq!(
        outcome(&s, first).await.expect("retired"),
        json!("succeeded")
    );
    assert_eq!(
        outcome(&s, second).await.expect("retired"),
        json!("succeeded")
    );
    let out = s.output(second).await.expect("output");
    assert!(out.contains("kept apart"), "{out}");
    // Nothing with the prefix is left in the cluster.
    let pool = sqlx::PgPool::connect(&admin).await.expect("the cluster");
    let (left,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_roles WHERE rolname LIKE $1) \
         + (SELECT count(*) FROM pg_database WHERE datname LIKE $1)",
    )
    .bind(format!("{prefix}%"))
    .fetch_one(&pool)
    .await
    .expect("a count");
    assert_eq!(left, 0, "roles or databases with {prefix} are left");
    end(s, &dir.join("factory").join("workers")).await;
}

/// The events of job `id` of kind `kind`, with when the server recorded
/// them (ms since the epoch).
async fn recorded(s: &Stack, id: u64, kind: &str) -> Vec<u64> {
    let page = s
        .ok(Method::GET, &format!("/0/jobs/{id}/events"), None)
        .await
        .expect("events");
    (page["events"].as_array().into_iter().flatten())
        .filter(|e| e["event"]["event"] == kind)
        .filter_map(|e| e["at_ms"].as_u64())
        .collect()
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A job that asks for two of a type gets them as soon as its well is
/// idle, not a lease poll later: the well's parked poll offered one slot,
/// the server ends it when the other slot's destruction is confirmed, and
/// the well asks again with both. (Before, the grant came `wait_ms`, here
/// 20 s, after the destruction.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_two_is_granted_as_soon_as_its_well_is_idle() {
    let mut s = Stack::start().await.expect("a server");
    let workers = slot_world(&mut s, "pair", &["p-one", "p-two"], 2).await;
    let one = s
        .submit(job(
            "one",
            json!([{"name": "p", "type": "pair"}]),
            "echo running; sleep 1",
            120,
        ))
        .await
        .expect("submitted");
    s.follow(one, |e| e["event"] == "output")
        .await
        .expect("it runs");
    let two = s
        .submit(job(
            "two",
            json!([{"name": "p", "type": "pair", "count": 2}]),
            "true",
            120,
        ))
        .await
        .expect("submitted");
    assert_eq!(outcome(&s, one).await.expect("retired"), json!("succeeded"));
    assert_eq!(outcome(&s, two).await.expect("retired"), json!("succeeded"));
    let destroyed = recorded(&s, one, "resource_destroyed").await;
    let granted = recorded(&s, two, "lease_granted").await;
    let (Some(&destroyed), Some(&granted)) = (destroyed.first(), granted.first()) else {
        panic!("no destruction {destroyed:?} or grant {granted:?}");
    };
    assert!(granted >= destroyed, "granted before the slot was free");
    let delay = granted - destroyed;
    println!("two-slot hand-off: granted {delay} ms after the well became idle");
    // The figure is printed for the record (tens of ms here); the bound
    // only tells a hand-off from a poll period (20 s), with room for a
    // loaded machine.
    assert!(delay < 1_000, "granted {delay} ms after the slot came free");
    end(s, &workers).await;
}

/// `bmat` rides out a server that is down when a task calls it: it retries
/// until the server is back, and the job succeeds. (Before, it failed at
/// once with "cannot reach the server".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bmat_called_while_the_server_is_down_answers_once_it_is_back() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(&mut s, "", 2).await.expect("a world");
    let down = s.dir.path().join("server-is-down");
    let script = format!(
        "echo waiting; while [ ! -e '{}' ]; do sleep 0.05; done; bmat resource get x colour",
        down.display()
    );
    let id = s
        .submit(job(
            "patient",
            json!([{"name": "x", "type": "a"}]),
            &script,
            120,
        ))
        .await
        .expect("submitted");
    s.follow(id, |e| e["event"] == "output")
        .await
        .expect("it runs");
    s.kill_server().await.expect("killed");
    // Only now does the task call bmat, which finds nobody listening.
    std::fs::write(&down, "").expect("the mark");
    // The outage itself, not a wait for anything.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    s.start_server().await.expect("back");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    let out = s.output(id).await.expect("output");
    assert!(out.contains("red") || out.contains("blue"), "{out}");
    end(s, &workers).await;
}

/// After an outage of four seconds, wells and the factory are back at the
/// server within a second and a half of its restart: their back-off
/// between tries is capped at a second. (Before, the cap was ten seconds,
/// and a well's next try came five seconds after the restart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wells_and_the_factory_see_a_restarted_server_within_a_second_and_a_half() {
    let mut s = Stack::start().await.expect("a server");
    let workers = world(&mut s, "", 2).await.expect("a world");
    let warm = s
        .submit(job(
            "warm",
            json!([{"name": "x", "type": "a"}]),
            "true",
            120,
        ))
        .await
        .expect("submitted");
    assert_eq!(
        outcome(&s, warm).await.expect("retired"),
        json!("succeeded")
    );
    s.kill_server().await.expect("killed");
    // The outage: long enough for every poller's back-off to reach its cap.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    s.start_server().await.expect("back");
    let up = now_ms();
    let id = s
        .submit(job(
            "after",
            json!([{"name": "x", "type": "a"}, {"name": "y", "type": "b"}]),
            "true",
            120,
        ))
        .await
        .expect("submitted");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    let grants = recorded(&s, id, "lease_granted").await;
    let worker = recorded(&s, id, "worker_leased").await;
    assert_eq!(grants.len(), 2, "{grants:?}");
    for (who, at) in [("the slot well", grants[0]), ("the chaos well", grants[1])]
        .into_iter()
        .chain(worker.first().map(|&w| ("the factory", w)))
    {
        let after = at.saturating_sub(up);
        println!("{who}: served {after} ms after the restart");
        assert!(after < 1_500, "{who} was back {after} ms after the restart");
    }
    assert_eq!(worker.len(), 1, "{worker:?}");
    end(s, &workers).await;
}

/// A job's store: set at submission, read and added to by its tasks with
/// bmat, the later task reading what the earlier one put; a secret value
/// is never in the job's stream or its answer, and is gone once the job
/// has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_tasks_pass_values_through_its_store_and_secrets_go_at_the_end() {
    const SECRET: &str = "tok-5ecret-8f2c";
    let mut s = Stack::start().await.expect("a server");
    let workers = slot_world(&mut s, "probe", &["p1"], 1).await;
    let mut j = job(
        "store",
        json!([{"name": "probe", "type": "probe"}]),
        r#"set -eu
test "$(bmat store get greeting)" = hello
test "$(bmat store get token | tr a-z A-Z)" = TOK-5ECRET-8F2C
bmat store put result 42
printf 'from stdin' | bmat store put later --secret
bmat store list
"#,
        60,
    );
    j["store"] = json!({"greeting": "hello", "token": {"value": SECRET, "secret": true}});
    j["tasks"]
        .as_array_mut()
        .expect("tasks")
        .push(json!({"name": "second", "script": "set -eu\necho \"result=$(bmat store get result)\"\ntest \"$(bmat store get later)\" = 'from stdin'\nbmat store get nothing 2>/dev/null && exit 9\necho read"}));
    let id = s.submit(j).await.expect("submitted");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    let out = s.output(id).await.expect("output");
    for line in [
        "greeting\n",
        "token (secret)\n",
        "later (secret)\n",
        "result=42",
        "read",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    let shown = s
        .ok(Method::GET, &format!("/0/jobs/{id}"), None)
        .await
        .expect("the job");
    let events = s
        .follow(id, |e| e["event"] == "job_retired")
        .await
        .expect("the stream");
    let seen = format!("{shown} {events:?} {out}");
    assert!(!seen.contains(SECRET), "the secret shows: {seen}");
    let store = aquifer_server::store::Store::open(&s.db)
        .await
        .expect("the store");
    let kept = store
        .job_store(aquifer_core::JobId(u32::try_from(id).expect("an id")))
        .await
        .expect("read");
    assert_eq!(kept["token"], (None, true), "the secret is deleted");
    assert_eq!(kept["later"], (None, true));
    assert_eq!(kept["result"], (Some("42".to_string()), false));
    assert_eq!(kept["greeting"], (Some("hello".to_string()), false));
    let row = store
        .job_row(aquifer_core::JobId(u32::try_from(id).expect("an id")))
        .await
        .expect("read")
        .expect("a row");
    assert!(
        !row.spec.contains(SECRET),
        "the kept job file has no secret: {}",
        row.spec
    );
    end(s, &workers).await;
}

/// Outputs end to end: a job's rules keep its files (a required one, a
/// growing log, a directory's, minus exclusions); the agent sends them
/// before the job is reported finished; the owner lists them and copies
/// one with the CLI, checked against its SHA-256. A required output that
/// is missing, or a match that is a symlink out of the work directory,
/// fails the job with a reason that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_keeps_its_outputs_and_the_owner_copies_them() {
    let mut s = Stack::start().await.expect("a server");
    let workers = slot_world(&mut s, "probe", &["p1"], 1).await;
    let mut j = job(
        "build",
        json!([]),
        r#"set -eu
mkdir -p out logs tmp
head -c 3000000 /dev/urandom > out/big.bin
echo '<testsuite tests="1"/>' > report.xml
echo line > logs/run.log
echo scratch > tmp/scratch.log
"#,
        60,
    );
    j["output_rules"] = json!(["=report.xml", "%logs/*.log", "out/*", "!tmp/*", "*/*.log"]);
    let id = s.submit(j).await.expect("submitted");
    assert_eq!(outcome(&s, id).await.expect("retired"), json!("succeeded"));
    let listed = s
        .ok(Method::GET, &format!("/0/jobs/{id}/outputs"), None)
        .await
        .expect("outputs");
    let paths: Vec<&str> = (listed.as_array().expect("a list").iter())
        .filter_map(|o| o["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["logs/run.log", "out/big.bin", "report.xml"],
        "{listed}"
    );
    let big = listed[1].clone();
    assert_eq!(big["size"], 3_000_000);

    // The CLI copies it, checked.
    let dest = s.dir.path().join("copied.bin");
    let copied = tokio::process::Command::new(aquifer_e2e::bin("aquifer"))
        .args(["job", "copy", &id.to_string(), "out/big.bin"])
        .arg(&dest)
        .env("AQUIFER_URL", &s.url)
        .env("AQUIFER_TOKEN", aquifer_e2e::BOOT)
        .output()
        .await
        .expect("aquifer runs");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let bytes = std::fs::read(&dest).expect("the copy");
    assert_eq!(bytes.len(), 3_000_000);
    use sha2::Digest as _;
    let digest: String = (sha2::Sha256::digest(&bytes).iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(big["sha256"], digest.as_str());

    // A required output that is missing, or a symlink out of the work
    // directory, fails the job with a reason that names it.
    for (name, script, rule, reason) in [
        (
            "no-report",
            "echo no report",
            "=report.xml",
            "the required output \"report.xml\" matched no file",
        ),
        (
            "escape",
            "ln -s /etc/hostname leak",
            "leak",
            "output leak is a symlink that leaves the work directory",
        ),
    ] {
        let mut j = job(name, json!([]), script, 60);
        j["output_rules"] = json!([rule]);
        let id = s.submit(j).await.expect("submitted");
        assert_eq!(
            outcome(&s, id).await.expect("retired"),
            json!({"failed": "tasks"})
        );
        let shown = s
            .ok(Method::GET, &format!("/0/jobs/{id}"), None)
            .await
            .expect("the job");
        assert_eq!(shown["reason"], reason, "{name}");
    }
    end(s, &workers).await;
}

/// Files passed on: a job waits for the input its submitter uploads (with
/// the CLI), reads it from its input directory and keeps an output; a
/// dependent job finds that output copied into its own input directory.
/// And dependencies run on the ending they ask for: on failure, on either,
/// and (by default) on success, which fails when its dependency fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_and_copied_outputs_reach_the_tasks_and_dependencies_run_on_the_ending_asked_for() {
    let mut s = Stack::start().await.expect("a server");
    let workers = slot_world(&mut s, "probe", &["p1"], 2).await;
    let mut build = job(
        "shout",
        json!([]),
        r#"set -eu
mkdir -p out
tr a-z A-Z < "$AQUIFER_INPUT_DIR/greeting.txt" > out/shout.txt
"#,
        60,
    );
    build["inputs"] = json!(["greeting.txt"]);
    build["output_rules"] = json!(["=out/shout.txt"]);
    let built = s.submit(build).await.expect("submitted");
    let mut consume = job(
        "consume",
        json!([]),
        r#"test "$(cat "$AQUIFER_INPUT_DIR/shouted/out/shout.txt")" = "HELLO, AQUIFER""#,
        60,
    );
    consume["depends_on"] = json!([{"job": built, "copy_outputs": true, "name": "shouted"}]);
    let consumer = s.submit(consume).await.expect("submitted");
    let explained = s
        .ok(Method::GET, &format!("/0/jobs/{built}/explain"), None)
        .await
        .expect("explained");
    assert_eq!(
        explained["explanation"]["waiting_for"], "its inputs to be uploaded",
        "{explained}"
    );
    let greeting = s.dir.path().join("greeting.txt");
    std::fs::write(&greeting, "hello, aquifer").expect("written");
    let uploaded = tokio::process::Command::new(aquifer_e2e::bin("aquifer"))
        .args(["job", "upload", &built.to_string()])
        .arg(format!("greeting.txt={}", greeting.display()))
        .env("AQUIFER_URL", &s.url)
        .env("AQUIFER_TOKEN", aquifer_e2e::BOOT)
        .output()
        .await
        .expect("aquifer runs");
    assert!(
        uploaded.status.success(),
        "{}",
        String::from_utf8_lossy(&uploaded.stderr)
    );
    assert_eq!(
        outcome(&s, built).await.expect("retired"),
        json!("succeeded")
    );
    assert_eq!(
        outcome(&s, consumer).await.expect("retired"),
        json!("succeeded")
    );

    let fails = s
        .submit(job("fails", json!([]), "exit 3", 60))
        .await
        .expect("submitted");
    let after = |name: &str, on: Value| {
        let mut j = job(name, json!([]), "true", 60);
        j["depends_on"] = json!([on]);
        j
    };
    let on_failure = s
        .submit(after("on-failure", json!({"job": fails, "on": "failure"})))
        .await
        .expect("submitted");
    let on_either = s
        .submit(after("on-either", json!({"job": fails, "on": "either"})))
        .await
        .expect("submitted");
    let on_success = s
        .submit(after("on-success", json!(fails)))
        .await
        .expect("submitted");
    for (id, ended) in [
        (fails, json!({"failed": "tasks"})),
        (on_failure, json!("succeeded")),
        (on_either, json!("succeeded")),
        (on_success, json!({"failed": "dependency"})),
    ] {
        assert_eq!(outcome(&s, id).await.expect("retired"), ended, "job {id}");
    }
    end(s, &workers).await;
}
