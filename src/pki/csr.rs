//! PKCS#10 (RFC 2986): parse leniently, verify strictly, over the original bytes. Parsing is
//! pure; the signature is checked by a [`Verifier`].

use super::provider::{Hash, RsaPublicKey, Verifier};
use super::tlv::{self, Tlv, BIT_STRING, INTEGER, SEQUENCE};
use super::PkiError;
use const_oid::ObjectIdentifier;

/// A verified PKCS#10 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    /// The SubjectPublicKeyInfo, DER, exactly as in the CSR.
    pub spki_der: Vec<u8>,
    pub rsa_bits: usize,
    /// Lossy UTF-8, trailing NULs trimmed (PrintableString/UTF8String/any string type).
    pub subject_cn: Option<String>,
    /// "sha1" | "sha256" | "sha384" | "sha512"
    pub signature_hash: &'static str,
}

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const SHA1_WITH_RSA_OIW: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.29");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// A digest AlgorithmIdentifier OID (contents bytes).
pub(crate) fn hash_from_digest_oid(oid: &[u8]) -> Result<Hash, PkiError> {
    let o = |x: &'static ObjectIdentifier| tlv::oid_bytes(x);
    if oid == o(&ID_SHA1) {
        Ok(Hash::Sha1)
    } else if oid == o(&ID_SHA256) {
        Ok(Hash::Sha256)
    } else if oid == o(&ID_SHA384) {
        Ok(Hash::Sha384)
    } else if oid == o(&ID_SHA512) {
        Ok(Hash::Sha512)
    } else {
        Err(PkiError::UnsupportedAlgorithm(format!("digest {}", tlv::oid_string(oid))))
    }
}

/// A signature AlgorithmIdentifier OID (contents bytes) of RSA PKCS#1 v1.5 with a hash.
pub(crate) fn rsa_signature_hash(oid: &[u8]) -> Result<Hash, PkiError> {
    let o = |x: &'static ObjectIdentifier| tlv::oid_bytes(x);
    if oid == o(&SHA1_WITH_RSA) || oid == o(&SHA1_WITH_RSA_OIW) {
        Ok(Hash::Sha1)
    } else if oid == o(&SHA256_WITH_RSA) {
        Ok(Hash::Sha256)
    } else if oid == o(&SHA384_WITH_RSA) {
        Ok(Hash::Sha384)
    } else if oid == o(&SHA512_WITH_RSA) {
        Ok(Hash::Sha512)
    } else {
        Err(PkiError::UnsupportedAlgorithm(format!("signature {}", tlv::oid_string(oid))))
    }
}

pub(crate) fn is_rsa_encryption(oid: &[u8]) -> bool {
    oid == tlv::oid_bytes(&RSA_ENCRYPTION)
}

/// Contents of a BIT STRING that must have no unused bits.
pub(crate) fn bit_string_bytes<'a>(t: &Tlv<'a>) -> Result<&'a [u8], PkiError> {
    match t.value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(tlv::malformed("BIT STRING with unused bits")),
    }
}

/// An RSA public key from a raw SubjectPublicKeyInfo (RFC 3279 §2.3.1), leniently: the
/// AlgorithmIdentifier parameters are not looked at and the integers may be padded.
pub(crate) fn rsa_key_from_spki(spki_raw: &[u8]) -> Result<RsaPublicKey, PkiError> {
    let spki = tlv::single(spki_raw, SEQUENCE, "SubjectPublicKeyInfo")?;
    let mut inner = spki.value;
    let alg = tlv::expect(&mut inner, SEQUENCE, "SubjectPublicKeyInfo.algorithm")?;
    let alg_oid = tlv::algorithm(&alg)?;
    if !is_rsa_encryption(alg_oid) {
        return Err(PkiError::UnsupportedAlgorithm(format!("public key {}", tlv::oid_string(alg_oid))));
    }
    let bits = tlv::expect(&mut inner, BIT_STRING, "subjectPublicKey")?;
    let pkcs1 = tlv::single(bit_string_bytes(&bits)?, SEQUENCE, "RSAPublicKey")?;
    let mut k = pkcs1.value;
    let n = tlv::expect(&mut k, INTEGER, "RSA modulus")?;
    let e = tlv::expect(&mut k, INTEGER, "RSA exponent")?;
    let n_bytes = strip_zeros(n.value);
    let e_bytes = strip_zeros(e.value);
    if n_bytes.is_empty() || e_bytes.is_empty() || n.value[0] & 0x80 != 0 || e.value[0] & 0x80 != 0 {
        return Err(tlv::malformed("RSA key: non-positive integer"));
    }
    let modulus_bits = (n_bytes.len() - 1) * 8 + (8 - n_bytes[0].leading_zeros() as usize);
    Ok(RsaPublicKey { n: n_bytes.to_vec(), e: e_bytes.to_vec(), bits: modulus_bits })
}

/// RSA PKCS#1 v1.5 verification (RFC 8017 §8.2.2) of `signature` over `message`.
pub(crate) async fn rsa_verify<V: Verifier>(
    verifier: &V,
    key: &RsaPublicKey,
    hash: Hash,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    match verifier.verify_rsa_pkcs1v15(key, hash, message, signature).await? {
        true => Ok(()),
        false => Err(PkiError::BadSignature),
    }
}

pub(crate) fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

/// Parse leniently, verify strictly. Accepts sha1WithRSA as OIW 1.3.14.3.2.29 and
/// 1.2.840.113549.1.1.5, and sha256/384/512WithRSA. The signature is verified over the
/// ORIGINAL bytes of certificationRequestInfo (RFC 2986 §4.2). Only RSA keys; below
/// `min_rsa_bits` -> [`PkiError::KeyTooSmall`]. Attributes (including Windows' raw, non-DER
/// `1.3.6.1.4.1.311.66.1.0` extension) are not interpreted.
pub async fn verify_csr<V: Verifier>(verifier: &V, der: &[u8], min_rsa_bits: usize) -> Result<Csr, PkiError> {
    let outer = tlv::single(der, SEQUENCE, "CertificationRequest")?;
    let mut body = outer.value;
    let info = tlv::expect(&mut body, SEQUENCE, "certificationRequestInfo")?;
    let alg = tlv::expect(&mut body, SEQUENCE, "signatureAlgorithm")?;
    let sig = tlv::expect(&mut body, BIT_STRING, "signature")?;
    if !body.is_empty() {
        return Err(tlv::malformed("CertificationRequest: trailing data"));
    }

    // certificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, [0] attributes }
    let mut fields = info.value;
    tlv::expect(&mut fields, INTEGER, "CSR version")?;
    let subject = tlv::expect(&mut fields, SEQUENCE, "CSR subject")?;
    let spki = tlv::expect(&mut fields, SEQUENCE, "CSR subjectPKInfo")?;
    // The attributes ([0]) are left uninterpreted; they are covered by the signature.

    let hash = rsa_signature_hash(tlv::algorithm(&alg)?)?;
    let key = rsa_key_from_spki(spki.raw)?;
    if key.bits < min_rsa_bits {
        return Err(PkiError::KeyTooSmall(key.bits));
    }
    let subject_cn = tlv::common_name(&subject)?;
    rsa_verify(verifier, &key, hash, info.raw, bit_string_bytes(&sig)?).await?;

    Ok(Csr { spki_der: spki.raw.to_vec(), rsa_bits: key.bits, subject_cn, signature_hash: hash.name() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::parse_csr;
    use crate::pki::testutil::{openssl, TempDir};

    fn wp8_csr() -> Vec<u8> {
        let xml = include_str!("../proto/testdata/wstep_request_onprem_wp80_10517.xml");
        let start = xml.find("#base64binary\">").expect("BST") + "#base64binary\">".len();
        let end = start + xml[start..].find('<').unwrap();
        crate::codec::decode_base64(&xml[start..end]).unwrap()
    }

    #[test]
    fn real_wp8_csr_parses_and_verifies() {
        let der = wp8_csr();
        let csr = parse_csr(&der, 2048).expect("WP8 CSR verifies");
        assert_eq!(csr.rsa_bits, 2048);
        assert_eq!(csr.signature_hash, "sha1");
        assert_eq!(csr.subject_cn.as_deref(), Some("B1C43CD0-1624-5FBB-8E54-34CF17DFD3A1"));
        // signature algorithm really is the OIW OID
        assert!(der.windows(7).any(|w| w == [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1d]));
        // SPKI kept exactly
        let pos = der.windows(csr.spki_der.len()).position(|w| w == csr.spki_der).unwrap();
        assert!(pos > 0);
        assert_eq!(parse_csr(&der, 4096), Err(PkiError::KeyTooSmall(2048)));
    }

    #[test]
    fn real_wp8_csr_tampering_fails() {
        let der = wp8_csr();
        // last byte belongs to the signature
        let mut bad = der.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(parse_csr(&bad, 2048), Err(PkiError::BadSignature));
        // a byte in the subject CN (inside certificationRequestInfo)
        let cn = b"B1C43CD0";
        let pos = der.windows(cn.len()).position(|w| w == cn).unwrap();
        let mut bad = der.clone();
        bad[pos] ^= 1;
        assert_eq!(parse_csr(&bad, 2048), Err(PkiError::BadSignature));
        // a byte in the modulus
        let mut bad = der.clone();
        bad[pos + 80] ^= 0x10;
        assert!(matches!(parse_csr(&bad, 2048), Err(PkiError::BadSignature) | Err(PkiError::Malformed(_))));
        // truncation
        assert!(matches!(parse_csr(&der[..der.len() - 1], 2048), Err(PkiError::Malformed(_))));
        assert!(matches!(parse_csr(b"", 2048), Err(PkiError::Malformed(_))));
    }

    fn openssl_csr(dir: &TempDir, name: &str, args: &[&str]) -> Vec<u8> {
        let out = dir.path(&format!("{name}.csr.der"));
        let key = dir.path(&format!("{name}.key"));
        let mut a = vec!["req", "-new", "-nodes", "-subj", "/CN=x", "-outform", "DER"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-keyout", &key, "-out", &out]);
        openssl(&a);
        std::fs::read(&out).unwrap()
    }

    #[test]
    fn openssl_rsa_csrs() {
        let dir = TempDir::new("csr");
        let der = openssl_csr(&dir, "sha256", &["-newkey", "rsa:2048"]);
        let csr = parse_csr(&der, 2048).unwrap();
        assert_eq!(csr.signature_hash, "sha256");
        assert_eq!(csr.subject_cn.as_deref(), Some("x"));
        assert_eq!(csr.rsa_bits, 2048);
        let mut bad = der.clone();
        let n = bad.len();
        bad[n - 10] ^= 0x40;
        assert_eq!(parse_csr(&bad, 2048), Err(PkiError::BadSignature));

        let der = openssl_csr(&dir, "sha1", &["-newkey", "rsa:2048", "-sha1"]);
        let csr = parse_csr(&der, 2048).unwrap();
        assert_eq!(csr.signature_hash, "sha1");

        let der = openssl_csr(&dir, "sha384", &["-newkey", "rsa:3072", "-sha384"]);
        let csr = parse_csr(&der, 2048).unwrap();
        assert_eq!((csr.signature_hash, csr.rsa_bits), ("sha384", 3072));

        let der = openssl_csr(&dir, "small", &["-newkey", "rsa:1024"]);
        assert_eq!(parse_csr(&der, 2048), Err(PkiError::KeyTooSmall(1024)));
        assert!(parse_csr(&der, 1024).is_ok());
    }

    #[test]
    fn openssl_ec_csr_is_unsupported() {
        let dir = TempDir::new("csr-ec");
        let der = openssl_csr(&dir, "ec", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        assert!(matches!(parse_csr(&der, 2048), Err(PkiError::UnsupportedAlgorithm(_))));
    }
}
