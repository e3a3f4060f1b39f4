//! The postgres well's `[well]` table: which cluster, as whom, what jobs
//! are told to connect to, and the limits of what it makes. The admin URL
//! may hold a password, so it is never printed, not even in an error.

use super::sql;
use aquifer_well::config::{Serves, WellSettings};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

fn default_prefix() -> String {
    "aq_".into()
}
fn default_connection_limit() -> u32 {
    10
}
fn default_admin_connections() -> u32 {
    4
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}

/// The `[well]` table of a postgres well (`kind = "postgres"`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The one resource type this well serves.
    pub rtype: String,
    /// `postgres://user:password@host:port/database` of a role with
    /// CREATEROLE and CREATEDB; or
    #[serde(default)]
    pub admin_url: Option<String>,
    /// a file holding it (surrounding whitespace is ignored), so the
    /// password need not sit in the configuration.
    #[serde(default)]
    pub admin_url_file: Option<PathBuf>,
    /// The host jobs connect to; by default the admin URL's.
    #[serde(default)]
    pub host: Option<String>,
    /// The port jobs connect to; by default the admin URL's.
    #[serde(default)]
    pub port: Option<u16>,
    /// What the names of the well's roles and databases start with. Two
    /// wells on one cluster need prefixes neither of which starts the
    /// other: each takes what carries its prefix for its own.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// `CONNECTION LIMIT` of each role.
    #[serde(default = "default_connection_limit")]
    pub connection_limit: u32,
    /// How many connections the well itself keeps to the cluster.
    #[serde(default = "default_admin_connections")]
    pub admin_connections: u32,
    /// How long the well waits for a connection of its own before a
    /// create fails (retryable) or a destruction is retried.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

// The admin URL may carry a password: Debug never shows it.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("rtype", &self.rtype)
            .field("admin_url", &self.admin_url.as_ref().map(|_| "(hidden)"))
            .field("admin_url_file", &self.admin_url_file)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .field("connection_limit", &self.connection_limit)
            .field("admin_connections", &self.admin_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

impl WellSettings for PostgresConfig {
    const KIND: &'static str = "postgres";

    /// Checks what can be checked before the admin URL is read.
    fn validate(&self) -> Result<(), String> {
        if self.rtype.is_empty() {
            return Err("rtype: name the resource type the well serves".into());
        }
        match (&self.admin_url, &self.admin_url_file) {
            (Some(_), Some(_)) => return Err("set admin_url or admin_url_file, not both".into()),
            (None, None) => return Err("set admin_url or admin_url_file".into()),
            (Some(url), None) => {
                admin_options(url, self.host.is_some())?;
            }
            (None, Some(_)) => {}
        }
        sql::check_prefix(&self.prefix)?;
        if !(1..=10_000).contains(&self.connection_limit) {
            return Err("connection_limit: use 1 to 10000".into());
        }
        if !(1..=64).contains(&self.admin_connections) {
            return Err("admin_connections: use 1 to 64".into());
        }
        if self.connect_timeout_ms == 0 {
            return Err("connect_timeout_ms: use at least 1".into());
        }
        if let Some(h) = &self.host
            && (h.is_empty() || h.contains(['/', '@', '?', '#']) || h.contains(char::is_whitespace))
        {
            return Err(format!("host {h:?}: use a host name or an address"));
        }
        Ok(())
    }

    fn serves(&self) -> Serves<'_> {
        Serves::Counted(&self.rtype)
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(f) = &self.admin_url_file {
            self.admin_url_file = Some(base.join(f));
        }
    }
}

/// The admin URL's connection options. Errors never repeat the URL, which
/// may hold a password.
pub(super) fn admin_options(url: &str, host_set: bool) -> Result<PgConnectOptions, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(
            "admin_url is not a PostgreSQL URL: use postgres://user:password@host:port/database"
                .into(),
        );
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| format!("admin_url is not a PostgreSQL URL: {e}"))?;
    // This build has no TLS: a URL that insists on it cannot be met, and
    // must not be quietly downgraded.
    if matches!(
        options.get_ssl_mode(),
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
    ) {
        return Err("admin_url asks for TLS (sslmode), which this well does not support".into());
    }
    if options.get_socket().is_some() && !host_set {
        return Err(
            "admin_url connects through a Unix socket: set host (and port) for jobs to connect to"
                .into(),
        );
    }
    Ok(options)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn config() -> PostgresConfig {
        PostgresConfig {
            rtype: "postgres".into(),
            admin_url: Some("postgres://aquifer:s3cret@db1.example:5433/postgres".into()),
            admin_url_file: None,
            host: None,
            port: None,
            prefix: default_prefix(),
            connection_limit: 10,
            admin_connections: 4,
            connect_timeout_ms: 1000,
        }
    }

    #[test]
    fn debug_hides_the_admin_url() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("hidden"), "{shown}");
    }

    #[test]
    fn mistakes_are_refused_without_repeating_the_url() {
        type Change = fn(&mut PostgresConfig);
        let cases: [(Change, &str); 8] = [
            (|c| c.admin_url = None, "admin_url"),
            (|c| c.admin_url_file = Some("f".into()), "not both"),
            (
                |c| c.admin_url = Some("mysql://x:s3cret@h/db".into()),
                "not a PostgreSQL URL",
            ),
            (
                |c| c.admin_url = Some("postgres://x:s3cret@h/db?sslmode=require".into()),
                "TLS",
            ),
            (
                |c| c.admin_url = Some("postgres://x:s3cret@%2Frun%2Fpg/db".into()),
                "socket",
            ),
            (|c| c.prefix = "aq-".into(), "prefix"),
            (|c| c.connection_limit = 0, "connection_limit"),
            (|c| c.host = Some("a b".into()), "host"),
        ];
        for (change, needle) in cases {
            let mut c = config();
            change(&mut c);
            let e = c.validate().expect_err(needle);
            assert!(e.contains(needle) && !e.contains("s3cret"), "{needle}: {e}");
        }
        let mut socket = config();
        socket.admin_url = Some("postgres://x@%2Frun%2Fpg/db".into());
        socket.host = Some("db1".into());
        assert_eq!(socket.validate(), Ok(()));
    }

    #[test]
    fn a_configuration_file_names_the_well_and_its_capacity() {
        use aquifer_well::config::Config;
        let text = r#"
            url = "http://127.0.0.1:8440"
            token = "aq_x"
            data_dir = "state"

            [capacity]
            postgres = 20

            [well]
            kind = "postgres"
            rtype = "postgres"
            admin_url_file = "pg-admin.url"
            host = "db1.ci.example"
        "#;
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("well.toml"), text).expect("written");
        let c = Config::<PostgresConfig>::load(&dir.path().join("well.toml")).expect("loaded");
        let p = &c.well;
        assert_eq!(p.admin_url_file, Some(dir.path().join("pg-admin.url")));
        assert_eq!((p.prefix.as_str(), p.connection_limit), ("aq_", 10));
        assert_eq!(c.capacity(), BTreeMap::from([("postgres".to_string(), 20)]));
        for (bad, needle) in [
            (text.replace("postgres = 20", ""), "set how many it holds"),
            (
                text.replace("postgres = 20", "postgres = 2\npg = 1"),
                "serves postgres only",
            ),
            (text.replace("host =", "hots ="), "hots"),
        ] {
            let e = Config::<PostgresConfig>::parse(&bad)
                .expect_err(needle)
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
