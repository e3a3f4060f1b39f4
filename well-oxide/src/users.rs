//! Local users of a silo: made with a password, found by name, and
//! removed with every session and token they hold.

use super::api::{Failure, OxideError, Retry};
use futures_util::TryStreamExt as _;
use oxide::prelude::*;
use oxide::types::{User, UserCreate, UserPassword};
use uuid::Uuid;

/// Where a user is looked up.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    /// `/v1/users`: the caller's own silo (a silo admin's view).
    Own,
    /// `/v1/system/users?silo=`: any silo (a fleet admin's view).
    System(Uuid),
}

/// The user named `name`, if there is one. Oxide shows a local user's
/// login name as its display name.
pub async fn find(
    c: &oxide::Client,
    retry: Retry,
    scope: Scope,
    name: &str,
) -> Result<Option<User>, OxideError> {
    let all = list(c, retry, scope).await?;
    Ok(all.into_iter().find(|u| u.display_name == name))
}

/// Every user in `scope`.
pub async fn list(c: &oxide::Client, retry: Retry, scope: Scope) -> Result<Vec<User>, OxideError> {
    let step = "listing users";
    match scope {
        Scope::Own => {
            retry
                .call(step, || c.user_list().stream().try_collect::<Vec<_>>())
                .await
        }
        Scope::System(silo) => {
            retry
                .call(step, || {
                    c.silo_user_list()
                        .silo(silo)
                        .stream()
                        .try_collect::<Vec<_>>()
                })
                .await
        }
    }
}

/// Makes the local user `name` in `silo` with `password`. If it exists
/// already (an earlier attempt whose answer was lost, or the well's admin
/// of a silo met again), its password is set to `password` instead, since
/// the old one is not known.
pub async fn create_or_reset(
    c: &oxide::Client,
    retry: Retry,
    silo: Uuid,
    scope: Scope,
    name: &str,
    password: &str,
) -> Result<User, OxideError> {
    let step = format!("creating user {name}");
    let secret: oxide::types::Password = password.parse().map_err(|e| {
        OxideError::new(
            &step,
            Failure::Protocol(format!("not a valid password: {e}")),
        )
    })?;
    let body = UserCreate {
        external_id: name.parse().map_err(|e| {
            OxideError::new(
                &step,
                Failure::Protocol(format!("not a valid user name: {e}")),
            )
        })?,
        password: UserPassword::Password(secret.clone()),
    };
    let made = retry
        .call(&step, || {
            let body = body.clone();
            async move { c.local_idp_user_create().silo(silo).body(body).send().await }
        })
        .await;
    let err = match made {
        Ok(u) => return Ok(u.into_inner()),
        Err(e) if e.is_already_exists() => e,
        Err(e) => return Err(e),
    };
    let Some(user) = find(c, retry, scope, name).await? else {
        return Err(err);
    };
    let step = format!("setting the password of user {name}");
    let id = user.id;
    retry
        .call(&step, || {
            let pw = UserPassword::Password(secret.clone());
            async move {
                c.local_idp_user_set_password()
                    .silo(silo)
                    .user_id(id)
                    .body(pw)
                    .send()
                    .await
            }
        })
        .await?;
    Ok(user)
}

/// Revokes every session and token of `user`, then deletes it. Either
/// being gone already counts as done.
pub async fn remove(
    c: &oxide::Client,
    retry: Retry,
    silo: Uuid,
    user: &User,
) -> Result<(), OxideError> {
    let (id, name) = (user.id, user.display_name.as_str());
    revoke(c, retry, user).await?;
    let step = format!("deleting user {name}");
    retry
        .call_unless_gone(&step, || {
            c.local_idp_user_delete().silo(silo).user_id(id).send()
        })
        .await
}

/// Revokes every session and token of `user`.
pub async fn revoke(c: &oxide::Client, retry: Retry, user: &User) -> Result<(), OxideError> {
    let (id, name) = (user.id, user.display_name.as_str());
    let step = format!("logging user {name} out everywhere");
    retry
        .call_unless_gone(&step, || c.user_logout().user_id(id).send())
        .await
}
