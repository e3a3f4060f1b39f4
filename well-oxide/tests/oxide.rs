//! The oxide well against the fake Oxide API, through the real `oxide`
//! client: in project and silo mode it makes an account whose token
//! reaches its own project only, lives no longer than the job, and is
//! gone, with everything the job made, after a destroy; failures read as
//! reasons a job owner can act on; injected faults and lost answers are
//! retried and leave nothing; and through the real server and runner a
//! job gets its accounts and leaves nothing behind.

use aquifer_oxide_fake::{FakeOxide, Faults};
use aquifer_well::{CreateRequest, Created, Well, WellSettings as _};
use aquifer_well_harness::*;
use aquifer_well_oxide::api::Connector;
use aquifer_well_oxide::{OxideConfig, OxideWell};
use oxide::prelude::*;
use oxide::types::SiloRole;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RTYPE: &str = "oxide";

fn now_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(d.as_millis()).expect("a small number")
}

fn req(resource: u32, deadline_ms: u64) -> CreateRequest {
    CreateRequest {
        resource,
        rtype: RTYPE.into(),
        job: 1,
        deadline_ms,
    }
}

fn in_an_hour(resource: u32) -> CreateRequest {
    req(resource, now_ms() + 3_600_000)
}

/// A well's configuration as its operator would write it, against `host`.
fn config(host: &str, token: &str, extra: &str) -> OxideConfig {
    let text = format!(
        r#"
        rtype = "{RTYPE}"
        host = "{host}"
        token = "{token}"
        request_timeout_ms = 5000
        connect_timeout_ms = 1000
        instance_stop_timeout_ms = 20000
        retries = 4
        retry_base_ms = 5
        {extra}
        "#
    );
    let c: OxideConfig = toml::from_str(&text).expect("a configuration");
    c.validate().expect("a valid configuration");
    c
}

fn project_well(fake: &FakeOxide, token: &str) -> OxideWell {
    let c = config(fake.url(), token, "mode = \"project\"");
    OxideWell::new(c).expect("a well")
}

const SILO_MODE: &str = r#"
    mode = "silo"
    job_host = "https://{silo}.sys.rack.test"
    ip_pools = ["default"]
    [quotas]
    cpus = 4
    memory_gib = 8
    storage_gib = 64
"#;

/// A client that calls the fake with `token`, as a job would.
fn as_job(fake: &FakeOxide, token: &str) -> oxide::Client {
    let c = Connector::new(
        fake.url(),
        Vec::new(),
        Duration::from_secs(5),
        Duration::from_secs(1),
    );
    c.with_token(token).expect("a client")
}

fn token(c: &Created) -> &str {
    c.secrets.get("token").map(String::as_str).expect("a token")
}

async fn owned<W: Well>(w: &W) -> Vec<u32> {
    let o = w.list_owned().await.expect("the well lists");
    o.into_iter().map(|o| o.resource).collect()
}

fn status<T: std::fmt::Debug>(r: Result<T, oxide::Error<oxide::types::Error>>) -> u16 {
    r.expect_err("refused").status().expect("a status").as_u16()
}

#[tokio::test]
async fn project_mode_makes_an_account_whose_token_reaches_its_project_only() {
    let fake = FakeOxide::start().await.expect("a fake");
    let well = project_well(&fake, &fake.silo_admin_token("ci"));
    let one = well.create(&in_an_hour(1)).await.expect("made");
    let two = well.create(&in_an_hour(2)).await.expect("made");

    let m = &one.metadata;
    assert_eq!(m["host"], fake.url());
    assert_eq!((m["silo"].as_str(), m["project"].as_str()), ("ci", "aq-1"));
    assert_eq!(m["user"], "aq-1");
    let expires = chrono::DateTime::parse_from_rfc3339(&m["token_expires"]).expect("a time");
    let left_s = expires.timestamp() - i64::try_from(now_ms() / 1000).expect("small");
    assert!((3_500..=3_600).contains(&left_s), "{left_s}");
    assert!(token(&one).starts_with("oxide-token-"));
    assert!(
        !format!("{one:?}").contains(token(&one)),
        "no secret in Debug"
    );
    assert_eq!(owned(&well).await, [1, 2]);
    assert!(
        !fake.remains("aq-2").iter().any(|r| r.starts_with("vpc ")),
        "no default VPC: {:?}",
        fake.remains("aq-2")
    );

    // The token is the job user's, a collaborator of its project only.
    let job = as_job(&fake, token(&one));
    let me = job.current_user_view().send().await.expect("who am I");
    assert_eq!(me.display_name, "aq-1");
    job.project_view()
        .project("aq-1")
        .send()
        .await
        .expect("its project");
    let vpc = oxide::types::VpcCreate {
        defaults: None,
        description: "made by the job".into(),
        dns_name: "net".parse().expect("a name"),
        ipv6_prefix: None,
        name: "net".parse().expect("a name"),
    };
    let made = job.vpc_create().project("aq-1").body(vpc).send().await;
    assert_eq!(made.expect("a VPC in its project").status(), 201);
    assert_eq!(status(job.project_view().project("aq-2").send().await), 404);
    assert_eq!(
        status(job.instance_list().project("aq-2").send().await),
        404
    );
    assert_eq!(
        status(job.project_delete().project("aq-1").send().await),
        403
    );
    let other = oxide::types::ProjectCreate {
        defaults: None,
        description: "not allowed".into(),
        name: "mine".parse().expect("a name"),
    };
    assert_eq!(status(job.project_create().body(other).send().await), 403);
    assert_eq!(status(job.user_list().send().await), 403);

    // Whatever the job left, the destroy takes, in the order Oxide needs.
    assert_eq!(fake.seed("aq-1"), 1);
    well.destroy(1, RTYPE).await.expect("destroyed");
    assert_eq!(fake.remains("aq-1"), Vec::<String>::new());
    assert_eq!(status(job.current_user_view().send().await), 401);
    assert!(!fake.remains("aq-2").is_empty(), "the other is untouched");
    well.destroy(1, RTYPE).await.expect("idempotent");
    well.destroy(2, RTYPE).await.expect("destroyed");
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
    assert_eq!(owned(&well).await, Vec::<u32>::new());
    drop(two);
}

#[tokio::test]
async fn the_token_lives_until_the_deadline_within_the_silo_maximum() {
    let fake = FakeOxide::start().await.expect("a fake");
    let well = project_well(&fake, &fake.silo_admin_token("ci"));
    let left = |c: &Created| {
        let e = chrono::DateTime::parse_from_rfc3339(&c.metadata["token_expires"]).expect("a time");
        e.timestamp() - i64::try_from(now_ms() / 1000).expect("small")
    };
    let soon = well
        .create(&req(1, now_ms() + 120_000))
        .await
        .expect("made");
    assert!((100..=120).contains(&left(&soon)), "{}", left(&soon));
    fake.set_token_max_ttl("ci", Some(600));
    let capped = well.create(&in_an_hour(2)).await.expect("made");
    assert!((580..=600).contains(&left(&capped)), "{}", left(&capped));

    let late = well
        .create(&req(3, now_ms() - 1))
        .await
        .expect_err("too late");
    assert!(
        !late.retryable && late.reason.contains("deadline"),
        "{late:?}"
    );
    assert_eq!(fake.remains("aq-3"), Vec::<String>::new(), "nothing made");
    for r in [1, 2] {
        well.destroy(r, RTYPE).await.expect("destroyed");
    }
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
}

#[tokio::test]
async fn silo_mode_makes_a_silo_per_resource_and_removes_it_whole() {
    let fake = FakeOxide::start().await.expect("a fake");
    let well =
        OxideWell::new(config(fake.url(), &fake.fleet_admin_token(), SILO_MODE)).expect("a well");
    let made = well.create(&in_an_hour(5)).await.expect("made");
    let m = &made.metadata;
    assert_eq!(m["silo"], "aq-5");
    assert_eq!(m["host"], "https://aq-5.sys.rack.test");
    assert_eq!(
        (m["project"].as_str(), m["user"].as_str()),
        ("aq-5", "aq-5")
    );
    assert_eq!(fake.silo_quotas("aq-5"), Some((4, 8 << 30, 64 << 30)));
    assert_eq!(
        fake.silo_pools("aq-5"),
        [("default".to_string(), true)].into()
    );
    assert_eq!(owned(&well).await, [5]);
    // The admin's session was ended; the job's token is the one credential.
    let remains = fake.remains("aq-5");
    assert_eq!(
        remains.iter().filter(|r| r.starts_with("session")).count(),
        0,
        "{remains:?}"
    );
    assert_eq!(
        remains.iter().filter(|r| r.starts_with("token")).count(),
        1,
        "{remains:?}"
    );

    let job = as_job(&fake, token(&made));
    job.project_view()
        .project("aq-5")
        .send()
        .await
        .expect("its project");
    assert_eq!(status(job.silo_list().send().await), 403);
    assert_eq!(status(job.silo_delete().silo("aq-5").send().await), 403);

    fake.seed("aq-5");
    well.destroy(5, RTYPE).await.expect("destroyed");
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
    well.destroy(5, RTYPE).await.expect("idempotent");
    assert_eq!(owned(&well).await, Vec::<u32>::new());
}

#[tokio::test]
async fn failures_read_as_reasons_and_the_well_keeps_serving() {
    let fake = FakeOxide::start().await.expect("a fake");

    // Nobody listens on a port just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let nowhere = format!("http://{}", closed.local_addr().expect("an address"));
    drop(closed);
    let well = OxideWell::new(config(&nowhere, "t", "mode = \"project\"")).expect("a well");
    let e = well.create(&in_an_hour(1)).await.expect_err("unreachable");
    assert!(e.retryable && e.reason.contains("cannot reach"), "{e:?}");
    assert!(well.list_owned().await.is_err());

    let refused = project_well(&fake, "oxide-token-not-a-real-one");
    let e = refused.create(&in_an_hour(1)).await.expect_err("refused");
    assert!(!e.retryable && e.reason.contains("401"), "{e:?}");
    assert!(e.reason.contains("credential"), "{e:?}");

    let viewer = fake.user_token("ci", "viewer", Some(SiloRole::Viewer));
    let e = project_well(&fake, &viewer)
        .create(&in_an_hour(1))
        .await
        .expect_err("not an admin");
    assert!(!e.retryable && e.reason.contains("403"), "{e:?}");
    let silo_admin = fake.silo_admin_token("ci");
    let not_fleet = OxideWell::new(config(fake.url(), &silo_admin, SILO_MODE)).expect("a well");
    let e = not_fleet
        .create(&in_an_hour(1))
        .await
        .expect_err("not a fleet admin");
    assert!(
        !e.retryable && e.reason.contains("creating silo aq-1: 403"),
        "{e:?}"
    );

    // Out of capacity: worth asking again later. The half-made account
    // goes with the destroy, and the next create works.
    let well = project_well(&fake, &silo_admin);
    fake.fail(
        "POST",
        "/v1/projects",
        1,
        507,
        "InsufficientCapacity",
        "not enough storage",
    );
    let e = well.create(&in_an_hour(2)).await.expect_err("no room");
    assert!(
        e.retryable && e.reason.contains("creating project aq-2: 507"),
        "{e:?}"
    );
    assert_eq!(owned(&well).await, [2], "the user was made");
    well.destroy(2, RTYPE).await.expect("destroyed");
    let made = well.create(&in_an_hour(3)).await.expect("served");
    assert_eq!(made.metadata["project"], "aq-3");
    well.destroy(3, RTYPE).await.expect("destroyed");
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
}

#[tokio::test]
async fn faults_and_lost_answers_are_retried_and_leave_nothing() {
    for mode in ["project", "silo"] {
        let fake = FakeOxide::start().await.expect("a fake");
        let c = if mode == "project" {
            config(
                fake.url(),
                &fake.silo_admin_token("ci"),
                "mode = \"project\"",
            )
        } else {
            config(fake.url(), &fake.fleet_admin_token(), SILO_MODE)
        };
        let well = OxideWell::new(c).expect("a well");
        fake.set_faults(Faults {
            error_rate: 0.15,
            after_share: 0.5,
            delay_ms: 2,
            seed: 11,
        });
        let mut made = 0;
        for r in 1..=8 {
            if well.create(&in_an_hour(r)).await.is_ok() {
                made += 1;
                fake.seed(&format!("aq-{r}"));
            }
        }
        assert!(
            made >= 4,
            "{mode}: retries carry most creates through: {made} of 8"
        );
        // As the runner does: destroy until it sticks (every create is
        // destroyed, whether it succeeded or not).
        for r in 1..=8 {
            let mut attempts = 0;
            while let Err(e) = well.destroy(r, RTYPE).await {
                attempts += 1;
                assert!(attempts < 20, "{mode}: destroy {r} keeps failing: {e}");
            }
        }
        fake.set_faults(Faults::default());
        assert_eq!(fake.remains("aq-"), Vec::<String>::new(), "{mode}");
        assert_eq!(owned(&well).await, Vec::<u32>::new(), "{mode}");
    }
}

#[tokio::test]
async fn lost_answers_are_adopted_not_repeated() {
    for mode in ["project", "silo"] {
        let fake = FakeOxide::start().await.expect("a fake");
        let well = if mode == "project" {
            project_well(&fake, &fake.silo_admin_token("ci"))
        } else {
            let c = config(fake.url(), &fake.fleet_admin_token(), SILO_MODE);
            OxideWell::new(c).expect("a well")
        };
        // Each of these takes effect, but its answer never arrives: the
        // retry meets "already exists", a used-up code, or a 404.
        for (method, path) in [
            ("POST", "/v1/system/silos"),
            ("POST", "/v1/system/ip-pools/default/silos"),
            ("POST", "/v1/system/identity-providers/local/users"),
            ("POST", "/v1/projects"),
            ("PUT", "/v1/projects/aq-1/policy"),
            ("POST", "/device/confirm"),
            ("POST", "/device/token"),
        ] {
            fake.lose_answers(method, path, 1);
        }
        let made = well
            .create(&in_an_hour(1))
            .await
            .expect("made all the same");
        let job = as_job(&fake, token(&made));
        job.project_view()
            .project("aq-1")
            .send()
            .await
            .expect("its project");
        let remains = fake.remains("aq-1");
        let count = |what: &str| remains.iter().filter(|r| r.starts_with(what)).count();
        assert_eq!(count("project"), 1, "{mode}: {remains:?}");
        assert_eq!(
            count("user aq-1"),
            if mode == "silo" { 2 } else { 1 },
            "{mode}: {remains:?}"
        );
        assert_eq!(
            count("token"),
            2,
            "{mode}: the lost one and the job's: {remains:?}"
        );

        for (method, path) in [
            ("POST", "/v1/users/"),
            ("DELETE", "/v1/system/identity-providers/local/users/"),
            ("DELETE", "/v1/projects/aq-1"),
            ("DELETE", "/v1/system/silos/"),
        ] {
            fake.lose_answers(method, path, 1);
        }
        well.destroy(1, RTYPE)
            .await
            .expect("destroyed all the same");
        assert_eq!(fake.remains("aq-"), Vec::<String>::new(), "{mode}");
    }
}

#[tokio::test]
async fn a_create_abandoned_midway_is_found_and_cleaned_up() {
    let fake = FakeOxide::start().await.expect("a fake");
    let well = Arc::new(project_well(&fake, &fake.silo_admin_token("ci")));
    let held = fake.hold("POST", "/device/confirm");
    let w = well.clone();
    let create = tokio::spawn(async move { w.create(&in_an_hour(7)).await });
    held.arrived().await;
    // The runner drops a create that outlives its time; so does this.
    create.abort();
    let _ = create.await;
    held.release();
    assert_eq!(owned(&*well).await, [7], "found by name");
    well.destroy(7, RTYPE).await.expect("destroyed");
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
}

#[tokio::test]
async fn through_the_server_and_runner_a_job_gets_accounts_and_leaves_nothing() {
    let s = server().await;
    s.admin("/0/admin/types", json!({"name": RTYPE, "max_per_job": 2}))
        .await;
    let token = s.well("rack", json!({RTYPE: 2})).await;
    let fake = FakeOxide::start().await.expect("a fake");
    let oxide_token = s.dir.path().join("oxide.token");
    std::fs::write(&oxide_token, fake.silo_admin_token("ci") + "\n").expect("written");
    let path = s.dir.path().join("well.toml");
    let text = format!(
        r#"
        url = "{url}"
        token = "{token}"
        data_dir = "state"
        wait_ms = 1000
        reconcile_interval_ms = 200

        [capacity]
        {RTYPE} = 2

        [well]
        kind = "oxide"
        rtype = "{RTYPE}"
        mode = "project"
        host = "{host}"
        token_file = "oxide.token"
        retry_base_ms = 5
        "#,
        url = s.base,
        host = fake.url(),
    );
    std::fs::write(&path, text).expect("written");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        aquifer_well::run_configured::<OxideWell>(&path, async {
            let _ = stopped.await;
        })
        .await
    });

    let job = s
        .submit(json!([{"name": "rack", "type": RTYPE, "count": 2}]))
        .await;
    eventually("two ready accounts", || async {
        let rs = s.resources(&token).await;
        (rs.len() == 2 && rs.iter().all(|r| r.1 == "ready")).then_some(())
    })
    .await;
    let remains = fake.remains("aq-");
    assert!(remains.contains(&"project aq-1".to_string()), "{remains:?}");
    assert!(remains.contains(&"project aq-2".to_string()), "{remains:?}");
    fake.seed("aq-2");
    s.cancel(job).await;
    eventually("the server to forget both", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    // Confirmed only after the destroy: nothing of either remains.
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
    let _ = stop.send(());
    let stopped = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("it stops");
    assert!(stopped.expect("no panic").is_ok());
}

#[tokio::test]
async fn with_faults_the_runner_still_serves_and_reconcile_takes_orphans() {
    let s = server().await;
    s.admin("/0/admin/types", json!({"name": RTYPE, "max_per_job": 2}))
        .await;
    let token = s.well("flaky-rack", json!({RTYPE: 2})).await;
    let fake = FakeOxide::start().await.expect("a fake");
    let well = Arc::new(
        OxideWell::new(config(fake.url(), &fake.fleet_admin_token(), SILO_MODE)).expect("a well"),
    );
    // Made by an earlier life of the well, under an id the server never
    // handed out: an orphan.
    well.create(&in_an_hour(900)).await.expect("made");
    fake.set_faults(Faults {
        error_rate: 0.1,
        after_share: 0.5,
        delay_ms: 3,
        seed: 5,
    });
    let runner = start(well.clone(), runner_config(&s, &token, &[(RTYPE, 2)]));
    let job = s
        .submit(json!([{"name": "rack", "type": RTYPE, "count": 2}]))
        .await;
    eventually("two ready silos", || async {
        let rs = s.resources(&token).await;
        (rs.len() == 2 && rs.iter().all(|r| r.1 == "ready")).then_some(())
    })
    .await;
    eventually("the orphan gone", || async {
        fake.remains("aq-900").is_empty().then_some(())
    })
    .await;
    s.cancel(job).await;
    eventually("the server to forget them", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    fake.set_faults(Faults::default());
    assert_eq!(fake.remains("aq-"), Vec::<String>::new());
    assert_eq!(s.ended(job).await, json!("cancelled"));
    runner.stop().await.expect("a clean stop");
}
