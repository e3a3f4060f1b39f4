//! Small JSON state files, read whole and written atomically, so a well
//! that crashes mid-write finds either the old state or the new one.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a state file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The state in `path`, or the default if there is no file yet.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes `value` to `path` atomically: a temporary file beside it,
/// synced, renamed over it, and the directory synced so the rename itself
/// survives a power cut.
pub fn store<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    // Directories cannot be opened for syncing everywhere; where they can,
    // this makes the rename durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `dir` (and its parents) if it does not exist.
pub fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("state.json");
        let empty: BTreeMap<u32, String> = load(&path).expect("no file is the default");
        assert!(empty.is_empty());
        let v = BTreeMap::from([(3u32, "probe-a".to_string())]);
        store(&path, &v).expect("stored");
        store(&path, &v).expect("stored over itself");
        assert_eq!(load::<BTreeMap<u32, String>>(&path).expect("loaded"), v);
        assert!(
            !dir.path().join("state.json.tmp").exists(),
            "no temporary left"
        );
        std::fs::write(&path, b"{not json").expect("written");
        assert!(matches!(
            load::<BTreeMap<u32, String>>(&path),
            Err(StateError::Parse { .. })
        ));
    }
}
