//! The `postgres` well: each resource is a login role with a random
//! password, valid until the job's deadline and limited in connections,
//! and a database owned by it that no other role may connect to. Both are
//! named `<prefix><resource id>` and commented `aquifer resource <id>`, so
//! the catalog itself says what the well made: `list_owned` reads it, and
//! nothing is kept on disk.
//!
//! `aquifer well run` runs it when `aquifer` is built with the feature
//! `postgres` (on by default); `aquifer_well::run_configured::<PostgresWell>`
//! runs it from a configuration file in any other program.

mod config;
mod errors;
pub mod scram;
pub mod sql;

use anyhow::Context as _;
use aquifer_well::{ConfiguredWell, WellSettings as _};
use aquifer_well::{CreateError, CreateRequest, Created, Owned, Well};
pub use config::PostgresConfig;
use config::admin_options;
use sql::{DatabaseRow, RoleRow};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

impl ConfiguredWell for PostgresWell {
    type Settings = PostgresConfig;

    /// It keeps nothing on disk: the catalog says what it made.
    async fn from_settings(settings: PostgresConfig, _data_dir: &Path) -> anyhow::Result<Self> {
        PostgresWell::open(settings)
            .await
            .context("opening the postgres well")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub struct PostgresWell {
    config: PostgresConfig,
    pool: PgPool,
    /// Where jobs connect.
    host: String,
    port: u16,
    /// The admin connection's `host:port`, for reasons and logs.
    endpoint: String,
}

/// A step that failed: what the well was doing, and PostgreSQL's answer.
struct Failed {
    doing: String,
    error: sqlx::Error,
}

fn failed(doing: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Failed {
    let doing = doing.into();
    move |error| Failed { doing, error }
}

/// Runs utility statements, which take no parameters (their names and
/// literals are quoted by `sql`), as one simple-protocol message.
async fn exec(conn: &mut PgConnection, statements: String, doing: String) -> Result<(), Failed> {
    sqlx::raw_sql(AssertSqlSafe(statements))
        .execute(conn)
        .await
        .map(drop)
        .map_err(failed(doing))
}

/// The role and the database named `name`, as the catalog has them.
async fn find(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(Option<RoleRow>, Option<DatabaseRow>), Failed> {
    let role: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed("read the roles"))?;
    let database: Option<(Option<String>, String)> = sqlx::query_as(
        "SELECT shobj_description(oid, 'pg_database'), pg_get_userbyid(datdba)::text \
         FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed("read the databases"))?;
    let role = role.map(|(comment,)| RoleRow {
        name: name.into(),
        comment,
    });
    let database = database.map(|(comment, owner)| DatabaseRow {
        name: name.into(),
        comment,
        owner,
    });
    Ok((role, database))
}

/// What a removal found of someone else's under the resource's name.
#[derive(Default)]
struct Foreign {
    role: bool,
    database: bool,
}

impl PostgresWell {
    /// A well on the cluster of the configured admin URL. It connects
    /// lazily, so it starts while PostgreSQL is down (creates fail,
    /// retryable, until it is up). Creates a connection pool: call it on
    /// a tokio runtime.
    pub async fn open(config: PostgresConfig) -> Result<PostgresWell, OpenError> {
        config.validate().map_err(OpenError::Invalid)?;
        let url = match (&config.admin_url, &config.admin_url_file) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) => tokio::fs::read_to_string(path)
                .await
                .map_err(|source| OpenError::Read {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_string(),
            (None, None) => return Err(OpenError::Invalid("set admin_url".into())),
        };
        let options = admin_options(&url, config.host.is_some())
            .map_err(OpenError::Invalid)?
            .application_name("aquifer-well")
            // Statements carry password verifiers: keep them out of logs.
            .disable_statement_logging();
        let endpoint = format!("{}:{}", options.get_host(), options.get_port());
        let host = config
            .host
            .clone()
            .unwrap_or_else(|| options.get_host().to_string());
        let port = config.port.unwrap_or_else(|| options.get_port());
        let pool = PgPoolOptions::new()
            .max_connections(config.admin_connections)
            .acquire_timeout(Duration::from_millis(config.connect_timeout_ms))
            .connect_lazy_with(options);
        Ok(PostgresWell {
            config,
            pool,
            host,
            port,
            endpoint,
        })
    }

    #[must_use]
    pub fn rtype(&self) -> &str {
        &self.config.rtype
    }

    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// What the job reads: where to connect and as whom (metadata), and
    /// the password, alone and in a URL (secrets).
    fn created(&self, name: &str, password: &str) -> Created {
        // A URL spells an IPv6 address in brackets.
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let at = format!("{host}:{}/{name}", self.port);
        let metadata = BTreeMap::from([
            ("host".to_string(), self.host.clone()),
            ("port".to_string(), self.port.to_string()),
            ("database".to_string(), name.to_string()),
            ("user".to_string(), name.to_string()),
            ("url".to_string(), format!("postgres://{name}@{at}")),
        ]);
        let secrets = BTreeMap::from([
            ("password".to_string(), password.to_string()),
            (
                "dsn".to_string(),
                format!("postgres://{name}:{password}@{at}"),
            ),
        ]);
        Created { metadata, secrets }
    }

    async fn connection(
        &self,
        doing: &str,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, Failed> {
        self.pool.acquire().await.map_err(failed(doing))
    }

    /// Makes the role and the database of `req`, tagged; the role gets
    /// the SCRAM `verifier` of its password.
    async fn make(
        &self,
        conn: &mut PgConnection,
        req: &CreateRequest,
        name: &str,
        verifier: &str,
    ) -> Result<(), Failed> {
        let role = sql::ident(name);
        let tag = sql::literal(&sql::tag(req.resource));
        // 0 is no deadline (a hand-made request): the role does not expire.
        let until = match req.deadline_ms {
            0 => String::new(),
            ms => format!(" VALID UNTIL {}", sql::literal(&sql::timestamp(ms))),
        };
        // One simple-protocol message runs as one transaction, so the role
        // never exists untagged. INHERIT: the owner of a database uses the
        // public schema through its implicit membership in
        // pg_database_owner (PostgreSQL 15), which NOINHERIT would void. The well's role becomes a member of it:
        // without superuser, that is what lets it give the role a database
        // (PostgreSQL 15 and older), drop that database and terminate the
        // role's sessions.
        let create_role = format!(
            "CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT \
             NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {limit} PASSWORD {verifier}{until}; \
             COMMENT ON ROLE {role} IS {tag}; \
             GRANT {role} TO CURRENT_USER",
            limit = self.config.connection_limit,
            verifier = sql::literal(verifier),
        );
        exec(conn, create_role, format!("create the role {name}")).await?;
        // CREATE DATABASE may not share a message (a transaction) with
        // anything.
        let create_db = format!("CREATE DATABASE {role} OWNER {role}");
        exec(conn, create_db, format!("create the database {name}")).await?;
        // PUBLIC may connect to a new database: only its owner may now.
        let close = format!(
            "COMMENT ON DATABASE {role} IS {tag}; REVOKE ALL ON DATABASE {role} FROM PUBLIC"
        );
        exec(conn, close, format!("close the database {name} to others")).await
    }

    /// Removes the role and the database of `resource` if the well made
    /// them: no new sessions, the open ones terminated, the database
    /// dropped, then the role. Whatever is missing counts as removed;
    /// whatever carries the name but not the well's tag is left alone and
    /// said.
    async fn remove(&self, conn: &mut PgConnection, resource: u32) -> Result<Foreign, Failed> {
        let prefix = &self.config.prefix;
        let name = sql::name(prefix, resource);
        let (role, database) = find(conn, &name).await?;
        let role_ours = role
            .as_ref()
            .is_some_and(|r| sql::role_resource(prefix, r) == Some(resource));
        let ours = BTreeSet::from_iter(role_ours.then_some(resource));
        let db_ours = database
            .as_ref()
            .is_some_and(|d| sql::database_resource(prefix, d, &ours) == Some(resource));
        let quoted = sql::ident(&name);
        if role_ours {
            let nologin = format!("ALTER ROLE {quoted} NOLOGIN");
            exec(conn, nologin, format!("stop new sessions of {name}")).await?;
        }
        if role_ours || db_ours {
            sqlx::query(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND (datname = $1 OR usename = $2)",
            )
            .bind(db_ours.then_some(name.as_str()))
            .bind(role_ours.then_some(name.as_str()))
            .execute(&mut *conn)
            .await
            .map_err(failed(format!("terminate the sessions of {name}")))?;
        }
        if db_ours {
            // FORCE: a session that slipped in since is terminated too.
            let drop = format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)");
            exec(conn, drop, format!("drop the database {name}")).await?;
        }
        if role_ours {
            // DROP OWNED revokes what was granted to the role (here and on
            // shared objects such as other databases), which would
            // otherwise keep it from being dropped.
            let drop = format!("DROP OWNED BY {quoted}; DROP ROLE IF EXISTS {quoted}");
            exec(conn, drop, format!("drop the role {name}")).await?;
        }
        Ok(Foreign {
            role: role.is_some() && !role_ours,
            database: database.is_some() && !db_ours,
        })
    }

    async fn try_create(
        &self,
        req: &CreateRequest,
        name: &str,
        verifier: &str,
    ) -> Result<(), CreateError> {
        let endpoint = &self.endpoint;
        let mut conn = (self.connection(&format!("create {name}")).await)
            .map_err(|f| errors::describe(endpoint, &f.doing, &f.error))?;
        // A retry after a crash or an abandoned attempt finds what the
        // earlier one made: it is removed, and made afresh with this
        // password.
        let foreign = (self.remove(&mut conn, req.resource).await)
            .map_err(|f| errors::describe(endpoint, &f.doing, &f.error))?;
        if foreign.role || foreign.database {
            let what = if foreign.role { "a role" } else { "a database" };
            return Err(CreateError::fatal(format!(
                "{what} named {name} exists at {endpoint} that this well did not make (it lacks the comment {:?}); an operator must drop or rename it",
                sql::tag(req.resource)
            )));
        }
        if let Err(f) = self.make(&mut conn, req, name, verifier).await {
            // Leave nothing half-made. If this fails too, the runner's
            // destruction or a reconcile pass finds the rest.
            if let Err(g) = self.remove(&mut conn, req.resource).await {
                tracing::warn!(resource = req.resource, doing = %g.doing, error = %g.error, "cleaning up a failed create");
            }
            return Err(errors::describe(endpoint, &f.doing, &f.error));
        }
        Ok(())
    }
}

impl Well for PostgresWell {
    async fn create(&self, req: &CreateRequest) -> Result<Created, CreateError> {
        if req.rtype != self.config.rtype {
            return Err(CreateError::fatal(format!(
                "this postgres well serves {}, not {}",
                self.config.rtype, req.rtype
            )));
        }
        let name = sql::name(&self.config.prefix, req.resource);
        let random = |e: getrandom::Error| {
            CreateError::retryable(format!("no randomness for a password: {e}"))
        };
        let password = scram::password().map_err(random)?;
        let salt = scram::salt().map_err(random)?;
        let secret = password.clone();
        let verifier =
            tokio::task::spawn_blocking(move || scram::verifier(&secret, &salt, scram::ITERATIONS))
                .await
                .map_err(|e| {
                    CreateError::retryable(format!("computing the password's verifier: {e}"))
                })?;
        self.try_create(req, &name, &verifier).await?;
        tracing::info!(resource = req.resource, role = %name, "role and database made");
        Ok(self.created(&name, &password))
    }

    async fn destroy(&self, resource: u32, _rtype: &str) -> Result<(), String> {
        let name = sql::name(&self.config.prefix, resource);
        let endpoint = &self.endpoint;
        let mut conn = (self.connection(&format!("destroy {name}")).await)
            .map_err(|f| errors::reason(endpoint, &f.doing, &f.error))?;
        let foreign = (self.remove(&mut conn, resource).await)
            .map_err(|f| errors::reason(endpoint, &f.doing, &f.error))?;
        if foreign.role || foreign.database {
            tracing::warn!(
                resource,
                name = %name,
                "left alone a role or database of this name that the well did not make"
            );
        }
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let endpoint = &self.endpoint;
        let list = async {
            let mut conn = self.connection("list what the well made").await?;
            let prefix = &self.config.prefix;
            let roles: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT rolname::text, shobj_description(oid, 'pg_authid') FROM pg_roles \
                 WHERE starts_with(rolname::text, $1)",
            )
            .bind(prefix)
            .fetch_all(&mut *conn)
            .await
            .map_err(failed("read the roles"))?;
            let dbs: Vec<(String, Option<String>, String)> = sqlx::query_as(
                "SELECT datname::text, shobj_description(oid, 'pg_database'), \
                 pg_get_userbyid(datdba)::text FROM pg_database \
                 WHERE starts_with(datname::text, $1)",
            )
            .bind(prefix)
            .fetch_all(&mut *conn)
            .await
            .map_err(failed("read the databases"))?;
            let roles: Vec<RoleRow> = (roles.into_iter())
                .map(|(name, comment)| RoleRow { name, comment })
                .collect();
            let dbs: Vec<DatabaseRow> = (dbs.into_iter())
                .map(|(name, comment, owner)| DatabaseRow {
                    name,
                    comment,
                    owner,
                })
                .collect();
            Ok(sql::owned(prefix, &roles, &dbs))
        };
        let owned = list
            .await
            .map_err(|f: Failed| errors::reason(endpoint, &f.doing, &f.error))?;
        Ok((owned.into_iter())
            .map(|resource| Owned {
                resource,
                rtype: self.config.rtype.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::tests::config;

    #[tokio::test]
    async fn jobs_get_the_admin_urls_host_unless_told_otherwise() {
        let w = PostgresWell::open(config()).await.expect("opened");
        let c = w.created("aq_7", "pw");
        assert_eq!(c.metadata["host"], "db1.example");
        assert_eq!(c.metadata["port"], "5433");
        assert_eq!(c.metadata["url"], "postgres://aq_7@db1.example:5433/aq_7");
        assert_eq!(c.secrets["dsn"], "postgres://aq_7:pw@db1.example:5433/aq_7");
        assert_eq!(w.endpoint, "db1.example:5433");
        let w = PostgresWell::open(PostgresConfig {
            host: Some("::1".into()),
            port: Some(6432),
            ..config()
        })
        .await
        .expect("opened");
        let c = w.created("aq_7", "pw");
        assert_eq!(c.metadata["host"], "::1");
        assert_eq!(c.metadata["url"], "postgres://aq_7@[::1]:6432/aq_7");
    }
}
