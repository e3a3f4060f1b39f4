//! Each rule's property fails on its own: a state reached through the real
//! `step`, then one decision a buggy core could make, and the property
//! that must name it (and, for the correct decision, nothing).

use aquifer_core::job::{GroupState, WorkerWant};
use aquifer_core::{
    Event, Input, JobId, LeaseEnd, LeaseId, Outcome, ResourceId, Rules, RunOn, State, Time, TypeId,
    WellId, apply, step,
};
use aquifer_model::properties::{
    DEADLINES, FIFO, HOLD, check_rules, dependencies_honoured, worker_after_resources,
};
use aquifer_model::scope::{Scope, ScopeName, job_id, well_id};
use std::collections::BTreeMap;

/// The small scope registered, then `inputs`, each at `Time(0)`.
fn after(inputs: &[Input]) -> (Scope, State) {
    let scope = Scope::new(ScopeName::Small, aquifer_core::PoolSharing::PerType);
    let mut state = State::new(
        Rules::production(),
        aquifer_model::model::model_limits(&scope),
    );
    for input in scope
        .registration()
        .into_iter()
        .chain(inputs.iter().cloned())
    {
        let t = step(&state, input.clone(), Time::ZERO)
            .unwrap_or_else(|r| panic!("{input:?} refused: {r}"));
        for e in &t.events {
            apply(&mut state, e);
        }
    }
    (scope, state)
}

fn lease(well: WellId, rtype: &str, free: u16) -> Input {
    Input::RequestLease {
        well,
        free: BTreeMap::from([(TypeId::new(rtype), free)]),
    }
}

/// Job 1 holds `a` and waits for `b`; job 3, younger, waits for `b` too;
/// then `more`.
fn two_wait_for_b_then(more: &[Input]) -> (Scope, State) {
    let scope = Scope::new(ScopeName::Small, aquifer_core::PoolSharing::PerType);
    let submit = |i| scope.submission(i, &BTreeMap::new());
    let mut inputs = vec![
        submit(0),
        submit(1),
        submit(2),
        lease(well_id(0), "a", 1),
        Input::ReportReady {
            well: well_id(0),
            resource: ResourceId(1),
        },
    ];
    inputs.extend_from_slice(more);
    after(&inputs)
}

fn two_wait_for_b() -> (Scope, State) {
    two_wait_for_b_then(&[])
}

fn granted(job: u32, group: u8) -> Event {
    Event::LeaseGranted {
        lease: LeaseId(9),
        job: JobId(job),
        group,
        rtype: TypeId::new("b"),
        well: well_id(1),
        resources: vec![ResourceId(7), ResourceId(8)],
        expires_at: Time(10),
    }
}

#[test]
fn a_younger_job_served_first_breaks_fifo() {
    let (_, before) = two_wait_for_b();
    let input = lease(well_id(1), "b", 2);
    // The core itself gives b to job 1, the oldest.
    let t = step(&before, input.clone(), Time::ZERO).expect("a lease");
    let mut after = before.clone();
    for e in &t.events {
        apply(&mut after, e);
    }
    assert!(
        matches!(
            t.events[..],
            [Event::LeaseGranted {
                job: JobId(1),
                group: 1,
                ..
            }]
        ),
        "{:?}",
        t.events
    );
    assert_eq!(
        check_rules(&before, &after, Time::ZERO, &input, &t.events),
        None
    );
    // Job 3's group 0 is b: a youngest-first core would pick it.
    assert_eq!(
        check_rules(&before, &before, Time::ZERO, &input, &[granted(3, 0)]),
        Some(FIFO)
    );
}

#[test]
fn a_grant_while_leases_are_held_breaks_the_hold() {
    let (_, mut before) = two_wait_for_b();
    before.lease_hold = true;
    let input = lease(well_id(1), "b", 2);
    assert_eq!(
        check_rules(&before, &before, Time::ZERO, &input, &[granted(1, 1)]),
        Some(HOLD)
    );
}

#[test]
fn expiry_early_or_a_report_at_expiry_breaks_deadlines() {
    let (_, before) = two_wait_for_b_then(&[lease(well_id(1), "b", 2)]);
    // Job 1's lease of b, granted at 0, expires at 10 (the model's TTL).
    let (&lease, l) = before.leases.iter().next().expect("job 1's lease");
    assert_eq!(l.expires_at, Time(10));
    let expired = [Event::LeaseEnded {
        lease,
        cause: LeaseEnd::Expired,
    }];
    assert_eq!(
        check_rules(&before, &before, Time(9), &Input::Tick, &expired),
        Some(DEADLINES),
        "expired one millisecond early"
    );
    let ready = [Event::ResourceReady {
        resource: l.resources[0],
    }];
    let report = Input::ReportReady {
        well: l.well,
        resource: l.resources[0],
    };
    assert_eq!(
        check_rules(&before, &before, Time(10), &report, &ready),
        Some(DEADLINES),
        "a report accepted at the expiry"
    );
    assert_eq!(
        check_rules(&before, &before, Time(9), &report, &ready),
        None
    );
    // A tick at 10 that leaves the lease in the books.
    assert_eq!(
        check_rules(&before, &before, Time(10), &Input::Tick, &[]),
        Some(DEADLINES)
    );
}

#[test]
fn a_worker_asked_for_before_every_group_is_ready_breaks_worker_last() {
    let (_, mut state) = two_wait_for_b();
    assert!(worker_after_resources(&state));
    let mut job = state.jobs[&JobId(1)].clone();
    job.worker = WorkerWant::Queued;
    state.jobs.insert(JobId(1), job);
    assert!(!worker_after_resources(&state));
}

#[test]
fn acquiring_before_a_dependency_succeeded_breaks_dependencies() {
    let (scope, mut state) = two_wait_for_b();
    let deps = |job| scope.dependencies(job);
    let outcome = |_| None;
    let whole = |_| true;
    assert!(dependencies_honoured(&state, deps, outcome, whole));
    // Job 2 waits for job 1, which is still acquiring: it must not ask.
    let mut job = state.jobs[&job_id(1)].clone();
    job.groups[0].state = GroupState::Acquiring { failures: 0 };
    state.jobs.insert(job_id(1), job);
    assert!(!dependencies_honoured(&state, deps, outcome, whole));
    // And once job 1 has failed, job 2 must have ended.
    let (_, state) = two_wait_for_b();
    let cancelled = |j| (j == JobId(1)).then_some(Outcome::Cancelled);
    assert!(!dependencies_honoured(&state, deps, cancelled, whole));
    // Unless job 2 runs on job 1's failure: then it may go on, and a
    // success of job 1 is what must end it.
    let on_failure = |j| match j {
        JobId(2) => vec![(JobId(1), RunOn::Failure)],
        _ => Vec::new(),
    };
    assert!(dependencies_honoured(&state, on_failure, cancelled, whole));
    let succeeded = |j| (j == JobId(1)).then_some(Outcome::Succeeded);
    assert!(!dependencies_honoured(&state, on_failure, succeeded, whole));
}

#[test]
fn acquiring_before_the_inputs_are_whole_breaks_dependencies() {
    let (_, mut state) = two_wait_for_b();
    let none = |_| Vec::new();
    let outcome = |_| None;
    let mut job = state.jobs[&job_id(0)].clone();
    job.groups[0].state = GroupState::Acquiring { failures: 0 };
    state.jobs.insert(job_id(0), job);
    assert!(dependencies_honoured(&state, none, outcome, |_| true));
    assert!(!dependencies_honoured(&state, none, outcome, |j| j != job_id(0)));
}
