//! A token for a job user, minted through the OAuth device flow: Oxide has
//! no call that makes a token for another user, so the well logs in as
//! the user (a console session), asks for a device code, confirms it as
//! that user, collects the token, and ends the session.

use super::api::{Connector, Failure, OxideError, Retry, read_stream, session_cookie};
use chrono::{DateTime, Utc};
use oxide::prelude::*;
use oxide::types::{
    DeviceAccessTokenRequest, DeviceAuthRequest, DeviceAuthVerify, UsernamePasswordCredentials,
};
use serde::Deserialize;
use std::num::NonZeroU32;

/// The grant type of RFC 8628, the only one `/device/token` takes.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The device flow's answers are small; anything bigger is not one.
const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// A token and when it stops working.
pub struct Minted {
    pub token: String,
    pub expires: Option<DateTime<Utc>>,
}

/// The answer of `/device/auth` (untyped in the generated client).
#[derive(Deserialize)]
struct DeviceAuth {
    device_code: String,
    user_code: String,
}

/// The answer of `/device/token` (untyped in the generated client).
#[derive(Deserialize)]
struct Grant {
    access_token: String,
    #[serde(default)]
    time_expires: Option<DateTime<Utc>>,
}

/// Mints a token that lives `ttl_s` seconds for the local user `username`
/// of `silo`, whose password is `password`.
pub async fn mint(
    connector: &Connector,
    retry: Retry,
    silo: &str,
    username: &str,
    password: &str,
    ttl_s: NonZeroU32,
) -> Result<Minted, OxideError> {
    let anon = connector.anonymous()?;
    let session = login(connector, retry, silo, username, password).await?;
    let as_user = connector.with_session(&session)?;
    let minted = device_flow(&anon, &as_user, retry, username, ttl_s).await;
    // The session served only to confirm; whatever happened, end it, so
    // the token is the user's one credential. A failure here leaves a
    // session that the destroy's logout of the user revokes.
    if let Err(e) = as_user.logout().send().await {
        let e = OxideError::from_api(&format!("logging {username} out"), e).await;
        tracing::warn!(error = %e, "oxide: the login session was not ended");
    }
    minted
}

/// Logs `username` of `silo` in with `password`: the console session's
/// cookie value.
pub async fn login(
    connector: &Connector,
    retry: Retry,
    silo: &str,
    username: &str,
    password: &str,
) -> Result<String, OxideError> {
    let anon = connector.anonymous()?;
    let creds = UsernamePasswordCredentials {
        username: parse(username, "a user name")?,
        password: parse(password, "a password")?,
    };
    let step = format!("logging in as {username} in silo {silo}");
    let login = retry
        .call(&step, || {
            let creds = creds.clone();
            let anon = &anon;
            async move { anon.login_local().silo_name(silo).body(creds).send().await }
        })
        .await?;
    session_cookie(login.headers()).ok_or_else(|| {
        OxideError::new(
            &step,
            Failure::Protocol("no session cookie in the answer".into()),
        )
    })
}

/// Request, confirm, collect. A collection whose answer was lost has used
/// the code up (the next try is refused `invalid_grant`), so such a pass,
/// or one that ran out of retries, starts over with a new code; the
/// destroy revokes any token a lost answer carried. A lost confirmation
/// needs no new pass: see `device_pass`.
async fn device_flow(
    anon: &oxide::Client,
    as_user: &oxide::Client,
    retry: Retry,
    username: &str,
    ttl_s: NonZeroU32,
) -> Result<Minted, OxideError> {
    let client_id = uuid::Uuid::new_v4();
    let mut pass = 0;
    loop {
        match device_pass(anon, as_user, retry, client_id, username, ttl_s).await {
            Ok(m) => return Ok(m),
            Err(e) if pass < retry.retries && worth_another_pass(&e) => {
                tracing::debug!(error = %e, pass, "oxide: the device flow starts over");
                tokio::time::sleep(retry.backoff.wait_jittered(pass)).await;
                pass += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn worth_another_pass(e: &OxideError) -> bool {
    is_used_up(e) || e.is_transient()
}

/// The device code was used already: its token went to a call whose
/// answer was lost.
fn is_used_up(e: &OxideError) -> bool {
    matches!(&e.failure, Failure::Status { code: Some(c), .. } if c == "invalid_grant")
}

async fn device_pass(
    anon: &oxide::Client,
    as_user: &oxide::Client,
    retry: Retry,
    client_id: uuid::Uuid,
    username: &str,
    ttl_s: NonZeroU32,
) -> Result<Minted, OxideError> {
    let step = format!("asking for a device code for {username}");
    let request = DeviceAuthRequest {
        client_id,
        ttl_seconds: Some(ttl_s),
    };
    let answer = retry
        .call(&step, || {
            let request = request.clone();
            async move { anon.device_auth_request().body(request).send().await }
        })
        .await?;
    let auth: DeviceAuth = json(&step, answer).await?;

    let step = format!("confirming the device code as {username}");
    let verify = DeviceAuthVerify {
        user_code: auth.user_code,
    };
    let confirmed = retry
        .call(&step, || {
            let verify = verify.clone();
            async move { as_user.device_auth_confirm().body(verify).send().await }
        })
        .await;
    if let Err(e) = confirmed {
        // A retried confirmation may fail only because the first one,
        // whose answer was lost, went through: the token is then ready,
        // or was collected by a call whose answer was lost as well (a new
        // pass). Anything else is the confirmation's own failure.
        return match collect(anon, retry, client_id, &auth.device_code, username).await {
            Ok(m) => Ok(m),
            Err(c) if is_used_up(&c) => Err(c),
            Err(_) => Err(e),
        };
    }
    collect(anon, retry, client_id, &auth.device_code, username).await
}

async fn collect(
    anon: &oxide::Client,
    retry: Retry,
    client_id: uuid::Uuid,
    device_code: &str,
    username: &str,
) -> Result<Minted, OxideError> {
    let step = format!("collecting the token of {username}");
    let request = DeviceAccessTokenRequest {
        client_id,
        device_code: device_code.to_string(),
        grant_type: DEVICE_CODE_GRANT.into(),
    };
    let answer = retry
        .call(&step, || {
            let request = request.clone();
            async move { anon.device_access_token().body(request).send().await }
        })
        .await?;
    let grant: Grant = json(&step, answer).await?;
    Ok(Minted {
        token: grant.access_token,
        expires: grant.time_expires,
    })
}

async fn json<T: serde::de::DeserializeOwned>(
    step: &str,
    answer: oxide::ResponseValue<oxide::ByteStream>,
) -> Result<T, OxideError> {
    let body = read_stream(answer.into_inner(), ANSWER_BYTES_MAX)
        .await
        .map_err(|e| OxideError::new(step, Failure::Unreachable(e)))?;
    serde_json::from_slice(&body)
        .map_err(|e| OxideError::new(step, Failure::Protocol(format!("unexpected answer: {e}"))))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, OxideError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| {
        OxideError::new(
            format!("checking {what}"),
            Failure::Protocol(format!("not valid for the API: {e}")),
        )
    })
}
