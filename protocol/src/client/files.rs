//! Files in both directions: sending one in chunks (resumed where the
//! server says, committed with its size and SHA-256), which the agent does
//! for outputs and a submitter for inputs; and receiving one into a file
//! that appears only once its checksum agrees.

use super::{CallError, Client};
use crate::outputs::{OutputBegin, OutputCommit, Sending};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The size of a chunk sent (the server reads bodies of up to 1 MiB).
pub const CHUNK_BYTES: usize = 512 * 1024;
/// How often one file is sent again after the server found it changed
/// (its checksum) or lost track of it.
const RESENDS_MAX: u32 = 3;

/// A file to send: its name at the server (an output's path, an input's
/// name), where its bytes are read, and whether it may change size while
/// it is sent (a log still written).
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub name: &'a str,
    pub file: &'a Path,
    pub growing: bool,
}

enum Sent {
    Whole(OutputCommit),
    /// The server lost its place, or the file changed: begin again.
    Again,
}

impl Client {
    /// Sends `f` to `to`, whole: resumed where the server holds bytes of
    /// it already, sent again (a few times) if it changed meanwhile. The
    /// error says which file and why, in words for the job's reason.
    pub async fn send_file(&self, to: Sending, f: Outgoing<'_>) -> Result<(), String> {
        let what = to.what();
        let failed = |how: &str, e: &dyn std::fmt::Display| {
            format!("could not send {what} {}: {how}: {e}", f.name)
        };
        for _ in 0..RESENDS_MAX {
            let size = (tokio::fs::metadata(f.file).await)
                .map_err(|e| failed("reading it", &e))?
                .len();
            let begin = OutputBegin {
                path: f.name.to_string(),
                size,
            };
            let upload =
                (self.file_begin(to, &begin).await).map_err(|e| failed("the server", &e))?;
            match self
                .send_bytes(to, f, upload.output, upload.received, size)
                .await?
            {
                Sent::Whole(commit) => match self.file_commit(to, upload.output, &commit).await {
                    Ok(()) => return Ok(()),
                    // The bytes held did not match: sent again from the start.
                    Err(CallError::Refused {
                        status: 400, code, ..
                    }) if code == "checksum" => {
                        tracing::warn!(name = %f.name, "the server's copy did not match; sending again");
                    }
                    Err(e) => return Err(failed("the server", &e)),
                },
                Sent::Again => {}
            }
        }
        Err(format!(
            "could not send {what} {}: it kept changing while it was sent",
            f.name
        ))
    }

    /// Sends the file from `received` (hashing it all from the start), up
    /// to `size` bytes.
    async fn send_bytes(
        &self,
        to: Sending,
        f: Outgoing<'_>,
        n: u32,
        received: u64,
        size: u64,
    ) -> Result<Sent, String> {
        let failed =
            |e: &dyn std::fmt::Display| format!("could not send {} {}: {e}", to.what(), f.name);
        let mut file = tokio::fs::File::open(f.file)
            .await
            .map_err(|e| failed(&e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut offset = 0u64;
        // What the server holds already is hashed, not sent.
        let mut skip = received.min(size);
        while skip > 0 {
            let want = usize::try_from(skip).unwrap_or(usize::MAX).min(buf.len());
            let got = file.read(&mut buf[..want]).await.map_err(|e| failed(&e))?;
            if got == 0 {
                break;
            }
            hasher.update(&buf[..got]);
            offset += got as u64;
            skip -= got as u64;
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| failed(&e))?;
        while offset < size {
            let want = usize::try_from(size - offset)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let got = read_full(&mut file, &mut buf[..want])
                .await
                .map_err(|e| failed(&e))?;
            if got == 0 {
                break;
            }
            hasher.update(&buf[..got]);
            match self.file_chunk(to, n, offset, &buf[..got]).await {
                Ok(_) => offset += got as u64,
                Err(CallError::Refused { status: 409, .. }) => return Ok(Sent::Again),
                Err(e) => return Err(failed(&e)),
            }
        }
        if offset < size && !f.growing {
            tracing::warn!(name = %f.name, "the file shrank while it was sent; sending again");
            return Ok(Sent::Again);
        }
        Ok(Sent::Whole(OutputCommit {
            size: offset,
            sha256: hex(&hasher.finalize()),
        }))
    }

    /// Reads the body at `path` into `dest`: written to `dest.part`,
    /// checked against `sha256` (or the checksum the server sends with
    /// it), then renamed, so `dest` is never a file cut short. Returns the
    /// bytes written.
    pub async fn receive_file(
        &self,
        path: &str,
        dest: &Path,
        sha256: Option<&str>,
    ) -> Result<u64, String> {
        let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", dest.display());
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| failed(&e))?;
        }
        let mut part_name = dest.as_os_str().to_owned();
        part_name.push(".part");
        let part = std::path::PathBuf::from(part_name);
        let mut out = std::fs::File::create(&part).map_err(|e| failed(&e))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let sent_sha = self
            .download(path, |bytes| {
                use std::io::Write as _;
                hasher.update(bytes);
                written += bytes.len() as u64;
                out.write_all(bytes)
            })
            .await;
        let outcome = match sent_sha {
            Err(e) => Err(failed(&e)),
            Ok(sent) => {
                let got = hex(&hasher.finalize());
                match sha256.map(str::to_string).or(sent) {
                    Some(want) if !want.eq_ignore_ascii_case(&got) => Err(failed(&format!(
                        "its SHA-256 is {got}, not {want}: it changed or was cut short"
                    ))),
                    _ => out.sync_all().map_err(|e| failed(&e)),
                }
            }
        };
        if let Err(why) = outcome {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(why);
        }
        tokio::fs::rename(&part, dest)
            .await
            .map_err(|e| failed(&e))?;
        Ok(written)
    }
}

/// Reads until `buf` is full or the file ends.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let got = file.read(&mut buf[filled..]).await?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    Ok(filled)
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
