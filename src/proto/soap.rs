//! SOAP 1.2 envelopes with WS-Addressing and WS-Security headers, and the enrollment faults
//! ([MS-MDE2] §2.2.10, [MS-WSTEP] §3.1.4.1.3).
//!
//! Elements are matched by namespace; `wsse:`/`o:` prefixes and default namespaces all work.

use super::ns;
use crate::codec::decode_base64;
use crate::xml::{self, El, Element};
use std::fmt;

pub use crate::time::format_timestamp;

/// The parts of a request envelope the services use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub header: Header,
    /// The first element child of `s:Body`.
    pub body: Element,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// `a:Action`: services dispatch on it, not on the path.
    pub action: Option<String>,
    /// `a:MessageID`: echoed as `a:RelatesTo`. A constant on real devices: never a nonce.
    pub message_id: Option<String>,
    /// `a:To`
    pub to: Option<String>,
    /// The credential in `wsse:Security`, if any.
    pub credential: Option<Credential>,
}

/// What `wsse:Security` carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `wsse:UsernameToken` (OnPremise): clear-text password ([MS-MDE2] §3.3.4.1.1.1.3).
    UsernameToken { username: String, password: String },
    /// `wsse:BinarySecurityToken` of ValueType DeviceEnrollmentUserToken (Federated `wresult`, or a
    /// programmatic enrollment token), base64-decoded.
    UserToken(Vec<u8>),
    /// Any other BinarySecurityToken (Entra JWT, X.509): recognised, not accepted.
    Other { value_type: String },
}

/// Errors of the SOAP layer. Every variant maps to a fault in [`SoapError::fault_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapError {
    Xml(xml::XmlError),
    NotAnEnvelope,
    NoBody,
    /// A security header that cannot be read (bad base64, empty token).
    InvalidSecurity(String),
}

impl fmt::Display for SoapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SoapError::Xml(e) => write!(f, "{e}"),
            SoapError::NotAnEnvelope => f.write_str("not a SOAP 1.2 envelope"),
            SoapError::NoBody => f.write_str("the envelope has no body"),
            SoapError::InvalidSecurity(m) => write!(f, "invalid security header: {m}"),
        }
    }
}

impl std::error::Error for SoapError {}

impl SoapError {
    pub fn fault_code(&self) -> FaultCode {
        match self {
            SoapError::InvalidSecurity(_) => FaultCode::InvalidSecurity,
            _ => FaultCode::MessageFormat,
        }
    }
}

impl From<xml::XmlError> for SoapError {
    fn from(e: xml::XmlError) -> Self {
        SoapError::Xml(e)
    }
}

/// Parses a SOAP 1.2 envelope.
pub fn parse_envelope(text: &str) -> Result<Envelope, SoapError> {
    let root = xml::parse(text)?;
    if !root.is(ns::SOAP12, "Envelope") {
        return Err(SoapError::NotAnEnvelope);
    }
    let body =
        root.child(ns::SOAP12, "Body").and_then(|b| b.elements().next()).ok_or(SoapError::NoBody)?.clone();
    let mut header = Header::default();
    if let Some(h) = root.child(ns::SOAP12, "Header") {
        let text_of = |name: &str| h.child(ns::ADDRESSING, name).map(|e| e.text());
        header.action = text_of("Action");
        header.message_id = text_of("MessageID");
        header.to = text_of("To");
        if let Some(sec) = h.child(ns::WSSE, "Security") {
            header.credential = parse_credential(sec)?;
        }
    }
    Ok(Envelope { header, body })
}

fn parse_credential(sec: &Element) -> Result<Option<Credential>, SoapError> {
    if let Some(ut) = sec.child(ns::WSSE, "UsernameToken") {
        let username = ut.child(ns::WSSE, "Username").map(|e| e.text()).unwrap_or_default();
        let password = ut.child(ns::WSSE, "Password").map(|e| e.text()).unwrap_or_default();
        return Ok(Some(Credential::UsernameToken { username, password }));
    }
    if let Some(bst) = sec.child(ns::WSSE, "BinarySecurityToken") {
        let value_type = bst.attr("ValueType").unwrap_or_default().trim().to_string();
        if value_type != ns::VT_USER_TOKEN {
            return Ok(Some(Credential::Other { value_type }));
        }
        let bytes = decode_base64(&bst.text())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| SoapError::InvalidSecurity("token is not base64".into()))?;
        return Ok(Some(Credential::UserToken(bytes)));
    }
    Ok(None)
}

/// The fault names a Windows enrollment client recognises ([MS-MDE2] §2.2.10). The client matches
/// them as case-sensitive substrings of the detail `ErrorType`, then of the `Subcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    MessageFormat,
    Authentication,
    Authorization,
    CertificateRequest,
    EnrollmentServer,
    InternalServiceFault,
    InvalidSecurity,
    DeviceCapReached,
    DeviceNotSupported,
    NotSupported,
    NotEligibleToRenew,
    InMaintenance,
    UserLicense,
    InvalidEnrollmentData,
    CustomServerError,
}

impl FaultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::MessageFormat => "MessageFormat",
            FaultCode::Authentication => "Authentication",
            FaultCode::Authorization => "Authorization",
            FaultCode::CertificateRequest => "CertificateRequest",
            FaultCode::EnrollmentServer => "EnrollmentServer",
            FaultCode::InternalServiceFault => "InternalServiceFault",
            FaultCode::InvalidSecurity => "InvalidSecurity",
            FaultCode::DeviceCapReached => "DeviceCapReached",
            FaultCode::DeviceNotSupported => "DeviceNotSupported",
            FaultCode::NotSupported => "NotSupported",
            FaultCode::NotEligibleToRenew => "NotEligibleToRenew",
            FaultCode::InMaintenance => "InMaintenance",
            FaultCode::UserLicense => "UserLicense",
            FaultCode::InvalidEnrollmentData => "InvalidEnrollmentData",
            FaultCode::CustomServerError => "CustomServerError",
        }
    }

    /// The SOAP `Code/Value`: the sender is at fault for what it sent, the receiver otherwise.
    fn soap_code(self) -> &'static str {
        match self {
            FaultCode::MessageFormat
            | FaultCode::Authentication
            | FaultCode::Authorization
            | FaultCode::CertificateRequest
            | FaultCode::InvalidSecurity
            | FaultCode::DeviceNotSupported
            | FaultCode::NotSupported
            | FaultCode::NotEligibleToRenew
            | FaultCode::InvalidEnrollmentData => "s:Sender",
            _ => "s:Receiver",
        }
    }
}

/// A SOAP fault as the enrollment client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    /// `s:Reason/s:Text`; shown to the user for `CustomServerError`.
    pub reason: String,
    /// Logged by the device as `LastSoapErrorTraceId`.
    pub trace_id: String,
}

impl Fault {
    pub fn new(code: FaultCode, reason: impl Into<String>, trace_id: impl Into<String>) -> Self {
        Fault { code, reason: reason.into(), trace_id: trace_id.into() }
    }

    /// The fault envelope, correctly cased SOAP 1.2 (the lower-case samples in the docs are
    /// unreadable to the client). `action` is the response action of the failing operation.
    pub fn to_envelope(&self, action: &str, relates_to: Option<&str>) -> String {
        let body =
            El::new("s:Fault")
                .child(El::new("s:Code").child(El::leaf("s:Value", self.code.soap_code())).child(
                    El::new("s:Subcode").child(El::leaf("s:Value", format!("s:{}", self.code.as_str()))),
                ))
                .child(El::new("s:Reason").child(El::leaf("s:Text", &self.reason).attr("xml:lang", "en-US")))
                .child(
                    El::new("s:Detail").child(
                        El::new("DeviceEnrollmentServiceError")
                            .attr("xmlns", ns::WSTEP)
                            .child(El::leaf("ErrorType", self.code.as_str()))
                            .child(El::leaf("Message", &self.reason))
                            .child(El::leaf("TraceId", &self.trace_id)),
                    ),
                );
        response_envelope(action, relates_to, Vec::new(), body)
    }
}

/// A response envelope: `a:Action` (mustUnderstand), `a:RelatesTo` the request's MessageID, any
/// extra header elements, and the body element.
pub fn response_envelope(action: &str, relates_to: Option<&str>, extra_header: Vec<El>, body: El) -> String {
    let mut header = El::new("s:Header").child(El::leaf("a:Action", action).attr("s:mustUnderstand", "1"));
    if let Some(id) = relates_to {
        header.push(El::leaf("a:RelatesTo", id));
    }
    for h in extra_header {
        header.push(h);
    }
    El::new("s:Envelope")
        .attr("xmlns:s", ns::SOAP12)
        .attr("xmlns:a", ns::ADDRESSING)
        .attr("xmlns:u", ns::WSU)
        .child(header)
        .child(El::new("s:Body").attr("xmlns:xsi", ns::XSI).attr("xmlns:xsd", ns::XSD).child(body))
        .to_document()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONPREM: &str = include_str!("testdata/rst_request_onpremise.xml");
    const DEVICE: &str = include_str!("testdata/wstep_request_onprem_wp80_10517.xml");

    #[test]
    fn parses_username_token_from_sample_and_device() {
        let env = parse_envelope(ONPREM.trim_start()).unwrap();
        assert_eq!(env.header.action.as_deref(), Some(ns::ACTION_RST));
        match env.header.credential {
            Some(Credential::UsernameToken { username, password }) => {
                assert_eq!(username, "user@contoso.com");
                assert_eq!(password, "mypassword");
            }
            other => panic!("{other:?}"),
        }
        let env = parse_envelope(DEVICE).unwrap();
        assert_eq!(env.header.message_id.as_deref(), Some("urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749"));
        assert!(env.body.is(ns::WST, "RequestSecurityToken"));
        assert!(matches!(env.header.credential, Some(Credential::UsernameToken { .. })));
    }

    #[test]
    fn security_matched_by_namespace_not_prefix() {
        let doc = format!(
            r#"<e:Envelope xmlns:e="{}" xmlns:w="{}" xmlns:o="{}"><e:Header><w:Action>x</w:Action>
            <o:Security><o:BinarySecurityToken ValueType="{}">{}</o:BinarySecurityToken></o:Security>
            </e:Header><e:Body><b/></e:Body></e:Envelope>"#,
            ns::SOAP12,
            ns::ADDRESSING,
            ns::WSSE,
            ns::VT_USER_TOKEN,
            "dG9r\r\nZW4="
        );
        let env = parse_envelope(&doc).unwrap();
        assert_eq!(env.header.action.as_deref(), Some("x"));
        assert_eq!(env.header.credential, Some(Credential::UserToken(b"token".to_vec())));
    }

    #[test]
    fn refuses_non_envelopes_and_bad_tokens() {
        assert_eq!(parse_envelope("<Envelope/>"), Err(SoapError::NotAnEnvelope));
        let no_body = format!(r#"<s:Envelope xmlns:s="{}"><s:Header/></s:Envelope>"#, ns::SOAP12);
        assert_eq!(parse_envelope(&no_body), Err(SoapError::NoBody));
        let bad = format!(
            r#"<s:Envelope xmlns:s="{}"><s:Header><o:Security xmlns:o="{}"><o:BinarySecurityToken ValueType="{}">!!</o:BinarySecurityToken></o:Security></s:Header><s:Body><x/></s:Body></s:Envelope>"#,
            ns::SOAP12,
            ns::WSSE,
            ns::VT_USER_TOKEN
        );
        assert!(matches!(parse_envelope(&bad), Err(SoapError::InvalidSecurity(_))));
    }

    #[test]
    fn fault_reads_as_the_client_reads_it() {
        let f = Fault::new(FaultCode::Authentication, "bad <password>", "trace-1");
        let doc = f.to_envelope(ns::ACTION_RSTRC, Some("urn:uuid:1"));
        let root = xml::parse(&doc).unwrap();
        let fault = root.path(&[(ns::SOAP12, "Body"), (ns::SOAP12, "Fault")]).unwrap();
        let err = fault.path(&[(ns::SOAP12, "Detail"), (ns::WSTEP, "DeviceEnrollmentServiceError")]).unwrap();
        assert_eq!(err.child(ns::WSTEP, "ErrorType").unwrap().text(), "Authentication");
        assert_eq!(err.child(ns::WSTEP, "TraceId").unwrap().text(), "trace-1");
        let sub =
            fault.path(&[(ns::SOAP12, "Code"), (ns::SOAP12, "Subcode"), (ns::SOAP12, "Value")]).unwrap();
        assert_eq!(sub.text(), "s:Authentication");
        assert_eq!(
            fault.path(&[(ns::SOAP12, "Reason"), (ns::SOAP12, "Text")]).unwrap().text(),
            "bad <password>"
        );
        let hdr = root.child(ns::SOAP12, "Header").unwrap();
        assert_eq!(hdr.child(ns::ADDRESSING, "RelatesTo").unwrap().text(), "urn:uuid:1");
    }
}
