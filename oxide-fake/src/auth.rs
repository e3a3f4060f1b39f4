//! The fake's logins, sessions, device flow and user calls: local login
//! sets a `session` cookie (204); the device flow answers untyped JSON as
//! Nexus does, and its confirmation must come from the user (a session or
//! a token); a token's lifetime is the one asked for, within the silo's
//! maximum.

use super::http::{Answer, Req, Resp, actor, bad, forbidden, not_found, page, unauthenticated};
use super::state::{Access, Cred, CredKind, DeviceRec, State};
use super::views;
use chrono::{DateTime, Utc};
use oxide::types::{
    DeviceAccessTokenRequest, DeviceAuthRequest, DeviceAuthVerify, SiloAuthSettings,
    UsernamePasswordCredentials,
};
use serde::Serialize;
use uuid::Uuid;

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A random secret with a recognisable prefix.
pub fn secret(prefix: &str) -> String {
    use rand::Rng as _;
    let bytes: [u8; 20] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

pub fn login(st: &mut State, req: &Req, silo: &str) -> Answer {
    let creds: UsernamePasswordCredentials = req.json()?;
    // Nexus answers a wrong silo, user or password alike, so as not to
    // tell which was wrong.
    let silo = st.silo_by(silo).ok_or_else(unauthenticated)?.id;
    let user = st
        .user_named(silo, &creds.username)
        .ok_or_else(unauthenticated)?;
    if user.password.as_deref() != Some(creds.password.as_str()) {
        return Err(unauthenticated());
    }
    let session = secret("");
    let cred = Cred {
        id: Uuid::new_v4(),
        kind: CredKind::Session,
        user: user.id,
        user_name: user.name.clone(),
        expires: None,
    };
    st.creds.insert(session.clone(), cred);
    let mut r = Resp::empty(204);
    r.set_cookie = Some(format!(
        "session={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400"
    ));
    Ok(r)
}

pub fn logout(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    if let Some(a) = st.authenticate(None, req.session.as_deref(), now)
        && let Some(s) = a.session
    {
        st.creds.remove(&s);
    }
    Ok(Resp::empty(204))
}

#[derive(Serialize)]
struct DeviceAuthResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: u16,
}

pub fn device_auth(st: &mut State, req: &Req) -> Answer {
    let r: DeviceAuthRequest = req.form()?;
    let rec = DeviceRec {
        device_code: secret("dc-"),
        user_code: secret("").chars().take(8).collect(),
        client_id: r.client_id,
        ttl_s: r.ttl_seconds.map(std::num::NonZeroU32::get),
        token: None,
    };
    let answer = DeviceAuthResponse {
        device_code: rec.device_code.clone(),
        user_code: rec.user_code.clone(),
        verification_uri: "https://fake.oxide.test/device/verify".into(),
        expires_in: 300,
    };
    st.devices.push(rec);
    Ok(Resp::json(200, &answer))
}

pub fn device_confirm(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let v: DeviceAuthVerify = req.json()?;
    let user = st.users.get(&a.user).ok_or_else(unauthenticated)?;
    let silo_max = st.silos.get(&a.silo).and_then(|s| s.token_max_ttl_s);
    let user_name = user.name.clone();
    let Some(d) = (st.devices.iter_mut()).find(|d| d.user_code == v.user_code && d.token.is_none())
    else {
        return Err(not_found("device authorization request", &v.user_code));
    };
    if let (Some(ttl), Some(max)) = (d.ttl_s, silo_max)
        && ttl > max
    {
        return Err(bad(&format!(
            "requested TTL {ttl} exceeds the silo's maximum of {max} seconds"
        )));
    }
    let expires = d
        .ttl_s
        .or(silo_max)
        .map(|s| now + chrono::Duration::seconds(i64::from(s)));
    let token = secret("oxide-token-");
    d.token = Some(token.clone());
    let cred = Cred {
        id: Uuid::new_v4(),
        kind: CredKind::Token,
        user: a.user,
        user_name,
        expires,
    };
    st.creds.insert(token, cred);
    Ok(Resp::empty(204))
}

#[derive(Serialize)]
struct Grant {
    access_token: String,
    token_type: &'static str,
    token_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_expires: Option<DateTime<Utc>>,
}

/// An OAuth error, as RFC 6749 shapes it (not Nexus's error body).
fn oauth(error: &str, description: &str) -> Resp {
    Resp::json(
        400,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

pub fn device_token(st: &mut State, req: &Req) -> Answer {
    let r: DeviceAccessTokenRequest = req.form()?;
    if r.grant_type != DEVICE_CODE_GRANT {
        return Err(oauth("unsupported_grant_type", "use the device code grant"));
    }
    let at = (st.devices.iter())
        .position(|d| d.device_code == r.device_code && d.client_id == r.client_id)
        .ok_or_else(|| oauth("invalid_grant", "unknown or used device code"))?;
    let Some(token) = st.devices[at].token.clone() else {
        return Err(oauth("authorization_pending", "not yet confirmed"));
    };
    st.devices.remove(at);
    let cred = st.creds.get(&token);
    let grant = Grant {
        token_type: "bearer",
        token_id: cred.map_or(Uuid::nil(), |c| c.id),
        time_expires: cred.and_then(|c| c.expires),
        access_token: token,
    };
    Ok(Resp::json(200, &grant))
}

pub fn me(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let user = st.users.get(&a.user).ok_or_else(unauthenticated)?;
    let admin = st.silo_access(&a, a.silo) == Access::Admin;
    Ok(Resp::json(200, &views::current_user(st, user, admin)))
}

pub fn auth_settings(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let max = st.silos.get(&a.silo).and_then(|s| s.token_max_ttl_s);
    let settings = SiloAuthSettings {
        device_token_max_ttl_seconds: max,
        silo_id: a.silo,
    };
    Ok(Resp::json(200, &settings))
}

pub fn users(st: &mut State, req: &Req, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    if st.silo_access(&a, a.silo) < Access::Read {
        return Err(forbidden());
    }
    let mut users: Vec<_> = (st.users.values())
        .filter(|u| u.silo == a.silo)
        .map(views::user)
        .collect();
    users.sort_by_key(|u| u.id);
    page(req, users, st.page_size)
}

pub fn user_logout(st: &mut State, req: &Req, id: &str, now: DateTime<Utc>) -> Answer {
    let a = actor(st, req, now)?;
    let target = id
        .parse::<Uuid>()
        .ok()
        .and_then(|id| st.users.get(&id))
        .ok_or_else(|| not_found("silo user", id))?;
    let allowed =
        a.fleet_admin || a.user == target.id || st.silo_access(&a, target.silo) == Access::Admin;
    if !allowed {
        return Err(forbidden());
    }
    let user = target.id;
    st.creds.retain(|_, c| c.user != user);
    Ok(Resp::empty(204))
}
