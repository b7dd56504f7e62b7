//! The enrollment service, pure: what a WSTEP request means for a device, the device record it
//! produces, the provisioning document it gets, and the one place errors become SOAP faults.

use crate::pki::PkiError;
use crate::proto::discovery::DiscoveryError;
use crate::proto::provdoc::{
    AppAuth, CertStore, ClientGeneration, DmAccount, DmClient, DocShape, Poll, PrivateKeyContainer,
    ProvisioningDoc, RenewSettings, StoredCert, Win81Settings,
};
use crate::proto::soap::{FaultCode, SoapError};
use crate::proto::wstep::{RequestSecurityToken, WstepError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest SOAP request accepted. Real requests are 3–8 KB (a CSR plus context items).
pub const MAX_SOAP_BYTES: usize = 64 * 1024;

/// Errors of the enrollment services; [`EnrollError::fault_code`] is where each becomes the
/// fault a Windows client understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollError {
    Soap(SoapError),
    TooLarge,
    /// `a:Action` is missing or names another operation.
    WrongAction(Option<String>),
    NotAGetPolicies,
    Discovery(DiscoveryError),
    Wstep(WstepError),
    Csr(PkiError),
    /// No credential, or one that does not check out.
    Authentication(String),
    /// The request's context does not describe a device we can enroll.
    InvalidEnrollmentData(String),
    /// Renewal refused: unknown, revoked, expired or retired certificate, or a mismatch.
    NotEligibleToRenew(String),
    /// A storage or signing step failed on our side.
    Server(String),
}

impl fmt::Display for EnrollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnrollError::Soap(e) => write!(f, "{e}"),
            EnrollError::TooLarge => write!(f, "request larger than {MAX_SOAP_BYTES} bytes"),
            EnrollError::WrongAction(a) => write!(f, "unexpected action {:?}", a.as_deref().unwrap_or("")),
            EnrollError::NotAGetPolicies => f.write_str("the body is not a GetPolicies request"),
            EnrollError::Discovery(e) => write!(f, "{e}"),
            EnrollError::Wstep(e) => write!(f, "{e}"),
            EnrollError::Csr(e) => write!(f, "certificate request refused: {e}"),
            EnrollError::Authentication(m) => write!(f, "authentication failed: {m}"),
            EnrollError::InvalidEnrollmentData(m) => write!(f, "invalid enrollment data: {m}"),
            EnrollError::NotEligibleToRenew(m) => write!(f, "not eligible to renew: {m}"),
            EnrollError::Server(m) => write!(f, "server error: {m}"),
        }
    }
}

impl std::error::Error for EnrollError {}

impl EnrollError {
    pub fn fault_code(&self) -> FaultCode {
        match self {
            EnrollError::Soap(e) => e.fault_code(),
            EnrollError::TooLarge | EnrollError::WrongAction(_) | EnrollError::NotAGetPolicies => {
                FaultCode::MessageFormat
            }
            EnrollError::Discovery(DiscoveryError::NotADiscover) => FaultCode::MessageFormat,
            EnrollError::Discovery(DiscoveryError::PolicyNotOffered(_)) => FaultCode::NotSupported,
            EnrollError::Wstep(_) => FaultCode::MessageFormat,
            EnrollError::Csr(_) => FaultCode::CertificateRequest,
            EnrollError::Authentication(_) => FaultCode::Authentication,
            EnrollError::InvalidEnrollmentData(_) => FaultCode::InvalidEnrollmentData,
            EnrollError::NotEligibleToRenew(_) => FaultCode::NotEligibleToRenew,
            EnrollError::Server(_) => FaultCode::EnrollmentServer,
        }
    }

    /// The text the fault's `Reason` carries: internal details stay in the log.
    pub fn public_reason(&self) -> String {
        match self {
            EnrollError::Server(_) => "The enrollment server could not complete the request.".into(),
            other => other.to_string(),
        }
    }
}

impl From<SoapError> for EnrollError {
    fn from(e: SoapError) -> Self {
        EnrollError::Soap(e)
    }
}

impl From<WstepError> for EnrollError {
    fn from(e: WstepError) -> Self {
        EnrollError::Wstep(e)
    }
}

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

impl DeviceIdentity {
    /// Reads the context items. Windows 10+ always sends `DeviceID`; older clients (8.1, phones)
    /// send none, and get `fallback_id`, a fresh random id.
    pub fn from_request(rst: &RequestSecurityToken, fallback_id: String) -> Result<DeviceIdentity, EnrollError> {
        let item = |n: &str| rst.context_item(n).map(str::to_string);
        let device_id = item("DeviceID").unwrap_or(fallback_id);
        if !valid_device_id(&device_id) {
            return Err(EnrollError::InvalidEnrollmentData(format!("DeviceID {device_id:?} is not a plain identifier")));
        }
        let enrollment_type = match rst.context_item("EnrollmentType") {
            None => EnrollmentType::Full,
            Some(t) if t.eq_ignore_ascii_case("Full") => EnrollmentType::Full,
            Some(t) if t.eq_ignore_ascii_case("Device") => EnrollmentType::Device,
            Some(t) => return Err(EnrollError::InvalidEnrollmentData(format!("EnrollmentType {t:?} is not Full or Device"))),
        };
        if rst.context_item("DeviceType").is_none() {
            return Err(EnrollError::InvalidEnrollmentData("DeviceType is missing".into()));
        }
        Ok(DeviceIdentity {
            device_id,
            hw_dev_id: item("HWDevID"),
            device_name: item("DeviceName"),
            device_type: item("DeviceType"),
            os_version: item("OSVersion"),
            os_edition: item("OSEdition"),
            application_version: item("ApplicationVersion"),
            enrollment_type,
            context: rst.context.iter().map(|(n, v)| ContextItem { name: n.clone(), value: v.clone() }).collect(),
        })
    }
}

/// The certificate a device holds, as the records keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRef {
    pub serial: String,
    pub thumbprint: String,
    pub not_before: String,
    pub not_after: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Enrolled,
    /// The device said it left (alert 1226).
    Unenrolled,
    /// An admin retired it.
    Retired,
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

/// Random material for a new enrollment, drawn by the caller.
pub struct Secrets {
    pub device_secret: String,
    pub server_secret: String,
    pub device_nonce: [u8; 16],
    pub server_nonce: [u8; 16],
}

/// Server settings the provisioning document needs.
pub struct DocSettings<'a> {
    pub provider_id: &'a str,
    pub org_name: &'a str,
    pub management_url: &'a str,
    pub renew_period_days: u32,
    pub retry_interval_days: u32,
    pub renew_url: Option<String>,
    /// The check-in schedule (`POLL_SCHEDULE`), for both generations.
    pub poll: Poll,
    /// `SSP_HYPERLINK`: the 8.1 `SSPHyperlink`.
    pub ssp_hyperlink: Option<&'a str>,
    /// `SERVER_ROOT_CERT_HASH`: the 8.1 `SslServerRootCertHash`.
    pub server_root_cert_hash: Option<&'a str>,
}

/// Builds the provisioning document of a first enrollment, in the shape of the client's
/// generation, and the credentials to keep.
pub fn provisioning_doc(
    generation: ClientGeneration,
    identity: &DeviceIdentity,
    user: Option<&str>,
    root: StoredCert,
    client: StoredCert,
    secrets: &Secrets,
    s: &DocSettings,
) -> (ProvisioningDoc, DmCredentials) {
    use crate::proto::soap::encode_base64;
    let store = identity.enrollment_type.store();
    let device_nonce_b64 = encode_base64(&secrets.device_nonce);
    let server_nonce_b64 = encode_base64(&secrets.server_nonce);
    let creds = DmCredentials {
        device_name: identity.device_id.clone(),
        device_hash_b64: crate::proto::syncml::digest::secret_hash(&identity.device_id, &secrets.device_secret),
        device_nonce_b64: device_nonce_b64.clone(),
        server_secret: secrets.server_secret.clone(),
        server_nonce_b64: server_nonce_b64.clone(),
    };
    let doc = ProvisioningDoc {
        root,
        client,
        store,
        renew: RenewSettings {
            renew_period_days: s.renew_period_days,
            retry_interval_days: s.retry_interval_days,
            server_url: s.renew_url.clone(),
        },
        account: DmAccount {
            provider_id: s.provider_id.into(),
            name: s.org_name.into(),
            addr: s.management_url.into(),
            client_cert_subject_cn: identity.device_id.clone(),
            store,
            server_auth: AppAuth { name: None, secret: secrets.server_secret.clone(), nonce_b64: server_nonce_b64 },
            device_auth: AppAuth {
                name: Some(identity.device_id.clone()),
                secret: secrets.device_secret.clone(),
                nonce_b64: device_nonce_b64,
            },
        },
        poll: s.poll,
        shape: match generation {
            ClientGeneration::Windows10 => DocShape::Windows10(DmClient {
                ent_dmid: identity.device_id.clone(),
                ent_device_name: identity.device_name.clone(),
                upn: user.map(str::to_string),
            }),
            ClientGeneration::Windows81 => DocShape::Windows81(Win81Settings {
                ssp_hyperlink: s.ssp_hyperlink.map(str::to_string),
                server_root_cert_hash: s.server_root_cert_hash.map(str::to_string),
                device_name: identity.device_name.clone().unwrap_or_default(),
                account_id: identity.device_id.clone(),
                key_container: PrivateKeyContainer::default(),
            }),
        },
    };
    (doc, creds)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wstep::{RequestType, TokenRequest};

    fn rst(items: &[(&str, &str)]) -> RequestSecurityToken {
        RequestSecurityToken {
            request_type: RequestType::Issue,
            token: TokenRequest::Pkcs10(vec![]),
            context: items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn identity_from_windows10_context() {
        let r = rst(&[
            ("DeviceID", "B5B954E81FBCB94EB79BD08BE625F4EE"),
            ("HWDevID", "AB"),
            ("EnrollmentType", "Device"),
            ("DeviceType", "CIMClient_Windows"),
            ("DeviceName", "PC-1"),
            ("MAC", "00-0C"),
            ("MAC", "00-0C"),
        ]);
        let id = DeviceIdentity::from_request(&r, "fallback".into()).unwrap();
        assert_eq!(id.device_id, "B5B954E81FBCB94EB79BD08BE625F4EE");
        assert_eq!(id.enrollment_type.store(), CertStore::System);
        assert_eq!(id.context.len(), 7);
    }

    #[test]
    fn identity_errors() {
        let no_type = rst(&[("DeviceID", "A")]);
        assert!(matches!(DeviceIdentity::from_request(&no_type, "f".into()), Err(EnrollError::InvalidEnrollmentData(_))));
        let bad_id = rst(&[("DeviceID", "../x"), ("DeviceType", "CIMClient_Windows")]);
        assert!(matches!(DeviceIdentity::from_request(&bad_id, "f".into()), Err(EnrollError::InvalidEnrollmentData(_))));
        let bad_type = rst(&[("EnrollmentType", "Other"), ("DeviceType", "x")]);
        assert!(DeviceIdentity::from_request(&bad_type, "f".into()).is_err());
        let phone = rst(&[("DeviceType", "WindowsPhone")]);
        let id = DeviceIdentity::from_request(&phone, "f00d".into()).unwrap();
        assert_eq!((id.device_id.as_str(), id.enrollment_type), ("f00d", EnrollmentType::Full));
    }

    #[test]
    fn every_error_has_its_fault() {
        assert_eq!(EnrollError::Authentication("x".into()).fault_code(), FaultCode::Authentication);
        assert_eq!(EnrollError::Csr(PkiError::BadSignature).fault_code(), FaultCode::CertificateRequest);
        assert_eq!(EnrollError::TooLarge.fault_code(), FaultCode::MessageFormat);
        assert_eq!(EnrollError::Soap(SoapError::InvalidSecurity("x".into())).fault_code(), FaultCode::InvalidSecurity);
        assert_eq!(EnrollError::NotEligibleToRenew("x".into()).fault_code(), FaultCode::NotEligibleToRenew);
        assert!(!EnrollError::Server("db down at 10.0.0.1".into()).public_reason().contains("10.0.0.1"));
    }

    #[test]
    fn document_and_credentials_agree() {
        let r = rst(&[("DeviceID", "DEV"), ("DeviceType", "CIMClient_Windows")]);
        let id = DeviceIdentity::from_request(&r, "f".into()).unwrap();
        let secrets = Secrets {
            device_secret: "d".into(),
            server_secret: "s".into(),
            device_nonce: [1; 16],
            server_nonce: [2; 16],
        };
        let settings = DocSettings {
            provider_id: "edgemdm",
            org_name: "Org",
            management_url: "https://e/ManagementServer/MDM.svc",
            renew_period_days: 60,
            retry_interval_days: 4,
            renew_url: None,
            poll: Poll::default(),
            ssp_hyperlink: Some("https://e/app"),
            server_root_cert_hash: None,
        };
        let cert = |t: &str| StoredCert { thumbprint: t.into(), der: vec![0] };
        let (user, root, client) = (Some("u@e.x"), cert("R"), cert("C"));
        let build = |g| {
            provisioning_doc(
                g,
                &id,
                user,
                root.clone(),
                client.clone(),
                &secrets,
                &settings,
            )
        };
        let (doc, creds) = build(ClientGeneration::Windows10);
        assert_eq!(doc.account.device_auth.nonce_b64, creds.device_nonce_b64);
        assert_eq!(creds.device_hash_b64, crate::proto::syncml::digest::secret_hash("DEV", "d"));
        assert_eq!(doc.store, CertStore::User);
        match &doc.shape {
            DocShape::Windows10(d) => assert_eq!(d.upn.as_deref(), Some("u@e.x")),
            other => panic!("{other:?}"),
        }

        // The same inputs for an 8.1 client: its own fields, the same account and schedule.
        let (doc81, creds81) = build(ClientGeneration::Windows81);
        assert_eq!(creds81, creds);
        assert_eq!(doc81.account, doc.account);
        assert_eq!((doc81.poll, doc81.store), (doc.poll, doc.store));
        match &doc81.shape {
            DocShape::Windows81(w) => {
                assert_eq!(w.ssp_hyperlink.as_deref(), Some("https://e/app"));
                assert_eq!(w.account_id, "DEV");
                assert_eq!(w.device_name, "");
                assert_eq!(w.key_container, PrivateKeyContainer::default());
            }
            other => panic!("{other:?}"),
        }
    }
}
