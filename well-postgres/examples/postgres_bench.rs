//! Times the postgres well's create and destroy, one resource after
//! another, against the cluster of `AQUIFER_TEST_POSTGRES_URL` (a role
//! with CREATEROLE and CREATEDB, or a superuser), and prints p50, p99 and
//! the maximum of each. Run it with
//! `cargo run --release -p aquifer-well-postgres --example postgres_bench [COUNT]`
//! (100 by default); build mode changes the figures (the password
//! verifier's 4096 HMAC rounds are CPU work).
//!
//! Everything it makes is under the prefix `aqbench_<pid>_`, and it checks
//! at the end that nothing with that prefix is left.

use aquifer_well::{CreateRequest, Well};
use aquifer_well_postgres::{PostgresConfig, PostgresWell};
use std::time::{Duration, Instant};

/// The `p`th percentile (0 to 100) of `sorted`, by the nearest rank.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<8} n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        times.len(),
        ms(percentile(&times, 50)),
        ms(percentile(&times, 99)),
        ms(percentile(&times, 100)),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("AQUIFER_TEST_POSTGRES_URL")
        .map_err(|_| anyhow::anyhow!("set AQUIFER_TEST_POSTGRES_URL to an admin URL"))?;
    let count: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100,
    };
    let prefix = format!("aqbench_{}_", std::process::id());
    let well = PostgresWell::open(PostgresConfig {
        rtype: "postgres".into(),
        admin_url: Some(url),
        admin_url_file: None,
        host: None,
        port: None,
        prefix: prefix.clone(),
        connection_limit: 5,
        admin_connections: 2,
        connect_timeout_ms: 10_000,
    })
    .await?;
    // An hour from now, as a job's deadline would be.
    let deadline_ms = u64::try_from(
        (std::time::SystemTime::now() + Duration::from_secs(3600))
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    // One round first, so the pool's first connection is not timed.
    let (mut creates, mut destroys) = (Vec::new(), Vec::new());
    for resource in 0..=count {
        let req = CreateRequest {
            resource,
            rtype: "postgres".into(),
            job: resource,
            deadline_ms,
        };
        let started = Instant::now();
        well.create(&req)
            .await
            .map_err(|e| anyhow::anyhow!("create {resource}: {e}"))?;
        let made = started.elapsed();
        let started = Instant::now();
        well.destroy(resource, "postgres")
            .await
            .map_err(|e| anyhow::anyhow!("destroy {resource}: {e}"))?;
        if resource > 0 {
            creates.push(made);
            destroys.push(started.elapsed());
        }
    }
    report("create", creates);
    report("destroy", destroys);
    let left = well.list_owned().await.map_err(anyhow::Error::msg)?;
    anyhow::ensure!(left.is_empty(), "left behind under {prefix}: {left:?}");
    Ok(())
}
