//! `aquifer-bench soak`: the whole stack as processes (the server, a ring
//! of single-slot wells with a reset command, a chaos well that fails a
//! fifth of its creates and destroys and hangs in one in twenty (cut off
//! by its 2 s timeouts), the postgres well with `--postgres`,
//! the local factory and its agents) runs jobs with mixed resources,
//! dependencies and cancellations while the harness kills one of them
//! with SIGKILL at random moments and starts it again. At the end it
//! checks that every job ended, that only a kill of its agent failed a job
//! for want of its worker (a server or well restart fails nothing that
//! runs), that nothing is left (resources, worker directories, processes,
//! PostgreSQL roles and databases), and that the whole log replays through
//! the core and the model (and, with `--trace`, writes it for TLC). The
//! last line is
//! `jobs=.. ended=.. kills=.. failed_by_kill=.. leaked=.. violations=.. seed=..`;
//! `--seed` repeats the schedule.

use crate::stack::{MARKER, Run, Server, ServerSettings, tail};
use anyhow::{Context, Result, bail};
use aquifer_model::walk::Rng;
use aquifer_protocol::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Child;

#[derive(clap::Args)]
pub struct Soak {
    /// Jobs to run.
    #[arg(long, default_value_t = 200)]
    pub jobs: usize,
    /// Processes to kill over the run.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// The schedule's seed (jobs, kills, cancellations); default: the time.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the server's store on this PostgreSQL cluster, and the postgres
    /// well against it (default: SQLite, and no postgres well).
    #[arg(long)]
    pub postgres: Option<String>,
    /// Give up if the jobs have not all ended after this long.
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
    /// Also write the whole log here as a trace for TLC (`spec/trace.py
    /// validate`), in the format of `aquifer-model walk --out`.
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

/// The single-slot types, each served by a slot well of its own.
const RING: [&str; 4] = ["ring0", "ring1", "ring2", "ring3"];
const FLAKY: &str = "flaky";
const PG: &str = "pg";
const TARGET: &str = "local";
const WORKERS: u16 = 3;

/// A service as a process, started again after a kill with the same
/// configuration and log.
struct Proc {
    name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn start(&mut self, run: &Run) -> Result<()> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut c = run.aquifer(&args);
        c.stdout(Stdio::null()).stderr(log);
        self.child = Some(
            c.spawn()
                .with_context(|| format!("starting {}", self.name))?,
        );
        Ok(())
    }

    async fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().await?;
        }
        Ok(())
    }

    /// Fails if it stopped by itself (a crash the harness did not cause).
    fn check(&mut self) -> Result<()> {
        if let Some(c) = &mut self.child
            && let Some(status) = c.try_wait()?
        {
            bail!(
                "{} stopped by itself ({status}); its log:\n{}",
                self.name,
                tail(&self.log)
            );
        }
        Ok(())
    }
}

/// What one job asked for.
struct Planned {
    id: u64,
    types: Vec<&'static str>,
}

/// Agents of this run: the processes of `aquifer agent` with its marker,
/// whose parent is not an agent. A task just forked by its agent and not
/// yet `exec`'d has its agent's command line and environment: killing
/// that would kill a task (`killed by signal 9`) while its agent lives.
fn agents(marker: &str) -> Vec<i32> {
    let needle = format!("{MARKER}={marker}");
    let is_agent = |pid: i32| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.split(|&b| b == 0).nth(1) == Some(b"agent".as_slice())
    };
    let parent = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command's closing parenthesis: state, then the ppid.
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse::<i32>().ok()
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            is_agent(pid)
                && parent(pid).is_some_and(|p| !is_agent(p))
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

/// Cancels `job`; one that has ended already is no matter.
async fn cancel(server: &Server, job: u64) {
    let path = format!("/0/jobs/{job}/cancel");
    let _ = server
        .api
        .exchange(Method::POST, &path, None::<&Value>)
        .await;
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub async fn soak(run: &Run, p: &Soak) -> Result<bool> {
    let seed = p.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let mut rng = Rng(seed);
    let dir = run.dir.path().to_path_buf();
    let database = run.database("soak").await?;
    let listen = format!("127.0.0.1:{}", free_port()?);
    let settings = ServerSettings {
        listen: Some(listen.clone()),
        ..ServerSettings::default()
    };
    let mut server = Server::start(run, &database, &settings).await?;
    let url = server.url.clone();
    let mut types: Vec<&'static str> = RING.to_vec();
    types.push(FLAKY);
    if p.postgres.is_some() {
        types.push(PG);
    }
    for t in &types {
        server.define_type(t, 1).await?;
    }
    server.define_target(TARGET).await?;

    // The services, each with a configuration file of its own.
    let mut procs: Vec<Proc> = Vec::new();
    let mut service = |name: &str, args: &[&str], config: String| -> Result<()> {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
        all.extend(["--config".to_string(), path.display().to_string()]);
        procs.push(Proc {
            name: name.to_string(),
            args: all,
            log: dir.join(format!("{name}.log")),
            child: None,
        });
        Ok(())
    };
    for t in RING {
        let token = server.register_well(t, &[(t.to_string(), 1)]).await?;
        let resets = dir.join(format!("{t}.resets"));
        service(
            t,
            &["well", "run"],
            format!(
                "url = \"{url}\"\ntoken = \"{token}\"\ndata_dir = \"{}\"\n[well]\nkind = \"slot\"\nrtype = \"{t}\"\nreset = \"echo $AQUIFER_RESOURCE >> {}\"\n[well.items.only]\nmetadata = {{ host = \"{t}.lab\" }}\nsecrets = {{ pin = \"{t}-pin\" }}\n",
                dir.join(t).display(),
                resets.display()
            ),
        )?;
    }
    let token = server
        .register_well("chaos", &[(FLAKY.to_string(), 2)])
        .await?;
    service(
        "chaos",
        &["well", "run"],
        format!(
            "url = \"{url}\"\ntoken = \"{token}\"\ndata_dir = \"{}\"\nreconcile_interval_ms = 1000\ncreate_timeout_ms = 2000\ndestroy_timeout_ms = 2000\n[capacity]\n{FLAKY} = 2\n[well]\nkind = \"chaos\"\nseed = {seed}\ncreate_fail_probability = 0.2\ndestroy_fail_probability = 0.2\ncreate_hang_probability = 0.05\ndestroy_hang_probability = 0.05\ncreate_delay_ms = [0, 300]\n",
            dir.join("chaos").display()
        ),
    )?;
    let prefix = format!("aqsoak{}_", std::process::id());
    if let Some(admin) = &p.postgres {
        let token = server.register_well("pg", &[(PG.to_string(), 2)]).await?;
        service(
            "pg",
            &["well", "run"],
            format!(
                "url = \"{url}\"\ntoken = \"{token}\"\ndata_dir = \"{}\"\n[capacity]\n{PG} = 2\n[well]\nkind = \"postgres\"\nrtype = \"{PG}\"\nadmin_url = \"{admin}\"\nprefix = \"{prefix}\"\n",
                dir.join("pg").display()
            ),
        )?;
    }
    let token = server.register_factory("local", TARGET, WORKERS).await?;
    let workers_dir = dir.join("factory").join("workers");
    service(
        "factory",
        &["factory", "local"],
        format!(
            "url = \"{url}\"\ntoken = \"{token}\"\ndata_dir = \"{}\"\n[targets]\n{TARGET} = {WORKERS}\n[agent_env]\n{MARKER} = \"{}\"\n",
            dir.join("factory").display(),
            run.marker
        ),
    )?;
    for proc in &mut procs {
        proc.start(run)?;
    }

    // The jobs: a few of the types each, every task reading its resources
    // through bmat; some depend on an earlier job.
    let mut planned: Vec<Planned> = Vec::new();
    for n in 0..p.jobs {
        let mut mine: Vec<&'static str> = Vec::new();
        for _ in 0..rng.below(4) {
            let t = types[rng.below(types.len())];
            if !mine.contains(&t) {
                mine.push(t);
            }
        }
        let resources: Vec<Value> = (mine.iter().enumerate())
            .map(|(i, t)| json!({"name": format!("r{i}"), "type": t}))
            .collect();
        let reads: String = (0..mine.len())
            .map(|i| format!("bmat resource get r{i} > /dev/null\n"))
            .collect();
        let mut body = json!({
            "name": format!("soak-{n}"),
            "target": TARGET,
            "resources": resources,
            "tasks": [{"name": "t", "script": format!("set -eu\n{reads}sleep 0.{}\n", rng.below(5))}],
            "timeout_s": 3600,
        });
        if !planned.is_empty() && rng.below(10) == 0 {
            let on = planned[rng.below(planned.len())].id;
            body["depends_on"] = json!([on]);
        }
        let made = server.ok(Method::POST, "/0/jobs", Some(body)).await?;
        let id = made["id"].as_u64().context("a job id")?;
        planned.push(Planned { id, types: mine });
    }
    let cancels: Vec<u64> = (planned.iter())
        .filter(|_| rng.below(20) == 0)
        .map(|j| j.id)
        .collect();

    // The kills, spread over the run, with a cancellation now and then.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(p.timeout_s);
    let (mut kills, mut agent_kills) = (0, 0);
    let mut cancel_next = cancels.into_iter();
    while kills < p.kills && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500 + 250 * rng.below(10) as u64)).await;
        for proc in &mut procs {
            proc.check()?;
        }
        if let Some(job) = cancel_next.next() {
            cancel(&server, job).await;
        }
        let pick = rng.below(100);
        if pick < 25 {
            server.kill().await?;
            tokio::time::sleep(Duration::from_millis(100 * rng.below(10) as u64)).await;
            server = Server::start(run, &database, &settings).await?;
            eprintln!("soak: killed and restarted the server");
        } else if pick < 40 {
            let running = agents(&run.marker);
            let Some(&pid) = running.get(rng.below(running.len().max(1))) else {
                continue;
            };
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            agent_kills += 1;
            eprintln!("soak: killed an agent ({pid})");
        } else {
            let i = rng.below(procs.len());
            procs[i].kill().await?;
            tokio::time::sleep(Duration::from_millis(100 * rng.below(10) as u64)).await;
            procs[i].start(run)?;
            eprintln!("soak: killed and restarted {}", procs[i].name);
        }
        kills += 1;
    }
    for job in cancel_next {
        cancel(&server, job).await;
    }

    // Every job ends; then every resource is destroyed, or held.
    let mut outcomes: Vec<Value> = Vec::new();
    loop {
        for proc in &mut procs {
            proc.check()?;
        }
        outcomes.clear();
        for j in &planned {
            let shown = server
                .ok(Method::GET, &format!("/0/jobs/{}", j.id), None)
                .await?;
            outcomes.push(shown);
        }
        let ended = outcomes.iter().filter(|o| o["state"] == "ended").count();
        if ended == planned.len() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut resources: Vec<Value>;
    loop {
        let listed = server.ok(Method::GET, "/0/admin/resources", None).await?;
        resources = listed.as_array().cloned().unwrap_or_default();
        if resources.iter().all(|r| r["state"] == "held") || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The verdicts.
    let ended = outcomes.iter().filter(|o| o["state"] == "ended").count();
    let mut problems: Vec<String> = Vec::new();
    let mut failed_by_kill = 0;
    for (j, shown) in planned.iter().zip(&outcomes) {
        let outcome = &shown["outcome"];
        if *outcome == json!({"failed": "worker_lost"}) {
            failed_by_kill += 1;
        } else if *outcome == json!({"failed": "resource"}) {
            if !j.types.contains(&FLAKY) {
                problems.push(format!(
                    "job {} failed for a resource without a chaos well: {shown}",
                    j.id
                ));
            }
        } else if outcome.get("failed").is_some_and(|f| f != "dependency")
            || *outcome == json!("timed_out")
        {
            problems.push(format!("job {} failed: {shown}", j.id));
        }
    }
    if failed_by_kill > agent_kills {
        problems.push(format!(
            "{failed_by_kill} jobs lost their worker, and only {agent_kills} agents were killed"
        ));
    }
    let mut leaked = 0;
    for r in &resources {
        if r["state"] != "held" || r["reason"].as_str().is_none_or(str::is_empty) {
            leaked += 1;
            eprintln!("soak: a resource is left: {r}");
        }
    }
    let workers_left = std::fs::read_dir(&workers_dir).map_or(0, |d| d.count());
    leaked += workers_left;
    if let Some(admin) = &p.postgres {
        let pool = sqlx::PgPool::connect(admin).await?;
        let (left,): (i64,) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM pg_roles WHERE rolname LIKE $1) \
             + (SELECT count(*) FROM pg_database WHERE datname LIKE $1)",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        leaked += usize::try_from(left).unwrap_or(usize::MAX);
    }
    for proc in &mut procs {
        proc.kill().await?;
    }
    server.stop().await?;
    let strays = crate::stack::kill_marked(&run.marker);
    leaked += strays;
    // The whole log, through the core and the model.
    let store = aquifer_server::store::Store::open(&database).await?;
    let history = store.history().await?;
    let replayed = aquifer_model::replay::replay(
        aquifer_core::Rules::production(),
        aquifer_core::Limits::default(),
        &history,
    );
    if let Err(d) = &replayed {
        problems.push(format!("the log leaves the model: {d}"));
    }
    if let Some(path) = &p.trace {
        let trace = aquifer_model::walk::Trace::of_history(
            format!("soak-{seed}"),
            aquifer_core::Rules::production(),
            aquifer_core::Limits::default(),
            &history,
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_vec(&trace)?)
            .with_context(|| format!("writing the trace to {}", path.display()))?;
        eprintln!(
            "soak: {} steps written to {}",
            history.len(),
            path.display()
        );
    }
    let violations = problems.len();
    for p in &problems {
        eprintln!("soak: {p}");
    }
    let passed = ended == planned.len() && leaked == 0 && problems.is_empty();
    if !passed {
        // The run's directory goes with the run: keep its logs to read.
        let kept = std::env::temp_dir().join(format!("aquifer-soak-{seed}"));
        let _ = std::fs::create_dir_all(&kept);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "log") {
                let _ = std::fs::copy(&path, kept.join(e.file_name()));
            }
        }
        eprintln!("soak: the logs are kept in {}", kept.display());
    }
    // How much of the chaos happened: the hangs are cut off by the well's
    // timeouts, so only its log tells them apart from other failures.
    let chaos_log = std::fs::read_to_string(dir.join("chaos.log")).unwrap_or_default();
    let count = |what: &str| chaos_log.lines().filter(|l| l.contains(what)).count();
    eprintln!(
        "soak: the chaos well hung {} creates and {} destroys",
        count("chaos: this create hangs"),
        count("chaos: this destroy hangs")
    );
    if workers_left > 0 || strays > 0 {
        eprintln!("soak: {workers_left} worker directories and {strays} processes were left");
    }
    eprintln!(
        "soak: {} inputs replayed; {:.0} s",
        replayed.map_or(0, |r| r.inputs),
        started.elapsed().as_secs_f64()
    );
    println!(
        "jobs={} ended={ended} kills={kills} failed_by_kill={failed_by_kill} leaked={leaked} violations={violations} seed={seed}",
        planned.len()
    );
    Ok(passed)
}
