//! Acquisition: a job asks for its groups one at a time in rank order,
//! and for its worker last (rules 2 and 3).

use crate::config::AcquisitionPolicy;
use crate::event::Event;
use crate::ids::JobId;
use crate::job::{GroupState, WorkerWant, group_index};
use crate::tx::Tx;

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
