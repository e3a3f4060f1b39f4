//! `aquifer`: the one user-facing binary. `aquifer server` runs the
//! scheduler; the user, admin, well and factory commands come next.

mod config;
mod server;

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
    }
}
