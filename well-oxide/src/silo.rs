//! Silo mode: a local-only silo per resource, made with the well's fleet
//! admin token, and inside it a well-owned admin user, the job user, a
//! project and a token.
//!
//! A fleet admin cannot reach inside another silo's projects (those calls
//! act in the caller's own silo), so the well works inside through its
//! admin user. That user's password is never kept: each create or destroy
//! sets a fresh one with the fleet credential and logs in with it, so the
//! well can always clean up, even after a crash, from nothing but the
//! silo's name.

use super::Ctx;
use super::api::OxideError;
use super::empty::{self, Whose};
use super::names::{self, Names, is_marked, resource_of};
use super::project;
use super::token::{self, Minted};
use super::users::{self, Scope};
use futures_util::TryStreamExt as _;
use oxide::prelude::*;
use oxide::types::{
    ByteCount, IdentityType, IpPoolLinkSilo, NameOrId, Silo, SiloCreate, SiloIdentityMode,
    SiloQuotasCreate, SiloRole, SiloRoleRoleAssignment, User,
};
use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::Duration;

/// Bytes in a GiB.
const GIB: u64 = 1 << 30;

/// Makes the silo and everything in it; the silo's name and the token.
pub async fn create(
    ctx: &Ctx,
    names: &Names,
    ttl: NonZeroU32,
) -> Result<(String, Minted), OxideError> {
    let r = ctx.retry;
    let silo = make_silo(ctx, names).await?;
    for (i, pool) in ctx.config.ip_pools.iter().enumerate() {
        link_pool(ctx, pool, &silo, i == 0).await?;
    }
    let (_, session) = admin_session(ctx, &silo, names).await?;
    let inside = async {
        project::create(&session, r, names, ctx.config.default_vpc).await?;
        let pw = names::password();
        let user = users::create_or_reset(
            &ctx.admin,
            r,
            silo.id,
            Scope::System(silo.id),
            &names.base,
            &pw,
        )
        .await?;
        let role = ctx.config.project_role.api();
        project::grant(&session, r, &names.base, user.id, role).await?;
        token::mint(&ctx.connector, r, &silo.name, &names.base, &pw, ttl).await
    };
    let minted = inside.await;
    // The admin's session served only to make the project; a failure to
    // end it leaves a session that the destroy revokes.
    if let Err(e) = session.logout().send().await {
        let e = OxideError::from_api("ending the well's admin session", e).await;
        tracing::warn!(error = %e, "oxide: the admin session was not ended");
    }
    Ok((silo.name.to_string(), minted?))
}

/// Empties the silo (its projects, then its users, the well's admin last)
/// and deletes it. A silo that is not there, or not the well's, counts as
/// gone.
pub async fn destroy(ctx: &Ctx, names: &Names) -> Result<(), OxideError> {
    let r = ctx.retry;
    let step = format!("looking up silo {}", names.base);
    let name = names.base.as_str();
    let silo = match r
        .call(&step, || ctx.admin.silo_view().silo(name).send())
        .await
    {
        Ok(s) => s.into_inner(),
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    if !is_marked(&silo.description) {
        tracing::warn!(
            silo = name,
            "oxide: a silo of this name is not the well's; left alone"
        );
        return Ok(());
    }
    let (admin, session) = admin_session(ctx, &silo, names).await?;
    let emptied = empty(ctx, &session, &silo, &admin).await;
    // Revoking the admin's sessions and tokens ends the one in hand too.
    let revoked = users::revoke(&session, r, &admin).await;
    emptied?;
    revoked?;
    let step = format!("deleting silo {name}");
    let id = silo.id;
    r.call_unless_gone(&step, || ctx.admin.silo_delete().silo(id).send())
        .await
}

/// Every user but the well's admin (first, so that no token of the job's
/// still works while its things are deleted), then every project in the
/// silo (the silo is the well's, so all of them).
async fn empty(
    ctx: &Ctx,
    session: &oxide::Client,
    silo: &Silo,
    admin: &User,
) -> Result<(), OxideError> {
    let r = ctx.retry;
    for u in users::list(session, r, Scope::Own).await? {
        if u.id != admin.id {
            users::remove(session, r, silo.id, &u).await?;
        }
    }
    let stop = Duration::from_millis(ctx.config.instance_stop_timeout_ms);
    for p in project::list(session, r).await? {
        empty::destroy(session, r, &p.name, Whose::Any, stop).await?;
    }
    Ok(())
}

/// The resource ids of the well's silos.
pub async fn owned(ctx: &Ctx) -> Result<BTreeSet<u32>, OxideError> {
    let r = ctx.retry;
    let silos: Vec<Silo> = r
        .call("listing silos", || {
            ctx.admin.silo_list().stream().try_collect::<Vec<_>>()
        })
        .await?;
    Ok(silos
        .iter()
        .filter(|s| is_marked(&s.description))
        .filter_map(|s| resource_of(&ctx.config.prefix, &s.name))
        .collect())
}

/// Makes the silo, or adopts it if an earlier attempt of the same
/// resource made it.
async fn make_silo(ctx: &Ctx, names: &Names) -> Result<Silo, OxideError> {
    let r = ctx.retry;
    let step = format!("creating silo {}", names.base);
    let q = ctx.config.quotas.unwrap_or(super::Quotas {
        cpus: 0,
        memory_gib: 0,
        storage_gib: 0,
    });
    let body = SiloCreate {
        admin_group_name: None,
        description: names.description(),
        identity_mode: SiloIdentityMode::LocalOnly,
        mapped_fleet_roles: Default::default(),
        name: names.base.parse().map_err(|e| {
            OxideError::new(
                &step,
                super::api::Failure::Protocol(format!("not a valid name: {e}")),
            )
        })?,
        quotas: SiloQuotasCreate {
            cpus: i64::from(q.cpus),
            memory: ByteCount(q.memory_gib.saturating_mul(GIB)),
            storage: ByteCount(q.storage_gib.saturating_mul(GIB)),
        },
        tls_certificates: vec![],
    };
    let made = r
        .call(&step, || {
            let body = body.clone();
            async move { ctx.admin.silo_create().body(body).send().await }
        })
        .await;
    match made {
        Ok(s) => Ok(s.into_inner()),
        Err(e) if e.is_already_exists() => {
            let name = names.base.as_str();
            let step = format!("looking up silo {name}");
            let s = r
                .call(&step, || ctx.admin.silo_view().silo(name).send())
                .await?;
            let s = s.into_inner();
            if is_marked(&s.description) {
                Ok(s)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

async fn link_pool(ctx: &Ctx, pool: &str, silo: &Silo, is_default: bool) -> Result<(), OxideError> {
    let step = format!("linking IP pool {pool} to silo {}", *silo.name);
    let body = IpPoolLinkSilo {
        is_default,
        silo: NameOrId::Id(silo.id),
    };
    let linked = ctx
        .retry
        .call(&step, || {
            let body = body.clone();
            async move {
                ctx.admin
                    .system_ip_pool_silo_link()
                    .pool(pool)
                    .body(body)
                    .send()
                    .await
            }
        })
        .await;
    match linked {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The well's admin user of `silo`, made or given a fresh password, made
/// a silo admin if it is not one, and logged in: the user and a client
/// with its session.
async fn admin_session(
    ctx: &Ctx,
    silo: &Silo,
    names: &Names,
) -> Result<(User, oxide::Client), OxideError> {
    let r = ctx.retry;
    let pw = names::password();
    let scope = Scope::System(silo.id);
    let admin = users::create_or_reset(&ctx.admin, r, silo.id, scope, &names.admin, &pw).await?;
    make_silo_admin(ctx, silo, &admin).await?;
    let session = token::login(&ctx.connector, r, &silo.name, &names.admin, &pw).await?;
    Ok((admin, ctx.connector.with_session(&session)?))
}

async fn make_silo_admin(ctx: &Ctx, silo: &Silo, user: &User) -> Result<(), OxideError> {
    let r = ctx.retry;
    let id = silo.id;
    let step = format!(
        "making {} an admin of silo {}",
        user.display_name, *silo.name
    );
    let mut policy = r
        .call(&step, || ctx.admin.silo_policy_view().silo(id).send())
        .await?
        .into_inner();
    let is_admin =
        |a: &SiloRoleRoleAssignment| a.identity_id == user.id && a.role_name == SiloRole::Admin;
    if policy.role_assignments.iter().any(is_admin) {
        return Ok(());
    }
    policy.role_assignments.push(SiloRoleRoleAssignment {
        identity_id: user.id,
        identity_type: IdentityType::SiloUser,
        role_name: SiloRole::Admin,
    });
    r.call(&step, || {
        let policy = policy.clone();
        async move {
            ctx.admin
                .silo_policy_update()
                .silo(id)
                .body(policy)
                .send()
                .await
        }
    })
    .await?;
    Ok(())
}
