//! The runner's books: what this well is doing with each resource, the
//! free-slot arithmetic, and the decisions the runner acts on.
//!
//! Pure, in the style of the core: every input (a lease, a destroy list, a
//! finished create, report or destruction, a reconcile's listings) comes in
//! with the time, and what to do comes out as `Action`s. The runner owns one
//! `Book` on one task and performs the actions; the tests drive it directly.

use crate::well::{CreateError, CreateRequest, Created};
use aquifer_protocol::Backoff;
use aquifer_protocol::well::Grant;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

/// At most this many orphans are taken on per reconcile pass; the rest wait
/// for the next, so one pass over a littered cloud account cannot flood the
/// runner with tasks.
pub const ORPHANS_PER_PASS: usize = 64;
/// How many confirmed ids are remembered, to ignore them in destroy lists
/// that were computed before the confirmation landed.
const GONE_REMEMBERED: usize = 1024;

/// What the runner is doing with one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `Well::create` is running under `lease`. `release`: the server has
    /// since asked for it to be destroyed (the lease expired), so it is
    /// destroyed as soon as the create returns, instead of reported.
    Creating { lease: u32, release: bool },
    /// Its ready or failed report is on its way. A report without a lease
    /// is the failure of a create a previous run of the process began.
    Reporting {
        lease: Option<u32>,
        release: bool,
        made: Made,
    },
    /// It exists and the server keeps it.
    Alive,
    /// The server has it in a state this well leaves alone: held for an
    /// operator, or being created under a lease this process does not hold.
    Parked,
    /// `Well::destroy` (then the confirmation, if `confirm`) is running.
    /// Orphans are destroyed without confirmation.
    Destroying { confirm: bool, failures: u32 },
    /// Destruction failed `failures` times in a row; not tried again before
    /// `at`, however often the server asks.
    Retrying {
        confirm: bool,
        failures: u32,
        at: Instant,
    },
}

/// Which report a create led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Made {
    Ready,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub rtype: String,
    pub phase: Phase,
    /// The book's sequence number when this entry last changed: a listing
    /// requested before that cannot speak for it.
    touched: u64,
}

/// What the runner should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Create {
        lease: u32,
        req: CreateRequest,
    },
    /// Keep the lease alive until `StopRenew`.
    Renew {
        lease: u32,
        expires_at_ms: u64,
    },
    StopRenew {
        lease: u32,
    },
    ReportReady {
        resource: u32,
        created: Created,
    },
    ReportFailed {
        resource: u32,
        reason: String,
        retryable: bool,
    },
    Destroy {
        resource: u32,
        rtype: String,
        confirm: bool,
    },
    /// Run a reconcile pass soon: the server named a resource this book
    /// does not know (its type is in the listing).
    Reconcile,
}

/// How a report ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The server took it.
    Accepted,
    /// A ready report the server already had (an earlier attempt landed
    /// but its answer was lost).
    Duplicate,
    /// The server refused the report's content (400): the thing cannot be
    /// offered as it is, so the create has failed after all.
    Invalid(String),
    /// Too late (the lease expired, the resource left the books) or not
    /// ours: whatever was made must go.
    Refused,
}

/// How a destruction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destroyed {
    /// Gone, and confirmed if it had to be.
    Done,
    /// `Well::destroy` failed (and the failure was reported if the server
    /// knows the resource).
    Failed,
    /// Gone, but the server refused the confirmation: its books disagree,
    /// and the next reconcile pass sorts it out.
    ConfirmRefused,
}

pub struct Book {
    capacity: BTreeMap<String, u32>,
    entries: BTreeMap<u32, Entry>,
    /// The resources of each lease still being created or reported: the
    /// lease is renewed until this empties.
    leases: BTreeMap<u32, BTreeSet<u32>>,
    gone: VecDeque<u32>,
    seq: u64,
    backoff: Backoff,
}

impl Book {
    /// `backoff` spaces the attempts to destroy a resource whose
    /// destruction keeps failing.
    #[must_use]
    pub fn new(capacity: BTreeMap<String, u32>, backoff: Backoff) -> Book {
        Book {
            capacity,
            entries: BTreeMap::new(),
            leases: BTreeMap::new(),
            gone: VecDeque::new(),
            seq: 0,
            backoff,
        }
    }

    #[must_use]
    pub fn entry(&self, resource: u32) -> Option<&Entry> {
        self.entries.get(&resource)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some task is still working on a resource (creating,
    /// reporting, destroying): a graceful shutdown waits for these.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.entries.values().any(|e| {
            matches!(
                e.phase,
                Phase::Creating { .. } | Phase::Reporting { .. } | Phase::Destroying { .. }
            )
        })
    }

    /// The resources this runner is destroying (or will, after a back-off).
    #[must_use]
    pub fn destroying(&self) -> std::collections::BTreeSet<u32> {
        (self.entries.iter())
            .filter(|(_, e)| matches!(e.phase, Phase::Destroying { .. }))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Free slots per served type: the capacity less every resource this
    /// well has in any phase. A resource occupies its slot from the lease
    /// to the confirmation of its destruction, as on the server, and an
    /// orphan occupies one until it is gone, since it may hold the very
    /// thing (a probe, a quota) a new create would need. Types with no free
    /// slot are left out, as the protocol's `free` expects.
    #[must_use]
    pub fn free(&self) -> BTreeMap<String, u16> {
        let mut used: BTreeMap<&str, u32> = BTreeMap::new();
        for e in self.entries.values() {
            *used.entry(e.rtype.as_str()).or_insert(0) += 1;
        }
        (self.capacity.iter())
            .filter_map(|(t, cap)| {
                let n = cap.saturating_sub(used.get(t.as_str()).copied().unwrap_or(0));
                (n > 0).then(|| (t.clone(), u16::try_from(n).unwrap_or(u16::MAX)))
            })
            .collect()
    }

    /// A sequence number for a reconcile pass about to ask for listings:
    /// entries that change after this are newer than the listings.
    pub fn mark(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn put(&mut self, resource: u32, rtype: String, phase: Phase) {
        self.seq += 1;
        let touched = self.seq;
        self.entries.insert(
            resource,
            Entry {
                rtype,
                phase,
                touched,
            },
        );
    }

    fn set_phase(&mut self, resource: u32, phase: Phase) {
        self.seq += 1;
        let touched = self.seq;
        if let Some(e) = self.entries.get_mut(&resource) {
            e.phase = phase;
            e.touched = touched;
        }
    }

    fn forget(&mut self, resource: u32) {
        self.seq += 1;
        self.entries.remove(&resource);
    }

    /// Starts destroying `resource` and says so.
    fn destroy(&mut self, resource: u32, confirm: bool, failures: u32) -> Option<Action> {
        let rtype = self.entries.get(&resource)?.rtype.clone();
        self.set_phase(resource, Phase::Destroying { confirm, failures });
        Some(Action::Destroy {
            resource,
            rtype,
            confirm,
        })
    }

    /// The server granted a lease: create each of its resources, and keep
    /// the lease alive meanwhile.
    pub fn granted(&mut self, grant: &Grant) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut mine = BTreeSet::new();
        for resource in grant.resources.iter().map(|r| r.0) {
            if self.entries.contains_key(&resource) {
                // Resource ids are never handed out twice; a book that
                // already has this one is confused, and creating a second
                // thing with the same tag would be worse.
                tracing::error!(
                    resource,
                    lease = grant.id.0,
                    "a lease names a resource already in the books"
                );
                continue;
            }
            let phase = Phase::Creating {
                lease: grant.id.0,
                release: false,
            };
            self.put(resource, grant.rtype.0.clone(), phase);
            mine.insert(resource);
            actions.push(Action::Create {
                lease: grant.id.0,
                req: CreateRequest {
                    resource,
                    rtype: grant.rtype.0.clone(),
                    job: grant.job.0,
                    deadline_ms: grant.deadline_ms,
                },
            });
        }
        if !mine.is_empty() {
            self.leases.insert(grant.id.0, mine);
            actions.push(Action::Renew {
                lease: grant.id.0,
                expires_at_ms: grant.expires_at_ms,
            });
        }
        actions
    }

    /// The server wants these destroyed (they are `releasing`).
    pub fn destroy_listed(&mut self, ids: &[u32], now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut unknown = false;
        for &id in ids {
            let Some(e) = self.entries.get(&id) else {
                // Confirmed since the list was made; otherwise its type is
                // in the listing.
                unknown |= !self.gone.contains(&id);
                continue;
            };
            match e.phase {
                Phase::Creating { lease, .. } => {
                    self.set_phase(
                        id,
                        Phase::Creating {
                            lease,
                            release: true,
                        },
                    );
                }
                Phase::Reporting { lease, made, .. } => {
                    self.set_phase(
                        id,
                        Phase::Reporting {
                            lease,
                            release: true,
                            made,
                        },
                    );
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

    /// Ends a lease's renewal once none of its resources is being created
    /// or reported.
    fn done_with_lease(&mut self, lease: Option<u32>, resource: u32) -> Option<Action> {
        let lease = lease?;
        let set = self.leases.get_mut(&lease)?;
        set.remove(&resource);
        if set.is_empty() {
            self.leases.remove(&lease);
            return Some(Action::StopRenew { lease });
        }
        None
    }

    /// `Well::create` returned (or gave up).
    pub fn created(&mut self, resource: u32, result: Result<Created, CreateError>) -> Vec<Action> {
        let Some(Phase::Creating { lease, release }) = self.entries.get(&resource).map(|e| e.phase)
        else {
            tracing::error!(
                resource,
                "a create finished for a resource that was not being created"
            );
            return Vec::new();
        };
        if release {
            // Too late to report: the server has released it. Whatever the
            // create made, or half made, goes.
            let mut actions: Vec<Action> = self
                .done_with_lease(Some(lease), resource)
                .into_iter()
                .collect();
            actions.extend(self.destroy(resource, true, 0));
            return actions;
        }
        let lease = Some(lease);
        match result {
            Ok(created) => {
                let made = Made::Ready;
                self.set_phase(
                    resource,
                    Phase::Reporting {
                        lease,
                        release,
                        made,
                    },
                );
                vec![Action::ReportReady { resource, created }]
            }
            Err(e) => {
                let made = Made::Failed;
                self.set_phase(
                    resource,
                    Phase::Reporting {
                        lease,
                        release,
                        made,
                    },
                );
                vec![Action::ReportFailed {
                    resource,
                    reason: e.reason,
                    retryable: e.retryable,
                }]
            }
        }
    }

    /// A ready or failed report has landed, or will never land.
    pub fn reported(&mut self, resource: u32, outcome: Reported) -> Vec<Action> {
        let Some(Phase::Reporting {
            lease,
            release,
            made,
        }) = self.entries.get(&resource).map(|e| e.phase)
        else {
            tracing::error!(
                resource,
                "a report finished for a resource that was not being reported"
            );
            return Vec::new();
        };
        if let (Made::Ready, Reported::Invalid(why)) = (made, &outcome) {
            // The lease is still live: the failure can still be reported,
            // so the job hears why rather than waiting for an expiry.
            let reason = format!("the well's ready report was refused: {why}");
            let made = Made::Failed;
            self.set_phase(
                resource,
                Phase::Reporting {
                    lease,
                    release,
                    made,
                },
            );
            return vec![Action::ReportFailed {
                resource,
                reason,
                retryable: false,
            }];
        }
        let mut actions: Vec<Action> = self.done_with_lease(lease, resource).into_iter().collect();
        let kept = made == Made::Ready
            && !release
            && matches!(outcome, Reported::Accepted | Reported::Duplicate);
        if kept {
            self.set_phase(resource, Phase::Alive);
        } else {
            // A failure (reported or not) releases the lease's resources on
            // the server: destroy what may exist and confirm, without
            // waiting to be told.
            actions.extend(self.destroy(resource, true, 0));
        }
        actions
    }

    /// A destruction has ended.
    pub fn destroyed(&mut self, resource: u32, outcome: Destroyed, now: Instant) {
        let Some(Phase::Destroying { confirm, failures }) =
            self.entries.get(&resource).map(|e| e.phase)
        else {
            tracing::error!(
                resource,
                "a destruction finished for a resource that was not being destroyed"
            );
            return;
        };
        match outcome {
            Destroyed::Done | Destroyed::ConfirmRefused => {
                self.forget(resource);
                if confirm {
                    if self.gone.len() >= GONE_REMEMBERED {
                        self.gone.pop_front();
                    }
                    self.gone.push_back(resource);
                }
            }
            Destroyed::Failed => {
                let failures = failures.saturating_add(1);
                let at = now + self.backoff.wait_jittered(failures.saturating_sub(1));
                self.set_phase(
                    resource,
                    Phase::Retrying {
                        confirm,
                        failures,
                        at,
                    },
                );
            }
        }
    }
}

mod reconcile;

#[cfg(test)]
mod tests;
