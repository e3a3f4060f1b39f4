//! Submission, dependencies, cancellation and timeouts.

mod common;
use aquifer_core::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn submit_groups_requests_by_type_in_rank_order_and_asks_for_the_first() {
    let mut s = world();
    let t1 = ok(
        &mut s,
        Input::SubmitJob(spec(&[("b", 1), ("a", 1), ("b", 1)])),
        5,
    );
    assert_eq!(
        t1.events,
        vec![
            Event::JobSubmitted {
                job: J1,
                target: target("t"),
                groups: vec![(t("a"), 1), (t("b"), 2)],
                deadline: Time(5 + TIMEOUT_MS),
                depends_on: BTreeSet::new(),
                run_on: BTreeMap::new(),
                awaits_inputs: false,
                owner: 0,
            },
            Event::AcquisitionBegan { job: J1 },
            Event::GroupQueued { job: J1, group: 0 },
        ]
    );
    assert_eq!(
        t1.effects,
        vec![
            Effect::NotifyJob { job: J1 },
            Effect::WakeWells { rtype: t("a") }
        ]
    );
}

#[test]
fn a_job_without_resources_asks_for_its_worker_at_once() {
    let mut s = world();
    let t1 = ok(&mut s, Input::SubmitJob(spec(&[])), 0);
    assert!(t1.events.contains(&Event::WorkerQueued { job: J1 }));
    assert!(t1.effects.contains(&Effect::WakeFactories {
        target: target("t")
    }));
}

#[test]
fn submissions_that_can_never_be_served_are_refused() {
    let s = world();
    let with = |f: &dyn Fn(&mut JobSpec)| {
        let mut sp = spec(&[("a", 1)]);
        f(&mut sp);
        Input::SubmitJob(sp)
    };
    assert_eq!(
        rejects(&s, with(&|sp| sp.target = target("nope")), 0),
        "unknown_target"
    );
    assert_eq!(
        rejects(&s, with(&|sp| sp.requests[0].rtype = t("nope")), 0),
        "unknown_type"
    );
    assert_eq!(
        rejects(&s, with(&|sp| sp.requests[0].count = 0), 0),
        "bad_count"
    );
    assert_eq!(
        rejects(&s, with(&|sp| sp.requests[0].count = 2), 0),
        "bad_count"
    );
    // Requests of one type add up against max_per_job.
    assert_eq!(
        rejects(&s, Input::SubmitJob(spec(&[("b", 2), ("b", 1)])), 0),
        "bad_count"
    );
    assert_eq!(
        rejects(&s, with(&|sp| sp.target = target("secret")), 0),
        "privilege_missing"
    );
    assert_eq!(
        rejects(&s, Input::SubmitJob(spec(&[("c", 1)])), 0),
        "privilege_missing"
    );
    assert_eq!(
        rejects(&s, with(&|sp| sp.timeout_ms = 0), 0),
        "limit_exceeded"
    );
    assert_eq!(
        rejects(&s, with(&|sp| sp.timeout_ms = u64::MAX), 0),
        "limit_exceeded"
    );
    assert_eq!(
        rejects(
            &s,
            with(&|sp| sp.depends_on = BTreeSet::from([JobId(7)])),
            0
        ),
        "unknown_job"
    );
}

#[test]
fn a_privileged_owner_may_use_privileged_types_and_targets() {
    let mut s = world();
    let mut sp = spec(&[("c", 1)]);
    sp.target = target("secret");
    sp.privileges = BTreeSet::from([Privilege::new("lab")]);
    ok(&mut s, Input::SubmitJob(sp), 0);
}

#[test]
fn limits_on_jobs_groups_and_dependencies_are_enforced() {
    let limits = Limits {
        jobs_max: 1,
        groups_per_job_max: 1,
        depends_per_job_max: 0,
        ..Limits::default()
    };
    let mut s = world_with(Rules::production(), limits);
    assert_eq!(
        rejects(&s, Input::SubmitJob(spec(&[("a", 1), ("b", 1)])), 0),
        "limit_exceeded"
    );
    let mut with_dep = spec(&[]);
    with_dep.depends_on = BTreeSet::from([J1]);
    assert_eq!(rejects(&s, Input::SubmitJob(with_dep), 0), "limit_exceeded");
    submit(&mut s, &[("a", 1)]);
    assert_eq!(
        rejects(&s, Input::SubmitJob(spec(&[])), 0),
        "limit_exceeded"
    );
}

/// One owner cannot fill the books: at its limit its next submission is
/// refused, another owner's is not, and a place comes back when one of
/// its jobs retires.
#[test]
fn each_owner_has_a_limit_of_jobs_in_the_books() {
    let limits = Limits {
        jobs_per_owner_max: 2,
        ..Limits::default()
    };
    let mut s = world_with(Rules::production(), limits);
    let of = |owner: u64| {
        let mut sp = spec(&[]);
        sp.owner = owner;
        Input::SubmitJob(sp)
    };
    ok(&mut s, of(7), 0);
    ok(&mut s, of(7), 0);
    assert_eq!(s.jobs_of(7), 2);
    assert_eq!(rejects(&s, of(7), 0), "limit_exceeded");
    ok(&mut s, of(8), 0);
    assert_eq!((s.jobs_of(8), s.jobs_of(9)), (1, 0));
    // Job 1 holds nothing: cancelled, it retires and gives its place back.
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    assert!(!s.jobs.contains_key(&J1), "retired");
    assert_eq!(s.jobs_of(7), 1);
    ok(&mut s, of(7), 0);
    assert_eq!(s.jobs_of(7), 2);
}

/// A logged submission that names a retired dependency's outcome reads
/// back: inside the tagged `Input` its map's keys come as strings (found
/// by the soak, where reading the history for the model failed).
#[test]
fn a_logged_submission_with_retired_outcomes_reads_back() {
    let mut sp = spec(&[("a", 1)]);
    sp.depends_on = BTreeSet::from([J1, JobId(7)]);
    sp.retired_outcomes = BTreeMap::from([
        (J1, Outcome::Succeeded),
        (JobId(7), Outcome::Failed(Failure::Tasks)),
    ]);
    let input = Input::SubmitJob(sp);
    let text = serde_json::to_string(&input).expect("json");
    let back: Input = serde_json::from_str(&text).expect("it reads back");
    assert_eq!(back, input);
    let bad = text.replace("\"7\"", "\"seven\"");
    let refused = serde_json::from_str::<Input>(&bad).expect_err("not a job id");
    assert!(
        refused.to_string().contains("\"seven\" is not a job id"),
        "{refused}"
    );
}

/// Logs written before jobs had owners read as the operator's jobs.
#[test]
fn a_submission_logged_without_an_owner_is_the_operators() {
    let mut s = world();
    let before = s.clone();
    let submitted = events(&mut s, Input::SubmitJob(spec(&[])), 0);
    let mut json = serde_json::to_value(&submitted[0]).expect("json");
    let fields = json.as_object_mut().expect("an event is an object");
    assert_eq!(fields["event"], "job_submitted");
    assert_eq!(fields.remove("owner"), Some(serde_json::json!(0)));
    let old: Event = serde_json::from_value(json).expect("an old event reads");
    let mut replayed = before;
    apply(&mut replayed, &old);
    assert_eq!(replayed.jobs[&J1].owner, 0);
    assert_eq!(replayed.jobs_of(0), 1);
}

#[test]
fn a_dependent_acquires_nothing_until_its_dependency_succeeds() {
    let mut s = world();
    submit(&mut s, &[]);
    let mut sp = spec(&[("a", 1)]);
    sp.depends_on = BTreeSet::from([J1]);
    let t2 = ok(&mut s, Input::SubmitJob(sp), 0);
    assert_eq!(t2.events.len(), 1, "only the submission: {:?}", t2.events);
    assert_eq!(phase(&s, J2), Some(Phase::Blocked));
    let w = run(&mut s, 0);
    let end = ok(
        &mut s,
        Input::FinishJob {
            worker: w,
            succeeded: true,
        },
        1,
    );
    assert!(end.events.contains(&Event::DependencySettled {
        job: J2,
        dependency: J1
    }));
    assert!(
        end.events
            .contains(&Event::GroupQueued { job: J2, group: 0 })
    );
    assert_eq!(phase(&s, J2), Some(Phase::Acquiring));
}

#[test]
fn a_dependent_fails_when_its_dependency_fails_and_so_on_down_the_chain() {
    let mut s = world();
    submit(&mut s, &[]);
    for dep in [J1, J2] {
        let mut sp = spec(&[]);
        sp.depends_on = BTreeSet::from([dep]);
        ok(&mut s, Input::SubmitJob(sp), 0);
    }
    let t1 = ok(&mut s, Input::CancelJob { job: J1 }, 0);
    let failed = Outcome::Failed(Failure::Dependency);
    for job in [J2, J3] {
        assert!(t1.events.contains(&Event::JobEnded {
            job,
            outcome: failed
        }));
        assert!(t1.events.contains(&Event::JobRetired { job }));
    }
}

#[test]
fn a_dependency_already_ended_or_retired_is_settled_at_submission() {
    let mut s = world();
    submit(&mut s, &[]);
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    assert_eq!(
        phase(&s, J1),
        None,
        "a cancelled job that held nothing retires at once"
    );
    let mut sp = spec(&[]);
    sp.depends_on = BTreeSet::from([J1]);
    // Without its outcome the core cannot settle it: the caller must look
    // it up and submit again.
    assert_eq!(
        rejects(&s, Input::SubmitJob(sp.clone()), 0),
        "dependency_retired"
    );
    sp.retired_outcomes = BTreeMap::from([(J1, Outcome::Succeeded)]);
    ok(&mut s, Input::SubmitJob(sp.clone()), 0);
    assert_eq!(phase(&s, J2), Some(Phase::Acquiring));
    sp.retired_outcomes = BTreeMap::from([(J1, Outcome::Cancelled)]);
    ok(&mut s, Input::SubmitJob(sp), 0);
    assert_eq!(phase(&s, J3), None, "failed at once and retired");
}

#[test]
fn a_dependent_runs_on_the_ending_it_asked_for_and_fails_on_any_other() {
    // J2 runs if J1 fails, J3 whatever J1 does, J4 only if J1 succeeds.
    let mut s = world();
    submit(&mut s, &[]);
    for on in [RunOn::Failure, RunOn::Either, RunOn::Success] {
        let mut sp = spec(&[]);
        sp.depends_on = BTreeSet::from([J1]);
        sp.run_on = BTreeMap::from([(J1, on)]);
        ok(&mut s, Input::SubmitJob(sp), 0);
    }
    let w = run(&mut s, 0);
    let failing = Input::FinishJob {
        worker: w,
        succeeded: false,
    };
    let end = ok(&mut s, failing, 1);
    for job in [J2, J3] {
        assert!(
            end.events.contains(&Event::DependencySettled {
                job,
                dependency: J1
            }),
            "{job} is settled by a failure: {:?}",
            end.events
        );
        assert!(end.events.contains(&Event::AcquisitionBegan { job }));
    }
    assert!(end.events.contains(&Event::JobEnded {
        job: JobId(4),
        outcome: Outcome::Failed(Failure::Dependency)
    }));
    // J5 runs only if J2 fails; J2 will succeed, so J5 fails then, and
    // J6, which runs only if J5 succeeds, with it.
    let mut sp = spec(&[]);
    sp.depends_on = BTreeSet::from([J2]);
    sp.run_on = BTreeMap::from([(J2, RunOn::Failure)]);
    ok(&mut s, Input::SubmitJob(sp), 2);
    submit_after(&mut s, &[], JobId(5));
    let gone = Input::ConfirmWorkerDestroyed {
        factory: F1,
        worker: w,
    };
    ok(&mut s, gone, 2);
    let w2 = run(&mut s, 2);
    assert_eq!(
        s.workers[&w2].job, J2,
        "the oldest waiting job is served first"
    );
    let done = Input::FinishJob {
        worker: w2,
        succeeded: true,
    };
    let end = ok(&mut s, done, 3);
    for job in [JobId(5), JobId(6)] {
        assert!(
            end.events.contains(&Event::JobEnded {
                job,
                outcome: Outcome::Failed(Failure::Dependency)
            }),
            "{job}: {:?}",
            end.events
        );
    }
}

#[test]
fn an_ended_dependency_is_judged_by_the_ending_asked_for_at_submission() {
    let mut s = world();
    submit(&mut s, &[]);
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    let mut sp = spec(&[]);
    sp.depends_on = BTreeSet::from([J1]);
    sp.retired_outcomes = BTreeMap::from([(J1, Outcome::Cancelled)]);
    sp.run_on = BTreeMap::from([(J1, RunOn::Failure)]);
    ok(&mut s, Input::SubmitJob(sp.clone()), 0);
    assert_eq!(
        phase(&s, J2),
        Some(Phase::Acquiring),
        "a cancel is not a success"
    );
    sp.run_on = BTreeMap::from([(J1, RunOn::Success)]);
    ok(&mut s, Input::SubmitJob(sp.clone()), 0);
    assert_eq!(phase(&s, J3), None, "failed at once and retired");
    // A condition on a job that is not a dependency is refused.
    sp.run_on = BTreeMap::from([(J2, RunOn::Either)]);
    assert_eq!(rejects(&s, Input::SubmitJob(sp), 0), "unknown_job");
}

#[test]
fn a_job_awaiting_inputs_acquires_nothing_until_they_are_whole() {
    let mut s = world();
    let mut sp = spec(&[("a", 1)]);
    sp.awaits_inputs = true;
    let t = ok(&mut s, Input::SubmitJob(sp.clone()), 0);
    assert_eq!(t.events.len(), 1, "only the submission: {:?}", t.events);
    assert_eq!(phase(&s, J1), Some(Phase::Blocked));
    let e = aquifer_core::explain::explain(&s, J1).expect("explained");
    assert_eq!(e.waiting_for, "its inputs to be uploaded");
    let t = ok(&mut s, Input::InputsComplete { job: J1 }, 1);
    assert_eq!(
        t.events,
        vec![
            Event::InputsArrived { job: J1 },
            Event::AcquisitionBegan { job: J1 },
            Event::GroupQueued { job: J1, group: 0 },
        ]
    );
    assert_eq!(
        rejects(&s, Input::InputsComplete { job: J1 }, 1),
        "not_awaiting_inputs",
        "twice"
    );
    // Inputs and a dependency: the job waits for both, in either order.
    submit(&mut s, &[]);
    sp.depends_on = BTreeSet::from([J2]);
    ok(&mut s, Input::SubmitJob(sp), 1);
    ok(&mut s, Input::CancelJob { job: J1 }, 1);
    let w = run(&mut s, 1);
    let done = Input::FinishJob {
        worker: w,
        succeeded: true,
    };
    let end = ok(&mut s, done, 2);
    assert!(end.events.contains(&Event::DependencySettled {
        job: J3,
        dependency: J2
    }));
    assert_eq!(
        phase(&s, J3),
        Some(Phase::Blocked),
        "its inputs are not whole"
    );
    ok(&mut s, Input::InputsComplete { job: J3 }, 3);
    assert_eq!(phase(&s, J3), Some(Phase::Acquiring));
    assert_eq!(
        rejects(&s, Input::InputsComplete { job: JobId(9) }, 3),
        "unknown_job"
    );
}

#[test]
fn cancel_releases_everything_and_refuses_a_second_time() {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 2)]);
    let a = acquire(&mut s, W1, &[("a", 1)], 0);
    // b is being created when the job is cancelled.
    let g = ok(&mut s, lease_request(W1, &[("b", 2)]), 0);
    let (lease, _, bs) = granted(&g).expect("b granted");
    let t1 = ok(&mut s, Input::CancelJob { job: J1 }, 1);
    assert_eq!(
        t1.events[0],
        Event::JobEnded {
            job: J1,
            outcome: Outcome::Cancelled
        }
    );
    assert!(t1.events.contains(&Event::LeaseEnded {
        lease,
        cause: LeaseEnd::JobEnded
    }));
    assert!(
        t1.events
            .contains(&Event::ResourceReleased { resource: a[0] })
    );
    for r in a.iter().chain(&bs) {
        assert!(t1.effects.contains(&Effect::DestroyResource {
            well: W1,
            resource: *r
        }));
    }
    assert_eq!(rejects(&s, Input::CancelJob { job: J1 }, 1), "job_ended");
    assert_eq!(rejects(&s, Input::CancelJob { job: J3 }, 1), "unknown_job");
}

#[test]
fn a_job_times_out_at_its_deadline_and_releases_what_it_holds() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let a = acquire(&mut s, W1, &[("a", 1)], 0);
    ok(&mut s, worker_request(1), 0);
    ok(
        &mut s,
        Input::ReportWorkerCreated {
            factory: F1,
            worker: WorkerId(1),
        },
        0,
    );
    assert_eq!(next_deadline(&s), Some(Time(TIMEOUT_MS)));
    assert!(ok(&mut s, Input::Tick, TIMEOUT_MS - 1).is_empty());
    let t1 = ok(&mut s, Input::Tick, TIMEOUT_MS);
    assert_eq!(
        t1.events[0],
        Event::JobEnded {
            job: J1,
            outcome: Outcome::TimedOut
        }
    );
    assert!(
        t1.events
            .contains(&Event::ResourceReleased { resource: a[0] })
    );
    assert_eq!(next_deadline(&s), None);
}

#[test]
fn pending_effects_are_what_the_state_still_owes() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    assert_eq!(
        pending_effects(&s),
        vec![Effect::WakeWells { rtype: t("a") }]
    );
    let a = acquire(&mut s, W1, &[("a", 1)], 0);
    assert_eq!(
        pending_effects(&s),
        vec![Effect::WakeFactories {
            target: target("t")
        }]
    );
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    assert_eq!(
        pending_effects(&s),
        vec![Effect::DestroyResource {
            well: W1,
            resource: a[0]
        }]
    );
}

#[test]
fn a_dependency_and_its_dependent_timing_out_together_end_once_each() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let mut sp = spec(&[]);
    sp.depends_on = BTreeSet::from([J1]);
    ok(&mut s, Input::SubmitJob(sp), 0);
    // Both are due at the same instant: job 1 times out, job 2 fails with
    // it (and retires, holding nothing) before its own timeout is looked at.
    let t1 = ok(&mut s, Input::Tick, TIMEOUT_MS);
    let ended: Vec<_> = t1
        .events
        .iter()
        .filter_map(|e| match e {
            Event::JobEnded { job, outcome } => Some((*job, *outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        vec![
            (J1, Outcome::TimedOut),
            (J2, Outcome::Failed(Failure::Dependency))
        ]
    );
}
