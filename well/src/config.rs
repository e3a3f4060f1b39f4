//! The well's configuration file (TOML): where the server is, the well's
//! token, its capacity per type, the runner's timings, and which well to
//! run with its settings. `docs/wells.md` describes every key.
//!
//! The file's common keys are read here; the `[well]` table belongs to the
//! well its `kind` names, as a [`WellSettings`], so the SDK knows no well
//! crate and each well crate knows only its own table.

use crate::runner::RunnerConfig;
use crate::well::Well;
use aquifer_protocol::{Backoff, Credential, TokenError};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The server's ceiling on a lease poll's wait.
pub const WAIT_MS_MAX: u64 = 60_000;

fn default_wait_ms() -> u64 {
    20_000
}
fn default_reconcile_interval_ms() -> u64 {
    10_000
}
fn default_create_timeout_ms() -> u64 {
    600_000
}
fn default_destroy_timeout_ms() -> u64 {
    600_000
}
fn default_shutdown_grace_ms() -> u64 {
    30_000
}

/// A well configuration file, with the `[well]` table of the well `S`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: WellSettings"))]
pub struct Config<S> {
    /// The server, `http://host:port`.
    pub url: String,
    /// The well's token, from `aquifer admin well create`; or
    #[serde(default)]
    pub token: Option<String>,
    /// a file holding it (surrounding whitespace is ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Where the well keeps its state. A relative path is relative to the
    /// configuration file.
    pub data_dir: PathBuf,
    /// How many of each type the well holds at once. A slot well's
    /// capacity defaults to its number of items.
    #[serde(default)]
    pub capacity: BTreeMap<String, u32>,
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    #[serde(default = "default_reconcile_interval_ms")]
    pub reconcile_interval_ms: u64,
    #[serde(default = "default_create_timeout_ms")]
    pub create_timeout_ms: u64,
    #[serde(default = "default_destroy_timeout_ms")]
    pub destroy_timeout_ms: u64,
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// The `[well]` table: `kind = S::KIND` and the well's settings.
    #[serde(deserialize_with = "well_table")]
    pub well: S,
}

/// A well's `[well]` table: the `kind` that names the well, its own
/// rules, and what it serves, which `[capacity]` is checked against.
pub trait WellSettings: DeserializeOwned {
    /// `kind` in the `[well]` table.
    const KIND: &'static str;

    /// Checks the settings themselves.
    fn validate(&self) -> Result<(), String>;

    /// What the well serves.
    fn serves(&self) -> Serves<'_>;

    /// Makes the paths in the settings relative to `base`, the
    /// configuration file's directory.
    fn resolve_paths(&mut self, _base: &Path) {}
}

/// What a well serves, and so what its `[capacity]` must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves<'a> {
    /// The types `[capacity]` names, at least one (the chaos well).
    Named,
    /// One type, as many at once as `[capacity]` says, which it must.
    Counted(&'a str),
    /// One type, one resource per item, or fewer if `[capacity]` says so
    /// (the slot well).
    Items { rtype: &'a str, items: u32 },
}

/// A well made from its `[well]` table: what [`crate::run_configured`]
/// runs.
pub trait ConfiguredWell: Well + Sized {
    type Settings: WellSettings;

    /// Opens the well, keeping what it keeps on disk under `data_dir`.
    fn from_settings(
        settings: Self::Settings,
        data_dir: &Path,
    ) -> impl Future<Output = anyhow::Result<Self>> + Send;
}

/// "a slot well", "an oxide well": the well a message is about.
fn a_well(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind} well")
}

/// Reads the `[well]` table as `S`'s, once its `kind` is seen to be `S`'s.
fn well_table<'de, D: Deserializer<'de>, S: WellSettings>(d: D) -> Result<S, D::Error> {
    let mut table = toml::Table::deserialize(d)?;
    match table.remove("kind") {
        Some(toml::Value::String(kind)) if kind == S::KIND => {}
        Some(kind) => {
            return Err(D::Error::custom(format!(
                "kind {kind}: not a {} well's configuration",
                S::KIND
            )));
        }
        None => return Err(D::Error::missing_field("kind")),
    }
    S::deserialize(table).map_err(|e| D::Error::custom(e.message()))
}

/// What `kind` names in the file at `path`: which well it configures.
pub fn kind(path: &Path) -> Result<String, ConfigError> {
    #[derive(Deserialize)]
    struct File {
        well: Table,
    }
    #[derive(Deserialize)]
    struct Table {
        kind: String,
    }
    let text = read(path)?;
    let file: File = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    Ok(file.well.kind)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("the well's token: {0}")]
    Token(TokenError),
}

impl<S: WellSettings> Config<S> {
    /// Reads and checks `path`; relative paths in it are made relative to
    /// its directory.
    pub fn load(path: &Path) -> Result<Config<S>, ConfigError> {
        let text = read(path)?;
        let mut config = Config::<S>::parse(&text).map_err(|e| match e {
            ParseError::Toml(source) => ConfigError::Parse {
                path: path.to_path_buf(),
                source: Box::new(source),
            },
            ParseError::Invalid(message) => ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            },
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        if let Some(f) = &config.token_file {
            config.token_file = Some(base.join(f));
        }
        config.well.resolve_paths(base);
        Ok(config)
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<Config<S>, ParseError> {
        let config: Config<S> = toml::from_str(text).map_err(ParseError::Toml)?;
        config.validate().map_err(ParseError::Invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.server().check()?;
        if self.wait_ms > WAIT_MS_MAX {
            return Err(format!("wait_ms is at most {WAIT_MS_MAX}"));
        }
        if self.reconcile_interval_ms < 100 {
            return Err("reconcile_interval_ms is at least 100".into());
        }
        for (t, &n) in &self.capacity {
            if n == 0 || n > u32::from(u16::MAX) {
                return Err(format!("capacity of {t}: use 1 to {}", u16::MAX));
            }
        }
        self.well.validate()?;
        self.validate_capacity()
    }

    /// `[capacity]` against what the well serves.
    fn validate_capacity(&self) -> Result<(), String> {
        let well = a_well(S::KIND);
        let only = |rtype: &str| match self.capacity.keys().find(|t| *t != rtype) {
            Some(t) => Err(format!("{well} serves {rtype} only, not {t}")),
            None => Ok(()),
        };
        match self.well.serves() {
            Serves::Named if self.capacity.is_empty() => Err(format!(
                "{well} serves the types in [capacity]: name at least one"
            )),
            Serves::Named => Ok(()),
            Serves::Items { rtype, .. } => only(rtype),
            Serves::Counted(rtype) => {
                only(rtype)?;
                if !self.capacity.contains_key(rtype) {
                    return Err(format!(
                        "{well} serves {rtype}: set how many it holds ([capacity] {rtype} = n)"
                    ));
                }
                Ok(())
            }
        }
    }

    /// The well's capacity per type (a slot well, for one, holds as many
    /// as it has items, or fewer if `[capacity]` says so).
    #[must_use]
    pub fn capacity(&self) -> BTreeMap<String, u32> {
        match self.well.serves() {
            Serves::Items { rtype, items } => {
                let n = self.capacity.get(rtype).map_or(items, |&c| c.min(items));
                BTreeMap::from([(rtype.to_string(), n)])
            }
            Serves::Named | Serves::Counted(_) => self.capacity.clone(),
        }
    }

    /// The server and the well's token, as the file gives them.
    fn server(&self) -> Credential<'_> {
        Credential {
            url_key: "url",
            url: &self.url,
            whose: "the well's",
            token: self.token.as_deref(),
            token_file: self.token_file.as_deref(),
        }
    }

    /// The token, from the configuration or its file.
    pub fn token(&self) -> Result<String, ConfigError> {
        self.server().token().map_err(ConfigError::Token)
    }

    /// What the runner runs with.
    pub fn runner(&self) -> Result<RunnerConfig, ConfigError> {
        Ok(RunnerConfig {
            url: self.url.clone(),
            token: self.token()?,
            capacity: self.capacity(),
            wait_ms: self.wait_ms,
            reconcile_interval: Duration::from_millis(self.reconcile_interval_ms),
            create_timeout: Duration::from_millis(self.create_timeout_ms),
            destroy_timeout: Duration::from_millis(self.destroy_timeout_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            backoff: Backoff::default(),
            destroy_backoff: crate::runner::DESTROY_BACKOFF,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Toml(toml::de::Error),
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::ChaosConfig;
    use crate::slot::SlotConfig;

    const SLOT: &str = r#"
        url = "http://127.0.0.1:8440"
        token = "aq_x"
        data_dir = "state"

        [well]
        kind = "slot"
        rtype = "lab-probe"
        reset = "probe-reset --port $AQUIFER_ITEM"

        [well.items.probe-a]
        metadata = { serial = "A-1", host = "lab1" }
        secrets = { pin = "1234" }

        [well.items.probe-b]
        metadata = { serial = "B-2", host = "lab1" }
    "#;

    const CHAOS: &str = r#"
        url = "http://127.0.0.1:8440"
        token_file = "/etc/aquifer/chaos.token"
        data_dir = "/var/lib/aquifer/chaos"
        reconcile_interval_ms = 2000

        [capacity]
        pg = 4
        oxide-token = 2

        [well]
        kind = "chaos"
        seed = 42
        create_fail_probability = 0.1
        create_fail_retryable = false
        destroy_fail_probability = 0.05
        create_delay_ms = [10, 50]
        crash_after_creates = 3
    "#;

    #[test]
    fn a_slot_well_holds_as_many_as_it_has_items() {
        let c = Config::<SlotConfig>::parse(SLOT).expect("a slot configuration");
        assert_eq!(c.capacity(), BTreeMap::from([("lab-probe".to_string(), 2)]));
        assert_eq!(c.reconcile_interval_ms, 10_000);
        assert_eq!(c.wait_ms, 20_000);
        let s = &c.well;
        assert_eq!(s.items["probe-a"].secrets["pin"], "1234");
        assert_eq!(s.reset_timeout_ms, 300_000);
        let fewer = format!("{SLOT}\n[capacity]\nlab-probe = 1\n");
        assert_eq!(
            Config::<SlotConfig>::parse(&fewer)
                .expect("fewer")
                .capacity(),
            BTreeMap::from([("lab-probe".to_string(), 1)])
        );
    }

    #[test]
    fn a_chaos_well_serves_its_capacity() {
        let c = Config::<ChaosConfig>::parse(CHAOS).expect("a chaos configuration");
        assert_eq!(c.capacity().len(), 2);
        let k = &c.well;
        assert_eq!(k.create_delay_ms, [10, 50]);
        assert_eq!(k.crash_after_creates, Some(3));
        assert!(!k.create_fail_retryable);
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let slot = |text: String| Config::<SlotConfig>::parse(&text).map(drop);
        let chaos = |text: String| Config::<ChaosConfig>::parse(&text).map(drop);
        let bad = [
            (slot(SLOT.replace("token = \"aq_x\"", "")), "token"),
            (
                slot(SLOT.replace("kind = \"slot\"", "kind = \"postgresql\"")),
                "postgresql",
            ),
            (slot(SLOT.replace("kind = \"slot\"", "")), "kind"),
            (slot(SLOT.replace("reset =", "resett =")), "resett"),
            (
                slot(SLOT.replace("data_dir = \"state\"", "data_dir = \"state\"\nbogus = 1")),
                "bogus",
            ),
            (
                chaos(CHAOS.replace("seed = 42", "seed = 42\nfail = 1")),
                "fail",
            ),
            (
                chaos(CHAOS.replace("0.05", "5.0")),
                "destroy_fail_probability",
            ),
            (
                chaos(CHAOS.replace("pg = 4", "").replace("oxide-token = 2", "")),
                "capacity",
            ),
            (
                slot(format!("{SLOT}\n[capacity]\npg = 1\n")),
                "serves lab-probe only",
            ),
            (slot(SLOT.replace("http://", "ftp://")), "url"),
            (slot(format!("wait_ms = 90000\n{SLOT}")), "wait_ms"),
        ];
        for (parsed, needle) in bad {
            let e = parsed.expect_err(needle).to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn paths_are_relative_to_the_file_and_tokens_are_trimmed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let text = SLOT.replace("token = \"aq_x\"", "token_file = \"well.token\"");
        std::fs::write(dir.path().join("well.toml"), text).expect("written");
        std::fs::write(dir.path().join("well.token"), "aq_secret\n").expect("written");
        let path = dir.path().join("well.toml");
        assert_eq!(kind(&path).expect("a kind"), "slot");
        let c = Config::<SlotConfig>::load(&path).expect("loaded");
        assert_eq!(c.data_dir, dir.path().join("state"));
        assert_eq!(c.token().expect("a token"), "aq_secret");
        let r = c.runner().expect("a runner configuration");
        assert_eq!(r.reconcile_interval, Duration::from_secs(10));
    }
}
