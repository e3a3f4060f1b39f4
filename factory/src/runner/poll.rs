//! The factory runner's lease polls: sending the one the book asks for,
//! abandoning the one the book gives up, and taking in the answers.

use super::{Runner, fatal};
use crate::sdk::{Factory, Lease};
use aquifer_protocol::book::{Granted, PollId};
use aquifer_protocol::factory::FactoryLeaseAnswer as LeaseAnswer;
use aquifer_protocol::{CallError, TargetId, WorkerId};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

/// The lease poll out.
pub(super) struct Poll {
    pub(super) id: PollId,
    handle: JoinHandle<Result<LeaseAnswer, CallError>>,
}

impl Poll {
    pub(super) fn abort(&self) {
        self.handle.abort();
    }
}

impl<F: Factory> Runner<F> {
    /// Abandons the poll out and sends the next, when the book says so.
    pub(super) fn drive_poll(&mut self) {
        let now = Instant::now().into_std();
        if self.book.abandon_poll(now)
            && let Some(p) = self.poll.take()
        {
            p.handle.abort();
        }
        if self.poll.is_some() {
            return;
        }
        let Some((id, asking)) = self.book.next_poll(now) else {
            return;
        };
        let wait_ms = u64::try_from(self.config.lease_wait.as_millis()).unwrap_or(u64::MAX);
        let body = asking.request(wait_ms, |t| t.clone().map(TargetId::new), WorkerId);
        let api = self.shared.api.clone();
        let handle = tokio::spawn(async move { api.factory_lease(&body).await });
        self.poll = Some(Poll { id, handle });
    }

    /// Acts on a lease answer; an error no retry mends is returned.
    pub(super) fn polled(
        &mut self,
        id: PollId,
        answer: Result<Result<LeaseAnswer, CallError>, JoinError>,
    ) -> anyhow::Result<()> {
        let now = Instant::now().into_std();
        match answer {
            Ok(Ok(a)) => {
                let lease = a.lease.map(|g| {
                    let lease = Lease::from(g);
                    let (id, kind) = (lease.worker, Some(lease.target.clone()));
                    vec![Granted {
                        id,
                        kind,
                        order: lease,
                    }]
                });
                let destroy: Vec<u32> = a.destroy.iter().map(|w| w.0).collect();
                let actions = self.book.answered(now, id, lease, &destroy);
                self.perform(actions);
            }
            Ok(Err(e)) => {
                if let Some(fatal) = fatal(&e) {
                    return Err(fatal);
                }
                tracing::warn!(%e, "asking for work");
                self.book.poll_failed(now, id);
            }
            Err(e) => {
                tracing::error!(%e, "the lease poll's task");
                self.book.poll_failed(now, id);
            }
        }
        Ok(())
    }
}

pub(super) async fn join_poll(
    poll: &mut Option<Poll>,
) -> Result<Result<LeaseAnswer, CallError>, JoinError> {
    match poll {
        Some(p) => (&mut p.handle).await,
        None => std::future::pending().await,
    }
}
