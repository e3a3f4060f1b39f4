//! Users and their privileges, and the names of wells and factories.

use crate::auth::{AuthError, new_token};
use crate::on_pool;
use crate::store::{Store, StoreError};
use aquifer_core::{Privilege, Time};
use std::collections::{BTreeMap, BTreeSet};

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

    /// Every user: (id, name, privileges), by id.
    pub async fn list_users(&self) -> Result<Vec<(u64, String, BTreeSet<Privilege>)>, StoreError> {
        let rows: Vec<(i64, String, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, name, privileges FROM users ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (id, name, privileges) in rows {
            out.push((
                u64::try_from(id).unwrap_or(0),
                name,
                serde_json::from_str(&privileges)?,
            ));
        }
        Ok(out)
    }

    /// Replaces a user's privileges; `false` if there is no such user.
    pub async fn set_privileges(
        &self,
        user: u64,
        privileges: &BTreeSet<Privilege>,
    ) -> Result<bool, StoreError> {
        let body = serde_json::to_string(privileges)?;
        let done = on_pool!(self, pool => {
            sqlx::query("UPDATE users SET privileges = $1 WHERE id = $2")
                .bind(body)
                .bind(i64::try_from(user).unwrap_or(i64::MAX))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// The id for a well or factory `name`: the existing one, or a new one.
    pub async fn service_id(
        &self,
        kind: Service,
        name: &str,
        now: Time,
    ) -> Result<u64, StoreError> {
        let created = i64::try_from(now.ms()).unwrap_or(i64::MAX);
        let (insert, select, _) = kind.sql();
        let (id,): (i64,) = on_pool!(self, pool => {
            sqlx::query(insert)
                .bind(name)
                .bind(created)
                .execute(pool)
                .await?;
            sqlx::query_as(select).bind(name).fetch_one(pool).await?
        });
        Ok(u64::try_from(id).unwrap_or(0))
    }

    /// The names of every well or factory, by id.
    pub async fn service_names(&self, kind: Service) -> Result<BTreeMap<u64, String>, StoreError> {
        let (_, _, list) = kind.sql();
        let rows: Vec<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(list).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, name)| (u64::try_from(id).unwrap_or(0), name))
            .collect())
    }
}

/// The two kinds of service that pull work from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Well,
    Factory,
}

impl Service {
    /// (insert a name, its id, every id and name) for the kind's table.
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Service::Well => (
                "INSERT INTO wells (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                "SELECT id FROM wells WHERE name = $1",
                "SELECT id, name FROM wells",
            ),
            Service::Factory => (
                "INSERT INTO factories (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                "SELECT id FROM factories WHERE name = $1",
                "SELECT id, name FROM factories",
            ),
        }
    }
}
