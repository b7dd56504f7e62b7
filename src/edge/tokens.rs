//! Enrollment tokens at the edge: calls to the token authority object, and the admin routes
//! `/api/v1/enrollment-tokens` (authorised by `admin::handle` before they get here).

use super::{fixed, json, json_error};
use crate::objects::tokens::{Attempt, IssueLogin, Issued, NewEnrollToken, Release, Stage, TokenUse, TokenVerdict};
use crate::objects::{self, kv};
use crate::tokens::{RateLimit, TokenError};
use crate::users;
use serde::Deserialize;
use worker::*;

const MAX_JSON_BYTES: usize = 16 * 1024;
/// Longest lifetime of an admin enrollment token: 90 days.
pub const MAX_ENROLL_TOKEN_SECS: u64 = 90 * 86_400;
pub const MAX_ENROLL_TOKEN_USES: u32 = 100_000;

fn stub(env: &Env) -> Result<Stub> {
    env.durable_object(objects::tokens::BINDING)?.get_by_name(objects::tokens::INSTANCE)
}

/// Checks (policy) or consumes (enrollment) a token presented as the DeviceEnrollmentUserToken
/// or typed on the sign-in page; `Ok(Err(_))` is a refusal, `Err(_)` a failure on our side.
pub async fn use_token(
    env: &Env,
    token: &str,
    stage: Stage,
    device_id: Option<&str>,
    email: Option<&str>,
) -> Result<std::result::Result<String, TokenError>> {
    // Shape checks that need no key save a round trip for garbage.
    if token.is_empty() || token.len() > crate::tokens::MAX_TOKEN_LEN {
        return Ok(Err(TokenError::Malformed("length")));
    }
    let body = TokenUse {
        token: token.to_string(),
        stage,
        device_id: device_id.map(str::to_string),
        email: email.map(str::to_string),
    };
    let reply = objects::call(&stub(env)?, Method::Post, "/token", Some(&body)).await?;
    if reply.status != 200 && reply.status != 401 {
        return Err(Error::RustError(format!("token authority answered {}", reply.status)));
    }
    let verdict: TokenVerdict = reply.json()?;
    Ok(match (verdict.sub, verdict.error) {
        (Some(sub), None) if reply.status == 200 => Ok(sub),
        (_, e) => Err(TokenError::from_code(e.as_deref().unwrap_or(""))),
    })
}

/// Issues a login token for a user who just signed in, giving back the attempt's counts.
pub async fn issue_login(env: &Env, sub: &str, dev: Option<&str>, ttl_secs: u32, release: &[String]) -> Result<Issued> {
    let body = IssueLogin { sub: sub.into(), dev: dev.map(str::to_string), ttl_secs: ttl_secs.into(), release: release.to_vec() };
    let reply = objects::call(&stub(env)?, Method::Post, "/login", Some(&body)).await?;
    if !reply.ok() {
        return Err(Error::RustError(format!("token authority answered {}", reply.status)));
    }
    reply.json()
}

/// Counts a sign-in attempt against every key; `false` when one of them is at its limit.
pub async fn admit_attempt(env: &Env, keys: &[String], limit: RateLimit) -> Result<bool> {
    let reply = objects::call(&stub(env)?, Method::Post, "/attempt", Some(&Attempt { keys: keys.to_vec(), limit })).await?;
    match reply.status {
        200 => Ok(true),
        429 => Ok(false),
        s => Err(Error::RustError(format!("token authority answered {s}"))),
    }
}

/// Gives back the attempt of a sign-in that succeeded.
pub async fn release_attempt(env: &Env, keys: &[String]) -> Result<()> {
    let reply = objects::call(&stub(env)?, Method::Post, "/release", Some(&Release { keys: keys.to_vec() })).await?;
    if !reply.ok() {
        return Err(Error::RustError(format!("token authority answered {}", reply.status)));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    email: String,
    expires_in_seconds: Option<u64>,
    uses: Option<u32>,
}

fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `/api/v1/enrollment-tokens[/<id>]`: create (POST), list (GET), revoke (DELETE).
pub async fn admin(mut req: Request, env: &Env, method: Method, rest: &[&str]) -> Result<Response> {
    let stub = stub(env)?;
    match (method, rest) {
        (Method::Post, []) => {
            let bytes = req.bytes().await.unwrap_or_default();
            if bytes.len() > MAX_JSON_BYTES {
                return json_error(413, "body too large");
            }
            let new: NewToken = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => return json_error(400, &format!("invalid JSON: {e}")),
            };
            let email = users::normalize_email(&new.email);
            if !users::valid_email(&email) {
                return json_error(400, "email is not a valid address");
            }
            let expires_in_seconds = new.expires_in_seconds.unwrap_or(86_400);
            if !(1..=MAX_ENROLL_TOKEN_SECS).contains(&expires_in_seconds) {
                return json_error(400, &format!("expires_in_seconds must be from 1 to {MAX_ENROLL_TOKEN_SECS}"));
            }
            let uses = new.uses.unwrap_or(1);
            if !(1..=MAX_ENROLL_TOKEN_USES).contains(&uses) {
                return json_error(400, &format!("uses must be from 1 to {MAX_ENROLL_TOKEN_USES}"));
            }
            if kv::get_user(&kv::store(env)?, &email).await?.is_none() {
                return json_error(400, "no user with this email");
            }
            let body = NewEnrollToken { email, expires_in_seconds, uses };
            let reply = objects::call(&stub, Method::Post, "/enrollment-tokens", Some(&body)).await?;
            if !reply.ok() {
                return json_error(500, "the token authority refused the token");
            }
            fixed(201, "application/json; charset=utf-8", reply.body)
        }
        (Method::Get, []) => {
            let reply = objects::call::<()>(&stub, Method::Get, "/enrollment-tokens", None).await?;
            fixed(reply.status, "application/json; charset=utf-8", reply.body)
        }
        (Method::Delete, [id]) => {
            if !valid_id(id) {
                return json_error(400, "malformed enrollment token id");
            }
            let reply = objects::call::<()>(&stub, Method::Delete, &format!("/enrollment-tokens/{id}"), None).await?;
            match reply.status {
                200 => fixed(204, "text/plain", Vec::new()),
                404 => json_error(404, "no such enrollment token"),
                s => json(500, &serde_json::json!({ "error": format!("token authority answered {s}") })),
            }
        }
        _ => json_error(404, "no such admin route"),
    }
}
