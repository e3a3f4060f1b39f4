//! The scheduler's state: ids, states and counts, and nothing else; and
//! the lookups `apply` makes in it, which panic on an impossible event.

use crate::config::{Limits, Rules};
use crate::event::Event;
use crate::ids::{FactoryId, JobId, LeaseId, ResourceId, TargetId, TypeId, WellId, WorkerId};
use crate::job::{Group, Job};
use crate::lease::Lease;
use crate::registry::{Factory, TargetSpec, TypeSpec, Well};
use crate::resource::Resource;
use crate::worker::Worker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the scheduler decides from: ids, states and counts, never
/// payloads (scripts, metadata, names live in the store).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct State {
    pub rules: Rules,
    pub limits: Limits,
    pub types: BTreeMap<TypeId, TypeSpec>,
    pub targets: BTreeMap<TargetId, TargetSpec>,
    pub wells: BTreeMap<WellId, Well>,
    pub factories: BTreeMap<FactoryId, Factory>,
    /// While set, no new lease is granted to wells or factories.
    pub lease_hold: bool,
    pub jobs: BTreeMap<JobId, Job>,
    pub leases: BTreeMap<LeaseId, Lease>,
    pub resources: BTreeMap<ResourceId, Resource>,
    pub workers: BTreeMap<WorkerId, Worker>,
    pub next_job: JobId,
    pub next_lease: LeaseId,
    pub next_resource: ResourceId,
    pub next_worker: WorkerId,
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
            jobs: BTreeMap::new(),
            leases: BTreeMap::new(),
            resources: BTreeMap::new(),
            workers: BTreeMap::new(),
            next_job: JobId(1),
            next_lease: LeaseId(1),
            next_resource: ResourceId(1),
            next_worker: WorkerId(1),
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
