//! The fake's `/v1/system` calls: silos and their policies, local users
//! of a silo's identity provider, and IP pool links. A silo that holds a
//! project cannot be deleted; deleting one deletes its users.

use super::auth::secret;
use super::http::{Answer, Req, Resp, actor, bad, exists, forbidden, not_found, page};
use super::state::{Access, Actor, SiloRec, State, UserRec};
use super::views;
use chrono::{DateTime, Utc};
use oxide::types::{
    IpPoolLinkSilo, IpPoolSiloLink, NameOrId, SiloCreate, SiloIdentityMode, SiloRolePolicy,
    UserCreate, UserPassword,
};
use uuid::Uuid;
use warp::http::Method;

pub fn route(st: &mut State, req: &Req, m: &Method, rest: &[&str], now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    match rest {
        ["silos"] if m == Method::GET => {
            fleet(&a)?;
            let mut silos: Vec<_> = st.silos.values().map(views::silo).collect();
            silos.sort_by(|x, y| x.name.cmp(&y.name));
            page(req, silos, st.page_size)
        }
        ["silos"] if m == Method::POST => create_silo(st, req, &a, now),
        ["silos", s] if m == Method::GET => {
            fleet(&a)?;
            let silo = st.silo_by(s).ok_or_else(|| not_found("silo", s))?;
            Ok(Resp::json(200, &views::silo(silo)))
        }
        ["silos", s] if m == Method::DELETE => delete_silo(st, &a, s),
        ["silos", s, "policy"] if m == Method::GET => {
            fleet(&a)?;
            let silo = st.silo_by(s).ok_or_else(|| not_found("silo", s))?;
            let policy = SiloRolePolicy {
                role_assignments: silo.policy.clone(),
            };
            Ok(Resp::json(200, &policy))
        }
        ["silos", s, "policy"] if m == Method::PUT => {
            fleet(&a)?;
            let policy: SiloRolePolicy = req.json()?;
            let id = st.silo_by(s).ok_or_else(|| not_found("silo", s))?.id;
            if let Some(silo) = st.silos.get_mut(&id) {
                silo.policy = policy.role_assignments.clone();
            }
            Ok(Resp::json(200, &policy))
        }
        ["identity-providers", "local", "users"] if m == Method::POST => {
            create_user(st, req, &a, now)
        }
        ["identity-providers", "local", "users", id] if m == Method::DELETE => {
            let (_, user) = local_user(st, req, &a, id)?;
            st.remove_user(user);
            Ok(Resp::empty(204))
        }
        ["identity-providers", "local", "users", id, "set-password"] if m == Method::POST => {
            let (_, user) = local_user(st, req, &a, id)?;
            let pw: UserPassword = req.json()?;
            if let Some(u) = st.users.get_mut(&user) {
                u.password = password(pw);
            }
            Ok(Resp::empty(204))
        }
        ["users"] if m == Method::GET => {
            let silo = silo_param(st, req, &a)?;
            let mut users: Vec<_> = (st.users.values())
                .filter(|u| u.silo == silo)
                .map(views::user)
                .collect();
            users.sort_by_key(|u| u.id);
            page(req, users, st.page_size)
        }
        ["ip-pools", pool, "silos"] if m == Method::POST => link_pool(st, req, &a, pool),
        _ => Err(Resp::error(
            404,
            "NotFound",
            &format!(
                "the fake Oxide API has no {m} /v1/system/{}",
                rest.join("/")
            ),
        )),
    }
}

fn fleet(a: &Actor) -> Result<(), Resp> {
    if a.fleet_admin {
        Ok(())
    } else {
        Err(forbidden())
    }
}

fn password(p: UserPassword) -> Option<String> {
    match p {
        UserPassword::Password(p) => Some(p.to_string()),
        UserPassword::LoginDisallowed => None,
    }
}

fn create_silo(st: &mut State, req: &Req, a: &Actor, now: DateTime<Utc>) -> Answer {
    fleet(a)?;
    let c: SiloCreate = req.json()?;
    if !matches!(c.identity_mode, SiloIdentityMode::LocalOnly) {
        return Err(bad("the fake makes local-only silos only"));
    }
    if st.silo_by(&c.name).is_some() {
        return Err(exists("silo", &c.name));
    }
    let silo = SiloRec {
        id: Uuid::new_v4(),
        name: c.name.to_string(),
        description: c.description,
        quotas: c.quotas,
        policy: Vec::new(),
        token_max_ttl_s: None,
        created: now,
    };
    let view = views::silo(&silo);
    st.silos.insert(silo.id, silo);
    Ok(Resp::json(201, &view))
}

fn delete_silo(st: &mut State, a: &Actor, sel: &str) -> Answer {
    fleet(a)?;
    let id = st.silo_by(sel).ok_or_else(|| not_found("silo", sel))?.id;
    if st.projects.values().any(|p| p.silo == id) {
        return Err(bad("silo to be deleted contains a project"));
    }
    let users: Vec<Uuid> = (st.users.values())
        .filter(|u| u.silo == id)
        .map(|u| u.id)
        .collect();
    for u in users {
        st.remove_user(u);
    }
    st.pool_links.retain(|(_, silo), _| *silo != id);
    st.silos.remove(&id);
    Ok(Resp::empty(204))
}

/// The `?silo=` of a local-user call, which a fleet admin or the silo's
/// admin may make.
fn silo_param(st: &State, req: &Req, a: &Actor) -> Result<Uuid, Resp> {
    let sel = req
        .q("silo")
        .ok_or_else(|| bad("missing query parameter silo"))?;
    let silo = st.silo_by(sel).ok_or_else(|| not_found("silo", sel))?.id;
    if a.fleet_admin || st.silo_access(a, silo) == Access::Admin {
        Ok(silo)
    } else {
        Err(forbidden())
    }
}

fn local_user(st: &State, req: &Req, a: &Actor, id: &str) -> Result<(Uuid, Uuid), Resp> {
    let silo = silo_param(st, req, a)?;
    let user = (id.parse::<Uuid>().ok())
        .and_then(|id| st.users.get(&id))
        .filter(|u| u.silo == silo)
        .ok_or_else(|| not_found("silo user", id))?;
    Ok((silo, user.id))
}

fn create_user(st: &mut State, req: &Req, a: &Actor, now: DateTime<Utc>) -> Answer {
    let silo = silo_param(st, req, a)?;
    let c: UserCreate = req.json()?;
    if st.user_named(silo, &c.external_id).is_some() {
        return Err(exists("user", &c.external_id));
    }
    let user = UserRec {
        id: Uuid::new_v4(),
        silo,
        name: c.external_id.to_string(),
        password: password(c.password),
        fleet_admin: false,
        created: now,
    };
    let view = views::user(&user);
    st.users.insert(user.id, user);
    Ok(Resp::json(201, &view))
}

fn link_pool(st: &mut State, req: &Req, a: &Actor, pool: &str) -> Answer {
    fleet(a)?;
    let pool_id = *st
        .ip_pools
        .get(pool)
        .ok_or_else(|| not_found("ip pool", pool))?;
    let l: IpPoolLinkSilo = req.json()?;
    let sel = match &l.silo {
        NameOrId::Id(id) => id.to_string(),
        NameOrId::Name(n) => n.to_string(),
    };
    let silo = st.silo_by(&sel).ok_or_else(|| not_found("silo", &sel))?.id;
    if st.pool_links.contains_key(&(pool_id, silo)) {
        return Err(exists("ip pool silo link", &format!("{pool}/{sel}")));
    }
    st.pool_links.insert((pool_id, silo), l.is_default);
    let view = IpPoolSiloLink {
        ip_pool_id: pool_id,
        is_default: l.is_default,
        silo_id: silo,
    };
    Ok(Resp::json(201, &view))
}

/// A user for the fake's own setup (not through the API).
pub fn add_user(st: &mut State, silo: Uuid, name: &str, fleet_admin: bool) -> Uuid {
    let user = UserRec {
        id: Uuid::new_v4(),
        silo,
        name: name.into(),
        password: Some(secret("pw-")),
        fleet_admin,
        created: Utc::now(),
    };
    let id = user.id;
    st.users.insert(id, user);
    id
}
