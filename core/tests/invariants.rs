//! The invariant checker is not vacuous: for every invariant, states that
//! break it (one per condition it checks) are named as such, and states at
//! its boundary that keep it pass. Each corrupt state is made from one that
//! `step` reached, changed behind `apply`'s back, and reindexed, so the
//! invariant under test is the first one broken.

mod common;
use aquifer_core::invariants::check;
use aquifer_core::job::{GroupState, WorkerWant};
use aquifer_core::resource::{Resource, ResourceState};
use aquifer_core::state::Books;
use aquifer_core::worker::{Worker, WorkerState};
use aquifer_core::*;
use common::*;

/// The name of the first invariant `s` breaks, once its indexes are
/// rebuilt from its books.
fn broken(mut s: State) -> Result<(), &'static str> {
    s.reindex();
    check(&s).map_err(|v| v.name)
}

fn job(s: &mut State, id: JobId) -> &mut job::Job {
    s.jobs.get_mut(&id).expect("job in the books")
}

fn resource(s: &mut State, id: ResourceId) -> &mut Resource {
    s.resources.get_mut(&id).expect("resource in the books")
}

/// Job 1 holds `a` (ready, at well 1, whose pool for `a` is then full).
fn holding() -> State {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    check(&s).expect("a state made by step is sound");
    s
}

/// Job 1 asked for `a` and well 1 is creating it under a lease.
fn creating() -> (State, LeaseId, ResourceId) {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let t = ok(&mut s, lease_request(W1, &[("a", 1)]), 0);
    let (lease, _, resources) = granted(&t).expect("a grant");
    (s, lease, resources[0])
}

/// Job 1 holds `a` and both of `b`: well 1's pools are full.
fn full() -> State {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 2)]);
    acquire(&mut s, W1, &[("a", 1), ("b", 2)], 0);
    acquire(&mut s, W1, &[("b", 2)], 0);
    check(&s).expect("a state made by step is sound");
    s
}

/// Job 1 runs on its worker, the factory's only one for target `t`.
fn running() -> (State, WorkerId) {
    let mut s = holding();
    let worker = run(&mut s, 0);
    check(&s).expect("a state made by step is sound");
    (s, worker)
}

/// Every resource of the state is being released.
fn release_all(s: &mut State) {
    let ids: Vec<ResourceId> = s.resources.keys().copied().collect();
    for r in ids {
        resource(s, r).state = ResourceState::Releasing { failures: 0 };
    }
}

fn first<K: Copy + Ord, V: Clone>(books: &Books<K, V>) -> K {
    books.get_min().expect("something in the books").0
}

#[test]
fn an_id_at_its_counter_is_caught_for_every_kind_of_id() {
    let (s, ..) = creating();
    let mut jobs = s.clone();
    jobs.next_job = first(&s.jobs);
    assert_eq!(broken(jobs), Err("ids-below-counters"));
    let mut leases = s.clone();
    leases.next_lease = first(&s.leases);
    assert_eq!(broken(leases), Err("ids-below-counters"));
    let mut resources = s;
    resources.next_resource = first(&resources.resources);
    assert_eq!(broken(resources), Err("ids-below-counters"));
    let (mut workers, worker) = running();
    workers.next_worker = worker;
    assert_eq!(broken(workers), Err("ids-below-counters"));
}

#[test]
fn a_lease_for_a_group_that_is_not_acquiring_is_caught() {
    let (mut s, ..) = creating();
    job(&mut s, J1).groups[0].state = GroupState::Ready;
    assert_eq!(broken(s), Err("lease-for-acquiring-group"));
}

#[test]
fn a_lease_over_a_resource_that_does_not_match_it_is_caught() {
    let (s, _, r) = creating();
    let corruptions: [fn(&mut Resource); 4] = [
        |r| r.job = J2,
        |r| r.group = 1,
        |r| r.well = W2,
        |r| r.state = ResourceState::Held,
    ];
    for corrupt in corruptions {
        let mut bad = s.clone();
        corrupt(resource(&mut bad, r));
        assert_eq!(broken(bad), Err("lease-covers-its-resources"));
    }
    let mut gone = s;
    gone.resources.remove(&r);
    assert_eq!(broken(gone), Err("lease-covers-its-resources"));
}

#[test]
fn a_resource_of_a_job_not_in_the_books_is_caught() {
    let mut s = holding();
    let r = first(&s.resources);
    resource(&mut s, r).job = JobId(9);
    assert_eq!(broken(s), Err("resource-has-job"));
}

#[test]
fn a_resource_at_a_well_that_does_not_serve_its_type_is_caught() {
    let s = holding();
    let r = first(&s.resources);
    for well in [W2, WellId(9)] {
        let mut bad = s.clone();
        resource(&mut bad, r).well = well;
        assert_eq!(broken(bad), Err("resource-well-serves-type"));
    }
}

#[test]
fn a_resource_created_under_a_lease_that_does_not_cover_it_is_caught() {
    let (s, lease, _) = creating();
    let mut uncovered = s.clone();
    uncovered
        .leases
        .get_mut(&lease)
        .expect("lease")
        .resources
        .clear();
    assert_eq!(broken(uncovered), Err("creating-under-lease"));
    let mut gone = s;
    gone.leases.remove(&lease);
    assert_eq!(broken(gone), Err("creating-under-lease"));
}

#[test]
fn a_ready_resource_of_an_ended_job_is_caught() {
    let mut s = holding();
    job(&mut s, J1).phase = Phase::Ended(Outcome::Cancelled);
    assert_eq!(broken(s), Err("ready-only-for-live-jobs"));
}

#[test]
fn a_resource_releasing_after_its_last_allowed_failure_is_caught() {
    let mut s = holding();
    let max = s.limits.destroy_failures_max;
    let r = first(&s.resources);
    job(&mut s, J1).phase = Phase::Ended(Outcome::Cancelled);
    job(&mut s, J1).groups[0].state = GroupState::Idle;
    resource(&mut s, r).state = ResourceState::Releasing { failures: max - 1 };
    assert_eq!(broken(s.clone()), Ok(()), "one failure short of the hold");
    resource(&mut s, r).state = ResourceState::Releasing { failures: max };
    assert_eq!(broken(s), Err("hold-after-failures"));
}

#[test]
fn a_pool_over_its_capacity_is_caught_and_a_full_one_is_not() {
    let s = full();
    assert_eq!(broken(s.clone()), Ok(()), "every pool of well 1 is full");
    let mut over = s;
    let extra = ResourceId(99);
    over.next_resource = ResourceId(100);
    over.resources.insert(
        extra,
        Resource {
            job: J1,
            group: 0,
            rtype: t("a"),
            well: W1,
            state: ResourceState::Held,
        },
    );
    assert_eq!(broken(over), Err("pool-within-capacity"));
}

fn extra_worker(s: &mut State, job: JobId, target_name: &str, state: WorkerState) {
    s.workers.insert(
        WorkerId(99),
        Worker {
            job,
            factory: F1,
            target: target(target_name),
            state,
        },
    );
    s.next_worker = WorkerId(100);
}

#[test]
fn a_factory_over_its_capacity_is_caught_and_a_full_one_is_not() {
    let (s, _) = running();
    assert_eq!(
        broken(s.clone()),
        Ok(()),
        "the factory's slot for t is full"
    );
    let mut over = s.clone();
    extra_worker(&mut over, J1, "t", WorkerState::Releasing);
    assert_eq!(broken(over), Err("factory-within-capacity"));
    let mut unknown = s;
    extra_worker(&mut unknown, J1, "nowhere", WorkerState::Releasing);
    assert_eq!(broken(unknown), Err("factory-within-capacity"));
}

#[test]
fn a_group_holding_more_than_its_count_is_caught() {
    let mut s = holding();
    job(&mut s, J1).groups[0].count = 0;
    assert_eq!(broken(s), Err("group-within-count"));
}

#[test]
fn a_ready_group_missing_an_instance_is_caught_unless_its_job_ended() {
    let s = full();
    let b = (s.resources.iter())
        .find(|(_, r)| r.rtype == t("b"))
        .map(|(&id, _)| id)
        .expect("a b");
    let mut short = s.clone();
    resource(&mut short, b).state = ResourceState::Releasing { failures: 0 };
    assert_eq!(broken(short), Err("ready-group-is-whole"));
    // An ended job's groups keep their last state while what they held is
    // released.
    let mut ended = s;
    job(&mut ended, J1).phase = Phase::Ended(Outcome::Cancelled);
    release_all(&mut ended);
    assert_eq!(broken(ended), Ok(()));
}

#[test]
fn an_idle_group_that_holds_something_is_caught() {
    let mut s = holding();
    job(&mut s, J1).groups[0].state = GroupState::Idle;
    assert_eq!(broken(s), Err("idle-group-holds-nothing"));
}

#[test]
fn an_ended_job_that_still_holds_is_caught() {
    let (mut s, ..) = creating();
    job(&mut s, J1).phase = Phase::Ended(Outcome::Cancelled);
    assert_eq!(broken(s), Err("ended-job-holds-nothing"));
}

#[test]
fn a_worker_not_bound_to_its_job_is_caught() {
    let (s, worker) = running();
    let mut missing = s.clone();
    job(&mut missing, J1).worker = WorkerWant::Bound(WorkerId(99));
    missing.next_worker = WorkerId(100);
    assert_eq!(broken(missing), Err("worker-bound-to-its-job"));
    let mut releasing = s.clone();
    releasing.workers.get_mut(&worker).expect("worker").state = WorkerState::Releasing;
    assert_eq!(broken(releasing), Err("worker-bound-to-its-job"));
    // Another job's worker.
    let mut other = s.clone();
    other.workers.get_mut(&worker).expect("worker").job = J2;
    let mut j2 = other.jobs[&J1].clone();
    j2.worker = WorkerWant::Idle;
    j2.groups.clear();
    other.jobs.insert(J2, j2);
    other.next_job = J3;
    assert_eq!(broken(other), Err("worker-bound-to-its-job"));
    // An ended job may point at a worker being destroyed, or one gone.
    let mut ended = s;
    job(&mut ended, J1).phase = Phase::Ended(Outcome::Cancelled);
    release_all(&mut ended);
    ended.workers.get_mut(&worker).expect("worker").state = WorkerState::Releasing;
    assert_eq!(broken(ended.clone()), Ok(()));
    ended.workers.remove(&worker);
    assert_eq!(broken(ended), Ok(()));
}

#[test]
fn a_running_job_without_everything_it_needs_is_caught() {
    let (s, worker) = running();
    let mut offline = s.clone();
    offline.workers.get_mut(&worker).expect("worker").state = WorkerState::Created;
    assert_eq!(broken(offline), Err("running-holds-everything"));
    let mut unready = s;
    job(&mut unready, J1).groups[0].state = GroupState::Acquiring { failures: 0 };
    assert_eq!(broken(unready), Err("running-holds-everything"));
}

#[test]
fn a_blocked_job_that_asks_for_something_is_caught() {
    let mut s = world();
    let first_job = submit(&mut s, &[("a", 1)]);
    let blocked = submit_after(&mut s, &[("b", 1)], first_job);
    assert_eq!(phase(&s, blocked), Some(Phase::Blocked));
    let mut group = s.clone();
    job(&mut group, blocked).groups[0].state = GroupState::Acquiring { failures: 0 };
    assert_eq!(broken(group), Err("blocked-asks-for-nothing"));
    let mut worker = s;
    job(&mut worker, blocked).worker = WorkerWant::Queued;
    assert_eq!(broken(worker), Err("blocked-asks-for-nothing"));
}

#[test]
fn a_job_that_goes_on_while_it_waits_for_a_dependency_or_inputs_is_caught() {
    let mut s = world();
    let first_job = submit(&mut s, &[("a", 1)]);
    let waiting = submit_after(&mut s, &[("b", 1)], first_job);
    let mut dependency = s.clone();
    job(&mut dependency, waiting).phase = Phase::Acquiring;
    assert_eq!(broken(dependency), Err("only-blocked-waits"));
    let mut inputs = s;
    job(&mut inputs, first_job).awaits_inputs = true;
    assert_eq!(broken(inputs), Err("only-blocked-waits"));
}

#[test]
fn a_job_out_of_rank_order_is_caught() {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 1)]);
    // Idle, then acquiring.
    let mut skipped = s.clone();
    job(&mut skipped, J1).groups[0].state = GroupState::Idle;
    job(&mut skipped, J1).groups[1].state = GroupState::Acquiring { failures: 0 };
    assert_eq!(broken(skipped), Err("rank-order"));
    // Two acquiring at once.
    let mut both = s;
    job(&mut both, J1).groups[1].state = GroupState::Acquiring { failures: 0 };
    assert_eq!(broken(both), Err("rank-order"));
    // Ready after one that is not.
    let mut late = full();
    job(&mut late, J1).groups[0].state = GroupState::Acquiring { failures: 0 };
    assert_eq!(broken(late), Err("rank-order"));
}

#[test]
fn rank_order_binds_only_live_jobs_under_the_production_rules() {
    let out_of_order = |rules: Rules, ended: bool| {
        let mut s = world_with(rules, Limits::default());
        submit(&mut s, &[("a", 1), ("b", 1)]);
        job(&mut s, J1).groups[1].state = GroupState::Acquiring { failures: 0 };
        if ended {
            job(&mut s, J1).phase = Phase::Ended(Outcome::Cancelled);
        }
        broken(s)
    };
    let production = Rules::production();
    assert_eq!(out_of_order(production, false), Err("rank-order"));
    assert_eq!(out_of_order(production, true), Ok(()));
    let parallel = Rules {
        acquisition: AcquisitionPolicy::Parallel,
        ..production
    };
    assert_eq!(out_of_order(parallel, false), Ok(()));
    let one_by_one = Rules {
        grant: GrantMode::OneByOne,
        ..production
    };
    assert_eq!(out_of_order(one_by_one, false), Ok(()));
}

#[test]
fn a_worker_wanted_before_every_group_is_ready_is_caught() {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    job(&mut s, J1).worker = WorkerWant::Queued;
    assert_eq!(broken(s), Err("worker-last"));
}

#[test]
fn a_worker_of_a_job_not_in_the_books_is_caught() {
    let (mut s, _) = running();
    extra_worker(&mut s, JobId(9), "secret", WorkerState::Releasing);
    assert_eq!(broken(s), Err("worker-has-job"));
}

#[test]
fn a_live_worker_its_job_does_not_hold_is_caught() {
    let (s, _) = running();
    let mut spare = s.clone();
    extra_worker(&mut spare, J1, "secret", WorkerState::Online);
    assert_eq!(broken(spare), Err("live-worker-bound"));
    // The same worker being destroyed is fine: its job let it go.
    let mut released = s;
    extra_worker(&mut released, J1, "secret", WorkerState::Releasing);
    assert_eq!(broken(released), Ok(()));
}

#[test]
fn books_changed_behind_apply_are_caught_by_the_indexes() {
    let mut s = holding();
    job(&mut s, J1).deadline = Time(1);
    assert_eq!(check(&s).map_err(|v| v.name), Err("indexes-match-books"));
    s.reindex();
    check(&s).expect("rebuilt indexes match");
}
