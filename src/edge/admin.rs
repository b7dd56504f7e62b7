//! The admin JSON API (`Authorization: Bearer <ADMIN_TOKEN>`) and the public CA download.

use super::{fixed, json, json_error};
use crate::config::Config;
use crate::enrollment::valid_device_id;
use crate::objects::{self, ca, kv, now_ms, random_bytes};
use crate::proto::soap::decode_base64;
use crate::time::format_timestamp;
use crate::users::{self, UserRecord};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use worker::*;

const MAX_JSON_BYTES: usize = 16 * 1024;

/// `GET /api/v1/ca`: the CA certificate in PEM, public (devices and admins need it).
pub async fn ca_certificate(env: &Env) -> Result<Response> {
    let stub = objects::ca_stub(env)?;
    let reply = objects::call::<()>(&stub, Method::Get, "/ca", None).await?;
    let ca: ca::CaCertificate = reply.json()?;
    let der = decode_base64(&ca.cert_b64).unwrap_or_default();
    fixed(200, "application/x-pem-file", crate::pki::to_pem("CERTIFICATE", &der))
}

fn authorized(req: &Request, cfg: &Config) -> Result<bool> {
    let Some(expected) = cfg.admin_token.as_deref() else {
        return Ok(false);
    };
    let given = req.headers().get("Authorization")?.unwrap_or_default();
    let Some(token) = given.strip_prefix("Bearer ") else {
        return Ok(false);
    };
    Ok(token.trim().as_bytes().ct_eq(expected.as_bytes()).into())
}

async fn read_json<T: for<'de> Deserialize<'de>>(req: &mut Request) -> std::result::Result<T, Result<Response>> {
    let bytes = match req.bytes().await {
        Ok(b) => b,
        Err(_) => return Err(json_error(400, "unreadable body")),
    };
    if bytes.len() > MAX_JSON_BYTES {
        return Err(json_error(413, "body too large"));
    }
    serde_json::from_slice(&bytes).map_err(|e| json_error(400, &format!("invalid JSON: {e}")))
}

/// Passes a device object's answer on: JSON bodies as they are, errors as `{"error"}`.
fn forward(reply: objects::Reply) -> Result<Response> {
    if reply.ok() {
        fixed(reply.status, "application/json; charset=utf-8", reply.body)
    } else {
        json_error(reply.status, reply.body.trim())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    password: String,
    display_name: Option<String>,
}

pub async fn handle(mut req: Request, env: &Env, cfg: &Config) -> Result<Response> {
    if !authorized(&req, cfg)? {
        return json_error(401, "missing or wrong admin token");
    }
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').skip(2).collect();
    let method = req.method();
    let store = kv::store(env)?;
    match (method, segments.as_slice()) {
        (Method::Get, ["users"]) => {
            let users = kv::list_users(&store).await?;
            let views: Vec<_> = users.iter().map(UserRecord::view).collect();
            json(200, &serde_json::json!({ "users": views }))
        }
        (Method::Post, ["users"]) => {
            let new: NewUser = match read_json(&mut req).await {
                Ok(v) => v,
                Err(resp) => return resp,
            };
            let email = users::normalize_email(&new.email);
            if !users::valid_email(&email) {
                return json_error(400, "email is not a valid address");
            }
            if new.password.chars().count() < 8 || new.password.len() > 1024 {
                return json_error(400, "password must be 8 to 1024 characters");
            }
            let display_name = new.display_name.unwrap_or_default().trim().to_string();
            if display_name.len() > 200 || display_name.chars().any(char::is_control) {
                return json_error(400, "display_name must be at most 200 printable characters");
            }
            if kv::get_user(&store, &email).await?.is_some() {
                return json_error(409, "a user with this email exists");
            }
            let record = UserRecord {
                display_name: if display_name.is_empty() { email.clone() } else { display_name },
                password_hash: super::password::hash(&new.password, random_bytes(), cfg.password_iterations).await?,
                email,
                created_at: format_timestamp(now_ms()),
            };
            kv::put_user(&store, &record).await?;
            json(201, &record.view())
        }
        (Method::Delete, ["users", email]) => {
            let Some(email) = crate::http::percent_decode(email).map(|e| users::normalize_email(&e)) else {
                return json_error(400, "malformed email");
            };
            if kv::get_user(&store, &email).await?.is_none() {
                return json_error(404, "no such user");
            }
            kv::delete_user(&store, &email).await?;
            fixed(204, "text/plain", Vec::new())
        }
        (Method::Get, ["devices"]) => {
            let devices = kv::list_devices(&store).await?;
            json(200, &serde_json::json!({ "devices": devices }))
        }
        (Method::Get, ["devices", id]) => {
            if !valid_device_id(id) {
                return json_error(400, "malformed device id");
            }
            let stub = objects::device_stub(env, id)?;
            forward(objects::call::<()>(&stub, Method::Get, "/record", None).await?)
        }
        (Method::Post, ["devices", id, "commands"]) => {
            if !valid_device_id(id) {
                return json_error(400, "malformed device id");
            }
            let bytes = req.bytes().await?;
            if bytes.len() > MAX_JSON_BYTES * 8 {
                return json_error(413, "body too large");
            }
            if let Err(e) = crate::management::CommandRequest::from_json(&bytes) {
                return json_error(400, &e);
            }
            let stub = objects::device_stub(env, id)?;
            let body: serde_json::Value = serde_json::from_slice(&bytes)?;
            forward(objects::call(&stub, Method::Post, "/commands", Some(&body)).await?)
        }
        (Method::Get, ["devices", id, "commands"]) if valid_device_id(id) => {
            let stub = objects::device_stub(env, id)?;
            forward(objects::call::<()>(&stub, Method::Get, "/commands", None).await?)
        }
        (Method::Get, ["devices", id, "commands", cid]) if valid_device_id(id) && cid.bytes().all(|b| b.is_ascii_digit()) => {
            let stub = objects::device_stub(env, id)?;
            forward(objects::call::<()>(&stub, Method::Get, &format!("/commands/{cid}"), None).await?)
        }
        (Method::Delete, ["devices", id]) => {
            if !valid_device_id(id) {
                return json_error(400, "malformed device id");
            }
            let stub = objects::device_stub(env, id)?;
            forward(objects::call::<()>(&stub, Method::Post, "/retire", None).await?)
        }
        (m, ["enrollment-tokens", rest @ ..]) => super::tokens::admin(req, env, m, rest).await,
        _ => json_error(404, "no such admin route"),
    }
}

