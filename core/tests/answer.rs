//! The answers of `step`: what the sender of an input is told, beside the
//! events, so no caller searches the events for its answer.

mod common;
use aquifer_core::*;
use common::*;
use std::collections::BTreeMap;

#[test]
fn a_submission_answers_with_the_new_jobs_id() {
    let mut s = world();
    let t1 = ok(&mut s, Input::SubmitJob(spec(&[("a", 1)])), 5);
    assert_eq!(t1.answer, Answer::Submitted { job: J1 });
    let t2 = ok(&mut s, Input::SubmitJob(spec(&[])), 5);
    assert_eq!(t2.answer, Answer::Submitted { job: J2 });
}

#[test]
fn a_grant_answers_with_the_lease_its_resources_and_the_jobs_deadline() {
    let mut s = world();
    submit(&mut s, &[("b", 2)]);
    let t1 = ok(&mut s, lease_request(W1, &[("b", 2)]), 7);
    assert_eq!(
        t1.answer,
        Answer::LeaseGranted {
            lease: LeaseId(1),
            job: J1,
            rtype: t("b"),
            resources: vec![ResourceId(1), ResourceId(2)],
            deadline: Time(TIMEOUT_MS),
            expires_at: Time(7 + Limits::default().lease_ttl_ms),
        }
    );
}

#[test]
fn a_request_with_nothing_to_grant_answers_no_lease() {
    let mut s = world();
    assert_eq!(
        ok(&mut s, lease_request(W1, &[("a", 1)]), 0).answer,
        Answer::NoLease
    );
    assert_eq!(ok(&mut s, worker_request(1), 0).answer, Answer::NoLease);
    // Work is waiting, but an operator holds new leases.
    submit(&mut s, &[]);
    submit(&mut s, &[("a", 1)]);
    ok(&mut s, Input::HoldLeases { held: true }, 0);
    assert_eq!(
        ok(&mut s, lease_request(W1, &[("a", 1)]), 0).answer,
        Answer::NoLease
    );
    assert_eq!(ok(&mut s, worker_request(1), 0).answer, Answer::NoLease);
}

#[test]
fn a_renewal_answers_with_the_new_expiry() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let (lease, ..) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("grant");
    let t1 = ok(&mut s, Input::RenewLease { well: W1, lease }, 40);
    assert_eq!(
        t1.answer,
        Answer::LeaseRenewed {
            expires_at: Time(40 + Limits::default().lease_ttl_ms),
        }
    );
}

#[test]
fn a_worker_lease_answers_with_the_worker_its_job_and_target() {
    let mut s = world();
    submit(&mut s, &[]);
    let t1 = ok(&mut s, worker_request(1), 3);
    assert_eq!(
        t1.answer,
        Answer::WorkerLeased {
            worker: WorkerId(1),
            job: J1,
            target: target("t"),
            expires_at: Time(3 + Limits::default().worker_lease_ttl_ms),
        }
    );
}

#[test]
fn a_start_answers_with_the_job_and_its_deadline() {
    let mut s = world();
    submit(&mut s, &[]);
    ok(&mut s, worker_request(1), 0);
    let worker = WorkerId(1);
    ok(
        &mut s,
        Input::ReportWorkerCreated {
            factory: F1,
            worker,
        },
        0,
    );
    ok(&mut s, Input::ReportWorkerOnline { worker }, 0);
    let t1 = ok(&mut s, Input::StartJob { worker }, 9);
    assert_eq!(
        t1.answer,
        Answer::Started {
            job: J1,
            deadline: Time(TIMEOUT_MS),
        }
    );
}

#[test]
fn inputs_with_nothing_more_to_say_answer_done() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let (_, _, rs) = granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).expect("grant");
    let ready = Input::ReportReady {
        well: W1,
        resource: rs[0],
    };
    assert_eq!(ok(&mut s, ready, 0).answer, Answer::Done);
    assert_eq!(
        ok(&mut s, Input::CancelJob { job: J1 }, 0).answer,
        Answer::Done
    );
    let free = BTreeMap::from([(target("t"), 1)]);
    let again = Input::RequestWorker { factory: F1, free };
    assert_eq!(ok(&mut s, again, 0).answer, Answer::NoLease);
}
