//! The server's configuration: a TOML file, overridden by `AQUIFER_*`
//! environment variables, overridden by flags.

use anyhow::{Context, Result, bail};
use aquifer_core::Limits;
use aquifer_server::Config;
use aquifer_server::driver::Options;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The shortest bootstrap token accepted: it guards every admin action.
pub const BOOTSTRAP_TOKEN_LEN_MIN: usize = 32;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// A TOML file with any of: listen, database, bootstrap_token,
    /// objects_dir, outputs_kept_s, [s3], [limits], [driver], [http].
    #[arg(long, env = "AQUIFER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the API listens (default 127.0.0.1:8440; port 0 picks one).
    #[arg(long, env = "AQUIFER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// sqlite:PATH, sqlite::memory: or postgres://... (default sqlite:aquifer.db).
    #[arg(long, env = "AQUIFER_DATABASE")]
    pub database: Option<String>,
    /// The operator's admin token (at least 32 characters). Prefer the
    /// environment or the file to a flag, which other users can see.
    #[arg(long, env = "AQUIFER_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Where jobs' outputs are kept (default: objects/ beside an SQLite
    /// database; none for PostgreSQL).
    #[arg(long, env = "AQUIFER_OBJECTS_DIR")]
    pub objects_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<SocketAddr>,
    database: Option<String>,
    bootstrap_token: Option<String>,
    objects_dir: Option<PathBuf>,
    outputs_kept_s: Option<u64>,
    s3: Option<aquifer_server::objects::S3Config>,
    limits: Option<Limits>,
    driver: Option<Options>,
    http: Option<aquifer_server::api::http::Http>,
}

impl ServerArgs {
    /// The configuration in force.
    pub fn resolve(self) -> Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<File>(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => File::default(),
        };
        let listen = (self.listen.or(file.listen))
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8440)));
        let database =
            (self.database.or(file.database)).unwrap_or_else(|| "sqlite:aquifer.db".into());
        let config = Config {
            bootstrap_token: self.bootstrap_token.or(file.bootstrap_token),
            objects_dir: self.objects_dir.or(file.objects_dir),
            outputs_kept_s: file.outputs_kept_s,
            s3: file.s3,
            limits: file.limits.unwrap_or_default(),
            driver: file.driver.unwrap_or_default(),
            http: file.http.unwrap_or_default(),
            ..Config::new(&database, listen)
        };
        if config.driver.queue_max == 0 || config.driver.batch_max == 0 {
            bail!("[driver] queue_max and batch_max must be at least 1");
        }
        if let Some(token) = &config.bootstrap_token
            && token.len() < BOOTSTRAP_TOKEN_LEN_MIN
        {
            bail!("the bootstrap token must have at least {BOOTSTRAP_TOKEN_LEN_MIN} characters");
        }
        Ok(config)
    }
}
