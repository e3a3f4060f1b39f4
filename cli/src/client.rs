//! The HTTP client the user and admin commands share: the server's URL and
//! a token, JSON in and out, and the API's errors as readable messages.

use anyhow::{Context, Result, bail};
use aquifer_protocol::Kind;
use aquifer_protocol::client::Method;
use serde_json::Value;
use std::time::Duration;

/// Where the server is and who we are, from flags or the environment.
#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// The server's base URL.
    #[arg(
        long,
        env = "AQUIFER_URL",
        default_value = "http://127.0.0.1:8440",
        global = true
    )]
    pub url: String,
    /// An API token (a user's, or the bootstrap token for admin commands).
    #[arg(long, env = "AQUIFER_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The user and admin commands' view of the one client: JSON values in
/// and out, failures as readable `anyhow` errors. Reads are retried through
/// a server restart for up to `PATIENCE`; a submission is retried only when
/// the server surely did not take it.
pub struct Client {
    inner: aquifer_protocol::Client,
}

/// How long a command keeps trying a server that does not answer.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

impl Client {
    pub fn new(endpoint: &Endpoint) -> Result<Client> {
        let Some(token) = endpoint.token.clone() else {
            bail!("no token: pass --token or set AQUIFER_TOKEN");
        };
        let inner = aquifer_protocol::Client::new(&endpoint.url, Some(token))
            .context("building the HTTP client")?
            .with_patience(Some(PATIENCE));
        Ok(Client { inner })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self.inner.get(path).await?)
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value> {
        let body = body.unwrap_or_else(|| Value::Object(Default::default()));
        Ok(self.inner.post(path, &body).await?)
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        let (kind, method) = (Kind::Once, Method::DELETE);
        let none: Option<&Value> = None;
        Ok(self
            .inner
            .call(kind, method, path, none, Duration::ZERO)
            .await?)
    }
}
