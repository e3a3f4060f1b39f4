//! Random walks of the model, exported as traces of committed events for
//! the TLA+ spec to validate (spec/trace.py). A walk starts from an empty
//! state, registers the scope, then takes enabled actions at random until
//! nothing is enabled or a step limit is reached.

use crate::model::{Action, AquiferModel, ModelState};
use aquifer_core::{Event, Input, Limits, Rules, State, Time, step};
use serde::Serialize;
use stateright::Model;

#[derive(Clone, Debug, Serialize)]
pub struct TraceStep {
    pub now: Time,
    pub input: Input,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub name: String,
    /// "valid" for a real behaviour, "invalid" for a corrupted one that the
    /// spec must reject.
    pub expect: &'static str,
    /// The rules and limits the core ran under: no event carries them.
    pub rules: Rules,
    pub limits: Limits,
    pub steps: Vec<TraceStep>,
}

impl Trace {
    /// A recorded history (a server's inputs, each at its time with the
    /// events it decided) as a trace for the spec to validate.
    #[must_use]
    pub fn of_history(
        name: String,
        rules: Rules,
        limits: Limits,
        history: &[(Time, Input, Vec<Event>)],
    ) -> Trace {
        Trace {
            name,
            expect: "valid",
            rules,
            limits,
            steps: (history.iter())
                .map(|(now, input, events)| TraceStep {
                    now: *now,
                    input: input.clone(),
                    events: events.clone(),
                })
                .collect(),
        }
    }

    /// The trace as a history for `replay`: each input at its time with
    /// the events it decided.
    #[must_use]
    pub fn history(&self) -> Vec<(Time, Input, Vec<Event>)> {
        (self.steps.iter())
            .map(|s| (s.now, s.input.clone(), s.events.clone()))
            .collect()
    }
}

/// A small deterministic generator (splitmix64): walks are reproducible
/// from their seed (and so are `aquifer-bench soak`'s schedules).
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }
}

pub(crate) const STEPS_MAX: usize = 400;

/// One random walk. Restarts and refused inputs leave no step in the trace
/// (a restart commits nothing; a refusal commits nothing).
#[must_use]
pub fn walk(model: &AquiferModel, seed: u64) -> Trace {
    let mut rng = Rng(seed);
    let mut steps = Vec::new();
    let mut core = State::new(model.rules, model.limits);
    for input in model.scope.registration() {
        let t = step(&core, input.clone(), Time::ZERO).expect("the scope registers");
        for e in &t.events {
            aquifer_core::apply(&mut core, e);
        }
        steps.push(TraceStep {
            now: Time::ZERO,
            input,
            events: t.events,
        });
    }
    let mut state: ModelState = model.init_states().remove(0);
    for _ in 0..STEPS_MAX {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let mut enabled: Vec<(Action, ModelState)> = actions
            .into_iter()
            .filter_map(|a| model.next_state(&state, a.clone()).map(|n| (a, n)))
            .collect();
        if enabled.is_empty() {
            break;
        }
        let (action, next) = enabled.swap_remove(rng.below(enabled.len()));
        if let Some(input) = model.input_of(&state, &action) {
            let events = next.log.events()[state.log.events().len()..].to_vec();
            if !events.is_empty() {
                steps.push(TraceStep {
                    now: next.now,
                    input,
                    events,
                });
            }
        }
        state = next;
    }
    Trace {
        name: format!("walk-{seed}"),
        expect: "valid",
        rules: model.rules,
        limits: model.limits,
        steps,
    }
}

/// A corrupted copy of a trace that no correct scheduler could produce:
/// the first grant is committed twice, so a group is leased again while
/// its first lease is out (and the ids repeat).
#[must_use]
pub fn corrupt(trace: &Trace) -> Option<Trace> {
    let at = trace.steps.iter().position(|s| {
        s.events
            .iter()
            .any(|e| matches!(e, Event::LeaseGranted { .. }))
    })?;
    let mut steps = trace.steps.clone();
    steps.insert(at + 1, trace.steps[at].clone());
    Some(Trace {
        name: format!("{}-granted-twice", trace.name),
        expect: "invalid",
        steps,
        ..trace.clone()
    })
}
