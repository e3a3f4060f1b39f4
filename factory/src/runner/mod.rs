//! The factory runner: asks the server for work while there is room,
//! makes workers and starts their agents, reports agents that die before
//! their job ends, destroys what the server wants destroyed and confirms
//! it, and reconciles its book with the server's at start and on a timer.
//!
//! ```text
//!            +------------------- main loop (owns the book) -------------------+
//!  shutdown->|  lease poll (a task) --answer--> spawn create / destroy ops      |
//!            |  op done ----------------------> book: running, stopped, gone   |
//!            |  agent exit (watcher) ---------> spawn "lost" op                |
//!            |  reconcile tick ---------------> plan() --> spawn ops           |
//!            +-----------------------------------------------------------------+
//! ```
//!
//! Only the main loop changes the book, so the decisions about a worker
//! never race; the slow parts (HTTP, killing processes) run as operations
//! and report back. A lease poll that asked for work is abandoned only at
//! shutdown (a grant in its answer would wait for the next start's
//! reconciliation, or for the lease to expire); one that asked for nothing
//! is dropped and asked anew when a slot frees up.

mod ops;

use crate::reconcile::{Action, Book, Entry, Phase, plan};
use crate::sdk::{Factory, Lease};
use anyhow::Result;
use aquifer_protocol::factory::{FactoryLeaseAnswer as LeaseAnswer, FactoryLeaseRequest};
use aquifer_protocol::{Backoff, CallError, Client, TargetId, WorkerId};
use ops::{OpDone, OpResult, Shared};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

/// An answer that brought nothing new (the poll names the destructions
/// under way, so the server answers early only with news; this guards
/// the rare answer that is news to the server's books but not to ours)
/// spaces the next poll out.
const BUSY_REPOLL: Duration = Duration::from_millis(250);
/// The spacing of a failing destruction's tries: each costs the host
/// something, so they thin out to one in ten seconds.
const DESTROY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(10),
};

#[derive(Clone)]
pub struct RunnerConfig {
    /// The server's base URL, also handed to the agents.
    pub url: String,
    /// The factory's token.
    pub token: String,
    /// How many workers of each target this factory may have at once.
    pub targets: BTreeMap<String, u16>,
    /// How long a lease request waits on the server for work.
    pub lease_wait: Duration,
    pub reconcile_interval: Duration,
    /// How long shutdown waits for operations in flight.
    pub shutdown_grace: Duration,
}

impl RunnerConfig {
    #[must_use]
    pub fn new(url: &str, token: &str, targets: BTreeMap<String, u16>) -> RunnerConfig {
        RunnerConfig {
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            targets,
            lease_wait: Duration::from_secs(20),
            reconcile_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for RunnerConfig {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerConfig")
            .field("url", &self.url)
            .field("targets", &self.targets)
            .field("lease_wait", &self.lease_wait)
            .field("reconcile_interval", &self.reconcile_interval)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// When the main loop next asks for work and reconciles.
struct Pacing {
    poll: Option<Poll>,
    poll_after: Instant,
    poll_failures: u32,
    /// Whether a reconciliation has succeeded since the start.
    reconciled: bool,
    reconcile_at: Instant,
    reconcile_failures: u32,
}

struct Poll {
    handle: JoinHandle<Result<LeaseAnswer, CallError>>,
    /// Whether it asked for work (then it is never abandoned).
    asks: bool,
}

/// Runs `factory` against the server until `shutdown` resolves. Agents
/// keep running across a shutdown: the next start adopts them.
pub async fn run<F: Factory>(
    factory: F,
    config: RunnerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let api = Client::new(&config.url, Some(config.token.clone()))?;
    let shared = Arc::new(Shared {
        api,
        factory,
        url: config.url.clone(),
    });
    let mut runner = Runner {
        shared,
        config,
        book: Book::default(),
        ops: JoinSet::new(),
        watchers: JoinSet::new(),
    };
    runner.main(shutdown).await
}

struct Runner<F> {
    shared: Arc<Shared<F>>,
    config: RunnerConfig,
    book: Book,
    ops: JoinSet<OpDone>,
    watchers: JoinSet<(u32, String)>,
}

impl<F: Factory> Runner<F> {
    async fn main(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        tracing::info!(targets = ?self.config.targets, url = %self.config.url, "factory running");
        let mut pace = Pacing {
            poll: None,
            poll_after: Instant::now(),
            poll_failures: 0,
            reconciled: false,
            reconcile_at: Instant::now(),
            reconcile_failures: 0,
        };
        let outcome = loop {
            // No work is asked for before the first reconciliation: the
            // book must hold what survived a restart before slots count.
            if pace.poll.is_none() && pace.reconciled && Instant::now() >= pace.poll_after {
                pace.poll = Some(self.start_poll());
            }
            let step = tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                Some(done) = self.ops.join_next(), if !self.ops.is_empty() => {
                    self.op_done(done);
                    Ok(())
                }
                Some(exit) = self.watchers.join_next(), if !self.watchers.is_empty() => {
                    self.agent_exited(exit);
                    Ok(())
                }
                () = tokio::time::sleep_until(pace.reconcile_at) => {
                    let result = tokio::select! {
                        r = self.reconcile() => r,
                        () = &mut shutdown => break Ok(()),
                    };
                    self.reconciled(&mut pace, result)
                }
                answer = join_poll(&mut pace.poll) => {
                    pace.poll = None;
                    self.polled(&mut pace, answer)
                }
                () = tokio::time::sleep_until(pace.poll_after),
                    if pace.poll.is_none() && pace.reconciled => Ok(()),
            };
            if let Err(fatal) = step {
                break Err(fatal);
            }
            // A slot came free while the poll out asked for nothing: ask anew.
            if let Some(p) = &pace.poll
                && !p.asks
                && self
                    .book
                    .free(&self.config.targets)
                    .values()
                    .any(|&n| n > 0)
            {
                p.handle.abort();
                pace.poll = None;
            }
        };
        self.stop(pace.poll.take()).await;
        outcome
    }

    /// Schedules the next reconciliation; an error no retry mends is
    /// returned.
    fn reconciled(&self, pace: &mut Pacing, result: Result<(), ReconcileError>) -> Result<()> {
        match result {
            Ok(()) => {
                pace.reconciled = true;
                pace.reconcile_failures = 0;
                pace.reconcile_at = Instant::now() + self.config.reconcile_interval;
            }
            Err(e) => {
                if let ReconcileError::Server(c) = &e
                    && let Some(fatal) = fatal(c)
                {
                    return Err(fatal);
                }
                let delay = Backoff::RECONNECT.wait_jittered(pace.reconcile_failures);
                pace.reconcile_failures = pace.reconcile_failures.saturating_add(1);
                tracing::warn!(%e, ?delay, "reconciling");
                pace.reconcile_at = Instant::now() + delay.min(self.config.reconcile_interval);
            }
        }
        Ok(())
    }

    /// Acts on a lease answer and schedules the next request; an error no
    /// retry mends is returned.
    fn polled(
        &mut self,
        pace: &mut Pacing,
        answer: Result<Result<LeaseAnswer, CallError>, JoinError>,
    ) -> Result<()> {
        match answer {
            Ok(Ok(a)) => {
                pace.poll_failures = 0;
                if !self.take_answer(a) {
                    pace.poll_after = Instant::now() + BUSY_REPOLL;
                }
            }
            Ok(Err(e)) => {
                if let Some(fatal) = fatal(&e) {
                    return Err(fatal);
                }
                let delay = Backoff::RECONNECT.wait_jittered(pace.poll_failures);
                pace.poll_failures = pace.poll_failures.saturating_add(1);
                tracing::warn!(%e, ?delay, "asking for work");
                pace.poll_after = Instant::now() + delay;
            }
            // Aborted: the main loop starts another.
            Err(_) => {}
        }
        Ok(())
    }

    fn start_poll(&self) -> Poll {
        let free = self.book.free(&self.config.targets);
        let asks = free.values().any(|&n| n > 0);
        let body = FactoryLeaseRequest {
            free: (free.into_iter())
                .filter(|(_, n)| *n > 0)
                .map(|(t, n)| (TargetId::new(t), n))
                .collect(),
            wait_ms: u64::try_from(self.config.lease_wait.as_millis()).unwrap_or(u64::MAX),
            destroying: self.book.destroying().into_iter().map(WorkerId).collect(),
        };
        let api = self.shared.api.clone();
        let handle = tokio::spawn(async move { api.factory_lease(&body).await });
        Poll { handle, asks }
    }

    /// Starts what a lease answer asks for; false when it asked for nothing
    /// that is not under way already.
    fn take_answer(&mut self, answer: LeaseAnswer) -> bool {
        let empty = answer.lease.is_none() && answer.destroy.is_empty();
        let mut started = false;
        if let Some(lease) = answer.lease.map(Lease::from) {
            if self.book.entries.contains_key(&lease.worker) {
                tracing::warn!(worker = lease.worker, "leased again; already known");
            } else {
                tracing::info!(worker = lease.worker, job = lease.job, target = %lease.target, "leased");
                self.create(lease);
                started = true;
            }
        }
        let now = Instant::now();
        for worker in answer.destroy.into_iter().map(|w| w.0) {
            let entry = self
                .book
                .entries
                .entry(worker)
                .or_insert_with(|| Entry::new(None, Phase::Stopped));
            if entry.may_destroy(now) {
                self.destroy(worker, true);
                started = true;
            }
        }
        // An empty answer is a long-poll that ran its course: ask again.
        empty || started
    }

    async fn reconcile(&mut self) -> Result<(), ReconcileError> {
        // What we own first, then the server's view, which is then the
        // newer (see `reconcile::plan`).
        let owned = (self.shared.factory.list_owned().await).map_err(ReconcileError::Local)?;
        let listing = (self.shared.api.factory_workers().await).map_err(ReconcileError::Server)?;
        let actions = plan(
            &self.book,
            &owned,
            &listing.workers,
            &self.config.targets,
            Instant::now(),
        );
        if !actions.is_empty() {
            tracing::info!(?actions, "reconciling");
        }
        for action in actions {
            match action {
                Action::Create(lease) => self.create(lease),
                Action::Restart { worker, target } => {
                    self.set(worker, Some(target), Phase::Creating);
                    let shared = self.shared.clone();
                    self.ops.spawn(async move {
                        let result = ops::restart(&shared, worker).await;
                        OpDone { worker, result }
                    });
                }
                Action::ReportLost { worker, target } => {
                    self.set(worker, Some(target), Phase::Reporting);
                    self.report_lost(worker, "its agent is not running".into());
                }
                Action::Destroy {
                    worker,
                    target,
                    confirm,
                } => {
                    self.set(worker, target, Phase::Stopped);
                    self.destroy(worker, confirm);
                }
                Action::Adopt { worker, target } => self.set(worker, Some(target), Phase::Running),
                Action::Forget { worker } => {
                    self.book.entries.remove(&worker);
                }
            }
        }
        Ok(())
    }

    /// Puts `worker` in the book in `phase`, keeping what is known of it.
    fn set(&mut self, worker: u32, target: Option<String>, phase: Phase) {
        let entry = self
            .book
            .entries
            .entry(worker)
            .or_insert_with(|| Entry::new(None, phase));
        if target.is_some() {
            entry.target = target;
        }
        entry.phase = phase;
    }

    fn create(&mut self, lease: Lease) {
        let worker = lease.worker;
        self.set(worker, Some(lease.target.clone()), Phase::Creating);
        let shared = self.shared.clone();
        self.ops.spawn(async move {
            let result = ops::create(&shared, &lease).await;
            OpDone { worker, result }
        });
    }

    fn destroy(&mut self, worker: u32, confirm: bool) {
        self.set(worker, None, Phase::Destroying);
        let shared = self.shared.clone();
        self.ops.spawn(async move {
            let result = ops::destroy(&shared, worker, confirm).await;
            OpDone { worker, result }
        });
    }

    fn report_lost(&mut self, worker: u32, why: String) {
        self.set(worker, None, Phase::Reporting);
        let shared = self.shared.clone();
        self.ops.spawn(async move {
            ops::report_lost(&shared, worker, &why).await;
            OpDone {
                worker,
                result: OpResult::Reported,
            }
        });
    }

    fn op_done(&mut self, done: Result<OpDone, JoinError>) {
        let Ok(OpDone { worker, result }) = done else {
            // A panicked operation leaves its worker busy in the book;
            // reconciliation cannot help it, so say so loudly.
            tracing::error!("a factory operation panicked");
            return;
        };
        match result {
            OpResult::Started(exit) => {
                self.set(worker, None, Phase::Running);
                self.watchers.spawn(async move { (worker, exit.await) });
            }
            OpResult::Failed | OpResult::Reported => self.set(worker, None, Phase::Stopped),
            OpResult::Destroyed => {
                self.book.entries.remove(&worker);
            }
            OpResult::DestroyFailed(e) => {
                let entry = self
                    .book
                    .entries
                    .entry(worker)
                    .or_insert_with(|| Entry::new(None, Phase::Stopped));
                entry.phase = Phase::Stopped;
                let delay = DESTROY_BACKOFF.wait_jittered(entry.destroy_failures);
                entry.destroy_failures = entry.destroy_failures.saturating_add(1);
                entry.retry_at = Some(Instant::now() + delay);
                let failures = entry.destroy_failures;
                tracing::error!(worker, %e, ?delay, failures, "destroying the worker failed");
            }
        }
    }

    fn agent_exited(&mut self, exit: Result<(u32, String), JoinError>) {
        let Ok((worker, how)) = exit else {
            return;
        };
        let running = self
            .book
            .entries
            .get(&worker)
            .is_some_and(|e| e.phase == Phase::Running);
        if running {
            // Normal after the job's end (the server then refuses the
            // report); a loss before it.
            tracing::info!(worker, %how, "agent stopped");
            self.report_lost(worker, format!("its agent {how}"));
        }
    }

    /// Stops asking for work, lets operations in flight finish (within the
    /// grace), and leaves the agents running for the next start to adopt.
    async fn stop(&mut self, poll: Option<Poll>) {
        if let Some(p) = poll {
            p.handle.abort();
        }
        self.watchers.abort_all();
        let ops = &mut self.ops;
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while ops.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "operations still in flight at shutdown; the next start reconciles them"
            );
        }
        self.ops.abort_all();
        tracing::info!("factory stopped");
    }
}

/// Why a reconciliation did not happen.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error("listing the workers this host has: {0}")]
    Local(String),
    #[error("listing the factory's workers on the server: {0}")]
    Server(CallError),
}

async fn join_poll(poll: &mut Option<Poll>) -> Result<Result<LeaseAnswer, CallError>, JoinError> {
    match poll {
        Some(p) => (&mut p.handle).await,
        None => std::future::pending().await,
    }
}

/// Errors that no retry mends: the operator must act.
fn fatal(e: &CallError) -> Option<anyhow::Error> {
    match (e.status(), e.code()) {
        (Some(401), _) => Some(anyhow::anyhow!(
            "the server refused the factory's token ({e}); issue another with `aquifer admin factory token ID`"
        )),
        (Some(400), Some("not_served")) => Some(anyhow::anyhow!(
            "the server does not know this factory for one of its configured targets: {e}"
        )),
        _ => None,
    }
}
