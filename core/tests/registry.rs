//! Registration of types, targets, wells and factories, and the lease hold.

mod common;
use aquifer_core::*;
use common::*;
use std::collections::BTreeMap;

#[test]
fn define_type_then_refuse_it_twice_or_badly_named() {
    let mut s = State::new(Rules::production(), Limits::default());
    let e = events(
        &mut s,
        Input::DefineType {
            rtype: t("pg-15"),
            spec: TypeSpec {
                max_per_job: 2,
                privilege: None,
            },
        },
        0,
    );
    assert!(matches!(&e[..], [Event::TypeDefined { rtype, .. }] if rtype.as_str() == "pg-15"));
    let again = Input::DefineType {
        rtype: t("pg-15"),
        spec: TypeSpec {
            max_per_job: 2,
            privilege: None,
        },
    };
    assert_eq!(rejects(&s, again, 0), "already_exists");
    for bad in ["", "Upper", "1st", "has space", &"x".repeat(64)] {
        let input = Input::DefineType {
            rtype: t(bad),
            spec: TypeSpec {
                max_per_job: 1,
                privilege: None,
            },
        };
        assert_eq!(rejects(&s, input, 0), "bad_name", "{bad:?}");
    }
    let zero = Input::DefineType {
        rtype: t("zero"),
        spec: TypeSpec {
            max_per_job: 0,
            privilege: None,
        },
    };
    assert_eq!(rejects(&s, zero, 0), "bad_count");
}

#[test]
fn define_target_once() {
    let mut s = world();
    let input = Input::DefineTarget {
        target: target("ubuntu-24.04"),
        spec: TargetSpec { privilege: None },
    };
    let e = events(&mut s, input.clone(), 0);
    assert!(matches!(&e[..], [Event::TargetDefined { .. }]));
    assert_eq!(rejects(&s, input, 0), "already_exists");
}

#[test]
fn a_well_pool_belongs_to_one_type_and_holds_a_whole_group() {
    let s = world();
    let register = |well, pools| Input::RegisterWell { well, pools };
    assert_eq!(
        rejects(&s, register(WellId(9), vec![pool(&["a", "b"], 2)]), 0),
        "bad_pool"
    );
    assert_eq!(
        rejects(&s, register(WellId(9), vec![pool(&["b"], 1)]), 0),
        "bad_pool"
    );
    assert_eq!(
        rejects(
            &s,
            register(WellId(9), vec![pool(&["a"], 1), pool(&["a"], 1)]),
            0
        ),
        "bad_pool"
    );
    assert_eq!(rejects(&s, register(WellId(9), vec![]), 0), "bad_pool");
    assert_eq!(
        rejects(&s, register(WellId(9), vec![pool(&[], 1)]), 0),
        "bad_pool"
    );
    assert_eq!(
        rejects(&s, register(WellId(9), vec![pool(&["zz"], 1)]), 0),
        "unknown_type"
    );
    assert_eq!(
        rejects(&s, register(W1, vec![pool(&["a"], 1)]), 0),
        "already_exists"
    );
}

#[test]
fn the_shared_pool_mutant_accepts_a_pool_of_two_types() {
    let rules = Rules {
        pools: PoolSharing::Shared,
        ..Rules::production()
    };
    let mut s = world_with(rules, Limits::default());
    let e = events(
        &mut s,
        Input::RegisterWell {
            well: WellId(9),
            pools: vec![pool(&["a", "b"], 2)],
        },
        0,
    );
    assert!(matches!(&e[..], [Event::WellRegistered { .. }]));
}

#[test]
fn register_factory_checks_targets_and_capacity() {
    let mut s = world();
    let input = |capacity: BTreeMap<TargetId, u16>| Input::RegisterFactory {
        factory: FactoryId(2),
        capacity,
    };
    assert_eq!(rejects(&s, input(BTreeMap::new()), 0), "bad_pool");
    assert_eq!(
        rejects(&s, input(BTreeMap::from([(target("t"), 0)])), 0),
        "bad_pool"
    );
    assert_eq!(
        rejects(&s, input(BTreeMap::from([(target("nope"), 1)])), 0),
        "unknown_target"
    );
    let e = events(&mut s, input(BTreeMap::from([(target("t"), 3)])), 0);
    assert!(matches!(&e[..], [Event::FactoryRegistered { .. }]));
    assert_eq!(
        rejects(&s, input(BTreeMap::from([(target("t"), 3)])), 0),
        "already_exists"
    );
}

#[test]
fn a_lease_hold_stops_new_grants_until_lifted() {
    let mut s = world();
    submit(&mut s, &[("a", 1)]);
    let e = events(&mut s, Input::HoldLeases { held: true }, 0);
    assert_eq!(e, vec![Event::LeasesHeld { held: true }]);
    assert!(ok(&mut s, lease_request(W1, &[("a", 1)]), 0).is_empty());
    // Holding twice decides nothing new.
    assert!(ok(&mut s, Input::HoldLeases { held: true }, 0).is_empty());
    ok(&mut s, Input::HoldLeases { held: false }, 0);
    assert!(granted(&ok(&mut s, lease_request(W1, &[("a", 1)]), 0)).is_some());
}

#[test]
fn the_lease_hold_applies_to_factories_too() {
    let mut s = world();
    submit(&mut s, &[]);
    ok(&mut s, Input::HoldLeases { held: true }, 0);
    assert!(ok(&mut s, worker_request(1), 0).is_empty());
}

#[test]
fn rejection_codes_are_distinct_and_stable() {
    let samples = [
        Rejection::UnknownJob { job: J1 },
        Rejection::UnknownLease { lease: LeaseId(1) },
        Rejection::UnknownResource {
            resource: ResourceId(1),
        },
        Rejection::UnknownWorker {
            worker: WorkerId(1),
        },
        Rejection::UnknownWell { well: W1 },
        Rejection::UnknownFactory { factory: F1 },
        Rejection::UnknownTarget {
            target: target("t"),
        },
        Rejection::UnknownType { rtype: t("a") },
        Rejection::Gone { what: "x".into() },
        Rejection::NotYours { what: "x".into() },
        Rejection::NotServed {
            what: "x".into(),
            by: "y".into(),
        },
        Rejection::LeaseExpired { lease: LeaseId(1) },
        Rejection::Duplicate { what: "x".into() },
        Rejection::WrongState {
            what: "x".into(),
            state: "a",
            wanted: "b",
        },
        Rejection::JobEnded {
            job: J1,
            outcome: Outcome::Cancelled,
        },
        Rejection::JobNotRunning { job: J1 },
        Rejection::JobNotReady { job: J1 },
        Rejection::PrivilegeMissing {
            privilege: Privilege::new("p"),
            what: "x".into(),
        },
        Rejection::BadCount {
            rtype: t("a"),
            count: 2,
            max: 1,
        },
        Rejection::LimitExceeded { what: "x", max: 1 },
        Rejection::BadName { name: "X".into() },
        Rejection::BadPool { reason: "x".into() },
        Rejection::AlreadyExists { what: "x".into() },
    ];
    let codes: std::collections::BTreeSet<_> = samples.iter().map(Rejection::code).collect();
    assert_eq!(codes.len(), samples.len());
    assert!(
        codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
    );
}
