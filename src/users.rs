//! The user directory's records and password hashes: PBKDF2-HMAC-SHA256 with a per-user random
//! salt, stored in a self-describing string so the cost can be raised later without breaking
//! old hashes. The derivation itself runs in WebCrypto (behind [`Kdf`], implemented by the
//! shell): native code, where a wasm PBKDF2 would spend the request's CPU budget many times
//! over. The user records live in KV (behind [`Directory`]).

use crate::codec::{decode_base64_unpadded, encode_base64_unpadded};
use crate::device::DeviceIndexEntry;
use crate::object_call::StoreError;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Default PBKDF2 iterations (WebCrypto in Workers allows at most 100,000).
pub const DEFAULT_ITERATIONS: u32 = 100_000;
pub const MAX_ITERATIONS: u32 = 100_000;

/// KV value of `user:<email>` (kv-schema/user.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub email: String,
    pub display_name: String,
    /// `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`
    pub password_hash: String,
    pub created_at: String,
}

/// What the admin API shows of a user: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub created_at: &'a str,
}

impl UserRecord {
    pub fn view(&self) -> UserView<'_> {
        UserView { email: &self.email, display_name: &self.display_name, created_at: &self.created_at }
    }
}

/// Emails are compared case-insensitively: Windows sends what the user typed.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible email (the directory key): one `@`, no spaces or control characters, ≤ 254 bytes.
pub fn valid_email(email: &str) -> bool {
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '/')
}

/// A stored password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: [u8; 32],
}

impl PasswordHash {
    /// Reads `pbkdf2-sha256$<iterations>$<salt>$<hash>`; anything else is `None` (and never
    /// matches a password).
    pub fn parse(stored: &str) -> Option<PasswordHash> {
        let mut parts = stored.split('$');
        let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let iterations = iter.parse::<u32>().ok().filter(|i| (1..=MAX_ITERATIONS).contains(i))?;
        let salt = decode_base64_unpadded(salt).filter(|s| !s.is_empty())?;
        let hash: [u8; 32] = decode_base64_unpadded(hash)?.try_into().ok()?;
        Some(PasswordHash { iterations, salt, hash })
    }

    pub fn encode(&self) -> String {
        format!(
            "pbkdf2-sha256${}${}${}",
            self.iterations,
            encode_base64_unpadded(&self.salt),
            encode_base64_unpadded(&self.hash)
        )
    }

    /// Constant-time comparison with a freshly derived hash.
    pub fn matches(&self, derived: &[u8]) -> bool {
        self.hash.ct_eq(derived).into()
    }
}

/// A well-formed hash at the default cost that no password matches in practice: checked when
/// the user is unknown, so timing does not tell which emails exist.
pub const DUMMY_HASH: &str =
    "pbkdf2-sha256$100000$AAAAAAAAAAAAAAAAAAAAAA$0Ep3B0kvOVIaXq1uqnEXiTyeNYTnRk3a6kHtZlRXpH4";

/// `POST /api/v1/users` as the admin sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

/// A checked [`NewUser`]: the normalised email and the display name to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidUser {
    pub email: String,
    pub display_name: String,
}

impl NewUser {
    pub fn validate(&self) -> Result<ValidUser, &'static str> {
        let email = normalize_email(&self.email);
        if !valid_email(&email) {
            return Err("email is not a valid address");
        }
        if self.password.chars().count() < 8 || self.password.len() > 1024 {
            return Err("password must be 8 to 1024 characters");
        }
        let display_name = self.display_name.clone().unwrap_or_default().trim().to_string();
        if display_name.len() > 200 || display_name.chars().any(char::is_control) {
            return Err("display_name must be at most 200 printable characters");
        }
        let display_name = if display_name.is_empty() { email.clone() } else { display_name };
        Ok(ValidUser { email, display_name })
    }
}

/// The user directory and the device listing (KV), as the core reads and writes them.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait Directory {
    async fn user(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn put_device(&self, entry: &DeviceIndexEntry) -> Result<(), StoreError>;
    /// The DeviceID last enrolled on this hardware (`HWDevID`), if any.
    async fn hardware(&self, hw_dev_id: &str) -> Result<Option<String>, StoreError>;
    async fn put_hardware(&self, hw_dev_id: &str, device_id: &str) -> Result<(), StoreError>;
}

/// PBKDF2-HMAC-SHA256 (WebCrypto in the Worker).
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait Kdf {
    async fn pbkdf2_sha256(
        &self,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Vec<u8>, StoreError>;
}

/// Checks a password against a stored hash; malformed hashes never match.
pub async fn verify_hash<K: Kdf>(kdf: &K, stored: &str, password: &str) -> Result<bool, StoreError> {
    let Some(h) = PasswordHash::parse(stored) else {
        return Ok(false);
    };
    let derived = kdf.pbkdf2_sha256(password, &h.salt, h.iterations).await?;
    Ok(h.matches(&derived))
}

/// A new stored hash for a password.
pub async fn hash_password<K: Kdf>(
    kdf: &K,
    password: &str,
    salt: [u8; 16],
    iterations: u32,
) -> Result<String, StoreError> {
    let derived = kdf.pbkdf2_sha256(password, &salt, iterations).await?;
    let hash: [u8; 32] = derived.try_into().map_err(|_| StoreError("PBKDF2 output length".into()))?;
    Ok(PasswordHash { iterations, salt: salt.to_vec(), hash }.encode())
}

/// The user whose email and password these are, if any. An unknown user's password is checked
/// against [`DUMMY_HASH`], so timing does not tell which emails exist.
pub async fn authenticate<P: Directory + Kdf>(
    ports: &P,
    email: &str,
    password: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let user = if valid_email(email) { ports.user(email).await? } else { None };
    let stored = user.as_ref().map(|u| u.password_hash.as_str()).unwrap_or(DUMMY_HASH);
    let ok = verify_hash(ports, stored, password).await?;
    Ok(user.filter(|_| ok))
}

/// PBKDF2-HMAC-SHA256 with the reference crate, for the native tests' [`Kdf`]s: what the
/// Worker derives through WebCrypto.
#[cfg(test)]
pub fn reference_pbkdf2(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
        reference_pbkdf2(password, salt, iterations)
    }

    #[test]
    fn format_round_trips_and_matches() {
        let h = PasswordHash {
            iterations: 1000,
            salt: vec![7; 16],
            hash: derive("correct horse", &[7; 16], 1000),
        };
        let s = h.encode();
        assert!(s.starts_with("pbkdf2-sha256$1000$"));
        let back = PasswordHash::parse(&s).unwrap();
        assert_eq!(back, h);
        assert!(back.matches(&derive("correct horse", &back.salt, back.iterations)));
        assert!(!back.matches(&derive("correct horsE", &back.salt, back.iterations)));
        assert!(!back.matches(&[]));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        let good = PasswordHash { iterations: 10, salt: vec![1; 16], hash: [2; 32] }.encode();
        for bad in [
            "",
            "plain",
            "pbkdf2-sha256$x$AA$AA",
            "md5$1$AQEBAQEBAQEBAQEBAQEBAQ$AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI",
            &good.replace("$10$", "$0$"),
            &good.replace("$10$", "$100001$"),
            &format!("{good}$extra"),
        ] {
            assert_eq!(PasswordHash::parse(bad), None, "{bad}");
        }
        assert!(PasswordHash::parse(DUMMY_HASH).is_some());
    }

    #[test]
    fn known_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1.
        let out = derive("passwd", b"salt", 1);
        assert_eq!(out[..8], [0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f]);
    }

    #[test]
    fn new_users_validate() {
        let u = |email: &str, password: &str, name: Option<&str>| NewUser {
            email: email.into(),
            password: password.into(),
            display_name: name.map(Into::into),
        };
        let ok = u(" Alice@Contoso.com", "long enough", None).validate().unwrap();
        assert_eq!((ok.email.as_str(), ok.display_name.as_str()), ("alice@contoso.com", "alice@contoso.com"));
        assert_eq!(u("a@b.co", "pw", None).validate(), Err("password must be 8 to 1024 characters"));
        assert!(u("nope", "long enough", None).validate().is_err());
        assert!(u("a@b.co", "long enough", Some("bad\u{7}name")).validate().is_err());
        assert_eq!(u("a@b.co", "long enough", Some(" Al ")).validate().unwrap().display_name, "Al");
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" Alice@Contoso.COM "), "alice@contoso.com");
        assert!(valid_email("a@b.co"));
        for bad in ["", "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@b.co/x", "a@.b.co"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
