//! Named admins, their roles, console sessions and API tokens: the rules of the admin directory
//! Durable Object (one instance), which runs one call at a time, so the last admin-role account
//! cannot be removed by two concurrent requests and a revoked token is refused at once.
//!
//! Secrets (session cookies, API tokens) are `<16 hex id><64 hex secret>`; only the SHA-256 of
//! the secret is stored, so a copy of the storage signs nobody in. Which role may call which
//! route is [`access`], decided from the method and path alone.

use crate::codec::hex;
use crate::context::Entropy;
use crate::enroll::flow::Authority;
use crate::object_call::{Outcome, StoreError};
use crate::time::format_timestamp;
use crate::tokens::authority::{TokenCall, TokenCallError};
use crate::tokens::RateLimit;
use crate::users::{verify_hash, Kdf, DUMMY_HASH};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What an admin may do. Ordered: each role can do everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but the admin accounts.
    Viewer,
    /// Device actions, commands, profiles and groups.
    Operator,
    /// Everything: users, enrollment tokens, admin accounts.
    Admin,
}

/// API tokens start with this, so a leaked one is recognisable (and never mistaken for the
/// bootstrap secret).
pub const API_TOKEN_PREFIX: &str = "emt_";
/// The console's session cookie.
pub const SESSION_COOKIE: &str = "edgemdm_session";
pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 256;
pub const MAX_NAME_LEN: usize = 64;
/// An API token's `last_used_at` is written at most this often (seconds), so using a token is
/// not a storage write per request.
pub const LAST_USED_GRANULARITY_SECS: u64 = 3600;
/// Sessions and API tokens per admin, at most (older sessions end first).
pub const MAX_SESSIONS_PER_ADMIN: usize = 16;
pub const MAX_TOKENS_PER_ADMIN: usize = 32;

/// An admin account (storage `admin:<email>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRecord {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: String,
}

/// What the API shows of an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: Option<String>,
}

impl AdminRecord {
    pub fn view(&self) -> AdminView {
        AdminView {
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            created_at: Some(self.created_at.clone()),
        }
    }
}

/// The bootstrap secret's identity: acts as an admin named `bootstrap`.
pub fn bootstrap_view() -> AdminView {
    AdminView {
        email: "bootstrap".into(),
        display_name: "Bootstrap token".into(),
        role: Role::Admin,
        created_at: None,
    }
}

/// A console session (storage `ses:<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub admin: String,
    pub secret_sha256: String,
    /// The CSRF token the console sends back on every write.
    pub csrf: String,
    pub expires_ms: u64,
}

/// An API token (storage `tok:<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: String,
    pub name: String,
    pub admin: String,
    pub secret_sha256: String,
    pub created_at: String,
    pub last_used_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub admin: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl ApiTokenRecord {
    pub fn view(&self) -> ApiTokenView {
        ApiTokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            admin: self.admin.clone(),
            created_at: self.created_at.clone(),
            last_used_at: self.last_used_ms.map(format_timestamp),
        }
    }
}

/// `POST /api/v1/admins`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub email: String,
    pub display_name: String,
    pub password: String,
    pub role: Role,
}

/// `PATCH /api/v1/admins/{email}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminChange {
    pub role: Option<Role>,
    pub display_name: Option<String>,
    pub password: Option<String>,
}

/// `POST /api/v1/session`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// `POST /api/v1/api-tokens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    pub name: String,
}

pub fn valid_password(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        return Err(format!("password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"));
    }
    Ok(())
}

pub fn valid_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(format!("name must be 1 to {MAX_NAME_LEN} printable characters"));
    }
    Ok(name.to_string())
}

impl NewAdmin {
    /// The normalized email and display name, or what is wrong.
    pub fn validate(&self) -> Result<(String, String), String> {
        let email = crate::users::normalize_email(&self.email);
        if !crate::users::valid_email(&email) {
            return Err("email is not a valid address".into());
        }
        valid_password(&self.password)?;
        Ok((email, valid_name(&self.display_name)?))
    }
}

/// Ids are 16 lower-case hex digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits `<id><secret>` (80 hex digits) into its id and the SHA-256 of its secret.
pub fn split_secret(value: &str) -> Option<(String, String)> {
    if value.len() != 80 || !value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let (id, secret) = value.split_at(16);
    Some((id.to_string(), hex(&Sha256::digest(secret.as_bytes()))))
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new `<id><secret>` and what is stored of it.
fn new_secret(entropy: &mut impl Entropy) -> (String, String, String) {
    let id = hex(&entropy.bytes::<8>());
    let secret = hex(&entropy.bytes::<32>());
    let hash = hex(&Sha256::digest(secret.as_bytes()));
    (format!("{id}{secret}"), id, hash)
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// Any signed-in admin (its own session and API tokens).
    Any,
    /// This role or a higher one.
    Role(Role),
}

/// Who may call `method` on `/api/v1/<segments>`. Reads are for every role but the admin
/// accounts; device actions, profiles and groups for operators; the directory (users,
/// enrollment tokens) and admin accounts for admins.
pub fn access(method: &str, segments: &[&str]) -> Access {
    let read = method == "GET" || method == "HEAD";
    match segments.first().copied() {
        Some("ca" | "openapi.json") if read && segments.len() == 1 => Access::Public,
        Some("session") if method == "POST" => Access::Public,
        Some("session" | "api-tokens" | "server") => Access::Any,
        Some("admins") => Access::Role(Role::Admin),
        _ if read => Access::Role(Role::Viewer),
        Some("devices" | "profiles" | "groups") => Access::Role(Role::Operator),
        _ => Access::Role(Role::Admin),
    }
}

/// The audit log's action name and target for an admin API write, and its detail where the
/// route says more than the target (`None` for reads and for paths that are no route, which
/// change nothing).
pub fn audit_action(method: &str, segments: &[&str]) -> Option<(String, Option<String>, Option<String>)> {
    let t = |kind: &str, id: &str| {
        Some(format!("{kind}:{}", crate::http::percent_decode(id).unwrap_or_default()))
    };
    let (action, target): (&str, Option<String>) = match (method, segments) {
        ("POST", ["session"]) => ("session.create", None),
        ("POST", ["index", "rebuild"]) => ("index.rebuild", None),
        ("DELETE", ["session"]) => ("session.delete", None),
        ("POST", ["admins"]) => ("admin.create", None),
        ("PATCH", ["admins", e]) => ("admin.update", t("admin", e)),
        ("DELETE", ["admins", e]) => ("admin.delete", t("admin", e)),
        ("POST", ["api-tokens"]) => ("api_token.create", None),
        ("DELETE", ["api-tokens", id]) => ("api_token.revoke", t("api_token", id)),
        ("POST", ["users"]) => ("user.create", None),
        ("DELETE", ["users", e]) => ("user.delete", t("user", e)),
        ("POST", ["enrollment-tokens"]) => ("enrollment_token.create", None),
        ("DELETE", ["enrollment-tokens", id]) => ("enrollment_token.revoke", t("enrollment_token", id)),
        ("POST", ["devices", id, "commands"]) => ("device.command", t("device", id)),
        ("DELETE", ["devices", id]) => ("device.retire", t("device", id)),
        ("POST", ["profiles"]) => ("profile.create", None),
        ("PUT", ["profiles", id]) => ("profile.update", t("profile", id)),
        ("DELETE", ["profiles", id]) => ("profile.delete", t("profile", id)),
        ("POST", ["groups"]) => ("group.create", None),
        ("DELETE", ["groups", g]) => ("group.delete", t("group", g)),
        // The device is the target (its history lists it); the group is the detail.
        ("PUT", ["groups", g, "devices", d]) => {
            return Some(("group.add_device".into(), t("device", d), Some(format!("group:{g}"))))
        }
        ("DELETE", ["groups", g, "devices", d]) => {
            return Some(("group.remove_device".into(), t("device", d), Some(format!("group:{g}"))))
        }
        _ => return None,
    };
    Some((action.to_string(), target, None))
}

/// A credential presented to the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// The session cookie's value.
    Session(String),
    /// An API token without its prefix.
    ApiToken(String),
}

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub admin: AdminView,
    /// The session's CSRF token (sessions only).
    pub csrf: Option<String>,
}

/// An operation of the admin directory object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminCall {
    Create {
        email: String,
        display_name: String,
        role: Role,
        password_hash: String,
    },
    List,
    /// The account with its password hash (for a sign-in check at the edge).
    Get {
        email: String,
    },
    Update {
        email: String,
        role: Option<Role>,
        display_name: Option<String>,
        password_hash: Option<String>,
    },
    Delete {
        email: String,
    },
    /// `password_hash`: the hash the password was checked against; a session is refused if
    /// the password changed meanwhile.
    StartSession {
        email: String,
        ttl_secs: u64,
        password_hash: String,
    },
    EndSession {
        cookie: String,
    },
    Authenticate {
        credential: Credential,
    },
    CreateApiToken {
        admin: String,
        name: String,
    },
    /// Tokens of one admin, or of all when `admin` is `None`.
    ListApiTokens {
        admin: Option<String>,
    },
    /// Revoke a token; `admin`: only if it is this admin's.
    RevokeApiToken {
        id: String,
        admin: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminReply {
    Admin(AdminView),
    Admins(Vec<AdminView>),
    Account(Option<AdminRecord>),
    Done,
    SessionStarted { cookie: String, csrf: String, admin: AdminView },
    Principal(Principal),
    ApiTokenCreated { view: ApiTokenView, token: String },
    ApiTokens(Vec<ApiTokenView>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminError {
    Exists,
    NoSuchAdmin,
    NoSuchToken,
    /// The change would leave no account with the admin role.
    LastAdmin,
    /// Unknown, expired or revoked credential.
    Refused,
    TooMany,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminWrite {
    Admin(AdminRecord),
    DeleteAdmin(String),
    Session(SessionRecord),
    DeleteSession(String),
    Token(ApiTokenRecord),
    DeleteToken(String),
}

/// What the directory reads.
#[allow(async_fn_in_trait)]
pub trait AdminStorage {
    async fn admin(&self, email: &str) -> Result<Option<AdminRecord>, StoreError>;
    async fn admins(&self) -> Result<Vec<AdminRecord>, StoreError>;
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    async fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError>;
    async fn token(&self, id: &str) -> Result<Option<ApiTokenRecord>, StoreError>;
    async fn tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError>;
}

type AdminOutcome = Outcome<AdminReply, AdminError, AdminWrite>;

fn refuse(e: AdminError) -> Result<AdminOutcome, StoreError> {
    Ok(Outcome { reply: Err(e), writes: Vec::new() })
}

/// Would the directory still have an admin-role account without `email` (or with it demoted)?
async fn other_admin_exists<S: AdminStorage>(store: &S, email: &str) -> Result<bool, StoreError> {
    Ok(store.admins().await?.iter().any(|a| a.role == Role::Admin && a.email != email))
}

/// Runs one admin directory call. `now_ms`: Unix milliseconds.
pub async fn handle<S: AdminStorage>(
    store: &S,
    call: AdminCall,
    now_ms: u64,
    entropy: &mut impl Entropy,
) -> Result<AdminOutcome, StoreError> {
    match call {
        AdminCall::Create { email, display_name, role, password_hash } => {
            if store.admin(&email).await?.is_some() {
                return refuse(AdminError::Exists);
            }
            let rec = AdminRecord {
                email,
                display_name,
                role,
                password_hash,
                created_at: format_timestamp(now_ms),
            };
            Ok(Outcome::reply(AdminReply::Admin(rec.view()), vec![AdminWrite::Admin(rec)]))
        }
        AdminCall::List => {
            let mut list: Vec<AdminView> = store.admins().await?.iter().map(AdminRecord::view).collect();
            crate::sorting::sort_by(&mut list, |a, b| a.email.cmp(&b.email));
            Ok(Outcome::reply(AdminReply::Admins(list), vec![]))
        }
        AdminCall::Get { email } => {
            Ok(Outcome::reply(AdminReply::Account(store.admin(&email).await?), vec![]))
        }
        AdminCall::Update { email, role, display_name, password_hash } => {
            let Some(mut rec) = store.admin(&email).await? else {
                return refuse(AdminError::NoSuchAdmin);
            };
            if rec.role == Role::Admin
                && role.is_some_and(|r| r != Role::Admin)
                && !other_admin_exists(store, &email).await?
            {
                return refuse(AdminError::LastAdmin);
            }
            let mut writes = Vec::new();
            if let Some(r) = role {
                rec.role = r;
            }
            if let Some(n) = display_name {
                rec.display_name = n;
            }
            if let Some(h) = password_hash {
                rec.password_hash = h;
                // A new password ends the account's console sessions.
                for s in store.sessions().await?.into_iter().filter(|s| s.admin == email) {
                    writes.push(AdminWrite::DeleteSession(s.id));
                }
            }
            writes.push(AdminWrite::Admin(rec.clone()));
            Ok(Outcome::reply(AdminReply::Admin(rec.view()), writes))
        }
        AdminCall::Delete { email } => {
            let Some(rec) = store.admin(&email).await? else {
                return refuse(AdminError::NoSuchAdmin);
            };
            if rec.role == Role::Admin && !other_admin_exists(store, &email).await? {
                return refuse(AdminError::LastAdmin);
            }
            let mut writes = vec![AdminWrite::DeleteAdmin(email.clone())];
            for s in store.sessions().await?.into_iter().filter(|s| s.admin == email) {
                writes.push(AdminWrite::DeleteSession(s.id));
            }
            for t in store.tokens().await?.into_iter().filter(|t| t.admin == email) {
                writes.push(AdminWrite::DeleteToken(t.id));
            }
            Ok(Outcome::reply(AdminReply::Done, writes))
        }
        AdminCall::StartSession { email, ttl_secs, password_hash } => {
            let Some(rec) = store.admin(&email).await? else {
                return refuse(AdminError::NoSuchAdmin);
            };
            if !same(&rec.password_hash, &password_hash) {
                return refuse(AdminError::Refused);
            }
            let mut writes = Vec::new();
            // Expired sessions go now; beyond the cap, the oldest of this admin's end.
            let mut mine = Vec::new();
            for s in store.sessions().await? {
                if s.expires_ms <= now_ms {
                    writes.push(AdminWrite::DeleteSession(s.id));
                } else if s.admin == email {
                    mine.push(s);
                }
            }
            crate::sorting::sort_by_key(&mut mine, |s| s.expires_ms);
            while mine.len() >= MAX_SESSIONS_PER_ADMIN {
                writes.push(AdminWrite::DeleteSession(mine.remove(0).id));
            }
            let (cookie, id, secret_sha256) = new_secret(entropy);
            let csrf = hex(&entropy.bytes::<32>());
            let session = SessionRecord {
                id,
                admin: email,
                secret_sha256,
                csrf: csrf.clone(),
                expires_ms: now_ms + ttl_secs * 1000,
            };
            writes.push(AdminWrite::Session(session));
            Ok(Outcome::reply(AdminReply::SessionStarted { cookie, csrf, admin: rec.view() }, writes))
        }
        AdminCall::EndSession { cookie } => {
            let writes = match split_secret(&cookie) {
                Some((id, hash)) => match store.session(&id).await? {
                    Some(s) if same(&s.secret_sha256, &hash) => vec![AdminWrite::DeleteSession(id)],
                    _ => vec![],
                },
                None => vec![],
            };
            Ok(Outcome::reply(AdminReply::Done, writes))
        }
        AdminCall::Authenticate { credential } => {
            let (value, session) = match &credential {
                Credential::Session(v) => (v, true),
                Credential::ApiToken(v) => (v, false),
            };
            let Some((id, hash)) = split_secret(value) else {
                return refuse(AdminError::Refused);
            };
            let mut writes = Vec::new();
            let (email, csrf) = if session {
                match store.session(&id).await? {
                    Some(s) if same(&s.secret_sha256, &hash) && s.expires_ms > now_ms => {
                        (s.admin, Some(s.csrf))
                    }
                    _ => return refuse(AdminError::Refused),
                }
            } else {
                match store.token(&id).await? {
                    Some(mut t) if same(&t.secret_sha256, &hash) => {
                        let stale = t
                            .last_used_ms
                            .is_none_or(|at| now_ms.saturating_sub(at) >= LAST_USED_GRANULARITY_SECS * 1000);
                        if stale {
                            t.last_used_ms = Some(now_ms);
                            writes.push(AdminWrite::Token(t.clone()));
                        }
                        (t.admin, None)
                    }
                    _ => return refuse(AdminError::Refused),
                }
            };
            // The account is read on every use: a deleted admin or a changed role takes effect
            // at once.
            let Some(admin) = store.admin(&email).await? else {
                return refuse(AdminError::Refused);
            };
            Ok(Outcome::reply(AdminReply::Principal(Principal { admin: admin.view(), csrf }), writes))
        }
        AdminCall::CreateApiToken { admin, name } => {
            if store.admin(&admin).await?.is_none() {
                return refuse(AdminError::NoSuchAdmin);
            }
            if store.tokens().await?.iter().filter(|t| t.admin == admin).count() >= MAX_TOKENS_PER_ADMIN {
                return refuse(AdminError::TooMany);
            }
            let (secret, id, secret_sha256) = new_secret(entropy);
            let rec = ApiTokenRecord {
                id,
                name,
                admin,
                secret_sha256,
                created_at: format_timestamp(now_ms),
                last_used_ms: None,
            };
            let token = format!("{API_TOKEN_PREFIX}{secret}");
            Ok(Outcome::reply(
                AdminReply::ApiTokenCreated { view: rec.view(), token },
                vec![AdminWrite::Token(rec)],
            ))
        }
        AdminCall::ListApiTokens { admin } => {
            let mut list: Vec<ApiTokenView> = store
                .tokens()
                .await?
                .iter()
                .filter(|t| admin.as_ref().is_none_or(|a| &t.admin == a))
                .map(ApiTokenRecord::view)
                .collect();
            crate::sorting::sort_by(&mut list, |a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
            Ok(Outcome::reply(AdminReply::ApiTokens(list), vec![]))
        }
        AdminCall::RevokeApiToken { id, admin } => match store.token(&id).await? {
            Some(t) if admin.as_ref().is_none_or(|a| &t.admin == a) => {
                Ok(Outcome::reply(AdminReply::Done, vec![AdminWrite::DeleteToken(id)]))
            }
            _ => refuse(AdminError::NoSuchToken),
        },
    }
}

/// What a request presents, besides who it is, for [`authorize`].
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// Anything but GET and HEAD.
    pub write: bool,
    /// Authenticated by the session cookie (a browser sends it by itself: writes need proof).
    pub session: bool,
    /// The session's CSRF token, and the `X-CSRF-Token` header sent.
    pub csrf_expected: Option<&'a str>,
    pub csrf_given: &'a str,
    /// The `Origin` header, and this server's origin.
    pub origin: Option<&'a str>,
    pub ours: &'a str,
}

/// Why [`authorize`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A console write without its session's CSRF token, or from another origin.
    Csrf,
    /// The caller's role is below the route's.
    Role(Role),
}

/// May an authenticated caller of `role` make this request? A console write must carry its
/// session's CSRF token and, when the browser names its origin, come from this one; then the
/// role must reach the route's ([`access`]).
pub fn authorize(access: Access, role: Role, p: Presented<'_>) -> Result<(), Refusal> {
    if p.write && p.session {
        let token_ok = p.csrf_expected.is_some_and(|expected| same(p.csrf_given, expected));
        if !token_ok || p.origin.is_some_and(|o| o != p.ours) {
            return Err(Refusal::Csrf);
        }
    }
    match access {
        Access::Role(needed) if role < needed => Err(Refusal::Role(role)),
        _ => Ok(()),
    }
}

/// The admin directory object, as the core calls it.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait Admins {
    async fn admins(&self, call: AdminCall) -> Result<Result<AdminReply, AdminError>, StoreError>;
}

/// How a console sign-in ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    Started {
        cookie: String,
        csrf: String,
        admin: AdminView,
    },
    /// Wrong email or password (one answer for both), or the password changed meanwhile.
    Refused,
    /// The account or the address is at its failure limit: nothing was checked.
    RateLimited {
        retry_after: u64,
    },
}

/// Who the audit log says tried to sign in: the email given when it is one an admin could
/// have; anything else a caller types is not written under its own name (it could read
/// "bootstrap").
pub fn sign_in_actor(email: &str) -> String {
    if crate::users::valid_email(email) {
        email.to_string()
    } else {
        "(not an email)".to_string()
    }
}

/// A console sign-in, limited like the enrollment sign-in page: the attempt counts against the
/// account's and the client address's failure windows before the password is checked (so
/// guesses sent in parallel are limited too) and is given back when it succeeds. An unknown
/// email is checked against a dummy hash, so timing does not tell which accounts exist; the
/// session starts only if the hash checked is still the account's.
pub async fn sign_in<P: Admins + Authority + Kdf>(
    ports: &P,
    email: &str,
    password: &str,
    client: Option<&str>,
    limit: RateLimit,
    ttl_secs: u64,
) -> Result<SignInOutcome, StoreError> {
    let keys = crate::signin::attempt_keys("admin-", email, client);
    match ports.tokens(TokenCall::Attempt { keys: keys.clone(), limit }).await? {
        Ok(_) => {}
        Err(TokenCallError::RateLimited { retry_after }) => {
            return Ok(SignInOutcome::RateLimited { retry_after })
        }
        Err(e) => return Err(StoreError(format!("token authority refused the attempt: {e:?}"))),
    }
    let account = match ports.admins(AdminCall::Get { email: email.to_string() }).await? {
        Ok(AdminReply::Account(a)) => a,
        other => return Err(StoreError(format!("admin directory answered {other:?}"))),
    };
    let stored = account.as_ref().map_or(DUMMY_HASH, |a| a.password_hash.as_str()).to_string();
    if !(verify_hash(ports, &stored, password).await? && account.is_some()) {
        return Ok(SignInOutcome::Refused);
    }
    ports.tokens(TokenCall::Release { keys }).await?.map_err(|e| StoreError(format!("{e:?}")))?;
    let call = AdminCall::StartSession { email: email.to_string(), ttl_secs, password_hash: stored };
    match ports.admins(call).await? {
        Ok(AdminReply::SessionStarted { cookie, csrf, admin }) => {
            Ok(SignInOutcome::Started { cookie, csrf, admin })
        }
        Err(AdminError::Refused | AdminError::NoSuchAdmin) => Ok(SignInOutcome::Refused),
        other => Err(StoreError(format!("admin directory answered {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mem {
        admins: RefCell<BTreeMap<String, AdminRecord>>,
        sessions: RefCell<BTreeMap<String, SessionRecord>>,
        tokens: RefCell<BTreeMap<String, ApiTokenRecord>>,
    }

    impl AdminStorage for Mem {
        async fn admin(&self, email: &str) -> Result<Option<AdminRecord>, StoreError> {
            Ok(self.admins.borrow().get(email).cloned())
        }
        async fn admins(&self) -> Result<Vec<AdminRecord>, StoreError> {
            Ok(self.admins.borrow().values().cloned().collect())
        }
        async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
            Ok(self.sessions.borrow().get(id).cloned())
        }
        async fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
            Ok(self.sessions.borrow().values().cloned().collect())
        }
        async fn token(&self, id: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
            Ok(self.tokens.borrow().get(id).cloned())
        }
        async fn tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
            Ok(self.tokens.borrow().values().cloned().collect())
        }
    }

    struct Counter(u8);
    impl Entropy for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    impl Mem {
        fn call(&self, call: AdminCall, now: u64) -> Result<AdminReply, AdminError> {
            thread_local!(static E: RefCell<Counter> = const { RefCell::new(Counter(0)) });
            let out = E
                .with(|e| crate::object_call::block_on(handle(self, call, now, &mut *e.borrow_mut())))
                .unwrap();
            for w in out.writes {
                match w {
                    AdminWrite::Admin(a) => {
                        self.admins.borrow_mut().insert(a.email.clone(), a);
                    }
                    AdminWrite::DeleteAdmin(e) => {
                        self.admins.borrow_mut().remove(&e);
                    }
                    AdminWrite::Session(s) => {
                        self.sessions.borrow_mut().insert(s.id.clone(), s);
                    }
                    AdminWrite::DeleteSession(id) => {
                        self.sessions.borrow_mut().remove(&id);
                    }
                    AdminWrite::Token(t) => {
                        self.tokens.borrow_mut().insert(t.id.clone(), t);
                    }
                    AdminWrite::DeleteToken(id) => {
                        self.tokens.borrow_mut().remove(&id);
                    }
                }
            }
            out.reply
        }

        fn create(&self, email: &str, role: Role) {
            let call = AdminCall::Create {
                email: email.into(),
                display_name: email.into(),
                role,
                password_hash: "h".into(),
            };
            self.call(call, 0).unwrap();
        }
    }

    /// The platform for [`sign_in`]: this directory, failure windows counted per key, PBKDF2.
    struct Ports {
        mem: Mem,
        failures: RefCell<BTreeMap<String, u32>>,
    }

    impl Admins for Ports {
        async fn admins(&self, call: AdminCall) -> Result<Result<AdminReply, AdminError>, StoreError> {
            Ok(self.mem.call(call, 1000))
        }
    }

    impl Authority for Ports {
        async fn tokens(
            &self,
            call: TokenCall,
        ) -> Result<Result<crate::tokens::authority::TokenReply, TokenCallError>, StoreError> {
            use crate::tokens::authority::TokenReply;
            let mut f = self.failures.borrow_mut();
            Ok(match call {
                TokenCall::Attempt { keys, limit } => {
                    if keys.iter().any(|k| f.get(k).copied().unwrap_or(0) >= limit.max_failures) {
                        Err(TokenCallError::RateLimited { retry_after: limit.window_secs })
                    } else {
                        keys.iter().for_each(|k| *f.entry(k.clone()).or_default() += 1);
                        Ok(TokenReply::Admitted)
                    }
                }
                TokenCall::Release { keys } => {
                    keys.iter().for_each(|k| *f.entry(k.clone()).or_default() -= 1);
                    Ok(TokenReply::Released)
                }
                other => panic!("not a sign-in call: {other:?}"),
            })
        }
    }

    impl Kdf for Ports {
        async fn pbkdf2_sha256(
            &self,
            password: &str,
            salt: &[u8],
            iterations: u32,
        ) -> Result<Vec<u8>, StoreError> {
            Ok(crate::users::reference_pbkdf2(password, salt, iterations).to_vec())
        }
    }

    #[test]
    fn sign_in_counts_every_attempt_and_gives_back_the_good_ones() {
        let ports = Ports { mem: Mem::default(), failures: RefCell::default() };
        let hash = crate::object_call::block_on(crate::users::hash_password(
            &ports,
            "a long passphrase",
            [3; 16],
            1000,
        ))
        .unwrap();
        let create = AdminCall::Create {
            email: "root@x.io".into(),
            display_name: "Root".into(),
            role: Role::Admin,
            password_hash: hash,
        };
        ports.mem.call(create, 0).unwrap();
        let limit = RateLimit { max_failures: 3, window_secs: 900 };
        let try_ = |email: &str, pw: &str, client| {
            crate::object_call::block_on(sign_in(&ports, email, pw, client, limit, 600)).unwrap()
        };
        assert_eq!(try_("root@x.io", "guess", Some("1.2.3.4")), SignInOutcome::Refused);
        assert_eq!(
            try_("nobody@x.io", "guess", Some("5.6.7.8")),
            SignInOutcome::Refused,
            "unknown: same answer"
        );
        let SignInOutcome::Started { admin, .. } = try_("root@x.io", "a long passphrase", Some("1.2.3.4"))
        else {
            panic!("the right password signs in")
        };
        assert_eq!(admin.role, Role::Admin);
        // The success gave its attempt back; the guess still counts, per account and address.
        assert_eq!(ports.failures.borrow()["admin-email:root@x.io"], 1);
        assert_eq!(ports.failures.borrow()["admin-ip:1.2.3.4"], 1);
        assert_eq!(try_("root@x.io", "guess", None), SignInOutcome::Refused);
        assert_eq!(try_("root@x.io", "guess", None), SignInOutcome::Refused);
        // At the limit nothing is checked, not even the right password.
        assert_eq!(
            try_("root@x.io", "a long passphrase", None),
            SignInOutcome::RateLimited { retry_after: 900 }
        );
        assert_eq!(ports.failures.borrow()["admin-ip:local"], 2, "no address: the local key");
        assert_eq!(sign_in_actor("root@x.io"), "root@x.io");
        assert_eq!(sign_in_actor("bootstrap"), "(not an email)");
    }

    #[test]
    fn console_writes_need_their_csrf_token_and_origin() {
        let p = Presented {
            write: true,
            session: true,
            csrf_expected: Some("t0k"),
            csrf_given: "t0k",
            origin: Some("https://mdm.example"),
            ours: "https://mdm.example",
        };
        let op = Access::Role(Role::Operator);
        assert_eq!(authorize(op, Role::Operator, p), Ok(()));
        assert_eq!(authorize(op, Role::Operator, Presented { origin: None, ..p }), Ok(()));
        assert_eq!(authorize(op, Role::Admin, Presented { csrf_given: "", ..p }), Err(Refusal::Csrf));
        assert_eq!(authorize(op, Role::Admin, Presented { csrf_given: "t0K", ..p }), Err(Refusal::Csrf));
        assert_eq!(authorize(op, Role::Admin, Presented { csrf_expected: None, ..p }), Err(Refusal::Csrf));
        let cross = Presented { origin: Some("https://evil.example"), ..p };
        assert_eq!(authorize(op, Role::Admin, cross), Err(Refusal::Csrf));
        // Reads and bearer tokens carry no CSRF token; the role still counts.
        assert_eq!(
            authorize(op, Role::Viewer, Presented { write: false, csrf_given: "", ..p }),
            Err(Refusal::Role(Role::Viewer))
        );
        assert_eq!(authorize(op, Role::Operator, Presented { session: false, csrf_given: "", ..p }), Ok(()));
        assert_eq!(authorize(Access::Any, Role::Viewer, Presented { write: false, ..p }), Ok(()));
    }

    #[test]
    fn access_by_role() {
        use Access::*;
        assert_eq!(access("GET", &["ca"]), Public);
        assert_eq!(access("POST", &["session"]), Public);
        assert_eq!(access("DELETE", &["session"]), Any);
        assert_eq!(access("POST", &["api-tokens"]), Any);
        assert_eq!(access("GET", &["admins"]), Role(super::Role::Admin));
        assert_eq!(access("GET", &["devices"]), Role(super::Role::Viewer));
        assert_eq!(access("GET", &["audit"]), Role(super::Role::Viewer));
        assert_eq!(access("POST", &["devices", "D", "commands"]), Role(super::Role::Operator));
        assert_eq!(access("DELETE", &["devices", "D"]), Role(super::Role::Operator));
        assert_eq!(access("PUT", &["profiles", "p"]), Role(super::Role::Operator));
        assert_eq!(access("PUT", &["groups", "g", "devices", "D"]), Role(super::Role::Operator));
        assert_eq!(access("POST", &["users"]), Role(super::Role::Admin));
        assert_eq!(access("POST", &["enrollment-tokens"]), Role(super::Role::Admin));
        assert_eq!(access("POST", &["anything-new"]), Role(super::Role::Admin));
        assert!(super::Role::Viewer < super::Role::Operator && super::Role::Operator < super::Role::Admin);
    }

    #[test]
    fn audit_actions_name_the_target() {
        assert_eq!(
            audit_action("DELETE", &["devices", "ABC"]),
            Some(("device.retire".into(), Some("device:ABC".into()), None))
        );
        assert_eq!(
            audit_action("DELETE", &["users", "a%40b.c"]),
            Some(("user.delete".into(), Some("user:a@b.c".into()), None))
        );
        assert_eq!(
            audit_action("PUT", &["groups", "g", "devices", "D"]),
            Some(("group.add_device".into(), Some("device:D".into()), Some("group:g".into())))
        );
        assert_eq!(audit_action("POST", &["devices", "D", "commands"]).unwrap().0, "device.command");
        assert_eq!(audit_action("PUT", &["groups", "g", "devices", "D"]).unwrap().0, "group.add_device");
        assert_eq!(audit_action("GET", &["devices"]), None);
        assert_eq!(audit_action("DELETE", &["profiles"]), None, "no such route, nothing changed");
        assert_eq!(audit_action("POST", &["nope"]), None);
        assert_eq!(audit_action("DELETE", &["profiles", "p1"]).unwrap().0, "profile.delete");
    }

    #[test]
    fn sessions_authenticate_until_they_end() {
        let m = Mem::default();
        m.create("a@x.io", Role::Operator);
        let Ok(AdminReply::SessionStarted { cookie, csrf, .. }) = m.call(
            AdminCall::StartSession { email: "a@x.io".into(), ttl_secs: 60, password_hash: "h".into() },
            1000,
        ) else {
            panic!()
        };
        let auth =
            |now| m.call(AdminCall::Authenticate { credential: Credential::Session(cookie.clone()) }, now);
        let Ok(AdminReply::Principal(p)) = auth(2000) else { panic!() };
        assert_eq!((p.admin.role, p.csrf.as_deref()), (Role::Operator, Some(csrf.as_str())));
        // Expired, then a tampered secret, then ended.
        assert_eq!(auth(61_001), Err(AdminError::Refused));
        let mut forged = cookie.clone();
        forged.replace_range(79.., if cookie.ends_with('0') { "1" } else { "0" });
        assert_eq!(
            m.call(AdminCall::Authenticate { credential: Credential::Session(forged) }, 2000),
            Err(AdminError::Refused)
        );
        m.call(AdminCall::EndSession { cookie: cookie.clone() }, 3000).unwrap();
        assert_eq!(auth(3000), Err(AdminError::Refused));
        // A session id used as an API token is not one.
        assert_eq!(
            m.call(AdminCall::Authenticate { credential: Credential::ApiToken(cookie) }, 2000),
            Err(AdminError::Refused)
        );
    }

    #[test]
    fn a_session_needs_the_password_it_was_checked_with() {
        let m = Mem::default();
        m.create("a@x.io", Role::Admin);
        let reset = AdminCall::Update {
            email: "a@x.io".into(),
            role: None,
            display_name: None,
            password_hash: Some("new".into()),
        };
        m.call(reset, 0).unwrap();
        // A sign-in that checked the old password while the reset landed.
        let late =
            AdminCall::StartSession { email: "a@x.io".into(), ttl_secs: 60, password_hash: "h".into() };
        assert_eq!(m.call(late, 1), Err(AdminError::Refused));
        let fresh =
            AdminCall::StartSession { email: "a@x.io".into(), ttl_secs: 60, password_hash: "new".into() };
        assert!(m.call(fresh, 1).is_ok());
    }

    #[test]
    fn api_tokens_follow_their_owner() {
        let m = Mem::default();
        m.create("root@x.io", Role::Admin);
        m.create("v@x.io", Role::Viewer);
        let Ok(AdminReply::ApiTokenCreated { view, token }) =
            m.call(AdminCall::CreateApiToken { admin: "v@x.io".into(), name: "ci".into() }, 0)
        else {
            panic!()
        };
        let secret = token.strip_prefix(API_TOKEN_PREFIX).unwrap().to_string();
        let auth =
            || m.call(AdminCall::Authenticate { credential: Credential::ApiToken(secret.clone()) }, 5000);
        let Ok(AdminReply::Principal(p)) = auth() else { panic!() };
        assert_eq!((p.admin.email.as_str(), p.admin.role, p.csrf), ("v@x.io", Role::Viewer, None));
        assert!(m.tokens.borrow()[&view.id].last_used_ms.is_some());
        // A role change applies at once.
        let up = AdminCall::Update {
            email: "v@x.io".into(),
            role: Some(Role::Operator),
            display_name: None,
            password_hash: None,
        };
        m.call(up, 0).unwrap();
        let Ok(AdminReply::Principal(p)) = auth() else { panic!() };
        assert_eq!(p.admin.role, Role::Operator);
        // Another admin cannot revoke it as "its own"; the owner can.
        let other = AdminCall::RevokeApiToken { id: view.id.clone(), admin: Some("root@x.io".into()) };
        assert_eq!(m.call(other, 0), Err(AdminError::NoSuchToken));
        m.call(AdminCall::RevokeApiToken { id: view.id, admin: Some("v@x.io".into()) }, 0).unwrap();
        assert_eq!(auth(), Err(AdminError::Refused));
    }

    #[test]
    fn the_last_admin_stays() {
        let m = Mem::default();
        m.create("root@x.io", Role::Admin);
        m.create("op@x.io", Role::Operator);
        let demote = |e: &str| AdminCall::Update {
            email: e.into(),
            role: Some(Role::Viewer),
            display_name: None,
            password_hash: None,
        };
        assert_eq!(m.call(demote("root@x.io"), 0), Err(AdminError::LastAdmin));
        assert_eq!(m.call(AdminCall::Delete { email: "root@x.io".into() }, 0), Err(AdminError::LastAdmin));
        m.create("second@x.io", Role::Admin);
        assert!(m.call(AdminCall::Delete { email: "root@x.io".into() }, 0).is_ok());
        assert_eq!(
            m.call(
                AdminCall::Create {
                    email: "op@x.io".into(),
                    display_name: "o".into(),
                    role: Role::Admin,
                    password_hash: "h".into()
                },
                0
            ),
            Err(AdminError::Exists)
        );
    }

    #[test]
    fn deleting_an_admin_ends_its_sessions_and_tokens() {
        let m = Mem::default();
        m.create("root@x.io", Role::Admin);
        m.create("op@x.io", Role::Operator);
        let Ok(AdminReply::SessionStarted { cookie, .. }) = m.call(
            AdminCall::StartSession { email: "op@x.io".into(), ttl_secs: 600, password_hash: "h".into() },
            0,
        ) else {
            panic!()
        };
        m.call(AdminCall::CreateApiToken { admin: "op@x.io".into(), name: "t".into() }, 0).unwrap();
        m.call(AdminCall::Delete { email: "op@x.io".into() }, 0).unwrap();
        assert!(m.sessions.borrow().is_empty() && m.tokens.borrow().is_empty());
        assert_eq!(
            m.call(AdminCall::Authenticate { credential: Credential::Session(cookie) }, 1),
            Err(AdminError::Refused)
        );
    }

    #[test]
    fn secrets_are_shaped_and_hashed() {
        assert_eq!(split_secret("zz"), None);
        assert_eq!(split_secret(&"G".repeat(80)), None);
        let (id, hash) = split_secret(&"a".repeat(80)).unwrap();
        assert_eq!((id.len(), hash.len()), (16, 64));
        assert!(valid_password("short").is_err() && valid_password("long enough pw").is_ok());
        assert!(valid_name("  ").is_err() && valid_name("ci\u{7}").is_err());
    }
}
