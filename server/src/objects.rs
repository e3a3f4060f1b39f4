//! Where jobs' files live: the object store. Two back ends: a directory of
//! the server's (`objects_dir`, by default `objects/` beside an SQLite
//! database), and an S3-compatible bucket (`[s3]`, with the `s3` cargo
//! feature), for which that directory holds only files being sent. The
//! store's rows (`outputs`, `job_inputs`) say which objects are whole.
//!
//! A file is sent into `jobs/JOB/N.part` in the directory. Once its size
//! and checksum are checked it becomes `jobs/JOB/N`: renamed in the
//! directory, or uploaded whole to the bucket and then dropped here. So a
//! file that is not whole is never read as one, whatever stops mid-send.

use crate::store::Files;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("the object store at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A chunk that does not start where the object ends.
    #[error("the server holds {held} bytes of this output; send from there")]
    Offset { held: u64 },
    /// The bucket refused or did not answer.
    #[error("the object store's bucket: {0}")]
    Bucket(String),
}

/// An object of a job's: output or input number `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub files: Files,
    pub n: u32,
}

impl Key {
    #[must_use]
    pub fn output(n: u32) -> Key {
        Key {
            files: Files::Outputs,
            n,
        }
    }

    #[must_use]
    pub fn input(n: u32) -> Key {
        Key {
            files: Files::Inputs,
            n,
        }
    }

    /// Its name in the job's directory: `N` for an output, `in-N` for an
    /// input.
    pub(crate) fn name(self) -> String {
        match self.files {
            Files::Outputs => self.n.to_string(),
            Files::Inputs => format!("in-{}", self.n),
        }
    }
}

/// An S3-compatible bucket for jobs' files (`[s3]` in the server's file).
/// Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), never from the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// An S3-compatible server's URL (MinIO, Ceph, moto); AWS's if none.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "S3Config::default_region")]
    pub region: String,
    /// Keys are `PREFIX/jobs/JOB/N`.
    #[serde(default)]
    pub prefix: String,
    /// Whether a plain `http://` endpoint is allowed (a test server).
    #[serde(default)]
    pub allow_http: bool,
}

impl S3Config {
    fn default_region() -> String {
        "us-east-1".into()
    }
}

/// The object store: the directory, and the bucket when there is one.
#[derive(Clone, Debug)]
pub struct Objects {
    root: PathBuf,
    #[cfg(feature = "s3")]
    bucket: Option<bucket::Bucket>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ObjectError + '_ {
    move |source| ObjectError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Objects {
    /// The store in `bucket`, with files being sent under `root`.
    pub fn open_s3(root: &Path, config: &S3Config) -> Result<Objects, ObjectError> {
        #[cfg(feature = "s3")]
        {
            let mut objects = Objects::open(root)?;
            objects.bucket = Some(bucket::Bucket::open(config)?);
            Ok(objects)
        }
        #[cfg(not(feature = "s3"))]
        {
            let _ = root;
            Err(ObjectError::Bucket(format!(
                "bucket {}: this server was built without S3 (cargo build --features s3)",
                config.bucket
            )))
        }
    }

    /// The store under `root`, made (0700) if missing.
    pub fn open(root: &Path) -> Result<Objects, ObjectError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(root, private).map_err(io(root))?;
        }
        Ok(Objects {
            root: root.to_path_buf(),
            #[cfg(feature = "s3")]
            bucket: None,
        })
    }

    /// Where a server on `database` keeps its objects when not told:
    /// beside an SQLite file; none for PostgreSQL or memory.
    #[must_use]
    pub fn beside(database: &str) -> Option<PathBuf> {
        let file = database.strip_prefix("sqlite:")?;
        let file = file.trim_start_matches("//");
        if file.is_empty() || file.starts_with(':') {
            return None;
        }
        let file = file.split('?').next().unwrap_or(file);
        Some(Path::new(file).parent()?.join("objects"))
    }

    fn dir(&self, job: u32) -> PathBuf {
        self.root.join("jobs").join(job.to_string())
    }

    fn part(&self, job: u32, key: Key) -> PathBuf {
        self.dir(job).join(format!("{}.part", key.name()))
    }

    fn whole(&self, job: u32, key: Key) -> PathBuf {
        self.dir(job).join(key.name())
    }

    /// How many bytes of an output being sent are held.
    pub async fn received(&self, job: u32, key: Key) -> Result<u64, ObjectError> {
        let part = self.part(job, key);
        match tokio::fs::metadata(&part).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io(&part)(e)),
        }
    }

    /// Appends `bytes` at `offset`. A chunk that ends where the object
    /// already does (a resend whose answer was lost) is taken as written;
    /// one that would leave a gap or overlap otherwise is refused with
    /// what is held.
    pub async fn append(
        &self,
        job: u32,
        key: Key,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, ObjectError> {
        let dir = self.dir(job);
        tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
        let part = self.part(job, key);
        let mut file = (tokio::fs::OpenOptions::new())
            .create(true)
            .append(true)
            .open(&part)
            .await
            .map_err(io(&part))?;
        let held = file.metadata().await.map_err(io(&part))?.len();
        let end = offset.saturating_add(bytes.len() as u64);
        if offset == held {
            file.write_all(bytes).await.map_err(io(&part))?;
            file.flush().await.map_err(io(&part))?;
            return Ok(end);
        }
        if end == held && offset < held {
            return Ok(held);
        }
        Err(ObjectError::Offset { held })
    }

    /// Checks what is held against `size` and `sha256`; if they agree, the
    /// object becomes whole (renamed, synced). If not, what is held is
    /// dropped and `false` comes back.
    pub async fn commit(
        &self,
        job: u32,
        key: Key,
        size: u64,
        sha256: &str,
    ) -> Result<bool, ObjectError> {
        let part = self.part(job, key);
        let whole = self.whole(job, key);
        if size == 0 && tokio::fs::metadata(&part).await.is_err() {
            // An empty output sends no chunk.
            tokio::fs::create_dir_all(self.dir(job))
                .await
                .map_err(io(&part))?;
            tokio::fs::File::create(&part).await.map_err(io(&part))?;
        }
        let (held, digest) = digest(&part).await?;
        if held != size || !digest.eq_ignore_ascii_case(sha256) {
            tokio::fs::remove_file(&part).await.map_err(io(&part))?;
            return Ok(false);
        }
        #[cfg(feature = "s3")]
        if let Some(b) = &self.bucket {
            // Whole in the bucket first, then dropped here: a stop in
            // between leaves a part that `is_whole` makes moot.
            b.upload(job, key, &part).await?;
            tokio::fs::remove_file(&part).await.map_err(io(&part))?;
            return Ok(true);
        }
        let file = tokio::fs::File::open(&part).await.map_err(io(&part))?;
        file.sync_all().await.map_err(io(&part))?;
        tokio::fs::rename(&part, &whole).await.map_err(io(&whole))?;
        Ok(true)
    }

    /// Whether the object is whole already (a commit whose answer was
    /// lost).
    pub async fn is_whole(&self, job: u32, key: Key) -> bool {
        #[cfg(feature = "s3")]
        if let Some(b) = &self.bucket {
            return b.has(job, key).await;
        }
        tokio::fs::metadata(self.whole(job, key)).await.is_ok()
    }

    /// Up to `len` bytes of a whole object from `offset`.
    pub async fn read(
        &self,
        job: u32,
        key: Key,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ObjectError> {
        #[cfg(feature = "s3")]
        if let Some(b) = &self.bucket {
            return b.read(job, key, offset, len).await;
        }
        let whole = self.whole(job, key);
        let mut file = tokio::fs::File::open(&whole).await.map_err(io(&whole))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io(&whole))?;
        let mut out = Vec::new();
        (file.take(len))
            .read_to_end(&mut out)
            .await
            .map_err(io(&whole))?;
        Ok(out)
    }

    /// Drops what is held of an output being sent (it starts over).
    pub async fn discard(&self, job: u32, key: Key) -> Result<(), ObjectError> {
        let part = self.part(job, key);
        match tokio::fs::remove_file(&part).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&part)(e)),
        }
    }

    /// `len` bytes of a whole object from `offset`, as a stream of chunks
    /// (a large output is never held in memory whole).
    pub async fn stream(
        &self,
        job: u32,
        key: Key,
        offset: u64,
        len: u64,
    ) -> Result<Stream, ObjectError> {
        #[cfg(feature = "s3")]
        if let Some(b) = &self.bucket {
            return b.stream(job, key, offset, len).await;
        }
        let whole = self.whole(job, key);
        let mut file = tokio::fs::File::open(&whole).await.map_err(io(&whole))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io(&whole))?;
        Ok(Box::pin(Chunks {
            file: file.take(len),
            buf: vec![0u8; CHUNK_BYTES],
        }))
    }

    /// Everything of a job's, whole or not.
    pub async fn delete_job(&self, job: u32) -> Result<(), ObjectError> {
        #[cfg(feature = "s3")]
        if let Some(b) = &self.bucket {
            b.delete_job(job).await?;
        }
        let dir = self.dir(job);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&dir)(e)),
        }
    }
}

/// An object's bytes, chunk by chunk, from either back end.
pub type Stream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync>,
>;

/// The size of the chunks an object is read in.
const CHUNK_BYTES: usize = 256 * 1024;

/// An object's bytes as a stream of chunks.
pub struct Chunks {
    file: tokio::io::Take<tokio::fs::File>,
    buf: Vec<u8>,
}

impl futures_util::Stream for Chunks {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use tokio::io::AsyncRead;
        let this = self.get_mut();
        let mut read = tokio::io::ReadBuf::new(&mut this.buf);
        match std::pin::Pin::new(&mut this.file).poll_read(cx, &mut read) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Some(Err(e))),
            std::task::Poll::Ready(Ok(())) if read.filled().is_empty() => {
                std::task::Poll::Ready(None)
            }
            std::task::Poll::Ready(Ok(())) => {
                let chunk = bytes::Bytes::copy_from_slice(read.filled());
                std::task::Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

/// A file's length and SHA-256 (lower-case hex).
async fn digest(path: &Path) -> Result<(u64, String), ObjectError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hex(&hasher.finalize())))
}

#[cfg(feature = "s3")]
mod bucket;

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn an_object_is_whole_only_once_its_size_and_checksum_agree() {
        let dir = tempfile::tempdir().expect("a dir");
        let o = Objects::open(dir.path()).expect("a store");
        assert_eq!(
            o.append(1, Key::output(1), 0, b"hello ")
                .await
                .expect("a chunk"),
            6
        );
        // A resend of the chunk just written is taken as written.
        assert_eq!(
            o.append(1, Key::output(1), 0, b"hello ")
                .await
                .expect("again"),
            6
        );
        // A gap is refused, with what is held.
        let gap = o
            .append(1, Key::output(1), 9, b"x")
            .await
            .expect_err("a gap");
        assert!(matches!(gap, ObjectError::Offset { held: 6 }), "{gap}");
        assert_eq!(
            o.append(1, Key::output(1), 6, b"world")
                .await
                .expect("the rest"),
            11
        );
        assert_eq!(o.received(1, Key::output(1)).await.expect("held"), 11);
        assert!(!o.is_whole(1, Key::output(1)).await);
        assert!(
            o.read(1, Key::output(1), 0, 5).await.is_err(),
            "not readable before its commit"
        );
        // The wrong checksum drops it; the sender starts again.
        assert!(
            !o.commit(1, Key::output(1), 11, &sha(b"hello there"))
                .await
                .expect("checked")
        );
        assert_eq!(o.received(1, Key::output(1)).await.expect("held"), 0);
        o.append(1, Key::output(1), 0, b"hello world")
            .await
            .expect("again");
        assert!(
            o.commit(1, Key::output(1), 11, &sha(b"hello world"))
                .await
                .expect("whole")
        );
        assert!(o.is_whole(1, Key::output(1)).await);
        assert_eq!(
            o.read(1, Key::output(1), 6, 100).await.expect("a range"),
            b"world"
        );
        assert_eq!(
            o.read(1, Key::output(1), 0, 5).await.expect("a range"),
            b"hello"
        );
        // An empty output needs no chunk.
        assert!(
            o.commit(1, Key::output(2), 0, &sha(b""))
                .await
                .expect("empty")
        );
        assert_eq!(o.read(1, Key::output(2), 0, 10).await.expect("empty"), b"");
        o.delete_job(1).await.expect("deleted");
        assert!(!o.is_whole(1, Key::output(1)).await);
        o.delete_job(1).await.expect("twice is fine");
    }

    #[test]
    fn objects_live_beside_an_sqlite_file_only() {
        assert_eq!(
            Objects::beside("sqlite:/var/lib/aquifer/aquifer.db"),
            Some(PathBuf::from("/var/lib/aquifer/objects"))
        );
        assert_eq!(
            Objects::beside("sqlite://data/a.db?mode=rwc"),
            Some(PathBuf::from("data/objects"))
        );
        assert_eq!(Objects::beside("sqlite::memory:"), None);
        assert_eq!(Objects::beside("postgres://h/db"), None);
    }
}
