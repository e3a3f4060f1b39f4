//! Lease requests, grants, renewal and expiry: rules 2, 4 and 5.

mod common;
use aquifer_core::*;
use common::*;

#[test]
fn a_well_gets_the_oldest_waiting_group_of_its_types() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    submit(&mut s, &[("a", 1)]);
    let t1 = ok(&mut s, lease_request(W1, &[("a", 1)]), 7);
    assert_eq!(
        t1.events,
        vec![Event::LeaseGranted {
            lease: LeaseId(1),
            job: J1,
            group: 0,
            rtype: t("a"),
            well: W1,
            resources: vec![ResourceId(1)],
            expires_at: Time(7 + Limits::default().lease_ttl_ms),
        }]
    );
    assert_eq!(t1.effects, vec![Effect::NotifyJob { job: J1 }]);
}

#[test]
fn a_group_is_granted_whole_in_one_lease() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    let (_, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("b", 2)]), 0)).expect("grant");
    assert_eq!(rs, vec![ResourceId(1), ResourceId(2)]);
}

#[test]
fn the_oldest_is_not_overtaken_by_a_smaller_later_group() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    submit(&mut s, &[("b", 1)]);
    // One slot free: job 1 needs two, and job 2 may not take its place.
    assert!(ok(&mut s, lease_request(W1, &[("b", 1)]), 0).is_empty());
    // But a type whose oldest fits is still served in the same request.
    submit(&mut s, &[("a", 1)]);
    let t1 = ok(&mut s, lease_request(W1, &[("a", 1), ("b", 1)]), 0);
    assert_eq!(granted(&t1).map(|g| g.1), Some(J3));
}

#[test]
fn the_well_reported_free_slots_and_the_books_both_bound_a_grant() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    // The well claims a free slot, but the books say its pool of one is
    // full until job 1's instance is confirmed destroyed.
    assert!(ok(&mut s, lease_request(W1, &[("a", 1)]), 0).is_empty());
}

#[test]
fn a_lease_request_is_refused_for_unknown_wells_and_types_not_served() {
    let s = world();
    assert_eq!(
        rejects(&s, lease_request(WellId(9), &[("a", 1)]), 0),
        "unknown_well"
    );
    assert_eq!(rejects(&s, lease_request(W2, &[("a", 1)]), 0), "not_served");
}

#[test]
fn an_empty_request_or_an_empty_queue_grants_nothing() {
    let mut s = world();
    assert!(ok(&mut s, lease_request(W1, &[("a", 1)]), 0).is_empty());
    submit(&mut s, &[("a", 1)]);
    assert!(ok(&mut s, lease_request(W1, &[]), 0).is_empty());
}

#[test]
fn renewal_extends_a_lease_and_is_refused_when_it_is_not_yours_or_gone() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let (lease, _, _) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("grant");
    let ttl = Limits::default().lease_ttl_ms;
    let e = events(&mut s, Input::RenewLease { well: W1, lease }, 100);
    assert_eq!(
        e,
        vec![Event::LeaseRenewed {
            lease,
            expires_at: Time(100 + ttl)
        }]
    );
    assert_eq!(
        rejects(&s, Input::RenewLease { well: W2, lease }, 100),
        "not_yours"
    );
    assert_eq!(
        rejects(
            &s,
            Input::RenewLease {
                well: W1,
                lease: LeaseId(9)
            },
            100
        ),
        "unknown_lease"
    );
    assert_eq!(
        rejects(&s, Input::RenewLease { well: W1, lease }, 100 + ttl),
        "lease_expired"
    );
    ok(&mut s, Input::Tick, 100 + ttl);
    assert_eq!(
        rejects(&s, Input::RenewLease { well: W1, lease }, 100 + ttl),
        "gone"
    );
}

#[test]
fn an_expired_lease_releases_its_resources_and_requeues_the_group_at_its_place() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    let (lease, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("b", 2)]), 0)).expect("grant");
    submit(&mut s, &[("b", 1)]);
    let ttl = Limits::default().lease_ttl_ms;
    assert_eq!(next_deadline(&s), Some(Time(ttl)));
    let t1 = ok(&mut s, Input::Tick, ttl);
    assert_eq!(
        t1.events,
        vec![Event::LeaseEnded {
            lease,
            cause: LeaseEnd::Expired
        }]
    );
    for r in &rs {
        assert!(t1.effects.contains(&Effect::DestroyResource {
            well: W1,
            resource: *r
        }));
    }
    assert!(t1.effects.contains(&Effect::WakeWells { rtype: t("b") }));
    // A late ready report for what expired is refused.
    assert_eq!(
        rejects(
            &s,
            Input::ReportReady {
                well: W1,
                resource: rs[0]
            },
            ttl
        ),
        "wrong_state"
    );
    for &resource in &rs {
        ok(&mut s, Input::ConfirmDestroyed { well: W1, resource }, ttl);
    }
    // Job 1 keeps its place ahead of job 2.
    assert_eq!(
        granted(&ok(&mut s, lease_request(W1, &[("b", 2)]), ttl)).map(|g| g.1),
        Some(J1)
    );
}

#[test]
fn a_group_that_fails_too_often_fails_its_job() {
    let limits = Limits {
        group_failures_max: 2,
        ..Limits::default()
    };
    let mut s = world_with(Rules::production(), limits);
    submit(&mut s, &[("a", 1)]);
    let ttl = limits.lease_ttl_ms;
    for round in 0..2 {
        let now = round * ttl;
        let (_, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), now)).expect("grant");
        ok(&mut s, Input::Tick, now + ttl);
        ok(
            &mut s,
            Input::ConfirmDestroyed {
                well: W1,
                resource: rs[0],
            },
            now + ttl,
        );
    }
    assert_eq!(phase(&s, J1), None, "failed and retired");
}

#[test]
fn under_the_one_by_one_mutant_a_group_is_leased_an_instance_at_a_time() {
    let rules = Rules {
        grant: GrantMode::OneByOne,
        ..Rules::production()
    };
    let mut s = world_with(rules, Limits::default());
    submit(&mut s, &[("b", 2)]);
    let first = acquire(&mut s, W1, &[("b", 2)], 0);
    assert_eq!(first.len(), 1);
    let second = acquire(&mut s, W1, &[("b", 1)], 0);
    assert_eq!(second.len(), 1);
    assert_eq!(
        s.jobs[&J1].groups[0].state,
        aquifer_core::job::GroupState::Ready
    );
}

#[test]
fn under_the_parallel_mutant_everything_is_asked_for_at_once() {
    let rules = Rules {
        acquisition: AcquisitionPolicy::Parallel,
        ..Rules::production()
    };
    let mut s = world_with(rules, Limits::default());
    let t1 = ok(&mut s, Input::SubmitJob(spec(&[("a", 1), ("b", 1)])), 0);
    assert!(
        t1.events
            .contains(&Event::GroupQueued { job: J1, group: 0 })
    );
    assert!(
        t1.events
            .contains(&Event::GroupQueued { job: J1, group: 1 })
    );
    assert!(t1.events.contains(&Event::WorkerQueued { job: J1 }));
    // The worker may come first, but the job cannot start without its
    // resources.
    let t2 = ok(&mut s, worker_request(1), 0);
    let worker = WorkerId(1);
    assert!(
        t2.events
            .iter()
            .any(|e| matches!(e, Event::WorkerLeased { .. }))
    );
    ok(
        &mut s,
        Input::ReportWorkerCreated {
            factory: F1,
            worker,
        },
        0,
    );
    ok(&mut s, Input::ReportWorkerOnline { worker }, 0);
    assert_eq!(rejects(&s, Input::StartJob { worker }, 0), "job_not_ready");
}

#[test]
fn when_the_head_of_a_queue_leaves_the_wells_are_woken_for_the_next() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    submit(&mut s, &[("b", 1)]);
    let t1 = ok(&mut s, Input::CancelJob { job: J1 }, 0);
    assert!(t1.effects.contains(&Effect::WakeWells { rtype: t("b") }));
    assert_eq!(
        granted(&ok(&mut s, lease_request(W1, &[("b", 1)]), 0)).map(|g| g.1),
        Some(J2)
    );
}

#[test]
fn lifting_the_lease_hold_wakes_wells_and_factories() {
    let mut s = world();
    ok(&mut s, Input::HoldLeases { held: true }, 0);
    submit(&mut s, &[("a", 1)]);
    submit(&mut s, &[]);
    let t1 = ok(&mut s, Input::HoldLeases { held: false }, 0);
    assert!(t1.effects.contains(&Effect::WakeWells { rtype: t("a") }));
    assert!(t1.effects.contains(&Effect::WakeFactories {
        target: target("t")
    }));
}
