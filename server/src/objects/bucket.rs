//! The S3-compatible back end (`object_store`): whole objects only. Files
//! being sent stay in the server's directory until they are checked; then
//! each is uploaded in parts and only then exists in the bucket.

use super::{Key, ObjectError, S3Config, Stream};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncReadExt;

/// The size of the parts an object is uploaded in (S3's least but the
/// last is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn failed(e: impl std::fmt::Display) -> ObjectError {
    ObjectError::Bucket(e.to_string())
}

impl Bucket {
    pub fn open(config: &S3Config) -> Result<Bucket, ObjectError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(failed)?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix: config.prefix.trim_matches('/').to_string(),
        })
    }

    fn dir(&self, job: u32) -> String {
        if self.prefix.is_empty() {
            format!("jobs/{job}")
        } else {
            format!("{}/jobs/{job}", self.prefix)
        }
    }

    fn path(&self, job: u32, key: Key) -> ObjectPath {
        ObjectPath::from(format!("{}/{}", self.dir(job), key.name()))
    }

    /// Uploads the file at `part` as the object, in parts.
    pub async fn upload(&self, job: u32, key: Key, part: &Path) -> Result<(), ObjectError> {
        let mut file = tokio::fs::File::open(part).await.map_err(super::io(part))?;
        let upload = (self.store.put_multipart(&self.path(job, key)).await).map_err(failed)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; super::CHUNK_BYTES];
        loop {
            let n = file.read(&mut buf).await.map_err(super::io(part))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.map_err(failed)?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(failed)?;
        Ok(())
    }

    pub async fn has(&self, job: u32, key: Key) -> bool {
        self.store.head(&self.path(job, key)).await.is_ok()
    }

    pub async fn read(
        &self,
        job: u32,
        key: Key,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ObjectError> {
        let mut out = Vec::new();
        let mut chunks = self.stream(job, key, offset, len).await?;
        while let Some(chunk) = chunks.next().await {
            out.extend_from_slice(&chunk.map_err(failed)?);
        }
        Ok(out)
    }

    pub async fn stream(
        &self,
        job: u32,
        key: Key,
        offset: u64,
        len: u64,
    ) -> Result<Stream, ObjectError> {
        if len == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            ..GetOptions::default()
        };
        let got = (self.store.get_opts(&self.path(job, key), options).await).map_err(failed)?;
        // The HTTP server wants a stream it may share between threads;
        // the bucket's is not: its chunks come through a channel.
        let mut chunks = got.into_stream();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(chunk) = chunks.next().await {
                if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Box::pin(Channelled(rx)))
    }

    /// Every object of the job's.
    pub async fn delete_job(&self, job: u32) -> Result<(), ObjectError> {
        let prefix = ObjectPath::from(self.dir(job));
        let listed: Vec<_> = (self.store.list(Some(&prefix)))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(failed)?;
        for location in listed {
            self.store.delete(&location).await.map_err(failed)?;
        }
        Ok(())
    }
}

/// A stream of the chunks a task forwards.
struct Channelled(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl futures_util::Stream for Channelled {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_recv(cx)
    }
}
