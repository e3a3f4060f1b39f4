//! The real aquifer server, in process on loopback over a fresh SQLite
//! file, with a target `t` and a factory registered through the admin API,
//! and helpers to submit jobs and follow them to their end.

#![allow(dead_code)]

use aquifer_protocol::{Client, Method};
use aquifer_server::driver::Handle;
use serde_json::{Value, json};
use std::time::Duration;

pub const BOOT: &str = "bootstrap-token-for-factory-tests";
/// The longest any wait in these tests may take before it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(90);

pub struct Server {
    pub base: String,
    pub handle: Handle,
    /// The API as the operator.
    pub client: Client,
    _dir: tempfile::TempDir,
    _running: aquifer_server::Running,
}

/// A server with target `t` and a factory for it with `capacity`; returns
/// the factory's token too.
pub async fn server(capacity: u16) -> (Server, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("aquifer.db").display());
    let running = aquifer_server::start(aquifer_server::Config {
        bootstrap_token: Some(BOOT.into()),
        ..aquifer_server::Config::loopback(&url)
    })
    .await
    .expect("a server");
    let s = Server {
        base: running.url.clone(),
        handle: running.handle.clone(),
        client: Client::new(&running.url, Some(BOOT.into())).expect("a client"),
        _dir: dir,
        _running: running,
    };
    let (status, body) = s
        .call(Method::POST, "/0/admin/targets", Some(json!({"name": "t"})))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .call(
            Method::POST,
            "/0/admin/factories",
            Some(json!({"name": "local", "targets": {"t": capacity}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().expect("a token").to_string();
    (s, token)
}

impl Server {
    /// Calls the API as the operator.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, body) = (self.client.exchange(method, path, body.as_ref()))
            .await
            .expect("the server answers");
        assert!(!body.is_null(), "{path}: an answer is JSON");
        (status, body)
    }

    /// Submits a job for target `t` with these tasks; returns its id.
    pub async fn submit(&self, tasks: Value, timeout_s: u64) -> u64 {
        let job = json!({
            "name": "factory-test",
            "target": "t",
            "resources": [],
            "tasks": tasks,
            "timeout_s": timeout_s,
        });
        let (status, body) = self.call(Method::POST, "/0/jobs", Some(job)).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_u64().expect("an id")
    }

    /// Follows the job's stream until `until` holds for the output seen so
    /// far or the job has ended; returns the output.
    pub async fn follow(&self, job: u64, until: impl Fn(&Output) -> bool) -> Output {
        let mut out = Output::default();
        let mut after = 0;
        let watch = async {
            loop {
                let (status, page) = self
                    .call(
                        Method::GET,
                        &format!("/0/jobs/{job}/events?after={after}&wait_ms=20000"),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{page}");
                for e in page["events"].as_array().into_iter().flatten() {
                    let event = &e["event"];
                    if event["event"] == "output" {
                        out.push(event);
                    }
                    out.events.push(event.clone());
                }
                after = page["next"].as_u64().unwrap_or(after);
                if page["ended"] == true || until(&out) {
                    return;
                }
            }
        };
        tokio::time::timeout(PATIENCE, watch)
            .await
            .expect("the job makes progress in time");
        out
    }

    /// The job's `outcome` and `reason`, once it has ended.
    pub async fn ended(&self, job: u64) -> (Value, Value) {
        self.follow(job, |_| false).await;
        let (_, shown) = self
            .call(Method::GET, &format!("/0/jobs/{job}"), None)
            .await;
        assert_eq!(shown["state"], "ended", "{shown}");
        (shown["outcome"].clone(), shown["reason"].clone())
    }

    /// Waits until the server's books hold no worker: every one was
    /// destroyed and confirmed.
    pub async fn no_workers_left(&self) {
        let mut committed = self.handle.committed();
        let wait = async {
            loop {
                let empty = self
                    .handle
                    .read(|s| s.workers.is_empty())
                    .await
                    .expect("a state");
                if empty {
                    return;
                }
                committed.changed().await.expect("the driver runs");
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("every worker is destroyed in time");
    }

    /// The worker bound to `job`, once there is one.
    pub async fn worker_of(&self, job: u64) -> u32 {
        let mut committed = self.handle.committed();
        let job = u32::try_from(job).expect("a job id");
        let wait = async {
            loop {
                let w = self
                    .handle
                    .read(move |s| {
                        s.workers
                            .iter()
                            .find(|(_, w)| w.job.0 == job)
                            .map(|(id, _)| id.0)
                    })
                    .await
                    .expect("a state");
                if let Some(w) = w {
                    return w;
                }
                committed.changed().await.expect("the driver runs");
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("a worker in time")
    }
}

/// A job's output, by task and stream.
#[derive(Default, Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub tasks: Vec<String>,
    pub events: Vec<Value>,
}

impl Output {
    fn push(&mut self, e: &Value) {
        let text = e["text"].as_str().unwrap_or_default();
        match e["stream"].as_str() {
            Some("stderr") => self.stderr.push_str(text),
            _ => self.stdout.push_str(text),
        }
        if let Some(task) = e["task"].as_str()
            && self.tasks.last().map(String::as_str) != Some(task)
        {
            self.tasks.push(task.to_string());
        }
    }
}
