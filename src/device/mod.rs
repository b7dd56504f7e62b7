//! A managed device, as the server keeps it: what its enrollment said about it, its
//! certificate, its status and its management credentials. The device's Durable Object holds
//! these; the rules that change them are in [`calls`] (one call per object operation) and
//! [`checkin`] (one management session message, with [`profiles`], the device's
//! configuration profiles).

pub mod calls;
pub mod checkin;
pub mod lifecycle;
pub mod profile_state;

use crate::proto::provdoc::CertStore;
use serde::{Deserialize, Serialize};

/// `EnrollmentType`: `Full` enrolls the user, `Device` the whole machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollmentType {
    Full,
    Device,
}

impl EnrollmentType {
    pub fn store(self) -> CertStore {
        match self {
            EnrollmentType::Full => CertStore::User,
            EnrollmentType::Device => CertStore::System,
        }
    }
}

/// What an enrollment request says about the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    pub device_id: String,
    pub hw_dev_id: Option<String>,
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub os_version: Option<String>,
    pub os_edition: Option<String>,
    pub application_version: Option<String>,
    pub enrollment_type: EnrollmentType,
    pub context: Vec<ContextItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextItem {
    pub name: String,
    pub value: String,
}

/// Device ids become Durable Object names, KV keys and SyncML LocURIs: keep them plain.
pub fn valid_device_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_{}.".contains(&b))
}

/// The certificate a device holds, as the records keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRef {
    pub serial: String,
    pub thumbprint: String,
    pub not_before: String,
    pub not_after: String,
    /// The serial of the certificate this one renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<String>,
}

/// Where a device is in its lifecycle; the transitions are [`lifecycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Enrolled,
    /// An admin retired it; the Unenroll is on its way. The server already treats it as gone:
    /// no commands but the Unenroll, certificate revoked, no renewal, DeviceID released.
    Retiring,
    /// An admin retired it and the retirement is complete.
    Retired,
    /// The device said it left (alert 1226).
    Unenrolled,
    /// The same user enrolled the same hardware again under a new DeviceID.
    Superseded,
}

/// The device record, kept in the device's Durable Object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    #[serde(flatten)]
    pub identity: DeviceIdentity,
    pub user: Option<String>,
    pub certificate: CertRef,
    pub status: DeviceStatus,
    pub enrolled_at: String,
    pub renewed_at: Option<String>,
    /// When an admin retired it (or a newer enrollment superseded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

/// KV value of `device:<device_id>`: what listing devices needs, kept in step with the record
/// in the device's Durable Object (kv-schema/device.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIndexEntry {
    pub device_id: String,
    pub device_name: Option<String>,
    pub user: Option<String>,
    pub status: DeviceStatus,
    pub enrolled_at: String,
    pub certificate_not_after: String,
}

impl From<&DeviceRecord> for DeviceIndexEntry {
    fn from(r: &DeviceRecord) -> Self {
        DeviceIndexEntry {
            device_id: r.identity.device_id.clone(),
            device_name: r.identity.device_name.clone(),
            user: r.user.clone(),
            status: r.status,
            enrolled_at: r.enrolled_at.clone(),
            certificate_not_after: r.certificate.not_after.clone(),
        }
    }
}

/// The OMA-DM digest credentials of a device's management account. The device's own secret is
/// not kept: only `B64(MD5(name:secret))`, which is all digest verification needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmCredentials {
    /// `APPSRV` `AAUTHNAME`: the name the device presents.
    pub device_name: String,
    pub device_hash_b64: String,
    /// Nonce the device uses for its first digest, base64.
    pub device_nonce_b64: String,
    /// `CLIENT` secret: what the server proves to the device.
    pub server_secret: String,
    pub server_nonce_b64: String,
}

/// A record for native tests: enrolled, certificate serial `0A`, thumbprint `T1`.
#[cfg(test)]
pub fn test_record(id: &str, status: DeviceStatus, user: Option<&str>) -> DeviceRecord {
    DeviceRecord {
        identity: DeviceIdentity {
            device_id: id.into(),
            hw_dev_id: Some("HW".into()),
            device_name: Some("PC-1".into()),
            device_type: None,
            os_version: None,
            os_edition: None,
            application_version: None,
            enrollment_type: EnrollmentType::Full,
            context: vec![],
        },
        user: user.map(Into::into),
        certificate: CertRef {
            serial: "0A".into(),
            thumbprint: "T1".into(),
            not_before: "".into(),
            not_after: "".into(),
            renews: None,
        },
        status,
        enrolled_at: "t0".into(),
        renewed_at: None,
        retired_at: None,
    }
}
