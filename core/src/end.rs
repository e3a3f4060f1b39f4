//! How jobs end: every kind of end releases everything the job holds
//! (rule 6), settles the jobs that depend on it (rule 8), and the job
//! retires once its wells and factory confirm that all of it is gone.

use crate::acquire::begin_acquisition;
use crate::event::{Event, LeaseEnd};
use crate::ids::{JobId, ResourceId};
use crate::job::{Failure, Job, Outcome, Phase, WorkerWant};
use crate::resource::ResourceState;
use crate::tx::Tx;
use crate::worker::WorkerState;

/// Ends a job and releases everything it holds (rule 6): leases still being
/// created end, ready resources go back to their wells to be destroyed, the
/// worker goes back to its factory. Dependents are settled, and the job
/// retires at once if it held nothing.
pub(crate) fn end_job(tx: &mut Tx, job: JobId, outcome: Outcome) {
    let mut ending = vec![(job, outcome)];
    while let Some((job, outcome)) = ending.pop() {
        if tx.state.jobs.get(&job).is_none_or(Job::is_ended) {
            continue;
        }
        tx.emit(Event::JobEnded { job, outcome });
        release_all(tx, job);
        retire_if_done(tx, job);
        ending.extend(settle_dependents(tx, job, outcome));
    }
}

fn release_all(tx: &mut Tx, job: JobId) {
    let leases: Vec<_> = tx
        .state
        .leases
        .iter()
        .filter(|(_, l)| l.job == job)
        .map(|(id, _)| *id)
        .collect();
    for lease in leases {
        tx.emit(Event::LeaseEnded {
            lease,
            cause: LeaseEnd::JobEnded,
        });
    }
    let ready: Vec<ResourceId> = tx
        .state
        .resources
        .iter()
        .filter(|(_, r)| r.job == job && r.state == ResourceState::Ready)
        .map(|(id, _)| *id)
        .collect();
    for resource in ready {
        tx.emit(Event::ResourceReleased { resource });
    }
    if let WorkerWant::Bound(worker) = tx.state.jobs[&job].worker
        && let Some(w) = tx.state.workers.get(&worker)
        && w.state != WorkerState::Releasing
    {
        tx.emit(Event::WorkerReleased { worker });
    }
}

/// Rule 8: once a job ends, the jobs that wait for it either start
/// acquiring (when nothing else holds them back) or fail with it. Returns
/// the jobs that must now end.
fn settle_dependents(tx: &mut Tx, ended: JobId, outcome: Outcome) -> Vec<(JobId, Outcome)> {
    let dependents: Vec<JobId> = tx
        .state
        .jobs
        .iter()
        .filter(|(_, j)| j.phase == Phase::Blocked && j.depends_on.contains(&ended))
        .map(|(id, _)| *id)
        .collect();
    let mut failing = Vec::new();
    for job in dependents {
        if outcome == Outcome::Succeeded {
            tx.emit(Event::DependencySettled {
                job,
                dependency: ended,
            });
            if tx.state.jobs[&job].depends_on.is_empty() {
                begin_acquisition(tx, job);
            }
        } else {
            failing.push((job, Outcome::Failed(Failure::Dependency)));
        }
    }
    failing
}

/// A job leaves the books once it has ended and its well and factory have
/// confirmed that everything it held is gone.
pub(crate) fn retire_if_done(tx: &mut Tx, job: JobId) {
    let Some(entry) = tx.state.jobs.get(&job) else {
        return;
    };
    let done = entry.is_ended()
        && !tx.state.leases.values().any(|l| l.job == job)
        && !tx.state.resources.values().any(|r| r.job == job)
        && !tx.state.workers.values().any(|w| w.job == job);
    if done {
        tx.emit(Event::JobRetired { job });
    }
}
