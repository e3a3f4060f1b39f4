//! Time: what falls due at `now` (job timeouts, lease expiry, worker lease
//! expiry), and the next instant at which something will.

use crate::state::State;
use crate::time::Time;
use crate::tx::Tx;
use crate::worker::WorkerState;
use crate::{end, factory, job, well};

/// Whatever is due at `now`. Job timeouts go first: a job that times out
/// releases its leases as part of ending, rather than having them expire
/// and be requeued first.
pub(crate) fn handle_tick(tx: &mut Tx) {
    let due: Vec<_> = tx
        .state
        .jobs
        .iter()
        .filter(|(_, j)| !j.is_ended() && j.deadline <= tx.now)
        .map(|(id, _)| *id)
        .collect();
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
        .jobs
        .values()
        .filter(|j| !j.is_ended())
        .map(|j| j.deadline);
    let leases = state.leases.values().map(|l| l.expires_at);
    let workers = state.workers.values().filter_map(|w| match w.state {
        WorkerState::Leased { expires_at } => Some(expires_at),
        WorkerState::Created | WorkerState::Online | WorkerState::Releasing => None,
    });
    jobs.chain(leases).chain(workers).min()
}
