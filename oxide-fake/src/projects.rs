//! The fake's projects and what lives in them, with Nexus's ordering
//! rules: a project with anything in it cannot be deleted, nor a VPC with
//! subnets, custom routers or gateways, nor an instance that has not
//! stopped, nor a disk, floating IP or external subnet still attached. A
//! stop takes a few looks to finish. Things are addressed by id (then no
//! project may be named) or by name within `?project=` (and `?vpc=`).

use super::http::{Answer, Req, Resp, actor, bad, exists, forbidden, not_found, page};
use super::state::{Access, Actor, Kind, ProjectRec, Run, State, Thing};
use super::views;
use chrono::{DateTime, Utc};
use oxide::types::{ProjectCreate, ProjectRolePolicy, VpcCreate};
use uuid::Uuid;

/// The project `sel` of the actor's silo, if the actor may at least read
/// it (404 otherwise, as Nexus hides it) and has `need` (403 otherwise).
fn project<'a>(st: &'a State, a: &Actor, sel: &str, need: Access) -> Result<&'a ProjectRec, Resp> {
    let p = st
        .project_by(a.silo, sel)
        .ok_or_else(|| not_found("project", sel))?;
    let have = st.project_access(a, p);
    if have < Access::Read {
        return Err(not_found("project", sel));
    }
    if have < need {
        return Err(forbidden());
    }
    Ok(p)
}

pub fn list(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let mut ps: Vec<_> = (st.projects.values())
        .filter(|p| st.project_access(&a, p) >= Access::Read)
        .map(views::project)
        .collect();
    ps.sort_by(|x, y| x.name.cmp(&y.name));
    page(req, ps, st.page_size)
}

pub fn create(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    if st.silo_access(&a, a.silo) < Access::Modify {
        return Err(forbidden());
    }
    let c: ProjectCreate = req.json()?;
    if st.project_by(a.silo, &c.name).is_some() {
        return Err(exists("project", &c.name));
    }
    let p = ProjectRec {
        id: Uuid::new_v4(),
        silo: a.silo,
        name: c.name.to_string(),
        description: c.description,
        policy: Vec::new(),
        created: now,
    };
    let (id, view) = (p.id, views::project(&p));
    st.projects.insert(id, p);
    // No `defaults` (or a VPC selection in them) is Oxide's default VPC;
    // an empty selection, none.
    if c.defaults.is_none_or(|d| d.vpc.is_some()) {
        st.add_vpc(id, "default", now);
    }
    Ok(Resp::json(201, &view))
}

pub fn view(st: &mut State, req: &Req, sel: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let p = project(st, &a, sel, Access::Read)?;
    Ok(Resp::json(200, &views::project(p)))
}

pub fn delete(st: &mut State, req: &Req, sel: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let id = project(st, &a, sel, Access::Admin)?.id;
    let mut inside: Vec<&Thing> = st.things_in(id, None).collect();
    inside.sort_by_key(|t| t.kind);
    if let Some(t) = inside.first() {
        return Err(bad(&format!(
            "project to be deleted contains a {}: {}",
            t.kind.noun(),
            t.name
        )));
    }
    st.projects.remove(&id);
    Ok(Resp::empty(204))
}

pub fn policy(st: &mut State, req: &Req, sel: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let p = project(st, &a, sel, Access::Read)?;
    let policy = ProjectRolePolicy {
        role_assignments: p.policy.clone(),
    };
    Ok(Resp::json(200, &policy))
}

pub fn set_policy(st: &mut State, req: &Req, sel: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let id = project(st, &a, sel, Access::Admin)?.id;
    let policy: ProjectRolePolicy = req.json()?;
    if let Some(p) = st.projects.get_mut(&id) {
        p.policy = policy.role_assignments.clone();
    }
    Ok(Resp::json(200, &policy))
}

pub fn create_vpc(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let sel = req
        .q("project")
        .ok_or_else(|| bad("project must be specified"))?;
    let pid = project(st, &a, sel, Access::Modify)?.id;
    let c: VpcCreate = req.json()?;
    let taken = st
        .things_in(pid, None)
        .any(|t| t.kind == Kind::Vpc && t.name == *c.name);
    if taken {
        return Err(exists("vpc", &c.name));
    }
    let id = st.add_vpc(pid, &c.name, now);
    let view = st.things.get(&id).map(|t| views::thing(st, t));
    Ok(Resp::json(201, &view))
}

/// The thing `sel` of `kind`, by id (no project or VPC may be named) or
/// by name within the query's project (and VPC).
fn thing<'a>(
    st: &'a State,
    req: &Req,
    a: &Actor,
    kind: Kind,
    sel: &str,
    need: Access,
) -> Result<&'a Thing, Resp> {
    let found = if let Ok(id) = sel.parse::<Uuid>() {
        if req.q("project").is_some() || req.q("vpc").is_some() {
            return Err(bad(&format!(
                "when providing {} as an ID project should not be specified",
                kind.noun()
            )));
        }
        st.things.get(&id).filter(|t| t.kind == kind)
    } else {
        let (pid, vpc) = scope(st, req, a, kind, Access::Read)?;
        st.things_in(pid, vpc)
            .find(|t| t.kind == kind && t.name == sel)
    };
    let t = found.ok_or_else(|| not_found(kind.noun(), sel))?;
    let p = st
        .projects
        .get(&t.project)
        .ok_or_else(|| not_found(kind.noun(), sel))?;
    let have = st.project_access(a, p);
    if have < Access::Read {
        return Err(not_found(kind.noun(), sel));
    }
    if have < need {
        return Err(forbidden());
    }
    Ok(t)
}

/// The project (and VPC) a list or name lookup of `kind` is in.
fn scope(
    st: &State,
    req: &Req,
    a: &Actor,
    kind: Kind,
    need: Access,
) -> Result<(Uuid, Option<Uuid>), Resp> {
    if !kind.in_vpc() {
        let sel = req
            .q("project")
            .ok_or_else(|| bad("project must be specified"))?;
        return Ok((project(st, a, sel, need)?.id, None));
    }
    let vsel = req.q("vpc").ok_or_else(|| bad("vpc must be specified"))?;
    if let Ok(id) = vsel.parse::<Uuid>() {
        if req.q("project").is_some() {
            return Err(bad(
                "when providing vpc as an ID project should not be specified",
            ));
        }
        let v = (st.things.get(&id))
            .filter(|t| t.kind == Kind::Vpc)
            .ok_or_else(|| not_found("vpc", vsel))?;
        let p = st
            .projects
            .get(&v.project)
            .ok_or_else(|| not_found("vpc", vsel))?;
        let have = st.project_access(a, p);
        if have < Access::Read {
            return Err(not_found("vpc", vsel));
        }
        if have < need {
            return Err(forbidden());
        }
        return Ok((p.id, Some(id)));
    }
    let psel = req
        .q("project")
        .ok_or_else(|| bad("project must be specified"))?;
    let pid = project(st, a, psel, need)?.id;
    let v = (st.things_in(pid, None))
        .find(|t| t.kind == Kind::Vpc && t.name == vsel)
        .ok_or_else(|| not_found("vpc", vsel))?;
    Ok((pid, Some(v.id)))
}

pub fn list_things(st: &mut State, req: &Req, seg: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let kind = Kind::from_segment(seg).ok_or_else(|| not_found("collection", seg))?;
    let (pid, vpc) = scope(st, req, &a, kind, Access::Read)?;
    let ids: Vec<Uuid> = (st.things_in(pid, vpc))
        .filter(|t| t.kind == kind)
        .map(|t| t.id)
        .collect();
    // Looking at a stopping instance is what moves it on.
    for id in &ids {
        if let Some(t) = st.things.get_mut(id)
            && let Run::Stopping { polls_left } = t.run
        {
            t.run = match polls_left {
                0 | 1 => Run::Stopped,
                n => Run::Stopping { polls_left: n - 1 },
            };
        }
    }
    let mut things: Vec<&Thing> = ids.iter().filter_map(|id| st.things.get(id)).collect();
    things.sort_by(|x, y| x.name.cmp(&y.name));
    let views: Vec<_> = things.iter().map(|t| views::thing(st, t)).collect();
    page(req, views, st.page_size)
}

pub fn stop_instance(st: &mut State, req: &Req, sel: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let id = thing(st, req, &a, Kind::Instance, sel, Access::Modify)?.id;
    let polls = st.stop_polls;
    let t = st
        .things
        .get_mut(&id)
        .ok_or_else(|| not_found("instance", sel))?;
    if t.run == Run::Running {
        t.run = if polls == 0 {
            Run::Stopped
        } else {
            Run::Stopping { polls_left: polls }
        };
    }
    Ok(Resp::json(202, &views::instance_of(t)))
}

pub fn delete_thing(st: &mut State, req: &Req, seg: &str, sel: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let kind = Kind::from_segment(seg).ok_or_else(|| not_found("collection", seg))?;
    let t = thing(st, req, &a, kind, sel, Access::Modify)?;
    let (id, vpc) = (t.id, t.vpc);
    let blocker = match kind {
        Kind::Instance if t.run != Run::Stopped => {
            Some("cannot delete instance: instance is running or has not yet fully stopped".into())
        }
        Kind::Disk | Kind::FloatingIp | Kind::ExternalSubnet if t.attached_to.is_some() => {
            Some(format!(
                "{} cannot be deleted while attached to an instance",
                kind.noun()
            ))
        }
        Kind::VpcSubnet
            if st
                .things_in(t.project, vpc)
                .any(|i| i.kind == Kind::Instance) =>
        {
            Some("VPC Subnet cannot be deleted while network interfaces in the subnet exist".into())
        }
        Kind::VpcRouter if t.system => Some("cannot delete system router".into()),
        Kind::InternetGateway if t.system && req.q("cascade") != Some("true") => Some(
            "internet gateway has IP pool or address links: delete them first or use cascade"
                .into(),
        ),
        Kind::Vpc => {
            let inside = st
                .things_in(t.project, Some(id))
                .find(|i| !(i.kind == Kind::VpcRouter && i.system));
            inside.map(|i| {
                format!(
                    "VPC cannot be deleted while a {} exists: {}",
                    i.kind.noun(),
                    i.name
                )
            })
        }
        _ => None,
    };
    if let Some(message) = blocker {
        return Err(bad(&message));
    }
    match kind {
        // An instance's deletion detaches what was attached to it.
        Kind::Instance => {
            for other in st.things.values_mut() {
                if other.attached_to == Some(id) {
                    other.attached_to = None;
                }
            }
        }
        // A VPC's system router goes with it.
        Kind::Vpc => st.things.retain(|_, r| r.vpc != Some(id)),
        _ => {}
    }
    st.things.remove(&id);
    Ok(Resp::empty(204))
}

/// Fills `project` with one of everything a job might leave behind, wired
/// as on a rack (the instance running, with a disk, a floating IP and an
/// external subnet attached, and a NIC in the VPC).
pub fn seed(st: &mut State, project: Uuid, now: DateTime<Utc>) {
    let vpc = st.add_vpc(project, "work", now);
    st.add_thing(Kind::VpcRouter, project, "work-router", Some(vpc), now);
    let vm = st.add_thing(Kind::Instance, project, "vm", Some(vpc), now);
    for kind in [Kind::Disk, Kind::FloatingIp, Kind::ExternalSubnet] {
        let name = format!("vm-{}", kind.noun().replace(' ', "-"));
        let id = st.add_thing(kind, project, &name, None, now);
        if let Some(t) = st.things.get_mut(&id) {
            t.attached_to = Some(vm);
        }
    }
    let loose = [
        (Kind::Snapshot, "snap"),
        (Kind::Image, "img"),
        (Kind::AffinityGroup, "near"),
        (Kind::AntiAffinityGroup, "apart"),
    ];
    for (kind, name) in loose {
        st.add_thing(kind, project, name, None, now);
    }
}
