//! `aquifer dev`: the stack in a data directory, kept running; a second
//! start on the same directory keeps its token and registrations.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Starts `aquifer dev` and returns it with the URL and token it printed.
fn dev(dir: &std::path::Path) -> (std::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aquifer"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("aquifer dev starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        let line = lines.next().expect("a line").expect("text");
        if let Some(u) = line.strip_prefix("server:") {
            url = Some(u.trim().to_string());
        }
        if let Some(t) = line.strip_prefix("admin token:") {
            token = Some(t.trim().to_string());
        }
    }
    (child, url.unwrap_or_default(), token.unwrap_or_default())
}

/// The data directory, if others may enter it, and every token,
/// configuration and database file under it that others may read.
fn readable_by_others(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode();
    let mut open = Vec::new();
    if mode(dir) & 0o077 != 0 {
        open.push(format!("{} {:o}", dir.display(), mode(dir)));
    }
    let mut todo = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a directory") {
                todo.push(entry.expect("an entry").path());
            }
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let secret =
            name.ends_with("token") || name == "config.toml" || name.starts_with("aquifer.db");
        if secret {
            files += 1;
            if mode(&path) & 0o077 != 0 {
                open.push(format!("{} {:o}", path.display(), mode(&path)));
            }
        }
    }
    // The bootstrap token, the database and its WAL, and each of the three
    // services' token and configuration at least.
    assert!(
        files >= 9,
        "only {files} such files under {}",
        dir.display()
    );
    open
}

async fn get(url: &str, token: &str, path: &str) -> serde_json::Value {
    let client = aquifer_protocol::Client::new(url, Some(token.into())).expect("a client");
    let (status, body) = (client.exchange(aquifer_protocol::Method::GET, path, None::<&()>))
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn dev_serves_its_stack_and_keeps_it_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut first, url, token) = dev(dir.path());
    let wells = get(&url, &token, "/0/admin/wells").await;
    let names: Vec<&str> = (wells.as_array().expect("a list").iter())
        .map(|w| w["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["probes", "licenses"], "{wells}");
    // Tokens, configurations and the database (with its WAL) are the
    // owner's alone.
    let open = readable_by_others(dir.path());
    assert!(open.is_empty(), "readable by others: {open:?}");
    first.kill().expect("killed");
    first.wait().expect("reaped");

    let (mut second, url, again) = dev(dir.path());
    assert_eq!(again, token, "the data directory keeps its token");
    let wells = get(&url, &token, "/0/admin/wells").await;
    assert_eq!(wells.as_array().map(Vec::len), Some(2), "{wells}");
    let factories = get(&url, &token, "/0/admin/factories").await;
    assert_eq!(factories.as_array().map(Vec::len), Some(1), "{factories}");
    second.kill().expect("killed");
    second.wait().expect("reaped");
}
