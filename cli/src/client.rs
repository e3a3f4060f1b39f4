//! The HTTP client the user and admin commands share: the server's URL and
//! a token, the protocol's requests and answers, and the API's errors as
//! readable messages.

use anyhow::{Context, Result, bail};
use aquifer_protocol::client::Method;
use aquifer_protocol::{Empty, Kind};
use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// An answer twice over: the JSON as the server sent it, which `--json`
/// prints (every field, a newer server's too), and the protocol's type,
/// which tables and messages read.
pub struct Answer<T> {
    pub json: Value,
    pub body: T,
}

impl<T> Answer<T> {
    /// The JSON with `--json`, else the message `text` makes of the body.
    pub fn show(&self, json_out: bool, text: impl FnOnce(&T) -> String) -> String {
        if json_out {
            self.json.to_string()
        } else {
            text(&self.body)
        }
    }
}

/// The user and admin commands' view of the one client: protocol types
/// in and out, failures as readable `anyhow` errors (a refusal keeps its
/// `CallError`, for callers that act on the code). Reads are retried
/// through a server restart for up to `PATIENCE`; a submission is retried
/// only when the server surely did not take it.
pub struct Client {
    inner: aquifer_protocol::Client,
}

/// How long a command keeps trying a server that does not answer.
const PATIENCE: Duration = Duration::from_secs(30);

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

    /// The protocol's client, for what this wrapper does not say more
    /// about (files sent and received).
    #[must_use]
    pub fn inner(&self) -> &aquifer_protocol::Client {
        &self.inner
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>> {
        typed(path, self.inner.get(path).await?)
    }

    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Answer<T>> {
        typed(path, self.inner.post(path, body).await?)
    }

    /// A POST that carries nothing (`{}`).
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>> {
        self.post(path, &Empty {}).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>> {
        let none: Option<&Empty> = None;
        let json = (self.inner)
            .call(Kind::Once, Method::DELETE, path, none, Duration::ZERO)
            .await?;
        typed(path, json)
    }
}

fn typed<T: DeserializeOwned>(path: &str, json: Value) -> Result<Answer<T>> {
    let body = T::deserialize(&json)
        .with_context(|| format!("the server's answer to {path} makes no sense: {json}"))?;
    Ok(Answer { json, body })
}
