//! The core's answers to questions about a state that the server's
//! endpoints ask: what it wants of each resource and worker, what a well
//! or factory must destroy, when an agent stops, and whether a repeated
//! `created` report gets a new bootstrap key.

mod common;
use aquifer_core::resource::{ResourceState, Want as ResourceWant};
use aquifer_core::worker::{Want as WorkerWant, WorkerState};
use aquifer_core::*;
use common::*;
use std::collections::BTreeSet;

/// The destroy lists of every well and factory add up to the destroy
/// effects `pending_effects` owes: one rule, asked two ways.
fn destroy_lists_agree_with_pending_effects(s: &State) {
    let mut listed = BTreeSet::new();
    for &well in s.wells.keys() {
        for resource in s.to_destroy_by_well(well) {
            listed.insert(Effect::DestroyResource { well, resource });
        }
    }
    for &factory in s.factories.keys() {
        for worker in s.to_destroy_by_factory(factory) {
            listed.insert(Effect::DestroyWorker { factory, worker });
        }
    }
    let owed: BTreeSet<Effect> = (pending_effects(s).into_iter())
        .filter(|e| {
            matches!(
                e,
                Effect::DestroyResource { .. } | Effect::DestroyWorker { .. }
            )
        })
        .collect();
    assert_eq!(listed, owed);
}

#[test]
fn a_resource_is_kept_while_live_released_after_its_job_and_held_after_failing_too_often() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let (_, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("grant");
    let r = rs[0];
    let want = |s: &State| s.resources[&r].state.want();
    assert_eq!(want(&s), ResourceWant::Keep, "being created");
    ok(
        &mut s,
        Input::ReportReady {
            well: W1,
            resource: r,
        },
        0,
    );
    assert_eq!(want(&s), ResourceWant::Keep, "ready");
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    assert_eq!(want(&s), ResourceWant::Release);
    while s.resources[&r].state != ResourceState::Held {
        ok(
            &mut s,
            Input::ReportDestroyFailed {
                well: W1,
                resource: r,
            },
            0,
        );
    }
    assert_eq!(want(&s), ResourceWant::Hold);
}

#[test]
fn a_worker_is_kept_until_its_job_ends_and_then_destroyed() {
    let mut s = world();
    submit(&mut s, &[]);
    let worker = run(&mut s, 0);
    assert_eq!(s.workers[&worker].state.want(), WorkerWant::Keep);
    ok(
        &mut s,
        Input::FinishJob {
            worker,
            succeeded: true,
        },
        0,
    );
    assert_eq!(s.workers[&worker].state, WorkerState::Releasing);
    assert_eq!(s.workers[&worker].state.want(), WorkerWant::Destroy);
}

#[test]
fn what_a_well_and_a_factory_must_destroy_is_what_pending_effects_owe_them() {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 2)]);
    let a = acquire(&mut s, W1, &[("a", 1)], 0);
    let b = acquire(&mut s, W1, &[("b", 2)], 0);
    destroy_lists_agree_with_pending_effects(&s);
    assert!(s.to_destroy_by_well(W1).is_empty());
    let worker = run(&mut s, 0);
    ok(
        &mut s,
        Input::FinishJob {
            worker,
            succeeded: false,
        },
        0,
    );
    destroy_lists_agree_with_pending_effects(&s);
    assert_eq!(s.to_destroy_by_well(W1), [a.clone(), b.clone()].concat());
    assert!(
        s.to_destroy_by_well(W2).is_empty(),
        "another well's are not"
    );
    assert_eq!(s.to_destroy_by_factory(F1), vec![worker]);
    assert!(s.to_destroy_by_factory(FactoryId(2)).is_empty());
    // Held for an operator: no longer on the destroy list.
    while s.resources[&a[0]].state != ResourceState::Held {
        let failed = Input::ReportDestroyFailed {
            well: W1,
            resource: a[0],
        };
        ok(&mut s, failed, 0);
    }
    destroy_lists_agree_with_pending_effects(&s);
    assert_eq!(s.to_destroy_by_well(W1), b);
    ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker,
        },
        0,
    );
    destroy_lists_agree_with_pending_effects(&s);
    assert!(s.to_destroy_by_factory(F1).is_empty());
}

#[test]
fn an_agent_goes_on_while_its_job_runs_and_stops_with_the_outcome_when_it_ends() {
    let mut s = world();
    submit(&mut s, &[]);
    let worker = run(&mut s, 0);
    assert_eq!(s.agent_must_stop(worker), None);
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    let stop = s.agent_must_stop(worker);
    assert_eq!(stop, Some(Stop::JobEnded(Outcome::Cancelled)));
    assert_eq!(stop.and_then(|s| s.outcome()), Some(Outcome::Cancelled));
    ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker,
        },
        0,
    );
    assert_eq!(
        s.agent_must_stop(worker),
        Some(Stop::WorkerReleased),
        "its worker is gone, and its job with it"
    );
}

#[test]
fn an_agent_stops_when_its_worker_is_released_though_its_job_goes_on() {
    let mut s = world();
    submit(&mut s, &[]);
    ok(&mut s, worker_request(1), 0);
    let worker = WorkerId(1);
    assert_eq!(s.agent_must_stop(worker), None, "leased, not yet created");
    // The factory never reported it created: its lease expires, the job
    // waits for another worker, and this one is released.
    ok(&mut s, Input::Tick, Limits::default().worker_lease_ttl_ms);
    assert_eq!(phase(&s, J1), Some(Phase::Acquiring));
    assert_eq!(s.agent_must_stop(worker), Some(Stop::WorkerReleased));
    assert_eq!(Stop::WorkerReleased.outcome(), None);
    assert_eq!(s.agent_must_stop(WorkerId(9)), Some(Stop::WorkerReleased));
}

#[test]
fn a_lost_worker_stops_its_agent_with_the_jobs_failure() {
    let mut s = world();
    submit(&mut s, &[]);
    let worker = run(&mut s, 0);
    ok(
        &mut s,
        Input::ReportWorkerLost {
            factory: F1,
            worker,
        },
        0,
    );
    assert_eq!(
        s.agent_must_stop(worker),
        Some(Stop::JobEnded(Outcome::Failed(Failure::WorkerLost)))
    );
}

#[test]
fn a_repeated_created_report_is_refused_but_gets_a_new_key_until_the_agent_checks_in() {
    let mut s = world();
    submit(&mut s, &[]);
    ok(&mut s, worker_request(1), 0);
    let worker = WorkerId(1);
    let created = Input::ReportWorkerCreated {
        factory: F1,
        worker,
    };
    assert!(!s.may_reissue_bootstrap(F1, worker), "not created yet");
    ok(&mut s, created.clone(), 0);
    assert_eq!(rejects(&s, created.clone(), 0), "duplicate");
    assert!(s.may_reissue_bootstrap(F1, worker));
    assert!(!s.may_reissue_bootstrap(FactoryId(2), worker), "not yours");
    assert!(!s.may_reissue_bootstrap(F1, WorkerId(9)), "unknown");
    ok(&mut s, Input::ReportWorkerOnline { worker }, 0);
    assert_eq!(rejects(&s, created, 0), "duplicate");
    assert!(!s.may_reissue_bootstrap(F1, worker), "the agent has a key");
}

#[test]
fn a_running_job_is_what_its_agent_starts_and_its_token_reads_until_it_ends() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    let rs = acquire(&mut s, W1, &[("b", 2)], 0);
    assert_eq!(s.readable_resources(J1), None, "not running yet");
    assert!(s.running_jobs().is_empty());
    let worker = run(&mut s, 0);
    let deadline = s.jobs[&J1].deadline;
    assert_eq!(s.running_job_of(worker), Some((J1, deadline)));
    assert_eq!(s.running_jobs(), BTreeSet::from([J1]));
    assert_eq!(
        s.readable_resources(J1),
        Some(std::collections::BTreeMap::from([(t("b"), rs.clone())])),
        "every ready resource, by type, in id order"
    );
    assert_eq!(s.running_job_of(WorkerId(9)), None, "an unknown worker");
    ok(&mut s, Input::CancelJob { job: J1 }, 0);
    assert_eq!(s.running_job_of(worker), None);
    assert_eq!(
        s.readable_resources(J1),
        None,
        "its token reads nothing now"
    );
    assert!(s.running_jobs().is_empty());
}
