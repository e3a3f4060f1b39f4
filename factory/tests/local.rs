//! The local factory against the real server: a job submitted with no
//! resources gets a worker (a directory and an agent process), its tasks
//! run, their output reaches the job's stream, the job ends as its scripts
//! say, and afterwards the worker's directory and every process it
//! started are gone. Also: cancellation, the deadline, an agent that dies,
//! and a factory restart that adopts a running worker and destroys an
//! orphan.
//!
//! The agent is this test binary itself: the factory runs it through a
//! small shell wrapper as `TEST-BINARY --exact agent_process`, which calls
//! `run_agent` with the arguments the factory gave.

mod server;

use aquifer_factory::{LocalConfig, run_agent, run_local};
use serde_json::json;
use server::{PATIENCE, Server, server};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The agent process of these tests; a no-op when run on its own.
#[test]
#[ignore = "the agent process the local factory starts in these tests"]
fn agent_process() {
    let var = |k: &str| std::env::var(k).ok();
    let (Some(url), Some(key), Some(dir)) = (
        var("AQUIFER_TEST_AGENT_URL"),
        var("AQUIFER_TEST_AGENT_KEY"),
        var("AQUIFER_TEST_AGENT_DIR"),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    if let Err(e) = runtime.block_on(run_agent(&url, &key, Path::new(&dir))) {
        panic!("the agent failed: {e:#}");
    }
}

/// This binary, run as the agent with the factory's arguments
/// (`--url URL --dir DIR` become `$1`..`$4`; the key comes in
/// `AQUIFER_AGENT_KEY`).
fn agent_command() -> Vec<String> {
    let exe = std::env::current_exe().expect("this test binary");
    let script = format!(
        "export AQUIFER_TEST_AGENT_URL=\"$2\" AQUIFER_TEST_AGENT_KEY=\"$AQUIFER_AGENT_KEY\" AQUIFER_TEST_AGENT_DIR=\"$4\"; \
         exec '{}' --exact agent_process --include-ignored --test-threads=1 --nocapture",
        exe.display()
    );
    vec!["sh".into(), "-c".into(), script, "agent".into()]
}

/// A stand-in `bmat` in a directory of its own, to see that tasks find
/// the one the agent puts first on PATH.
fn fake_bmat(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let bmat = bin.join("bmat");
    std::fs::write(&bmat, "#!/bin/sh\necho \"fake bmat $*\"\n").expect("written");
    std::fs::set_permissions(&bmat, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

struct Factory {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Factory {
    fn start(s: &Server, token: &str, data: &Path) -> Factory {
        Factory::start_with(s, token, data, 2, 20_000)
    }

    fn start_with(
        s: &Server,
        token: &str,
        data: &Path,
        capacity: u16,
        lease_wait_ms: u64,
    ) -> Factory {
        let config = LocalConfig {
            url: s.base.clone(),
            token: Some(token.to_string()),
            token_file: None,
            data_dir: data.to_path_buf(),
            targets: BTreeMap::from([("t".to_string(), capacity)]),
            agent_command: Some(agent_command()),
            agent_env: BTreeMap::from([(
                "AQUIFER_BMAT_DIR".to_string(),
                fake_bmat(data).display().to_string(),
            )]),
            reconcile_interval_ms: 60_000,
            lease_wait_ms,
            destroy_grace_ms: 2_000,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run_local(&config, async {
                let _ = stopped.await;
            })
            .await
        });
        Factory { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the factory stops in time")
            .expect("the factory's task")
            .expect("the factory stops cleanly");
    }
}

fn worker_dir(data: &Path, worker: u32) -> PathBuf {
    data.join("workers").join(worker.to_string())
}

/// Whether process `pid` can still run anything (a zombie cannot).
fn running(pid: i32) -> bool {
    aquifer_factory::procgroup::stat(pid).is_some_and(|s| s.is_live())
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .expect("the task wrote it")
        .trim()
        .parse()
        .expect("a pid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_a_local_worker_and_leaves_nothing_behind() {
    let (s, token) = server(2).await;
    let data = tempfile::tempdir().expect("temp dir");
    let pids = tempfile::tempdir().expect("temp dir");
    let factory = Factory::start(&s, &token, data.path());
    let job = s
        .submit(
            json!([
                {"name": "build", "env": {"PIDS": pids.path()}, "script": r#"
                    echo "hello from job $AQUIFER_JOB_ID"
                    echo "to stderr" >&2
                    test -n "$AQUIFER_JOB_TOKEN" && test -n "$AQUIFER_URL"
                    bmat resource list
                    basename "$PWD"
                    # A background process that outlives its task.
                    sleep 1000 >/dev/null 2>&1 &
                    echo $! > "$PIDS/background"
                "#},
                {"name": "check", "script": "echo second task"},
            ]),
            600,
        )
        .await;
    let worker = s.worker_of(job).await;
    let out = s.follow(job, |_| false).await;
    let (outcome, reason) = s.ended(job).await;
    assert_eq!(outcome, json!("succeeded"), "{reason} {out:?}");
    assert!(
        out.stdout.contains(&format!("hello from job {job}\n")),
        "{out:?}"
    );
    assert!(out.stdout.contains("fake bmat resource list\n"), "{out:?}");
    assert!(out.stdout.contains("work\n"), "tasks run in work/: {out:?}");
    assert!(out.stdout.contains("second task\n"), "{out:?}");
    assert_eq!(out.stderr, "to stderr\n");
    assert_eq!(out.tasks, vec!["build", "check"]);

    s.no_workers_left().await;
    assert!(!worker_dir(data.path(), worker).exists());
    assert!(!running(read_pid(&pids.path().join("background"))));
    factory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_fails_the_job_and_stops_the_rest() {
    let (s, token) = server(2).await;
    let data = tempfile::tempdir().expect("temp dir");
    let factory = Factory::start(&s, &token, data.path());
    let job = s
        .submit(
            json!([
                {"name": "test", "script": "echo before\nexit 2\n"},
                {"name": "never", "script": "echo never"},
            ]),
            600,
        )
        .await;
    let out = s.follow(job, |_| false).await;
    let (outcome, reason) = s.ended(job).await;
    assert_eq!(outcome, json!({"failed": "tasks"}));
    assert_eq!(reason, json!("task test exited with 2"));
    assert_eq!(out.stdout, "before\n");
    assert_eq!(out.tasks, vec!["test"]);
    s.no_workers_left().await;
    factory.stop().await;
}

/// A task that says it is running, records the pid of a process it
/// started, and waits for ever.
fn forever(pids: &Path) -> serde_json::Value {
    json!([{"name": "wait", "env": {"PIDS": pids}, "script": r#"
        sleep 1000 &
        echo $! > "$PIDS/sleep"
        echo started
        wait
    "#}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_stops_its_task_and_its_worker_is_destroyed() {
    let (s, token) = server(2).await;
    let data = tempfile::tempdir().expect("temp dir");
    let pids = tempfile::tempdir().expect("temp dir");
    let factory = Factory::start(&s, &token, data.path());
    let job = s.submit(forever(pids.path()), 600).await;
    let worker = s.worker_of(job).await;
    s.follow(job, |o| o.stdout.contains("started")).await;
    let sleep = read_pid(&pids.path().join("sleep"));
    assert!(running(sleep));

    let (status, body) = s
        .call(
            aquifer_protocol::Method::POST,
            &format!("/0/jobs/{job}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (outcome, _) = s.ended(job).await;
    assert_eq!(outcome, json!("cancelled"));
    s.no_workers_left().await;
    assert!(!worker_dir(data.path(), worker).exists());
    assert!(!running(sleep));
    factory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_deadline_times_out_and_its_processes_die() {
    let (s, token) = server(2).await;
    let data = tempfile::tempdir().expect("temp dir");
    let pids = tempfile::tempdir().expect("temp dir");
    let factory = Factory::start(&s, &token, data.path());
    let job = s.submit(forever(pids.path()), 3).await;
    s.follow(job, |o| o.stdout.contains("started")).await;
    let sleep = read_pid(&pids.path().join("sleep"));
    let (outcome, _) = s.ended(job).await;
    assert_eq!(outcome, json!("timed_out"));
    s.no_workers_left().await;
    assert!(!running(sleep));
    factory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_dies_makes_its_worker_lost() {
    let (s, token) = server(2).await;
    let data = tempfile::tempdir().expect("temp dir");
    let pids = tempfile::tempdir().expect("temp dir");
    let factory = Factory::start(&s, &token, data.path());
    let job = s.submit(forever(pids.path()), 600).await;
    let worker = s.worker_of(job).await;
    s.follow(job, |o| o.stdout.contains("started")).await;
    let sleep = read_pid(&pids.path().join("sleep"));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(worker_dir(data.path(), worker).join("agent.pid"))
            .expect("a pid file"),
    )
    .expect("JSON");
    let agent = i32::try_from(record["pid"].as_i64().expect("a pid")).expect("a pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(agent), nix::sys::signal::SIGKILL)
        .expect("killed");

    let (outcome, _) = s.ended(job).await;
    assert_eq!(outcome, json!({"failed": "worker_lost"}));
    s.no_workers_left().await;
    assert!(!worker_dir(data.path(), worker).exists());
    // The agent died without stopping its task; the factory killed it.
    assert!(!running(sleep));
    factory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_factory_adopts_its_workers_and_destroys_orphans() {
    let (s, token) = server(2).await;
    let data = tempfile::tempdir().expect("temp dir");
    let pids = tempfile::tempdir().expect("temp dir");
    let go = pids.path().join("go");
    let factory = Factory::start(&s, &token, data.path());
    let job = s
        .submit(
            json!([{"name": "wait", "env": {"GO": go}, "script": r#"
                echo started
                while [ ! -e "$GO" ]; do sleep 0.05; done
                echo finished
            "#}]),
            600,
        )
        .await;
    let worker = s.worker_of(job).await;
    s.follow(job, |o| o.stdout.contains("started")).await;
    factory.stop().await;
    // The job goes on without its factory.
    assert!(worker_dir(data.path(), worker).join("agent.pid").exists());

    // An orphan: a worker directory the server never heard of, with a
    // live process group recorded in it.
    let mut orphan = tokio::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .expect("sleep starts");
    let orphan_pid = i32::try_from(orphan.id().expect("running")).expect("a pid");
    let orphan_dir = worker_dir(data.path(), 999);
    std::fs::create_dir_all(orphan_dir.join("work")).expect("mkdir");
    std::fs::write(
        orphan_dir.join("agent.pid"),
        json!({"pid": orphan_pid, "start": aquifer_factory::procgroup::stat(orphan_pid).map(|s| s.start)})
            .to_string(),
    )
    .expect("written");

    let factory = Factory::start(&s, &token, data.path());
    // The first reconciliation destroys the orphan; the sleep is our
    // child, so its end can be awaited.
    let status = tokio::time::timeout(PATIENCE, orphan.wait())
        .await
        .expect("the orphan is killed in time")
        .expect("reaped");
    assert!(!status.success());
    std::fs::write(&go, "").expect("go");
    let out = s.follow(job, |_| false).await;
    let (outcome, _) = s.ended(job).await;
    assert_eq!(outcome, json!("succeeded"));
    assert!(out.stdout.contains("finished"), "{out:?}");
    s.no_workers_left().await;
    assert!(!worker_dir(data.path(), worker).exists());
    let gone = async {
        while orphan_dir.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // The directory goes right after its processes; a short poll.
    tokio::time::timeout(PATIENCE, gone)
        .await
        .expect("the orphan's directory is removed");
    factory.stop().await;
}

/// With room for one worker, two jobs run one after the other; the second
/// starts as soon as the first worker is gone, not when the factory's
/// long-poll (which asked for nothing while full) runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_factory_takes_the_next_job_as_soon_as_a_worker_is_gone() {
    let (s, token) = server(1).await;
    let data = tempfile::tempdir().expect("temp dir");
    let factory = Factory::start_with(&s, &token, data.path(), 1, 60_000);
    let tasks = json!([{"name": "t", "script": "echo $AQUIFER_JOB_ID"}]);
    let first = s.submit(tasks.clone(), 600).await;
    let second = s.submit(tasks, 600).await;
    let (outcome, _) = s.ended(first).await;
    assert_eq!(outcome, json!("succeeded"));
    let first_ended = std::time::Instant::now();
    let (outcome, _) = s.ended(second).await;
    assert_eq!(outcome, json!("succeeded"));
    assert!(
        first_ended.elapsed() < Duration::from_secs(30),
        "the second job waited for the long-poll to run out: {:?}",
        first_ended.elapsed()
    );
    s.no_workers_left().await;
    factory.stop().await;
}
