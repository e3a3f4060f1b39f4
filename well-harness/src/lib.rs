//! The real server in-process on loopback over a fresh SQLite file, the
//! admin calls a well test needs (a type, a target, a well and its token,
//! jobs), and a runner that can be stopped gracefully or killed: what the
//! tests of the SDK and of every shipped well share.

use aquifer_core::Limits;
use aquifer_well::Backoff;
use aquifer_well::{RunError, RunnerConfig, Well};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const BOOT: &str = "bootstrap-token-for-well-tests-only";
/// The bound on every wait in these tests: far above what any of them
/// needs, so hitting it means something is stuck.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Server {
    pub base: String,
    /// The API without a token; [`Server::call`] adds one.
    pub client: aquifer_protocol::Client,
    pub dir: tempfile::TempDir,
    running: Option<aquifer_server::Running>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.abort();
        }
    }
}

/// A server with the default limits.
pub async fn server() -> Server {
    server_with(Limits::default()).await
}

/// A server whose core runs with `limits`, with the types `pg`
/// (`max_per_job` 2) and `solo` (1), and the target `t`, defined.
pub async fn server_with(limits: Limits) -> Server {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite:{}", dir.path().join("aquifer.db").display());
    let running = aquifer_server::start(aquifer_server::Config {
        bootstrap_token: Some(BOOT.into()),
        limits,
        ..aquifer_server::Config::loopback(&url)
    })
    .await
    .expect("a server");
    let s = Server {
        base: running.url.clone(),
        client: aquifer_protocol::Client::new(&running.url, None).expect("a client"),
        dir,
        running: Some(running),
    };
    s.admin("/0/admin/types", json!({"name": "pg", "max_per_job": 2}))
        .await;
    s.admin("/0/admin/types", json!({"name": "solo", "max_per_job": 1}))
        .await;
    s.admin("/0/admin/targets", json!({"name": "t"})).await;
    s
}

impl Server {
    pub async fn call(
        &self,
        method: aquifer_protocol::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = self.client.with_token(token.to_string());
        let (status, body) = (client.exchange(method, path, body.as_ref()))
            .await
            .expect("the server answers");
        assert!(!body.is_null(), "{path}: an answer is JSON");
        (status, body)
    }

    /// An admin call that must succeed.
    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .call(aquifer_protocol::Method::POST, path, BOOT, Some(body))
            .await;
        assert!(status == 200 || status == 201, "{path}: {status} {answer}");
        answer
    }

    /// Registers a well with `pools` and returns its token.
    pub async fn well(&self, name: &str, pools: Value) -> String {
        let made = self
            .admin("/0/admin/wells", json!({"name": name, "pools": pools}))
            .await;
        made["token"].as_str().expect("a token").to_string()
    }

    /// Submits a job asking for `resources` (a JSON list) and returns its id.
    pub async fn submit(&self, resources: Value) -> u64 {
        let job = json!({
            "name": "well-test",
            "target": "t",
            "resources": resources,
            "tasks": [{"name": "test", "script": "true"}],
            "timeout_s": 600,
        });
        let made = self.admin("/0/jobs", job).await;
        made["id"].as_u64().expect("a job id")
    }

    /// `GET path` as the admin, which must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, answer) = self
            .call(aquifer_protocol::Method::GET, path, BOOT, None)
            .await;
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    pub async fn job(&self, id: u64) -> Value {
        self.get(&format!("/0/jobs/{id}")).await
    }

    pub async fn cancel(&self, id: u64) {
        self.admin(&format!("/0/jobs/{id}/cancel"), json!({})).await;
    }

    /// The well's resources as the well sees them: `(id, state, want)`.
    pub async fn resources(&self, token: &str) -> Vec<(u64, String, String)> {
        let (status, l) = self
            .call(
                aquifer_protocol::Method::GET,
                "/0/well/resources",
                token,
                None,
            )
            .await;
        assert_eq!(status, 200, "{l}");
        let list = l["resources"].as_array().expect("a list").iter();
        list.map(|r| {
            (
                r["id"].as_u64().expect("an id"),
                r["state"].as_str().expect("a state").to_string(),
                r["want"].as_str().expect("a want").to_string(),
            )
        })
        .collect()
    }

    /// Waits, on the job's watch stream, until it has ended; its outcome.
    pub async fn ended(&self, id: u64) -> Value {
        let follow = async {
            let mut after = 0;
            loop {
                let path = format!("/0/jobs/{id}/events?after={after}&wait_ms=5000");
                let (status, page) = self
                    .call(aquifer_protocol::Method::GET, &path, BOOT, None)
                    .await;
                assert_eq!(status, 200, "{page}");
                if page["ended"] == json!(true) {
                    return self.job(id).await["outcome"].clone();
                }
                after = page["next"].as_u64().expect("a next");
            }
        };
        tokio::time::timeout(PATIENCE, follow)
            .await
            .unwrap_or_else(|_| panic!("job {id} did not end"))
    }
}

/// Asks `probe` until it answers `Some`, within `PATIENCE`. For state that
/// has no event to wait on (what the server's books say of a well's
/// resources, what a well owns).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A runner configuration for tests: short polls and reconcile passes,
/// quick back-off.
pub fn runner_config(s: &Server, token: &str, capacity: &[(&str, u32)]) -> RunnerConfig {
    let capacity: BTreeMap<String, u32> =
        capacity.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    RunnerConfig {
        wait_ms: 1_000,
        reconcile_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
        backoff: Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(400),
        },
        destroy_backoff: Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(400),
        },
        ..RunnerConfig::new(&s.base, token, capacity)
    }
}

/// A runner on a task of its own.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RunError>>,
}

pub fn start<W: Well>(well: Arc<W>, config: RunnerConfig) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(aquifer_well::run(well, config, async {
        let _ = stopped.await;
    }));
    Running {
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// A graceful stop: what the runner returned.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the runner stops")
            .expect("the runner does not panic")
    }

    /// Waits for the runner to return by itself (it does only when the
    /// server refuses it).
    pub async fn join(mut self) -> Result<(), RunError> {
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the runner returns")
            .expect("the runner does not panic")
    }

    /// The process dies: every task of the runner is dropped where it is.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Whether the runner has returned (with an error: it only returns by
    /// itself on a refusal).
    pub fn finished(&self) -> bool {
        self.task.is_finished()
    }
}
