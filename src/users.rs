//! The user directory's records and password hashing: PBKDF2-HMAC-SHA256 with a per-user random
//! salt, stored in a self-describing string so the cost can be raised later without breaking
//! old hashes.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Default PBKDF2 iterations. A Worker pays for this in CPU on every OnPremise policy and
/// enrollment request; `npm run bench` reports what it costs.
pub const DEFAULT_ITERATIONS: u32 = 100_000;

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

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

pub fn hash_password(password: &str, salt: &[u8; 16], iterations: u32) -> String {
    let hash = derive(password, salt, iterations);
    format!("pbkdf2-sha256${iterations}${}${}", B64.encode(salt), B64.encode(hash))
}

/// Constant-time check of a password against a stored hash; a malformed hash never matches.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(expected)) = (iter.parse::<u32>(), B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    if iterations == 0 || expected.len() != 32 {
        return false;
    }
    derive(password, &salt, iterations).ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse", &[1; 16], 1000);
        let b = hash_password("correct horse", &[2; 16], 1000);
        assert_ne!(a, b);
        assert!(a.starts_with("pbkdf2-sha256$1000$"));
        assert!(verify_password(&a, "correct horse"));
        assert!(!verify_password(&a, "correct horsE"));
        assert!(!verify_password(&a, ""));
        for bad in ["", "plain", "pbkdf2-sha256$x$AA$AA", "md5$1$AA$AA", &a.replace("1000", "0")] {
            assert!(!verify_password(bad, "correct horse"), "{bad}");
        }
    }

    #[test]
    fn known_vector() {
        // RFC 7914 §11 PBKDF2-HMAC-SHA256 vector: P="passwd", S="salt", c=1, first 32 bytes.
        let out = derive("passwd", b"salt", 1);
        assert_eq!(out[..8], [0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f]);
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
