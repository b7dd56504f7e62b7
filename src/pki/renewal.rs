//! MS-WSTEP ROBO renewal: CMS SignedData (made with the device's current key) whose
//! encapsulated content is the new PKCS#10.

use super::cert::CertParts;
use super::csr::{self, Csr, Hash};
use super::tlv::{self, Tlv, OCTET_STRING, OID, SEQUENCE, SET};
use super::PkiError;
use base64::Engine as _;
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

/// Parses and verifies a ROBO renewal PKCS#7, then `parse_csr` on the inner CSR.
///
/// The signerInfo signature (RSA PKCS#1 v1.5; digest sha1/sha256/sha384/sha512; signature
/// algorithm rsaEncryption or the matching shaXWithRSA) is checked with the public key of
/// the certificate in `SignedData.certificates` that matches the sid (issuerAndSerialNumber,
/// compared byte for byte, or subjectKeyIdentifier). With signedAttrs: messageDigest must
/// equal the content digest, contentType (if present) the eContentType, and the signature
/// is over the original signedAttrs bytes re-tagged as SET. Without: over the content.
/// Exactly one signerInfo is accepted. If the content is not a DER SEQUENCE it is taken
/// as base64 of one (manual renewal).
pub fn parse_renewal(pkcs7_der: &[u8], min_rsa_bits: usize) -> Result<Renewal, PkiError> {
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
    let ci = tlv::single(pkcs7_der, SEQUENCE, "ContentInfo")?;
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

    // EncapsulatedContentInfo ::= SEQUENCE { eContentType, [0] EXPLICIT eContent }
    let mut e = encap.value;
    let econtent_type = tlv::expect(&mut e, OID, "eContentType")?;
    let econtent = tlv::expect(&mut e, 0xa0, "eContent (detached signatures not accepted)")?;
    let content = octet_string_contents(econtent.value)?;

    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs OPTIONAL,
    //   signatureAlgorithm, signature, [1] unsignedAttrs OPTIONAL }
    let mut s = si.value;
    tlv::expect(&mut s, tlv::INTEGER, "SignerInfo.version")?;
    let sid = tlv::next(&mut s)?;
    let digest_alg = tlv::expect(&mut s, SEQUENCE, "digestAlgorithm")?;
    let signed_attrs = if tlv::peek_tag(s) == Some(0xa0) { Some(tlv::next(&mut s)?) } else { None };
    let sig_alg = tlv::expect(&mut s, SEQUENCE, "signatureAlgorithm")?;
    let signature = tlv::expect(&mut s, OCTET_STRING, "signature")?;

    let hash = Hash::from_digest_oid(tlv::algorithm(&digest_alg)?)?;
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
    let (key, _) = csr::rsa_key_from_spki(signer.1.spki.raw)?;

    match signed_attrs {
        Some(attrs) => {
            check_signed_attrs(&attrs, hash, content, econtent_type.value)?;
            let mut to_verify = attrs.raw.to_vec();
            to_verify[0] = SET;
            csr::rsa_verify(&key, hash, &to_verify, signature.value)?;
        }
        None => csr::rsa_verify(&key, hash, content, signature.value)?,
    }

    let csr_der = if content.first() == Some(&SEQUENCE) && tlv::single(content, SEQUENCE, "").is_ok()
    {
        content.to_vec()
    } else {
        decode_base64_text(content)?
    };
    Ok(Renewal { signer_cert_der: signer.0.to_vec(), csr: csr::parse_csr(&csr_der, min_rsa_bits)? })
}

/// The contents of an OCTET STRING, also accepting a BER constructed one (0x24) made of
/// primitive chunks.
fn octet_string_contents(input: &[u8]) -> Result<&[u8], PkiError> {
    let t = tlv::single(input, tlv::peek_tag(input).unwrap_or(0), "eContent")?;
    match t.tag {
        OCTET_STRING => Ok(t.value),
        _ => Err(PkiError::Malformed(format!("eContent has tag 0x{:02x}", t.tag))),
    }
}

fn find_signer<'a>(
    sid: &Tlv<'_>,
    certs: &[Tlv<'a>],
) -> Result<(&'a [u8], CertParts<'a>), PkiError> {
    for c in certs {
        let Ok(parts) = CertParts::parse(c.raw) else { continue };
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
            other => {
                return Err(PkiError::Malformed(format!("SignerIdentifier tag 0x{other:02x}")))
            }
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
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| tlv::malformed("renewal content is neither DER nor base64"))
}
