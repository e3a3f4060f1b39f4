//! Users and their privileges.

use crate::auth::{AuthError, new_token};
use crate::on_pool;
use crate::store::{Store, StoreError};
use aquifer_core::{Privilege, Time};
use std::collections::BTreeSet;

impl Store {
    /// Adds a user and a first token for them, in one transaction; `None`
    /// if the name is taken. Returns the id and the token's plaintext.
    pub async fn create_user(
        &self,
        name: &str,
        privileges: &BTreeSet<Privilege>,
        now: Time,
    ) -> Result<Option<(u64, String)>, AuthError> {
        let privileges = serde_json::to_string(privileges).map_err(StoreError::from)?;
        let created = i64::try_from(now.ms()).unwrap_or(i64::MAX);
        let token = new_token()?;
        let made = on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::from)?;
            let id: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO users (name, privileges, created_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(name)
            .bind(privileges)
            .bind(created)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            match id {
                None => None,
                Some((id,)) => {
                    sqlx::query(
                        "INSERT INTO tokens (id, secret_hash, kind, subject, created_ms) \
                         VALUES ($1, $2, 'user', $3, $4)",
                    )
                    .bind(&token.id)
                    .bind(&token.hash)
                    .bind(id)
                    .bind(created)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
                    tx.commit().await.map_err(StoreError::from)?;
                    Some((u64::try_from(id).unwrap_or(0), token.plaintext))
                }
            }
        });
        Ok(made)
    }

    /// A user's privileges; `None` if there is no such user.
    pub async fn user_privileges(
        &self,
        user: u64,
    ) -> Result<Option<BTreeSet<Privilege>>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT privileges FROM users WHERE id = $1")
                .bind(i64::try_from(user).unwrap_or(i64::MAX))
                .fetch_optional(pool)
                .await?
        });
        row.map(|(p,)| serde_json::from_str(&p).map_err(StoreError::from))
            .transpose()
    }
}
