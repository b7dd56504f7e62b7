//! PBKDF2-HMAC-SHA256 through WebCrypto (`crypto.subtle.deriveBits`): native code, where a wasm
//! PBKDF2 would spend the request's CPU budget many times over.

use crate::calls::StoreError;
use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn js(e: JsValue) -> StoreError {
    StoreError(format!("WebCrypto: {e:?}"))
}

pub async fn pbkdf2_sha256(password: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>, StoreError> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let subtle = scope.crypto().map_err(js)?.subtle();
    let raw = Uint8Array::from(password.as_bytes());
    let usages = Array::of1(&"deriveBits".into());
    let key = JsFuture::from(subtle.import_key_with_str("raw", &raw, "PBKDF2", false, &usages).map_err(js)?)
        .await
        .map_err(js)?;
    let salt = Uint8Array::from(salt);
    let params = web_sys::Pbkdf2Params::new("PBKDF2", &"SHA-256".into(), iterations, &Object::from(salt));
    let bits =
        JsFuture::from(subtle.derive_bits_with_object(&params, &key.unchecked_into(), 256).map_err(js)?)
            .await
            .map_err(js)?;
    Ok(Uint8Array::new(&bits).to_vec())
}
