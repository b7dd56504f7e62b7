//! The token authority's rules: the operations of the token authority Durable Object, the only
//! place the token-signing key exists and the strongly consistent state of enrollment tokens.
//! A login token is consumed once, an admin token with `uses: 3` enrolls exactly three devices,
//! and concurrent sign-in attempts cannot overrun the failure limit: the object runs one call
//! at a time (its input gate), and every call here reads, decides and returns its writes,
//! which the object commits together.

use super::{Claims, RateLimit, TokenError, TokenType, Window, KEY_LEN, MAX_TOKEN_LEN};
use crate::codec::{decode_base64, encode_base64};
use crate::context::Entropy;
use crate::object_call::{Outcome, StoreError};
use crate::time::format_timestamp;
use serde::{Deserialize, Serialize};

/// Longest lifetime of an admin enrollment token: 90 days.
pub const MAX_ENROLL_TOKEN_SECS: u64 = 90 * 86_400;
pub const MAX_ENROLL_TOKEN_USES: u32 = 100_000;
/// Devices remembered per admin token (for the listing); uses are counted regardless.
pub const MAX_DEVICES_LISTED: usize = 100;
/// How often consumed login tokens past their expiry and ended failure windows are deleted.
pub const SWEEP_EVERY_SECS: u64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The signature, expiry and user only, at the edge, with no object call: a policy
    /// request's credential (the policy is public), and an enrollment request's, whose state is
    /// checked when the same request spends it.
    Verify,
    /// Also whether the token is still good (not spent, revoked or exhausted), without spending
    /// it: an enrollment token typed on the sign-in page.
    Check,
    /// Enrollment (RST): verify and spend, atomically.
    Consume,
}

/// A consumed login token (storage `used:<jti>`), kept until the token's expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedToken {
    pub device_id: Option<String>,
    pub used_at: String,
    pub exp: u64,
}

/// An admin enrollment token (storage `etok:<id>`); the secret itself is not stored (it is the
/// signature, recomputable only with the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub fn view(&self, now: u64) -> EnrollTokenView {
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

/// `POST /api/v1/enrollment-tokens` as the admin sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnrollTokenRequest {
    pub email: String,
    pub expires_in_seconds: Option<u64>,
    pub uses: Option<u32>,
}

impl NewEnrollTokenRequest {
    /// The checked request with its defaults (a day, one use), or what is wrong with it.
    pub fn validate(self) -> Result<(String, u64, u32), String> {
        let email = crate::users::normalize_email(&self.email);
        if !crate::users::valid_email(&email) {
            return Err("email is not a valid address".into());
        }
        let secs = self.expires_in_seconds.unwrap_or(86_400);
        if !(1..=MAX_ENROLL_TOKEN_SECS).contains(&secs) {
            return Err(format!("expires_in_seconds must be from 1 to {MAX_ENROLL_TOKEN_SECS}"));
        }
        let uses = self.uses.unwrap_or(1);
        if !(1..=MAX_ENROLL_TOKEN_USES).contains(&uses) {
            return Err(format!("uses must be from 1 to {MAX_ENROLL_TOKEN_USES}"));
        }
        Ok((email, secs, uses))
    }
}

/// Enrollment token ids are 16 lower-case hex digits.
pub fn valid_token_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Shape checks that need no key: they save a round trip to the object for garbage.
pub fn precheck(token: &str) -> Result<(), TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("length"));
    }
    Ok(())
}

/// What the token authority does, as the rest of the server asks it ([`super::client::call`]
/// runs it at the edge over the token objects). Never sent anywhere: it has no wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCall {
    /// Issue a login token (the sign-in page's `wresult`) and give back the admitted attempt
    /// of the sign-in that earned it.
    IssueLogin {
        sub: String,
        dev: Option<String>,
        ttl_secs: u64,
        release: Vec<String>,
    },
    /// Check or consume a token. `device_id`: the enrolling device (RST `DeviceID`), recorded at
    /// consumption and compared with a token's `dev` binding. `email`: when set, the token
    /// must belong to this user.
    Use {
        token: String,
        stage: Stage,
        device_id: Option<String>,
        email: Option<String>,
    },
    CreateEnrollToken {
        email: String,
        expires_in_seconds: u64,
        uses: u32,
    },
    /// One page of enrollment tokens: those of the users after `after` (an email, the
    /// `next_cursor` of the page before), [`super::client::MAX_HOLDERS_LISTED`] users a page.
    ListEnrollTokens {
        after: Option<String>,
    },
    RevokeEnrollToken {
        id: String,
    },
    /// Admit a sign-in attempt for every key, or for none.
    Attempt {
        keys: Vec<String>,
        limit: RateLimit,
    },
    /// Give back the attempt of a sign-in that succeeded.
    Release {
        keys: Vec<String>,
    },
    /// Is any key at its failure limit? (A password check at the SOAP endpoints asks first,
    /// then counts only failures, so that concurrent enrollments of one user are not limited.)
    CheckLimit {
        keys: Vec<String>,
        limit: RateLimit,
    },
    /// Count a failed password check against every key.
    Failed {
        keys: Vec<String>,
        limit: RateLimit,
    },
    /// The user was deleted: every token issued to them until now is refused from now on.
    RevokeUser {
        email: String,
    },
}

/// An operation of one token object instance: the root ([`super::ROOT`]), a user's
/// ([`super::user_shard`]) or a rate-limit key's ([`super::window_shard`]). Signatures are
/// checked at the edge before a call is made; an object keeps only what must be consistent.
/// On the wire externally tagged (`{"use":{…}}`): serde reads it in one pass, without
/// buffering the call to find an internal tag first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectCall {
    /// The token-signing key, created on first use (root). Each edge isolate reads it once.
    SigningKey,
    /// Check or spend a token whose signature and expiry the edge has verified.
    Use {
        claims: Claims,
        stage: Stage,
        device_id: Option<String>,
    },
    /// Keep a new enrollment token (its user's instance).
    PutEnrollToken {
        record: EnrollTokenRecord,
    },
    /// Remember which user's instance holds an enrollment token (root).
    RegisterEnrollToken {
        id: String,
        email: String,
    },
    /// The enrollment tokens this instance holds and (root) the users whose instances hold
    /// the others.
    ListEnrollTokens,
    /// Revoke a token this instance holds; the root answers with the user whose instance
    /// holds it.
    RevokeEnrollToken {
        id: String,
    },
    /// Admit a sign-in attempt against the instance's one key ([`super::window_shard`]); the
    /// edge admits the keys of a sign-in one after another and gives back what a refusal
    /// leaves admitted.
    Attempt {
        key: String,
        limit: RateLimit,
    },
    Release {
        key: String,
    },
    CheckLimit {
        key: String,
        limit: RateLimit,
    },
    Failed {
        key: String,
        limit: RateLimit,
    },
    RevokeUser {
        email: String,
    },
    /// The object's alarm: delete everything the expiry index says is due, whenever the last
    /// sweep was, so that an instance whose windows and spent tokens have all ended (a client
    /// address never seen again) keeps no rows.
    Sweep,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenReply {
    LoginIssued {
        token: String,
        exp: u64,
    },
    /// The token is good: its user and type.
    Accepted {
        sub: String,
        typ: TokenType,
    },
    EnrollTokenCreated {
        view: EnrollTokenView,
        token: String,
    },
    /// A page of enrollment tokens; `next_cursor` names the last user listed when more follow.
    EnrollTokens {
        tokens: Vec<EnrollTokenView>,
        next_cursor: Option<String>,
    },
    Revoked(EnrollTokenView),
    Admitted,
    Released,
    /// Counted, or below the limit.
    Noted,
    UserRevoked {
        enrollment_tokens: usize,
    },
    /// (Object replies.) The signing key, base64.
    SigningKey {
        key: String,
    },
    Stored,
    /// The tokens an instance holds, and the users whose instances hold others (root only).
    EnrollTokenList {
        tokens: Vec<EnrollTokenView>,
        owners: Vec<String>,
    },
    /// The token is held by this user's instance (root's answer to a revocation).
    HeldBy {
        email: String,
    },
    /// Swept; when the next entry of the expiry index is due (Unix seconds), if any is left.
    Swept {
        next_due: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCallError {
    /// The token is refused: an Authentication fault, or the sign-in form again.
    Refused(TokenError),
    NoSuchToken,
    /// A key is at its failure limit.
    RateLimited {
        retry_after: u64,
    },
}

/// What the token authority reads.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait TokenStorage {
    /// The signing key as stored (base64), if one was created.
    async fn key(&self) -> Result<Option<String>, StoreError>;
    async fn used(&self, jti: &str) -> Result<Option<UsedToken>, StoreError>;
    async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>, StoreError>;
    async fn enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>, StoreError>;
    async fn window(&self, key: &str) -> Result<Option<Window>, StoreError>;
    async fn next_sweep(&self) -> Result<Option<u64>, StoreError>;
    /// When the user's tokens were revoked (Unix milliseconds), if they were.
    async fn user_revoked(&self, email: &str) -> Result<Option<u64>, StoreError>;
    /// (Root.) The user whose instance holds an enrollment token.
    async fn holder(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// (Root.) Every user whose instance holds enrollment tokens, once each.
    async fn holders(&self) -> Result<Vec<String>, StoreError>;
    /// When the first entry of the expiry index due after `now` (Unix seconds) is due.
    async fn next_expiry_after(&self, now: u64) -> Result<Option<u64>, StoreError>;
    /// Entries of the expiry index due at or before `now` (Unix seconds), oldest first, at
    /// most `limit`: what the sweep deletes, found without reading anything else.
    async fn expired(&self, now: u64, limit: usize) -> Result<Vec<Expiry>, StoreError>;
}

/// What an entry of the expiry index points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expiring {
    Used(String),
    Window(String),
}

/// One entry of the expiry index: `target` may be deleted from `at` (Unix seconds) on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry {
    pub at: u64,
    pub target: Expiring,
}

/// Most expiry entries handled by one sweep.
pub const SWEEP_BATCH: usize = 128;

/// The token authority's writes, committed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenWrite {
    Key(String),
    Used(String, UsedToken),
    DeleteUsed(String),
    EnrollToken(EnrollTokenRecord),
    Window(String, Window),
    DeleteWindow(String),
    NextSweep(u64),
    DeleteNextSweep,
    UserRevoked(String, u64),
    Expiry(Expiry),
    DeleteExpiry(Expiry),
    /// (Root.) Enrollment token id → the user whose instance holds it.
    Holder(String, String),
}

type TokenOutcome = Outcome<TokenReply, TokenCallError, TokenWrite>;

/// Runs one call of a token object instance. `now_ms`: Unix milliseconds.
pub async fn handle<S: TokenStorage>(
    store: &S,
    call: ObjectCall,
    now_ms: u64,
    entropy: &mut impl Entropy,
) -> Result<TokenOutcome, StoreError> {
    let now = now_ms / 1000;
    let mut writes = Vec::new();
    match call {
        ObjectCall::SigningKey => {
            let key = signing_key(store, entropy, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::SigningKey { key: encode_base64(&key) }, writes))
        }
        ObjectCall::Use { claims, stage, device_id } => {
            let refuse = |e| Ok(Outcome::refuse(TokenCallError::Refused(e)));
            // The edge checked the expiry too; checked again against this object's clock.
            if now >= claims.exp {
                return refuse(TokenError::Expired);
            }
            // A deleted user's login tokens are refused by their issue time; enrollment tokens
            // are marked revoked one by one when the user is deleted (no read needed here).
            if claims.typ == TokenType::Login
                && store.user_revoked(&claims.sub).await?.is_some_and(|at| claims.iat_ms <= at)
            {
                return refuse(TokenError::Revoked);
            }
            if let (Some(bound), Some(device)) = (&claims.dev, &device_id) {
                if bound != device {
                    return refuse(TokenError::WrongDevice);
                }
            }
            match claims.typ {
                TokenType::Login => {
                    if store.used(&claims.jti).await?.is_some() {
                        return refuse(TokenError::AlreadyUsed);
                    }
                    if stage == Stage::Consume {
                        let used =
                            UsedToken { device_id, used_at: format_timestamp(now_ms), exp: claims.exp };
                        writes.push(TokenWrite::Used(claims.jti.clone(), used));
                        let at = claims.exp;
                        writes.push(TokenWrite::Expiry(Expiry {
                            at,
                            target: Expiring::Used(claims.jti.clone()),
                        }));
                        sweep_into(store, now, &mut writes).await?;
                    }
                }
                TokenType::Enroll => {
                    let Some(mut rec) = store.enroll_token(&claims.jti).await? else {
                        return refuse(TokenError::Unknown);
                    };
                    if rec.email != claims.sub {
                        return refuse(TokenError::Unknown);
                    }
                    if rec.revoked {
                        return refuse(TokenError::Revoked);
                    }
                    if now >= rec.exp {
                        return refuse(TokenError::Expired);
                    }
                    if rec.remaining == 0 {
                        return refuse(TokenError::Exhausted);
                    }
                    if stage == Stage::Consume {
                        rec.remaining -= 1;
                        if let Some(d) = device_id {
                            if rec.devices.len() < MAX_DEVICES_LISTED {
                                rec.devices.push(d);
                            }
                        }
                        writes.push(TokenWrite::EnrollToken(rec));
                    }
                }
            }
            Ok(Outcome::reply(TokenReply::Accepted { sub: claims.sub, typ: claims.typ }, writes))
        }
        ObjectCall::PutEnrollToken { record } => {
            writes.push(TokenWrite::EnrollToken(record));
            Ok(Outcome::reply(TokenReply::Stored, writes))
        }
        ObjectCall::RegisterEnrollToken { id, email } => {
            writes.push(TokenWrite::Holder(id, email));
            Ok(Outcome::reply(TokenReply::Stored, writes))
        }
        ObjectCall::ListEnrollTokens => {
            let recs = store.enroll_tokens().await?;
            let tokens = recs.iter().map(|r| r.view(now)).collect();
            Ok(Outcome::reply(TokenReply::EnrollTokenList { tokens, owners: store.holders().await? }, writes))
        }
        ObjectCall::RevokeEnrollToken { id } => {
            let Some(mut rec) = store.enroll_token(&id).await? else {
                return Ok(match store.holder(&id).await? {
                    Some(email) => Outcome::reply(TokenReply::HeldBy { email }, writes),
                    None => Outcome::refuse(TokenCallError::NoSuchToken),
                });
            };
            rec.revoked = true;
            let view = rec.view(now);
            writes.push(TokenWrite::EnrollToken(rec));
            Ok(Outcome::reply(TokenReply::Revoked(view), writes))
        }
        ObjectCall::Attempt { key, limit } => {
            let current = store.window(&key).await?;
            let Some(w) = limit.admit(current, now) else {
                let retry_after = current.map_or(0, |w| w.reset_at.saturating_sub(now));
                return Ok(Outcome::refuse(TokenCallError::RateLimited { retry_after }));
            };
            count_into(key, w, &mut writes);
            sweep_into(store, now, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::Admitted, writes))
        }
        ObjectCall::Release { key } => {
            writes.push(match RateLimit::release(store.window(&key).await?, now) {
                Some(w) => TokenWrite::Window(key, w),
                None => TokenWrite::DeleteWindow(key),
            });
            Ok(Outcome::reply(TokenReply::Released, writes))
        }
        ObjectCall::CheckLimit { key, limit } => {
            if let Some(w) =
                store.window(&key).await?.filter(|w| now < w.reset_at && w.count >= limit.max_failures)
            {
                let retry_after = w.reset_at.saturating_sub(now);
                return Ok(Outcome::refuse(TokenCallError::RateLimited { retry_after }));
            }
            Ok(Outcome::reply(TokenReply::Noted, writes))
        }
        ObjectCall::Failed { key, limit } => {
            // At the limit the window is left as it is (and keeps refusing until it ends).
            if let Some(w) = limit.admit(store.window(&key).await?, now) {
                count_into(key, w, &mut writes);
            }
            sweep_into(store, now, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::Noted, writes))
        }
        ObjectCall::Sweep => {
            let next_due = if delete_due(store, now, &mut writes).await? {
                Some(now)
            } else {
                store.next_expiry_after(now).await?
            };
            if next_due.is_none() {
                writes.push(TokenWrite::DeleteNextSweep);
            }
            Ok(Outcome::reply(TokenReply::Swept { next_due }, writes))
        }
        ObjectCall::RevokeUser { email } => {
            let mut n = 0;
            for mut rec in store.enroll_tokens().await?.into_iter().filter(|r| r.email == email && !r.revoked)
            {
                rec.revoked = true;
                writes.push(TokenWrite::EnrollToken(rec));
                n += 1;
            }
            writes.push(TokenWrite::UserRevoked(email, now_ms));
            Ok(Outcome::reply(TokenReply::UserRevoked { enrollment_tokens: n }, writes))
        }
    }
}

/// The signing key, created on first use (under the object's input gate: two first calls
/// cannot both create one).
async fn signing_key<S: TokenStorage>(
    store: &S,
    entropy: &mut impl Entropy,
    writes: &mut Vec<TokenWrite>,
) -> Result<Vec<u8>, StoreError> {
    if let Some(b64) = store.key().await? {
        return decode_base64(&b64)
            .filter(|k| k.len() == KEY_LEN)
            .ok_or_else(|| StoreError("stored token key unreadable".into()));
    }
    let key: [u8; KEY_LEN] = entropy.bytes();
    writes.push(TokenWrite::Key(encode_base64(&key)));
    Ok(key.to_vec())
}

/// A window counted once more: its new state, and on its first count the expiry entry that
/// deletes it when it ends.
fn count_into(key: String, w: Window, writes: &mut Vec<TokenWrite>) {
    if w.count == 1 {
        writes.push(TokenWrite::Expiry(Expiry { at: w.reset_at, target: Expiring::Window(key.clone()) }));
    }
    writes.push(TokenWrite::Window(key, w));
}

/// Once an hour, deletes consumed login tokens past their expiry (they are refused as expired
/// anyway) and ended failure windows, found through the expiry index: a bounded range read,
/// never a scan of every record.
async fn sweep_into<S: TokenStorage>(
    store: &S,
    now: u64,
    writes: &mut Vec<TokenWrite>,
) -> Result<(), StoreError> {
    if store.next_sweep().await?.is_some_and(|t| now < t) {
        return Ok(());
    }
    // A full batch may not be all: sweep again at the next call instead of in an hour, so
    // that entries made faster than one batch an hour cannot pile up.
    let more = delete_due(store, now, writes).await?;
    writes.push(TokenWrite::NextSweep(if more { now } else { now + SWEEP_EVERY_SECS }));
    Ok(())
}

/// Deletes at most [`SWEEP_BATCH`] entries of the expiry index that are due, and what they
/// point at; whether there may be more.
async fn delete_due<S: TokenStorage>(
    store: &S,
    now: u64,
    writes: &mut Vec<TokenWrite>,
) -> Result<bool, StoreError> {
    let due = store.expired(now, SWEEP_BATCH).await?;
    let more = due.len() == SWEEP_BATCH;
    for e in due {
        match &e.target {
            Expiring::Used(jti) => {
                if !writes.iter().any(|w| matches!(w, TokenWrite::Used(j, _) if j == jti)) {
                    writes.push(TokenWrite::DeleteUsed(jti.clone()));
                }
            }
            // A window may have been given back and opened again since this entry was written:
            // delete it only if it has really ended.
            Expiring::Window(k) => {
                let rewritten = writes.iter().any(|w| matches!(w, TokenWrite::Window(j, _) if j == k));
                if !rewritten && store.window(k).await?.is_none_or(|w| now >= w.reset_at) {
                    writes.push(TokenWrite::DeleteWindow(k.clone()));
                }
            }
        }
        writes.push(TokenWrite::DeleteExpiry(e));
    }
    Ok(more)
}

/// An in-memory token authority for native tests: the object rules above over maps, one
/// [`MemoryObject`] per instance, and the edge's rules ([`super::client`]) over them.
#[cfg(test)]
pub mod memory {
    use super::super::client::{self, TokenObjects};
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::rc::Rc;

    #[derive(Default)]
    pub struct MemoryObject {
        pub key: RefCell<Option<String>>,
        pub used: RefCell<BTreeMap<String, UsedToken>>,
        pub etoks: RefCell<BTreeMap<String, EnrollTokenRecord>>,
        pub windows: RefCell<BTreeMap<String, Window>>,
        pub next_sweep: RefCell<Option<u64>>,
        pub revoked_users: RefCell<BTreeMap<String, u64>>,
        pub expiry: RefCell<std::collections::BTreeSet<Expiry>>,
        pub holders: RefCell<BTreeMap<String, String>>,
    }

    impl TokenStorage for MemoryObject {
        async fn key(&self) -> Result<Option<String>, StoreError> {
            Ok(self.key.borrow().clone())
        }
        async fn used(&self, jti: &str) -> Result<Option<UsedToken>, StoreError> {
            Ok(self.used.borrow().get(jti).cloned())
        }
        async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>, StoreError> {
            Ok(self.etoks.borrow().get(id).cloned())
        }
        async fn enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>, StoreError> {
            Ok(self.etoks.borrow().values().cloned().collect())
        }
        async fn window(&self, key: &str) -> Result<Option<Window>, StoreError> {
            Ok(self.windows.borrow().get(key).copied())
        }
        async fn next_sweep(&self) -> Result<Option<u64>, StoreError> {
            Ok(*self.next_sweep.borrow())
        }
        async fn user_revoked(&self, email: &str) -> Result<Option<u64>, StoreError> {
            Ok(self.revoked_users.borrow().get(email).copied())
        }
        async fn expired(&self, now: u64, limit: usize) -> Result<Vec<Expiry>, StoreError> {
            Ok(self.expiry.borrow().iter().take_while(|e| e.at <= now).take(limit).cloned().collect())
        }
        async fn holder(&self, id: &str) -> Result<Option<String>, StoreError> {
            Ok(self.holders.borrow().get(id).cloned())
        }
        async fn next_expiry_after(&self, now: u64) -> Result<Option<u64>, StoreError> {
            Ok(self.expiry.borrow().iter().find(|e| e.at > now).map(|e| e.at))
        }
        async fn holders(&self) -> Result<Vec<String>, StoreError> {
            let mut v: Vec<String> = self.holders.borrow().values().cloned().collect();
            crate::sorting::sort(&mut v);
            v.dedup();
            Ok(v)
        }
    }

    impl MemoryObject {
        pub fn commit(&self, writes: Vec<TokenWrite>) {
            for w in writes {
                match w {
                    TokenWrite::Key(k) => *self.key.borrow_mut() = Some(k),
                    TokenWrite::Used(j, u) => {
                        self.used.borrow_mut().insert(j, u);
                    }
                    TokenWrite::DeleteUsed(j) => {
                        self.used.borrow_mut().remove(&j);
                    }
                    TokenWrite::EnrollToken(r) => {
                        self.etoks.borrow_mut().insert(r.id.clone(), r);
                    }
                    TokenWrite::Window(k, w) => {
                        self.windows.borrow_mut().insert(k, w);
                    }
                    TokenWrite::DeleteWindow(k) => {
                        self.windows.borrow_mut().remove(&k);
                    }
                    TokenWrite::NextSweep(t) => *self.next_sweep.borrow_mut() = Some(t),
                    TokenWrite::DeleteNextSweep => *self.next_sweep.borrow_mut() = None,
                    TokenWrite::UserRevoked(e, at) => {
                        self.revoked_users.borrow_mut().insert(e, at);
                    }
                    TokenWrite::Expiry(e) => {
                        self.expiry.borrow_mut().insert(e);
                    }
                    TokenWrite::DeleteExpiry(e) => {
                        self.expiry.borrow_mut().remove(&e);
                    }
                    TokenWrite::Holder(id, email) => {
                        self.holders.borrow_mut().insert(id, email);
                    }
                }
            }
        }
    }

    /// Every instance by name, the edge's key cache, and a count of object calls.
    #[derive(Default)]
    pub struct MemoryTokens {
        pub objects: RefCell<BTreeMap<String, Rc<MemoryObject>>>,
        pub cached_key: RefCell<Option<Vec<u8>>>,
        pub calls: RefCell<Vec<String>>,
        now_ms: Cell<u64>,
        entropy: Cell<u64>,
    }

    impl MemoryTokens {
        /// An authority whose objects draw other random numbers (another signing key).
        pub fn seeded(seed: u64) -> Self {
            let t = Self::default();
            t.entropy.set(seed);
            t
        }
    }

    impl TokenObjects for MemoryTokens {
        async fn token_object(
            &self,
            instance: &str,
            call: ObjectCall,
        ) -> Result<Result<TokenReply, TokenCallError>, StoreError> {
            self.calls.borrow_mut().push(instance.to_string());
            let object = self.at(instance);
            let mut e = crate::context::Counter(self.entropy.get());
            let out = handle(&*object, call, self.now_ms.get(), &mut e).await?;
            self.entropy.set(e.0 + 1_000_000);
            object.commit(out.writes);
            Ok(out.reply)
        }

        fn kept_key(&self) -> Option<Vec<u8>> {
            self.cached_key.borrow().clone()
        }

        fn keep_key(&self, key: &[u8]) {
            *self.cached_key.borrow_mut() = Some(key.to_vec());
        }
    }

    impl MemoryTokens {
        /// The instance of that name (created empty on first use, as the platform does).
        pub fn at(&self, instance: &str) -> Rc<MemoryObject> {
            self.objects.borrow_mut().entry(instance.to_string()).or_default().clone()
        }

        /// The objects' clock for calls made directly, Unix milliseconds.
        pub fn set_now(&self, now_ms: u64) {
            self.now_ms.set(now_ms);
        }

        /// The consumed login tokens of every instance.
        pub fn used(&self) -> BTreeMap<String, UsedToken> {
            self.objects.borrow().values().flat_map(|o| o.used.borrow().clone()).collect()
        }

        /// The enrollment token records of every instance.
        pub fn etoks(&self) -> BTreeMap<String, EnrollTokenRecord> {
            self.objects.borrow().values().flat_map(|o| o.etoks.borrow().clone()).collect()
        }

        /// The rate-limit windows of every instance.
        pub fn windows(&self) -> BTreeMap<String, Window> {
            self.objects.borrow().values().flat_map(|o| o.windows.borrow().clone()).collect()
        }

        /// One call as the edge runs it.
        pub fn call(
            &self,
            call: TokenCall,
            now_ms: u64,
            entropy: &mut impl Entropy,
        ) -> Result<TokenReply, TokenCallError> {
            self.now_ms.set(now_ms);
            crate::object_call::block_on(client::call(self, call, now_ms, entropy)).expect("memory store")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{user_shard, window_shard, ROOT};
    use super::memory::MemoryTokens;
    use super::*;
    use crate::context::Counter;

    const NOW: u64 = 1_800_000_000_000;

    fn issue_login(t: &MemoryTokens, dev: Option<&str>, e: &mut Counter) -> String {
        let call = TokenCall::IssueLogin {
            sub: "a@x.io".into(),
            dev: dev.map(Into::into),
            ttl_secs: 600,
            release: vec![],
        };
        match t.call(call, NOW, e) {
            Ok(TokenReply::LoginIssued { token, exp }) => {
                assert_eq!(exp, NOW / 1000 + 600);
                token
            }
            other => panic!("{other:?}"),
        }
    }

    fn use_token(token: &str, stage: Stage, device: Option<&str>, email: Option<&str>) -> TokenCall {
        TokenCall::Use {
            token: token.into(),
            stage,
            device_id: device.map(Into::into),
            email: email.map(Into::into),
        }
    }

    fn refused(r: Result<TokenReply, TokenCallError>) -> TokenError {
        match r {
            Err(TokenCallError::Refused(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn key_is_created_once_read_once_and_kept() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let a = issue_login(&t, None, e);
        let key = t.at(ROOT).key.borrow().clone().unwrap();
        let b = issue_login(&t, None, e);
        assert_eq!(t.at(ROOT).key.borrow().clone().unwrap(), key);
        assert_ne!(a, b, "fresh jti per token");
        assert_eq!(*t.calls.borrow(), [ROOT], "the edge reads the key once, then signs alone");
        // A token signed by another authority's key does not verify here, and reaches no object.
        let other = MemoryTokens::seeded(999);
        let foreign = issue_login(&other, None, &mut Counter(999));
        t.calls.borrow_mut().clear();
        assert_eq!(
            refused(t.call(use_token(&foreign, Stage::Check, None, None), NOW, e)),
            TokenError::BadSignature
        );
        assert!(t.calls.borrow().is_empty(), "a forged token costs no object call");
    }

    #[test]
    fn login_token_is_checked_many_times_and_consumed_once_in_its_users_instance() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let tok = issue_login(&t, Some("DEV1"), e);
        for _ in 0..2 {
            let r = t.call(use_token(&tok, Stage::Check, None, None), NOW, e);
            assert_eq!(r, Ok(TokenReply::Accepted { sub: "a@x.io".into(), typ: TokenType::Login }));
        }
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Consume, Some("DEV2"), None), NOW, e)),
            TokenError::WrongDevice
        );
        let user = t.at(&user_shard("a@x.io"));
        assert!(user.used.borrow().is_empty(), "a refusal writes nothing");
        assert!(t.call(use_token(&tok, Stage::Consume, Some("DEV1"), None), NOW, e).is_ok());
        assert_eq!(user.used.borrow().values().next().unwrap().device_id.as_deref(), Some("DEV1"));
        assert!(t.at(ROOT).used.borrow().is_empty(), "the root holds no user's state");
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Consume, Some("DEV1"), None), NOW, e)),
            TokenError::AlreadyUsed
        );
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Check, None, None), NOW, e)),
            TokenError::AlreadyUsed
        );
    }

    #[test]
    fn tokens_from_before_sharding_keep_their_state_in_the_root() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let _ = issue_login(&t, None, e); // creates the key
        let key = t.cached_key.borrow().clone().unwrap();
        let legacy = |typ, jti: &str| {
            let c = Claims {
                typ,
                sub: "a@x.io".into(),
                exp: NOW / 1000 + 600,
                jti: jti.into(),
                dev: None,
                iat_ms: NOW,
                sharded: false,
            };
            super::super::sign(&key, &c)
        };
        let login = legacy(TokenType::Login, "0011");
        assert!(t.call(use_token(&login, Stage::Consume, None, None), NOW, e).is_ok());
        assert!(t.at(ROOT).used.borrow().contains_key("0011"));
        assert_eq!(
            refused(t.call(use_token(&login, Stage::Check, None, None), NOW, e)),
            TokenError::AlreadyUsed
        );
        // An enrollment token whose record the root kept from before, listed and revoked there.
        let rec = EnrollTokenRecord {
            id: "00000000000000aa".into(),
            email: "a@x.io".into(),
            created_at: "2027-01-01T00:00:00Z".into(),
            exp: NOW / 1000 + 600,
            uses: 2,
            remaining: 2,
            revoked: false,
            devices: vec![],
        };
        t.at(ROOT).etoks.borrow_mut().insert(rec.id.clone(), rec.clone());
        // An older one with a later id: the listing goes by age.
        let older = EnrollTokenRecord {
            id: "00000000000000ff".into(),
            created_at: "2026-12-31T00:00:00Z".into(),
            ..rec.clone()
        };
        t.at(ROOT).etoks.borrow_mut().insert(older.id.clone(), older.clone());
        let enroll = legacy(TokenType::Enroll, &rec.id);
        assert!(t.call(use_token(&enroll, Stage::Consume, Some("D1"), None), NOW, e).is_ok());
        assert_eq!(t.at(ROOT).etoks.borrow()[&rec.id].remaining, 1);
        let Ok(TokenReply::EnrollTokens { tokens: list, .. }) =
            t.call(TokenCall::ListEnrollTokens { after: None }, NOW, e)
        else {
            panic!()
        };
        assert_eq!(
            list.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
            [older.id.as_str(), rec.id.as_str()]
        );
        t.call(TokenCall::RevokeEnrollToken { id: rec.id.clone() }, NOW, e).unwrap();
        assert_eq!(
            refused(t.call(use_token(&enroll, Stage::Check, None, None), NOW, e)),
            TokenError::Revoked
        );
    }

    #[test]
    fn wrong_user_and_expiry() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let tok = issue_login(&t, None, e);
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Check, None, Some("b@x.io")), NOW, e)),
            TokenError::WrongUser
        );
        assert!(t.call(use_token(&tok, Stage::Check, None, Some("a@x.io")), NOW, e).is_ok());
        let later = NOW + 600_000;
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Consume, None, None), later, e)),
            TokenError::Expired
        );
    }

    #[test]
    fn an_object_refuses_expired_claims_itself() {
        let t = MemoryTokens::default();
        let claims = Claims {
            typ: TokenType::Login,
            sub: "a@x.io".into(),
            exp: NOW / 1000,
            jti: "01".into(),
            dev: None,
            iat_ms: 0,
            sharded: true,
        };
        let call = ObjectCall::Use { claims, stage: Stage::Consume, device_id: None };
        t.set_now(NOW);
        let r = crate::object_call::block_on(super::super::client::TokenObjects::token_object(
            &t,
            &user_shard("a@x.io"),
            call,
        ))
        .unwrap();
        assert_eq!(r, Err(TokenCallError::Refused(TokenError::Expired)));
    }

    fn create(t: &MemoryTokens, uses: u32, e: &mut Counter) -> (String, String) {
        match t.call(
            TokenCall::CreateEnrollToken { email: "k@x.io".into(), expires_in_seconds: 3600, uses },
            NOW,
            e,
        ) {
            Ok(TokenReply::EnrollTokenCreated { view, token }) => {
                assert_eq!(
                    (view.uses, view.remaining, view.revoked, view.expired),
                    (uses, uses, false, false)
                );
                (view.id, token)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enroll_token_uses_are_counted_exactly() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let (id, tok) = create(&t, 2, e);
        let user = t.at(&user_shard("k@x.io"));
        assert!(t.call(use_token(&tok, Stage::Check, None, None), NOW, e).is_ok());
        assert_eq!(user.etoks.borrow()[&id].remaining, 2, "a check spends nothing");
        for d in ["D1", "D2"] {
            assert!(t.call(use_token(&tok, Stage::Consume, Some(d), None), NOW, e).is_ok());
        }
        assert_eq!(user.etoks.borrow()[&id].devices, ["D1", "D2"]);
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Consume, Some("D3"), None), NOW, e)),
            TokenError::Exhausted
        );
        assert_eq!(refused(t.call(use_token(&tok, Stage::Check, None, None), NOW, e)), TokenError::Exhausted);
        assert!(t.at(ROOT).etoks.borrow().is_empty(), "the root only knows who holds it");
        assert_eq!(t.at(ROOT).holders.borrow()[&id], "k@x.io");
    }

    #[test]
    fn enroll_token_revoke_expiry_unknown_and_list() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let (id, tok) = create(&t, 5, e);
        let (_id2, tok2) = create(&t, 5, e);
        let other = TokenCall::CreateEnrollToken { email: "z@x.io".into(), expires_in_seconds: 60, uses: 1 };
        t.call(other, NOW, e).unwrap();
        match t.call(TokenCall::ListEnrollTokens { after: None }, NOW, e) {
            Ok(TokenReply::EnrollTokens { tokens: v, next_cursor: None }) => {
                assert_eq!(v.len(), 3);
                assert!(v.windows(2).all(|w| (&w[0].created_at, &w[0].id) <= (&w[1].created_at, &w[1].id)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t.call(TokenCall::RevokeEnrollToken { id: "0000000000000000".into() }, NOW, e),
            Err(TokenCallError::NoSuchToken)
        );
        assert!(
            matches!(t.call(TokenCall::RevokeEnrollToken { id }, NOW, e), Ok(TokenReply::Revoked(v)) if v.revoked)
        );
        assert_eq!(refused(t.call(use_token(&tok, Stage::Check, None, None), NOW, e)), TokenError::Revoked);
        // The record's own expiry is enforced even where the claim would still pass.
        let user = t.at(&user_shard("k@x.io"));
        let id2 = user.etoks.borrow().values().find(|r| !r.revoked).unwrap().id.clone();
        user.etoks.borrow_mut().get_mut(&id2).unwrap().exp = NOW / 1000;
        assert_eq!(refused(t.call(use_token(&tok2, Stage::Check, None, None), NOW, e)), TokenError::Expired);
        user.etoks.borrow_mut().clear();
        assert_eq!(refused(t.call(use_token(&tok2, Stage::Check, None, None), NOW, e)), TokenError::Unknown);
    }

    #[test]
    fn enroll_tokens_are_listed_a_page_of_users_at_a_time() {
        use super::super::client::MAX_HOLDERS_LISTED;
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let users = MAX_HOLDERS_LISTED + 5;
        for i in 0..users {
            let email = format!("u{i:03}@x.io");
            for _ in 0..2 {
                let call =
                    TokenCall::CreateEnrollToken { email: email.clone(), expires_in_seconds: 60, uses: 1 };
                t.call(call, NOW, e).unwrap();
            }
        }
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            t.calls.borrow_mut().clear();
            let Ok(TokenReply::EnrollTokens { tokens, next_cursor }) =
                t.call(TokenCall::ListEnrollTokens { after: after.clone() }, NOW, e)
            else {
                panic!()
            };
            assert!(t.calls.borrow().len() <= MAX_HOLDERS_LISTED + 1, "bounded object calls per page");
            pages += 1;
            seen.extend(tokens.into_iter().map(|v| (v.email, v.id)));
            match next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 2);
        assert_eq!(seen.len(), users * 2, "every token once");
        let mut ids: Vec<_> = seen.iter().map(|(_, id)| id.clone()).collect();
        crate::sorting::sort(&mut ids);
        ids.dedup();
        assert_eq!(ids.len(), users * 2);
        // Grouped by user, in order across pages.
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn attempts_are_limited_per_key_and_given_back() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let limit = RateLimit { max_failures: 2, window_secs: 60 };
        let keys = vec!["email:a@x.io".to_string(), "ip:1.2.3.4".to_string()];
        let attempt = |keys: &Vec<String>| TokenCall::Attempt { keys: keys.clone(), limit };
        assert_eq!(t.call(attempt(&keys), NOW, e), Ok(TokenReply::Admitted));
        assert_eq!(t.call(attempt(&keys), NOW, e), Ok(TokenReply::Admitted));
        assert_eq!(t.call(attempt(&keys), NOW, e), Err(TokenCallError::RateLimited { retry_after: 60 }));
        // Another address for the same email is limited by the email key, and the address's
        // attempt is given back: the other address's first attempt is not counted.
        let other = vec!["ip:5.6.7.8".to_string(), "email:a@x.io".to_string()];
        assert!(matches!(t.call(attempt(&other), NOW, e), Err(TokenCallError::RateLimited { .. })));
        assert!(t.at(&window_shard("ip:5.6.7.8")).windows.borrow().get("ip:5.6.7.8").is_none());
        assert_eq!(t.call(TokenCall::Release { keys: keys.clone() }, NOW, e), Ok(TokenReply::Released));
        assert_eq!(t.call(attempt(&keys), NOW, e), Ok(TokenReply::Admitted));
        // The window ends.
        assert_eq!(t.call(attempt(&keys), NOW + 61_000, e), Ok(TokenReply::Admitted));
        let email = t.at(&window_shard("email:a@x.io"));
        assert_eq!(email.windows.borrow()["email:a@x.io"].count, 1);
        assert!(t.at(ROOT).windows.borrow().is_empty(), "no window is counted in the root");
    }

    #[test]
    fn failures_are_counted_and_checked_per_key() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let limit = RateLimit { max_failures: 2, window_secs: 60 };
        let keys = vec!["email:a@x.io".to_string(), "ip:1.2.3.4".to_string()];
        for _ in 0..2 {
            assert_eq!(
                t.call(TokenCall::CheckLimit { keys: keys.clone(), limit }, NOW, e),
                Ok(TokenReply::Noted)
            );
            t.call(TokenCall::Failed { keys: keys.clone(), limit }, NOW, e).unwrap();
        }
        let only_ip = vec!["email:b@x.io".to_string(), "ip:1.2.3.4".to_string()];
        assert!(matches!(
            t.call(TokenCall::CheckLimit { keys: only_ip, limit }, NOW, e),
            Err(TokenCallError::RateLimited { retry_after: 60 })
        ));
    }

    #[test]
    fn sweep_deletes_what_expired_at_most_hourly() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let tok = issue_login(&t, None, e);
        t.call(use_token(&tok, Stage::Consume, None, None), NOW, e).unwrap();
        let user = t.at(&user_shard("a@x.io"));
        assert_eq!(user.used.borrow().len(), 1);
        let later = NOW + 3_601_000;
        let Ok(TokenReply::LoginIssued { token, .. }) = t.call(
            TokenCall::IssueLogin { sub: "a@x.io".into(), dev: None, ttl_secs: 600, release: vec![] },
            later,
            e,
        ) else {
            panic!()
        };
        t.call(use_token(&token, Stage::Consume, None, None), later, e).unwrap();
        assert_eq!(user.used.borrow().len(), 1, "the expired consumed token is swept, the new one kept");
        assert_eq!(*user.next_sweep.borrow(), Some(later / 1000 + SWEEP_EVERY_SECS));
    }

    #[test]
    fn ended_windows_are_found_through_the_expiry_index_only() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let limit = RateLimit { max_failures: 5, window_secs: 60 };
        let ip = t.at(&window_shard("ip:b"));
        t.call(TokenCall::Attempt { keys: vec!["ip:b".into()], limit }, NOW, e).unwrap();
        assert_eq!(ip.expiry.borrow().len(), 1);
        // b is given back and opened again later: its old index entry must not delete the new one.
        t.call(TokenCall::Release { keys: vec!["ip:b".into()] }, NOW, e).unwrap();
        let later = NOW + 3_600_000;
        t.call(TokenCall::Attempt { keys: vec!["ip:b".into()], limit }, later - 10_000, e).unwrap();
        t.call(TokenCall::Failed { keys: vec!["ip:b".into()], limit }, later, e).unwrap();
        assert_eq!(ip.windows.borrow()["ip:b"].count, 2, "a window opened again is kept");
        assert!(ip.expiry.borrow().iter().all(|x| x.at > NOW / 1000 + 60), "used index entries are deleted");
        // A window that ended is deleted at the instance's next sweep.
        let a = t.at(&window_shard("ip:a"));
        t.call(TokenCall::Failed { keys: vec!["ip:a".into()], limit }, NOW, e).unwrap();
        t.call(TokenCall::Failed { keys: vec!["ip:a".into()], limit }, later + 3_700_000, e).unwrap();
        assert_eq!(a.windows.borrow()["ip:a"].count, 1, "the ended window was replaced by a new one");
        assert_eq!(a.expiry.borrow().len(), 1);
    }

    #[test]
    fn the_alarm_leaves_an_instance_whose_windows_ended_empty() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let limit = RateLimit { max_failures: 5, window_secs: 60 };
        let key = "ip:198.51.100.4".to_string();
        t.call(TokenCall::Failed { keys: vec![key.clone()], limit }, NOW, e).unwrap();
        let ip = t.at(&window_shard(&key));
        assert!(!ip.windows.borrow().is_empty() && ip.next_sweep.borrow().is_some());
        let sweep = |at_ms| {
            t.set_now(at_ms);
            crate::object_call::block_on(super::super::client::TokenObjects::token_object(
                &t,
                &window_shard(&key),
                ObjectCall::Sweep,
            ))
            .unwrap()
        };
        // Before the window ends nothing goes, and the alarm is asked for again at its end.
        assert_eq!(sweep(NOW + 1_000), Ok(TokenReply::Swept { next_due: Some(NOW / 1000 + 60) }));
        assert_eq!(ip.windows.borrow().len(), 1);
        // After it, nothing is left at all.
        assert_eq!(sweep(NOW + 61_000), Ok(TokenReply::Swept { next_due: None }));
        assert!(ip.windows.borrow().is_empty());
        assert!(ip.expiry.borrow().is_empty());
        assert_eq!(*ip.next_sweep.borrow(), None);
    }

    #[test]
    fn a_deleted_users_tokens_are_refused() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let login = issue_login(&t, None, e);
        let (_, enroll) = create(&t, 3, e);
        match t.call(TokenCall::RevokeUser { email: "k@x.io".into() }, NOW + 1, e) {
            Ok(TokenReply::UserRevoked { enrollment_tokens: 1 }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            refused(t.call(use_token(&enroll, Stage::Check, None, None), NOW + 2, e)),
            TokenError::Revoked
        );
        assert!(
            t.call(use_token(&login, Stage::Check, None, None), NOW + 2, e).is_ok(),
            "another user's token"
        );
        t.call(TokenCall::RevokeUser { email: "a@x.io".into() }, NOW + 3, e).unwrap();
        assert_eq!(
            refused(t.call(use_token(&login, Stage::Check, None, None), NOW + 4, e)),
            TokenError::Revoked
        );
        // Tokens issued after the revocation work (the user was created again).
        let fresh = issue_login(&t, None, e);
        assert_eq!(
            refused(t.call(use_token(&fresh, Stage::Check, None, None), NOW + 4, e)),
            TokenError::Revoked,
            "issued before the revocation"
        );
        let later = TokenCall::IssueLogin { sub: "a@x.io".into(), dev: None, ttl_secs: 600, release: vec![] };
        let Ok(TokenReply::LoginIssued { token, .. }) = t.call(later, NOW + 10, e) else { panic!() };
        assert!(t.call(use_token(&token, Stage::Check, None, None), NOW + 11, e).is_ok());
    }

    #[test]
    fn new_token_requests_validate() {
        let req = |json: &str| serde_json::from_str::<NewEnrollTokenRequest>(json).unwrap().validate();
        assert_eq!(req(r#"{"email":" K@X.io "}"#), Ok(("k@x.io".into(), 86_400, 1)));
        assert!(req(r#"{"email":"nope"}"#).is_err());
        assert!(req(r#"{"email":"k@x.io","uses":0}"#).is_err());
        assert!(req(r#"{"email":"k@x.io","expires_in_seconds":99999999}"#).is_err());
        assert!(serde_json::from_str::<NewEnrollTokenRequest>(r#"{"email":"k@x.io","x":1}"#).is_err());
        assert!(valid_token_id("0123456789abcdef") && !valid_token_id("0123456789ABCDEF"));
        assert_eq!(precheck(""), Err(TokenError::Malformed("length")));
    }

    #[test]
    fn calls_and_replies_survive_the_wire() {
        let call =
            ObjectCall::Attempt { key: "ip:x".into(), limit: RateLimit { max_failures: 1, window_secs: 2 } };
        let back: ObjectCall = serde_json::from_str(&serde_json::to_string(&call).unwrap()).unwrap();
        assert_eq!(back, call);
        let err = TokenCallError::Refused(TokenError::AlreadyUsed);
        let back: TokenCallError = serde_json::from_str(&serde_json::to_string(&err).unwrap()).unwrap();
        assert_eq!(back, err);
    }
}
