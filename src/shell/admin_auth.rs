//! Who is calling the admin API, and may they: the bootstrap token, per-admin API tokens and
//! console sessions (cookie plus CSRF header), checked against [`crate::admins::access`]; the
//! session, admin account and API token routes; and the audit log writes. Rules are in
//! [`crate::admins`] and [`crate::fleet`].

use super::admin_api::read_json;
use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::respond::{json, json_error, no_content, server_error};
use crate::admins::{
    self, Access, AdminCall, AdminChange, AdminError, AdminReply, AdminView, Admins, Credential, NewAdmin,
    NewApiToken, Presented, Refusal, Role, SignIn, SignInOutcome, API_TOKEN_PREFIX, SESSION_COOKIE,
};
use crate::config::Config;
use crate::context::Entropy;
use crate::fleet::AuditRecord;
use crate::http::RequestUrl;
use crate::http::MAX_JSON_BYTES;
use crate::object_call::StoreError;
use crate::time::format_timestamp;
use crate::tokens::RateLimit;
use crate::users::normalize_email;
use subtle::ConstantTimeEq;
use worker::*;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bootstrap,
    ApiToken,
    Session,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admin: AdminView,
    pub via: Via,
    pub csrf: Option<String>,
}

/// The gate's decision.
pub enum Gate {
    /// Go on; `None` for a public route.
    Allowed(Option<Caller>),
    /// The answer (401 or 403), already audited where it was a security event.
    Refused(Response),
}

fn bearer(req: &Request) -> Option<String> {
    let given = req.headers().get("Authorization").ok().flatten()?;
    given.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

fn cookie(req: &Request) -> Option<String> {
    let header = req.headers().get("Cookie").ok().flatten()?;
    header
        .split(';')
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('=').map(str::to_string))
}

/// Authenticates the request and checks its role (and, for a console write, its CSRF token).
pub async fn gate(
    req: &Request,
    url: &RequestUrl,
    ports: &EdgePorts<'_>,
    cfg: &Config,
    segments: &[&str],
) -> Result<Gate> {
    let method = req.method().to_string();
    let access = admins::access(&method, segments);
    if access == Access::Public {
        return Ok(Gate::Allowed(None));
    }
    let unauthorized = || Ok(Gate::Refused(json_error(401, "missing or wrong admin credentials")?));
    let caller = if let Some(token) = bearer(req) {
        let is_bootstrap = cfg
            .admin_token
            .as_deref()
            .is_some_and(|expected| bool::from(token.as_bytes().ct_eq(expected.as_bytes())));
        if is_bootstrap {
            Caller { admin: admins::bootstrap_view(), via: Via::Bootstrap, csrf: None }
        } else if let Some(secret) = token.strip_prefix(API_TOKEN_PREFIX) {
            match authenticate(ports, Credential::ApiToken(secret.to_string())).await {
                Ok(Some((admin, _))) => Caller { admin, via: Via::ApiToken, csrf: None },
                Ok(None) => return unauthorized(),
                Err(e) => return Ok(Gate::Refused(server_error(&e)?)),
            }
        } else {
            return unauthorized();
        }
    } else if let Some(value) = cookie(req) {
        match authenticate(ports, Credential::Session(value)).await {
            Ok(Some((admin, csrf))) => Caller { admin, via: Via::Session, csrf },
            Ok(None) => return unauthorized(),
            Err(e) => return Ok(Gate::Refused(server_error(&e)?)),
        }
    } else {
        return unauthorized();
    };

    let csrf_given = req.headers().get("X-CSRF-Token")?.unwrap_or_default();
    let origin = req.headers().get("Origin")?;
    let presented = Presented {
        write: !matches!(req.method(), Method::Get | Method::Head),
        session: caller.via == Via::Session,
        csrf_expected: caller.csrf.as_deref(),
        csrf_given: &csrf_given,
        origin: origin.as_deref(),
        ours: &url.origin,
    };
    let (status, message, action) = match admins::authorize(access, caller.admin.role, presented) {
        Ok(()) => return Ok(Gate::Allowed(Some(caller))),
        Err(Refusal::Csrf) => (403, "missing or wrong CSRF token".to_string(), "auth.csrf_refused"),
        Err(Refusal::Role(r)) => (403, format!("role {} may not do this", role_name(r)), "auth.role_refused"),
    };
    let entry = Audit::new(&caller.admin.email, action, Some(route(req, url)));
    audit_event(ports, cfg, req, entry, status).await;
    Ok(Gate::Refused(json_error(status, &message)?))
}

/// A refused request's target: `route:<METHOD> <path>`.
fn route(req: &Request, url: &RequestUrl) -> String {
    format!("route:{} {}", req.method(), url.path)
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Admin => "admin",
    }
}

async fn authenticate(
    ports: &EdgePorts<'_>,
    credential: Credential,
) -> std::result::Result<Option<(AdminView, Option<String>)>, StoreError> {
    match ports.admins(AdminCall::Authenticate { credential }).await? {
        Ok(AdminReply::Principal(p)) => Ok(Some((p.admin, p.csrf))),
        Ok(other) => Err(StoreError(format!("admin directory answered {other:?}"))),
        Err(_) => Ok(None),
    }
}

/// What an audit entry says besides where and when.
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<String>,
    /// What the action was about, where the target does not say (the command type).
    pub detail: Option<String>,
}

impl<'a> Audit<'a> {
    pub fn new(actor: &'a str, action: &'a str, target: Option<String>) -> Self {
        Audit { actor, action, target, detail: None }
    }
}

/// Appends to the audit log. A failure is logged and does not change the answer: the action
/// already happened.
pub async fn audit_event(ports: &EdgePorts<'_>, cfg: &Config, req: &Request, entry: Audit<'_>, status: u16) {
    let now = now_ms();
    let (actor, action) = (entry.actor, entry.action);
    let record = AuditRecord {
        at: format_timestamp(now),
        actor: actor.to_string(),
        action: action.to_string(),
        target: entry.target,
        detail: entry.detail,
        address: super::client_address(req.inner()),
        status,
    };
    let keep_from = format_timestamp(now.saturating_sub(u64::from(cfg.audit_retention_days) * 86_400_000));
    let written = match ports.index() {
        Ok(index) => index.write(&record.insert(&keep_from)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        console_error!("audit log: {e} ({action} by {actor})");
    }
}

/// The session cookie: `HttpOnly`, `SameSite=Strict`, and `Secure` except on a loopback host
/// (where local development serves plain HTTP).
fn session_cookie(url: &RequestUrl, value: &str, max_age: u64) -> String {
    let secure = if url.is_loopback() { "" } else { "; Secure" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

fn admin_error(e: &AdminError) -> Result<Response> {
    match e {
        AdminError::Exists => json_error(409, "an admin with this email exists"),
        AdminError::NoSuchAdmin => json_error(404, "no such admin"),
        AdminError::NoSuchToken => json_error(404, "no such API token"),
        AdminError::LastAdmin => json_error(409, "this would leave no account with the admin role"),
        AdminError::Refused => json_error(401, "missing or wrong admin credentials"),
        AdminError::TooMany => json_error(409, "too many API tokens; revoke one first"),
    }
}

/// An admin directory call answered as the API answers it.
async fn directory(ports: &EdgePorts<'_>, call: AdminCall, status: u16) -> Result<Response> {
    match ports.admins(call).await {
        Ok(Ok(AdminReply::Admin(a))) => json(status, &a),
        Ok(Ok(AdminReply::Admins(list))) => json(200, &serde_json::json!({ "admins": list })),
        Ok(Ok(AdminReply::ApiTokens(list))) => json(200, &serde_json::json!({ "tokens": list })),
        Ok(Ok(AdminReply::ApiTokenCreated { view, token })) => {
            let mut body = serde_json::to_value(view)?;
            body["token"] = serde_json::Value::String(token);
            json(201, &body)
        }
        Ok(Ok(AdminReply::Done)) => no_content(),
        Ok(Ok(other)) => server_error(&StoreError(format!("admin directory answered {other:?}"))),
        Ok(Err(e)) => admin_error(&e),
        Err(e) => server_error(&e),
    }
}

/// `/api/v1/session`, `/api/v1/admins…` and `/api/v1/api-tokens…`; `None` for other routes.
pub async fn handle(
    req: &Request,
    url: &RequestUrl,
    ports: &EdgePorts<'_>,
    cfg: &Config,
    caller: Option<&Caller>,
    segments: &[&str],
) -> Option<Result<Response>> {
    let answer = match (req.method(), segments, caller) {
        (Method::Post, ["session"], _) => sign_in(req, url, ports, cfg).await,
        (Method::Get, ["session"], Some(c)) => {
            json(200, &serde_json::json!({ "admin": c.admin, "csrf_token": c.csrf }))
        }
        (Method::Delete, ["session"], Some(c)) => {
            if c.via == Via::Session {
                if let Some(value) = cookie(req) {
                    if let Err(e) = ports.admins(AdminCall::EndSession { cookie: value }).await {
                        return Some(server_error(&e));
                    }
                }
            }
            let mut resp = match no_content() {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let _ = resp.headers_mut().set("Set-Cookie", &session_cookie(url, "", 0));
            Ok(resp)
        }
        (Method::Get, ["admins"], _) => directory(ports, AdminCall::List, 200).await,
        (Method::Post, ["admins"], _) => {
            let new: NewAdmin = match read_json(req, MAX_JSON_BYTES).await {
                Ok(v) => v,
                Err(resp) => return Some(resp),
            };
            let (email, display_name) = match new.validate() {
                Ok(v) => v,
                Err(m) => return Some(json_error(400, &m)),
            };
            let password_hash = match hash(ports, cfg, &new.password).await {
                Ok(h) => h,
                Err(e) => return Some(server_error(&e)),
            };
            directory(ports, AdminCall::Create { email, display_name, role: new.role, password_hash }, 201)
                .await
        }
        (Method::Patch, ["admins", email], _) => {
            let change: AdminChange = match read_json(req, MAX_JSON_BYTES).await {
                Ok(v) => v,
                Err(resp) => return Some(resp),
            };
            let email = normalize_email(&crate::http::percent_decode(email).unwrap_or_default());
            let display_name = match change.display_name.as_deref().map(admins::valid_name).transpose() {
                Ok(n) => n,
                Err(m) => return Some(json_error(400, &m)),
            };
            let password_hash = match &change.password {
                Some(p) => {
                    if let Err(m) = admins::valid_password(p) {
                        return Some(json_error(400, &m));
                    }
                    match hash(ports, cfg, p).await {
                        Ok(h) => Some(h),
                        Err(e) => return Some(server_error(&e)),
                    }
                }
                None => None,
            };
            directory(ports, AdminCall::Update { email, role: change.role, display_name, password_hash }, 200)
                .await
        }
        (Method::Delete, ["admins", email], _) => {
            let email = normalize_email(&crate::http::percent_decode(email).unwrap_or_default());
            directory(ports, AdminCall::Delete { email }, 204).await
        }
        (Method::Get, ["api-tokens"], Some(c)) => {
            let admin = (c.admin.role != Role::Admin).then(|| c.admin.email.clone());
            directory(ports, AdminCall::ListApiTokens { admin }, 200).await
        }
        (Method::Post, ["api-tokens"], Some(c)) => {
            let new: NewApiToken = match read_json(req, MAX_JSON_BYTES).await {
                Ok(v) => v,
                Err(resp) => return Some(resp),
            };
            let name = match admins::valid_name(&new.name) {
                Ok(n) => n,
                Err(m) => return Some(json_error(400, &m)),
            };
            if c.via == Via::Bootstrap {
                return Some(json_error(
                    400,
                    "the bootstrap token cannot own API tokens; create an admin first",
                ));
            }
            directory(ports, AdminCall::CreateApiToken { admin: c.admin.email.clone(), name }, 201).await
        }
        (Method::Delete, ["api-tokens", id], Some(c)) => {
            if !admins::valid_id(id) {
                return Some(json_error(404, "no such API token"));
            }
            let admin = (c.admin.role != Role::Admin).then(|| c.admin.email.clone());
            directory(ports, AdminCall::RevokeApiToken { id: id.to_string(), admin }, 204).await
        }
        _ => return None,
    };
    Some(answer)
}

async fn hash(
    ports: &EdgePorts<'_>,
    cfg: &Config,
    password: &str,
) -> std::result::Result<String, StoreError> {
    crate::users::hash_password(ports, password, Csprng.bytes(), cfg.password_iterations).await
}

/// `POST /api/v1/session`: the sign-in itself is [`admins::sign_in`]; here the request's
/// shape, the audit log and the cookie.
async fn sign_in(req: &Request, url: &RequestUrl, ports: &EdgePorts<'_>, cfg: &Config) -> Result<Response> {
    // Another site must not sign the browser in to the attacker's account (login CSRF): a
    // cross-site form cannot send JSON, and a browser names the page's origin.
    let content_type = req.headers().get("Content-Type")?.unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return json_error(415, "the sign-in body must be application/json");
    }
    if req.headers().get("Origin")?.is_some_and(|o| o != url.origin) {
        return json_error(403, "sign-in from another site refused");
    }
    let form: SignIn = match read_json(req, MAX_JSON_BYTES).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let email = normalize_email(&form.email);
    let limit = RateLimit { max_failures: cfg.login_max_failures, window_secs: cfg.login_window_secs.into() };
    let ttl = u64::from(cfg.admin_session_ttl_secs);
    let client = super::client_address(req.inner());
    let outcome = admins::sign_in(ports, &email, &form.password, client.as_deref(), limit, ttl).await;
    let actor = admins::sign_in_actor(&email);
    match outcome {
        Ok(SignInOutcome::Started { cookie, csrf, admin }) => {
            let entry = Audit::new(&actor, "session.create", Some(format!("admin:{actor}")));
            audit_event(ports, cfg, req, entry, 200).await;
            let mut resp = json(200, &serde_json::json!({ "admin": admin, "csrf_token": csrf }))?;
            resp.headers_mut().set("Set-Cookie", &session_cookie(url, &cookie, ttl))?;
            Ok(resp)
        }
        Ok(SignInOutcome::Refused) => {
            let entry = Audit::new(&actor, "session.failed", Some(format!("admin:{actor}")));
            audit_event(ports, cfg, req, entry, 401).await;
            json_error(401, "wrong email or password")
        }
        // Not audited: nothing was checked, and the limit is what stops a flood; logging each
        // refusal would let anyone write to the log as fast as they can send.
        Ok(SignInOutcome::RateLimited { retry_after }) => {
            let mut resp = json_error(429, "too many failed sign-ins; try again later")?;
            resp.headers_mut().set("Retry-After", &retry_after.to_string())?;
            Ok(resp)
        }
        Err(e) => server_error(&e),
    }
}
