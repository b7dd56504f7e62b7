//! The enrollment services, pure: Discovery ([MS-MDE2] §3.1), policy ([MS-XCEP]) and
//! certificate enrollment and renewal ([MS-WSTEP], [MS-MDE2] §3.3–§3.4).
//!
//! * [`service`]: one SOAP request in, one SOAP answer out; dispatch on `a:Action`.
//! * [`flow`]: enrollment and renewal across the token authority, the CA and the device
//!   object, over narrow traits the shell implements.
//! * [`provisioning`]: the provisioning document of a new enrollment.
//! * here: what a request says about the device, and [`EnrollError`], the one place errors
//!   become the faults a Windows client understands.

pub mod flow;
pub mod provisioning;
pub mod service;

use crate::device::{valid_device_id, ContextItem, DeviceIdentity, EnrollmentType};
use crate::pki::PkiError;
use crate::proto::discovery::DiscoveryError;
use crate::proto::soap::{FaultCode, SoapError};
use crate::proto::wstep::{RequestSecurityToken, WstepError};
use std::fmt;

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
    /// The user may not enroll this device (another user's DeviceID).
    NotAuthorized(String),
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
            EnrollError::TooLarge => write!(f, "request larger than {} bytes", service::MAX_SOAP_BYTES),
            EnrollError::WrongAction(a) => write!(f, "unexpected action {:?}", a.as_deref().unwrap_or("")),
            EnrollError::NotAGetPolicies => f.write_str("the body is not a GetPolicies request"),
            EnrollError::Discovery(e) => write!(f, "{e}"),
            EnrollError::Wstep(e) => write!(f, "{e}"),
            EnrollError::Csr(e) => write!(f, "certificate request refused: {e}"),
            EnrollError::Authentication(m) => write!(f, "authentication failed: {m}"),
            EnrollError::NotAuthorized(m) => write!(f, "not authorized: {m}"),
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
            EnrollError::NotAuthorized(_) => FaultCode::Authorization,
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

impl DeviceIdentity {
    /// Reads the context items. Windows 10+ always sends `DeviceID`; older clients (8.1, phones)
    /// send none, and get `fallback_id`, a fresh random id.
    pub fn from_request(
        rst: &RequestSecurityToken,
        fallback_id: String,
    ) -> Result<DeviceIdentity, EnrollError> {
        let item = |n: &str| rst.context_item(n).map(str::to_string);
        let device_id = item("DeviceID").unwrap_or(fallback_id);
        if !valid_device_id(&device_id) {
            return Err(EnrollError::InvalidEnrollmentData(format!(
                "DeviceID {device_id:?} is not a plain identifier"
            )));
        }
        let enrollment_type = match rst.context_item("EnrollmentType") {
            None => EnrollmentType::Full,
            Some(t) if t.eq_ignore_ascii_case("Full") => EnrollmentType::Full,
            Some(t) if t.eq_ignore_ascii_case("Device") => EnrollmentType::Device,
            Some(t) => {
                return Err(EnrollError::InvalidEnrollmentData(format!(
                    "EnrollmentType {t:?} is not Full or Device"
                )))
            }
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
            context: rst
                .context
                .iter()
                .map(|(n, v)| ContextItem { name: n.clone(), value: v.clone() })
                .collect(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::provdoc::CertStore;
    use crate::proto::wstep::{RequestType, TokenRequest};

    /// An Issue RST with these context items (shared with the provisioning tests).
    pub(crate) fn rst(items: &[(&str, &str)]) -> RequestSecurityToken {
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
        assert!(matches!(
            DeviceIdentity::from_request(&no_type, "f".into()),
            Err(EnrollError::InvalidEnrollmentData(_))
        ));
        let bad_id = rst(&[("DeviceID", "../x"), ("DeviceType", "CIMClient_Windows")]);
        assert!(matches!(
            DeviceIdentity::from_request(&bad_id, "f".into()),
            Err(EnrollError::InvalidEnrollmentData(_))
        ));
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
        assert_eq!(
            EnrollError::Soap(SoapError::InvalidSecurity("x".into())).fault_code(),
            FaultCode::InvalidSecurity
        );
        assert_eq!(EnrollError::NotEligibleToRenew("x".into()).fault_code(), FaultCode::NotEligibleToRenew);
        assert!(!EnrollError::Server("db down at 10.0.0.1".into()).public_reason().contains("10.0.0.1"));
    }
}
