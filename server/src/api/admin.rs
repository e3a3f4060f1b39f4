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
use aquifer_protocol::admin::{
    Created, FactoryView, Hold, HoldState, IssuedToken, NewFactory, NewTarget, NewType, NewUser,
    NewUserToken, PrivilegeChange, Registered, Released, ResourceView, Revoked, Slots, TargetView,
    TypeView, UserView, WellView,
};
use aquifer_protocol::user::{PrincipalKind, UserId};
use std::collections::BTreeSet;
use warp::http::StatusCode;

pub async fn create_type(
    api: &Api,
    caller: Caller,
    body: &[u8],
) -> Result<(StatusCode, Created<TypeId>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let t: NewType = super::parse_json(body)?;
    let input = Input::DefineType {
        rtype: t.name.clone(),
        spec: TypeSpec {
            max_per_job: t.max_per_job,
            privilege: t.privilege,
        },
    };
    api.handle.send(input).await?;
    Ok((StatusCode::CREATED, Created { name: t.name }))
}

pub async fn create_target(
    api: &Api,
    caller: Caller,
    body: &[u8],
) -> Result<(StatusCode, Created<TargetId>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let t: NewTarget = super::parse_json(body)?;
    let input = Input::DefineTarget {
        target: t.name.clone(),
        spec: TargetSpec {
            privilege: t.privilege,
        },
    };
    api.handle.send(input).await?;
    Ok((StatusCode::CREATED, Created { name: t.name }))
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
    grantable(&caller, &u.privileges)?;
    let (id, token) = api
        .store
        .create_user(&u.name, &u.privileges, now)
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
            id: UserId(id),
            name: u.name,
            token,
        },
    ))
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
                id: UserId(id),
                name,
                privileges,
            })
            .collect(),
    ))
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
    grantable(caller, &change.grant)?;
    grantable(caller, &change.revoke)?;
    let Some((id, name, mut privileges)) = (api.store.list_users().await?)
        .into_iter()
        .find(|(id, _, _)| *id == user)
    else {
        return Err(ApiError::not_found(format!("user {user}")));
    };
    may_act_for(caller, id, &privileges)?;
    for p in &change.revoke {
        privileges.remove(p);
    }
    privileges.extend(change.grant);
    if !api.store.set_privileges(user, &privileges).await? {
        return Err(ApiError::not_found(format!("user {user}")));
    }
    Ok((
        StatusCode::OK,
        UserView {
            id: UserId(id),
            name,
            privileges,
        },
    ))
}

/// The rule that keeps `admin.users` from being root in disguise: one
/// grants or revokes only privileges one holds (an admin, or a holder of
/// `admin.*`, holds them all), and each must be well formed.
fn grantable(caller: &Caller, privileges: &BTreeSet<Privilege>) -> Result<(), ApiError> {
    if let Some(bad) = privileges.iter().find(|p| !valid_privilege(p.as_str())) {
        return Err(ApiError::bad_request(
            "bad_name",
            format!("bad privilege {bad:?}: use letters, digits, '-', '_', '.' and a final '*'"),
        ));
    }
    match privileges.iter().find(|p| !caller.may(p.as_str())) {
        Some(p) => Err(ApiError::forbidden(format!(
            "you do not hold {p:?}: one grants or revokes only privileges one holds"
        ))),
        None => Ok(()),
    }
}

/// The same rule for acting on a user (its privileges, its tokens): only
/// a caller who holds every privilege the user holds, so that nobody can
/// take over a more privileged account by minting it a token.
fn may_act_for(caller: &Caller, user: u64, held: &BTreeSet<Privilege>) -> Result<(), ApiError> {
    match held.iter().find(|p| !caller.may(p.as_str())) {
        Some(p) => Err(ApiError::forbidden(format!(
            "user {user} holds {p:?}, which you do not: only a holder of every \
             privilege a user has may manage it"
        ))),
        None => Ok(()),
    }
}

fn valid_privilege(p: &str) -> bool {
    let body = p.strip_suffix('*').unwrap_or(p);
    !p.is_empty()
        && p.len() <= 63
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The user, well or factory a token request is about, if it exists and
/// the caller may manage its tokens: (its kind, its id).
async fn token_holder(
    api: &Api,
    caller: &Caller,
    principal: Principal,
) -> Result<(PrincipalKind, u64), ApiError> {
    let (kind, id, exists) = match principal {
        Principal::User(id) => {
            caller.require(privilege::USERS)?;
            let privileges = api.store.user_privileges(id).await?;
            if let Some(held) = &privileges {
                may_act_for(caller, id, held)?;
            }
            (PrincipalKind::User, id, privileges.is_some())
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
            (PrincipalKind::Well, id, known)
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
            (PrincipalKind::Factory, id, known)
        }
        Principal::Admin | Principal::Worker(_) | Principal::Job(_) | Principal::Bootstrap(_) => {
            return Err(ApiError::forbidden(
                "tokens of that kind are not issued or revoked here",
            ));
        }
    };
    if !exists {
        return Err(ApiError::not_found(format!("{kind} {id}")));
    }
    Ok((kind, id))
}

/// A new token for an existing user, well or factory (the old ones stay
/// valid until revoked).
pub async fn issue_token(
    api: &Api,
    caller: &Caller,
    principal: Principal,
) -> Result<(StatusCode, IssuedToken), ApiError> {
    let (kind, id) = token_holder(api, caller, principal).await?;
    let token = api.store.issue_token(principal, super::now()).await?;
    Ok((StatusCode::CREATED, IssuedToken { kind, id, token }))
}

/// Revokes every token of a user, well or factory: its next call gets
/// 401, and a running well or factory stops until it is given a new one.
pub async fn revoke_tokens(
    api: &Api,
    caller: &Caller,
    principal: Principal,
) -> Result<(StatusCode, Revoked), ApiError> {
    token_holder(api, caller, principal).await?;
    let revoked = api.store.revoke_tokens(principal).await?;
    Ok((StatusCode::OK, Revoked { revoked }))
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
) -> Result<(StatusCode, Registered<WellId>), ApiError> {
    caller.require(privilege::REGISTRY)?;
    let w: aquifer_protocol::admin::NewWell = super::parse_json(body)?;
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
            types: BTreeSet::from([rtype]),
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
            id: well,
            name: w.name,
            token,
        },
    ))
}

pub async fn create_factory(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, Registered<FactoryId>), ApiError> {
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
    let capacity = f.targets;
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
            id: factory,
            name: f.name,
            token,
        },
    ))
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
                    id,
                    name: names
                        .get(&u64::from(id.0))
                        .cloned()
                        .unwrap_or_else(|| id.to_string()),
                    pools: (w.pools.iter())
                        .flat_map(|p| p.types.iter().map(move |t| (t, p.capacity)))
                        .map(|(t, capacity)| {
                            let free = aquifer_core::queue::pool_room(s, id, t);
                            (t.clone(), Slots { capacity, free })
                        })
                        .collect(),
                    last_contact_ms: None,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    let wells = (wells.into_iter())
        .map(|w| WellView {
            last_contact_ms: api.last_contact(Principal::Well(u64::from(w.id.0))),
            ..w
        })
        .collect();
    Ok((StatusCode::OK, wells))
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
                    id,
                    name: names
                        .get(&u64::from(id.0))
                        .cloned()
                        .unwrap_or_else(|| id.to_string()),
                    targets: (f.capacity.iter())
                        .map(|(t, &capacity)| {
                            let free = aquifer_core::queue::factory_room(s, id, t);
                            (t.clone(), Slots { capacity, free })
                        })
                        .collect(),
                    last_contact_ms: None,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    let factories = (factories.into_iter())
        .map(|f| FactoryView {
            last_contact_ms: api.last_contact(Principal::Factory(u64::from(f.id.0))),
            ..f
        })
        .collect();
    Ok((StatusCode::OK, factories))
}

/// Holds (or lifts the hold on) every new lease, server-wide: running
/// jobs go on, waiting ones wait.
pub async fn hold_leases(
    api: &Api,
    caller: &Caller,
    body: &[u8],
) -> Result<(StatusCode, HoldState), ApiError> {
    caller.require(privilege::HOLDS)?;
    let Hold { held } = super::parse_json(body)?;
    api.handle.send(Input::HoldLeases { held }).await?;
    Ok((StatusCode::OK, HoldState { held }))
}

/// Every resource in the books, held ones included (those need an
/// operator: their well could not destroy them).
pub async fn list_resources(
    api: &Api,
    caller: &Caller,
) -> Result<(StatusCode, Vec<ResourceView>), ApiError> {
    caller.require(privilege::HOLDS)?;
    let mut reasons = api.store.resource_reasons().await?;
    let resources = api
        .handle
        .read(|s| {
            (s.resources.iter())
                .map(|(&id, r)| ResourceView {
                    id,
                    job: r.job,
                    rtype: r.rtype.clone(),
                    well: r.well,
                    state: (&r.state).into(),
                    reason: None,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    let resources = (resources.into_iter())
        .map(|r| ResourceView {
            reason: reasons.remove(&r.id.0),
            ..r
        })
        .collect();
    Ok((StatusCode::OK, resources))
}

/// An operator has dealt with a held resource: its well tries again.
pub async fn release_held(
    api: &Api,
    caller: &Caller,
    resource: u64,
) -> Result<(StatusCode, Released), ApiError> {
    caller.require(privilege::HOLDS)?;
    let resource = ResourceId(
        u32::try_from(resource)
            .map_err(|_| ApiError::not_found(format!("resource #{resource}")))?,
    );
    api.handle.send(Input::ReleaseHeld { resource }).await?;
    Ok((StatusCode::OK, Released { resource }))
}

#[cfg(test)]
mod tests {
    use super::super::route::{Route, resolve};
    use super::*;
    use aquifer_protocol::path;
    use warp::http::Method;

    #[test]
    fn the_protocols_admin_paths_reach_these_endpoints() {
        use Route::*;
        let (get, post, delete) = (&Method::GET, &Method::POST, &Method::DELETE);
        let (user, well, factory) = (UserId(3), WellId(4), FactoryId(5));
        let at = |m: &Method, p: &str| resolve(m, p).expect(p);
        for (p, on_get, on_post) in [
            (path::ADMIN_TYPES, ListTypes, DefineType),
            (path::ADMIN_TARGETS, ListTargets, DefineTarget),
            (path::ADMIN_USERS, ListUsers, CreateUser),
            (path::ADMIN_WELLS, ListWells, CreateWell),
            (path::ADMIN_FACTORIES, ListFactories, CreateFactory),
        ] {
            assert_eq!((at(get, p), at(post, p)), (on_get, on_post), "{p}");
        }
        assert_eq!(at(get, path::ADMIN_RESOURCES), ListResources);
        assert_eq!(at(post, path::ADMIN_HOLD), HoldLeases);
        let tokens = path::admin_user_tokens(user);
        assert_eq!(at(post, &tokens), IssueUserToken(3));
        assert_eq!(at(delete, &tokens), RevokeUserTokens(3));
        let privileges = path::admin_user_privileges(user);
        assert_eq!(at(post, &privileges), SetPrivileges(3));
        let tokens = path::admin_well_tokens(well);
        assert_eq!(at(post, &tokens), IssueWellToken(4));
        assert_eq!(at(delete, &tokens), RevokeWellTokens(4));
        let tokens = path::admin_factory_tokens(factory);
        assert_eq!(at(post, &tokens), IssueFactoryToken(5));
        assert_eq!(at(delete, &tokens), RevokeFactoryTokens(5));
        let release = path::admin_resource_release(ResourceId(6));
        assert_eq!(at(post, &release), ReleaseHeld(6));
    }
}
