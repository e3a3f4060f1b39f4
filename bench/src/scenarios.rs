//! The scenarios. Each sets up its own server over a fresh database,
//! measures, and returns its figures.

use crate::null::{Act, Log};
use crate::report::{Figures, ms, percentile};
use crate::services::{Services, Submitted, stories, submit, submit_all, until};
use crate::stack::{Run, Server, ServerSettings, job};
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The one target of every scenario.
const TARGET: &str = "bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FactoryKind {
    Null,
    Local,
}

/// N jobs, each with R resources of R types (C of each) and a worker:
/// jobs/s end to end and submission-to-start latency.
#[derive(clap::Args)]
pub struct Throughput {
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// R: resources per job, each of its own type.
    #[arg(long, default_value_t = 2)]
    pub resources: usize,
    /// C: how many of each type the well holds at once.
    #[arg(long, default_value_t = 8)]
    pub capacity: u32,
    /// Workers at once (default: C).
    #[arg(long)]
    pub workers: Option<u16>,
    #[arg(long, value_enum, default_value = "null")]
    pub factory: FactoryKind,
    /// The task each job runs (the local factory runs it; the null agent
    /// does not).
    #[arg(long, default_value = "true")]
    pub script: String,
    /// Concurrent submitting clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
}

/// N jobs, each with one resource of each of R types (C of each in the
/// well) and a worker: jobs/s from the first submission to the last
/// resource destroyed, and submission-to-start latency.
pub async fn throughput(run: &Run, stall: Duration, p: &Throughput) -> Result<Figures> {
    let workers = (p.workers).unwrap_or_else(|| u16::try_from(p.capacity).unwrap_or(u16::MAX));
    let db = run.database("throughput").await?;
    let settings = ServerSettings {
        jobs_max: Some(p.jobs as u64 + 100),
        ..ServerSettings::default()
    };
    let server = Server::start(run, &db, &settings).await?;
    let types: Vec<String> = (0..p.resources).map(|i| format!("r{i}")).collect();
    for t in &types {
        server.define_type(t, 1).await?;
    }
    server.define_target(TARGET).await?;
    let log = Arc::new(Log::default());
    let mut services = Services::default();
    let pools: Vec<(String, u32)> = types.iter().map(|t| (t.clone(), p.capacity)).collect();
    services.null_well(&server, &log, &pools).await?;
    match p.factory {
        FactoryKind::Null => (services.null_factory(&server, &log, TARGET, workers)).await?,
        FactoryKind::Local => (services.local_factory(run, &server, TARGET, workers)).await?,
    }
    let refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let body = job(TARGET, &refs, 1, &p.script);

    let first = Instant::now();
    let submitted = submit_all(&server, &body, p.jobs, p.clients, "throughput").await?;
    let submitting = first.elapsed();
    let goal = (p.jobs * p.resources) as u64;
    let outcome = until(
        &log,
        &mut services,
        stall,
        "waiting for every resource to be destroyed",
        || log.destroyed.load(Ordering::SeqCst) >= goal,
        || {
            format!(
                "{} of {} resources created, {} destroyed",
                log.created.load(Ordering::SeqCst),
                goal,
                log.destroyed.load(Ordering::SeqCst)
            )
        },
    )
    .await;
    let measured = outcome.map(|()| {
        let last = (log.acts().iter())
            .filter(|(_, _, a)| *a == Act::Destroyed)
            .map(|(at, _, _)| *at)
            .max()
            .unwrap_or_else(Instant::now);
        last.duration_since(first)
    });
    let finished = async {
        let elapsed = measured?;
        let ids: Vec<u64> = submitted.iter().map(|s| s.job).collect();
        let told = stories(&server, &ids, p.clients).await?;
        let mut starts = Vec::with_capacity(told.len());
        let (mut to_start, mut to_destroyed) = (Vec::new(), Vec::new());
        for (s, story) in submitted.iter().zip(&told) {
            if story.outcome.as_ref().and_then(|o| o.as_str()) != Some("succeeded") {
                bail!("job {} did not succeed: {:?}", s.job, story.outcome);
            }
            let started =
                (story.started_ms).with_context(|| format!("job {} never started", s.job))?;
            starts.push((started - s.sent_ms).max(0.0));
            if let Some(ready) = story.ready_ms {
                to_start.push(started - ready);
            }
            if let (Some(ended), Some(gone)) = (story.ended_ms, story.destroyed_ms) {
                to_destroyed.push(gone - ended);
            }
        }
        let mut f = Figures::new("throughput");
        f.add("store", "store", format!("{:?}", run.store).to_lowercase())
            .add(
                "factory",
                "factory",
                format!("{:?}", p.factory).to_lowercase(),
            )
            .add("jobs", "jobs", p.jobs)
            .add("resources", "resources per job (R)", p.resources)
            .add("capacity", "capacity per type (C)", p.capacity)
            .add("workers", "workers at once", workers)
            .add_f(
                "elapsed_s",
                "first submission to last destroy (s)",
                elapsed.as_secs_f64(),
            )
            .add_f(
                "submitting_s",
                "first to last submission (s)",
                submitting.as_secs_f64(),
            )
            .add_f(
                "jobs_per_s",
                "jobs/s",
                p.jobs as f64 / elapsed.as_secs_f64(),
            );
        f.add_percentiles("submit", "submission", &latencies(&submitted))
            .add_percentiles("start", "submission to start", &starts)
            // The local path, on the server's clock (whole milliseconds):
            // every resource ready to the agent starting the job, and the
            // job's end to its last resource's destruction confirmed.
            .add_percentiles(
                "ready_to_start",
                "resources ready to job started",
                &to_start,
            )
            .add_percentiles(
                "end_to_destroyed",
                "job ended to resources destroyed",
                &to_destroyed,
            );
        Ok(f)
    }
    .await;
    services.stop().await?;
    server.stop().await?;
    finished
}

fn latencies(s: &[Submitted]) -> Vec<f64> {
    s.iter().map(|s| ms(s.latency)).collect()
}

/// The gaps from a destruction to the next creation of the same type,
/// where the destruction freed the room the creation needed: creations
/// that directly follow a destruction in that type's log.
fn handoffs(log: &Log, rtype: &str) -> Vec<f64> {
    let acts: Vec<(Instant, Act)> = (log.acts().into_iter())
        .filter(|(_, t, _)| t == rtype)
        .map(|(at, _, a)| (at, a))
        .collect();
    acts.windows(2)
        .filter_map(|w| match (w[0], w[1]) {
            ((freed, Act::Destroyed), (granted, Act::Created { .. })) => {
                Some(ms(granted.duration_since(freed)))
            }
            _ => None,
        })
        .collect()
}

/// Capacity 1 and a queue of waiting jobs; then 2 slots and jobs asking
/// for both: from a destroy to the next lease in the waiting well's hands.
pub async fn handoff(run: &Run, stall: Duration, jobs: usize, clients: usize) -> Result<Figures> {
    let db = run.database("handoff").await?;
    let settings = ServerSettings {
        jobs_max: Some(2 * jobs as u64 + 100),
        ..ServerSettings::default()
    };
    let server = Server::start(run, &db, &settings).await?;
    server.define_type("one", 1).await?;
    server.define_type("two", 2).await?;
    server.define_target(TARGET).await?;
    let log = Arc::new(Log::default());
    let mut services = Services::default();
    let pools = [("one".to_string(), 1), ("two".to_string(), 2)];
    services.null_well(&server, &log, &pools).await?;
    services.null_factory(&server, &log, TARGET, 4).await?;
    let measured = async {
        let mut f = Figures::new("handoff");
        f.add("store", "store", format!("{:?}", run.store).to_lowercase())
            .add("jobs", "jobs per case", jobs);
        // Each case's type, how many a job asks for, the destructions
        // counted once it is over (the cases run one after the other),
        // and its figures' key and label.
        let cases = [
            (
                "one",
                1u16,
                jobs as u64,
                "one_slot",
                "one slot: destroy to next lease",
            ),
            (
                "two",
                2,
                3 * jobs as u64,
                "two_of_two",
                "2 of 2 slots: destroy to next lease",
            ),
        ];
        for (rtype, count, goal, key, label) in cases {
            let body = job(TARGET, &[rtype], count, "true");
            submit_all(&server, &body, jobs, clients, rtype).await?;
            until(
                &log,
                &mut services,
                stall,
                &format!("handing off {rtype}"),
                || log.destroyed.load(Ordering::SeqCst) >= goal,
                || {
                    format!(
                        "{} of {} resources destroyed",
                        log.destroyed.load(Ordering::SeqCst),
                        goal
                    )
                },
            )
            .await?;
            let gaps = handoffs(&log, rtype);
            f.add(
                &format!("{key}_handoffs"),
                &format!("{label}: hand-offs"),
                gaps.len(),
            )
            .add_percentiles(key, label, &gaps);
        }
        Ok(f)
    }
    .await;
    services.stop().await?;
    server.stop().await?;
    measured
}

/// One decision's latency with a small and a large queue, their ratio,
/// and the server's memory per queued job.
#[derive(clap::Args)]
pub struct Scale {
    #[arg(long, default_value_t = 1_000)]
    pub small: usize,
    #[arg(long, default_value_t = 100_000)]
    pub large: usize,
    /// Types the queued jobs are spread over.
    #[arg(long, default_value_t = 100)]
    pub types: usize,
    /// Probe jobs submitted one at a time at each size.
    #[arg(long, default_value_t = 200)]
    pub probes: usize,
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
}

/// One decision's cost with a small and a large queue: the latency of a
/// submission and of the lease it leads to, while `size` jobs wait over
/// `types` types; and the server's memory per queued job.
pub async fn scale(run: &Run, stall: Duration, p: &Scale) -> Result<Figures> {
    let mut f = Figures::new("scale");
    f.add("store", "store", format!("{:?}", run.store).to_lowercase())
        .add("types", "types of the queue", p.types)
        .add("probes", "probe jobs per size", p.probes);
    let mut p50s = Vec::new();
    for (name, size) in [("small", p.small), ("large", p.large)] {
        let db = run.database(&format!("scale_{name}")).await?;
        let settings = ServerSettings {
            jobs_max: Some((size + p.probes) as u64 + 100),
            ..ServerSettings::default()
        };
        let server = Server::start(run, &db, &settings).await?;
        let measured = async {
            for t in 0..p.types {
                server.define_type(&format!("q{t}"), 1).await?;
            }
            server.define_type("probe", 1).await?;
            server.define_target(TARGET).await?;
            let log = Arc::new(Log::default());
            let mut services = Services::default();
            let pools = [("probe".to_string(), u32::try_from(p.probes)?)];
            services.null_well(&server, &log, &pools).await?;
            services.null_factory(&server, &log, TARGET, 16).await?;
            let before = server.rss_bytes()?;
            // The queue: jobs no well serves, spread over the types.
            let per_type = size / p.types;
            let mut left = size;
            for t in 0..p.types {
                let n = if t + 1 == p.types { left } else { per_type };
                left -= n;
                let rtype = format!("q{t}");
                let body = job(TARGET, &[&rtype], 1, "true");
                submit_all(
                    &server,
                    &body,
                    n,
                    p.clients,
                    &format!("{name} queue, {rtype}"),
                )
                .await?;
                if size >= 10_000 && (t + 1) % 10 == 0 {
                    eprintln!("  {name} queue: {} of {size} jobs waiting", size - left);
                }
            }
            let after = server.rss_bytes()?;
            // The probes, one at a time: each is decided with the queue full.
            let body = job(TARGET, &["probe"], 1, "true");
            let (mut submits, mut leases) = (Vec::new(), Vec::new());
            for i in 0..p.probes {
                let goal = i as u64 + 1;
                let t0 = Instant::now();
                let s = submit(&server.api, &body).await?;
                until(
                    &log,
                    &mut services,
                    stall,
                    "waiting for a probe's lease",
                    || log.created.load(Ordering::SeqCst) >= goal,
                    || format!("{i} of {} probes leased", p.probes),
                )
                .await?;
                let granted = (log.acts().iter().rev())
                    .find(|(_, _, a)| *a == Act::Created { job: s.job as u32 })
                    .map(|(at, _, _)| *at)
                    .context("the probe's lease went to another job")?;
                submits.push(ms(s.latency));
                leases.push(ms(granted.duration_since(t0)));
            }
            services.stop().await?;
            Ok::<_, anyhow::Error>((submits, leases, before, after))
        }
        .await;
        server.stop().await?;
        let (submits, leases, before, after) = measured?;
        f.add(
            &format!("{name}_queued"),
            &format!("{name}: jobs queued"),
            size,
        )
        .add_percentiles(
            &format!("{name}_submit"),
            &format!("{name}: submission"),
            &submits,
        )
        .add_percentiles(
            &format!("{name}_lease"),
            &format!("{name}: submission to lease"),
            &leases,
        )
        .add_f(
            &format!("{name}_bytes_per_job"),
            &format!("{name}: server memory per queued job (bytes)"),
            after.saturating_sub(before) as f64 / size.max(1) as f64,
        );
        p50s.push((percentile(&submits, 0.5), percentile(&leases, 0.5)));
    }
    f.add_f(
        "submit_ratio",
        "submission p50, large / small",
        p50s[1].0 / p50s[0].0,
    )
    .add_f(
        "lease_ratio",
        "submission to lease p50, large / small",
        p50s[1].1 / p50s[0].1,
    );
    Ok(f)
}

/// Start-up of the real server after `events` committed events, with
/// snapshots every 10,000 events and with none.
pub async fn recovery(run: &Run, events: u64) -> Result<Figures> {
    let mut f = Figures::new("recovery");
    f.add("store", "store", format!("{:?}", run.store).to_lowercase());
    let mut took = Vec::new();
    for (name, every) in [("snapshots", 10_000u64), ("no_snapshots", 0)] {
        let db = run.database(&format!("recovery_{name}")).await?;
        let t0 = Instant::now();
        let written = crate::fill::fill(&db, every, events).await?;
        eprintln!(
            "  {name}: {written} events written in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let settings = ServerSettings {
            snapshot_every_events: Some(every),
            ..ServerSettings::default()
        };
        let server = Server::start(run, &db, &settings).await?;
        let started = server.started_in;
        let replayed = replayed_events(&server.log);
        server.stop().await?;
        f.add(
            &format!("{name}_events"),
            &format!("{name}: events in the log"),
            written,
        )
        .add(
            &format!("{name}_replayed_events"),
            &format!("{name}: events replayed"),
            replayed.map_or(serde_json::Value::Null, Into::into),
        )
        .add_f(
            &format!("{name}_startup_ms"),
            &format!("{name}: spawn to listening (ms)"),
            ms(started),
        );
        took.push(ms(started));
    }
    f.add_f(
        "ratio",
        "start-up without snapshots / with",
        took[1] / took[0],
    );
    Ok(f)
}

/// The number of events the server said it replayed.
fn replayed_events(log: &std::path::Path) -> Option<u64> {
    let raw = std::fs::read_to_string(log).ok()?;
    // The log may be coloured: drop the escape sequences first.
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            text.push(c);
        }
    }
    let at = text.find("replayed_events=")? + "replayed_events=".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The model checker's rate on a scope with every fault.
pub fn model(scope: aquifer_model::scope::ScopeName, threads: usize) -> Figures {
    use aquifer_core::Rules;
    use aquifer_model::{AquiferModel, Faults, run, scope::Scope};
    let rules = Rules::production();
    let m = AquiferModel::new(Scope::new(scope, rules.pools), rules, Faults::All);
    let report = run::check(m, threads, run::Strategy::Dfs, None);
    let mut f = Figures::new("model");
    f.add("scope", "scope", format!("{scope:?}").to_lowercase())
        .add("threads", "threads", threads)
        .add("states", "states", report.states)
        .add("unique_states", "unique states", report.unique)
        .add_f("elapsed_s", "seconds", report.secs)
        .add_f(
            "states_per_s",
            "states/s",
            report.states as f64 / report.secs.max(1e-9),
        )
        .add("result", "result", report.result());
    f
}
