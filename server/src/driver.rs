//! The driver: the one task that owns the core `State`.
//!
//! ```text
//!  callers ──input──▶ bounded queue ──▶ ┌──────────── driver task ────────────┐
//!                                       │ take a batch (or a Tick when the    │
//!                                       │   next deadline is due)             │
//!                                       │ step each input on a working copy   │
//!                                       │ append the batch's events: one tx   │──▶ store
//!                                       │ committed? swap the copy in         │
//!                                       │   : drop it, answer "unavailable"   │
//!                                       │ perform the effects, answer callers │──▶ effect sink
//!                                       └─────────────────────────────────────┘
//! ```
//!
//! Nothing is acted on, and no caller hears an answer, before the events
//! that decided it are committed. On start the state is rebuilt from the
//! latest snapshot and the events after it, checked, and everything it
//! still owes (`pending_effects`) is performed again: effects are
//! idempotent.

use crate::readmodel::{self, Payload, Write};
use crate::store::{Store, StoreError};
use aquifer_core::{
    Effect, Event, Input, Limits, Rejection, Rules, State, Time, Transition, apply, invariants,
    next_deadline, pending_effects, step,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};

/// Where `now` comes from: the system clock in production, a hand-moved
/// one in tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Time;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Milliseconds since the clock was made, on tokio's monotonic clock: for
/// tests and simulations that want small numbers and no wall-clock jumps.
pub struct MonotonicClock(tokio::time::Instant);

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock(tokio::time::Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Time {
        Time(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

/// Performs effects once their events are committed. Must be idempotent:
/// after a restart, pending effects are performed again.
pub trait EffectSink: Send + Sync + 'static {
    fn perform(&self, effect: &Effect);
}

/// How the driver batches and snapshots: the `[driver]` table of the
/// server's configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// How many inputs may wait for the driver; more are refused as busy.
    pub queue_max: usize,
    /// How many inputs one transaction may carry.
    pub batch_max: usize,
    /// A snapshot is taken after this many events since the last one; 0
    /// takes none (start-up then replays the whole log).
    pub snapshot_every_events: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue_max: 4096,
            batch_max: 256,
            snapshot_every_events: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the scheduler is busy: {0} inputs are already waiting")]
    Busy(usize),
    #[error("the scheduler could not record the decision; nothing changed: {0}")]
    Unavailable(String),
}

struct Request {
    work: Work,
    payload: Option<Payload>,
    reply: oneshot::Sender<Result<Transition, DriverError>>,
}

enum Work {
    /// An input for the core to decide.
    Decide(Input),
    /// Read-model rows that decide nothing (a task's output), written in
    /// the next batch's transaction so that the driver stays the only
    /// writer and each job's stream stays numbered without gaps.
    Record(Vec<Write>),
}

/// A read of the committed state, run by the driver between batches.
type Read = Box<dyn FnOnce(&State) + Send>;

/// What callers put on the driver's queue.
enum Msg {
    Decide(Box<Request>),
    Read(Read),
}

/// How callers reach the driver.
#[derive(Clone)]
pub struct Handle {
    queue: mpsc::Sender<Msg>,
    queue_max: usize,
    committed: watch::Receiver<u64>,
    stats: Arc<Stats>,
}

/// Upper bounds of the batch-size histogram's buckets.
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
/// Upper bounds of the commit-latency histogram's buckets, in µs.
pub const COMMIT_BUCKETS_US: [u64; 8] =
    [500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000, 1_000_000];

/// What the driver counts as it goes, for `/metrics`: batches by size, and
/// commits by how long the database took. Each histogram holds a count
/// per bucket (`le` its bound; the last, past every bound), their sum and
/// their number.
#[derive(Debug, Default)]
pub struct Stats {
    pub batch_sizes: Histogram<{ BATCH_BUCKETS.len() + 1 }>,
    pub commit_us: Histogram<{ COMMIT_BUCKETS_US.len() + 1 }>,
    /// Commits that failed (the database refused or was away).
    pub commit_failures: AtomicU64,
    /// Waits, hand-offs and lifetimes, from the committed events.
    pub timings: std::sync::Mutex<crate::timings::Timings>,
}

/// A histogram of `N` buckets, the last for what exceeds every bound.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    pub buckets: [AtomicU64; N],
    pub sum: AtomicU64,
    pub count: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    /// Counts `value` in the first bucket whose bound it does not exceed.
    pub fn observe(&self, bounds: &[u64], value: u64) {
        let i = bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(bounds.len());
        self.buckets[i.min(N - 1)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

impl Handle {
    /// Sends an input and waits until its decision is committed (or
    /// refused).
    pub async fn send(&self, input: Input) -> Result<Transition, DriverError> {
        self.send_with(input, None).await
    }

    /// Sends an input with what the store must keep beside it (a job's
    /// owner, name and tasks), written in the same transaction as the
    /// input's events.
    pub async fn send_with(
        &self,
        input: Input,
        payload: Option<Payload>,
    ) -> Result<Transition, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Msg::Decide(Box::new(Request {
            work: Work::Decide(input),
            payload,
            reply,
        })))?;
        answer
            .await
            .map_err(|_| DriverError::Unavailable("the driver stopped before answering".into()))?
    }

    /// Writes read-model rows that decide nothing (a task's output) and
    /// waits until they are committed.
    pub async fn record(&self, writes: Vec<Write>) -> Result<(), DriverError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Msg::Decide(Box::new(Request {
            work: Work::Record(writes),
            payload: None,
            reply,
        })))?;
        answer
            .await
            .map_err(|_| DriverError::Unavailable("the driver stopped before answering".into()))?
            .map(|_| ())
    }

    /// Runs `f` on the committed state (never on a batch being decided)
    /// and returns what it computed. Keep `f` short: the driver waits.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DriverError>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Msg::Read(Box::new(move |state| {
            let _ = reply.send(f(state));
        })))?;
        answer
            .await
            .map_err(|_| DriverError::Unavailable("the driver stopped before answering".into()))
    }

    /// A counter that moves on after every commit, for whoever must wait
    /// for the state to change rather than poll (tests, tools). The API's
    /// long polls wait on the effects instead, which name what changed.
    #[must_use]
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// What the driver has counted so far.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How many messages wait for the driver now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queue_max - self.queue.capacity()
    }

    fn enqueue(&self, msg: Msg) -> Result<(), DriverError> {
        self.queue.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => DriverError::Busy(self.queue_max),
            mpsc::error::TrySendError::Closed(_) => {
                DriverError::Unavailable("the driver has stopped".into())
            }
        })
    }
}

pub struct Driver {
    state: State,
    /// The sequence number of the last committed event.
    seq: u64,
    last_snapshot: u64,
    store: Store,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn EffectSink>,
    options: Options,
    queue: mpsc::Receiver<Msg>,
    committed: watch::Sender<u64>,
    /// Commits that failed in a row, for back-off.
    failures: u32,
    /// Set when the driver can no longer trust its state; `run` returns.
    stopped: bool,
    stats: Arc<Stats>,
}

/// What a driver runs with. `Setup::new` gives the production rules,
/// default limits and options, and the system clock; change what differs
/// with struct update syntax.
pub struct Setup {
    pub store: Store,
    pub rules: Rules,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    pub sink: Arc<dyn EffectSink>,
    pub options: Options,
}

impl Setup {
    #[must_use]
    pub fn new(store: Store, sink: Arc<dyn EffectSink>) -> Setup {
        Setup {
            store,
            rules: Rules::production(),
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            sink,
            options: Options::default(),
        }
    }
}

/// What start-up found and did, for logs and benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct Recovery {
    pub snapshot_seq: u64,
    pub replayed_events: usize,
}

impl Driver {
    /// Rebuilds the state from the store and returns the driver (to be
    /// run) and a handle to it.
    pub async fn recover(setup: Setup) -> Result<(Driver, Handle, Recovery), StoreError> {
        let Setup {
            store,
            rules,
            limits,
            clock,
            sink,
            options,
        } = setup;
        let snapshot = match store.latest_snapshot().await {
            Ok(snapshot) => snapshot,
            // A snapshot this build cannot read (an older shape of the
            // state, say) is only an optimisation: the log has every event.
            Err(StoreError::Corrupt { seq, source }) => {
                tracing::warn!(seq, error = %source, "ignoring an unreadable snapshot; replaying the whole log");
                None
            }
            Err(e) => return Err(e),
        };
        let (snapshot_seq, mut state) = match snapshot {
            // The configuration in force now wins over the one the snapshot
            // was taken under, as it does when the log is replayed from 0.
            Some((seq, mut state)) => {
                state.rules = rules;
                state.limits = limits;
                (seq, state)
            }
            None => (0, State::new(rules, limits)),
        };
        let events = store.events_after(snapshot_seq).await?;
        let replayed_events = events.len();
        let mut seq = snapshot_seq;
        for (s, e) in &events {
            apply(&mut state, e);
            seq = *s;
        }
        // Limits lowered since the log was written: the core brings the
        // state under them (a resource past a new destroy limit is held
        // at its next failure).
        state.set_limits(limits);
        // A state that breaks an invariant was not made by `step`: refuse
        // to schedule from it.
        if let Err(v) = invariants::check(&state) {
            panic!("the recovered state breaks an invariant at event {seq}: {v}");
        }
        let (tx, rx) = mpsc::channel(options.queue_max);
        let (committed, committed_rx) = watch::channel(seq);
        let stats = Arc::new(Stats::default());
        let driver = Driver {
            state,
            seq,
            last_snapshot: snapshot_seq,
            store,
            clock,
            sink,
            options,
            queue: rx,
            committed,
            failures: 0,
            stopped: false,
            stats: stats.clone(),
        };
        let handle = Handle {
            queue: tx,
            queue_max: options.queue_max,
            committed: committed_rx,
            stats,
        };
        Ok((
            driver,
            handle,
            Recovery {
                snapshot_seq,
                replayed_events,
            },
        ))
    }

    /// Recovers and runs the driver on the current tokio runtime. The task
    /// ends, returning the final state, once every handle is dropped.
    pub async fn spawn(
        setup: Setup,
    ) -> Result<(Handle, tokio::task::JoinHandle<State>, Recovery), StoreError> {
        let (driver, handle, recovery) = Driver::recover(setup).await?;
        Ok((handle, tokio::spawn(driver.run()), recovery))
    }

    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Runs until every handle is dropped. Performs what the recovered
    /// state owes first.
    pub async fn run(mut self) -> State {
        for effect in pending_effects(&self.state) {
            self.sink.perform(&effect);
        }
        while !self.stopped {
            let batch = match self.next_batch().await {
                Some(batch) => batch,
                None => return self.state,
            };
            self.decide(batch).await;
        }
        self.state
    }

    /// Waits for inputs, or for the next deadline, whichever is first.
    /// Reads are answered on the way, from the committed state.
    async fn next_batch(&mut self) -> Option<Vec<Request>> {
        let mut batch = Vec::new();
        while batch.is_empty() {
            let wait = next_deadline(&self.state).map(|at| {
                let now = self.clock.now();
                std::time::Duration::from_millis(at.ms().saturating_sub(now.ms()))
            });
            let first = match wait {
                Some(wait) => tokio::select! {
                    r = self.queue.recv() => r?,
                    () = tokio::time::sleep(wait) => return Some(vec![tick()]),
                },
                None => self.queue.recv().await?,
            };
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Decide(r) => batch.push(*r),
                    Msg::Read(f) => f(&self.state),
                }
                if batch.len() < self.options.batch_max {
                    next = self.queue.try_recv().ok();
                }
            }
        }
        Some(batch)
    }

    /// Steps a batch on a working copy, commits its events, and only then
    /// swaps the copy in, performs effects and answers. A batch that fails
    /// to commit while the database is up (one caller's input the
    /// database refuses, say) is split so that the others' decisions are
    /// still recorded (`isolate`).
    async fn decide(&mut self, batch: Vec<Request>) {
        let size = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        self.stats.batch_sizes.observe(&BATCH_BUCKETS, size);
        let now = self.clock.now();
        let stepped = self.step_all(&batch, now);
        match self.commit(&stepped, now).await {
            Ok(()) => self.finish(batch, stepped, now).await,
            Err(Committed::No) if batch.len() > 1 => self.isolate(batch, now).await,
            Err(verdict) => self.refuse(batch, verdict).await,
        }
    }

    /// Steps every request of `batch` in order on a copy of the state.
    fn step_all(&self, batch: &[Request], now: Time) -> Stepped {
        let mut work = self.state.clone();
        let mut events = Vec::new();
        let mut writes = Vec::new();
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let input = match &request.work {
                Work::Decide(input) => input,
                Work::Record(rows) => {
                    writes.extend(rows.iter().cloned());
                    results.push(Ok(Transition::default()));
                    continue;
                }
            };
            let result = step(&work, input.clone(), now);
            if let Ok(t) = &result
                && !t.events.is_empty()
            {
                writes.push(Write::Input {
                    first_seq: self.seq + 1 + events.len() as u64,
                    at_ms: now.ms(),
                    input: input.clone(),
                });
            }
            if let Ok(t) = &result {
                for e in &t.events {
                    readmodel::project(&work, e, request.payload.as_ref(), now.ms(), &mut writes);
                    apply(&mut work, e);
                }
                events.extend(t.events.iter().cloned());
            }
            results.push(result);
        }
        Stepped {
            work,
            events,
            writes,
            results,
        }
    }

    /// Makes a stepped batch durable, or says whether it is in the log.
    async fn commit(&mut self, stepped: &Stepped, now: Time) -> Result<(), Committed> {
        if stepped.events.is_empty() && stepped.writes.is_empty() {
            return Ok(());
        }
        let began = std::time::Instant::now();
        let appended = (self.store)
            .append(self.seq, now, &stepped.events, &stepped.writes)
            .await;
        let took = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.commit_us.observe(&COMMIT_BUCKETS_US, took);
        if let Err(e) = appended {
            self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
            match self.after_failed_append(&stepped.events, &e).await {
                Committed::Yes => {}
                verdict => return Err(verdict),
            }
        }
        self.failures = 0;
        self.seq += stepped.events.len() as u64;
        self.committed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A committed batch: its state swapped in, its effects performed, its
    /// callers answered, and a snapshot taken when one is due.
    /// Times what the committed events begin and end (`timings.rs`).
    fn timed(&self, stepped: &Stepped, now: Time) {
        if !stepped.events.is_empty() {
            let mut t = (self.stats.timings.lock()).unwrap_or_else(|p| p.into_inner());
            t.observe(&stepped.events, now);
        }
    }

    async fn finish(&mut self, batch: Vec<Request>, stepped: Stepped, now: Time) {
        self.timed(&stepped, now);
        self.state = stepped.work;
        for (request, result) in batch.into_iter().zip(stepped.results) {
            if let Ok(t) = &result {
                for effect in &t.effects {
                    self.sink.perform(effect);
                }
            }
            // A caller that gave up waiting does not undo the decision.
            let _ = request.reply.send(result.map_err(DriverError::from));
        }
        if self.options.snapshot_every_events > 0
            && self.seq - self.last_snapshot >= self.options.snapshot_every_events
        {
            match self.store.save_snapshot(self.seq, &self.state).await {
                Ok(()) => self.last_snapshot = self.seq,
                Err(e) => tracing::warn!(error = %e, "snapshot failed; start-up will replay more"),
            }
        }
    }

    /// Answers every request of a batch that was not recorded; after a
    /// plain failure, waits before the next, not to hammer the database.
    async fn refuse(&mut self, batch: Vec<Request>, verdict: Committed) {
        for request in batch {
            let _ = request.reply.send(Err(DriverError::Unavailable(
                "the decision could not be recorded; nothing changed".into(),
            )));
        }
        if verdict == Committed::No {
            self.failures = self.failures.saturating_add(1);
            let backoff_ms = (50u64 << self.failures.min(7)).min(5_000);
            tokio::time::sleep(std::time::Duration::from_millis(backoff_ms)).await;
        }
    }

    /// A batch that could not be recorded, taken apart: the first request
    /// alone, then the rest together, and so on while the first ones go
    /// through. A request that fails alone while the rest commit is the
    /// one the database refuses: it alone is answered "unavailable". When
    /// the rest fail too, the database is down: everybody is answered so,
    /// after two tries rather than one per request.
    async fn isolate(&mut self, batch: Vec<Request>, now: Time) {
        let mut rest = std::collections::VecDeque::from(batch);
        while let Some(first) = rest.pop_front() {
            let one = [first];
            let alone = self.step_all(&one, now);
            match self.commit(&alone, now).await {
                Ok(()) => {
                    self.finish(Vec::from(one), alone, now).await;
                    continue;
                }
                Err(Committed::Unknown) => {
                    self.refuse(one.into_iter().chain(rest).collect(), Committed::Unknown)
                        .await;
                    return;
                }
                Err(Committed::No) if rest.is_empty() => {
                    self.refuse(Vec::from(one), Committed::No).await;
                    return;
                }
                Err(Committed::No) => {}
                Err(Committed::Yes) => unreachable!("a commit in the log is Ok"),
            }
            let rest: Vec<Request> = rest.into_iter().collect();
            let others = self.step_all(&rest, now);
            match self.commit(&others, now).await {
                Ok(()) => {
                    tracing::warn!(
                        "one input of a batch could not be recorded and was refused alone; the rest were recorded"
                    );
                    let [refused] = one;
                    let _ = refused.reply.send(Err(DriverError::Unavailable(
                        "this decision could not be recorded (the database refused what it would write); nothing changed".into(),
                    )));
                    self.finish(rest, others, now).await;
                }
                Err(verdict) => {
                    self.refuse(one.into_iter().chain(rest).collect(), verdict)
                        .await;
                }
            }
            return;
        }
    }
}

/// A batch stepped on a copy of the state, not yet committed.
struct Stepped {
    work: State,
    events: Vec<Event>,
    writes: Vec<Write>,
    results: Vec<Result<Transition, aquifer_core::Rejection>>,
}

/// Whether a batch whose append reported an error is in the log after all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Committed {
    Yes,
    No,
    /// The log could not be read, or holds events this driver did not
    /// write: the driver's state can no longer be trusted, so it stops and
    /// a restart recovers from the log.
    Unknown,
}

impl Driver {
    /// A commit can fail after the database made it durable (the reply was
    /// lost), so the log, not the error, says what happened.
    async fn after_failed_append(&mut self, events: &[Event], error: &StoreError) -> Committed {
        let verdict = match self.store.events_after(self.seq).await {
            Ok(logged) if logged.is_empty() => Committed::No,
            Ok(logged) if logged.iter().map(|(_, e)| e).eq(events.iter()) => Committed::Yes,
            Ok(_) | Err(_) => Committed::Unknown,
        };
        match verdict {
            Committed::Yes => {
                tracing::warn!(%error, "the commit reported an error but is in the log")
            }
            Committed::No => tracing::error!(%error, "committing a batch failed; nothing changed"),
            Committed::Unknown => {
                tracing::error!(%error, "the log cannot be read or another writer appended to it; the driver stops");
                self.stopped = true;
            }
        }
        verdict
    }
}

/// A tick comes from the driver itself; nobody waits for its answer.
fn tick() -> Request {
    let (reply, _) = oneshot::channel();
    Request {
        work: Work::Decide(Input::Tick),
        payload: None,
        reply,
    }
}
