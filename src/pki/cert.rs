//! The ECDSA P-256 CA's certificates (RFC 5280): the self-signed CA certificate, device
//! certificates, inspection and verification. What is signed (the TBSCertificate, RFC 5280
//! §4.1.1) and the assembled certificate are built here, purely; the signature itself comes
//! from a [`Signer`] and is checked by a [`Verifier`].

use super::provider::{Signer, Verifier};
use super::tlv::{self, Tlv, BIT_STRING, INTEGER, OCTET_STRING, OID, SEQUENCE};
use super::PkiError;
use crate::codec::hex_upper;
use const_oid::db::rfc5280::ID_KP_CLIENT_AUTH;
use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Any, BitString, GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode, Tag};
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::time::Duration;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

fn build_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::Build(e.to_string())
}

fn cn_name(cn: &str) -> Result<Name, PkiError> {
    let atv = AttributeTypeAndValue {
        oid: const_oid::db::rfc4519::CN,
        value: Any::new(Tag::Utf8String, cn.as_bytes()).map_err(build_err)?,
    };
    let rdn = RelativeDistinguishedName(SetOfVec::try_from(vec![atv]).map_err(build_err)?);
    Ok(RdnSequence(vec![rdn]))
}

/// RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
fn x509_time(unix: u64) -> Result<Time, PkiError> {
    const Y2050: u64 = 2_524_608_000;
    let d = Duration::from_secs(unix);
    if unix < Y2050 {
        UtcTime::from_unix_duration(d).map(Time::UtcTime).map_err(build_err)
    } else {
        GeneralizedTime::from_unix_duration(d).map(Time::GeneralTime).map_err(build_err)
    }
}

fn validity(not_before: u64, not_after: u64) -> Result<Validity, PkiError> {
    if not_after <= not_before {
        return Err(PkiError::Build("not_after must be after not_before".into()));
    }
    Ok(Validity { not_before: x509_time(not_before)?, not_after: x509_time(not_after)? })
}

fn serial_number(serial: &[u8]) -> Result<SerialNumber, PkiError> {
    if serial.iter().all(|&b| b == 0) {
        return Err(PkiError::Build("serial must be a positive integer".into()));
    }
    SerialNumber::new(serial).map_err(build_err)
}

fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(build_err)?).map_err(build_err)?,
    })
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents.
fn key_identifier(spki_raw: &[u8]) -> Result<Vec<u8>, PkiError> {
    let spki = tlv::single(spki_raw, SEQUENCE, "SubjectPublicKeyInfo")?;
    let mut inner = spki.value;
    tlv::expect(&mut inner, SEQUENCE, "SubjectPublicKeyInfo.algorithm")?;
    let bits = tlv::expect(&mut inner, BIT_STRING, "subjectPublicKey")?;
    let key = bits.value.get(1..).ok_or_else(|| tlv::malformed("empty BIT STRING"))?;
    Ok(Sha1::digest(key).to_vec())
}

fn ski_extension(spki_raw: &[u8]) -> Result<Extension, PkiError> {
    let id = OctetString::new(key_identifier(spki_raw)?).map_err(build_err)?;
    extension(&SubjectKeyIdentifier(id), false)
}

/// The certificate (RFC 5280 §4.1): the TBSCertificate's DER signed by the provider, then
/// assembled with the signature algorithm (ecdsa-with-SHA256, RFC 5758 §3.2) and the DER
/// `ECDSA-Sig-Value` as the signatureValue BIT STRING (RFC 5480 §2.2).
async fn sign_certificate<S: Signer>(
    signer: &S,
    key: &S::Key,
    tbs: TbsCertificate,
) -> Result<Vec<u8>, PkiError> {
    let tbs_der = tbs.to_der().map_err(build_err)?;
    let sig = signer.sign_p256_sha256(key, &tbs_der).await?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(&sig).map_err(build_err)?,
    };
    cert.to_der().map_err(build_err)
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None }
}

/// Self-signed CA certificate: CA:true (critical), keyCertSign+cRLSign (critical), SKI,
/// subject CN given, serial given, validity given (unix seconds). `spki_der` is the public key
/// of `key`.
pub async fn sign_ca_certificate<S: Signer>(
    signer: &S,
    key: &S::Key,
    spki_der: &[u8],
    common_name: &str,
    serial: &[u8],
    not_before: u64,
    not_after: u64,
) -> Result<Vec<u8>, PkiError> {
    let name = cn_name(common_name)?;
    let extensions = vec![
        extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        ski_extension(spki_der)?,
    ];
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial_number(serial)?,
        signature: ecdsa_sha256(),
        issuer: name.clone(),
        validity: validity(not_before, not_after)?,
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(build_err)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_certificate(signer, key, tbs).await
}

/// What the CA needs to issue one device certificate.
#[derive(Debug, Clone)]
pub struct DeviceCertRequest<'a> {
    /// Positive big-endian integer bytes (caller guarantees uniqueness).
    pub serial: &'a [u8],
    /// Device id (NOT the CSR CN).
    pub subject_cn: &'a str,
    /// Device's public key (SubjectPublicKeyInfo DER).
    pub spki_der: &'a [u8],
    /// Unix seconds; not back-dated by the caller.
    pub not_before: u64,
    pub not_after: u64,
}

/// Device client certificate signed ECDSA P-256/SHA-256 by the CA: issuer = CA subject,
/// keyUsage digitalSignature+keyEncipherment (critical), EKU clientAuth, basicConstraints
/// CA:false (critical), authority key identifier (= CA SKI), subject key identifier.
/// `key` must be the key of `ca_cert_der` ([`check_key_matches`]).
pub async fn sign_device_certificate<S: Signer>(
    signer: &S,
    key: &S::Key,
    ca_cert_der: &[u8],
    req: &DeviceCertRequest<'_>,
) -> Result<Vec<u8>, PkiError> {
    let ca = CertParts::parse(ca_cert_der)?;
    let ca_ski = match ca.extension(&SubjectKeyIdentifier::OID) {
        Some(ext) => tlv::single(ext.value, OCTET_STRING, "CA subjectKeyIdentifier")?.value.to_vec(),
        None => key_identifier(ca.spki.raw)?,
    };
    let issuer = Name::from_der(ca.subject.raw).map_err(build_err)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(req.spki_der)
        .map_err(|e| PkiError::Malformed(format!("device SubjectPublicKeyInfo: {e}")))?;
    let extensions = vec![
        extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
        extension(&KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment), true)?,
        extension(&ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]), false)?,
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(ca_ski).map_err(build_err)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
        ski_extension(req.spki_der)?,
    ];
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial_number(req.serial)?,
        signature: ecdsa_sha256(),
        issuer,
        validity: validity(req.not_before, req.not_after)?,
        subject: cn_name(req.subject_cn)?,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_certificate(signer, key, tbs).await
}

/// Checks that `key` is the private key of the certificate's public key: it signs a probe that
/// the certificate's key must verify. A CA whose stored key and certificate disagree would
/// issue certificates no one can verify.
pub async fn check_key_matches<S: Signer>(signer: &S, key: &S::Key, cert_der: &[u8]) -> Result<(), PkiError> {
    let cert = CertParts::parse(cert_der)?;
    const PROBE: &[u8] = b"edgemdm: does this key belong to this certificate?";
    let sig = signer.sign_p256_sha256(key, PROBE).await?;
    match signer.verify_p256_sha256(cert.spki.raw, PROBE, &sig).await? {
        true => Ok(()),
        false => Err(PkiError::Build("the certificate does not match the key".into())),
    }
}

/// What a caller usually needs from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Upper-case hex, no leading 00.
    pub serial_hex: String,
    pub subject_cn: Option<String>,
    pub not_before: u64,
    pub not_after: u64,
    pub spki_der: Vec<u8>,
}

pub fn inspect_certificate(der: &[u8]) -> Result<CertInfo, PkiError> {
    let c = CertParts::parse(der)?;
    let serial = super::csr::strip_zeros(c.serial.value);
    let time = |t: &Tlv<'_>| -> Result<u64, PkiError> {
        Time::from_der(t.raw)
            .map(|t| t.to_unix_duration().as_secs())
            .map_err(|e| PkiError::Malformed(format!("certificate time: {e}")))
    };
    Ok(CertInfo {
        serial_hex: if serial.is_empty() { "00".into() } else { hex_upper(serial) },
        subject_cn: tlv::common_name(&c.subject)?,
        not_before: time(&c.not_before)?,
        not_after: time(&c.not_after)?,
        spki_der: c.spki.raw.to_vec(),
    })
}

/// Checks that `cert_der` carries a valid ECDSA P-256/SHA-256 signature by the CA whose
/// certificate is `ca_cert_der`, and that its issuer equals the CA subject (byte for
/// byte). A mismatching issuer is reported as `BadSignature`. Validity dates are NOT
/// checked here (callers pass their own clock).
pub async fn check_issued_by<V: Verifier>(
    verifier: &V,
    cert_der: &[u8],
    ca_cert_der: &[u8],
) -> Result<(), PkiError> {
    let cert = CertParts::parse(cert_der)?;
    let ca = CertParts::parse(ca_cert_der)?;
    if cert.issuer.raw != ca.subject.raw {
        return Err(PkiError::BadSignature);
    }
    if cert.sig_alg_oid != tlv::oid_bytes(&ECDSA_WITH_SHA_256) {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "certificate signature {}",
            tlv::oid_string(cert.sig_alg_oid)
        )));
    }
    match verifier.verify_p256_sha256(ca.spki.raw, cert.tbs.raw, cert.signature).await? {
        true => Ok(()),
        false => Err(PkiError::BadSignature),
    }
}

/// One extension, as raw slices.
pub(crate) struct ExtParts<'a> {
    pub oid: &'a [u8],
    pub value: &'a [u8],
}

/// A certificate cut into raw slices (original bytes), leniently.
pub(crate) struct CertParts<'a> {
    pub tbs: Tlv<'a>,
    pub sig_alg_oid: &'a [u8],
    pub signature: &'a [u8],
    pub serial: Tlv<'a>,
    pub issuer: Tlv<'a>,
    pub not_before: Tlv<'a>,
    pub not_after: Tlv<'a>,
    pub subject: Tlv<'a>,
    pub spki: Tlv<'a>,
    pub extensions: Vec<ExtParts<'a>>,
}

impl<'a> CertParts<'a> {
    pub(crate) fn parse(der: &'a [u8]) -> Result<CertParts<'a>, PkiError> {
        let outer = tlv::single(der, SEQUENCE, "Certificate")?;
        let mut body = outer.value;
        let tbs = tlv::expect(&mut body, SEQUENCE, "tbsCertificate")?;
        let alg = tlv::expect(&mut body, SEQUENCE, "signatureAlgorithm")?;
        let sig = tlv::expect(&mut body, BIT_STRING, "signatureValue")?;
        if !body.is_empty() {
            return Err(tlv::malformed("Certificate: trailing data"));
        }
        let mut f = tbs.value;
        if tlv::peek_tag(f) == Some(0xa0) {
            tlv::next(&mut f)?; // [0] EXPLICIT version
        }
        let serial = tlv::expect(&mut f, INTEGER, "serialNumber")?;
        tlv::expect(&mut f, SEQUENCE, "tbs signature")?;
        let issuer = tlv::expect(&mut f, SEQUENCE, "issuer")?;
        let validity = tlv::expect(&mut f, SEQUENCE, "validity")?;
        let subject = tlv::expect(&mut f, SEQUENCE, "subject")?;
        let spki = tlv::expect(&mut f, SEQUENCE, "subjectPublicKeyInfo")?;
        let mut v = validity.value;
        let not_before = tlv::next(&mut v)?;
        let not_after = tlv::next(&mut v)?;
        let mut extensions = Vec::new();
        while !f.is_empty() {
            let t = tlv::next(&mut f)?;
            if t.tag != 0xa3 {
                continue; // issuerUniqueID / subjectUniqueID
            }
            let list = tlv::single(t.value, SEQUENCE, "extensions")?;
            let mut exts = list.value;
            while !exts.is_empty() {
                let ext = tlv::expect(&mut exts, SEQUENCE, "Extension")?;
                let mut e = ext.value;
                let oid = tlv::expect(&mut e, OID, "extnID")?;
                if tlv::peek_tag(e) == Some(0x01) {
                    tlv::next(&mut e)?; // critical
                }
                let value = tlv::expect(&mut e, OCTET_STRING, "extnValue")?;
                extensions.push(ExtParts { oid: oid.value, value: value.value });
            }
        }
        Ok(CertParts {
            tbs,
            sig_alg_oid: tlv::algorithm(&alg)?,
            signature: super::csr::bit_string_bytes(&sig)?,
            serial,
            issuer,
            not_before,
            not_after,
            subject,
            spki,
            extensions,
        })
    }

    pub(crate) fn extension(&self, oid: &ObjectIdentifier) -> Option<&ExtParts<'a>> {
        self.extensions.iter().find(|e| e.oid == oid.as_bytes())
    }

    /// The subjectKeyIdentifier value, if the certificate has one.
    pub(crate) fn subject_key_id(&self) -> Option<&'a [u8]> {
        let ext = self.extension(&SubjectKeyIdentifier::OID)?;
        tlv::single(ext.value, OCTET_STRING, "subjectKeyIdentifier").ok().map(|t| t.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{now, openssl, openssl_status, rsa_key_and_csr, TempDir};
    use crate::pki::{
        build_ca_certificate, issue_device_certificate, parse_csr, thumbprint, to_pem, verify_issued_by,
        CaKey,
    };

    const YEAR: u64 = 365 * 24 * 3600;

    fn ca(cn: &str) -> (CaKey, Vec<u8>) {
        let key = CaKey::generate().unwrap();
        let t = now();
        let cert = build_ca_certificate(&key, cn, &[0x01, 0x02], t - 3600, t + 10 * YEAR).unwrap();
        (key, cert)
    }

    #[test]
    fn ca_key_pkcs8_roundtrip_and_openssl_reads_it() {
        let key = CaKey::generate().unwrap();
        let der = key.to_pkcs8_der();
        let again = CaKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(again.public_key_der(), key.public_key_der());
        assert_eq!(again.to_pkcs8_der(), der);
        assert_ne!(CaKey::generate().unwrap().public_key_der(), key.public_key_der());
        assert!(matches!(CaKey::from_pkcs8_der(&der[1..]), Err(PkiError::Malformed(_))));
        assert_eq!(format!("{key:?}"), "CaKey(<secret>)");
        let dir = TempDir::new("cakey");
        let p = dir.write("ca.key.der", &der);
        let text = openssl(&["pkey", "-inform", "DER", "-in", &p, "-noout", "-text"]);
        assert!(text.contains("prime256v1") || text.contains("P-256"), "{text}");
    }

    #[test]
    fn ca_and_device_certificates_check_out_with_openssl() {
        let dir = TempDir::new("certs");
        let (ca_key, ca_cert) = ca("edgemdm test CA");
        let (_dev_key, csr_der) = rsa_key_and_csr(&dir, "dev", 2048, "ignored-csr-cn");
        let csr = parse_csr(&csr_der, 2048).unwrap();
        let t = now();
        let serial = [0x8F, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
        let dev = issue_device_certificate(
            &ca_key,
            &ca_cert,
            &DeviceCertRequest {
                serial: &serial,
                subject_cn: "B5B954E81FBCB94EB79BD08BE625F4EE",
                spki_der: &csr.spki_der,
                not_before: t,
                not_after: t + YEAR,
            },
        )
        .unwrap();

        let ca_pem = dir.write("ca.pem", to_pem("CERTIFICATE", &ca_cert).as_bytes());
        let dev_pem = dir.write("dev.pem", to_pem("CERTIFICATE", &dev).as_bytes());
        let out = openssl(&["verify", "-CAfile", &ca_pem, "-purpose", "sslclient", &dev_pem]);
        assert!(out.contains(": OK"), "{out}");

        let text = openssl(&["x509", "-in", &dev_pem, "-noout", "-text"]);
        for needle in [
            "TLS Web Client Authentication",
            "CA:FALSE",
            "Digital Signature, Key Encipherment",
            "X509v3 Key Usage: critical",
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "ecdsa-with-SHA256",
            "CN = edgemdm test CA",
            "CN = B5B954E81FBCB94EB79BD08BE625F4EE",
            "rsaEncryption",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("ignored-csr-cn"));
        assert!(!text.contains("Non Repudiation"));
        let ca_text = openssl(&["x509", "-in", &ca_pem, "-noout", "-text"]);
        for needle in ["CA:TRUE", "Certificate Sign, CRL Sign", "X509v3 Basic Constraints: critical"] {
            assert!(ca_text.contains(needle), "missing {needle:?} in\n{ca_text}");
        }
        // AKI of the device cert = SKI of the CA
        let ski = CertParts::parse(&ca_cert).unwrap().subject_key_id().unwrap().to_vec();
        let aki_ext = CertParts::parse(&dev)
            .unwrap()
            .extension(&AuthorityKeyIdentifier::OID)
            .map(|e| e.value.to_vec())
            .unwrap();
        let aki = AuthorityKeyIdentifier::from_der(&aki_ext).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), ski.as_slice());

        // thumbprint = openssl's SHA-1 fingerprint
        let fp = openssl(&["x509", "-in", &dev_pem, "-noout", "-fingerprint", "-sha1"]);
        let fp = fp.trim().rsplit('=').next().unwrap().replace(':', "");
        assert_eq!(thumbprint(&dev), fp);

        // inspect
        let info = inspect_certificate(&dev).unwrap();
        assert_eq!(info.serial_hex, "8F11223344556677");
        let oserial = openssl(&["x509", "-in", &dev_pem, "-noout", "-serial"]);
        assert_eq!(oserial.trim(), "serial=8F11223344556677");
        assert_eq!(info.subject_cn.as_deref(), Some("B5B954E81FBCB94EB79BD08BE625F4EE"));
        assert_eq!((info.not_before, info.not_after), (t, t + YEAR));
        assert_eq!(info.spki_der, csr.spki_der);
        let ca_info = inspect_certificate(&ca_cert).unwrap();
        assert_eq!(ca_info.serial_hex, "0102");
        assert_eq!(ca_info.spki_der, ca_key.public_key_der());

        // verify_issued_by
        assert_eq!(verify_issued_by(&dev, &ca_cert), Ok(()));
        assert_eq!(verify_issued_by(&ca_cert, &ca_cert), Ok(()));
        let (_, other_same_name) = ca("edgemdm test CA");
        assert_eq!(verify_issued_by(&dev, &other_same_name), Err(PkiError::BadSignature));
        let (_, other) = ca("another CA");
        assert_eq!(verify_issued_by(&dev, &other), Err(PkiError::BadSignature));
        let pos = dev.windows(6).position(|w| w == b"B5B954").unwrap();
        let mut tampered = dev.clone();
        tampered[pos] ^= 1;
        assert_eq!(verify_issued_by(&tampered, &ca_cert), Err(PkiError::BadSignature));
        // and openssl agrees the other CA did not issue it
        let other_pem = dir.write("other.pem", to_pem("CERTIFICATE", &other_same_name).as_bytes());
        assert!(!openssl_status(&["verify", "-CAfile", &other_pem, &dev_pem]).0);
    }

    #[test]
    fn issuing_checks_inputs() {
        let (ca_key, ca_cert) = ca("CA");
        let (other_key, _) = ca("CA");
        let spki = ca_key.public_key_der(); // any valid SPKI will do here
        let req = |serial: &'static [u8], nb: u64, na: u64| DeviceCertRequest {
            serial,
            subject_cn: "dev",
            spki_der: &[],
            not_before: nb,
            not_after: na,
        };
        let mut r = req(&[1], 1_700_000_000, 1_800_000_000);
        r.spki_der = &spki;
        assert!(issue_device_certificate(&ca_key, &ca_cert, &r).is_ok());
        assert!(matches!(issue_device_certificate(&other_key, &ca_cert, &r), Err(PkiError::Build(_))));
        let mut r0 = req(&[0], 1_700_000_000, 1_800_000_000);
        r0.spki_der = &spki;
        assert!(matches!(issue_device_certificate(&ca_key, &ca_cert, &r0), Err(PkiError::Build(_))));
        let mut rt = req(&[1], 1_800_000_000, 1_700_000_000);
        rt.spki_der = &spki;
        assert!(matches!(issue_device_certificate(&ca_key, &ca_cert, &rt), Err(PkiError::Build(_))));
        let bad_spki = req(&[1], 1_700_000_000, 1_800_000_000);
        assert!(issue_device_certificate(&ca_key, &ca_cert, &bad_spki).is_err());
        assert!(matches!(inspect_certificate(&ca_cert[..10]), Err(PkiError::Malformed(_))));
    }

    #[test]
    fn times_after_2049_use_generalized_time() {
        let key = CaKey::generate().unwrap();
        let nb = 1_700_000_000;
        let na = 2_600_000_000; // 2052
        let cert = build_ca_certificate(&key, "long CA", &[7], nb, na).unwrap();
        let info = inspect_certificate(&cert).unwrap();
        assert_eq!((info.not_before, info.not_after), (nb, na));
        let dir = TempDir::new("gt");
        let p = dir.write("ca.der", &cert);
        let text = openssl(&["x509", "-inform", "DER", "-in", &p, "-noout", "-enddate"]);
        assert!(text.contains("2052"), "{text}");
        // 0x18 = GeneralizedTime tag, 0x17 = UTCTime
        let parts = CertParts::parse(&cert).unwrap();
        assert_eq!((parts.not_before.tag, parts.not_after.tag), (0x17, 0x18));
    }
}
