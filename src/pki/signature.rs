//! Detached CMS signatures over a message (RFC 5652 §5): what a Windows device sends in its
//! `MDM-Signature` header when the DMClient `RequireMessageSigning` node is set ([MS-MDM]
//! §2.2.1.1; Microsoft's "DMClient CSP"). The signature is checked here; whether the signer is
//! the device's current certificate is the caller's rule.

use super::provider::Verifier;
use super::renewal::verify_signed_data;
use super::PkiError;

/// Verifies a CMS SignedData whose content is `content` (detached, or encapsulated and equal
/// to it); returns the DER of the certificate that signed it.
pub async fn verify_detached<V: Verifier>(
    verifier: &V,
    cms_der: &[u8],
    content: &[u8],
) -> Result<Vec<u8>, PkiError> {
    Ok(verify_signed_data(verifier, cms_der, Some(content)).await?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object_call::block_on;
    use crate::pki::testutil::{cms_sign, now, rsa_key_and_csr, TempDir};
    use crate::pki::{
        build_ca_certificate, issue_device_certificate, parse_csr, to_pem, CaKey, DeviceCertRequest,
        RustCrypto,
    };

    fn verify(cms: &[u8], content: &[u8]) -> Result<Vec<u8>, PkiError> {
        block_on(verify_detached(&RustCrypto, cms, content))
    }

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
        (cms_sign(dir, "sig", &input, &pem, &key, extra), cert)
    }

    #[test]
    fn detached_signatures_verify_over_their_message_only() {
        let dir = TempDir::new("sig");
        let msg = b"<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr/></SyncML>";
        for extra in [&[][..], &["-noattr"][..]] {
            let (sig, cert) = signed(&dir, msg, extra);
            assert_eq!(verify(&sig, msg).unwrap(), cert);
            let mut other = msg.to_vec();
            other[10] ^= 1;
            assert!(verify(&sig, &other).is_err(), "another message");
            let mut bad = sig.clone();
            let n = bad.len();
            bad[n - 10] ^= 1;
            assert!(verify(&bad, msg).is_err(), "a damaged signature");
        }
        let (attached, _) = signed(&dir, msg, &["-nodetach"]);
        assert!(verify(&attached, msg).is_ok());
        assert!(verify(&attached, b"something else").is_err());
        assert!(verify(b"garbage", msg).is_err());
    }
}
