//! A well's inputs: lease requests (the queue discipline of rules 4 and
//! 5), renewal, and its reports about resources: ready, failed, destroyed,
//! destroy failed. And the expiry of leases, which the clock decides.

use crate::acquire::ask_next;
use crate::answer::Answer;
use crate::end::{end_job, retire_if_done};
use crate::event::{Event, LeaseEnd};
use crate::ids::{JobId, LeaseId, ResourceId, TypeId, WellId};
use crate::job::{Failure, GroupState, Outcome};
use crate::lease::Lease;
use crate::queue::{Candidate, head, pool_room};
use crate::rejection::Rejection;
use crate::resource::{Resource, ResourceState};
use crate::tx::{Tx, in_books};
use std::collections::BTreeMap;

/// The well asks for work, saying how many slots it has free per type.
/// It gets the oldest waiting group of one of those types that fits, never
/// a later group of a type whose oldest does not fit (rule 5), or nothing.
pub(crate) fn handle_request(
    tx: &mut Tx,
    well: WellId,
    free: BTreeMap<TypeId, u16>,
) -> Result<Answer, Rejection> {
    let w = tx
        .state
        .wells
        .get(&well)
        .ok_or(Rejection::UnknownWell { well })?;
    if let Some(rtype) = free.keys().find(|t| !w.serves(t)) {
        return Err(Rejection::NotServed {
            what: format!("resource type {rtype}"),
            by: well.to_string(),
        });
    }
    if tx.state.lease_hold {
        return Ok(Answer::NoLease);
    }
    // The oldest group of the types asked for that fits: each type's
    // head, or nothing of that type, since nobody behind a head that does
    // not fit may take its place (rule 5).
    let mut chosen: Option<Candidate> = None;
    for (rtype, &reported) in &free {
        let Some(c) = head(&tx.state, rtype) else {
            continue;
        };
        let fits = c.needed <= reported.min(pool_room(&tx.state, well, rtype));
        if fits
            && chosen
                .as_ref()
                .is_none_or(|b| (c.job, c.group) < (b.job, b.group))
        {
            chosen = Some(c);
        }
    }
    let Some(c) = chosen else {
        return Ok(Answer::NoLease);
    };
    if tx.state.next_lease.exhausted(1) || tx.state.next_resource.exhausted(u32::from(c.needed)) {
        return Err(Rejection::LimitExceeded {
            what: "lease or resource ids",
            max: u64::from(u32::MAX),
        });
    }
    let first = tx.state.next_resource.0;
    let resources: Vec<ResourceId> = (first..first + u32::from(c.needed))
        .map(ResourceId)
        .collect();
    let answer = Answer::LeaseGranted {
        lease: tx.state.next_lease,
        job: c.job,
        rtype: c.rtype.clone(),
        resources: resources.clone(),
        deadline: tx.state.jobs[&c.job].deadline,
        expires_at: tx.now.plus_ms(tx.state.limits.lease_ttl_ms),
    };
    tx.emit(Event::LeaseGranted {
        lease: tx.state.next_lease,
        job: c.job,
        group: c.group,
        rtype: c.rtype.clone(),
        well,
        resources,
        expires_at: tx.now.plus_ms(tx.state.limits.lease_ttl_ms),
    });
    Ok(answer)
}

/// A lease in the books, held by `well`, not yet expired.
fn held(tx: &Tx, well: WellId, lease: LeaseId) -> Result<&Lease, Rejection> {
    let Some(l) = tx.state.leases.get(&lease) else {
        return Err(if lease < tx.state.next_lease {
            Rejection::Gone {
                what: lease.to_string(),
            }
        } else {
            Rejection::UnknownLease { lease }
        });
    };
    if l.well != well {
        return Err(Rejection::NotYours {
            what: lease.to_string(),
        });
    }
    if l.expires_at <= tx.now {
        return Err(Rejection::LeaseExpired { lease });
    }
    Ok(l)
}

pub(crate) fn handle_renew(tx: &mut Tx, well: WellId, lease: LeaseId) -> Result<Answer, Rejection> {
    held(tx, well, lease)?;
    let expires_at = tx.now.plus_ms(tx.state.limits.lease_ttl_ms);
    tx.emit(Event::LeaseRenewed { lease, expires_at });
    Ok(Answer::LeaseRenewed { expires_at })
}

/// Leases whose time is up end; what they covered goes to release (the
/// well reconciles what it may have made) and the group keeps its place.
pub(crate) fn expire_due(tx: &mut Tx) {
    let due: Vec<LeaseId> = tx
        .state
        .leases
        .iter()
        .filter(|(_, l)| l.expires_at <= tx.now)
        .map(|(id, _)| *id)
        .collect();
    for lease in due {
        let Some(l) = tx.state.leases.get(&lease) else {
            continue;
        };
        let (job, group) = (l.job, l.group);
        tx.emit(Event::LeaseEnded {
            lease,
            cause: LeaseEnd::Expired,
        });
        after_failed_lease(tx, job, group, true);
    }
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
        ask_next(tx, job);
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
        end_job(tx, job, Outcome::Failed(Failure::Resource));
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
    retire_if_done(tx, job);
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
