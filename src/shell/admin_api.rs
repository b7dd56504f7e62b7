//! The admin JSON API (`Authorization: Bearer <ADMIN_TOKEN>`) and the public CA download.

use super::body::{read_limited, Body};
use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::respond::{device_error, fixed, json, json_error, no_content, server_error, token_error};
use crate::codec::decode_base64;
use crate::commands::CommandRequest;
use crate::config::Config;
use crate::context::Entropy;
use crate::device::calls::{DeviceCall, DeviceReply};
use crate::device::valid_device_id;
use crate::enroll::flow::{Authority, Devices, Issuer};
use crate::http::{MAX_COMMAND_JSON_BYTES, MAX_JSON_BYTES};
use crate::issuer::{CaCall, CaReply};
use crate::object_call::StoreError;
use crate::time::format_timestamp;
use crate::tokens::authority::{valid_token_id, NewEnrollTokenRequest, TokenCall, TokenReply};
use crate::users::{self, NewUser, UserRecord};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use worker::*;

/// `GET /api/v1/ca`: the CA certificate in PEM, public (devices and admins need it).
pub async fn ca_certificate(env: &Env) -> Result<Response> {
    match EdgePorts::new(env).ca(CaCall::Certificate).await {
        Ok(Ok(CaReply::Certificate(ca))) => {
            let der = decode_base64(&ca.cert_b64).unwrap_or_default();
            fixed(200, "application/x-pem-file", crate::pki::to_pem("CERTIFICATE", &der))
        }
        other => server_error(&StoreError(format!("CA answered {other:?}"))),
    }
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

/// The body, or the error response: 413 over `limit`, 400 when it cannot be read.
pub(super) async fn read_body(req: &Request, limit: usize) -> std::result::Result<Vec<u8>, Result<Response>> {
    match read_limited(req, limit).await {
        Body::Read(bytes) => Ok(bytes),
        Body::TooLarge => Err(json_error(413, "body too large")),
        Body::Unreadable => Err(json_error(400, "unreadable body")),
    }
}

/// The body as JSON, or the error response: 413 over `limit`, 400 when it is not `T`.
async fn read_json<T: DeserializeOwned>(
    req: &Request,
    limit: usize,
) -> std::result::Result<T, Result<Response>> {
    let bytes = read_body(req, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| json_error(400, &format!("invalid JSON: {e}")))
}

macro_rules! body {
    ($req:expr, $limit:expr) => {
        match read_json(&$req, $limit).await {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

pub async fn handle(req: Request, env: &Env, cfg: &Config) -> Result<Response> {
    if !authorized(&req, cfg)? {
        return json_error(401, "missing or wrong admin token");
    }
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').skip(2).collect();
    let ports = EdgePorts::new(env);
    // Configuration profiles and groups.
    if let Some(answer) = super::profiles_api::handle(&req, &ports, &segments).await {
        return answer;
    }
    let answer = match (req.method(), segments.as_slice()) {
        (Method::Get, ["users"]) => match ports.kv()?.users().await {
            Ok(list) => json(
                200,
                &serde_json::json!({ "users": list.iter().map(UserRecord::view).collect::<Vec<_>>() }),
            ),
            Err(e) => server_error(&e),
        },
        (Method::Post, ["users"]) => {
            let new: NewUser = body!(req, MAX_JSON_BYTES);
            create_user(&ports, cfg, new).await
        }
        (Method::Delete, ["users", email]) => {
            let Some(email) = crate::http::percent_decode(email).map(|e| users::normalize_email(&e)) else {
                return json_error(400, "malformed email");
            };
            delete_user(&ports, &email).await
        }
        (Method::Get, ["devices"]) => match ports.kv()?.devices().await {
            Ok(devices) => json(200, &serde_json::json!({ "devices": devices })),
            Err(e) => server_error(&e),
        },
        (Method::Get, ["devices", id]) if valid_device_id(id) => {
            super::profiles_api::device_record(&ports, id).await
        }
        (Method::Post, ["devices", id, "commands"]) if valid_device_id(id) => {
            let bytes = match read_body(&req, MAX_COMMAND_JSON_BYTES).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            match CommandRequest::from_json(&bytes) {
                Ok(request) => device(&ports, id, DeviceCall::QueueCommand { request }).await,
                Err(e) => json_error(400, &e),
            }
        }
        (Method::Get, ["devices", id, "commands"]) if valid_device_id(id) => {
            device(&ports, id, DeviceCall::ListCommands).await
        }
        (Method::Get, ["devices", id, "commands", cid])
            if valid_device_id(id) && cid.bytes().all(|b| b.is_ascii_digit()) =>
        {
            device(&ports, id, DeviceCall::GetCommand { id: cid.to_string() }).await
        }
        (Method::Delete, ["devices", id]) if valid_device_id(id) => {
            device(&ports, id, DeviceCall::Retire).await
        }
        (Method::Get | Method::Delete, ["devices", _]) | (Method::Post, ["devices", _, "commands"]) => {
            json_error(400, "malformed device id")
        }
        (Method::Post, ["enrollment-tokens"]) => {
            let new: NewEnrollTokenRequest = body!(req, MAX_JSON_BYTES);
            create_enroll_token(&ports, new).await
        }
        (Method::Get, ["enrollment-tokens"]) => match ports.tokens(TokenCall::ListEnrollTokens).await {
            Ok(Ok(TokenReply::EnrollTokens(views))) => json(200, &serde_json::json!({ "tokens": views })),
            other => server_error(&StoreError(format!("token authority answered {other:?}"))),
        },
        (Method::Delete, ["enrollment-tokens", id]) => {
            if !valid_token_id(id) {
                return json_error(400, "malformed enrollment token id");
            }
            match ports.tokens(TokenCall::RevokeEnrollToken { id: id.to_string() }).await {
                Ok(Ok(_)) => no_content(),
                Ok(Err(e)) => token_error(&e),
                Err(e) => server_error(&e),
            }
        }
        _ => json_error(404, "no such admin route"),
    };
    answer
}

/// A device object call, answered as the admin API answers it.
async fn device(ports: &EdgePorts<'_>, id: &str, call: DeviceCall) -> Result<Response> {
    match ports.device(id, call).await {
        Ok(Ok(DeviceReply::View(v))) => json(200, &v),
        Ok(Ok(DeviceReply::Queued { id, status })) => {
            json(201, &serde_json::json!({ "id": id, "status": status }))
        }
        Ok(Ok(DeviceReply::Commands(commands))) => json(200, &serde_json::json!({ "commands": commands })),
        Ok(Ok(DeviceReply::Command(c))) => json(200, &c),
        Ok(Ok(DeviceReply::Retire { device_id, status })) => {
            json(202, &serde_json::json!({ "device_id": device_id, "status": status }))
        }
        Ok(Ok(other)) => server_error(&StoreError(format!("device object answered {other:?}"))),
        Ok(Err(e)) => device_error(&e),
        Err(e) => server_error(&e),
    }
}

async fn create_user(ports: &EdgePorts<'_>, cfg: &Config, new: NewUser) -> Result<Response> {
    let valid = match new.validate() {
        Ok(v) => v,
        Err(message) => return json_error(400, message),
    };
    let kv = ports.kv()?;
    let created: std::result::Result<Option<UserRecord>, StoreError> = async {
        if kv.user(&valid.email).await?.is_some() {
            return Ok(None);
        }
        let hash =
            users::hash_password(ports, &new.password, Csprng.bytes(), cfg.password_iterations).await?;
        let record = UserRecord {
            email: valid.email,
            display_name: valid.display_name,
            password_hash: hash,
            created_at: format_timestamp(now_ms()),
        };
        kv.put_user(&record).await?;
        Ok(Some(record))
    }
    .await;
    match created {
        Ok(Some(record)) => json(201, &record.view()),
        Ok(None) => json_error(409, "a user with this email exists"),
        Err(e) => server_error(&e),
    }
}

async fn delete_user(ports: &EdgePorts<'_>, email: &str) -> Result<Response> {
    let kv = ports.kv()?;
    match kv.user(email).await {
        Ok(None) => json_error(404, "no such user"),
        // The user's tokens are revoked first: a user deleted is refused at once, also with a
        // login token or an enrollment token issued before.
        Ok(Some(_)) => match ports.tokens(TokenCall::RevokeUser { email: email.to_string() }).await {
            Ok(Ok(_)) => match kv.delete_user(email).await {
                Ok(()) => no_content(),
                Err(e) => server_error(&e),
            },
            Ok(Err(e)) => token_error(&e),
            Err(e) => server_error(&e),
        },
        Err(e) => server_error(&e),
    }
}

async fn create_enroll_token(ports: &EdgePorts<'_>, new: NewEnrollTokenRequest) -> Result<Response> {
    let (email, expires_in_seconds, uses) = match new.validate() {
        Ok(v) => v,
        Err(message) => return json_error(400, &message),
    };
    match ports.kv()?.user(&email).await {
        Ok(Some(_)) => {}
        Ok(None) => return json_error(400, "no user with this email"),
        Err(e) => return server_error(&e),
    }
    match ports.tokens(TokenCall::CreateEnrollToken { email, expires_in_seconds, uses }).await {
        Ok(Ok(TokenReply::EnrollTokenCreated { view, token })) => {
            let mut body = serde_json::to_value(view)?;
            body["token"] = serde_json::Value::String(token);
            json(201, &body)
        }
        Ok(Err(e)) => token_error(&e),
        other => server_error(&StoreError(format!("token authority answered {other:?}"))),
    }
}
