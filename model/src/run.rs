//! Running a check: explore the model, and for each property that fails,
//! find its shortest counterexample (breadth-first, one thread).

use crate::model::{Action, AquiferModel, ModelState};
use stateright::{Checker, HasDiscoveries, Model, Path};
use std::collections::BTreeSet;
use std::time::Instant;

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
}

impl Report {
    #[must_use]
    pub fn result(&self) -> String {
        match (self.violated.first(), self.missing.first()) {
            (Some((name, _)), _) | (None, Some(name)) => format!("violated:{name}"),
            (None, None) => "ok".into(),
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

/// Explores the whole model and collects what was found.
#[must_use]
pub fn check(model: AquiferModel, threads: usize, strategy: Strategy) -> Report {
    let properties = model.properties();
    let started = Instant::now();
    let builder = model.checker().threads(threads);
    let checker_report = |c: &dyn Checker<AquiferModel>| {
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
        (c.state_count(), c.unique_state_count(), violated, missing)
    };
    let (states, unique, violated, missing) = match strategy {
        Strategy::Dfs => checker_report(&builder.spawn_dfs().join()),
        Strategy::Bfs => checker_report(&builder.spawn_bfs().join()),
    };
    Report {
        states,
        unique,
        secs: started.elapsed().as_secs_f64(),
        violated,
        missing,
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
