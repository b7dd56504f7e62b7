//! The token authority's rules: the operations of the token authority Durable Object, the only
//! place the token-signing key exists and the strongly consistent state of enrollment tokens.
//! A login token is consumed once, an admin token with `uses: 3` enrolls exactly three devices,
//! and concurrent sign-in attempts cannot overrun the failure limit: the object runs one call
//! at a time (its input gate), and every call here reads, decides and returns its writes,
//! which the object commits together.

use super::{sign, verify, Claims, RateLimit, TokenError, TokenType, Window, KEY_LEN, MAX_TOKEN_LEN};
use crate::codec::{decode_base64, encode_base64, hex};
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
    /// Policy request, or an enrollment token typed on the sign-in page: verify only.
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

/// An operation of the token authority object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
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
    ListEnrollTokens,
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
    EnrollTokens(Vec<EnrollTokenView>),
    Revoked(EnrollTokenView),
    Admitted,
    Released,
    /// Counted, or below the limit.
    Noted,
    UserRevoked {
        enrollment_tokens: usize,
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
    UserRevoked(String, u64),
    Expiry(Expiry),
    DeleteExpiry(Expiry),
}

type TokenOutcome = Outcome<TokenReply, TokenCallError, TokenWrite>;

/// Runs one token authority call. `now_ms`: Unix milliseconds.
pub async fn handle<S: TokenStorage>(
    store: &S,
    call: TokenCall,
    now_ms: u64,
    entropy: &mut impl Entropy,
) -> Result<TokenOutcome, StoreError> {
    let now = now_ms / 1000;
    let mut writes = Vec::new();
    match call {
        TokenCall::IssueLogin { sub, dev, ttl_secs, release } => {
            let key = signing_key(store, entropy, &mut writes).await?;
            let exp = now + ttl_secs.max(1);
            let jti = hex(&entropy.bytes::<16>());
            let claims = Claims { typ: TokenType::Login, sub, exp, jti, dev, iat_ms: now_ms };
            release_into(store, &release, now, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::LoginIssued { token: sign(&key, &claims), exp }, writes))
        }
        TokenCall::Use { token, stage, device_id, email } => {
            let key = signing_key(store, entropy, &mut writes).await?;
            let refuse = |e| Ok(Outcome { reply: Err(TokenCallError::Refused(e)), writes: writes.clone() });
            let claims = match verify(&key, &token, now) {
                Ok(c) => c,
                Err(e) => return refuse(e),
            };
            if email.as_deref().is_some_and(|e| e != claims.sub) {
                return refuse(TokenError::WrongUser);
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
        TokenCall::CreateEnrollToken { email, expires_in_seconds, uses } => {
            let key = signing_key(store, entropy, &mut writes).await?;
            let rec = EnrollTokenRecord {
                id: hex(&entropy.bytes::<8>()),
                email,
                created_at: format_timestamp(now_ms),
                exp: now + expires_in_seconds,
                uses,
                remaining: uses,
                revoked: false,
                devices: Vec::new(),
            };
            let claims = Claims {
                typ: TokenType::Enroll,
                sub: rec.email.clone(),
                exp: rec.exp,
                jti: rec.id.clone(),
                dev: None,
                iat_ms: now_ms,
            };
            let reply = TokenReply::EnrollTokenCreated { view: rec.view(now), token: sign(&key, &claims) };
            writes.push(TokenWrite::EnrollToken(rec));
            Ok(Outcome::reply(reply, writes))
        }
        TokenCall::ListEnrollTokens => {
            let mut recs = store.enroll_tokens().await?;
            recs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(Outcome::reply(TokenReply::EnrollTokens(recs.iter().map(|r| r.view(now)).collect()), writes))
        }
        TokenCall::RevokeEnrollToken { id } => {
            let Some(mut rec) = store.enroll_token(&id).await? else {
                return Ok(Outcome::refuse(TokenCallError::NoSuchToken));
            };
            rec.revoked = true;
            let view = rec.view(now);
            writes.push(TokenWrite::EnrollToken(rec));
            Ok(Outcome::reply(TokenReply::Revoked(view), writes))
        }
        TokenCall::Attempt { keys, limit } => {
            for k in &keys {
                let current = store.window(k).await?;
                match limit.admit(current, now) {
                    Some(w) => {
                        if w.count == 1 {
                            writes.push(TokenWrite::Expiry(Expiry {
                                at: w.reset_at,
                                target: Expiring::Window(k.clone()),
                            }));
                        }
                        writes.push(TokenWrite::Window(k.clone(), w));
                    }
                    None => {
                        let retry_after = current.map(|w| w.reset_at.saturating_sub(now)).unwrap_or(0);
                        return Ok(Outcome::refuse(TokenCallError::RateLimited { retry_after }));
                    }
                }
            }
            sweep_into(store, now, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::Admitted, writes))
        }
        TokenCall::Release { keys } => {
            release_into(store, &keys, now, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::Released, writes))
        }
        TokenCall::CheckLimit { keys, limit } => {
            for k in &keys {
                if let Some(w) =
                    store.window(k).await?.filter(|w| now < w.reset_at && w.count >= limit.max_failures)
                {
                    let retry_after = w.reset_at.saturating_sub(now);
                    return Ok(Outcome::refuse(TokenCallError::RateLimited { retry_after }));
                }
            }
            Ok(Outcome::reply(TokenReply::Noted, writes))
        }
        TokenCall::Failed { keys, limit } => {
            for k in &keys {
                let current = store.window(k).await?;
                // At the limit the window is left as it is (and keeps refusing until it ends).
                if let Some(w) = limit.admit(current, now) {
                    if w.count == 1 {
                        writes.push(TokenWrite::Expiry(Expiry {
                            at: w.reset_at,
                            target: Expiring::Window(k.clone()),
                        }));
                    }
                    writes.push(TokenWrite::Window(k.clone(), w));
                }
            }
            sweep_into(store, now, &mut writes).await?;
            Ok(Outcome::reply(TokenReply::Noted, writes))
        }
        TokenCall::RevokeUser { email } => {
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

async fn release_into<S: TokenStorage>(
    store: &S,
    keys: &[String],
    now: u64,
    writes: &mut Vec<TokenWrite>,
) -> Result<(), StoreError> {
    for k in keys {
        writes.push(match RateLimit::release(store.window(k).await?, now) {
            Some(w) => TokenWrite::Window(k.clone(), w),
            None => TokenWrite::DeleteWindow(k.clone()),
        });
    }
    Ok(())
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
    let due = store.expired(now, SWEEP_BATCH).await?;
    // A full batch may not be all: sweep again at the next call instead of in an hour, so
    // that entries made faster than one batch an hour cannot pile up.
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
    writes.push(TokenWrite::NextSweep(if more { now } else { now + SWEEP_EVERY_SECS }));
    Ok(())
}

/// An in-memory token authority for native tests: the rules above over maps.
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    pub struct MemoryTokens {
        pub key: RefCell<Option<String>>,
        pub used: RefCell<BTreeMap<String, UsedToken>>,
        pub etoks: RefCell<BTreeMap<String, EnrollTokenRecord>>,
        pub windows: RefCell<BTreeMap<String, Window>>,
        pub next_sweep: RefCell<Option<u64>>,
        pub revoked_users: RefCell<BTreeMap<String, u64>>,
        pub expiry: RefCell<std::collections::BTreeSet<Expiry>>,
    }

    impl TokenStorage for MemoryTokens {
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
    }

    impl MemoryTokens {
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
                    TokenWrite::UserRevoked(e, at) => {
                        self.revoked_users.borrow_mut().insert(e, at);
                    }
                    TokenWrite::Expiry(e) => {
                        self.expiry.borrow_mut().insert(e);
                    }
                    TokenWrite::DeleteExpiry(e) => {
                        self.expiry.borrow_mut().remove(&e);
                    }
                }
            }
        }

        /// One call as the object runs it: decide, then commit.
        pub fn call(
            &self,
            call: TokenCall,
            now_ms: u64,
            entropy: &mut impl Entropy,
        ) -> Result<TokenReply, TokenCallError> {
            let out =
                crate::object_call::block_on(handle(self, call, now_ms, entropy)).expect("memory store");
            self.commit(out.writes);
            out.reply
        }
    }
}

#[cfg(test)]
mod tests {
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
    fn key_is_created_once_and_kept() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let a = issue_login(&t, None, e);
        let key = t.key.borrow().clone().unwrap();
        let b = issue_login(&t, None, e);
        assert_eq!(t.key.borrow().clone().unwrap(), key);
        assert_ne!(a, b, "fresh jti per token");
        // A token signed by another authority's key does not verify here.
        let other = MemoryTokens::default();
        let foreign = issue_login(&other, None, &mut Counter(999));
        assert_eq!(
            refused(t.call(use_token(&foreign, Stage::Check, None, None), NOW, e)),
            TokenError::BadSignature
        );
    }

    #[test]
    fn login_token_is_checked_many_times_and_consumed_once() {
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
        assert!(t.used.borrow().is_empty(), "a refusal writes nothing");
        assert!(t.call(use_token(&tok, Stage::Consume, Some("DEV1"), None), NOW, e).is_ok());
        assert_eq!(t.used.borrow().values().next().unwrap().device_id.as_deref(), Some("DEV1"));
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
        assert!(t.call(use_token(&tok, Stage::Check, None, None), NOW, e).is_ok());
        assert_eq!(t.etoks.borrow()[&id].remaining, 2, "a check spends nothing");
        for d in ["D1", "D2"] {
            assert!(t.call(use_token(&tok, Stage::Consume, Some(d), None), NOW, e).is_ok());
        }
        assert_eq!(t.etoks.borrow()[&id].devices, ["D1", "D2"]);
        assert_eq!(
            refused(t.call(use_token(&tok, Stage::Consume, Some("D3"), None), NOW, e)),
            TokenError::Exhausted
        );
        assert_eq!(refused(t.call(use_token(&tok, Stage::Check, None, None), NOW, e)), TokenError::Exhausted);
    }

    #[test]
    fn enroll_token_revoke_expiry_unknown_and_list() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let (id, tok) = create(&t, 5, e);
        let (_id2, tok2) = create(&t, 5, e);
        match t.call(TokenCall::ListEnrollTokens, NOW, e) {
            Ok(TokenReply::EnrollTokens(v)) => assert_eq!(v.len(), 2),
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
        let id2 = t.etoks.borrow().values().find(|r| !r.revoked).unwrap().id.clone();
        t.etoks.borrow_mut().get_mut(&id2).unwrap().exp = NOW / 1000;
        assert_eq!(refused(t.call(use_token(&tok2, Stage::Check, None, None), NOW, e)), TokenError::Expired);
        t.etoks.borrow_mut().clear();
        assert_eq!(refused(t.call(use_token(&tok2, Stage::Check, None, None), NOW, e)), TokenError::Unknown);
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
        // Another address for the same email is limited by the email key.
        let other = vec!["email:a@x.io".to_string(), "ip:5.6.7.8".to_string()];
        assert!(matches!(t.call(attempt(&other), NOW, e), Err(TokenCallError::RateLimited { .. })));
        assert!(t.windows.borrow().get("ip:5.6.7.8").is_none(), "refused attempts count nowhere");
        assert_eq!(t.call(TokenCall::Release { keys: keys.clone() }, NOW, e), Ok(TokenReply::Released));
        assert_eq!(t.call(attempt(&keys), NOW, e), Ok(TokenReply::Admitted));
        // The window ends.
        assert_eq!(t.call(attempt(&keys), NOW + 61_000, e), Ok(TokenReply::Admitted));
        assert_eq!(t.windows.borrow()["email:a@x.io"].count, 1);
    }

    #[test]
    fn sweep_deletes_what_expired_at_most_hourly() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let tok = issue_login(&t, None, e);
        t.call(use_token(&tok, Stage::Consume, None, None), NOW, e).unwrap();
        assert_eq!(t.used.borrow().len(), 1);
        let limit = RateLimit { max_failures: 5, window_secs: 60 };
        let later = NOW + 3_601_000;
        t.call(TokenCall::Attempt { keys: vec!["ip:x".into()], limit }, later, e).unwrap();
        assert!(t.used.borrow().is_empty(), "expired consumed tokens are swept");
        assert_eq!(*t.next_sweep.borrow(), Some(later / 1000 + SWEEP_EVERY_SECS));
    }

    #[test]
    fn ended_windows_are_found_through_the_expiry_index_only() {
        let t = MemoryTokens::default();
        let e = &mut Counter(0);
        let limit = RateLimit { max_failures: 5, window_secs: 60 };
        t.call(TokenCall::Failed { keys: vec!["ip:a".into()], limit }, NOW, e).unwrap();
        t.call(TokenCall::Attempt { keys: vec!["ip:b".into()], limit }, NOW, e).unwrap();
        assert_eq!(t.expiry.borrow().len(), 2);
        // b is given back and opened again later: its old index entry must not delete the new one.
        t.call(TokenCall::Release { keys: vec!["ip:b".into()] }, NOW, e).unwrap();
        let later = NOW + 3_600_000;
        t.call(TokenCall::Attempt { keys: vec!["ip:b".into()], limit }, later - 10_000, e).unwrap();
        t.call(TokenCall::Failed { keys: vec!["email:x".into()], limit }, later, e).unwrap();
        assert!(t.windows.borrow().get("ip:a").is_none(), "ended windows are deleted");
        assert!(t.windows.borrow().get("ip:b").is_some(), "a window opened again is kept");
        assert!(t.expiry.borrow().iter().all(|x| x.at > NOW / 1000 + 60), "used index entries are deleted");
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
        let call = TokenCall::Attempt {
            keys: vec!["ip:x".into()],
            limit: RateLimit { max_failures: 1, window_secs: 2 },
        };
        let back: TokenCall = serde_json::from_str(&serde_json::to_string(&call).unwrap()).unwrap();
        assert_eq!(back, call);
        let err = TokenCallError::Refused(TokenError::AlreadyUsed);
        let back: TokenCallError = serde_json::from_str(&serde_json::to_string(&err).unwrap()).unwrap();
        assert_eq!(back, err);
    }
}
