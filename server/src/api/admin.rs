//! The admin API: resource types, targets, users and their tokens.

use super::error::ApiError;
use super::{Api, Caller};
use crate::auth::Principal;
use aquifer_core::{Input, Privilege, TargetId, TargetSpec, Time, TypeId, TypeSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use warp::http::StatusCode;

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    match caller.principal {
        Principal::Admin => Ok(()),
        _ => Err(ApiError::forbidden("this needs an admin token")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewType {
    pub name: String,
    pub max_per_job: u16,
    #[serde(default)]
    pub privilege: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    pub name: String,
    #[serde(default)]
    pub privilege: Option<String>,
}

#[derive(Serialize)]
pub struct Created {
    pub name: String,
}

pub async fn create_type(
    api: &Api,
    caller: Caller,
    body: &[u8],
) -> Result<(StatusCode, Created), ApiError> {
    admin_only(&caller)?;
    let t: NewType = super::parse_json(body)?;
    let input = Input::DefineType {
        rtype: TypeId::new(t.name.clone()),
        spec: TypeSpec {
            max_per_job: t.max_per_job,
            privilege: t.privilege.map(Privilege::new),
        },
    };
    api.handle.send(input).await?;
    Ok((StatusCode::CREATED, Created { name: t.name }))
}

pub async fn create_target(
    api: &Api,
    caller: Caller,
    body: &[u8],
) -> Result<(StatusCode, Created), ApiError> {
    admin_only(&caller)?;
    let t: NewTarget = super::parse_json(body)?;
    let input = Input::DefineTarget {
        target: TargetId::new(t.name.clone()),
        spec: TargetSpec {
            privilege: t.privilege.map(Privilege::new),
        },
    };
    api.handle.send(input).await?;
    Ok((StatusCode::CREATED, Created { name: t.name }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    #[serde(default)]
    pub privileges: BTreeSet<String>,
}

#[derive(Serialize)]
pub struct NewUserToken {
    pub id: u64,
    pub name: String,
    /// Shown this once; only its hash is kept.
    pub token: String,
}

pub async fn create_user(
    api: &Api,
    caller: Caller,
    body: &[u8],
    now: Time,
) -> Result<(StatusCode, NewUserToken), ApiError> {
    admin_only(&caller)?;
    let u: NewUser = super::parse_json(body)?;
    if !super::jobs::valid_name(&u.name) {
        return Err(ApiError::bad_request(
            "bad_name",
            format!("bad user name {:?}", u.name),
        ));
    }
    let privileges = u.privileges.into_iter().map(Privilege::new).collect();
    let (id, token) = api
        .store
        .create_user(&u.name, &privileges, now)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("a user is already named {:?}", u.name),
            )
        })?;
    Ok((
        StatusCode::CREATED,
        NewUserToken {
            id,
            name: u.name,
            token,
        },
    ))
}
