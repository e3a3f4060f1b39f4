//! The runner's operations on one worker: making it, reporting it created
//! and starting its agent, reporting it lost, destroying it and
//! confirming. Each runs as a task of its own and reports back to the main
//! loop, which alone changes the book.

use crate::sdk::{AgentExit, Factory, Lease};
use aquifer_protocol::book::{Destroyed, Reported};
use aquifer_protocol::{Client, WorkerId};

/// What operations share.
pub(super) struct Shared<F> {
    pub api: Client,
    pub factory: F,
    pub url: String,
}

pub(super) enum OpResult {
    /// The worker is made, or why it could not be.
    Created(Result<(), String>),
    /// A report ended. A ready one started the agent: this resolves when
    /// it stops.
    Reported(Reported, Option<AgentExit>),
    Destroyed(Destroyed),
}

pub(super) struct OpDone {
    pub worker: u32,
    pub result: OpResult,
}

/// Makes the worker (without starting its agent).
pub(super) async fn create<F: Factory>(shared: &Shared<F>, lease: &Lease) -> OpResult {
    let worker = lease.worker;
    match shared.factory.create_worker(lease).await {
        Ok(c) => {
            tracing::info!(worker, description = %c.description, "worker created");
            OpResult::Created(Ok(()))
        }
        Err(e) => {
            tracing::error!(worker, %e, "creating the worker");
            OpResult::Created(Err(format!("creating it failed: {e}")))
        }
    }
}

/// Reports the worker created, which answers with the agent's one-time
/// key (a new one each time, so a worker whose agent never started is
/// reported again), and starts its agent with the key.
pub(super) async fn report_ready<F: Factory>(shared: &Shared<F>, worker: u32) -> OpResult {
    let key = match shared.api.factory_created(WorkerId(worker)).await {
        Ok(b) => b.bootstrap,
        Err(e) => {
            // Most likely the lease ended (expired, the job was cancelled):
            // the server asks for destruction, or has forgotten the worker.
            tracing::warn!(worker, %e, "reporting the worker created");
            return OpResult::Reported(Reported::Refused, None);
        }
    };
    match shared.factory.start_agent(worker, &shared.url, &key).await {
        Ok(exit) => OpResult::Reported(Reported::Accepted, Some(exit)),
        // The worker cannot be made to work: fail its job rather than
        // leave it waiting for a lease to expire.
        Err(e) => {
            let why = format!("starting its agent failed: {e}");
            tracing::error!(worker, why, "giving the worker up");
            OpResult::Reported(Reported::Invalid(why), None)
        }
    }
}

/// Tells the server the worker cannot serve its job (it could not be made,
/// or its agent stopped).
pub(super) async fn report_lost<F: Factory>(
    shared: &Shared<F>,
    worker: u32,
    why: &str,
) -> OpResult {
    let outcome = match shared.api.factory_lost(WorkerId(worker)).await {
        Ok(()) => {
            tracing::warn!(worker, why, "worker reported lost");
            Reported::Accepted
        }
        // Its job had ended (the worker is being released) or the server
        // has forgotten it: nothing was lost.
        Err(e) if matches!(e.status(), Some(404 | 409 | 410)) => {
            tracing::debug!(worker, %e, "not lost");
            Reported::Refused
        }
        Err(e) => {
            tracing::warn!(worker, %e, "reporting the worker lost");
            Reported::Refused
        }
    };
    OpResult::Reported(outcome, None)
}

pub(super) async fn destroy<F: Factory>(
    shared: &Shared<F>,
    worker: u32,
    confirm: bool,
) -> OpResult {
    if let Err(e) = shared.factory.destroy_worker(worker).await {
        tracing::error!(worker, %e, "destroying the worker failed");
        return OpResult::Destroyed(Destroyed::Failed);
    }
    if !confirm {
        return OpResult::Destroyed(Destroyed::Done);
    }
    match shared.api.factory_destroyed(WorkerId(worker)).await {
        Ok(()) => {
            tracing::info!(worker, "destruction confirmed");
            OpResult::Destroyed(Destroyed::Done)
        }
        // The server keeps asking while it wants it destroyed; destroying
        // again is harmless.
        Err(e) => {
            tracing::warn!(worker, %e, "confirming the destruction");
            OpResult::Destroyed(Destroyed::ConfirmRefused)
        }
    }
}
