//! When the runner asks the server for work, and with what: the pacing of
//! the lease polls, decided by the book so that wells and factories follow
//! one rule.
//!
//! A poll asks with the free slots and what the runner destroys already.
//! After an answer the next poll goes out at once if the answer brought a
//! lease or nothing at all (a wait that ran its course). An answer that
//! ended the wait with news about destructions is followed as soon as what
//! the book would ask with has changed: the destruction it started is
//! named, or a confirmed one has given its slot back here (the server ends
//! a wait when a destruction it listed is confirmed, and the confirmation's
//! own answer may reach the book a moment later: "ask again as soon as a
//! slot frees up"). If nothing changes (an id the book must first learn
//! from a reconcile pass), it goes out after [`SETTLE_MAX`].
//!
//! A poll that asked for work is never abandoned: its answer may carry a
//! grant. One that asked for nothing may be, and is, as soon as a slot
//! frees up or a destruction it named is over or due again.

use super::{Action, Book, Granted, Leasable, Phase};
use crate::{Backoff, LeaseRequest};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The longest an answer with news the book cannot act on yet holds the
/// next poll back.
pub const SETTLE_MAX: Duration = Duration::from_secs(1);

/// What a lease poll asks with: free slots per kind, and what the runner
/// destroys already (so that the server does not answer at once with it
/// as news).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asking<K> {
    pub free: BTreeMap<K, u16>,
    pub destroying: BTreeSet<u32>,
}

impl<K> Asking<K> {
    /// The wire's request, with each kind and id as the wire names it;
    /// kinds that `kind` has no name for are left out.
    pub fn request<W: Ord, D: Ord>(
        &self,
        wait_ms: u64,
        kind: impl Fn(&K) -> Option<W>,
        id: impl Fn(u32) -> D,
    ) -> LeaseRequest<W, D> {
        LeaseRequest {
            free: (self.free.iter())
                .filter_map(|(k, n)| Some((kind(k)?, *n)))
                .collect(),
            wait_ms,
            destroying: self.destroying.iter().map(|d| id(*d)).collect(),
        }
    }
}

/// Names a lease poll, so that the answer of one abandoned meanwhile is
/// not taken for the answer of the one out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PollId(u64);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pace<K> {
    /// Before the first reconcile pass.
    Unready,
    /// Ask at once.
    Now,
    /// A poll is out.
    Out { id: PollId, asked: Asking<K> },
    /// Ask when what the book would ask with differs from `asked`, or at
    /// `until`.
    Settling { asked: Asking<K>, until: Instant },
    /// The last poll failed: ask at `until`.
    Failed { until: Instant },
}

#[derive(Clone, Debug)]
pub(super) struct Pacing<K> {
    pace: Pace<K>,
    /// Failed polls in a row.
    failures: u32,
    backoff: Backoff,
    polls: u64,
}

impl<K> Pacing<K> {
    pub(super) fn new(backoff: Backoff) -> Pacing<K> {
        Pacing {
            pace: Pace::Unready,
            failures: 0,
            backoff,
            polls: 0,
        }
    }

    /// The first reconcile pass is in: polls may begin.
    pub(super) fn ready(&mut self) {
        if matches!(self.pace, Pace::Unready) {
            self.pace = Pace::Now;
        }
    }
}

impl<T: Leasable> Book<T> {
    /// What a poll sent now would ask with.
    #[must_use]
    pub fn asking(&self, now: Instant) -> Asking<T::Kind> {
        Asking {
            free: self.free(),
            destroying: self.destroying(now),
        }
    }

    /// Whether to send a lease poll now, and with what; the book counts it
    /// out until its answer or failure comes in, or it is abandoned.
    pub fn next_poll(&mut self, now: Instant) -> Option<(PollId, Asking<T::Kind>)> {
        let due = match &self.pace.pace {
            Pace::Unready | Pace::Out { .. } => false,
            Pace::Now => true,
            Pace::Settling { asked, until } => *until <= now || self.asking(now) != *asked,
            Pace::Failed { until } => *until <= now,
        };
        if !due {
            return None;
        }
        self.pace.polls += 1;
        let id = PollId(self.pace.polls);
        let asked = self.asking(now);
        self.pace.pace = Pace::Out {
            id,
            asked: asked.clone(),
        };
        Some((id, asked))
    }

    /// The answer to poll `poll`: make what was leased (`lease`, if the
    /// answer had one), destroy what is listed, and decide when to ask
    /// again. An answer to an abandoned poll is acted on all the
    /// same; it only does not pace the next.
    pub fn answered(
        &mut self,
        now: Instant,
        poll: PollId,
        lease: Option<Vec<Granted<T>>>,
        destroy: &[u32],
    ) -> Vec<Action<T>> {
        let granted = lease.is_some();
        let mut actions = Vec::new();
        for g in lease.into_iter().flatten() {
            actions.extend(self.leased(g.id, g.kind, g.order));
        }
        actions.extend(self.destroy_listed(destroy, now));
        if let Pace::Out { id, asked } = &self.pace.pace
            && *id == poll
        {
            self.pace.failures = 0;
            // News is what the server ends a wait for: something to
            // destroy that the poll did not name, or something it named
            // that has left the server's list (confirmed, or held). An
            // orphan the poll named was never on that list.
            let news = (destroy.iter()).any(|d| !asked.destroying.contains(d))
                || (asked.destroying.iter()).any(|d| !destroy.contains(d) && !self.orphan(*d));
            self.pace.pace = if granted || !news {
                Pace::Now
            } else {
                Pace::Settling {
                    asked: asked.clone(),
                    until: now + SETTLE_MAX,
                }
            };
        }
        actions
    }

    /// Poll `poll` failed (and the runner may retry it): ask again after
    /// a back-off.
    pub fn poll_failed(&mut self, now: Instant, poll: PollId) {
        if let Pace::Out { id, .. } = &self.pace.pace
            && *id == poll
        {
            let until = now + self.pace.backoff.wait_jittered(self.pace.failures);
            self.pace.failures = self.pace.failures.saturating_add(1);
            self.pace.pace = Pace::Failed { until };
        }
    }

    /// Whether the poll out should be abandoned, and asked anew: only one
    /// that asked for nothing (it cannot have been granted a lease, and its
    /// destroy list is the server's state, which the next poll gets again),
    /// once a slot is free or a destruction it named is over or due again.
    /// When this says so, the book counts the poll as gone.
    pub fn abandon_poll(&mut self, now: Instant) -> bool {
        let Pace::Out { asked, .. } = &self.pace.pace else {
            return false;
        };
        if !asked.free.is_empty() {
            return false;
        }
        let current = self.asking(now);
        let abandon = !current.free.is_empty()
            || (asked.destroying.iter()).any(|d| !current.destroying.contains(d));
        if abandon {
            self.pace.pace = Pace::Now;
        }
        abandon
    }

    /// When to look again (`next_poll`, `abandon_poll`) if no input comes
    /// first: a settling or failed poll's time, or the end of a back-off
    /// that lets a poll which asked for nothing be abandoned.
    #[must_use]
    pub fn poll_deadline(&self, now: Instant) -> Option<Instant> {
        match &self.pace.pace {
            Pace::Unready | Pace::Now => None,
            Pace::Failed { until } => Some(*until),
            Pace::Settling { asked, until } => Some(
                self.retry_due(asked, now)
                    .map_or(*until, |at| at.min(*until)),
            ),
            Pace::Out { asked, .. } if asked.free.is_empty() => self.retry_due(asked, now),
            Pace::Out { .. } => None,
        }
    }

    /// Whether `id` is an orphan being destroyed: the server does not list
    /// it, so its absence from a destroy list says nothing.
    fn orphan(&self, id: u32) -> bool {
        matches!(
            self.entries.get(&id).map(|e| e.phase),
            Some(Phase::Destroying { confirm: false, .. } | Phase::Retrying { confirm: false, .. })
        )
    }

    /// The earliest time after `now` that a thing `asked` named as being
    /// destroyed falls due for another try, and so leaves the set.
    fn retry_due(&self, asked: &Asking<T::Kind>, now: Instant) -> Option<Instant> {
        (asked.destroying.iter())
            .filter_map(|id| match self.entries.get(id)?.phase {
                Phase::Retrying { at, .. } if at > now => Some(at),
                _ => None,
            })
            .min()
    }
}
