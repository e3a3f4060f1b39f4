//! Reports from wells: ready, failed, destroyed, destroy failed; and the
//! operator's release of a held resource.

mod common;
use aquifer_core::*;
use common::*;

#[test]
fn ready_moves_the_job_to_its_next_group_then_to_the_worker() {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 2)]);
    let g = ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    let (lease, _, rs) = granted(&g).expect("grant");
    let t1 = ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: rs[0],
        },
        0,
    );
    assert_eq!(
        t1.events,
        vec![
            Event::ResourceReady { resource: rs[0] },
            Event::LeaseFulfilled { lease },
            Event::GroupReady { job: J1, group: 0 },
            Event::GroupQueued { job: J1, group: 1 },
        ]
    );
    assert!(t1.effects.contains(&Effect::WakeWells { rtype: t("b") }));
    let g = ok(&mut s, lease_request(W1, &[("b", 2)]), 0);
    let (_, _, bs) = granted(&g).expect("grant");
    let half = ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: bs[0],
        },
        0,
    );
    assert_eq!(half.events, vec![Event::ResourceReady { resource: bs[0] }]);
    let whole = ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: bs[1],
        },
        0,
    );
    assert!(whole.events.contains(&Event::WorkerQueued { job: J1 }));
}

#[test]
fn reports_on_resources_that_are_not_yours_unknown_gone_or_done_are_refused() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let g = ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    let (_, _, rs) = granted(&g).expect("grant");
    let r = rs[0];
    assert_eq!(
        rejects(
            &s,
            Input::ReportReady {
                well: W2,
                resource: r
            },
            0
        ),
        "not_yours"
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportReady {
                well: W1,
                resource: ResourceId(99)
            },
            0
        ),
        "unknown_resource"
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportReady {
                well: W1,
                resource: r
            },
            Limits::default().lease_ttl_ms
        ),
        "lease_expired"
    );
    assert_eq!(
        rejects(
            &s,
            Input::ConfirmDestroyed {
                well: W1,
                resource: r
            },
            0
        ),
        "wrong_state"
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportDestroyFailed {
                well: W1,
                resource: r
            },
            0
        ),
        "wrong_state"
    );
    ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: r,
        },
        0,
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportReady {
                well: W1,
                resource: r
            },
            0
        ),
        "duplicate"
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportFailed {
                well: W1,
                resource: r,
                retryable: true
            },
            0
        ),
        "wrong_state"
    );
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert_eq!(
        rejects(
            &s,
            Input::ConfirmDestroyed {
                well: W1,
                resource: r
            },
            0
        ),
        "gone"
    );
}

#[test]
fn a_retryable_failure_requeues_the_group_and_a_permanent_one_fails_the_job() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let (lease, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("grant");
    let cause = LeaseEnd::Failed {
        resource: rs[0],
        retryable: true,
    };
    let t1 = ok(
        &mut s,
        Input::ReportFailed {
            well: W1,
            resource: rs[0],
            retryable: true,
        },
        0,
    );
    assert_eq!(t1.events, vec![Event::LeaseEnded { lease, cause }]);
    assert!(t1.effects.contains(&Effect::DestroyResource {
        well: W1,
        resource: rs[0]
    }));
    assert_eq!(phase(&s, J1), Some(Phase::Acquiring));
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: rs[0],
        },
        0,
    );
    let (_, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("again");
    let t2 = ok(
        &mut s,
        Input::ReportFailed {
            well: W1,
            resource: rs[0],
            retryable: false,
        },
        0,
    );
    assert!(t2.events.contains(&Event::JobEnded {
        job: J1,
        outcome: Outcome::Failed(Failure::Resource)
    }));
}

#[test]
fn destroy_failures_hold_the_resource_until_an_operator_releases_it() {
    let limits = Limits {
        destroy_failures_max: 2,
        ..Limits::default()
    };
    let mut s = world_with(Rules::production(), limits);
    submit(&mut s, &[("a", 1)]);
    let r = acquire(&mut s, W1, &[("a", 1)], 0)[0];
    assert_eq!(
        rejects(&s, Input::ReleaseHeld { resource: r }, 0),
        "wrong_state"
    );
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    let e = events(
        &mut s,
        Input::ReportDestroyFailed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert_eq!(e, vec![Event::DestroyFailed { resource: r }]);
    let e = events(
        &mut s,
        Input::ReportDestroyFailed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert_eq!(
        e,
        vec![
            Event::DestroyFailed { resource: r },
            Event::ResourceHeld { resource: r }
        ]
    );
    assert!(
        pending_effects(&s).is_empty(),
        "a held resource waits for an operator"
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportDestroyFailed {
                well: W1,
                resource: r
            },
            0
        ),
        "wrong_state"
    );
    // Its capacity is still counted.
    submit(&mut s, &[("a", 1)]);
    assert!(ok(&mut s, lease_request(W1, &[("a", 1)]), 0).is_empty());
    let t1 = ok(&mut s, Input::ReleaseHeld { resource: r }, 0);
    assert_eq!(t1.events, vec![Event::HeldReleased { resource: r }]);
    assert_eq!(
        t1.effects,
        vec![
            Effect::NotifyJob { job: J1 },
            Effect::DestroyResource {
                well: W1,
                resource: r
            }
        ]
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReleaseHeld {
                resource: ResourceId(99)
            },
            0
        ),
        "unknown_resource"
    );
    let done = ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert!(
        done.events
            .contains(&Event::ResourceDestroyed { resource: r })
    );
    assert!(done.events.contains(&Event::JobRetired { job: J1 }));
    assert!(granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).is_some());
}

#[test]
fn a_held_resource_confirmed_gone_leaves_the_books() {
    let limits = Limits {
        destroy_failures_max: 1,
        ..Limits::default()
    };
    let mut s = world_with(Rules::production(), limits);
    submit(&mut s, &[("a", 1)]);
    let r = acquire(&mut s, W1, &[("a", 1)], 0)[0];
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    ok(
        &mut s,
        Input::ReportDestroyFailed {
            well: W1,
            resource: r,
        },
        0,
    );
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert!(s.resources.is_empty());
}

#[test]
fn failure_reports_that_do_not_fit_are_refused() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    let g = ok(&mut s, lease_request(W1, &[("b", 2)]), 0);
    let (_, _, rs) = granted(&g).expect("grant");
    let failed = |well, resource| Input::ReportFailed {
        well,
        resource,
        retryable: true,
    };
    assert_eq!(rejects(&s, failed(W2, rs[0]), 0), "not_yours");
    assert_eq!(
        rejects(&s, failed(W1, ResourceId(99)), 0),
        "unknown_resource"
    );
    let ttl = Limits::default().lease_ttl_ms;
    assert_eq!(rejects(&s, failed(W1, rs[0]), ttl), "lease_expired");
    ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: rs[0],
        },
        0,
    );
    // Ready already: a failure for it contradicts what the well said.
    assert_eq!(rejects(&s, failed(W1, rs[0]), 0), "wrong_state");
    ok(&mut s, failed(W1, rs[1]), 0);
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: rs[0],
        },
        0,
    );
    assert_eq!(rejects(&s, failed(W1, rs[0]), 0), "gone");
    assert_eq!(rejects(&s, failed(W1, rs[1]), 0), "wrong_state");
}

#[test]
fn a_retried_group_keeps_its_place_ahead_of_later_jobs() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    submit(&mut s, &[("a", 1)]);
    let (_, job, rs) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("grant");
    assert_eq!(job, J1);
    ok(
        &mut s,
        Input::ReportFailed {
            well: W1,
            resource: rs[0],
            retryable: true,
        },
        0,
    );
    let t1 = ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: rs[0],
        },
        0,
    );
    // Capacity came back: the wells are woken for what waits.
    assert!(t1.effects.contains(&Effect::WakeWells { rtype: t("a") }));
    assert_eq!(
        granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).map(|g| g.1),
        Some(J1)
    );
}

#[test]
fn resource_events_notify_the_job_they_belong_to() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    let g = ok(&mut s, lease_request(W1, &[("b", 2)]), 0);
    let (_, _, rs) = granted(&g).expect("grant");
    let t1 = ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: rs[0],
        },
        0,
    );
    assert_eq!(t1.effects, vec![Effect::NotifyJob { job: J1 }]);
}

#[test]
fn release_of_a_resource_that_left_the_books_is_gone() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let r = acquire(&mut s, W1, &[("a", 1)], 0)[0];
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert_eq!(rejects(&s, Input::ReleaseHeld { resource: r }, 0), "gone");
    assert_eq!(rejects(&s, Input::CancelJob { job: J1 }, 0), "gone");
}
