//! Tokens against a real database: issued once, found by id, refused when
//! wrong or revoked (also once the store has them in memory), and never
//! stored in plaintext.

mod common;
use aquifer_core::Time;
use aquifer_server::auth::{AuthError, Principal};
use aquifer_server::readmodel::Write;
use aquifer_server::store::Store;
use common::*;

async fn tokens_work(url: &str) {
    let store = Store::open(url).await.expect("open");
    let token = store
        .issue_token(Principal::Well(3), Time(1))
        .await
        .expect("issued");
    let other = store
        .issue_token(Principal::Well(3), Time(1))
        .await
        .expect("issued");
    assert_ne!(token, other);
    assert_eq!(token.len(), 3 + 16 + 1 + 64, "{token}");
    assert_eq!(
        store.authenticate(&token).await.expect("valid"),
        Principal::Well(3)
    );

    // One wrong secret digit is refused, like an unknown id.
    let mut wrong = token.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("ascii");
    assert!(matches!(
        store.authenticate(&wrong).await,
        Err(AuthError::Invalid)
    ));
    assert!(matches!(
        store.authenticate("aq_nope").await,
        Err(AuthError::Malformed)
    ));

    // The plaintext secret is nowhere in the database.
    let secret = token.rsplit('_').next().expect("secret").to_string();
    let dump: Vec<(String,)> = match store.pool() {
        aquifer_server::store::Pool::Sqlite(p) => {
            sqlx::query_as("SELECT hex(secret_hash) FROM tokens")
                .fetch_all(p)
                .await
        }
        aquifer_server::store::Pool::Postgres(p) => {
            sqlx::query_as("SELECT encode(secret_hash, 'hex') FROM tokens")
                .fetch_all(p)
                .await
        }
    }
    .expect("read");
    assert!(dump.iter().all(|(h,)| !h.eq_ignore_ascii_case(&secret)));

    // A job's token, checked once (so kept in memory), is refused once a
    // batch's write revokes it; a clone of the store shares what it keeps.
    let job = store
        .issue_token(Principal::Job(9), Time(1))
        .await
        .expect("issued");
    let clone = store.clone();
    assert_eq!(
        clone.authenticate(&job).await.expect("valid"),
        Principal::Job(9)
    );
    assert_eq!(store.cached_tokens(), 2, "the well's token and the job's");
    store
        .append(
            0,
            Time::ZERO,
            &[],
            &[Write::RevokeTokens {
                kind: "job",
                subject: 9,
            }],
        )
        .await
        .expect("a batch");
    assert!(matches!(
        store.authenticate(&job).await,
        Err(AuthError::Invalid)
    ));
    assert_eq!(
        store.authenticate(&token).await.expect("still valid"),
        Principal::Well(3),
        "another principal's token stays valid"
    );

    assert_eq!(
        store
            .revoke_tokens(Principal::Well(3))
            .await
            .expect("revoked"),
        2
    );
    assert!(matches!(
        store.authenticate(&token).await,
        Err(AuthError::Invalid)
    ));
    assert_eq!(store.cached_tokens(), 0);
}

#[tokio::test]
async fn sqlite_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    tokens_work(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_tokens() {
    if let Some(url) = postgres_url("tokens").await {
        tokens_work(&url).await;
    }
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let err = Store::open("postgres://ci:hunter2@127.0.0.1:1/aquifer")
        .await
        .expect_err("nothing listens on port 1");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    let err = Store::open("mysql://x").await.expect_err("unsupported");
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}
