//! aquifer's scheduling core: a pure state machine.
//!
//! `step(&State, Input, now)` decides and returns the events to persist and
//! the effects to perform after; `apply` folds a committed event into the
//! state and never fails; `invariants::check`, `pending_effects` and
//! `next_deadline` read a state. No I/O, no clock, no randomness, no async
//! and no hash-ordered collections: the server drives these functions and
//! the model checker explores them, and both see the same decisions.

mod acquire;
mod admin;
pub mod agent;
pub mod answer;
pub mod apply;
pub mod config;
pub mod effect;
pub mod end;
pub mod event;
pub mod explain;
pub mod factory;
pub mod ids;
pub mod index;
pub mod input;
pub mod invariants;
pub mod job;
pub mod lease;
pub mod queue;
pub mod registry;
pub mod rejection;
pub mod resource;
pub mod state;
pub mod step;
mod submit;
pub mod tick;
pub mod time;
mod tx;
mod well;
pub mod worker;

pub use agent::Stop;
pub use answer::Answer;
pub use apply::apply;
pub use config::{AcquisitionPolicy, GrantMode, Limits, PoolSharing, Rules};
pub use effect::{Effect, pending_effects};
pub use event::{Event, LeaseEnd};
pub use ids::{
    FactoryId, JobId, LeaseId, Privilege, ResourceId, TargetId, TypeId, WellId, WorkerId,
};
pub use input::Input;
pub use job::{Failure, JobSpec, Outcome, Phase, Request, RunOn};
pub use registry::{Pool, TargetSpec, TypeSpec};
pub use rejection::Rejection;
pub use state::State;
pub use step::{Transition, step};
pub use tick::next_deadline;
pub use time::Time;
