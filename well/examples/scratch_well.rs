//! A complete well on the SDK (docs/writing-a-well.md): each resource is a
//! fresh, empty directory under the well's data directory, handed to the
//! job as `bmat resource get NAME path`. Run: `cargo run -p aquifer-well
//! --example scratch_well -- scratch.toml`.

use aquifer_well::config::Serves;
use aquifer_well::{
    ConfiguredWell, CreateError, CreateRequest, Created, Owned, Well, WellSettings,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `[well]` table: `kind = "scratch"` and the one type it serves.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScratchSettings {
    pub rtype: String,
}

impl WellSettings for ScratchSettings {
    const KIND: &'static str = "scratch";

    fn validate(&self) -> Result<(), String> {
        if self.rtype.is_empty() {
            return Err("rtype is empty".into());
        }
        Ok(())
    }

    fn serves(&self) -> Serves<'_> {
        Serves::Counted(&self.rtype)
    }
}

/// Resource N is the directory `N` under `root`: the well finds what it
/// made, after a restart too, by listing `root`.
pub struct ScratchWell {
    root: PathBuf,
    rtype: String,
}

impl ConfiguredWell for ScratchWell {
    type Settings = ScratchSettings;

    async fn from_settings(settings: ScratchSettings, data_dir: &Path) -> anyhow::Result<Self> {
        let root = data_dir.join("scratch");
        tokio::fs::create_dir_all(&root).await?;
        Ok(ScratchWell {
            root,
            rtype: settings.rtype,
        })
    }
}

impl Well for ScratchWell {
    async fn create(&self, req: &CreateRequest) -> Result<Created, CreateError> {
        let dir = self.root.join(req.resource.to_string());
        // Whatever an earlier, abandoned try left goes: a resource starts empty.
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| CreateError::retryable(format!("{}: {e}", dir.display())))?;
        let path = dir.display().to_string();
        Ok(Created {
            metadata: BTreeMap::from([("path".to_string(), path)]),
            secrets: BTreeMap::new(),
        })
    }

    async fn destroy(&self, resource: u32, _rtype: &str) -> Result<(), String> {
        match tokio::fs::remove_dir_all(self.root.join(resource.to_string())).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let mut owned = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.root)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(e) = entries.next_entry().await.map_err(|e| e.to_string())? {
            if let Some(resource) = e.file_name().to_str().and_then(|n| n.parse().ok()) {
                let rtype = self.rtype.clone();
                owned.push(Owned { resource, rtype });
            }
        }
        Ok(owned)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let usage = || anyhow::anyhow!("usage: scratch_well FILE");
    let config = std::env::args().nth(1).ok_or_else(usage)?;
    let stop = async { drop(tokio::signal::ctrl_c().await) };
    aquifer_well::run_configured::<ScratchWell>(config.as_ref(), stop).await
}
