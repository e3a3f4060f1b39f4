//! The store: the event log and snapshots, in SQLite (the embedded
//! default) or PostgreSQL. Every batch of events is appended in one
//! transaction; nothing is acted on before that transaction commits.

use crate::readmodel::Write;
use aquifer_core::{Event, JobId, State, Time};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the database at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported database URL {url}: use sqlite:PATH, sqlite::memory: or postgres://...")]
    Scheme { url: String },
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("event {seq} in the log cannot be read: {source}")]
    Corrupt {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the log does not continue from {expected}: found {found}")]
    Gap { expected: u64, found: u64 },
    #[error("cannot make the database file {path} private: {source}")]
    Private {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A row of the jobs read model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub owner: u64,
    /// `admin` for the bootstrap admin's jobs.
    pub owner_name: String,
    pub name: String,
    pub state: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    /// The submission as the user wrote it.
    pub spec: String,
}

/// What a well reported for a ready resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceData {
    pub metadata: std::collections::BTreeMap<String, String>,
    /// `None` once the resource is released.
    pub secrets: Option<std::collections::BTreeMap<String, String>>,
}

/// A job as listings show it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ListedJob {
    pub id: u32,
    pub owner: u64,
    pub owner_name: String,
    pub name: String,
    pub state: String,
    pub outcome: Option<serde_json::Value>,
    pub submitted_ms: u64,
}

/// (owner, name, state, outcome, reason, spec).
type JobRowTuple = (
    i64,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// (id, owner, owner's name, name, state, outcome, submitted_ms).
type ListedRow = (
    i64,
    i64,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
);

/// One entry of a job's watch stream.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobEventRow {
    pub n: u64,
    pub at_ms: u64,
    pub event: serde_json::Value,
}

/// The database, and what the server keeps of it in memory: the tokens
/// it has checked (see `crate::auth::TokenCache`). Clones share both.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    pub(crate) tokens: std::sync::Arc<crate::auth::TokenCache>,
}

/// The connections to one database.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on either pool: the SQL here is written to be valid
/// for both (sqlx binds `$N` on SQLite too).
#[macro_export]
#[doc(hidden)]
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool() {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

/// Writes a batch's output rows in its transaction `$tx` (either
/// database: the statements are the same). Outputs are begun and committed
/// a few times a job, so one statement each is enough.
macro_rules! write_outputs {
    ($tx:ident, $outputs:expr) => {
        for w in &$outputs {
            match w {
                Write::OutputBegun {
                    files,
                    job,
                    n,
                    path,
                    size,
                    at_ms,
                } => {
                    sqlx::query(on_table!(
                        files,
                        "INSERT INTO ",
                        " (job, n, path, size, sha256, complete, created_ms) \
                         VALUES ($1, $2, $3, $4, NULL, 0, $5) \
                         ON CONFLICT (job, n) DO UPDATE SET size = excluded.size, \
                             sha256 = NULL, complete = 0"
                    ))
                    .bind(i64::from(job.0))
                    .bind(i64::from(*n))
                    .bind(path.as_str())
                    .bind(i64::try_from(*size).unwrap_or(i64::MAX))
                    .bind(i64::try_from(*at_ms).unwrap_or(i64::MAX))
                    .execute(&mut *$tx)
                    .await?;
                }
                Write::OutputCommitted {
                    files,
                    job,
                    n,
                    size,
                    sha256,
                } => {
                    sqlx::query(on_table!(
                        files,
                        "UPDATE ",
                        " SET size = $3, sha256 = $4, complete = 1 WHERE job = $1 AND n = $2"
                    ))
                    .bind(i64::from(job.0))
                    .bind(i64::from(*n))
                    .bind(i64::try_from(*size).unwrap_or(i64::MAX))
                    .bind(sha256.as_str())
                    .execute(&mut *$tx)
                    .await?;
                }
                Write::OutputsDeleted { job } => {
                    for files in [Files::Outputs, Files::Inputs] {
                        sqlx::query(on_table!(files, "DELETE FROM ", " WHERE job = $1"))
                            .bind(i64::from(job.0))
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
                _ => {}
            }
        }
    };
}

/// The URL with its password replaced, for messages and logs.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Events per `INSERT`: three parameters each, well below SQLite's limit
/// of 32,766 parameters a statement and PostgreSQL's of 65,535.
const EVENTS_PER_INSERT: usize = 1_000;

/// Rows per multi-row statement of the read model's writes: at most
/// seven parameters a row, well within both databases' limits.
const ROWS_PER_STATEMENT: usize = 1_000;

/// A batch's read-model writes, grouped by kind so that each kind goes to
/// the database in as few statements as it can. The order that matters
/// within a batch is kept: rows are inserted before they are updated or
/// deleted, of a job's several state changes only the last is written,
/// and a job's stream entries keep their order.
#[derive(Default)]
struct Grouped<'a> {
    jobs: Vec<(JobId, &'a crate::readmodel::JobRecord, u64)>,
    states: BTreeMap<JobId, (&'static str, Option<String>)>,
    reasons: BTreeMap<JobId, &'a str>,
    resources: Vec<(aquifer_core::ResourceId, JobId, String, String)>,
    forget: Vec<aquifer_core::ResourceId>,
    delete: Vec<aquifer_core::ResourceId>,
    /// The last reason of each resource whose destroy failed.
    resource_reasons: BTreeMap<aquifer_core::ResourceId, &'a str>,
    revoke: Vec<(&'static str, u64)>,
    inputs: Vec<(u64, u64, String)>,
    job_events: Vec<(JobId, u64, String)>,
    /// The tags of the jobs inserted, from their job files.
    tags: Vec<(JobId, String, String)>,
    /// Store values set (at submission or by a task), the last per key;
    /// a secret one of a job that ends in the same batch has no value.
    store: BTreeMap<(JobId, String), (Option<String>, bool)>,
    /// Jobs whose secret store values are deleted.
    store_forget: std::collections::BTreeSet<JobId>,
    /// Outputs begun and committed, in order (rare: one statement each).
    outputs: Vec<&'a Write>,
}

/// Which of a job's files: the outputs its agent sends, or the inputs
/// its submitter sends. Both are kept alike, in a table each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Files {
    Outputs,
    Inputs,
}

/// A statement on the table of `$files`, written once: its text before
/// and after the table's name.
macro_rules! on_table {
    ($files:expr, $before:literal, $after:literal) => {
        match $files {
            Files::Outputs => concat!($before, "outputs", $after),
            Files::Inputs => concat!($before, "job_inputs", $after),
        }
    };
}

/// One output (or input) of a job, as the store has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRow {
    pub n: u32,
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub complete: bool,
}

impl<'a> Grouped<'a> {
    fn of(writes: &'a [Write]) -> Result<Grouped<'a>, StoreError> {
        let mut g = Grouped::default();
        for w in writes {
            match w {
                Write::InsertJob {
                    job,
                    record,
                    submitted_ms,
                } => {
                    g.jobs.push((*job, record, *submitted_ms));
                    for (key, v) in &record.store {
                        let entry = (Some(v.value.clone()), v.secret);
                        g.store.insert((*job, key.clone()), entry);
                    }
                    let tags = record.spec.get("tags").and_then(|t| t.as_object());
                    for (key, value) in tags.into_iter().flatten() {
                        if let Some(value) = value.as_str() {
                            g.tags.push((*job, key.clone(), value.to_string()));
                        }
                    }
                }
                Write::JobState {
                    job,
                    state,
                    outcome,
                } => {
                    let outcome = outcome.map(|o| serde_json::to_string(&o)).transpose()?;
                    g.states.insert(*job, (state.as_str(), outcome));
                }
                Write::JobReason { job, reason } => {
                    g.reasons.insert(*job, reason);
                }
                Write::ResourceData {
                    resource,
                    job,
                    metadata,
                    secrets,
                } => g.resources.push((
                    *resource,
                    *job,
                    serde_json::to_string(metadata)?,
                    serde_json::to_string(secrets)?,
                )),
                Write::ForgetSecrets { resource } => g.forget.push(*resource),
                Write::DeleteResourceData { resource } => g.delete.push(*resource),
                Write::ResourceReason { resource, reason } => {
                    g.resource_reasons.insert(*resource, reason);
                }
                Write::RevokeTokens { kind, subject } => g.revoke.push((*kind, *subject)),
                Write::Input {
                    first_seq,
                    at_ms,
                    input,
                } => {
                    g.inputs
                        .push((*first_seq, *at_ms, serde_json::to_string(input)?));
                }
                Write::JobEvent { job, at_ms, body } => {
                    g.job_events.push((*job, *at_ms, body.to_string()));
                }
                Write::StorePut { job, key, value } => {
                    let entry = (Some(value.value.clone()), value.secret);
                    g.store.insert((*job, key.clone()), entry);
                }
                Write::ForgetStoreSecrets { job } => {
                    g.store_forget.insert(*job);
                }
                Write::OutputBegun { .. }
                | Write::OutputCommitted { .. }
                | Write::OutputsDeleted { .. } => {
                    g.outputs.push(w);
                }
            }
        }
        // A secret set in the batch that also ends its job is never
        // written: the statements below delete only what was there before.
        for ((job, _), (value, secret)) in &mut g.store {
            if *secret && g.store_forget.contains(job) {
                *value = None;
            }
        }
        Ok(g)
    }
}

impl Grouped<'_> {
    /// The reasons to keep: of resources not also destroyed in the batch.
    fn kept_reasons(&self) -> Vec<(i64, &str)> {
        (self.resource_reasons.iter())
            .filter(|(r, _)| !self.delete.contains(r))
            .map(|(r, reason)| (i64::from(r.0), *reason))
            .collect()
    }
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).expect("sequence numbers stay below 2^63")
}

/// One batch on SQLite: in-process, so a statement costs no round trip;
/// the batch is one transaction and one `fsync` at its commit.
async fn append_sqlite(
    pool: &SqlitePool,
    after: u64,
    at_ms: i64,
    last: i64,
    rows: &[String],
    g: &Grouped<'_>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // The batch's events in as few statements as SQLite's limit on
    // parameters allows.
    for (c, chunk) in rows.chunks(EVENTS_PER_INSERT).enumerate() {
        let first = after + 1 + (c * EVENTS_PER_INSERT) as u64;
        let mut insert = sqlx::QueryBuilder::new("INSERT INTO events (seq, at_ms, body) ");
        insert.push_values(chunk.iter().enumerate(), |mut row, (i, body)| {
            row.push_bind(seq_i64(first + i as u64))
                .push_bind(at_ms)
                .push_bind(body);
        });
        insert.build().execute(&mut *tx).await?;
    }
    for chunk in g.jobs.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO jobs (id, owner, name, spec, state, submitted_ms, updated_seq) ",
        );
        q.push_values(chunk, |mut row, (job, record, submitted_ms)| {
            row.push_bind(i64::from(job.0))
                .push_bind(i64::try_from(record.owner).unwrap_or(i64::MAX))
                .push_bind(&record.name)
                .push_bind(record.spec.to_string())
                .push_bind("waiting")
                .push_bind(i64::try_from(*submitted_ms).unwrap_or(i64::MAX))
                .push_bind(last);
        });
        q.build().execute(&mut *tx).await?;
    }
    for chunk in g.tags.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new("INSERT INTO job_tags (job, key, value) ");
        q.push_values(chunk, |mut row, (job, key, value)| {
            row.push_bind(i64::from(job.0))
                .push_bind(key.as_str())
                .push_bind(value.as_str());
        });
        q.build().execute(&mut *tx).await?;
    }
    for ((job, key), (value, secret)) in &g.store {
        sqlx::query(
            "INSERT INTO job_store (job, key, value, secret) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job, key) DO UPDATE SET value = excluded.value, secret = excluded.secret",
        )
        .bind(i64::from(job.0))
        .bind(key.as_str())
        .bind(value.as_deref())
        .bind(i32::from(*secret))
        .execute(&mut *tx)
        .await?;
    }
    for job in &g.store_forget {
        sqlx::query("UPDATE job_store SET value = NULL WHERE job = $1 AND secret = 1")
            .bind(i64::from(job.0))
            .execute(&mut *tx)
            .await?;
    }
    let states: Vec<_> = g.states.iter().collect();
    for chunk in states.chunks(ROWS_PER_STATEMENT) {
        // A table of the new states, then one UPDATE from it.
        let mut q = sqlx::QueryBuilder::new("WITH v(id, state, outcome) AS (");
        q.push_values(chunk, |mut row, (job, (state, outcome))| {
            row.push_bind(i64::from(job.0))
                .push_bind(*state)
                .push_bind(outcome.clone());
        });
        q.push(
            ") UPDATE jobs SET \
                 state = (SELECT v.state FROM v WHERE v.id = jobs.id), \
                 outcome = (SELECT v.outcome FROM v WHERE v.id = jobs.id), \
                 updated_seq = ",
        );
        q.push_bind(last);
        q.push(" WHERE id IN (SELECT v.id FROM v)");
        q.build().execute(&mut *tx).await?;
    }
    for (job, reason) in &g.reasons {
        sqlx::query("UPDATE jobs SET reason = $1 WHERE id = $2")
            .bind(*reason)
            .bind(i64::from(job.0))
            .execute(&mut *tx)
            .await?;
    }
    for chunk in g.resources.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO resource_data (resource, job, metadata, secrets) ",
        );
        q.push_values(chunk, |mut row, (resource, job, metadata, secrets)| {
            row.push_bind(i64::from(resource.0))
                .push_bind(i64::from(job.0))
                .push_bind(metadata)
                .push_bind(secrets);
        });
        q.build().execute(&mut *tx).await?;
    }
    for (resources, sql) in [
        (
            &g.forget,
            "UPDATE resource_data SET secrets = NULL WHERE resource IN (",
        ),
        (&g.delete, "DELETE FROM resource_data WHERE resource IN ("),
        (
            &g.delete,
            "DELETE FROM resource_reasons WHERE resource IN (",
        ),
    ] {
        for chunk in resources.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(sql);
            let mut list = q.separated(", ");
            for r in chunk {
                list.push_bind(i64::from(r.0));
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
    }
    let reasons = g.kept_reasons();
    for chunk in reasons.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new("INSERT INTO resource_reasons (resource, reason) ");
        q.push_values(chunk, |mut row, (resource, reason)| {
            row.push_bind(*resource).push_bind(*reason);
        });
        q.push(" ON CONFLICT (resource) DO UPDATE SET reason = excluded.reason");
        q.build().execute(&mut *tx).await?;
    }
    for (kind, subject) in &g.revoke {
        sqlx::query(
            "UPDATE tokens SET revoked = 1 WHERE kind = $1 AND subject = $2 AND revoked = 0",
        )
        .bind(*kind)
        .bind(i64::try_from(*subject).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    for chunk in g.inputs.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new("INSERT INTO inputs (first_seq, at_ms, body) ");
        q.push_values(chunk, |mut row, (first_seq, at_ms, body)| {
            row.push_bind(seq_i64(*first_seq))
                .push_bind(i64::try_from(*at_ms).unwrap_or(i64::MAX))
                .push_bind(body);
        });
        q.build().execute(&mut *tx).await?;
    }
    if !g.job_events.is_empty() {
        // Each job's stream goes on from its last entry: one query
        // for the batch's jobs, then the entries numbered here.
        let jobs: Vec<i64> = (g.job_events.iter().map(|(job, _, _)| i64::from(job.0)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut next: BTreeMap<i64, i64> = BTreeMap::new();
        for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                sqlx::QueryBuilder::new("SELECT job, MAX(n) FROM job_events WHERE job IN (");
            let mut list = q.separated(", ");
            for job in chunk {
                list.push_bind(*job);
            }
            q.push(") GROUP BY job");
            let found: Vec<(i64, i64)> = q.build_query_as().fetch_all(&mut *tx).await?;
            next.extend(found);
        }
        let rows: Vec<(i64, i64, i64, &String)> = (g.job_events.iter())
            .map(|(job, at_ms, body)| {
                let job = i64::from(job.0);
                let n = next.entry(job).or_insert(0);
                *n += 1;
                (job, *n, i64::try_from(*at_ms).unwrap_or(i64::MAX), body)
            })
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO job_events (job, n, at_ms, body) ");
            q.push_values(chunk, |mut row, (job, n, at_ms, body)| {
                row.push_bind(*job)
                    .push_bind(*n)
                    .push_bind(*at_ms)
                    .push_bind(*body);
            });
            q.build().execute(&mut *tx).await?;
        }
    }
    write_outputs!(tx, g.outputs);
    tx.commit().await?;
    // Secrets forgotten or deleted are overwritten in the pages
    // (`secure_delete`), but their old versions stay in the WAL's frames
    // until the WAL is reset: checkpoint it and truncate it to nothing.
    // Best effort: a reader in the middle of a read keeps the frames it
    // reads, and the next forgetting batch tries again.
    if !g.forget.is_empty() || !g.delete.is_empty() || !g.store_forget.is_empty() {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await;
    }
    Ok(())
}

/// One batch on PostgreSQL in one round trip: a single statement whose
/// data-modifying `WITH` clauses write every table from arrays, so its
/// text never changes and the connection keeps it prepared. A single
/// statement is its own transaction: it commits whole, once the WAL is
/// flushed, or not at all.
///
/// The clauses of one statement all see the database as it was before
/// it, and must not touch a row twice, so the batch is first folded in
/// memory: a job inserted in this batch is inserted with its last state
/// and reason, a resource inserted and then forgotten is inserted
/// without its secrets, one inserted and deleted is not written at all,
/// and a row deleted is not also updated.
async fn append_postgres(
    pool: &PgPool,
    after: u64,
    at_ms: i64,
    last: i64,
    rows: &[String],
    mut g: Grouped<'_>,
) -> Result<(), StoreError> {
    fn big(n: u64) -> i64 {
        i64::try_from(n).unwrap_or(i64::MAX)
    }
    let mut jobs = PgJobs::default();
    for (job, record, submitted_ms) in &g.jobs {
        let (state, outcome) = g.states.remove(job).unwrap_or(("waiting", None));
        jobs.id.push(i64::from(job.0));
        jobs.owner.push(big(record.owner));
        jobs.name.push(record.name.as_str());
        jobs.spec.push(record.spec.to_string());
        jobs.state.push(state);
        jobs.outcome.push(outcome);
        jobs.reason.push(g.reasons.remove(job));
        jobs.submitted_ms.push(big(*submitted_ms));
    }
    // Jobs of earlier batches: a new state, a reason, or both.
    let mut changed: BTreeMap<JobId, JobChange<'_>> = BTreeMap::new();
    for (job, (state, outcome)) in std::mem::take(&mut g.states) {
        changed.insert(job, (Some(state), outcome, None));
    }
    for (job, reason) in std::mem::take(&mut g.reasons) {
        changed.entry(job).or_insert((None, None, None)).2 = Some(reason);
    }
    let deleted: std::collections::BTreeSet<_> = g.delete.iter().copied().collect();
    let forgotten: std::collections::BTreeSet<_> = g.forget.iter().copied().collect();
    let mut inserted = std::collections::BTreeSet::new();
    let mut resources = PgResources::default();
    for (resource, job, metadata, secrets) in &g.resources {
        inserted.insert(*resource);
        if deleted.contains(resource) {
            continue;
        }
        resources.resource.push(i64::from(resource.0));
        resources.job.push(i64::from(job.0));
        resources.metadata.push(metadata.as_str());
        resources
            .secrets
            .push((!forgotten.contains(resource)).then_some(secrets.as_str()));
    }
    let forget: Vec<i64> = (forgotten.iter())
        .filter(|r| !inserted.contains(r) && !deleted.contains(r))
        .map(|r| i64::from(r.0))
        .collect();
    let delete: Vec<i64> = (deleted.iter())
        .filter(|r| !inserted.contains(r))
        .map(|r| i64::from(r.0))
        .collect();
    let revoke: std::collections::BTreeSet<_> = g.revoke.iter().copied().collect();
    let reasons = g.kept_reasons();
    let reasons_gone: Vec<i64> = deleted.iter().map(|r| i64::from(r.0)).collect();
    // Each stream entry's number within the batch, per job; the statement
    // adds the job's last number before the batch.
    let mut within: BTreeMap<JobId, i64> = BTreeMap::new();
    let entry_k: Vec<i64> = (g.job_events.iter())
        .map(|(job, _, _)| {
            let k = within.entry(*job).or_insert(0);
            *k += 1;
            *k
        })
        .collect();
    let statement = sqlx::query(PG_APPEND)
        .bind(seq_i64(after))
        .bind(at_ms)
        .bind(rows)
        .bind(&jobs.id)
        .bind(&jobs.owner)
        .bind(&jobs.name)
        .bind(&jobs.spec)
        .bind(&jobs.state)
        .bind(&jobs.outcome)
        .bind(&jobs.reason)
        .bind(&jobs.submitted_ms)
        .bind(last)
        .bind(changed.keys().map(|j| i64::from(j.0)).collect::<Vec<_>>())
        .bind(changed.values().map(|c| c.0).collect::<Vec<_>>())
        .bind(changed.values().map(|c| c.1.clone()).collect::<Vec<_>>())
        .bind(changed.values().map(|c| c.2).collect::<Vec<_>>())
        .bind(&resources.resource)
        .bind(&resources.job)
        .bind(&resources.metadata)
        .bind(&resources.secrets)
        .bind(&forget)
        .bind(&delete)
        .bind(revoke.iter().map(|(kind, _)| *kind).collect::<Vec<_>>())
        .bind(revoke.iter().map(|(_, s)| big(*s)).collect::<Vec<_>>())
        .bind(g.inputs.iter().map(|i| seq_i64(i.0)).collect::<Vec<_>>())
        .bind(g.inputs.iter().map(|i| big(i.1)).collect::<Vec<_>>())
        .bind(g.inputs.iter().map(|i| i.2.as_str()).collect::<Vec<_>>())
        .bind(
            g.job_events
                .iter()
                .map(|e| i64::from(e.0.0))
                .collect::<Vec<_>>(),
        )
        .bind(&entry_k)
        .bind(g.job_events.iter().map(|e| big(e.1)).collect::<Vec<_>>())
        .bind(
            g.job_events
                .iter()
                .map(|e| e.2.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(reasons.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(reasons.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(&reasons_gone)
        .bind(g.tags.iter().map(|t| i64::from(t.0.0)).collect::<Vec<_>>())
        .bind(g.tags.iter().map(|t| t.1.as_str()).collect::<Vec<_>>())
        .bind(g.tags.iter().map(|t| t.2.as_str()).collect::<Vec<_>>())
        .bind(
            g.store
                .keys()
                .map(|(j, _)| i64::from(j.0))
                .collect::<Vec<_>>(),
        )
        .bind(g.store.keys().map(|(_, k)| k.as_str()).collect::<Vec<_>>())
        .bind(
            g.store
                .values()
                .map(|(v, _)| v.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            g.store
                .values()
                .map(|(_, s)| i32::from(*s))
                .collect::<Vec<_>>(),
        )
        .bind(
            g.store_forget
                .iter()
                .map(|j| i64::from(j.0))
                .collect::<Vec<_>>(),
        );
    // A batch with outputs (rare) needs their statements in the same
    // transaction; every other batch is the one statement.
    if g.outputs.is_empty() {
        statement.execute(pool).await?;
    } else {
        let mut tx = pool.begin().await?;
        statement.execute(&mut *tx).await?;
        write_outputs!(tx, g.outputs);
        tx.commit().await?;
    }
    Ok(())
}

/// A change to a job of an earlier batch: (state, outcome, reason).
type JobChange<'a> = (Option<&'a str>, Option<String>, Option<&'a str>);

/// New jobs of a batch, column by column, for `UNNEST`.
#[derive(Default)]
struct PgJobs<'a> {
    id: Vec<i64>,
    owner: Vec<i64>,
    name: Vec<&'a str>,
    spec: Vec<String>,
    state: Vec<&'static str>,
    outcome: Vec<Option<String>>,
    reason: Vec<Option<&'a str>>,
    submitted_ms: Vec<i64>,
}

/// Resource rows of a batch, column by column, for `UNNEST`.
#[derive(Default)]
struct PgResources<'a> {
    resource: Vec<i64>,
    job: Vec<i64>,
    metadata: Vec<&'a str>,
    secrets: Vec<Option<&'a str>>,
}

/// A whole batch as one PostgreSQL statement (see `append_postgres`).
const PG_APPEND: &str = "\
WITH \
ev AS (INSERT INTO events (seq, at_ms, body) \
    SELECT $1::bigint + t.o, $2::bigint, t.body \
    FROM UNNEST($3::text[]) WITH ORDINALITY AS t(body, o)), \
jb AS (INSERT INTO jobs (id, owner, name, spec, state, outcome, reason, submitted_ms, updated_seq) \
    SELECT t.id, t.owner, t.name, t.spec, t.state, t.outcome, t.reason, t.submitted_ms, $12::bigint \
    FROM UNNEST($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], \
                $10::text[], $11::bigint[]) \
    AS t(id, owner, name, spec, state, outcome, reason, submitted_ms)), \
st AS (UPDATE jobs SET \
        state = COALESCE(v.state, jobs.state), \
        outcome = CASE WHEN v.state IS NULL THEN jobs.outcome ELSE v.outcome END, \
        reason = COALESCE(v.reason, jobs.reason), \
        updated_seq = CASE WHEN v.state IS NULL THEN jobs.updated_seq ELSE $12::bigint END \
    FROM UNNEST($13::bigint[], $14::text[], $15::text[], $16::text[]) AS v(id, state, outcome, reason) \
    WHERE jobs.id = v.id), \
rd AS (INSERT INTO resource_data (resource, job, metadata, secrets) \
    SELECT * FROM UNNEST($17::bigint[], $18::bigint[], $19::text[], $20::text[])), \
fg AS (UPDATE resource_data SET secrets = NULL WHERE resource = ANY($21::bigint[])), \
dl AS (DELETE FROM resource_data WHERE resource = ANY($22::bigint[])), \
rv AS (UPDATE tokens SET revoked = 1 \
    FROM UNNEST($23::text[], $24::bigint[]) AS r(kind, subject) \
    WHERE tokens.kind = r.kind AND tokens.subject = r.subject AND tokens.revoked = 0), \
ip AS (INSERT INTO inputs (first_seq, at_ms, body) \
    SELECT * FROM UNNEST($25::bigint[], $26::bigint[], $27::text[])), \
je AS (INSERT INTO job_events (job, n, at_ms, body) \
    SELECT v.job, COALESCE((SELECT MAX(e.n) FROM job_events e WHERE e.job = v.job), 0) + v.k, \
           v.at_ms, v.body \
    FROM UNNEST($28::bigint[], $29::bigint[], $30::bigint[], $31::text[]) AS v(job, k, at_ms, body)), \
rr AS (INSERT INTO resource_reasons (resource, reason) \
    SELECT * FROM UNNEST($32::bigint[], $33::text[]) \
    ON CONFLICT (resource) DO UPDATE SET reason = EXCLUDED.reason), \
rg AS (DELETE FROM resource_reasons WHERE resource = ANY($34::bigint[])), \
tg AS (INSERT INTO job_tags (job, key, value) \
    SELECT * FROM UNNEST($35::bigint[], $36::text[], $37::text[])), \
sp AS (INSERT INTO job_store (job, key, value, secret) \
    SELECT * FROM UNNEST($38::bigint[], $39::text[], $40::text[], $41::int[]) \
    ON CONFLICT (job, key) DO UPDATE SET value = EXCLUDED.value, secret = EXCLUDED.secret), \
sf AS (UPDATE job_store SET value = NULL \
    WHERE secret = 1 AND job = ANY($42::bigint[]) \
      AND (job, key) NOT IN (SELECT * FROM UNNEST($38::bigint[], $39::text[]))) \
SELECT 1";

/// The database holds resources' secrets while their jobs run, and tokens'
/// hashes: its file, and the WAL and shared-memory files SQLite makes with
/// the same mode, are the owner's alone. A new file is created 0600; an
/// existing one is narrowed to it.
fn private_files(db: &std::path::Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let private = |path: &std::path::Path, source| StoreError::Private {
            path: path.display().to_string(),
            source,
        };
        match (std::fs::OpenOptions::new().write(true).create_new(true))
            .mode(0o600)
            .open(db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(private(db, e)),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut side = db.as_os_str().to_owned();
            side.push(suffix);
            let path = std::path::Path::new(&side);
            if path.exists() {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| private(path, e))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let connect = |source| StoreError::Connect {
            url: redact(url),
            source,
        };
        let pool = if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:");
            let options = SqliteConnectOptions::from_str(url).map_err(connect)?;
            if !memory {
                private_files(options.get_filename())?;
            }
            let options = options
                .create_if_missing(true)
                // Deleted content (a released resource's secrets) is
                // overwritten, not left in free pages.
                .pragma("secure_delete", "ON")
                .journal_mode(if memory {
                    SqliteJournalMode::Memory
                } else {
                    SqliteJournalMode::Wal
                })
                // A batch is answered and acted on only once it is
                // durable, so the log must survive a power cut too, not
                // only a crash of the server: fsync at every commit (one
                // per batch; see BENCHMARKS.md on durability).
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5));
            // An in-memory database exists once per connection.
            let max = if memory { 1 } else { 4 };
            // An in-memory database lives only as long as its connection:
            // never let the pool retire it.
            let (idle, lifetime) = if memory {
                (None, None)
            } else {
                (
                    Some(Duration::from_secs(600)),
                    Some(Duration::from_secs(1800)),
                )
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .idle_timeout(idle)
                .max_lifetime(lifetime)
                .connect_with(options)
                .await
                .map_err(connect)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(connect)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::Scheme { url: redact(url) });
        };
        Ok(Store {
            pool,
            tokens: std::sync::Arc::default(),
        })
    }

    /// The connections, for what this module's queries do not cover.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Appends events `after + 1 ..` and the read-model writes they imply
    /// in one transaction. The primary key on `seq` makes a second writer
    /// (or a replayed batch) fail rather than interleave.
    pub async fn append(
        &self,
        after: u64,
        at: Time,
        events: &[Event],
        writes: &[Write],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(events.len());
        for e in events {
            rows.push(serde_json::to_string(e)?);
        }
        let at_ms = i64::try_from(at.ms()).unwrap_or(i64::MAX);
        let last = seq_i64(after + events.len() as u64);
        let g = Grouped::of(writes)?;
        let revoked: Vec<_> = g.revoke.clone();
        let done = match &self.pool {
            Pool::Sqlite(pool) => append_sqlite(pool, after, at_ms, last, &rows, &g).await,
            Pool::Postgres(pool) => append_postgres(pool, after, at_ms, last, &rows, g).await,
        };
        // Whether or not the commit went through (an error may come after
        // it did), no cached token may outlive its revocation.
        for (kind, subject) in revoked {
            self.tokens.revoked(kind, subject);
        }
        done
    }

    /// A job as the read model has it: (owner, name, state, outcome).
    pub async fn job_row(&self, job: JobId) -> Result<Option<JobRow>, StoreError> {
        let row: Option<JobRowTuple> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT j.owner, u.name, j.name, j.state, j.outcome, j.reason, j.spec \
                 FROM jobs j LEFT JOIN users u ON u.id = j.owner WHERE j.id = $1",
            )
            .bind(i64::from(job.0))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(owner, owner_name, name, state, outcome, reason, spec)| JobRow {
                owner: u64::try_from(owner).unwrap_or(0),
                owner_name: owner_name.unwrap_or_else(|| "admin".into()),
                name,
                state,
                outcome,
                reason,
                spec,
            },
        ))
    }

    /// What wells reported for a job's ready resources, by resource.
    pub async fn resource_data(
        &self,
        job: JobId,
    ) -> Result<std::collections::BTreeMap<u32, ResourceData>, StoreError> {
        let rows: Vec<(i64, String, Option<String>)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT resource, metadata, secrets FROM resource_data WHERE job = $1")
                .bind(i64::from(job.0))
                .fetch_all(pool)
                .await?
        });
        let mut out = std::collections::BTreeMap::new();
        for (resource, metadata, secrets) in rows {
            out.insert(
                u32::try_from(resource).unwrap_or(0),
                ResourceData {
                    metadata: serde_json::from_str(&metadata)?,
                    secrets: secrets.map(|s| serde_json::from_str(&s)).transpose()?,
                },
            );
        }
        Ok(out)
    }

    /// Jobs that ended and were submitted before `before_ms`, and still
    /// have outputs: at most `limit`, oldest first.
    pub async fn jobs_with_old_outputs(
        &self,
        before_ms: u64,
        limit: u32,
    ) -> Result<Vec<JobId>, StoreError> {
        let before = i64::try_from(before_ms).unwrap_or(i64::MAX);
        let rows: Vec<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT j.id FROM jobs j \
                 WHERE j.state = 'ended' AND j.submitted_ms < $1 \
                   AND EXISTS (SELECT 1 FROM outputs o WHERE o.job = j.id) \
                 ORDER BY j.id LIMIT $2",
            )
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok((rows.into_iter())
            .map(|(id,)| JobId(u32::try_from(id).unwrap_or(0)))
            .collect())
    }

    /// A job's outputs, by number: whole ones and ones being sent.
    pub async fn outputs(&self, job: JobId) -> Result<Vec<OutputRow>, StoreError> {
        self.files(Files::Outputs, job).await
    }

    /// A job's outputs or inputs, by number.
    pub async fn files(&self, files: Files, job: JobId) -> Result<Vec<OutputRow>, StoreError> {
        let sql = on_table!(
            files,
            "SELECT n, path, size, sha256, complete FROM ",
            " WHERE job = $1 ORDER BY n"
        );
        let rows: Vec<(i64, String, i64, Option<String>, i32)> = on_pool!(self, pool => {
            sqlx::query_as(sql)
            .bind(i64::from(job.0))
            .fetch_all(pool)
            .await?
        });
        Ok((rows.into_iter())
            .map(|(n, path, size, sha256, complete)| OutputRow {
                n: u32::try_from(n).unwrap_or(0),
                path,
                size: u64::try_from(size).unwrap_or(0),
                sha256,
                complete: complete != 0,
            })
            .collect())
    }

    /// A job's store: each key's value (none once a secret one is
    /// deleted) and whether it is secret.
    pub async fn job_store(
        &self,
        job: JobId,
    ) -> Result<BTreeMap<String, (Option<String>, bool)>, StoreError> {
        let rows: Vec<(String, Option<String>, i32)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT key, value, secret FROM job_store WHERE job = $1")
                .bind(i64::from(job.0))
                .fetch_all(pool)
                .await?
        });
        Ok((rows.into_iter())
            .map(|(key, value, secret)| (key, (value, secret != 0)))
            .collect())
    }

    /// The bytes of task output the store holds for `job` (its entries'
    /// text, as stored), for the per-job cap.
    pub async fn output_bytes(&self, job: JobId) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(OCTET_LENGTH(body)), 0) AS BIGINT) FROM job_events \
                 WHERE job = $1 AND body LIKE '{\"event\":\"output\",%'",
            )
            .bind(i64::from(job.0))
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Why each resource whose destroy failed failed, the last time.
    pub async fn resource_reasons(
        &self,
    ) -> Result<std::collections::BTreeMap<u32, String>, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT resource, reason FROM resource_reasons")
                .fetch_all(pool)
                .await?
        });
        Ok((rows.into_iter())
            .filter_map(|(r, reason)| Some((u32::try_from(r).ok()?, reason)))
            .collect())
    }

    /// Jobs for a listing, newest first: those after `before` (an id, for
    /// paging), of `owner` and in `state` when given, at most `limit`.
    pub async fn list_jobs(
        &self,
        owner: Option<u64>,
        state: Option<&str>,
        tag: Option<(&str, &str)>,
        before: Option<u32>,
        limit: u32,
    ) -> Result<Vec<ListedJob>, StoreError> {
        let owner = owner.map(|o| i64::try_from(o).unwrap_or(i64::MAX));
        let before = before.map(i64::from);
        let rows: Vec<ListedRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT j.id, j.owner, u.name, j.name, j.state, j.outcome, j.submitted_ms \
                 FROM jobs j LEFT JOIN users u ON u.id = j.owner \
                 WHERE ($1 IS NULL OR j.owner = $1) AND ($2 IS NULL OR j.state = $2) \
                   AND ($3 IS NULL OR j.id < $3) \
                   AND ($5 IS NULL OR EXISTS (SELECT 1 FROM job_tags t \
                        WHERE t.job = j.id AND t.key = $5 AND t.value = $6)) \
                 ORDER BY j.id DESC LIMIT $4",
            )
            .bind(owner)
            .bind(state)
            .bind(before)
            .bind(i64::from(limit))
            .bind(tag.map(|t| t.0))
            .bind(tag.map(|t| t.1))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, owner, owner_name, name, state, outcome, submitted_ms)| ListedJob {
                    id: u32::try_from(id).unwrap_or(0),
                    owner: u64::try_from(owner).unwrap_or(0),
                    owner_name: owner_name.unwrap_or_else(|| "admin".into()),
                    name,
                    state,
                    outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
                    submitted_ms: u64::try_from(submitted_ms).unwrap_or(0),
                },
            )
            .collect())
    }

    /// A job's watch stream after entry `after`, at most `limit` entries.
    pub async fn job_events(
        &self,
        job: JobId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<JobEventRow>, StoreError> {
        let rows: Vec<(i64, i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT n, at_ms, body FROM job_events WHERE job = $1 AND n > $2 ORDER BY n LIMIT $3",
            )
            .bind(i64::from(job.0))
            .bind(seq_i64(after))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (n, at_ms, body) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            out.push(JobEventRow {
                n,
                at_ms: u64::try_from(at_ms).unwrap_or(0),
                event: serde_json::from_str(&body)
                    .map_err(|source| StoreError::Corrupt { seq: n, source })?,
            });
        }
        Ok(out)
    }

    /// The whole history: each input that decided something, at its time,
    /// with the events it decided.
    pub async fn history(
        &self,
    ) -> Result<Vec<(Time, aquifer_core::Input, Vec<Event>)>, StoreError> {
        let rows: Vec<(i64, i64, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT first_seq, at_ms, body FROM inputs ORDER BY first_seq")
                .fetch_all(pool)
                .await?
        });
        let events = self.events_after(0).await?;
        let mut out: Vec<(Time, aquifer_core::Input, Vec<Event>)> = Vec::with_capacity(rows.len());
        let mut rows = rows.into_iter().peekable();
        for (seq, event) in events {
            if let Some((first, at_ms, body)) = rows.next_if(|(first, _, _)| *first == seq_i64(seq))
            {
                let input = serde_json::from_str(&body).map_err(|source| StoreError::Corrupt {
                    seq: u64::try_from(first).unwrap_or(0),
                    source,
                })?;
                out.push((Time(u64::try_from(at_ms).unwrap_or(0)), input, Vec::new()));
            }
            match out.last_mut() {
                Some((_, _, decided)) => decided.push(event),
                None => {
                    return Err(StoreError::Gap {
                        expected: 1,
                        found: seq,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The events after `after`, in order, checked to follow on without a
    /// gap.
    pub async fn events_after(&self, after: u64) -> Result<Vec<(u64, Event)>, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq")
                .bind(seq_i64(after))
                .fetch_all(pool)
                .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (expected, (seq, body)) in (after + 1..).zip(rows) {
            let seq = u64::try_from(seq).unwrap_or(0);
            if seq != expected {
                return Err(StoreError::Gap {
                    expected,
                    found: seq,
                });
            }
            let event = serde_json::from_str(&body)
                .map_err(|source| StoreError::Corrupt { seq, source })?;
            out.push((seq, event));
        }
        Ok(out)
    }

    pub async fn save_snapshot(&self, seq: u64, state: &State) -> Result<(), StoreError> {
        let body = serde_json::to_string(state)?;
        on_pool!(self, pool => {
            sqlx::query("INSERT INTO snapshots (seq, body) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING")
                .bind(seq_i64(seq))
                .bind(body)
                .execute(pool)
                .await?;
            // Older snapshots are no longer needed: the log has every event.
            sqlx::query("DELETE FROM snapshots WHERE seq < $1")
                .bind(seq_i64(seq))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The latest snapshot, if any: its sequence number and state.
    pub async fn latest_snapshot(&self) -> Result<Option<(u64, State)>, StoreError> {
        let row: Option<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Ok(None),
            Some((seq, body)) => {
                let seq = u64::try_from(seq).unwrap_or(0);
                let state = serde_json::from_str(&body)
                    .map_err(|source| StoreError::Corrupt { seq, source })?;
                Ok(Some((seq, state)))
            }
        }
    }
}
