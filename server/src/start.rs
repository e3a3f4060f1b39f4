//! One way to start a server: open the store, recover the driver, wire its
//! effects to the long-poll wakers, and serve the API on a listener. The
//! `aquifer server` command, `aquifer dev` and `demo`, the tests and the
//! benchmarks all start it here.

use crate::api::{self, Api};
use crate::driver::{Clock, Driver, EffectSink, Handle, Options, Recovery, Setup, SystemClock};
use crate::objects::Objects;
use crate::store::{Store, StoreError};
use crate::wake::Wakers;
use aquifer_core::{Limits, State};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a server runs with.
#[derive(Clone)]
pub struct Config {
    /// `sqlite:PATH`, `sqlite::memory:` or `postgres://...`.
    pub database: String,
    /// Where to listen; port 0 picks a free one (see `Running::url`).
    pub listen: SocketAddr,
    /// The operator's token, which acts as admin.
    pub bootstrap_token: Option<String>,
    pub limits: Limits,
    /// Batching and snapshots.
    pub driver: Options,
    /// The HTTP server's deadlines and bounds.
    pub http: crate::api::http::Http,
    pub clock: Arc<dyn Clock>,
    /// Every effect is handed on here too, after the wakers (a test's
    /// recorder).
    pub also: Option<Arc<dyn EffectSink>>,
    /// Where jobs' files live; by default `objects/` beside an SQLite
    /// database, and nowhere (outputs refused) for PostgreSQL.
    pub objects_dir: Option<std::path::PathBuf>,
    /// How long jobs' outputs are kept, from submission (once the job has
    /// ended); forever if none.
    pub outputs_kept_s: Option<u64>,
    /// Jobs' files in an S3-compatible bucket; `objects_dir` then holds
    /// only files being sent.
    pub s3: Option<crate::objects::S3Config>,
}

impl Config {
    /// The defaults for everything but the database and the address.
    #[must_use]
    pub fn new(database: &str, listen: SocketAddr) -> Config {
        Config {
            database: database.to_string(),
            listen,
            bootstrap_token: None,
            limits: Limits::default(),
            driver: Options::default(),
            http: crate::api::http::Http::default(),
            clock: Arc::new(SystemClock),
            also: None,
            objects_dir: None,
            outputs_kept_s: None,
            s3: None,
        }
    }

    /// On a free port of the loopback interface.
    #[must_use]
    pub fn loopback(database: &str) -> Config {
        Config::new(database, SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database cannot be opened, migrated or replayed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configured limits leave the scheduler unable to work.
    #[error("{0}")]
    Limits(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The directory for jobs' files cannot be made.
    #[error(transparent)]
    Objects(#[from] crate::objects::ObjectError),
}

/// A server running in this process.
pub struct Running {
    /// `http://ADDR`, with the port the listener got.
    pub url: String,
    pub store: Store,
    pub handle: Handle,
    pub api: Arc<Api>,
    pub recovery: Recovery,
    /// Ends with the driver's last state: when the server is stopped, or
    /// by itself when the driver can no longer trust its state.
    pub driver: JoinHandle<State>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<()>,
    /// The retention sweep, if outputs are kept for a time. It holds the
    /// API, so it is stopped first.
    sweeper: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops serving (open long-polls are answered), then the driver, and
    /// returns the driver's last state.
    pub async fn stop(mut self) -> Option<State> {
        if let Some(s) = self.sweeper.take() {
            s.abort();
            let _ = s.await;
        }
        let _ = self.stop.send(());
        let _ = self.serving.await;
        drop(self.handle);
        drop(self.api);
        self.driver.await.ok()
    }

    /// Stops serving at once, dropping open connections (a crash, as far
    /// as clients can tell); the driver ends once its handles are gone.
    pub fn abort(self) {
        if let Some(s) = &self.sweeper {
            s.abort();
        }
        self.serving.abort();
    }
}

/// Opens the database, recovers the driver and serves the API.
pub async fn start(config: Config) -> Result<Running, StartError> {
    config.limits.check().map_err(StartError::Limits)?;
    config.http.check().map_err(StartError::Limits)?;
    let store = Store::open(&config.database).await?;
    // Effects wake the long-polling wells, factories and agents.
    let wakers = Arc::new(Wakers::new(config.also.clone()));
    let sink: Arc<dyn EffectSink> = wakers.clone();
    let (handle, driver, recovery) = Driver::spawn(Setup {
        limits: config.limits,
        options: config.driver,
        clock: config.clock.clone(),
        ..Setup::new(store.clone(), sink)
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let objects_dir = (config.objects_dir.clone()).or_else(|| Objects::beside(&config.database));
    let objects = match (&config.s3, objects_dir) {
        (Some(s3), Some(dir)) => Some(Objects::open_s3(&dir, s3)?),
        (Some(s3), None) => {
            return Err(crate::objects::ObjectError::Bucket(format!(
                "bucket {}: set objects_dir too, where files are kept while they are sent",
                s3.bucket
            ))
            .into());
        }
        (None, dir) => dir.map(|d| Objects::open(&d)).transpose()?,
    };
    let api = Arc::new(
        Api::new(
            handle.clone(),
            store.clone(),
            config.bootstrap_token.clone(),
            wakers,
            config.limits,
            config.http,
        )
        .with_objects(objects),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(api::serve(api.clone(), listener, async {
        let _ = stopped.await;
    }));
    let sweeper = (config.outputs_kept_s)
        .map(|s| crate::retention::spawn(api.clone(), std::time::Duration::from_secs(s)));
    Ok(Running {
        url: format!("http://{addr}"),
        store,
        handle,
        api,
        recovery,
        driver,
        stop,
        serving,
        sweeper,
    })
}
