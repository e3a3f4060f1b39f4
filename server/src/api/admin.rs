//! The admin API: resource types, targets, users, their privileges and
//! tokens, wells, factories, the lease hold and held resources.

use super::error::ApiError;
use super::{Api, Caller, privilege};
use crate::auth::Principal;
use crate::users::Service;
use aquifer_core::{
    FactoryId, Input, Pool, Privilege, ResourceId, TargetId, TargetSpec, Time, TypeId, TypeSpec,
    WellId,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use warp::http::StatusCode;

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
    caller.require(privilege::REGISTRY)?;
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
    caller.require(privilege::REGISTRY)?;
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
    caller.require(privilege::USERS)?;
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

#[derive(Serialize)]
pub struct TypeView {
    pub name: TypeId,
    pub max_per_job: u16,
    pub privilege: Option<Privilege>,
}

pub async fn list_types(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<TypeView>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let types = api
        .handle
        .read(|s| {
            (s.types.iter())
                .map(|(name, spec)| TypeView {
                    name: name.clone(),
                    max_per_job: spec.max_per_job,
                    privilege: spec.privilege.clone(),
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, types))
}

#[derive(Serialize)]
pub struct TargetView {
    pub name: TargetId,
    pub privilege: Option<Privilege>,
}

pub async fn list_targets(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<TargetView>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let targets = api
        .handle
        .read(|s| {
            (s.targets.iter())
                .map(|(name, spec)| TargetView {
                    name: name.clone(),
                    privilege: spec.privilege.clone(),
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, targets))
}

#[derive(Serialize)]
pub struct UserView {
    pub id: u64,
    pub name: String,
    pub privileges: BTreeSet<Privilege>,
}

pub async fn list_users(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<UserView>), ApiError> {
    caller.require(privilege::USERS)?;
    let users = api.store.list_users().await?;
    Ok((
        StatusCode::OK,
        users
            .into_iter()
            .map(|(id, name, privileges)| UserView {
                id,
                name,
                privileges,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivilegeChange {
    #[serde(default)]
    pub grant: BTreeSet<String>,
    #[serde(default)]
    pub revoke: BTreeSet<String>,
}

/// Grants and revokes privileges. Jobs already submitted keep running: a
/// privilege is checked at submission.
pub async fn set_privileges(
    api: &Api,
    caller: &Caller,
    user: u64,
    body: &[u8],
) -> Result<(StatusCode, UserView), ApiError> {
    caller.require(privilege::USERS)?;
    let change: PrivilegeChange = super::parse_json(body)?;
    if let Some(both) = change.grant.intersection(&change.revoke).next() {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("{both:?} is both granted and revoked"),
        ));
    }
    if let Some(bad) = change.grant.iter().find(|p| !valid_privilege(p)) {
        return Err(ApiError::bad_request(
            "bad_name",
            format!("bad privilege {bad:?}: use letters, digits, '-', '_', '.' and a final '*'"),
        ));
    }
    let Some((id, name, mut privileges)) = (api.store.list_users().await?)
        .into_iter()
        .find(|(id, _, _)| *id == user)
    else {
        return Err(ApiError::not_found(format!("user {user}")));
    };
    for p in change.revoke {
        privileges.remove(&Privilege::new(p));
    }
    privileges.extend(change.grant.into_iter().map(Privilege::new));
    if !api.store.set_privileges(user, &privileges).await? {
        return Err(ApiError::not_found(format!("user {user}")));
    }
    Ok((
        StatusCode::OK,
        UserView {
            id,
            name,
            privileges,
        },
    ))
}

fn valid_privilege(p: &str) -> bool {
    let body = p.strip_suffix('*').unwrap_or(p);
    !p.is_empty()
        && p.len() <= 63
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Serialize)]
pub struct IssuedToken {
    pub kind: &'static str,
    pub id: u64,
    /// Shown this once; only its hash is kept.
    pub token: String,
}

/// A new token for an existing user, well or factory (the old ones stay
/// valid until revoked).
pub async fn issue_token(
    api: &Api,
    caller: &Caller,
    principal: Principal,
) -> Result<(StatusCode, IssuedToken), ApiError> {
    let (kind, id, exists) = match principal {
        Principal::User(id) => {
            caller.require(privilege::USERS)?;
            ("user", id, api.store.user_privileges(id).await?.is_some())
        }
        Principal::Well(id) => {
            caller.require(privilege::REGISTRY)?;
            let known = match u32::try_from(id) {
                Ok(w) => {
                    api.handle
                        .read(move |s| s.wells.contains_key(&WellId(w)))
                        .await?
                }
                Err(_) => false,
            };
            ("well", id, known)
        }
        Principal::Factory(id) => {
            caller.require(privilege::REGISTRY)?;
            let known = match u32::try_from(id) {
                Ok(f) => {
                    (api.handle)
                        .read(move |s| s.factories.contains_key(&FactoryId(f)))
                        .await?
                }
                Err(_) => false,
            };
            ("factory", id, known)
        }
        Principal::Admin | Principal::Worker(_) | Principal::Job(_) | Principal::Bootstrap(_) => {
            return Err(ApiError::forbidden(
                "tokens of that kind are not issued here",
            ));
        }
    };
    if !exists {
        return Err(ApiError::not_found(format!("{kind} {id}")));
    }
    let token = api.store.issue_token(principal, super::now()).await?;
    Ok((StatusCode::CREATED, IssuedToken { kind, id, token }))
}

#[derive(Serialize)]
pub struct Revoked {
    pub revoked: u64,
}

pub async fn revoke_user_tokens(
    api: &Api,
    caller: &Caller,
    user: u64,
) -> Result<(StatusCode, Revoked), ApiError> {
    caller.require(privilege::USERS)?;
    if api.store.user_privileges(user).await?.is_none() {
        return Err(ApiError::not_found(format!("user {user}")));
    }
    let revoked = api.store.revoke_tokens(Principal::User(user)).await?;
    Ok((StatusCode::OK, Revoked { revoked }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWell {
    pub name: String,
    /// Capacity per resource type: one pool each (rule 7).
    pub pools: BTreeMap<String, u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFactory {
    pub name: String,
    /// Capacity per target.
    pub targets: BTreeMap<String, u16>,
}

#[derive(Serialize)]
pub struct Registered {
    pub id: u64,
    pub name: String,
    /// The service's token, shown this once.
    pub token: String,
}

fn service_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if super::jobs::valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "bad_name",
            format!("bad {kind} name {name:?}: use 1 to 63 letters, digits, '-', '_' or '.'"),
        ))
    }
}

fn registered_twice(kind: &str, name: &str, id: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "already_exists",
        format!(
            "a {kind} is already named {name:?}; for a new token, POST /0/admin/{kind}s/{id}/tokens"
        ),
    )
}

/// Registers a well and returns its token. The name's id is reserved in
/// the store first, so a registration the core refuses (or a crash before
/// it) leaves a name that the next attempt reuses.
pub async fn create_well(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Registered), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let w: NewWell = super::parse_json(body)?;
    service_name("well", &w.name)?;
    let id = api
        .store
        .service_id(Service::Well, &w.name, super::now())
        .await?;
    let well = WellId(u32::try_from(id).map_err(|_| {
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "limit_exceeded",
            "well ids are exhausted",
        )
    })?);
    let pools = (w.pools.into_iter())
        .map(|(rtype, capacity)| Pool {
            types: BTreeSet::from([TypeId::new(rtype)]),
            capacity,
        })
        .collect();
    match api.handle.send(Input::RegisterWell { well, pools }).await {
        Err(crate::driver::DriverError::Rejected(aquifer_core::Rejection::AlreadyExists {
            ..
        })) => {
            return Err(registered_twice("well", &w.name, id));
        }
        other => other?,
    };
    let token = api
        .store
        .issue_token(Principal::Well(id), super::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Registered {
            id,
            name: w.name,
            token,
        },
    ))
}

pub async fn create_factory(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Registered), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let f: NewFactory = super::parse_json(body)?;
    service_name("factory", &f.name)?;
    let id = api
        .store
        .service_id(Service::Factory, &f.name, super::now())
        .await?;
    let factory = FactoryId(u32::try_from(id).map_err(|_| {
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "limit_exceeded",
            "factory ids are exhausted",
        )
    })?);
    let capacity = (f.targets.into_iter())
        .map(|(target, n)| (TargetId::new(target), n))
        .collect();
    match api
        .handle
        .send(Input::RegisterFactory { factory, capacity })
        .await
    {
        Err(crate::driver::DriverError::Rejected(aquifer_core::Rejection::AlreadyExists {
            ..
        })) => {
            return Err(registered_twice("factory", &f.name, id));
        }
        other => other?,
    };
    let token = api
        .store
        .issue_token(Principal::Factory(id), super::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Registered {
            id,
            name: f.name,
            token,
        },
    ))
}

#[derive(Serialize)]
pub struct WellView {
    pub id: u32,
    pub name: String,
    /// Per type: (capacity, room by the books).
    pub pools: BTreeMap<TypeId, (u16, u16)>,
}

pub async fn list_wells(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<WellView>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let names = api.store.service_names(Service::Well).await?;
    let wells = api
        .handle
        .read(move |s| {
            (s.wells.iter())
                .map(|(&id, w)| WellView {
                    id: id.0,
                    name: names
                        .get(&u64::from(id.0))
                        .cloned()
                        .unwrap_or_else(|| id.to_string()),
                    pools: (w.pools.iter())
                        .flat_map(|p| p.types.iter().map(move |t| (t, p.capacity)))
                        .map(|(t, capacity)| {
                            (
                                t.clone(),
                                (capacity, aquifer_core::queue::pool_room(s, id, t)),
                            )
                        })
                        .collect(),
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, wells))
}

#[derive(Serialize)]
pub struct FactoryView {
    pub id: u32,
    pub name: String,
    /// Per target: (capacity, room by the books).
    pub targets: BTreeMap<TargetId, (u16, u16)>,
}

pub async fn list_factories(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<FactoryView>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let names = api.store.service_names(Service::Factory).await?;
    let factories = api
        .handle
        .read(move |s| {
            (s.factories.iter())
                .map(|(&id, f)| FactoryView {
                    id: id.0,
                    name: names
                        .get(&u64::from(id.0))
                        .cloned()
                        .unwrap_or_else(|| id.to_string()),
                    targets: (f.capacity.iter())
                        .map(|(t, &c)| {
                            (t.clone(), (c, aquifer_core::queue::factory_room(s, id, t)))
                        })
                        .collect(),
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, factories))
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub held: bool,
}

/// Holds (or lifts the hold on) every new lease, server-wide: running
/// jobs go on, waiting ones wait.
pub async fn hold_leases(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Hold), ApiError> {
    caller.require(privilege::HOLDS)?;
    let hold: Hold = super::parse_json(body)?;
    api.handle
        .send(Input::HoldLeases { held: hold.held })
        .await?;
    Ok((StatusCode::OK, hold))
}

#[derive(Serialize)]
pub struct ResourceView {
    pub id: u32,
    pub job: u32,
    pub rtype: TypeId,
    pub well: u32,
    pub state: &'static str,
}

/// Every resource in the books, held ones included (those need an
/// operator: their well could not destroy them).
pub async fn list_resources(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<ResourceView>), ApiError> {
    caller.require(privilege::HOLDS)?;
    let resources = api
        .handle
        .read(|s| {
            (s.resources.iter())
                .map(|(&id, r)| ResourceView {
                    id: id.0,
                    job: r.job.0,
                    rtype: r.rtype.clone(),
                    well: r.well.0,
                    state: r.state.name(),
                })
                .collect()
        })
        .await?;
    Ok((StatusCode::OK, resources))
}

#[derive(Serialize)]
pub struct Released {
    pub resource: u32,
}

/// An operator has dealt with a held resource: its well tries again.
pub async fn release_held(
    api: &Api,
    caller: &Caller,
    resource: u64,
) -> Result<(StatusCode, Released), ApiError> {
    caller.require(privilege::HOLDS)?;
    let id = u32::try_from(resource)
        .map_err(|_| ApiError::not_found(format!("resource #{resource}")))?;
    api.handle
        .send(Input::ReleaseHeld {
            resource: ResourceId(id),
        })
        .await?;
    Ok((StatusCode::OK, Released { resource: id }))
}
