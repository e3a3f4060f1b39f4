//! A long event log, written through the real driver: jobs submitted and
//! cancelled in groups, so that the live state stays small as it does in
//! production while the log grows.

use anyhow::{Context, Result};
use aquifer_core::{Input, JobId, JobSpec, Request, TargetId, TargetSpec, TypeId, TypeSpec};
use aquifer_server::driver::{Driver, EffectSink, Handle, MonotonicClock, Options, Setup};
use aquifer_server::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Inputs sent at once: the driver commits each group in one transaction.
const GROUP: u64 = 128;

struct Discard;

impl EffectSink for Discard {
    fn perform(&self, _: &aquifer_core::Effect) {}
}

fn job() -> Input {
    Input::SubmitJob(JobSpec {
        target: TargetId::new("bench"),
        requests: vec![Request {
            rtype: TypeId::new("filler"),
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

/// Writes at least `events` events into the empty database at `url`,
/// snapshotting every `snapshot_every` events (0: never); returns how many
/// were written.
pub async fn fill(url: &str, snapshot_every: u64, events: u64) -> Result<u64> {
    let store = Store::open(url).await.context("opening the store")?;
    let options = Options {
        snapshot_every_events: snapshot_every,
        ..Options::default()
    };
    let (driver, handle, _) = Driver::recover(Setup {
        clock: Arc::new(MonotonicClock::default()),
        options,
        ..Setup::new(store, Arc::new(Discard))
    })
    .await
    .context("recovering the fresh store")?;
    let task = tokio::spawn(driver.run());
    let mut written = 0;
    for input in [
        Input::DefineType {
            rtype: TypeId::new("filler"),
            spec: TypeSpec {
                max_per_job: 1,
                privilege: None,
            },
        },
        Input::DefineTarget {
            target: TargetId::new("bench"),
            spec: TargetSpec { privilege: None },
        },
    ] {
        written += handle.send(input).await?.events.len() as u64;
    }
    let (mut next_job, mut shown) = (1, 0);
    while written < events {
        written += concurrently(&handle, (0..GROUP).map(|_| job()).collect()).await?;
        let cancels = (next_job..next_job + GROUP)
            .map(|j| Input::CancelJob {
                job: JobId(u32::try_from(j).unwrap_or(u32::MAX)),
            })
            .collect();
        written += concurrently(&handle, cancels).await?;
        next_job += GROUP;
        if written * 10 / events.max(1) > shown {
            shown = written * 10 / events.max(1);
            eprintln!("  {written} of {events} events written");
        }
    }
    drop(handle);
    task.await.context("the driver")?;
    Ok(written)
}

/// Sends inputs from concurrent tasks; counts the events committed.
async fn concurrently(handle: &Handle, inputs: Vec<Input>) -> Result<u64> {
    let tasks: Vec<_> = (inputs.into_iter())
        .map(|input| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.send(input).await })
        })
        .collect();
    let mut events = 0;
    for task in tasks {
        events += task.await??.events.len() as u64;
    }
    Ok(events)
}
