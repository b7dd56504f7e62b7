//! Detached CMS signatures over a message (RFC 5652 §5): what a Windows device sends in its
//! `MDM-Signature` header when the DMClient `RequireMessageSigning` node is set ([MS-MDM]
//! §2.2.1.1; Microsoft's "DMClient CSP"). The signature is checked here; whether the signer is
//! the device's current certificate is the caller's rule.

use super::csr::{self, Hash};
use super::renewal::{check_signed_attrs, find_signer, ID_SIGNED_DATA};
use super::tlv::{self, Tlv, OCTET_STRING, OID, SEQUENCE, SET};
use super::PkiError;

/// Verifies a CMS SignedData whose content is `content` (detached, or encapsulated and equal
/// to it); returns the DER of the certificate that signed it. One SignerInfo, RSA PKCS#1 v1.5,
/// SHA-1/SHA-2 digests, with or without signedAttrs (then messageDigest must match).
pub fn verify_detached(cms_der: &[u8], content: &[u8]) -> Result<Vec<u8>, PkiError> {
    let ci = tlv::single(cms_der, SEQUENCE, "ContentInfo")?;
    let mut f = ci.value;
    let ctype = tlv::expect(&mut f, OID, "contentType")?;
    if ctype.value != ID_SIGNED_DATA.as_bytes() {
        return Err(tlv::malformed("CMS content type is not signedData"));
    }
    let wrapper = tlv::expect(&mut f, 0xa0, "ContentInfo.content")?;
    let sd = tlv::single(wrapper.value, SEQUENCE, "SignedData")?;
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
                certs.push(t);
            }
        }
    }
    if tlv::peek_tag(f) == Some(0xa1) {
        tlv::next(&mut f)?;
    }
    let signer_infos = tlv::expect(&mut f, SET, "signerInfos")?;
    let mut sis = signer_infos.value;
    let si = tlv::expect(&mut sis, SEQUENCE, "SignerInfo")?;
    if !sis.is_empty() {
        return Err(tlv::malformed("expected exactly one SignerInfo"));
    }

    let mut e = encap.value;
    let econtent_type = tlv::expect(&mut e, OID, "eContentType")?;
    if !e.is_empty() {
        // Encapsulated after all: it must be this very message.
        let econtent = tlv::expect(&mut e, 0xa0, "eContent")?;
        let inner = tlv::single(econtent.value, OCTET_STRING, "eContent")?;
        if inner.value != content {
            return Err(PkiError::BadSignature);
        }
    }

    let mut s = si.value;
    tlv::expect(&mut s, tlv::INTEGER, "SignerInfo.version")?;
    let sid = tlv::next(&mut s)?;
    let digest_alg = tlv::expect(&mut s, SEQUENCE, "digestAlgorithm")?;
    let signed_attrs = if tlv::peek_tag(s) == Some(0xa0) { Some(tlv::next(&mut s)?) } else { None };
    let sig_alg = tlv::expect(&mut s, SEQUENCE, "signatureAlgorithm")?;
    let signature = tlv::expect(&mut s, OCTET_STRING, "signature")?;
    let hash = Hash::from_digest_oid(tlv::algorithm(&digest_alg)?)?;
    let sig_oid = tlv::algorithm(&sig_alg)?;
    if !csr::is_rsa_encryption(sig_oid) && csr::rsa_signature_hash(sig_oid)? != hash {
        return Err(PkiError::UnsupportedAlgorithm("signature and digest algorithms differ".into()));
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
    Ok(signer.0.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{now, openssl, rsa_key_and_csr, TempDir};
    use crate::pki::{
        build_ca_certificate, issue_device_certificate, parse_csr, to_pem, CaKey, DeviceCertRequest,
    };

    /// A device certificate and key, and `openssl cms -sign` over a message (detached or not).
    fn signed(dir: &TempDir, message: &[u8], extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let ca_key = CaKey::generate().unwrap();
        let t = now();
        let ca = build_ca_certificate(&ca_key, "CA", &[1], t - 60, t + 3600).unwrap();
        let (key, csr) = rsa_key_and_csr(dir, "dev", 2048, "dev");
        let csr = parse_csr(&csr, 2048).unwrap();
        let req = DeviceCertRequest {
            serial: &[7],
            subject_cn: "DEV",
            spki_der: &csr.spki_der,
            not_before: t,
            not_after: t + 60,
        };
        let cert = issue_device_certificate(&ca_key, &ca, &req).unwrap();
        let pem = dir.write("dev.pem", to_pem("CERTIFICATE", &cert).as_bytes());
        let input = dir.write("msg.xml", message);
        let out = dir.path("sig.der");
        let mut args = vec![
            "cms", "-sign", "-binary", "-outform", "DER", "-in", &input, "-signer", &pem, "-inkey", &key,
            "-out", &out,
        ];
        args.extend_from_slice(extra);
        openssl(&args);
        (std::fs::read(&out).unwrap(), cert)
    }

    #[test]
    fn detached_signatures_verify_over_their_message_only() {
        let dir = TempDir::new("sig");
        let msg = b"<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr/></SyncML>";
        for extra in [&[][..], &["-noattr"][..]] {
            let (sig, cert) = signed(&dir, msg, extra);
            assert_eq!(verify_detached(&sig, msg).unwrap(), cert);
            let mut other = msg.to_vec();
            other[10] ^= 1;
            assert!(verify_detached(&sig, &other).is_err(), "another message");
            let mut bad = sig.clone();
            let n = bad.len();
            bad[n - 10] ^= 1;
            assert!(verify_detached(&bad, msg).is_err(), "a damaged signature");
        }
        let (attached, _) = signed(&dir, msg, &["-nodetach"]);
        assert!(verify_detached(&attached, msg).is_ok());
        assert!(verify_detached(&attached, b"something else").is_err());
        assert!(verify_detached(b"garbage", msg).is_err());
    }
}
