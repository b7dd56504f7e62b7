//! The certificate authority, pure: its key and certificate, serial numbers, issuance records,
//! who may renew, and the operations of the CA Durable Object as one typed call each
//! ([`CaCall`] → [`CaReply`] or [`CaError`]). The key is generated inside the CA object on its
//! first call and never leaves it; the object only loads it, calls [`handle`] and commits the
//! returned writes. Signing and verifying go through the object's [`Signer`] (WebCrypto in
//! the Worker, the key a non-extractable `CryptoKey`).

use crate::codec::{decode_base64, encode_base64, hex_upper};
use crate::context::Entropy;
use crate::device::valid_device_id;
use crate::object_call::{Outcome, StoreError};
use crate::pki::{self, DeviceCertRequest, Signer};
use serde::{Deserialize, Serialize};

/// Subject CN of the CA certificate.
pub const CA_COMMON_NAME: &str = "edgemdm Device CA";
/// The CA certificate's lifetime: well beyond any device certificate it signs.
pub const CA_VALIDITY_SECS: u64 = 20 * 365 * 86_400;

/// One issued certificate (Durable Object storage key `issued:<serial>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceRecord {
    /// Upper-case hex.
    pub serial: String,
    pub device_id: String,
    pub thumbprint: String,
    /// Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    /// The serial of the certificate this one renewed.
    pub renews: Option<String>,
    /// Set when the certificate was renewed or its device retired.
    pub revoked: bool,
    /// The serial of the certificate that renewed this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_by: Option<String>,
}

/// How long a certificate that was renewed may renew again, in place of its successor: the
/// answer to a renewal can be lost after the renewal was committed, and the device then still
/// holds only the old certificate ([MS-MDE2] §3.4: it retries with what it has).
pub const RENEWAL_RETRY_SECS: u64 = 7 * 86_400;

/// Whether `record`, renewed by `successor`, may renew again: its successor is still current
/// (never renewed itself, never revoked) and young.
pub fn renewal_retry_allowed(record: &IssuanceRecord, successor: Option<&IssuanceRecord>, now: u64) -> bool {
    successor.is_some_and(|n| {
        record.renewed_by.as_deref() == Some(n.serial.as_str())
            && n.renews.as_deref() == Some(record.serial.as_str())
            && !n.revoked
            && now < n.not_before + RENEWAL_RETRY_SECS
    })
}

/// A serial number: 8 random bytes then the CA's counter. The counter makes it unique (the
/// Durable Object allocates it under its input gate); the random part makes it unpredictable.
/// The first byte is kept in 0x01..=0x7f so the DER INTEGER is positive and never shortened.
pub fn serial_number(counter: u64, random: [u8; 8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(16);
    s.extend_from_slice(&random);
    s[0] = (s[0] & 0x7f).max(1);
    s.extend_from_slice(&counter.to_be_bytes());
    s
}

pub fn serial_hex(serial: &[u8]) -> String {
    hex_upper(serial)
}

/// Why a renewal is refused, if it is. `presented_thumbprint` is the SHA-1 of the certificate
/// that signed the renewal request.
pub fn renewal_refusal(
    record: Option<&IssuanceRecord>,
    presented_thumbprint: &str,
    now: u64,
) -> Option<&'static str> {
    let Some(r) = record else {
        return Some("the signing certificate was not issued by this server");
    };
    if r.thumbprint != presented_thumbprint {
        return Some("the signing certificate does not match the issued one");
    }
    if r.revoked {
        return Some("the signing certificate was already renewed or revoked");
    }
    if now >= r.not_after {
        return Some("the signing certificate has expired");
    }
    None
}

/// The CA certificate as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaCertificate {
    pub cert_b64: String,
    pub thumbprint: String,
}

/// The CA as its object holds it in memory: the key (a provider's handle) and the
/// certificate (DER).
#[derive(Debug, Clone)]
pub struct Ca<K> {
    pub key: K,
    pub cert_der: Vec<u8>,
    pub certificate: CaCertificate,
}

/// The CA's key and certificate as stored: base64 PKCS#8 and base64 DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    pub key_pkcs8_b64: String,
    pub cert_b64: String,
}

impl<K> Ca<K> {
    /// Reads the stored key and certificate: the key is imported once (the object keeps the
    /// `Ca` for its lifetime) and must be the certificate's key.
    pub async fn load<S: Signer<Key = K>>(signer: &S, stored: &StoredCa) -> Result<Ca<K>, StoreError> {
        let unreadable = |what: &str| StoreError(format!("stored CA {what} unreadable"));
        let pkcs8 = decode_base64(&stored.key_pkcs8_b64).ok_or_else(|| unreadable("key"))?;
        let key = signer.import_p256_pkcs8(&pkcs8).await.map_err(|_| unreadable("key"))?;
        let cert_der = decode_base64(&stored.cert_b64).ok_or_else(|| unreadable("certificate"))?;
        pki::check_key_matches(signer, &key, &cert_der)
            .await
            .map_err(|e| StoreError(format!("stored CA key and certificate: {e}")))?;
        let certificate =
            CaCertificate { cert_b64: stored.cert_b64.clone(), thumbprint: pki::thumbprint(&cert_der) };
        Ok(Ca { key, cert_der, certificate })
    }

    /// A new CA: a fresh P-256 key and its self-signed certificate, valid from `now`. The
    /// caller stores the returned [`StoredCa`] before anything is signed with it.
    pub async fn create<S: Signer<Key = K>>(
        signer: &S,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<(Ca<K>, StoredCa), StoreError> {
        let failed = |e: pki::PkiError| StoreError(format!("creating the CA: {e}"));
        let new = signer.generate_p256(entropy).await.map_err(failed)?;
        let serial = serial_number(0, entropy.bytes());
        let not_after = now + CA_VALIDITY_SECS;
        let cert_der = pki::sign_ca_certificate(
            signer,
            &new.key,
            &new.spki_der,
            CA_COMMON_NAME,
            &serial,
            now,
            not_after,
        )
        .await
        .map_err(failed)?;
        let stored =
            StoredCa { key_pkcs8_b64: encode_base64(&new.pkcs8_der), cert_b64: encode_base64(&cert_der) };
        let certificate =
            CaCertificate { cert_b64: stored.cert_b64.clone(), thumbprint: pki::thumbprint(&cert_der) };
        Ok((Ca { key: new.key, cert_der, certificate }, stored))
    }
}

/// An operation of the CA object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaCall {
    /// The CA certificate (public).
    Certificate,
    /// Sign a certificate for a device's key.
    Issue { device_id: String, spki_der_b64: String, validity_days: u32 },
    /// Sign a new certificate for the device whose current certificate signed the renewal
    /// request; the old one is revoked in the same commit.
    Renew { signer_cert_b64: String, spki_der_b64: String, validity_days: u32 },
    /// Revoke the certificates of a retired device.
    Revoke { serials: Vec<String> },
}

impl CaCall {
    /// Whether the call may take the next serial counter value ([`CaContext::counter`] + 1).
    pub fn allocates_serial(&self) -> bool {
        matches!(self, CaCall::Issue { .. } | CaCall::Renew { .. })
    }
}

/// A certificate the CA just signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub device_id: String,
    pub cert_b64: String,
    pub serial: String,
    pub thumbprint: String,
    pub not_before: u64,
    pub not_after: u64,
    pub renews: Option<String>,
    pub ca: CaCertificate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaReply {
    Certificate(CaCertificate),
    Issued(Issued),
    Revoked { revoked: usize },
}

/// Why the CA refuses a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaError {
    /// The request itself is unusable (bad key, bad id): a CertificateRequest fault.
    BadRequest(String),
    /// The presented certificate may not renew: a NotEligibleToRenew fault.
    NotEligible(String),
}

impl std::fmt::Display for CaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaError::BadRequest(m) | CaError::NotEligible(m) => f.write_str(m),
        }
    }
}

/// What the CA object reads besides its key: issuance records by serial.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait CaStorage {
    async fn record(&self, serial: &str) -> Result<Option<IssuanceRecord>, StoreError>;
}

/// The CA object's writes, committed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaWrite {
    Counter(u64),
    Record(IssuanceRecord),
}

/// Everything a call needs besides storage.
pub struct CaContext<'a, S: Signer, E: Entropy> {
    pub signer: &'a S,
    pub ca: &'a Ca<S::Key>,
    /// The last serial counter value allocated.
    pub counter: u64,
    /// Unix seconds.
    pub now: u64,
    pub entropy: &'a mut E,
}

type CaOutcome = Outcome<CaReply, CaError, CaWrite>;

/// Runs one CA call.
pub async fn handle<T: CaStorage, S: Signer, E: Entropy>(
    store: &T,
    ctx: CaContext<'_, S, E>,
    call: CaCall,
) -> Result<CaOutcome, StoreError> {
    match call {
        CaCall::Certificate => Ok(Outcome::reply(CaReply::Certificate(ctx.ca.certificate.clone()), vec![])),
        CaCall::Issue { device_id, spki_der_b64, validity_days } => {
            let Some(spki) = decode_base64(&spki_der_b64) else {
                return Ok(Outcome::refuse(CaError::BadRequest("public key is not base64".into())));
            };
            issue(store, ctx, &device_id, &spki, validity_days, None).await
        }
        CaCall::Renew { signer_cert_b64, spki_der_b64, validity_days } => {
            let (Some(signer), Some(spki)) = (decode_base64(&signer_cert_b64), decode_base64(&spki_der_b64))
            else {
                return Ok(Outcome::refuse(CaError::BadRequest("certificate or key is not base64".into())));
            };
            if pki::check_issued_by(ctx.signer, &signer, &ctx.ca.cert_der).await.is_err() {
                return Ok(Outcome::refuse(CaError::NotEligible(
                    "the signing certificate was not issued by this server".into(),
                )));
            }
            let info = match pki::inspect_certificate(&signer) {
                Ok(i) => i,
                Err(e) => return Ok(Outcome::refuse(CaError::NotEligible(e.to_string()))),
            };
            let record = store.record(&info.serial_hex).await?;
            // A retry after a lost answer: the certificate it renewed into is replaced.
            let successor = match record.as_ref().and_then(|r| r.renewed_by.clone()) {
                Some(next) => store.record(&next).await?,
                None => None,
            };
            let retry = record.as_ref().is_some_and(|r| {
                r.thumbprint == pki::thumbprint(&signer)
                    && ctx.now < r.not_after
                    && renewal_retry_allowed(r, successor.as_ref(), ctx.now)
            });
            if !retry {
                if let Some(why) = renewal_refusal(record.as_ref(), &pki::thumbprint(&signer), ctx.now) {
                    return Ok(Outcome::refuse(CaError::NotEligible(why.into())));
                }
            }
            let Some(record) = record else {
                return Ok(Outcome::refuse(CaError::NotEligible("unknown certificate".into())));
            };
            let mut out =
                issue(store, ctx, &record.device_id, &spki, validity_days, Some(record.serial)).await?;
            if let (true, Some(mut replaced), Ok(_)) = (retry, successor, &out.reply) {
                replaced.revoked = true;
                out.writes.push(CaWrite::Record(replaced));
            }
            Ok(out)
        }
        CaCall::Revoke { serials } => {
            let mut writes = Vec::new();
            for s in &serials {
                if let Some(mut rec) = store.record(s).await? {
                    rec.revoked = true;
                    writes.push(CaWrite::Record(rec));
                }
            }
            Ok(Outcome::reply(CaReply::Revoked { revoked: writes.len() }, writes))
        }
    }
}

async fn issue<T: CaStorage, S: Signer, E: Entropy>(
    store: &T,
    ctx: CaContext<'_, S, E>,
    device_id: &str,
    spki: &[u8],
    validity_days: u32,
    renews: Option<String>,
) -> Result<CaOutcome, StoreError> {
    if !valid_device_id(device_id) || validity_days == 0 {
        return Ok(Outcome::refuse(CaError::BadRequest("invalid device id or validity".into())));
    }
    let counter = ctx.counter + 1;
    let serial = serial_number(counter, ctx.entropy.bytes());
    // Valid from now, never back-dated (back-dating put Fleet's devices in a renewal loop).
    let not_before = ctx.now;
    let not_after = not_before + u64::from(validity_days) * 86_400;
    let request =
        DeviceCertRequest { serial: &serial, subject_cn: device_id, spki_der: spki, not_before, not_after };
    let cert = match pki::sign_device_certificate(ctx.signer, &ctx.ca.key, &ctx.ca.cert_der, &request).await {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::refuse(CaError::BadRequest(e.to_string()))),
    };
    let record = IssuanceRecord {
        serial: serial_hex(&serial),
        device_id: device_id.to_string(),
        thumbprint: pki::thumbprint(&cert),
        not_before,
        not_after,
        renews: renews.clone(),
        revoked: false,
        renewed_by: None,
    };
    let mut writes = vec![CaWrite::Counter(counter), CaWrite::Record(record.clone())];
    if let Some(old) = &renews {
        if let Some(mut prev) = store.record(old).await? {
            prev.revoked = true;
            prev.renewed_by = Some(record.serial.clone());
            writes.push(CaWrite::Record(prev));
        }
    }
    let issued = Issued {
        device_id: record.device_id,
        cert_b64: encode_base64(&cert),
        serial: record.serial,
        thumbprint: record.thumbprint,
        not_before,
        not_after,
        renews,
        ca: ctx.ca.certificate.clone(),
    };
    Ok(Outcome::reply(CaReply::Issued(issued), writes))
}

/// An in-memory CA object for native tests: the rules above over maps.
#[cfg(test)]
pub mod memory {
    use super::*;
    use crate::context::Counter;
    use crate::pki::{CaKey, RustCrypto};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    pub struct MemoryCa {
        pub ca: Ca<CaKey>,
        pub counter: RefCell<u64>,
        pub records: RefCell<BTreeMap<String, IssuanceRecord>>,
        entropy: RefCell<Counter>,
    }

    impl CaStorage for MemoryCa {
        async fn record(&self, serial: &str) -> Result<Option<IssuanceRecord>, StoreError> {
            Ok(self.records.borrow().get(serial).cloned())
        }
    }

    impl MemoryCa {
        pub fn new(now: u64) -> MemoryCa {
            let mut entropy = Counter(1000);
            let (ca, _) =
                crate::object_call::block_on(Ca::create(&RustCrypto, now, &mut entropy)).expect("CA");
            MemoryCa {
                ca,
                counter: RefCell::new(0),
                records: RefCell::new(BTreeMap::new()),
                entropy: RefCell::new(entropy),
            }
        }

        /// One call as the object runs it: decide, then commit.
        pub fn call(&self, call: CaCall, now: u64) -> Result<CaReply, CaError> {
            let mut entropy = self.entropy.borrow_mut();
            let ctx = CaContext {
                signer: &RustCrypto,
                ca: &self.ca,
                counter: *self.counter.borrow(),
                now,
                entropy: &mut *entropy,
            };
            let out = crate::object_call::block_on(handle(self, ctx, call)).expect("memory store");
            for w in out.writes {
                match w {
                    CaWrite::Counter(c) => *self.counter.borrow_mut() = c,
                    CaWrite::Record(r) => {
                        self.records.borrow_mut().insert(r.serial.clone(), r);
                    }
                }
            }
            out.reply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = serial_number(1, [0xff; 8]);
        let b = serial_number(2, [0xff; 8]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a[0] >= 1 && a[0] <= 0x7f);
        assert_eq!(serial_number(1, [0; 8])[0], 1);
        assert_eq!(serial_hex(&[0x0a, 0xbc]), "0ABC");
    }

    #[test]
    fn renewal_rules() {
        let r = IssuanceRecord {
            serial: "01".into(),
            device_id: "D".into(),
            thumbprint: "T".into(),
            not_before: 0,
            not_after: 100,
            renews: None,
            revoked: false,
            renewed_by: None,
        };
        assert_eq!(renewal_refusal(Some(&r), "T", 50), None);
        assert!(renewal_refusal(None, "T", 50).is_some());
        assert!(renewal_refusal(Some(&r), "X", 50).is_some());
        assert!(renewal_refusal(Some(&r), "T", 100).is_some());
        let revoked = IssuanceRecord { revoked: true, ..r };
        assert!(renewal_refusal(Some(&revoked), "T", 50).is_some());
    }

    use super::memory::MemoryCa;
    use crate::pki::testutil::{now, openssl, rsa_key_and_csr, TempDir};
    use crate::pki::RustCrypto;

    fn issue(ca: &MemoryCa, device_id: &str, spki: &[u8], t: u64) -> Result<Issued, CaError> {
        let call = CaCall::Issue {
            device_id: device_id.into(),
            spki_der_b64: encode_base64(spki),
            validity_days: 365,
        };
        ca.call(call, t).map(|r| match r {
            CaReply::Issued(i) => i,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn the_ca_is_created_once_and_its_certificate_verifies_what_it_signs() {
        let dir = TempDir::new("issuer");
        let t = now();
        let ca = MemoryCa::new(t);
        let (_, csr) = rsa_key_and_csr(&dir, "dev", 2048, "dev");
        let csr = pki::parse_csr(&csr, 2048).unwrap();
        let a = issue(&ca, "DEV-1", &csr.spki_der, t).unwrap();
        let b = issue(&ca, "DEV-1", &csr.spki_der, t).unwrap();
        assert_ne!(a.serial, b.serial, "serials are unique");
        assert_eq!(*ca.counter.borrow(), 2);
        assert_eq!(ca.records.borrow().len(), 2);
        assert_eq!((a.not_before, a.not_after), (t, t + 365 * 86_400), "never back-dated");
        let ca_pem = dir.write("ca.pem", pki::to_pem("CERTIFICATE", &ca.ca.cert_der).as_bytes());
        let dev_pem =
            dir.write("a.pem", pki::to_pem("CERTIFICATE", &decode_base64(&a.cert_b64).unwrap()).as_bytes());
        openssl(&["verify", "-CAfile", &ca_pem, "-purpose", "sslclient", &dev_pem]);
        // Stored and loaded again, the CA is the same CA.
        let stored = StoredCa {
            key_pkcs8_b64: encode_base64(&ca.ca.key.to_pkcs8_der()),
            cert_b64: ca.ca.certificate.cert_b64.clone(),
        };
        let load = |s: &StoredCa| crate::object_call::block_on(Ca::load(&RustCrypto, s));
        let again = load(&stored).unwrap();
        assert_eq!(again.certificate, ca.ca.certificate);
        assert_eq!(again.key.public_key_der(), ca.ca.key.public_key_der());
        assert!(load(&StoredCa { key_pkcs8_b64: "AAAA".into(), cert_b64: stored.cert_b64.clone() }).is_err());
        // A key that is not the certificate's is refused.
        let other = crate::pki::CaKey::generate().unwrap();
        let mismatched = StoredCa {
            key_pkcs8_b64: encode_base64(&other.to_pkcs8_der()),
            cert_b64: stored.cert_b64.clone(),
        };
        assert!(load(&mismatched).unwrap_err().0.contains("does not match"));
    }

    #[test]
    fn bad_requests_are_refused_and_write_nothing() {
        let t = now();
        let ca = MemoryCa::new(t);
        assert!(matches!(issue(&ca, "../x", &[1, 2], t), Err(CaError::BadRequest(_))));
        assert!(matches!(issue(&ca, "DEV", b"not a key", t), Err(CaError::BadRequest(_))));
        let call = CaCall::Issue { device_id: "DEV".into(), spki_der_b64: "%%".into(), validity_days: 1 };
        assert!(matches!(ca.call(call, t), Err(CaError::BadRequest(_))));
        assert_eq!(*ca.counter.borrow(), 0);
        assert!(ca.records.borrow().is_empty());
    }

    #[test]
    fn renewal_needs_the_current_certificate_and_revokes_it() {
        let dir = TempDir::new("issuer-renew");
        let t = now();
        let ca = MemoryCa::new(t);
        let (_, csr) = rsa_key_and_csr(&dir, "dev", 2048, "dev");
        let spki = pki::parse_csr(&csr, 2048).unwrap().spki_der;
        let first = issue(&ca, "DEV", &spki, t).unwrap();
        let renew = |signer: &str| CaCall::Renew {
            signer_cert_b64: signer.to_string(),
            spki_der_b64: encode_base64(&spki),
            validity_days: 30,
        };
        let Ok(CaReply::Issued(second)) = ca.call(renew(&first.cert_b64), t) else { panic!() };
        assert_eq!(
            (second.device_id.as_str(), second.renews.as_deref()),
            ("DEV", Some(first.serial.as_str()))
        );
        assert!(ca.records.borrow()[&first.serial].revoked);
        assert_eq!(ca.records.borrow()[&first.serial].renewed_by.as_deref(), Some(second.serial.as_str()));
        // The answer was lost: the device retries with the first certificate. Its unused
        // successor is replaced.
        let Ok(CaReply::Issued(retry)) = ca.call(renew(&first.cert_b64), t) else { panic!("a retry") };
        assert!(ca.records.borrow()[&second.serial].revoked, "the lost one is revoked");
        assert!(matches!(ca.call(renew(&second.cert_b64), t), Err(CaError::NotEligible(_))));
        // Once the successor is used (it renewed), the first can no longer renew.
        let Ok(CaReply::Issued(_next)) = ca.call(renew(&retry.cert_b64), t) else {
            panic!("the current renews")
        };
        assert!(matches!(ca.call(renew(&first.cert_b64), t), Err(CaError::NotEligible(_))), "renewed once");
        // Nor after the retry window.
        let (_, csr2) = rsa_key_and_csr(&dir, "dev2", 2048, "dev2");
        let spki2 = pki::parse_csr(&csr2, 2048).unwrap().spki_der;
        let a = issue(&ca, "DEV2", &spki2, t).unwrap();
        let renew2 = CaCall::Renew {
            signer_cert_b64: a.cert_b64.clone(),
            spki_der_b64: encode_base64(&spki2),
            validity_days: 30,
        };
        ca.call(renew2.clone(), t).unwrap();
        assert!(matches!(ca.call(renew2, t + RENEWAL_RETRY_SECS + 1), Err(CaError::NotEligible(_))));
        // A certificate from another CA, and an expired one.
        let other = MemoryCa::new(t);
        let foreign = issue(&other, "DEV", &spki, t).unwrap();
        assert!(matches!(ca.call(renew(&foreign.cert_b64), t), Err(CaError::NotEligible(_))));
        let later = t + 31 * 86_400;
        assert!(matches!(ca.call(renew(&second.cert_b64), later), Err(CaError::NotEligible(_))));
        // Revocation of a retired device.
        assert_eq!(
            ca.call(CaCall::Revoke { serials: vec![second.serial.clone(), "FF".into()] }, t),
            Ok(CaReply::Revoked { revoked: 1 })
        );
        assert!(matches!(ca.call(renew(&second.cert_b64), t), Err(CaError::NotEligible(_))));
    }
}
