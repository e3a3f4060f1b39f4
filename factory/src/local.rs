//! The `local` factory: a worker is an agent process on this host, in its
//! own directory `<data_dir>/workers/<id>` and its own process group. What
//! it made is found again after a restart from the directories themselves
//! and the pid file in each (`agent/layout.rs`); destroying a worker kills
//! the agent's group and every task group the agent recorded, then removes
//! the directory.
//!
//! It isolates nothing: jobs run as the factory's user, and can see and
//! signal each other. It is for development, demos and trusted jobs.

use crate::agent::layout::Layout;
use crate::procgroup;
use crate::sdk::Lease;
use crate::sdk::{AgentExit, AgentState, CreatedWorker, Factory, Owned};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Where an agent finds its one-time key (`aquifer agent` reads it).
pub const AGENT_KEY_ENV: &str = "AQUIFER_AGENT_KEY";

/// Variables of the factory's environment that its agents (and so their
/// tasks) keep. Everything else, tokens included, stays behind.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "AQUIFER_BMAT_DIR",
];

/// The record of a started agent, in `agent.pid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// The agent's pid, which is also its process group's id.
    pub pid: i32,
    /// Its start time after boot (Linux), telling a reused pid apart.
    pub start: Option<u64>,
    /// The boot it ran in: pids of another boot name nothing now.
    pub boot: Option<String>,
}

pub struct LocalFactory {
    workers: PathBuf,
    /// The agent program and its first arguments; `--url` and `--dir`
    /// follow, and the one-time key is in `AQUIFER_AGENT_KEY` (an argument
    /// would show it to every local user in `ps`).
    agent_command: Vec<String>,
    /// Added to the agents' environment.
    agent_env: Vec<(String, String)>,
    destroy_grace: Duration,
}

impl LocalFactory {
    /// A factory keeping its workers under `data_dir/workers`.
    pub fn new(
        data_dir: &Path,
        agent_command: Vec<String>,
        agent_env: Vec<(String, String)>,
        destroy_grace: Duration,
    ) -> Result<LocalFactory, String> {
        if agent_command.is_empty() {
            return Err("agent_command is empty".into());
        }
        let workers = data_dir.join("workers");
        std::fs::create_dir_all(&workers)
            .map_err(|e| format!("creating {}: {e}", workers.display()))?;
        Ok(LocalFactory {
            workers,
            agent_command,
            agent_env,
            destroy_grace,
        })
    }

    /// The directory of `worker`.
    #[must_use]
    pub fn dir(&self, worker: u32) -> PathBuf {
        self.workers.join(worker.to_string())
    }

    /// The agent record of `worker`, if its agent was started.
    #[must_use]
    pub fn pid_record(&self, worker: u32) -> Option<PidRecord> {
        let text = std::fs::read_to_string(Layout::new(&self.dir(worker)).pid_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn agent_state(&self, worker: u32) -> AgentState {
        match self.pid_record(worker) {
            None => AgentState::NotStarted,
            Some(r) if !same_boot(&r) => AgentState::Exited,
            Some(r) if procgroup::leader_alive(r.pid, r.start) => AgentState::Running,
            Some(_) => AgentState::Exited,
        }
    }

    /// The process groups of `worker` that may still hold something.
    fn groups(&self, worker: u32) -> Vec<i32> {
        let layout = Layout::new(&self.dir(worker));
        let Some(record) = self.pid_record(worker) else {
            // No agent ever started, so no task either.
            return Vec::new();
        };
        if !same_boot(&record) {
            return Vec::new();
        }
        let mut groups = vec![(record.pid, record.start)];
        groups.extend(layout.read_pgids());
        groups
            .into_iter()
            .filter(|&(pgid, start)| {
                procgroup::may_signal(pgid) && procgroup::still_ours(pgid, start)
            })
            .map(|(pgid, _)| pgid)
            .collect()
    }

    fn write_pid_record(&self, worker: u32, record: &PidRecord) -> Result<(), String> {
        let file = Layout::new(&self.dir(worker)).pid_file();
        let tmp = file.with_extension("pid.tmp");
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        // Written aside and renamed, so a reader never sees half of it.
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| format!("writing {}: {e}", file.display()))
    }
}

fn same_boot(record: &PidRecord) -> bool {
    match (&record.boot, procgroup::boot_id()) {
        (Some(then), Some(now)) => *then == now,
        _ => true,
    }
}

impl Factory for LocalFactory {
    async fn create_worker(&self, lease: &Lease) -> Result<CreatedWorker, String> {
        let dir = self.dir(lease.worker);
        if tokio::fs::try_exists(&dir).await.unwrap_or(true) {
            // Left from a creation a restart interrupted: start afresh.
            self.destroy_worker(lease.worker).await?;
        }
        let work = Layout::new(&dir).work();
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| format!("creating {}: {e}", work.display()))?;
        Ok(CreatedWorker {
            worker: lease.worker,
            description: dir.display().to_string(),
        })
    }

    async fn start_agent(&self, worker: u32, url: &str, key: &str) -> Result<AgentExit, String> {
        let dir = self.dir(worker);
        let (program, first_args) = self
            .agent_command
            .split_first()
            .ok_or("agent_command is empty")?;
        let passed: Vec<(OsString, OsString)> = PASSED_ENV
            .iter()
            .filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v)))
            .collect();
        let mut child = tokio::process::Command::new(program)
            .args(first_args)
            .arg("--url")
            .arg(url)
            .arg("--dir")
            .arg(&dir)
            .current_dir(&dir)
            .env_clear()
            .envs(passed)
            .envs(self.agent_env.iter().map(|(k, v)| (k, v)))
            .env(AGENT_KEY_ENV, key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // The agent's log joins the factory's.
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting the agent {program:?}: {e}"))?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or("the agent exited at once")?;
        let record = PidRecord {
            pid,
            start: procgroup::stat(pid).map(|s| s.start),
            boot: procgroup::boot_id(),
        };
        if let Err(e) = self.write_pid_record(worker, &record) {
            // An agent nobody can find again must not run.
            procgroup::signal_all(&[pid], nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait().await;
            return Err(e);
        }
        tracing::info!(worker, pid, dir = %dir.display(), "agent started");
        Ok(Box::pin(async move {
            match child.wait().await {
                Ok(s) => describe(s),
                Err(e) => format!("could not be waited for: {e}"),
            }
        }))
    }

    async fn destroy_worker(&self, worker: u32) -> Result<(), String> {
        let dir = self.dir(worker);
        if !tokio::fs::try_exists(&dir).await.unwrap_or(true) {
            return Ok(());
        }
        let groups = self.groups(worker);
        procgroup::terminate(&groups, self.destroy_grace).await?;
        remove_tree(&dir).await?;
        tracing::info!(worker, dir = %dir.display(), "worker destroyed");
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let mut owned = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.workers)
            .await
            .map_err(|e| format!("reading {}: {e}", self.workers.display()))?;
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| format!("reading {}: {e}", self.workers.display()))?
        {
            let Some(worker) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            owned.push(Owned {
                worker,
                agent: self.agent_state(worker),
            });
        }
        owned.sort_by_key(|o| o.worker);
        Ok(owned)
    }
}

/// How a process ended, in words.
fn describe(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "ended".into(),
    }
}

/// Removes `dir` and everything in it. Tasks may leave directories without
/// write permission (Go's module cache does), which a plain removal cannot
/// empty: those are made writable and the removal tried again.
pub async fn remove_tree(dir: &Path) -> Result<(), String> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || make_writable(&d))
        .await
        .map_err(|e| e.to_string())?;
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", dir.display())),
    }
}

/// Gives the owner write and search permission on every directory under
/// `dir`, without following symbolic links out of it.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    // Bounded by the tree itself: each directory is pushed once.
    while let Some(d) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mut perms = meta.permissions();
        perms.set_mode(perms.mode() | 0o700);
        let _ = std::fs::set_permissions(&d, perms);
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn lease(worker: u32) -> Lease {
        Lease {
            worker,
            job: 1,
            target: "t".into(),
            expires_at_ms: 0,
        }
    }

    /// An "agent" that starts a task-like group of its own, as the real
    /// agent does, with a grandchild in it; records the group; says it is
    /// ready through the fifo `$READY`; and waits.
    fn fake_agent() -> Vec<String> {
        let script = r#"
            dir="$4"
            mkdir -p "$dir/agent"
            # Job control puts the background job in a group of its own.
            set -m
            ( bash -c 'sleep 300 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait' _ "$dir/agent/grandchild" ) &
            echo "$!" >> "$dir/agent/pgids"
            set +m
            while [ ! -e "$dir/agent/grandchild" ]; do sleep 0.01; done
            cat "$dir/agent/grandchild" > "$READY"
            sleep 300
        "#;
        vec!["bash".into(), "-c".into(), script.into(), "agent".into()]
    }

    fn fifo(dir: &Path) -> PathBuf {
        let path = dir.join("ready");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        path
    }

    #[tokio::test]
    async fn a_destroyed_worker_leaves_no_directory_and_no_process() {
        let data = tempfile::tempdir().expect("temp dir");
        let ready = fifo(data.path());
        let env = vec![("READY".to_string(), ready.display().to_string())];
        let f = LocalFactory::new(data.path(), fake_agent(), env, Duration::from_secs(5))
            .expect("a factory");
        let created = f.create_worker(&lease(7)).await.expect("created");
        assert_eq!(created.worker, 7);
        let dir = f.dir(7);
        assert!(dir.join("work").is_dir());
        assert_eq!(
            f.list_owned().await.expect("listed"),
            vec![Owned {
                worker: 7,
                agent: AgentState::NotStarted
            }]
        );

        let exit = f
            .start_agent(7, "http://127.0.0.1:1", "key")
            .await
            .expect("started");
        let record = f.pid_record(7).expect("a pid file");
        // Opening the fifo waits for the agent to be ready.
        let grandchild: i32 = tokio::fs::read_to_string(&ready)
            .await
            .expect("the agent is ready")
            .trim()
            .parse()
            .expect("a pid");
        assert_eq!(
            f.list_owned().await.expect("listed")[0].agent,
            AgentState::Running
        );
        let task_group = Layout::new(&dir).read_pgids()[0].0;
        assert_ne!(task_group, record.pid, "the task has a group of its own");

        // A read-only directory, as Go's module cache leaves.
        let ro = dir.join("work/ro/sub");
        std::fs::create_dir_all(&ro).expect("mkdir");
        std::fs::write(ro.join("f"), "x").expect("a file");
        std::fs::set_permissions(dir.join("work/ro"), std::fs::Permissions::from_mode(0o500))
            .expect("chmod");

        f.destroy_worker(7).await.expect("destroyed");
        assert!(!dir.exists());
        assert!(!procgroup::alive(record.pid));
        assert!(!procgroup::alive(task_group));
        assert!(procgroup::stat(grandchild).is_none_or(|s| !s.is_live()));
        assert!(exit.await.contains("signal"), "the agent was killed");
        assert_eq!(f.list_owned().await.expect("listed"), vec![]);
        // Idempotent.
        f.destroy_worker(7).await.expect("destroyed again");
    }

    #[tokio::test]
    async fn the_agent_key_is_in_its_environment_not_its_arguments() {
        let data = tempfile::tempdir().expect("temp dir");
        let tell = vec![
            "bash".to_string(),
            "-c".to_string(),
            r#"echo "$0 $*" > args; echo "$AQUIFER_AGENT_KEY" > key"#.to_string(),
            "agent".to_string(),
        ];
        let f = LocalFactory::new(data.path(), tell, Vec::new(), Duration::from_secs(1))
            .expect("a factory");
        f.create_worker(&lease(4)).await.expect("created");
        let exit = f
            .start_agent(4, "http://127.0.0.1:1", "k3y-s3cret")
            .await
            .expect("started");
        assert_eq!(exit.await, "exited with 0");
        let read = |name: &str| std::fs::read_to_string(f.dir(4).join(name)).expect(name);
        let args = read("args");
        assert!(args.contains("--url http://127.0.0.1:1"), "{args}");
        assert!(
            !args.contains("k3y-s3cret"),
            "the key is not an argument: {args}"
        );
        assert_eq!(read("key").trim(), "k3y-s3cret");
    }

    #[tokio::test]
    async fn an_exited_agent_is_seen_after_a_restart() {
        let data = tempfile::tempdir().expect("temp dir");
        let quick = vec!["true".to_string()];
        let f = LocalFactory::new(
            data.path(),
            quick.clone(),
            Vec::new(),
            Duration::from_secs(1),
        )
        .expect("a factory");
        f.create_worker(&lease(3)).await.expect("created");
        let exit = f
            .start_agent(3, "http://127.0.0.1:1", "key")
            .await
            .expect("started");
        assert_eq!(exit.await, "exited with 0");
        // Another factory on the same directory: what it finds.
        let again = LocalFactory::new(data.path(), quick, Vec::new(), Duration::from_secs(1))
            .expect("a factory");
        assert_eq!(
            again.list_owned().await.expect("listed"),
            vec![Owned {
                worker: 3,
                agent: AgentState::Exited
            }]
        );
        // Creating it again replaces what was left.
        std::fs::write(again.dir(3).join("work/old"), "x").expect("a file");
        again.create_worker(&lease(3)).await.expect("created again");
        assert!(!again.dir(3).join("work/old").exists());
        assert_eq!(
            again.list_owned().await.expect("listed")[0].agent,
            AgentState::NotStarted
        );
    }

    #[test]
    fn stray_entries_in_the_workers_directory_are_not_workers() {
        let data = tempfile::tempdir().expect("temp dir");
        let f = LocalFactory::new(
            data.path(),
            vec!["true".into()],
            Vec::new(),
            Duration::from_secs(1),
        )
        .expect("a factory");
        std::fs::create_dir_all(data.path().join("workers/notes")).expect("mkdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        assert_eq!(rt.block_on(f.list_owned()).expect("listed"), vec![]);
    }
}
