//! A job's project: made empty (no default VPC unless configured), with
//! the job user's role on it (`empty.rs` unmakes it).
//!
//! Every call here acts in one silo, with a client that holds a silo
//! admin's credential (the well's own token in project mode, a session of
//! the well's admin in silo mode).

use super::api::{Failure, OxideError, Retry};
use super::names::{Names, is_marked};
use futures_util::TryStreamExt as _;
use oxide::prelude::*;
use oxide::types::{
    IdentityType, Project, ProjectCreate, ProjectCreateDefaults, ProjectRole,
    ProjectRoleRoleAssignment,
};
use uuid::Uuid;

/// Makes the project, or adopts it if an earlier attempt of the same
/// resource made it (its answer lost).
pub async fn create(
    c: &oxide::Client,
    retry: Retry,
    names: &Names,
    default_vpc: bool,
) -> Result<Project, OxideError> {
    let step = format!("creating project {}", names.base);
    let body = ProjectCreate {
        // No `defaults` means Oxide's default VPC and subnet; an empty
        // selection means none.
        defaults: (!default_vpc).then_some(ProjectCreateDefaults { vpc: None }),
        description: names.description(),
        name: names.base.parse().map_err(|e| bad_name(&step, e))?,
    };
    let made = retry
        .call(&step, || {
            let body = body.clone();
            async move { c.project_create().body(body).send().await }
        })
        .await;
    match made {
        Ok(p) => Ok(p.into_inner()),
        Err(e) if e.is_already_exists() => match view(c, retry, &names.base).await? {
            Some(p) if is_marked(&p.description) => Ok(p),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The project named `name`, if it exists.
pub async fn view(
    c: &oxide::Client,
    retry: Retry,
    name: &str,
) -> Result<Option<Project>, OxideError> {
    let step = format!("looking up project {name}");
    match retry
        .call(&step, || async move {
            c.project_view().project(name).send().await
        })
        .await
    {
        Ok(p) => Ok(Some(p.into_inner())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Gives `user` `role` on the project (read, modify, write: the policy is
/// replaced whole).
pub async fn grant(
    c: &oxide::Client,
    retry: Retry,
    project: &str,
    user: Uuid,
    role: ProjectRole,
) -> Result<(), OxideError> {
    let step = format!("granting the user {role} on project {project}");
    let mut policy = retry
        .call(&step, || async move {
            c.project_policy_view().project(project).send().await
        })
        .await?
        .into_inner();
    let assignment = ProjectRoleRoleAssignment {
        identity_id: user,
        identity_type: IdentityType::SiloUser,
        role_name: role,
    };
    let has = |a: &ProjectRoleRoleAssignment| {
        a.identity_id == user && a.role_name == assignment.role_name
    };
    if policy.role_assignments.iter().any(has) {
        return Ok(());
    }
    policy.role_assignments.push(assignment);
    retry
        .call(&step, || {
            let policy = policy.clone();
            async move {
                c.project_policy_update()
                    .project(project)
                    .body(policy)
                    .send()
                    .await
            }
        })
        .await?;
    Ok(())
}

/// Every project in the client's silo.
pub async fn list(c: &oxide::Client, retry: Retry) -> Result<Vec<Project>, OxideError> {
    retry
        .call("listing projects", || {
            c.project_list().stream().try_collect::<Vec<_>>()
        })
        .await
}

fn bad_name(step: &str, e: impl std::fmt::Display) -> OxideError {
    OxideError::new(step, Failure::Protocol(format!("not a valid name: {e}")))
}
