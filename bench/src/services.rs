//! The wells and factories a scenario runs beside the server: the null
//! ones as tasks of this process on their SDKs' runners, the local
//! factory as the real `aquifer factory local` process.

use crate::null::{Log, NullFactory, NullWell};
use crate::stack::{Run, Server, tail, terminate};
use anyhow::{Context, Result, bail};
use aquifer_protocol::Method;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a service is given to learn that it must stop.
type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The services of a scenario; `stop` ends them all.
#[derive(Default)]
pub struct Services {
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<Result<()>>>,
    children: Vec<(Child, PathBuf)>,
    factories: Vec<NullFactory>,
}

impl Services {
    /// Registers a null well with `pools` and runs it.
    pub async fn null_well(
        &mut self,
        server: &Server,
        log: &Arc<Log>,
        pools: &[(String, u32)],
    ) -> Result<()> {
        let token = server.register_well("null", pools).await?;
        let capacity = pools.iter().cloned().collect();
        let config = aquifer_well::RunnerConfig::new(&server.url, &token, capacity);
        let well = Arc::new(NullWell::new(log.clone()));
        self.spawn(|stopped| async move {
            (aquifer_well::run(well, config, stopped).await).context("the null well")
        });
        Ok(())
    }

    /// Registers a null factory for `target` and runs it.
    pub async fn null_factory(
        &mut self,
        server: &Server,
        log: &Arc<Log>,
        target: &str,
        workers: u16,
    ) -> Result<()> {
        let token = server.register_factory("null", target, workers).await?;
        let targets = [(target.to_string(), workers)].into_iter().collect();
        let config = aquifer_factory::RunnerConfig::new(&server.url, &token, targets);
        let factory = NullFactory::new(log.clone());
        self.factories.push(factory.clone());
        self.spawn(|stopped| async move {
            (aquifer_factory::run(factory, config, stopped).await).context("the null factory")
        });
        Ok(())
    }

    /// Runs a service on a task of its own until `stop`.
    fn spawn<F>(&mut self, service: impl FnOnce(BoxFuture) -> F)
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        self.stops.push(stop);
        let stopped: BoxFuture = Box::pin(async move {
            let _ = stopped.await;
        });
        self.tasks.push(tokio::spawn(service(stopped)));
    }

    /// Registers a local factory for `target` and starts it as a process
    /// of its own (`aquifer factory local`).
    pub async fn local_factory(
        &mut self,
        run: &Run,
        server: &Server,
        target: &str,
        workers: u16,
    ) -> Result<()> {
        let token = server.register_factory("local", target, workers).await?;
        let dir = run.dir.path().join("factory");
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("factory.toml");
        std::fs::write(
            &config,
            format!(
                "url = \"{}\"\ntoken = \"{token}\"\ndata_dir = \"{}\"\n[targets]\n{target} = {workers}\n[agent_env]\n{} = \"{}\"\n",
                server.url,
                dir.display(),
                crate::stack::MARKER,
                run.marker
            ),
        )?;
        let log = dir.join("factory.log");
        let config = config.display().to_string();
        let mut c = run.aquifer(&["factory", "local", "--config", &config]);
        c.stdout(Stdio::null()).stderr(std::fs::File::create(&log)?);
        let child = c.spawn().context("starting the local factory")?;
        self.children.push((child, log));
        Ok(())
    }

    /// Fails if a service has stopped by itself.
    pub fn check(&mut self) -> Result<()> {
        for (child, log) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("a service stopped ({status}); its log:\n{}", tail(log));
            }
        }
        if self.tasks.iter().any(JoinHandle::is_finished) {
            bail!("a null service stopped by itself");
        }
        Ok(())
    }

    /// Stops every service and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for f in self.factories.drain(..) {
            f.stop_agents();
        }
        for (child, _) in self.children.drain(..) {
            terminate(child, Duration::from_secs(30)).await?;
        }
        for task in self.tasks.drain(..) {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => eprintln!("{e:#}"),
                Ok(Err(e)) => eprintln!("a null service panicked: {e}"),
                Err(_) => eprintln!("a null service did not stop within 30 s"),
            }
        }
        Ok(())
    }
}

/// Waits until `done` holds while the log's progress keeps moving; with
/// no progress for `stall`, gives up and says how far it got.
pub async fn until(
    log: &Log,
    services: &mut Services,
    stall: Duration,
    what: &str,
    done: impl Fn() -> bool,
    how_far: impl Fn() -> String,
) -> Result<()> {
    let mut seen = log.progress.load(Ordering::SeqCst);
    let (began, mut moved, mut said) = (Instant::now(), Instant::now(), Instant::now());
    loop {
        let changed = log.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if done() {
            return Ok(());
        }
        services.check()?;
        if said.elapsed() >= Duration::from_secs(5) {
            eprintln!("  {:.0} s: {}", began.elapsed().as_secs_f64(), how_far());
            said = Instant::now();
        }
        let now = log.progress.load(Ordering::SeqCst);
        if now != seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() >= stall {
            bail!(
                "stalled: no progress for {} s while {what}; {}",
                stall.as_secs(),
                how_far()
            );
        }
        // Woken by the next act, or once a second to look at the services.
        let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
    }
}

/// Milliseconds since the Unix epoch, as the server stamps its events.
pub fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// One submission: the job's id, when it was sent (wall clock, ms) and how
/// long the answer took.
#[derive(Clone, Copy, Debug)]
pub struct Submitted {
    pub job: u64,
    pub sent_ms: f64,
    pub latency: Duration,
}

/// Submits `count` copies of `job` from `clients` concurrent clients;
/// prints progress every tenth.
pub async fn submit_all(
    server: &Server,
    job: &Value,
    count: usize,
    clients: usize,
    label: &str,
) -> Result<Vec<Submitted>> {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tenth = (count / 10).max(1);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (api, job, done) = (server.api.clone(), job.clone(), done.clone());
            let label = label.to_string();
            let n = count / clients + usize::from(c < count % clients);
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(submit(&api, &job).await?);
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if d % tenth == 0 && count >= 1000 {
                        eprintln!("  {label}: {d} of {count} submitted");
                    }
                }
                Ok::<_, anyhow::Error>(out)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Submits one job.
pub async fn submit(api: &aquifer_protocol::Client, job: &Value) -> Result<Submitted> {
    let sent_ms = wall_ms();
    let t0 = Instant::now();
    let made: Value = (api.post(aquifer_protocol::path::JOBS, job).await).context("submitting")?;
    let latency = t0.elapsed();
    let job = made["id"].as_u64().context("no id in the answer")?;
    Ok(Submitted {
        job,
        sent_ms,
        latency,
    })
}

/// What a job's stream says: when it started (server's clock, ms) and how
/// it ended.
pub struct Story {
    pub started_ms: Option<f64>,
    pub outcome: Option<Value>,
    /// When its worker was asked for: every resource ready.
    pub ready_ms: Option<f64>,
    pub ended_ms: Option<f64>,
    /// When its last resource's destruction was confirmed.
    pub destroyed_ms: Option<f64>,
}

/// Reads the streams of `jobs` with `clients` concurrent clients.
pub async fn stories(server: &Server, jobs: &[u64], clients: usize) -> Result<Vec<Story>> {
    let chunks: Vec<Vec<u64>> = jobs
        .chunks(jobs.len().div_ceil(clients).max(1))
        .map(<[u64]>::to_vec)
        .collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let api = server.api.clone();
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(chunk.len());
                for job in chunk {
                    let (status, page) = api
                        .exchange(
                            Method::GET,
                            &format!("/0/jobs/{job}/events"),
                            None::<&Value>,
                        )
                        .await?;
                    if status != 200 {
                        bail!("job {job}'s events: {status} {page}");
                    }
                    let mut story = Story {
                        started_ms: None,
                        outcome: None,
                        ready_ms: None,
                        ended_ms: None,
                        destroyed_ms: None,
                    };
                    for e in page["events"].as_array().into_iter().flatten() {
                        let at = e["at_ms"].as_f64();
                        match e["event"]["event"].as_str() {
                            Some("worker_queued") => story.ready_ms = at,
                            Some("job_started") => story.started_ms = at,
                            Some("job_ended") => {
                                story.ended_ms = at;
                                story.outcome = Some(e["event"]["outcome"].clone());
                            }
                            Some("resource_destroyed") => story.destroyed_ms = at,
                            _ => {}
                        }
                    }
                    out.push(story);
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(jobs.len());
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}
