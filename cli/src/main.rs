//! `aquifer`: the one user-facing binary. `aquifer server` runs the
//! scheduler; `aquifer job` and `aquifer admin` talk to it.

mod admin;
mod client;
mod config;
mod demo;
mod job;
mod server;
mod stack;
mod table;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "aquifer: a CI scheduler that hands jobs resources as well as workers"
)]
struct Cli {
    /// How log lines are written to stderr: `plain` (coloured only on a
    /// terminal) or `json`, one object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain, env = "AQUIFER_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler: the driver, its database, and the HTTP API.
    Server(config::ServerArgs),
    /// The whole stack in a temporary directory: submits the jobs in
    /// examples/, shows their progress, checks every outcome and clean-up.
    Demo,
    /// The whole stack (server on SQLite, two slot wells, the local
    /// factory) in a data directory, until Ctrl-C.
    Dev {
        #[arg(long, default_value = "aquifer-dev")]
        data_dir: std::path::PathBuf,
        #[arg(long, default_value = "127.0.0.1:8440")]
        listen: std::net::SocketAddr,
    },
    /// Submit, list, show, cancel, watch and explain jobs.
    Job {
        #[command(flatten)]
        endpoint: client::Endpoint,
        #[command(subcommand)]
        command: job::JobCommand,
    },
    /// Every type's queue and instances, and every target's queue and
    /// workers, with their capacity.
    Queue {
        #[command(flatten)]
        endpoint: client::Endpoint,
    },
    /// Run a well: a service that creates and destroys resources.
    #[command(subcommand)]
    Well(WellCommand),
    /// Run a factory: a service that creates and destroys workers.
    #[command(subcommand)]
    Factory(FactoryCommand),
    /// The agent on a worker (started by a factory, not by hand).
    Agent {
        #[arg(long)]
        url: String,
        /// The worker's one-time bootstrap key.
        #[arg(long, env = "AQUIFER_AGENT_KEY", hide_env_values = true)]
        key: String,
        /// The worker's directory.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Manage users, privileges, types, targets, wells, factories, holds.
    Admin {
        #[command(flatten)]
        endpoint: client::Endpoint,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

#[derive(Subcommand)]
enum WellCommand {
    /// Run the well a TOML file describes (`slot`, `chaos`, `postgres`,
    /// or `oxide` when built with it; see docs/wells.md) until Ctrl-C or
    /// SIGTERM.
    Run {
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum FactoryCommand {
    /// The local factory: workers are agent processes on this host, each in
    /// its own directory (see docs/factory.md).
    Local {
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    // Linked as `bmat` (the agent does so when no `bmat` is installed),
    // this binary is `bmat`.
    let called = std::env::args_os().next().map(std::path::PathBuf::from);
    if called.as_deref().and_then(std::path::Path::file_name) == Some("bmat".as_ref()) {
        return bmat::run();
    }
    // An error is one line, its causes after colons: never a backtrace,
    // whatever RUST_BACKTRACE says.
    run(Cli::parse()).unwrap_or_else(|e| {
        eprintln!("aquifer: {e:#}");
        ExitCode::FAILURE
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Services log what they do; the demo's own lines are the story, and
    // the client commands print only answers. A connection a client
    // dropped (a long poll given up) is not the server's error.
    let default = match cli.command {
        Command::Server(_) | Command::Well(_) | Command::Factory(_) | Command::Agent { .. } => {
            "info,warp::server=off"
        }
        Command::Dev { .. } => "warn,warp::server=off",
        Command::Demo | Command::Job { .. } | Command::Queue { .. } | Command::Admin { .. } => {
            "error,warp::server=off"
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Plain => {
            use std::io::IsTerminal as _;
            logs.with_ansi(std::io::stderr().is_terminal()).init();
        }
        LogFormat::Json => logs.json().init(),
    }
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(server::run(args)),
        Command::Demo => runtime.block_on(demo::demo()),
        Command::Dev { data_dir, listen } => runtime.block_on(demo::dev(data_dir, listen)),
        Command::Job { endpoint, command } => runtime.block_on(job::run(&endpoint, command)),
        Command::Queue { endpoint } => runtime.block_on(job::queue(&endpoint)),
        Command::Well(WellCommand::Run { config }) => {
            runtime.block_on(run_well(&config, server::shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Factory(FactoryCommand::Local { config }) => {
            runtime.block_on(aquifer_factory::run_local_from_config(
                &config,
                server::shutdown_signal(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { url, key, dir } => {
            runtime.block_on(aquifer_factory::run_agent(&url, &key, &dir))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { endpoint, command } => {
            runtime.block_on(admin::run(&endpoint, command))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs the well a configuration file describes with the crate of its
/// `kind`. The SDK knows no well crate; this binary does, and the heavy
/// wells are its features (`postgres` on by default, `oxide` off), so a
/// kind left out of the build is refused with how to build it in.
async fn run_well(
    path: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    match aquifer_well::config::kind(path)?.as_str() {
        "slot" | "chaos" => aquifer_well::run_from_config(path, shutdown).await,
        #[cfg(feature = "postgres")]
        "postgres" => {
            use aquifer_well_postgres::PostgresWell;
            aquifer_well::run_configured::<PostgresWell>(path, shutdown).await
        }
        #[cfg(not(feature = "postgres"))]
        "postgres" => Err(not_built(path, "postgres")),
        #[cfg(feature = "oxide")]
        "oxide" => {
            use aquifer_well_oxide::OxideWell;
            aquifer_well::run_configured::<OxideWell>(path, shutdown).await
        }
        #[cfg(not(feature = "oxide"))]
        "oxide" => Err(not_built(path, "oxide")),
        other => anyhow::bail!(
            "{}: kind {other:?}: the wells are slot, chaos, postgres and oxide (docs/wells.md)",
            path.display()
        ),
    }
}

/// The refusal of a well whose feature this build left out.
#[cfg(not(all(feature = "postgres", feature = "oxide")))]
fn not_built(path: &std::path::Path, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: this aquifer was built without the {feature} well; build it with \
         `cargo build --release -p aquifer --features {feature}`",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `aquifer well run` on a configuration whose `[well]` is `well`,
    /// against a server that is not there; its error.
    fn refusal(well: &str) -> String {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("well.toml");
        let text = format!(
            "url = \"http://127.0.0.1:9\"\ntoken = \"aq_x\"\ndata_dir = \"d\"\n\
             [capacity]\nx = 1\n[well]\n{well}\n"
        );
        std::fs::write(&path, text).expect("written");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let done = runtime.block_on(run_well(&path, std::future::ready(())));
        done.expect_err("refused").to_string()
    }

    #[test]
    fn a_kind_nobody_ships_is_refused_with_the_kinds_there_are() {
        let e = refusal("kind = \"postgresql\"");
        assert!(
            e.contains("\"postgresql\"") && e.contains("slot, chaos"),
            "{e}"
        );
    }

    #[cfg(not(feature = "oxide"))]
    #[test]
    fn a_kind_left_out_of_the_build_is_refused_with_how_to_build_it_in() {
        let e = refusal("kind = \"oxide\"\nrtype = \"x\"");
        let build = "cargo build --release -p aquifer --features oxide";
        assert!(
            e.contains("without the oxide well") && e.contains(build),
            "{e}"
        );
    }
}
