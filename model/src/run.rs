//! Running a check: explore the model, and for each property that fails,
//! find its shortest counterexample (breadth-first, one thread).

use crate::model::{Action, AquiferModel, ModelState};
use stateright::{Checker, HasDiscoveries, Model, Path};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Depth-first: far less memory; the default for full checks.
    Dfs,
    /// Breadth-first: counterexamples found are the shortest.
    Bfs,
}

pub struct Report {
    pub states: usize,
    pub unique: usize,
    pub secs: f64,
    /// `always` properties with a counterexample, in declaration order.
    pub violated: Vec<(&'static str, Path<ModelState, Action>)>,
    /// `sometimes` properties never seen: the model would be vacuous.
    pub missing: Vec<&'static str>,
    /// Whether every reachable state was explored (false when a time limit
    /// stopped the check first).
    pub complete: bool,
}

impl Report {
    #[must_use]
    pub fn result(&self) -> String {
        match (self.violated.first(), self.complete, self.missing.first()) {
            (Some((name, _)), _, _) => format!("violated:{name}"),
            // An unexplored remainder proves nothing, and an example may
            // lie in it.
            (None, false, _) => "incomplete".into(),
            (None, true, Some(name)) => format!("violated:{name}"),
            (None, true, None) => "ok".into(),
        }
    }

    /// The figures line every check ends with.
    #[must_use]
    pub fn last_line(&self) -> String {
        let rate = if self.secs > 0.0 {
            self.states as f64 / self.secs
        } else {
            0.0
        };
        format!(
            "states={} unique={} secs={:.2} states_per_s={:.0} result={}",
            self.states,
            self.unique,
            self.secs,
            rate,
            self.result()
        )
    }
}

/// Explores the whole model (or as much as `limit` allows) and collects
/// what was found.
#[must_use]
pub fn check(
    model: AquiferModel,
    threads: usize,
    strategy: Strategy,
    limit: Option<Duration>,
) -> Report {
    let properties = model.properties();
    let started = Instant::now();
    let builder = model.checker().threads(threads);
    // The checker runs on its own threads; wait for it to finish or for the
    // limit, whichever comes first. (stateright's own `timeout` did not
    // stop a depth-first run early here.) Threads still exploring when the
    // limit passes are left to the process's exit.
    let wait = |c: &dyn Checker<AquiferModel>| {
        while !c.is_done() {
            if limit.is_some_and(|l| started.elapsed() >= l) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    };
    let checker_report = |c: &dyn Checker<AquiferModel>| {
        let done = wait(c);
        let discoveries = c.discoveries();
        let mut violated = Vec::new();
        let mut missing = Vec::new();
        for p in &properties {
            match (&p.expectation, discoveries.get(p.name)) {
                (stateright::Expectation::Sometimes, None) => missing.push(p.name),
                (stateright::Expectation::Sometimes, Some(_)) | (_, None) => {}
                (_, Some(path)) => violated.push((p.name, path.clone())),
            }
        }
        (
            c.state_count(),
            c.unique_state_count(),
            violated,
            missing,
            done,
        )
    };
    let (states, unique, violated, missing, complete) = match strategy {
        Strategy::Dfs => checker_report(&builder.spawn_dfs()),
        Strategy::Bfs => checker_report(&builder.spawn_bfs()),
    };
    let elapsed = started.elapsed();
    Report {
        states,
        unique,
        secs: elapsed.as_secs_f64(),
        violated,
        missing,
        complete,
    }
}

/// The shortest path to a violation of `property`: breadth-first on one
/// thread, stopping at the first discovery.
#[must_use]
pub fn shortest(model: AquiferModel, property: &'static str) -> Option<Path<ModelState, Action>> {
    let checker = model
        .checker()
        .threads(1)
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
        .spawn_bfs()
        .join();
    checker.discovery(property)
}
