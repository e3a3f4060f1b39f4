//! Random walks: reproducible from their seed, real behaviours of the
//! core (each step's events are what `step` decides for its input, and
//! every state on the way keeps the model's properties), and the
//! corrupted copy really differs.

use aquifer_core::{Event, Rules, State, Time, apply, step};
use aquifer_model::scope::{Scope, ScopeName};
use aquifer_model::{AquiferModel, Faults, replay, walk};

fn model() -> AquiferModel {
    let rules = Rules::production();
    AquiferModel::new(
        Scope::new(ScopeName::Small, rules.pools),
        rules,
        Faults::All,
    )
}

/// The walks CI gives TLC (`aquifer-model walk --seed 1 --count 200`),
/// replayed here through `step` and held to the model's properties.
#[test]
fn walks_replay_through_step_and_end_with_nothing_left() {
    let m = model();
    let mut ended_clean = 0;
    for seed in 1..=200 {
        let trace = walk::walk(&m, seed);
        let history = trace.history();
        let done = replay::replay(trace.rules, trace.limits, &history)
            .unwrap_or_else(|d| panic!("{} departs from the model: {d}", trace.name));
        assert_eq!(done.inputs, history.len());
        let mut state = State::new(m.rules, m.limits);
        let mut last = Time::ZERO;
        for s in &trace.steps {
            assert!(s.now >= last, "time went backwards in {}", trace.name);
            last = s.now;
            let t = step(&state, s.input.clone(), s.now).expect("a recorded input is accepted");
            assert_eq!(t.events, s.events, "{} diverged", trace.name);
            for e in &t.events {
                apply(&mut state, e);
            }
        }
        if state.jobs.is_empty() && state.workers.is_empty() {
            ended_clean += 1;
        }
    }
    assert!(
        ended_clean > 100,
        "only {ended_clean} of 200 walks ran to the end"
    );
}

#[test]
fn walks_are_reproducible_and_the_corrupted_copy_grants_twice() {
    let m = model();
    let a = walk::walk(&m, 7);
    let b = walk::walk(&m, 7);
    assert_eq!(
        serde_json::to_string(&a).ok(),
        serde_json::to_string(&b).ok()
    );
    let bad = walk::corrupt(&a).expect("the walk grants something");
    assert_eq!(bad.expect, "invalid");
    let grants = |t: &walk::Trace| {
        t.steps
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| matches!(e, Event::LeaseGranted { .. }))
            .count()
    };
    assert_eq!(grants(&bad), grants(&a) + 1);
}
