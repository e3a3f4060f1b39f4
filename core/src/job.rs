//! Jobs: what they ask for, where they are in their acquisition order, and
//! how they end. Submission, cancellation, start and finish are handled
//! here, and so is the release of everything a job holds when it ends.

use crate::config::AcquisitionPolicy;
use crate::end::end_job;
use crate::event::Event;
use crate::ids::{JobId, Privilege, TargetId, TypeId, WorkerId};
use crate::rejection::Rejection;
use crate::step::Tx;
use crate::time::Time;
use crate::worker::WorkerState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One resource request as a user writes it. Requests of the same type add
/// up into one group (rule 1); their names live in the store, not here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Request {
    pub rtype: TypeId,
    pub count: u16,
}

/// What a submission carries into the core. The owner's privileges are
/// checked against the target and types and then forgotten.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobSpec {
    pub target: TargetId,
    pub requests: Vec<Request>,
    pub timeout_ms: u64,
    pub depends_on: BTreeSet<JobId>,
    /// The outcomes of dependencies that have already left the books, as
    /// the store recorded them: the core forgets retired jobs, the caller
    /// does not.
    pub retired_outcomes: BTreeMap<JobId, Outcome>,
    pub privileges: BTreeSet<Privilege>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Job {
    pub target: TargetId,
    /// One group per type, in rank order: the acquisition order.
    pub groups: Vec<Group>,
    pub worker: WorkerWant,
    pub phase: Phase,
    /// Counted from submission; wells get it as a hint for token lifetimes.
    pub deadline: Time,
    /// The jobs this one still waits for (rule 8). Emptied as they end.
    pub depends_on: BTreeSet<JobId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Group {
    pub rtype: TypeId,
    pub count: u16,
    pub state: GroupState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupState {
    /// Not asked for yet.
    Idle,
    /// In the queue of its type (its place is its job's id), or being
    /// created under a lease. `failures` counts failed and expired leases.
    Acquiring { failures: u8 },
    /// Every instance is ready.
    Ready,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkerWant {
    Idle,
    Queued,
    Bound(WorkerId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for the jobs it depends on; holds and asks for nothing.
    Blocked,
    /// Acquiring resources, then a worker, then waiting for the agent.
    Acquiring,
    Running,
    Ended(Outcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed(Failure),
    Cancelled,
    TimedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A task exited non-zero (the agent said so).
    Tasks,
    /// A well could not create a resource and said retrying would not help,
    /// or the group failed more often than the limit allows.
    Resource,
    /// The worker went away.
    WorkerLost,
    /// A job this one depends on did not succeed.
    Dependency,
}

impl Job {
    #[must_use]
    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    /// The first group not yet ready: under the ordered policy, the only one
    /// that may be outstanding.
    #[must_use]
    pub fn first_unready(&self) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.state != GroupState::Ready)
    }

    #[must_use]
    pub fn all_groups_ready(&self) -> bool {
        self.first_unready().is_none()
    }
}

/// Groups the requests by type in rank order, or says why it cannot.
fn groups_of(tx: &Tx, spec: &JobSpec) -> Result<Vec<Group>, Rejection> {
    let mut counts: BTreeMap<TypeId, u16> = BTreeMap::new();
    for request in &spec.requests {
        let type_spec =
            tx.state
                .types
                .get(&request.rtype)
                .ok_or_else(|| Rejection::UnknownType {
                    rtype: request.rtype.clone(),
                })?;
        if let Some(needed) = &type_spec.privilege
            && !spec.privileges.contains(needed)
        {
            return Err(Rejection::PrivilegeMissing {
                privilege: needed.clone(),
                what: format!("resource type {}", request.rtype),
            });
        }
        let total = counts.entry(request.rtype.clone()).or_insert(0);
        *total = total.saturating_add(request.count);
        if request.count == 0 || *total > type_spec.max_per_job {
            return Err(Rejection::BadCount {
                rtype: request.rtype.clone(),
                count: *total,
                max: type_spec.max_per_job,
            });
        }
    }
    if counts.len() > usize::from(tx.state.limits.groups_per_job_max) {
        return Err(Rejection::LimitExceeded {
            what: "resource types per job",
            max: u64::from(tx.state.limits.groups_per_job_max),
        });
    }
    Ok(counts
        .into_iter()
        .map(|(rtype, count)| Group {
            rtype,
            count,
            state: GroupState::Idle,
        })
        .collect())
}

pub(crate) fn handle_submit(tx: &mut Tx, spec: JobSpec) -> Result<(), Rejection> {
    let limits = tx.state.limits;
    let target = tx
        .state
        .targets
        .get(&spec.target)
        .ok_or_else(|| Rejection::UnknownTarget {
            target: spec.target.clone(),
        })?;
    if let Some(needed) = &target.privilege
        && !spec.privileges.contains(needed)
    {
        return Err(Rejection::PrivilegeMissing {
            privilege: needed.clone(),
            what: format!("target {}", spec.target),
        });
    }
    let groups = groups_of(tx, &spec)?;
    if spec.timeout_ms == 0 || spec.timeout_ms > limits.job_timeout_max_ms {
        return Err(Rejection::LimitExceeded {
            what: "job timeout (ms), which must also be above 0",
            max: limits.job_timeout_max_ms,
        });
    }
    if spec.depends_on.len() > usize::from(limits.depends_per_job_max) {
        return Err(Rejection::LimitExceeded {
            what: "dependencies per job",
            max: u64::from(limits.depends_per_job_max),
        });
    }
    let known = |d: &JobId| {
        tx.state.jobs.contains_key(d)
            || (*d < tx.state.next_job && spec.retired_outcomes.contains_key(d))
    };
    if let Some(dep) = spec.depends_on.iter().find(|d| !known(d)) {
        return Err(Rejection::UnknownJob { job: *dep });
    }
    if tx.state.next_job.exhausted(1) {
        return Err(Rejection::LimitExceeded {
            what: "job ids",
            max: u64::from(u32::MAX),
        });
    }
    if tx.state.jobs.len() >= limits.jobs_max as usize {
        return Err(Rejection::LimitExceeded {
            what: "jobs in the scheduler at once",
            max: u64::from(limits.jobs_max),
        });
    }

    let job = tx.state.next_job;
    // Dependencies that have already ended are settled now; the rest are
    // settled when they end (see `settle_dependents`).
    let mut waiting_on = BTreeSet::new();
    let mut failed_dependency = false;
    for dep in &spec.depends_on {
        let phase = match tx.state.jobs.get(dep) {
            Some(j) => j.phase,
            None => Phase::Ended(spec.retired_outcomes[dep]),
        };
        match phase {
            Phase::Ended(Outcome::Succeeded) => {}
            Phase::Ended(_) => failed_dependency = true,
            Phase::Blocked | Phase::Acquiring | Phase::Running => {
                waiting_on.insert(*dep);
            }
        }
    }
    tx.emit(Event::JobSubmitted {
        job,
        target: spec.target,
        groups: groups.iter().map(|g| (g.rtype.clone(), g.count)).collect(),
        deadline: tx.now.plus_ms(spec.timeout_ms),
        depends_on: waiting_on.clone(),
    });
    if failed_dependency {
        end_job(tx, job, Outcome::Failed(Failure::Dependency));
    } else if waiting_on.is_empty() {
        begin_acquisition(tx, job);
    }
    Ok(())
}

/// Starts a job's acquisition: under the ordered policy the first group (or
/// the worker, when the job needs no resources); under the parallel mutant,
/// everything at once.
pub(crate) fn begin_acquisition(tx: &mut Tx, job: JobId) {
    tx.emit(Event::AcquisitionBegan { job });
    match tx.state.rules.acquisition {
        AcquisitionPolicy::Ordered => ask_next(tx, job),
        AcquisitionPolicy::Parallel => {
            for group in 0..tx.state.jobs[&job].groups.len() {
                tx.emit(Event::GroupQueued {
                    job,
                    group: group_index(group),
                });
            }
            tx.emit(Event::WorkerQueued { job });
        }
    }
}

/// Under the ordered policy, asks for the first group not yet ready, or for
/// the worker once every group is. Rule 2 and rule 3 live here.
pub(crate) fn ask_next(tx: &mut Tx, job: JobId) {
    let entry = &tx.state.jobs[&job];
    match entry.first_unready() {
        Some(group) => {
            if entry.groups[group].state == GroupState::Idle {
                tx.emit(Event::GroupQueued {
                    job,
                    group: group_index(group),
                });
            }
        }
        None => {
            if entry.worker == WorkerWant::Idle {
                tx.emit(Event::WorkerQueued { job });
            }
        }
    }
}

/// Group indices are bounded by `Limits::groups_per_job_max` (a `u8`).
pub(crate) fn group_index(group: usize) -> u8 {
    u8::try_from(group).expect("groups per job are limited to a u8")
}

pub(crate) fn handle_cancel(tx: &mut Tx, job: JobId) -> Result<(), Rejection> {
    live_job(tx, job)?;
    end_job(tx, job, Outcome::Cancelled);
    Ok(())
}

/// The agent on `worker` says the job's tasks have begun.
pub(crate) fn handle_start(tx: &mut Tx, worker: WorkerId) -> Result<(), Rejection> {
    let job = current_worker(tx, worker)?;
    let entry = &tx.state.jobs[&job];
    match entry.phase {
        Phase::Acquiring if entry.all_groups_ready() => {
            tx.emit(Event::JobStarted { job });
            Ok(())
        }
        Phase::Running => Err(Rejection::Duplicate {
            what: format!("start of {job}"),
        }),
        Phase::Blocked | Phase::Acquiring | Phase::Ended(_) => Err(Rejection::JobNotReady { job }),
    }
}

/// The agent on `worker` says the job's tasks are done.
pub(crate) fn handle_finish(
    tx: &mut Tx,
    worker: WorkerId,
    succeeded: bool,
) -> Result<(), Rejection> {
    let job = current_worker(tx, worker)?;
    if tx.state.jobs[&job].phase != Phase::Running {
        return Err(Rejection::JobNotRunning { job });
    }
    let outcome = if succeeded {
        Outcome::Succeeded
    } else {
        Outcome::Failed(Failure::Tasks)
    };
    end_job(tx, job, outcome);
    Ok(())
}

/// The job of an agent's worker, if that worker is online and still the
/// one its job holds: a worker that was replaced (its lease expired and the
/// job got another) must not start or finish the job. The job is in the
/// books while its worker is (invariant `worker-has-job`).
fn current_worker(tx: &Tx, worker: WorkerId) -> Result<JobId, Rejection> {
    let w = crate::worker::known_worker(tx, worker)?;
    if w.state != WorkerState::Online {
        return Err(Rejection::WrongState {
            what: worker.to_string(),
            state: w.state.name(),
            wanted: "online",
        });
    }
    if tx.state.jobs[&w.job].worker != WorkerWant::Bound(worker) {
        return Err(Rejection::NotYours {
            what: format!("{} (it has another worker)", w.job),
        });
    }
    Ok(w.job)
}

/// A job that is in the books and has not ended.
pub(crate) fn live_job(tx: &Tx, job: JobId) -> Result<&Job, Rejection> {
    let Some(entry) = tx.state.jobs.get(&job) else {
        return Err(if job < tx.state.next_job {
            Rejection::Gone {
                what: job.to_string(),
            }
        } else {
            Rejection::UnknownJob { job }
        });
    };
    if let Phase::Ended(outcome) = entry.phase {
        return Err(Rejection::JobEnded { job, outcome });
    }
    Ok(entry)
}
