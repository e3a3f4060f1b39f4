//! Indexes over the books, so that no decision scans every job: the queue
//! of each type (groups being acquired, in queue order) and of each target
//! (jobs waiting for a worker), the deadlines of live jobs, the jobs
//! blocked on each job, and what each job holds.
//!
//! They are derived data. `apply` keeps them as it folds each event: the
//! job an event changes is taken out of the job indexes before the fold
//! and put back after it, and leases, resources and workers are entered
//! under their job as they appear and leave. `State::reindex` builds them
//! from the books alone (after a snapshot is read), and the invariant
//! `indexes-match-books` checks that the kept ones equal a fresh build.
//!
//! Every collection shares structure between copies, like the books, so
//! a step's working copy stays O(1) to make.

use crate::event::Event;
use crate::ids::{JobId, LeaseId, ResourceId, TargetId, TypeId, WorkerId};
use crate::job::{GroupState, Job, Phase, WorkerWant};
use crate::state::State;
use crate::time::Time;
use imbl::{OrdMap, OrdSet};
use std::collections::BTreeMap;

/// What a job holds: the books' entries that name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    pub leases: OrdSet<LeaseId>,
    pub resources: OrdSet<ResourceId>,
    pub workers: OrdSet<WorkerId>,
}

impl Holdings {
    fn is_empty(&self) -> bool {
        self.leases.is_empty() && self.resources.is_empty() && self.workers.is_empty()
    }
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Per type, the groups being acquired (their job acquiring, the group
    /// `Acquiring`), in queue order: job id, then group.
    pub(crate) groups: BTreeMap<TypeId, OrdSet<(JobId, u8)>>,
    /// Per target, the acquiring jobs whose worker is queued, oldest first.
    pub(crate) workers_wanted: BTreeMap<TargetId, OrdSet<JobId>>,
    /// The deadline of every job that has not ended.
    pub(crate) deadlines: OrdSet<(Time, JobId)>,
    /// Per job, the blocked jobs that wait for it.
    pub(crate) dependents: OrdMap<JobId, OrdSet<JobId>>,
    /// Per job, what it holds; jobs that hold nothing are absent.
    pub(crate) holdings: OrdMap<JobId, Holdings>,
    /// Per owner, how many jobs are in the books; owners with none are
    /// absent.
    pub(crate) jobs_by_owner: OrdMap<u64, u32>,
}

// Derived from the books, so two states with equal books have equal
// indexes: hashing and printing them would only cost time.
impl std::hash::Hash for Index {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Index { .. }")
    }
}

fn remove_from<K: Ord + Clone, T: Ord + Clone>(
    map: &mut BTreeMap<K, OrdSet<T>>,
    key: &K,
    item: &T,
) {
    if let Some(set) = map.get_mut(key) {
        set.remove(item);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

impl Index {
    /// Enters or takes out the job's entries in the job indexes.
    fn job(&mut self, id: JobId, job: &Job, enter: bool) {
        let owned = self.jobs_by_owner.get(&job.owner).copied().unwrap_or(0);
        let owned = if enter {
            owned.saturating_add(1)
        } else {
            owned.saturating_sub(1)
        };
        if owned == 0 {
            self.jobs_by_owner.remove(&job.owner);
        } else {
            self.jobs_by_owner.insert(job.owner, owned);
        }
        let acquiring = job.phase == Phase::Acquiring;
        if acquiring {
            for (i, g) in job.groups.iter().enumerate() {
                if matches!(g.state, GroupState::Acquiring { .. }) {
                    let entry = (id, crate::job::group_index(i));
                    if enter {
                        self.groups
                            .entry(g.rtype.clone())
                            .or_default()
                            .insert(entry);
                    } else {
                        remove_from(&mut self.groups, &g.rtype, &entry);
                    }
                }
            }
            if job.worker == WorkerWant::Queued {
                if enter {
                    (self.workers_wanted.entry(job.target.clone()))
                        .or_default()
                        .insert(id);
                } else {
                    remove_from(&mut self.workers_wanted, &job.target, &id);
                }
            }
        }
        if !job.is_ended() {
            if enter {
                self.deadlines.insert((job.deadline, id));
            } else {
                self.deadlines.remove(&(job.deadline, id));
            }
        }
        if job.phase == Phase::Blocked {
            for &dependency in &job.depends_on {
                let mut set = self
                    .dependents
                    .get(&dependency)
                    .cloned()
                    .unwrap_or_default();
                if enter {
                    set.insert(id);
                } else {
                    set.remove(&id);
                }
                if set.is_empty() {
                    self.dependents.remove(&dependency);
                } else {
                    self.dependents.insert(dependency, set);
                }
            }
        }
    }

    fn hold(&mut self, job: JobId, change: impl FnOnce(&mut Holdings)) {
        let mut h = self.holdings.get(&job).cloned().unwrap_or_default();
        change(&mut h);
        if h.is_empty() {
            self.holdings.remove(&job);
        } else {
            self.holdings.insert(job, h);
        }
    }

    /// Builds the indexes of `state`'s books.
    #[must_use]
    pub fn build(state: &State) -> Index {
        let mut index = Index::default();
        for (&id, job) in &state.jobs {
            index.job(id, job, true);
        }
        for (&id, l) in &state.leases {
            index.hold(l.job, |h| {
                h.leases.insert(id);
            });
        }
        for (&id, r) in &state.resources {
            index.hold(r.job, |h| {
                h.resources.insert(id);
            });
        }
        for (&id, w) in &state.workers {
            index.hold(w.job, |h| {
                h.workers.insert(id);
            });
        }
        index
    }
}

/// The job whose record an event may change in a way the job indexes see
/// (phase, group states, worker wanted, dependencies, presence): the job
/// it names, or the job of the worker whose lease expires. (A lease grant
/// names its job and changes nothing the indexes see; re-entering it is
/// cheap.)
fn job_changed_by(state: &State, event: &Event) -> Option<JobId> {
    match event {
        Event::WorkerLeaseExpired { worker } => state.workers.get(worker).map(|w| w.job),
        _ => event.job(),
    }
}

/// What an event is about to change in the indexes, noted before it is
/// folded (when what it removes is still in the books).
pub(crate) struct Touch {
    job: Option<JobId>,
    leaves: Option<(JobId, Leaving)>,
}

enum Leaving {
    Lease(LeaseId),
    Resource(ResourceId),
    Worker(WorkerId),
}

impl Touch {
    /// Takes the changed job out of the job indexes.
    pub(crate) fn before(state: &mut State, event: &Event) -> Touch {
        let job = job_changed_by(state, event);
        if let Some(id) = job
            && let Some(j) = state.jobs.get(&id)
        {
            state.index.job(id, j, false);
        }
        let leaves = match event {
            Event::LeaseFulfilled { lease } | Event::LeaseEnded { lease, .. } => {
                (state.leases.get(lease)).map(|l| (l.job, Leaving::Lease(*lease)))
            }
            Event::ResourceDestroyed { resource } => {
                (state.resources.get(resource)).map(|r| (r.job, Leaving::Resource(*resource)))
            }
            Event::WorkerDestroyed { worker } => {
                (state.workers.get(worker)).map(|w| (w.job, Leaving::Worker(*worker)))
            }
            _ => None,
        };
        Touch { job, leaves }
    }

    /// Puts the changed job back and enters what came and went.
    pub(crate) fn after(self, state: &mut State, event: &Event) {
        if let Some(id) = self.job
            && let Some(j) = state.jobs.get(&id)
        {
            state.index.job(id, j, true);
        }
        if let Some((job, leaving)) = self.leaves {
            state.index.hold(job, |h| {
                let gone = match leaving {
                    Leaving::Lease(l) => h.leases.remove(&l).is_some(),
                    Leaving::Resource(r) => h.resources.remove(&r).is_some(),
                    Leaving::Worker(w) => h.workers.remove(&w).is_some(),
                };
                debug_assert!(gone, "what leaves the books was in the index");
            });
        }
        match event {
            Event::LeaseGranted {
                lease,
                job,
                resources,
                ..
            } => state.index.hold(*job, |h| {
                h.leases.insert(*lease);
                h.resources.extend(resources.iter().copied());
            }),
            Event::WorkerLeased { worker, job, .. } => state.index.hold(*job, |h| {
                h.workers.insert(*worker);
            }),
            _ => {}
        }
    }
}

impl State {
    /// Builds the indexes afresh from the books: after a state is read
    /// from a snapshot, or built by hand.
    pub fn reindex(&mut self) {
        self.index = Index::build(self);
    }

    /// What `job` holds (empty once it holds nothing).
    #[must_use]
    pub fn holdings(&self, job: JobId) -> Holdings {
        self.index.holdings.get(&job).cloned().unwrap_or_default()
    }

    /// How many jobs `owner` has in the books.
    #[must_use]
    pub fn jobs_of(&self, owner: u64) -> u32 {
        self.index.jobs_by_owner.get(&owner).copied().unwrap_or(0)
    }
}
