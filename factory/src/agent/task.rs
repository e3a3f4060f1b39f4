//! Running one task: its script written to a file, `bash FILE` started in
//! the work directory in a process group of its own (recorded, so that the
//! factory can kill it even if the agent dies), its output read into the
//! shipper, and the task stopped (the whole group) when the job ends, the
//! deadline passes or the agent is told to stop.

use super::layout::Layout;
use super::output::{Chunk, read_pipe};
use crate::procgroup;
use aquifer_protocol::agent::Stream;
use aquifer_protocol::jobs::Task;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a stopped task's group has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the rest of a finished task's output may take to arrive.
/// Background processes it left may keep its pipes open for ever.
const DRAIN: Duration = Duration::from_secs(2);

/// Why a task was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The server says the job has ended.
    Ended,
    /// The job's deadline passed.
    Deadline,
    /// The agent got SIGTERM.
    Terminated,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TaskEnd {
    Exited(i32),
    Signalled(i32),
    CouldNotStart(String),
    Stopped(Stop),
}

/// What can stop a task.
pub struct Stops {
    pub ended: watch::Receiver<bool>,
    pub terminated: watch::Receiver<bool>,
    pub deadline: Instant,
}

impl Stops {
    /// Resolves with the first reason to stop.
    async fn first(&mut self) -> Stop {
        tokio::select! {
            r = self.ended.wait_for(|e| *e) => match r {
                Ok(_) => Stop::Ended,
                // The control watcher is gone; only the others remain.
                Err(_) => std::future::pending().await,
            },
            r = self.terminated.wait_for(|t| *t) => match r {
                Ok(_) => Stop::Terminated,
                Err(_) => std::future::pending().await,
            },
            () = tokio::time::sleep_until(self.deadline) => Stop::Deadline,
        }
    }
}

pub struct TaskRun<'a> {
    pub layout: &'a Layout,
    /// From 1, in job order.
    pub number: usize,
    pub task: &'a Task,
    /// The job's variables (`AQUIFER_*`, `PATH` with `bmat`).
    pub env: &'a BTreeMap<String, String>,
    pub output: mpsc::Sender<Chunk>,
}

impl TaskRun<'_> {
    /// Runs the task to its end; returns how it ended and the readers of
    /// its pipes that are still going (background processes hold them).
    pub async fn run(self, mut stops: Stops) -> (TaskEnd, Vec<JoinHandle<()>>) {
        // A stop that came before the task started stops it at once.
        if *stops.ended.borrow() {
            return (TaskEnd::Stopped(Stop::Ended), Vec::new());
        }
        let mut child = match self.spawn() {
            Ok(c) => c,
            Err(e) => return (TaskEnd::CouldNotStart(e), Vec::new()),
        };
        // The child is its group's leader: its pid is the group's id.
        // Recorded first, so that the window in which a dying agent
        // leaves an unrecorded group behind is as small as can be.
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        if let Some(pgid) = pgid {
            self.record(pgid);
        }
        let name = super::shared(&self.task.name);
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(read_pipe(
                name.clone(),
                Stream::Stdout,
                out,
                self.output.clone(),
            )));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(read_pipe(
                name.clone(),
                Stream::Stderr,
                err,
                self.output.clone(),
            )));
        }
        let end = tokio::select! {
            status = child.wait() => match status {
                Ok(s) => match (s.code(), s.signal()) {
                    (Some(code), _) => TaskEnd::Exited(code),
                    (None, Some(sig)) => TaskEnd::Signalled(sig),
                    (None, None) => TaskEnd::Exited(-1),
                },
                Err(e) => TaskEnd::CouldNotStart(format!("waiting for bash: {e}")),
            },
            why = stops.first() => {
                tracing::info!(task = %self.task.name, ?why, "stopping the task");
                if let Some(pgid) = pgid
                    && let Err(e) = procgroup::terminate(&[pgid], STOP_GRACE).await
                {
                    tracing::warn!(task = %self.task.name, %e, "stopping the task's processes");
                }
                // Reaps bash; it is dead or dying by now.
                let _ = child.wait().await;
                TaskEnd::Stopped(why)
            }
        };
        // Let the last of the output through before the next task starts.
        let deadline = Instant::now() + DRAIN;
        let mut going = Vec::new();
        for mut r in readers {
            if tokio::time::timeout_at(deadline, &mut r).await.is_err() {
                going.push(r);
            }
        }
        (end, going)
    }

    fn spawn(&self) -> Result<tokio::process::Child, String> {
        let script = self.layout.script(self.number, &self.task.name);
        std::fs::write(&script, &self.task.script)
            .map_err(|e| format!("writing {}: {e}", script.display()))?;
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(&script)
            .current_dir(self.layout.work())
            // The spent key is the agent's, not the job's.
            .env_remove(crate::local::AGENT_KEY_ENV)
            .envs(&self.task.env)
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that stopping it stops what it started.
            .process_group(0);
        // A task's own PATH still finds bmat first.
        if let (Some(own), Some(bmat)) = (self.task.env.get("PATH"), super::bmat_dir()) {
            command.env("PATH", format!("{}:{own}", bmat.display()));
        }
        command.spawn().map_err(|e| format!("starting bash: {e}"))
    }

    /// Appends the task's group (and its leader's start time, which tells
    /// a reused group id apart) to the worker's record. A failure is
    /// logged: the task runs anyway, and the agent still stops it.
    fn record(&self, pgid: i32) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.pgids())
            .and_then(|mut f| match procgroup::stat(pgid) {
                Some(st) => writeln!(f, "{pgid} {}", st.start),
                None => writeln!(f, "{pgid}"),
            });
        if let Err(e) = appended {
            tracing::warn!(%e, pgid, "recording the task's process group");
        }
    }
}
