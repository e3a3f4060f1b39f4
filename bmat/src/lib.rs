//! bmat: the command a job's scripts run to read the job's resources
//! (`bmat resource list`, `bmat resource get NAME [KEY]`) and to read and
//! set its store (`bmat store get KEY`, `bmat store put KEY [VALUE]`). It
//! talks to the server with the job token the agent puts in its
//! environment.
//!
//! Exit codes: 0 done; 1 the lookup failed (no such resource or key, the
//! job has ended, the server could not be asked); 2 bmat was used wrongly
//! (bad arguments, or run outside a job).

pub mod api;

use api::Failure;
use aquifer_protocol::agent::{JobResource, JobResources};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bmat",
    version,
    about = "Read this job's resources and store (run inside an aquifer job)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The job's resources.
    #[command(subcommand)]
    Resource(Resource),
    /// The job's store: values set at submission or by earlier tasks.
    #[command(subcommand)]
    Store(Store),
}

#[derive(Subcommand)]
enum Store {
    /// Prints one value bare, for scripts: `"$(bmat store get commit)"`.
    Get { key: String },
    /// Sets a value for the job's later tasks (from stdin when VALUE is
    /// left out). A secret one is never shown outside the job and is
    /// deleted when it ends.
    Put {
        key: String,
        value: Option<String>,
        #[arg(long)]
        secret: bool,
    },
    /// Lists the keys, marking the secret ones.
    List,
}

#[derive(Subcommand)]
enum Resource {
    /// Lists the job's resources: name, type and metadata keys.
    List {
        /// Print the server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prints a resource's metadata as JSON, or one value (metadata or
    /// secret) bare, for scripts: `psql "$(bmat resource get db url)"`.
    Get {
        /// The resource's name in the job file (`NAME/0`, `NAME/1`, ... for a count above 1).
        name: String,
        /// One key of its metadata or secrets.
        key: Option<String>,
    },
}

/// Runs `bmat` with this process's arguments. The `bmat` binary is this;
/// the `aquifer` binary runs it too when invoked under the name `bmat`
/// (the agent links it so when no `bmat` binary is installed).
#[must_use]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&Failure::Lookup(format!("cannot start: {e}"))),
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`bmat ... | head`) is not bmat's failure.
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush());
            ExitCode::SUCCESS
        }
        Err(f) => fail(&f),
    }
}

fn fail(f: &Failure) -> ExitCode {
    eprintln!("bmat: {f}");
    ExitCode::from(f.exit_code())
}

/// Runs the command; returns what to print.
async fn execute(command: Command) -> Result<String, Failure> {
    let api = api::from_env()?;
    match command {
        Command::Resource(Resource::List { json }) => {
            let listing = api.job_resources().await?;
            if json {
                return pretty(&listing);
            }
            Ok(table(&listing))
        }
        Command::Resource(Resource::Get { name, key: None }) => {
            let r = api.job_resource(&name).await?;
            pretty(&r.metadata)
        }
        Command::Resource(Resource::Get {
            name,
            key: Some(key),
        }) => {
            let r = api.job_resource(&name).await?;
            lookup(&r, &key).map(|v| format!("{v}\n"))
        }
        Command::Store(Store::Get { key }) => {
            let v = api.job_store_get(&key).await?;
            Ok(format!("{}\n", v.value))
        }
        Command::Store(Store::Put { key, value, secret }) => {
            let value = match value {
                Some(v) => v,
                None => {
                    let mut v = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut v).map_err(|e| {
                        Failure::Usage(format!("cannot read the value from stdin: {e}"))
                    })?;
                    v
                }
            };
            let value = aquifer_protocol::jobs::StoreValue { value, secret };
            api.job_store_put(&key, &value).await?;
            Ok(String::new())
        }
        Command::Store(Store::List) => {
            let keys = api.job_store().await?;
            Ok((keys.keys.iter())
                .map(|(k, secret)| {
                    if *secret {
                        format!("{k} (secret)\n")
                    } else {
                        format!("{k}\n")
                    }
                })
                .collect())
        }
    }
}

fn pretty(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Failure::Lookup(e.to_string()))
}

/// A value from the metadata, else from the secrets.
fn lookup(resource: &JobResource, key: &str) -> Result<String, Failure> {
    let secrets = resource.secrets.clone().unwrap_or_default();
    if let Some(v) = resource.metadata.get(key).or_else(|| secrets.get(key)) {
        return Ok(v.clone());
    }
    let name = &resource.name;
    let mut keys: Vec<&str> = (resource.metadata.keys().chain(secrets.keys()))
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let known = if keys.is_empty() {
        "none".to_string()
    } else {
        keys.join(", ")
    };
    Err(Failure::Lookup(format!(
        "resource {name:?} has no key {key:?}; it has: {known}"
    )))
}

/// Name, type and metadata keys, in aligned columns.
fn table(listing: &JobResources) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "TYPE".to_string(),
        "METADATA".to_string(),
    ]];
    for r in &listing.resources {
        let keys: Vec<&str> = r.metadata.keys().map(String::as_str).collect();
        rows.push([
            r.name.clone(),
            r.rtype.to_string(),
            if keys.is_empty() {
                "-".to_string()
            } else {
                keys.join(", ")
            },
        ]);
    }
    let mut widths = BTreeMap::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = widths.entry(i).or_insert(0);
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths.get(&i).copied().unwrap_or(0) + 2;
                out.push_str(&format!("{cell:<pad$}"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("the protocol's shape")
    }

    #[test]
    fn the_table_lists_names_types_and_keys() {
        let listing: JobResources = read(json!({"resources": [
            {"name": "db", "rtype": "postgres", "resource": 1, "metadata": {"host": "h", "port": "5432"}},
            {"name": "probe/0", "rtype": "lab-probe", "resource": 2, "metadata": {}}
        ]}));
        assert_eq!(
            table(&listing),
            "NAME     TYPE       METADATA\n\
             db       postgres   host, port\n\
             probe/0  lab-probe  -\n"
        );
        assert_eq!(table(&JobResources::default()), "NAME  TYPE  METADATA\n");
    }

    #[test]
    fn keys_are_looked_up_in_metadata_then_secrets() {
        let r: JobResource = read(json!({"name": "db", "rtype": "postgres", "resource": 1,
            "metadata": {"host": "h"}, "secrets": {"password": "p"}}));
        assert_eq!(lookup(&r, "host").ok(), Some("h".to_string()));
        assert_eq!(lookup(&r, "password").ok(), Some("p".to_string()));
        let err = lookup(&r, "port").expect_err("no port");
        assert_eq!(err.exit_code(), 1);
        assert_eq!(
            err.to_string(),
            "resource \"db\" has no key \"port\"; it has: host, password"
        );
    }
}
