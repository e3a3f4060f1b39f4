//! An API server on loopback over a fresh database, with a type `pg`, a
//! target `t` and a well serving `pg`, and a client that returns the
//! status and JSON body of every call.

#![allow(dead_code)]

pub mod world;

use crate::common::*;
use aquifer_core::*;
use aquifer_server::api::Api;
use aquifer_server::api::http::Http;
use aquifer_server::driver::Handle;
use aquifer_server::store::Store;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

pub const BOOT: &str = "bootstrap-token-for-tests-only";

pub struct Server {
    pub base: String,
    pub url: String,
    pub store: Store,
    pub handle: Handle,
    pub effects: Arc<Recorder>,
    pub api: Arc<Api>,
    /// For requests the protocol's client would not send (malformed
    /// bodies, streams).
    pub http: reqwest::Client,
    /// The API without a token.
    pub client: aquifer_protocol::Client,
    dir: tempfile::TempDir,
    running: aquifer_server::Running,
    /// Its bucket, kept for a restart.
    s3: Option<aquifer_server::objects::S3Config>,
}

pub async fn server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    server_on(&url, dir).await
}

/// A server over a fresh database at `url`, with `pg`, `t` and well 1.
pub async fn server_on(url: &str, dir: tempfile::TempDir) -> Server {
    server_with(url, dir, Limits::default()).await
}

/// What a test's server runs under, beyond the defaults.
#[derive(Clone, Default)]
pub struct Tuning {
    pub limits: Limits,
    /// The driver's clock (a frozen one, say); default the system's.
    pub clock: Option<Arc<dyn aquifer_server::driver::Clock>>,
    pub http: Http,
    /// Jobs' files in this bucket rather than the directory.
    pub s3: Option<aquifer_server::objects::S3Config>,
}

/// `server_on` under other limits.
pub async fn server_with(url: &str, dir: tempfile::TempDir, limits: Limits) -> Server {
    let tuning = Tuning {
        limits,
        ..Tuning::default()
    };
    server_tuned(url, dir, tuning).await
}

/// `server_on` under other limits, clock or HTTP bounds.
pub async fn server_tuned(url: &str, dir: tempfile::TempDir, tuning: Tuning) -> Server {
    let s = start(url, dir, tuning).await;
    let well = (s.store)
        .service_id(aquifer_server::users::Service::Well, "well-1", Time::ZERO)
        .await
        .expect("a name");
    assert_eq!(well, 1);
    for input in [
        Input::DefineType {
            rtype: TypeId::new("pg"),
            spec: TypeSpec {
                max_per_job: 2,
                privilege: None,
            },
        },
        Input::DefineTarget {
            target: TargetId::new("t"),
            spec: TargetSpec { privilege: None },
        },
        Input::RegisterWell {
            well: WellId(1),
            pools: vec![Pool {
                types: BTreeSet::from([TypeId::new("pg")]),
                capacity: 2,
            }],
        },
    ] {
        s.handle.send(input).await.expect("registered");
    }
    s
}

/// Recovers a driver from `url` and serves the API on a free port.
async fn start(url: &str, dir: tempfile::TempDir, tuning: Tuning) -> Server {
    let Tuning {
        limits,
        clock,
        http,
        s3,
    } = tuning;
    let defaults = aquifer_server::Config::loopback(url);
    let effects = Arc::new(Recorder::default());
    let recorder: Arc<dyn aquifer_server::driver::EffectSink> = effects.clone();
    let running = aquifer_server::start(aquifer_server::Config {
        bootstrap_token: Some(BOOT.into()),
        // Outputs on PostgreSQL too (SQLite's would be beside its file).
        objects_dir: Some(dir.path().join("objects")),
        also: Some(recorder),
        limits,
        http,
        s3: s3.clone(),
        clock: clock.unwrap_or(defaults.clock.clone()),
        ..defaults
    })
    .await
    .expect("a server");
    Server {
        base: running.url.clone(),
        url: url.to_string(),
        store: running.store.clone(),
        handle: running.handle.clone(),
        effects,
        api: running.api.clone(),
        // No pooled connections: a restarted server is a new one.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client"),
        client: aquifer_protocol::Client::new(&running.url, None).expect("a client"),
        dir,
        running,
        s3,
    }
}

impl Server {
    /// Stops serving and the driver, and returns the driver's last state.
    pub async fn stop(self) -> (State, String, tempfile::TempDir) {
        let Server {
            url,
            dir,
            running,
            handle,
            api,
            ..
        } = self;
        drop((handle, api));
        let state = running.stop().await.expect("the driver stops");
        (state, url, dir)
    }

    /// Stops this server and starts another on the same database.
    pub async fn restart(self) -> (State, Server) {
        let tuning = Tuning {
            limits: self.api.limits,
            http: self.api.http,
            clock: None,
            s3: self.s3.clone(),
        };
        let (state, url, dir) = self.stop().await;
        (state, start(&url, dir, tuning).await)
    }
}

pub fn job() -> Value {
    json!({
        "name": "integration",
        "target": "t",
        "resources": [{"name": "db", "type": "pg"}],
        "tasks": [{"name": "test", "script": "bmat resource get db url"}],
        "timeout_s": 600
    })
}

impl Server {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = match token {
            Some(t) => self.client.with_token(t.to_string()),
            None => self.client.clone(),
        };
        let (status, body) = (client.exchange(method, path, body.as_ref()))
            .await
            .expect("the server answers");
        assert!(!body.is_null(), "{path}: every answer is JSON");
        (status, body)
    }

    pub async fn submit(&self, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, "/0/jobs", Some(token), Some(body))
            .await
    }
}

pub fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}
