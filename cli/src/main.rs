//! `aquifer`: the one user-facing binary. `aquifer server` runs the
//! scheduler; `aquifer job` and `aquifer admin` talk to it.

mod admin;
mod client;
mod config;
mod job;
mod server;
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler: the driver, its database, and the HTTP API.
    Server(config::ServerArgs),
    /// Submit, list, show, cancel, watch and explain jobs.
    Job {
        #[command(flatten)]
        endpoint: client::Endpoint,
        #[command(subcommand)]
        command: job::JobCommand,
    },
    /// Run a well: a service that creates and destroys resources.
    #[command(subcommand)]
    Well(WellCommand),
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
    /// Run the well a TOML file describes (`slot` or `chaos`; see
    /// docs/wells.md) until Ctrl-C or SIGTERM.
    Run {
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

fn main() -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(server::run(args)),
        Command::Job { endpoint, command } => runtime.block_on(job::run(&endpoint, command)),
        Command::Well(WellCommand::Run { config }) => {
            runtime.block_on(aquifer_well::run_from_config(
                &config,
                server::shutdown_signal(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { endpoint, command } => {
            runtime.block_on(admin::run(&endpoint, command))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
