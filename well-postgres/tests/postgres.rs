//! The postgres well against a real PostgreSQL cluster: a job connects
//! with what `bmat` reads and can make tables, but not in another job's
//! database; after the jobs nothing with the prefix remains; a well killed
//! between create and report leaves nothing once the next run has
//! reconciled; refused credentials, an unreachable cluster and missing
//! privileges fail creates with reasons; the password the job gets is the
//! one PostgreSQL checks.
//!
//! The cluster is `AQUIFER_TEST_POSTGRES_URL` (a superuser; `.ci/run`
//! starts one). Without it these tests say so and pass, unless `CI` is set.
//! Roles are cluster-wide, so each test works under a prefix of its own.

use aquifer_well::{CreateRequest, Created, Well};
use aquifer_well_harness::*;
use aquifer_well_postgres::{PostgresConfig, PostgresWell, scram, sql};
use serde_json::{Value, json};
use sqlx::{Column as _, Connection, PgConnection, PgPool, Row as _};
use std::sync::Arc;

/// The cluster's superuser URL, or `None` when there is none outside CI.
fn cluster() -> Option<String> {
    let Ok(url) = std::env::var("AQUIFER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set AQUIFER_TEST_POSTGRES_URL (.ci/run starts a cluster)"
        );
        eprintln!("AQUIFER_TEST_POSTGRES_URL is not set: skipping the postgres well's tests");
        return None;
    };
    Some(url)
}

/// A prefix of this test in this process alone.
fn prefix(test: &str) -> String {
    format!("aqt_{}_{test}_", std::process::id())
}

fn config(admin_url: &str, prefix: &str) -> PostgresConfig {
    PostgresConfig {
        rtype: "pg".into(),
        admin_url: Some(admin_url.into()),
        admin_url_file: None,
        host: None,
        port: None,
        prefix: prefix.into(),
        connection_limit: 3,
        admin_connections: 4,
        connect_timeout_ms: 10_000,
    }
}

async fn well(config: PostgresConfig) -> Arc<PostgresWell> {
    Arc::new(PostgresWell::open(config).await.expect("a postgres well"))
}

fn req(resource: u32, deadline_ms: u64) -> CreateRequest {
    CreateRequest {
        resource,
        rtype: "pg".into(),
        job: 1,
        deadline_ms,
    }
}

/// The names of every role and database that start with `prefix`.
async fn leftovers(admin: &PgPool, prefix: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT 'role ' || rolname FROM pg_roles WHERE starts_with(rolname::text, $1) \
         UNION ALL SELECT 'database ' || datname FROM pg_database \
         WHERE starts_with(datname::text, $1) ORDER BY 1",
    )
    .bind(prefix)
    .fetch_all(admin)
    .await
    .expect("the catalog");
    rows.into_iter().map(|(n,)| n).collect()
}

async fn owned_ids<W: Well>(w: &W) -> Vec<u32> {
    let owned = w.list_owned().await.expect("the well lists");
    owned.into_iter().map(|o| o.resource).collect()
}

/// The SQLSTATE of a failed connection or statement.
fn code(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => format!("not a database error: {other}"),
    }
}

/// Whether `password` is the one PostgreSQL holds for `role`: its stored
/// SCRAM verifier, computed again from the password with the stored salt.
/// The test cluster trusts every local connection, so logging in proves
/// nothing about the password; this does.
async fn password_matches(admin: &PgPool, role: &str, password: &str) -> bool {
    let (stored,): (String,) =
        sqlx::query_as("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(role)
            .fetch_one(admin)
            .await
            .expect("the role's password");
    let (salt, iterations) = scram::parse_verifier(&stored).expect("a SCRAM verifier");
    scram::verifier(password, &salt, iterations) == stored
}

/// Plays the factory and the agent for the next job that holds all its
/// resources: its id and the job token that `bmat` uses.
async fn start_a_job(s: &Server, factory: &str) -> (u64, String) {
    let lease = loop {
        let (status, answer) = s
            .call(
                reqwest::Method::POST,
                "/0/factory/lease",
                factory,
                Some(json!({"free": {"t": 1}, "wait_ms": 30000})),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        if !answer["lease"].is_null() {
            break answer["lease"].clone();
        }
    };
    let worker = lease["worker"].as_u64().expect("a worker");
    let path = format!("/0/factory/workers/{worker}/created");
    let (status, key) = s
        .call(reqwest::Method::POST, &path, factory, Some(json!({})))
        .await;
    assert_eq!(status, 200, "{key}");
    let bootstrap = json!({"key": key["bootstrap"]});
    let (status, booted) = (s.client)
        .exchange(
            reqwest::Method::POST,
            "/0/agent/bootstrap",
            Some(&bootstrap),
        )
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{booted}");
    let agent = booted["token"].as_str().expect("a worker token");
    let (status, started) = s
        .call(
            reqwest::Method::POST,
            "/0/agent/start",
            agent,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let job = lease["job"].as_u64().expect("a job");
    (job, started["token"].as_str().expect("a job token").into())
}

/// What `bmat resource get db` reads with a job token.
async fn bmat_get(s: &Server, job_token: &str) -> (Value, Value) {
    let (status, r) = s
        .call(reqwest::Method::GET, "/0/job/resources/db", job_token, None)
        .await;
    assert_eq!(status, 200, "{r}");
    (r["metadata"].clone(), r["secrets"].clone())
}

fn text(v: &Value) -> &str {
    v.as_str().expect("a string")
}

#[tokio::test]
async fn jobs_use_their_databases_only_and_nothing_remains() {
    let Some(url) = cluster() else { return };
    let admin = PgPool::connect(&url).await.expect("the cluster");
    let prefix = prefix("jobs");
    let s = server().await;
    let token = s.well("pg-well", json!({"pg": 2})).await;
    let made = s
        .admin(
            "/0/admin/factories",
            json!({"name": "f", "targets": {"t": 2}}),
        )
        .await;
    let factory = made["token"].as_str().expect("a factory token").to_string();
    let w = well(config(&url, &prefix)).await;
    let runner = start(w.clone(), runner_config(&s, &token, &[("pg", 2)]));
    let before_ms = now_ms();
    let first = s.submit(json!([{"name": "db", "type": "pg"}])).await;
    let second = s.submit(json!([{"name": "db", "type": "pg"}])).await;
    let mut started = [
        start_a_job(&s, &factory).await,
        start_a_job(&s, &factory).await,
    ];
    started.sort();
    assert_eq!([started[0].0, started[1].0], [first, second]);
    let (meta1, secret1) = bmat_get(&s, &started[0].1).await;
    let (meta2, secret2) = bmat_get(&s, &started[1].1).await;

    // What the job reads: the URL without the password is metadata, the
    // password and the URL with it are secrets.
    let user1 = text(&meta1["user"]);
    assert!(user1.starts_with(&prefix), "{meta1}");
    assert_eq!(meta1["database"], meta1["user"]);
    assert!(!text(&meta1["url"]).contains(text(&secret1["password"])));
    assert!(text(&secret1["password"]).len() >= 32);
    assert!(password_matches(&admin, user1, text(&secret1["password"])).await);

    // The job makes a table in its database, with the DSN, and with the
    // URL plus the password.
    let mut conn = PgConnection::connect(text(&secret1["dsn"]))
        .await
        .expect("the job connects");
    sqlx::raw_sql("CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        .execute(&mut conn)
        .await
        .expect("a table");
    let options: sqlx::postgres::PgConnectOptions = text(&meta1["url"]).parse().expect("a URL");
    let mut again = PgConnection::connect_with(&options.password(text(&secret1["password"])))
        .await
        .expect("the URL and the password connect");
    let (x,): (i32,) = sqlx::query_as("SELECT x FROM t")
        .fetch_one(&mut again)
        .await
        .expect("the row");
    assert_eq!(x, 42);
    again.close().await.expect("closed");

    // Not in the other job's database, either way round.
    let elsewhere = |dsn: &Value, db: &Value| {
        let (server, _) = text(dsn).rsplit_once('/').expect("a database in the URL");
        format!("{server}/{}", text(db))
    };
    let cross = elsewhere(&secret1["dsn"], &meta2["database"]);
    assert!(cross.contains(&format!("//{user1}:")), "{meta1}");
    let refused = PgConnection::connect(&cross).await.expect_err("refused");
    assert_eq!(code(&refused), "42501", "{refused}");
    let cross = elsewhere(&secret2["dsn"], &meta1["database"]);
    let refused = PgConnection::connect(&cross).await.expect_err("refused");
    assert_eq!(code(&refused), "42501", "{refused}");

    // The role expires with the job, holds few connections, and says
    // which resource it is.
    let (until_ms, limit, comment): (i64, i32, String) = sqlx::query_as(
        "SELECT (extract(epoch FROM rolvaliduntil) * 1000)::int8, rolconnlimit, \
         shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(user1)
    .fetch_one(&admin)
    .await
    .expect("the role");
    let until_ms = u64::try_from(until_ms).expect("after 1970");
    assert!(
        until_ms >= before_ms + 590_000 && until_ms <= now_ms() + 600_000,
        "VALID UNTIL the job's deadline: {until_ms}"
    );
    assert_eq!(limit, 3);
    let id = sql::resource_of(&prefix, user1).expect("the name carries the id");
    assert_eq!(comment, sql::tag(id));

    // The first job ends; its session is cut, its role and database go,
    // the second's stay.
    s.cancel(first).await;
    eventually("the first resource destroyed", || async {
        (s.resources(&token).await.len() == 1).then_some(())
    })
    .await;
    sqlx::query("SELECT 1")
        .execute(&mut conn)
        .await
        .expect_err("the job's session was terminated");
    let user2 = text(&meta2["user"]);
    let left = leftovers(&admin, &prefix).await;
    assert_eq!(
        left,
        [format!("database {user2}"), format!("role {user2}")],
        "only the second job's"
    );
    s.cancel(second).await;
    eventually("both destroyed", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(leftovers(&admin, &prefix).await, Vec::<String>::new());
    runner.stop().await.expect("a clean stop");
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    u64::try_from(since.expect("after 1970").as_millis()).expect("in range")
}

#[tokio::test]
async fn a_well_killed_between_create_and_report_leaves_nothing() {
    let Some(url) = cluster() else { return };
    let admin = PgPool::connect(&url).await.expect("the cluster");
    let prefix = prefix("killed");
    let s = server().await;
    let token = s.well("pg-well", json!({"pg": 2})).await;
    let w = well(config(&url, &prefix)).await;
    let job = s.submit(json!([{"name": "db", "type": "pg"}])).await;

    // A run of the well takes the lease and makes the resource, then dies
    // before it reports; another made one for an id the server never gave.
    let (status, answer) = s
        .call(
            reqwest::Method::POST,
            "/0/well/lease",
            &token,
            Some(json!({"free": {"pg": 1}, "wait_ms": 30000})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let lease = &answer["lease"];
    let resource = u32::try_from(lease["resources"][0].as_u64().expect("an id")).expect("small");
    let deadline_ms = lease["deadline_ms"].as_u64().expect("a deadline");
    let made = w
        .create(&req(resource, deadline_ms))
        .await
        .expect("made, never reported");
    let (until_ms,): (i64,) = sqlx::query_as(
        "SELECT (extract(epoch FROM rolvaliduntil) * 1000)::int8 FROM pg_roles WHERE rolname = $1",
    )
    .bind(&made.metadata["user"])
    .fetch_one(&admin)
    .await
    .expect("the role");
    assert_eq!(u64::try_from(until_ms).ok(), Some(deadline_ms));
    w.create(&req(900, 0)).await.expect("an orphan");
    assert_eq!(owned_ids(&*w).await, [resource, 900]);

    // The next run fails the unreported resource (the job keeps its
    // place), destroys it and the orphan, and serves the job anew.
    let runner = start(w.clone(), runner_config(&s, &token, &[("pg", 2)]));
    let rs = eventually("the job served again", || async {
        let rs = s.resources(&token).await;
        (rs.len() == 1 && rs[0].1 == "ready").then_some(rs)
    })
    .await;
    let again = u32::try_from(rs[0].0).expect("small");
    assert_ne!(again, resource);
    let only = eventually("the crashed run's leftovers gone", || async {
        let o = owned_ids(&*w).await;
        (o.len() == 1).then_some(o)
    })
    .await;
    assert_eq!(only, [again]);
    let name = sql::name(&prefix, again);
    assert_eq!(
        leftovers(&admin, &prefix).await,
        [format!("database {name}"), format!("role {name}")]
    );
    s.cancel(job).await;
    eventually("destroyed after the job", || async {
        s.resources(&token).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(leftovers(&admin, &prefix).await, Vec::<String>::new());
    runner.stop().await.expect("a clean stop");
}

/// `url` with its user replaced.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

#[tokio::test]
async fn refused_credentials_an_unreachable_cluster_and_missing_privileges_are_reasons() {
    let Some(url) = cluster() else { return };
    let admin = PgPool::connect(&url).await.expect("the cluster");
    let prefix = prefix("refused");

    let nobody = well(config(&as_user(&url, &format!("{prefix}nobody")), &prefix)).await;
    let e = nobody.create(&req(1, 0)).await.expect_err("refused");
    assert!(!e.retryable, "{e:?}");
    assert!(e.reason.contains("refused the well's credentials"), "{e}");
    let e = nobody.destroy(1, "pg").await.expect_err("refused");
    assert!(e.contains("credentials"), "{e}");
    nobody.list_owned().await.expect_err("refused");

    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("an address").port()
    };
    let unreachable = well(PostgresConfig {
        connect_timeout_ms: 300,
        ..config(
            &format!("postgres://ci@127.0.0.1:{closed}/postgres"),
            &prefix,
        )
    })
    .await;
    let e = unreachable
        .create(&req(1, 0))
        .await
        .expect_err("no cluster");
    assert!(e.retryable, "{e:?}");
    assert!(e.reason.contains(&format!("127.0.0.1:{closed}")), "{e}");

    // A role that may create roles but not databases: refused for good,
    // and the role it made on the way is gone again.
    let well_role = format!("aqt_{}_admin_", std::process::id());
    let quoted = sql::ident(&well_role);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS {quoted}; CREATE ROLE {quoted} LOGIN CREATEROLE"
    )))
    .execute(&admin)
    .await
    .expect("the well's role");
    let limited = well(config(&as_user(&url, &well_role), &prefix)).await;
    let e = limited.create(&req(2, 0)).await.expect_err("no CREATEDB");
    assert!(!e.retryable, "{e:?}");
    assert!(
        e.reason.contains("CREATEDB") && e.reason.contains("42501"),
        "{e}"
    );
    assert_eq!(leftovers(&admin, &prefix).await, Vec::<String>::new());

    // With CREATEDB as well, and no superuser, it works end to end: the
    // privileges docs/wells.md names are enough.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER ROLE {quoted} CREATEDB")))
        .execute(&admin)
        .await
        .expect("CREATEDB");
    let made = limited.create(&req(3, 0)).await.expect("made");
    let mut conn = PgConnection::connect(&made.secrets["dsn"])
        .await
        .expect("the job connects");
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .expect("a table");
    assert_eq!(owned_ids(&*limited).await, [3]);
    limited
        .destroy(3, "pg")
        .await
        .expect("destroyed, its session too");
    assert!(sqlx::query("SELECT 1").execute(&mut conn).await.is_err());
    limited.destroy(3, "pg").await.expect("again: already gone");
    assert_eq!(leftovers(&admin, &prefix).await, Vec::<String>::new());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {quoted}")))
        .execute(&admin)
        .await
        .expect("the well's role dropped");
}

#[tokio::test]
async fn what_the_well_did_not_make_is_left_alone() {
    let Some(url) = cluster() else { return };
    let admin = PgPool::connect(&url).await.expect("the cluster");
    let prefix = prefix("foreign");
    let w = well(config(&url, &prefix)).await;
    // A role named as the well would name resource 7's, without its tag.
    let theirs = sql::ident(&sql::name(&prefix, 7));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {theirs}")))
        .execute(&admin)
        .await
        .expect("someone's role");
    assert_eq!(owned_ids(&*w).await, Vec::<u32>::new());
    let e = w.create(&req(7, 0)).await.expect_err("the name is taken");
    assert!(!e.retryable && e.reason.contains("did not make"), "{e:?}");
    w.destroy(7, "pg")
        .await
        .expect("nothing of the well's to destroy");
    assert_eq!(
        leftovers(&admin, &prefix).await,
        [format!("role {}", sql::name(&prefix, 7))],
        "left alone"
    );

    // A create made again for the same resource (a retry after a crash)
    // replaces what the first made: one role, the new password.
    let first = w.create(&req(8, 0)).await.expect("made");
    let second: Created = w.create(&req(8, 0)).await.expect("made again");
    let role = &second.metadata["user"];
    assert!(password_matches(&admin, role, &second.secrets["password"]).await);
    assert!(!password_matches(&admin, role, &first.secrets["password"]).await);
    w.destroy(8, "pg").await.expect("destroyed");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {theirs}")))
        .execute(&admin)
        .await
        .expect("dropped");
    assert_eq!(leftovers(&admin, &prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_create_fails_the_job_with_the_reason() {
    let Some(url) = cluster() else { return };
    let prefix = prefix("jobfail");
    let s = server().await;
    let token = s.well("pg-well", json!({"pg": 2})).await;
    let nobody = well(config(&as_user(&url, &format!("{prefix}nobody")), &prefix)).await;
    let runner = start(nobody, runner_config(&s, &token, &[("pg", 2)]));
    let job = s.submit(json!([{"name": "db", "type": "pg"}])).await;
    assert_eq!(s.ended(job).await, json!({"failed": "resource"}));
    let shown = s.job(job).await;
    assert!(
        text(&shown["reason"]).contains("refused the well's credentials"),
        "{shown}"
    );
    // The well keeps serving: it is still running, asking for work.
    assert!(!runner.finished());
    runner.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn the_wells_verifier_and_quoting_agree_with_postgresql() {
    let Some(url) = cluster() else { return };
    let admin = PgPool::connect(&url).await.expect("the cluster");
    let prefix = prefix("scram");
    // PostgreSQL hashes a plain password itself, with a salt of its own;
    // the well's computation from that salt must give the same.
    let role = sql::ident(&format!("{prefix}probe"));
    let password = scram::password().expect("randomness");
    let make = format!(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} PASSWORD {}",
        sql::literal(&password)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(make))
        .execute(&admin)
        .await
        .expect("a role");
    assert!(password_matches(&admin, &format!("{prefix}probe"), &password).await);
    assert!(!password_matches(&admin, &format!("{prefix}probe"), "not it").await);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&admin)
        .await
        .expect("dropped");

    // Literals and identifiers read back as written, whatever they hold.
    for tricky in [
        "plain",
        "it's",
        "back\\slash",
        "\\'; DROP ROLE x; --",
        "ünï \"q\"",
    ] {
        let query = format!(
            "SELECT {} = $1 AS {}",
            sql::literal(tricky),
            sql::ident(tricky)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(tricky)
            .fetch_one(&admin)
            .await
            .expect("a literal and an identifier");
        assert!(row.get::<bool, _>(0), "the literal {tricky}");
        assert_eq!(row.columns()[0].name(), tricky, "the identifier");
    }
}
