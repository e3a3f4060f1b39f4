//! One book of leased things, for wells and factories alike: what a runner
//! is doing with each resource or worker, its free slots, when and with what
//! it asks the server for work, and the decisions it acts on.
//!
//! Pure, in the style of the core: every input (a lease answer, a finished
//! create, report or destruction, a reconcile's listings) comes in with the
//! time, and what to do comes out as [`Action`]s. A runner owns one `Book` on
//! one task and carries the actions out; the tests drive it directly.
//!
//! ```text
//!   leased ─▶ Creating ─created─▶ Reporting ─reported─▶ Alive ─lost─▶ Reporting ─▶ Parked
//!                 │ (released)        │ (failed, refused, released)      │
//!                 └────────────▶ Destroying ◀─── listed for destruction ─┘
//!                                  │    ▲
//!                         failed   ▼    │ listed again, back-off over
//!                                Retrying            done ─▶ gone (confirmed)
//! ```
//!
//! What differs between wells and factories (what a create needs, what a
//! ready report carries, what a slot is counted by) is the [`Leasable`] type
//! parameter; how a create, a report or a destruction is carried out stays
//! in their crates.

use crate::Backoff;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::time::Instant;

mod lifecycle;
mod poll;
mod reconcile;

#[cfg(test)]
mod tests;

pub use poll::{Asking, PollId, SETTLE_MAX};
pub use reconcile::{Keep, Listed, Owned, Want};

/// At most this many orphans are taken on per reconcile pass; the rest wait
/// for the next, so one pass over a littered account cannot flood the
/// runner with tasks.
pub const ORPHANS_PER_PASS: usize = 64;
/// How many confirmed ids are remembered, to ignore them in destroy lists
/// that were computed before the confirmation landed.
const GONE_REMEMBERED: usize = 1024;

/// What is leased for a job: a well's resources, a factory's workers. The
/// book keeps none of these payloads; it hands them from input to action.
/// Implemented by a marker type (which derives what the book's types
/// derive).
pub trait Leasable: Clone + Debug + PartialEq + Eq {
    /// What a slot is counted by: a resource type, a worker target.
    type Kind: Clone + Ord + Debug;
    /// What making one needs besides its id and kind (the lease, the job).
    type Order: Clone + Debug + PartialEq + Eq;
    /// What a ready report carries (metadata and secrets, or nothing).
    type Made: Clone + Debug + PartialEq + Eq;
    /// Why a made thing can no longer serve its job (a factory's agent
    /// died), or `Infallible` for things that are never lost.
    type Loss: Clone + Debug + PartialEq + Eq;
}

/// What the runner is doing with one thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// It is being made under its lease. `release`: the server has since
    /// asked for it to be destroyed, which happens as soon as the create
    /// returns, instead of a report.
    Creating { release: bool },
    /// A report about it is on its way.
    Reporting { release: bool, report: ReportKind },
    /// It exists and serves its job.
    Alive,
    /// The server has it in a state this runner leaves alone: held for an
    /// operator, made under a lease this process does not hold, or stopped
    /// after a loss, waiting for the server to ask for its destruction.
    Parked,
    /// Being destroyed (then confirmed, if `confirm`). Orphans, which the
    /// server does not list, are destroyed without confirmation.
    Destroying { confirm: bool, failures: u32 },
    /// Destruction failed `failures` times in a row; not tried again before
    /// `at`, however often the server asks.
    Retrying {
        confirm: bool,
        failures: u32,
        at: Instant,
    },
}

impl Phase {
    /// Whether a task is working on it (creating, reporting, destroying):
    /// its result decides what follows, and a shutdown waits for it.
    #[must_use]
    pub fn busy(self) -> bool {
        matches!(
            self,
            Phase::Creating { .. } | Phase::Reporting { .. } | Phase::Destroying { .. }
        )
    }

    /// Whether it is being made or reported: a lease that must stay alive.
    #[must_use]
    pub fn making(self) -> bool {
        matches!(self, Phase::Creating { .. } | Phase::Reporting { .. })
    }
}

/// Which report is on its way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReportKind {
    Ready,
    Failed,
    Lost,
}

/// What to tell the server about a thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report<T: Leasable> {
    /// It is made: the job may have it.
    Ready(T::Made),
    /// It could not be made.
    Failed(Failure),
    /// It was made and can no longer serve its job.
    Lost(T::Loss),
}

impl<T: Leasable> Report<T> {
    #[must_use]
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Ready(_) => ReportKind::Ready,
            Report::Failed(_) => ReportKind::Failed,
            Report::Lost(_) => ReportKind::Lost,
        }
    }
}

/// Why a thing could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    /// Whether the job may ask again (a quota, a flaky API) or should fail.
    pub retryable: bool,
}

/// How a report ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The server took it.
    Accepted,
    /// A ready report the server already had (an earlier attempt landed
    /// but its answer was lost).
    Duplicate,
    /// The ready report cannot stand (the server refused its content, or
    /// the thing does not work after all): it becomes a failure, because
    /// the lease is still live and the job should hear why.
    Invalid(String),
    /// Too late (the lease expired, the thing left the books) or not ours:
    /// whatever was made must go.
    Refused,
}

/// How a destruction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destroyed {
    /// Gone, and confirmed if it had to be.
    Done,
    /// The destruction failed (and the failure was reported if the server
    /// knows the thing).
    Failed,
    /// Gone, but the server refused the confirmation: its books disagree,
    /// and the next reconcile pass sorts it out.
    ConfirmRefused,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<K> {
    pub kind: K,
    pub phase: Phase,
    /// The book's sequence number when this entry last changed: a listing
    /// requested before that cannot speak for it.
    touched: u64,
}

/// One thing a lease grants: its id, its kind, and what making it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted<T: Leasable> {
    pub id: u32,
    pub kind: T::Kind,
    pub order: T::Order,
}

/// What the runner should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<T: Leasable> {
    /// Make it.
    Create {
        id: u32,
        kind: T::Kind,
        order: T::Order,
    },
    Report {
        id: u32,
        report: Report<T>,
    },
    /// Destroy it, then confirm if `confirm`.
    Destroy {
        id: u32,
        kind: T::Kind,
        confirm: bool,
    },
    /// Run a reconcile pass soon: the server named a thing this book does
    /// not know (its kind is in the listing).
    Reconcile,
    /// Log it: the book was told something it did not expect, and did
    /// nothing about it.
    Alert(Oddity),
}

/// An input that makes no sense against the book: a bug somewhere.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Oddity {
    /// Ids are never handed out twice; making a second thing under the
    /// same id would be worse than ignoring the lease.
    #[error("a lease names {0}, which is already in the books")]
    AlreadyKnown(u32),
    #[error("a create finished for {0}, which was not being created")]
    NotCreating(u32),
    #[error("a report finished for {0}, which was not being reported")]
    NotReporting(u32),
    #[error("a destruction finished for {0}, which was not being destroyed")]
    NotDestroying(u32),
}

pub struct Book<T: Leasable> {
    capacity: BTreeMap<T::Kind, u32>,
    entries: BTreeMap<u32, Entry<T::Kind>>,
    gone: VecDeque<u32>,
    seq: u64,
    backoff: Backoff,
    pace: poll::Pacing<T::Kind>,
}

impl<T: Leasable> Book<T> {
    /// `capacity` is how many of each kind the runner holds at once, from
    /// the lease to the confirmed destruction; `destroy_backoff` spaces the
    /// tries of a destruction that keeps failing; `poll_backoff` the lease
    /// polls after a failed one.
    #[must_use]
    pub fn new(
        capacity: BTreeMap<T::Kind, u32>,
        destroy_backoff: Backoff,
        poll_backoff: Backoff,
    ) -> Book<T> {
        Book {
            capacity,
            entries: BTreeMap::new(),
            gone: VecDeque::new(),
            seq: 0,
            backoff: destroy_backoff,
            pace: poll::Pacing::new(poll_backoff),
        }
    }

    #[must_use]
    pub fn entry(&self, id: u32) -> Option<&Entry<T::Kind>> {
        self.entries.get(&id)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some task is still working on a thing: a graceful shutdown
    /// waits for these.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.entries.values().any(|e| e.phase.busy())
    }

    /// Free slots per kind: the capacity less every thing of that kind in
    /// the book, in any phase. A thing occupies its slot from the lease to
    /// the confirmation of its destruction, as on the server, and an orphan
    /// until it is gone, since it may hold the very thing (a probe, a
    /// quota) a new create would need. Kinds with no free slot are left
    /// out, as the protocol's `free` expects.
    #[must_use]
    pub fn free(&self) -> BTreeMap<T::Kind, u16> {
        (self.capacity.keys())
            .filter_map(|k| {
                let n = self.room(k);
                (n > 0).then(|| (k.clone(), u16::try_from(n).unwrap_or(u16::MAX)))
            })
            .collect()
    }

    /// What this runner destroys already, or will as soon as it may: being
    /// destroyed, backing off before another try, or released while being
    /// made. A lease poll names these, so the server does not end its wait
    /// to list them again; a back-off that is over leaves the set, so the
    /// server's next answer names the thing and its destruction is retried.
    #[must_use]
    pub fn destroying(&self, now: Instant) -> BTreeSet<u32> {
        (self.entries.iter())
            .filter(|(_, e)| match e.phase {
                // Orphans are the runner's own business: the server never
                // lists them, so naming them would only tell it that
                // something it does not list is being destroyed, which it
                // takes for news (a confirmed destruction) and answers at
                // once.
                Phase::Destroying { confirm: false, .. }
                | Phase::Retrying { confirm: false, .. } => false,
                Phase::Destroying { confirm: true, .. }
                | Phase::Creating { release: true }
                | Phase::Reporting { release: true, .. } => true,
                Phase::Retrying { at, .. } => at > now,
                Phase::Creating { release: false }
                | Phase::Reporting { release: false, .. }
                | Phase::Alive
                | Phase::Parked => false,
            })
            .map(|(&id, _)| id)
            .collect()
    }

    /// A sequence number for a reconcile pass about to ask for listings:
    /// entries that change after this are newer than the listings.
    pub fn mark(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Free slots of `kind`, zero for a kind not served.
    fn room(&self, kind: &T::Kind) -> u32 {
        let cap = self.capacity.get(kind).copied().unwrap_or(0);
        let used = self.entries.values().filter(|e| e.kind == *kind).count();
        cap.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    fn put(&mut self, id: u32, kind: T::Kind, phase: Phase) {
        self.seq += 1;
        let touched = self.seq;
        self.entries.insert(
            id,
            Entry {
                kind,
                phase,
                touched,
            },
        );
    }

    fn set_phase(&mut self, id: u32, phase: Phase) {
        self.seq += 1;
        let touched = self.seq;
        if let Some(e) = self.entries.get_mut(&id) {
            e.phase = phase;
            e.touched = touched;
        }
    }

    fn forget(&mut self, id: u32) {
        self.seq += 1;
        self.entries.remove(&id);
    }

    /// Starts destroying `id` and says so.
    fn destroy(&mut self, id: u32, confirm: bool, failures: u32) -> Option<Action<T>> {
        let kind = self.entries.get(&id)?.kind.clone();
        self.set_phase(id, Phase::Destroying { confirm, failures });
        Some(Action::Destroy { id, kind, confirm })
    }

    /// Starts reporting on `id` and says so.
    fn report(&mut self, id: u32, release: bool, report: Report<T>) -> Action<T> {
        let kind = report.kind();
        self.set_phase(
            id,
            Phase::Reporting {
                release,
                report: kind,
            },
        );
        Action::Report { id, report }
    }
}
