//! `aquifer server`: opens the database, recovers the driver, serves the
//! API, and stops on Ctrl-C or SIGTERM, or with an error if the driver
//! ends by itself (it stops when it can no longer trust its state; a
//! restart recovers from the log).

use crate::config::ServerArgs;
use anyhow::{Context, Result};
use aquifer_server::store::redact;
use aquifer_server::{Config, Running};
use std::process::ExitCode;

/// Opens the database, recovers the driver and serves the API.
pub async fn start(config: Config) -> Result<Running> {
    let database = redact(&config.database);
    let running = aquifer_server::start(config)
        .await
        .context("starting the server")?;
    tracing::info!(
        %database,
        snapshot_seq = running.recovery.snapshot_seq,
        replayed_events = running.recovery.replayed_events,
        "recovered"
    );
    Ok(running)
}

pub async fn run(args: ServerArgs) -> Result<ExitCode> {
    let config = args.resolve()?;
    let mut running = start(config).await?;
    // Scripts and tests read this line to find the server.
    println!("aquifer server listening on {}", running.url);
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(ExitCode::SUCCESS)
        }
        ended = &mut running.driver => {
            tracing::error!("the driver stopped by itself; restart to recover from the log");
            let _ = ended;
            Ok(ExitCode::from(3))
        }
    };
    running.stop().await;
    outcome
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
