//! `aquifer job ...`: submit (from a TOML or JSON job file), list, show,
//! cancel, watch and explain.

use crate::client::{Client, Endpoint};
use crate::table::{cell, render};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum JobCommand {
    /// Submit a job file (TOML, or JSON if it ends in .json).
    Submit {
        file: PathBuf,
        /// Then follow the job until it ends; exit non-zero unless it
        /// succeeded.
        #[arg(long)]
        watch: bool,
    },
    /// List jobs, newest first.
    List {
        /// waiting, acquiring, running or ended.
        #[arg(long)]
        state: Option<String>,
        /// A user's name or id (another user's needs `admin.jobs`).
        #[arg(long)]
        owner: Option<String>,
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
}

/// Reads a job file: TOML by default, JSON for `.json`.
pub fn read_job_file(path: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the job file {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    } else {
        let value: toml::Value = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid TOML job file", path.display()))?;
        serde_json::to_value(value).context("converting the job file")
    }
}

pub async fn run(endpoint: &Endpoint, command: JobCommand) -> Result<std::process::ExitCode> {
    let client = Client::new(endpoint)?;
    let json_out = endpoint.json;
    match command {
        JobCommand::Submit {
            file,
            watch: follow,
        } => {
            let body = read_job_file(&file)?;
            let made = client.post("/0/jobs", Some(body)).await?;
            let id = u32::try_from(made["id"].as_u64().unwrap_or(0)).unwrap_or(0);
            if json_out {
                println!("{made}");
            } else {
                println!("submitted job {id}");
            }
            if follow {
                return watch(&client, id, 0, json_out).await;
            }
        }
        JobCommand::List {
            state,
            owner,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(state.map(|s| ("state", s)));
            query.extend(owner.map(|o| ("owner", o)));
            let query: Vec<String> = query
                .into_iter()
                .map(|(k, v)| format!("{k}={}", encode(&v)))
                .collect();
            let jobs = client.get(&format!("/0/jobs?{}", query.join("&"))).await?;
            if json_out {
                println!("{jobs}");
            } else {
                let rows = (jobs.as_array().into_iter().flatten())
                    .map(|j| {
                        vec![
                            cell(&j["id"]),
                            cell(&j["name"]),
                            cell(&j["owner_name"]),
                            cell(&j["state"]),
                            outcome(&j["outcome"]),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    render(&["ID", "NAME", "OWNER", "STATE", "OUTCOME"], rows)
                );
            }
        }
        JobCommand::Show { id } => {
            let job = client.get(&format!("/0/jobs/{id}")).await?;
            print_job(&job, json_out);
        }
        JobCommand::Cancel { id } => {
            let job = client.post(&format!("/0/jobs/{id}/cancel"), None).await?;
            print_job(&job, json_out);
        }
        JobCommand::Watch { id, after } => return watch(&client, id, after, json_out).await,
        JobCommand::Explain { id } => {
            let e = client.get(&format!("/0/jobs/{id}/explain")).await?;
            if json_out {
                println!("{e}");
            } else {
                print!("{}", explanation(&e));
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Percent-encodes a query value (names are plain; be safe anyway).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn outcome(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn print_job(job: &Value, json_out: bool) {
    if json_out {
        println!("{job}");
    } else {
        println!(
            "job {} {:?} (owner {}): {}{}",
            cell(&job["id"]),
            cell(&job["name"]),
            cell(&job["owner"]),
            cell(&job["state"]),
            match &job["outcome"] {
                Value::Null => String::new(),
                o => format!(", {}", outcome(o)),
            }
        );
    }
}

/// Follows a job's stream with long polls until it has ended. Exits 0 only
/// if it succeeded.
async fn watch(
    client: &Client,
    id: u32,
    after: u64,
    json_out: bool,
) -> Result<std::process::ExitCode> {
    let mut after = after;
    let mut start_ms = None;
    loop {
        let page = client
            .get(&format!("/0/jobs/{id}/events?after={after}&wait_ms=25000"))
            .await?;
        for e in page["events"].as_array().into_iter().flatten() {
            if json_out {
                println!("{e}");
            } else {
                let at = e["at_ms"].as_u64().unwrap_or(0);
                let start = *start_ms.get_or_insert(at);
                let secs = (at.saturating_sub(start)) as f64 / 1000.0;
                for line in describe(&e["event"]).lines() {
                    println!("{secs:>8.1}s  {line}");
                }
            }
        }
        after = page["next"].as_u64().unwrap_or(after);
        if page["ended"] == json!(true) {
            // Whatever arrived in the same commit as the end is in `events`
            // already; one more page picks up the rest of the clean-up.
            let job = client.get(&format!("/0/jobs/{id}")).await?;
            return Ok(if job["outcome"] == json!("succeeded") {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            });
        }
    }
}

/// One event as a line a person reads.
pub(crate) fn describe(e: &Value) -> String {
    let kind = e["event"].as_str().unwrap_or("?");
    let field = |k: &str| cell(&e[k]);
    match kind {
        "job_submitted" => format!(
            "submitted for {}, deadline at {} ms",
            field("target"),
            field("deadline")
        ),
        "dependency_settled" => format!("dependency job {} has ended", field("dependency")),
        "acquisition_began" => "acquiring resources".into(),
        "group_queued" => format!("group {} queued", field("group")),
        "lease_granted" => format!(
            "well {} creates {} × {} (lease {})",
            field("well"),
            e["resources"].as_array().map_or(0, Vec::len),
            field("rtype"),
            field("lease")
        ),
        "resource_ready" => format!("resource #{} ready", field("resource")),
        "lease_fulfilled" => format!("lease {} fulfilled", field("lease")),
        "lease_ended" => format!("lease {} ended: {}", field("lease"), outcome(&e["cause"])),
        "group_ready" => format!("group {} ready", field("group")),
        "worker_queued" => "waiting for a worker".into(),
        "worker_leased" => format!(
            "factory {} makes worker {}",
            field("factory"),
            field("worker")
        ),
        "job_started" => "started".into(),
        "job_ended" => format!("ended: {}", outcome(&e["outcome"])),
        "output" => {
            let prefix = format!("[{} {}]", field("task"), field("stream"));
            (field("text").trim_end().lines())
                .map(|l| format!("{prefix} {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => {
            let mut rest = e.clone();
            if let Some(m) = rest.as_object_mut() {
                m.remove("event");
            }
            format!("{} {}", kind.replace('_', " "), rest)
        }
    }
}

/// An explanation as a few readable lines.
fn explanation(e: &Value) -> String {
    let mut out = format!(
        "job {} {:?}: {}{}\n",
        cell(&e["id"]),
        cell(&e["name"]),
        cell(&e["state"]),
        match &e["outcome"] {
            Value::Null => String::new(),
            o => format!(" ({})", outcome(o)),
        }
    );
    let x = &e["explanation"];
    if x.is_null() {
        out.push_str("it has left the scheduler: everything it held is gone\n");
        return out;
    }
    out.push_str(&format!("waiting for: {}\n", cell(&x["waiting_for"])));
    if x["leases_held"] == json!(true) {
        out.push_str("an operator holds all new leases\n");
    }
    let rows = (x["groups"].as_array().into_iter().flatten())
        .map(|g| {
            let holds: Vec<String> = (g["holds"].as_array().into_iter().flatten())
                .map(|h| format!("#{} {}", cell(&h["resource"]), cell(&h["state"])))
                .collect();
            let wells: Vec<String> = (g["wells"].as_array().into_iter().flatten())
                .map(|w| {
                    format!(
                        "well {} ({}/{} free)",
                        cell(&w["well"]),
                        cell(&w["room"]),
                        cell(&w["capacity"])
                    )
                })
                .collect();
            let holders: Vec<String> = (g["holders"].as_object().into_iter().flatten())
                .map(|(job, n)| format!("job {job} ×{n}"))
                .collect();
            vec![
                cell(&g["rtype"]),
                cell(&g["count"]),
                cell(&g["state"]),
                cell(&g["position"]),
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
    let w = &x["worker"];
    let factories: Vec<String> = (w["factories"].as_object().into_iter().flatten())
        .map(|(f, room)| format!("factory {f} ({room} free)"))
        .collect();
    out.push_str(&format!(
        "worker for {}: {}{}; {}\n",
        cell(&w["target"]),
        cell(&w["state"]),
        match &w["position"] {
            Value::Null => String::new(),
            p => format!(", place {p}"),
        },
        or_dash(&factories)
    ));
    out
}

fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = read_job_file(&path).expect("parsed");
        assert_eq!(v["resources"][0]["type"], "postgres");
        assert_eq!(v["tasks"][0]["env"]["RUST_LOG"], "debug");
        assert_eq!(v["timeout_s"], 600);
        std::fs::write(&path, "name = ").expect("written");
        let e = read_job_file(&path).expect_err("bad TOML");
        assert!(format!("{e:#}").contains("job.toml"), "{e:#}");
    }

    #[test]
    fn events_read_as_sentences() {
        let e = json!({"event": "lease_granted", "well": 2, "rtype": "pg", "resources": [4, 5], "lease": 9});
        assert_eq!(describe(&e), "well 2 creates 2 × pg (lease 9)");
        let e = json!({"event": "job_ended", "outcome": {"failed": "tasks"}});
        assert_eq!(describe(&e), "ended: failed: tasks");
    }
}
