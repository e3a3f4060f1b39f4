//! The invariant checker is not vacuous: states that break an invariant
//! are named as such.

mod common;
use aquifer_core::invariants::check;
use aquifer_core::*;
use common::*;

fn holding() -> State {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    acquire(&mut s, W1, &[("a", 1)], 0);
    check(&s).expect("a state made by step is sound");
    s
}

#[test]
fn a_group_holding_more_than_its_count_is_caught() {
    let mut s = holding();
    s.jobs.get_mut(&J1).expect("job").groups[0].count = 0;
    assert_eq!(check(&s).map_err(|v| v.name), Err("group-within-count"));
}

#[test]
fn an_ended_job_that_still_holds_is_caught() {
    let mut s = holding();
    s.jobs.get_mut(&J1).expect("job").phase = Phase::Ended(Outcome::Cancelled);
    let name = check(&s).map_err(|v| v.name);
    assert!(
        matches!(
            name,
            Err("ready-only-for-live-jobs" | "ended-job-holds-nothing")
        ),
        "{name:?}"
    );
}

#[test]
fn a_job_out_of_rank_order_is_caught() {
    let mut s = world();
    submit(&mut s, &[("a", 1), ("b", 1)]);
    s.jobs.get_mut(&J1).expect("job").groups[1].state = job::GroupState::Acquiring { failures: 0 };
    assert_eq!(check(&s).map_err(|v| v.name), Err("rank-order"));
}

#[test]
fn books_changed_behind_apply_are_caught_by_the_indexes() {
    let mut s = holding();
    s.jobs.get_mut(&J1).expect("job").deadline = Time(1);
    assert_eq!(check(&s).map_err(|v| v.name), Err("indexes-match-books"));
    s.reindex();
    check(&s).expect("rebuilt indexes match");
}
