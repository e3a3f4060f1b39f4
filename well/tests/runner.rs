//! The runner against the real server: it creates and reports, renews a
//! slow lease, destroys after a cancel and confirms, reports a chaos
//! failure, cleans up orphans and a crashed run's leftovers, asks only for
//! the slots it has, holds a slot item whose reset fails until an operator
//! releases it, and finishes its work when stopped.

mod common;

use aquifer_core::Limits;
use aquifer_well::chaos::{ChaosConfig, ChaosWell};
use aquifer_well::slot::{SlotConfig, SlotItem, SlotWell};
use aquifer_well::{CreateRequest, RunnerConfig, Well};
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn chaos(dir: &std::path::Path, config: ChaosConfig) -> Arc<ChaosWell> {
    Arc::new(ChaosWell::open(config, &dir.join("chaos")).expect("a chaos well"))
}

async fn owned_ids<W: Well>(w: &W) -> Vec<u32> {
    let owned = w.list_owned().await.expect("the well lists");
    owned.into_iter().map(|o| o.resource).collect()
}

fn states(rs: &[(u64, String, String)]) -> Vec<&str> {
    rs.iter().map(|(_, s, _)| s.as_str()).collect()
}

#[tokio::test]
async fn creates_reports_ready_then_destroys_after_cancel_and_confirms() {
    let s = server().await;
    let token = s.well("chaos-1", json!({"pg": 2})).await;
    let well = chaos(s.dir.path(), ChaosConfig::default());
    let runner = start(well.clone(), runner_config(&s, &token, &[("pg", 2)]));

    let job = s
        .submit(json!([{"name": "db", "type": "pg", "count": 2}]))
        .await;
    let ready = eventually("two ready resources", || async {
        let rs = s.resources(&token).await;
        (states(&rs) == ["ready", "ready"]).then_some(rs)
    })
    .await;
    let ids: Vec<u32> = ready
        .iter()
        .map(|(id, ..)| u32::try_from(*id).expect("small"))
        .collect();
    assert_eq!(
        owned_ids(&*well).await,
        ids,
        "the well made exactly what the server has"
    );

    s.cancel(job).await;
    eventually("the server to forget both", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    // The server forgets a resource only on the well's confirmation, which
    // the runner sends only after the well has destroyed it.
    assert_eq!(owned_ids(&*well).await, Vec::<u32>::new());
    assert_eq!(s.ended(job).await, json!("cancelled"));
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_lease_is_renewed_while_a_create_outlasts_it() {
    let s = server_with(Limits {
        lease_ttl_ms: 2_000,
        ..Limits::default()
    })
    .await;
    let token = s.well("slow", json!({"solo": 1})).await;
    let slow = ChaosConfig {
        create_delay_ms: [4_500, 4_500],
        ..ChaosConfig::default()
    };
    let well = chaos(s.dir.path(), slow);
    let runner = start(well.clone(), runner_config(&s, &token, &[("solo", 1)]));
    s.submit(json!([{"name": "db", "type": "solo"}])).await;
    let rs = eventually("a ready resource", || async {
        let rs = s.resources(&token).await;
        (states(&rs) == ["ready"]).then_some(rs)
    })
    .await;
    // Unrenewed, the first lease would have expired at 2 s and its
    // resource been released; the ready one would be a later one.
    assert_eq!(rs[0].0, 1, "the first resource, under the first lease");
    assert_eq!(owned_ids(&*well).await, [1]);
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_chaos_failure_is_reported_and_fails_the_job() {
    let s = server().await;
    let token = s.well("failing", json!({"pg": 2})).await;
    let failing = ChaosConfig {
        create_fail_probability: 1.0,
        create_fail_retryable: false,
        ..ChaosConfig::default()
    };
    let well = chaos(s.dir.path(), failing);
    let runner = start(well.clone(), runner_config(&s, &token, &[("pg", 2)]));
    let job = s.submit(json!([{"name": "db", "type": "pg"}])).await;
    assert_eq!(s.ended(job).await, json!({"failed": "resource"}));
    eventually("the failed resource confirmed destroyed", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    assert!(!runner.finished());
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn orphans_are_destroyed_at_start_and_while_running() {
    let s = server().await;
    let token = s.well("tidy", json!({"pg": 2})).await;
    let well = chaos(s.dir.path(), ChaosConfig::default());
    let req = |resource| CreateRequest {
        resource,
        rtype: "pg".into(),
        job: 0,
        deadline_ms: 0,
    };
    // Made by an earlier life, under ids the server never handed out.
    well.create(&req(900)).await.expect("made");
    well.create(&req(901)).await.expect("made");
    let runner = start(well.clone(), runner_config(&s, &token, &[("pg", 2)]));
    eventually("the start's orphans gone", || async {
        owned_ids(&*well).await.is_empty().then_some(())
    })
    .await;

    // A real resource, and an orphan made behind the runner's back.
    let job = s.submit(json!([{"name": "db", "type": "pg"}])).await;
    eventually("a ready resource", || async {
        (states(&s.resources(&token).await) == ["ready"]).then_some(())
    })
    .await;
    well.create(&req(950)).await.expect("made");
    let owned = eventually("the orphan gone", || async {
        let o = owned_ids(&*well).await;
        (!o.contains(&950)).then_some(o)
    })
    .await;
    assert_eq!(owned, [1], "the job's resource is no orphan");
    assert_eq!(s.resources(&token).await[0].1, "ready");
    s.cancel(job).await;
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_run_that_crashed_mid_create_is_cleaned_up_by_the_next() {
    let s = server().await;
    let token = s.well("crashy", json!({"solo": 1})).await;
    let dir = s.dir.path().join("chaos");
    let crashed = Arc::new(tokio::sync::Notify::new());
    let hook = crashed.clone();
    let crashy = ChaosConfig {
        crash_after_creates: Some(1),
        ..ChaosConfig::default()
    };
    let well = Arc::new(
        ChaosWell::open(crashy, &dir)
            .expect("a chaos well")
            .with_crash(Arc::new(move || hook.notify_one())),
    );
    let runner = start(well, runner_config(&s, &token, &[("solo", 1)]));
    let job = s.submit(json!([{"name": "db", "type": "solo"}])).await;
    tokio::time::timeout(PATIENCE, crashed.notified())
        .await
        .expect("the well crashes in its first create");
    runner.kill().await;
    assert_eq!(states(&s.resources(&token).await), ["creating"]);

    // The next run finds resource 1 made but never reported: it fails it
    // (the job keeps its place), destroys it, and serves the job anew.
    let well = chaos(s.dir.path(), ChaosConfig::default());
    assert_eq!(owned_ids(&*well).await, [1], "made before the crash");
    let runner = start(well.clone(), runner_config(&s, &token, &[("solo", 1)]));
    let rs = eventually("the job served again", || async {
        let rs = s.resources(&token).await;
        (states(&rs) == ["ready"]).then_some(rs)
    })
    .await;
    assert_eq!(rs[0].0, 2, "a new resource");
    assert_eq!(owned_ids(&*well).await, [2], "the crashed one destroyed");
    let job_now = s.job(job).await;
    assert_eq!(
        job_now["outcome"],
        json!(null),
        "the job lives on: {job_now}"
    );
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn the_runner_asks_only_for_the_slots_it_has() {
    let s = server().await;
    // The server would hand out four; the well says it holds two.
    let token = s.well("small", json!({"pg": 4})).await;
    let well = chaos(s.dir.path(), ChaosConfig::default());
    let runner = start(well.clone(), runner_config(&s, &token, &[("pg", 2)]));
    let first = s
        .submit(json!([{"name": "db", "type": "pg", "count": 2}]))
        .await;
    s.submit(json!([{"name": "db", "type": "pg"}])).await;
    eventually("the first job's two", || async {
        (states(&s.resources(&token).await) == ["ready", "ready"]).then_some(())
    })
    .await;
    // The second waits while the well is full. Nothing happening has no
    // event to wait for: let a few of the runner's polls (1 s each) pass,
    // then check that the server granted nothing more.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(s.resources(&token).await.len(), 2, "no third lease");

    s.cancel(first).await;
    let rs = eventually("the second job served", || async {
        let rs = s.resources(&token).await;
        (states(&rs) == ["ready"]).then_some(rs)
    })
    .await;
    assert_eq!(rs[0].0, 3);
    assert_eq!(owned_ids(&*well).await, [3]);
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_slot_whose_reset_fails_is_held_until_an_operator_releases_it() {
    let s = server_with(Limits {
        destroy_failures_max: 2,
        ..Limits::default()
    })
    .await;
    s.admin("/0/admin/types", json!({"name": "probe", "max_per_job": 1}))
        .await;
    let token = s.well("lab", json!({"probe": 1})).await;
    let broken = s.dir.path().join("broken");
    std::fs::write(&broken, b"").expect("flag");
    let config = SlotConfig {
        rtype: "probe".into(),
        reset: Some(format!("test ! -e {}", broken.display())),
        reset_timeout_ms: 10_000,
        items: BTreeMap::from([(
            "probe-a".to_string(),
            SlotItem {
                metadata: BTreeMap::from([("serial".to_string(), "A1".to_string())]),
                secrets: BTreeMap::new(),
            },
        )]),
    };
    let well = Arc::new(SlotWell::open(config, &s.dir.path().join("slot")).expect("a slot well"));
    let runner = start(well.clone(), runner_config(&s, &token, &[("probe", 1)]));
    let job = s.submit(json!([{"name": "p", "type": "probe"}])).await;
    eventually("the probe handed out", || async {
        (states(&s.resources(&token).await) == ["ready"]).then_some(())
    })
    .await;
    s.cancel(job).await;
    eventually("the probe held", || async {
        let rs = s.resources(&token).await;
        (rs.len() == 1 && rs[0].1 == "held" && rs[0].2 == "hold").then_some(())
    })
    .await;
    assert_eq!(well.quarantined().await, ["probe-a"]);
    // Held: a second job cannot have the probe.
    let second = s.submit(json!([{"name": "p", "type": "probe"}])).await;

    // The operator mends the probe and releases it: the reset runs again,
    // succeeds, and the probe goes to the second job.
    std::fs::remove_file(&broken).expect("mended");
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            "/0/admin/resources/1/release",
            BOOT,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rs = eventually("the second job served", || async {
        let rs = s.resources(&token).await;
        (states(&rs) == ["ready"]).then_some(rs)
    })
    .await;
    assert_eq!(rs[0].0, 2);
    assert!(well.quarantined().await.is_empty());
    assert_eq!(owned_ids(&*well).await, [2]);
    s.cancel(second).await;
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_create_that_hangs_is_cut_off_and_the_job_fails_with_the_reason() {
    let s = server().await;
    let token = s.well("stuck", json!({"solo": 1})).await;
    let hangs = ChaosConfig {
        create_hang_probability: 1.0,
        ..ChaosConfig::default()
    };
    let well = chaos(s.dir.path(), hangs);
    let config = RunnerConfig {
        create_timeout: Duration::from_millis(300),
        ..runner_config(&s, &token, &[("solo", 1)])
    };
    let runner = start(well.clone(), config);
    let job = s.submit(json!([{"name": "db", "type": "solo"}])).await;
    // Each try is cut off and reported as retryable, until the group has
    // failed as often as the limits allow.
    assert_eq!(s.ended(job).await, json!({"failed": "resource"}));
    let reason = s.job(job).await["reason"].clone();
    assert!(
        reason
            .as_str()
            .is_some_and(|r| r.contains("create took longer than 300 ms")),
        "{reason}"
    );
    eventually("every try confirmed destroyed", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    assert!(
        owned_ids(&*well).await.is_empty(),
        "a hung create made nothing"
    );
    assert!(!runner.finished(), "the runner carries on");
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_destroy_that_hangs_ends_held_with_its_reason_and_its_slot_counted() {
    let s = server_with(Limits {
        destroy_failures_max: 2,
        ..Limits::default()
    })
    .await;
    let stuck_token = s.well("stuck", json!({"solo": 1})).await;
    let hangs = ChaosConfig {
        destroy_hang_probability: 1.0,
        ..ChaosConfig::default()
    };
    let stuck = chaos(&s.dir.path().join("stuck"), hangs);
    let config = RunnerConfig {
        destroy_timeout: Duration::from_millis(300),
        ..runner_config(&s, &stuck_token, &[("solo", 1)])
    };
    let stuck_runner = start(stuck.clone(), config);
    let fine_token = s.well("fine", json!({"pg": 2})).await;
    let fine = chaos(&s.dir.path().join("fine"), ChaosConfig::default());
    let fine_runner = start(fine, runner_config(&s, &fine_token, &[("pg", 2)]));

    let first = s.submit(json!([{"name": "db", "type": "solo"}])).await;
    eventually("the first job's resource ready", || async {
        (states(&s.resources(&stuck_token).await) == ["ready"]).then_some(())
    })
    .await;
    s.cancel(first).await;
    let held = eventually("the resource held", || async {
        let list = s.get("/0/admin/resources").await;
        let r = list.as_array()?.first()?.clone();
        (r["state"] == "held").then_some(r)
    })
    .await;
    assert!(
        held["reason"]
            .as_str()
            .is_some_and(|r| r.contains("destroy took longer than 300 ms")),
        "the admin sees why: {held}"
    );
    assert_eq!(
        owned_ids(&*stuck).await,
        [1],
        "still made, as far as the well knows"
    );

    // The held resource keeps its slot: the next job for its type waits,
    // with no room by the books...
    let second = s.submit(json!([{"name": "db", "type": "solo"}])).await;
    let why = s.get(&format!("/0/jobs/{second}/explain")).await;
    let group = &why["explanation"]["groups"][0];
    assert_eq!(group["state"], "queued", "{why}");
    assert_eq!(group["wells"][0]["room"], 0, "{why}");
    // ...and a job for another type is served as if nothing had happened.
    let other = s.submit(json!([{"name": "o", "type": "pg"}])).await;
    eventually("the other job's resource ready", || async {
        (states(&s.resources(&fine_token).await) == ["ready"]).then_some(())
    })
    .await;
    s.cancel(other).await;
    assert_eq!(s.ended(other).await, json!("cancelled"));
    s.cancel(second).await;
    fine_runner.stop().await.expect("a clean stop");
    stuck_runner.kill().await;
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_create_under_way() {
    let s = server().await;
    let token = s.well("patient", json!({"solo": 1})).await;
    let slow = ChaosConfig {
        create_delay_ms: [1_500, 1_500],
        ..ChaosConfig::default()
    };
    let well = chaos(s.dir.path(), slow);
    let runner = start(well.clone(), runner_config(&s, &token, &[("solo", 1)]));
    s.submit(json!([{"name": "db", "type": "solo"}])).await;
    eventually("the create under way", || async {
        (states(&s.resources(&token).await) == ["creating"]).then_some(())
    })
    .await;
    runner.stop().await.expect("a clean stop");
    assert_eq!(
        states(&s.resources(&token).await),
        ["ready"],
        "reported before the runner returned"
    );
}

#[tokio::test]
async fn a_token_that_is_not_a_wells_stops_the_runner_with_an_error() {
    let s = server().await;
    let well = chaos(s.dir.path(), ChaosConfig::default());
    let runner = start(well, runner_config(&s, BOOT, &[("pg", 1)]));
    let err = runner.join().await.expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn run_from_config_runs_the_configured_well() {
    let s = server().await;
    let token = s.well("configured", json!({"pg": 2})).await;
    let path = s.dir.path().join("well.toml");
    let text = format!(
        r#"
        url = "{url}"
        token = "{token}"
        data_dir = "chaos-state"
        wait_ms = 1000
        reconcile_interval_ms = 200

        [capacity]
        pg = 2

        [well]
        kind = "chaos"
        seed = 3
        "#,
        url = s.base
    );
    std::fs::write(&path, text).expect("written");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        aquifer_well::run_from_config(&path, async {
            let _ = stopped.await;
        })
        .await
    });
    let job = s.submit(json!([{"name": "db", "type": "pg"}])).await;
    eventually("a ready resource", || async {
        (states(&s.resources(&token).await) == ["ready"]).then_some(())
    })
    .await;
    // The state file is where the configuration says, beside it.
    let state = std::fs::read_to_string(s.dir.path().join("chaos-state/chaos.json"))
        .expect("the chaos well's state");
    assert!(state.contains("\"1\""), "{state}");
    s.cancel(job).await;
    eventually("the resource destroyed", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    let _ = stop.send(());
    let stopped = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("it stops")
        .expect("no panic");
    assert!(stopped.is_ok(), "{stopped:?}");
}
