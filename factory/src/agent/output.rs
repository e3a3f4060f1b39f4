//! Shipping task output to the server: readers turn a task's pipes into
//! chunks on a bounded channel (a full channel stops the reader, whose
//! full pipe then stops the task: back-pressure, not unbounded memory),
//! and one shipper batches them per task and stream into calls of at most
//! 64 KiB, flushed when full or shortly after the first pending byte.

use super::batch::Batcher;
use aquifer_protocol::Client;
use aquifer_protocol::agent::{Output, Stream};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The most text one `POST /0/agent/output` carries (the protocol's limit).
pub const CALL_BYTES_MAX: usize = 64 * 1024;
/// Chunks in flight between the readers and the shipper.
pub const CHANNEL_CHUNKS: usize = 32;
/// How much one read takes from a pipe.
const READ_BYTES: usize = 8 * 1024;
/// How long output may wait for more before it is sent.
const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// Output that cannot be delivered within this is dropped (the server is
/// away); the job goes on.
const SEND_PATIENCE: Duration = Duration::from_secs(120);

/// Bytes one task wrote to one stream.
#[derive(Debug)]
pub struct Chunk {
    pub task: Arc<str>,
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// Reads `pipe` until it closes, sending what it reads to the shipper.
pub async fn read_pipe(
    task: Arc<str>,
    stream: Stream,
    mut pipe: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Chunk>,
) {
    let mut buf = vec![0; READ_BYTES];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                let chunk = Chunk {
                    task: task.clone(),
                    stream,
                    data: buf[..n].to_vec(),
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(%task, ?stream, %e, "reading the task's output");
                return;
            }
        }
    }
}

/// Batches and sends output until every sender is gone, then flushes the
/// rest and returns.
pub async fn ship(api: Client, mut rx: mpsc::Receiver<Chunk>) {
    let mut shipper = Shipper {
        api: api.with_patience(Some(SEND_PATIENCE)),
        batchers: BTreeMap::new(),
        job_over: false,
    };
    let mut flush_at: Option<Instant> = None;
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(c) => {
                    shipper.take(c).await;
                    if flush_at.is_none() && shipper.pending() {
                        flush_at = Some(Instant::now() + FLUSH_AFTER);
                    }
                }
                None => {
                    shipper.flush(true).await;
                    return;
                }
            },
            () = sleep_until(flush_at) => {
                shipper.flush(false).await;
                flush_at = None;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Shipper {
    api: Client,
    batchers: BTreeMap<(Arc<str>, Stream), Batcher>,
    /// The server said the job is not running: output has nowhere to go.
    job_over: bool,
}

impl Shipper {
    fn pending(&self) -> bool {
        self.batchers.values().any(|b| !b.is_empty())
    }

    async fn take(&mut self, c: Chunk) {
        // Output leaves in the order it was written: what another task or
        // stream has pending goes first (tasks run one after another, and
        // a reader of the job's stream expects stdout and stderr
        // interleaved as they came).
        let key = (c.task.clone(), c.stream);
        if self
            .batchers
            .iter()
            .any(|(k, b)| *k != key && !b.is_empty())
        {
            let others: Vec<_> = (self.batchers.keys())
                .filter(|k| **k != key)
                .cloned()
                .collect();
            for k in others {
                if let Some(mut b) = self.batchers.remove(&k) {
                    for text in b.flush(false) {
                        self.send(&k.0, k.1, &text).await;
                    }
                    if !b.is_empty() {
                        self.batchers.insert(k, b);
                    }
                }
            }
        }
        let batcher = self
            .batchers
            .entry((c.task.clone(), c.stream))
            .or_insert_with(|| Batcher::new(CALL_BYTES_MAX));
        let full = batcher.push(&c.data);
        for text in full {
            self.send(&c.task, c.stream, &text).await;
        }
    }

    async fn flush(&mut self, last: bool) {
        let batchers = std::mem::take(&mut self.batchers);
        for ((task, stream), mut b) in batchers {
            for text in b.flush(last) {
                self.send(&task, stream, &text).await;
            }
            // An incomplete character waits for its rest.
            if !b.is_empty() {
                self.batchers.insert((task, stream), b);
            }
        }
    }

    async fn send(&mut self, task: &str, stream: Stream, text: &str) {
        if self.job_over || text.is_empty() {
            return;
        }
        let body = Output {
            task: task.to_string(),
            stream,
            text: text.to_string(),
        };
        match self.api.agent_output(&body).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(409) => {
                tracing::info!(%e, "the job is not running; dropping its output from now on");
                self.job_over = true;
            }
            Err(e) => {
                tracing::warn!(%e, bytes = text.len(), "dropping output the server did not take")
            }
        }
    }
}
