//! Reconcile passes: the server's listing and the runner's own list held
//! against the book.

use super::*;

fn report_lost(id: u32) -> Act {
    Action::Report {
        id,
        report: Report::Lost("its agent is not running".into()),
    }
}

fn keep_lost() -> Want<Toy> {
    Want::Keep(Keep::Report(Report::Lost(
        "its agent is not running".into(),
    )))
}

#[test]
fn a_listed_thing_the_book_lacks_is_taken_in_as_the_server_wants_it() {
    let (mut b, now) = started(&[("pg", 8)]);
    let listing = [
        listed(1, "pg", Want::Release),
        listed(2, "pg", Want::Hold),
        listed(3, "pg", Want::Leave),
        listed(4, "pg", Want::Keep(Keep::Alive)),
        listed(5, "pg", Want::Keep(Keep::Create(105))),
        listed(6, "pg", keep_lost()),
    ];
    let actions = reconcile(&mut b, &listing, None, now);
    assert_eq!(
        actions,
        [destroy(1, "pg", true), create(5, "pg"), report_lost(6)]
    );
    let phases: Vec<Option<Phase>> = (1..=6).map(|id| phase(&b, id)).collect();
    let lost = Phase::Reporting {
        release: false,
        report: ReportKind::Lost,
    };
    assert_eq!(
        phases,
        [
            Some(Phase::Destroying {
                confirm: true,
                failures: 0
            }),
            Some(Phase::Parked),
            Some(Phase::Parked),
            Some(Phase::Alive),
            Some(Phase::Creating { release: false }),
            Some(lost),
        ]
    );
    assert_eq!(free(&b), [("pg", 2)], "everything listed holds a slot");
}

#[test]
fn a_lease_taken_over_from_the_listing_needs_a_free_slot() {
    let (mut b, now) = started(&[("t", 2)]);
    make_alive(&mut b, 1, "t");
    let listing = [
        listed(1, "t", Want::Keep(Keep::Alive)),
        listed(2, "t", Want::Keep(Keep::Create(102))),
        listed(3, "t", Want::Keep(Keep::Create(103))),
    ];
    // 2 takes the last slot; 3 waits for its lease to expire and go to
    // another runner.
    assert_eq!(
        reconcile(&mut b, &listing, Some(&[]), now),
        [create(2, "t")]
    );
    assert_eq!(b.entry(3), None);
}

#[test]
fn a_settled_thing_follows_what_the_server_wants() {
    let (mut b, now) = started(&[("t", 8)]);
    for id in 1..=6 {
        make_alive(&mut b, id, "t");
    }
    let first: Vec<Listed<Toy>> = (1..=6)
        .map(|id| match id {
            2 => listed(id, "t", Want::Hold),
            _ => listed(id, "t", Want::Keep(Keep::Alive)),
        })
        .collect();
    assert_eq!(reconcile(&mut b, &first, None, now), []);
    assert_eq!(phase(&b, 2), Some(Phase::Parked));
    let listing = [
        listed(1, "t", Want::Release),
        listed(2, "t", Want::Keep(Keep::Alive)),
        listed(3, "t", Want::Hold),
        listed(4, "t", Want::Keep(Keep::Create(104))),
        listed(5, "t", keep_lost()),
        listed(6, "t", Want::Leave),
    ];
    let actions = reconcile(&mut b, &listing, None, now);
    assert_eq!(
        actions,
        [destroy(1, "t", true), create(4, "t"), report_lost(5)]
    );
    assert_eq!(phase(&b, 2), Some(Phase::Alive), "parked, now kept");
    assert_eq!(phase(&b, 3), Some(Phase::Parked), "held for an operator");
    assert_eq!(phase(&b, 6), Some(Phase::Alive), "left as it is");
}

#[test]
fn a_thing_being_made_is_released_when_its_task_returns() {
    let (mut b, now) = started(&[("pg", 4)]);
    for id in [1, 2] {
        lease(&mut b, id, "pg");
    }
    b.created(2, Ok("made"));
    let listing = [
        listed(1, "pg", Want::Release),
        listed(2, "pg", Want::Release),
    ];
    assert_eq!(reconcile(&mut b, &listing, None, now), []);
    assert_eq!(phase(&b, 1), Some(Phase::Creating { release: true }));
    assert_eq!(
        phase(&b, 2),
        Some(Phase::Reporting {
            release: true,
            report: ReportKind::Ready
        })
    );
}

#[test]
fn a_failing_destruction_is_retried_by_a_listing_only_when_its_time_has_come() {
    let t0 = Instant::now();
    let mut b = book(&[("pg", 2)]);
    let at = make_retrying(&mut b, 1, "pg", t0);
    let listing = [listed(1, "pg", Want::Release)];
    let owns = [owned(1, "pg")];
    assert_eq!(reconcile(&mut b, &listing, Some(&owns), t0), []);
    assert_eq!(
        reconcile(&mut b, &listing, Some(&owns), at),
        [destroy(1, "pg", true)]
    );
    assert_eq!(
        phase(&b, 1),
        Some(Phase::Destroying {
            confirm: true,
            failures: 1
        }),
        "the count is kept"
    );
    b.destroyed(1, Destroyed::Failed, at);
    let held = [listed(1, "pg", Want::Hold)];
    reconcile(&mut b, &held, Some(&owns), at);
    assert_eq!(phase(&b, 1), Some(Phase::Parked), "held: left alone");
}

#[test]
fn busy_things_are_left_to_their_task() {
    let (mut b, now) = started(&[("t", 4)]);
    lease(&mut b, 1, "t");
    make_alive(&mut b, 2, "t");
    b.destroy_listed(&[2], now);
    let listing = [
        listed(1, "t", keep_lost()),
        listed(2, "t", Want::Keep(Keep::Create(102))),
    ];
    assert_eq!(reconcile(&mut b, &listing, Some(&[]), now), []);
    assert_eq!(phase(&b, 1), Some(Phase::Creating { release: false }));
}

#[test]
fn a_listing_older_than_the_book_does_not_undo_it() {
    let (mut b, now) = started(&[("pg", 2)]);
    make_alive(&mut b, 3, "pg");
    let since = b.mark();
    b.destroy_listed(&[3], now);
    b.destroyed(3, Destroyed::Failed, now);
    // Asked for before the failure: still says keep.
    let old = [listed(3, "pg", Want::Keep(Keep::Alive))];
    b.reconciled(since, &old, Some(&[owned(3, "pg")]), now);
    assert!(matches!(phase(&b, 3), Some(Phase::Retrying { .. })));

    // Nor does one made before a confirmation bring the thing back.
    b.destroy_listed(&[3], now + Duration::from_secs(60));
    let since = b.mark();
    b.destroyed(3, Destroyed::Done, now);
    let stale = [listed(3, "pg", Want::Release)];
    assert_eq!(b.reconciled(since, &stale, Some(&[]), now), []);
    assert!(b.is_empty());
}

#[test]
fn orphans_are_destroyed_without_confirmation_and_hold_their_slot() {
    let (mut b, now) = started(&[("pg", 4)]);
    make_alive(&mut b, 1, "pg");
    let listing = [listed(1, "pg", Want::Keep(Keep::Alive))];
    let owns = [owned(1, "pg"), owned(2, "pg"), owned(3, "other")];
    assert_eq!(
        reconcile(&mut b, &listing, Some(&owns), now),
        [destroy(2, "pg", false), destroy(3, "other", false)]
    );
    assert_eq!(free(&b), [("pg", 2)]);
    b.destroyed(2, Destroyed::Done, now);
    assert_eq!(free(&b), [("pg", 3)]);

    // A second pass while 3 is still being destroyed starts no other.
    let still = [owned(1, "pg"), owned(3, "other")];
    assert_eq!(reconcile(&mut b, &listing, Some(&still), now), []);
    assert!(b.entry(3).is_some());
}

#[test]
fn a_thing_the_server_forgot_but_the_runner_has_is_an_orphan_of_its_kind() {
    let (mut b, now) = started(&[("pg", 2)]);
    make_alive(&mut b, 1, "pg");
    let owns = [Owned { id: 1, kind: "?" }];
    let actions = reconcile(&mut b, &[], Some(&owns), now);
    let pg = destroy(1, "pg", false);
    assert_eq!(
        actions,
        [pg],
        "the runner cannot tell its kind; the book can"
    );
}

#[test]
fn what_is_being_made_is_not_an_orphan() {
    let (mut b, now) = started(&[("pg", 4)]);
    // The listing is asked for before the lease arrives, so it cannot list
    // the lease's things, which the runner has already begun to make.
    let since = b.mark();
    lease(&mut b, 20, "pg");
    lease(&mut b, 21, "pg");
    b.created(21, Ok("made"));
    let owns = [owned(20, "pg"), owned(21, "pg")];
    assert_eq!(b.reconciled(since, &[], Some(&owns), now), []);

    // Made and reported after the listing was asked for: newer than it.
    b.reported(21, Reported::Accepted);
    assert_eq!(b.reconciled(since, &[], Some(&owns[1..]), now), []);
    assert_eq!(phase(&b, 21), Some(Phase::Alive), "not forgotten either");

    // A later listing that still does not name it speaks for it.
    assert_eq!(
        reconcile(&mut b, &[], Some(&owns[1..]), now),
        [destroy(21, "pg", false)]
    );
}

#[test]
fn without_the_runners_list_no_orphan_is_guessed() {
    let (mut b, now) = started(&[("pg", 2)]);
    make_alive(&mut b, 1, "pg");
    let at = make_retrying(&mut b, 2, "pg", now);
    assert_eq!(reconcile(&mut b, &[], None, at), []);
    assert_eq!(
        b.entry(1),
        None,
        "the server forgot it; nothing is known to exist"
    );
    assert!(
        b.entry(2).is_some(),
        "a failing destruction may still exist"
    );
    assert_eq!(reconcile(&mut b, &[], Some(&[]), at), []);
    assert_eq!(b.entry(2), None, "the runner has it no more");
}

#[test]
fn a_failing_orphan_is_retried_when_its_time_has_come() {
    let (mut b, now) = started(&[("pg", 2)]);
    reconcile(&mut b, &[], Some(&[owned(1, "pg")]), now);
    b.destroyed(1, Destroyed::Failed, now);
    let Some(Phase::Retrying { at, .. }) = phase(&b, 1) else {
        panic!("{:?}", b.entry(1));
    };
    let owns = [owned(1, "pg")];
    assert_eq!(reconcile(&mut b, &[], Some(&owns), now), []);
    assert_eq!(
        reconcile(&mut b, &[], Some(&owns), at),
        [destroy(1, "pg", false)]
    );
}

#[test]
fn orphans_are_taken_on_a_bounded_number_per_pass() {
    let (mut b, now) = started(&[("pg", 1)]);
    let many: Vec<Owned<&str>> = (0..200).map(|i| owned(i, "pg")).collect();
    let actions = reconcile(&mut b, &[], Some(&many), now);
    assert_eq!(actions.len(), ORPHANS_PER_PASS);
    assert_eq!(b.len(), ORPHANS_PER_PASS);
}

#[test]
fn a_grant_that_arrives_after_a_listing_showed_its_lease_is_taken() {
    // The server grants 7 to this runner's poll and lists it, being made,
    // to the reconcile pass; the listing is read first.
    let (mut b, now) = started(&[("pg", 2)]);
    reconcile(&mut b, &[], None, now);
    assert_eq!(
        reconcile(&mut b, &[listed(7, "pg", Want::Leave)], None, now),
        []
    );
    assert_eq!(phase(&b, 7), Some(Phase::Parked));
    assert_eq!(lease(&mut b, 7, "pg"), [create(7, "pg")]);
    assert_eq!(phase(&b, 7), Some(Phase::Creating { release: false }));
    // A second grant of the same thing is still refused.
    assert_eq!(
        lease(&mut b, 7, "pg"),
        [Action::Alert(Oddity::AlreadyKnown(7))]
    );
}
