//! Users and their privileges.

use crate::on_pool;
use crate::store::{Store, StoreError};
use aquifer_core::{Privilege, Time};
use std::collections::BTreeSet;

impl Store {
    /// Adds a user; `None` if the name is taken.
    pub async fn create_user(
        &self,
        name: &str,
        privileges: &BTreeSet<Privilege>,
        now: Time,
    ) -> Result<Option<u64>, StoreError> {
        let privileges = serde_json::to_string(privileges)?;
        let created = i64::try_from(now.ms()).unwrap_or(i64::MAX);
        let id: Option<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO users (name, privileges, created_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(name)
            .bind(privileges)
            .bind(created)
            .fetch_optional(pool)
            .await?
        });
        Ok(id.map(|(id,)| u64::try_from(id).unwrap_or(0)))
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
