//! The user and admin commands against a real `aquifer server` process:
//! an operator sets up types, a target, a well and a user; the user
//! submits a TOML job file, lists, shows, explains, cancels and watches
//! it; tables by default, JSON on request; errors are readable.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BOOT: &str = "0123456789abcdef0123456789abcdef-commands";

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite:{}", dir.path().join("aquifer.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_aquifer"))
        .args(["server", "--listen", "127.0.0.1:0", "--database", &db])
        .env("AQUIFER_BOOTSTRAP_TOKEN", BOOT)
        .env_remove("AQUIFER_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let url = line
        .trim()
        .strip_prefix("aquifer server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server {
        child,
        url,
        _dir: dir,
    }
}

impl Server {
    fn run(&self, token: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_aquifer"))
            .args(args)
            .env("AQUIFER_URL", &self.url)
            .env("AQUIFER_TOKEN", token)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the command runs")
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.run(token, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(token, &args)).expect("JSON output")
    }
}

#[test]
fn an_operator_sets_up_and_a_user_submits_follows_and_cancels_a_toml_job() {
    let s = server();
    s.ok(
        BOOT,
        &["admin", "type", "create", "pg", "--max-per-job", "2"],
    );
    s.ok(BOOT, &["admin", "target", "create", "ubuntu"]);
    let well_token = s.ok(
        BOOT,
        &["admin", "well", "create", "pg-1", "--capacity", "pg=2"],
    );
    assert!(well_token.trim().starts_with("aq_"), "{well_token}");
    let alice = s.ok(BOOT, &["admin", "user", "create", "alice"]);
    let alice = alice.trim();
    let types = s.ok(BOOT, &["admin", "type", "list"]);
    assert!(
        types.contains("MAX PER JOB") && types.contains("pg"),
        "{types}"
    );
    let wells = s.ok(BOOT, &["admin", "well", "list"]);
    assert!(wells.contains("pg 2/2 free"), "{wells}");
    // A leaked well token is revoked, and the well given a new one.
    let revoked = s.ok(BOOT, &["admin", "well", "revoke-tokens", "1"]);
    assert!(revoked.contains("revoked 1 tokens of well 1"), "{revoked}");
    let out = s.run(well_token.trim(), &["job", "list"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("unauthorized"),
        "{said}"
    );
    let fresh = s.ok(BOOT, &["admin", "well", "token", "1"]);
    assert!(fresh.trim().starts_with("aq_"), "{fresh}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("job.toml");
    std::fs::write(
        &file,
        r#"
name = "integration"
target = "ubuntu"
timeout_s = 600

[[resources]]
name = "db"
type = "pg"
count = 2

[[tasks]]
name = "test"
script = "bmat resource get db url"
"#,
    )
    .expect("job file");
    let file = file.display().to_string();
    let out = s.ok(alice, &["job", "submit", &file]);
    assert_eq!(out.trim(), "submitted job 1");
    let listed = s.ok(alice, &["job", "list"]);
    assert!(
        listed.contains("integration") && listed.contains("queued"),
        "{listed}"
    );
    let listed = s.json(alice, &["job", "list", "--state", "ended"]);
    assert_eq!(listed, serde_json::json!([]));
    let shown = s.json(alice, &["job", "show", "1"]);
    assert_eq!(shown["state"], "queued");
    let explained = s.ok(alice, &["job", "explain", "1"]);
    assert!(explained.contains("place 1 in its queue"), "{explained}");
    assert!(explained.contains("well pg-1 (2/2 free)"), "{explained}");
    let queue = s.json(alice, &["queue"]);
    assert_eq!(queue["types"]["pg"]["queued"], 1, "{queue}");
    assert_eq!(queue["types"]["pg"]["capacity"], 2, "{queue}");
    assert_eq!(queue["targets"]["ubuntu"]["queued"], 0, "{queue}");
    let table = s.ok(alice, &["queue"]);
    assert!(
        table.contains("TYPE") && table.contains("TARGET"),
        "{table}"
    );

    let cancelled = s.ok(alice, &["job", "cancel", "1"]);
    assert!(cancelled.contains("ended, cancelled"), "{cancelled}");
    assert!(
        cancelled.contains("of alice"),
        "the owner by name: {cancelled}"
    );
    // Watching an ended job prints its story and fails, as it did not
    // succeed.
    let out = s.run(alice, &["job", "watch", "1"]);
    assert!(!out.status.success());
    let story = String::from_utf8_lossy(&out.stdout);
    assert!(story.contains("submitted for ubuntu"), "{story}");
    assert!(story.contains("ended: cancelled"), "{story}");

    // Refusals come back as the server's message and code.
    let out = s.run(alice, &["job", "cancel", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("job_ended") && err.contains("409"), "{err}");
    let out = s.run(alice, &["admin", "user", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
    let out = s.run("", &["job", "list"]);
    assert!(!out.status.success());
}

/// Every failure a user meets first (a bad file, an unknown job, a bad
/// token, no server) is a clear message and a non-zero exit, never a
/// backtrace, even with RUST_BACKTRACE set.
#[test]
fn failures_are_one_clear_line_without_a_backtrace() {
    let s = server();
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = ").expect("written");
    let bad = bad.display().to_string();
    let cases: [(&str, &str, Vec<&str>, &str); 4] = [
        (&s.url, BOOT, vec!["job", "submit", &bad], "bad.toml"),
        (&s.url, BOOT, vec!["job", "show", "99"], "404"),
        (&s.url, "aq_not_a_token", vec!["job", "list"], "401"),
        (
            "http://127.0.0.1:1",
            BOOT,
            vec!["job", "list"],
            "127.0.0.1:1",
        ),
    ];
    for (url, token, args, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_aquifer"))
            .args(&args)
            .env("AQUIFER_URL", url)
            .env("AQUIFER_TOKEN", token)
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LIB_BACKTRACE", "1")
            .output()
            .expect("the command runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        // The first line says what went wrong; a parse error goes on to
        // point at the place.
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("aquifer: ") && first.contains(says),
            "{args:?}: {err}"
        );
        assert!(!err.to_lowercase().contains("backtrace"), "{args:?}: {err}");
    }
}
