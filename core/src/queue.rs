//! The queues and the room: which groups and jobs wait (rules 4 and 5),
//! and how much more a well's pool or a factory can take by the books.
//! Pure reads of the state, shared by the handlers that grant and by the
//! API and the model that report.

use crate::config::GrantMode;
use crate::ids::{FactoryId, JobId, TargetId, TypeId, WellId};
use crate::state::State;

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
    let mut out: Vec<Candidate> = (state.index.groups.iter())
        .flat_map(|(rtype, groups)| {
            (groups.iter()).filter_map(|&(job, group)| candidate(state, job, group, rtype))
        })
        .collect();
    out.sort_by_key(|c| (c.job, c.group));
    out
}

/// The head of `rtype`'s queue: its oldest group that needs instances.
/// Groups part-way through a lease need none and do not block it.
pub fn head(state: &State, rtype: &TypeId) -> Option<Candidate> {
    (state.index.groups.get(rtype)?.iter())
        .find_map(|&(job, group)| candidate(state, job, group, rtype))
}

/// The types with a group waiting, ordered by where their queue's head
/// stands in the queue of every type.
pub fn waiting_types(state: &State) -> Vec<TypeId> {
    let mut heads: Vec<Candidate> = (state.index.groups.keys())
        .filter_map(|rtype| head(state, rtype))
        .collect();
    heads.sort_by_key(|c| (c.job, c.group));
    heads.into_iter().map(|c| c.rtype).collect()
}

/// A group being acquired, as a candidate for a lease, if it needs any
/// instances in one.
fn candidate(state: &State, job: JobId, group: u8, rtype: &TypeId) -> Option<Candidate> {
    let g = state.jobs.get(&job)?.groups.get(usize::from(group))?;
    let live = (state.index.holdings.get(&job)).map_or(0, |h| {
        (h.resources.iter())
            .filter_map(|r| state.resources.get(r))
            .filter(|r| r.group == group && r.state.is_live())
            .count()
    });
    let missing = g
        .count
        .saturating_sub(u16::try_from(live).unwrap_or(u16::MAX));
    let needed = match state.rules.grant {
        GrantMode::Together if missing == g.count => g.count,
        // Under the production rule a group is either wholly leased or
        // wholly waiting.
        GrantMode::Together => 0,
        GrantMode::OneByOne => missing.min(1),
    };
    (needed > 0).then(|| Candidate {
        job,
        group,
        rtype: rtype.clone(),
        needed,
    })
}

/// The oldest acquiring job of `target` whose worker is queued.
pub fn worker_head(state: &State, target: &TargetId) -> Option<JobId> {
    state.index.workers_wanted.get(target)?.get_min().copied()
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

/// How many more workers for `target` the factory may have by the books.
pub fn factory_room(state: &State, factory: FactoryId, target: &TargetId) -> u16 {
    let Some(&capacity) = state
        .factories
        .get(&factory)
        .and_then(|f| f.capacity.get(target))
    else {
        return 0;
    };
    let used = state
        .workers
        .values()
        .filter(|w| w.factory == factory && &w.target == target)
        .count();
    capacity.saturating_sub(u16::try_from(used).unwrap_or(u16::MAX))
}
