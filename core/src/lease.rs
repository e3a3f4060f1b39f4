//! Leases: the grant of a group to one well, and the queue discipline that
//! decides which group a well gets (rules 4 and 5).

use crate::config::GrantMode;
use crate::event::{Event, LeaseEnd};
use crate::ids::{JobId, LeaseId, ResourceId, TypeId, WellId};
use crate::job::{GroupState, Phase};
use crate::rejection::Rejection;
use crate::resource;
use crate::state::State;
use crate::step::Tx;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    pub job: JobId,
    pub group: u8,
    pub well: WellId,
    pub resources: Vec<ResourceId>,
    /// Unless renewed or fulfilled by then, the lease expires: what it
    /// covers is released and the group goes back to its place.
    pub expires_at: Time,
}

/// One group a well could be given: whose, which, and how many instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub job: JobId,
    pub group: u8,
    pub rtype: TypeId,
    pub needed: u16,
}

/// The groups waiting for instances, oldest job first, each with how many
/// instances it still needs in one lease. This is the queue of every type
/// at once: the queue of type `t` is the subsequence with `rtype == t`.
pub fn waiting(state: &State) -> Vec<Candidate> {
    let mut live: BTreeMap<(JobId, u8), u16> = BTreeMap::new();
    for r in state.resources.values().filter(|r| r.state.is_live()) {
        *live.entry((r.job, r.group)).or_insert(0) += 1;
    }
    let mut out = Vec::new();
    for (&job, entry) in &state.jobs {
        if entry.phase != Phase::Acquiring {
            continue;
        }
        for (index, g) in entry.groups.iter().enumerate() {
            if !matches!(g.state, GroupState::Acquiring { .. }) {
                continue;
            }
            let group = crate::job::group_index(index);
            let missing = g
                .count
                .saturating_sub(live.get(&(job, group)).copied().unwrap_or(0));
            let needed = match state.rules.grant {
                GrantMode::Together if missing == g.count => g.count,
                // Under the production rule a group is either wholly leased
                // or wholly waiting.
                GrantMode::Together => 0,
                GrantMode::OneByOne => missing.min(1),
            };
            if needed > 0 {
                out.push(Candidate {
                    job,
                    group,
                    rtype: g.rtype.clone(),
                    needed,
                });
            }
        }
    }
    out
}

/// How many more instances of `rtype` the well's pool can take by the
/// books: its capacity less everything of the pool the books still count
/// (being created, ready, releasing or held).
pub fn pool_room(state: &State, well: WellId, rtype: &TypeId) -> u16 {
    let Some((_, pool)) = state.wells.get(&well).and_then(|w| w.pool_of(rtype)) else {
        return 0;
    };
    let used = state
        .resources
        .values()
        .filter(|r| r.well == well && pool.types.contains(&r.rtype))
        .count();
    pool.capacity
        .saturating_sub(u16::try_from(used).unwrap_or(u16::MAX))
}

/// The well asks for work, saying how many slots it has free per type.
/// It gets the oldest waiting group of one of those types that fits, never
/// a later group of a type whose oldest does not fit (rule 5), or nothing.
pub(crate) fn handle_request(
    tx: &mut Tx,
    well: WellId,
    free: BTreeMap<TypeId, u16>,
) -> Result<(), Rejection> {
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
        return Ok(());
    }
    let mut blocked: BTreeSet<&TypeId> = BTreeSet::new();
    let mut chosen = None;
    let candidates = waiting(&tx.state);
    for c in &candidates {
        let Some(&reported) = free.get(&c.rtype) else {
            continue;
        };
        if blocked.contains(&c.rtype) {
            continue;
        }
        let room = reported.min(pool_room(&tx.state, well, &c.rtype));
        if c.needed <= room {
            chosen = Some(c);
            break;
        }
        // The oldest of this type does not fit: nobody behind it may take
        // its place.
        blocked.insert(&c.rtype);
        if blocked.len() == free.len() {
            break;
        }
    }
    let Some(c) = chosen else {
        return Ok(());
    };
    if tx.state.next_lease.exhausted(1) || tx.state.next_resource.exhausted(u32::from(c.needed)) {
        return Err(Rejection::LimitExceeded {
            what: "lease or resource ids",
            max: u64::from(u32::MAX),
        });
    }
    let first = tx.state.next_resource.0;
    let resources = (first..first + u32::from(c.needed))
        .map(ResourceId)
        .collect();
    tx.emit(Event::LeaseGranted {
        lease: tx.state.next_lease,
        job: c.job,
        group: c.group,
        rtype: c.rtype.clone(),
        well,
        resources,
        expires_at: tx.now.plus_ms(tx.state.limits.lease_ttl_ms),
    });
    Ok(())
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

pub(crate) fn handle_renew(tx: &mut Tx, well: WellId, lease: LeaseId) -> Result<(), Rejection> {
    held(tx, well, lease)?;
    tx.emit(Event::LeaseRenewed {
        lease,
        expires_at: tx.now.plus_ms(tx.state.limits.lease_ttl_ms),
    });
    Ok(())
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
        resource::after_failed_lease(tx, job, group, true);
    }
}
