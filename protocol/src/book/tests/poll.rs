//! The pacing of lease polls: when to ask, with what, and when a poll out
//! may be abandoned to ask anew.

use super::*;

/// A book past its first reconcile pass, with `alive` alive.
fn polling(capacity: &[(&'static str, u32)], alive: &[(u32, &'static str)]) -> Book<Toy> {
    let mut b = book(capacity);
    for &(id, kind) in alive {
        make_alive(&mut b, id, kind);
    }
    let listing: Vec<Listed<Toy>> = (alive.iter())
        .map(|&(id, kind)| listed(id, kind, Want::Keep(Keep::Alive)))
        .collect();
    reconcile(&mut b, &listing, None, Instant::now());
    b
}

fn granted(id: u32, kind: &'static str) -> Granted<Toy> {
    Granted {
        id,
        kind,
        order: id + 100,
    }
}

fn asking(free: &[(&'static str, u16)], destroying: &[u32]) -> Asking<&'static str> {
    Asking {
        free: free.iter().copied().collect(),
        destroying: destroying.iter().copied().collect(),
    }
}

/// Sends a poll, which must be due.
fn send(b: &mut Book<Toy>, now: Instant) -> (PollId, Asking<&'static str>) {
    b.next_poll(now).expect("a poll is due")
}

#[test]
fn no_poll_goes_out_before_the_first_reconcile_pass() {
    let (mut b, now) = started(&[("pg", 2)]);
    assert_eq!(b.next_poll(now), None);
    assert_eq!(b.poll_deadline(now), None);
    reconcile(&mut b, &[], Some(&[]), now);
    let (_, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[("pg", 2)], &[]));
    assert_eq!(b.next_poll(now), None, "one poll out at a time");
}

#[test]
fn a_poll_names_what_is_destroyed_or_will_be_but_not_a_retry_that_is_due() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 8)], &[(1, "pg"), (2, "pg")]);
    b.destroy_listed(&[1], now);
    lease(&mut b, 3, "pg");
    b.destroy_listed(&[3], now);
    let at = make_retrying(&mut b, 4, "pg", now);
    lease(&mut b, 5, "pg");
    assert_eq!(b.asking(now), asking(&[("pg", 3)], &[1, 3, 4]));
    assert_eq!(b.asking(at), asking(&[("pg", 3)], &[1, 3]));
}

#[test]
fn a_lease_or_a_wait_run_out_is_followed_by_the_next_poll_at_once() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 2)], &[]);
    let (id, _) = send(&mut b, now);
    let actions = b.answered(now, id, Some(vec![granted(7, "pg")]), &[]);
    assert_eq!(actions, [create(7, "pg")]);
    let (id, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[("pg", 1)], &[]), "what the lease left");
    assert_eq!(b.answered(now, id, None, &[]), []);
    assert!(b.next_poll(now).is_some(), "the wait ran its course");
}

#[test]
fn a_destruction_the_poll_started_is_followed_by_the_next_poll_at_once() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 2)], &[(1, "pg")]);
    let (id, _) = send(&mut b, now);
    assert_eq!(b.answered(now, id, None, &[1]), [destroy(1, "pg", true)]);
    let (_, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[("pg", 1)], &[1]));
}

#[test]
fn a_confirmed_destruction_is_followed_by_a_poll_as_soon_as_its_slot_is_free() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 1)], &[(1, "pg")]);
    b.destroy_listed(&[1], now);
    let (id, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[], &[1]));
    // The server ends the wait: 1 has left its books. The book has not
    // heard yet, and a poll now would ask for nothing again.
    assert_eq!(b.answered(now, id, None, &[]), []);
    assert_eq!(b.next_poll(now), None);
    assert_eq!(b.poll_deadline(now), Some(now + SETTLE_MAX));
    b.destroyed(1, Destroyed::Done, now);
    let (_, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[("pg", 1)], &[]), "the slot it gave back");
}

#[test]
fn a_wait_run_out_while_an_orphan_is_destroyed_is_no_news() {
    let (mut b, now) = started(&[("pg", 1)]);
    reconcile(&mut b, &[], Some(&[owned(1, "pg")]), now);
    let (id, asked) = send(&mut b, now);
    assert_eq!(
        asked,
        asking(&[], &[]),
        "not named: the server never listed it, and would take its absence for news"
    );
    assert_eq!(b.answered(now, id, None, &[]), []);
    assert!(
        b.next_poll(now).is_some(),
        "a wait run out is followed at once"
    );
}

#[test]
fn news_the_book_cannot_act_on_holds_the_next_poll_back_a_while() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 1)], &[]);
    let (id, _) = send(&mut b, now);
    assert_eq!(b.answered(now, id, None, &[9]), [Action::Reconcile]);
    assert_eq!(b.next_poll(now), None);
    assert_eq!(b.poll_deadline(now), Some(now + SETTLE_MAX));
    assert!(b.next_poll(now + SETTLE_MAX).is_some());
}

#[test]
fn a_failed_poll_is_asked_again_after_a_back_off_that_doubles() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 1)], &[]);
    let (id, _) = send(&mut b, now);
    b.poll_failed(now, id);
    let Some(first) = b.poll_deadline(now) else {
        panic!("a back-off");
    };
    assert!(first >= now + Duration::from_millis(50) && first <= now + Duration::from_millis(100));
    assert_eq!(b.next_poll(now), None);
    let (id, _) = send(&mut b, first);
    b.poll_failed(first, id);
    let second = b.poll_deadline(first).map(|d| d - first);
    assert!(second >= Some(Duration::from_millis(100)), "{second:?}");
    let (id, _) = send(&mut b, first + Duration::from_secs(1));
    b.answered(now, id, None, &[]);
    let (id, _) = send(&mut b, now);
    b.poll_failed(now, id);
    assert!(
        b.poll_deadline(now) <= Some(now + Duration::from_millis(100)),
        "counted anew"
    );
}

#[test]
fn a_poll_that_asked_for_work_is_never_abandoned() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 2)], &[(1, "pg")]);
    send(&mut b, now);
    b.destroy_listed(&[1], now);
    b.destroyed(1, Destroyed::Done, now);
    assert!(!b.abandon_poll(now), "a grant may be on its way");
    assert_eq!(b.poll_deadline(now), None);
}

#[test]
fn a_poll_that_asked_for_nothing_is_abandoned_when_a_slot_frees_up() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 1)], &[(1, "pg")]);
    send(&mut b, now);
    assert!(!b.abandon_poll(now), "nothing has changed");
    b.destroy_listed(&[1], now);
    assert!(
        !b.abandon_poll(now),
        "a destruction under way frees nothing yet"
    );
    b.destroyed(1, Destroyed::Done, now);
    assert!(b.abandon_poll(now));
    let (_, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[("pg", 1)], &[]));
}

#[test]
fn a_poll_that_asked_for_nothing_is_abandoned_when_a_retry_falls_due() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 1)], &[]);
    let at = make_retrying(&mut b, 1, "pg", now);
    let (_, asked) = send(&mut b, now);
    assert_eq!(asked, asking(&[], &[1]));
    assert_eq!(b.poll_deadline(now), Some(at), "when to look again");
    assert!(!b.abandon_poll(now));
    assert!(b.abandon_poll(at));
    let (_, asked) = send(&mut b, at);
    assert_eq!(asked, asking(&[], &[]), "the server names 1 at once");
}

#[test]
fn the_answer_of_an_abandoned_poll_is_acted_on_but_paces_nothing() {
    let now = Instant::now();
    let mut b = polling(&[("pg", 1)], &[(1, "pg"), (2, "other")]);
    let (old, _) = send(&mut b, now);
    b.destroy_listed(&[1], now);
    b.destroyed(1, Destroyed::Done, now);
    assert!(b.abandon_poll(now));
    let (new, _) = send(&mut b, now);
    assert_ne!(old, new);
    assert_eq!(
        b.answered(now, old, None, &[2]),
        [destroy(2, "other", true)]
    );
    assert_eq!(b.next_poll(now), None, "the new poll is still out");
    b.poll_failed(now, old);
    assert_eq!(b.next_poll(now), None);
    b.answered(now, new, None, &[]);
    assert!(b.next_poll(now).is_some());
}

#[test]
fn a_request_names_kinds_and_ids_as_the_wire_does() {
    let a = asking(&[("pg", 2), ("unnamed", 1)], &[4]);
    let r = a.request(
        500,
        |k| (*k != "unnamed").then(|| k.to_uppercase()),
        |d| u64::from(d) * 10,
    );
    assert_eq!(r.free, [("PG".to_string(), 2)].into_iter().collect());
    assert_eq!(r.wait_ms, 500);
    assert_eq!(r.destroying, [40].into_iter().collect());
}
