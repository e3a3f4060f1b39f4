//! Explanations: a job's place in its queue, what it holds, who holds what
//! it waits for, and which event concerns which job.

mod common;

use aquifer_core::effect::subject;
use aquifer_core::explain::{TargetLoad, TypeLoad, chain, explain, load};
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

/// J4 waits for `a`, held by J3, which waits for `b`, held by J2, which
/// waits for the one worker of `t`, held by J1, which runs.
fn three_holders_deep() -> (State, [JobId; 4]) {
    let mut s = world();
    let j1 = submit(&mut s, &[]);
    run(&mut s, 0);
    let j2 = submit(&mut s, &[("b", 2)]);
    acquire(&mut s, W1, &[("b", 2)], 0);
    let j3 = submit(&mut s, &[("a", 1), ("b", 2)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    let j4 = submit(&mut s, &[("a", 1)]);
    (s, [j1, j2, j3, j4])
}

/// A link as (job, depth, (the job it blocks, why), phase).
type Shape<'a> = (JobId, u16, Option<(JobId, &'a str)>, &'a str);

#[test]
fn the_chain_follows_holders_down_to_a_running_job() {
    let (s, [j1, j2, j3, j4]) = three_holders_deep();
    let links = chain(&s, j4).expect("a live job");
    let shape: Vec<Shape> = (links.iter())
        .map(|l| {
            let blocks = l.blocks.as_ref().map(|(j, why)| (*j, why.as_str()));
            (l.job, l.depth, blocks, l.phase)
        })
        .collect();
    assert_eq!(
        shape,
        [
            (j4, 0, None, "acquiring"),
            (j3, 1, Some((j4, "holds 1 × a")), "acquiring"),
            (j2, 2, Some((j3, "holds 2 × b")), "acquiring"),
            (j1, 3, Some((j2, "holds a worker for t")), "running"),
        ]
    );
    assert!(links[0].waiting_for.contains("held by job 3"), "{links:?}");
    assert!(
        links[2]
            .waiting_for
            .contains("every worker of its factories taken"),
        "{}",
        links[2].waiting_for
    );
    assert_eq!(links[3].waiting_for, "nothing: it is running");
    // Asked about the middle, the chain starts there.
    let from_j2 = chain(&s, j2).expect("a live job");
    assert_eq!(from_j2.iter().map(|l| l.job).collect::<Vec<_>>(), [j2, j1]);
}

#[test]
fn the_chain_names_jobs_ahead_and_unfinished_dependencies_once_each() {
    let mut s = world();
    let first = submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    let second = submit(&mut s, &[("a", 1)]);
    let third = submit(&mut s, &[("a", 1)]);
    let after = submit_after(&mut s, &[("b", 1)], third);
    let links = chain(&s, after).expect("a live job");
    let shape: Vec<(JobId, u16, String)> = (links.iter())
        .map(|l| {
            (
                l.job,
                l.depth,
                l.blocks.clone().map(|b| b.1).unwrap_or_default(),
            )
        })
        .collect();
    // `third` waits on `second`, ahead of it, and on `first`, which holds
    // the `a`; `second` waits on `first` too, which is not shown twice.
    assert_eq!(
        shape,
        [
            (after, 0, String::new()),
            (third, 1, "is a job it depends on".into()),
            (second, 2, "is ahead of it for a".into()),
            (first, 2, "holds 1 × a".into()),
        ]
    );
    assert_eq!(links[3].phase, "acquiring", "waiting for its worker");
    assert!(links[3].waiting_for.contains("a worker for t"));
}

#[test]
fn a_job_with_room_enough_is_not_held_up_by_holders_and_ended_jobs_end_the_chain() {
    let mut s = world();
    let first = submit(&mut s, &[("b", 1)]);
    acquire(&mut s, W1, &[("b", 1)], 0);
    let second = submit(&mut s, &[("b", 1)]);
    let links = chain(&s, second).expect("a live job");
    assert_eq!(links.len(), 1, "one b is free: {links:?}");
    assert!(links[0].waiting_for.contains("1 free in its wells"));

    ok(&mut s, Input::CancelJob { job: first }, 0);
    let e = chain(&s, first).expect("not retired while its resource is released");
    assert_eq!(e[0].phase, "ended");
    assert_eq!(e[0].waiting_for, "nothing: it has ended (cancelled)");
    assert_eq!(chain(&s, JobId(99)), None);
}

#[test]
fn a_type_no_well_serves_gets_a_verdict() {
    let mut s = world();
    ok(
        &mut s,
        Input::DefineType {
            rtype: t("d"),
            spec: TypeSpec {
                max_per_job: 1,
                privilege: None,
            },
        },
        0,
    );
    let job = submit(&mut s, &[("d", 1)]);
    let links = chain(&s, job).expect("a live job");
    assert_eq!(
        links[0].waiting_for,
        "1 × d: no well serves d: the job waits until one is registered"
    );
}

#[test]
fn outcomes_read_as_words() {
    let words: Vec<String> = [
        Outcome::Succeeded,
        Outcome::Failed(Failure::Tasks),
        Outcome::Failed(Failure::Resource),
        Outcome::Failed(Failure::WorkerLost),
        Outcome::Failed(Failure::Dependency),
        Outcome::Cancelled,
        Outcome::TimedOut,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        words,
        [
            "succeeded",
            "failed: its tasks",
            "failed: a resource",
            "failed: its worker was lost",
            "failed: a job it depends on did not end as required",
            "cancelled",
            "timed out"
        ]
    );
}

#[test]
fn only_holders_of_the_targets_workers_stand_in_a_workers_way() {
    let mut s = world();
    let mut lab = spec(&[]);
    lab.target = target("secret");
    lab.privileges = std::collections::BTreeSet::from([Privilege::new("lab")]);
    ok(&mut s, Input::SubmitJob(lab), 0);
    let to_secret = Input::RequestWorker {
        factory: F1,
        free: std::collections::BTreeMap::from([(target("secret"), 1)]),
    };
    ok(&mut s, to_secret, 0);
    let first = submit(&mut s, &[]);
    // With room in the factory, nobody is in its way yet.
    let links = chain(&s, first).expect("a live job");
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].waiting_for, "a worker for t: place 1 in its queue");
    run(&mut s, 0);
    let second = submit(&mut s, &[]);
    let links = chain(&s, second).expect("a live job");
    let jobs: Vec<(JobId, String)> = (links.iter())
        .map(|l| (l.job, l.blocks.clone().map(|b| b.1).unwrap_or_default()))
        .collect();
    assert_eq!(
        jobs,
        [
            (second, String::new()),
            (first, "holds a worker for t".into())
        ],
        "the job holding a worker for `secret` is not in the way"
    );
}

#[test]
fn a_group_being_created_waits_on_nobody() {
    let mut s = world();
    let first = submit(&mut s, &[("b", 1)]);
    acquire(&mut s, W1, &[("b", 1)], 0);
    let second = submit(&mut s, &[("b", 1)]);
    ok(&mut s, lease_request(W1, &[("b", 1)]), 0);
    // The pool is full, and `first` holds a `b`; but `second`'s own is
    // being made, so nobody stands in its way.
    let e = explain(&s, second).expect("a live job");
    assert_eq!(e.groups[0].state, "creating");
    assert_eq!(e.groups[0].holders.get(&first), Some(&1));
    assert_eq!(chain(&s, second).expect("a live job").len(), 1);
}

#[test]
fn the_load_counts_each_types_queue_and_instances_and_each_targets_workers() {
    let mut s = world();
    let first = submit(&mut s, &[("b", 2)]);
    acquire(&mut s, W1, &[("b", 2)], 0);
    submit(&mut s, &[("a", 1), ("b", 1)]);
    ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    submit(&mut s, &[("a", 1)]);
    let l = load(&s);
    let a = &l.types[&t("a")];
    assert_eq!(
        (
            a.queued,
            a.creating,
            a.ready,
            a.releasing,
            a.held,
            a.capacity
        ),
        (1, 1, 0, 0, 0, 1)
    );
    let b = &l.types[&t("b")];
    assert_eq!((b.queued, b.ready, b.capacity), (0, 2, 2));
    // A defined type nobody asks for is listed, empty but for its pools.
    assert_eq!(
        l.types[&t("c")],
        TypeLoad {
            capacity: 1,
            ..TypeLoad::default()
        }
    );
    let target_t = &l.targets[&target("t")];
    assert_eq!(
        (
            target_t.queued,
            target_t.workers,
            target_t.running,
            target_t.capacity
        ),
        (1, 0, 0, 1)
    );
    let phases: Vec<(&str, u32)> = l.jobs.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    assert_eq!(
        phases,
        [
            ("acquiring", 3),
            ("blocked", 0),
            ("ended", 0),
            ("running", 0)
        ]
    );
    assert_eq!((l.leases, l.leases_held), (1, false));

    run(&mut s, 0);
    let target_t = &load(&s).targets[&target("t")];
    assert_eq!(
        (target_t.queued, target_t.workers, target_t.running),
        (0, 1, 1)
    );
    ok(&mut s, Input::CancelJob { job: first }, 0);
    let l = load(&s);
    assert_eq!((l.jobs["ended"], l.jobs["running"]), (1, 0));
    let b = &l.types[&t("b")];
    assert_eq!((b.ready, b.releasing), (0, 2));
    let target_t = &l.targets[&target("t")];
    assert_eq!(
        (target_t.queued, target_t.workers, target_t.running),
        (0, 1, 0)
    );
    let r = s.resources.keys().next().copied().expect("a resource");
    let well = s.resources[&r].well;
    for _ in 0..s.limits.destroy_failures_max {
        ok(&mut s, Input::ReportDestroyFailed { well, resource: r }, 0);
    }
    assert_eq!(load(&s).types[&t("b")].held, 1);
    assert_eq!(
        load(&s).targets[&target("secret")],
        TargetLoad {
            capacity: 1,
            ..TargetLoad::default()
        }
    );
}
