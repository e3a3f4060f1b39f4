//! Where secrets go: jobs on the postgres well and on a slot well with
//! secrets run as a user; then every log (server, wells, factory and its
//! agents), every job's event stream and every listing (as the owner, as
//! another user and as an admin) and the database's files after release
//! are searched for each secret value. A secret may appear only where its
//! own job printed it: in that job's stream (and so in the database that
//! keeps the stream). Tokens are in the database only as hashes.

use aquifer_e2e::*;
use aquifer_protocol::Method;
use serde_json::{Value, json};
use std::path::Path;

/// A user's view of the API.
struct As(aquifer_protocol::Client);

impl As {
    async fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = (self.0.exchange(Method::GET, path, None::<&Value>))
            .await
            .expect("an answer");
        (status, body.to_string())
    }
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            files(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_found_only_where_their_job_printed_them() {
    let Ok(admin) = std::env::var("AQUIFER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AQUIFER_TEST_POSTGRES_URL"
        );
        eprintln!("AQUIFER_TEST_POSTGRES_URL is not set: skipping");
        return;
    };
    let mut s = Stack::start().await.expect("a server");
    s.define_type("postgres", 1).await.expect("type");
    s.define_type("probe", 1).await.expect("type");
    s.define_target("local").await.expect("target");
    let pg_token = (s.register("wells", json!({"name": "pg", "pools": {"postgres": 2}})))
        .await
        .expect("well");
    let probe_token = (s.register("wells", json!({"name": "probe", "pools": {"probe": 2}})))
        .await
        .expect("well");
    let factory_token = (s.register(
        "factories",
        json!({"name": "local", "targets": {"local": 3}}),
    ))
    .await
    .expect("factory");
    let user = |name: &'static str| {
        let s = &s;
        async move {
            let made = (s.ok(Method::POST, "/0/admin/users", Some(json!({"name": name}))))
                .await
                .expect("a user");
            made["token"].as_str().expect("a token").to_string()
        }
    };
    let (alice_token, bob_token) = (user("alice").await, user("bob").await);
    let client = |token: &str| {
        As(aquifer_protocol::Client::new(&s.url, Some(token.to_string())).expect("a client"))
    };
    let (alice, bob, admin_view) = (client(&alice_token), client(&bob_token), client(BOOT));

    let dir = s.dir.path().to_path_buf();
    let url = s.url.clone();
    let prefix = format!("aqs{}_", std::process::id());
    s.spawn_service(
        "pg",
        &["well", "run"],
        &format!(
            "url = \"{url}\"\ntoken = \"{pg_token}\"\ndata_dir = \"{}\"\n[capacity]\npostgres = 2\n[well]\nkind = \"postgres\"\nrtype = \"postgres\"\nadmin_url = \"{admin}\"\nprefix = \"{prefix}\"\n",
            dir.join("pg").display()
        ),
    )
    .expect("the postgres well");
    let pins = ["pin-a-5f1e9c", "pin-b-77c3d0"];
    s.spawn_service(
        "probe",
        &["well", "run"],
        &format!(
            "url = \"{url}\"\ntoken = \"{probe_token}\"\ndata_dir = \"{}\"\n[well]\nkind = \"slot\"\nrtype = \"probe\"\n[well.items.a]\nsecrets = {{ pin = \"{}\" }}\n[well.items.b]\nsecrets = {{ pin = \"{}\" }}\n",
            dir.join("probe").display(),
            pins[0],
            pins[1]
        ),
    )
    .expect("the slot well");
    s.spawn_service(
        "factory",
        &["factory", "local"],
        &format!(
            "url = \"{url}\"\ntoken = \"{factory_token}\"\ndata_dir = \"{}\"\n[targets]\nlocal = 3\n[agent_env]\nAQUIFER_E2E_RUN = \"{}\"\n",
            dir.join("factory").display(),
            s.run
        ),
    )
    .expect("the factory");

    // Two quiet jobs keep their secrets in files of their own; a loud one
    // prints its pin.
    let kept = dir.join("kept");
    std::fs::create_dir_all(&kept).expect("mkdir");
    let job = |name: &str, resources: Value, script: String| {
        json!({
            "name": name,
            "target": "local",
            "resources": resources,
            "tasks": [{"name": "t", "script": script}],
            "timeout_s": 120,
        })
    };
    let submit = |body: Value| {
        let alice = &alice;
        async move {
            let (status, made) = (alice.0.exchange(Method::POST, "/0/jobs", Some(&body)))
                .await
                .expect("an answer");
            assert_eq!(status, 201, "{made}");
            made["id"].as_u64().expect("an id")
        }
    };
    let k = kept.display();
    let quiet_pg = submit(job(
        "quiet-pg",
        json!([{"name": "db", "type": "postgres"}]),
        format!(
            "set -eu\nbmat resource get db password > {k}/pg-password\nbmat resource get db dsn > {k}/pg-dsn\npsql -v ON_ERROR_STOP=1 \"$(cat {k}/pg-dsn)\" -c 'select 1' > /dev/null\necho done"
        ),
    ))
    .await;
    let quiet_probe = submit(job(
        "quiet-probe",
        json!([{"name": "p", "type": "probe"}]),
        format!("set -eu\nbmat resource get p pin > {k}/quiet-pin\necho done"),
    ))
    .await;
    let loud = submit(job(
        "loud-probe",
        json!([{"name": "p", "type": "probe"}]),
        "set -eu\necho \"my pin is $(bmat resource get p pin)\"".to_string(),
    ))
    .await;
    for id in [quiet_pg, quiet_probe, loud] {
        let shown = s.retired(id).await.expect("retired");
        assert_eq!(shown["outcome"], "succeeded", "{shown}");
    }
    let read = |name: &str| {
        std::fs::read_to_string(kept.join(name))
            .expect(name)
            .trim()
            .to_string()
    };
    let (password, dsn, quiet_pin) = (read("pg-password"), read("pg-dsn"), read("quiet-pin"));
    let loud_pin = pins
        .iter()
        .find(|p| **p != quiet_pin)
        .expect("the other pin")
        .to_string();
    assert!(pins.contains(&quiet_pin.as_str()), "{quiet_pin}");
    assert!(password.len() >= 16, "a real password");
    let loud_output = s.output(loud).await.expect("output");
    assert!(loud_output.contains(&loud_pin), "{loud_output}");

    // What anybody could read: logs, streams and listings.
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for name in ["server", "pg", "probe", "factory"] {
        seen.push((format!("{name}.log"), s.log(name).into_bytes()));
    }
    let mut paths = vec![
        "/0/jobs".to_string(),
        "/0/admin/resources".into(),
        "/0/admin/wells".into(),
        "/0/admin/factories".into(),
        "/0/admin/users".into(),
    ];
    for id in [quiet_pg, quiet_probe, loud] {
        for p in ["", "/events?limit=1000", "/explain"] {
            paths.push(format!("/0/jobs/{id}{p}"));
        }
    }
    for (who, view) in [("alice", &alice), ("bob", &bob), ("admin", &admin_view)] {
        for path in &paths {
            let (status, body) = view.get(path).await;
            seen.push((format!("{path} as {who} ({status})"), body.into_bytes()));
        }
    }
    // What the job's own stream may hold: its printed pin.
    let loud_stream = |place: &str| place.starts_with(&format!("/0/jobs/{loud}/events"));
    // Where the wells and the factory keep their books.
    let mut books = Vec::new();
    for d in ["pg", "probe", "factory"] {
        files(&dir.join(d), &mut books);
    }
    seen.extend(books);
    // The database after release (all three jobs retired).
    let mut database = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("aquifer.db{suffix}"));
        if let Ok(bytes) = std::fs::read(&path) {
            database.push((path.display().to_string(), bytes));
        }
    }

    let mut found = Vec::new();
    for (secret, what) in [
        (password.as_str(), "the postgres password"),
        (dsn.as_str(), "the postgres dsn"),
        (quiet_pin.as_str(), "the quiet job's pin"),
    ] {
        for (place, bytes) in seen.iter().chain(&database) {
            if contains(bytes, secret) {
                found.push(format!("{what} in {place}"));
            }
        }
    }
    for (place, bytes) in &seen {
        if contains(bytes, &loud_pin) && !loud_stream(place) {
            found.push(format!("the loud job's pin in {place}"));
        }
    }
    // Tokens: in the database as hashes only.
    for (token, what) in [
        (pg_token.as_str(), "the postgres well's token"),
        (probe_token.as_str(), "the slot well's token"),
        (factory_token.as_str(), "the factory's token"),
        (alice_token.as_str(), "alice's token"),
    ] {
        for (place, bytes) in &database {
            if contains(bytes, token) {
                found.push(format!("{what} in {place}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secrets where they must not be:\n{}",
        found.join("\n")
    );
    // The search looks where the loud pin is: in its job's stream as the
    // owner and the admin see it, not as bob does.
    let shown: Vec<&str> = (seen.iter())
        .filter(|(_, b)| contains(b, &loud_pin))
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown.iter().all(|p| !p.contains("as bob")), "{shown:?}");

    s.assert_clean(&dir.join("factory").join("workers"))
        .await
        .expect("nothing is left");
    s.finish()
        .await
        .expect("the history replays through the model");
}
