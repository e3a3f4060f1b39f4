//! One thing's life: leased, created, reported, lost, listed for
//! destruction, destroyed or backing off.

use super::*;

#[test]
fn free_slots_are_capacity_less_everything_in_the_book() {
    let (mut b, now) = started(&[("pg", 3), ("probe", 1)]);
    assert_eq!(free(&b), [("pg", 3), ("probe", 1)]);
    lease(&mut b, 10, "pg");
    lease(&mut b, 11, "pg");
    assert_eq!(free(&b), [("pg", 1), ("probe", 1)], "creating occupies");
    b.created(10, Ok("made"));
    b.reported(10, Reported::Accepted);
    assert_eq!(free(&b), [("pg", 1), ("probe", 1)], "alive occupies");
    lease(&mut b, 12, "probe");
    assert_eq!(free(&b), [("pg", 1)], "a full kind is left out");
    assert_eq!(b.destroy_listed(&[10], now), [destroy(10, "pg", true)]);
    assert_eq!(free(&b), [("pg", 1)], "destroying occupies until done");
    b.destroyed(10, Destroyed::Done, now);
    assert_eq!(free(&b), [("pg", 2)]);
}

#[test]
fn a_lease_makes_the_thing_it_names() {
    let mut b = book(&[("pg", 2)]);
    assert_eq!(lease(&mut b, 7, "pg"), [create(7, "pg")]);
    assert_eq!(phase(&b, 7), Some(Phase::Creating { release: false }));
    assert!(b.busy());
}

#[test]
fn a_lease_naming_a_thing_in_the_book_makes_nothing() {
    let mut b = book(&[("pg", 2)]);
    make_alive(&mut b, 7, "pg");
    assert_eq!(
        lease(&mut b, 7, "pg"),
        [Action::Alert(Oddity::AlreadyKnown(7))]
    );
    assert_eq!(phase(&b, 7), Some(Phase::Alive));
}

#[test]
fn a_made_thing_is_reported_ready_and_a_failed_one_failed() {
    let mut b = book(&[("pg", 2)]);
    lease(&mut b, 1, "pg");
    lease(&mut b, 2, "pg");
    assert_eq!(b.created(1, Ok("made")), [ready(1)]);
    let quota = failure("quota", true);
    assert_eq!(
        b.created(2, Err(quota.clone())),
        [Action::Report {
            id: 2,
            report: Report::Failed(quota)
        }]
    );
    let reporting = |report| {
        Some(Phase::Reporting {
            release: false,
            report,
        })
    };
    assert_eq!(phase(&b, 1), reporting(ReportKind::Ready));
    assert_eq!(phase(&b, 2), reporting(ReportKind::Failed));
}

#[test]
fn a_thing_released_while_being_made_is_destroyed_not_reported() {
    let (mut b, now) = started(&[("pg", 2)]);
    lease(&mut b, 1, "pg");
    assert_eq!(b.destroy_listed(&[1], now), [], "the create still runs");
    assert_eq!(phase(&b, 1), Some(Phase::Creating { release: true }));
    assert_eq!(b.created(1, Ok("made")), [destroy(1, "pg", true)]);
}

#[test]
fn a_create_that_was_not_running_is_an_oddity() {
    let mut b = book(&[("pg", 2)]);
    assert_eq!(
        b.created(4, Ok("made")),
        [Action::Alert(Oddity::NotCreating(4))]
    );
    assert!(b.is_empty());
}

#[test]
fn an_accepted_or_duplicate_ready_report_makes_it_alive() {
    let mut b = book(&[("pg", 2)]);
    for (id, outcome) in [(1, Reported::Accepted), (2, Reported::Duplicate)] {
        lease(&mut b, id, "pg");
        b.created(id, Ok("made"));
        assert_eq!(b.reported(id, outcome), []);
        assert_eq!(phase(&b, id), Some(Phase::Alive));
    }
    assert!(!b.busy());
}

#[test]
fn an_invalid_ready_report_becomes_a_failure_then_a_destruction() {
    let mut b = book(&[("pg", 2)]);
    lease(&mut b, 1, "pg");
    b.created(1, Ok("made"));
    assert_eq!(
        b.reported(1, Reported::Invalid("bad key".into())),
        [Action::Report {
            id: 1,
            report: Report::Failed(failure("bad key", false))
        }]
    );
    assert_eq!(b.reported(1, Reported::Accepted), [destroy(1, "pg", true)]);
}

#[test]
fn a_refused_or_overtaken_ready_report_destroys_what_was_made() {
    let (mut b, now) = started(&[("pg", 2)]);
    lease(&mut b, 1, "pg");
    b.created(1, Ok("made"));
    assert_eq!(b.reported(1, Reported::Refused), [destroy(1, "pg", true)]);

    lease(&mut b, 2, "pg");
    b.created(2, Ok("made"));
    assert_eq!(b.destroy_listed(&[2], now), [], "the report still runs");
    assert_eq!(b.reported(2, Reported::Accepted), [destroy(2, "pg", true)]);
}

#[test]
fn a_failure_report_is_followed_by_destruction_whatever_its_fate() {
    let mut b = book(&[("pg", 2)]);
    for (id, outcome) in [(1, Reported::Accepted), (2, Reported::Refused)] {
        lease(&mut b, id, "pg");
        b.created(id, Err(failure("quota", true)));
        assert_eq!(b.reported(id, outcome), [destroy(id, "pg", true)]);
    }
}

#[test]
fn a_lost_thing_is_reported_then_left_to_the_server() {
    let (mut b, now) = started(&[("t", 2)]);
    make_alive(&mut b, 1, "t");
    let lost = Action::Report {
        id: 1,
        report: Report::Lost("its agent exited with 1".into()),
    };
    assert_eq!(b.lost(1, "its agent exited with 1".into()), [lost]);
    assert_eq!(b.reported(1, Reported::Refused), []);
    assert_eq!(phase(&b, 1), Some(Phase::Parked));
    assert_eq!(b.destroy_listed(&[1], now), [destroy(1, "t", true)]);

    // Released while the loss was being reported: destroyed at once.
    make_alive(&mut b, 2, "t");
    b.lost(2, "gone".into());
    b.destroy_listed(&[2], now);
    assert_eq!(b.reported(2, Reported::Accepted), [destroy(2, "t", true)]);
}

#[test]
fn only_an_alive_thing_can_be_lost() {
    let mut b = book(&[("t", 2)]);
    lease(&mut b, 1, "t");
    assert_eq!(b.lost(1, "exited".into()), []);
    assert_eq!(b.lost(9, "exited".into()), [], "nor one it does not know");
    assert!(b.busy(), "still being made");
}

#[test]
fn a_destroy_list_destroys_what_is_settled_and_leaves_what_is_under_way() {
    let (mut b, now) = started(&[("pg", 4)]);
    make_alive(&mut b, 1, "pg");
    reconcile(
        &mut b,
        &[
            listed(1, "pg", Want::Keep(Keep::Alive)),
            listed(2, "pg", Want::Hold),
        ],
        Some(&[owned(1, "pg"), owned(2, "pg")]),
        now,
    );
    assert_eq!(phase(&b, 2), Some(Phase::Parked));
    assert_eq!(
        b.destroy_listed(&[1, 2], now),
        [destroy(1, "pg", true), destroy(2, "pg", true)]
    );
    assert_eq!(b.destroy_listed(&[1, 2], now), [], "already under way");
}

#[test]
fn a_destroy_list_naming_an_unknown_thing_asks_for_a_reconcile() {
    let (mut b, now) = started(&[("pg", 2)]);
    assert_eq!(b.destroy_listed(&[9], now), [Action::Reconcile]);
    make_alive(&mut b, 3, "pg");
    b.destroy_listed(&[3], now);
    b.destroyed(3, Destroyed::Done, now);
    assert_eq!(
        b.destroy_listed(&[3], now),
        [],
        "a list made before the confirmation"
    );
}

#[test]
fn a_destruction_done_or_its_confirmation_refused_frees_the_slot() {
    let (mut b, now) = started(&[("pg", 2)]);
    for (id, outcome) in [(1, Destroyed::Done), (2, Destroyed::ConfirmRefused)] {
        make_alive(&mut b, id, "pg");
        b.destroy_listed(&[id], now);
        assert_eq!(b.destroyed(id, outcome, now), []);
        assert_eq!(b.entry(id), None);
    }
    assert_eq!(free(&b), [("pg", 2)]);
    assert_eq!(
        b.destroyed(1, Destroyed::Done, now),
        [Action::Alert(Oddity::NotDestroying(1))]
    );
}

#[test]
fn failed_destructions_back_off_and_keep_their_count() {
    let t0 = Instant::now();
    let mut b = book(&[("pg", 1)]);
    let at = make_retrying(&mut b, 5, "pg", t0);
    assert_eq!(
        phase(&b, 5),
        Some(Phase::Retrying {
            confirm: true,
            failures: 1,
            at
        })
    );
    // The first retry waits between half and all of the first back-off.
    assert!(at >= t0 + Duration::from_millis(500) && at <= t0 + Duration::from_secs(1));
    assert_eq!(b.destroy_listed(&[5], t0), [], "not before its time");
    assert_eq!(free(&b), [], "a failing destruction keeps its slot");

    assert_eq!(b.destroy_listed(&[5], at), [destroy(5, "pg", true)]);
    assert_eq!(
        phase(&b, 5),
        Some(Phase::Destroying {
            confirm: true,
            failures: 1
        })
    );
    b.destroyed(5, Destroyed::Failed, at);
    let Some(Phase::Retrying {
        failures: 2,
        at: at2,
        ..
    }) = phase(&b, 5)
    else {
        panic!("{:?}", b.entry(5));
    };
    assert!(at2 >= at + Duration::from_secs(1), "the wait doubles");
}
