//! What a scenario runs against: a database (a fresh SQLite file, or a
//! fresh database on a PostgreSQL server), a real `aquifer server` process
//! on loopback, and the calls that set it up. Every process the harness
//! starts carries a marker in its environment, so that whatever is left
//! at the end (an agent of the local factory, a task script) is found and
//! stopped.

use anyhow::{Context, Result, bail};
use aquifer_protocol::{Client, Method};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The operator's token of every server the harness starts.
pub const BOOT: &str = "aquifer-bench-bootstrap-token-0123456789";
/// The variable that marks the processes of one run.
pub const MARKER: &str = "AQUIFER_BENCH_RUN";
/// How long a server may take to come up (a long replay included).
const START_PATIENCE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// One run of the harness: its scratch directory and marker.
pub struct Run {
    pub dir: tempfile::TempDir,
    pub marker: String,
    pub aquifer: PathBuf,
    pub store: StoreKind,
    pub postgres: Option<String>,
    databases: std::sync::Mutex<Vec<String>>,
}

impl Run {
    pub fn new(aquifer: PathBuf, store: StoreKind, postgres: Option<String>) -> Result<Run> {
        let dir = tempfile::Builder::new()
            .prefix("aquifer-bench-")
            .tempdir()?;
        let marker = format!("{}-{}", std::process::id(), unique(dir.path()));
        Ok(Run {
            dir,
            marker,
            aquifer,
            store,
            postgres,
            databases: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A fresh, empty database of the run's kind; `name` tells them apart.
    pub async fn database(&self, name: &str) -> Result<String> {
        match self.store {
            StoreKind::Sqlite => Ok(format!(
                "sqlite:{}",
                self.dir.path().join(format!("{name}.db")).display()
            )),
            StoreKind::Postgres => {
                let server = self.postgres.as_deref().context("no PostgreSQL URL")?;
                let db = format!("aquifer_bench_{}_{name}", self.marker.replace('-', "_"));
                let admin = sqlx::PgPool::connect(server)
                    .await
                    .context("connecting to the PostgreSQL server")?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                    .execute(&admin)
                    .await
                    .with_context(|| format!("creating database {db}"))?;
                admin.close().await;
                if let Ok(mut dbs) = self.databases.lock() {
                    dbs.push(db.clone());
                }
                let (prefix, _) = server
                    .rsplit_once('/')
                    .context("the PostgreSQL URL names no database")?;
                Ok(format!("{prefix}/{db}"))
            }
        }
    }

    /// Stops whatever of this run still runs and drops its databases.
    /// A killed process takes a moment to go, and a factory may start an
    /// agent while its siblings are being killed: the run's processes are
    /// killed until none is left (for at most ten seconds).
    pub async fn clean_up(&self) {
        let mut strays = 0;
        for _ in 0..500 {
            let found = kill_marked(&self.marker);
            if found == 0 {
                break;
            }
            strays = strays.max(found);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if strays > 0 {
            eprintln!("stopped {strays} processes of this run that were still running");
        }
        let dbs = self.databases.lock().map(|d| d.clone()).unwrap_or_default();
        if let (Some(server), false) = (&self.postgres, dbs.is_empty())
            && let Ok(admin) = sqlx::PgPool::connect(server).await
        {
            for db in dbs {
                let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await {
                    eprintln!("could not drop database {db}: {e}");
                }
            }
            admin.close().await;
        }
    }

    /// A command of the `aquifer` binary, marked as this run's.
    pub fn aquifer(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.aquifer);
        c.args(args)
            .env(MARKER, &self.marker)
            .env(
                "RUST_LOG",
                "warn,aquifer_server=info,aquifer=info,warp::server=off",
            )
            .env_remove("AQUIFER_CONFIG")
            .env_remove("AQUIFER_TOKEN")
            .env_remove("AQUIFER_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }
}

fn unique(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().replace("aquifer-bench-", ""))
        .unwrap_or_default()
        .to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// Sends SIGKILL to every process whose environment holds this run's
/// marker; returns how many there were.
pub fn kill_marked(marker: &str) -> usize {
    let needle = format!("{MARKER}={marker}");
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| u32::try_from(pid).is_ok_and(|p| p != me))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect();
    for &pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    pids.len()
}

/// A running `aquifer server`.
pub struct Server {
    child: Child,
    pub url: String,
    pub api: Client,
    pub log: PathBuf,
    /// From the spawn to the line that says it listens (recovery included).
    pub started_in: Duration,
}

/// What the server's configuration file says beyond the defaults.
#[derive(Default)]
pub struct ServerSettings {
    /// Where to listen (default: a free port); a server started again
    /// after a kill keeps its address, so its clients find it.
    pub listen: Option<String>,
    pub jobs_max: Option<u64>,
    pub snapshot_every_events: Option<u64>,
    /// More of the server's file, as TOML (top-level keys first).
    pub extra: Option<String>,
}

impl Server {
    pub async fn start(run: &Run, database: &str, settings: &ServerSettings) -> Result<Server> {
        let name = format!("server-{}", unique_suffix());
        let config = run.dir.path().join(format!("{name}.toml"));
        let mut text = settings.extra.clone().unwrap_or_default();
        if let Some(n) = settings.jobs_max {
            text.push_str(&format!(
                "[limits]\njobs_max = {n}\njobs_per_owner_max = {n}\n"
            ));
        }
        if let Some(n) = settings.snapshot_every_events {
            text.push_str(&format!("[driver]\nsnapshot_every_events = {n}\n"));
        }
        std::fs::write(&config, text)?;
        let log = run.dir.path().join(format!("{name}.log"));
        let config = config.display().to_string();
        let listen = settings.listen.as_deref().unwrap_or("127.0.0.1:0");
        let mut c = run.aquifer(&[
            "server",
            "--listen",
            listen,
            "--database",
            database,
            "--config",
            &config,
        ]);
        c.env("AQUIFER_BOOTSTRAP_TOKEN", BOOT)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let started = Instant::now();
        let mut child = c.spawn().with_context(|| {
            format!(
                "starting {} (build it with `cargo build --release -p aquifer`)",
                run.aquifer.display()
            )
        })?;
        let stdout = child.stdout.take().context("the server's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let listening = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("aquifer server listening on ") {
                    return Ok(url.trim().to_string());
                }
            }
            bail!("the server exited before it listened")
        };
        let url = match tokio::time::timeout(START_PATIENCE, listening).await {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => bail!("{e}; its log:\n{}", tail(&log)),
            Err(_) => bail!("the server did not listen within {START_PATIENCE:?}"),
        };
        let started_in = started.elapsed();
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let api = Client::new(&url, Some(BOOT.into()))?;
        Ok(Server {
            child,
            url,
            api,
            log,
            started_in,
        })
    }

    /// The server's resident memory, in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kb = (status.lines())
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .context("no VmRSS in /proc/PID/status")?;
        Ok(kb * 1024)
    }

    /// Asks the server to stop (SIGTERM) and waits; kills it if it takes
    /// more than ten seconds.
    pub async fn stop(self) -> Result<()> {
        terminate(self.child, Duration::from_secs(10)).await
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// A call that must succeed.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, answer) = (self.api.exchange(method, path, body.as_ref()))
            .await
            .with_context(|| format!("calling {path}"))?;
        if !(200..300).contains(&status) {
            bail!("{path}: {status} {answer}");
        }
        Ok(answer)
    }

    pub async fn define_type(&self, name: &str, max_per_job: u16) -> Result<()> {
        let body = json!({"name": name, "max_per_job": max_per_job});
        self.ok(Method::POST, "/0/admin/types", Some(body)).await?;
        Ok(())
    }

    pub async fn define_target(&self, name: &str) -> Result<()> {
        let body = json!({"name": name});
        self.ok(Method::POST, "/0/admin/targets", Some(body))
            .await?;
        Ok(())
    }

    /// Registers a well with its pools; returns its token.
    pub async fn register_well(&self, name: &str, pools: &[(String, u32)]) -> Result<String> {
        let pools: serde_json::Map<String, Value> =
            pools.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
        let made = (self.ok(
            Method::POST,
            "/0/admin/wells",
            Some(json!({"name": name, "pools": pools})),
        ))
        .await?;
        token(&made)
    }

    /// Registers a factory for one target; returns its token.
    pub async fn register_factory(&self, name: &str, target: &str, workers: u16) -> Result<String> {
        let body = json!({"name": name, "targets": {target: workers}});
        let made = self
            .ok(Method::POST, "/0/admin/factories", Some(body))
            .await?;
        token(&made)
    }
}

fn token(made: &Value) -> Result<String> {
    Ok(made["token"].as_str().context("no token")?.to_string())
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Asks a process to stop (SIGTERM) and waits; kills it if it takes more
/// than `grace`.
pub async fn terminate(mut child: Child, grace: Duration) -> Result<()> {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        child.kill().await?;
    }
    Ok(())
}

/// The end of a log, for an error message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A job as the API takes it: one task running `script`, `count` of each
/// type in `types`.
pub fn job(target: &str, types: &[&str], count: u16, script: &str) -> Value {
    let resources: Vec<Value> = (types.iter().enumerate())
        .map(|(i, t)| json!({"name": format!("r{i}"), "type": t, "count": count}))
        .collect();
    json!({
        "name": "bench",
        "target": target,
        "resources": resources,
        "tasks": [{"name": "t", "script": script}],
        "timeout_s": 3600
    })
}
