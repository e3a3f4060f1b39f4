//! The book's reconcile pass: the server's listing and the runner's own
//! list of what it owns, held against what the book knows, to find what
//! to destroy, what to make or report, what to forget and which things are
//! orphans.

use super::{Action, Book, Leasable, ORPHANS_PER_PASS, Phase, Report};
use std::collections::BTreeSet;
use std::time::Instant;

/// One thing in the server's listing, with what the server wants of it as
/// the runner's layer reads it (the wire's states differ between wells and
/// factories; what follows from them does not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed<T: Leasable> {
    pub id: u32,
    pub kind: T::Kind,
    pub want: Want<T>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want<T: Leasable> {
    /// Destroy it, then confirm.
    Release,
    /// Destruction failed too often: an operator decides; leave it alone.
    Hold,
    /// A state this runner does not act on (being made under a lease it
    /// does not hold, a state it does not know): in the book, untouched.
    Leave,
    /// The server keeps it, and it should be so here.
    Keep(Keep<T>),
}

/// What a thing the server keeps should be here, when the book does not
/// have it or has it settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep<T: Leasable> {
    /// It exists and serves its job: alive.
    Alive,
    /// Leased, but not being made here (the lease's answer was lost, or a
    /// restart cut the make short): make it, if a slot is free for it or it
    /// already holds one.
    Create(T::Order),
    /// Tell the server this (a create an earlier run began has failed; a
    /// made thing's agent never started; it is lost).
    Report(Report<T>),
}

/// One thing the runner finds it has made and not destroyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned<K> {
    pub id: u32,
    pub kind: K,
}

impl<T: Leasable> Book<T> {
    /// A reconcile pass: the server's listing and, if the runner could say,
    /// what it owns, both requested after `mark()` returned `since`. The
    /// first pass also lets the lease polls begin: the book must hold what
    /// survived a restart before its free slots mean anything.
    pub fn reconciled(
        &mut self,
        since: u64,
        listed: &[Listed<T>],
        owned: Option<&[Owned<T::Kind>]>,
        now: Instant,
    ) -> Vec<Action<T>> {
        self.pace.ready();
        let mut actions = Vec::new();
        for l in listed {
            actions.extend(self.listed(l, since, now));
        }
        let on_server: BTreeSet<u32> = listed.iter().map(|l| l.id).collect();
        if let Some(owned) = owned {
            actions.extend(self.orphans(owned, &on_server, since, now));
        }
        let owned_ids: Option<BTreeSet<u32>> = owned.map(|o| o.iter().map(|o| o.id).collect());
        // Settled entries the server no longer lists have left its books;
        // those the runner still owns were taken on as orphans above, or
        // will be by a later pass.
        let stale: Vec<u32> = (self.entries.iter())
            .filter(|(id, e)| e.touched <= since && !on_server.contains(id))
            .filter(|(id, e)| match e.phase {
                Phase::Alive | Phase::Parked => true,
                Phase::Retrying { .. } => owned_ids.as_ref().is_some_and(|o| !o.contains(id)),
                Phase::Creating { .. } | Phase::Reporting { .. } | Phase::Destroying { .. } => {
                    false
                }
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.forget(id);
        }
        actions
    }

    /// What the runner owns that the server does not list: destroyed
    /// without confirmation, a bounded number per pass.
    fn orphans(
        &mut self,
        owned: &[Owned<T::Kind>],
        on_server: &BTreeSet<u32>,
        since: u64,
        now: Instant,
    ) -> Vec<Action<T>> {
        let mut actions = Vec::new();
        for o in owned.iter().filter(|o| !on_server.contains(&o.id)) {
            if actions.len() >= ORPHANS_PER_PASS {
                break;
            }
            let failures = match self.entries.get(&o.id).map(|e| (e.phase, e.touched)) {
                None => {
                    self.put(o.id, o.kind.clone(), Phase::Parked);
                    0
                }
                Some((Phase::Alive | Phase::Parked, touched)) if touched <= since => 0,
                Some((Phase::Retrying { failures, at, .. }, touched))
                    if touched <= since && at <= now =>
                {
                    failures
                }
                Some(_) => continue,
            };
            actions.extend(self.destroy(o.id, false, failures));
        }
        actions
    }

    /// One thing of the server's listing.
    fn listed(&mut self, l: &Listed<T>, since: u64, now: Instant) -> Option<Action<T>> {
        let Some(e) = self.entries.get(&l.id) else {
            return self.listed_new(l);
        };
        if e.touched > since {
            // The listing is older than what this book knows of it.
            return None;
        }
        match (e.phase, &l.want) {
            (Phase::Creating { release: false }, Want::Release) => {
                self.set_phase(l.id, Phase::Creating { release: true });
                None
            }
            (
                Phase::Reporting {
                    release: false,
                    report,
                },
                Want::Release,
            ) => {
                let phase = Phase::Reporting {
                    release: true,
                    report,
                };
                self.set_phase(l.id, phase);
                None
            }
            (Phase::Alive | Phase::Parked, Want::Release) => self.destroy(l.id, true, 0),
            (Phase::Retrying { failures, at, .. }, Want::Release) if at <= now => {
                self.destroy(l.id, true, failures)
            }
            (Phase::Alive | Phase::Retrying { .. }, Want::Hold) => {
                self.set_phase(l.id, Phase::Parked);
                None
            }
            (Phase::Parked, Want::Keep(Keep::Alive)) => {
                self.set_phase(l.id, Phase::Alive);
                None
            }
            (
                Phase::Alive | Phase::Parked | Phase::Retrying { .. },
                Want::Keep(Keep::Create(o)),
            ) => {
                // It holds its slot already.
                self.set_phase(l.id, Phase::Creating { release: false });
                let (id, kind, order) = (l.id, l.kind.clone(), o.clone());
                Some(Action::Create { id, kind, order })
            }
            (
                Phase::Alive | Phase::Parked | Phase::Retrying { .. },
                Want::Keep(Keep::Report(r)),
            ) => Some(self.report(l.id, false, r.clone())),
            _ => None,
        }
    }

    /// A listed thing the book does not have.
    fn listed_new(&mut self, l: &Listed<T>) -> Option<Action<T>> {
        if self.gone.contains(&l.id) {
            // Confirmed after the listing was made.
            return None;
        }
        let kind = l.kind.clone();
        match &l.want {
            Want::Release => {
                self.put(l.id, kind, Phase::Parked);
                self.destroy(l.id, true, 0)
            }
            Want::Hold | Want::Leave => {
                self.put(l.id, kind, Phase::Parked);
                None
            }
            Want::Keep(Keep::Alive) => {
                self.put(l.id, kind, Phase::Alive);
                None
            }
            Want::Keep(Keep::Create(order)) => {
                // Without a free slot it waits for its lease to expire and
                // go to another runner.
                if self.room(&kind) == 0 {
                    return None;
                }
                self.put(l.id, kind.clone(), Phase::Creating { release: false });
                let (id, order) = (l.id, order.clone());
                Some(Action::Create { id, kind, order })
            }
            Want::Keep(Keep::Report(r)) => {
                self.put(l.id, kind, Phase::Parked);
                Some(self.report(l.id, false, r.clone()))
            }
        }
    }
}
