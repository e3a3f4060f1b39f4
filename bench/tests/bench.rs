//! The harness as its users run it: the release binaries, a real server.
//! These check what the scenarios count and that they clean up, never how
//! fast anything was.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("a target dir");
    dir.join(name)
}

fn bench(args: &[&str]) -> Output {
    Command::new(bin("aquifer-bench"))
        .args(args)
        .env_remove("AQUIFER_BENCH_POSTGRES_URL")
        .output()
        .expect("aquifer-bench runs")
}

/// The JSON object of the last line, after checking the run succeeded.
fn figures(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stdout}\n{stderr}");
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"))
}

fn stores() -> Vec<Vec<String>> {
    let mut stores = vec![vec!["--store".to_string(), "sqlite".to_string()]];
    if let Ok(url) = std::env::var("AQUIFER_TEST_POSTGRES_URL") {
        stores.push(vec![
            "--store".into(),
            "postgres".into(),
            "--postgres-url".into(),
            url,
        ]);
    }
    stores
}

fn with(store: &[String], args: &[&str]) -> Vec<String> {
    (store.iter().cloned())
        .chain(args.iter().map(ToString::to_string))
        .collect()
}

fn run(args: &[String]) -> Output {
    bench(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn nonsense_parameters_are_refused_with_a_reason() {
    for (args, says) in [
        (
            vec!["throughput", "--jobs", "0"],
            "--jobs must be at least 1",
        ),
        (
            vec!["throughput", "--resources", "40"],
            "--resources is at most 16",
        ),
        (
            vec!["scale", "--small", "500", "--large", "100"],
            "must be more than --small",
        ),
        (
            vec!["--store", "postgres", "handoff"],
            "needs --postgres-url",
        ),
        (
            vec!["--stall-s", "0", "handoff"],
            "--stall-s must be at least 1",
        ),
        (vec!["soak", "--jobs", "0"], "--jobs must be at least 1"),
        (
            vec!["soak", "--timeout-s", "0"],
            "--timeout-s must be at least 1",
        ),
    ] {
        let out = bench(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn throughput_runs_every_job_to_success_on_each_store() {
    for store in stores() {
        let f = figures(&run(&with(
            &store,
            &[
                "throughput",
                "--jobs",
                "40",
                "--resources",
                "2",
                "--capacity",
                "3",
            ],
        )));
        assert_eq!(f["scenario"], "throughput");
        assert_eq!(f["jobs"], 40);
        assert!(f["jobs_per_s"].as_f64().is_some_and(|x| x > 0.0), "{f}");
        assert!(
            f["start_p99_ms"].as_f64() >= f["start_p50_ms"].as_f64(),
            "{f}"
        );
        // The local path's two spans are read from every job's stream.
        for key in ["ready_to_start_p50_ms", "end_to_destroyed_p50_ms"] {
            assert!(f[key].as_f64().is_some_and(|ms| ms >= 0.0), "{key}: {f}");
        }
    }
}

#[test]
fn every_job_after_the_first_is_a_hand_off() {
    for store in stores() {
        let f = figures(&run(&with(&store, &["handoff", "--jobs", "6"])));
        // One slot, or two slots and jobs that need both: each job but the
        // first waits for the one before it to give its room back.
        assert_eq!(f["one_slot_handoffs"], 5, "{f}");
        assert_eq!(f["two_of_two_handoffs"], 5, "{f}");
    }
}

#[test]
fn scale_measures_both_sizes() {
    let f = figures(&bench(&[
        "scale", "--small", "20", "--large", "60", "--types", "4", "--probes", "3",
    ]));
    assert_eq!(f["small_queued"], 20);
    assert_eq!(f["large_queued"], 60);
    assert!(f["lease_ratio"].as_f64().is_some_and(f64::is_finite), "{f}");
}

#[test]
fn recovery_replays_the_whole_log_only_without_snapshots() {
    let f = figures(&bench(&["recovery", "--events", "30000"]));
    assert_eq!(
        f["no_snapshots_replayed_events"], f["no_snapshots_events"],
        "{f}"
    );
    let with = f["snapshots_replayed_events"].as_u64().expect("a count");
    assert!(with < 10_000 + 1_000, "{f}");
}

#[test]
fn a_stalled_scenario_gives_up_and_leaves_nothing_running() {
    let out = bench(&[
        "--stall-s",
        "3",
        "throughput",
        "--jobs",
        "2",
        "--resources",
        "1",
        "--capacity",
        "1",
        "--factory",
        "local",
        "--script",
        "sleep 600",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("stalled"), "{stderr}");
    assert!(stderr.contains("0 destroyed"), "{stderr}");
    let marker = (stderr.lines())
        .find_map(|l| l.strip_prefix("aquifer-bench: run "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the run's marker");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == marker.as_bytes()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "processes of the run left: {left:?}");
}

/// A short soak on SQLite: every kill survived, its last line as
/// documented, and the same seed gives the same schedule of kills.
#[test]
fn a_short_soak_survives_its_kills_and_says_so_in_one_line() {
    let out = bench(&["soak", "--jobs", "12", "--kills", "4", "--seed", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stdout}\n{stderr}");
    let last = stdout.lines().last().expect("a last line");
    let fields: Vec<(&str, &str)> = (last.split(' '))
        .map(|f| f.split_once('=').expect("key=value"))
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "jobs",
            "ended",
            "kills",
            "failed_by_kill",
            "leaked",
            "violations",
            "seed"
        ],
        "{last}"
    );
    let value = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert_eq!(value("jobs"), Some("12"));
    assert_eq!(value("ended"), Some("12"));
    assert_eq!(value("kills"), Some("4"));
    assert_eq!(
        (value("leaked"), value("violations")),
        (Some("0"), Some("0"))
    );
    assert_eq!(value("seed"), Some("5"));
    let killed: Vec<&str> = (stderr.lines())
        .filter(|l| l.starts_with("soak: killed"))
        .map(|l| l.split(" (").next().unwrap_or(l))
        .collect();
    assert_eq!(killed.len(), 4, "{stderr}");
}
