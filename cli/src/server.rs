//! `aquifer server`: opens the database, recovers the driver, serves the
//! API, and stops on Ctrl-C or SIGTERM, or with an error if the driver
//! ends by itself (it stops when it can no longer trust its state; a
//! restart recovers from the log).

use crate::config::{Config, ServerArgs};
use anyhow::{Context, Result};
use aquifer_server::api::{self, Api};
use aquifer_server::driver::{Driver, Setup};
use aquifer_server::store::{Store, redact};
use aquifer_server::wake::Wakers;
use std::process::ExitCode;
use std::sync::Arc;

/// A server running in this process: its URL, and how to stop it.
pub struct Running {
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
    pub driver: tokio::task::JoinHandle<aquifer_core::State>,
}

impl Running {
    /// Stops serving; the driver ends once the API's handles are gone.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.serving.await;
    }
}

/// Opens the database, recovers the driver and serves the API.
pub async fn start(config: &Config) -> Result<Running> {
    let store = Store::open(&config.database).await?;
    // Effects wake the long-polling wells, factories and agents.
    let wakers = Arc::new(Wakers::default());
    let (handle, driver, recovery) = Driver::spawn(Setup {
        limits: config.limits,
        ..Setup::new(store.clone(), wakers.clone())
    })
    .await
    .context("recovering the scheduler's state")?;
    tracing::info!(
        database = %redact(&config.database),
        snapshot_seq = recovery.snapshot_seq,
        replayed_events = recovery.replayed_events,
        "recovered"
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let api = Arc::new(Api::new(
        handle,
        store,
        config.bootstrap_token.clone(),
        wakers,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(api::serve(api, listener, async {
        let _ = stopped.await;
    }));
    Ok(Running {
        url,
        stop,
        serving,
        driver,
    })
}

pub async fn run(args: ServerArgs) -> Result<ExitCode> {
    let config = args.resolve()?;
    let mut running = start(&config).await?;
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
