//! `apply` refuses what no correct `step` decides: each of its consistency
//! checks panics on an event that breaks it, even where the event is
//! otherwise well formed. (A corrupt log must stop the server, not be
//! folded into a state nobody decided.)

mod common;

use aquifer_core::job::WorkerWant;
use aquifer_core::*;
use common::*;

fn panics(state: &State, event: &Event) -> bool {
    let mut s = state.clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(&mut s, event))).is_err()
}

#[test]
fn acquisition_cannot_begin_while_a_dependency_is_outstanding() {
    let mut s = world();
    let first = submit(&mut s, &[("a", 1)]);
    let job = submit_after(&mut s, &[("b", 1)], first);
    assert!(panics(&s, &Event::AcquisitionBegan { job }));
}

#[test]
fn a_grant_must_use_the_next_lease_id_and_the_next_resource_id() {
    let mut s = world();
    let job = submit(&mut s, &[("b", 2)]);
    let t = step(&s, lease_request(W1, &[("b", 2)]), Time(0)).expect("a grant");
    let Some(Event::LeaseGranted {
        lease,
        group,
        rtype,
        well,
        resources,
        expires_at,
        ..
    }) = t.events.first().cloned()
    else {
        panic!("a grant: {:?}", t.events);
    };
    let grant = |lease: LeaseId, resources: Vec<ResourceId>| Event::LeaseGranted {
        lease,
        job,
        group,
        rtype: rtype.clone(),
        well,
        resources,
        expires_at,
    };
    assert!(!panics(&s, &grant(lease, resources.clone())));
    // Either id out of order is enough to refuse it.
    assert!(panics(&s, &grant(LeaseId(lease.0 + 1), resources.clone())));
    let shifted = resources.iter().map(|r| ResourceId(r.0 + 1)).collect();
    assert!(panics(&s, &grant(lease, shifted)));
}

#[test]
fn a_worker_lease_expires_only_for_the_worker_its_job_is_bound_to() {
    let mut s = world();
    let job = submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    let worker = lease_worker(&mut s, 0);
    let expired = Event::WorkerLeaseExpired { worker };
    assert!(!panics(&s, &expired));
    // The job's books say another worker is its own.
    let mut j = s.jobs[&job].clone();
    j.worker = WorkerWant::Bound(WorkerId(worker.0 + 1));
    s.jobs.insert(job, j);
    assert!(panics(&s, &expired));
}
