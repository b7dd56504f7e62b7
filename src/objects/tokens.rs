//! The token authority Durable Object: the only place the token-signing key exists, and the
//! strongly consistent state of enrollment tokens. One instance (named "tokens") serves the
//! deployment. A request's reads and writes run under the object's input gate, so a
//! check-then-write here is atomic with respect to every other request: a login token is
//! consumed once, an admin token with `uses: 3` enrolls exactly three devices, and concurrent
//! sign-in attempts cannot overrun the failure limit.
//!
//! Storage (values are JSON text, see [`JsonStorage`]):
//! - `hmac_key`: base64 of the 32-byte HMAC-SHA256 key, generated on first use, never exported
//! - `used:<jti>`: a consumed login token ([`UsedToken`]), kept until the token's expiry
//! - `etok:<id>`: an admin enrollment token ([`EnrollTokenRecord`]); the secret itself is not
//!   stored (it is the signature, recomputable only with the key)
//! - `rl:<key>`: a sign-in failure window ([`Window`]) for `email:<email>` or `ip:<address>`
//! - `next_sweep`: when expired `used:` and `rl:` entries are next deleted (unix seconds)

use crate::objects::{now_ms, now_secs, random_bytes, storage_error, Batch, JsonStorage};
use crate::proto::soap::{decode_base64, encode_base64, format_timestamp};
use crate::tokens::{self, Claims, RateLimit, TokenError, TokenType, Window, KEY_LEN};
use serde::{Deserialize, Serialize};
use worker::*;

pub const BINDING: &str = "TOKENS";
pub const INSTANCE: &str = "tokens";

const KEY: &str = "hmac_key";
const NEXT_SWEEP: &str = "next_sweep";
const SWEEP_EVERY_SECS: u64 = 3600;
/// Devices remembered per admin token (for the listing); uses are counted regardless.
const MAX_DEVICES_LISTED: usize = 100;

/// `POST /login`: issue a login token (the sign-in page's `wresult`) and give back the
/// admitted attempt of the sign-in that earned it.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssueLogin {
    pub sub: String,
    pub dev: Option<String>,
    pub ttl_secs: u64,
    pub release: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Issued {
    pub token: String,
    pub exp: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Policy request, or an enrollment token typed on the sign-in page: verify only.
    Check,
    /// Enrollment (RST): verify and spend, atomically.
    Consume,
}

/// `POST /token`: check or consume a token.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenUse {
    pub token: String,
    pub stage: Stage,
    /// The enrolling device (RST `DeviceID`), recorded at consumption and compared with a
    /// token's `dev` binding.
    pub device_id: Option<String>,
    /// When set, the token must belong to this user.
    pub email: Option<String>,
}

/// Answer of `POST /token`: the token's user, or why it is refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenVerdict {
    pub sub: Option<String>,
    pub typ: Option<TokenType>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UsedToken {
    pub device_id: Option<String>,
    pub used_at: String,
    pub exp: u64,
}

/// `POST /enrollment-tokens`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewEnrollToken {
    pub email: String,
    pub expires_in_seconds: u64,
    pub uses: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollTokenRecord {
    pub id: String,
    pub email: String,
    pub created_at: String,
    /// Unix seconds.
    pub exp: u64,
    pub uses: u32,
    pub remaining: u32,
    pub revoked: bool,
    pub devices: Vec<String>,
}

/// What the admin API shows of an enrollment token: never the token itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollTokenView {
    pub id: String,
    pub email: String,
    pub created_at: String,
    pub expires_at: String,
    pub uses: u32,
    pub remaining: u32,
    pub revoked: bool,
    pub expired: bool,
    pub devices: Vec<String>,
}

impl EnrollTokenRecord {
    fn view(&self, now: u64) -> EnrollTokenView {
        EnrollTokenView {
            id: self.id.clone(),
            email: self.email.clone(),
            created_at: self.created_at.clone(),
            expires_at: format_timestamp(self.exp * 1000),
            uses: self.uses,
            remaining: self.remaining,
            revoked: self.revoked,
            expired: now >= self.exp,
            devices: self.devices.clone(),
        }
    }
}

/// `POST /attempt`: admit a sign-in attempt for every key, or for none.
#[derive(Debug, Serialize, Deserialize)]
pub struct Attempt {
    pub keys: Vec<String>,
    pub limit: RateLimit,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Release {
    pub keys: Vec<String>,
}

fn used_key(jti: &str) -> String {
    format!("used:{jti}")
}

fn etok_key(id: &str) -> String {
    format!("etok:{id}")
}

fn rl_key(key: &str) -> String {
    format!("rl:{key}")
}

fn refuse(e: TokenError) -> Result<Response> {
    Ok(Response::from_json(&TokenVerdict { sub: None, typ: None, error: Some(e.code().into()) })?.with_status(401))
}

#[durable_object]
pub struct TokenAuthority {
    state: State,
}

impl DurableObject for TokenAuthority {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/login") => {
                let Ok(r) = req.json::<IssueLogin>().await else {
                    return Response::error("malformed login issue", 400);
                };
                self.issue_login(r).await
            }
            (Method::Post, "/token") => {
                let Ok(r) = req.json::<TokenUse>().await else {
                    return Response::error("malformed token use", 400);
                };
                self.use_token(r).await
            }
            (Method::Post, "/enrollment-tokens") => {
                let Ok(r) = req.json::<NewEnrollToken>().await else {
                    return Response::error("malformed enrollment token", 400);
                };
                self.create_enroll_token(r).await
            }
            (Method::Get, "/enrollment-tokens") => self.list_enroll_tokens().await,
            (Method::Delete, p) if p.starts_with("/enrollment-tokens/") => {
                self.revoke(&p["/enrollment-tokens/".len()..]).await
            }
            (Method::Post, "/attempt") => {
                let Ok(r) = req.json::<Attempt>().await else {
                    return Response::error("malformed attempt", 400);
                };
                self.attempt(r).await
            }
            (Method::Post, "/release") => {
                let Ok(r) = req.json::<Release>().await else {
                    return Response::error("malformed release", 400);
                };
                self.release(&r.keys).await?;
                Response::empty().map(|r| r.with_status(204))
            }
            _ => Response::error("no such token operation", 404),
        }
    }
}

impl TokenAuthority {
    fn storage(&self) -> JsonStorage {
        JsonStorage(self.state.storage())
    }

    /// The signing key, created on first use (under the input gate: two first requests cannot
    /// both create one).
    async fn key(&self) -> Result<Vec<u8>> {
        let storage = self.storage();
        if let Some(b64) = storage.get::<String>(KEY).await? {
            return decode_base64(&b64).filter(|k| k.len() == KEY_LEN).ok_or_else(|| storage_error("stored token key unreadable"));
        }
        let key = random_bytes::<KEY_LEN>();
        storage.put(KEY, &encode_base64(&key)).await?;
        Ok(key.to_vec())
    }

    async fn issue_login(&self, r: IssueLogin) -> Result<Response> {
        let key = self.key().await?;
        let exp = now_secs() + r.ttl_secs.max(1);
        let claims = Claims {
            typ: TokenType::Login,
            sub: r.sub,
            exp,
            jti: crate::enrollment::hex(&random_bytes::<16>()),
            dev: r.dev,
        };
        self.release(&r.release).await?;
        Response::from_json(&Issued { token: tokens::sign(&key, &claims), exp })
    }

    async fn use_token(&self, r: TokenUse) -> Result<Response> {
        let key = self.key().await?;
        let now = now_secs();
        let claims = match tokens::verify(&key, &r.token, now) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        if r.email.as_deref().is_some_and(|e| e != claims.sub) {
            return refuse(TokenError::WrongUser);
        }
        if let (Some(bound), Some(device)) = (&claims.dev, &r.device_id) {
            if bound != device {
                return refuse(TokenError::WrongDevice);
            }
        }
        let storage = self.storage();
        match claims.typ {
            TokenType::Login => {
                if storage.get::<UsedToken>(&used_key(&claims.jti)).await?.is_some() {
                    return refuse(TokenError::AlreadyUsed);
                }
                if r.stage == Stage::Consume {
                    let used = UsedToken { device_id: r.device_id.clone(), used_at: format_timestamp(now_ms()), exp: claims.exp };
                    let mut batch = Batch::default();
                    batch.put(&used_key(&claims.jti), &used)?;
                    self.sweep_into(&mut batch, now).await?;
                    storage.commit(batch).await?;
                }
            }
            TokenType::Enroll => {
                let Some(mut rec) = storage.get::<EnrollTokenRecord>(&etok_key(&claims.jti)).await? else {
                    return refuse(TokenError::Unknown);
                };
                if rec.revoked {
                    return refuse(TokenError::Revoked);
                }
                if now >= rec.exp {
                    return refuse(TokenError::Expired);
                }
                if rec.remaining == 0 {
                    return refuse(TokenError::Exhausted);
                }
                if r.stage == Stage::Consume {
                    rec.remaining -= 1;
                    if let Some(d) = &r.device_id {
                        if rec.devices.len() < MAX_DEVICES_LISTED {
                            rec.devices.push(d.clone());
                        }
                    }
                    storage.put(&etok_key(&rec.id), &rec).await?;
                }
            }
        }
        Response::from_json(&TokenVerdict { sub: Some(claims.sub), typ: Some(claims.typ), error: None })
    }

    async fn create_enroll_token(&self, r: NewEnrollToken) -> Result<Response> {
        let key = self.key().await?;
        let now = now_secs();
        let rec = EnrollTokenRecord {
            id: crate::enrollment::hex(&random_bytes::<8>()),
            email: r.email,
            created_at: format_timestamp(now_ms()),
            exp: now + r.expires_in_seconds,
            uses: r.uses,
            remaining: r.uses,
            revoked: false,
            devices: Vec::new(),
        };
        let claims = Claims { typ: TokenType::Enroll, sub: rec.email.clone(), exp: rec.exp, jti: rec.id.clone(), dev: None };
        self.storage().put(&etok_key(&rec.id), &rec).await?;
        let mut body = serde_json::to_value(rec.view(now))?;
        body["token"] = serde_json::Value::String(tokens::sign(&key, &claims));
        Ok(Response::from_json(&body)?.with_status(201))
    }

    async fn values<T: for<'de> Deserialize<'de>>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        let map = self.state.storage().list_with_options(ListOptions::new().prefix(prefix)).await?;
        let mut out = Vec::new();
        let mut bad = None;
        map.for_each(&mut |value, key| {
            let (Some(k), Some(v)) = (key.as_string(), value.as_string()) else {
                bad = Some("non-text entry");
                return;
            };
            match serde_json::from_str::<T>(&v) {
                Ok(t) => out.push((k, t)),
                Err(_) => bad = Some("unreadable entry"),
            }
        });
        if let Some(why) = bad {
            console_log!("token authority: {why} under {prefix}");
        }
        Ok(out)
    }

    async fn list_enroll_tokens(&self) -> Result<Response> {
        let now = now_secs();
        let mut recs: Vec<EnrollTokenRecord> = self.values("etok:").await?.into_iter().map(|(_, r)| r).collect();
        recs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let views: Vec<EnrollTokenView> = recs.iter().map(|r| r.view(now)).collect();
        Response::from_json(&serde_json::json!({ "tokens": views }))
    }

    async fn revoke(&self, id: &str) -> Result<Response> {
        let storage = self.storage();
        let Some(mut rec) = storage.get::<EnrollTokenRecord>(&etok_key(id)).await? else {
            return Response::error("no such enrollment token", 404);
        };
        rec.revoked = true;
        storage.put(&etok_key(id), &rec).await?;
        Response::from_json(&rec.view(now_secs()))
    }

    async fn attempt(&self, r: Attempt) -> Result<Response> {
        let now = now_secs();
        let storage = self.storage();
        let mut batch = Batch::default();
        for k in &r.keys {
            let current = storage.get::<Window>(&rl_key(k)).await?;
            match r.limit.admit(current, now) {
                Some(w) => batch.put(&rl_key(k), &w)?,
                None => {
                    let retry = current.map(|w| w.reset_at.saturating_sub(now)).unwrap_or(0);
                    return Ok(Response::from_json(&serde_json::json!({ "allowed": false, "retry_after": retry }))?
                        .with_status(429));
                }
            }
        }
        self.sweep_into(&mut batch, now).await?;
        storage.commit(batch).await?;
        Response::from_json(&serde_json::json!({ "allowed": true }))
    }

    async fn release(&self, keys: &[String]) -> Result<()> {
        let now = now_secs();
        let storage = self.storage();
        let mut batch = Batch::default();
        let mut gone = Vec::new();
        for k in keys {
            match RateLimit::release(storage.get::<Window>(&rl_key(k)).await?, now) {
                Some(w) => batch.put(&rl_key(k), &w)?,
                None => gone.push(rl_key(k)),
            }
        }
        storage.commit(batch).await?;
        if !gone.is_empty() {
            self.state.storage().delete_multiple(gone).await?;
        }
        Ok(())
    }

    /// Once an hour, deletes consumed login tokens past their expiry (they are refused as
    /// expired anyway) and ended failure windows.
    async fn sweep_into(&self, batch: &mut Batch, now: u64) -> Result<()> {
        let storage = self.storage();
        if storage.get::<u64>(NEXT_SWEEP).await?.is_some_and(|t| now < t) {
            return Ok(());
        }
        let mut stale: Vec<String> =
            self.values::<UsedToken>("used:").await?.into_iter().filter(|(_, u)| now >= u.exp).map(|(k, _)| k).collect();
        stale.extend(self.values::<Window>("rl:").await?.into_iter().filter(|(_, w)| now >= w.reset_at).map(|(k, _)| k));
        for chunk in stale.chunks(128) {
            self.state.storage().delete_multiple(chunk.to_vec()).await?;
        }
        batch.put(NEXT_SWEEP, &(now + SWEEP_EVERY_SECS))
    }
}
