//! The `slot` well: a fixed set of named items (lab probes, licences,
//! boards) of one resource type, handed out one per resource and reset
//! when they come back. Which item went to which resource is kept in a
//! state file, so a restarted well still knows what it handed out.

use crate::config::{ConfiguredWell, Serves, WellSettings};
use crate::statefile::{self, StateError};
use crate::well::{CreateError, CreateRequest, Created, Owned, Well};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::Mutex;

/// The metadata key that names the item handed out.
pub const ITEM_KEY: &str = "item";
/// How much of a failed reset's output goes into the failure's reason.
const OUTPUT_TAIL_BYTES: usize = 1024;

fn default_reset_timeout_ms() -> u64 {
    300_000
}

/// The `[well]` table of a slot well (`kind = "slot"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    /// The one resource type this well serves.
    pub rtype: String,
    /// Run with `sh -c` when an item comes back, with `AQUIFER_ITEM` (its
    /// name) and `AQUIFER_RESOURCE` (the resource it served) set. If it
    /// fails, the item is quarantined: not handed out again until a reset
    /// succeeds, which is tried each time the server asks for the
    /// resource's destruction again (an operator releasing a held one).
    #[serde(default)]
    pub reset: Option<String>,
    #[serde(default = "default_reset_timeout_ms")]
    pub reset_timeout_ms: u64,
    /// The items by name, in the order they are handed out.
    pub items: BTreeMap<String, SlotItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotItem {
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl WellSettings for SlotConfig {
    const KIND: &'static str = "slot";

    /// Whatever the server would refuse in a ready report, refused here at
    /// start instead.
    fn validate(&self) -> Result<(), String> {
        if self.items.is_empty() {
            return Err("a slot well needs at least one item".into());
        }
        for (name, item) in &self.items {
            if item.metadata.contains_key(ITEM_KEY) || item.secrets.contains_key(ITEM_KEY) {
                return Err(format!(
                    "item {name:?}: the key {ITEM_KEY:?} is the item's name; do not set it"
                ));
            }
            if let Some(k) = item.metadata.keys().find(|k| item.secrets.contains_key(*k)) {
                return Err(format!(
                    "item {name:?}: {k:?} is both metadata and a secret"
                ));
            }
            let keys = item.metadata.keys().chain(item.secrets.keys());
            if let Some(k) = keys.into_iter().find(|k| !valid_key(k)) {
                return Err(format!(
                    "item {name:?}: bad key {k:?}: use 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit"
                ));
            }
        }
        Ok(())
    }

    fn serves(&self) -> Serves<'_> {
        Serves::Items {
            rtype: &self.rtype,
            items: u32::try_from(self.items.len()).unwrap_or(u32::MAX),
        }
    }
}

/// A key the server accepts in a ready report (the rule of names in
/// `docs/jobs.md`).
fn valid_key(k: &str) -> bool {
    k.len() <= 63
        && k.starts_with(|c: char| c.is_ascii_alphanumeric())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An item out on loan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Handed {
    resource: u32,
    /// Its reset failed: it stays out until a reset succeeds.
    #[serde(default)]
    quarantined: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotState {
    /// Item name to the resource it serves. An item that has left the
    /// configuration stays here until it comes back, so it is reset and
    /// reported like any other.
    handed: BTreeMap<String, Handed>,
}

pub struct SlotWell {
    config: SlotConfig,
    path: PathBuf,
    state: Mutex<SlotState>,
}

impl ConfiguredWell for SlotWell {
    type Settings = SlotConfig;

    async fn from_settings(settings: SlotConfig, data_dir: &Path) -> anyhow::Result<SlotWell> {
        SlotWell::open(settings, data_dir).context("opening the slot well's state")
    }
}

impl SlotWell {
    /// A slot well whose state lives in `data_dir/slot.json`.
    pub fn open(config: SlotConfig, data_dir: &Path) -> Result<SlotWell, StateError> {
        statefile::ensure_dir(data_dir)?;
        let path = data_dir.join("slot.json");
        let state: SlotState = statefile::load(&path)?;
        Ok(SlotWell {
            config,
            path,
            state: Mutex::new(state),
        })
    }

    /// How many items there are: the well's capacity.
    #[must_use]
    pub fn items(&self) -> usize {
        self.config.items.len()
    }

    #[must_use]
    pub fn rtype(&self) -> &str {
        &self.config.rtype
    }

    /// Names of the items whose reset failed.
    pub async fn quarantined(&self) -> Vec<String> {
        let state = self.state.lock().await;
        (state.handed.iter())
            .filter(|(_, h)| h.quarantined)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Writes the state (called with the lock held, so writes keep their
    /// order).
    async fn persist(&self, state: &SlotState) -> Result<(), String> {
        let (path, state) = (self.path.clone(), state.clone());
        tokio::task::spawn_blocking(move || statefile::store(&path, &state))
            .await
            .map_err(|e| format!("writing the state file: {e}"))?
            .map_err(|e| e.to_string())
    }

    fn created(&self, name: &str) -> Created {
        let item = self.config.items.get(name).cloned().unwrap_or_default();
        let mut metadata = item.metadata;
        metadata.insert(ITEM_KEY.into(), name.into());
        Created {
            metadata,
            secrets: item.secrets,
        }
    }

    /// Runs the reset command for `item`; the reason if it failed.
    async fn reset(&self, item: &str, resource: u32) -> Result<(), String> {
        let Some(cmd) = &self.config.reset else {
            return Ok(());
        };
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("AQUIFER_ITEM", item)
            .env("AQUIFER_RESOURCE", resource.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A reset that outlives its time limit is killed with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run the reset command: {e}"))?;
        let limit = Duration::from_millis(self.config.reset_timeout_ms);
        let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(format!("the reset command failed to run: {e}")),
            Err(_) => {
                return Err(format!(
                    "the reset of {item} took longer than {} ms",
                    limit.as_millis()
                ));
            }
        };
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        if text.trim().is_empty() {
            text = String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let text = text.trim();
        let mut start = text.len().saturating_sub(OUTPUT_TAIL_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Err(format!(
            "the reset of {item} failed ({}): {}",
            out.status,
            &text[start..]
        ))
    }
}

impl Well for SlotWell {
    async fn create(&self, req: &CreateRequest) -> Result<Created, CreateError> {
        if req.rtype != self.config.rtype {
            return Err(CreateError::fatal(format!(
                "this slot well serves {}, not {}",
                self.config.rtype, req.rtype
            )));
        }
        let mut state = self.state.lock().await;
        // Asked again for a resource it already serves (a retried create
        // after a restart): the same item, not a second one.
        if let Some((name, _)) = state
            .handed
            .iter()
            .find(|(_, h)| h.resource == req.resource)
        {
            let name = name.clone();
            return Ok(self.created(&name));
        }
        let Some(name) = self
            .config
            .items
            .keys()
            .find(|n| !state.handed.contains_key(*n))
            .cloned()
        else {
            return Err(CreateError::retryable("every item is out or quarantined"));
        };
        let mut next = state.clone();
        let handed = Handed {
            resource: req.resource,
            quarantined: false,
        };
        next.handed.insert(name.clone(), handed);
        self.persist(&next).await.map_err(|e| {
            CreateError::retryable(format!("cannot record the loan of {name}: {e}"))
        })?;
        *state = next;
        tracing::info!(item = %name, resource = req.resource, "item handed out");
        Ok(self.created(&name))
    }

    async fn destroy(&self, resource: u32, _rtype: &str) -> Result<(), String> {
        let name = {
            let state = self.state.lock().await;
            let found = state.handed.iter().find(|(_, h)| h.resource == resource);
            match found {
                Some((name, _)) => name.clone(),
                // Never handed out, or already back: destroyed.
                None => return Ok(()),
            }
        };
        // The reset runs without the lock: it may take minutes, and other
        // items come and go meanwhile. The runner never destroys one
        // resource twice at once.
        let reset = self.reset(&name, resource).await;
        let mut state = self.state.lock().await;
        let mut next = state.clone();
        match &reset {
            Ok(()) => {
                next.handed.remove(&name);
            }
            Err(reason) => {
                tracing::warn!(item = %name, resource, %reason, "item quarantined");
                if let Some(h) = next.handed.get_mut(&name) {
                    h.quarantined = true;
                }
            }
        }
        self.persist(&next).await?;
        *state = next;
        if reset.is_ok() {
            tracing::info!(item = %name, resource, "item back");
        }
        reset
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let state = self.state.lock().await;
        Ok((state.handed.values())
            .map(|h| Owned {
                resource: h.resource,
                rtype: self.config.rtype.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(reset: Option<&str>) -> SlotConfig {
        let item = |serial: &str| SlotItem {
            metadata: BTreeMap::from([("serial".to_string(), serial.to_string())]),
            secrets: BTreeMap::from([("pin".to_string(), format!("pin-{serial}"))]),
        };
        SlotConfig {
            rtype: "probe".into(),
            reset: reset.map(String::from),
            reset_timeout_ms: 10_000,
            items: BTreeMap::from([("a".to_string(), item("A1")), ("b".to_string(), item("B2"))]),
        }
    }

    fn req(resource: u32) -> CreateRequest {
        CreateRequest {
            resource,
            rtype: "probe".into(),
            job: 1,
            deadline_ms: 0,
        }
    }

    fn owned(w: &[u32]) -> Vec<Owned> {
        w.iter()
            .map(|&resource| Owned {
                resource,
                rtype: "probe".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn hands_out_each_item_once_and_remembers_across_restarts() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let w = SlotWell::open(config(None), dir.path()).expect("opened");
        let a = w.create(&req(10)).await.expect("an item");
        assert_eq!(a.metadata.get("item").map(String::as_str), Some("a"));
        assert_eq!(a.metadata.get("serial").map(String::as_str), Some("A1"));
        assert_eq!(a.secrets.get("pin").map(String::as_str), Some("pin-A1"));
        assert_eq!(
            w.create(&req(10)).await,
            Ok(a),
            "the same resource gets the same item"
        );
        let b = w.create(&req(11)).await.expect("the other item");
        assert_eq!(b.metadata.get("item").map(String::as_str), Some("b"));
        let none = w.create(&req(12)).await.expect_err("no item left");
        assert!(none.retryable);
        let wrong = CreateRequest {
            rtype: "pg".into(),
            ..req(13)
        };
        assert!(!w.create(&wrong).await.expect_err("another type").retryable);

        drop(w);
        let w = SlotWell::open(config(None), dir.path()).expect("reopened");
        assert_eq!(w.list_owned().await, Ok(owned(&[10, 11])));
        w.destroy(10, "probe").await.expect("returned");
        w.destroy(10, "probe")
            .await
            .expect("a second time is no error");
        assert_eq!(w.list_owned().await, Ok(owned(&[11])));
        let again = w.create(&req(14)).await.expect("a is free again");
        assert_eq!(again.metadata.get("item").map(String::as_str), Some("a"));
    }

    #[tokio::test]
    async fn a_failed_reset_quarantines_the_item_until_a_reset_succeeds() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let flag = dir.path().join("broken");
        std::fs::write(&flag, b"").expect("flag");
        // Fails while the flag file exists, and says which item it reset.
        let cmd = format!(
            "echo \"$AQUIFER_ITEM $AQUIFER_RESOURCE\" >> {log}; if [ -e {flag} ]; then echo 'probe wedged' >&2; exit 3; fi",
            log = dir.path().join("log").display(),
            flag = flag.display()
        );
        let w = SlotWell::open(config(Some(&cmd)), dir.path()).expect("opened");
        w.create(&req(10)).await.expect("a");
        w.create(&req(11)).await.expect("b");
        let e = w.destroy(10, "probe").await.expect_err("the reset fails");
        assert!(
            e.contains("probe wedged") && e.contains("exit status: 3"),
            "{e}"
        );
        assert_eq!(w.quarantined().await, ["a"]);
        w.destroy(11, "probe").await.expect_err("b too");
        std::fs::remove_file(&flag).expect("unflagged");
        assert!(
            w.create(&req(12)).await.is_err(),
            "quarantined items are not handed out"
        );

        // The server asks again (an operator released it): the reset runs again.
        w.destroy(10, "probe").await.expect("fixed");
        assert_eq!(w.quarantined().await, ["b"]);
        assert_eq!(w.list_owned().await, Ok(owned(&[11])));
        let log = std::fs::read_to_string(dir.path().join("log")).expect("log");
        assert_eq!(log, "a 10\nb 11\na 10\n");
    }

    #[test]
    fn refuses_items_the_server_would_refuse() {
        let mut c = config(None);
        assert_eq!(c.validate(), Ok(()));
        if let Some(i) = c.items.get_mut("a") {
            i.metadata.insert("pin".into(), "x".into());
        }
        assert!(c.validate().expect_err("overlap").contains("both"));
        let mut k = config(None);
        if let Some(i) = k.items.get_mut("b") {
            i.secrets.insert("has space".into(), "x".into());
        }
        assert!(k.validate().expect_err("a bad key").contains("bad key"));
        c.items.clear();
        assert!(c.validate().is_err());
    }
}
