//! Running a check: explore the model, and for each property that fails,
//! find its shortest counterexample (breadth-first, one thread).

use crate::model::{Action, AquiferModel, ModelState};
use crate::walk::{Rng, STEPS_MAX};
use stateright::{Checker, HasDiscoveries, Model, Path, Property};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Depth-first: far less memory; the default for full checks.
    Dfs,
    /// Breadth-first: counterexamples found are the shortest.
    Bfs,
    /// Random runs from the start to an end, one after another until the
    /// time limit (`simulate`). For scopes too large to explore whole; it
    /// proves nothing for the runs it did not take.
    Simulate,
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
    /// Random runs, not an exhaustive search: `states` counts the states
    /// of every run, repeats included, and `unique` is not known.
    pub sampled: bool,
    /// How many random runs a simulation took.
    pub runs: usize,
}

impl Report {
    #[must_use]
    pub fn result(&self) -> String {
        match (self.violated.first(), self.complete, self.missing.first()) {
            (Some((name, _)), _, _) => format!("violated:{name}"),
            // Runs taken at random witness what they met, and a witness
            // they missed proves nothing either way.
            (None, _, _) if self.sampled => "sampled".into(),
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
        if self.sampled {
            return format!(
                "states={} runs={} secs={:.2} states_per_s={:.0} result={}",
                self.states,
                self.runs,
                self.secs,
                rate,
                self.result()
            );
        }
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
/// what was found. `Strategy::Simulate` needs a limit: see `simulate`.
#[must_use]
pub fn check(
    model: AquiferModel,
    threads: usize,
    strategy: Strategy,
    limit: Option<Duration>,
) -> Report {
    if strategy == Strategy::Simulate {
        let limit = limit.expect("a simulation runs until its time limit");
        return simulate(model, threads, limit, 1);
    }
    let started = Instant::now();
    let properties = model.properties();
    let builder = model.checker().threads(threads);
    if strategy == Strategy::Bfs {
        collect(&builder.spawn_bfs(), &properties, started, limit)
    } else {
        collect(&builder.spawn_dfs(), &properties, started, limit)
    }
}

/// Random runs from the start to an end, one after another on every
/// thread until `limit`: for scopes too large to explore whole. Run `k`
/// of thread `t` takes its actions from the seed `seed + k * threads + t`,
/// so a run that breaks a property can be taken again. (stateright's own
/// simulation checker records an action for every choice that led
/// nowhere, and then cannot rebuild the path it found.)
#[must_use]
pub fn simulate(model: AquiferModel, threads: usize, limit: Duration, seed: u64) -> Report {
    let started = Instant::now();
    let properties = model.properties();
    let states = AtomicUsize::new(0);
    let runs = AtomicUsize::new(0);
    let found: Mutex<BTreeMap<&'static str, Vec<Action>>> = Mutex::new(BTreeMap::new());
    let stop = AtomicBool::new(false);
    let always: BTreeSet<&'static str> = (properties.iter())
        .filter(|p| p.expectation != stateright::Expectation::Sometimes)
        .map(|p| p.name)
        .collect();
    let always = &always;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (model, properties) = (&model, &properties);
            let (states, runs, found, stop) = (&states, &runs, &found, &stop);
            s.spawn(move || {
                let mut k = 0u64;
                while started.elapsed() < limit && !stop.load(Ordering::Relaxed) {
                    let run_seed = seed.wrapping_add(k * threads as u64 + t as u64);
                    let (visited, run_found) = one_run(model, properties, run_seed);
                    states.fetch_add(visited, Ordering::Relaxed);
                    runs.fetch_add(1, Ordering::Relaxed);
                    let mut all = found.lock().expect("no thread panics holding it");
                    for (name, actions) in run_found {
                        // A violation ends the simulation: the first found
                        // is the one to show.
                        if always.contains(name) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        all.entry(name).or_insert(actions);
                    }
                    k += 1;
                }
            });
        }
    });
    let found = found.into_inner().expect("no thread panicked");
    let init = model.init_states().remove(0);
    let mut violated = Vec::new();
    let mut missing = Vec::new();
    for p in &properties {
        match (&p.expectation, found.get(p.name)) {
            (stateright::Expectation::Sometimes, None) => missing.push(p.name),
            (stateright::Expectation::Sometimes, Some(_)) | (_, None) => {}
            (_, Some(actions)) => {
                let path = Path::from_actions(&model, init.clone(), actions)
                    .expect("a run's actions replay: the model is deterministic");
                violated.push((p.name, path));
            }
        }
    }
    let states = states.into_inner();
    Report {
        states,
        unique: states,
        secs: started.elapsed().as_secs_f64(),
        violated,
        missing,
        complete: false,
        sampled: true,
        runs: runs.into_inner(),
    }
}

/// One random run: the number of states it visited, and the properties it
/// broke or witnessed, each with the actions that led there.
fn one_run(
    model: &AquiferModel,
    properties: &[Property<AquiferModel>],
    seed: u64,
) -> (usize, Vec<(&'static str, Vec<Action>)>) {
    let mut rng = Rng(seed);
    let mut state = model.init_states().remove(0);
    let mut taken: Vec<Action> = Vec::new();
    let mut found = Vec::new();
    let mut visited = 0;
    for _ in 0..STEPS_MAX {
        visited += 1;
        let mut broken = false;
        for p in properties {
            let holds = (p.condition)(model, &state);
            match p.expectation {
                stateright::Expectation::Sometimes if holds => found.push((p.name, taken.clone())),
                stateright::Expectation::Always | stateright::Expectation::Eventually if !holds => {
                    found.push((p.name, taken.clone()));
                    broken = true;
                }
                _ => {}
            }
        }
        if broken {
            break;
        }
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        // Choose at random among the actions that lead somewhere.
        let next = loop {
            if actions.is_empty() {
                break None;
            }
            let action = actions.swap_remove(rng.below(actions.len()));
            if let Some(next) = model.next_state(&state, action.clone()) {
                break Some((action, next));
            }
        };
        let Some((action, next)) = next else { break };
        taken.push(action);
        state = next;
    }
    // Keep the first witness of each property only.
    let mut seen = BTreeSet::new();
    found.retain(|(name, _)| seen.insert(*name));
    (visited, found)
}

/// Waits for `checker` to finish or for `limit`, whichever comes first,
/// and reports. (stateright's own `timeout` did not stop a depth-first run
/// early here.) Threads still exploring when the limit passes are left to
/// the process's exit.
fn collect(
    checker: &dyn Checker<AquiferModel>,
    properties: &[stateright::Property<AquiferModel>],
    started: Instant,
    limit: Option<Duration>,
) -> Report {
    let mut complete = true;
    while !checker.is_done() {
        if limit.is_some_and(|l| started.elapsed() >= l) {
            complete = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let discoveries = checker.discoveries();
    let mut violated = Vec::new();
    let mut missing = Vec::new();
    for p in properties {
        match (&p.expectation, discoveries.get(p.name)) {
            (stateright::Expectation::Sometimes, None) => missing.push(p.name),
            (stateright::Expectation::Sometimes, Some(_)) | (_, None) => {}
            (_, Some(path)) => violated.push((p.name, path.clone())),
        }
    }
    Report {
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        secs: started.elapsed().as_secs_f64(),
        violated,
        missing,
        complete,
        sampled: false,
        runs: 0,
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
