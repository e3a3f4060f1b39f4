//! `aquifer-bench`: aquifer measured end to end, in release builds, against
//! a real `aquifer server` process on loopback. Each scenario prints a
//! table and, as its last line, one JSON object with its figures. See
//! BENCHMARKS.md for the commands and the figures of the current build.

mod files;
mod fill;
mod null;
mod report;
mod scenarios;
mod services;
mod soak;
mod stack;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use stack::{Run, StoreKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Benchmarks of aquifer against a real server on loopback"
)]
struct Cli {
    /// Where the server keeps its books: a fresh SQLite file, or a fresh
    /// database on the PostgreSQL server of --postgres-url.
    #[arg(long, value_enum, default_value = "sqlite", global = true)]
    store: StoreKind,
    /// A PostgreSQL server to make fresh databases on (with --store
    /// postgres), e.g. postgres://user@127.0.0.1:5432/postgres.
    #[arg(long, env = "AQUIFER_BENCH_POSTGRES_URL", global = true)]
    postgres_url: Option<String>,
    /// Give up on a scenario when nothing has moved for this long.
    #[arg(long, default_value_t = 60, global = true)]
    stall_s: u64,
    /// The `aquifer` binary (default: the one beside this executable).
    #[arg(long, global = true)]
    aquifer: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N jobs, each with R resources of R types (C of each) and a worker:
    /// jobs/s end to end and submission-to-start latency.
    Throughput(scenarios::Throughput),
    /// From a destroy confirmation to the next lease in the waiting well's
    /// hands: one slot, then two slots and jobs asking for both.
    Handoff {
        #[arg(long, default_value_t = 1_000)]
        jobs: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// One decision's latency with a small and a large queue, their
    /// ratio, and the server's memory per queued job.
    Scale(scenarios::Scale),
    /// Start-up after a long log, with snapshots and without.
    Recovery {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// The model checker's states/s with every fault.
    /// The whole stack as processes, killed at random under a few hundred
    /// jobs; checks that nothing is lost, leaked or decided wrong.
    Soak(soak::Soak),
    /// A large output sent by an agent and read back, and small outputs:
    /// on the directory back end, and on S3 with --s3-url.
    Files(files::Files),
    Model {
        #[arg(long, value_enum, default_value = "standard")]
        scope: aquifer_model::scope::ScopeName,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

/// Refuses parameters that cannot give a figure, saying why.
fn validate(cli: &Cli) -> Result<()> {
    if cli.stall_s == 0 {
        bail!("--stall-s must be at least 1");
    }
    if cli.store == StoreKind::Postgres && cli.postgres_url.is_none() {
        bail!("--store postgres needs --postgres-url (or AQUIFER_BENCH_POSTGRES_URL)");
    }
    let at_least = |name: &str, value: usize, min: usize| {
        if value < min {
            bail!("--{name} must be at least {min} (it is {value})");
        }
        Ok(())
    };
    match &cli.scenario {
        Scenario::Throughput(p) => {
            at_least("jobs", p.jobs, 1)?;
            at_least("resources", p.resources, 1)?;
            if p.resources > 16 {
                bail!("--resources is at most 16 (a job's groups_per_job_max)");
            }
            at_least("capacity", p.capacity as usize, 1)?;
            at_least("workers", p.workers.map_or(1, usize::from), 1)?;
            at_least("clients", p.clients, 1)?;
        }
        Scenario::Handoff { jobs, clients } => {
            at_least("jobs", *jobs, 2)?;
            at_least("clients", *clients, 1)?;
        }
        Scenario::Scale(p) => {
            at_least("types", p.types, 1)?;
            at_least("small", p.small, p.types)?;
            if p.large <= p.small {
                bail!(
                    "--large ({}) must be more than --small ({})",
                    p.large,
                    p.small
                );
            }
            at_least("probes", p.probes, 1)?;
            at_least("clients", p.clients, 1)?;
        }
        Scenario::Recovery { events } => {
            if *events < 1_000 {
                bail!("--events must be at least 1000 (it is {events})");
            }
        }
        Scenario::Model { threads, .. } => at_least("threads", *threads, 1)?,
        Scenario::Files(p) => {
            at_least(
                "size-mib",
                usize::try_from(p.size_mib).unwrap_or(usize::MAX),
                1,
            )?;
            at_least("runs", p.runs, 1)?;
        }
        Scenario::Soak(p) => {
            at_least("jobs", p.jobs, 1)?;
            at_least(
                "timeout-s",
                usize::try_from(p.timeout_s).unwrap_or(usize::MAX),
                1,
            )?;
        }
    }
    Ok(())
}

fn aquifer_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("aquifer"),
    };
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p aquifer -p aquifer-bench`, or pass --aquifer",
            path.display()
        );
    }
    Ok(path)
}

async fn run(cli: Cli) -> Result<()> {
    let stall = Duration::from_secs(cli.stall_s);
    if let Scenario::Model { scope, threads } = cli.scenario {
        let f = tokio::task::spawn_blocking(move || scenarios::model(scope, threads)).await?;
        f.print();
        return Ok(());
    }
    // The soak's `--postgres` puts the server on the cluster too.
    let (store, postgres_url) = match &cli.scenario {
        Scenario::Soak(soak::Soak {
            postgres: Some(url),
            ..
        }) => (StoreKind::Postgres, Some(url.clone())),
        _ => (cli.store, cli.postgres_url),
    };
    let run = Run::new(aquifer_binary(cli.aquifer)?, store, postgres_url)?;
    // Every process of the run carries the marker; a test looks for strays.
    eprintln!(
        "aquifer-bench: run {}={} in {}",
        stack::MARKER,
        run.marker,
        run.dir.path().display()
    );
    if let Scenario::Soak(p) = &cli.scenario {
        let passed = soak::soak(&run, p).await;
        run.clean_up().await;
        if !passed? {
            bail!("the soak found something: see above");
        }
        return Ok(());
    }
    let figures = async {
        match cli.scenario {
            Scenario::Throughput(p) => scenarios::throughput(&run, stall, &p).await,
            Scenario::Handoff { jobs, clients } => {
                scenarios::handoff(&run, stall, jobs, clients).await
            }
            Scenario::Scale(p) => scenarios::scale(&run, stall, &p).await,
            Scenario::Recovery { events } => scenarios::recovery(&run, events).await,
            Scenario::Files(p) => files::files(&run, &p).await,
            Scenario::Model { .. } | Scenario::Soak(_) => unreachable!("run above"),
        }
    }
    .await;
    run.clean_up().await;
    figures?.print();
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The null services' runners log what goes wrong (a failed poll, a
    // report retried) as the real ones do.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = validate(&cli) {
        eprintln!("aquifer-bench: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aquifer-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aquifer-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
