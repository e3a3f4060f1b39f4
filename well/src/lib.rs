//! The well side of aquifer: the SDK a well author uses (the `Well` trait
//! and the runner that leases, renews, reports and reconciles) and the
//! wells aquifer ships (`slot`, `chaos`, `postgres`, `oxide`).
//!
//! A well author implements [`Well`] and calls [`runner::run`]; the
//! `aquifer well run --config FILE` command calls [`run_from_config`].

pub mod book;
pub mod chaos;
pub mod config;
pub mod oxide;
pub mod postgres;
pub mod runner;
pub mod slot;
pub mod statefile;
pub mod well;

pub use aquifer_protocol::Backoff;
pub use runner::{RunError, RunnerConfig, run};
pub use well::{CreateError, CreateRequest, Created, Owned, Well};

use anyhow::Context as _;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// Runs the well that the TOML file at `path` describes until `shutdown`
/// completes: work under way is then finished (within the configured
/// grace) and the function returns. It returns early, with an error, if
/// the configuration is wrong or the server refuses the well.
pub async fn run_from_config(
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = config::Config::load(path)?;
    let runner = config.runner()?;
    tracing::info!(
        config = %path.display(),
        url = %runner.url,
        capacity = ?runner.capacity,
        "well starting"
    );
    match &config.well {
        config::WellConfig::Slot(s) => {
            let well = slot::SlotWell::open(s.clone(), &config.data_dir)
                .context("opening the slot well's state")?;
            run(Arc::new(well), runner, shutdown).await?;
        }
        config::WellConfig::Chaos(c) => {
            let well = chaos::ChaosWell::open(c.clone(), &config.data_dir)
                .context("opening the chaos well's state")?;
            run(Arc::new(well), runner, shutdown).await?;
        }
        config::WellConfig::Postgres(p) => {
            let well = postgres::PostgresWell::open(p.clone())
                .await
                .context("opening the postgres well")?;
            run(Arc::new(well), runner, shutdown).await?;
        }
        config::WellConfig::Oxide(o) => {
            let well =
                crate::oxide::OxideWell::new(o.clone()).context("setting up the oxide well")?;
            run(Arc::new(well), runner, shutdown).await?;
        }
    }
    tracing::info!("well stopped");
    Ok(())
}
