//! Namespace URIs and action URIs of the enrollment protocols ([MS-MDE2] §2.2.1, [MS-XCEP], [MS-WSTEP]).

pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const ADDRESSING: &str = "http://www.w3.org/2005/08/addressing";
pub const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const WSU: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const WST: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
/// AdditionalContext. [MS-MDE2] §2.2.1 lists the wstep URI; every example and device uses this one.
pub const AC: &str = "http://schemas.xmlsoap.org/ws/2006/12/authorization";
pub const DISCOVERY: &str = "http://schemas.microsoft.com/windows/management/2012/01/enrollment";
/// Microsoft's Discover samples add a trailing slash; devices don't. Both are accepted.
pub const DISCOVERY_SLASH: &str = "http://schemas.microsoft.com/windows/management/2012/01/enrollment/";
pub const XCEP: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy";
pub const WSTEP: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema";

pub const ACTION_DISCOVER: &str =
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover";
pub const ACTION_DISCOVER_RESPONSE: &str =
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/DiscoverResponse";
pub const ACTION_GET_POLICIES: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies";
pub const ACTION_GET_POLICIES_RESPONSE: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPoliciesResponse";
pub const ACTION_RST: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep";
pub const ACTION_RSTRC: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep";
/// The fault action of the Windows 8.1 enrollment service's RequestSecurityToken operation
/// (the `wsdl:fault` of `IWindowsDeviceEnrollmentService`, [MS-MDE] §3.4.4.1).
pub const ACTION_WSTEP_FAULT_WIN81: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/IWindowsDeviceEnrollmentService/RequestSecurityTokenWindowsDeviceEnrollmentServiceErrorFault";

/// `wsse:BinarySecurityToken` value types.
pub const VT_USER_TOKEN: &str =
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken";
pub const VT_PKCS10: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10";
pub const VT_PKCS7: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7";
/// Windows 8.1's renewal value type ([MS-MDE] §3.5).
pub const VT_PKCS7_81: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS7";
pub const VT_PROVISION_DOC: &str =
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc";
pub const ENCODING_BASE64: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary";
pub const TOKEN_TYPE_DEVICE: &str =
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken";

pub const REQUEST_ISSUE: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue";
pub const REQUEST_RENEW: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew";
pub const REQUEST_RECOVERY: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Recovery";
