//! The driver over a real database: decisions are committed before they
//! are acted on, a restart rebuilds exactly the state it had, snapshots
//! shorten the replay, and a failed commit changes nothing.

mod common;
use aquifer_core::*;
use aquifer_server::driver::{Driver, DriverError, Handle, MonotonicClock, Options, Setup};
use aquifer_server::store::Store;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

struct Running {
    handle: Handle,
    task: tokio::task::JoinHandle<State>,
    effects: Arc<Recorder>,
}

async fn start(url: &str, options: Options) -> Running {
    start_with(url, options, Limits::default()).await
}

async fn start_with(url: &str, options: Options, limits: Limits) -> Running {
    let store = Store::open(url).await.expect("the store opens");
    let effects = Arc::new(Recorder::default());
    let (handle, task, _) = Driver::spawn(Setup {
        limits,
        clock: Arc::new(MonotonicClock::default()),
        options,
        ..Setup::new(store, effects.clone())
    })
    .await
    .expect("recovery");
    Running {
        handle,
        task,
        effects,
    }
}

impl Running {
    async fn stop(self) -> State {
        drop(self.handle);
        self.task.await.expect("the driver ends cleanly")
    }

    async fn ok(&self, input: Input) -> Transition {
        self.handle.send(input).await.expect("accepted")
    }
}

fn register() -> Vec<Input> {
    vec![
        Input::DefineType {
            rtype: TypeId::new("pg"),
            spec: TypeSpec {
                max_per_job: 1,
                privilege: None,
            },
        },
        Input::DefineTarget {
            target: TargetId::new("t"),
            spec: TargetSpec { privilege: None },
        },
        Input::RegisterWell {
            well: WellId(1),
            pools: vec![Pool {
                types: BTreeSet::from([TypeId::new("pg")]),
                capacity: 2,
            }],
        },
    ]
}

fn job() -> Input {
    Input::SubmitJob(JobSpec {
        target: TargetId::new("t"),
        requests: vec![Request {
            rtype: TypeId::new("pg"),
            count: 1,
        }],
        timeout_ms: 3_600_000,
        depends_on: BTreeSet::new(),
        retired_outcomes: BTreeMap::new(),
        run_on: BTreeMap::new(),
        awaits_inputs: false,
        privileges: BTreeSet::new(),
        owner: 0,
    })
}

/// A workload that leaves jobs in every stage: acquiring, holding,
/// ended with resources to destroy.
async fn workload(r: &Running) {
    for input in register() {
        r.ok(input).await;
    }
    for _ in 0..5 {
        r.ok(job()).await;
    }
    let free = BTreeMap::from([(TypeId::new("pg"), 1)]);
    let lease = r
        .ok(Input::RequestLease {
            well: WellId(1),
            free: free.clone(),
        })
        .await;
    assert!(!lease.is_empty(), "job 1 gets a database");
    r.ok(Input::ReportReady {
        well: WellId(1),
        resource: ResourceId(1),
    })
    .await;
    r.ok(Input::RequestLease {
        well: WellId(1),
        free,
    })
    .await;
    r.ok(Input::CancelJob { job: JobId(1) }).await;
}

async fn restart_rebuilds_the_same_state(url: &str) {
    let first = start(url, Options::default()).await;
    workload(&first).await;
    let effects = first.effects.take();
    assert!(
        effects.contains(&Effect::DestroyResource {
            well: WellId(1),
            resource: ResourceId(1)
        }),
        "{effects:?}"
    );
    let before = first.stop().await;

    let second = start(url, Options::default()).await;
    // What the state still owes is performed again at start-up.
    let again = Arc::clone(&second.effects);
    let after = second.stop().await;
    assert_eq!(before, after);
    assert_eq!(again.take(), pending_effects(&after));
    assert!(!pending_effects(&after).is_empty());
}

#[tokio::test]
async fn sqlite_restart_rebuilds_the_same_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    restart_rebuilds_the_same_state(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_restart_rebuilds_the_same_state() {
    if let Some(url) = postgres_url("restart").await {
        restart_rebuilds_the_same_state(&url).await;
    }
}

async fn snapshots_shorten_the_replay(url: &str) {
    let options = Options {
        snapshot_every_events: 4,
        ..Options::default()
    };
    let first = start(url, options).await;
    workload(&first).await;
    let before = first.stop().await;
    let store = Store::open(url).await.expect("open");
    let (snap_seq, snap) = store
        .latest_snapshot()
        .await
        .expect("read")
        .expect("a snapshot");
    let rest = store.events_after(snap_seq).await.expect("read");
    let all = store.events_after(0).await.expect("read");
    assert!(
        snap_seq > 0 && rest.len() < all.len(),
        "{snap_seq} {} {}",
        rest.len(),
        all.len()
    );
    let mut rebuilt = snap;
    for (_, e) in &rest {
        apply(&mut rebuilt, e);
    }
    assert_eq!(rebuilt, before);
    let second = start(url, options).await;
    assert_eq!(second.stop().await, before);
}

#[tokio::test]
async fn sqlite_snapshots_shorten_the_replay() {
    let dir = tempfile::tempdir().expect("temp dir");
    snapshots_shorten_the_replay(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_snapshots_shorten_the_replay() {
    if let Some(url) = postgres_url("snapshot").await {
        snapshots_shorten_the_replay(&url).await;
    }
}

#[tokio::test]
async fn a_rejection_is_answered_with_its_code_and_records_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let r = start(&url, Options::default()).await;
    let err = r
        .handle
        .send(Input::CancelJob { job: JobId(7) })
        .await
        .expect_err("refused");
    match err {
        DriverError::Rejected(rejection) => assert_eq!(rejection.code(), "unknown_job"),
        other => panic!("expected a rejection, got {other}"),
    }
    r.stop().await;
    let store = Store::open(&url).await.expect("open");
    assert!(store.events_after(0).await.expect("read").is_empty());
}

#[tokio::test]
async fn a_failed_commit_changes_nothing_and_a_foreign_writer_stops_the_driver() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let r = start(&url, Options::default()).await;
    for input in register() {
        r.ok(input).await;
    }
    // Make the next commit fail: the log already has the sequence number
    // the driver will use next.
    let store = Store::open(&url).await.expect("open");
    let seq = store.events_after(0).await.expect("read").len() as u64;
    store
        .append(seq, Time::ZERO, &[Event::LeasesHeld { held: true }], &[])
        .await
        .expect("sneak in");
    let err = r.handle.send(job()).await.expect_err("the commit fails");
    assert!(matches!(err, DriverError::Unavailable(_)), "{err}");
    assert!(
        r.effects
            .take()
            .iter()
            .all(|e| !matches!(e, Effect::NotifyJob { .. }))
    );
    // Another writer appended to the log: the driver cannot trust its
    // state, stops, and answers nothing more; a restart recovers.
    let after = r.handle.send(job()).await.expect_err("stopped");
    assert!(matches!(after, DriverError::Unavailable(_)), "{after}");
    let state = r.stop().await;
    assert!(
        state.jobs.is_empty(),
        "the refused batch left no job behind"
    );
    let again = start(&url, Options::default()).await;
    let recovered = again.stop().await;
    assert!(
        recovered.lease_hold,
        "the other writer's event is in the recovered state"
    );
    assert!(recovered.jobs.is_empty());
}

#[tokio::test]
async fn deadlines_tick_by_themselves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        lease_ttl_ms: 50,
        ..Limits::default()
    };
    let r = start_with(&sqlite_url(&dir), Options::default(), limits).await;
    for input in register() {
        r.ok(input).await;
    }
    r.ok(job()).await;
    let free = BTreeMap::from([(TypeId::new("pg"), 1)]);
    r.ok(Input::RequestLease {
        well: WellId(1),
        free,
    })
    .await;
    // Nobody reports on the lease: the driver's own timer expires it and
    // asks the well to destroy whatever it may have made.
    r.effects
        .wait_for(&Effect::DestroyResource {
            well: WellId(1),
            resource: ResourceId(1),
        })
        .await;
    let state = r.stop().await;
    assert!(
        state.leases.is_empty(),
        "the lease expired: {:?}",
        state.leases
    );
}

async fn read_models_follow_the_log(url: &str) {
    use aquifer_server::readmodel::{JobRecord, Payload};
    let r = start(url, Options::default()).await;
    for input in register() {
        r.ok(input).await;
    }
    let record = JobRecord {
        owner: 42,
        name: "integration".into(),
        spec: serde_json::json!({"tasks": [{"name": "test", "script": "make test"}]}),
        store: BTreeMap::new(),
    };
    r.handle
        .send_with(job(), Some(Payload::Job(record)))
        .await
        .expect("accepted");
    // A refused submission stores nothing.
    let mut bad = job();
    if let Input::SubmitJob(spec) = &mut bad {
        spec.target = TargetId::new("nope");
    }
    let refused = r.handle.send_with(bad, None).await;
    assert!(matches!(refused, Err(DriverError::Rejected(_))));
    let store = Store::open(url).await.expect("open");
    let row = store.job_row(JobId(1)).await.expect("read").expect("a row");
    assert_eq!(
        (row.owner, row.name.as_str(), row.state.as_str()),
        (42, "integration", "queued")
    );
    r.ok(Input::CancelJob { job: JobId(1) }).await;
    let row = store.job_row(JobId(1)).await.expect("read").expect("a row");
    assert_eq!(row.state, "ended");
    assert_eq!(row.outcome.as_deref(), Some("\"cancelled\""));
    assert!(store.job_row(JobId(2)).await.expect("read").is_none());
    r.stop().await;
}

#[tokio::test]
async fn sqlite_read_models_follow_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    read_models_follow_the_log(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_read_models_follow_the_log() {
    if let Some(url) = postgres_url("readmodel").await {
        read_models_follow_the_log(&url).await;
    }
}

#[tokio::test]
async fn current_limits_win_over_a_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let options = Options {
        snapshot_every_events: 1,
        ..Options::default()
    };
    let first = start(&url, options).await;
    workload(&first).await;
    first.stop().await;
    let limits = Limits {
        lease_ttl_ms: 1_234,
        ..Limits::default()
    };
    let second = start_with(&url, options, limits).await;
    assert_eq!(second.stop().await.limits, limits);
}

/// A restart with `destroy_failures_max` lowered below a resource's
/// count of failed destroys: recovery goes on (it used to stop on the
/// invariant), and the resource is held at its next failure, with or
/// without a snapshot in between.
#[tokio::test]
async fn a_lowered_destroy_limit_holds_at_the_next_failure_after_a_restart() {
    for snapshot_every_events in [1, 100_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = sqlite_url(&dir);
        let options = Options {
            snapshot_every_events,
            ..Options::default()
        };
        let first = start(&url, options).await;
        workload(&first).await;
        // Job 1 was cancelled: its database is being destroyed.
        let failed = Input::ReportDestroyFailed {
            well: WellId(1),
            resource: ResourceId(1),
        };
        for _ in 0..3 {
            first.ok(failed.clone()).await;
        }
        let state = first.stop().await;
        let releasing = |s: &State| s.resources[&ResourceId(1)].state;
        assert_eq!(
            releasing(&state),
            resource::ResourceState::Releasing { failures: 3 }
        );
        let limits = Limits {
            destroy_failures_max: 2,
            ..Limits::default()
        };
        let second = start_with(&url, options, limits).await;
        let now = second
            .handle
            .read(move |s| releasing(s))
            .await
            .expect("a state");
        assert_eq!(now, resource::ResourceState::Releasing { failures: 1 });
        second.ok(failed).await;
        let state = second.stop().await;
        assert_eq!(releasing(&state), resource::ResourceState::Held);
    }
}

/// Limits the scheduler cannot work under stop the server at start, with
/// the limit named.
#[tokio::test]
async fn limits_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (limits, named) in [
        (
            Limits {
                destroy_failures_max: 0,
                ..Limits::default()
            },
            "destroy_failures_max",
        ),
        (
            Limits {
                jobs_max: 0,
                ..Limits::default()
            },
            "jobs_max",
        ),
        (
            Limits {
                lease_ttl_ms: 10,
                ..Limits::default()
            },
            "lease_ttl_ms",
        ),
    ] {
        let refused = aquifer_server::start(aquifer_server::Config {
            limits,
            ..aquifer_server::Config::loopback(&sqlite_url(&dir))
        })
        .await;
        let Err(e) = refused else {
            panic!("{named}: started");
        };
        assert!(e.to_string().contains(named), "{named}: {e}");
    }
}

/// One caller's input that the database refuses (PostgreSQL takes no NUL
/// in text) fails alone: the other decisions of its batch are recorded
/// and answered. Before, the whole batch failed and every caller got 503.
#[tokio::test]
async fn postgres_an_input_the_database_refuses_fails_alone() {
    let Some(url) = postgres_url("isolate").await else {
        return;
    };
    let store = Store::open(&url).await.expect("the store opens");
    let effects = Arc::new(Recorder::default());
    let (driver, handle, _) = Driver::recover(Setup {
        clock: Arc::new(MonotonicClock::default()),
        ..Setup::new(store, effects)
    })
    .await
    .expect("recovery");
    let [first, second] = register()
        .into_iter()
        .take(2)
        .collect::<Vec<_>>()
        .try_into()
        .expect("two inputs");
    // Queued before the driver runs, so that they make one batch.
    let a = tokio::spawn({
        let h = handle.clone();
        async move { h.send(first).await }
    });
    while handle.queued() < 1 {
        tokio::task::yield_now().await;
    }
    let bad = tokio::spawn({
        let h = handle.clone();
        async move {
            h.record(vec![aquifer_server::readmodel::Write::JobReason {
                job: JobId(1),
                reason: "a\0b".into(),
            }])
            .await
        }
    });
    while handle.queued() < 2 {
        tokio::task::yield_now().await;
    }
    let b = tokio::spawn({
        let h = handle.clone();
        async move { h.send(second).await }
    });
    while handle.queued() < 3 {
        tokio::task::yield_now().await;
    }
    let task = tokio::spawn(driver.run());
    assert!(
        a.await.expect("joined").is_ok(),
        "the first input is recorded"
    );
    let refused = bad.await.expect("joined");
    assert!(
        matches!(refused, Err(DriverError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(
        b.await.expect("joined").is_ok(),
        "the third input is recorded"
    );
    let defined = handle
        .read(|s| (s.types.len(), s.targets.len()))
        .await
        .expect("a state");
    assert_eq!(defined, (1, 1));
    drop(handle);
    let state = task.await.expect("the driver ends");
    // What the log holds is what the state says: a restart agrees.
    let again = start(&url, Options::default()).await;
    assert_eq!(again.stop().await, state);
}

#[tokio::test]
async fn an_unreadable_snapshot_falls_back_to_the_whole_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let first = start(&url, Options::default()).await;
    workload(&first).await;
    let before = first.stop().await;
    let store = Store::open(&url).await.expect("open");
    let aquifer_server::store::Pool::Sqlite(pool) = store.pool() else {
        unreachable!("a SQLite URL")
    };
    sqlx::query("INSERT INTO snapshots (seq, body) VALUES (3, '{\"not\": \"a state\"}')")
        .execute(pool)
        .await
        .expect("a bad snapshot");
    assert!(
        store.latest_snapshot().await.is_err(),
        "the snapshot really is unreadable"
    );
    let second = start(&url, Options::default()).await;
    assert_eq!(second.stop().await, before);
}

/// A batch larger than one `INSERT` holds is logged whole and in order.
async fn a_large_batch_is_logged_in_order(url: &str) {
    let store = Store::open(url).await.expect("a store");
    let events: Vec<Event> = (0..2_500)
        .map(|i| Event::LeasesHeld { held: i % 2 == 0 })
        .collect();
    (store.append(0, Time::ZERO, &events, &[]))
        .await
        .expect("appended");
    let logged = store.events_after(0).await.expect("read back");
    let seqs: Vec<u64> = logged.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=2_500).collect::<Vec<u64>>());
    assert!(logged.iter().map(|(_, e)| e).eq(events.iter()));
}

#[tokio::test]
async fn sqlite_a_large_batch_is_logged_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    a_large_batch_is_logged_in_order(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_a_large_batch_is_logged_in_order() {
    if let Some(url) = postgres_url("large_batch").await {
        a_large_batch_is_logged_in_order(&url).await;
    }
}

/// A batch's read-model writes go in grouped by kind, yet read back as if
/// written one by one: a job's last state wins, its stream is numbered on
/// from the entries before the batch and keeps its order (across more
/// entries than one statement holds), resource rows are written before
/// their secrets are forgotten or they are deleted, a reason lands on a
/// job inserted in the same batch or an earlier one, a row forgotten and
/// deleted in one batch is gone, and the events take the numbers after
/// the last batch's.
async fn grouped_writes_read_back_in_order(url: &str) {
    use aquifer_server::readmodel::{JobRecord, JobState, Write};
    let store = Store::open(url).await.expect("a store");
    use aquifer_protocol::jobs::StoreValue;
    let value = |v: &str, secret: bool| StoreValue {
        value: v.into(),
        secret,
    };
    let record = |name: &str| JobRecord {
        owner: 0,
        name: name.into(),
        spec: serde_json::json!({"name": name}),
        store: BTreeMap::from([
            (format!("{name}-plain"), value("p", false)),
            (format!("{name}-secret"), value("s", true)),
        ]),
    };
    let entry = |job: u32, i: usize| Write::JobEvent {
        job: JobId(job),
        at_ms: i as u64,
        body: serde_json::json!({"event": "note", "i": i}),
    };
    let data = |n: &str| BTreeMap::from([("k".to_string(), n.to_string())]);
    let mut first = vec![
        Write::InsertJob {
            job: JobId(1),
            record: record("one"),
            submitted_ms: 5,
        },
        Write::InsertJob {
            job: JobId(2),
            record: record("two"),
            submitted_ms: 6,
        },
        Write::JobState {
            job: JobId(1),
            state: JobState::Acquiring,
            outcome: None,
        },
        entry(1, 1),
    ];
    first.extend((2..=1_500).map(|i| entry(1, i)));
    first.extend([
        entry(2, 1),
        Write::JobState {
            job: JobId(1),
            state: JobState::Running,
            outcome: None,
        },
        Write::JobState {
            job: JobId(2),
            state: JobState::Ended,
            outcome: Some(Outcome::Cancelled),
        },
        Write::ResourceData {
            resource: ResourceId(5),
            job: JobId(1),
            metadata: data("m5"),
            secrets: data("s5"),
        },
        Write::ResourceData {
            resource: ResourceId(6),
            job: JobId(1),
            metadata: data("m6"),
            secrets: data("s6"),
        },
        Write::ResourceData {
            resource: ResourceId(7),
            job: JobId(1),
            metadata: data("m7"),
            secrets: data("s7"),
        },
        Write::ForgetSecrets {
            resource: ResourceId(5),
        },
        Write::DeleteResourceData {
            resource: ResourceId(6),
        },
    ]);
    first.push(Write::JobReason {
        job: JobId(2),
        reason: "cancelled early".into(),
    });
    // Job 2 ends in the batch that inserts it: its secret is never written.
    // A key put twice keeps the last value.
    first.extend([
        Write::ForgetStoreSecrets { job: JobId(2) },
        Write::StorePut {
            job: JobId(1),
            key: "later".into(),
            value: value("v1", false),
        },
        Write::StorePut {
            job: JobId(1),
            key: "later".into(),
            value: value("v2", false),
        },
    ]);
    let held = |held| Event::LeasesHeld { held };
    store
        .append(
            0,
            Time::ZERO,
            &[held(true), held(false), held(true)],
            &first,
        )
        .await
        .expect("the first batch");
    let second = [
        entry(1, 1_501),
        Write::JobState {
            job: JobId(1),
            state: JobState::Ended,
            outcome: Some(Outcome::Succeeded),
        },
        Write::JobReason {
            job: JobId(1),
            reason: "a reason later".into(),
        },
        Write::ForgetSecrets {
            resource: ResourceId(7),
        },
        Write::DeleteResourceData {
            resource: ResourceId(7),
        },
        Write::ForgetSecrets {
            resource: ResourceId(5),
        },
        // Job 1 ends: its secrets go, the one put in this batch too.
        Write::StorePut {
            job: JobId(1),
            key: "late-secret".into(),
            value: value("ls", true),
        },
        Write::ForgetStoreSecrets { job: JobId(1) },
    ];
    store
        .append(3, Time::ZERO, &[held(false), held(false)], &second)
        .await
        .expect("the second batch");
    let log = store.events_after(0).await.expect("read");
    assert_eq!(
        log,
        [true, false, true, false, false]
            .into_iter()
            .enumerate()
            .map(|(i, h)| (i as u64 + 1, held(h)))
            .collect::<Vec<_>>()
    );

    let one = store.job_row(JobId(1)).await.expect("read").expect("job 1");
    assert_eq!(
        (one.state.as_str(), one.outcome.as_deref()),
        ("ended", Some("\"succeeded\""))
    );
    assert_eq!(one.reason.as_deref(), Some("a reason later"));
    let two = store.job_row(JobId(2)).await.expect("read").expect("job 2");
    assert_eq!(
        (two.state.as_str(), two.outcome.as_deref()),
        ("ended", Some("\"cancelled\""))
    );
    assert_eq!(two.reason.as_deref(), Some("cancelled early"));
    let stream = store.job_events(JobId(1), 0, 10_000).await.expect("read");
    assert_eq!(stream.len(), 1_501);
    for (k, row) in stream.iter().enumerate() {
        assert_eq!(row.n, k as u64 + 1);
        assert_eq!(row.event["i"], k + 1, "entry {} out of order", k + 1);
    }
    let others = store.job_events(JobId(2), 0, 10).await.expect("read");
    assert_eq!(others.iter().map(|r| r.n).collect::<Vec<_>>(), [1]);
    let resources = store.resource_data(JobId(1)).await.expect("read");
    assert_eq!(resources.keys().copied().collect::<Vec<_>>(), [5]);
    assert_eq!(resources[&5].secrets, None, "5's secrets were forgotten");
    assert_eq!(resources[&5].metadata, data("m5"));
    let kept = |v: &str, secret: bool| (Some(v.to_string()), secret);
    assert_eq!(
        store.job_store(JobId(1)).await.expect("read"),
        BTreeMap::from([
            ("one-plain".to_string(), kept("p", false)),
            ("one-secret".to_string(), (None, true)),
            ("later".to_string(), kept("v2", false)),
            ("late-secret".to_string(), (None, true)),
        ])
    );
    assert_eq!(
        store.job_store(JobId(2)).await.expect("read"),
        BTreeMap::from([
            ("two-plain".to_string(), kept("p", false)),
            ("two-secret".to_string(), (None, true)),
        ])
    );
}

#[tokio::test]
async fn sqlite_grouped_writes_read_back_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    grouped_writes_read_back_in_order(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_grouped_writes_read_back_in_order() {
    if let Some(url) = postgres_url("grouped_writes").await {
        grouped_writes_read_back_in_order(&url).await;
    }
}

/// Every byte of the SQLite database's files: the database, its WAL and
/// its shared memory.
fn database_bytes(dir: &tempfile::TempDir) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["aquifer.db", "aquifer.db-wal", "aquifer.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_and_forgotten_secrets_leave_no_trace() {
    use aquifer_server::readmodel::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&sqlite_url(&dir)).await.expect("a store");
    let secret = "postgres://admin:hunter2-a7f3c9@db.internal/ci";
    let put = |key: &str, value: &str, secret: bool| Write::StorePut {
        job: JobId(1),
        key: key.into(),
        value: aquifer_protocol::jobs::StoreValue {
            value: value.into(),
            secret,
        },
    };
    let written = [
        Write::ResourceData {
            resource: ResourceId(1),
            job: JobId(1),
            metadata: BTreeMap::from([("host".to_string(), "db.internal".to_string())]),
            secrets: BTreeMap::from([("dsn".to_string(), secret.to_string())]),
        },
        put("deploy", "store-s3cr3t-b91d", true),
        put("commit", "store-plain-77e1", false),
    ];
    let held = |held| Event::LeasesHeld { held };
    (store.append(0, Time::ZERO, &[held(true)], &written))
        .await
        .expect("a batch");
    for name in ["aquifer.db", "aquifer.db-wal", "aquifer.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .expect("the file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is {mode:o}");
    }
    // The scan can see them while the job may read them.
    assert!(contains(&database_bytes(&dir), secret));
    assert!(contains(&database_bytes(&dir), "store-s3cr3t-b91d"));
    let forget = [Write::ForgetSecrets {
        resource: ResourceId(1),
    }];
    (store.append(1, Time::ZERO, &[held(false)], &forget))
        .await
        .expect("a batch");
    assert!(
        !contains(&database_bytes(&dir), "hunter2-a7f3c9"),
        "a forgotten secret is still in the database's files"
    );
    // The job ends: its store's secrets go too, in a batch of their own.
    let ended = [Write::ForgetStoreSecrets { job: JobId(1) }];
    (store.append(2, Time::ZERO, &[held(true)], &ended))
        .await
        .expect("a batch");
    assert!(
        !contains(&database_bytes(&dir), "store-s3cr3t-b91d"),
        "a job's forgotten store secret is still in the database's files"
    );
    assert!(
        contains(&database_bytes(&dir), "db.internal"),
        "metadata stays"
    );
    assert!(
        contains(&database_bytes(&dir), "store-plain-77e1"),
        "a plain store value stays"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_database_file_is_narrowed_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aquifer.db");
    std::fs::write(&path, b"").expect("an empty file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    Store::open(&sqlite_url(&dir)).await.expect("a store");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}
