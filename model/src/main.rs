//! `aquifer-model`: check the scheduler model, or export random walks of it
//! as traces for the TLA+ spec.

use anyhow::{Context, Result};
use aquifer_core::{AcquisitionPolicy, GrantMode, PoolSharing, Rules};
use aquifer_model::run::{self, Strategy};
use aquifer_model::scope::{Scope, ScopeName};
use aquifer_model::{AquiferModel, Faults, describe, walk};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

// The checker clones and drops millions of small maps; the system
// allocator spent a third of a run's time in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Model-check aquifer's scheduler core with stateright"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    Ordered,
    Parallel,
}

#[derive(Clone, Copy, ValueEnum)]
enum Pools {
    PerType,
    Shared,
}

#[derive(Clone, Copy, ValueEnum)]
enum Grant {
    Together,
    OneByOne,
}

#[derive(clap::Args)]
struct ModelArgs {
    #[arg(long, value_enum, default_value = "small")]
    scope: ScopeName,
    #[arg(long, value_enum, default_value = "ordered")]
    policy: Policy,
    #[arg(long, value_enum, default_value = "per-type")]
    pools: Pools,
    /// How a request for `count` > 1 instances is granted.
    #[arg(long, value_enum, default_value = "together")]
    grant: Grant,
    #[arg(long, value_enum, default_value = "all")]
    faults: Faults,
}

impl ModelArgs {
    fn model(&self) -> AquiferModel {
        let rules = Rules {
            acquisition: match self.policy {
                Policy::Ordered => AcquisitionPolicy::Ordered,
                Policy::Parallel => AcquisitionPolicy::Parallel,
            },
            grant: match self.grant {
                Grant::Together => GrantMode::Together,
                Grant::OneByOne => GrantMode::OneByOne,
            },
            pools: match self.pools {
                Pools::PerType => PoolSharing::PerType,
                Pools::Shared => PoolSharing::Shared,
            },
        };
        AquiferModel::new(Scope::new(self.scope, rules.pools), rules, self.faults)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Explore every reachable state and check every property. Exits 0 when
    /// all hold, 1 with the shortest counterexample when one fails, 2 when
    /// `--timeout-secs` stopped it first.
    Check {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, value_enum, default_value = "dfs")]
        strategy: Strategy,
        /// Stop after this long and report `result=incomplete` (exit 2)
        /// with the states explored so far, unless a violation was found.
        /// With `--strategy simulate` (where it is required), the runs go on
        /// until then, and `result=sampled` (exit 0) means no run broke a
        /// property.
        #[arg(long, required_if_eq("strategy", "simulate"))]
        timeout_secs: Option<u64>,
        /// The first random run's seed, with `--strategy simulate`.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write random walks of the model as JSON lines of traces (one trace a
    /// line), plus one corrupted trace that must be rejected.
    Walk {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value_t = 200)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            model,
            threads,
            strategy,
            timeout_secs,
            seed,
        } => {
            let limit = timeout_secs.map(std::time::Duration::from_secs);
            let report = match (strategy, limit) {
                (Strategy::Simulate, Some(limit)) => {
                    run::simulate(model.model(), threads.max(1), limit, seed)
                }
                _ => run::check(model.model(), threads.max(1), strategy, limit),
            };
            for (name, found) in &report.violated {
                // A scope too large to explore whole is too large to
                // search breadth-first for the shortest path: show the
                // run that found it.
                if strategy == Strategy::Simulate {
                    println!("property {name} is violated; the run that found it:");
                    print!("{}", describe::path(&model.model(), found));
                    continue;
                }
                println!("property {name} is violated; shortest counterexample:");
                let path = run::shortest(model.model(), name)
                    .context("the breadth-first search lost the counterexample")?;
                print!("{}", describe::path(&model.model(), &path));
            }
            if report.sampled && !report.missing.is_empty() {
                println!("not met in these runs: {}", report.missing.join(", "));
            }
            for name in report.missing.iter().filter(|_| report.complete) {
                println!(
                    "no example of {name}: the model never reaches it, so it proves too little"
                );
            }
            println!("{}", report.last_line());
            Ok(match report.result().as_str() {
                "ok" | "sampled" => ExitCode::SUCCESS,
                "incomplete" => ExitCode::from(2),
                _ => ExitCode::from(1),
            })
        }
        Command::Walk {
            model,
            count,
            seed,
            out,
        } => {
            let m = model.model();
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let mut corrupted = None;
            for i in 0..count {
                let trace = walk::walk(&m, seed.wrapping_add(i));
                if corrupted.is_none() {
                    corrupted = walk::corrupt(&trace);
                }
                serde_json::to_writer(&mut w, &trace)?;
                writeln!(w)?;
            }
            if let Some(bad) = corrupted {
                serde_json::to_writer(&mut w, &bad)?;
                writeln!(w)?;
            }
            w.flush()?;
            println!(
                "wrote {count} walks and 1 corrupted trace to {}",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
