//! The well's side of the book, input by input: leases and their renewals,
//! the wire's answers and listings read into the book, and what the runner
//! is told to do. The book's own rules are tested in `aquifer_protocol`.

use super::*;
use aquifer_protocol::well::Grant;
use aquifer_protocol::{JobId, LeaseId};
use std::time::Duration;

fn book(capacity: &[(&str, u32)]) -> WellBook {
    let capacity = capacity.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    let backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(8),
    };
    WellBook::new(capacity, backoff, Backoff::RECONNECT)
}

/// A book, and the time its test starts at.
fn started(capacity: &[(&str, u32)]) -> (WellBook, Instant) {
    (book(capacity), Instant::now())
}

/// A book past its first reconcile pass, and the poll it sends first.
fn polling(capacity: &[(&str, u32)]) -> (WellBook, PollId) {
    let mut b = book(capacity);
    let since = b.mark();
    b.reconciled(since, &[], Some(&[]), true, Instant::now());
    let (poll, _) = b.next_poll(Instant::now(), 1_000).expect("a poll is due");
    (b, poll)
}

fn grant(id: u32, rtype: &str, resources: &[u32]) -> WellLeaseAnswer {
    WellLeaseAnswer {
        lease: Some(Grant {
            id: LeaseId(id),
            job: JobId(100 + id),
            rtype: TypeId::new(rtype),
            resources: resources.iter().copied().map(ResourceId).collect(),
            deadline_ms: 9_000,
            expires_at_ms: 6_000,
        }),
        destroy: Vec::new(),
    }
}

fn destroy_list(ids: &[u32]) -> WellLeaseAnswer {
    WellLeaseAnswer {
        lease: None,
        destroy: ids.iter().copied().map(ResourceId).collect(),
    }
}

fn free(b: &WellBook) -> Vec<(String, u16)> {
    b.book().free().into_iter().collect()
}

fn pairs(v: &[(&str, u16)]) -> Vec<(String, u16)> {
    v.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn listed(id: u32, rtype: &str, state: ServerState, want: ServerWant) -> Listed {
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

fn destroy(resource: u32, rtype: &str, confirm: bool) -> WellAction {
    WellAction::Destroy {
        resource,
        rtype: rtype.into(),
        confirm,
    }
}

fn ok() -> Result<Created, CreateError> {
    Ok(Created::default())
}

fn phase(b: &WellBook, resource: u32) -> Option<Phase> {
    b.entry(resource).map(|e| e.phase)
}

#[test]
fn a_lease_is_renewed_until_its_last_resource_is_reported() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 2)]);
    let actions = b.answered(now, poll, &grant(7, "pg", &[11, 12]));
    assert_eq!(actions.len(), 3);
    assert!(
        matches!(&actions[0], WellAction::Create { lease: 7, req } if req.resource == 11 && req.job == 107)
    );
    assert!(
        matches!(&actions[1], WellAction::Create { lease: 7, req } if req.resource == 12 && req.deadline_ms == 9_000)
    );
    assert_eq!(
        actions[2],
        WellAction::Renew {
            lease: 7,
            expires_at_ms: 6_000
        }
    );

    let mut created = Created::default();
    created.metadata.insert("host".into(), "db1".into());
    assert_eq!(
        b.created(11, Ok(created.clone())),
        [WellAction::ReportReady {
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
        [WellAction::StopRenew { lease: 7 }]
    );
    assert_eq!(phase(&b, 12), Some(Phase::Alive));
}

#[test]
fn released_while_creating_is_destroyed_not_reported() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 2)]);
    b.answered(now, poll, &grant(7, "pg", &[11]));
    assert_eq!(
        b.answered(now, poll, &destroy_list(&[11])),
        [],
        "the create is still running"
    );
    assert_eq!(phase(&b, 11), Some(Phase::Creating { release: true }));
    assert_eq!(
        b.created(11, ok()),
        [WellAction::StopRenew { lease: 7 }, destroy(11, "pg", true)]
    );
}

#[test]
fn a_failed_create_is_reported_then_destroyed_and_confirmed() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 2)]);
    b.answered(now, poll, &grant(7, "pg", &[11]));
    let actions = b.created(11, Err(CreateError::retryable("quota")));
    assert_eq!(
        actions,
        [WellAction::ReportFailed {
            resource: 11,
            reason: "quota".into(),
            retryable: true
        }]
    );
    assert_eq!(
        b.reported(11, Reported::Accepted),
        [WellAction::StopRenew { lease: 7 }, destroy(11, "pg", true)]
    );
}

#[test]
fn a_refused_ready_report_becomes_a_failure_or_a_destruction() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 2)]);
    b.answered(now, poll, &grant(7, "pg", &[11, 12]));
    b.created(11, ok());
    let actions = b.reported(11, Reported::Invalid("bad key".into()));
    assert!(
        matches!(&actions[..], [WellAction::ReportFailed { resource: 11, retryable: false, reason }] if reason.contains("bad key")),
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
        [WellAction::StopRenew { lease: 7 }, destroy(12, "pg", true)]
    );
}

#[test]
fn a_poll_asks_with_the_wires_names_for_the_slots_left() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 3), ("probe", 1)]);
    b.answered(now, poll, &grant(7, "pg", &[11]));
    let (_, request) = b.next_poll(now, 20_000).expect("at once after a lease");
    assert_eq!(
        request.free,
        [(TypeId::new("pg"), 2), (TypeId::new("probe"), 1)]
            .into_iter()
            .collect()
    );
    assert_eq!(request.wait_ms, 20_000);
    assert!(request.destroying.is_empty());
}

#[test]
fn free_slots_never_go_below_zero_and_ignore_types_not_served() {
    let (mut b, now) = started(&[("pg", 1)]);
    let listing = [
        listed(1, "pg", ServerState::Ready, ServerWant::Keep),
        listed(2, "pg", ServerState::Held, ServerWant::Hold),
        listed(3, "gone-type", ServerState::Ready, ServerWant::Keep),
    ];
    let since = b.mark();
    assert_eq!(b.reconciled(since, &listing, Some(&[]), false, now), []);
    assert_eq!(b.book().len(), 3);
    assert_eq!(
        free(&b),
        [],
        "two pg in the books against a capacity of one"
    );
}

#[test]
fn a_held_resource_is_left_alone_until_released() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 1)]);
    b.answered(now, poll, &grant(1, "pg", &[5]));
    b.created(5, ok());
    b.reported(5, Reported::Accepted);
    assert_eq!(
        b.answered(now, poll, &destroy_list(&[5])),
        [destroy(5, "pg", true)]
    );
    b.destroyed(5, Destroyed::Failed, now);
    let since = b.mark();
    let held = [listed(5, "pg", ServerState::Held, ServerWant::Hold)];
    b.reconciled(since, &held, Some(&[owned(5, "pg")]), false, now);
    assert_eq!(phase(&b, 5), Some(Phase::Parked));
    assert_eq!(
        b.answered(now, poll, &destroy_list(&[5])),
        [destroy(5, "pg", true)],
        "released by the operator"
    );
}

#[test]
fn orphans_are_destroyed_without_confirmation() {
    let (mut b, now) = started(&[("pg", 4)]);
    let since = b.mark();
    let listing = [listed(1, "pg", ServerState::Ready, ServerWant::Keep)];
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
    assert_eq!(b.destroyed(2, Destroyed::Done, now), []);
    assert_eq!(free(&b), pairs(&[("pg", 3)]));
}

#[test]
fn the_first_pass_fails_what_an_earlier_run_was_creating() {
    let now = Instant::now();
    let listing = [
        listed(4, "pg", ServerState::Creating, ServerWant::Keep),
        listed(5, "pg", ServerState::Ready, ServerWant::Keep),
        listed(6, "pg", ServerState::Releasing, ServerWant::Release),
    ];
    let mut b = book(&[("pg", 4)]);
    let since = b.mark();
    let actions = b.reconciled(since, &listing, Some(&[owned(4, "pg")]), true, now);
    assert_eq!(
        actions,
        [
            WellAction::ReportFailed {
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
    assert_eq!(phase(&b, 4), Some(Phase::Parked));
}

#[test]
fn a_destroy_list_naming_an_unknown_resource_asks_for_a_reconcile() {
    let now = Instant::now();
    let (mut b, poll) = polling(&[("pg", 2)]);
    assert_eq!(
        b.answered(now, poll, &destroy_list(&[9])),
        [WellAction::Reconcile]
    );
}
