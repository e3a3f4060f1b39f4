//! The model checks: the production rule holds in the small scope, with
//! and without faults, and every mutant fails with the deadlock that
//! DESIGN.md predicts. Unique state counts are pinned so that any change
//! to the state space shows in review: when one changes on purpose, update
//! the figure here and in CI.md.

use aquifer_core::{AcquisitionPolicy, GrantMode, PoolSharing, Rules};
use aquifer_model::properties::NO_DEADLOCK;
use aquifer_model::run::{self, Strategy};
use aquifer_model::scope::{Scope, ScopeName};
use aquifer_model::{AquiferModel, Faults, describe};

fn model(rules: Rules, faults: Faults) -> AquiferModel {
    AquiferModel::new(Scope::new(ScopeName::Small, rules.pools), rules, faults)
}

#[test]
fn small_scope_without_faults_holds_every_property() {
    let report = run::check(
        model(Rules::production(), Faults::None),
        1,
        Strategy::Dfs,
        None,
    );
    assert_eq!(report.result(), "ok", "{}", report.last_line());
    assert_eq!(report.unique, 909);
}

#[test]
fn small_scope_with_every_fault_holds_every_property() {
    let report = run::check(
        model(Rules::production(), Faults::All),
        2,
        Strategy::Dfs,
        None,
    );
    assert_eq!(report.result(), "ok", "{}", report.last_line());
    assert_eq!(report.unique, 370_329);
    println!("{}", report.last_line());
}

/// Runs a mutant, expects a deadlock, and returns its shortest
/// counterexample rendered as steps, with the number of steps.
fn deadlocks(rules: Rules) -> (usize, String) {
    let report = run::check(model(rules, Faults::None), 1, Strategy::Dfs, None);
    assert!(
        report.violated.iter().any(|(name, _)| *name == NO_DEADLOCK),
        "the mutant {rules:?} did not deadlock: {}",
        report.last_line()
    );
    let path = run::shortest(model(rules, Faults::None), NO_DEADLOCK).expect("a counterexample");
    let steps = path.clone().into_actions().len();
    (steps, describe::path(&model(rules, Faults::None), &path))
}

#[test]
fn parallel_acquisition_deadlocks() {
    let (steps, text) = deadlocks(Rules {
        acquisition: AcquisitionPolicy::Parallel,
        ..Rules::production()
    });
    println!("{text}");
    assert_eq!(steps, 25);
    // The older job 2 took the worker while the younger job 3 holds c.
    assert!(
        text.contains("job 2 (acquiring) holds [worker 2] and waits for [c]"),
        "{text}"
    );
    assert!(
        text.contains("job 3 (acquiring) holds [c#4, b#5, b#6] and waits for [a worker]"),
        "{text}"
    );
}

#[test]
fn a_pool_shared_by_two_types_deadlocks() {
    let (steps, text) = deadlocks(Rules {
        pools: PoolSharing::Shared,
        ..Rules::production()
    });
    println!("{text}");
    assert_eq!(steps, 8);
    assert!(
        text.contains("job 1 (acquiring) holds [a#3] and waits for [b]"),
        "{text}"
    );
    assert!(
        text.contains("job 3 (acquiring) holds [b#1, b#2] and waits for [c]"),
        "{text}"
    );
}

#[test]
fn a_group_granted_one_by_one_deadlocks() {
    let (steps, text) = deadlocks(Rules {
        grant: GrantMode::OneByOne,
        ..Rules::production()
    });
    println!("{text}");
    assert_eq!(steps, 9);
    assert!(
        text.contains("job 1 (acquiring) holds [a#2, b#3] and waits for [b]"),
        "{text}"
    );
    assert!(
        text.contains("job 3 (acquiring) holds [b#1] and waits for [b]"),
        "{text}"
    );
}

#[test]
fn a_simulation_finds_a_design_mutant_and_replays_its_run() {
    let parallel = Rules {
        acquisition: AcquisitionPolicy::Parallel,
        ..Rules::production()
    };
    // The limit only bounds a failure: the first violation stops the runs.
    let report = run::simulate(
        model(parallel, Faults::All),
        1,
        std::time::Duration::from_secs(120),
        1,
    );
    assert!(report.sampled, "{}", report.last_line());
    let (name, path) = report.violated.first().expect("a violation");
    assert!(
        report.result().starts_with("violated:"),
        "{}",
        report.last_line()
    );
    // The path is the run, rebuilt from its actions: it ends in a state
    // that breaks the property.
    let m = model(parallel, Faults::All);
    let properties = stateright::Model::properties(&m);
    let property = (properties.iter().find(|p| p.name == *name)).expect("a named property");
    assert!(!(property.condition)(&m, path.last_state()), "{name}");
}

#[test]
fn a_simulation_of_the_production_rule_breaks_nothing() {
    let report = run::simulate(
        model(Rules::production(), Faults::All),
        1,
        std::time::Duration::from_secs(3),
        1,
    );
    assert_eq!(report.result(), "sampled", "{}", report.last_line());
    assert!(report.runs > 0 && report.states > report.runs);
    assert!(
        report.last_line().contains(" runs="),
        "{}",
        report.last_line()
    );
}

#[test]
fn the_figures_line_has_the_documented_shape() {
    let report = run::check(
        model(Rules::production(), Faults::None),
        1,
        Strategy::Bfs,
        None,
    );
    let line = report.last_line();
    let keys: Vec<&str> = line
        .split(' ')
        .map(|kv| kv.split('=').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        ["states", "unique", "secs", "states_per_s", "result"],
        "{line}"
    );
    assert!(line.ends_with("result=ok"), "{line}");
}

/// The binary's contract: exit 0 and `result=ok` when everything holds,
/// exit 1 with the counterexample and `result=violated:<property>` when
/// something fails; the figures line is the last line either way.
#[test]
fn the_check_binary_exits_by_its_result() {
    let bin = env!("CARGO_BIN_EXE_aquifer-model");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(["check", "--scope", "small", "--faults", "none"])
            .args(args)
            .output()
            .expect("the binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.ends_with("result=ok")),
        "{out}"
    );
    let (code, out) = run(&["--pools", "shared"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("job 3 acquires b#1, b#2 from well 2"), "{out}");
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert!(last.ends_with("result=violated:no-deadlock"), "{out}");
    // A time limit that stops the check first proves nothing: exit 2.
    let out = std::process::Command::new(bin)
        .args([
            "check",
            "--scope",
            "standard",
            "--faults",
            "all",
            "--timeout-secs",
            "0",
        ])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.trim_end().ends_with("result=incomplete"), "{stdout}");
}
