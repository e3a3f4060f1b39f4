//! aquifer's server: the driver that runs the core's transition functions
//! and persists every decision before acting on it, and the store it
//! persists to.

pub mod api;
pub mod auth;
pub mod driver;
pub mod objects;
pub mod readmodel;
pub mod retention;
pub mod start;
pub mod store;
pub mod timings;
pub mod users;
pub mod wake;
pub mod web;

pub use start::{Config, Running, StartError, start};
