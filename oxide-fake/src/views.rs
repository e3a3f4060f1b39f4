//! The fake's records as the `oxide` crate's own types, so that what goes
//! over the wire has exactly the shape the generated client reads. Fields
//! the well never looks at get plausible constants.

use super::state::{Kind, ProjectRec, Run, SiloRec, State, Thing, UserRec};
use chrono::{DateTime, Utc};
use oxide::types as t;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use uuid::Uuid;

fn name(s: &str) -> t::Name {
    // Every name in the fake was checked against the API's rule when it
    // was made, or is one of the fake's own constants.
    s.parse()
        .unwrap_or_else(|e| unreachable!("{s:?} was checked when it was made: {e}"))
}

pub fn silo(s: &SiloRec) -> t::Silo {
    t::Silo {
        admin_group_name: None,
        description: s.description.clone(),
        discoverable: false,
        id: s.id,
        identity_mode: t::SiloIdentityMode::LocalOnly,
        mapped_fleet_roles: Default::default(),
        name: name(&s.name),
        time_created: s.created,
        time_modified: s.created,
    }
}

pub fn user(u: &UserRec) -> t::User {
    t::User {
        display_name: u.name.clone(),
        id: u.id,
        silo_id: u.silo,
        time_created: u.created,
        time_modified: u.created,
    }
}

pub fn current_user(st: &State, u: &UserRec, silo_admin: bool) -> t::CurrentUser {
    let silo_name = st.silos.get(&u.silo).map_or("gone", |s| s.name.as_str());
    t::CurrentUser {
        display_name: u.name.clone(),
        fleet_viewer: u.fleet_admin,
        id: u.id,
        silo_admin,
        silo_id: u.silo,
        silo_name: name(silo_name),
        time_created: u.created,
        time_modified: u.created,
    }
}

pub fn project(p: &ProjectRec) -> t::Project {
    t::Project {
        description: p.description.clone(),
        id: p.id,
        name: name(&p.name),
        time_created: p.created,
        time_modified: p.created,
    }
}

fn ipv4(s: &str) -> t::Ipv4Net {
    s.parse()
        .unwrap_or_else(|_| unreachable!("a constant network"))
}

fn ipv6(s: &str) -> t::Ipv6Net {
    s.parse()
        .unwrap_or_else(|_| unreachable!("a constant network"))
}

/// A thing inside a project, as the type its list call returns.
pub fn thing(st: &State, th: &Thing) -> Value {
    let (id, project_id, created) = (th.id, th.project, th.created);
    let n = name(&th.name);
    let description = format!("fake {}", th.kind.noun());
    let v = match th.kind {
        Kind::Instance => serde_json::to_value(instance(th, n, description)),
        Kind::Disk => serde_json::to_value(t::Disk {
            block_size: t::BlockSize::try_from(4096)
                .unwrap_or_else(|_| unreachable!("4096 is a block size")),
            description,
            device_path: format!("/mnt/{}", th.name),
            disk_type: t::DiskType::Distributed,
            id,
            image_id: None,
            name: n,
            project_id,
            read_only: false,
            size: t::ByteCount(1 << 30),
            snapshot_id: None,
            state: match th.attached_to {
                Some(i) => t::DiskState::Attached(i),
                None => t::DiskState::Detached,
            },
            time_created: created,
            time_modified: created,
        }),
        Kind::Snapshot => serde_json::to_value(t::Snapshot {
            description,
            disk_id: Uuid::nil(),
            id,
            name: n,
            project_id,
            size: t::ByteCount(1 << 30),
            state: t::SnapshotState::Ready,
            time_created: created,
            time_modified: created,
        }),
        Kind::Image => serde_json::to_value(t::Image {
            block_size: t::BlockSize::try_from(512)
                .unwrap_or_else(|_| unreachable!("512 is a block size")),
            description,
            digest: None,
            id,
            name: n,
            os: "helios".into(),
            project_id: Some(project_id),
            size: t::ByteCount(1 << 30),
            time_created: created,
            time_modified: created,
            version: "1".into(),
        }),
        Kind::FloatingIp => serde_json::to_value(t::FloatingIp {
            description,
            id,
            instance_id: th.attached_to,
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            ip_pool_id: Uuid::nil(),
            name: n,
            project_id,
            time_created: created,
            time_modified: created,
        }),
        Kind::ExternalSubnet => serde_json::to_value(t::ExternalSubnet {
            description,
            id,
            instance_id: th.attached_to,
            name: n,
            project_id,
            subnet: t::IpNet::V4(ipv4("198.51.100.0/28")),
            subnet_pool_id: Uuid::nil(),
            subnet_pool_member_id: Uuid::nil(),
            time_created: created,
            time_modified: created,
        }),
        Kind::AffinityGroup => serde_json::to_value(t::AffinityGroup {
            description,
            failure_domain: t::FailureDomain::Sled,
            id,
            name: n,
            policy: t::AffinityPolicy::Allow,
            project_id,
            time_created: created,
            time_modified: created,
        }),
        Kind::AntiAffinityGroup => serde_json::to_value(t::AntiAffinityGroup {
            description,
            failure_domain: t::FailureDomain::Sled,
            id,
            name: n,
            policy: t::AffinityPolicy::Allow,
            project_id,
            time_created: created,
            time_modified: created,
        }),
        Kind::Vpc => {
            let system_router_id = (st.things.values())
                .find(|r| r.kind == Kind::VpcRouter && r.system && r.vpc == Some(id))
                .map_or(Uuid::nil(), |r| r.id);
            serde_json::to_value(t::Vpc {
                description,
                dns_name: n.clone(),
                id,
                ipv6_prefix: ipv6("fd00:1122:3344::/48"),
                name: n,
                project_id,
                system_router_id,
                time_created: created,
                time_modified: created,
            })
        }
        Kind::VpcSubnet => serde_json::to_value(t::VpcSubnet {
            custom_router_id: None,
            description,
            id,
            ipv4_block: ipv4("172.30.0.0/22"),
            ipv6_block: ipv6("fd00:1122:3344:100::/64"),
            name: n,
            time_created: created,
            time_modified: created,
            vpc_id: th.vpc.unwrap_or_default(),
        }),
        Kind::VpcRouter => serde_json::to_value(t::VpcRouter {
            description,
            id,
            kind: if th.system {
                t::VpcRouterKind::System
            } else {
                t::VpcRouterKind::Custom
            },
            name: n,
            time_created: created,
            time_modified: created,
            vpc_id: th.vpc.unwrap_or_default(),
        }),
        Kind::InternetGateway => serde_json::to_value(t::InternetGateway {
            description,
            id,
            name: n,
            time_created: created,
            time_modified: created,
            vpc_id: th.vpc.unwrap_or_default(),
        }),
    };
    v.unwrap_or(Value::Null)
}

pub fn instance(th: &Thing, n: t::Name, description: String) -> t::Instance {
    let created: DateTime<Utc> = th.created;
    t::Instance {
        auto_restart_cooldown_expiration: None,
        auto_restart_enabled: false,
        auto_restart_policy: None,
        boot_disk_id: None,
        cpu_platform: None,
        description,
        enable_jumbo_frames: false,
        hostname: th.name.clone(),
        id: th.id,
        memory: t::ByteCount(1 << 30),
        name: n,
        ncpus: t::InstanceCpuCount(1),
        project_id: th.project,
        run_state: match th.run {
            Run::Running => t::InstanceState::Running,
            Run::Stopping { .. } => t::InstanceState::Stopping,
            Run::Stopped => t::InstanceState::Stopped,
        },
        time_created: created,
        time_last_auto_restarted: None,
        time_modified: created,
        time_run_state_updated: created,
    }
}

/// `instance` for a thing the caller knows to be an instance.
pub fn instance_of(th: &Thing) -> t::Instance {
    instance(th, name(&th.name), format!("fake {}", th.kind.noun()))
}
