//! The HTTP server around the API: hyper's HTTP/1 with the deadlines and
//! bounds a server facing untrusted clients needs, which warp's own server
//! does not set. A client that sends its headers or body slowly, holds
//! many connections or many large bodies, or never lets go at shutdown is
//! cut off after a known time, and every other caller goes on.

use super::{Api, routes};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The bounds of the HTTP server (`[http]` in the server's file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Connections open at once. At the bound the server stops accepting
    /// until one closes (new ones wait in the kernel's backlog). Keep it
    /// above the long-poll waiters (4,096) and below the process's open
    /// files limit.
    pub connections_max: usize,
    /// How long a client has to send a request's headers, counted from
    /// the first byte it is waited for; an idle kept-alive connection is
    /// closed after as long.
    pub header_read_ms: u64,
    /// How long a client has to send a request's whole body.
    pub body_read_ms: u64,
    /// Request body bytes held at once over every connection; a request
    /// that would pass it is answered `503 busy`, to be sent again.
    pub body_bytes_in_flight_max: u64,
    /// Long-polls one principal (a user, a well, an agent) may hold at
    /// once; past it, `429 too_many_waits`.
    pub waits_per_principal_max: usize,
    /// Long-polls users may hold together (their watches), below the
    /// server's 4,096 so that wells, factories and agents always find a
    /// place; past it, `503 busy`.
    pub user_waits_max: usize,
    /// Task output one job may store (its text and task names), counted
    /// across restarts; past it the rest is dropped with one
    /// `output_dropped` entry.
    pub output_bytes_per_job_max: u64,
    /// On stop: how long requests already being answered (long-polls
    /// included) may take before their connections are closed.
    pub shutdown_grace_ms: u64,
    /// The largest output file a job may keep.
    pub output_file_bytes_max: u64,
    /// Output files one job may keep, in all, and how many.
    pub output_files_bytes_per_job_max: u64,
    pub output_files_per_job_max: u32,
    /// The largest input file a submitter may upload, the bytes of inputs
    /// one job may have in all, and how many a job file may name.
    pub input_file_bytes_max: u64,
    pub input_files_bytes_per_job_max: u64,
    pub input_files_per_job_max: u32,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            connections_max: 8_192,
            header_read_ms: 30_000,
            body_read_ms: 30_000,
            body_bytes_in_flight_max: 64 * 1024 * 1024,
            waits_per_principal_max: 64,
            user_waits_max: 2_048,
            output_bytes_per_job_max: super::agent::OUTPUT_JOB_BYTES_MAX,
            shutdown_grace_ms: 10_000,
            output_file_bytes_max: 1 << 30,
            output_files_bytes_per_job_max: 8 << 30,
            output_files_per_job_max: 1_000,
            input_file_bytes_max: 1 << 30,
            input_files_bytes_per_job_max: 4 << 30,
            input_files_per_job_max: 100,
        }
    }
}

impl Http {
    /// Refuses bounds the server cannot serve under, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.user_waits_max == 0 || self.user_waits_max >= crate::wake::WAITERS_MAX {
            return Err(format!(
                "[http] user_waits_max must be 1 to {}, leaving room for wells, factories and agents",
                crate::wake::WAITERS_MAX - 1
            ));
        }
        let zero = [
            ("connections_max", self.connections_max == 0),
            ("waits_per_principal_max", self.waits_per_principal_max == 0),
            ("header_read_ms", self.header_read_ms == 0),
            ("body_read_ms", self.body_read_ms == 0),
            (
                "output_files_per_job_max",
                self.output_files_per_job_max == 0,
            ),
            (
                "body_bytes_in_flight_max",
                self.body_bytes_in_flight_max < super::BODY_BYTES_MAX,
            ),
        ];
        match zero.iter().find(|(_, bad)| *bad) {
            Some(("body_bytes_in_flight_max", _)) => Err(format!(
                "[http] body_bytes_in_flight_max must be at least one body ({} bytes)",
                super::BODY_BYTES_MAX
            )),
            Some((name, _)) => Err(format!("[http] {name} must be at least 1")),
            None => Ok(()),
        }
    }

    /// Body bytes are counted in KiB, the units of the in-flight budget.
    pub(crate) fn body_budget(&self) -> Semaphore {
        let kib = self.body_bytes_in_flight_max.div_ceil(1024);
        Semaphore::new(usize::try_from(kib).unwrap_or(Semaphore::MAX_PERMITS))
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets open
/// requests finish for the grace period and closes what is left.
pub async fn serve(
    api: Arc<Api>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let http = api.http;
    let slots = Arc::new(Semaphore::new(http.connections_max));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Dropped (with the task that serves, when it is aborted) it aborts
    // every connection: nothing outlives the server.
    let mut connections = JoinSet::new();
    let filter = routes(api);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of files, say: give closing connections a moment.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(warp::service(filter.clone()));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(http.header_read_ms))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            let _slot = permit;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = Duration::from_millis(http.shutdown_grace_ms);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            grace_ms = http.shutdown_grace_ms,
            "closing the connections still open after the grace period"
        );
    }
    connections.abort_all();
}
