//! The runner's operations on one worker: making it and starting its
//! agent, reporting it lost, destroying it and confirming. Each runs as a
//! task of its own and reports back to the main loop, which alone changes
//! the book.

use crate::sdk::{AgentExit, Factory, Lease};
use aquifer_protocol::{CallError, Client, WorkerId};

/// What operations share.
pub(super) struct Shared<F> {
    pub api: Client,
    pub factory: F,
    pub url: String,
}

pub(super) enum OpResult {
    /// The agent runs; this resolves when it stops.
    Started(AgentExit),
    /// Creation failed; the server has been told.
    Failed,
    /// The server has been told the worker is lost.
    Reported,
    Destroyed,
    DestroyFailed(String),
}

pub(super) struct OpDone {
    pub worker: u32,
    pub result: OpResult,
}

/// Makes the worker, reports it created, and starts its agent with the key.
pub(super) async fn create<F: Factory>(shared: &Shared<F>, lease: &Lease) -> OpResult {
    let worker = lease.worker;
    match shared.factory.create_worker(lease).await {
        Ok(c) => tracing::info!(worker, description = %c.description, "worker created"),
        Err(e) => return give_up(shared, worker, &format!("creating it failed: {e}")).await,
    }
    let key = match report_created(shared, worker).await {
        Ok(key) => key,
        Err(e) => {
            // Most likely the lease ended (expired, the job was cancelled):
            // the server asks for destruction, or has forgotten the worker.
            tracing::warn!(worker, %e, "reporting the worker created");
            if let Err(e) = shared.factory.destroy_worker(worker).await {
                tracing::warn!(worker, %e, "destroying the unreported worker");
            }
            return OpResult::Failed;
        }
    };
    start(shared, worker, &key).await
}

/// A worker reported created whose agent never started: a new key, then
/// the agent.
pub(super) async fn restart<F: Factory>(shared: &Shared<F>, worker: u32) -> OpResult {
    match report_created(shared, worker).await {
        Ok(key) => start(shared, worker, &key).await,
        Err(e) => {
            tracing::warn!(worker, %e, "asking for a new key");
            report_lost(shared, worker, "its agent never started").await;
            OpResult::Failed
        }
    }
}

async fn start<F: Factory>(shared: &Shared<F>, worker: u32, key: &str) -> OpResult {
    match shared.factory.start_agent(worker, &shared.url, key).await {
        Ok(exit) => OpResult::Started(exit),
        Err(e) => give_up(shared, worker, &format!("starting its agent failed: {e}")).await,
    }
}

async fn report_created<F: Factory>(shared: &Shared<F>, worker: u32) -> Result<String, CallError> {
    let b = shared.api.factory_created(WorkerId(worker)).await?;
    Ok(b.bootstrap)
}

/// The worker cannot be made to work: clean up, and fail its job rather
/// than leave it waiting for a lease to expire.
async fn give_up<F: Factory>(shared: &Shared<F>, worker: u32, why: &str) -> OpResult {
    tracing::error!(worker, why, "giving the worker up");
    if let Err(e) = shared.factory.destroy_worker(worker).await {
        tracing::warn!(worker, %e, "destroying the failed worker");
    }
    report_lost(shared, worker, why).await;
    OpResult::Failed
}

pub(super) async fn report_lost<F: Factory>(shared: &Shared<F>, worker: u32, why: &str) {
    match shared.api.factory_lost(WorkerId(worker)).await {
        Ok(()) => tracing::warn!(worker, why, "worker reported lost"),
        // Its job had ended (the worker is being released) or the server
        // has forgotten it: nothing was lost.
        Err(e) if matches!(e.status(), Some(404 | 409 | 410)) => {
            tracing::debug!(worker, %e, "not lost");
        }
        Err(e) => tracing::warn!(worker, %e, "reporting the worker lost"),
    }
}

pub(super) async fn destroy<F: Factory>(
    shared: &Shared<F>,
    worker: u32,
    confirm: bool,
) -> OpResult {
    if let Err(e) = shared.factory.destroy_worker(worker).await {
        return OpResult::DestroyFailed(e);
    }
    if confirm {
        match shared.api.factory_destroyed(WorkerId(worker)).await {
            Ok(()) => tracing::info!(worker, "destruction confirmed"),
            // The server keeps asking while it wants it destroyed;
            // destroying again is harmless.
            Err(e) => tracing::warn!(worker, %e, "confirming the destruction"),
        }
    }
    OpResult::Destroyed
}
