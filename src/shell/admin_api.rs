//! The admin JSON API and the public CA download. Who may call what is
//! [`super::admin_auth`]; every write is audited there.

use super::admin_auth::{audit_event, gate, Audit, Caller, Gate};
use super::body::{read_limited, Body};
use super::index::Index;
use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::respond::{device_error, fixed, json, json_error, no_content, server_error, token_error};
use crate::admins;
use crate::codec::decode_base64;
use crate::commands::CommandRequest;
use crate::config::Config;
use crate::context::Entropy;
use crate::device::calls::{DeviceCall, DeviceReply};
use crate::device::valid_device_id;
use crate::enroll::flow::{Authority, Devices, Issuer};
use crate::fleet::{self, AuditEntry, AuditQuery, CountRow, DeviceListRow, DeviceQuery, IndexRow, Stats};
use crate::http::RequestUrl;
use crate::http::{MAX_COMMAND_JSON_BYTES, MAX_JSON_BYTES};
use crate::issuer::{CaCall, CaReply};
use crate::object_call::StoreError;
use crate::profiles::catalog::{Catalog, CatalogCall, CatalogReply};
use crate::time::format_timestamp;
use crate::tokens::authority::{valid_token_id, NewEnrollTokenRequest, TokenCall, TokenReply};
use crate::users::{self, NewUser, UserRecord};
use serde::de::DeserializeOwned;
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

/// The body, or the error response: 413 over `limit`, 400 when it cannot be read.
pub(super) async fn read_body(req: &Request, limit: usize) -> std::result::Result<Vec<u8>, Result<Response>> {
    match read_limited(req.inner(), limit).await {
        Body::Read(bytes) => Ok(bytes),
        Body::TooLarge => Err(json_error(413, "body too large")),
        Body::Unreadable => Err(json_error(400, "unreadable body")),
    }
}

/// The body as JSON, or the error response: 413 over `limit`, 400 when it is not `T`.
pub(super) async fn read_json<T: DeserializeOwned>(
    req: &Request,
    limit: usize,
) -> std::result::Result<T, Result<Response>> {
    let bytes = read_body(req, limit).await?;
    crate::codec::from_json(&bytes).map_err(|e| json_error(400, &format!("invalid JSON: {e}")))
}

macro_rules! body {
    ($req:expr, $limit:expr) => {
        match read_json($req, $limit).await {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

pub async fn handle(req: Request, url: &RequestUrl, env: &Env, cfg: &Config) -> Result<Response> {
    let segments: Vec<&str> = url.path.trim_matches('/').split('/').skip(2).collect();
    let ports = EdgePorts::new(env);
    let caller = match gate(&req, url, &ports, cfg, &segments).await? {
        Gate::Allowed(c) => c,
        Gate::Refused(answer) => return Ok(answer),
    };
    let detail = std::cell::RefCell::new(None);
    let mut answer = route(&req, url, &ports, cfg, caller.as_ref(), &segments, &detail).await?;
    // Every write is audited with its outcome (a sign-in audits itself: it knows who tried).
    let method = req.method().to_string();
    if let (Some(c), Some((action, mut target, route_detail))) =
        (&caller, admins::audit_action(&method, &segments))
    {
        if target.is_none() && (200..300).contains(&answer.status_code()) {
            target = created_target(&mut answer, &action).await;
        }
        let entry =
            Audit { actor: &c.admin.email, action: &action, target, detail: detail.take().or(route_detail) };
        audit_event(&ports, cfg, &req, entry, answer.status_code()).await;
    }
    Ok(answer)
}

/// What a create made, named from its answer (`user:<email>`, `profile:<id>`, …).
async fn created_target(answer: &mut Response, action: &str) -> Option<String> {
    let noun = action.strip_suffix(".create")?;
    let field = match noun {
        "user" | "admin" => "email",
        "group" => "name",
        _ => "id",
    };
    let bytes = super::respond::bytes_of(answer.cloned().ok()?).await.ok()?;
    let body: serde_json::Value = crate::codec::from_json(&bytes).ok()?;
    body.get(field).and_then(serde_json::Value::as_str).map(|v| format!("{noun}:{v}"))
}

async fn route(
    req: &Request,
    url: &RequestUrl,
    ports: &EdgePorts<'_>,
    cfg: &Config,
    caller: Option<&Caller>,
    segments: &[&str],
    detail: &std::cell::RefCell<Option<String>>,
) -> Result<Response> {
    if let Some(answer) = super::admin_auth::handle(req, url, ports, cfg, caller, segments).await {
        return answer;
    }
    // Configuration profiles and groups.
    if let Some(answer) = super::profiles_api::handle(req, url, ports, segments).await {
        return answer;
    }
    let answer = match (req.method(), segments) {
        (Method::Get, ["stats"]) => stats(ports).await,
        (Method::Get, ["audit"]) => match AuditQuery::parse(url.query_pairs()) {
            Ok(q) => match index(ports)?.rows::<AuditEntry>(&q.page()).await {
                Ok(rows) => {
                    let (entries, next) = q.finish(rows);
                    json(200, &serde_json::json!({ "entries": entries, "next_cursor": next }))
                }
                Err(e) => server_error(&e),
            },
            Err(m) => json_error(400, &m),
        },
        (Method::Get, ["server"]) => server_facts(url, cfg),
        (Method::Post, ["index", "rebuild"]) => {
            let page: RebuildPage = body!(req, MAX_JSON_BYTES);
            rebuild(ports, page).await
        }
        (Method::Get, ["users"]) => match ports.kv()?.users().await {
            Ok(list) => json(
                200,
                &serde_json::json!({ "users": list.iter().map(UserRecord::view).collect::<Vec<_>>() }),
            ),
            Err(e) => server_error(&e),
        },
        (Method::Post, ["users"]) => {
            let new: NewUser = body!(req, MAX_JSON_BYTES);
            create_user(ports, cfg, new).await
        }
        (Method::Delete, ["users", email]) => {
            let Some(email) = crate::http::percent_decode(email).map(|e| users::normalize_email(&e)) else {
                return json_error(400, "malformed email");
            };
            delete_user(ports, &email).await
        }
        (Method::Get, ["devices"]) => list_devices(url, ports).await,
        (Method::Get, ["devices", id]) if valid_device_id(id) => {
            super::profiles_api::device_record(ports, id).await
        }
        (Method::Post, ["devices", id, "commands"]) if valid_device_id(id) => {
            let bytes = match read_body(req, MAX_COMMAND_JSON_BYTES).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            match CommandRequest::from_json(&bytes) {
                Ok(request) => {
                    // The audit log says which command (a wipe is not a lock).
                    *detail.borrow_mut() = Some(request.kind().to_string());
                    device(ports, id, DeviceCall::QueueCommand { request }).await
                }
                Err(e) => json_error(400, &e),
            }
        }
        (Method::Get, ["devices", id, "commands"]) if valid_device_id(id) => {
            device(ports, id, DeviceCall::ListCommands).await
        }
        (Method::Get, ["devices", id, "commands", cid])
            if valid_device_id(id) && cid.bytes().all(|b| b.is_ascii_digit()) =>
        {
            device(ports, id, DeviceCall::GetCommand { id: cid.to_string() }).await
        }
        (Method::Delete, ["devices", id]) if valid_device_id(id) => {
            device(ports, id, DeviceCall::Retire).await
        }
        (Method::Get | Method::Delete, ["devices", _]) | (Method::Post, ["devices", _, "commands"]) => {
            json_error(400, "malformed device id")
        }
        (Method::Post, ["enrollment-tokens"]) => {
            let new: NewEnrollTokenRequest = body!(req, MAX_JSON_BYTES);
            create_enroll_token(ports, new).await
        }
        (Method::Get, ["enrollment-tokens"]) => {
            let after = url.param("cursor");
            if after.as_deref().is_some_and(|a| !crate::users::valid_email(a)) {
                return json_error(400, "cursor is not the next_cursor of a page");
            }
            match ports.tokens(TokenCall::ListEnrollTokens { after }).await {
                Ok(Ok(TokenReply::EnrollTokens { tokens, next_cursor })) => {
                    json(200, &serde_json::json!({ "tokens": tokens, "next_cursor": next_cursor }))
                }
                other => server_error(&StoreError(format!("token authority answered {other:?}"))),
            }
        }
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

fn index(ports: &EdgePorts<'_>) -> Result<Index> {
    Ok(ports.index()?)
}

/// `GET /api/v1/devices`: one page from the fleet index and the count of all that match, in
/// one round trip.
async fn list_devices(url: &RequestUrl, ports: &EdgePorts<'_>) -> Result<Response> {
    let q = match DeviceQuery::parse(url.query_pairs()) {
        Ok(q) => q,
        Err(m) => return json_error(400, &m),
    };
    let rows = match index(ports)?.batch_rows::<serde_json::Value>(&[q.page(), q.count()]).await {
        Ok(rows) => rows,
        Err(e) => return server_error(&e),
    };
    let [page, count]: [Vec<serde_json::Value>; 2] = match rows.try_into() {
        Ok(v) => v,
        Err(_) => return server_error(&StoreError("fleet index: two results expected".into())),
    };
    let page: Vec<DeviceListRow> = match page.into_iter().map(serde_json::from_value).collect() {
        Ok(p) => p,
        Err(e) => return server_error(&StoreError(format!("fleet index row: {e}"))),
    };
    let total = count.first().and_then(|c| c.get("n")).and_then(serde_json::Value::as_i64).unwrap_or(0);
    let (devices, next) = q.finish(page);
    json(200, &serde_json::json!({ "devices": devices, "next_cursor": next, "total": total }))
}

/// `GET /api/v1/stats`: the dashboard's counts, from SQL.
async fn stats(ports: &EdgePorts<'_>) -> Result<Response> {
    let now = now_ms();
    let statements =
        fleet::stats(&format_timestamp(now - 86_400_000), &format_timestamp(now + 30 * 86_400_000));
    match index(ports)?.batch_rows::<CountRow>(&statements).await {
        Ok(rows) => match Stats::from_rows(rows) {
            Some(s) => json(200, &s),
            None => server_error(&StoreError("fleet index: stats rows".into())),
        },
        Err(e) => server_error(&e),
    }
}

/// `GET /api/v1/server`: what the console shows about this deployment.
fn server_facts(url: &RequestUrl, cfg: &Config) -> Result<Response> {
    let base = cfg.base_url(&url.origin);
    let server_name = base.split("://").nth(1).unwrap_or(&base).trim_end_matches('/').to_string();
    let p = cfg.poll;
    json(
        200,
        &serde_json::json!({
            "org_name": cfg.org_name,
            "server_name": server_name,
            "auth_policy": cfg.auth_policy.as_str(),
            "poll": {
                "first_interval": p.first_interval, "first_count": p.first_count,
                "second_interval": p.second_interval, "second_count": p.second_count,
                "remaining_interval": p.remaining_interval, "remaining_count": p.remaining_count,
            },
        }),
    )
}

/// `POST /api/v1/index/rebuild`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RebuildPage {
    cursor: Option<String>,
}

/// Devices per rebuild call: three object calls each, so a call stays inside the 50
/// subrequests of the Workers Free plan (with the KV list and the D1 batch).
const REBUILD_PAGE: u64 = 15;

/// `POST /api/v1/index/rebuild`: rewrites the index rows of one page of the devices listed in
/// KV from their objects (record, inventory, groups, profile statuses), for a deployment that
/// ran without the index or lost it. The admin calls it again with `next_cursor` until null.
async fn rebuild(ports: &EdgePorts<'_>, page: RebuildPage) -> Result<Response> {
    let (ids, next) = match ports.kv()?.device_ids(page.cursor.filter(|c| !c.is_empty()), REBUILD_PAGE).await
    {
        Ok(p) => p,
        Err(e) => return json_error(400, &format!("cannot list devices from this cursor: {e}")),
    };
    let mut statements = Vec::new();
    let mut indexed = 0;
    for id in ids.iter().filter(|id| valid_device_id(id)) {
        let view = match ports.device(id, DeviceCall::Record).await {
            Ok(Ok(DeviceReply::View(v))) => v,
            Ok(Err(_)) => continue, // listed but never stored: nothing to index
            Ok(Ok(other)) => return server_error(&StoreError(format!("device object answered {other:?}"))),
            Err(e) => return server_error(&e),
        };
        let groups = match ports.catalog(CatalogCall::GroupsOf { device_id: id.clone() }).await {
            Ok(Ok(CatalogReply::GroupNames(g))) => g,
            other => return server_error(&StoreError(format!("catalogue answered {other:?}"))),
        };
        let profiles = match ports.device(id, DeviceCall::Profiles).await {
            Ok(Ok(DeviceReply::Profiles(p))) => {
                p.into_iter().map(|p| (p.id, p.status, p.updated_at)).collect()
            }
            _ => Vec::new(),
        };
        let row = IndexRow::of(&view.record, Some(&view.mgmt));
        statements.extend(fleet::rebuild_device(&row, &groups, &profiles, now_ms()));
        indexed += 1;
    }
    if let Err(e) = index(ports)?.write(&statements).await {
        return server_error(&e);
    }
    json(200, &serde_json::json!({ "indexed": indexed, "next_cursor": next }))
}
