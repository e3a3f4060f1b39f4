//! Resource instances and the reports wells make about them: ready, failed,
//! destroyed, destroy failed; and the operator's release of a held one.

use crate::event::{Event, LeaseEnd};
use crate::ids::{JobId, LeaseId, ResourceId, TypeId, WellId};
use crate::job::{self, Failure, GroupState, Outcome};
use crate::rejection::Rejection;
use crate::step::Tx;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    pub job: JobId,
    pub group: u8,
    pub rtype: TypeId,
    pub well: WellId,
    pub state: ResourceState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceState {
    /// The well is creating it under `lease`.
    Creating {
        lease: LeaseId,
    },
    Ready,
    /// The server wants it gone; the well is destroying it. `failures`
    /// counts destroy failures in a row.
    Releasing {
        failures: u8,
    },
    /// Destruction failed too often: an operator must look. Its capacity
    /// stays counted, since it may still exist.
    Held,
}

impl ResourceState {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ResourceState::Creating { .. } => "creating",
            ResourceState::Ready => "ready",
            ResourceState::Releasing { .. } => "releasing",
            ResourceState::Held => "held",
        }
    }

    /// Whether the job still counts it towards its group.
    #[must_use]
    pub fn is_live(&self) -> bool {
        matches!(self, ResourceState::Creating { .. } | ResourceState::Ready)
    }
}

/// A resource in the books that belongs to `well`. Ids that were handed out
/// but have left the books are told apart from ids never handed out, so a
/// late report reads "gone", not "unknown".
fn in_books(tx: &Tx, resource: ResourceId) -> Result<&Resource, Rejection> {
    tx.state
        .resources
        .get(&resource)
        .ok_or(if resource < tx.state.next_resource {
            Rejection::Gone {
                what: format!("resource {resource}"),
            }
        } else {
            Rejection::UnknownResource { resource }
        })
}

/// A resource in the books that belongs to `well`.
fn owned(tx: &Tx, well: WellId, resource: ResourceId) -> Result<&Resource, Rejection> {
    let r = in_books(tx, resource)?;
    if r.well != well {
        return Err(Rejection::NotYours {
            what: format!("resource {resource}"),
        });
    }
    Ok(r)
}

/// What a well reports about a resource it is creating.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    Ready,
    Failed,
}

/// A resource being created under a lease that has not expired.
fn creating(
    tx: &Tx,
    well: WellId,
    resource: ResourceId,
    report: Report,
) -> Result<LeaseId, Rejection> {
    let r = owned(tx, well, resource)?;
    match r.state {
        ResourceState::Creating { lease } => {
            if tx.state.leases[&lease].expires_at <= tx.now {
                return Err(Rejection::LeaseExpired { lease });
            }
            Ok(lease)
        }
        ResourceState::Ready if report == Report::Ready => Err(Rejection::Duplicate {
            what: format!("ready report for resource {resource}"),
        }),
        ResourceState::Ready | ResourceState::Releasing { .. } | ResourceState::Held => {
            Err(Rejection::WrongState {
                what: format!("resource {resource}"),
                state: r.state.name(),
                wanted: "creating",
            })
        }
    }
}

pub(crate) fn handle_ready(
    tx: &mut Tx,
    well: WellId,
    resource: ResourceId,
) -> Result<(), Rejection> {
    let lease = creating(tx, well, resource, Report::Ready)?;
    tx.emit(Event::ResourceReady { resource });
    let l = &tx.state.leases[&lease];
    let (job, group) = (l.job, l.group);
    if l.resources
        .iter()
        .all(|r| tx.state.resources[r].state == ResourceState::Ready)
    {
        tx.emit(Event::LeaseFulfilled { lease });
    }
    let entry = &tx.state.jobs[&job];
    let g = &entry.groups[usize::from(group)];
    let ready = tx
        .state
        .resources
        .values()
        .filter(|r| r.job == job && r.group == group && r.state == ResourceState::Ready)
        .count();
    if ready == usize::from(g.count) {
        tx.emit(Event::GroupReady { job, group });
        job::ask_next(tx, job);
    }
    Ok(())
}

pub(crate) fn handle_failed(
    tx: &mut Tx,
    well: WellId,
    resource: ResourceId,
    retryable: bool,
) -> Result<(), Rejection> {
    let lease = creating(tx, well, resource, Report::Failed)?;
    tx.emit(Event::LeaseEnded {
        lease,
        cause: LeaseEnd::Failed {
            resource,
            retryable,
        },
    });
    let job = tx.state.resources[&resource].job;
    after_failed_lease(tx, job, tx.state.resources[&resource].group, retryable);
    Ok(())
}

/// After a lease failed or expired: the group keeps its place in the queue
/// (its place is its job's id) unless it may not be retried, or has failed
/// too often, in which case the job fails.
pub(crate) fn after_failed_lease(tx: &mut Tx, job: JobId, group: u8, retryable: bool) {
    let failures = match tx.state.jobs[&job].groups[usize::from(group)].state {
        GroupState::Acquiring { failures } => failures,
        // A lease exists only for an acquiring group (invariant
        // `lease-for-acquiring-group`), and this one has just ended.
        GroupState::Idle | GroupState::Ready => {
            unreachable!("a lease ended for {job} group {group}, which was not acquiring")
        }
    };
    if !retryable || failures >= tx.state.limits.group_failures_max {
        crate::end::end_job(tx, job, Outcome::Failed(Failure::Resource));
    }
}

pub(crate) fn handle_destroyed(
    tx: &mut Tx,
    well: WellId,
    resource: ResourceId,
) -> Result<(), Rejection> {
    let r = owned(tx, well, resource)?;
    match r.state {
        ResourceState::Releasing { .. } | ResourceState::Held => {}
        ResourceState::Creating { .. } | ResourceState::Ready => {
            return Err(Rejection::WrongState {
                what: format!("resource {resource}"),
                state: r.state.name(),
                wanted: "releasing",
            });
        }
    }
    let job = r.job;
    tx.emit(Event::ResourceDestroyed { resource });
    crate::end::retire_if_done(tx, job);
    Ok(())
}

pub(crate) fn handle_destroy_failed(
    tx: &mut Tx,
    well: WellId,
    resource: ResourceId,
) -> Result<(), Rejection> {
    let r = owned(tx, well, resource)?;
    let ResourceState::Releasing { failures } = r.state else {
        return Err(Rejection::WrongState {
            what: format!("resource {resource}"),
            state: r.state.name(),
            wanted: "releasing",
        });
    };
    tx.emit(Event::DestroyFailed { resource });
    if failures.saturating_add(1) >= tx.state.limits.destroy_failures_max {
        tx.emit(Event::ResourceHeld { resource });
    }
    Ok(())
}

/// An operator has dealt with a held resource: its well tries again.
pub(crate) fn handle_release_held(tx: &mut Tx, resource: ResourceId) -> Result<(), Rejection> {
    let r = in_books(tx, resource)?;
    if r.state != ResourceState::Held {
        return Err(Rejection::WrongState {
            what: format!("resource {resource}"),
            state: r.state.name(),
            wanted: "held",
        });
    }
    tx.emit(Event::HeldReleased { resource });
    Ok(())
}
