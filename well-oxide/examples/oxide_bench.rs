//! Create and destroy time per resource of the oxide well against the fake
//! Oxide API (loopback, no injected faults or delays), so the figures are
//! the well's own cost and its number of calls, not a rack's:
//!
//! ```text
//! cargo run -p aquifer-well-oxide --example oxide_bench -- [N] [project|silo] [seeded]
//! ```
//!
//! N resources (default 100) are created one after another, then
//! destroyed one after another; `seeded` fills each project with one of
//! everything a job might leave (instances, disks, VPCs, ...) first.

use anyhow::Context as _;
use aquifer_oxide_fake::FakeOxide;
use aquifer_well::{CreateRequest, Well};
use aquifer_well_oxide::{OxideConfig, OxideWell};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u32 = match args.first() {
        Some(a) => a.parse().context("N: a number of resources")?,
        None => 100,
    };
    let mode = args.get(1).map_or("project", String::as_str);
    let seeded = args.iter().any(|a| a == "seeded");

    let fake = FakeOxide::start().await?;
    // Nexus's default page size, so that listing costs what it would.
    fake.set_page_size(100);
    fake.set_stop_polls(1);
    let (token, extra) = match mode {
        "project" => (fake.silo_admin_token("ci"), "mode = \"project\""),
        "silo" => (
            fake.fleet_admin_token(),
            "mode = \"silo\"\n[quotas]\ncpus = 4\nmemory_gib = 8\nstorage_gib = 64",
        ),
        other => anyhow::bail!("mode {other:?}: use project or silo"),
    };
    let text = format!(
        "rtype = \"oxide\"\nhost = \"{}\"\ntoken = \"{token}\"\n{extra}\n",
        fake.url()
    );
    let config: OxideConfig = toml::from_str(&text)?;
    let well = OxideWell::new(config)?;
    let deadline_ms =
        u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())? + 3_600_000;

    let mut creates = Vec::new();
    let calls_before = fake.calls();
    for resource in 1..=n {
        let req = CreateRequest {
            resource,
            rtype: "oxide".into(),
            job: resource,
            deadline_ms,
        };
        let t = Instant::now();
        well.create(&req)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        creates.push(t.elapsed());
        if seeded {
            fake.seed(&format!("aq-{resource}"));
        }
    }
    let create_calls = fake.calls() - calls_before;

    let mut destroys = Vec::new();
    let calls_before = fake.calls();
    for resource in 1..=n {
        let t = Instant::now();
        well.destroy(resource, "oxide")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        destroys.push(t.elapsed());
    }
    let destroy_calls = fake.calls() - calls_before;
    let left = fake.remains("aq-");
    anyhow::ensure!(left.is_empty(), "left behind: {left:?}");

    println!(
        "oxide well, {mode} mode, {n} resources{}, against the fake",
        if seeded { " (seeded)" } else { "" }
    );
    report("create", &mut creates, create_calls, n);
    report("destroy", &mut destroys, destroy_calls, n);
    Ok(())
}

fn report(what: &str, times: &mut [Duration], calls: u64, n: u32) {
    times.sort_unstable();
    let at = |p: usize| {
        // The nearest-rank percentile.
        let rank = (p * times.len()).div_ceil(100).max(1);
        times[rank - 1]
    };
    println!(
        "{what:>8}: p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms   {:.1} calls each",
        ms(at(50)),
        ms(at(99)),
        ms(times[times.len() - 1]),
        calls as f64 / f64::from(n),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
