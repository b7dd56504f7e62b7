//! PKI for edgemdm: PKCS#10 parsing/verification (Windows quirks included), an ECDSA P-256 CA
//! that issues device client certificates, and MS-WSTEP ROBO renewal (CMS SignedData wrapping
//! the new PKCS#10).
//!
//! Parsing and encoding are pure Rust; the public-key arithmetic goes through a
//! [`provider::Verifier`] / [`provider::Signer`]: the runtime's WebCrypto in the Worker,
//! [`RustCrypto`] natively (tests, benches, the reference). No `worker` imports and no system
//! clock: callers pass times (unix seconds) and randomness in.
//!
//! Signatures are always verified over the ORIGINAL bytes of the signed structure
//! (a tiny TLV walker in [`tlv`] keeps the raw slices), never over a re-encoding.

mod cert;
mod csr;
pub mod provider;
mod renewal;
#[cfg(not(target_arch = "wasm32"))]
mod rust_crypto;
mod signature;
mod tlv;

#[cfg(test)]
pub(crate) mod testutil;

pub use cert::{
    check_issued_by, check_key_matches, inspect_certificate, sign_ca_certificate, sign_device_certificate,
    CertInfo, DeviceCertRequest,
};
pub use csr::{verify_csr, Csr};
pub use provider::{Hash, Signer, Verifier};
pub use renewal::{verify_renewal, Renewal};
#[cfg(not(target_arch = "wasm32"))]
pub use rust_crypto::{
    build_ca_certificate, issue_device_certificate, parse_csr, parse_renewal, verify_issued_by, CaKey,
    RustCrypto,
};
pub use signature::verify_detached;

use sha1::{Digest as _, Sha1};

/// Typed errors of this layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkiError {
    /// DER/CSR/CMS does not parse.
    Malformed(String),
    /// Signature or key algorithm we do not accept (e.g. EC keys in CSR, md5).
    UnsupportedAlgorithm(String),
    /// A signature does not verify (or the signer is not who it claims to be).
    BadSignature,
    /// RSA modulus bits below the minimum.
    KeyTooSmall(usize),
    /// Certificate building failed.
    Build(String),
}

impl std::fmt::Display for PkiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PkiError::Malformed(m) => write!(f, "malformed: {m}"),
            PkiError::UnsupportedAlgorithm(a) => write!(f, "unsupported algorithm: {a}"),
            PkiError::BadSignature => f.write_str("signature does not verify"),
            PkiError::KeyTooSmall(bits) => write!(f, "RSA key too small: {bits} bits"),
            PkiError::Build(m) => write!(f, "certificate build failed: {m}"),
        }
    }
}

impl std::error::Error for PkiError {}

/// SHA-1 of the DER, 40 upper-case hex chars (Windows' thumbprint form).
pub fn thumbprint(der: &[u8]) -> String {
    crate::codec::hex_upper(&Sha1::digest(der))
}

/// PEM armour with 64-char lines.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = crate::codec::encode_base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so any chunk boundary is a char boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_upper_hex_sha1() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d
        assert_eq!(thumbprint(b"abc"), "A9993E364706816ABA3E25717850C26C9CD0D89D");
    }

    #[test]
    fn pem_has_64_char_lines() {
        let der = vec![0xABu8; 100];
        let pem = to_pem("CERTIFICATE", &der);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(*lines.last().unwrap(), "-----END CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert!(lines[2].len() <= 64);
        let body: String = lines[1..lines.len() - 1].concat();
        assert_eq!(crate::codec::decode_base64(&body).unwrap(), der);
    }
}
