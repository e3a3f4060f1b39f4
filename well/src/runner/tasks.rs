//! What the runner's tasks do: the lease poll, renewals, creates, reports,
//! destructions and reconcile passes. Each reports back to the actor by
//! message and decides nothing the book should decide.

use super::{Msg, RunError};
use crate::book::{Destroyed, PollId, Reported};
use crate::well::{CreateError, CreateRequest, Created, Well};
use aquifer_protocol::well::{DestroyFailed, Failed, Ready, WellLeaseRequest};
use aquifer_protocol::{Client, Kind, LeaseId, ResourceId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Renewal bounds: never more often than this...
const RENEW_MIN: Duration = Duration::from_millis(200);
/// ...and never less often than this, whatever the lease's expiry says
/// (which is read against this host's clock).
const RENEW_MAX: Duration = Duration::from_secs(20);

/// A spawned future that is aborted when this handle is dropped, so that
/// abandoning a task (a timeout, a shutdown) abandons the well's work too.
struct Guarded<T>(JoinHandle<T>);

impl<T> Drop for Guarded<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Guarded<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs a well's method on a task of its own, with a time limit; a panic in
/// the well becomes an error here rather than a task that never reports.
async fn guarded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(limit, Guarded(tokio::spawn(fut))).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.is_panic() => Err(format!("the well panicked in {what}")),
        Ok(Err(_)) => Err(format!("{what} was cancelled")),
        Err(_) => Err(format!("{what} took longer than {} ms", limit.as_millis())),
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wait before renewing a lease that expires at `expires_at_ms`: a
/// third of what is left, so two renewals can fail before it lapses.
#[must_use]
pub fn renew_wait(expires_at_ms: u64, now_ms: u64) -> Duration {
    let left = Duration::from_millis(expires_at_ms.saturating_sub(now_ms));
    (left / 3).clamp(RENEW_MIN, RENEW_MAX)
}

pub(super) async fn create<W: Well>(
    well: Arc<W>,
    tx: mpsc::Sender<Msg>,
    lease: u32,
    req: CreateRequest,
    limit: Duration,
) {
    let resource = req.resource;
    tracing::info!(resource, lease, rtype = %req.rtype, job = req.job, "creating");
    let result = guarded("create", limit, async move { well.create(&req).await }).await;
    let result = result.unwrap_or_else(|e| Err(CreateError::retryable(e)));
    let _ = tx.send(Msg::Created { resource, result }).await;
}

pub(super) async fn report_ready(
    client: Client,
    tx: mpsc::Sender<Msg>,
    resource: u32,
    created: Created,
) {
    let ready = Ready {
        metadata: created.metadata,
        secrets: created.secrets,
    };
    let outcome = match client.well_ready(ResourceId(resource), &ready).await {
        Ok(()) => Reported::Accepted,
        Err(e) if e.code() == Some(aquifer_protocol::error::code::DUPLICATE) => Reported::Duplicate,
        Err(e) if e.status() == Some(400) => Reported::Invalid(e.to_string()),
        Err(e) => {
            tracing::warn!(resource, error = %e, "the ready report was refused");
            Reported::Refused
        }
    };
    let _ = tx.send(Msg::Reported { resource, outcome }).await;
}

pub(super) async fn report_failed(
    client: Client,
    tx: mpsc::Sender<Msg>,
    resource: u32,
    reason: String,
    retryable: bool,
) {
    tracing::warn!(resource, %reason, retryable, "create failed");
    let failed = Failed { reason, retryable };
    let outcome = match client.well_failed(ResourceId(resource), &failed).await {
        Ok(()) => Reported::Accepted,
        Err(e) => {
            tracing::info!(resource, error = %e, "the failure report was refused");
            Reported::Refused
        }
    };
    let _ = tx.send(Msg::Reported { resource, outcome }).await;
}

/// Destroys, then confirms (or reports the failure) if the server knows
/// the resource; orphans are destroyed without a word to the server.
pub(super) async fn destroy<W: Well>(
    well: Arc<W>,
    client: Client,
    tx: mpsc::Sender<Msg>,
    resource: u32,
    rtype: String,
    confirm: bool,
    limit: Duration,
) {
    tracing::info!(resource, %rtype, confirm, "destroying");
    let done = guarded("destroy", limit, async move {
        well.destroy(resource, &rtype).await
    })
    .await;
    let outcome = match done.and_then(|r| r) {
        Ok(()) if !confirm => Destroyed::Done,
        Ok(()) => match client.well_destroyed(ResourceId(resource)).await {
            Ok(()) => Destroyed::Done,
            Err(e) => {
                tracing::error!(resource, error = %e, "the server refused the confirmation of a destruction");
                Destroyed::ConfirmRefused
            }
        },
        Err(reason) => {
            tracing::warn!(resource, %reason, "destroy failed");
            let failed = DestroyFailed { reason };
            if confirm
                && let Err(e) = client
                    .well_destroy_failed(ResourceId(resource), &failed)
                    .await
            {
                tracing::info!(resource, error = %e, "the destroy failure report was refused");
            }
            Destroyed::Failed
        }
    };
    let _ = tx.send(Msg::Destroyed { resource, outcome }).await;
}

/// Fetches what a reconcile pass compares: the server's listing first,
/// then the well's. `since` was taken before both, so whatever changes
/// meanwhile is newer than both.
pub(super) async fn reconcile<W: Well>(
    well: Arc<W>,
    client: Client,
    tx: mpsc::Sender<Msg>,
    since: u64,
    initial: bool,
    limit: Duration,
) {
    let listed = match client.well_resources().await {
        Ok(l) => l.resources,
        Err(e) => {
            let what = "the listing of this well's resources";
            let _ = tx
                .send(Msg::Fatal(RunError::Refused { what, error: e }))
                .await;
            return;
        }
    };
    let owned = match guarded("list_owned", limit, async move { well.list_owned().await }).await {
        Ok(Ok(o)) => Some(o),
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(error = %e, "the well cannot list what it owns: no orphans this pass");
            None
        }
    };
    let msg = Msg::Reconciled {
        since,
        listed,
        owned,
        initial,
    };
    let _ = tx.send(msg).await;
}

/// One lease poll, as the book asked for it; the book paces the next.
pub(super) async fn poll(
    client: Client,
    tx: mpsc::Sender<Msg>,
    poll: PollId,
    request: WellLeaseRequest,
) {
    let msg = match client.well_lease(&request).await {
        Ok(answer) => Msg::Polled { poll, answer },
        // A poll is one try; the book asks again as a read, with what is
        // free then.
        Err(e) if e.is_retryable(Kind::Idempotent) => {
            tracing::warn!(error = %e, "lease poll failed; retrying");
            Msg::PollFailed { poll }
        }
        Err(e) => Msg::Fatal(RunError::Refused {
            what: "a lease request",
            error: e,
        }),
    };
    let _ = tx.send(msg).await;
}

/// Keeps a lease alive until aborted, or until the server says it has
/// ended (expired, fulfilled, gone).
pub(super) async fn renew(client: Client, lease: u32, mut expires_at_ms: u64) {
    let backoff = client.backoff();
    let mut failures: u32 = 0;
    loop {
        let wait = if failures == 0 {
            renew_wait(expires_at_ms, now_ms())
        } else {
            backoff
                .wait_jittered(failures - 1)
                .min(renew_wait(expires_at_ms, now_ms()))
        };
        tokio::time::sleep(wait).await;
        match client.well_renew(LeaseId(lease)).await {
            Ok(r) => {
                failures = 0;
                expires_at_ms = r.expires_at_ms;
            }
            Err(e) if e.is_retryable(Kind::Idempotent) => {
                failures = failures.saturating_add(1);
                tracing::warn!(lease, error = %e, "renewal failed; retrying");
            }
            Err(e) => {
                tracing::info!(lease, error = %e, "the lease has ended; no more renewals");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_come_at_a_third_of_what_is_left_within_bounds() {
        assert_eq!(renew_wait(61_000, 1_000), Duration::from_secs(20));
        assert_eq!(renew_wait(31_000, 1_000), Duration::from_secs(10));
        assert_eq!(renew_wait(1_300, 1_000), RENEW_MIN);
        assert_eq!(
            renew_wait(500, 1_000),
            RENEW_MIN,
            "already past: renew soon"
        );
        assert_eq!(
            renew_wait(10_000_000, 0),
            RENEW_MAX,
            "a skewed clock cannot stretch it"
        );
    }

    #[tokio::test]
    async fn a_well_that_panics_or_hangs_is_an_error() {
        let r = guarded("create", Duration::from_secs(5), async { panic!("boom") }).await;
        assert_eq!(r, Err::<(), _>("the well panicked in create".to_string()));
        let r = guarded(
            "destroy",
            Duration::from_millis(10),
            std::future::pending::<()>(),
        )
        .await;
        assert_eq!(r, Err("destroy took longer than 10 ms".to_string()));
        assert_eq!(
            guarded("x", Duration::from_secs(1), async { 7 }).await,
            Ok(7)
        );
    }
}
