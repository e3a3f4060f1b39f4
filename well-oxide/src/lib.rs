//! The `oxide` well: each resource is an Oxide account a job may use and
//! leak, a local user with a project of its own and a short-lived token,
//! made through the `oxide` crate (pinned to the rack's release; see
//! `docs/wells.md`) and unmade, with everything the job made in it, when
//! the job ends.
//!
//! In `project` mode the well holds a silo admin's token and works in that
//! silo; in `silo` mode it holds a fleet admin's token and makes a silo per
//! resource, with an admin user of its own to clean it up with. What it
//! made is found by name (`<prefix>-<resource id>`) and description, so
//! nothing needs to be remembered across a crash.
//!
//! It is not in `aquifer` by default (the `oxide` crate is the largest
//! compile unit in the tree): `cargo build --release -p aquifer --features
//! oxide` builds it into `aquifer well run`;
//! `aquifer_well::run_configured::<OxideWell>` runs it from a
//! configuration file in any other program. Its tests and benchmark
//! run against `aquifer-oxide-fake`.

pub mod api;
pub mod config;
mod empty;
mod error;
pub mod names;
mod project;
mod silo;
pub mod token;
mod users;

pub use config::{Mode, OxideConfig, ProjectRole, Quotas};

use anyhow::Context as _;
use api::{Connector, Failure, OxideError, Retry};
use aquifer_protocol::{Backoff, TokenError};
use aquifer_well::ConfiguredWell;
use aquifer_well::{CreateError, CreateRequest, Created, Owned, Well};
use chrono::{DateTime, SecondsFormat, Utc};
use names::{Names, is_marked, resource_of};
use oxide::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use users::Scope;
use uuid::Uuid;

impl ConfiguredWell for OxideWell {
    type Settings = OxideConfig;

    /// It keeps nothing on disk: names and descriptions on the rack say
    /// what it made.
    async fn from_settings(settings: OxideConfig, _data_dir: &Path) -> anyhow::Result<Self> {
        OxideWell::new(settings).context("setting up the oxide well")
    }
}

/// Why the well cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the oxide token: {0}")]
    Token(#[from] TokenError),
}

/// What every step needs: the configuration, the well's own client and
/// how to make others, and the retry policy.
pub(crate) struct Ctx {
    config: OxideConfig,
    connector: Connector,
    /// Carries the well's credential.
    admin: oxide::Client,
    retry: Retry,
}

/// The silo a project-mode well works in: the silo of its credential.
struct Home {
    id: Uuid,
    name: String,
}

pub struct OxideWell {
    ctx: Ctx,
    home: OnceCell<Home>,
}

impl OxideWell {
    /// Reads the token and CA certificate the configuration names. The
    /// rack is not called until the first create, destroy or listing, so
    /// a rack that is down does not keep the well from starting.
    pub fn new(config: OxideConfig) -> Result<OxideWell, SetupError> {
        let token = config.rack().token()?;
        let certs = match &config.ca_cert {
            Some(path) => {
                let pem = read(path)?;
                let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                    .map_err(|e| SetupError::Invalid(format!("{}: {e}", path.display())))?;
                if certs.is_empty() {
                    let path = path.display();
                    return Err(SetupError::Invalid(format!("{path}: no PEM certificate")));
                }
                certs
            }
            None => Vec::new(),
        };
        let connector = Connector::new(
            &config.host,
            certs,
            Duration::from_millis(config.request_timeout_ms),
            Duration::from_millis(config.connect_timeout_ms),
        );
        let admin = connector
            .with_token(&token)
            .map_err(|e| SetupError::Invalid(e.to_string()))?;
        let retry = Retry {
            retries: config.retries,
            backoff: Backoff {
                first: std::time::Duration::from_millis(config.retry_base_ms),
                max: std::time::Duration::from_millis(config.retry_base_ms.saturating_mul(16)),
            },
        };
        Ok(OxideWell {
            ctx: Ctx {
                config,
                connector,
                admin,
                retry,
            },
            home: OnceCell::new(),
        })
    }

    #[must_use]
    pub fn config(&self) -> &OxideConfig {
        &self.ctx.config
    }

    fn names(&self, resource: u32) -> Names {
        Names::new(&self.ctx.config.prefix, resource)
    }

    /// The credential's silo, looked up once.
    async fn home(&self) -> Result<&Home, OxideError> {
        let ctx = &self.ctx;
        self.home
            .get_or_try_init(|| async {
                let step = "looking up the well's own Oxide user";
                let me = ctx
                    .retry
                    .call(step, || ctx.admin.current_user_view().send())
                    .await?
                    .into_inner();
                if !me.silo_admin {
                    return Err(OxideError::new(
                        step,
                        Failure::Status {
                            status: 403,
                            code: Some("Forbidden".into()),
                            message: format!(
                                "{} is not an admin of silo {}",
                                me.display_name, *me.silo_name
                            ),
                        },
                    ));
                }
                Ok(Home {
                    id: me.silo_id,
                    name: me.silo_name.to_string(),
                })
            })
            .await
    }

    /// The most a token may live in the credential's silo, if the silo
    /// says. Not knowing is no reason to fail: a too-long TTL is refused
    /// at the confirmation with a reason of its own.
    async fn silo_ttl_max_s(&self) -> Option<u32> {
        let ctx = &self.ctx;
        let step = "reading the silo's auth settings";
        match ctx
            .retry
            .call(step, || ctx.admin.auth_settings_view().send())
            .await
        {
            Ok(s) => s.into_inner().device_token_max_ttl_seconds,
            Err(e) => {
                tracing::warn!(error = %e, "oxide: token TTL not checked against the silo's");
                None
            }
        }
    }

    async fn create_in_project_mode(
        &self,
        names: &Names,
        deadline_ms: u64,
    ) -> Result<Created, CreateError> {
        let ctx = &self.ctx;
        let r = ctx.retry;
        let home = self.home().await.map_err(OxideError::into_create_error)?;
        let ttl = token_ttl_s(
            deadline_ms,
            now_ms(),
            ctx.config.token_ttl_max_s,
            self.silo_ttl_max_s().await,
        )?;
        let made = async {
            let pw = names::password();
            let user = users::create_or_reset(&ctx.admin, r, home.id, Scope::Own, &names.base, &pw)
                .await?;
            project::create(&ctx.admin, r, names, ctx.config.default_vpc).await?;
            let role = ctx.config.project_role.api();
            project::grant(&ctx.admin, r, &names.base, user.id, role).await?;
            token::mint(&ctx.connector, r, &home.name, &names.base, &pw, ttl).await
        };
        let minted = made.await.map_err(OxideError::into_create_error)?;
        Ok(created(
            ctx.connector.host(),
            &home.name,
            names,
            minted,
            ttl,
        ))
    }

    /// The user goes first: its token stops working at once, so nothing
    /// of the job's can still be making things while they are deleted.
    async fn destroy_in_project_mode(&self, names: &Names) -> Result<(), OxideError> {
        let ctx = &self.ctx;
        let home = self.home().await?;
        if let Some(u) = users::find(&ctx.admin, ctx.retry, Scope::Own, &names.base).await? {
            users::remove(&ctx.admin, ctx.retry, home.id, &u).await?;
        }
        let stop = Duration::from_millis(ctx.config.instance_stop_timeout_ms);
        let whose = empty::Whose::Marked;
        empty::destroy(&ctx.admin, ctx.retry, &names.base, whose, stop).await
    }

    async fn owned_in_project_mode(&self) -> Result<BTreeSet<u32>, OxideError> {
        let ctx = &self.ctx;
        let prefix = &ctx.config.prefix;
        let mut ids = BTreeSet::new();
        for p in project::list(&ctx.admin, ctx.retry).await? {
            if is_marked(&p.description) {
                ids.extend(resource_of(prefix, &p.name));
            }
        }
        for u in users::list(&ctx.admin, ctx.retry, Scope::Own).await? {
            ids.extend(resource_of(prefix, &u.display_name));
        }
        Ok(ids)
    }
}

fn read(path: &std::path::Path) -> Result<String, SetupError> {
    std::fs::read_to_string(path).map_err(|source| SetupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// How long the job's token lives: until the job's deadline (it is useless
/// after), never longer than the configured or the silo's maximum. A
/// deadline of 0 is unknown: the configured maximum then.
pub fn token_ttl_s(
    deadline_ms: u64,
    now_ms: u64,
    max_s: u32,
    silo_max_s: Option<u32>,
) -> Result<NonZeroU32, CreateError> {
    let remaining_s = if deadline_ms == 0 {
        u64::from(max_s)
    } else {
        deadline_ms.saturating_sub(now_ms) / 1000
    };
    let ttl = remaining_s
        .min(u64::from(max_s))
        .min(u64::from(silo_max_s.unwrap_or(u32::MAX)));
    u32::try_from(ttl)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| CreateError::fatal("oxide: the job's deadline has passed: no token to make"))
}

/// What the job is told.
fn created(
    host: &str,
    silo: &str,
    names: &Names,
    minted: token::Minted,
    ttl: NonZeroU32,
) -> Created {
    let expires = minted.expires.unwrap_or_else(|| {
        let ms = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        at + chrono::Duration::seconds(i64::from(ttl.get()))
    });
    Created {
        metadata: BTreeMap::from([
            ("host".to_string(), host.to_string()),
            ("silo".to_string(), silo.to_string()),
            ("project".to_string(), names.base.clone()),
            ("user".to_string(), names.base.clone()),
            (
                "token_expires".to_string(),
                expires.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
        ]),
        secrets: BTreeMap::from([("token".to_string(), minted.token)]),
    }
}

impl Well for OxideWell {
    async fn create(&self, req: &CreateRequest) -> Result<Created, CreateError> {
        if req.rtype != self.ctx.config.rtype {
            return Err(CreateError::fatal(format!(
                "oxide: this well makes {}, not {}",
                self.ctx.config.rtype, req.rtype
            )));
        }
        let names = self.names(req.resource);
        match self.ctx.config.mode {
            Mode::Project => self.create_in_project_mode(&names, req.deadline_ms).await,
            Mode::Silo => {
                let max = self.ctx.config.token_ttl_max_s;
                let ttl = token_ttl_s(req.deadline_ms, now_ms(), max, None)?;
                let (silo, minted) = silo::create(&self.ctx, &names, ttl)
                    .await
                    .map_err(OxideError::into_create_error)?;
                let host = self.ctx.config.job_host(&silo);
                Ok(created(&host, &silo, &names, minted, ttl))
            }
        }
    }

    async fn destroy(&self, resource: u32, _rtype: &str) -> Result<(), String> {
        let names = self.names(resource);
        let done = match self.ctx.config.mode {
            Mode::Project => self.destroy_in_project_mode(&names).await,
            Mode::Silo => silo::destroy(&self.ctx, &names).await,
        };
        done.map_err(|e| format!("oxide: {e}"))
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let ids = match self.ctx.config.mode {
            Mode::Project => self.owned_in_project_mode().await,
            Mode::Silo => silo::owned(&self.ctx).await,
        };
        let ids = ids.map_err(|e| format!("oxide: {e}"))?;
        let rtype = &self.ctx.config.rtype;
        Ok(ids
            .into_iter()
            .map(|resource| Owned {
                resource,
                rtype: rtype.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_bad_files_stop_the_well_at_start() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let text = |extra: &str| {
            format!("rtype = \"o\"\nmode = \"project\"\nhost = \"https://rack\"\n{extra}")
        };
        let parse = |t: &str| toml::from_str::<OxideConfig>(t).expect("parsed");
        let missing = parse(&text(&format!(
            "token_file = \"{}/none\"",
            dir.path().display()
        )));
        assert!(matches!(
            OxideWell::new(missing),
            Err(SetupError::Token(TokenError::Read { .. }))
        ));
        let blank = dir.path().join("blank");
        std::fs::write(&blank, "\n").expect("written");
        let empty = parse(&text(&format!("token_file = \"{}\"", blank.display())));
        assert!(matches!(
            OxideWell::new(empty),
            Err(SetupError::Token(TokenError::Empty { .. }))
        ));
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "not a certificate").expect("written");
        let bad_ca = parse(&text(&format!(
            "token = \"t\"\nca_cert = \"{}\"",
            pem.display()
        )));
        assert!(
            OxideWell::new(bad_ca).is_err(),
            "a CA file that holds no certificate"
        );
    }

    #[test]
    fn a_token_lives_until_the_deadline_within_the_maxima() {
        let now = 1_000_000_000;
        let ttl = |deadline, max, silo| token_ttl_s(deadline, now, max, silo).map(NonZeroU32::get);
        assert_eq!(ttl(now + 3_600_500, 86_400, None), Ok(3_600));
        assert_eq!(ttl(now + 3_600_000, 600, None), Ok(600));
        assert_eq!(ttl(now + 3_600_000, 86_400, Some(60)), Ok(60));
        assert_eq!(ttl(0, 7_200, None), Ok(7_200), "no deadline: the maximum");
        let past = ttl(now - 1, 86_400, None).expect_err("a passed deadline");
        assert!(!past.retryable);
        assert!(ttl(now + 999, 86_400, None).is_err(), "less than a second");
    }
}
