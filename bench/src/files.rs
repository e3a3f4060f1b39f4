//! What jobs' files cost: a large output sent by a real agent and read
//! back by a user, and a few small outputs, on the directory back end and
//! (with `--s3-url`) an S3-compatible bucket. Each figure is a difference
//! of two jobs run one after the other on one worker, the same but for
//! their output rules, so what the job does itself cancels out.

use crate::report::{Figures, percentile};
use crate::services::Services;
use crate::stack::{Run, Server, ServerSettings, job};
use anyhow::{Context, Result, bail};
use aquifer_protocol::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TARGET: &str = "files";

#[derive(clap::Args)]
pub struct Files {
    /// The large output's size, in MiB.
    #[arg(long, default_value_t = 100)]
    pub size_mib: u64,
    /// How many small (1 KiB) outputs the small job keeps.
    #[arg(long, default_value_t = 10)]
    pub small: u32,
    /// Runs of each measurement; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// An S3-compatible server to measure too (a bucket is made on it;
    /// credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    /// The aquifer binary must be built with S3 (`--features s3`).
    #[arg(long)]
    pub s3_url: Option<String>,
}

/// How a job ran: from its start to its end by the server's clock.
async fn run_job(server: &Server, body: &Value) -> Result<(u64, f64)> {
    let made: Value = server.api.post(aquifer_protocol::path::JOBS, body).await?;
    let id = made["id"].as_u64().context("no id")?;
    let patience = Instant::now();
    let (mut after, mut started) = (0u64, None);
    loop {
        // Long-polls for what is new: nothing is asked while the job runs.
        let page = server
            .ok(
                Method::GET,
                &format!("/0/jobs/{id}/events?after={after}&wait_ms=20000"),
                None,
            )
            .await?;
        for e in page["events"].as_array().into_iter().flatten() {
            let at = e["at_ms"].as_f64();
            match e["event"]["event"].as_str() {
                Some("job_started") => started = at,
                Some("job_ended") => {
                    let outcome = &e["event"]["outcome"];
                    if outcome != &json!("succeeded") {
                        bail!("job {id} did not succeed: {outcome}");
                    }
                    let (Some(s), Some(ended)) = (started, at) else {
                        bail!("job {id} ended without starting");
                    };
                    return Ok((id, ended - s));
                }
                _ => {}
            }
        }
        after = page["next"].as_u64().unwrap_or(after);
        if patience.elapsed() > Duration::from_secs(600) {
            bail!("job {id} did not end within 10 minutes");
        }
    }
}

fn with_rules(script: &str, rules: &[&str]) -> Value {
    let mut j = job(TARGET, &[], 1, script);
    if !rules.is_empty() {
        j["output_rules"] = json!(rules);
    }
    j
}

fn median(samples: &[f64]) -> f64 {
    percentile(samples, 0.5)
}

/// The figures of one back end, named `name`.
async fn measure(run: &Run, p: &Files, name: &str, extra: String, f: &mut Figures) -> Result<()> {
    let db = run.database(&format!("files-{name}")).await?;
    let objects = run.dir.path().join(format!("objects-{name}"));
    let settings = ServerSettings {
        extra: Some(format!("objects_dir = \"{}\"\n{extra}", objects.display())),
        ..ServerSettings::default()
    };
    let server = Server::start(run, &db, &settings).await?;
    server.define_target(TARGET).await?;
    let mut services = Services::default();
    services.local_factory(run, &server, TARGET, 1).await?;
    let bytes = p.size_mib * 1024 * 1024;
    let make_big = format!("head -c {bytes} /dev/urandom > big.bin");
    let make_small = format!(
        "mkdir out; for i in $(seq 1 {}); do head -c 1024 /dev/urandom > out/f$i; done",
        p.small
    );
    let mib = p.size_mib as f64;
    let (mut up, mut down, mut small) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..p.runs {
        let (_, plain) = run_job(&server, &with_rules(&make_big, &[])).await?;
        let (id, kept) = run_job(&server, &with_rules(&make_big, &["=big.bin"])).await?;
        let upload_ms = kept - plain;
        up.push(mib / (upload_ms / 1000.0));
        let dest = run.dir.path().join(format!("big-{name}-{i}.bin"));
        let path =
            aquifer_protocol::path::job_output(aquifer_protocol::JobId(u32::try_from(id)?), 1);
        let t0 = Instant::now();
        let got =
            (server.api.receive_file(&path, &dest, None).await).map_err(anyhow::Error::msg)?;
        let took = t0.elapsed().as_secs_f64();
        if got != bytes {
            bail!("read back {got} bytes of {bytes}");
        }
        std::fs::remove_file(&dest)?;
        down.push(mib / took);
        let (_, plain) = run_job(&server, &with_rules(&make_small, &[])).await?;
        let (_, kept) = run_job(&server, &with_rules(&make_small, &["out/*"])).await?;
        small.push(kept - plain);
        eprintln!(
            "  {name} run {}: upload {:.0} MiB/s, download {:.0} MiB/s, {} small outputs +{:.0} ms",
            i + 1,
            up[i],
            down[i],
            p.small,
            small[i]
        );
    }
    f.add_f(
        &format!("{name}_upload_mib_per_s"),
        &format!(
            "{name}: a {} MiB output sent by the agent (MiB/s, median)",
            p.size_mib
        ),
        median(&up),
    );
    f.add_f(
        &format!("{name}_download_mib_per_s"),
        &format!("{name}: read back through the API (MiB/s, median)"),
        median(&down),
    );
    f.add_f(
        &format!("{name}_small_outputs_added_ms"),
        &format!(
            "{name}: time {} small outputs add to a job's end (ms, median)",
            p.small
        ),
        median(&small),
    );
    services.stop().await?;
    server.stop().await
}

pub async fn files(run: &Run, p: &Files) -> Result<Figures> {
    let mut f = Figures::new("files");
    f.add("runs", "runs of each measurement", p.runs as u64);
    measure(run, p, "directory", String::new(), &mut f).await?;
    if let Some(url) = &p.s3_url {
        let bucket = format!("aquifer-bench-{}", std::process::id());
        let s3 = aquifer_protocol::Client::new(url, None)?;
        let (status, _) = (s3
            .exchange(Method::PUT, &format!("/{bucket}"), None::<&Value>)
            .await)
            .context("making the bucket")?;
        if !(200..300).contains(&status) {
            bail!("making bucket {bucket} on {url}: {status}");
        }
        let extra = format!(
            "[s3]\nbucket = \"{bucket}\"\nendpoint = \"{url}\"\nallow_http = {}\n",
            url.starts_with("http://")
        );
        measure(run, p, "s3", extra, &mut f).await?;
    }
    Ok(f)
}
