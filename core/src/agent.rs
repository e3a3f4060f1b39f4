//! An agent's inputs: check in, start the job, finish it; and when an
//! agent must stop.

use crate::answer::Answer;
use crate::end::end_job;
use crate::event::Event;
use crate::ids::{JobId, ResourceId, TypeId, WorkerId};
use crate::job::{Failure, Outcome, Phase, WorkerWant};
use crate::rejection::Rejection;
use crate::resource::ResourceState;
use crate::state::State;
use crate::time::Time;
use crate::tx::{Tx, known_worker};
use crate::worker::{self, WorkerState};
use std::collections::{BTreeMap, BTreeSet};

/// The agent on the worker checked in.
pub(crate) fn handle_online(tx: &mut Tx, worker: WorkerId) -> Result<(), Rejection> {
    let w = known_worker(tx, worker)?;
    match w.state {
        WorkerState::Created => {
            tx.emit(Event::WorkerOnline { worker });
            Ok(())
        }
        WorkerState::Online => Err(Rejection::Duplicate {
            what: format!("check-in of {worker}"),
        }),
        WorkerState::Leased { .. } | WorkerState::Releasing => Err(Rejection::WrongState {
            what: worker.to_string(),
            state: w.state.name(),
            wanted: "created",
        }),
    }
}

/// The agent on `worker` says the job's tasks have begun.
pub(crate) fn handle_start(tx: &mut Tx, worker: WorkerId) -> Result<Answer, Rejection> {
    let job = current_worker(tx, worker)?;
    let entry = &tx.state.jobs[&job];
    match entry.phase {
        Phase::Acquiring if entry.all_groups_ready() => {
            let deadline = entry.deadline;
            tx.emit(Event::JobStarted { job });
            Ok(Answer::Started { job, deadline })
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
    let w = known_worker(tx, worker)?;
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

/// Why an agent must stop its job and let its worker go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stop {
    /// The job has ended: finished, cancelled, timed out or failed.
    JobEnded(Outcome),
    /// The worker is released or gone while its job has not ended (its
    /// factory lost it, or it left the books): nobody will hear its job.
    WorkerReleased,
}

impl Stop {
    /// How the job ended, when that is why.
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Stop::JobEnded(outcome) => Some(*outcome),
            Stop::WorkerReleased => None,
        }
    }
}

impl State {
    /// Whether the agent on `worker` must stop now, and why; `None` while
    /// its job may go on. A job that has ended says so with its outcome,
    /// even when its worker is being released too.
    #[must_use]
    pub fn agent_must_stop(&self, worker: WorkerId) -> Option<Stop> {
        let Some(w) = self.workers.get(&worker) else {
            return Some(Stop::WorkerReleased);
        };
        if let Some(Phase::Ended(outcome)) = self.jobs.get(&w.job).map(|j| j.phase) {
            return Some(Stop::JobEnded(outcome));
        }
        match w.state.want() {
            worker::Want::Destroy => Some(Stop::WorkerReleased),
            worker::Want::Keep => None,
        }
    }

    /// The job bound to `worker` and its deadline, while that job runs: what
    /// the agent on the worker may start, report output for and finish.
    #[must_use]
    pub fn running_job_of(&self, worker: WorkerId) -> Option<(JobId, Time)> {
        let w = self.workers.get(&worker)?;
        let j = self.jobs.get(&w.job)?;
        (j.phase == Phase::Running).then_some((w.job, j.deadline))
    }

    /// The jobs that run now.
    #[must_use]
    pub fn running_jobs(&self) -> BTreeSet<JobId> {
        (self.jobs.iter())
            .filter(|(_, j)| j.phase == Phase::Running)
            .map(|(id, _)| *id)
            .collect()
    }

    /// What a running job may read with its token: its ready resources, by
    /// type, in id order. `None` once it does not run.
    #[must_use]
    pub fn readable_resources(&self, job: JobId) -> Option<BTreeMap<TypeId, Vec<ResourceId>>> {
        let running = self
            .jobs
            .get(&job)
            .is_some_and(|j| j.phase == Phase::Running);
        if !running {
            return None;
        }
        let mut by_type: BTreeMap<TypeId, Vec<ResourceId>> = BTreeMap::new();
        for id in &self.holdings(job).resources {
            if let Some(r) = self.resources.get(id)
                && r.state == ResourceState::Ready
            {
                by_type.entry(r.rtype.clone()).or_default().push(*id);
            }
        }
        Some(by_type)
    }
}
