//! A user's inputs: submit a job (its requests grouped into its
//! acquisition order, its dependencies settled or waited for) and cancel
//! one.

use crate::acquire::begin_acquisition;
use crate::answer::Answer;
use crate::end::end_job;
use crate::event::Event;
use crate::ids::{JobId, TypeId};
use crate::job::{Failure, Group, GroupState, Job, JobSpec, Outcome, Phase, RunOn};
use crate::rejection::Rejection;
use crate::tx::Tx;
use std::collections::{BTreeMap, BTreeSet};

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

pub(crate) fn handle_submit(tx: &mut Tx, spec: JobSpec) -> Result<Answer, Rejection> {
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
    // The core forgets a job when it retires; the caller remembers how it
    // ended. A dependency that retired after the caller looked comes
    // without its outcome: the caller looks again and resubmits.
    for &job in &spec.depends_on {
        if job >= tx.state.next_job {
            return Err(Rejection::UnknownJob { job });
        }
        if !tx.state.jobs.contains_key(&job) && !spec.retired_outcomes.contains_key(&job) {
            return Err(Rejection::DependencyRetired { job });
        }
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
    if tx.state.jobs_of(spec.owner) >= limits.jobs_per_owner_max {
        return Err(Rejection::LimitExceeded {
            what: "jobs of one owner in the scheduler at once",
            max: u64::from(limits.jobs_per_owner_max),
        });
    }

    if let Some(stray) = spec.run_on.keys().find(|j| !spec.depends_on.contains(j)) {
        return Err(Rejection::UnknownJob { job: *stray });
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
            Phase::Ended(outcome) => {
                let run_on = spec.run_on.get(dep).copied().unwrap_or_default();
                failed_dependency |= !run_on.met_by(outcome);
            }
            Phase::Blocked | Phase::Acquiring | Phase::Running => {
                waiting_on.insert(*dep);
            }
        }
    }
    let run_on: BTreeMap<JobId, RunOn> = (spec.run_on.into_iter())
        .filter(|(dep, on)| waiting_on.contains(dep) && *on != RunOn::Success)
        .collect();
    tx.emit(Event::JobSubmitted {
        job,
        target: spec.target,
        groups: groups.iter().map(|g| (g.rtype.clone(), g.count)).collect(),
        deadline: tx.now.plus_ms(spec.timeout_ms),
        depends_on: waiting_on,
        run_on,
        awaits_inputs: spec.awaits_inputs,
        owner: spec.owner,
    });
    if failed_dependency {
        end_job(tx, job, Outcome::Failed(Failure::Dependency));
    } else if tx.state.jobs[&job].may_begin() {
        begin_acquisition(tx, job);
    }
    Ok(Answer::Submitted { job })
}

/// The submitter's files are all whole: the job may begin once its
/// dependencies allow (rule 8 holds it back as before).
pub(crate) fn handle_inputs_complete(tx: &mut Tx, job: JobId) -> Result<(), Rejection> {
    if !live_job(tx, job)?.awaits_inputs {
        return Err(Rejection::NotAwaitingInputs { job });
    }
    tx.emit(Event::InputsArrived { job });
    if tx.state.jobs[&job].may_begin() {
        begin_acquisition(tx, job);
    }
    Ok(())
}

pub(crate) fn handle_cancel(tx: &mut Tx, job: JobId) -> Result<(), Rejection> {
    live_job(tx, job)?;
    end_job(tx, job, Outcome::Cancelled);
    Ok(())
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
