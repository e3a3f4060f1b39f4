//! `aquifer admin ...`: users, privileges and tokens; types and targets;
//! wells and factories; the lease hold and held resources.

use crate::client::{Answer, Client, Endpoint};
use crate::table::{cell, render};
use anyhow::{Context, Result};
use aquifer_protocol::admin::{
    Created, FactoryView, Hold, HoldState, IssuedToken, NewFactory, NewTarget, NewType, NewUser,
    NewUserToken, NewWell, PrivilegeChange, Registered, Released, ResourceView, Revoked, Slots,
    TargetView, TypeView, UserView, WellView,
};
use aquifer_protocol::user::UserId;
use aquifer_protocol::{FactoryId, Privilege, ResourceId, TargetId, TypeId, WellId, path};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Resource types.
    #[command(subcommand)]
    Type(TypeCommand),
    /// Targets (execution environments).
    #[command(subcommand)]
    Target(TargetCommand),
    /// Users, their privileges and tokens.
    #[command(subcommand)]
    User(UserCommand),
    /// Wells: the services that create resources.
    #[command(subcommand)]
    Well(ServiceCommand),
    /// Factories: the services that create workers.
    #[command(subcommand)]
    Factory(ServiceCommand),
    /// Stop granting new leases, server-wide (running jobs go on).
    Hold,
    /// Lift the hold on new leases.
    Unhold,
    /// Resources in the books, and held ones an operator must look at.
    #[command(subcommand)]
    Resource(ResourceCommand),
}

#[derive(clap::Subcommand)]
pub enum TypeCommand {
    /// Every resource type, with its largest group per job and privilege.
    List,
    /// Define a resource type.
    Create {
        name: String,
        /// The largest group of this type one job may ask for.
        #[arg(long)]
        max_per_job: u16,
        /// A privilege a user needs to ask for this type.
        #[arg(long)]
        privilege: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum TargetCommand {
    /// Every target, with the privilege it needs.
    List,
    /// Define a target.
    Create {
        name: String,
        /// A privilege a user needs to submit jobs for this target.
        #[arg(long)]
        privilege: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Every user, with their privileges.
    List,
    /// Make a user; prints their first token, once.
    Create {
        name: String,
        #[arg(long = "privilege")]
        privileges: Vec<String>,
    },
    /// Give a user privileges (only ones you hold yourself).
    Grant { id: u64, privileges: Vec<String> },
    /// Take privileges from a user.
    Revoke { id: u64, privileges: Vec<String> },
    /// A new token for the user; prints it, once.
    Token { id: u64 },
    /// Revoke every token of the user.
    RevokeTokens { id: u64 },
}

#[derive(clap::Subcommand)]
pub enum ServiceCommand {
    /// Every one registered, with its capacity and what is free of it.
    List,
    /// Register one; prints its token, once.
    Create {
        name: String,
        /// Capacity as KEY=N: per resource type for a well, per target for
        /// a factory. Repeat for each.
        #[arg(long = "capacity", value_parser = parse_capacity, required = true)]
        capacity: Vec<(String, u16)>,
    },
    /// A new token for it; prints it, once.
    Token { id: u32 },
    /// Revoke every token of it: it stops until given a new one.
    RevokeTokens { id: u32 },
}

#[derive(clap::Subcommand)]
pub enum ResourceCommand {
    /// Every resource in the books, with its state (and, when held, why).
    List,
    /// An operator has dealt with a held resource: its well tries again.
    Release { id: u32 },
}

fn parse_capacity(s: &str) -> Result<(String, u16), String> {
    let (key, n) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write NAME=N"))?;
    let n = n
        .parse()
        .map_err(|_| format!("{s:?}: {n:?} is not a capacity from 0 to 65535"))?;
    Ok((key.to_string(), n))
}

pub async fn run(endpoint: &Endpoint, command: AdminCommand) -> Result<()> {
    let c = Client::new(endpoint)?;
    let out = Output {
        json: endpoint.json,
    };
    match command {
        AdminCommand::Type(TypeCommand::List) => {
            let types = c.get::<Vec<TypeView>>(path::ADMIN_TYPES).await?;
            out.table(&types, &["NAME", "MAX PER JOB", "PRIVILEGE"], |t| {
                vec![
                    t.name.to_string(),
                    t.max_per_job.to_string(),
                    cell(&t.privilege),
                ]
            });
        }
        AdminCommand::Type(TypeCommand::Create {
            name,
            max_per_job,
            privilege,
        }) => {
            let body = NewType {
                name: TypeId::new(&name),
                max_per_job,
                privilege: privilege.map(Privilege::new),
            };
            let done = c
                .post::<Created<TypeId>, _>(path::ADMIN_TYPES, &body)
                .await?;
            out.done(&done, &format!("type {name} defined"));
        }
        AdminCommand::Target(TargetCommand::List) => {
            let targets = c.get::<Vec<TargetView>>(path::ADMIN_TARGETS).await?;
            out.table(&targets, &["NAME", "PRIVILEGE"], |t| {
                vec![t.name.to_string(), cell(&t.privilege)]
            });
        }
        AdminCommand::Target(TargetCommand::Create { name, privilege }) => {
            let body = NewTarget {
                name: TargetId::new(&name),
                privilege: privilege.map(Privilege::new),
            };
            let done = (c.post::<Created<TargetId>, _>(path::ADMIN_TARGETS, &body)).await?;
            out.done(&done, &format!("target {name} defined"));
        }
        AdminCommand::User(UserCommand::List) => {
            let users = c.get::<Vec<UserView>>(path::ADMIN_USERS).await?;
            out.table(&users, &["ID", "NAME", "PRIVILEGES"], |u| {
                vec![u.id.0.to_string(), u.name.clone(), cell(&u.privileges)]
            });
        }
        AdminCommand::User(UserCommand::Create { name, privileges }) => {
            let body = NewUser {
                name: name.clone(),
                privileges: privileges.into_iter().map(Privilege::new).collect(),
            };
            let made = c.post::<NewUserToken, _>(path::ADMIN_USERS, &body).await?;
            let message = format!("user {name} is {}", made.body.id.0);
            out.token(&made, &made.body.token, &message);
        }
        AdminCommand::User(UserCommand::Grant { id, privileges }) => {
            let grant = privileges.into_iter().map(Privilege::new).collect();
            let change = PrivilegeChange {
                grant,
                ..PrivilegeChange::default()
            };
            change_privileges(&c, out, UserId(id), &change).await?;
        }
        AdminCommand::User(UserCommand::Revoke { id, privileges }) => {
            let revoke = privileges.into_iter().map(Privilege::new).collect();
            let change = PrivilegeChange {
                revoke,
                ..PrivilegeChange::default()
            };
            change_privileges(&c, out, UserId(id), &change).await?;
        }
        AdminCommand::User(UserCommand::Token { id }) => {
            let tokens = path::admin_user_tokens(UserId(id));
            let made = c.post_empty::<IssuedToken>(&tokens).await?;
            out.token(
                &made,
                &made.body.token,
                &format!("a new token for user {id}"),
            );
        }
        AdminCommand::User(UserCommand::RevokeTokens { id }) => {
            let tokens = path::admin_user_tokens(UserId(id));
            let done = c.delete::<Revoked>(&tokens).await?;
            let message = format!("revoked {} tokens of user {id}", done.body.revoked);
            out.done(&done, &message);
        }
        AdminCommand::Well(cmd) => service(&c, out, Service::Well, cmd).await?,
        AdminCommand::Factory(cmd) => service(&c, out, Service::Factory, cmd).await?,
        AdminCommand::Hold => {
            let done = (c.post::<HoldState, _>(path::ADMIN_HOLD, &Hold { held: true })).await?;
            out.done(&done, "new leases are held");
        }
        AdminCommand::Unhold => {
            let done = (c.post::<HoldState, _>(path::ADMIN_HOLD, &Hold { held: false })).await?;
            out.done(&done, "new leases are granted again");
        }
        AdminCommand::Resource(ResourceCommand::List) => {
            let resources = c.get::<Vec<ResourceView>>(path::ADMIN_RESOURCES).await?;
            // Wells by name, when the caller may list them (`admin.registry`).
            let wells: std::collections::BTreeMap<WellId, String> =
                (c.get::<Vec<WellView>>(path::ADMIN_WELLS).await)
                    .map(|w| w.body.into_iter().map(|w| (w.id, w.name)).collect())
                    .unwrap_or_default();
            let header = ["ID", "JOB", "TYPE", "WELL", "STATE", "REASON"];
            out.table(&resources, &header, |r| {
                vec![
                    r.id.0.to_string(),
                    r.job.0.to_string(),
                    r.rtype.to_string(),
                    (wells.get(&r.well)).map_or_else(|| r.well.0.to_string(), Clone::clone),
                    cell(&r.state),
                    r.reason.clone().unwrap_or_default(),
                ]
            });
        }
        AdminCommand::Resource(ResourceCommand::Release { id }) => {
            let release = path::admin_resource_release(ResourceId(id));
            let done = c.post_empty::<Released>(&release).await?;
            let message = format!("resource #{id} goes back to its well for destruction");
            out.done(&done, &message);
        }
    }
    Ok(())
}

async fn change_privileges(
    c: &Client,
    out: Output,
    id: UserId,
    change: &PrivilegeChange,
) -> Result<()> {
    let path = path::admin_user_privileges(id);
    let user = c.post::<UserView, _>(&path, change).await?;
    let message = format!("user {} now holds {}", id.0, cell(&user.body.privileges));
    out.done(&user, &message);
    Ok(())
}

/// Which of the two kinds of service a command is about.
#[derive(Clone, Copy)]
enum Service {
    Well,
    Factory,
}

impl Service {
    fn noun(self) -> &'static str {
        match self {
            Service::Well => "well",
            Service::Factory => "factory",
        }
    }

    /// The path of the tokens of the one numbered `id`.
    fn tokens(self, id: u32) -> String {
        match self {
            Service::Well => path::admin_well_tokens(WellId(id)),
            Service::Factory => path::admin_factory_tokens(FactoryId(id)),
        }
    }
}

/// When a well or factory last called, as a span ago.
fn contact(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "not since the server started".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    format!(
        "{} ago",
        aquifer_protocol::story::span(now.saturating_sub(ms))
    )
}

/// Wells and factories are listed, registered and given tokens alike.
async fn service(c: &Client, out: Output, kind: Service, cmd: ServiceCommand) -> Result<()> {
    let header = ["ID", "NAME", "CAPACITY", "LAST CONTACT"];
    match (kind, cmd) {
        (Service::Well, ServiceCommand::List) => {
            let wells = c.get::<Vec<WellView>>(path::ADMIN_WELLS).await?;
            out.table(&wells, &header, |w| {
                let last = contact(w.last_contact_ms);
                vec![w.id.0.to_string(), w.name.clone(), slots(&w.pools), last]
            });
        }
        (Service::Factory, ServiceCommand::List) => {
            let factories = c.get::<Vec<FactoryView>>(path::ADMIN_FACTORIES).await?;
            out.table(&factories, &header, |f| {
                let last = contact(f.last_contact_ms);
                vec![f.id.0.to_string(), f.name.clone(), slots(&f.targets), last]
            });
        }
        (Service::Well, ServiceCommand::Create { name, capacity }) => {
            let pools = capacity.into_iter().map(|(k, n)| (TypeId::new(k), n));
            let pools = pools.collect();
            let body = NewWell { name, pools };
            register::<WellId>(c, out, path::ADMIN_WELLS, &body.name, &body).await?;
        }
        (Service::Factory, ServiceCommand::Create { name, capacity }) => {
            let targets = capacity.into_iter().map(|(k, n)| (TargetId::new(k), n));
            let targets = targets.collect();
            let body = NewFactory { name, targets };
            register::<FactoryId>(c, out, path::ADMIN_FACTORIES, &body.name, &body).await?;
        }
        (kind, ServiceCommand::Token { id }) => {
            let made = c.post_empty::<IssuedToken>(&kind.tokens(id)).await?;
            out.token(&made, &made.body.token, &format!("a new token for {id}"));
        }
        (kind, ServiceCommand::RevokeTokens { id }) => {
            let done = c.delete::<Revoked>(&kind.tokens(id)).await?;
            let message = format!(
                "revoked {} tokens of {} {id}",
                done.body.revoked,
                kind.noun()
            );
            out.done(&done, &message);
        }
    }
    Ok(())
}

/// Registers a well or a factory (`I`, its id) and shows its token.
async fn register<I: DeserializeOwned + std::fmt::Display>(
    c: &Client,
    out: Output,
    path: &str,
    name: &str,
    body: &impl Serialize,
) -> Result<()> {
    let made = c.post::<Registered<I>, _>(path, body).await;
    let made = made.with_context(|| format!("registering {name}"))?;
    let message = format!("{name} is {}", made.body.id);
    out.token(&made, &made.body.token, &message);
    Ok(())
}

/// Capacities as `name free/capacity free`, one per pool or target.
fn slots<K: std::fmt::Display>(capacity: &BTreeMap<K, Slots>) -> String {
    (capacity.iter())
        .map(|(k, s)| format!("{k} {}/{} free", s.free, s.capacity))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    /// A list as a table, or as the server's JSON.
    fn table<T>(self, list: &Answer<Vec<T>>, header: &[&str], row: impl Fn(&T) -> Vec<String>) {
        println!(
            "{}",
            list.show(self.json, |items| render(
                header,
                items.iter().map(row).collect()
            ))
        );
    }

    fn done<T>(self, answer: &Answer<T>, message: &str) {
        println!("{}", answer.show(self.json, |_| message.to_string()));
    }

    /// A new token: shown once, so it goes to stdout on its own line.
    fn token<T>(self, answer: &Answer<T>, token: &str, message: &str) {
        if self.json {
            println!("{}", answer.json);
        } else {
            eprintln!("{message}; its token (shown once) is:");
            println!("{token}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn capacities_read_as_name_equals_count() {
        assert_eq!(super::parse_capacity("pg=2"), Ok(("pg".into(), 2)));
        assert!(super::parse_capacity("pg").is_err());
        assert!(super::parse_capacity("pg=-1").is_err());
    }
}
