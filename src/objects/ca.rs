//! The CA Durable Object: the only place the CA key exists. It generates its P-256 key on
//! first use, never exports it, allocates serials and keeps an issuance record for every
//! certificate. One instance (named "ca") serves the whole deployment.

use crate::ca::{self, IssuanceRecord};
use crate::objects::{now_secs, random_bytes, storage_error, Batch, JsonStorage};
use crate::pki::{self, CaKey, DeviceCertRequest};
use crate::proto::soap::{decode_base64, encode_base64};
use serde::{Deserialize, Serialize};
use worker::*;

pub const BINDING: &str = "CA";
pub const INSTANCE: &str = "ca";

/// `POST /issue`: sign a certificate for a device's key.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssueRequest {
    pub device_id: String,
    pub spki_der_b64: String,
    pub validity_days: u32,
}

/// `POST /renew`: sign a new certificate for the device whose current certificate signed the
/// renewal request.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenewRequest {
    pub signer_cert_b64: String,
    pub spki_der_b64: String,
    pub validity_days: u32,
}

/// `POST /revoke`: revoke the certificates of a retired device.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeRequest {
    pub serials: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaCertificate {
    pub cert_b64: String,
    pub thumbprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Error body of the object's answers; `kind` tells the caller which fault to send.
#[derive(Debug, Serialize, Deserialize)]
pub struct CaFailure {
    pub kind: CaFailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaFailureKind {
    BadRequest,
    NotEligible,
    Server,
}

fn failure(kind: CaFailureKind, message: impl Into<String>) -> Result<Response> {
    let status = match kind {
        CaFailureKind::BadRequest => 400,
        CaFailureKind::NotEligible => 409,
        CaFailureKind::Server => 500,
    };
    Ok(Response::from_json(&CaFailure { kind, message: message.into() })?.with_status(status))
}

const KEY: &str = "key";
const CERT: &str = "cert";
const COUNTER: &str = "serial_counter";

fn issued_key(serial: &str) -> String {
    format!("issued:{serial}")
}

#[durable_object]
pub struct CertificateAuthority {
    state: State,
}

impl DurableObject for CertificateAuthority {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Get, "/ca") => {
                let (_, ca) = self.ca().await?;
                Response::from_json(&ca)
            }
            (Method::Post, "/issue") => {
                let Ok(r) = req.json::<IssueRequest>().await else {
                    return failure(CaFailureKind::BadRequest, "malformed issue request");
                };
                let Some(spki) = decode_base64(&r.spki_der_b64) else {
                    return failure(CaFailureKind::BadRequest, "public key is not base64");
                };
                self.issue(&r.device_id, &spki, r.validity_days, None).await
            }
            (Method::Post, "/renew") => {
                let Ok(r) = req.json::<RenewRequest>().await else {
                    return failure(CaFailureKind::BadRequest, "malformed renew request");
                };
                self.renew(r).await
            }
            (Method::Post, "/revoke") => {
                let Ok(r) = req.json::<RevokeRequest>().await else {
                    return failure(CaFailureKind::BadRequest, "malformed revoke request");
                };
                self.revoke(&r.serials).await
            }
            _ => failure(CaFailureKind::BadRequest, "no such CA operation"),
        }
    }
}

impl CertificateAuthority {
    /// The key and certificate, created on first use. Reads and writes of one request happen
    /// under the object's input gate, so two first requests cannot both create a key.
    fn storage(&self) -> JsonStorage {
        JsonStorage(self.state.storage())
    }

    async fn ca(&self) -> Result<(CaKey, CaCertificate)> {
        let storage = self.storage();
        let stored: Option<String> = storage.get(KEY).await?;
        if let Some(key_b64) = stored {
            let cert_b64: String = storage.get(CERT).await?.ok_or_else(|| storage_error("CA certificate missing"))?;
            let key = decode_base64(&key_b64)
                .and_then(|d| CaKey::from_pkcs8_der(&d).ok())
                .ok_or_else(|| storage_error("stored CA key unreadable"))?;
            let thumbprint = pki::thumbprint(&decode_base64(&cert_b64).unwrap_or_default());
            return Ok((key, CaCertificate { cert_b64, thumbprint }));
        }
        let key = CaKey::generate().map_err(|e| storage_error(&e.to_string()))?;
        let now = now_secs();
        let serial = ca::serial_number(0, random_bytes());
        let cert = pki::build_ca_certificate(&key, ca::CA_COMMON_NAME, &serial, now, now + ca::CA_VALIDITY_SECS)
            .map_err(|e| storage_error(&e.to_string()))?;
        let cert_b64 = encode_base64(&cert);
        let key_b64 = encode_base64(&key.to_pkcs8_der());
        let mut batch = Batch::default();
        batch.put(KEY, &key_b64)?;
        batch.put(CERT, &cert_b64)?;
        batch.put(COUNTER, &0u64)?;
        storage.commit(batch).await?;
        Ok((key, CaCertificate { cert_b64, thumbprint: pki::thumbprint(&cert) }))
    }

    async fn issue(&self, device_id: &str, spki: &[u8], validity_days: u32, renews: Option<String>) -> Result<Response> {
        if !crate::enrollment::valid_device_id(device_id) || validity_days == 0 {
            return failure(CaFailureKind::BadRequest, "invalid device id or validity");
        }
        let (key, ca) = self.ca().await?;
        let ca_der = decode_base64(&ca.cert_b64).unwrap_or_default();
        let storage = self.storage();
        let counter: u64 = storage.get(COUNTER).await?.unwrap_or(0) + 1;
        let serial = ca::serial_number(counter, random_bytes());
        // Valid from now, never back-dated (back-dating put Fleet's devices in a renewal loop).
        let not_before = now_secs();
        let not_after = not_before + u64::from(validity_days) * 86_400;
        let request = DeviceCertRequest { serial: &serial, subject_cn: device_id, spki_der: spki, not_before, not_after };
        let cert = match pki::issue_device_certificate(&key, &ca_der, &request) {
            Ok(c) => c,
            Err(e) => return failure(CaFailureKind::BadRequest, e.to_string()),
        };
        let record = IssuanceRecord {
            serial: ca::serial_hex(&serial),
            device_id: device_id.to_string(),
            thumbprint: pki::thumbprint(&cert),
            not_before,
            not_after,
            renews: renews.clone(),
            revoked: false,
        };
        let mut batch = Batch::default();
        batch.put(COUNTER, &counter)?;
        batch.put(&issued_key(&record.serial), &record)?;
        if let Some(old) = &renews {
            if let Some(mut prev) = storage.get::<IssuanceRecord>(&issued_key(old)).await? {
                prev.revoked = true;
                batch.put(&issued_key(old), &prev)?;
            }
        }
        storage.commit(batch).await?;
        Response::from_json(&Issued {
            device_id: record.device_id,
            cert_b64: encode_base64(&cert),
            serial: record.serial,
            thumbprint: record.thumbprint,
            not_before,
            not_after,
            renews,
            ca,
        })
    }

    async fn renew(&self, r: RenewRequest) -> Result<Response> {
        let (Some(signer), Some(spki)) = (decode_base64(&r.signer_cert_b64), decode_base64(&r.spki_der_b64)) else {
            return failure(CaFailureKind::BadRequest, "certificate or key is not base64");
        };
        let (_, ca) = self.ca().await?;
        let ca_der = decode_base64(&ca.cert_b64).unwrap_or_default();
        if pki::verify_issued_by(&signer, &ca_der).is_err() {
            return failure(CaFailureKind::NotEligible, "the signing certificate was not issued by this server");
        }
        let info = match pki::inspect_certificate(&signer) {
            Ok(i) => i,
            Err(e) => return failure(CaFailureKind::NotEligible, e.to_string()),
        };
        let record: Option<IssuanceRecord> = self.storage().get(&issued_key(&info.serial_hex)).await?;
        if let Some(why) = ca::renewal_refusal(record.as_ref(), &pki::thumbprint(&signer), now_secs()) {
            return failure(CaFailureKind::NotEligible, why);
        }
        let Some(record) = record else {
            return failure(CaFailureKind::NotEligible, "unknown certificate");
        };
        self.issue(&record.device_id, &spki, r.validity_days, Some(record.serial)).await
    }

    async fn revoke(&self, serials: &[String]) -> Result<Response> {
        let storage = self.storage();
        let mut batch = Batch::default();
        let mut n = 0;
        for s in serials {
            if let Some(mut rec) = storage.get::<IssuanceRecord>(&issued_key(s)).await? {
                rec.revoked = true;
                batch.put(&issued_key(s), &rec)?;
                n += 1;
            }
        }
        storage.commit(batch).await?;
        Response::from_json(&serde_json::json!({ "revoked": n }))
    }
}
