//! Submit throughput and latency over HTTP.
//!
//! `cargo run --release -p aquifer-server --example submit_bench [DATABASE_URL] [JOBS] [CLIENTS]`
//!
//! Starts the real server (`aquifer_server::start`) on loopback against a fresh
//! SQLite file (or a fresh database on the PostgreSQL server given), then CLIENTS concurrent
//! clients (default 16) submit JOBS jobs in all (default 10,000), each
//! asking for one resource. Prints jobs/s and the p50 and p99 latency of a
//! submission as the client sees it.

use aquifer_core::*;
use aquifer_server::driver::MonotonicClock;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-bootstrap-token";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::env::temp_dir().join(format!("aquifer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = match args.next().filter(|a| a != "-") {
        // A fresh database on the given server, so runs do not pile up.
        Some(server) if server.starts_with("postgres") => {
            let admin = sqlx::PgPool::connect(&server).await.expect("the server");
            let db = format!("aquifer_bench_{}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&admin)
                .await
                .expect("a fresh database");
            let (prefix, _) = server.rsplit_once('/').expect("a URL with a database");
            format!("{prefix}/{db}")
        }
        Some(other) => other,
        None => format!("sqlite:{}", dir.join("bench.db").display()),
    };
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);

    let most = u32::try_from(jobs + 10).unwrap_or(u32::MAX);
    let limits = Limits {
        jobs_max: most,
        jobs_per_owner_max: most,
        ..Limits::default()
    };
    let running = aquifer_server::start(aquifer_server::Config {
        bootstrap_token: Some(TOKEN.into()),
        limits,
        clock: Arc::new(MonotonicClock::default()),
        ..aquifer_server::Config::loopback(&url)
    })
    .await
    .expect("the server starts");
    for input in [
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
    ] {
        // A database reused from an earlier run has them already.
        let _ = running.handle.send(input).await;
    }
    let client = aquifer_protocol::Client::new(&running.url, Some(TOKEN.into())).expect("a client");

    let body = serde_json::json!({
        "name": "bench",
        "target": "t",
        "resources": [{"name": "db", "type": "pg"}],
        "tasks": [{"name": "t", "script": "true"}],
        "timeout_s": 3600
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, body) = (client.clone(), body.clone());
            let n = jobs / clients + usize::from(c < jobs % clients);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(n);
                for _ in 0..n {
                    let t0 = Instant::now();
                    let _: serde_json::Value = (client.post(aquifer_protocol::path::JOBS, &body))
                        .await
                        .expect("accepted");
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(jobs);
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let kind = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    println!(
        "{kind}: {jobs} submissions from {clients} clients in {secs:.2} s: {:.0} jobs/s, p50 {:.2} ms, p99 {:.2} ms",
        jobs as f64 / secs,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    std::fs::remove_dir_all(&dir).ok();
}
