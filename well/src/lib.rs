//! The well side of aquifer: the SDK a well author uses (the `Well` trait
//! and the runner that leases, renews, reports and reconciles) and the
//! light wells aquifer ships (`slot`, `chaos`). The heavy ones are crates
//! of their own beside this one: `aquifer-well-postgres` and
//! `aquifer-well-oxide`.
//!
//! A well author implements [`Well`] and calls [`runner::run`]; or, to
//! run from a configuration file, also implements [`WellSettings`] for its
//! `[well]` table and [`ConfiguredWell`] for the well, and calls
//! [`run_configured`]. The `aquifer well run --config FILE` command calls
//! [`run_from_config`] for the wells of this crate.

pub mod book;
pub mod chaos;
pub mod config;
pub mod runner;
pub mod slot;
pub mod statefile;
pub mod well;

pub use aquifer_protocol::Backoff;
pub use config::{ConfiguredWell, WellSettings};
pub use runner::{RunError, RunnerConfig, run};
pub use well::{CreateError, CreateRequest, Created, Owned, Well};

use chaos::{ChaosConfig, ChaosWell};
use slot::{SlotConfig, SlotWell};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// Runs the slot or chaos well that the TOML file at `path` describes
/// until `shutdown` completes, as [`run_configured`] does; any other kind
/// is refused.
pub async fn run_from_config(
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    match config::kind(path)?.as_str() {
        SlotConfig::KIND => run_configured::<SlotWell>(path, shutdown).await,
        ChaosConfig::KIND => run_configured::<ChaosWell>(path, shutdown).await,
        other => anyhow::bail!(
            "{}: kind {other:?}: this crate runs the {} and {} wells",
            path.display(),
            SlotConfig::KIND,
            ChaosConfig::KIND
        ),
    }
}

/// Runs the well `W` that the TOML file at `path` describes until
/// `shutdown` completes: work under way is then finished (within the
/// configured grace) and the function returns. It returns early, with an
/// error, if the configuration is wrong, the well cannot be opened, or the
/// server refuses the well.
pub async fn run_configured<W: ConfiguredWell>(
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = config::Config::<W::Settings>::load(path)?;
    let runner = config.runner()?;
    tracing::info!(
        config = %path.display(),
        url = %runner.url,
        capacity = ?runner.capacity,
        "well starting"
    );
    let well = W::from_settings(config.well, &config.data_dir).await?;
    run(Arc::new(well), runner, shutdown).await?;
    tracing::info!("well stopped");
    Ok(())
}
