//! The factory runner: asks the server for work while there is room,
//! makes workers and starts their agents, reports agents that die before
//! their job ends, destroys what the server wants destroyed and confirms
//! it, and reconciles its book with the server's at start and on a timer.
//!
//! ```text
//!            +------------------- main loop (owns the book) -------------------+
//!  shutdown->|  lease poll (a task) --answer--> book --> spawn ops             |
//!            |  op done ----------------------> book --> spawn ops             |
//!            |  agent exit (watcher) ---------> book: lost --> "lost" op       |
//!            |  reconcile tick ---------------> book --> spawn ops             |
//!            |  poll deadline ----------------> book: poll now, or abandon     |
//!            +-----------------------------------------------------------------+
//! ```
//!
//! Only the main loop changes the book (`aquifer_protocol::book`, the one
//! wells use too), so the decisions about a worker never race; the slow
//! parts (HTTP, killing processes) run as operations and report back. The
//! book decides when a lease poll goes out and with what; a poll that
//! asked for work is abandoned only at shutdown (a grant in its answer
//! would wait for the next start's reconciliation, or for the lease to
//! expire), one that asked for nothing as soon as a slot frees up.

mod ops;
mod poll;

use crate::reconcile::{self, Workers};
use crate::sdk::Factory;
use anyhow::Result;
use aquifer_protocol::book::{Action, Book, Failure, Phase, Report};
use aquifer_protocol::{Backoff, CallError, Client};
use ops::{OpDone, OpResult, Shared};
use poll::{Poll, join_poll};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

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
    let capacity = reconcile::capacity(&config.targets);
    let mut runner = Runner {
        shared,
        config,
        book: Book::new(capacity, DESTROY_BACKOFF, Backoff::RECONNECT),
        ops: JoinSet::new(),
        watchers: JoinSet::new(),
        poll: None,
        reconcile_at: Instant::now(),
        reconcile_failures: 0,
    };
    runner.main(shutdown).await
}

struct Runner<F> {
    shared: Arc<Shared<F>>,
    config: RunnerConfig,
    book: Book<Workers>,
    ops: JoinSet<OpDone>,
    watchers: JoinSet<(u32, String)>,
    poll: Option<Poll>,
    reconcile_at: Instant,
    reconcile_failures: u32,
}

impl<F: Factory> Runner<F> {
    async fn main(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        tracing::info!(targets = ?self.config.targets, url = %self.config.url, "factory running");
        let outcome = loop {
            // No work is asked for before the first reconciliation: the
            // book must hold what survived a restart before slots count.
            self.drive_poll();
            let look_again = (self.book)
                .poll_deadline(Instant::now().into_std())
                .map(Instant::from_std);
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
                () = tokio::time::sleep_until(self.reconcile_at) => {
                    let result = tokio::select! {
                        r = self.reconcile() => r,
                        () = &mut shutdown => break Ok(()),
                    };
                    self.reconciled(result)
                }
                answer = join_poll(&mut self.poll) => match self.poll.take() {
                    Some(p) => self.polled(p.id, answer),
                    None => Ok(()),
                },
                () = sleep_until_some(look_again), if look_again.is_some() => Ok(()),
            };
            if let Err(fatal) = step {
                break Err(fatal);
            }
        };
        self.stop().await;
        outcome
    }

    /// Schedules the next reconciliation; an error no retry mends is
    /// returned.
    fn reconciled(&mut self, result: Result<(), ReconcileError>) -> Result<()> {
        match result {
            Ok(()) => {
                self.reconcile_failures = 0;
                self.reconcile_at = Instant::now() + self.config.reconcile_interval;
            }
            Err(e) => {
                if let ReconcileError::Server(c) = &e
                    && let Some(fatal) = fatal(c)
                {
                    return Err(fatal);
                }
                let delay = Backoff::RECONNECT.wait_jittered(self.reconcile_failures);
                self.reconcile_failures = self.reconcile_failures.saturating_add(1);
                tracing::warn!(%e, ?delay, "reconciling");
                self.reconcile_at = Instant::now() + delay.min(self.config.reconcile_interval);
            }
        }
        Ok(())
    }

    async fn reconcile(&mut self) -> Result<(), ReconcileError> {
        let since = self.book.mark();
        // What we own first, then the server's view, which is then the
        // newer (see `reconcile::read`).
        let owned = (self.shared.factory.list_owned().await).map_err(ReconcileError::Local)?;
        let listing = (self.shared.api.factory_workers().await).map_err(ReconcileError::Server)?;
        let (listed, owned) = reconcile::read(&listing.workers, &owned);
        let now = Instant::now().into_std();
        let actions = self.book.reconciled(since, &listed, Some(&owned), now);
        if !actions.is_empty() {
            tracing::info!(?actions, "reconciling");
        }
        self.perform(actions);
        Ok(())
    }

    /// Starts the operations the book asks for.
    fn perform(&mut self, actions: Vec<Action<Workers>>) {
        for action in actions {
            let shared = self.shared.clone();
            match action {
                Action::Create { id, order, .. } => self.spawn(id, async move {
                    tracing::info!(worker = id, job = order.job, target = %order.target, "leased");
                    ops::create(&shared, &order).await
                }),
                Action::Report { id, report } => self.spawn(id, async move {
                    match report {
                        Report::Ready(()) => ops::report_ready(&shared, id).await,
                        Report::Failed(Failure { reason, .. }) => {
                            ops::report_lost(&shared, id, &reason).await
                        }
                        Report::Lost(why) => ops::report_lost(&shared, id, &why).await,
                    }
                }),
                Action::Destroy { id, confirm, .. } => {
                    self.spawn(id, async move { ops::destroy(&shared, id, confirm).await });
                }
                Action::Reconcile => self.reconcile_at = Instant::now(),
                Action::Alert(oddity) => tracing::error!(%oddity, "the book is confused"),
            }
        }
    }

    fn spawn(&mut self, worker: u32, op: impl Future<Output = OpResult> + Send + 'static) {
        self.ops.spawn(async move {
            let result = op.await;
            OpDone { worker, result }
        });
    }

    fn op_done(&mut self, done: Result<OpDone, JoinError>) {
        let Ok(OpDone { worker, result }) = done else {
            // A panicked operation leaves its worker busy in the book;
            // reconciliation cannot help it, so say so loudly.
            tracing::error!("a factory operation panicked");
            return;
        };
        let now = Instant::now().into_std();
        let actions = match result {
            OpResult::Created(result) => {
                let result = result.map_err(|reason| Failure {
                    reason,
                    retryable: true,
                });
                self.book.created(worker, result)
            }
            OpResult::Reported(outcome, exit) => {
                if let Some(exit) = exit {
                    self.watchers.spawn(async move { (worker, exit.await) });
                }
                self.book.reported(worker, outcome)
            }
            OpResult::Destroyed(outcome) => {
                let actions = self.book.destroyed(worker, outcome, now);
                if let Some(Phase::Retrying { failures, at, .. }) =
                    self.book.entry(worker).map(|e| e.phase)
                {
                    let retry_in = at.saturating_duration_since(now);
                    tracing::warn!(
                        worker,
                        failures,
                        ?retry_in,
                        "the destruction will be tried again"
                    );
                }
                actions
            }
        };
        self.perform(actions);
    }

    fn agent_exited(&mut self, exit: Result<(u32, String), JoinError>) {
        let Ok((worker, how)) = exit else {
            return;
        };
        // Normal after the job's end (the server then refuses the report);
        // a loss before it.
        let actions = self.book.lost(worker, format!("its agent {how}"));
        if !actions.is_empty() {
            tracing::info!(worker, %how, "agent stopped");
        }
        self.perform(actions);
    }

    /// Stops asking for work, lets operations in flight finish (within the
    /// grace), and leaves the agents running for the next start to adopt.
    async fn stop(&mut self) {
        if let Some(p) = self.poll.take() {
            p.abort();
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

/// Sleeps until `at`, or for ever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
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
