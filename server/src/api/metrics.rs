//! `GET /metrics`: the scheduler's queues and holdings (the core's
//! `explain::load`) and the driver's batches and commits, in Prometheus's
//! text format (version 0.0.4). Users and admins may read it; give
//! Prometheus a user's token (`authorization` in its scrape config).

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use crate::driver::{BATCH_BUCKETS, COMMIT_BUCKETS_US, Histogram};
use crate::timings::{SPAN_BUCKETS_MS, Spans};
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
    timings(&mut text, api);
    contacts(&mut text, api).await?;
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

/// A family of span histograms, one per label value.
fn spans<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: Option<&str>,
    family: impl Iterator<Item = (&'a str, &'a Spans)>,
) {
    head(out, name, "histogram", help);
    for (v, s) in family {
        let label = label.map_or_else(String::new, |l| format!("{l}={},", quoted(v)));
        let mut below = 0;
        for (bound, n) in SPAN_BUCKETS_MS.iter().zip(&s.buckets) {
            below += n;
            #[allow(clippy::cast_precision_loss)]
            let le = *bound as f64 / 1e3;
            let _ = writeln!(out, "{name}_bucket{{{label}le=\"{le}\"}} {below}");
        }
        let _ = writeln!(out, "{name}_bucket{{{label}le=\"+Inf\"}} {}", s.count);
        let braces = if label.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", label.trim_end_matches(','))
        };
        #[allow(clippy::cast_precision_loss)]
        let sum = s.sum_ms as f64 / 1e3;
        let _ = writeln!(
            out,
            "{name}_sum{braces} {sum}\n{name}_count{braces} {}",
            s.count
        );
    }
}

/// Waits, hand-offs and lifetimes (`timings.rs`), and how long the
/// longest waiter of each queue has waited so far.
fn timings(out: &mut String, api: &Api) {
    let now = super::now();
    // Only the histograms and the oldest waits are taken under the lock,
    // not the beginnings of everything under way.
    let (t, (types, targets)) = {
        let t = (api.handle.stats().timings.lock()).unwrap_or_else(|p| p.into_inner());
        (t.spans(), t.oldest(now))
    };
    spans(
        out,
        "aquifer_type_wait_seconds",
        "How long groups waited in the type's queue before a lease was granted.",
        Some("type"),
        t.type_wait.iter().map(|(k, s)| (k.as_str(), s)),
    );
    spans(
        out,
        "aquifer_target_wait_seconds",
        "How long jobs holding all their resources waited for a worker of the target.",
        Some("target"),
        t.target_wait.iter().map(|(k, s)| (k.as_str(), s)),
    );
    spans(
        out,
        "aquifer_handoff_seconds",
        "From a worker leased for a job to the job started by its agent.",
        None,
        std::iter::once(("", &t.handoff)),
    );
    spans(
        out,
        "aquifer_resource_lifetime_seconds",
        "From a resource's grant to its well's confirmation that it is gone.",
        Some("type"),
        t.lifetime.iter().map(|(k, s)| (k.as_str(), s)),
    );
    #[allow(clippy::cast_precision_loss)]
    let secs = |ms: u64| ms as f64 / 1e3;
    head(
        out,
        "aquifer_type_oldest_wait_seconds",
        "gauge",
        "How long the longest waiter of the type's queue has waited so far.",
    );
    for (t, ms) in &types {
        let _ = writeln!(
            out,
            "aquifer_type_oldest_wait_seconds{{type={}}} {}",
            quoted(t.as_str()),
            secs(*ms)
        );
    }
    head(
        out,
        "aquifer_target_oldest_wait_seconds",
        "gauge",
        "How long the longest waiter for a worker of the target has waited so far.",
    );
    for (t, ms) in &targets {
        let _ = writeln!(
            out,
            "aquifer_target_oldest_wait_seconds{{target={}}} {}",
            quoted(t.as_str()),
            secs(*ms)
        );
    }
}

/// When each well and factory last called, as a Unix time in seconds.
async fn contacts(out: &mut String, api: &Api) -> Result<(), ApiError> {
    use crate::users::Service;
    for (service, kind) in [(Service::Well, "well"), (Service::Factory, "factory")] {
        let name = format!("aquifer_{kind}_last_contact_timestamp_seconds");
        head(
            out,
            &name,
            "gauge",
            &format!(
                "When the {kind} last called the server (Unix time), since this server started."
            ),
        );
        for (id, label) in api.store.service_names(service).await? {
            let principal = match service {
                Service::Well => Principal::Well(id),
                Service::Factory => Principal::Factory(id),
            };
            if let Some(ms) = api.last_contact(principal) {
                #[allow(clippy::cast_precision_loss)]
                let secs = ms as f64 / 1e3;
                let _ = writeln!(out, "{name}{{{kind}={}}} {secs}", quoted(&label));
            }
        }
    }
    Ok(())
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
