//! A stateright model of aquifer's scheduler built on the core's own
//! transition functions, the scopes it explores, and the readable
//! rendering of its counterexamples.

pub mod actions;
pub mod describe;
pub mod model;
pub mod properties;
pub mod replay;
pub mod run;
pub mod scope;
pub mod walk;

pub use model::{Action, AquiferModel, Faults, ModelState};
pub use scope::{Scope, ScopeName};
