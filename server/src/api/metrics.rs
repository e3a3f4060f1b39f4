//! `GET /metrics`: the scheduler's queues and holdings (the core's
//! `explain::load`) and the driver's batches and commits, in Prometheus's
//! text format (version 0.0.4). Users and admins may read it; give
//! Prometheus a user's token (`authorization` in its scrape config).

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use crate::driver::{BATCH_BUCKETS, COMMIT_BUCKETS_US, Histogram};
use aquifer_core::explain::{Load, load};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

/// The content type Prometheus expects of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn answer(api: &Api, caller: &Caller) -> Result<Response, ApiError> {
    if !matches!(caller.principal, Principal::User(_) | Principal::Admin) {
        return Err(ApiError::forbidden(
            "only users and admins read the metrics",
        ));
    }
    let l = api.handle.read(load).await?;
    let mut text = String::new();
    scheduler(&mut text, &l);
    driver(&mut text, api);
    let mut response = warp::reply::with_status(text, StatusCode::OK).into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(response)
}

/// A label value as the text format writes it.
fn quoted(v: &str) -> String {
    let escaped = v
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One gauge with one label, a sample per (label value, value).
fn gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'a str, u64)>,
) {
    head(out, name, "gauge", help);
    for (v, n) in samples {
        let _ = writeln!(out, "{name}{{{label}={}}} {n}", quoted(v));
    }
}

fn scheduler(out: &mut String, l: &Load) {
    let jobs = l.jobs.iter().map(|(p, &n)| (p.as_str(), u64::from(n)));
    gauge(
        out,
        "aquifer_jobs",
        "Jobs in the scheduler's books, by phase.",
        "phase",
        jobs,
    );
    head(out, "aquifer_leases", "gauge", "Leases out to wells.");
    let _ = writeln!(out, "aquifer_leases {}", l.leases);
    head(
        out,
        "aquifer_leases_held",
        "gauge",
        "1 while an operator holds new leases.",
    );
    let _ = writeln!(out, "aquifer_leases_held {}", u8::from(l.leases_held));
    let types = || l.types.iter().map(|(t, x)| (t.as_str(), x));
    gauge(
        out,
        "aquifer_type_queued",
        "Groups of the type waiting in its queue for a lease.",
        "type",
        types().map(|(t, x)| (t, u64::from(x.queued))),
    );
    head(
        out,
        "aquifer_type_resources",
        "gauge",
        "Instances of the type, by state (held ones still count against their pools).",
    );
    for (t, x) in types() {
        for (state, n) in [
            ("creating", x.creating),
            ("ready", x.ready),
            ("releasing", x.releasing),
            ("held", x.held),
        ] {
            let _ = writeln!(
                out,
                "aquifer_type_resources{{type={},state=\"{state}\"}} {n}",
                quoted(t)
            );
        }
    }
    gauge(
        out,
        "aquifer_type_capacity",
        "The capacity of the pools that serve the type.",
        "type",
        types().map(|(t, x)| (t, u64::from(x.capacity))),
    );
    let targets = || l.targets.iter().map(|(t, x)| (t.as_str(), x));
    gauge(
        out,
        "aquifer_target_queued",
        "Jobs holding all their resources, waiting for a worker of the target.",
        "target",
        targets().map(|(t, x)| (t, u64::from(x.queued))),
    );
    gauge(
        out,
        "aquifer_target_workers",
        "Workers of the target in the books, in any state.",
        "target",
        targets().map(|(t, x)| (t, u64::from(x.workers))),
    );
    gauge(
        out,
        "aquifer_target_running",
        "Jobs running on a worker of the target.",
        "target",
        targets().map(|(t, x)| (t, u64::from(x.running))),
    );
    gauge(
        out,
        "aquifer_target_capacity",
        "Workers of the target its factories may have at once.",
        "target",
        targets().map(|(t, x)| (t, u64::from(x.capacity))),
    );
}

/// A histogram, its buckets made cumulative; `scale` divides bounds and
/// the sum (µs to seconds).
fn histogram<const N: usize>(
    out: &mut String,
    name: &str,
    help: &str,
    h: &Histogram<N>,
    bounds: &[u64],
    scale: f64,
) {
    head(out, name, "histogram", help);
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut below = 0;
    for (bound, bucket) in bounds.iter().zip(&h.buckets) {
        below += load(bucket);
        #[allow(clippy::cast_precision_loss)]
        let le = *bound as f64 / scale;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {below}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", load(&h.count));
    #[allow(clippy::cast_precision_loss)]
    let sum = load(&h.sum) as f64 / scale;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {}", load(&h.count));
}

fn driver(out: &mut String, api: &Api) {
    let stats = api.handle.stats();
    head(
        out,
        "aquifer_driver_queue",
        "gauge",
        "Inputs and reads waiting for the driver.",
    );
    let _ = writeln!(out, "aquifer_driver_queue {}", api.handle.queued());
    histogram(
        out,
        "aquifer_driver_batch_size",
        "Inputs the driver decided and committed together.",
        &stats.batch_sizes,
        &BATCH_BUCKETS,
        1.0,
    );
    histogram(
        out,
        "aquifer_driver_commit_seconds",
        "How long the database took to record a batch.",
        &stats.commit_us,
        &COMMIT_BUCKETS_US,
        1e6,
    );
    head(
        out,
        "aquifer_driver_commit_failures_total",
        "counter",
        "Batches the database did not record at the first try.",
    );
    let _ = writeln!(
        out,
        "aquifer_driver_commit_failures_total {}",
        stats.commit_failures.load(Ordering::Relaxed)
    );
}
