//! Fixtures for the transition tests: a small registered world and helpers
//! that step it, apply what was decided, and hand back events, effects or
//! the rejection's code.

#![allow(dead_code)]

use aquifer_core::*;
use std::collections::{BTreeMap, BTreeSet};

pub const W1: WellId = WellId(1);
pub const W2: WellId = WellId(2);
pub const F1: FactoryId = FactoryId(1);
pub const J1: JobId = JobId(1);
pub const J2: JobId = JobId(2);
pub const J3: JobId = JobId(3);
pub const TIMEOUT_MS: u64 = 3_600_000;

pub fn t(name: &str) -> TypeId {
    TypeId::new(name)
}

pub fn target(name: &str) -> TargetId {
    TargetId::new(name)
}

/// Steps `input` at `now`, applies the events, and returns the transition.
/// Panics on a rejection: use `rejects` for those.
pub fn ok(state: &mut State, input: Input, now: u64) -> Transition {
    let t = step(state, input.clone(), Time(now))
        .unwrap_or_else(|r| panic!("{input:?} was rejected: {r} ({})", r.code()));
    for e in &t.events {
        apply(state, e);
    }
    aquifer_core::invariants::check(state).expect("invariants hold after every step");
    t
}

/// Steps `input`, expects a rejection, and checks it changed nothing.
pub fn rejects(state: &State, input: Input, now: u64) -> &'static str {
    let before = state.clone();
    let r = step(state, input.clone(), Time(now)).expect_err(&format!("{input:?} was accepted"));
    assert_eq!(&before, state);
    assert!(!r.to_string().is_empty());
    r.code()
}

pub fn events(state: &mut State, input: Input, now: u64) -> Vec<Event> {
    ok(state, input, now).events
}

/// Types a (max 1), b (max 2), c (max 1, needs "lab"); targets t and
/// "secret" (needs "lab"); well 1 serves a (1) and b (2); well 2 serves c
/// (1); factory 1 makes one worker for t.
pub fn world() -> State {
    world_with(Rules::production(), Limits::default())
}

pub fn world_with(rules: Rules, limits: Limits) -> State {
    let mut s = State::new(rules, limits);
    for (name, max, privilege) in [("a", 1, None), ("b", 2, None), ("c", 1, Some("lab"))] {
        ok(
            &mut s,
            Input::DefineType {
                rtype: t(name),
                spec: TypeSpec {
                    max_per_job: max,
                    privilege: privilege.map(Privilege::new),
                },
            },
            0,
        );
    }
    for (name, privilege) in [("t", None), ("secret", Some("lab"))] {
        ok(
            &mut s,
            Input::DefineTarget {
                target: target(name),
                spec: TargetSpec {
                    privilege: privilege.map(Privilege::new),
                },
            },
            0,
        );
    }
    ok(
        &mut s,
        Input::RegisterWell {
            well: W1,
            pools: vec![pool(&["a"], 1), pool(&["b"], 2)],
        },
        0,
    );
    ok(
        &mut s,
        Input::RegisterWell {
            well: W2,
            pools: vec![pool(&["c"], 1)],
        },
        0,
    );
    ok(
        &mut s,
        Input::RegisterFactory {
            factory: F1,
            capacity: BTreeMap::from([(target("t"), 1), (target("secret"), 1)]),
        },
        0,
    );
    s
}

pub fn pool(types: &[&str], capacity: u16) -> Pool {
    Pool {
        types: types.iter().map(|n| t(n)).collect(),
        capacity,
    }
}

pub fn spec(requests: &[(&str, u16)]) -> JobSpec {
    JobSpec {
        target: target("t"),
        requests: requests
            .iter()
            .map(|(n, c)| Request {
                rtype: t(n),
                count: *c,
            })
            .collect(),
        timeout_ms: TIMEOUT_MS,
        depends_on: BTreeSet::new(),
        retired_outcomes: BTreeMap::new(),
        run_on: BTreeMap::new(),
        awaits_inputs: false,
        privileges: BTreeSet::new(),
        owner: 0,
    }
}

pub fn submit(state: &mut State, requests: &[(&str, u16)]) -> JobId {
    let t = ok(state, Input::SubmitJob(spec(requests)), 0);
    match t.events.first() {
        Some(Event::JobSubmitted { job, .. }) => *job,
        other => panic!("expected a submission, got {other:?}"),
    }
}

pub fn free(types: &[(&str, u16)]) -> BTreeMap<TypeId, u16> {
    types.iter().map(|(n, c)| (t(n), *c)).collect()
}

pub fn lease_request(well: WellId, types: &[(&str, u16)]) -> Input {
    Input::RequestLease {
        well,
        free: free(types),
    }
}

pub fn worker_request(n: u16) -> Input {
    Input::RequestWorker {
        factory: F1,
        free: BTreeMap::from([(target("t"), n)]),
    }
}

/// The grant in a transition: (lease, job, resources).
pub fn granted(t: &Transition) -> Option<(LeaseId, JobId, Vec<ResourceId>)> {
    t.events.iter().find_map(|e| match e {
        Event::LeaseGranted {
            lease,
            job,
            resources,
            ..
        } => Some((*lease, *job, resources.clone())),
        _ => None,
    })
}

/// Grants the next waiting group from `well` and reports every instance
/// ready; returns the resources.
pub fn acquire(
    state: &mut State,
    well: WellId,
    types: &[(&str, u16)],
    now: u64,
) -> Vec<ResourceId> {
    let t = ok(state, lease_request(well, types), now);
    let (_, _, resources) = granted(&t).expect("a grant");
    for &resource in &resources {
        ok(state, Input::ReportReady { well, resource }, now);
    }
    resources
}

/// Submits a job that depends on `dependency`; returns its id.
pub fn submit_after(state: &mut State, requests: &[(&str, u16)], dependency: JobId) -> JobId {
    let mut later = spec(requests);
    later.depends_on.insert(dependency);
    let t = ok(state, Input::SubmitJob(later), 0);
    match t.events.first() {
        Some(Event::JobSubmitted { job, .. }) => *job,
        other => panic!("expected a submission, got {other:?}"),
    }
}

/// Leases a worker to the job that holds everything; returns the worker.
pub fn lease_worker(state: &mut State, now: u64) -> WorkerId {
    let t = ok(state, worker_request(1), now);
    t.events
        .iter()
        .find_map(|e| match e {
            Event::WorkerLeased { worker, .. } => Some(*worker),
            _ => None,
        })
        .expect("a worker lease")
}

/// Takes a job that holds everything through worker lease, creation,
/// check-in and start. Returns the worker.
pub fn run(state: &mut State, now: u64) -> WorkerId {
    let worker = lease_worker(state, now);
    ok(
        state,
        Input::ReportWorkerCreated {
            factory: F1,
            worker,
        },
        now,
    );
    ok(state, Input::ReportWorkerOnline { worker }, now);
    ok(state, Input::StartJob { worker }, now);
    worker
}

pub fn phase(state: &State, job: JobId) -> Option<Phase> {
    state.jobs.get(&job).map(|j| j.phase)
}
