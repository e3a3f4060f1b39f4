//! The edges of the core's decisions that the model cannot reach or does
//! not tell apart: the first id never issued, the largest timeout, id
//! exhaustion, a factory reporting no room, which of a well's types goes
//! first, and the names the API shows.

mod common;
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn an_id_already_issued_is_gone_and_the_next_one_is_unknown() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let t = ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    let (lease, _, resources) = granted(&t).expect("a grant");
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    let r = resources[0];
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: r,
        },
        0,
    );
    assert!(s.jobs.is_empty() && s.leases.is_empty() && s.resources.is_empty());

    assert_eq!(rejects(&s, Input::CancelJob { job: J1 }, 0), "gone");
    assert_eq!(s.next_job, J2);
    assert_eq!(rejects(&s, Input::CancelJob { job: J2 }, 0), "unknown_job");

    let ready = |resource| Input::ReportReady { well: W1, resource };
    assert_eq!(rejects(&s, ready(r), 0), "gone");
    assert_eq!(rejects(&s, ready(s.next_resource), 0), "unknown_resource");

    let renew = |lease| Input::RenewLease { well: W1, lease };
    assert_eq!(rejects(&s, renew(lease), 0), "gone");
    assert_eq!(rejects(&s, renew(s.next_lease), 0), "unknown_lease");
}

#[test]
fn a_timeout_of_exactly_the_maximum_is_accepted_and_one_more_is_not() {
    let mut s = world();
    let max = s.limits.job_timeout_max_ms;
    let mut longest = spec(&[("a", 1)]);
    longest.timeout_ms = max;
    ok(&mut s, Input::SubmitJob(longest.clone()), 0);
    longest.timeout_ms = max + 1;
    assert_eq!(rejects(&s, Input::SubmitJob(longest), 0), "limit_exceeded");
}

#[test]
fn a_grant_that_would_exhaust_the_ids_is_refused() {
    let fresh = || {
        let mut s = world();
        submit(&mut s, &[("b", 2)]);
        s
    };
    let request = lease_request(W1, &[("b", 2)]);
    let mut leases = fresh();
    leases.next_lease = LeaseId(u32::MAX);
    assert_eq!(rejects(&leases, request.clone(), 0), "limit_exceeded");
    // Two resources from the last id but one do not fit either.
    let mut resources = fresh();
    resources.next_resource = ResourceId(u32::MAX - 1);
    assert_eq!(rejects(&resources, request.clone(), 0), "limit_exceeded");
    let mut enough = fresh();
    enough.next_resource = ResourceId(u32::MAX - 2);
    let t = ok(&mut enough, request, 0);
    assert!(granted(&t).is_some());
}

#[test]
fn a_factory_that_reports_no_room_for_a_target_gets_no_worker() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    let t = ok(&mut s, worker_request(0), 0);
    assert_eq!(t.answer, Answer::NoLease, "{t:?}");
    lease_worker(&mut s, 0);
    // Its one slot for `t` is now taken: a report of room it does not have
    // by the books gets nothing either.
    submit(&mut s, &[]);
    let t = ok(&mut s, worker_request(1), 0);
    assert_eq!(t.answer, Answer::NoLease, "{t:?}");
}

#[test]
fn a_worker_for_another_target_leaves_the_factory_room_for_this_one() {
    let mut s = world();
    // Job 1 runs on the factory's one worker for `secret`.
    let mut secret = spec(&[]);
    secret.target = target("secret");
    secret.privileges = BTreeSet::from([Privilege::new("lab")]);
    ok(&mut s, Input::SubmitJob(secret), 0);
    let worker = ok(
        &mut s,
        Input::RequestWorker {
            factory: F1,
            free: BTreeMap::from([(target("secret"), 1)]),
        },
        0,
    );
    assert!(matches!(worker.answer, Answer::WorkerLeased { .. }));
    // Job 2, for `t`, still gets the slot for `t`.
    submit(&mut s, &[]);
    let t = ok(&mut s, worker_request(1), 0);
    assert!(
        matches!(t.answer, Answer::WorkerLeased { job, .. } if job == J2),
        "{t:?}"
    );
}

#[test]
fn a_well_serves_the_oldest_head_among_its_types_not_the_first_by_name() {
    let mut s = world();
    // Job 1 waits for `b`, job 2 for `a`; well 1 serves both and has room
    // for both: job 1, the older, goes first although `a` sorts first.
    submit(&mut s, &[("b", 1)]);
    submit(&mut s, &[("a", 1)]);
    let t = ok(&mut s, lease_request(W1, &[("a", 1), ("b", 2)]), 0);
    assert_eq!(granted(&t).map(|(_, job, _)| job), Some(J1));
    let t = ok(&mut s, lease_request(W1, &[("a", 1), ("b", 1)]), 0);
    assert_eq!(granted(&t).map(|(_, job, _)| job), Some(J2));
}

#[test]
fn the_names_the_api_shows() {
    let states = [
        (ResourceState::Creating { lease: LeaseId(1) }, "creating"),
        (ResourceState::Ready, "ready"),
        (ResourceState::Releasing { failures: 0 }, "releasing"),
        (ResourceState::Held, "held"),
    ];
    for (state, name) in states {
        assert_eq!(state.name(), name);
    }
    let workers = [
        (
            WorkerState::Leased {
                expires_at: Time(1),
            },
            "leased",
        ),
        (WorkerState::Created, "created"),
        (WorkerState::Online, "online"),
        (WorkerState::Releasing, "releasing"),
    ];
    for (state, name) in workers {
        assert_eq!(state.name(), name);
    }
    assert_eq!(Time(1500).to_string(), "t=1500ms");
    assert_eq!(Time(1500).ms(), 1500);
}

#[test]
fn a_transition_is_empty_when_it_decided_nothing() {
    let mut s = world();
    let nothing = ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    assert!(nothing.is_empty());
    submit(&mut s, &[("a", 1)]);
    let grant = ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    assert!(!grant.is_empty());
}

#[test]
fn printing_a_state_leaves_out_its_derived_indexes() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let printed = format!("{s:?}");
    assert!(printed.contains("index: Index { .. }"), "{printed}");
}

#[test]
fn limits_that_leave_nothing_to_work_with_are_refused_by_name() {
    assert_eq!(Limits::default().check(), Ok(()));
    let at_least = Limits {
        group_failures_max: 1,
        destroy_failures_max: 1,
        jobs_max: 1,
        jobs_per_owner_max: 1,
        groups_per_job_max: 1,
        depends_per_job_max: 0,
        lease_ttl_ms: Limits::SPAN_MIN_MS,
        worker_lease_ttl_ms: Limits::SPAN_MIN_MS,
        job_timeout_max_ms: Limits::SPAN_MIN_MS,
    };
    assert_eq!(at_least.check(), Ok(()), "the least of each works");
    let short = Limits::SPAN_MIN_MS - 1;
    for (limits, name) in [
        (
            Limits {
                group_failures_max: 0,
                ..at_least
            },
            "group_failures_max",
        ),
        (
            Limits {
                destroy_failures_max: 0,
                ..at_least
            },
            "destroy_failures_max",
        ),
        (
            Limits {
                jobs_max: 0,
                ..at_least
            },
            "jobs_max",
        ),
        (
            Limits {
                jobs_per_owner_max: 0,
                ..at_least
            },
            "jobs_per_owner_max",
        ),
        (
            Limits {
                groups_per_job_max: 0,
                ..at_least
            },
            "groups_per_job_max",
        ),
        (
            Limits {
                lease_ttl_ms: short,
                ..at_least
            },
            "lease_ttl_ms",
        ),
        (
            Limits {
                worker_lease_ttl_ms: short,
                ..at_least
            },
            "worker_lease_ttl_ms",
        ),
        (
            Limits {
                job_timeout_max_ms: short,
                ..at_least
            },
            "job_timeout_max_ms",
        ),
    ] {
        let said = limits.check().expect_err(name);
        assert!(said.contains(name), "{name}: {said}");
    }
}

/// New limits on a recorded state: a destroy count at or past the new
/// limit comes down to one short of it (held at the next failure), a
/// count under it stays, and the state keeps its invariants.
#[test]
fn lowered_destroy_limits_bring_failure_counts_under_them() {
    let mut s = world();
    for _ in 0..3 {
        submit(&mut s, &[("b", 1)]);
    }
    let t = ok(&mut s, lease_request(W1, &[("b", 2)]), 0);
    let (_, _, first) = granted(&t).expect("a grant");
    let t = ok(&mut s, lease_request(W1, &[("b", 1)]), 0);
    let (_, _, second) = granted(&t).expect("a grant");
    for job in [J1, JobId(2)] {
        ok(&mut s, Input::CancelJob { job }, 0);
    }
    let fail = |s: &mut State, resource: ResourceId, times: usize| {
        for _ in 0..times {
            ok(s, Input::ReportDestroyFailed { well: W1, resource }, 0);
        }
    };
    fail(&mut s, first[0], 4);
    fail(&mut s, second[0], 1);
    let failures = |s: &State, r: ResourceId| match s.resources[&r].state {
        ResourceState::Releasing { failures } => failures,
        ref other => panic!("{r} is {other:?}"),
    };
    let lowered = Limits {
        destroy_failures_max: 2,
        ..Limits::default()
    };
    s.set_limits(lowered);
    assert_eq!(s.limits, lowered);
    assert_eq!(failures(&s, first[0]), 1);
    assert_eq!(failures(&s, second[0]), 1, "exactly one short stays");
    invariants::check(&s).expect("the invariants hold under the new limits");
    fail(&mut s, first[0], 1);
    assert_eq!(s.resources[&first[0]].state, ResourceState::Held);
    // Raised again, nothing moves.
    s.set_limits(Limits::default());
    assert_eq!(failures(&s, second[0]), 1);
    assert_eq!(s.resources[&first[0]].state, ResourceState::Held);
}
