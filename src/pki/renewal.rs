//! MS-WSTEP ROBO renewal: CMS SignedData (made with the device's current key) whose
//! encapsulated content is the new PKCS#10.

use super::cert::CertParts;
use super::csr::{self, Csr};
use super::provider::{Hash, Verifier};
use super::tlv::{self, Tlv, OCTET_STRING, OID, SEQUENCE, SET};
use super::PkiError;
use const_oid::ObjectIdentifier;

/// A verified renewal request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// The certificate whose key signed the request (the device's current certificate).
    /// Not checked against any CA here: callers must run `verify_issued_by` on it and
    /// check its validity/renewal window and enrollment binding.
    pub signer_cert_der: Vec<u8>,
    pub csr: Csr,
}

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// Parses and verifies a ROBO renewal PKCS#7 (RFC 5652 §5), then [`csr::verify_csr`] on the
/// inner CSR.
///
/// The signerInfo signature (RSA PKCS#1 v1.5; digest sha1/sha256/sha384/sha512; signature
/// algorithm rsaEncryption or the matching shaXWithRSA) is checked with the public key of
/// the certificate in `SignedData.certificates` that matches the sid (issuerAndSerialNumber,
/// compared byte for byte, or subjectKeyIdentifier). With signedAttrs: messageDigest must
/// equal the content digest, contentType (if present) the eContentType, and the signature
/// is over the original signedAttrs bytes re-tagged as SET. Without: over the content.
/// Exactly one signerInfo is accepted. If the content is not a DER SEQUENCE it is taken
/// as base64 of one (manual renewal).
pub async fn verify_renewal<V: Verifier>(
    verifier: &V,
    pkcs7_der: &[u8],
    min_rsa_bits: usize,
) -> Result<Renewal, PkiError> {
    let (signer_cert_der, content) = verify_signed_data(verifier, pkcs7_der, None).await?;
    let csr_der = if content.first() == Some(&SEQUENCE) && tlv::single(&content, SEQUENCE, "").is_ok() {
        content
    } else {
        decode_base64_text(&content)?
    };
    Ok(Renewal { signer_cert_der, csr: csr::verify_csr(verifier, &csr_der, min_rsa_bits).await? })
}

/// Verifies a CMS SignedData (RFC 5652 §5) with one RSA signer whose certificate it carries;
/// returns that certificate (DER) and the signed content. `detached`: the content when it is
/// not encapsulated (a message signature); if the SignedData encapsulates content anyway, it
/// must be that content. The signerInfo signature (RSA PKCS#1 v1.5; digest sha1/sha256/sha384/
/// sha512; rsaEncryption or the matching shaXWithRSA) is checked with the key of the
/// certificate in `SignedData.certificates` that matches the sid (issuerAndSerialNumber,
/// compared byte for byte, or subjectKeyIdentifier). With signedAttrs: messageDigest must
/// equal the content digest, contentType (if present) the eContentType, and the signature is
/// over the original signedAttrs bytes re-tagged as SET. Without: over the content.
pub(super) async fn verify_signed_data<V: Verifier>(
    verifier: &V,
    cms_der: &[u8],
    detached: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
    let ci = tlv::single(cms_der, SEQUENCE, "ContentInfo")?;
    let mut f = ci.value;
    let ctype = tlv::expect(&mut f, OID, "contentType")?;
    if ctype.value != ID_SIGNED_DATA.as_bytes() {
        return Err(PkiError::Malformed(format!(
            "PKCS#7 content type {} is not signedData",
            tlv::oid_string(ctype.value)
        )));
    }
    let wrapper = tlv::expect(&mut f, 0xa0, "ContentInfo.content")?;
    let sd = tlv::single(wrapper.value, SEQUENCE, "SignedData")?;

    // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    //   [0] certificates OPTIONAL, [1] crls OPTIONAL, signerInfos }
    let mut f = sd.value;
    tlv::expect(&mut f, tlv::INTEGER, "SignedData.version")?;
    tlv::expect(&mut f, SET, "digestAlgorithms")?;
    let encap = tlv::expect(&mut f, SEQUENCE, "encapContentInfo")?;
    let mut certs: Vec<Tlv<'_>> = Vec::new();
    if tlv::peek_tag(f) == Some(0xa0) {
        let set = tlv::next(&mut f)?;
        let mut c = set.value;
        while !c.is_empty() {
            let t = tlv::next(&mut c)?;
            if t.tag == SEQUENCE {
                certs.push(t); // other CertificateChoices are ignored
            }
        }
    }
    if tlv::peek_tag(f) == Some(0xa1) {
        tlv::next(&mut f)?; // crls
    }
    let signer_infos = tlv::expect(&mut f, SET, "signerInfos")?;
    let mut sis = signer_infos.value;
    let si = tlv::expect(&mut sis, SEQUENCE, "SignerInfo")?;
    if !sis.is_empty() {
        return Err(tlv::malformed("expected exactly one SignerInfo"));
    }

    // EncapsulatedContentInfo ::= SEQUENCE { eContentType, [0] EXPLICIT eContent OPTIONAL }
    let mut e = encap.value;
    let econtent_type = tlv::expect(&mut e, OID, "eContentType")?;
    let content: &[u8] = match (e.is_empty(), detached) {
        (false, d) => {
            let econtent = tlv::expect(&mut e, 0xa0, "eContent")?;
            let inner = octet_string_contents(econtent.value)?;
            if d.is_some_and(|d| d != inner) {
                return Err(PkiError::BadSignature);
            }
            inner
        }
        (true, Some(d)) => d,
        (true, None) => return Err(tlv::malformed("eContent (detached signatures not accepted)")),
    };

    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs OPTIONAL,
    //   signatureAlgorithm, signature, [1] unsignedAttrs OPTIONAL }
    let mut s = si.value;
    tlv::expect(&mut s, tlv::INTEGER, "SignerInfo.version")?;
    let sid = tlv::next(&mut s)?;
    let digest_alg = tlv::expect(&mut s, SEQUENCE, "digestAlgorithm")?;
    let signed_attrs = if tlv::peek_tag(s) == Some(0xa0) { Some(tlv::next(&mut s)?) } else { None };
    let sig_alg = tlv::expect(&mut s, SEQUENCE, "signatureAlgorithm")?;
    let signature = tlv::expect(&mut s, OCTET_STRING, "signature")?;

    let hash = csr::hash_from_digest_oid(tlv::algorithm(&digest_alg)?)?;
    let sig_oid = tlv::algorithm(&sig_alg)?;
    if !csr::is_rsa_encryption(sig_oid) {
        let sig_hash = csr::rsa_signature_hash(sig_oid)?;
        if sig_hash != hash {
            return Err(PkiError::UnsupportedAlgorithm(format!(
                "signature algorithm {} with digest {}",
                tlv::oid_string(sig_oid),
                hash.name()
            )));
        }
    }

    let signer = find_signer(&sid, &certs)?;
    let key = csr::rsa_key_from_spki(signer.1.spki.raw)?;

    // RFC 5652 §5.4: with signedAttrs the signature covers their DER with the SET OF tag.
    match signed_attrs {
        Some(attrs) => {
            check_signed_attrs(&attrs, hash, content, econtent_type.value)?;
            let mut to_verify = attrs.raw.to_vec();
            to_verify[0] = SET;
            csr::rsa_verify(verifier, &key, hash, &to_verify, signature.value).await?;
        }
        None => csr::rsa_verify(verifier, &key, hash, content, signature.value).await?,
    }
    Ok((signer.0.to_vec(), content.to_vec()))
}

/// The contents of the eContent OCTET STRING (primitive, definite length: DER).
fn octet_string_contents(input: &[u8]) -> Result<&[u8], PkiError> {
    let t = tlv::single(input, tlv::peek_tag(input).unwrap_or(0), "eContent")?;
    match t.tag {
        OCTET_STRING => Ok(t.value),
        _ => Err(PkiError::Malformed(format!("eContent has tag 0x{:02x}", t.tag))),
    }
}

fn find_signer<'a>(sid: &Tlv<'_>, certs: &[Tlv<'a>]) -> Result<(&'a [u8], CertParts<'a>), PkiError> {
    for c in certs {
        let Ok(parts) = CertParts::parse(c.raw) else {
            continue;
        };
        let matches = match sid.tag {
            SEQUENCE => {
                // IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }
                let mut f = sid.value;
                let issuer = tlv::expect(&mut f, SEQUENCE, "sid.issuer")?;
                let serial = tlv::expect(&mut f, tlv::INTEGER, "sid.serialNumber")?;
                issuer.raw == parts.issuer.raw
                    && csr::strip_zeros(serial.value) == csr::strip_zeros(parts.serial.value)
            }
            0x80 => parts.subject_key_id() == Some(sid.value),
            other => return Err(PkiError::Malformed(format!("SignerIdentifier tag 0x{other:02x}"))),
        };
        if matches {
            return Ok((c.raw, parts));
        }
    }
    Err(PkiError::Malformed("signer certificate not found in SignedData".into()))
}

fn check_signed_attrs(
    attrs: &Tlv<'_>,
    hash: Hash,
    content: &[u8],
    econtent_type: &[u8],
) -> Result<(), PkiError> {
    let mut digest_seen = false;
    let mut a = attrs.value;
    while !a.is_empty() {
        let attr = tlv::expect(&mut a, SEQUENCE, "Attribute")?;
        let mut f = attr.value;
        let oid = tlv::expect(&mut f, OID, "Attribute.type")?;
        let values = tlv::expect(&mut f, SET, "Attribute.values")?;
        let single_value = |tag: u8, what: &str| tlv::single(values.value, tag, what);
        if oid.value == ID_MESSAGE_DIGEST.as_bytes() {
            if digest_seen {
                return Err(tlv::malformed("two messageDigest attributes"));
            }
            digest_seen = true;
            let md = single_value(OCTET_STRING, "messageDigest")?;
            if md.value != hash.digest(content).as_slice() {
                return Err(PkiError::BadSignature);
            }
        } else if oid.value == ID_CONTENT_TYPE.as_bytes() {
            let ct = single_value(OID, "contentType attribute")?;
            if ct.value != econtent_type {
                return Err(PkiError::BadSignature);
            }
        }
    }
    if !digest_seen {
        return Err(tlv::malformed("signedAttrs without messageDigest"));
    }
    Ok(())
}

/// Base64 text (optionally PEM-armoured, any whitespace) to bytes.
fn decode_base64_text(content: &[u8]) -> Result<Vec<u8>, PkiError> {
    let text = std::str::from_utf8(content)
        .map_err(|_| tlv::malformed("renewal content is neither DER nor base64"))?;
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    crate::codec::decode_base64(&b64)
        .ok_or_else(|| tlv::malformed("renewal content is neither DER nor base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{cms_sign, now, rsa_key_and_csr, TempDir};
    use crate::pki::{
        build_ca_certificate, issue_device_certificate, parse_csr, parse_renewal, to_pem, verify_issued_by,
        CaKey, DeviceCertRequest,
    };

    struct Fixture {
        dir: TempDir,
        ca_cert: Vec<u8>,
        /// (cert DER, cert PEM path, key path) of the current device certificate
        dev: (Vec<u8>, String, String),
        /// a second device of the same CA
        dev2: (Vec<u8>, String, String),
        new_csr: Vec<u8>,
        new_csr_path: String,
        /// another valid CSR of the same length (different key, same CN)
        new_csr2: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let dir = TempDir::new("renew");
        let ca_key = CaKey::generate().unwrap();
        let t = now();
        let ca_cert = build_ca_certificate(&ca_key, "renew CA", &[1], t - 60, t + 3600).unwrap();
        let issue = |name: &str, serial: &[u8]| {
            let (key, csr) = rsa_key_and_csr(&dir, name, 2048, name);
            let csr = parse_csr(&csr, 2048).unwrap();
            let cert = issue_device_certificate(
                &ca_key,
                &ca_cert,
                &DeviceCertRequest {
                    serial,
                    subject_cn: name,
                    spki_der: &csr.spki_der,
                    not_before: t,
                    not_after: t + 3600,
                },
            )
            .unwrap();
            let pem = dir.write(&format!("{name}.pem"), to_pem("CERTIFICATE", &cert).as_bytes());
            (cert, pem, key)
        };
        let dev = issue("old", &[0x42, 1]);
        let dev2 = issue("other", &[0x42, 2]);
        let (_, new_csr) = rsa_key_and_csr(&dir, "new", 2048, "renewed");
        let new_csr_path = dir.path("new.csr.der");
        let (_, new_csr2) = rsa_key_and_csr(&dir, "new2", 2048, "renewed");
        assert_eq!(new_csr.len(), new_csr2.len());
        Fixture { dir, ca_cert, dev, dev2, new_csr, new_csr_path, new_csr2 }
    }

    fn sign(
        f: &Fixture,
        name: &str,
        input: &str,
        signer: &(Vec<u8>, String, String),
        extra: &[&str],
    ) -> Vec<u8> {
        let mut args = vec!["-nodetach"];
        args.extend_from_slice(extra);
        cms_sign(&f.dir, name, input, &signer.1, &signer.2, &args)
    }

    fn flip_in_content(p7: &[u8], csr: &[u8]) -> Vec<u8> {
        let pos = p7.windows(csr.len()).position(|w| w == csr).expect("CSR inside PKCS#7");
        let cn = csr.windows(7).position(|w| w == b"renewed").unwrap();
        let mut bad = p7.to_vec();
        bad[pos + cn] ^= 1;
        bad
    }

    #[test]
    fn openssl_cms_renewals_verify_and_tampering_fails() {
        let f = fixture();
        let expected = parse_csr(&f.new_csr, 2048).unwrap();
        for (name, extra) in [
            ("sha256", &["-md", "sha256"][..]),
            ("sha256-noattr", &["-md", "sha256", "-noattr"][..]),
            ("sha1", &["-md", "sha1"][..]),
            ("sha1-noattr", &["-md", "sha1", "-noattr"][..]),
            ("keyid", &["-md", "sha256", "-keyid"][..]),
        ] {
            let p7 = sign(&f, name, &f.new_csr_path, &f.dev, extra);
            // make sure each variant exercises the path it names
            let md_oid = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
            let has_attrs = p7.windows(md_oid.len()).any(|w| w == md_oid);
            assert_eq!(has_attrs, !name.ends_with("noattr"), "{name}");
            let r = parse_renewal(&p7, 2048).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.csr, expected, "{name}");
            assert_eq!(r.csr.subject_cn.as_deref(), Some("renewed"));
            assert_eq!(r.signer_cert_der, f.dev.0, "{name}");
            assert_eq!(verify_issued_by(&r.signer_cert_der, &f.ca_cert), Ok(()));
            assert_eq!(parse_renewal(&p7, 4096), Err(PkiError::KeyTooSmall(2048)), "{name}");

            // tampered content
            let bad = flip_in_content(&p7, &f.new_csr);
            assert_eq!(parse_renewal(&bad, 2048), Err(PkiError::BadSignature), "{name}");

            // content swapped for another VALID CSR: only the CMS checks can catch this
            let pos = p7.windows(f.new_csr.len()).position(|w| w == f.new_csr).unwrap();
            let mut swapped = p7.clone();
            swapped[pos..pos + f.new_csr.len()].copy_from_slice(&f.new_csr2);
            assert_eq!(parse_renewal(&swapped, 2048), Err(PkiError::BadSignature), "{name}");

            // the same request signed by another key (another device's), its 256-byte
            // signature spliced over ours: SignerInfo ends the DER when there are no
            // unsigned attributes, so the signature is the last 256 bytes.
            let p7b = sign(&f, &format!("{name}-other"), &f.new_csr_path, &f.dev2, extra);
            assert_eq!(parse_renewal(&p7b, 2048).unwrap().signer_cert_der, f.dev2.0);
            let mut spliced = p7.clone();
            let n = spliced.len();
            spliced[n - 256..].copy_from_slice(&p7b[p7b.len() - 256..]);
            assert_ne!(spliced, p7);
            assert_eq!(parse_renewal(&spliced, 2048), Err(PkiError::BadSignature), "{name}");
            let mut flipped = p7.clone();
            flipped[n - 1] ^= 1;
            assert_eq!(parse_renewal(&flipped, 2048), Err(PkiError::BadSignature), "{name}");
        }
    }

    #[test]
    fn base64_content_and_missing_certificate() {
        let f = fixture();
        let b64 = crate::codec::encode_base64(&f.new_csr);
        let wrapped: String =
            b64.as_bytes().chunks(64).map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap())).collect();
        let input = f.dir.write("new.csr.b64", wrapped.as_bytes());
        let p7 = sign(&f, "b64", &input, &f.dev, &["-md", "sha256"]);
        let r = parse_renewal(&p7, 2048).unwrap();
        assert_eq!(r.csr, parse_csr(&f.new_csr, 2048).unwrap());

        let p7 = sign(&f, "nocerts", &f.new_csr_path, &f.dev, &["-md", "sha256", "-nocerts"]);
        assert!(matches!(parse_renewal(&p7, 2048), Err(PkiError::Malformed(_))));

        // a detached signature has no content to renew with
        let p7 = cms_sign(&f.dir, "detached", &f.new_csr_path, &f.dev.1, &f.dev.2, &[]);
        assert!(matches!(parse_renewal(&p7, 2048), Err(PkiError::Malformed(_))));

        assert!(matches!(parse_renewal(&f.new_csr, 2048), Err(PkiError::Malformed(_))));
        assert!(matches!(parse_renewal(b"", 2048), Err(PkiError::Malformed(_))));
    }
}
