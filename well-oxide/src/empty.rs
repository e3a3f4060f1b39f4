//! Emptying and deleting a job's project, in the order Oxide insists on:
//! instances stopped, then deleted (which detaches their disks and
//! addresses); then disks, snapshots, images, floating IPs, external
//! subnets, affinity and anti-affinity groups; then each VPC's subnets,
//! custom routers and internet gateways, then the VPC (its system router
//! goes with it); then the project.
//!
//! Things are deleted by id, which Oxide accepts without naming the
//! project; anything already gone (404) counts as deleted, so a destroy
//! that died halfway simply runs again.

use super::api::{ErrorBody, Failure, OxideError, Retry};
use super::names::is_marked;
use super::project;
use aquifer_protocol::Backoff;
use futures_util::TryStreamExt as _;
use oxide::prelude::*;
use oxide::types::{InstanceState, VpcRouterKind};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// How often an emptying project's instances are looked at while they
/// stop: from 100 ms, doubling to 2 s.
const STOP_POLL: Backoff = Backoff {
    first: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_secs(2),
};

/// Which projects a destroy may delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whose {
    /// Only one the well's description marks: in a silo shared with
    /// people, a project of the same name may be someone else's.
    Marked,
    /// Any: the silo is the well's own.
    Any,
}

/// Deletes everything in the project `name`, then the project. A project
/// that is not there counts as gone; so does one that `whose` forbids
/// touching, which is left alone.
pub async fn destroy(
    c: &oxide::Client,
    r: Retry,
    name: &str,
    whose: Whose,
    stop_timeout: Duration,
) -> Result<(), OxideError> {
    let Some(found) = project::view(c, r, name).await? else {
        return Ok(());
    };
    if whose == Whose::Marked && !is_marked(&found.description) {
        tracing::warn!(
            project = name,
            "oxide: a project of this name is not the well's; left alone"
        );
        return Ok(());
    }
    let p = name;
    instances(c, r, p, stop_timeout).await?;
    // Each line: what, its list call, its delete call and the delete's
    // parameter, all within the project.
    macro_rules! clear_project {
        ($what:literal, $list:ident, $delete:ident, $param:ident) => {
            clear(
                r,
                $what,
                p,
                || c.$list().project(p).stream().try_collect::<Vec<_>>(),
                |t| t.id,
                |id| c.$delete().$param(id).send(),
            )
            .await?
        };
    }
    clear_project!("disk", disk_list, disk_delete, disk);
    clear_project!("snapshot", snapshot_list, snapshot_delete, snapshot);
    clear_project!("image", image_list, image_delete, image);
    clear_project!(
        "floating IP",
        floating_ip_list,
        floating_ip_delete,
        floating_ip
    );
    clear_project!(
        "external subnet",
        external_subnet_list,
        external_subnet_delete,
        external_subnet
    );
    clear_project!(
        "affinity group",
        affinity_group_list,
        affinity_group_delete,
        affinity_group
    );
    clear_project!(
        "anti-affinity group",
        anti_affinity_group_list,
        anti_affinity_group_delete,
        anti_affinity_group
    );
    let step = format!("listing the VPCs of {p}");
    let vpcs = r
        .call(&step, || {
            c.vpc_list().project(p).stream().try_collect::<Vec<_>>()
        })
        .await?;
    for vpc in vpcs {
        let within = format!("{p}/{}", *vpc.name);
        vpc_contents(c, r, vpc.id, &within).await?;
        let step = format!("deleting VPC {within}");
        let v = vpc.id;
        r.call_unless_gone(&step, || c.vpc_delete().vpc(v).send())
            .await?;
    }
    let step = format!("deleting project {p}");
    r.call_unless_gone(&step, || c.project_delete().project(p).send())
        .await
}

/// A VPC's subnets, custom routers and internet gateways.
async fn vpc_contents(
    c: &oxide::Client,
    r: Retry,
    v: Uuid,
    within: &str,
) -> Result<(), OxideError> {
    clear(
        r,
        "VPC subnet",
        within,
        || c.vpc_subnet_list().vpc(v).stream().try_collect::<Vec<_>>(),
        |s| s.id,
        |id| c.vpc_subnet_delete().subnet(id).send(),
    )
    .await?;
    // The system router goes with its VPC; it cannot be deleted alone.
    let custom_routers = || async move {
        let all: Vec<_> = c.vpc_router_list().vpc(v).stream().try_collect().await?;
        let custom = all.into_iter().filter(|r| r.kind == VpcRouterKind::Custom);
        Ok::<_, oxide::Error<oxide::types::Error>>(custom.collect::<Vec<_>>())
    };
    clear(
        r,
        "VPC router",
        within,
        custom_routers,
        |r| r.id,
        |id| c.vpc_router_delete().router(id).send(),
    )
    .await?;
    // `cascade` also removes the gateway's links to IP pools and
    // addresses, which would otherwise keep it.
    clear(
        r,
        "internet gateway",
        within,
        || {
            c.internet_gateway_list()
                .vpc(v)
                .stream()
                .try_collect::<Vec<_>>()
        },
        |g| g.id,
        |id| c.internet_gateway_delete().gateway(id).cascade(true).send(),
    )
    .await
}

/// Lists things with `list` and deletes each by id with `delete`.
async fn clear<T, L, LFut, D, DFut, R, E1, E2>(
    retry: Retry,
    what: &str,
    within: &str,
    list: L,
    id: impl Fn(&T) -> Uuid,
    delete: D,
) -> Result<(), OxideError>
where
    E1: ErrorBody,
    E2: ErrorBody,
    L: FnMut() -> LFut,
    LFut: Future<Output = Result<Vec<T>, oxide::Error<E1>>>,
    D: Fn(Uuid) -> DFut,
    DFut: Future<Output = Result<R, oxide::Error<E2>>>,
{
    let step = format!("listing the {what}s of {within}");
    let things = retry.call(&step, list).await?;
    for t in &things {
        let i = id(t);
        let step = format!("deleting {what} {i} of {within}");
        retry.call_unless_gone(&step, || delete(i)).await?;
    }
    Ok(())
}

/// Stops the project's instances and deletes each once it has stopped,
/// until none is left or `stop_timeout` has passed.
async fn instances(
    c: &oxide::Client,
    r: Retry,
    project: &str,
    stop_timeout: Duration,
) -> Result<(), OxideError> {
    let give_up = Instant::now() + stop_timeout;
    let mut round = 0;
    loop {
        let step = format!("listing the instances of {project}");
        let all: Vec<_> = r
            .call(&step, || {
                c.instance_list()
                    .project(project)
                    .stream()
                    .try_collect::<Vec<_>>()
            })
            .await?;
        if all.is_empty() {
            return Ok(());
        }
        let mut waiting = Vec::new();
        for i in &all {
            let id = i.id;
            match i.run_state {
                InstanceState::Stopped | InstanceState::Failed | InstanceState::Destroyed => {
                    let step = format!("deleting instance {} of {project}", *i.name);
                    r.call_unless_gone(&step, || c.instance_delete().instance(id).send())
                        .await?;
                }
                InstanceState::Running | InstanceState::Starting | InstanceState::Rebooting => {
                    let step = format!("stopping instance {} of {project}", *i.name);
                    r.call_unless_gone(&step, || c.instance_stop().instance(id).send())
                        .await?;
                    waiting.push(i.name.to_string());
                }
                // Only time moves these on.
                InstanceState::Creating
                | InstanceState::Stopping
                | InstanceState::Migrating
                | InstanceState::Repairing => waiting.push(i.name.to_string()),
            }
        }
        if waiting.is_empty() {
            continue;
        }
        if Instant::now() >= give_up {
            return Err(OxideError::new(
                format!("waiting for the instances of {project} to stop"),
                Failure::Stuck(format!(
                    "still not stopped after {} ms: {}",
                    stop_timeout.as_millis(),
                    waiting.join(", ")
                )),
            ));
        }
        tokio::time::sleep(STOP_POLL.wait_jittered(round)).await;
        round += 1;
    }
}
