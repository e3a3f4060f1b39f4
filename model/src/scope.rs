//! Scopes: the bounded configurations the model explores, and the
//! registration inputs that set them up. The small scope holds exactly the
//! shapes of DESIGN.md's three counterexamples, so each mutant deadlocks
//! there. The larger scopes add a job on a second target and a second pool
//! for `c`; that spare capacity lets the shared-pool mutant get away with
//! it (a deadlock needs scarcity), which is why the mutants are pinned on
//! the small scope.

use aquifer_core::{
    FactoryId, Input, JobId, JobSpec, Outcome, Pool, PoolSharing, Request, RunOn, State, TargetId,
    TargetSpec, TypeId, TypeSpec, WellId,
};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeName {
    Small,
    Standard,
    Deep,
}

/// One job of the scope: its target, its requests, the jobs (by index in
/// the scope, which is also submission order) it depends on with how each
/// must end, and whether its submitter uploads inputs after submitting.
#[derive(Clone, Debug)]
pub struct JobDef {
    pub target: &'static str,
    pub requests: Vec<(&'static str, u16)>,
    pub depends_on: Vec<(usize, RunOn)>,
    pub timeout_ms: u64,
    pub awaits_inputs: bool,
}

#[derive(Clone, Debug)]
pub struct Scope {
    pub name: ScopeName,
    pub types: Vec<(&'static str, u16)>,
    /// Per well, its pools as (types, capacity).
    pub wells: Vec<Vec<(Vec<&'static str>, u16)>>,
    /// Per factory, its capacity per target.
    pub factories: Vec<Vec<(&'static str, u16)>>,
    pub jobs: Vec<JobDef>,
    /// How many faults one run may inject (with `--faults all`).
    pub fault_budget: u8,
    /// Wells (by index) that are not registered at the start: an
    /// administrator registers each at some point of the run, possibly
    /// after jobs that need it are queued.
    pub late_wells: Vec<usize>,
    /// Failed destructions after which a resource is held for an
    /// operator: 1 lets a scope with a fault budget of 1 reach `held`.
    pub destroy_failures_max: u8,
}

fn job(target: &'static str, requests: &[(&'static str, u16)], timeout_ms: u64) -> JobDef {
    JobDef {
        target,
        requests: requests.to_vec(),
        depends_on: Vec::new(),
        timeout_ms,
        awaits_inputs: false,
    }
}

impl Scope {
    /// `sharing` decides whether types `a` and `c` of the first well share
    /// one pool (the mutant of rule 7) or have one each.
    #[must_use]
    pub fn new(name: ScopeName, sharing: PoolSharing) -> Scope {
        let first_well = match sharing {
            PoolSharing::PerType => vec![(vec!["a"], 1), (vec!["c"], 1)],
            PoolSharing::Shared => vec![(vec!["a", "c"], 1)],
        };
        let types = vec![("a", 1), ("b", 2), ("c", 1)];
        // J1 and J3 overlap on b and, through the first well, on a and c:
        // the shape of the shared-pool and one-by-one counterexamples of
        // DESIGN.md. J2 waits for J1 and so asks later than the younger
        // J3: with FIFO by submission that is the only way an older job
        // can ask after a younger one, which the parallel mutant needs to
        // deadlock (J2 takes the worker, J3 holds c).
        let j1 = job("t", &[("a", 1), ("b", 2)], 100);
        // The same deadline as J1: a dependency and its dependent may time
        // out in the same instant.
        let mut j2 = job("t", &[("c", 1)], 100);
        j2.depends_on = vec![(0, RunOn::Success)];
        let j3 = job("t", &[("c", 1), ("b", 2)], 120);
        let second_well = vec![(vec!["b"], 2), (vec!["c"], 1)];
        match name {
            ScopeName::Small => Scope {
                name,
                types,
                wells: vec![first_well, vec![(vec!["b"], 2)]],
                factories: vec![vec![("t", 1)]],
                jobs: vec![j1, j2, j3],
                fault_budget: 2,
                late_wells: Vec::new(),
                destroy_failures_max: 2,
            },
            ScopeName::Standard => Scope {
                name,
                types,
                wells: vec![first_well, second_well],
                factories: vec![vec![("t", 1), ("u", 1)]],
                // J4's one b beside J1's and J3's two: groups of one type
                // of different sizes, where a younger, smaller group
                // could overtake an older one that does not fit. J4's
                // inputs arrive at any point, or never (it times out).
                jobs: vec![j1, j2, j3, {
                    let mut j4 = job("u", &[("b", 1), ("c", 1)], 130);
                    j4.awaits_inputs = true;
                    j4
                }],
                fault_budget: 1,
                // The only well of b comes after the jobs may be queued.
                late_wells: vec![1],
                destroy_failures_max: 1,
            },
            ScopeName::Deep => Scope {
                name,
                types,
                wells: vec![first_well, second_well],
                factories: vec![vec![("t", 1), ("u", 1)]],
                // J5 runs only if J4 does not succeed, and has inputs.
                jobs: vec![j1, j2, j3, job("u", &[("a", 1), ("c", 1)], 130), {
                    let mut j5 = job("u", &[("b", 1)], 140);
                    j5.depends_on = vec![(3, RunOn::Failure)];
                    j5.awaits_inputs = true;
                    j5
                }],
                // With 2, five jobs did not finish in 30 minutes.
                fault_budget: 1,
                late_wells: Vec::new(),
                destroy_failures_max: 1,
            },
        }
    }

    #[must_use]
    pub fn targets(&self) -> BTreeSet<&'static str> {
        self.factories
            .iter()
            .flatten()
            .map(|(t, _)| *t)
            .chain(self.jobs.iter().map(|j| j.target))
            .collect()
    }

    /// The jobs `job` depends on, with how each must end, as the scope
    /// submits it.
    #[must_use]
    pub fn dependencies(&self, job: JobId) -> Vec<(JobId, RunOn)> {
        (self.def(job))
            .map(|d| {
                d.depends_on
                    .iter()
                    .map(|&(i, on)| (job_id(i), on))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `job`'s submitter uploads inputs after submitting it.
    #[must_use]
    pub fn awaits_inputs(&self, job: JobId) -> bool {
        self.def(job).is_some_and(|d| d.awaits_inputs)
    }

    fn def(&self, job: JobId) -> Option<&JobDef> {
        self.jobs
            .get(usize::try_from(job.0).unwrap_or(0).wrapping_sub(1))
    }

    /// Whether some job of the scope depends on `job`.
    #[must_use]
    pub fn is_dependency(&self, job: JobId) -> bool {
        self.jobs
            .iter()
            .flat_map(|d| &d.depends_on)
            .any(|&(d, _)| job_id(d) == job)
    }

    /// The administrator's inputs that register the scope.
    #[must_use]
    pub fn registration(&self) -> Vec<Input> {
        let mut out = Vec::new();
        for (name, max) in &self.types {
            out.push(Input::DefineType {
                rtype: TypeId::new(*name),
                spec: TypeSpec {
                    max_per_job: *max,
                    privilege: None,
                },
            });
        }
        for target in self.targets() {
            out.push(Input::DefineTarget {
                target: TargetId::new(target),
                spec: TargetSpec { privilege: None },
            });
        }
        for i in 0..self.wells.len() {
            if !self.late_wells.contains(&i) {
                out.push(self.register_well(i));
            }
        }
        for (i, capacity) in self.factories.iter().enumerate() {
            out.push(Input::RegisterFactory {
                factory: factory_id(i),
                capacity: capacity
                    .iter()
                    .map(|(t, n)| (TargetId::new(*t), *n))
                    .collect::<BTreeMap<_, _>>(),
            });
        }
        out
    }

    /// The registration of the scope's well `index`.
    #[must_use]
    pub fn register_well(&self, index: usize) -> Input {
        Input::RegisterWell {
            well: well_id(index),
            pools: self.wells[index]
                .iter()
                .map(|(types, capacity)| Pool {
                    types: types.iter().map(|t| TypeId::new(*t)).collect(),
                    capacity: *capacity,
                })
                .collect(),
        }
    }

    /// Whether two jobs of the scope ask for one type in groups of
    /// different sizes.
    #[must_use]
    pub fn has_mixed_sizes(&self) -> bool {
        let mut sizes: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
        for j in &self.jobs {
            for (t, n) in &j.requests {
                sizes.entry(t).or_default().insert(*n);
            }
        }
        sizes.values().any(|s| s.len() > 1)
    }

    /// The submission of the scope's job `index`. Jobs are submitted in
    /// index order, so job `index` gets id `index + 1`.
    #[must_use]
    pub fn submission(&self, index: usize, retired: &BTreeMap<JobId, Outcome>) -> Input {
        let def = &self.jobs[index];
        Input::SubmitJob(JobSpec {
            target: TargetId::new(def.target),
            requests: def
                .requests
                .iter()
                .map(|(t, count)| Request {
                    rtype: TypeId::new(*t),
                    count: *count,
                })
                .collect(),
            timeout_ms: def.timeout_ms,
            depends_on: def.depends_on.iter().map(|&(d, _)| job_id(d)).collect(),
            run_on: (def.depends_on.iter())
                .filter(|(_, on)| *on != RunOn::Success)
                .map(|&(d, on)| (job_id(d), on))
                .collect(),
            awaits_inputs: def.awaits_inputs,
            retired_outcomes: def
                .depends_on
                .iter()
                .filter_map(|&(d, _)| retired.get(&job_id(d)).map(|o| (job_id(d), *o)))
                .collect(),
            privileges: BTreeSet::new(),
            owner: 0,
        })
    }
}

#[must_use]
pub fn well_id(index: usize) -> WellId {
    WellId(u32::try_from(index + 1).expect("small scope"))
}

#[must_use]
pub fn factory_id(index: usize) -> FactoryId {
    FactoryId(u32::try_from(index + 1).expect("small scope"))
}

#[must_use]
pub fn job_id(index: usize) -> JobId {
    JobId(u32::try_from(index + 1).expect("small scope"))
}

impl Scope {
    /// No pool of the scope's wells holds more than its capacity, and no
    /// factory more workers of a target than its capacity, counted from
    /// the scope rather than the core's own registry.
    #[must_use]
    pub fn pools_within_capacity(&self, core: &State) -> bool {
        let factories = self.factories.iter().enumerate().all(|(i, targets)| {
            targets.iter().all(|(target, capacity)| {
                let used = (core.workers.values())
                    .filter(|w| w.factory == factory_id(i) && w.target.as_str() == *target)
                    .count();
                used <= usize::from(*capacity)
            })
        });
        factories
            && self.wells.iter().enumerate().all(|(i, pools)| {
                pools.iter().all(|(types, capacity)| {
                    let used = core
                        .resources
                        .values()
                        .filter(|r| r.well == well_id(i) && types.contains(&r.rtype.as_str()))
                        .count();
                    used <= usize::from(*capacity)
                })
            })
    }
}
