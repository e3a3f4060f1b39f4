//! Databases for the server tests: a fresh SQLite file, and a fresh
//! PostgreSQL database when `AQUIFER_TEST_POSTGRES_URL` names a server.
//! CI sets it; under CI its absence is a failure, not a skip.

#![allow(dead_code)]

use aquifer_core::Effect;
use aquifer_server::driver::EffectSink;
use std::sync::Mutex;

pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("aquifer.db").display())
}

/// A new, empty PostgreSQL database, or `None` when no server is
/// configured outside CI.
pub async fn postgres_url(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("AQUIFER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AQUIFER_TEST_POSTGRES_URL (.ci/run starts a cluster)"
        );
        eprintln!("AQUIFER_TEST_POSTGRES_URL is not set: skipping the PostgreSQL half");
        return None;
    };
    let db = format!("aquifer_{name}_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("the test server is reachable");
    let drop = format!("DROP DATABASE IF EXISTS {db}");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&admin)
        .await
        .expect("drop");
    let create = format!("CREATE DATABASE {db}");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&admin)
        .await
        .expect("create");
    let (prefix, _) = base.rsplit_once('/').expect("a URL with a database name");
    Some(format!("{prefix}/{db}"))
}

/// Remembers every effect performed, in order, and lets a test wait for
/// one.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<Vec<Effect>>,
    performed: tokio::sync::Notify,
}

impl EffectSink for Recorder {
    fn perform(&self, effect: &Effect) {
        self.seen.lock().expect("not poisoned").push(effect.clone());
        self.performed.notify_waiters();
    }
}

impl Recorder {
    pub fn take(&self) -> Vec<Effect> {
        std::mem::take(&mut *self.seen.lock().expect("not poisoned"))
    }

    /// Waits until `effect` has been performed (at most 30 s, so a broken
    /// driver fails the test instead of hanging it).
    pub async fn wait_for(&self, effect: &Effect) {
        let wait = async {
            loop {
                let performed = self.performed.notified();
                if self.seen.lock().expect("not poisoned").contains(effect) {
                    return;
                }
                performed.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("{effect:?} was never performed"));
    }
}
