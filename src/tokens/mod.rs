//! Enrollment tokens, pure: their format, signing and verification, and the sign-in rate-limit
//! window. The key and all state (single use, use counters, failure counters) live in the
//! token authority Durable Object, whose rules are [`authority`].
//!
//! Format (ASCII, at most [`MAX_TOKEN_LEN`] bytes):
//!
//! ```text
//! v1.<base64url(payload JSON)>.<base64url(HMAC-SHA256(key, "v1." + payload part))>
//! payload: {"typ":"login"|"enroll","sub":<email>,"exp":<unix secs>,"jti":<hex id>,"dev"?:<device id>}
//! ```
//!
//! * `login`: issued by the sign-in page (the `wresult`), lives minutes, single use: the policy
//!   request checks it, the RST consumes its `jti`.
//! * `enroll`: created by an admin (`POST /api/v1/enrollment-tokens`); `jti` is the token's id,
//!   under which the object keeps its remaining uses and revocation.
//!
//! The payload is parsed only after its MAC checks out.

pub mod authority;
pub mod client;

use crate::codec::{decode_base64url, encode_base64url};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

pub const VERSION: &str = "v1";
/// Longest token accepted (a real one is ~200 bytes).
pub const MAX_TOKEN_LEN: usize = 2048;
pub const KEY_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Login,
    Enroll,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub typ: TokenType,
    /// The user's email (normalised).
    pub sub: String,
    /// Expiry, unix seconds: the token is refused from this second on.
    pub exp: u64,
    /// Unique id: the single-use key of a login token, the record id of an enroll token.
    pub jti: String,
    /// The device the token is bound to, when known when it was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// When it was issued, Unix milliseconds: tokens issued before their user was deleted are
    /// refused. Absent (0) in tokens issued before this field existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub iat_ms: u64,
    /// Where the token's state lives: `true`, in its user's token object ([`user_shard`]);
    /// absent in tokens issued before the state was sharded, whose state stays in the root
    /// instance ([`ROOT`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sharded: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The token object instance that holds the signing key, the directory of enrollment tokens
/// (which user's instance holds each) and the state of tokens issued before sharding.
pub const ROOT: &str = "tokens";

/// The token object instance of one user: their login tokens' single use, their enrollment
/// tokens' use counts and revocation, and when their tokens were revoked. Spending a token
/// is strongly consistent within it; no one instance serves every user.
pub fn user_shard(email: &str) -> String {
    format!("user:{email}")
}

/// The token object instance of one sign-in rate-limit key (`email:<email>`, `ip:<address>`,
/// and their `admin-` forms): each failure window is counted in its own place.
pub fn window_shard(key: &str) -> String {
    format!("rl:{key}")
}

impl Claims {
    /// The instance that holds this token's state.
    pub fn shard(&self) -> String {
        if self.sharded {
            user_shard(&self.sub)
        } else {
            ROOT.to_string()
        }
    }
}

/// Why a token is refused. All of them become the MS-WSTEP Authentication fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not `v1.<payload>.<mac>` of base64url parts, too long, not ASCII, or a payload that
    /// does not describe a token.
    Malformed(&'static str),
    /// Another version than `v1`.
    WrongVersion,
    /// The MAC does not match: forged, altered or signed with another key.
    BadSignature,
    Expired,
    /// A login token that was already consumed.
    AlreadyUsed,
    /// An enroll token whose uses are all spent.
    Exhausted,
    Revoked,
    /// An enroll token id the authority does not know.
    Unknown,
    /// The token is bound to another device.
    WrongDevice,
    /// The token is not valid for what it is presented for (e.g. another user's).
    WrongUser,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(why) => write!(f, "malformed token: {why}"),
            TokenError::WrongVersion => f.write_str("unsupported token version"),
            TokenError::BadSignature => f.write_str("token signature does not verify"),
            TokenError::Expired => f.write_str("token expired"),
            TokenError::AlreadyUsed => f.write_str("token already used"),
            TokenError::Exhausted => f.write_str("token has no uses left"),
            TokenError::Revoked => f.write_str("token revoked"),
            TokenError::Unknown => f.write_str("unknown token"),
            TokenError::WrongDevice => f.write_str("token is bound to another device"),
            TokenError::WrongUser => f.write_str("token belongs to another user"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Between the object and its callers a refusal travels as its stable code.
impl Serialize for TokenError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for TokenError {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Ok(TokenError::from_code(&code))
    }
}

impl TokenError {
    /// A stable machine name, used between the object and the edge.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::WrongVersion => "wrong_version",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::AlreadyUsed => "already_used",
            TokenError::Exhausted => "exhausted",
            TokenError::Revoked => "revoked",
            TokenError::Unknown => "unknown",
            TokenError::WrongDevice => "wrong_device",
            TokenError::WrongUser => "wrong_user",
        }
    }

    pub fn from_code(code: &str) -> TokenError {
        match code {
            "wrong_version" => TokenError::WrongVersion,
            "bad_signature" => TokenError::BadSignature,
            "expired" => TokenError::Expired,
            "already_used" => TokenError::AlreadyUsed,
            "exhausted" => TokenError::Exhausted,
            "revoked" => TokenError::Revoked,
            "unknown" => TokenError::Unknown,
            "wrong_device" => TokenError::WrongDevice,
            "wrong_user" => TokenError::WrongUser,
            _ => TokenError::Malformed("refused"),
        }
    }
}

fn mac(key: &[u8], signed_part: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(signed_part.as_bytes());
    m
}

/// Signs claims into a token.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signed_part = format!("{VERSION}.{}", encode_base64url(&payload));
    let tag = mac(key, &signed_part).finalize().into_bytes();
    format!("{signed_part}.{}", encode_base64url(&tag))
}

/// Checks a token's form, signature and expiry, and returns its claims. State (single use,
/// uses left, revocation) is the caller's business.
pub fn verify(key: &[u8], token: &str, now_secs: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("too long"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Malformed("not printable ASCII"));
    }
    let mut parts = token.split('.');
    let (Some(version), Some(payload), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    if version != VERSION {
        return Err(TokenError::WrongVersion);
    }
    let tag = decode_base64url(tag).ok_or(TokenError::Malformed("signature is not base64url"))?;
    let signed_part = &token[..version.len() + 1 + payload.len()];
    mac(key, signed_part).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
    let payload = decode_base64url(payload).ok_or(TokenError::Malformed("payload is not base64url"))?;
    let claims: Claims = crate::codec::from_json(&payload).map_err(|_| TokenError::Malformed("payload"))?;
    if claims.sub.is_empty() || claims.jti.is_empty() {
        return Err(TokenError::Malformed("payload"));
    }
    if now_secs >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Whether a string has the shape of a token (used to tell an enrollment token typed as a
/// password on the sign-in page from a password).
pub fn looks_like_token(s: &str) -> bool {
    s.starts_with("v1.") && s.len() <= MAX_TOKEN_LEN && s.bytes().filter(|b| *b == b'.').count() == 2
}

/// A fixed-window failure counter for sign-in attempts, per key (`email:<email>`,
/// `ip:<address>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub count: u32,
    /// When the window ends, unix seconds.
    pub reset_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub max_failures: u32,
    pub window_secs: u64,
}

impl RateLimit {
    /// Counts an attempt in `current`: `Some(new window)` when the attempt may go ahead, `None`
    /// when the key has reached its limit. Attempts are counted before the password is checked
    /// (so that concurrent guesses cannot all pass the check) and given back on success.
    pub fn admit(&self, current: Option<Window>, now_secs: u64) -> Option<Window> {
        match current.filter(|w| now_secs < w.reset_at) {
            None => Some(Window { count: 1, reset_at: now_secs + self.window_secs }),
            Some(w) if w.count < self.max_failures => Some(Window { count: w.count + 1, ..w }),
            Some(_) => None,
        }
    }

    /// Gives back an admitted attempt that succeeded; `None` means the window can be deleted.
    pub fn release(current: Option<Window>, now_secs: u64) -> Option<Window> {
        current.filter(|w| now_secs < w.reset_at && w.count > 1).map(|w| Window { count: w.count - 1, ..w })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const NOW: u64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            typ: TokenType::Login,
            sub: "alice@contoso.com".into(),
            exp: NOW + 600,
            jti: "0a1b".into(),
            dev: None,
            iat_ms: 0,
            sharded: false,
        }
    }

    #[test]
    fn round_trip() {
        let t = sign(&KEY, &claims());
        assert!(t.starts_with("v1."));
        assert!(t.is_ascii());
        assert!(looks_like_token(&t));
        assert_eq!(verify(&KEY, &t, NOW), Ok(claims()));
        let bound = Claims { dev: Some("DEV1".into()), typ: TokenType::Enroll, ..claims() };
        assert_eq!(verify(&KEY, &sign(&KEY, &bound), NOW).unwrap(), bound);
    }

    #[test]
    fn expired() {
        let t = sign(&KEY, &claims());
        assert_eq!(verify(&KEY, &t, NOW + 599).map(|c| c.exp), Ok(NOW + 600));
        assert_eq!(verify(&KEY, &t, NOW + 600), Err(TokenError::Expired));
        assert_eq!(verify(&KEY, &t, NOW + 100_000), Err(TokenError::Expired));
    }

    #[test]
    fn forged() {
        let t = sign(&KEY, &claims());
        // Another key.
        assert_eq!(verify(&[8; 32], &t, NOW), Err(TokenError::BadSignature));
        // Another payload under the original signature (a different user, a later expiry).
        let sig = t.rsplit('.').next().unwrap();
        for other in [
            Claims { sub: "mallory@contoso.com".into(), ..claims() },
            Claims { exp: NOW + 99_999, ..claims() },
        ] {
            let body = sign(&[9; 32], &other);
            let forged = format!("{}.{sig}", &body[..body.rfind('.').unwrap()]);
            assert_eq!(verify(&KEY, &forged, NOW), Err(TokenError::BadSignature));
        }
        // A flipped signature bit.
        let mut bytes = decode_base64url(sig).unwrap();
        bytes[0] ^= 1;
        let flipped = format!("{}.{}", &t[..t.rfind('.').unwrap()], encode_base64url(&bytes));
        assert_eq!(verify(&KEY, &flipped, NOW), Err(TokenError::BadSignature));
        // No signature at all, an empty one.
        assert_eq!(
            verify(&KEY, &format!("{}.", &t[..t.rfind('.').unwrap()]), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn truncated() {
        let t = sign(&KEY, &claims());
        for n in [0, 1, 3, 10, t.len() / 2, t.rfind('.').unwrap(), t.len() - 1] {
            assert!(verify(&KEY, &t[..n], NOW).is_err(), "{n}");
        }
        assert!(matches!(verify(&KEY, &t[..t.rfind('.').unwrap()], NOW), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn wrong_version() {
        let t = sign(&KEY, &claims());
        assert_eq!(verify(&KEY, &t.replacen("v1.", "v2.", 1), NOW), Err(TokenError::WrongVersion));
        assert_eq!(verify(&KEY, &t.replacen("v1.", "V1.", 1), NOW), Err(TokenError::WrongVersion));
        assert_eq!(verify(&KEY, &t.replacen("v1.", ".", 1), NOW), Err(TokenError::WrongVersion));
    }

    #[test]
    fn garbage() {
        for bad in [
            "",
            "garbage",
            "forged",
            "v1",
            "v1..",
            "v1.a.b.c",
            "v1.!!!.AAAA",
            "v1.abc.!!!",
            "v1.abc def.AAAA",
            "v1.ab\u{e9}.AAAA",
            "v1.abc.AAAA\n",
        ] {
            assert!(verify(&KEY, bad, NOW).is_err(), "{bad:?}");
        }
        assert_eq!(verify(&KEY, &"A".repeat(MAX_TOKEN_LEN + 1), NOW), Err(TokenError::Malformed("too long")));
        // Correctly signed, but the payload is not claims.
        for payload in [
            &b"not json"[..],
            b"{}",
            br#"{"typ":"login","sub":"","exp":1,"jti":"x"}"#,
            br#"{"typ":"admin","sub":"a","exp":1,"jti":"x"}"#,
        ] {
            let part = format!("v1.{}", encode_base64url(payload));
            let t = format!("{part}.{}", encode_base64url(&mac(&KEY, &part).finalize().into_bytes()));
            assert!(
                matches!(verify(&KEY, &t, 0), Err(TokenError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        assert!(!looks_like_token("correct horse battery"));
        assert!(!looks_like_token("v1.only-two"));
    }

    #[test]
    fn error_codes_round_trip() {
        for e in [
            TokenError::WrongVersion,
            TokenError::BadSignature,
            TokenError::Expired,
            TokenError::AlreadyUsed,
            TokenError::Exhausted,
            TokenError::Revoked,
            TokenError::Unknown,
            TokenError::WrongDevice,
            TokenError::WrongUser,
        ] {
            assert_eq!(TokenError::from_code(e.code()), e);
        }
        assert!(matches!(TokenError::from_code("???"), TokenError::Malformed(_)));
    }

    #[test]
    fn rate_limit_window() {
        let rl = RateLimit { max_failures: 3, window_secs: 900 };
        let mut w = None;
        for i in 1..=3 {
            w = rl.admit(w, NOW);
            assert_eq!(w.map(|w| w.count), Some(i));
        }
        assert_eq!(rl.admit(w, NOW + 899), None, "limited until the window ends");
        assert_eq!(rl.admit(w, NOW + 900), Some(Window { count: 1, reset_at: NOW + 1800 }), "a new window");
        // A success gives its attempt back.
        let w2 = rl.admit(None, NOW);
        assert_eq!(RateLimit::release(w2, NOW), None);
        assert_eq!(RateLimit::release(w, NOW).map(|w| w.count), Some(2));
        assert_eq!(RateLimit::release(w, NOW + 901), None);
    }
}
