//! Explanations: a job's place in its queue, what it holds, who holds what
//! it waits for, and which event concerns which job.

mod common;

use aquifer_core::effect::subject;
use aquifer_core::explain::explain;
use aquifer_core::*;
use common::*;

#[test]
fn a_queued_job_is_told_its_place_and_who_holds_what_it_waits_for() {
    let mut s = world();
    let first = submit(&mut s, &[("a", 1)]);
    let second = submit(&mut s, &[("a", 1), ("b", 2)]);
    let third = submit(&mut s, &[("a", 1)]);
    let held = acquire(&mut s, W1, &[("a", 1)], 1);

    let e = explain(&s, third).expect("a live job");
    assert_eq!(e.phase, "acquiring");
    let a = &e.groups[0];
    assert_eq!((a.state, a.position), ("queued", Some(2)));
    assert_eq!(a.ahead, vec![second]);
    assert_eq!(a.holders.get(&first), Some(&1));
    assert_eq!(a.wells.len(), 1);
    assert_eq!((a.wells[0].capacity, a.wells[0].room), (1, 0));
    assert!(e.waiting_for.contains("place 2"), "{}", e.waiting_for);
    assert!(
        e.waiting_for.contains(&first.to_string()),
        "{}",
        e.waiting_for
    );

    // The second job's later group has not been asked for yet.
    let e = explain(&s, second).expect("a live job");
    assert_eq!(e.groups[1].state, "not_yet");
    assert_eq!(e.groups[1].rtype, t("b"));

    // The holder holds its instance and waits for a worker.
    let e = explain(&s, first).expect("a live job");
    assert_eq!(e.groups[0].state, "ready");
    assert_eq!(e.groups[0].holds.len(), 1);
    assert_eq!(e.groups[0].holds[0].resource, held[0]);
    assert_eq!((e.worker.state, e.worker.position), ("queued", Some(1)));
    assert!(
        e.waiting_for.contains("a worker for t"),
        "{}",
        e.waiting_for
    );
}

#[test]
fn a_blocked_job_names_its_dependencies_and_an_unknown_job_has_no_explanation() {
    let mut s = world();
    let first = submit(&mut s, &[("a", 1)]);
    let job = submit_after(&mut s, &[("b", 1)], first);
    let e = explain(&s, job).expect("a live job");
    assert_eq!(e.phase, "blocked");
    assert_eq!(e.depends_on, vec![first]);
    assert!(e.waiting_for.contains(&first.to_string()));
    assert!(explain(&s, JobId(99)).is_none());
}

#[test]
fn every_event_of_a_job_is_attributed_to_it() {
    let mut s = world();
    let job = submit(&mut s, &[("a", 1)]);
    let mut seen = Vec::new();
    let mut step_and_record = |s: &mut State, input: Input| {
        let t = step(s, input, Time(1)).expect("accepted");
        for e in &t.events {
            seen.push((e.clone(), subject(s, e)));
            apply(s, e);
        }
    };
    step_and_record(&mut s, lease_request(W1, &[("a", 1)]));
    let resource = *s.resources.keys().next().expect("a resource");
    step_and_record(&mut s, Input::ReportReady { well: W1, resource });
    step_and_record(&mut s, Input::CancelJob { job });
    step_and_record(&mut s, Input::ConfirmDestroyed { well: W1, resource });
    assert!(seen.len() >= 6, "{seen:?}");
    for (e, about) in &seen {
        assert_eq!(*about, Some(job), "{e:?}");
    }
}

#[test]
fn a_group_lists_only_its_own_instances_and_holders_only_of_its_type() {
    let mut s = world();
    let first = submit(&mut s, &[("a", 1), ("b", 2)]);
    let second = submit(&mut s, &[("a", 1)]);
    let a = acquire(&mut s, W1, &[("a", 1)], 0);
    // The first job's b is being created under a lease.
    let t = ok(&mut s, lease_request(W1, &[("b", 2)]), 0);
    let (_, _, b) = granted(&t).expect("a grant of b");

    let e = explain(&s, first).expect("a live job");
    let holds =
        |g: usize| -> Vec<ResourceId> { e.groups[g].holds.iter().map(|h| h.resource).collect() };
    assert_eq!(holds(0), a);
    assert_eq!(holds(1), b);
    assert_eq!(e.groups[1].state, "creating");
    assert!(
        e.waiting_for.contains("a well is creating them"),
        "{}",
        e.waiting_for
    );

    // The second job waits for a: one instance of a, held by the first;
    // the first's instances of b are not in the count.
    let e = explain(&s, second).expect("a live job");
    assert_eq!(e.groups[0].state, "queued");
    assert_eq!(
        e.groups[0].holders,
        std::collections::BTreeMap::from([(first, 1)])
    );
}

#[test]
fn a_workers_place_counts_only_jobs_of_its_target_waiting_for_a_worker() {
    let mut s = world();
    // The older job is still acquiring; the younger holds all it needs
    // and waits for a worker.
    let older = submit(&mut s, &[("b", 2)]);
    let younger = submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    let e = explain(&s, younger).expect("a live job");
    assert_eq!(e.worker.state, "queued");
    assert_eq!(
        (e.worker.position, e.worker.ahead.clone()),
        (Some(1), vec![])
    );
    assert!(!e.waiting_for.contains("no factory"), "{}", e.waiting_for);
    let e = explain(&s, older).expect("a live job");
    assert_eq!(e.worker.position, None);
}

#[test]
fn a_worker_no_factory_serves_is_named() {
    let mut s = world();
    ok(
        &mut s,
        Input::DefineTarget {
            target: target("bare"),
            spec: TargetSpec { privilege: None },
        },
        0,
    );
    let mut bare = spec(&[]);
    bare.target = target("bare");
    let t = ok(&mut s, Input::SubmitJob(bare), 0);
    let Some(Event::JobSubmitted { job, .. }) = t.events.first() else {
        panic!("a submission: {:?}", t.events);
    };
    let e = explain(&s, *job).expect("a live job");
    assert!(e.worker.factories.is_empty());
    assert!(
        e.waiting_for.contains("no factory serves it"),
        "{}",
        e.waiting_for
    );
}

#[test]
fn free_room_is_told_when_the_holders_leave_enough() {
    let mut s = world();
    let first = submit(&mut s, &[("b", 1)]);
    acquire(&mut s, W1, &[("b", 2)], 0);
    // One of b's two slots is free: enough for the second job, though the
    // first holds the other.
    let second = submit(&mut s, &[("b", 1)]);
    let e = explain(&s, second).expect("a live job");
    assert_eq!(e.groups[0].holders.get(&first), Some(&1));
    assert!(
        e.waiting_for.contains("1 free in its wells"),
        "{}",
        e.waiting_for
    );
}
