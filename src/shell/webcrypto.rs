//! The runtime's Web Cryptography API (`crypto.subtle`, W3C WebCrypto): native code, where the
//! same work in wasm would spend the request's CPU budget several times over.
//!
//! * PBKDF2-HMAC-SHA256 (`deriveBits`) for password hashes.
//! * [`WebCrypto`]: the PKI's [`Verifier`] and [`Signer`]. RSASSA-PKCS1-v1_5 verification
//!   (W3C WebCrypto §20) of CSR and renewal signatures; ECDSA P-256/SHA-256 (§23) for the CA:
//!   its key is generated with `generateKey`, exported once as PKCS#8 for storage, and kept as
//!   a non-extractable `CryptoKey` imported from that PKCS#8 (`importKey("pkcs8", …, false,
//!   ["sign"])`). WebCrypto's ECDSA signatures are `r || s`; the core converts them to and
//!   from X.509's DER `ECDSA-Sig-Value`.

use crate::context::Entropy;
use crate::object_call::StoreError;
use crate::pki::provider::{ecdsa_der_from_p1363, ecdsa_p1363_from_der, Hash, NewKey, RsaPublicKey};
use crate::pki::{PkiError, Signer, Verifier};
use js_sys::{Array, ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

fn js(e: JsValue) -> StoreError {
    StoreError(format!("WebCrypto: {e:?}"))
}

fn subtle() -> Result<SubtleCrypto, JsValue> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(scope.crypto()?.subtle())
}

pub async fn pbkdf2_sha256(password: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>, StoreError> {
    let subtle = subtle().map_err(js)?;
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

/// The runtime's WebCrypto as the PKI's crypto provider.
pub struct WebCrypto;

/// A private key held by the runtime; the CA's is not extractable.
#[derive(Clone, Debug)]
pub struct WebKey(CryptoKey);

/// An algorithm dictionary, e.g. `{ name: "ECDSA", namedCurve: "P-256" }`.
fn algorithm(entries: &[(&str, &str)]) -> Object {
    let o = Object::new();
    for (k, v) in entries {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &(*k).into(), &(*v).into());
    }
    o
}

const ECDSA_P256: &[(&str, &str)] = &[("name", "ECDSA"), ("namedCurve", "P-256")];
const ECDSA_SHA256: &[(&str, &str)] = &[("name", "ECDSA"), ("hash", "SHA-256")];

fn usages(list: &[&str]) -> Array {
    list.iter().map(|u| JsValue::from_str(u)).collect()
}

async fn settle(p: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

fn failed(what: &str) -> impl Fn(JsValue) -> PkiError + '_ {
    move |e| PkiError::Build(format!("WebCrypto {what}: {e:?}"))
}

fn bytes(buffer: &JsValue) -> Vec<u8> {
    Uint8Array::new(buffer).to_vec()
}

async fn import(
    subtle: &SubtleCrypto,
    format: &str,
    der: &[u8],
    alg: &Object,
    extractable: bool,
    usage: &[&str],
) -> Result<CryptoKey, JsValue> {
    let data = Uint8Array::from(der);
    let key = settle(subtle.import_key_with_object(format, &data, alg, extractable, &usages(usage))).await?;
    Ok(key.unchecked_into())
}

impl Verifier for WebCrypto {
    async fn verify_rsa_pkcs1v15(
        &self,
        key: &RsaPublicKey,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        let subtle = subtle().map_err(failed("crypto.subtle"))?;
        let alg = algorithm(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", hash.webcrypto_name())]);
        let key = import(&subtle, "spki", &key.spki_der(), &alg, false, &["verify"])
            .await
            .map_err(|e| PkiError::Malformed(format!("RSA key refused by WebCrypto: {e:?}")))?;
        // A rejected verify (e.g. a signature of the wrong length) is a signature that does
        // not verify.
        let ok =
            settle(subtle.verify_with_object_and_u8_array_and_u8_array(&alg, &key, signature, message)).await;
        Ok(ok.ok().and_then(|v| v.as_bool()) == Some(true))
    }

    async fn verify_p256_sha256(
        &self,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        let subtle = subtle().map_err(failed("crypto.subtle"))?;
        let key = import(&subtle, "spki", spki_der, &algorithm(ECDSA_P256), false, &["verify"])
            .await
            .map_err(|e| PkiError::UnsupportedAlgorithm(format!("key is not P-256: {e:?}")))?;
        let Some(sig) = ecdsa_p1363_from_der(signature) else {
            return Ok(false);
        };
        let alg = algorithm(ECDSA_SHA256);
        let ok = settle(subtle.verify_with_object_and_u8_array_and_u8_array(&alg, &key, &sig, message)).await;
        Ok(ok.ok().and_then(|v| v.as_bool()) == Some(true))
    }
}

impl Signer for WebCrypto {
    type Key = WebKey;

    /// `generateKey` with the runtime's CSPRNG (`entropy` is not needed). The pair is
    /// extractable only for the one export of the private key to PKCS#8 for storage; the key
    /// kept is re-imported from it, non-extractable.
    async fn generate_p256(&self, _entropy: &mut impl Entropy) -> Result<NewKey<WebKey>, PkiError> {
        let subtle = subtle().map_err(failed("crypto.subtle"))?;
        let alg = algorithm(ECDSA_P256);
        let pair = settle(subtle.generate_key_with_object(&alg, true, &usages(&["sign", "verify"])))
            .await
            .map_err(failed("generateKey"))?;
        let part = |name: &str| -> Result<CryptoKey, PkiError> {
            Ok(Reflect::get(&pair, &name.into()).map_err(failed("generateKey"))?.unchecked_into())
        };
        let (private, public) = (part("privateKey")?, part("publicKey")?);
        let pkcs8 = settle(subtle.export_key("pkcs8", &private)).await.map_err(failed("exportKey pkcs8"))?;
        let spki = settle(subtle.export_key("spki", &public)).await.map_err(failed("exportKey spki"))?;
        let (pkcs8_der, spki_der) = (bytes(&pkcs8), bytes(&spki));
        let key = self.import_p256_pkcs8(&pkcs8_der).await?;
        Ok(NewKey { key, pkcs8_der, spki_der })
    }

    async fn import_p256_pkcs8(&self, pkcs8_der: &[u8]) -> Result<WebKey, PkiError> {
        let subtle = subtle().map_err(failed("crypto.subtle"))?;
        let key = import(&subtle, "pkcs8", pkcs8_der, &algorithm(ECDSA_P256), false, &["sign"])
            .await
            .map_err(|e| PkiError::Malformed(format!("CA key PKCS#8 refused by WebCrypto: {e:?}")))?;
        Ok(WebKey(key))
    }

    async fn sign_p256_sha256(&self, key: &WebKey, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let subtle = subtle().map_err(failed("crypto.subtle"))?;
        let sig = settle(subtle.sign_with_object_and_u8_array(&algorithm(ECDSA_SHA256), &key.0, message))
            .await
            .map_err(failed("sign"))?;
        let sig: ArrayBuffer = sig.unchecked_into();
        ecdsa_der_from_p1363(&Uint8Array::new(&sig).to_vec())
    }
}
