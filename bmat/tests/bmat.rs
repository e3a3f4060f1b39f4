//! The bmat binary against the real server: a job holding two resource
//! groups (one of them a count of two, named `probe/0` and `probe/1`) is
//! brought to running by hand through the well, factory and agent
//! protocols, and bmat, with the job token the agent would give it, lists
//! and reads the resources; then it fails as a script needs it to.

use aquifer_protocol::{Client, Method};
use serde_json::{Value, json};

const BOOT: &str = "bootstrap-token-for-bmat-tests";

struct Server {
    base: String,
    client: Client,
    _dir: tempfile::TempDir,
    _running: aquifer_server::Running,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("aquifer.db").display());
    let running = aquifer_server::start(aquifer_server::Config {
        bootstrap_token: Some(BOOT.into()),
        ..aquifer_server::Config::loopback(&url)
    })
    .await
    .expect("a server");
    Server {
        base: running.url.clone(),
        client: Client::new(&running.url, None).expect("a client"),
        _dir: dir,
        _running: running,
    }
}

impl Server {
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let client = match token {
            Some(t) => self.client.with_token(t.to_string()),
            None => self.client.clone(),
        };
        let (status, body) = (client.exchange(method, path, Some(&body)))
            .await
            .expect("an answer");
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.call(Method::POST, path, Some(token), body).await
    }
}

struct Bmat {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the bmat binary with `env` as its only aquifer variables.
async fn bmat(args: &[&str], env: &[(&str, &str)]) -> Bmat {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bmat"));
    command
        .args(args)
        .env_remove("AQUIFER_URL")
        .env_remove("AQUIFER_JOB_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.expect("bmat runs");
    Bmat {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8"),
    }
}

/// Registers everything, submits the job and brings it to running;
/// returns the job token and the agent's worker token.
async fn running_job(s: &Server) -> (String, String) {
    s.post(
        "/0/admin/types",
        BOOT,
        json!({"name": "pg", "max_per_job": 1}),
    )
    .await;
    s.post(
        "/0/admin/types",
        BOOT,
        json!({"name": "probe", "max_per_job": 2}),
    )
    .await;
    s.post("/0/admin/targets", BOOT, json!({"name": "t"})).await;
    let well = s
        .post(
            "/0/admin/wells",
            BOOT,
            json!({"name": "w", "pools": {"pg": 1, "probe": 2}}),
        )
        .await["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let factory = s
        .post(
            "/0/admin/factories",
            BOOT,
            json!({"name": "f", "targets": {"t": 1}}),
        )
        .await["token"]
        .as_str()
        .expect("a token")
        .to_string();
    s.post(
        "/0/jobs",
        BOOT,
        json!({
            "name": "uses-bmat",
            "target": "t",
            "resources": [{"name": "db", "type": "pg"}, {"name": "probe", "type": "probe", "count": 2}],
            "tasks": [{"name": "t", "script": "true"}],
            "timeout_s": 600,
        }),
    )
    .await;
    // The groups come one at a time, pg before probe.
    let free = json!({"free": {"pg": 1, "probe": 2}, "wait_ms": 10000});
    let lease = s.post("/0/well/lease", &well, free.clone()).await;
    assert_eq!(lease["lease"]["rtype"], "pg", "{lease}");
    let db = &lease["lease"]["resources"][0];
    s.post(
        &format!("/0/well/resources/{db}/ready"),
        &well,
        json!({"metadata": {"host": "db1", "port": "5432"}, "secrets": {"password": "hunter2"}}),
    )
    .await;
    let lease = s.post("/0/well/lease", &well, free).await;
    assert_eq!(lease["lease"]["rtype"], "probe", "{lease}");
    for (i, r) in lease["lease"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .enumerate()
    {
        s.post(
            &format!("/0/well/resources/{r}/ready"),
            &well,
            json!({"metadata": {"host": format!("probe-{i}")}}),
        )
        .await;
    }
    let lease = s
        .post(
            "/0/factory/lease",
            &factory,
            json!({"free": {"t": 1}, "wait_ms": 10000}),
        )
        .await;
    let worker = &lease["lease"]["worker"];
    let key = s
        .post(
            &format!("/0/factory/workers/{worker}/created"),
            &factory,
            json!({}),
        )
        .await["bootstrap"]
        .clone();
    let boot = s
        .call(
            Method::POST,
            "/0/agent/bootstrap",
            None,
            json!({"key": key}),
        )
        .await;
    let agent = boot["token"].as_str().expect("a token").to_string();
    let started = s.post("/0/agent/start", &agent, json!({})).await;
    let job_token = started["token"].as_str().expect("a job token").to_string();
    (job_token, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bmat_reads_the_running_jobs_resources_and_refuses_clearly() {
    let s = server().await;
    let (token, agent) = running_job(&s).await;
    let env = [
        ("AQUIFER_URL", s.base.as_str()),
        ("AQUIFER_JOB_TOKEN", token.as_str()),
    ];

    let list = bmat(&["resource", "list"], &env).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(
        list.stdout,
        "NAME     TYPE   METADATA\n\
         db       pg     host, port\n\
         probe/0  probe  host\n\
         probe/1  probe  host\n"
    );
    let json_list = bmat(&["resource", "list", "--json"], &env).await;
    let parsed: Value = serde_json::from_str(&json_list.stdout).expect("JSON");
    assert_eq!(parsed["resources"][1]["name"], "probe/0");
    assert!(!json_list.stdout.contains("hunter2"));

    let meta = bmat(&["resource", "get", "db"], &env).await;
    assert_eq!(meta.code, 0, "{}", meta.stderr);
    let meta: Value = serde_json::from_str(&meta.stdout).expect("JSON");
    assert_eq!(meta, json!({"host": "db1", "port": "5432"}));

    for (args, value) in [
        (["resource", "get", "db", "port"], "5432\n"),
        (["resource", "get", "db", "password"], "hunter2\n"),
        (["resource", "get", "probe/1", "host"], "probe-1\n"),
    ] {
        let got = bmat(&args, &env).await;
        assert_eq!(
            (got.code, got.stdout.as_str()),
            (0, value),
            "{args:?}: {}",
            got.stderr
        );
    }

    let unknown = bmat(&["resource", "get", "nope"], &env).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no resource named \"nope\""),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("db, probe/0, probe/1"),
        "{}",
        unknown.stderr
    );
    let no_key = bmat(&["resource", "get", "db", "user"], &env).await;
    assert_eq!(no_key.code, 1);
    assert_eq!(
        no_key.stderr,
        "bmat: resource \"db\" has no key \"user\"; it has: host, password, port\n"
    );
    let outside = bmat(&["resource", "list"], &[]).await;
    assert_eq!(outside.code, 2);
    assert!(
        outside.stderr.contains("only inside an aquifer job"),
        "{}",
        outside.stderr
    );
    let usage = bmat(&["resource", "frobnicate"], &env).await;
    assert_eq!(usage.code, 2);

    // Once the job has ended its token is refused.
    s.post("/0/agent/finish", &agent, json!({"succeeded": true}))
        .await;
    let ended = bmat(&["resource", "get", "db", "port"], &env).await;
    assert_eq!(ended.code, 1);
    assert!(
        ended.stderr.contains("the job has ended"),
        "{}",
        ended.stderr
    );
    let unreachable = bmat(
        &["resource", "list"],
        &[
            ("AQUIFER_URL", "http://127.0.0.1:9"),
            // bmat would keep trying for two minutes; fail fast here.
            ("AQUIFER_BMAT_PATIENCE_MS", "300"),
            ("AQUIFER_JOB_TOKEN", "x"),
        ],
    )
    .await;
    assert_eq!(unreachable.code, 1);
    assert!(
        unreachable.stderr.contains("cannot reach the server"),
        "{}",
        unreachable.stderr
    );
}
