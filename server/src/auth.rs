//! API tokens and the principals they stand for.
//!
//! A token reads `aq_<id>_<secret>`: 8 random bytes of id, to find the row
//! without touching the secret, and 32 random bytes (256 bits) of secret.
//! Only the secret's SHA-256 is stored; a presented secret is hashed and
//! compared with it in constant time. The plaintext is shown once, when
//! the token is made.

use crate::store::{Store, StoreError};
use aquifer_core::Time;
use aquifer_protocol::token::{ID_BYTES, SECRET_BYTES, hex};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Who a token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    Admin,
    User(u64),
    Well(u64),
    Factory(u64),
    /// The agent on one worker.
    Worker(u64),
    /// A running job, through `bmat`.
    Job(u64),
    /// A worker's one-time key, good only for the agent's bootstrap.
    Bootstrap(u64),
}

impl Principal {
    fn kind(self) -> (&'static str, u64) {
        match self {
            Principal::Admin => ("admin", 0),
            Principal::User(id) => ("user", id),
            Principal::Well(id) => ("well", id),
            Principal::Factory(id) => ("factory", id),
            Principal::Worker(id) => ("worker", id),
            Principal::Job(id) => ("job", id),
            Principal::Bootstrap(id) => ("bootstrap", id),
        }
    }

    fn from_kind(kind: &str, subject: u64) -> Option<Principal> {
        Some(match kind {
            "admin" => Principal::Admin,
            "user" => Principal::User(subject),
            "well" => Principal::Well(subject),
            "factory" => Principal::Factory(subject),
            "worker" => Principal::Worker(subject),
            "job" => Principal::Job(subject),
            "bootstrap" => Principal::Bootstrap(subject),
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no usable token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not valid (unknown, revoked, or wrong)")]
    Invalid,
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    // One spelling per token: lower-case hex digits only.
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn digest(secret: &[u8]) -> Vec<u8> {
    Sha256::digest(secret).to_vec()
}

/// A token's parts, parsed from what a client presented.
struct Presented {
    id: String,
    secret: Vec<u8>,
}

fn parse(token: &str) -> Result<Presented, AuthError> {
    let rest = token.strip_prefix("aq_").ok_or(AuthError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(AuthError::Malformed)?;
    let secret = unhex(secret).ok_or(AuthError::Malformed)?;
    if unhex(id).map(|b| b.len()) != Some(ID_BYTES) || secret.len() != SECRET_BYTES {
        return Err(AuthError::Malformed);
    }
    Ok(Presented {
        id: id.to_string(),
        secret,
    })
}

/// A new token: what the database keeps (id, hash) and what the client
/// gets (the plaintext).
pub(crate) struct NewToken {
    pub id: String,
    pub hash: Vec<u8>,
    pub plaintext: String,
}

/// 256 random bits as hex: a bootstrap token for a server that makes its
/// own (`aquifer dev`, `aquifer demo`).
pub fn random_secret() -> Result<String, AuthError> {
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex(&secret))
}

pub(crate) fn new_token() -> Result<NewToken, AuthError> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).map_err(|e| AuthError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(NewToken {
        id: hex(&id),
        hash: digest(&secret),
        plaintext: aquifer_protocol::token::compose(&id, &secret),
    })
}

/// Whether `presented` is `expected`, in time that does not depend on
/// where they differ or on their lengths (both are hashed first).
#[must_use]
pub fn same_secret(presented: &str, expected: &str) -> bool {
    digest(presented.as_bytes())
        .ct_eq(&digest(expected.as_bytes()))
        .into()
}

/// Tokens found valid in the database, so that a request does not cost a
/// query to learn who sent it. Only a valid token's stored hash and
/// principal are kept, never a plaintext; a presented secret is still
/// hashed and compared in constant time. Every revocation goes through
/// this process's store (`Store::revoke_tokens`, or a batch's
/// `RevokeTokens` writes) and removes its principal's entries once the
/// database has it; a lookup that raced with a revocation does not cache
/// what it read. Bounded: when full it starts again empty.
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    /// Token id → (stored hash, principal).
    by_id: HashMap<String, (Vec<u8>, Principal)>,
    /// A principal's cached token ids, for revocation.
    by_principal: HashMap<(&'static str, u64), Vec<String>>,
    /// Bumped by every revocation.
    generation: u64,
}

/// Tokens the cache holds at most.
const CACHED_TOKENS_MAX: usize = 65_536;

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // The map is left consistent at every step, so a panic elsewhere
        // while it was held does not make it wrong.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached answer for a token id, or the generation to pass to
    /// `insert` after asking the database.
    fn get(&self, id: &str) -> Result<(Vec<u8>, Principal), u64> {
        let c = self.lock();
        c.by_id.get(id).cloned().ok_or(c.generation)
    }

    fn insert(&self, generation: u64, id: &str, hash: Vec<u8>, principal: Principal) {
        let mut c = self.lock();
        if c.generation != generation {
            return;
        }
        if c.by_id.len() >= CACHED_TOKENS_MAX {
            c.by_id.clear();
            c.by_principal.clear();
        }
        c.by_principal
            .entry(principal.kind())
            .or_default()
            .push(id.to_string());
        c.by_id.insert(id.to_string(), (hash, principal));
    }

    /// Forgets every token of (kind, subject).
    pub(crate) fn revoked(&self, kind: &str, subject: u64) {
        let mut c = self.lock();
        c.generation += 1;
        let key = Principal::from_kind(kind, subject).map(Principal::kind);
        if let Some(key) = key
            && let Some(ids) = c.by_principal.remove(&key)
        {
            for id in ids {
                c.by_id.remove(&id);
            }
        }
    }

    fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

impl Store {
    /// Makes a token for `principal` and returns its plaintext, the only
    /// time it exists outside the client.
    pub async fn issue_token(&self, principal: Principal, now: Time) -> Result<String, AuthError> {
        let NewToken {
            id: id_hex,
            hash,
            plaintext,
        } = new_token()?;
        let (kind, subject) = principal.kind();
        let subject = i64::try_from(subject).map_err(|_| AuthError::Malformed)?;
        let created = i64::try_from(now.ms()).unwrap_or(i64::MAX);
        crate::on_pool!(self, pool => {
            sqlx::query("INSERT INTO tokens (id, secret_hash, kind, subject, created_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id_hex)
                .bind(&hash)
                .bind(kind)
                .bind(subject)
                .bind(created)
                .execute(pool)
                .await
                .map_err(StoreError::from)?;
        });
        Ok(plaintext)
    }

    /// How many valid tokens this store (and its clones) keeps in memory.
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Who a presented token speaks for: from memory if it was checked
    /// before and not revoked since, else from the database.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let presented = parse(token)?;
        let generation = match self.tokens.get(&presented.id) {
            Ok((stored, principal)) => {
                let matches: bool = digest(&presented.secret).ct_eq(&stored).into();
                return if matches {
                    Ok(principal)
                } else {
                    Err(AuthError::Invalid)
                };
            }
            Err(generation) => generation,
        };
        let row: Option<(Vec<u8>, String, i64, i64)> = crate::on_pool!(self, pool => {
            sqlx::query_as("SELECT secret_hash, kind, subject, revoked FROM tokens WHERE id = $1")
                .bind(&presented.id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from)?
        });
        let Some((stored, kind, subject, revoked)) = row else {
            return Err(AuthError::Invalid);
        };
        let matches: bool = digest(&presented.secret).ct_eq(&stored).into();
        if !matches || revoked != 0 {
            return Err(AuthError::Invalid);
        }
        let subject = u64::try_from(subject).map_err(|_| AuthError::Invalid)?;
        let principal = Principal::from_kind(&kind, subject).ok_or(AuthError::Invalid)?;
        self.tokens
            .insert(generation, &presented.id, stored, principal);
        Ok(principal)
    }

    /// Spends worker `worker`'s one-time key and makes its worker token,
    /// in one transaction: `proposed` (the agent's own, so that a retry
    /// after a lost answer can show it) or a new one. `None` if the key
    /// was spent already; of two uses of one key, exactly one gets a
    /// token.
    pub async fn exchange_key(
        &self,
        worker: u64,
        proposed: Option<&str>,
        now: Time,
    ) -> Result<Option<String>, AuthError> {
        let token = match proposed {
            Some(p) => {
                let presented = parse(p)?;
                NewToken {
                    hash: digest(&presented.secret),
                    id: presented.id,
                    plaintext: p.to_string(),
                }
            }
            None => new_token()?,
        };
        let (key_kind, subject) = Principal::Bootstrap(worker).kind();
        let (token_kind, _) = Principal::Worker(worker).kind();
        let bound = i64::try_from(subject).map_err(|_| AuthError::Malformed)?;
        let created = i64::try_from(now.ms()).unwrap_or(i64::MAX);
        let done: Result<Option<String>, AuthError> = crate::on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::from)?;
            let spent = sqlx::query(
                "UPDATE tokens SET revoked = 1 WHERE kind = $1 AND subject = $2 AND revoked = 0",
            )
            .bind(key_kind)
            .bind(bound)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
            if spent == 0 {
                Ok(None)
            } else {
                let made = sqlx::query(
                    "INSERT INTO tokens (id, secret_hash, kind, subject, created_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&token.id)
                .bind(&token.hash)
                .bind(token_kind)
                .bind(bound)
                .bind(created)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .rows_affected();
                if made == 1 {
                    tx.commit().await.map_err(StoreError::from)?;
                    Ok(Some(token.plaintext))
                } else {
                    // The proposed id is taken: no token, and the key
                    // stays good (the transaction is dropped).
                    Err(AuthError::Malformed)
                }
            }
        });
        // Even after an error: the commit may have gone through.
        self.tokens.revoked(key_kind, subject);
        done
    }

    /// Revokes every token of `principal` (a finished job's, say).
    pub async fn revoke_tokens(&self, principal: Principal) -> Result<u64, AuthError> {
        let (kind, subject) = principal.kind();
        let bound = i64::try_from(subject).map_err(|_| AuthError::Malformed)?;
        let done: Result<u64, sqlx::Error> = crate::on_pool!(self, pool => {
            sqlx::query("UPDATE tokens SET revoked = 1 WHERE kind = $1 AND subject = $2 AND revoked = 0")
                .bind(kind)
                .bind(bound)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        // Even after an error: the update may have gone through.
        self.tokens.revoked(kind, subject);
        Ok(done.map_err(StoreError::from)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_exact_shape() {
        let good = format!("aq_{}_{}", "ab".repeat(ID_BYTES), "cd".repeat(SECRET_BYTES));
        assert!(parse(&good).is_ok());
        for bad in [
            String::new(),
            "Bearer x".into(),
            format!("aq_{}", "ab".repeat(ID_BYTES)),
            format!(
                "aq_{}_{}",
                "ab".repeat(ID_BYTES),
                "cd".repeat(SECRET_BYTES - 1)
            ),
            format!("aq_{}_{}", "zz".repeat(ID_BYTES), "cd".repeat(SECRET_BYTES)),
            format!("xx_{}_{}", "ab".repeat(ID_BYTES), "cd".repeat(SECRET_BYTES)),
            // One spelling per token: no upper case, no signs.
            format!("aq_{}_{}", "ab".repeat(ID_BYTES), "CD".repeat(SECRET_BYTES)),
            format!("aq_{}_{}", "+a".repeat(ID_BYTES), "cd".repeat(SECRET_BYTES)),
        ] {
            assert!(matches!(parse(&bad), Err(AuthError::Malformed)), "{bad:?}");
        }
    }

    #[test]
    fn a_lookup_that_raced_with_a_revocation_is_not_kept() {
        let cache = TokenCache::default();
        let Err(before) = cache.get("t1") else {
            panic!("nothing cached yet")
        };
        // The database said t1 was valid, then a revocation of its
        // principal landed before the answer was cached.
        cache.revoked("job", 4);
        cache.insert(before, "t1", vec![1], Principal::Job(4));
        assert_eq!(cache.len(), 0);
        let Err(now) = cache.get("t1") else {
            panic!("not cached")
        };
        cache.insert(now, "t1", vec![1], Principal::Job(4));
        cache.insert(now, "t2", vec![2], Principal::Job(5));
        assert_eq!(cache.get("t1"), Ok((vec![1], Principal::Job(4))));
        cache.revoked("job", 4);
        assert!(cache.get("t1").is_err());
        assert_eq!(cache.get("t2"), Ok((vec![2], Principal::Job(5))));
    }
}
