//! `step`: the one entry point that decides. It dispatches each input to
//! its handler, which checks the input against the state and emits events
//! through a `Tx`, and answers. Nothing here touches the caller's state: a
//! rejection leaves it exactly as it was.

use crate::answer::Answer;
use crate::effect::{self, Effect};
use crate::event::Event;
use crate::input::Input;
use crate::rejection::Rejection;
use crate::state::State;
use crate::time::Time;
use crate::tx::Tx;
use crate::{admin, agent, factory, submit, tick, well};

/// What a step decided: the events to persist, in order, then the effects
/// to perform once they are committed, and the answer for whoever sent
/// the input (given once the events are committed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transition {
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
    pub answer: Answer,
}

impl Transition {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Decides what `input` at time `now` means for `state`.
///
/// `now` must not go backwards between steps; the server feeds its clock,
/// the model its simulated time.
pub fn step(state: &State, input: Input, now: Time) -> Result<Transition, Rejection> {
    // The working copy is O(1) to make (the books share structure), and
    // the queues, deadlines, dependents and holdings are indexes
    // (`index`), so a step costs O(log n) in the number of jobs. What is
    // still scanned is bounded by the wells' and factories' capacity, not
    // by the queue: the resources and workers (`effects_of`, `pool_room`,
    // `factory_room`) and the leases (`next_deadline`).
    let mut tx = Tx::new(state, now);
    let answer = dispatch(&mut tx, input)?;
    let effects = effect::effects_of(state, &tx.state, &tx.events);
    Ok(Transition {
        events: tx.events,
        effects,
        answer,
    })
}

/// Inputs whose handlers have nothing to say beyond their events answer
/// `Done`.
fn done(result: Result<(), Rejection>) -> Result<Answer, Rejection> {
    result.map(|()| Answer::Done)
}

fn dispatch(tx: &mut Tx, input: Input) -> Result<Answer, Rejection> {
    match input {
        Input::DefineType { rtype, spec } => done(admin::handle_define_type(tx, rtype, spec)),
        Input::DefineTarget { target, spec } => done(admin::handle_define_target(tx, target, spec)),
        Input::RegisterWell { well, pools } => done(admin::handle_register_well(tx, well, pools)),
        Input::RegisterFactory { factory, capacity } => {
            done(admin::handle_register_factory(tx, factory, capacity))
        }
        Input::HoldLeases { held } => {
            admin::handle_hold_leases(tx, held);
            Ok(Answer::Done)
        }
        Input::ReleaseHeld { resource } => done(admin::handle_release_held(tx, resource)),
        Input::SubmitJob(spec) => submit::handle_submit(tx, spec),
        Input::CancelJob { job } => done(submit::handle_cancel(tx, job)),
        Input::InputsComplete { job } => done(submit::handle_inputs_complete(tx, job)),
        Input::RequestLease { well, free } => well::handle_request(tx, well, free),
        Input::RenewLease { well, lease } => well::handle_renew(tx, well, lease),
        Input::ReportReady { well, resource } => done(well::handle_ready(tx, well, resource)),
        Input::ReportFailed {
            well,
            resource,
            retryable,
        } => done(well::handle_failed(tx, well, resource, retryable)),
        Input::ConfirmDestroyed { well, resource } => {
            done(well::handle_destroyed(tx, well, resource))
        }
        Input::ReportDestroyFailed { well, resource } => {
            done(well::handle_destroy_failed(tx, well, resource))
        }
        Input::RequestWorker { factory, free } => factory::handle_request(tx, factory, free),
        Input::ReportWorkerCreated { factory, worker } => {
            done(factory::handle_created(tx, factory, worker))
        }
        Input::ReportWorkerLost { factory, worker } => {
            done(factory::handle_lost(tx, factory, worker))
        }
        Input::ConfirmWorkerDestroyed { factory, worker } => {
            done(factory::handle_destroyed(tx, factory, worker))
        }
        Input::ReportWorkerOnline { worker } => done(agent::handle_online(tx, worker)),
        Input::StartJob { worker } => agent::handle_start(tx, worker),
        Input::FinishJob { worker, succeeded } => done(agent::handle_finish(tx, worker, succeeded)),
        Input::Tick => {
            tick::handle_tick(tx);
            Ok(Answer::Done)
        }
    }
}
