//! The scheduler's state: ids, states and counts, and nothing else; and
//! the lookups `apply` makes in it, which panic on an impossible event.

use crate::config::{Limits, Rules};
use crate::event::Event;
use crate::ids::{FactoryId, JobId, LeaseId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::index::Index;
use crate::job::{Group, Job};
use crate::lease::Lease;
use crate::registry::{Factory, TargetSpec, TypeSpec, Well};
use crate::resource::{Resource, ResourceState};
use crate::worker::Worker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The books of things that grow with the work (jobs, leases, resources,
/// workers): ordered maps that share structure between copies, so that a
/// step's working copy costs O(1) and each change O(log n), however many
/// jobs wait.
pub type Books<K, V> = imbl::OrdMap<K, V>;

/// Everything the scheduler decides from: ids, states and counts, never
/// payloads (scripts, metadata, names live in the store).
///
/// The indexes over the books are not serialised: reading a state builds
/// them again (`State::reindex`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct State {
    pub rules: Rules,
    pub limits: Limits,
    pub types: BTreeMap<TypeId, TypeSpec>,
    pub targets: BTreeMap<TargetId, TargetSpec>,
    pub wells: BTreeMap<WellId, Well>,
    pub factories: BTreeMap<FactoryId, Factory>,
    /// While set, no new lease is granted to wells or factories.
    pub lease_hold: bool,
    pub jobs: Books<JobId, Job>,
    pub leases: Books<LeaseId, Lease>,
    pub resources: Books<ResourceId, Resource>,
    pub workers: Books<WorkerId, Worker>,
    pub next_job: JobId,
    pub next_lease: LeaseId,
    pub next_resource: ResourceId,
    pub next_worker: WorkerId,
    #[serde(skip)]
    pub(crate) index: Index,
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        State::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let mut state = State::deserialize(d)?;
        state.reindex();
        Ok(state)
    }
}

/// A committed event that the state cannot take is a bug in `step` or a
/// corrupt log. Going on would act on a state nobody decided.
pub(crate) fn impossible(event: &Event, why: &str) -> ! {
    panic!("apply: impossible event ({why}): {event:?}")
}

impl State {
    #[must_use]
    pub fn new(rules: Rules, limits: Limits) -> State {
        State {
            rules,
            limits,
            types: BTreeMap::new(),
            targets: BTreeMap::new(),
            wells: BTreeMap::new(),
            factories: BTreeMap::new(),
            lease_hold: false,
            jobs: Books::new(),
            leases: Books::new(),
            resources: Books::new(),
            workers: Books::new(),
            next_job: JobId(1),
            next_lease: LeaseId(1),
            next_resource: ResourceId(1),
            next_worker: WorkerId(1),
            index: Index::default(),
        }
    }

    /// Puts `limits` in force on a state recorded under others (a server
    /// restarted with a new configuration). A resource whose destroy has
    /// already failed as often as the new limit allows is held at its next
    /// failure, as if it had just reached the limit: the count is lowered
    /// to one short of it, so the state keeps its invariants and the
    /// resource is not held without a failure an operator can see.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        let most = limits.destroy_failures_max.saturating_sub(1);
        let releasing: Vec<(ResourceId, u8)> = (self.resources.iter())
            .filter_map(|(id, r)| match r.state {
                ResourceState::Releasing { failures } => Some((*id, failures)),
                _ => None,
            })
            .collect();
        for (id, failures) in releasing {
            if let Some(r) = self.resources.get_mut(&id) {
                r.state = ResourceState::Releasing {
                    failures: failures.min(most),
                };
            }
        }
    }

    // The lookups `apply` makes: each names the event it folds, and a miss
    // is `impossible`.

    pub(crate) fn job_mut(&mut self, job: JobId, event: &Event) -> &mut Job {
        match self.jobs.get_mut(&job) {
            Some(j) => j,
            None => impossible(event, "no such job"),
        }
    }

    pub(crate) fn group_mut(&mut self, job: JobId, group: u8, event: &Event) -> &mut Group {
        match self.job_mut(job, event).groups.get_mut(usize::from(group)) {
            Some(g) => g,
            None => impossible(event, "no such group"),
        }
    }

    pub(crate) fn resource_mut(&mut self, resource: ResourceId, event: &Event) -> &mut Resource {
        match self.resources.get_mut(&resource) {
            Some(r) => r,
            None => impossible(event, "no such resource"),
        }
    }

    pub(crate) fn worker_mut(&mut self, worker: WorkerId, event: &Event) -> &mut Worker {
        match self.workers.get_mut(&worker) {
            Some(w) => w,
            None => impossible(event, "no such worker"),
        }
    }

    pub(crate) fn take_lease(&mut self, lease: LeaseId, event: &Event) -> Lease {
        match self.leases.remove(&lease) {
            Some(l) => l,
            None => impossible(event, "no such lease"),
        }
    }
}
