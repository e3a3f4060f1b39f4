//! The book's transitions, input by input: given entries, when an input
//! comes at a time, then these actions. A toy kind of thing stands for
//! wells' resources and factories' workers.

use super::*;
use std::time::Duration;

mod lifecycle;
mod poll;
mod reconcile;

/// Things of kinds named by `&str`, made for a job number, ready with a
/// label.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Toy;

impl Leasable for Toy {
    type Kind = &'static str;
    type Order = u32;
    type Made = &'static str;
    type Loss = String;
}

type Act = Action<Toy>;

fn book(capacity: &[(&'static str, u32)]) -> Book<Toy> {
    Book::new(
        capacity.iter().copied().collect(),
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
        },
        Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
        },
    )
}

/// A book, and the time its test starts at.
fn started(capacity: &[(&'static str, u32)]) -> (Book<Toy>, Instant) {
    (book(capacity), Instant::now())
}

fn free(b: &Book<Toy>) -> Vec<(&'static str, u16)> {
    b.free().into_iter().collect()
}

fn phase(b: &Book<Toy>, id: u32) -> Option<Phase> {
    b.entry(id).map(|e| e.phase)
}

fn create(id: u32, kind: &'static str) -> Act {
    Action::Create {
        id,
        kind,
        order: id + 100,
    }
}

fn destroy(id: u32, kind: &'static str, confirm: bool) -> Act {
    Action::Destroy { id, kind, confirm }
}

fn ready(id: u32) -> Act {
    Action::Report {
        id,
        report: Report::Ready("made"),
    }
}

fn failure(reason: &str, retryable: bool) -> Failure {
    Failure {
        reason: reason.into(),
        retryable,
    }
}

/// Leases `id`, with the order `id + 100`.
fn lease(b: &mut Book<Toy>, id: u32, kind: &'static str) -> Vec<Act> {
    b.leased(id, kind, id + 100)
}

/// Takes `id` of `b` from lease to `Alive`.
fn make_alive(b: &mut Book<Toy>, id: u32, kind: &'static str) {
    lease(b, id, kind);
    b.created(id, Ok("made"));
    b.reported(id, Reported::Accepted);
    assert_eq!(phase(b, id), Some(Phase::Alive));
}

/// Takes `id` of `b` from `Alive` through a failed destruction, at `now`.
fn make_retrying(b: &mut Book<Toy>, id: u32, kind: &'static str, now: Instant) -> Instant {
    make_alive(b, id, kind);
    b.destroy_listed(&[id], now);
    b.destroyed(id, Destroyed::Failed, now);
    match phase(b, id) {
        Some(Phase::Retrying { at, .. }) => at,
        other => panic!("{other:?}"),
    }
}

/// The reconcile pass `b` would make right now.
fn reconcile(
    b: &mut Book<Toy>,
    listed: &[Listed<Toy>],
    owned: Option<&[Owned<&'static str>]>,
    now: Instant,
) -> Vec<Act> {
    let since = b.mark();
    b.reconciled(since, listed, owned, now)
}

fn listed(id: u32, kind: &'static str, want: Want<Toy>) -> Listed<Toy> {
    Listed { id, kind, want }
}

fn owned(id: u32, kind: &'static str) -> Owned<&'static str> {
    Owned { id, kind }
}
