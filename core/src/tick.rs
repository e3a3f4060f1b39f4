//! Time: what falls due at `now` (job timeouts, lease expiry, worker lease
//! expiry), and the next instant at which something will.

use crate::ids::JobId;
use crate::state::State;
use crate::time::Time;
use crate::tx::Tx;
use crate::worker::WorkerState;
use crate::{end, factory, job, well};

/// Whatever is due at `now`. Job timeouts go first: a job that times out
/// releases its leases as part of ending, rather than having them expire
/// and be requeued first.
pub(crate) fn handle_tick(tx: &mut Tx) {
    // In job order, as a dependency ends before the jobs that wait for it.
    let mut due: Vec<JobId> = (tx.state.index.deadlines.iter())
        .take_while(|(deadline, _)| *deadline <= tx.now)
        .map(|&(_, job)| job)
        .collect();
    due.sort_unstable();
    for job in due {
        // An earlier timeout in this loop may have ended it as a dependent,
        // and it may even have retired already.
        if tx.state.jobs.get(&job).is_some_and(|j| !j.is_ended()) {
            end::end_job(tx, job, job::Outcome::TimedOut);
        }
    }
    well::expire_due(tx);
    factory::expire_due(tx);
}

/// The next time at which a `Tick` would change something, if any.
#[must_use]
pub fn next_deadline(state: &State) -> Option<Time> {
    let jobs = state
        .index
        .deadlines
        .get_min()
        .map(|&(deadline, _)| deadline);
    let leases = state.leases.values().map(|l| l.expires_at);
    let workers = state.workers.values().filter_map(|w| match w.state {
        WorkerState::Leased { expires_at } => Some(expires_at),
        WorkerState::Created | WorkerState::Online | WorkerState::Releasing => None,
    });
    jobs.into_iter().chain(leases).chain(workers).min()
}
