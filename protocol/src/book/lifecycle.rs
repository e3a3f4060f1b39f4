//! The book's transitions for one thing's life: leased, created, reported,
//! lost, listed for destruction, destroyed (or backing off to try again).

use super::{Action, Book, Destroyed, Failure, GONE_REMEMBERED, Leasable, Oddity, Phase};
use super::{Report, ReportKind, Reported};
use std::time::Instant;

impl<T: Leasable> Book<T> {
    /// The server leased `id` to this runner: make it.
    pub fn leased(&mut self, id: u32, kind: T::Kind, order: T::Order) -> Vec<Action<T>> {
        match self.entries.get(&id).map(|e| e.phase) {
            None => {}
            // A listing showed it being made under a lease this book did
            // not hold yet, and parked it: this is that lease's grant,
            // which left the server before the listing and arrived after.
            // Dropping it would leave the job waiting for the lease to
            // expire.
            Some(Phase::Parked) => {}
            Some(_) => return vec![Action::Alert(Oddity::AlreadyKnown(id))],
        }
        self.put(id, kind.clone(), Phase::Creating { release: false });
        vec![Action::Create { id, kind, order }]
    }

    /// A create returned (or gave up): report what came of it.
    pub fn created(&mut self, id: u32, result: Result<T::Made, Failure>) -> Vec<Action<T>> {
        let Some(Phase::Creating { release }) = self.entries.get(&id).map(|e| e.phase) else {
            return vec![Action::Alert(Oddity::NotCreating(id))];
        };
        if release {
            // Too late to report: the server has released it. Whatever the
            // create made, or half made, goes.
            return self.destroy(id, true, 0).into_iter().collect();
        }
        let report = match result {
            Ok(made) => Report::Ready(made),
            Err(failure) => Report::Failed(failure),
        };
        vec![self.report(id, false, report)]
    }

    /// A report has landed, or will never land.
    pub fn reported(&mut self, id: u32, outcome: Reported) -> Vec<Action<T>> {
        let Some(Phase::Reporting { release, report }) = self.entries.get(&id).map(|e| e.phase)
        else {
            return vec![Action::Alert(Oddity::NotReporting(id))];
        };
        match (report, outcome) {
            (ReportKind::Ready, Reported::Invalid(reason)) => {
                // The lease is still live: the failure can still be
                // reported, so the job hears why rather than waiting for
                // an expiry.
                let failure = Failure {
                    reason,
                    retryable: false,
                };
                vec![self.report(id, release, Report::Failed(failure))]
            }
            (ReportKind::Ready, Reported::Accepted | Reported::Duplicate) if !release => {
                self.set_phase(id, Phase::Alive);
                Vec::new()
            }
            (ReportKind::Lost, _) if !release => {
                // The server decides what follows a loss: it asks for the
                // destruction once the job has ended.
                self.set_phase(id, Phase::Parked);
                Vec::new()
            }
            // A failure (reported or not) releases the thing on the
            // server, as does a refused or overtaken report: destroy what
            // may exist and confirm, without waiting to be told.
            (ReportKind::Ready | ReportKind::Failed | ReportKind::Lost, _) => {
                self.destroy(id, true, 0).into_iter().collect()
            }
        }
    }

    /// A thing that was alive can no longer serve its job (a factory's
    /// agent stopped): report it. Anything else has ended already.
    pub fn lost(&mut self, id: u32, why: T::Loss) -> Vec<Action<T>> {
        match self.entries.get(&id).map(|e| e.phase) {
            Some(Phase::Alive) => vec![self.report(id, false, Report::Lost(why))],
            _ => Vec::new(),
        }
    }

    /// The server wants these destroyed (a lease answer's `destroy`).
    pub fn destroy_listed(&mut self, ids: &[u32], now: Instant) -> Vec<Action<T>> {
        let mut actions = Vec::new();
        let mut unknown = false;
        for &id in ids {
            let Some(e) = self.entries.get(&id) else {
                // Confirmed since the list was made; otherwise its kind is
                // in the listing.
                unknown |= !self.gone.contains(&id);
                continue;
            };
            match e.phase {
                Phase::Creating { .. } => self.set_phase(id, Phase::Creating { release: true }),
                Phase::Reporting { report, .. } => {
                    let phase = Phase::Reporting {
                        release: true,
                        report,
                    };
                    self.set_phase(id, phase);
                }
                Phase::Alive | Phase::Parked => actions.extend(self.destroy(id, true, 0)),
                Phase::Destroying { .. } => {}
                Phase::Retrying { failures, at, .. } => {
                    if at <= now {
                        actions.extend(self.destroy(id, true, failures));
                    }
                }
            }
        }
        if unknown {
            actions.push(Action::Reconcile);
        }
        actions
    }

    /// A destruction has ended.
    pub fn destroyed(&mut self, id: u32, outcome: Destroyed, now: Instant) -> Vec<Action<T>> {
        let Some(Phase::Destroying { confirm, failures }) = self.entries.get(&id).map(|e| e.phase)
        else {
            return vec![Action::Alert(Oddity::NotDestroying(id))];
        };
        match outcome {
            Destroyed::Done | Destroyed::ConfirmRefused => {
                self.forget(id);
                if confirm {
                    if self.gone.len() >= GONE_REMEMBERED {
                        self.gone.pop_front();
                    }
                    self.gone.push_back(id);
                }
            }
            Destroyed::Failed => {
                let failures = failures.saturating_add(1);
                let at = now + self.backoff.wait_jittered(failures.saturating_sub(1));
                let phase = Phase::Retrying {
                    confirm,
                    failures,
                    at,
                };
                self.set_phase(id, phase);
            }
        }
        Vec::new()
    }
}
