//! The example well of docs/writing-a-well.md (`examples/scratch_well.rs`),
//! run from its configuration against the real server: it makes a
//! directory per resource, and removes it when the job is done.

mod common;

#[path = "../examples/scratch_well.rs"]
#[allow(dead_code)]
mod scratch_well;

use common::*;
use serde_json::json;

#[tokio::test]
async fn the_example_well_makes_and_removes_a_directory_per_resource() {
    let s = server().await;
    let token = s.well("scratch", json!({"solo": 2})).await;
    let path = s.dir.path().join("scratch.toml");
    let text = format!(
        "url = \"{url}\"\ntoken = \"{token}\"\ndata_dir = \"state\"\nwait_ms = 1000\n\
         reconcile_interval_ms = 200\n[capacity]\nsolo = 2\n[well]\nkind = \"scratch\"\nrtype = \"solo\"\n",
        url = s.base
    );
    std::fs::write(&path, text).expect("written");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        aquifer_well::run_configured::<scratch_well::ScratchWell>(&path, async {
            let _ = stopped.await;
        })
        .await
    });
    let job = s.submit(json!([{"name": "tmp", "type": "solo"}])).await;
    let made = s.dir.path().join("state/scratch/1");
    eventually("the directory made and reported", || async {
        let ready = s.resources(&token).await.iter().any(|r| r.1 == "ready");
        (ready && made.is_dir()).then_some(())
    })
    .await;
    s.cancel(job).await;
    eventually("the resource destroyed", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    assert!(!made.exists(), "the directory is gone");
    let _ = stop.send(());
    let stopped = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("it stops")
        .expect("no panic");
    assert!(stopped.is_ok(), "{stopped:?}");
}
