//! The local factory's configuration file (TOML) and the function behind
//! `aquifer factory local --config FILE`.
//!
//! ```toml
//! url = "http://127.0.0.1:8440"
//! token_file = "/etc/aquifer/factory.token"   # or: token = "aq_..."
//! data_dir = "/var/lib/aquifer/factory"
//!
//! [targets]
//! "ubuntu-24.04" = 4                          # at most 4 workers at once
//! ```

use crate::local::LocalFactory;
use crate::runner::{RunnerConfig, run};
use anyhow::{Context, Result, bail};
use aquifer_protocol::Credential;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The server's base URL; the agents get it too.
    pub url: String,
    /// The factory's token, from `aquifer admin factory create`.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the token (trailing whitespace ignored), so that the
    /// configuration itself holds no secret.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Where the workers' directories go (`<data_dir>/workers/<id>`).
    pub data_dir: PathBuf,
    /// How many workers of each target may exist at once.
    pub targets: BTreeMap<String, u16>,
    /// The agent program and its first arguments; `--url` and `--dir` are
    /// added, and the one-time key is in `AQUIFER_AGENT_KEY`. Default: this executable with `agent`.
    #[serde(default)]
    pub agent_command: Option<Vec<String>>,
    /// Variables added to the agents' (and so the tasks') environment.
    /// Otherwise agents keep only `PATH`, `HOME`, the locale and a few
    /// more of the factory's: its secrets stay behind.
    #[serde(default)]
    pub agent_env: BTreeMap<String, String>,
    #[serde(default = "defaults::reconcile_interval_ms")]
    pub reconcile_interval_ms: u64,
    /// How long a lease request waits on the server (at most 60 000).
    #[serde(default = "defaults::lease_wait_ms")]
    pub lease_wait_ms: u64,
    /// How long a worker's processes have between SIGTERM and SIGKILL.
    #[serde(default = "defaults::destroy_grace_ms")]
    pub destroy_grace_ms: u64,
}

impl std::fmt::Debug for LocalConfig {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("token_file", &self.token_file)
            .field("data_dir", &self.data_dir)
            .field("targets", &self.targets)
            .field("agent_command", &self.agent_command)
            .field("agent_env", &self.agent_env.keys().collect::<Vec<_>>())
            .field("reconcile_interval_ms", &self.reconcile_interval_ms)
            .field("lease_wait_ms", &self.lease_wait_ms)
            .field("destroy_grace_ms", &self.destroy_grace_ms)
            .finish()
    }
}

mod defaults {
    pub fn reconcile_interval_ms() -> u64 {
        60_000
    }
    pub fn lease_wait_ms() -> u64 {
        20_000
    }
    pub fn destroy_grace_ms() -> u64 {
        10_000
    }
}

impl LocalConfig {
    /// Parses and checks a configuration; relative paths stay relative to
    /// the working directory.
    pub fn parse(text: &str) -> Result<LocalConfig> {
        let config: LocalConfig = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<LocalConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        LocalConfig::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    fn check(&self) -> Result<()> {
        self.server().check().map_err(anyhow::Error::msg)?;
        if self.targets.is_empty() {
            bail!("no targets: add a [targets] table, e.g. \"ubuntu-24.04\" = 2");
        }
        if let Some((t, _)) = self.targets.iter().find(|(_, n)| **n == 0) {
            bail!("target {t:?} has capacity 0; leave it out instead");
        }
        if self.agent_command.as_ref().is_some_and(Vec::is_empty) {
            bail!("agent_command is empty");
        }
        if self.reconcile_interval_ms == 0 {
            bail!("reconcile_interval_ms must be above 0");
        }
        if self.lease_wait_ms > 60_000 {
            bail!("lease_wait_ms is at most 60000 (the server's limit)");
        }
        Ok(())
    }

    /// The server and the factory's token, as the file gives them.
    fn server(&self) -> Credential<'_> {
        Credential {
            url_key: "url",
            url: &self.url,
            whose: "the factory's",
            token: self.token.as_deref(),
            token_file: self.token_file.as_deref(),
        }
    }

    /// The token, read from `token_file` if that is how it is given.
    pub fn token(&self) -> Result<String> {
        self.server().token().context("reading the factory's token")
    }

    /// The agent command, defaulting to this executable's `agent`.
    pub fn agent_command(&self) -> Result<Vec<String>> {
        if let Some(c) = &self.agent_command {
            return Ok(c.clone());
        }
        let exe = std::env::current_exe().context("finding this executable for the agent")?;
        Ok(vec![exe.display().to_string(), "agent".to_string()])
    }

    #[must_use]
    pub fn runner_config(&self, token: String) -> RunnerConfig {
        RunnerConfig {
            lease_wait: Duration::from_millis(self.lease_wait_ms),
            reconcile_interval: Duration::from_millis(self.reconcile_interval_ms),
            ..RunnerConfig::new(&self.url, &token, self.targets.clone())
        }
    }

    pub fn factory(&self) -> Result<LocalFactory> {
        LocalFactory::new(
            &self.data_dir,
            self.agent_command()?,
            self.agent_env.clone().into_iter().collect(),
            Duration::from_millis(self.destroy_grace_ms),
        )
        .map_err(anyhow::Error::msg)
    }
}

/// Runs a local factory until `shutdown` resolves. Its agents keep running
/// across a restart and are adopted by the next start.
pub async fn run_local(config: &LocalConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let token = config.token()?;
    let factory = config.factory()?;
    run(factory, config.runner_config(token), shutdown).await
}

/// `aquifer factory local --config FILE`.
pub async fn run_local_from_config(path: &Path, shutdown: impl Future<Output = ()>) -> Result<()> {
    let config = LocalConfig::load(path)?;
    run_local(&config, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
        url = "http://127.0.0.1:8440"
        token = "aq_0123_4567"
        data_dir = "/var/lib/aquifer/factory"
        agent_command = ["/usr/local/bin/aquifer", "agent"]
        reconcile_interval_ms = 30000
        lease_wait_ms = 10000
        destroy_grace_ms = 2000
        [targets]
        "ubuntu-24.04" = 4
        lab = 1
        [agent_env]
        AQUIFER_BMAT_DIR = "/usr/local/bin"
    "#;

    #[test]
    fn a_full_configuration_parses() {
        let c = LocalConfig::parse(FULL).expect("parses");
        assert_eq!(c.targets["ubuntu-24.04"], 4);
        assert_eq!(c.targets["lab"], 1);
        assert_eq!(c.token().expect("a token"), "aq_0123_4567");
        assert_eq!(
            c.agent_command().expect("a command"),
            vec!["/usr/local/bin/aquifer", "agent"]
        );
        let r = c.runner_config("t".into());
        assert_eq!(r.lease_wait, Duration::from_secs(10));
        assert_eq!(r.reconcile_interval, Duration::from_secs(30));
        assert_eq!(c.agent_env["AQUIFER_BMAT_DIR"], "/usr/local/bin");
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let c = LocalConfig::parse(FULL).expect("parses");
        assert!(!format!("{c:?}").contains("aq_0123"));
        assert!(!format!("{:?}", c.runner_config("aq_0123".into())).contains("aq_0123"));
    }

    #[test]
    fn defaults_fill_the_rest() {
        let c = LocalConfig::parse(
            r#"
            url = "http://h:1"
            token = "x"
            data_dir = "d"
            targets = { t = 1 }
            "#,
        )
        .expect("parses");
        assert_eq!(c.reconcile_interval_ms, 60_000);
        assert_eq!(c.lease_wait_ms, 20_000);
        assert_eq!(c.destroy_grace_ms, 10_000);
        let cmd = c.agent_command().expect("a command");
        assert_eq!(cmd.len(), 2);
        assert_eq!(cmd[1], "agent");
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        let base = "url = \"http://h:1\"\ndata_dir = \"d\"\n";
        for (extra, says) in [
            (
                "token = \"x\"\ntimeout = 3\n[targets]\nt = 1\n",
                "unknown field",
            ),
            ("token = \"x\"\n[targets]\nt = \"big\"\n", "invalid type"),
            (
                "token = \"x\"\nreconcile = 3\n[targets]\nt = 1\n",
                "unknown field",
            ),
            ("[targets]\nt = 1\n", "token"),
            (
                "token = \"x\"\ntoken_file = \"f\"\n[targets]\nt = 1\n",
                "not both",
            ),
            ("token = \"x\"\n[targets]\n", "no targets"),
            ("token = \"x\"\n[targets]\nt = 0\n", "capacity 0"),
            (
                "token = \"x\"\nagent_command = []\n[targets]\nt = 1\n",
                "agent_command",
            ),
            (
                "token = \"x\"\nlease_wait_ms = 90000\n[targets]\nt = 1\n",
                "60000",
            ),
        ] {
            let err = LocalConfig::parse(&format!("{base}{extra}")).expect_err(extra);
            assert!(format!("{err:#}").contains(says), "{extra}: {err:#}");
        }
        let err = LocalConfig::parse(
            "url = \"h:1\"\ntoken = \"x\"\ndata_dir = \"d\"\n[targets]\nt = 1\n",
        )
        .expect_err("a bad url");
        assert!(err.to_string().contains("http://"));
    }

    #[test]
    fn the_token_may_live_in_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("token");
        std::fs::write(&file, "aq_secret\n").expect("written");
        let c = LocalConfig::parse(&format!(
            "url = \"http://h:1\"\ntoken_file = {:?}\ndata_dir = \"d\"\n[targets]\nt = 1\n",
            file.display().to_string()
        ))
        .expect("parses");
        assert_eq!(c.token().expect("read"), "aq_secret");
        std::fs::write(&file, "\n").expect("written");
        assert!(c.token().is_err());
    }
}
