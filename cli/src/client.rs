//! The HTTP client the user and admin commands share: the server's URL and
//! a token, JSON in and out, and the API's errors as readable messages.

use anyhow::{Context, Result, bail};
use serde_json::Value;

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

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(endpoint: &Endpoint) -> Result<Client> {
        let Some(token) = endpoint.token.clone() else {
            bail!("no token: pass --token or set AQUIFER_TOKEN");
        };
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .context("building the HTTP client")?,
            base: endpoint.url.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value> {
        self.call(reqwest::Method::POST, path, body).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let body: Value = serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: {status}, and the answer is not JSON"))?;
        if status.is_success() {
            return Ok(body);
        }
        let code = body["code"].as_str().unwrap_or("error");
        let message = body["message"].as_str().unwrap_or("");
        bail!("{message} ({code}, HTTP {})", status.as_u16())
    }
}
