//! The book's decisions, input by input: free slots, the life of a lease,
//! reports refused, destructions retried, and orphans told apart from
//! things being made.

use super::*;
use crate::well::Owned;
use aquifer_protocol::well::{Listed, ResourceState as ServerState, Want};
use aquifer_protocol::{JobId, LeaseId, ResourceId, TypeId};
use std::time::Duration;

fn book(capacity: &[(&str, u32)]) -> Book {
    let capacity = capacity.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    Book::new(
        capacity,
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
        },
    )
}

fn grant(id: u32, rtype: &str, resources: &[u32]) -> Grant {
    Grant {
        id: LeaseId(id),
        job: JobId(100 + id),
        rtype: TypeId::new(rtype),
        resources: resources.iter().copied().map(ResourceId).collect(),
        deadline_ms: 9_000,
        expires_at_ms: 6_000,
    }
}

fn free(b: &Book) -> Vec<(String, u16)> {
    b.free().into_iter().collect()
}

fn pairs(v: &[(&str, u16)]) -> Vec<(String, u16)> {
    v.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn listed(id: u32, rtype: &str, state: ServerState, want: Want) -> Listed {
    Listed {
        id: ResourceId(id),
        job: JobId(1),
        rtype: TypeId::new(rtype),
        state,
        want,
    }
}

fn owned(resource: u32, rtype: &str) -> Owned {
    Owned {
        resource,
        rtype: rtype.into(),
    }
}

fn destroy(resource: u32, rtype: &str, confirm: bool) -> Action {
    Action::Destroy {
        resource,
        rtype: rtype.into(),
        confirm,
    }
}

fn ok() -> Result<Created, CreateError> {
    Ok(Created::default())
}

/// Takes a resource of `b` from lease to `Alive`.
fn make_alive(b: &mut Book, lease: u32, rtype: &str, resource: u32) {
    b.granted(&grant(lease, rtype, &[resource]));
    b.created(resource, ok());
    b.reported(resource, Reported::Accepted);
    assert_eq!(b.entry(resource).map(|e| e.phase), Some(Phase::Alive));
}

#[test]
fn free_slots_are_capacity_less_everything_in_the_books() {
    let now = Instant::now();
    let mut b = book(&[("pg", 3), ("probe", 1)]);
    assert_eq!(free(&b), pairs(&[("pg", 3), ("probe", 1)]));

    b.granted(&grant(1, "pg", &[10, 11]));
    assert_eq!(
        free(&b),
        pairs(&[("pg", 1), ("probe", 1)]),
        "creating occupies"
    );
    b.created(10, ok());
    b.reported(10, Reported::Accepted);
    assert_eq!(
        free(&b),
        pairs(&[("pg", 1), ("probe", 1)]),
        "alive occupies"
    );

    b.granted(&grant(2, "probe", &[12]));
    assert_eq!(free(&b), pairs(&[("pg", 1)]), "a full type is left out");

    let actions = b.destroy_listed(&[10], now);
    assert_eq!(actions, [destroy(10, "pg", true)]);
    assert_eq!(
        free(&b),
        pairs(&[("pg", 1)]),
        "destroying occupies until confirmed"
    );
    b.destroyed(10, Destroyed::Done, now);
    assert_eq!(free(&b), pairs(&[("pg", 2)]));
}

#[test]
fn free_slots_never_go_below_zero_and_ignore_types_not_served() {
    let now = Instant::now();
    let mut b = book(&[("pg", 1)]);
    let listing = [
        listed(1, "pg", ServerState::Ready, Want::Keep),
        listed(2, "pg", ServerState::Held, Want::Hold),
        listed(3, "gone-type", ServerState::Ready, Want::Keep),
    ];
    let since = b.mark();
    assert_eq!(b.reconciled(since, &listing, Some(&[]), false, now), []);
    assert_eq!(b.len(), 3);
    assert_eq!(
        free(&b),
        [],
        "two pg in the books against a capacity of one"
    );
}

#[test]
fn a_lease_is_renewed_until_its_last_resource_is_reported() {
    let mut b = book(&[("pg", 2)]);
    let actions = b.granted(&grant(7, "pg", &[11, 12]));
    assert_eq!(actions.len(), 3);
    assert!(
        matches!(&actions[0], Action::Create { lease: 7, req } if req.resource == 11 && req.job == 107)
    );
    assert!(
        matches!(&actions[1], Action::Create { lease: 7, req } if req.resource == 12 && req.deadline_ms == 9_000)
    );
    assert_eq!(
        actions[2],
        Action::Renew {
            lease: 7,
            expires_at_ms: 6_000
        }
    );

    let mut created = Created::default();
    created.metadata.insert("host".into(), "db1".into());
    assert_eq!(
        b.created(11, Ok(created.clone())),
        [Action::ReportReady {
            resource: 11,
            created
        }]
    );
    assert_eq!(
        b.reported(11, Reported::Accepted),
        [],
        "12 is still being made"
    );
    b.created(12, ok());
    assert_eq!(
        b.reported(12, Reported::Duplicate),
        [Action::StopRenew { lease: 7 }]
    );
    assert_eq!(b.entry(12).map(|e| e.phase), Some(Phase::Alive));
}

#[test]
fn released_while_creating_is_destroyed_not_reported() {
    let now = Instant::now();
    let mut b = book(&[("pg", 2)]);
    b.granted(&grant(7, "pg", &[11]));
    assert_eq!(
        b.destroy_listed(&[11], now),
        [],
        "the create is still running"
    );
    assert_eq!(
        b.entry(11).map(|e| e.phase),
        Some(Phase::Creating {
            lease: 7,
            release: true
        })
    );
    assert_eq!(
        b.created(11, ok()),
        [Action::StopRenew { lease: 7 }, destroy(11, "pg", true)]
    );
}

#[test]
fn a_failed_create_is_reported_then_destroyed_and_confirmed() {
    let mut b = book(&[("pg", 2)]);
    b.granted(&grant(7, "pg", &[11]));
    let actions = b.created(11, Err(CreateError::retryable("quota")));
    assert_eq!(
        actions,
        [Action::ReportFailed {
            resource: 11,
            reason: "quota".into(),
            retryable: true
        }]
    );
    assert_eq!(
        b.reported(11, Reported::Accepted),
        [Action::StopRenew { lease: 7 }, destroy(11, "pg", true)]
    );
}

#[test]
fn a_refused_ready_report_becomes_a_failure_or_a_destruction() {
    let mut b = book(&[("pg", 2)]);
    b.granted(&grant(7, "pg", &[11, 12]));
    b.created(11, ok());
    let actions = b.reported(11, Reported::Invalid("bad key".into()));
    assert!(
        matches!(&actions[..], [Action::ReportFailed { resource: 11, retryable: false, reason }] if reason.contains("bad key")),
        "{actions:?}"
    );
    assert!(
        b.reported(11, Reported::Accepted)
            .contains(&destroy(11, "pg", true))
    );

    // Too late: the lease expired while reporting.
    b.created(12, ok());
    assert_eq!(
        b.reported(12, Reported::Refused),
        [Action::StopRenew { lease: 7 }, destroy(12, "pg", true)]
    );
}

#[test]
fn failed_destructions_back_off_and_keep_their_count() {
    let t0 = Instant::now();
    let mut b = book(&[("pg", 1)]);
    make_alive(&mut b, 1, "pg", 5);
    assert_eq!(b.destroy_listed(&[5], t0), [destroy(5, "pg", true)]);
    b.destroyed(5, Destroyed::Failed, t0);
    let Some(Phase::Retrying {
        failures: 1,
        at,
        confirm: true,
    }) = b.entry(5).map(|e| e.phase)
    else {
        panic!("{:?}", b.entry(5));
    };
    // The first retry waits between half and all of the base.
    assert!(at >= t0 + Duration::from_millis(500) && at <= t0 + Duration::from_millis(1_000));
    assert_eq!(b.destroy_listed(&[5], t0), [], "not before its time");
    assert_eq!(free(&b), [], "a failing destruction keeps its slot");

    assert_eq!(b.destroy_listed(&[5], at), [destroy(5, "pg", true)]);
    b.destroyed(5, Destroyed::Failed, at);
    let Some(Phase::Retrying {
        failures: 2,
        at: at2,
        ..
    }) = b.entry(5).map(|e| e.phase)
    else {
        panic!("{:?}", b.entry(5));
    };
    assert!(at2 >= at + Duration::from_millis(1_000), "the wait doubles");

    // Held for an operator: left alone until released.
    let since = b.mark();
    b.reconciled(
        since,
        &[listed(5, "pg", ServerState::Held, Want::Hold)],
        Some(&[owned(5, "pg")]),
        false,
        at2,
    );
    assert_eq!(b.entry(5).map(|e| e.phase), Some(Phase::Parked));
    assert_eq!(
        b.destroy_listed(&[5], at2),
        [destroy(5, "pg", true)],
        "released by the operator"
    );
}

#[test]
fn orphans_are_destroyed_without_confirmation() {
    let now = Instant::now();
    let mut b = book(&[("pg", 4)]);
    make_alive(&mut b, 1, "pg", 1);
    let since = b.mark();
    let listing = [listed(1, "pg", ServerState::Ready, Want::Keep)];
    let owns = [owned(1, "pg"), owned(2, "pg"), owned(3, "other")];
    let actions = b.reconciled(since, &listing, Some(&owns), false, now);
    assert_eq!(
        actions,
        [destroy(2, "pg", false), destroy(3, "other", false)]
    );
    assert_eq!(
        free(&b),
        pairs(&[("pg", 2)]),
        "an orphan holds its slot until it is gone"
    );
    b.destroyed(2, Destroyed::Done, now);
    assert_eq!(free(&b), pairs(&[("pg", 3)]));

    // A second pass while 3 is still being destroyed does not start another.
    let since = b.mark();
    let still = [owned(1, "pg"), owned(3, "other")];
    assert_eq!(b.reconciled(since, &listing, Some(&still), false, now), []);
    assert!(b.entry(3).is_some());
}

#[test]
fn what_is_being_made_is_not_an_orphan() {
    let now = Instant::now();
    let mut b = book(&[("pg", 4)]);
    // The listing is asked for before the lease arrives, so it cannot list
    // the lease's resources, which the well has already begun to make.
    let since = b.mark();
    b.granted(&grant(3, "pg", &[20, 21]));
    b.created(21, ok());
    let actions = b.reconciled(
        since,
        &[],
        Some(&[owned(20, "pg"), owned(21, "pg")]),
        false,
        now,
    );
    assert_eq!(actions, []);

    // Made and reported after the listing was asked for: newer than it.
    b.reported(21, Reported::Accepted);
    let actions = b.reconciled(since, &[], Some(&[owned(21, "pg")]), false, now);
    assert_eq!(actions, []);
    assert_eq!(
        b.entry(21).map(|e| e.phase),
        Some(Phase::Alive),
        "not forgotten either"
    );

    // A later listing that still does not name it speaks for it.
    let since = b.mark();
    let actions = b.reconciled(since, &[], Some(&[owned(21, "pg")]), false, now);
    assert_eq!(actions, [destroy(21, "pg", false)]);
}

#[test]
fn without_the_wells_list_no_orphan_is_guessed() {
    let now = Instant::now();
    let mut b = book(&[("pg", 2)]);
    make_alive(&mut b, 1, "pg", 1);
    let since = b.mark();
    assert_eq!(b.reconciled(since, &[], None, false, now), []);
    assert!(
        b.entry(1).is_none(),
        "the server forgot it; nothing is known to exist"
    );
    assert_eq!(free(&b), pairs(&[("pg", 2)]));
}

#[test]
fn orphans_are_taken_on_a_bounded_number_per_pass() {
    let now = Instant::now();
    let mut b = book(&[("pg", 1)]);
    let many: Vec<Owned> = (0..200).map(|i| owned(i, "pg")).collect();
    let since = b.mark();
    let actions = b.reconciled(since, &[], Some(&many), false, now);
    assert_eq!(actions.len(), ORPHANS_PER_PASS);
}

#[test]
fn the_first_pass_fails_what_an_earlier_run_was_creating() {
    let now = Instant::now();
    let listing = [
        listed(4, "pg", ServerState::Creating, Want::Keep),
        listed(5, "pg", ServerState::Ready, Want::Keep),
        listed(6, "pg", ServerState::Releasing, Want::Release),
    ];
    let mut b = book(&[("pg", 4)]);
    let since = b.mark();
    let actions = b.reconciled(since, &listing, Some(&[owned(4, "pg")]), true, now);
    assert_eq!(
        actions,
        [
            Action::ReportFailed {
                resource: 4,
                reason: "the well restarted while creating it".into(),
                retryable: true
            },
            destroy(6, "pg", true),
        ]
    );
    assert_eq!(free(&b), pairs(&[("pg", 1)]));
    assert_eq!(b.reported(4, Reported::Accepted), [destroy(4, "pg", true)]);

    // Later passes leave a lease they do not hold to its expiry: it may be
    // one whose grant is on its way to this very runner.
    let mut b = book(&[("pg", 4)]);
    let since = b.mark();
    let actions = b.reconciled(since, &listing[..1], Some(&[]), false, now);
    assert_eq!(actions, []);
    assert_eq!(b.entry(4).map(|e| e.phase), Some(Phase::Parked));
}

#[test]
fn a_destroy_list_naming_an_unknown_resource_asks_for_a_reconcile() {
    let now = Instant::now();
    let mut b = book(&[("pg", 2)]);
    assert_eq!(b.destroy_listed(&[9], now), [Action::Reconcile]);
    make_alive(&mut b, 1, "pg", 3);
    b.destroy_listed(&[3], now);
    b.destroyed(3, Destroyed::Done, now);
    assert_eq!(
        b.destroy_listed(&[3], now),
        [],
        "a list made before the confirmation"
    );
    let since = b.mark();
    let stale = [listed(3, "pg", ServerState::Releasing, Want::Release)];
    assert_eq!(b.reconciled(since, &stale, Some(&[]), false, now), []);
}

#[test]
fn a_listing_older_than_the_book_does_not_undo_it() {
    let now = Instant::now();
    let mut b = book(&[("pg", 2)]);
    make_alive(&mut b, 1, "pg", 3);
    let since = b.mark();
    b.destroy_listed(&[3], now);
    b.destroyed(3, Destroyed::Failed, now);
    // Asked for before the failure: still says ready.
    let old = [listed(3, "pg", ServerState::Ready, Want::Keep)];
    b.reconciled(since, &old, Some(&[owned(3, "pg")]), false, now);
    assert!(matches!(
        b.entry(3).map(|e| e.phase),
        Some(Phase::Retrying { .. })
    ));
}
