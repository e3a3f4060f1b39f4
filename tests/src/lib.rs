//! The end-to-end harness: the real `aquifer` server, wells, factory,
//! agents and `bmat` as separate processes on loopback, over an SQLite file
//! in a temporary directory. Every process it starts carries a marker in
//! its environment (inherited by agents and task scripts), so a test can
//! prove that nothing of its run is left behind. At the end the server's
//! recorded history is replayed through the model.

use anyhow::{Context, Result, bail};
use aquifer_protocol::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const BOOT: &str = "e2e-bootstrap-token-0123456789abcdef";

/// How long any one wait of a test may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A binary of the workspace, built beside this test (`cargo test
/// --workspace` builds every package's binaries before running tests).
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Where `Stack::finish` writes each run's history as a trace for TLC,
/// when set.
pub const TRACE_DIR: &str = "AQUIFER_TRACE_DIR";

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub db: String,
    port: u16,
    /// The marker every process of this run carries.
    pub run: String,
    /// The limits the server runs with (and the replay replays with).
    pub limits: aquifer_core::Limits,
    server: Option<Child>,
    /// Wells and factories, by name.
    services: Vec<(String, Child)>,
    /// The API, as the operator (the bootstrap token).
    api: aquifer_protocol::Client,
}

impl Stack {
    /// A server on a free port over a fresh SQLite file, with the
    /// default limits.
    pub async fn start() -> Result<Stack> {
        Stack::start_with(aquifer_core::Limits::default()).await
    }

    /// The same, with `limits` (short lease times for expiry tests).
    pub async fn start_with(limits: aquifer_core::Limits) -> Result<Stack> {
        let dir = tempfile::tempdir()?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let db = format!("sqlite:{}", dir.path().join("aquifer.db").display());
        let run = format!(
            "e2e-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        let mut stack = Stack {
            url: format!("http://127.0.0.1:{port}"),
            db,
            port,
            run,
            limits,
            dir,
            server: None,
            services: Vec::new(),
            api: aquifer_protocol::Client::new(
                &format!("http://127.0.0.1:{port}"),
                Some(BOOT.into()),
            )?,
        };
        stack.start_server().await?;
        Ok(stack)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("aquifer"));
        c.args(args)
            .env("AQUIFER_E2E_RUN", &self.run)
            .env("RUST_LOG", "info")
            .env_remove("AQUIFER_CONFIG")
            .env_remove("AQUIFER_TOKEN")
            .env_remove("AQUIFER_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Starts the server (again, after `kill_server`) on the same port and
    /// database; returns once it answers.
    pub async fn start_server(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let listen = format!("127.0.0.1:{}", self.port);
        // The limits as a `[limits]` table: every field is a number.
        let limits = serde_json::to_value(self.limits)?;
        let mut config = String::from("[limits]\n");
        for (k, v) in limits.as_object().into_iter().flatten() {
            config.push_str(&format!("{k} = {v}\n"));
        }
        let config_path = self.dir.path().join("server.toml");
        std::fs::write(&config_path, config)?;
        let config_path = config_path.display().to_string();
        let mut c = self.command(&[
            "server",
            "--listen",
            &listen,
            "--database",
            &self.db,
            "--config",
            &config_path,
        ]);
        c.env("AQUIFER_BOOTSTRAP_TOKEN", BOOT)
            .stdout(Stdio::null())
            .stderr(log);
        self.server = Some(c.spawn().context("starting the server")?);
        // Up when it answers.
        let up = async {
            loop {
                let whoami = self.api.exchange(Method::GET, "/0/whoami", None::<&Value>);
                if whoami.await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), up)
            .await
            .context("the server did not come up")?;
        Ok(())
    }

    /// Kills the server (as a crash would) and leaves it down.
    pub async fn kill_server(&mut self) -> Result<()> {
        if let Some(mut s) = self.server.take() {
            s.kill().await?;
        }
        Ok(())
    }

    /// Kills the server (as a crash would) and starts it again on the same
    /// port and database.
    pub async fn restart_server(&mut self) -> Result<()> {
        if let Some(mut s) = self.server.take() {
            s.kill().await?;
        }
        self.start_server().await
    }

    /// Calls the API with the bootstrap token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        (self.api.exchange(method, path, body.as_ref()))
            .await
            .with_context(|| format!("calling {path}"))
    }

    /// A call that must succeed.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, body) = self.call(method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    pub async fn define_type(&self, name: &str, max_per_job: u16) -> Result<()> {
        self.ok(
            Method::POST,
            "/0/admin/types",
            Some(json!({"name": name, "max_per_job": max_per_job})),
        )
        .await
        .map(drop)
    }

    pub async fn define_target(&self, name: &str) -> Result<()> {
        self.ok(
            Method::POST,
            "/0/admin/targets",
            Some(json!({"name": name})),
        )
        .await
        .map(drop)
    }

    /// Registers a well or factory and returns its token.
    pub async fn register(&self, kind: &str, body: Value) -> Result<String> {
        let made = self
            .ok(Method::POST, &format!("/0/admin/{kind}"), Some(body))
            .await?;
        Ok(made["token"].as_str().context("a token")?.to_string())
    }

    /// Starts `aquifer <args...> --config <file>` with `config` written to
    /// the file, as the named service.
    pub fn spawn_service(&mut self, name: &str, args: &[&str], config: &str) -> Result<()> {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))?;
        let mut all: Vec<&str> = args.to_vec();
        let path_str = path.display().to_string();
        all.extend(["--config", &path_str]);
        let mut c = self.command(&all);
        c.stdout(Stdio::null()).stderr(log);
        let child = c.spawn().with_context(|| format!("starting {name}"))?;
        self.services.push((name.to_string(), child));
        Ok(())
    }

    /// Kills a service abruptly, as a crash would.
    pub async fn kill_service(&mut self, name: &str) -> Result<()> {
        let i = (self.services.iter())
            .position(|(n, _)| n == name)
            .with_context(|| format!("no service {name}"))?;
        let (_, mut child) = self.services.remove(i);
        child.kill().await?;
        Ok(())
    }

    /// Waits for a service to exit by itself (a crash mode), and forgets it.
    pub async fn wait_service_exit(&mut self, name: &str) -> Result<std::process::ExitStatus> {
        let i = (self.services.iter())
            .position(|(n, _)| n == name)
            .with_context(|| format!("no service {name}"))?;
        let (_, mut child) = self.services.remove(i);
        Ok(tokio::time::timeout(PATIENCE, child.wait()).await??)
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Submits a job (JSON, as the API takes it) and returns its id.
    pub async fn submit(&self, job: Value) -> Result<u64> {
        let made = self.ok(Method::POST, "/0/jobs", Some(job)).await?;
        made["id"].as_u64().context("an id")
    }

    /// Follows a job's stream until `until` holds for an entry; returns
    /// every entry seen.
    pub async fn follow(&self, job: u64, until: impl Fn(&Value) -> bool) -> Result<Vec<Value>> {
        let mut seen = Vec::new();
        let mut after = 0;
        let follow = async {
            loop {
                let page = self
                    .ok(
                        Method::GET,
                        &format!("/0/jobs/{job}/events?after={after}&wait_ms=20000"),
                        None,
                    )
                    .await?;
                for e in page["events"].as_array().into_iter().flatten() {
                    seen.push(e["event"].clone());
                    if until(&e["event"]) {
                        return Ok::<_, anyhow::Error>(());
                    }
                }
                after = page["next"].as_u64().unwrap_or(after);
            }
        };
        tokio::time::timeout(PATIENCE, follow)
            .await
            .with_context(|| format!("job {job} never got there; it saw {seen:?}"))??;
        Ok(seen)
    }

    /// Waits until the job has ended and retired (everything it held is
    /// confirmed gone); returns the job as `GET /0/jobs/{id}` shows it.
    pub async fn retired(&self, job: u64) -> Result<Value> {
        self.follow(job, |e| e["event"] == "job_retired").await?;
        self.ok(Method::GET, &format!("/0/jobs/{job}"), None).await
    }

    /// Every task output of a job, in order, as one text.
    pub async fn output(&self, job: u64) -> Result<String> {
        let page = self
            .ok(Method::GET, &format!("/0/jobs/{job}/events"), None)
            .await?;
        Ok((page["events"].as_array().into_iter().flatten())
            .filter(|e| e["event"]["event"] == "output")
            .filter_map(|e| e["event"]["text"].as_str())
            .collect())
    }

    /// Processes of this run still alive, other than the stack's own
    /// server and services: agents and task scripts that outlived their
    /// worker.
    pub fn strays(&self) -> Vec<u32> {
        let own: Vec<u32> = (self.server.iter())
            .chain(self.services.iter().map(|(_, c)| c))
            .filter_map(Child::id)
            .collect();
        let marker = format!("AQUIFER_E2E_RUN={}", self.run);
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| !own.contains(pid))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == marker.as_bytes()))
            })
            .collect()
    }

    /// What the stack must look like at the end of every test: no resource
    /// in the books, no stray process, no worker directory left under
    /// `workers_dir`.
    pub async fn assert_clean(&self, workers_dir: &Path) -> Result<()> {
        let resources = self.ok(Method::GET, "/0/admin/resources", None).await?;
        if resources.as_array().is_some_and(|r| !r.is_empty()) {
            bail!("resources left in the books: {resources}");
        }
        let strays = self.strays();
        if !strays.is_empty() {
            bail!("processes of this run left behind: {strays:?}");
        }
        if let Ok(entries) = std::fs::read_dir(workers_dir) {
            let left: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            if !left.is_empty() {
                bail!("worker directories left behind: {left:?}");
            }
        }
        Ok(())
    }

    /// Stops everything and replays the server's history through the
    /// model; returns the number of inputs replayed.
    pub async fn finish(mut self) -> Result<usize> {
        for (_, mut c) in self.services.drain(..) {
            let _ = c.kill().await;
        }
        if let Some(mut s) = self.server.take() {
            s.kill().await?;
        }
        let store = aquifer_server::store::Store::open(&self.db).await?;
        let history = store.history().await?;
        let rules = aquifer_core::Rules::production();
        let replayed = aquifer_model::replay::replay(rules, self.limits, &history)
            .map_err(|d| anyhow::anyhow!("the run left the model: {d}"))?;
        // CI hands every run's history to TLC as well (`spec/check`).
        if let Some(dir) = std::env::var_os(TRACE_DIR) {
            let name = (std::thread::current().name())
                .filter(|n| *n != "main" && !n.starts_with("tokio"))
                .map_or_else(|| self.run.clone(), |n| n.replace("::", "-"));
            let trace =
                aquifer_model::walk::Trace::of_history(name.clone(), rules, self.limits, &history);
            let path = Path::new(&dir).join(format!("e2e-{name}.json"));
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, serde_json::to_vec(&trace)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(replayed.inputs)
    }
}
