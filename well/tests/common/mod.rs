//! The shared well-test harness (the real server in-process, admin calls,
//! a runner to stop or kill), which lives in `aquifer-well-harness` so the
//! shipped wells' crates test against the same one.

pub use aquifer_well_harness::*;
