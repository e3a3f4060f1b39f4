//! The embedded stack `aquifer dev` and `aquifer demo` run in one process:
//! the server on an SQLite file in a data directory, two `slot` wells (two
//! lab probes, one licence) and the `local` factory, whose workers are
//! agent processes of this binary. Everything is registered through the
//! API, as an operator would.

use crate::client::{Client, Endpoint};
use crate::server;
use anyhow::{Context, Result};
use aquifer_protocol::admin::{Created, NewFactory, NewTarget, NewType, NewWell, Registered};
use aquifer_protocol::{CallError, FactoryId, TargetId, TypeId, WellId, path};
use aquifer_server::{Config, Running};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The target the local factory serves.
pub const TARGET: &str = "local";

pub struct Stack {
    pub url: String,
    pub token: String,
    pub dir: PathBuf,
    server: Running,
    services: JoinSet<(&'static str, Result<()>)>,
    stop: watch::Sender<bool>,
}

impl Stack {
    /// Starts the stack in `dir` (made if missing), listening on `listen`.
    /// A data directory used before keeps its database, bootstrap token
    /// and services' tokens.
    pub async fn start(dir: &Path, listen: SocketAddr) -> Result<Stack> {
        private_dir(dir)?;
        let dir = dir.canonicalize()?;
        let token = remembered(&dir.join("bootstrap.token"), || {
            aquifer_server::auth::random_secret().map_err(anyhow::Error::from)
        })?;
        let database = format!("sqlite:{}", dir.join("aquifer.db").display());
        let config = Config {
            bootstrap_token: Some(token.clone()),
            ..Config::new(&database, listen)
        };
        let server = server::start(config).await?;
        let (stop, _) = watch::channel(false);
        let mut stack = Stack {
            url: server.url.clone(),
            token,
            dir,
            server,
            services: JoinSet::new(),
            stop,
        };
        stack.register().await?;
        Ok(stack)
    }

    pub fn client(&self) -> Result<Client> {
        Client::new(&Endpoint {
            url: self.url.clone(),
            token: Some(self.token.clone()),
            json: false,
        })
    }

    /// Types, the target, the wells and the factory; each only once.
    async fn register(&mut self) -> Result<()> {
        let c = self.client()?;
        for (name, max_per_job) in [("license", 1), ("probe", 1)] {
            let body = NewType {
                name: TypeId::new(name),
                max_per_job,
                privilege: None,
            };
            let defined = c.post::<Created<TypeId>, _>(path::ADMIN_TYPES, &body);
            ensure(defined.await)?;
        }
        let body = NewTarget {
            name: TargetId::new(TARGET),
            privilege: None,
        };
        ensure(
            c.post::<Created<TargetId>, _>(path::ADMIN_TARGETS, &body)
                .await,
        )?;
        let probes = r#"
[well]
kind = "slot"
rtype = "probe"
[well.items.probe-a]
metadata = { bench = "bench-1", serial = "A-1001" }
[well.items.probe-b]
metadata = { bench = "bench-2", serial = "B-2002" }
"#;
        let licenses = r#"
[well]
kind = "slot"
rtype = "license"
[well.items.seat-1]
secrets = { key = "LIC-7F3A-92C1-55D0" }
"#;
        let pools = |rtype: &str, n| Kind::Well(BTreeMap::from([(TypeId::new(rtype), n)]));
        self.service("probes", pools("probe", 2), probes).await?;
        self.service("licenses", pools("license", 1), licenses)
            .await?;
        let mut factory = format!("[targets]\n{TARGET} = 2\n");
        // The agents share this terminal: only their warnings and errors,
        // unless RUST_LOG (which they inherit) says otherwise.
        if std::env::var_os("RUST_LOG").is_none() {
            factory.push_str("[agent_env]\nRUST_LOG = \"warn\"\n");
        }
        let targets = BTreeMap::from([(TargetId::new(TARGET), 2)]);
        self.service("local", Kind::Factory(targets), &factory)
            .await?;
        Ok(())
    }

    /// Registers a well or factory (once: its token is kept in its
    /// directory), writes its configuration and runs it on a task.
    async fn service(&mut self, name: &'static str, kind: Kind, settings: &str) -> Result<()> {
        let home = self.dir.join(name);
        private_dir(&home)?;
        let token_file = home.join("token");
        if !token_file.exists() {
            let (c, name) = (self.client()?, name.to_string());
            let token = match &kind {
                Kind::Well(pools) => {
                    let pools = pools.clone();
                    let body = NewWell { name, pools };
                    let made = c.post::<Registered<WellId>, _>(path::ADMIN_WELLS, &body);
                    made.await?.body.token
                }
                Kind::Factory(targets) => {
                    let targets = targets.clone();
                    let body = NewFactory { name, targets };
                    let made = c.post::<Registered<FactoryId>, _>(path::ADMIN_FACTORIES, &body);
                    made.await?.body.token
                }
            };
            write_private(&token_file, &token)?;
        }
        let config = home.join("config.toml");
        let text = format!(
            "url = {url:?}\ntoken_file = {token:?}\ndata_dir = {data:?}\n{settings}",
            url = self.url,
            token = token_file.display().to_string(),
            data = home.join("data").display().to_string(),
        );
        write_private(&config, &text)?;
        let mut stopped = self.stop.subscribe();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        self.services.spawn(async move {
            let run = match kind {
                Kind::Well(_) => aquifer_well::run_from_config(&config, shutdown).await,
                Kind::Factory(_) => aquifer_factory::run_local_from_config(&config, shutdown).await,
            };
            (name, run)
        });
        Ok(())
    }

    /// Where the local factory keeps its workers' directories.
    #[must_use]
    pub fn workers_dir(&self) -> PathBuf {
        self.dir.join("local").join("data").join("workers")
    }

    /// Waits until a service stops by itself (an error), for `dev`.
    pub async fn failed_service(&mut self) -> Result<()> {
        match self.services.join_next().await {
            Some(Ok((name, Err(e)))) => Err(e.context(format!("the {name} service stopped"))),
            Some(Ok((name, Ok(())))) => anyhow::bail!("the {name} service stopped"),
            Some(Err(e)) => Err(e.into()),
            None => std::future::pending().await,
        }
    }

    /// Stops the services (they finish what is under way), then the server.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        while let Some(done) = self.services.join_next().await {
            if let Ok((name, Err(e))) = done {
                first_error.get_or_insert(e.context(format!("the {name} service")));
            }
        }
        self.server.stop().await;
        first_error.map_or(Ok(()), Err)
    }
}

/// A service of the stack, with its capacity: per type for a well, per
/// target for the factory.
enum Kind {
    Well(BTreeMap<TypeId, u16>),
    Factory(BTreeMap<TargetId, u16>),
}

/// Accepts "already exists" as done: `dev` registers again on every start.
fn ensure<T>(result: Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.downcast_ref().and_then(CallError::code) == Some("already_exists") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The contents of `path`, made by `make` (and kept, readable by the owner
/// only) the first time.
fn remembered(path: &Path, make: impl FnOnce() -> Result<String>) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return Ok(s.trim().to_string());
    }
    let s = make()?;
    write_private(path, &s)?;
    Ok(s)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // A file made before with a wider mode is narrowed too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// A directory only its owner may enter: it holds tokens, services'
/// configurations and the database.
fn private_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok(())
}
