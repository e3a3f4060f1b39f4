//! The factory SDK's runner with a factory of its own kind: one that
//! cannot make workers. The job must fail at once (`worker_lost`) rather
//! than wait for the worker's lease to expire, and the worker must still
//! leave the books.

mod server;

use aquifer_factory::Lease;
use aquifer_factory::{AgentExit, CreatedWorker, Factory, Owned, RunnerConfig, run};
use serde_json::json;
use server::{PATIENCE, server};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct Broken {
    destroyed: Mutex<Vec<u32>>,
}

impl Factory for Broken {
    async fn create_worker(&self, _lease: &Lease) -> Result<CreatedWorker, String> {
        Err("no space left on device".into())
    }

    async fn start_agent(&self, _worker: u32, _url: &str, _key: &str) -> Result<AgentExit, String> {
        Err("never created".into())
    }

    async fn destroy_worker(&self, worker: u32) -> Result<(), String> {
        self.destroyed.lock().expect("not poisoned").push(worker);
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_be_made_fails_its_job_at_once() {
    let (s, token) = server(1).await;
    let config = RunnerConfig::new(&s.base, &token, BTreeMap::from([("t".to_string(), 1)]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run(Broken::default(), config, async {
        let _ = stopped.await;
    }));
    let job = s
        .submit(json!([{"name": "t", "script": "true"}]), 600)
        .await;
    let (outcome, _) = s.ended(job).await;
    assert_eq!(outcome, json!({"failed": "worker_lost"}));
    s.no_workers_left().await;
    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, runner)
        .await
        .expect("the runner stops in time")
        .expect("the runner's task")
        .expect("the runner stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_runner_with_a_reason() {
    let (s, _) = server(1).await;
    let config = RunnerConfig::new(
        &s.base,
        "aq_not_a_token",
        BTreeMap::from([("t".to_string(), 1)]),
    );
    let outcome = tokio::time::timeout(
        PATIENCE,
        run(Broken::default(), config, std::future::pending()),
    )
    .await
    .expect("the runner gives up in time");
    let err = outcome.expect_err("a refused token is fatal");
    assert!(format!("{err:#}").contains("token"), "{err:#}");
}
