//! `aquifer server` as a process: it starts from flags, environment and a
//! config file, serves the API, keeps what it decided across a restart,
//! and refuses bad configuration with a clear error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const TOKEN: &str = "0123456789abcdef0123456789abcdef-test";

fn aquifer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aquifer"));
    c.env_remove("AQUIFER_CONFIG")
        .env_remove("AQUIFER_LISTEN")
        .env_remove("AQUIFER_DATABASE")
        .env_remove("AQUIFER_BOOTSTRAP_TOKEN");
    c
}

/// Starts a server and returns it with its base URL, read from the line it
/// prints once it listens.
fn start(db: &str, config: Option<&std::path::Path>) -> (Child, String) {
    let mut cmd = aquifer();
    cmd.args(["server", "--listen", "127.0.0.1:0", "--database", db])
        .env("AQUIFER_BOOTSTRAP_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(path) = config {
        cmd.arg("--config").arg(path);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let url = line
        .trim()
        .strip_prefix("aquifer server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

async fn define_target(url: &str, name: &str) -> u16 {
    let client = aquifer_protocol::Client::new(url, Some(TOKEN.into())).expect("a client");
    let target = serde_json::json!({ "name": name });
    let answer = client.exchange(
        aquifer_protocol::Method::POST,
        "/0/admin/targets",
        Some(&target),
    );
    answer.await.expect("an answer").0
}

#[tokio::test]
async fn the_server_keeps_its_decisions_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite:{}", dir.path().join("aquifer.db").display());
    let config = dir.path().join("aquifer.toml");
    std::fs::write(&config, "[limits]\nlease_ttl_ms = 30000\n").expect("config");
    let (mut first, url) = start(&db, Some(&config));
    assert_eq!(define_target(&url, "ubuntu").await, 201);
    first.kill().expect("killed");
    first.wait().expect("reaped");
    let (mut second, url) = start(&db, Some(&config));
    assert_eq!(
        define_target(&url, "ubuntu").await,
        409,
        "the first run's target is still there"
    );
    second.kill().expect("killed");
    second.wait().expect("reaped");
}

fn fails_with(args: &[&str], env: &[(&str, &str)], expected: &str) -> String {
    let out = aquifer()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    stderr
}

#[test]
fn bad_configuration_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nsurprise = 1\n").expect("config");
    let bad = bad.display().to_string();
    fails_with(&["server", "--config", &bad], &[], "bad.toml");
    let empty_batch = dir.path().join("batch.toml");
    std::fs::write(&empty_batch, "[driver]\nbatch_max = 0\n").expect("config");
    let empty_batch = empty_batch.display().to_string();
    fails_with(
        &["server", "--config", &empty_batch],
        &[],
        "queue_max and batch_max must be at least 1",
    );
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[driver]\nsnapshot_every = 5\n").expect("config");
    let typo = typo.display().to_string();
    fails_with(&["server", "--config", &typo], &[], "snapshot_every");
    fails_with(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "sqlite::memory:",
        ],
        &[("AQUIFER_BOOTSTRAP_TOKEN", "short")],
        "at least 32 characters",
    );
    let stderr = fails_with(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "postgres://ci:hunter2@127.0.0.1:1/aquifer",
        ],
        &[],
        "127.0.0.1:1",
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite:{}", dir.path().join("aquifer.db").display());
    let mut child = aquifer()
        .args([
            "--log-format",
            "json",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
        ])
        .env("AQUIFER_BOOTSTRAP_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    assert!(line.starts_with("aquifer server listening on "), "{line:?}");
    child.kill().expect("killed");
    let out = child.wait_with_output().expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged nothing");
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}
