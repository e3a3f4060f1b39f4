//! `aquifer job ...`: submit (from a TOML or JSON job file, with its
//! inputs), list, show, cancel, watch, explain, and its files (inputs
//! uploaded, outputs listed and copied).

use crate::client::{Client, Endpoint};
use crate::table::{cell, or_dash, render, tagged};
use anyhow::{Context, Result, bail};
use aquifer_protocol::Outgoing;
use aquifer_protocol::jobs::{
    JobFile, JobState, JobView, ListQuery, ListedJob, Outcome, Submitted, WatchQuery, Watched,
};
use aquifer_protocol::outputs::{OutputView, Sending};
use aquifer_protocol::story::Story;
use aquifer_protocol::user::{ChainLink, Explained, Queue};
use aquifer_protocol::{JobId, path};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum JobCommand {
    /// Submit a job file (TOML, or JSON if it ends in .json).
    Submit {
        file: PathBuf,
        /// Then follow the job until it ends; exit non-zero unless it
        /// succeeded.
        #[arg(long)]
        watch: bool,
        /// Upload an input the job file names, as NAME=PATH (again for
        /// each); the job acquires nothing until all are uploaded.
        #[arg(long = "input", value_parser = input_arg)]
        inputs: Vec<(String, PathBuf)>,
    },
    /// Upload (or resume uploading) inputs of a job submitted before.
    Upload {
        id: u32,
        /// NAME=PATH, one or more.
        #[arg(required = true, value_parser = input_arg)]
        inputs: Vec<(String, PathBuf)>,
    },
    /// List jobs, newest first.
    List {
        /// waiting (for dependencies), queued, acquiring,
        /// waiting_for_worker, running or ended.
        #[arg(long, value_parser = |s: &str| s.parse::<JobState>())]
        state: Option<JobState>,
        /// A user's name or id (another user's needs `admin.jobs`).
        #[arg(long)]
        owner: Option<String>,
        /// Only jobs submitted with this tag, as KEY=VALUE.
        #[arg(long, value_parser = tag_filter)]
        tag: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one job.
    Show { id: u32 },
    /// Cancel a job: it ends, and everything it holds is destroyed.
    Cancel { id: u32 },
    /// Follow a job's events until it ends (from the start, or after N).
    Watch {
        id: u32,
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Why a job waits: its acquisition order, what it holds, its place in
    /// each queue, who holds what it wants, who serves it.
    Explain { id: u32 },
    /// List what a job kept: its outputs' paths, sizes and SHA-256.
    Outputs { id: u32 },
    /// Copy one of a job's outputs (by its path as listed) to DEST, checked
    /// against its SHA-256.
    Copy {
        id: u32,
        path: String,
        dest: PathBuf,
    },
}

/// Reads a job file: TOML by default, JSON for `.json`.
pub fn read_job_file(path: &std::path::Path) -> Result<JobFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the job file {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    } else {
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid TOML job file", path.display()))
    }
}

pub async fn run(endpoint: &Endpoint, command: JobCommand) -> Result<ExitCode> {
    let client = Client::new(endpoint)?;
    let json_out = endpoint.json;
    match command {
        JobCommand::Submit {
            file,
            watch: follow,
            inputs,
        } => {
            let job = read_job_file(&file)?;
            let named: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
            if let Some(missing) = job.inputs.iter().find(|n| !named.contains(&n.as_str())) {
                bail!("the job file names input {missing:?}: give --input {missing}=PATH");
            }
            if let Some(stray) = named.iter().find(|n| !job.inputs.iter().any(|i| i == *n)) {
                bail!("the job file names no input {stray:?}");
            }
            let made = client.post::<Submitted, _>(path::JOBS, &job).await?;
            println!(
                "{}",
                made.show(json_out, |m| format!("submitted job {}", m.id.0))
            );
            upload(&client, made.body.id, &inputs).await?;
            if follow {
                return watch(&client, made.body.id, 0, json_out).await;
            }
        }
        JobCommand::List {
            state,
            owner,
            tag,
            limit,
        } => {
            let query = ListQuery {
                state,
                owner,
                tag,
                before: None,
                limit: Some(limit),
            };
            let jobs = client
                .get::<Vec<ListedJob>>(&path::jobs_listed(&query))
                .await?;
            println!("{}", jobs.show(json_out, |jobs| listing(jobs)));
        }
        JobCommand::Show { id } => {
            let job = client.get::<JobView>(&path::job(JobId(id))).await?;
            println!("{}", job.show(json_out, job_line));
        }
        JobCommand::Cancel { id } => {
            let cancel = path::job_cancel(JobId(id));
            let job = client.post_empty::<JobView>(&cancel).await?;
            println!("{}", job.show(json_out, job_line));
        }
        JobCommand::Watch { id, after } => return watch(&client, JobId(id), after, json_out).await,
        JobCommand::Outputs { id } => {
            let outputs = (client.get::<Vec<OutputView>>(&path::job_outputs(JobId(id)))).await?;
            println!(
                "{}",
                outputs.show(json_out, |o| {
                    let rows = (o.iter())
                        .map(|o| vec![o.path.clone(), o.size.to_string(), o.sha256.clone()])
                        .collect();
                    render(&["PATH", "SIZE", "SHA256"], rows)
                })
            );
        }
        JobCommand::Upload { id, inputs } => upload(&client, JobId(id), &inputs).await?,
        JobCommand::Copy {
            id,
            path: wanted,
            dest,
        } => {
            copy(&client, JobId(id), &wanted, &dest).await?;
        }
        JobCommand::Explain { id } => {
            let e = client
                .get::<Explained>(&path::job_explain(JobId(id)))
                .await?;
            if json_out {
                println!("{}", e.json);
            } else {
                print!("{}", explanation(&e.body));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `aquifer queue`: two tables, types then targets.
pub async fn queue(endpoint: &Endpoint) -> Result<ExitCode> {
    let client = Client::new(endpoint)?;
    let q = client.get::<Queue>(path::QUEUE).await?;
    println!("{}", q.show(endpoint.json, queue_tables));
    Ok(ExitCode::SUCCESS)
}

fn queue_tables(q: &Queue) -> String {
    fn row(name: &impl ToString, counts: &[u32]) -> Vec<String> {
        std::iter::once(name.to_string())
            .chain(counts.iter().map(ToString::to_string))
            .collect()
    }
    let types = (q.types.iter())
        .map(|(t, l)| {
            row(
                t,
                &[
                    l.queued,
                    l.creating,
                    l.ready,
                    l.releasing,
                    l.held,
                    l.capacity,
                ],
            )
        })
        .collect();
    let targets = (q.targets.iter())
        .map(|(t, l)| row(t, &[l.queued, l.workers, l.running, l.capacity]))
        .collect();
    let mut out = render(
        &[
            "TYPE",
            "QUEUED",
            "CREATING",
            "READY",
            "RELEASING",
            "HELD",
            "CAPACITY",
        ],
        types,
    );
    out.push('\n');
    out.push_str(&render(
        &["TARGET", "QUEUED", "WORKERS", "RUNNING", "CAPACITY"],
        targets,
    ));
    out
}

fn listing(jobs: &[ListedJob]) -> String {
    let rows = (jobs.iter())
        .map(|j| {
            vec![
                j.id.0.to_string(),
                j.name.clone(),
                j.owner_name.clone(),
                j.state.words(),
                tagged(&j.outcome),
            ]
        })
        .collect();
    render(&["ID", "NAME", "OWNER", "STATE", "OUTCOME"], rows)
}

/// `--tag KEY=VALUE`, checked for its `=`.
fn tag_filter(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn job_line(job: &JobView) -> String {
    let owner = if job.owner_name.is_empty() {
        format!("user {}", job.owner.0)
    } else {
        job.owner_name.clone()
    };
    let tags: Vec<String> = job.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!("; tagged {}", tags.join(", "))
    };
    format!(
        "job {} {:?} of {owner}: {}{}{}{tags}",
        job.id.0,
        job.name,
        job.state.words(),
        job.outcome.map_or_else(String::new, |o| format!(", {o}")),
        job.reason
            .as_ref()
            .map_or_else(String::new, |r| format!(" ({r})"))
    )
}

/// Follows a job's stream with long polls until it has ended. Exits 0 only
/// if it succeeded. With `--json`, each entry is printed as it came. On a
/// terminal, while the job waits, a last line shows where it waits (its
/// place in each queue), refreshed every few seconds and replaced by the
/// stream's next lines; elsewhere, only the stream's lines are written.
async fn watch(client: &Client, id: JobId, after: u64, json_out: bool) -> Result<ExitCode> {
    use std::io::{IsTerminal as _, Write as _};
    let live = !json_out && std::io::stdout().is_terminal();
    let mut query = WatchQuery {
        after,
        wait_ms: if live { PROGRESS_EVERY_MS } else { 25_000 },
        limit: None,
    };
    let mut start_ms = None;
    let mut story = Story::default();
    let mut shown = false;
    loop {
        let events = path::job_events(id, &query);
        let (next, ended) = if json_out {
            let page = client.get::<Watched<Value>>(&events).await?.body;
            for e in &page.events {
                println!("{e}");
            }
            (page.next, page.ended)
        } else {
            let page = client.get::<Watched>(&events).await?.body;
            story.learn(&page.names);
            if shown && !page.events.is_empty() {
                // The progress line gives way to the stream.
                print!("\r\x1b[2K");
                shown = false;
            }
            for e in &page.events {
                let start = *start_ms.get_or_insert(e.at_ms);
                let secs = (e.at_ms.saturating_sub(start)) as f64 / 1000.0;
                for line in story.tell(e).lines() {
                    println!("{secs:>8.1}s  {line}");
                }
            }
            (page.next, page.ended)
        };
        query.after = next;
        if ended {
            // Whatever arrived in the same commit as the end is in `events`
            // already; one more page picks up the rest of the clean-up.
            let job = client.get::<JobView>(&path::job(id)).await?.body;
            return Ok(if job.outcome == Some(Outcome::Succeeded) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        if live {
            let explained = client.get::<Explained>(&path::job_explain(id)).await?.body;
            if let Some(line) = progress(&explained) {
                print!("\r\x1b[2K{line}");
                shown = true;
            } else if shown {
                print!("\r\x1b[2K");
                shown = false;
            }
            std::io::stdout().flush()?;
        }
    }
}

/// How often `job watch` on a terminal refreshes where a job waits.
const PROGRESS_EVERY_MS: u64 = 3_000;

/// Where a waiting job waits, in one line: its place in each queue it is
/// in and what it waits for; `None` once it runs or has ended.
fn progress(e: &Explained) -> Option<String> {
    let x = e.explanation.as_ref()?;
    if !matches!(
        e.state,
        JobState::Waiting | JobState::Queued | JobState::Acquiring | JobState::WaitingForWorker
    ) {
        return None;
    }
    let mut places: Vec<String> = (x.groups.iter())
        .filter_map(|g| Some(format!("{} place {}", g.rtype, g.position?)))
        .collect();
    if let Some(place) = x.worker.position {
        places.push(format!("a worker for {} place {place}", x.worker.target));
    }
    let places = if places.is_empty() {
        String::new()
    } else {
        format!(" [{}]", places.join(", "))
    };
    Some(format!(
        "  … {}{places}: waiting for {}",
        e.state.words(),
        x.waiting_for
    ))
}

/// Copies output `wanted` of `job` to `dest` (a file, or a directory to
/// put it in), through a temporary file renamed once its SHA-256 agrees.
async fn copy(client: &Client, job: JobId, wanted: &str, dest: &std::path::Path) -> Result<()> {
    let outputs = (client.get::<Vec<OutputView>>(&path::job_outputs(job)))
        .await?
        .body;
    let Some(o) = outputs.iter().find(|o| o.path == wanted) else {
        let known: Vec<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
        anyhow::bail!(
            "job {} has no output {wanted:?}; it has: {}",
            job.0,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let dest = if dest.is_dir() {
        dest.join(wanted.rsplit('/').next().unwrap_or(wanted))
    } else {
        dest.to_path_buf()
    };
    let size = (client.inner())
        .receive_file(&path::job_output(job, o.output), &dest, Some(&o.sha256))
        .await
        .map_err(|why| anyhow::anyhow!("copying {wanted}: {why}; nothing was written"))?;
    eprintln!("{wanted} ({size} bytes) copied to {}", dest.display());
    Ok(())
}

/// Uploads the job's inputs: `NAME=PATH` each, resumed where the server
/// holds part of one already.
async fn upload(client: &Client, job: JobId, inputs: &[(String, PathBuf)]) -> Result<()> {
    for (name, file) in inputs {
        let out = Outgoing {
            name,
            file,
            growing: false,
        };
        (client.inner().send_file(Sending::Input(job), out).await)
            .map_err(|why| anyhow::anyhow!("job {}: {why}", job.0))?;
        eprintln!("input {name} uploaded from {}", file.display());
    }
    Ok(())
}

/// `NAME=PATH`.
fn input_arg(s: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = (s.split_once('=')).ok_or_else(|| format!("{s:?}: give NAME=PATH"))?;
    aquifer_protocol::outputs::input_name(name)?;
    Ok((name.to_string(), PathBuf::from(file)))
}

/// An explanation as a few readable lines.
fn explanation(e: &Explained) -> String {
    let mut out = format!(
        "job {} {:?}: {}{}\n",
        e.id.0,
        e.name,
        e.state.words(),
        e.outcome
            .map_or_else(String::new, |o| format!(" ({})", tagged(&o)))
    );
    let Some(x) = &e.explanation else {
        out.push_str("it has left the scheduler: everything it held is gone\n");
        return out;
    };
    out.push_str(&format!("waiting for: {}\n", x.waiting_for));
    if x.leases_held {
        out.push_str("an operator holds all new leases\n");
    }
    let rows = (x.groups.iter())
        .map(|g| {
            let holds: Vec<String> = (g.holds.iter())
                .map(|h| format!("#{} {}", h.resource.0, cell(&h.state)))
                .collect();
            let wells: Vec<String> = (g.wells.iter())
                .map(|w| {
                    let well = (e.names.wells.get(&w.well))
                        .map_or_else(|| w.well.0.to_string(), Clone::clone);
                    format!("well {well} ({}/{} free)", w.room, w.capacity)
                })
                .collect();
            let holders: Vec<String> = (g.holders.iter())
                .map(|(job, n)| format!("job {} ×{n}", job.0))
                .collect();
            vec![
                g.rtype.to_string(),
                g.count.to_string(),
                cell(&g.state).replace('_', " "),
                cell(&g.position),
                or_dash(&holds),
                or_dash(&holders),
                or_dash(&wells),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "TYPE",
            "COUNT",
            "STATE",
            "PLACE",
            "HOLDS",
            "OTHERS HOLDING",
            "WELLS",
        ],
        rows,
    ));
    out.push('\n');
    let w = &x.worker;
    let factories: Vec<String> = (w.factories.iter())
        .map(|(f, room)| {
            let factory = (e.names.factories.get(f)).map_or_else(|| f.0.to_string(), Clone::clone);
            format!("factory {factory} ({room} free)")
        })
        .collect();
    out.push_str(&format!(
        "worker for {}: {}{}; {}\n",
        w.target,
        cell(&w.state).replace('_', " "),
        w.position
            .map_or_else(String::new, |p| format!(", place {p}")),
        or_dash(&factories)
    ));
    out.push_str(&chain(&e.chain));
    out
}

/// The wait-for chain as an indented tree: each job under the one it
/// stands in the way of, saying how and what it waits for itself.
fn chain(links: &[ChainLink]) -> String {
    if links.len() < 2 {
        return String::new();
    }
    let mut out = String::from("\nthe whole chain:\n");
    for l in links {
        let indent = "  ".repeat(usize::from(l.depth) + 1);
        out.push_str(&format!("{indent}{}\n", l.sentence()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_says_where_a_waiting_job_waits_and_nothing_once_it_runs() {
        let mut e: Explained = serde_json::from_value(json!({
            "id": 5, "name": "waits", "state": "queued", "outcome": null,
            "explanation": {"job": 5, "phase": "acquiring", "deadline": 1,
              "waiting_for": "1 × license: place 2 in its queue, held by job 4",
              "depends_on": [], "leases_held": false,
              "groups": [{"rtype": "license", "count": 1, "state": "queued", "failures": 0,
                "holds": [], "position": 2, "ahead": [3], "holders": {"4": 1}, "wells": []}],
              "worker": {"target": "local", "state": "not_yet", "worker": null,
               "position": null, "ahead": [], "factories": {}}}}))
        .expect("an explanation");
        assert_eq!(
            progress(&e).as_deref(),
            Some(
                "  … queued [license place 2]: waiting for 1 × license: place 2 in its queue, held by job 4"
            )
        );
        e.state = JobState::WaitingForWorker;
        if let Some(x) = e.explanation.as_mut() {
            x.groups[0].position = None;
            x.worker.position = Some(1);
            x.waiting_for = "a worker for local: place 1 in its queue".into();
        }
        assert_eq!(
            progress(&e).as_deref(),
            Some(
                "  … waiting for a worker [a worker for local place 1]: waiting for a worker for local: place 1 in its queue"
            )
        );
        e.state = JobState::Running;
        assert_eq!(progress(&e), None);
        e.state = JobState::Queued;
        e.explanation = None;
        assert_eq!(progress(&e), None, "retired");
    }

    #[test]
    fn a_tag_filter_is_key_equals_value() {
        assert_eq!(tag_filter("repo=a/b=c"), Ok("repo=a/b=c".into()));
        assert_eq!(tag_filter("commit="), Ok("commit=".into()));
        assert!(tag_filter("repo").is_err());
        assert!(tag_filter("=x").is_err());
    }

    #[test]
    fn a_chain_reads_as_a_tree_of_who_waits_on_whom() {
        let links: Vec<ChainLink> = serde_json::from_value(json!([
            {"job": 4, "depth": 0, "phase": "acquiring", "waiting_for": "1 × a: place 1 in its queue, held by job 3"},
            {"job": 3, "depth": 1, "blocks": 4, "why": "holds 1 × a", "phase": "acquiring", "waiting_for": "a worker for t: place 1 in its queue"},
            {"job": 1, "depth": 2, "blocks": 3, "why": "holds a worker for t", "phase": "running", "waiting_for": "nothing: it is running"},
        ]))
        .expect("links");
        assert_eq!(
            chain(&links),
            "\nthe whole chain:\n  \
             job 4: waits for 1 × a: place 1 in its queue, held by job 3\n    \
             job 3 (holds 1 × a): waits for a worker for t: place 1 in its queue\n      \
             job 1 (holds a worker for t): it is running\n"
        );
        assert_eq!(chain(&links[..1]), "", "a job alone needs no chain");
    }

    #[test]
    fn a_toml_job_file_reads_as_the_json_the_api_takes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("job.toml");
        std::fs::write(
            &path,
            r#"
name = "integration"
target = "ubuntu-24.04"
timeout_s = 600

[[resources]]
name = "db"
type = "postgres"

[[tasks]]
name = "test"
script = "psql \"$(bmat resource get db url)\" -c 'select 1'"
env = { RUST_LOG = "debug" }
"#,
        )
        .expect("written");
        let v = serde_json::to_value(read_job_file(&path).expect("parsed")).expect("json");
        assert_eq!(v["resources"][0]["type"], "postgres");
        assert_eq!(v["resources"][0]["count"], 1);
        assert_eq!(v["tasks"][0]["env"]["RUST_LOG"], "debug");
        assert_eq!(v["timeout_s"], 600);
        std::fs::write(&path, "name = ").expect("written");
        let e = read_job_file(&path).expect_err("bad TOML");
        assert!(format!("{e:#}").contains("job.toml"), "{e:#}");
    }
}
