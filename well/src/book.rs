//! The well's side of the one book (`aquifer_protocol::book`): a well's
//! resources as the book's things, the lease renewals (a well's lease
//! covers several resources and lives until the last is reported), and the
//! wire's answers and listings read into the book's inputs.
//!
//! Pure like the book: the runner owns one `WellBook` on one task and
//! performs the `WellAction`s; the tests drive it directly.

use crate::well::{CreateError, CreateRequest, Created, Owned};
use aquifer_protocol::Backoff;
use aquifer_protocol::book::{self as generic, Failure, Granted, Keep, Leasable, Report, Want};
use aquifer_protocol::well::{Listed, ResourceState as ServerState, Want as ServerWant};
use aquifer_protocol::well::{WellLeaseAnswer, WellLeaseRequest};
use aquifer_protocol::{ResourceId, TypeId};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::time::Instant;

pub use generic::{
    Destroyed, Entry, ORPHANS_PER_PASS, Oddity, Phase, PollId, ReportKind, Reported,
};

/// A well's resources, as the book's things: counted by type, made under a
/// lease for a job, ready with metadata and secrets, never lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources;

impl Leasable for Resources {
    type Kind = String;
    type Order = Order;
    type Made = Created;
    type Loss = Infallible;
}

/// What a create needs besides the resource and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub lease: u32,
    pub job: u32,
    pub deadline_ms: u64,
}

/// What the runner should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WellAction {
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
    /// Log it: the book was told something it did not expect.
    Alert(Oddity),
}

pub struct WellBook {
    book: generic::Book<Resources>,
    /// The resources of each lease still being created or reported: the
    /// lease is renewed until this empties.
    leases: BTreeMap<u32, BTreeSet<u32>>,
}

impl WellBook {
    /// `destroy_backoff` spaces the attempts to destroy a resource whose
    /// destruction keeps failing; `poll_backoff` the lease polls after a
    /// failed one.
    #[must_use]
    pub fn new(
        capacity: BTreeMap<String, u32>,
        destroy_backoff: Backoff,
        poll_backoff: Backoff,
    ) -> WellBook {
        WellBook {
            book: generic::Book::new(capacity, destroy_backoff, poll_backoff),
            leases: BTreeMap::new(),
        }
    }

    /// What the book knows, and when it next wants to poll.
    #[must_use]
    pub fn book(&self) -> &generic::Book<Resources> {
        &self.book
    }

    #[must_use]
    pub fn entry(&self, resource: u32) -> Option<&Entry<String>> {
        self.book.entry(resource)
    }

    /// See `generic::Book::mark`.
    pub fn mark(&mut self) -> u64 {
        self.book.mark()
    }

    /// The lease poll to send now, if one is due: see
    /// `generic::Book::next_poll`.
    pub fn next_poll(&mut self, now: Instant, wait_ms: u64) -> Option<(PollId, WellLeaseRequest)> {
        let (poll, asking) = self.book.next_poll(now)?;
        let request = asking.request(wait_ms, |t| Some(TypeId::new(t.clone())), ResourceId);
        Some((poll, request))
    }

    /// See `generic::Book::abandon_poll`.
    pub fn abandon_poll(&mut self, now: Instant) -> bool {
        self.book.abandon_poll(now)
    }

    /// See `generic::Book::poll_failed`.
    pub fn poll_failed(&mut self, now: Instant, poll: PollId) {
        self.book.poll_failed(now, poll);
    }

    /// The answer to a lease poll: create each resource of its lease and
    /// keep the lease alive meanwhile; destroy what it lists.
    pub fn answered(
        &mut self,
        now: Instant,
        poll: PollId,
        answer: &WellLeaseAnswer,
    ) -> Vec<WellAction> {
        let lease = answer.lease.as_ref().map(|g| {
            let order = Order {
                lease: g.id.0,
                job: g.job.0,
                deadline_ms: g.deadline_ms,
            };
            (g.resources.iter())
                .map(|r| Granted {
                    id: r.0,
                    kind: g.rtype.0.clone(),
                    order: order.clone(),
                })
                .collect()
        });
        let destroy: Vec<u32> = answer.destroy.iter().map(|r| r.0).collect();
        let mut actions = map(self.book.answered(now, poll, lease, &destroy));
        let Some(grant) = &answer.lease else {
            return actions;
        };
        let mine: BTreeSet<u32> = (actions.iter())
            .filter_map(|a| match a {
                WellAction::Create { lease, req } if *lease == grant.id.0 => Some(req.resource),
                _ => None,
            })
            .collect();
        if !mine.is_empty() {
            self.leases.insert(grant.id.0, mine);
            actions.push(WellAction::Renew {
                lease: grant.id.0,
                expires_at_ms: grant.expires_at_ms,
            });
        }
        actions
    }

    /// `Well::create` returned (or gave up).
    pub fn created(
        &mut self,
        resource: u32,
        result: Result<Created, CreateError>,
    ) -> Vec<WellAction> {
        let result = result.map_err(|e| Failure {
            reason: e.reason,
            retryable: e.retryable,
        });
        let actions = self.book.created(resource, result);
        self.settled(resource, actions)
    }

    /// A ready or failed report has landed, or will never land.
    pub fn reported(&mut self, resource: u32, outcome: Reported) -> Vec<WellAction> {
        let actions = self.book.reported(resource, outcome);
        self.settled(resource, actions)
    }

    /// A destruction has ended.
    pub fn destroyed(
        &mut self,
        resource: u32,
        outcome: Destroyed,
        now: Instant,
    ) -> Vec<WellAction> {
        let actions = self.book.destroyed(resource, outcome, now);
        map(actions)
    }

    /// A reconcile pass: the server's listing and, if the well could say,
    /// what the well owns, both requested after `mark()` returned `since`.
    /// `initial` is the pass before the first lease poll, when anything the
    /// server has `creating` was begun by an earlier run of the process.
    pub fn reconciled(
        &mut self,
        since: u64,
        listed: &[Listed],
        owned: Option<&[Owned]>,
        initial: bool,
        now: Instant,
    ) -> Vec<WellAction> {
        let listed: Vec<generic::Listed<Resources>> = (listed.iter())
            .map(|l| generic::Listed {
                id: l.id.0,
                kind: l.rtype.0.clone(),
                want: want(l, initial),
            })
            .collect();
        let owned: Option<Vec<generic::Owned<String>>> = owned.map(|o| {
            (o.iter())
                .map(|o| generic::Owned {
                    id: o.resource,
                    kind: o.rtype.clone(),
                })
                .collect()
        });
        let actions = self.book.reconciled(since, &listed, owned.as_deref(), now);
        map(actions)
    }

    /// The actions of a create or report on `resource`, and the end of its
    /// lease's renewal once none of the lease's resources is being created
    /// or reported.
    fn settled(
        &mut self,
        resource: u32,
        actions: Vec<generic::Action<Resources>>,
    ) -> Vec<WellAction> {
        let mut done = Vec::new();
        let making = self.book.entry(resource).is_some_and(|e| e.phase.making());
        if !making
            && let Some((&lease, set)) = self.leases.iter_mut().find(|(_, s)| s.contains(&resource))
        {
            set.remove(&resource);
            if set.is_empty() {
                self.leases.remove(&lease);
                done.push(WellAction::StopRenew { lease });
            }
        }
        done.extend(map(actions));
        done
    }
}

/// The book's actions as the runner performs them.
fn map(actions: Vec<generic::Action<Resources>>) -> Vec<WellAction> {
    (actions.into_iter())
        .map(|a| match a {
            generic::Action::Create { id, kind, order } => WellAction::Create {
                lease: order.lease,
                req: CreateRequest {
                    resource: id,
                    rtype: kind,
                    job: order.job,
                    deadline_ms: order.deadline_ms,
                },
            },
            generic::Action::Report { id, report } => match report {
                Report::Ready(created) => WellAction::ReportReady {
                    resource: id,
                    created,
                },
                Report::Failed(f) => WellAction::ReportFailed {
                    resource: id,
                    reason: f.reason,
                    retryable: f.retryable,
                },
                Report::Lost(never) => match never {},
            },
            generic::Action::Destroy { id, kind, confirm } => WellAction::Destroy {
                resource: id,
                rtype: kind,
                confirm,
            },
            generic::Action::Reconcile => WellAction::Reconcile,
            generic::Action::Alert(o) => WellAction::Alert(o),
        })
        .collect()
}

/// What the server's listing wants of a resource, as the book reads it.
fn want(l: &Listed, initial: bool) -> Want<Resources> {
    match (l.want, l.state) {
        (ServerWant::Release, _) => Want::Release,
        (ServerWant::Hold, _) => Want::Hold,
        (ServerWant::Keep, ServerState::Ready) => Want::Keep(Keep::Alive),
        // Begun by an earlier run: nobody is creating it now. Failing it
        // at once gives the job its place back sooner than the lease's
        // expiry would.
        (ServerWant::Keep, ServerState::Creating) if initial => {
            Want::Keep(Keep::Report(Report::Failed(Failure {
                reason: "the well restarted while creating it".into(),
                retryable: true,
            })))
        }
        // Later passes leave a lease they do not hold to its expiry: it
        // may be one whose grant is on its way to this very runner.
        (ServerWant::Keep | ServerWant::Other, _) => Want::Leave,
    }
}

#[cfg(test)]
mod tests;
