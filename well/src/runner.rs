//! The runner: drives a `Well` against the server. One task owns the
//! `WellBook`; everything that waits (the lease polls, creates, reports,
//! renewals, destructions, reconcile passes) runs on tasks of its own and
//! reports back by message.
//!
//! ```text
//!   tasks ───Msg─────▶ ┌────────────────────┐ ──spawn──▶ lease poll, create, report,
//!   tick, shutdown ──▶ │ actor: WellBook::*(..) │            renew, destroy, reconcile tasks
//!   poll deadline ───▶ └────────────────────┘ ──abort──▶ a poll the book abandons
//! ```
//!
//! The book decides when a lease poll goes out, with what, and when one
//! out is abandoned; the actor takes in each answer before the next poll,
//! so no poll asks with free slots that a lease just granted has used.

use crate::book::{Destroyed, PollId, Reported, WellAction, WellBook};
use crate::well::{CreateError, Created, Owned, Well};
use aquifer_protocol::well::{Listed, WellLeaseAnswer};
use aquifer_protocol::{Backoff, CallError, Client};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// The actor's inbox. Senders wait when it is full, which slows the tasks
/// down rather than growing a queue.
const INBOX: usize = 256;

/// What the runner needs to know.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// The server, `http://host:port`.
    pub url: String,
    pub token: String,
    /// How many of each type this well can hold at once, counting from the
    /// lease to the confirmed destruction.
    pub capacity: BTreeMap<String, u32>,
    /// How long a lease poll waits on the server (at most 60 000).
    pub wait_ms: u64,
    pub reconcile_interval: Duration,
    /// A create that takes longer is abandoned (and what it made destroyed).
    pub create_timeout: Duration,
    pub destroy_timeout: Duration,
    /// How long a shutdown waits for creates, reports and destructions
    /// under way before abandoning them to the next start's reconcile.
    pub shutdown_grace: Duration,
    /// Between tries of a call to the server (and lease polls after a
    /// failure): short, so a restarted server is seen within a second.
    pub backoff: Backoff,
    /// Between tries of a destruction that failed.
    pub destroy_backoff: Backoff,
}

/// The default spacing of a failing destruction's tries: each try costs
/// the well's backend something, so they thin out to one in ten seconds.
pub const DESTROY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(10),
};

impl RunnerConfig {
    /// A configuration with the defaults for everything but the server,
    /// the token and the capacity.
    #[must_use]
    pub fn new(url: &str, token: &str, capacity: BTreeMap<String, u32>) -> RunnerConfig {
        RunnerConfig {
            url: url.into(),
            token: token.into(),
            capacity,
            wait_ms: 20_000,
            reconcile_interval: Duration::from_secs(10),
            create_timeout: Duration::from_secs(600),
            destroy_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            backoff: Backoff::default(),
            destroy_backoff: DESTROY_BACKOFF,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach the server: {0}")]
    Client(CallError),
    /// The server refused this well outright (a wrong token, a type the
    /// well is not registered for): a configuration error, not a blip.
    #[error("the server refused {what}: {error}")]
    Refused {
        what: &'static str,
        error: CallError,
    },
}

enum Msg {
    Polled {
        poll: PollId,
        answer: WellLeaseAnswer,
    },
    /// The poll failed in a way a retry may mend.
    PollFailed {
        poll: PollId,
    },
    Created {
        resource: u32,
        result: Result<Created, CreateError>,
    },
    Reported {
        resource: u32,
        outcome: Reported,
    },
    Destroyed {
        resource: u32,
        outcome: Destroyed,
    },
    Reconciled {
        since: u64,
        listed: Vec<Listed>,
        owned: Option<Vec<Owned>>,
        initial: bool,
    },
    Fatal(RunError),
}

/// Runs `well` until `shutdown` completes (or the server refuses the well
/// outright, which is an error).
pub async fn run<W: Well>(
    well: Arc<W>,
    config: RunnerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let client = Client::new(&config.url, Some(config.token.clone()))
        .map_err(RunError::Client)?
        .with_backoff(config.backoff);
    let (tx, rx) = mpsc::channel(INBOX);
    let book = WellBook::new(
        config.capacity.clone(),
        config.destroy_backoff,
        config.backoff,
    );
    let mut actor = Actor {
        well,
        client,
        config,
        book,
        tx,
        tasks: JoinSet::new(),
        renewers: HashMap::new(),
        poller: None,
        reconciling: false,
        reconcile_again: false,
    };
    actor.run(rx, shutdown).await
}

struct Actor<W: Well> {
    well: Arc<W>,
    client: Client,
    config: RunnerConfig,
    book: WellBook,
    tx: mpsc::Sender<Msg>,
    tasks: JoinSet<()>,
    renewers: HashMap<u32, AbortHandle>,
    poller: Option<AbortHandle>,
    reconciling: bool,
    reconcile_again: bool,
}

impl<W: Well> Actor<W> {
    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Msg>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RunError> {
        let mut shutdown = pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        self.start_reconcile(true);
        let mut stop_by: Option<Instant> = None;
        let mut result = Ok(());
        loop {
            if stop_by.is_some() && !self.book.book().busy() {
                break;
            }
            if stop_by.is_none() {
                self.drive_poll();
            }
            let deadline = stop_by.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let look_again = (self.book.book())
                .poll_deadline(Instant::now().into_std())
                .map(Instant::from_std);
            tokio::select! {
                () = &mut shutdown, if stop_by.is_none() => {
                    tracing::info!("shutting down: finishing the work under way");
                    stop_by = Some(self.stop());
                }
                Some(msg) = rx.recv() => {
                    if let Msg::Fatal(e) = msg {
                        tracing::error!(error = %e, "stopping");
                        result = Err(e);
                        stop_by.get_or_insert_with(|| self.stop());
                    } else {
                        self.handle(msg, stop_by.is_some());
                    }
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        tracing::error!(error = %e, "a runner task panicked");
                    }
                }
                _ = tick.tick(), if stop_by.is_none() => self.start_reconcile(false),
                () = sleep_until_some(look_again), if stop_by.is_none() && look_again.is_some() => {}
                () = tokio::time::sleep_until(deadline), if stop_by.is_some() => {
                    tracing::warn!(
                        entries = self.book.book().len(),
                        "shutdown grace over: abandoning the work under way to the next start's reconcile"
                    );
                    break;
                }
            }
        }
        self.tasks.shutdown().await;
        result
    }

    /// Stops asking for work and says when to give up on the work under way.
    fn stop(&mut self) -> Instant {
        if let Some(p) = self.poller.take() {
            // A poll granted a lease just now is lost with it; the lease
            // expires and the job keeps its place, which is the price of
            // stopping promptly.
            p.abort();
        }
        Instant::now() + self.config.shutdown_grace
    }

    fn handle(&mut self, msg: Msg, stopping: bool) {
        let now = Instant::now().into_std();
        let actions = match msg {
            Msg::Polled { poll, answer } => self.book.answered(now, poll, &answer),
            Msg::PollFailed { poll } => {
                self.book.poll_failed(now, poll);
                Vec::new()
            }
            Msg::Created { resource, result } => self.book.created(resource, result),
            Msg::Reported { resource, outcome } => self.book.reported(resource, outcome),
            Msg::Destroyed { resource, outcome } => self.book.destroyed(resource, outcome, now),
            Msg::Reconciled {
                since,
                listed,
                owned,
                initial,
            } => {
                self.reconciling = false;
                let actions = self
                    .book
                    .reconciled(since, &listed, owned.as_deref(), initial, now);
                if std::mem::take(&mut self.reconcile_again) && !stopping {
                    self.start_reconcile(false);
                }
                actions
            }
            Msg::Fatal(_) => Vec::new(),
        };
        self.perform(actions, stopping);
    }

    fn perform(&mut self, actions: Vec<WellAction>, stopping: bool) {
        let (well, client, tx) = (self.well.clone(), self.client.clone(), self.tx.clone());
        for action in actions {
            match action {
                WellAction::Create { lease, req } => {
                    let limit = self.config.create_timeout;
                    let (well, tx) = (well.clone(), tx.clone());
                    self.tasks.spawn(tasks::create(well, tx, lease, req, limit));
                }
                WellAction::Renew {
                    lease,
                    expires_at_ms,
                } => {
                    let fut = tasks::renew(client.clone(), lease, expires_at_ms);
                    self.renewers.insert(lease, self.tasks.spawn(fut));
                }
                WellAction::StopRenew { lease } => {
                    if let Some(h) = self.renewers.remove(&lease) {
                        h.abort();
                    }
                }
                WellAction::ReportReady { resource, created } => {
                    let fut = tasks::report_ready(client.clone(), tx.clone(), resource, created);
                    self.tasks.spawn(fut);
                }
                WellAction::ReportFailed {
                    resource,
                    reason,
                    retryable,
                } => {
                    let (client, tx) = (client.clone(), tx.clone());
                    let fut = tasks::report_failed(client, tx, resource, reason, retryable);
                    self.tasks.spawn(fut);
                }
                WellAction::Destroy {
                    resource,
                    rtype,
                    confirm,
                } => {
                    let limit = self.config.destroy_timeout;
                    let (well, client, tx) = (well.clone(), client.clone(), tx.clone());
                    let fut = tasks::destroy(well, client, tx, resource, rtype, confirm, limit);
                    self.tasks.spawn(fut);
                }
                WellAction::Reconcile => {
                    if !stopping {
                        self.start_reconcile(false);
                    }
                }
                WellAction::Alert(oddity) => tracing::error!(%oddity, "the book is confused"),
            }
        }
    }

    /// Starts a reconcile pass unless one is under way, in which case
    /// another follows it.
    fn start_reconcile(&mut self, initial: bool) {
        if self.reconciling {
            self.reconcile_again = true;
            return;
        }
        self.reconciling = true;
        let since = self.book.mark();
        let (well, client, tx) = (self.well.clone(), self.client.clone(), self.tx.clone());
        let limit = self.config.destroy_timeout;
        self.tasks
            .spawn(tasks::reconcile(well, client, tx, since, initial, limit));
    }

    /// Abandons the poll out and sends the next, when the book says so.
    /// The first goes out once the first reconcile pass is in, so that it
    /// offers the slots that pass found free, not the whole capacity.
    fn drive_poll(&mut self) {
        let now = Instant::now().into_std();
        if self.book.abandon_poll(now)
            && let Some(p) = self.poller.take()
        {
            p.abort();
        }
        if let Some((poll, request)) = self.book.next_poll(now, self.config.wait_ms) {
            let fut = tasks::poll(self.client.clone(), self.tx.clone(), poll, request);
            self.poller = Some(self.tasks.spawn(fut));
        }
    }
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

mod tasks;
