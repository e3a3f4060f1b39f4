//! Retention: a job's outputs are kept for a time (`outputs_kept_s`),
//! counted from its submission, and deleted once it has ended and that
//! time has passed. Each deletion is recorded in the job's stream. Nothing
//! here decides anything about scheduling.

use crate::api::{Api, ApiError};
use crate::readmodel::Write;
use aquifer_protocol::story::span;
use std::sync::Arc;
use std::time::Duration;

/// Jobs swept at most at a time; the next sweep takes the rest.
const JOBS_PER_SWEEP: u32 = 100;

/// Deletes the outputs of ended jobs submitted more than `kept_ms` before
/// `now_ms`; returns how many jobs lost theirs.
pub async fn sweep(api: &Api, now_ms: u64, kept_ms: u64) -> Result<usize, ApiError> {
    let Some(objects) = &api.objects else {
        return Ok(0);
    };
    let jobs = (api.store)
        .jobs_with_old_outputs(now_ms.saturating_sub(kept_ms), JOBS_PER_SWEEP)
        .await?;
    for &job in &jobs {
        // The rows go first: an output is never listed without its bytes.
        // A crash before the files go leaves a directory nobody lists.
        let reason = format!("they are kept {} after submission", span(kept_ms));
        let note = serde_json::json!({"event": "outputs_deleted", "reason": reason});
        api.handle
            .record(vec![
                Write::OutputsDeleted { job },
                Write::JobEvent {
                    job,
                    at_ms: now_ms,
                    body: note,
                },
            ])
            .await?;
        if let Err(e) = objects.delete_job(job.0).await {
            tracing::warn!(job = job.0, error = %e, "deleting a job's outputs");
        }
        api.wakers.registry.wake(&crate::wake::Key::Job(job));
    }
    Ok(jobs.len())
}

/// Sweeps every `every` until the server stops.
pub fn spawn(api: Arc<Api>, kept: Duration) -> tokio::task::JoinHandle<()> {
    let kept_ms = u64::try_from(kept.as_millis()).unwrap_or(u64::MAX);
    let every = (kept / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&api, crate::api::now_ms(), kept_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "deleted the outputs of jobs past retention"),
                Err(e) => tracing::warn!(error = %e.message, "the retention sweep failed"),
            }
        }
    })
}
