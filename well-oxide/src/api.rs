//! How the oxide well talks to the Oxide API: clients that carry the well's
//! token or a user's console session, and the retry of calls that may
//! pass later.

pub use super::error::{ErrorBody, Failure, OxideError, chain, read_stream};
use aquifer_protocol::Backoff;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// Makes `oxide::Client`s for one rack: each carries one credential in
/// its default headers, so a call can never go out with the wrong one.
#[derive(Clone)]
pub struct Connector {
    host: String,
    /// Extra roots: the private CA a rack's certificate may chain to.
    certs: Vec<reqwest::Certificate>,
    request_timeout: Duration,
    connect_timeout: Duration,
    /// The client without credentials, made once: building a client (its
    /// TLS roots) costs more than most calls.
    anon: OnceLock<oxide::Client>,
}

impl Connector {
    pub fn new(
        host: &str,
        certs: Vec<reqwest::Certificate>,
        request_timeout: Duration,
        connect_timeout: Duration,
    ) -> Connector {
        Connector {
            host: host.trim_end_matches('/').to_string(),
            certs,
            request_timeout,
            connect_timeout,
            anon: OnceLock::new(),
        }
    }

    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A client that authenticates with an API token.
    pub fn with_token(&self, token: &str) -> Result<oxide::Client, OxideError> {
        self.client(Some((AUTHORIZATION, format!("Bearer {token}"))))
    }

    /// A client that authenticates with a console session (the value of
    /// the `session` cookie that a local login set).
    pub fn with_session(&self, session: &str) -> Result<oxide::Client, OxideError> {
        self.client(Some((COOKIE, format!("session={session}"))))
    }

    /// A client without credentials, for logins and the device flow's
    /// unauthenticated steps.
    pub fn anonymous(&self) -> Result<oxide::Client, OxideError> {
        if let Some(c) = self.anon.get() {
            return Ok(c.clone());
        }
        let c = self.client(None)?;
        // Two first callers may both build one; either will do.
        Ok(self.anon.get_or_init(|| c).clone())
    }

    fn client(
        &self,
        credential: Option<(reqwest::header::HeaderName, String)>,
    ) -> Result<oxide::Client, OxideError> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = credential {
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                OxideError::new(
                    "building a client",
                    Failure::Protocol("the credential is not a valid header value".into()),
                )
            })?;
            // Keeps the credential out of reqwest's Debug output.
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut b = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout);
        for cert in &self.certs {
            b = b.add_root_certificate(cert.clone());
        }
        let http = b
            .build()
            .map_err(|e| OxideError::new("building a client", Failure::Protocol(chain(&e))))?;
        Ok(oxide::Client::new_with_client(&self.host, http))
    }
}

/// The `session` cookie a local login set, if any.
#[must_use]
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let first = v.split(';').next()?.trim();
        let value = first.strip_prefix("session=")?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// How calls that may pass are tried again.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub retries: u32,
    pub backoff: Backoff,
}

impl Retry {
    /// Runs `f` until it succeeds, fails in a way that no retry fixes, or
    /// has failed `1 + retries` times.
    ///
    /// A call that changes something may have taken effect before its
    /// answer was lost; the callers of creating calls handle the
    /// "already exists" that a retry then meets.
    pub async fn call<T, E, F, Fut>(&self, step: &str, mut f: F) -> Result<T, OxideError>
    where
        E: ErrorBody,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, oxide::Error<E>>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let err = OxideError::from_api(step, e).await;
                    if attempt >= self.retries || !err.is_transient() {
                        return Err(err);
                    }
                    tracing::debug!(error = %err, attempt, "oxide: trying again");
                    tokio::time::sleep(self.backoff.wait_jittered(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// `call` for a deletion (or a stop): a 404 means the thing is gone
    /// already, which is what was wanted.
    pub async fn call_unless_gone<T, E, F, Fut>(&self, step: &str, f: F) -> Result<(), OxideError>
    where
        E: ErrorBody,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, oxide::Error<E>>>,
    {
        match self.call(step, f).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("session=abc123; Path=/; HttpOnly; SameSite=Lax"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
