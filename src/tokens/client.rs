//! The token authority as the edge runs it: signatures are made and checked here, with the
//! signing key read once per isolate, and only what needs consistency goes to a token object
//! (spending a single-use token, a use count, a rate-limit window), to the instance of the
//! token's user or of the rate-limit key. No one object serves every sign-in and enrollment.
//!
//! * Login and enrollment tokens carry `sharded: true`; their state lives in
//!   [`user_shard`]. Tokens issued before sharding carry no such claim; theirs stays in
//!   [`ROOT`], which runs the same rules.
//! * The root keeps the signing key and which user's instance holds each enrollment token, so
//!   that the admin listing and revocation by id find them.
//! * Each rate-limit key is counted in its own instance ([`window_shard`]); a sign-in admitted
//!   by some keys and refused by another gives the admitted attempts back.

use super::authority::{
    EnrollTokenRecord, EnrollTokenView, ObjectCall, Stage, TokenCall, TokenCallError, TokenReply,
};
use super::{sign, user_shard, verify, window_shard, Claims, TokenError, TokenType, ROOT};
use crate::codec::{decode_base64, hex};
use crate::context::Entropy;
use crate::object_call::StoreError;
use crate::time::format_timestamp;

/// Users whose enrollment tokens one page of the listing gathers (one object call each; the
/// free plan allows 50 subrequests per request).
pub const MAX_HOLDERS_LISTED: usize = 40;

type Answer = Result<TokenReply, TokenCallError>;

/// The token object instances, by name.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait TokenObjects {
    async fn token_object(&self, instance: &str, call: ObjectCall) -> Result<Answer, StoreError>;

    /// The signing key this isolate keeps, once [`signing_key`] has read it.
    fn kept_key(&self) -> Option<Vec<u8>>;
    fn keep_key(&self, key: &[u8]);
}

/// The signing key: the one this isolate keeps, else read from the root instance (which
/// creates it on first use) and kept.
pub async fn signing_key<O: TokenObjects>(objects: &O) -> Result<Vec<u8>, StoreError> {
    if let Some(key) = objects.kept_key() {
        return Ok(key);
    }
    let key = match objects.token_object(ROOT, ObjectCall::SigningKey).await? {
        Ok(TokenReply::SigningKey { key }) => decode_base64(&key)
            .filter(|k| k.len() == super::KEY_LEN)
            .ok_or_else(|| StoreError("token signing key unreadable".into()))?,
        other => return Err(StoreError(format!("token authority answered {other:?}"))),
    };
    objects.keep_key(&key);
    Ok(key)
}

fn unexpected(what: &str, other: impl std::fmt::Debug) -> StoreError {
    StoreError(format!("token object answered {what} with {other:?}"))
}

/// Runs one token authority call. `now_ms`: Unix milliseconds.
pub async fn call<O: TokenObjects>(
    objects: &O,
    call: TokenCall,
    now_ms: u64,
    entropy: &mut impl Entropy,
) -> Result<Answer, StoreError> {
    let now = now_ms / 1000;
    match call {
        TokenCall::IssueLogin { sub, dev, ttl_secs, release } => {
            let key = signing_key(objects).await?;
            let exp = now + ttl_secs.max(1);
            let jti = hex(&entropy.bytes::<16>());
            let claims = Claims { typ: TokenType::Login, sub, exp, jti, dev, iat_ms: now_ms, sharded: true };
            release_keys(objects, &release).await?;
            Ok(Ok(TokenReply::LoginIssued { token: sign(&key, &claims), exp }))
        }
        TokenCall::Use { token, stage, device_id, email } => {
            let key = signing_key(objects).await?;
            let claims = match verify(&key, &token, now) {
                Ok(c) => c,
                Err(e) => return Ok(Err(TokenCallError::Refused(e))),
            };
            if email.as_deref().is_some_and(|e| e != claims.sub) {
                return Ok(Err(TokenCallError::Refused(TokenError::WrongUser)));
            }
            if stage == Stage::Verify {
                return Ok(Ok(TokenReply::Accepted { sub: claims.sub, typ: claims.typ }));
            }
            let instance = claims.shard();
            objects.token_object(&instance, ObjectCall::Use { claims, stage, device_id }).await
        }
        TokenCall::CreateEnrollToken { email, expires_in_seconds, uses } => {
            let key = signing_key(objects).await?;
            let record = EnrollTokenRecord {
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
                sub: record.email.clone(),
                exp: record.exp,
                jti: record.id.clone(),
                dev: None,
                iat_ms: now_ms,
                sharded: true,
            };
            // Registered first: a token whose record could not be stored is never handed out,
            // and one that is listed can always be revoked by id.
            let register =
                ObjectCall::RegisterEnrollToken { id: record.id.clone(), email: record.email.clone() };
            stored(objects.token_object(ROOT, register).await?)?;
            let view = record.view(now);
            let instance = user_shard(&record.email);
            stored(objects.token_object(&instance, ObjectCall::PutEnrollToken { record }).await?)?;
            Ok(Ok(TokenReply::EnrollTokenCreated { view, token: sign(&key, &claims) }))
        }
        TokenCall::ListEnrollTokens { after } => {
            // The root's own tokens (from before sharding) come on the first page.
            let (root_tokens, holders) = list(objects, ROOT).await?;
            let mut page = if after.is_none() { oldest_first(root_tokens) } else { Vec::new() };
            let mut rest = holders.iter().filter(|h| after.as_ref().is_none_or(|a| *h > a));
            let mut last = None;
            for email in rest.by_ref().take(MAX_HOLDERS_LISTED) {
                page.extend(oldest_first(list(objects, &user_shard(email)).await?.0));
                last = Some(email.clone());
            }
            let next_cursor = if rest.next().is_some() { last } else { None };
            Ok(Ok(TokenReply::EnrollTokens { tokens: page, next_cursor }))
        }
        TokenCall::RevokeEnrollToken { id } => {
            match objects.token_object(ROOT, ObjectCall::RevokeEnrollToken { id: id.clone() }).await? {
                Ok(TokenReply::HeldBy { email }) => {
                    objects.token_object(&user_shard(&email), ObjectCall::RevokeEnrollToken { id }).await
                }
                other => Ok(other),
            }
        }
        TokenCall::Attempt { keys, limit } => {
            let mut admitted = Vec::new();
            for k in keys {
                let call = ObjectCall::Attempt { key: k.clone(), limit };
                match objects.token_object(&window_shard(&k), call).await? {
                    Ok(_) => admitted.push(k),
                    Err(e) => {
                        // Every key or none: what was admitted is given back.
                        release_keys(objects, &admitted).await?;
                        return Ok(Err(e));
                    }
                }
            }
            Ok(Ok(TokenReply::Admitted))
        }
        TokenCall::Release { keys } => {
            release_keys(objects, &keys).await?;
            Ok(Ok(TokenReply::Released))
        }
        TokenCall::CheckLimit { keys, limit } => {
            for k in keys {
                let call = ObjectCall::CheckLimit { key: k.clone(), limit };
                if let Err(e) = objects.token_object(&window_shard(&k), call).await? {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(TokenReply::Noted))
        }
        TokenCall::Failed { keys, limit } => {
            for k in keys {
                let call = ObjectCall::Failed { key: k.clone(), limit };
                objects.token_object(&window_shard(&k), call).await?.map_err(|e| unexpected("failed", e))?;
            }
            Ok(Ok(TokenReply::Noted))
        }
        TokenCall::RevokeUser { email } => {
            // The user's instance, and the root for tokens issued before sharding.
            let mut revoked = 0;
            for instance in [user_shard(&email), ROOT.to_string()] {
                match objects.token_object(&instance, ObjectCall::RevokeUser { email: email.clone() }).await?
                {
                    Ok(TokenReply::UserRevoked { enrollment_tokens }) => revoked += enrollment_tokens,
                    other => return Err(unexpected("revoke user", other)),
                }
            }
            Ok(Ok(TokenReply::UserRevoked { enrollment_tokens: revoked }))
        }
    }
}

/// One instance's tokens, oldest first (ties by id).
fn oldest_first(mut tokens: Vec<EnrollTokenView>) -> Vec<EnrollTokenView> {
    crate::sorting::sort_by(&mut tokens, |a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    tokens
}

fn stored(answer: Answer) -> Result<(), StoreError> {
    match answer {
        Ok(TokenReply::Stored) => Ok(()),
        other => Err(unexpected("a write", other)),
    }
}

async fn list<O: TokenObjects>(
    objects: &O,
    instance: &str,
) -> Result<(Vec<EnrollTokenView>, Vec<String>), StoreError> {
    match objects.token_object(instance, ObjectCall::ListEnrollTokens).await? {
        Ok(TokenReply::EnrollTokenList { tokens, owners }) => Ok((tokens, owners)),
        other => Err(unexpected("list", other)),
    }
}

async fn release_keys<O: TokenObjects>(objects: &O, keys: &[String]) -> Result<(), StoreError> {
    for k in keys {
        let call = ObjectCall::Release { key: k.clone() };
        objects.token_object(&window_shard(k), call).await?.map_err(|e| unexpected("release", e))?;
    }
    Ok(())
}
