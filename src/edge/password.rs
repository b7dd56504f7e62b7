//! PBKDF2-HMAC-SHA256 through WebCrypto (`crypto.subtle.deriveBits`).

use crate::users::PasswordHash;
use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::*;

fn subtle() -> Result<web_sys::SubtleCrypto> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(scope.crypto()?.subtle())
}

pub async fn pbkdf2_sha256(password: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>> {
    let subtle = subtle()?;
    let raw = Uint8Array::from(password.as_bytes());
    let usages = Array::of1(&"deriveBits".into());
    let key = JsFuture::from(subtle.import_key_with_str("raw", &raw, "PBKDF2", false, &usages)?).await?;
    let salt = Uint8Array::from(salt);
    let params = web_sys::Pbkdf2Params::new("PBKDF2", &"SHA-256".into(), iterations, &Object::from(salt));
    let bits = JsFuture::from(subtle.derive_bits_with_object(&params, &key.unchecked_into(), 256)?).await?;
    Ok(Uint8Array::new(&bits).to_vec())
}

/// Checks a password against a stored hash; malformed hashes never match.
pub async fn verify(stored: &str, password: &str) -> Result<bool> {
    let Some(h) = PasswordHash::parse(stored) else {
        return Ok(false);
    };
    let derived = pbkdf2_sha256(password, &h.salt, h.iterations).await?;
    Ok(h.matches(&derived))
}

pub async fn hash(password: &str, salt: [u8; 16], iterations: u32) -> Result<String> {
    let derived = pbkdf2_sha256(password, &salt, iterations).await?;
    let hash: [u8; 32] = derived.try_into().map_err(|_| Error::RustError("PBKDF2 output length".into()))?;
    Ok(PasswordHash { iterations, salt: salt.to_vec(), hash }.encode())
}
