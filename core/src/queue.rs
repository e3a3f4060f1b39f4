//! The queues and the room: which groups and jobs wait (rules 4 and 5),
//! and how much more a well's pool or a factory can take by the books.
//! Pure reads of the state, shared by the handlers that grant and by the
//! API and the model that report.

use crate::config::GrantMode;
use crate::ids::{FactoryId, JobId, TargetId, TypeId, WellId};
use crate::job::{GroupState, Phase};
use crate::state::State;
use std::collections::BTreeMap;

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
