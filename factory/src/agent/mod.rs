//! The agent: the process on a worker that trades its one-time key for a
//! worker token, starts the job bound to the worker, runs its tasks in
//! order as bash scripts (each in its own process group), streams their
//! output, and reports how the job went. It stops a task when the server
//! says the job has ended (cancelled, timed out), when the job's deadline
//! passes, or when it is itself asked to stop (SIGTERM).
//!
//! An agent that exits before its job has ended leaves the job with no one
//! to finish it, so the factory reports the worker lost; the agent
//! therefore only exits normally once the server knows the job's end.

pub mod batch;
pub mod layout;
pub mod output;
mod outputs;
mod task;

use anyhow::{Context, Result, bail};
use aquifer_protocol::agent::{Finish, Started};
use aquifer_protocol::{Backoff, CallError, Client};
use layout::Layout;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use task::{Stop, TaskEnd};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long one control long-poll waits on the server.
const CONTROL_WAIT: Duration = Duration::from_secs(30);
/// How long the agent's reports are retried: long enough to ride out a
/// server restart, short enough that an agent whose server is gone stops.
const AGENT_PATIENCE: Duration = Duration::from_secs(600);
/// After the deadline has passed and the tasks are stopped, how long to
/// wait for the server to time the job out before reporting it failed.
const DEADLINE_PATIENCE: Duration = Duration::from_secs(120);
/// `PATH` when the agent has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long a final flush of output may take before the report.
const OUTPUT_DRAIN: Duration = Duration::from_secs(30);

/// Where this agent found (or made) `bmat`, once `run_agent` has looked.
static BMAT_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The directory holding `bmat`: `AQUIFER_BMAT_DIR`, else the directory of
/// this executable when `bmat` is installed beside it (where `cargo build`
/// and the packages put both), else the agent's own `bin/`, where
/// `run_agent` links `bmat` to this executable (the `aquifer` binary runs
/// as `bmat` under that name).
#[must_use]
pub fn bmat_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AQUIFER_BMAT_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = BMAT_DIR.get() {
        return Some(dir.clone());
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
}

/// Makes sure `bmat_dir()` holds a `bmat`: links one to this executable in
/// `agent_dir/bin` when none is installed beside it.
fn provide_bmat(agent_dir: &Path) -> Result<()> {
    if std::env::var_os("AQUIFER_BMAT_DIR").is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    if exe.parent().is_some_and(|d| d.join("bmat").exists()) {
        return Ok(());
    }
    let bin = agent_dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let link = bin.join("bmat");
    if !link.exists() {
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("linking {} to {}", link.display(), exe.display()))?;
    }
    let _ = BMAT_DIR.set(bin);
    Ok(())
}

/// Runs the job of the worker whose one-time key is `key`, in `dir`.
/// The worker token an agent proposes at its bootstrap: 320 bits from the
/// system's random source, in the shape of every aquifer token.
pub fn worker_token() -> Result<String> {
    use aquifer_protocol::token::{ID_BYTES, SECRET_BYTES, compose};
    let (mut id, mut secret) = ([0u8; ID_BYTES], [0u8; SECRET_BYTES]);
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
    Ok(compose(&id, &secret))
}

/// How often the agent tries to read one input, and how long it waits
/// between tries (the server may be restarting).
const INPUT_TRIES: u32 = 5;
const INPUT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Returns once the server knows the job has ended.
pub async fn run_agent(url: &str, key: &str, dir: &Path) -> Result<()> {
    let layout = Layout::new(dir);
    for d in [layout.agent(), layout.work(), layout.input()] {
        tokio::fs::create_dir_all(&d)
            .await
            .with_context(|| format!("creating {}", d.display()))?;
    }
    provide_bmat(&layout.agent())?;
    let api = Client::new(url, None)?.with_patience(Some(AGENT_PATIENCE));
    let boot = (api.agent_bootstrap(key, &worker_token()?).await)
        .context("trading the one-time key for a worker token")?;
    tracing::info!(worker = boot.worker.0, "bootstrapped");
    let api = api.with_token(boot.token);
    let started: Started = match api.agent_start().await {
        Ok(s) => s,
        Err(e) if e.status() == Some(409) => {
            tracing::info!(%e, "the job ended before it started");
            return Ok(());
        }
        Err(e) => return Err(e).context("starting the job"),
    };
    tracing::info!(job = started.job.0, name = %started.name, tasks = started.tasks.len(), "job started");
    Job::new(api, layout, started).run().await
}

struct Job {
    api: Client,
    layout: Layout,
    started: Started,
    /// Set once the server says the job has ended.
    ended: watch::Receiver<bool>,
    /// Set once this process is asked to stop.
    terminated: watch::Receiver<bool>,
    deadline: Instant,
}

impl Job {
    fn new(api: Client, layout: Layout, started: Started) -> Job {
        let (ended_tx, ended) = watch::channel(false);
        tokio::spawn(watch_control(api.clone(), ended_tx));
        let (term_tx, terminated) = watch::channel(false);
        tokio::spawn(watch_sigterm(term_tx));
        let deadline = instant_of(started.deadline_ms);
        Job {
            api,
            layout,
            started,
            ended,
            terminated,
            deadline,
        }
    }

    async fn run(mut self) -> Result<()> {
        let env = self.task_env();
        let (tx, rx) = mpsc::channel(output::CHANNEL_CHUNKS);
        let shipper = tokio::spawn(output::ship(self.api.clone(), rx));
        let mut leftover_readers = Vec::new();
        let mut verdict: Result<(), String> = Ok(());
        let mut stopped = None;
        let mut tasks = std::mem::take(&mut self.started.tasks);
        // The inputs are in place before the first task, or the job fails
        // with the reason and runs none.
        if let Err(why) = self.fetch_inputs().await {
            verdict = Err(why);
            tasks.clear();
        }
        for (i, t) in tasks.iter().enumerate() {
            let run = task::TaskRun {
                layout: &self.layout,
                number: i + 1,
                task: t,
                env: &env,
                output: tx.clone(),
            };
            let stops = task::Stops {
                ended: self.ended.clone(),
                terminated: self.terminated.clone(),
                deadline: self.deadline,
            };
            let (end, readers) = run.run(stops).await;
            leftover_readers.extend(readers);
            tracing::info!(task = %t.name, ?end, "task done");
            match end {
                TaskEnd::Exited(0) => continue,
                TaskEnd::Exited(code) => {
                    verdict = Err(format!("task {} exited with {code}", t.name))
                }
                TaskEnd::Signalled(sig) => {
                    verdict = Err(format!("task {} was killed by signal {sig}", t.name));
                }
                TaskEnd::CouldNotStart(e) => {
                    verdict = Err(format!("task {} could not start: {e}", t.name))
                }
                TaskEnd::Stopped(why) => {
                    stopped = Some((why, t.name.clone()));
                }
            }
            break;
        }
        // Background processes of a task may hold its pipes open: their
        // output is not waited for past this point.
        for r in leftover_readers {
            r.abort();
        }
        drop(tx);
        if tokio::time::timeout(OUTPUT_DRAIN, shipper).await.is_err() {
            tracing::warn!("output still unsent after {OUTPUT_DRAIN:?}; reporting anyway");
        }
        // What the job keeps is sent before its end is reported, whether
        // its tasks succeeded or not (a failed job's logs are kept too); a
        // task's failure stays the reason if both fail.
        if stopped.is_none() && !self.started.output_rules.is_empty() {
            let kept = match outputs::matching(&self.layout.work(), &self.started.output_rules) {
                Ok(found) => {
                    tracing::info!(files = found.len(), "sending outputs");
                    outputs::send_all(&self.api, &found).await
                }
                Err(why) => Err(why),
            };
            verdict = verdict.and(kept);
        }
        match stopped {
            None => self.finish(verdict).await,
            Some((Stop::Ended, _)) => {
                tracing::info!("the job ended on the server; stopped");
                Ok(())
            }
            Some((Stop::Terminated, task)) => {
                bail!("asked to stop (SIGTERM) while task {task} ran")
            }
            Some((Stop::Deadline, task)) => {
                // The server times the job out at its deadline; finishing
                // it here would call a timeout a failure.
                let mut ended = self.ended.clone();
                let waited = tokio::time::timeout(DEADLINE_PATIENCE, ended.wait_for(|e| *e)).await;
                if matches!(waited, Ok(Ok(_))) {
                    return Ok(());
                }
                self.finish(Err(format!(
                    "the job's deadline passed while task {task} ran"
                )))
                .await
            }
        }
    }

    /// Places the job's inputs and its copied dependencies' outputs under
    /// the input directory, each checked against its SHA-256.
    async fn fetch_inputs(&self) -> Result<(), String> {
        let listed = (self.api.agent_inputs().await)
            .map_err(|e| format!("could not list the job's inputs: {e}"))?;
        if !listed.is_empty() {
            tracing::info!(files = listed.len(), "placing inputs");
        }
        let root = self.layout.input();
        for i in listed {
            // The server checks names; a path that would leave the input
            // directory is refused here too.
            aquifer_protocol::outputs::relative_path(&i.path)
                .map_err(|why| format!("input {:?}: {why}", i.path))?;
            let dest = root.join(&i.path);
            let path = aquifer_protocol::path::agent_input(i.input);
            // A read cut short (a server restarting) is read again whole;
            // each try writes beside the file and renames only a checked
            // copy.
            let mut tries = INPUT_TRIES;
            loop {
                match self.api.receive_file(&path, &dest, Some(&i.sha256)).await {
                    Ok(_) => break,
                    Err(why) if tries <= 1 => {
                        return Err(format!("could not place input {}: {why}", i.path));
                    }
                    Err(why) => {
                        tracing::warn!(input = %i.path, %why, "reading an input again");
                        tries -= 1;
                        tokio::time::sleep(INPUT_RETRY_AFTER).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// What every task gets on top of the agent's environment: the job's
    /// URL, token and id, and `bmat` first on `PATH`. A task's own `PATH`
    /// gets the same prefix (see `task`).
    fn task_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("AQUIFER_URL".to_string(), self.api.base().to_string()),
            ("AQUIFER_JOB_TOKEN".to_string(), self.started.token.clone()),
            ("AQUIFER_JOB_ID".to_string(), self.started.job.0.to_string()),
            (
                "AQUIFER_INPUT_DIR".to_string(),
                self.layout.input().display().to_string(),
            ),
        ]);
        let path = match (bmat_dir(), std::env::var("PATH")) {
            (Some(bmat), Ok(path)) => format!("{}:{path}", bmat.display()),
            (Some(bmat), Err(_)) => format!("{}:{DEFAULT_PATH}", bmat.display()),
            (None, Ok(path)) => path,
            (None, Err(_)) => DEFAULT_PATH.to_string(),
        };
        env.insert("PATH".to_string(), path);
        env
    }

    async fn finish(&self, verdict: Result<(), String>) -> Result<()> {
        let body = Finish {
            succeeded: verdict.is_ok(),
            reason: verdict.err(),
        };
        tracing::info!(succeeded = body.succeeded, reason = ?body.reason, "finishing");
        match self.api.agent_finish(&body).await {
            Ok(()) => Ok(()),
            // Ended meanwhile (cancelled, timed out): the server knows.
            Err(e) if matches!(e.status(), Some(409 | 410)) => {
                tracing::info!(%e, "the job had ended already");
                Ok(())
            }
            Err(e) => Err(e).context("reporting the job's end"),
        }
    }
}

/// The `Instant` of a deadline in milliseconds since the epoch.
fn instant_of(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Long-polls the job's control until the server says it has ended.
async fn watch_control(api: Client, ended: watch::Sender<bool>) {
    let wait_ms = u64::try_from(CONTROL_WAIT.as_millis()).unwrap_or(u64::MAX);
    let mut failures: u32 = 0;
    loop {
        if ended.is_closed() {
            return;
        }
        match api.agent_control(wait_ms).await {
            Ok(c) if c.ended => {
                tracing::info!(outcome = ?c.outcome, "the job has ended");
                ended.send_replace(true);
                return;
            }
            Ok(_) => failures = 0,
            // The worker or its job is no longer known to the server.
            Err(CallError::Refused {
                status: 401 | 404 | 410,
                ..
            }) => {
                ended.send_replace(true);
                return;
            }
            Err(e) => {
                let delay = Backoff::RECONNECT.wait_jittered(failures);
                tracing::warn!(%e, ?delay, "watching the job's control");
                failures = failures.saturating_add(1);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Flags SIGTERM: the factory is destroying the worker.
async fn watch_sigterm(terminated: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            if s.recv().await.is_some() {
                terminated.send_replace(true);
            }
        }
        Err(e) => tracing::warn!(%e, "cannot watch for SIGTERM"),
    }
}

/// Names a task (for output attribution) cheaply.
pub(crate) fn shared(name: &str) -> Arc<str> {
    Arc::from(name)
}
