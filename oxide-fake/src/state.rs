//! The fake's state: silos, users, their sessions and tokens, device
//! authorizations, projects and what is in them; and who may do what,
//! derived the way Nexus derives it (a credential names a user, the user
//! has roles on its silo and on projects, a role grants an access level).

use chrono::{DateTime, Utc};
use oxide::types::{
    ProjectRole, ProjectRoleRoleAssignment, SiloQuotasCreate, SiloRole, SiloRoleRoleAssignment,
};
use std::collections::BTreeMap;
use uuid::Uuid;

pub struct SiloRec {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub quotas: SiloQuotasCreate,
    pub policy: Vec<SiloRoleRoleAssignment>,
    /// The silo's `device_token_max_ttl_seconds`.
    pub token_max_ttl_s: Option<u32>,
    pub created: DateTime<Utc>,
}

pub struct UserRec {
    pub id: Uuid,
    pub silo: Uuid,
    pub name: String,
    /// `None`: login disallowed.
    pub password: Option<String>,
    pub fleet_admin: bool,
    pub created: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredKind {
    Session,
    Token,
}

/// A console session or an API token, by its secret.
pub struct Cred {
    pub id: Uuid,
    pub kind: CredKind,
    pub user: Uuid,
    /// Kept so that a credential that outlived its user still shows whose
    /// it was.
    pub user_name: String,
    pub expires: Option<DateTime<Utc>>,
}

pub struct DeviceRec {
    pub device_code: String,
    pub user_code: String,
    pub client_id: Uuid,
    pub ttl_s: Option<u32>,
    /// The token's secret, once a user has confirmed.
    pub token: Option<String>,
}

pub struct ProjectRec {
    pub id: Uuid,
    pub silo: Uuid,
    pub name: String,
    pub description: String,
    pub policy: Vec<ProjectRoleRoleAssignment>,
    pub created: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Instance,
    Disk,
    Snapshot,
    Image,
    FloatingIp,
    ExternalSubnet,
    AffinityGroup,
    AntiAffinityGroup,
    Vpc,
    VpcSubnet,
    VpcRouter,
    InternetGateway,
}

impl Kind {
    /// As Nexus names it in messages.
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::Disk => "disk",
            Kind::Snapshot => "snapshot",
            Kind::Image => "image",
            Kind::FloatingIp => "floating ip",
            Kind::ExternalSubnet => "external subnet",
            Kind::AffinityGroup => "affinity group",
            Kind::AntiAffinityGroup => "anti-affinity group",
            Kind::Vpc => "vpc",
            Kind::VpcSubnet => "vpc subnet",
            Kind::VpcRouter => "vpc router",
            Kind::InternetGateway => "internet gateway",
        }
    }

    /// The path segment of its collection, `/v1/<segment>`.
    #[must_use]
    pub fn from_segment(s: &str) -> Option<Kind> {
        Some(match s {
            "instances" => Kind::Instance,
            "disks" => Kind::Disk,
            "snapshots" => Kind::Snapshot,
            "images" => Kind::Image,
            "floating-ips" => Kind::FloatingIp,
            "external-subnets" => Kind::ExternalSubnet,
            "affinity-groups" => Kind::AffinityGroup,
            "anti-affinity-groups" => Kind::AntiAffinityGroup,
            "vpcs" => Kind::Vpc,
            "vpc-subnets" => Kind::VpcSubnet,
            "vpc-routers" => Kind::VpcRouter,
            "internet-gateways" => Kind::InternetGateway,
            _ => return None,
        })
    }

    /// Whether it lives in a VPC (listed with `?vpc=`).
    #[must_use]
    pub fn in_vpc(self) -> bool {
        matches!(
            self,
            Kind::VpcSubnet | Kind::VpcRouter | Kind::InternetGateway
        )
    }
}

/// An instance's run state. A stop takes effect only after the instance
/// has been looked at `polls_left` more times, as a real stop takes time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    Running,
    Stopping { polls_left: u32 },
    Stopped,
}

pub struct Thing {
    pub id: Uuid,
    pub kind: Kind,
    pub project: Uuid,
    pub name: String,
    pub vpc: Option<Uuid>,
    /// The instance a disk, floating IP or external subnet is attached to.
    pub attached_to: Option<Uuid>,
    pub run: Run,
    /// A VPC's system router (deleted with its VPC, never alone), or an
    /// internet gateway with IP pool links (deleted only with `cascade`).
    pub system: bool,
    pub created: DateTime<Utc>,
}

/// How much a user may do with a silo or a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Modify,
    Admin,
}

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: Uuid,
    pub silo: Uuid,
    pub fleet_admin: bool,
    /// The session's secret, when the call came with one.
    pub session: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub silos: BTreeMap<Uuid, SiloRec>,
    pub users: BTreeMap<Uuid, UserRec>,
    pub creds: BTreeMap<String, Cred>,
    pub devices: Vec<DeviceRec>,
    pub projects: BTreeMap<Uuid, ProjectRec>,
    pub things: BTreeMap<Uuid, Thing>,
    pub ip_pools: BTreeMap<String, Uuid>,
    /// (pool, silo) to whether it is the silo's default.
    pub pool_links: BTreeMap<(Uuid, Uuid), bool>,
    /// How many looks an instance's stop takes.
    pub stop_polls: u32,
    /// The page size when a list call names none.
    pub page_size: usize,
}

impl State {
    /// The caller, from a bearer token or a session cookie that names a
    /// user who still exists and has not expired.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        session: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<Actor> {
        let (secret, kind) = match (bearer, session) {
            (Some(b), _) => (b, CredKind::Token),
            (None, Some(s)) => (s, CredKind::Session),
            (None, None) => return None,
        };
        let cred = self.creds.get(secret).filter(|c| c.kind == kind)?;
        if cred.expires.is_some_and(|e| e <= now) {
            return None;
        }
        let user = self.users.get(&cred.user)?;
        Some(Actor {
            user: user.id,
            silo: user.silo,
            fleet_admin: user.fleet_admin,
            session: (kind == CredKind::Session).then(|| secret.to_string()),
        })
    }

    /// The actor's access to `silo`: its silo role, if it is of that silo.
    #[must_use]
    pub fn silo_access(&self, actor: &Actor, silo: Uuid) -> Access {
        let Some(s) = self.silos.get(&silo) else {
            return Access::None;
        };
        if actor.silo != silo {
            return Access::None;
        }
        let roles = s.policy.iter().filter(|a| a.identity_id == actor.user);
        roles
            .map(|a| match a.role_name {
                SiloRole::Admin => Access::Admin,
                SiloRole::Collaborator | SiloRole::LimitedCollaborator => Access::Modify,
                SiloRole::Viewer => Access::Read,
            })
            .max()
            .unwrap_or(Access::None)
    }

    /// The actor's access to a project: the better of what its silo role
    /// confers and its role on the project. A fleet admin has none in a
    /// silo not its own.
    #[must_use]
    pub fn project_access(&self, actor: &Actor, p: &ProjectRec) -> Access {
        if actor.silo != p.silo {
            return Access::None;
        }
        let on_project = (p.policy.iter())
            .filter(|a| a.identity_id == actor.user)
            .map(|a| match a.role_name {
                ProjectRole::Admin => Access::Admin,
                ProjectRole::Collaborator | ProjectRole::LimitedCollaborator => Access::Modify,
                ProjectRole::Viewer => Access::Read,
            })
            .max()
            .unwrap_or(Access::None);
        on_project.max(self.silo_access(actor, p.silo))
    }

    /// A silo by name or id.
    #[must_use]
    pub fn silo_by(&self, sel: &str) -> Option<&SiloRec> {
        match sel.parse::<Uuid>() {
            Ok(id) => self.silos.get(&id),
            Err(_) => self.silos.values().find(|s| s.name == sel),
        }
    }

    /// A project of `silo` by name or id.
    #[must_use]
    pub fn project_by(&self, silo: Uuid, sel: &str) -> Option<&ProjectRec> {
        let mut in_silo = self.projects.values().filter(|p| p.silo == silo);
        match sel.parse::<Uuid>() {
            Ok(id) => in_silo.find(|p| p.id == id),
            Err(_) => in_silo.find(|p| p.name == sel),
        }
    }

    /// A user of `silo` by login name.
    #[must_use]
    pub fn user_named(&self, silo: Uuid, name: &str) -> Option<&UserRec> {
        (self.users.values()).find(|u| u.silo == silo && u.name == name)
    }

    /// Removes a user and every role it held (its credentials stay, dead,
    /// as Nexus leaves them: they no longer authenticate).
    pub fn remove_user(&mut self, id: Uuid) {
        self.users.remove(&id);
        for s in self.silos.values_mut() {
            s.policy.retain(|a| a.identity_id != id);
        }
        for p in self.projects.values_mut() {
            p.policy.retain(|a| a.identity_id != id);
        }
    }

    /// The things of `project`, or of `vpc` within it.
    pub fn things_in(&self, project: Uuid, vpc: Option<Uuid>) -> impl Iterator<Item = &Thing> {
        (self.things.values())
            .filter(move |t| t.project == project && (vpc.is_none() || t.vpc == vpc))
    }

    /// Adds a thing to `project` (in `vpc`); its id.
    pub fn add_thing(
        &mut self,
        kind: Kind,
        project: Uuid,
        name: &str,
        vpc: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let thing = Thing {
            id,
            kind,
            project,
            name: name.into(),
            vpc,
            attached_to: None,
            run: Run::Running,
            system: false,
            created: now,
        };
        self.things.insert(id, thing);
        id
    }

    /// A VPC as Nexus makes one: with its system router, a default subnet
    /// and an internet gateway linked to the default IP pool.
    pub fn add_vpc(&mut self, project: Uuid, name: &str, now: DateTime<Utc>) -> Uuid {
        let vpc = self.add_thing(Kind::Vpc, project, name, None, now);
        let router = self.add_thing(Kind::VpcRouter, project, "system", Some(vpc), now);
        let gateway = self.add_thing(Kind::InternetGateway, project, "default", Some(vpc), now);
        for id in [router, gateway] {
            if let Some(t) = self.things.get_mut(&id) {
                t.system = true;
            }
        }
        self.add_thing(Kind::VpcSubnet, project, "default", Some(vpc), now);
        vpc
    }
}
