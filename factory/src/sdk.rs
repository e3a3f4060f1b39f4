//! What a factory author implements: making a worker for a lease, starting
//! its agent with the one-time key, destroying it, and listing what it has
//! made. The [`runner`](crate::runner) does the talking to the server.

use aquifer_protocol::factory::Grant;
use std::future::Future;
use std::pin::Pin;

/// A worker to make for a job: the server's grant, with the ids as the
/// numbers a factory names its workers by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub worker: u32,
    pub job: u32,
    pub target: String,
    /// When the server gives up on the worker if it is not created; 0 when
    /// unknown (a lease taken over from the listing after a restart).
    pub expires_at_ms: u64,
}

impl From<Grant> for Lease {
    fn from(g: Grant) -> Lease {
        Lease {
            worker: g.worker.0,
            job: g.job.0,
            target: g.target.0,
            expires_at_ms: g.expires_at_ms,
        }
    }
}

/// A worker the factory has made; its agent is not running yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedWorker {
    pub worker: u32,
    /// Where or what it is, for logs (a directory, a VM's name).
    pub description: String,
}

/// Resolves when the agent of a worker has stopped, with how it stopped
/// ("exited with 1", "killed by signal 9"): the runner then tells the
/// server the worker is lost unless its job has ended.
pub type AgentExit = Pin<Box<dyn Future<Output = String> + Send + 'static>>;

/// Whether the agent of a worker the factory owns is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentState {
    /// The worker exists but no agent was ever started on it (the factory
    /// stopped between making it and starting the agent).
    NotStarted,
    Running,
    /// The agent was started and has stopped.
    Exited,
}

/// A worker the factory made and has not destroyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub worker: u32,
    pub agent: AgentState,
}

/// A kind of worker: local processes, VMs, machines in a lab. Every method
/// may be called again for the same worker after a restart, so each must
/// tolerate work already done.
pub trait Factory: Send + Sync + 'static {
    /// Makes the worker for `lease` (without starting its agent). A worker
    /// of the same id left from before is replaced.
    fn create_worker(
        &self,
        lease: &Lease,
    ) -> impl Future<Output = Result<CreatedWorker, String>> + Send;

    /// Starts the agent of a created worker with the server's URL and the
    /// one-time key the server answered `created` with.
    fn start_agent(
        &self,
        worker: u32,
        url: &str,
        key: &str,
    ) -> impl Future<Output = Result<AgentExit, String>> + Send;

    /// Destroys the worker and everything running on it. Idempotent: a
    /// worker that does not exist (any more) is destroyed.
    fn destroy_worker(&self, worker: u32) -> impl Future<Output = Result<(), String>> + Send;

    /// Every worker the factory made and has not destroyed, found afresh
    /// (after a restart it is all the factory knows).
    fn list_owned(&self) -> impl Future<Output = Result<Vec<Owned>, String>> + Send;
}
