//! `aquifer demo`: the embedded stack in a temporary directory, the jobs of
//! `examples/` submitted and followed, and a check that everything
//! happened as it should: the two-resource job succeeded and printed what
//! `bmat` read, the failing job failed with its reason, the waiting job
//! was cancelled while it waited, the building job's output reached the
//! job that depends on it byte for byte, and every resource and worker is
//! gone. Exits 0 only then.
//!
//! `aquifer dev`: the same stack in a data directory that persists, kept
//! running for a person to use.

use crate::client::Client;
use crate::stack::Stack;
use anyhow::{Context, Result, bail};
use aquifer_protocol::admin::ResourceView;
use aquifer_protocol::jobs::{
    Dependency, Event, Failure, JobFile, JobState, JobView, Note, Outcome, StreamEvent, Submitted,
    WatchQuery, Watched,
};
use aquifer_protocol::outputs::OutputView;
use aquifer_protocol::story::Story;
use aquifer_protocol::user::{Explained, GroupState};
use aquifer_protocol::{JobId, path};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The jobs, as `examples/` has them (built in, so the demo runs from any
/// directory).
const JOBS: [(&str, &str); 5] = [
    (
        "probe-and-license",
        include_str!("../../examples/probe-and-license.toml"),
    ),
    ("fails", include_str!("../../examples/fails.toml")),
    ("waits", include_str!("../../examples/waits.toml")),
    ("builds", include_str!("../../examples/builds.toml")),
    // Depends on `builds`: its id is put in at submission.
    ("consumes", include_str!("../../examples/consumes.toml")),
];

/// The most any step of the demo may take.
const PATIENCE: Duration = Duration::from_secs(120);

pub async fn demo() -> Result<ExitCode> {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("aquifer-demo-").tempdir()?;
    println!(
        "aquifer demo: a server, two slot wells (probes, licences) and the local factory in {}",
        dir.path().display()
    );
    let stack = Stack::start(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    println!("server at {}", stack.url);
    let outcome = tokio::time::timeout(PATIENCE * 3, run(&stack)).await;
    let workers_dir = stack.workers_dir();
    let stopped = stack.stop().await;
    let secs = started.elapsed().as_secs_f64();
    let checks = match outcome {
        Ok(Ok(checks)) => checks,
        Ok(Err(e)) => {
            println!("\nthe demo failed: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
        Err(_) => {
            println!(
                "\nthe demo did not finish within {} s",
                (PATIENCE * 3).as_secs()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut ok = true;
    println!("\nsummary");
    let leftover = std::fs::read_dir(&workers_dir).map_or(0, Iterator::count);
    for (what, passed) in checks.into_iter().chain([
        ("every worker directory is gone".to_string(), leftover == 0),
        (
            "the wells and the factory stopped cleanly".to_string(),
            stopped.is_ok(),
        ),
    ]) {
        ok &= passed;
        println!("  {} {what}", if passed { "ok  " } else { "FAIL" });
    }
    if let Err(e) = stopped {
        println!("  ({e:#})");
    }
    println!(
        "demo {} in {secs:.1} s",
        if ok { "passed" } else { "FAILED" }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Submits and follows the jobs; returns each check with whether it held.
async fn run(stack: &Stack) -> Result<Vec<(String, bool)>> {
    let c = stack.client()?;
    let mut ids = Vec::new();
    for (name, toml_text) in JOBS {
        let mut job: JobFile =
            toml::from_str(toml_text).with_context(|| format!("examples/{name}.toml"))?;
        if name == "consumes"
            && let (Some((_, built)), Some(Dependency::Full(d))) =
                (ids.last(), job.depends_on.first_mut())
        {
            d.job = *built;
        }
        let made = c
            .post::<Submitted, _>(path::JOBS, &job)
            .await
            .with_context(|| format!("submitting {name}"))?;
        let id = made.body.id;
        println!("submitted {name} as job {}", id.0);
        ids.push((name, id));
    }
    let followers: Vec<_> = ids
        .iter()
        .map(|&(name, id)| {
            let c = stack.client();
            tokio::spawn(async move { follow(&c?, name, id).await })
        })
        .collect();

    // `waits` wants the licence that `probe-and-license` holds: once the
    // scheduler says so, cancel it.
    let (_, first) = ids[0];
    let (_, waiting) = ids[2];
    let why = tokio::time::timeout(PATIENCE, async {
        loop {
            let e = c.get::<Explained>(&path::job_explain(waiting)).await?;
            let explanation = e.body.explanation.as_ref();
            let group = explanation.and_then(|x| x.groups.first());
            if let Some(g) = group
                && g.state == GroupState::Queued
                && g.holders.contains_key(&first)
            {
                return Ok::<_, anyhow::Error>(explanation.map(|x| x.waiting_for.clone()));
            }
            if e.body.state == JobState::Ended {
                bail!("waits ended before it was seen waiting: {}", e.json);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .context("waits was never seen waiting for the licence")??;
    println!(
        "job {} (waits) is waiting for {}; cancelling it",
        waiting.0,
        why.as_deref().unwrap_or("?")
    );
    (c.post_empty::<JobView>(&path::job_cancel(waiting))).await?;

    let mut ended = Vec::new();
    for f in followers {
        ended.push(f.await??);
    }
    let output = output_of(&c, first).await?;
    let (_, built) = ids[3];
    let (_, consumer) = ids[4];
    let expected = format!("built by job {}\n", built.0);
    let kept = output_bytes(&c, built, "out/greeting.txt").await?;
    let received = output_bytes(&c, consumer, "received.txt").await?;
    let resources = c.get::<Vec<ResourceView>>(path::ADMIN_RESOURCES).await?;
    Ok(vec![
        (
            "probe-and-license succeeded".into(),
            ended[0].outcome == Some(Outcome::Succeeded),
        ),
        (
            "it read its probe and licence with bmat".into(),
            output.contains("the probe is probe-") && output.contains("license key: LIC-"),
        ),
        (
            "fails failed in its second task, with the reason".into(),
            ended[1].outcome == Some(Outcome::Failed(Failure::Tasks))
                && (ended[1].reason.as_ref()).is_some_and(|r| r.contains("broken")),
        ),
        (
            "waits was cancelled while it waited".into(),
            ended[2].outcome == Some(Outcome::Cancelled),
        ),
        (
            "builds kept its output, and consumes got it through copy_outputs".into(),
            ended[3].outcome == Some(Outcome::Succeeded)
                && ended[4].outcome == Some(Outcome::Succeeded),
        ),
        (
            format!(
                "the bytes consumes kept are what builds made ({} bytes, {expected:?})",
                expected.len()
            ),
            kept.as_deref() == Some(expected.as_bytes())
                && received.as_deref() == Some(expected.as_bytes()),
        ),
        (
            "every resource is destroyed".into(),
            resources.body.is_empty(),
        ),
    ])
}

/// Prints a job's events until it has retired (ended, and everything it
/// held confirmed gone); returns the job.
async fn follow(c: &Client, name: &str, id: JobId) -> Result<JobView> {
    let mut query = WatchQuery {
        after: 0,
        wait_ms: 20_000,
        limit: None,
    };
    let mut story = Story::default();
    loop {
        let page = tokio::time::timeout(PATIENCE, c.get::<Watched>(&path::job_events(id, &query)))
            .await
            .with_context(|| format!("job {} ({name}) stalled", id.0))??
            .body;
        story.learn(&page.names);
        for e in &page.events {
            for line in story.tell(e).lines() {
                println!("  [{name}] {line}");
            }
            if let StreamEvent::Scheduled(Event::JobRetired { .. }) = e.event {
                return Ok(c.get::<JobView>(&path::job(id)).await?.body);
            }
        }
        query.after = page.next;
    }
}

/// The bytes of a job's output `wanted`, fetched through the API into a
/// temporary file and checked against its SHA-256; `None` if the job kept
/// no such output.
async fn output_bytes(c: &Client, job: JobId, wanted: &str) -> Result<Option<Vec<u8>>> {
    let listed = c
        .get::<Vec<OutputView>>(&path::job_outputs(job))
        .await?
        .body;
    let Some(o) = listed.iter().find(|o| o.path == wanted) else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("output");
    (c.inner())
        .receive_file(&path::job_output(job, o.output), &dest, Some(&o.sha256))
        .await
        .map_err(|why| anyhow::anyhow!("reading {wanted} of job {}: {why}", job.0))?;
    Ok(Some(std::fs::read(&dest)?))
}

async fn output_of(c: &Client, id: JobId) -> Result<String> {
    let everything = WatchQuery::default();
    let page = c.get::<Watched>(&path::job_events(id, &everything)).await?;
    Ok((page.body.events.iter())
        .filter_map(|e| match &e.event {
            StreamEvent::Noted(Note::Output { text, .. }) => Some(text.as_str()),
            _ => None,
        })
        .collect())
}

/// `aquifer dev`: the stack in `dir`, until Ctrl-C.
pub async fn dev(dir: PathBuf, listen: SocketAddr) -> Result<ExitCode> {
    let mut stack = Stack::start(&dir, listen).await?;
    println!("aquifer dev: data in {}", stack.dir.display());
    println!("server:      {}", stack.url);
    println!("dashboard:   {}/ (sign in with the admin token)", stack.url);
    println!("admin token: {}", stack.token);
    println!(
        "wells:       probes (2 × probe), licenses (1 × license); factory: local (2 workers of target local)"
    );
    println!(
        "try:\n  export AQUIFER_URL={} AQUIFER_TOKEN={}",
        stack.url, stack.token
    );
    println!("  aquifer job submit examples/probe-and-license.toml --watch");
    let outcome = tokio::select! {
        () = crate::server::shutdown_signal() => Ok(ExitCode::SUCCESS),
        failed = stack.failed_service() => failed.map(|()| ExitCode::FAILURE),
    };
    println!("stopping (finishing the work under way)");
    stack.stop().await?;
    outcome
}
