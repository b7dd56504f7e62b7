//! OMA-DM credentials (OMA-DM 1.2 Security §5.3; [MS-MDM] §1.3.1; [MS-MDE2] §2.2.9.5).
//!
//! `syncml:auth-md5`: `Data = B64(MD5(B64(MD5(name ":" secret)) ":" nonce))` where `nonce` is the
//! raw bytes (the base64-decoded `NextNonce`/`AAUTHDATA`), never its base64 text. The server
//! stores only the inner `B64(MD5(name ":" secret))` ([`secret_hash`]), not the secret.

use crate::codec::{decode_base64, encode_base64};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// `B64(MD5(name ":" secret))`: what the server stores instead of the secret.
pub fn secret_hash(name: &str, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(name.as_bytes());
    h.update(b":");
    h.update(secret.as_bytes());
    encode_base64(&h.finalize())
}

/// The `syncml:auth-md5` credential over a stored [`secret_hash`] and the nonce bytes.
pub fn md5_credential(secret_hash_b64: &str, nonce: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(secret_hash_b64.as_bytes());
    h.update(b":");
    h.update(nonce);
    encode_base64(&h.finalize())
}

/// Checks a device's `syncml:auth-md5` `Cred/Data` in constant time. Surrounding whitespace in
/// `cred_b64` is ignored.
pub fn verify_md5(secret_hash_b64: &str, nonce: &[u8], cred_b64: &str) -> bool {
    let expected = md5_credential(secret_hash_b64, nonce);
    let got = cred_b64.trim();
    got.len() == expected.len() && bool::from(got.as_bytes().ct_eq(expected.as_bytes()))
}

/// The `syncml:auth-basic` credential: `B64(name ":" secret)`.
pub fn basic_credential(name: &str, secret: &str) -> String {
    encode_base64(format!("{name}:{secret}").as_bytes())
}

/// Checks a `syncml:auth-basic` credential against the stored [`secret_hash`]: decodes it, requires
/// `name` before the first `:`, and compares `B64(MD5(decoded))` with the hash.
pub fn verify_basic(name: &str, secret_hash_b64: &str, cred_b64: &str) -> bool {
    let Some(raw) = decode_base64(cred_b64.trim()) else {
        return false;
    };
    let Some(colon) = raw.iter().position(|&b| b == b':') else {
        return false;
    };
    if &raw[..colon] != name.as_bytes() {
        return false;
    }
    let got = encode_base64(&Md5::digest(&raw));
    got.len() == secret_hash_b64.len() && bool::from(got.as_bytes().ct_eq(secret_hash_b64.as_bytes()))
}

/// Standard base64 with padding (how `NextNonce` is written).
pub fn encode_nonce(nonce: &[u8]) -> String {
    encode_base64(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_vector() {
        // Computed while writing this test, independently of this code:
        // python3 -c "import base64,hashlib; i=base64.b64encode(hashlib.md5(b'edgemdm-7F3A:Zq9!x\$Lw').digest());
        //   print(i, base64.b64encode(hashlib.md5(i+b':'+bytes(range(16))).digest()))"
        let hash = secret_hash("edgemdm-7F3A", "Zq9!x$Lw");
        assert_eq!(hash, "ZlSJqSMnMwoyar7EPNSv/Q==");
        let nonce: Vec<u8> = (0u8..16).collect();
        assert_eq!(md5_credential(&hash, &nonce), "O8V2IugsJQVy2iPy3z1jQw==");
        assert!(verify_md5(&hash, &nonce, " O8V2IugsJQVy2iPy3z1jQw==\n"));
        assert!(!verify_md5(&hash, &nonce[1..], "O8V2IugsJQVy2iPy3z1jQw=="));
    }

    #[test]
    fn index_vectors() {
        // Vectors for the formula of [MS-MDM] §1.3.1 and OMA-DM 1.2 Security §5.3, computed with
        // Python's hashlib.
        let dummy = secret_hash("dummy", "dummy");
        assert_eq!(dummy, "vEY9a4AQ+TKUDm1lrV6WMw==");
        assert_eq!(md5_credential(&dummy, b"nonce"), "tUtL9qTcnoMqyPx3vgpNAQ==");
        // The OMA example (Bruce2 / OhBehave / "Nonce").
        let bruce = secret_hash("Bruce2", "OhBehave");
        assert_eq!(bruce, "PtEdr8lBQ45IbT1bZIkrOQ==");
        assert!(verify_md5(&bruce, b"Nonce", "Zz6EivR3yeaaENcRN6lpAQ=="));
        // Windows' lenient decoding of the literal AAUTHDATA "nonce".
        assert_eq!(md5_credential(&dummy, &[0x9e, 0x89, 0xdc]), "EVEkoFZcVgPM+ESnu9IC0g==");
        // Hashing the base64 text instead of the bytes is wrong.
        assert!(!verify_md5(&dummy, b"nonce", "cV1M8ynub+sIt2f78gcNtA=="));
        assert!(verify_md5(&dummy, b"bm9uY2U=", "cV1M8ynub+sIt2f78gcNtA=="));
    }

    #[test]
    fn basic() {
        assert_eq!(basic_credential("Bruce2", "OhBehave"), "QnJ1Y2UyOk9oQmVoYXZl");
        let hash = secret_hash("Bruce2", "OhBehave");
        assert!(verify_basic("Bruce2", &hash, "QnJ1Y2UyOk9oQmVoYXZl"));
        assert!(!verify_basic("Bruce3", &hash, "QnJ1Y2UyOk9oQmVoYXZl"));
        assert!(!verify_basic("Bruce2", &hash, &basic_credential("Bruce2", "OhBehav")));
        assert!(!verify_basic("Bruce2", &hash, "not base64!"));
    }
}
