//! Factories and agents: worker leases, creation, check-in, start, finish,
//! loss, destruction and worker lease expiry.

mod common;
use aquifer_core::*;
use common::*;
use std::collections::BTreeMap;

#[test]
fn the_worker_is_leased_only_to_a_job_that_holds_everything() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    assert!(ok(&mut s, worker_request(1), 0).is_empty());
    acquire(&mut s, W1, &[("a", 1)], 0);
    let t1 = ok(&mut s, worker_request(1), 3);
    let expires_at = Time(3 + Limits::default().worker_lease_ttl_ms);
    assert_eq!(
        t1.events,
        vec![Event::WorkerLeased {
            worker: WorkerId(1),
            job: J1,
            factory: F1,
            expires_at
        }]
    );
}

#[test]
fn a_job_runs_then_finishes_and_everything_goes_back() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let r = acquire(&mut s, W1, &[("a", 1)], 0)[0];
    let w = run(&mut s, 0);
    assert_eq!(phase(&s, J1), Some(Phase::Running));
    let t1 = ok(
        &mut s,
        Input::FinishJob {
            worker: w,
            succeeded: true,
        },
        1,
    );
    assert_eq!(
        t1.events,
        vec![
            Event::JobEnded {
                job: J1,
                outcome: Outcome::Succeeded
            },
            Event::ResourceReleased { resource: r },
            Event::WorkerReleased { worker: w },
        ]
    );
    assert!(t1.effects.contains(&Effect::DestroyWorker {
        factory: F1,
        worker: w
    }));
    ok(
        &mut s,
        Input::ConfirmDestroyed {
            well: W1,
            resource: r,
        },
        1,
    );
    assert_eq!(
        rejects(
            &s,
            Input::FinishJob {
                worker: w,
                succeeded: true
            },
            1
        ),
        "wrong_state"
    );
    let last = ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        1,
    );
    assert_eq!(
        last.events,
        vec![
            Event::WorkerDestroyed { worker: w },
            Event::JobRetired { job: J1 }
        ]
    );
    assert!(s.jobs.is_empty() && s.resources.is_empty() && s.workers.is_empty());
}

#[test]
fn a_failing_task_fails_the_job() {
    let mut s = world();
    submit(&mut s, &[]);
    let w = run(&mut s, 0);
    ok(
        &mut s,
        Input::FinishJob {
            worker: w,
            succeeded: false,
        },
        0,
    );
    assert_eq!(
        phase(&s, J1),
        Some(Phase::Ended(Outcome::Failed(Failure::Tasks)))
    );
}

#[test]
fn out_of_order_and_duplicate_worker_reports_are_refused() {
    let mut s = world();
    submit(&mut s, &[]);
    let w = WorkerId(1);
    assert_eq!(
        rejects(&s, Input::ReportWorkerOnline { worker: w }, 0),
        "unknown_worker"
    );
    assert_eq!(
        rejects(&s, Input::StartJob { worker: w }, 0),
        "unknown_worker"
    );
    ok(&mut s, worker_request(1), 0);
    assert_eq!(
        rejects(&s, Input::ReportWorkerOnline { worker: w }, 0),
        "wrong_state"
    );
    assert_eq!(rejects(&s, Input::StartJob { worker: w }, 0), "wrong_state");
    assert_eq!(
        rejects(
            &s,
            Input::ReportWorkerCreated {
                factory: FactoryId(2),
                worker: w
            },
            0
        ),
        "not_yours"
    );
    ok(
        &mut s,
        Input::ReportWorkerCreated {
            factory: F1,
            worker: w,
        },
        0,
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportWorkerCreated {
                factory: F1,
                worker: w
            },
            0
        ),
        "duplicate"
    );
    ok(&mut s, Input::ReportWorkerOnline { worker: w }, 0);
    assert_eq!(
        rejects(&s, Input::ReportWorkerOnline { worker: w }, 0),
        "duplicate"
    );
    assert_eq!(
        rejects(
            &s,
            Input::FinishJob {
                worker: w,
                succeeded: true
            },
            0
        ),
        "job_not_running"
    );
    ok(&mut s, Input::StartJob { worker: w }, 0);
    assert_eq!(rejects(&s, Input::StartJob { worker: w }, 0), "duplicate");
    assert_eq!(
        rejects(
            &s,
            Input::ConfirmWorkerDestroyed {
                factory: F1,
                worker: w
            },
            0
        ),
        "wrong_state"
    );
}

#[test]
fn factory_requests_are_refused_for_unknown_factories_and_targets_not_served() {
    let mut s = world();
    let unknown = Input::RequestWorker {
        factory: FactoryId(9),
        free: BTreeMap::new(),
    };
    assert_eq!(rejects(&s, unknown, 0), "unknown_factory");
    ok(
        &mut s,
        Input::DefineTarget {
            target: target("other"),
            spec: TargetSpec { privilege: None },
        },
        0,
    );
    let other = Input::RequestWorker {
        factory: F1,
        free: BTreeMap::from([(target("other"), 1)]),
    };
    assert_eq!(rejects(&s, other, 0), "not_served");
}

#[test]
fn a_lost_worker_fails_its_job_and_is_released() {
    let mut s = world();
    submit(&mut s, &[]);
    let w = run(&mut s, 0);
    assert_eq!(
        rejects(
            &s,
            Input::ReportWorkerLost {
                factory: FactoryId(2),
                worker: w
            },
            0
        ),
        "not_yours"
    );
    let t1 = ok(
        &mut s,
        Input::ReportWorkerLost {
            factory: F1,
            worker: w,
        },
        0,
    );
    assert_eq!(
        t1.events,
        vec![
            Event::JobEnded {
                job: J1,
                outcome: Outcome::Failed(Failure::WorkerLost)
            },
            Event::WorkerReleased { worker: w },
        ]
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportWorkerLost {
                factory: F1,
                worker: w
            },
            0
        ),
        "wrong_state"
    );
    ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        0,
    );
    assert_eq!(rejects(&s, Input::StartJob { worker: w }, 0), "gone");
}

#[test]
fn an_expired_worker_lease_requeues_the_job_for_a_worker() {
    let mut s = world();
    submit(&mut s, &[]);
    submit(&mut s, &[]);
    ok(&mut s, worker_request(1), 0);
    let ttl = Limits::default().worker_lease_ttl_ms;
    let w = WorkerId(1);
    assert_eq!(
        rejects(
            &s,
            Input::ReportWorkerCreated {
                factory: F1,
                worker: w
            },
            ttl
        ),
        "gone"
    );
    let t1 = ok(&mut s, Input::Tick, ttl);
    assert_eq!(t1.events, vec![Event::WorkerLeaseExpired { worker: w }]);
    assert!(t1.effects.contains(&Effect::DestroyWorker {
        factory: F1,
        worker: w
    }));
    assert!(t1.effects.contains(&Effect::WakeFactories {
        target: target("t")
    }));
    ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        ttl,
    );
    // Job 1 keeps its place ahead of job 2.
    let again = ok(&mut s, worker_request(1), ttl);
    assert!(
        again
            .events
            .iter()
            .any(|e| matches!(e, Event::WorkerLeased { job: J1, .. }))
    );
}

#[test]
fn a_replaced_worker_cannot_start_or_finish_the_job() {
    let mut s = world();
    ok(
        &mut s,
        Input::RegisterFactory {
            factory: FactoryId(2),
            capacity: BTreeMap::from([(target("t"), 2)]),
        },
        0,
    );
    submit(&mut s, &[]);
    let request = |n| Input::RequestWorker {
        factory: FactoryId(2),
        free: BTreeMap::from([(target("t"), n)]),
    };
    ok(&mut s, request(2), 0);
    let (old, new) = (WorkerId(1), WorkerId(2));
    let ttl = Limits::default().worker_lease_ttl_ms;
    ok(&mut s, Input::Tick, ttl);
    // The old worker is releasing, but its factory has not confirmed it.
    ok(&mut s, request(1), ttl);
    ok(
        &mut s,
        Input::ReportWorkerCreated {
            factory: FactoryId(2),
            worker: new,
        },
        ttl,
    );
    ok(&mut s, Input::ReportWorkerOnline { worker: new }, ttl);
    ok(&mut s, Input::StartJob { worker: new }, ttl);
    assert_eq!(
        rejects(
            &s,
            Input::FinishJob {
                worker: old,
                succeeded: true
            },
            ttl
        ),
        "wrong_state"
    );
    assert_eq!(
        rejects(&s, Input::StartJob { worker: old }, ttl),
        "wrong_state"
    );
    ok(
        &mut s,
        Input::FinishJob {
            worker: new,
            succeeded: true,
        },
        ttl,
    );
}

#[test]
fn worker_reports_for_unknown_or_gone_workers_are_refused() {
    let mut s = world();
    let w = WorkerId(1);
    for input in [
        Input::ReportWorkerCreated {
            factory: F1,
            worker: w,
        },
        Input::ReportWorkerLost {
            factory: F1,
            worker: w,
        },
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        Input::FinishJob {
            worker: w,
            succeeded: true,
        },
    ] {
        assert_eq!(rejects(&s, input, 0), "unknown_worker");
    }
    submit(&mut s, &[]);
    ok(&mut s, worker_request(1), 0);
    ok(
        &mut s,
        Input::ReportWorkerLost {
            factory: F1,
            worker: w,
        },
        0,
    );
    assert_eq!(
        rejects(
            &s,
            Input::ReportWorkerCreated {
                factory: F1,
                worker: w
            },
            0
        ),
        "wrong_state"
    );
    ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        0,
    );
    for input in [
        Input::ReportWorkerCreated {
            factory: F1,
            worker: w,
        },
        Input::ReportWorkerLost {
            factory: F1,
            worker: w,
        },
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        Input::ReportWorkerOnline { worker: w },
        Input::FinishJob {
            worker: w,
            succeeded: true,
        },
    ] {
        assert_eq!(rejects(&s, input, 0), "gone");
    }
}

#[test]
fn a_destroyed_worker_wakes_factories_for_the_jobs_still_waiting() {
    let mut s = world();
    submit(&mut s, &[]);
    submit(&mut s, &[]);
    let w = run(&mut s, 0);
    ok(
        &mut s,
        Input::FinishJob {
            worker: w,
            succeeded: true,
        },
        0,
    );
    let t1 = ok(
        &mut s,
        Input::ConfirmWorkerDestroyed {
            factory: F1,
            worker: w,
        },
        0,
    );
    assert!(t1.effects.contains(&Effect::WakeFactories {
        target: target("t")
    }));
    assert!(t1.effects.contains(&Effect::NotifyJob { job: J1 }));
}
