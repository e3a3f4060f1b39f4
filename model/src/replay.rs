//! Checking a recorded history against the model: a production server's
//! log of inputs and the events each decided is replayed through the same
//! transition function the model explores, and every state on the way is
//! held to the model's properties. So a running system is checked against
//! the proven one: any decision it made that the core would not make now,
//! or any state it passed through that a property forbids, is reported
//! with the step where it happened.

use crate::properties::{
    self, DEPENDENCIES, INVARIANTS, POOLS, RANK_ORDER, RUNS_WITH_ALL, WORKER_LAST,
};
use aquifer_core::{
    Event, Input, JobId, Limits, Outcome, Rules, RunOn, State, Time, apply, invariants, step,
};
use std::collections::{BTreeMap, BTreeSet};

/// What a replay went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub inputs: usize,
    pub events: usize,
}

/// Where and why a history left the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("step {step} ({input}): {problem}")]
pub struct Departure {
    /// 1-based index of the input in the history.
    pub step: usize,
    pub input: String,
    pub problem: String,
}

/// Replays `history` (each input at its time, with the events it was
/// logged to have decided) from the empty state under `rules` and
/// `limits`, as the server ran.
pub fn replay(
    rules: Rules,
    limits: Limits,
    history: &[(Time, Input, Vec<Event>)],
) -> Result<Replayed, Departure> {
    let mut state = State::new(rules, limits);
    let mut done = Replayed::default();
    let mut last = Time::ZERO;
    // What the submissions asked and how jobs ended, kept beside the core
    // (which forgets retired jobs) for the dependency rule.
    let mut depends_on: BTreeMap<JobId, Vec<(JobId, RunOn)>> = BTreeMap::new();
    let mut awaiting: BTreeSet<JobId> = BTreeSet::new();
    let mut outcomes: BTreeMap<JobId, Outcome> = BTreeMap::new();
    for (i, (now, input, logged)) in history.iter().enumerate() {
        let depart = |problem: String| Departure {
            step: i + 1,
            input: format!("{input:?}"),
            problem,
        };
        if *now < last {
            return Err(depart(format!("time went back from {last:?} to {now:?}")));
        }
        last = *now;
        let t = step(&state, input.clone(), *now)
            .map_err(|r| depart(format!("the core refuses it now: {r}")))?;
        if &t.events != logged {
            return Err(depart(format!(
                "the core decides {:?}, the log says {logged:?}",
                t.events
            )));
        }
        if let Input::InputsComplete { job } = input {
            awaiting.remove(job);
        }
        let before = state.clone();
        for e in logged {
            match e {
                Event::JobSubmitted { job, .. } => {
                    if let Input::SubmitJob(spec) = input {
                        let on = |d| spec.run_on.get(d).copied().unwrap_or_default();
                        let deps = spec.depends_on.iter().map(|d| (*d, on(d))).collect();
                        depends_on.insert(*job, deps);
                        outcomes.extend(&spec.retired_outcomes);
                        if spec.awaits_inputs {
                            awaiting.insert(*job);
                        }
                    }
                }
                Event::JobEnded { job, outcome } => {
                    outcomes.insert(*job, *outcome);
                }
                _ => {}
            }
            apply(&mut state, e);
        }
        if let Err(v) = invariants::check(&state) {
            return Err(depart(format!("{INVARIANTS}: {v}")));
        }
        let dependencies = properties::dependencies_honoured(
            &state,
            |job| depends_on.get(&job).cloned().unwrap_or_default(),
            |job| outcomes.get(&job).copied(),
            |job| !awaiting.contains(&job),
        );
        for (name, holds) in [
            (RUNS_WITH_ALL, properties::runs_with_all(&state)),
            (RANK_ORDER, properties::rank_order(&state)),
            (POOLS, pools_within_capacity(&state)),
            (WORKER_LAST, properties::worker_after_resources(&state)),
            (DEPENDENCIES, dependencies),
        ] {
            if !holds {
                return Err(depart(format!("{name} does not hold")));
            }
        }
        let broken = properties::check_transition(&before, &state, logged, &t.effects)
            .or_else(|| properties::check_rules(&before, &state, *now, input, logged));
        if let Some(name) = broken {
            return Err(depart(format!("{name} does not hold")));
        }
        done.inputs += 1;
        done.events += logged.len();
    }
    Ok(done)
}

/// No pool holds more than its capacity, and no factory more workers of
/// a target than its capacity, for whatever wells and factories were
/// registered (the model's own check knows its scope's).
fn pools_within_capacity(state: &State) -> bool {
    let factories = state.factories.iter().all(|(&factory, f)| {
        f.capacity.iter().all(|(target, &capacity)| {
            let used = (state.workers.values())
                .filter(|w| w.factory == factory && &w.target == target)
                .count();
            used <= usize::from(capacity)
        })
    });
    factories
        && state.wells.iter().all(|(&well, w)| {
            w.pools.iter().all(|p| {
                let used = (state.resources.values())
                    .filter(|r| r.well == well && p.types.contains(&r.rtype))
                    .count();
                used <= usize::from(p.capacity)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::{Scope, ScopeName};
    use crate::walk::walk;
    use crate::{AquiferModel, Faults};

    /// A random walk of the model is a history the replay accepts; the
    /// same history with one event changed is not.
    #[test]
    fn a_models_own_walk_replays_and_a_doctored_one_departs() {
        let model = AquiferModel::new(
            Scope::new(ScopeName::Small, aquifer_core::PoolSharing::PerType),
            Rules::production(),
            Faults::None,
        );
        let trace = walk(&model, 7);
        let history = trace.history();
        assert!(history.len() > 10, "{}", history.len());
        let done = replay(trace.rules, trace.limits, &history).expect("the walk replays");
        assert_eq!(done.inputs, history.len());
        let mut doctored = history.clone();
        let last = doctored.len() - 1;
        doctored[last].2.clear();
        let e = replay(trace.rules, trace.limits, &doctored).expect_err("departs");
        assert_eq!(e.step, history.len());
    }
}
