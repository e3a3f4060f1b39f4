//! How jobs end: every kind of end releases everything the job holds
//! (rule 6), settles the jobs that depend on it (rule 8), and the job
//! retires once its wells and factory confirm that all of it is gone.

use crate::acquire::begin_acquisition;
use crate::event::{Event, LeaseEnd};
use crate::ids::{JobId, ResourceId};
use crate::job::{Failure, Job, Outcome, WorkerWant};
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
    let held = tx.state.holdings(job);
    for &lease in &held.leases {
        tx.emit(Event::LeaseEnded {
            lease,
            cause: LeaseEnd::JobEnded,
        });
    }
    // Those the ended leases covered are releasing already.
    let ready: Vec<ResourceId> = (held.resources.iter())
        .filter(|&r| tx.state.resources.get(r).map(|r| r.state) == Some(ResourceState::Ready))
        .copied()
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

/// Rule 8: once a job ends, each job that waits for it either is settled
/// (the job ended as it required: on success unless it said otherwise)
/// and starts acquiring when nothing else holds it back, or fails.
/// Returns the jobs that must now end.
fn settle_dependents(tx: &mut Tx, ended: JobId, outcome: Outcome) -> Vec<(JobId, Outcome)> {
    let dependents = (tx.state.index.dependents.get(&ended))
        .cloned()
        .unwrap_or_default();
    let mut failing = Vec::new();
    for job in dependents {
        if tx.state.jobs[&job].runs_on(ended).met_by(outcome) {
            tx.emit(Event::DependencySettled {
                job,
                dependency: ended,
            });
            if tx.state.jobs[&job].may_begin() {
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
    let done = entry.is_ended() && !tx.state.index.holdings.contains_key(&job);
    if done {
        tx.emit(Event::JobRetired { job });
    }
}
