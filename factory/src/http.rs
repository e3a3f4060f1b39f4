//! The HTTP client the factory runner and the agent share: JSON in and
//! out, a bearer token, the server's `{code, message}` errors kept apart
//! from transport failures so callers can tell "retry" from "give up".

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long an ordinary call may take; long-polls add their wait to it.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server answered with an error status.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: refused connection, reset, timeout.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// An answer that is not what the protocol says.
    #[error("the server's answer makes no sense: {0}")]
    BadAnswer(String),
}

impl CallError {
    #[must_use]
    pub fn refused(status: u16, code: &str, message: &str) -> CallError {
        CallError::Refused {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Whether the same call may succeed later: the server could not
    /// record a decision (503, nothing changed), a proxy in front of it
    /// failed, or the server could not be reached.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Refused { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            CallError::Transport(_) => true,
            CallError::BadAnswer(_) => false,
        }
    }

    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            CallError::Transport(_) | CallError::BadAnswer(_) => None,
        }
    }

    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Refused { code, .. } => Some(code),
            CallError::Transport(_) | CallError::BadAnswer(_) => None,
        }
    }
}

/// A server and, once known, the token to call it with.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Api {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish()
    }
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Api, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CallError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// The same server and connections, another token.
    #[must_use]
    pub fn with_token(&self, token: String) -> Api {
        Api {
            token: Some(token),
            ..self.clone()
        }
    }

    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.call(reqwest::Method::GET, path, None::<&()>, Duration::ZERO)
            .await
    }

    /// A GET that the server may hold for up to `wait` (a long-poll).
    pub async fn get_waiting<T: DeserializeOwned>(
        &self,
        path: &str,
        wait: Duration,
    ) -> Result<T, CallError> {
        self.call(reqwest::Method::GET, path, None::<&()>, wait)
            .await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        self.call(reqwest::Method::POST, path, Some(body), Duration::ZERO)
            .await
    }

    /// A POST that the server may hold for up to `wait` (a lease request).
    pub async fn post_waiting<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        wait: Duration,
    ) -> Result<T, CallError> {
        self.call(reqwest::Method::POST, path, Some(body), wait)
            .await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.call(reqwest::Method::DELETE, path, None::<&()>, Duration::ZERO)
            .await
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        wait: Duration,
    ) -> Result<T, CallError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(CALL_TIMEOUT.saturating_add(wait));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Transport(describe(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CallError::Transport(describe(&e)))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| CallError::BadAnswer(format!("{path}: {e}")));
        }
        // Errors are `{code, message}`; a proxy's error page is not, and
        // still has a status worth acting on.
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Err(CallError::Refused {
            status: status.as_u16(),
            code: body["code"].as_str().unwrap_or("error").to_string(),
            message: body["message"]
                .as_str()
                .map_or_else(|| format!("{path} failed"), str::to_string),
        })
    }
}

/// reqwest's error with its causes, which say what actually went wrong.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
