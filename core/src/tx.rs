//! `Tx`: a step in progress. The handlers of every input decide through
//! it: each event they emit is applied to a working copy at once, so later
//! decisions in the same step see earlier ones.

use crate::apply::apply;
use crate::event::Event;
use crate::ids::{ResourceId, WorkerId};
use crate::rejection::Rejection;
use crate::resource::Resource;
use crate::state::State;
use crate::time::Time;
use crate::worker::Worker;

/// A step in progress: the working copy of the state and what has been
/// decided so far.
pub(crate) struct Tx {
    pub state: State,
    pub now: Time,
    pub events: Vec<Event>,
}

impl Tx {
    pub fn new(state: &State, now: Time) -> Tx {
        Tx {
            state: state.clone(),
            now,
            events: Vec::new(),
        }
    }

    pub fn emit(&mut self, event: Event) {
        apply(&mut self.state, &event);
        self.events.push(event);
    }
}

/// A worker in the books. Ids that were handed out but have left the
/// books are told apart from ids never handed out, so a late report reads
/// "gone", not "unknown".
pub(crate) fn known_worker(tx: &Tx, worker: WorkerId) -> Result<&Worker, Rejection> {
    tx.state
        .workers
        .get(&worker)
        .ok_or(if worker < tx.state.next_worker {
            Rejection::Gone {
                what: worker.to_string(),
            }
        } else {
            Rejection::UnknownWorker { worker }
        })
}

/// A resource in the books. Ids that were handed out but have left the
/// books are told apart from ids never handed out, so a late report reads
/// "gone", not "unknown".
pub(crate) fn in_books(tx: &Tx, resource: ResourceId) -> Result<&Resource, Rejection> {
    tx.state
        .resources
        .get(&resource)
        .ok_or(if resource < tx.state.next_resource {
            Rejection::Gone {
                what: format!("resource {resource}"),
            }
        } else {
            Rejection::UnknownResource { resource }
        })
}
