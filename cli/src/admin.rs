//! `aquifer admin ...`: users, privileges and tokens; types and targets;
//! wells and factories; the lease hold and held resources.

use crate::client::{Client, Endpoint};
use crate::table::{cell, render};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

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
    List,
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
    List,
    Create {
        name: String,
        #[arg(long)]
        privilege: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    List,
    /// Make a user; prints their first token, once.
    Create {
        name: String,
        #[arg(long = "privilege")]
        privileges: Vec<String>,
    },
    Grant {
        id: u64,
        privileges: Vec<String>,
    },
    Revoke {
        id: u64,
        privileges: Vec<String>,
    },
    /// A new token for the user; prints it, once.
    Token {
        id: u64,
    },
    /// Revoke every token of the user.
    RevokeTokens {
        id: u64,
    },
}

#[derive(clap::Subcommand)]
pub enum ServiceCommand {
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
    Token {
        id: u64,
    },
}

#[derive(clap::Subcommand)]
pub enum ResourceCommand {
    List,
    /// An operator has dealt with a held resource: its well tries again.
    Release {
        id: u64,
    },
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
        AdminCommand::Type(TypeCommand::List) => out.table(
            &c.get("/0/admin/types").await?,
            &[
                ("NAME", "name"),
                ("MAX PER JOB", "max_per_job"),
                ("PRIVILEGE", "privilege"),
            ],
        ),
        AdminCommand::Type(TypeCommand::Create {
            name,
            max_per_job,
            privilege,
        }) => {
            let body = json!({"name": name, "max_per_job": max_per_job, "privilege": privilege});
            out.done(
                &c.post("/0/admin/types", Some(body)).await?,
                &format!("type {name} defined"),
            );
        }
        AdminCommand::Target(TargetCommand::List) => out.table(
            &c.get("/0/admin/targets").await?,
            &[("NAME", "name"), ("PRIVILEGE", "privilege")],
        ),
        AdminCommand::Target(TargetCommand::Create { name, privilege }) => {
            let body = json!({"name": name, "privilege": privilege});
            out.done(
                &c.post("/0/admin/targets", Some(body)).await?,
                &format!("target {name} defined"),
            );
        }
        AdminCommand::User(UserCommand::List) => out.table(
            &c.get("/0/admin/users").await?,
            &[("ID", "id"), ("NAME", "name"), ("PRIVILEGES", "privileges")],
        ),
        AdminCommand::User(UserCommand::Create { name, privileges }) => {
            let made = c
                .post(
                    "/0/admin/users",
                    Some(json!({"name": name, "privileges": privileges})),
                )
                .await?;
            out.token(&made, &format!("user {name} is {}", cell(&made["id"])));
        }
        AdminCommand::User(UserCommand::Grant { id, privileges }) => {
            let body = json!({"grant": privileges});
            change_privileges(&c, out, id, body).await?;
        }
        AdminCommand::User(UserCommand::Revoke { id, privileges }) => {
            let body = json!({"revoke": privileges});
            change_privileges(&c, out, id, body).await?;
        }
        AdminCommand::User(UserCommand::Token { id }) => {
            let made = c.post(&format!("/0/admin/users/{id}/tokens"), None).await?;
            out.token(&made, &format!("a new token for user {id}"));
        }
        AdminCommand::User(UserCommand::RevokeTokens { id }) => {
            let done = c.delete(&format!("/0/admin/users/{id}/tokens")).await?;
            out.done(
                &done,
                &format!("revoked {} tokens of user {id}", cell(&done["revoked"])),
            );
        }
        AdminCommand::Well(cmd) => service(&c, out, "wells", "pools", cmd).await?,
        AdminCommand::Factory(cmd) => service(&c, out, "factories", "targets", cmd).await?,
        AdminCommand::Hold => {
            let done = c.post("/0/admin/hold", Some(json!({"held": true}))).await?;
            out.done(&done, "new leases are held");
        }
        AdminCommand::Unhold => {
            let done = c
                .post("/0/admin/hold", Some(json!({"held": false})))
                .await?;
            out.done(&done, "new leases are granted again");
        }
        AdminCommand::Resource(ResourceCommand::List) => out.table(
            &c.get("/0/admin/resources").await?,
            &[
                ("ID", "id"),
                ("JOB", "job"),
                ("TYPE", "rtype"),
                ("WELL", "well"),
                ("STATE", "state"),
            ],
        ),
        AdminCommand::Resource(ResourceCommand::Release { id }) => {
            let done = c
                .post(&format!("/0/admin/resources/{id}/release"), None)
                .await?;
            out.done(
                &done,
                &format!("resource #{id} goes back to its well for destruction"),
            );
        }
    }
    Ok(())
}

async fn change_privileges(c: &Client, out: Output, id: u64, body: Value) -> Result<()> {
    let user = c
        .post(&format!("/0/admin/users/{id}/privileges"), Some(body))
        .await?;
    out.done(
        &user,
        &format!("user {id} now holds {}", cell(&user["privileges"])),
    );
    Ok(())
}

/// Wells and factories share a shape: a name, capacities, a token.
async fn service(
    c: &Client,
    out: Output,
    plural: &str,
    field: &str,
    cmd: ServiceCommand,
) -> Result<()> {
    match cmd {
        ServiceCommand::List => {
            let list = c.get(&format!("/0/admin/{plural}")).await?;
            if out.json {
                println!("{list}");
                return Ok(());
            }
            let rows = (list.as_array().into_iter().flatten())
                .map(|s| {
                    let caps: Vec<String> = (s[field].as_object().into_iter().flatten())
                        .map(|(k, v)| format!("{k} {}/{} free", cell(&v[1]), cell(&v[0])))
                        .collect();
                    vec![cell(&s["id"]), cell(&s["name"]), caps.join(", ")]
                })
                .collect();
            println!("{}", render(&["ID", "NAME", "CAPACITY"], rows));
        }
        ServiceCommand::Create { name, capacity } => {
            let caps: Map<String, Value> =
                capacity.into_iter().map(|(k, n)| (k, json!(n))).collect();
            let made = c
                .post(
                    &format!("/0/admin/{plural}"),
                    Some(json!({"name": name, field: caps})),
                )
                .await
                .with_context(|| format!("registering {name}"))?;
            out.token(
                &made,
                &format!(
                    "{name} is {} {}",
                    plural.trim_end_matches('s'),
                    cell(&made["id"])
                ),
            );
        }
        ServiceCommand::Token { id } => {
            let made = c
                .post(&format!("/0/admin/{plural}/{id}/tokens"), None)
                .await?;
            out.token(&made, &format!("a new token for {id}"));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn table(self, list: &Value, columns: &[(&str, &str)]) {
        if self.json {
            println!("{list}");
            return;
        }
        let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
        let rows = (list.as_array().into_iter().flatten())
            .map(|item| columns.iter().map(|(_, k)| cell(&item[*k])).collect())
            .collect();
        println!("{}", render(&header, rows));
    }

    fn done(self, answer: &Value, message: &str) {
        if self.json {
            println!("{answer}");
        } else {
            println!("{message}");
        }
    }

    /// A new token: shown once, so it goes to stdout on its own line.
    fn token(self, answer: &Value, message: &str) {
        if self.json {
            println!("{answer}");
        } else {
            eprintln!("{message}; its token (shown once) is:");
            println!("{}", cell(&answer["token"]));
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
