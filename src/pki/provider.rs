//! The public-key arithmetic the PKI needs, behind two small traits (as rustls puts its crypto
//! behind a `CryptoProvider`): everything else — parsing, choosing what is signed, encoding —
//! stays pure in this module's siblings and is the same whoever does the arithmetic.
//!
//! * [`Verifier`]: RSASSA-PKCS1-v1_5 signature verification (RFC 8017 §8.2.2) with SHA-1 or
//!   SHA-2, and ECDSA P-256 with SHA-256 (FIPS 186-4 §6.4, RFC 5758 §3.2).
//! * [`Signer`]: the CA's ECDSA P-256 key: generate, import from PKCS#8 (RFC 5208, RFC 5915),
//!   sign.
//!
//! Implementations: [`super::RustCrypto`] (pure Rust, the native tests' and the reference; not
//! compiled for wasm32) and the Worker's WebCrypto (`shell::webcrypto`, W3C Web Cryptography
//! API: native code in the runtime, where the same Rust compiled to wasm is several times
//! slower).
//!
//! Signatures cross the trait as X.509 carries them: DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3,
//! RFC 5480 §2.2); [`ecdsa_der_from_p1363`] and [`ecdsa_p1363_from_der`] convert to and from
//! the fixed-width `r || s` that WebCrypto uses (W3C WebCrypto §23.4, IEEE P1363).

use super::tlv::{self, INTEGER, SEQUENCE};
use super::PkiError;
use crate::context::Entropy;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Digests accepted for RSA PKCS#1 v1.5 signatures (RFC 8017 §9.2 note 1; SHA-1 because
/// Windows still signs CSRs with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "sha1",
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    /// The algorithm's name in WebCrypto (W3C WebCrypto §30, "SHA-1", "SHA-256", ...).
    pub fn webcrypto_name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// An RSA public key as read from a SubjectPublicKeyInfo: modulus and exponent as unsigned
/// big-endian integers without leading zeros, and the modulus size in bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublicKey {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub bits: usize,
}

impl RsaPublicKey {
    /// The key as a DER SubjectPublicKeyInfo in its one canonical form: rsaEncryption with
    /// NULL parameters (RFC 3279 §2.3.1), RSAPublicKey with minimal INTEGERs (RFC 8017 §A.1.1).
    /// What a device sent may differ in those details (absent parameters, padded integers);
    /// re-encoding keeps every provider as lenient as the parser.
    pub fn spki_der(&self) -> Vec<u8> {
        let rsa_public_key = der_tlv(SEQUENCE, &[der_uint(&self.n), der_uint(&self.e)].concat());
        let rsa_encryption = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        let algorithm = der_tlv(SEQUENCE, &[&rsa_encryption[..], &[0x05, 0x00]].concat());
        let bits = der_tlv(tlv::BIT_STRING, &[&[0u8][..], &rsa_public_key].concat());
        der_tlv(SEQUENCE, &[algorithm, bits].concat())
    }
}

/// Verifies signatures. `Ok(false)`: the signature does not verify. `Err`: the key or the
/// signature could not be used at all (the caller treats both as a refusal).
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait Verifier {
    /// RSASSA-PKCS1-v1_5-VERIFY (RFC 8017 §8.2.2) of `signature` over `message`.
    async fn verify_rsa_pkcs1v15(
        &self,
        key: &RsaPublicKey,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError>;

    /// ECDSA P-256/SHA-256 verification of a DER `ECDSA-Sig-Value` over `message`, with the
    /// key given as a DER SubjectPublicKeyInfo (id-ecPublicKey, prime256v1; RFC 5480 §2).
    async fn verify_p256_sha256(
        &self,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PkiError>;
}

/// A new P-256 key: the handle to sign with, the key as PKCS#8 to store, and its public key as
/// a DER SubjectPublicKeyInfo.
pub struct NewKey<K> {
    pub key: K,
    pub pkcs8_der: Vec<u8>,
    pub spki_der: Vec<u8>,
}

/// The CA's signing key: ECDSA P-256 with SHA-256.
#[allow(async_fn_in_trait)]
pub trait Signer: Verifier {
    /// A handle to a private key; the WebCrypto one cannot be exported.
    type Key;

    /// A fresh key. `entropy` is the caller's randomness; a provider with its own CSPRNG (the
    /// runtime's WebCrypto) may use that instead.
    async fn generate_p256(&self, entropy: &mut impl Entropy) -> Result<NewKey<Self::Key>, PkiError>;

    /// A stored key back from its PKCS#8 DER (RFC 5208 PrivateKeyInfo of an RFC 5915
    /// ECPrivateKey).
    async fn import_p256_pkcs8(&self, pkcs8_der: &[u8]) -> Result<Self::Key, PkiError>;

    /// ECDSA P-256 signature over SHA-256 of `message`, as a DER `ECDSA-Sig-Value`.
    async fn sign_p256_sha256(&self, key: &Self::Key, message: &[u8]) -> Result<Vec<u8>, PkiError>;
}

/// Width of r and s in a P-256 signature.
const P256_SCALAR: usize = 32;

/// DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3) from the
/// `r || s` form, 32 bytes each for P-256 (W3C WebCrypto §23.4 step "Convert r and s").
pub fn ecdsa_der_from_p1363(sig: &[u8]) -> Result<Vec<u8>, PkiError> {
    if sig.len() != 2 * P256_SCALAR {
        return Err(PkiError::Build(format!("P-256 signature of {} bytes", sig.len())));
    }
    let (r, s) = sig.split_at(P256_SCALAR);
    Ok(der_tlv(SEQUENCE, &[der_uint(r), der_uint(s)].concat()))
}

/// `r || s`, 32 bytes each, from a DER `ECDSA-Sig-Value`; `None` when it is not one or r or s
/// does not fit P-256.
pub fn ecdsa_p1363_from_der(der: &[u8]) -> Option<[u8; 2 * P256_SCALAR]> {
    let seq = tlv::single(der, SEQUENCE, "ECDSA-Sig-Value").ok()?;
    let mut fields = seq.value;
    let r = tlv::expect(&mut fields, INTEGER, "r").ok()?;
    let s = tlv::expect(&mut fields, INTEGER, "s").ok()?;
    if !fields.is_empty() {
        return None;
    }
    let mut out = [0u8; 2 * P256_SCALAR];
    for (i, v) in [r.value, s.value].into_iter().enumerate() {
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            return None; // empty or negative
        }
        let v = super::csr::strip_zeros(v);
        if v.len() > P256_SCALAR {
            return None;
        }
        out[(i + 1) * P256_SCALAR - v.len()..(i + 1) * P256_SCALAR].copy_from_slice(v);
    }
    Some(out)
}

/// A DER INTEGER holding the unsigned big-endian `v`, minimally encoded (X.690 §8.3).
fn der_uint(v: &[u8]) -> Vec<u8> {
    let v = super::csr::strip_zeros(v);
    let mut body = Vec::with_capacity(v.len() + 1);
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(v);
    der_tlv(INTEGER, &body)
}

/// A DER element with definite, minimal length (X.690 §8.1.3).
fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

/// Runs a future that never waits, such as every [`super::RustCrypto`] operation, to its end.
#[cfg(not(target_arch = "wasm32"))]
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a pure-Rust crypto operation waited"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1363_and_der_convert_both_ways() {
        // r with its high bit set (needs a 00 pad), s with leading zeros (shortened).
        let mut sig = [0u8; 64];
        sig[0] = 0x80;
        sig[31] = 1;
        sig[34] = 0x12;
        sig[63] = 0x34;
        let der = ecdsa_der_from_p1363(&sig).unwrap();
        assert_eq!(&der[..6], &[0x30, 0x43, 0x02, 0x21, 0x00, 0x80]);
        assert_eq!(ecdsa_p1363_from_der(&der), Some(sig));
        // one SEQUENCE of two minimal INTEGERs
        let seq = tlv::single(&der, SEQUENCE, "x").unwrap();
        let mut f = seq.value;
        let r = tlv::expect(&mut f, INTEGER, "r").unwrap();
        let s = tlv::expect(&mut f, INTEGER, "s").unwrap();
        assert_eq!((r.value.len(), r.value[0]), (33, 0));
        assert_eq!(s.value, &sig[34..]);
        // all zero r: INTEGER 0
        let zero = ecdsa_der_from_p1363(&[0u8; 64]).unwrap();
        assert_eq!(zero, [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
        assert_eq!(ecdsa_p1363_from_der(&zero), Some([0u8; 64]));
        // wrong sizes and shapes
        assert!(ecdsa_der_from_p1363(&[0u8; 63]).is_err());
        assert_eq!(ecdsa_p1363_from_der(&[0x30, 0x03, 0x02, 0x01, 0x01]), None);
        let negative = [0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01];
        assert_eq!(ecdsa_p1363_from_der(&negative), None);
        let mut long = vec![0x30, 0x26, 0x02, 0x21, 0x01];
        long.extend_from_slice(&[0xff; 32]);
        long.extend_from_slice(&[0x02, 0x01, 0x01]);
        assert_eq!(ecdsa_p1363_from_der(&long), None, "r wider than 32 bytes");
    }

    #[test]
    fn rsa_spki_is_canonical() {
        let key = RsaPublicKey { n: vec![0xc0, 0x01], e: vec![0x01, 0x00, 0x01], bits: 16 };
        let spki = key.spki_der();
        assert_eq!(
            spki,
            [
                0x30, 0x1e, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
                0x05, 0x00, 0x03, 0x0d, 0x00, 0x30, 0x0a, 0x02, 0x03, 0x00, 0xc0, 0x01, 0x02, 0x03, 0x01,
                0x00, 0x01
            ]
        );
        // long lengths
        let big = RsaPublicKey { n: vec![0x7f; 256], e: vec![3], bits: 2047 };
        let spki = big.spki_der();
        let outer = tlv::single(&spki, SEQUENCE, "spki").unwrap();
        assert_eq!(outer.raw.len(), spki.len());
        assert_eq!(&spki[..4], &[0x30, 0x82, 0x01, 0x1f]);
        // A key as openssl writes it (canonical already) comes out byte for byte the same.
        let dir = crate::pki::testutil::TempDir::new("spki");
        let (_, csr) = crate::pki::testutil::rsa_key_and_csr(&dir, "k", 2048, "k");
        let parsed = crate::pki::parse_csr(&csr, 2048).unwrap();
        let key = super::super::csr::rsa_key_from_spki(&parsed.spki_der).unwrap();
        assert_eq!(key.bits, 2048);
        assert_eq!(key.spki_der(), parsed.spki_der);
        // Padded integers and absent parameters are normalised.
        let odd = [
            0x30, 0x19, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x03,
            0x0a, 0x00, 0x30, 0x07, 0x02, 0x02, 0x00, 0x41, 0x02, 0x01, 0x03,
        ];
        let key = super::super::csr::rsa_key_from_spki(&odd).unwrap();
        assert_eq!((key.n.as_slice(), key.e.as_slice(), key.bits), (&[0x41][..], &[3][..], 7));
        assert_eq!(key.spki_der(), RsaPublicKey { n: vec![0x41], e: vec![3], bits: 7 }.spki_der());
        assert_eq!(
            &key.spki_der()[2..17],
            &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]
        );
    }
}
