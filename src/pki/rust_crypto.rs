//! The pure-Rust [`Verifier`] and [`Signer`] (RustCrypto's `rsa` and `p256`): the reference
//! implementation the native tests run, and the synchronous forms of the PKI operations they
//! call. Not compiled for wasm32: the Worker uses the runtime's WebCrypto (`shell::webcrypto`).

use super::provider::{ready, Hash, NewKey, RsaPublicKey, Signer, Verifier};
use super::{CertInfo, Csr, DeviceCertRequest, PkiError, Renewal};
use crate::context::Entropy;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::{BigUint, Pkcs1v15Sign};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

/// Pure-Rust crypto.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// A P-256 private key in memory.
#[derive(Clone)]
pub struct CaKey(SigningKey);

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaKey(<secret>)")
    }
}

impl CaKey {
    /// A fresh key from `getrandom`.
    pub fn generate() -> Result<CaKey, PkiError> {
        struct OsEntropy;
        impl Entropy for OsEntropy {
            fn fill(&mut self, out: &mut [u8]) {
                getrandom::getrandom(out).expect("getrandom");
            }
        }
        Ok(CaKey::generate_with(&mut OsEntropy))
    }

    /// A fresh key from the caller's entropy.
    pub fn generate_with(entropy: &mut impl Entropy) -> CaKey {
        loop {
            let mut bytes: [u8; 32] = entropy.bytes();
            // Rejection sampling: zero or >= the group order is refused by from_slice.
            let key = SigningKey::from_slice(&bytes);
            bytes.fill(0);
            if let Ok(key) = key {
                return CaKey(key);
            }
        }
    }

    pub fn from_pkcs8_der(der: &[u8]) -> Result<CaKey, PkiError> {
        SigningKey::from_pkcs8_der(der)
            .map(CaKey)
            .map_err(|e| PkiError::Malformed(format!("CA key PKCS#8: {e}")))
    }

    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        // ecdsa 0.16 gates its own PKCS#8 encoder behind "pem"; elliptic-curve's does not.
        p256::SecretKey::from(&self.0)
            .to_pkcs8_der()
            .expect("PKCS#8 encoding of a valid P-256 key cannot fail")
            .as_bytes()
            .to_vec()
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        p256::PublicKey::from(self.0.verifying_key())
            .to_public_key_der()
            .expect("SPKI encoding of a P-256 key cannot fail")
            .into_vec()
    }
}

impl Verifier for RustCrypto {
    async fn verify_rsa_pkcs1v15(
        &self,
        key: &RsaPublicKey,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        let key = rsa::RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(&key.n),
            BigUint::from_bytes_be(&key.e),
            16384,
        )
        .map_err(|e| PkiError::Malformed(format!("RSA key: {e}")))?;
        let scheme = match hash {
            Hash::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        };
        Ok(key.verify(scheme, &hash.digest(message), signature).is_ok())
    }

    async fn verify_p256_sha256(
        &self,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError> {
        let key = VerifyingKey::from_public_key_der(spki_der)
            .map_err(|e| PkiError::UnsupportedAlgorithm(format!("key is not P-256: {e}")))?;
        let Ok(sig) = Signature::from_der(signature) else {
            return Ok(false);
        };
        Ok(key.verify(message, &sig).is_ok())
    }
}

impl Signer for RustCrypto {
    type Key = CaKey;

    async fn generate_p256(&self, entropy: &mut impl Entropy) -> Result<NewKey<CaKey>, PkiError> {
        let key = CaKey::generate_with(entropy);
        Ok(NewKey { pkcs8_der: key.to_pkcs8_der(), spki_der: key.public_key_der(), key })
    }

    async fn import_p256_pkcs8(&self, pkcs8_der: &[u8]) -> Result<CaKey, PkiError> {
        CaKey::from_pkcs8_der(pkcs8_der)
    }

    async fn sign_p256_sha256(&self, key: &CaKey, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let sig: DerSignature = key.0.try_sign(message).map_err(|e| PkiError::Build(e.to_string()))?;
        Ok(sig.as_bytes().to_vec())
    }
}

/// [`super::verify_csr`] with [`RustCrypto`].
pub fn parse_csr(der: &[u8], min_rsa_bits: usize) -> Result<Csr, PkiError> {
    ready(super::verify_csr(&RustCrypto, der, min_rsa_bits))
}

/// [`super::verify_renewal`] with [`RustCrypto`].
pub fn parse_renewal(pkcs7_der: &[u8], min_rsa_bits: usize) -> Result<Renewal, PkiError> {
    ready(super::verify_renewal(&RustCrypto, pkcs7_der, min_rsa_bits))
}

/// [`super::sign_ca_certificate`] with [`RustCrypto`].
pub fn build_ca_certificate(
    key: &CaKey,
    common_name: &str,
    serial: &[u8],
    not_before: u64,
    not_after: u64,
) -> Result<Vec<u8>, PkiError> {
    let spki = key.public_key_der();
    ready(super::sign_ca_certificate(&RustCrypto, key, &spki, common_name, serial, not_before, not_after))
}

/// [`super::sign_device_certificate`] with [`RustCrypto`], after checking that `key` is the
/// key of `ca_cert_der`.
pub fn issue_device_certificate(
    key: &CaKey,
    ca_cert_der: &[u8],
    req: &DeviceCertRequest,
) -> Result<Vec<u8>, PkiError> {
    let ca: CertInfo = super::inspect_certificate(ca_cert_der)?;
    if ca.spki_der != key.public_key_der() {
        return Err(PkiError::Build("CA certificate does not match the CA key".into()));
    }
    ready(super::sign_device_certificate(&RustCrypto, key, ca_cert_der, req))
}

/// [`super::check_issued_by`] with [`RustCrypto`].
pub fn verify_issued_by(cert_der: &[u8], ca_cert_der: &[u8]) -> Result<(), PkiError> {
    ready(super::check_issued_by(&RustCrypto, cert_der, ca_cert_der))
}
