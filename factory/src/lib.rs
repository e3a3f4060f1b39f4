//! The factory side of aquifer: the SDK a factory author implements (a
//! [`Factory`] and the [`runner`] that leases, creates, reports, destroys and
//! reconciles), the `local` factory (workers are agent processes on this
//! host, each in its own directory and process group), and the agent that
//! runs a job's tasks on a worker.

pub mod agent;
pub mod config;
pub mod local;
pub mod procgroup;
pub mod reconcile;
pub mod runner;
pub mod sdk;

pub use agent::run_agent;
pub use config::{LocalConfig, run_local, run_local_from_config};
pub use local::LocalFactory;
pub use runner::{RunnerConfig, run};
pub use sdk::{AgentExit, AgentState, CreatedWorker, Factory, Lease, Owned};
