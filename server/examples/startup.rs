//! Start-up time after a long event log, with and without snapshots.
//!
//! `cargo run --release -p aquifer-server --example startup [EVENTS]`
//!
//! Writes a log of about EVENTS events (default 100,000) through the real
//! driver into a fresh SQLite file, twice: once with snapshots every 10,000
//! events, once with none. Then times `Driver::recover` on each and prints
//! both figures and their ratio. Jobs are submitted and cancelled in
//! batches, so the live state stays small, as it does in production.

use aquifer_core::*;
use aquifer_server::driver::{Driver, EffectSink, Handle, MonotonicClock, Options, Setup};
use aquifer_server::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

struct Discard;

impl EffectSink for Discard {
    fn perform(&self, _: &Effect) {}
}

async fn open(url: &str, options: Options) -> (Driver, Handle, std::time::Duration, usize) {
    let store = Store::open(url).await.expect("the store opens");
    let started = Instant::now();
    let (driver, handle, recovery) = Driver::recover(Setup {
        clock: Arc::new(MonotonicClock::default()),
        options,
        ..Setup::new(store, Arc::new(Discard))
    })
    .await
    .expect("recovery");
    (driver, handle, started.elapsed(), recovery.replayed_events)
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
        privileges: BTreeSet::new(),
    })
}

async fn fill(url: &str, options: Options, events: u64) -> u64 {
    let (driver, handle, _, _) = open(url, options).await;
    let task = tokio::spawn(driver.run());
    let setup = [
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
    ];
    let mut written = 0;
    for input in setup {
        written += handle.send(input).await.expect("accepted").events.len() as u64;
    }
    let mut next_job = 1;
    while written < events {
        // 64 jobs at once, then cancel them: the driver commits each group
        // of concurrent inputs in one transaction.
        let submits = (0..64).map(|_| job()).collect();
        written += concurrently(&handle, submits).await;
        let cancels = (next_job..next_job + 64)
            .map(|j| Input::CancelJob { job: JobId(j) })
            .collect();
        written += concurrently(&handle, cancels).await;
        next_job += 64;
    }
    drop(handle);
    task.await.expect("the driver ends");
    written
}

/// Sends inputs from concurrent tasks and counts the events committed.
async fn concurrently(handle: &Handle, inputs: Vec<Input>) -> u64 {
    let tasks: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.send(input).await })
        })
        .collect();
    let mut events = 0;
    for task in tasks {
        events += task.await.expect("joined").expect("accepted").events.len() as u64;
    }
    events
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("aquifer-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let with = Options {
        snapshot_every_events: 10_000,
        ..Options::default()
    };
    let without = Options {
        snapshot_every_events: u64::MAX,
        ..Options::default()
    };
    let mut figures = Vec::new();
    for (name, options) in [
        ("snapshots every 10,000 events", with),
        ("no snapshot", without),
    ] {
        let url = format!(
            "sqlite:{}",
            dir.join(format!("{}.db", figures.len())).display()
        );
        let started = Instant::now();
        let written = fill(&url, options, events).await;
        let fill_secs = started.elapsed().as_secs_f64();
        let (_, _, took, replayed) = open(&url, options).await;
        println!(
            "{name}: {written} events written in {fill_secs:.1} s ({:.0} events/s); start-up {:.1} ms, {replayed} events replayed",
            written as f64 / fill_secs,
            took.as_secs_f64() * 1e3
        );
        figures.push(took.as_secs_f64());
    }
    println!(
        "start-up without snapshots / with: {:.1}x",
        figures[1] / figures[0]
    );
    std::fs::remove_dir_all(&dir).ok();
}
