//! MS-MDE2 discovery: `Discover` and `DiscoverResponse` ([MS-MDE2] §3.1, §2.2.9.6).

use super::ns;
use crate::xml::{El, Element};
use std::fmt;

/// The highest `EnrollmentVersion` implemented here: attestation (5.0+) is not.
pub const MAX_ENROLLMENT_VERSION: Version = Version(4, 0);

/// `Discover/request` (an `xsd:all`: children in any order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discover {
    /// What the user typed; may be `domain\user`, or empty for programmatic enrollment.
    pub email_address: String,
    /// Empty on Windows 8.1.
    pub request_version: Option<String>,
    pub device_type: Option<String>,
    pub application_version: Option<String>,
    pub os_edition: Option<String>,
    /// What the client can do: `OnPremise`, `Federated`, `Certificate`.
    pub auth_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    NotADiscover,
    /// None of the client's auth policies is the one configured.
    PolicyNotOffered(AuthPolicy),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::NotADiscover => f.write_str("the body is not a Discover request"),
            DiscoveryError::PolicyNotOffered(p) => {
                write!(f, "this server requires the {} authentication policy", p.as_str())
            }
        }
    }
}

impl std::error::Error for DiscoveryError {}

fn is_discovery_ns(e: &Element) -> bool {
    matches!(e.ns.as_deref(), Some(ns::DISCOVERY) | Some(ns::DISCOVERY_SLASH))
}

impl Discover {
    pub fn parse(body: &Element) -> Result<Discover, DiscoveryError> {
        if body.name != "Discover" || !is_discovery_ns(body) {
            return Err(DiscoveryError::NotADiscover);
        }
        let req = body
            .elements()
            .find(|e| e.name == "request" && is_discovery_ns(e))
            .ok_or(DiscoveryError::NotADiscover)?;
        let field = |name: &str| {
            req.elements()
                .find(|e| e.name == name && is_discovery_ns(e))
                .map(|e| e.text())
                .filter(|t| !t.is_empty())
        };
        let auth_policies = req
            .elements()
            .find(|e| e.name == "AuthPolicies" && is_discovery_ns(e))
            .map(|p| p.elements().filter(|e| e.name == "AuthPolicy").map(|e| e.text()).collect())
            .unwrap_or_default();
        Ok(Discover {
            email_address: field("EmailAddress").unwrap_or_default(),
            request_version: field("RequestVersion"),
            device_type: field("DeviceType"),
            application_version: field("ApplicationVersion"),
            os_edition: field("OSEdition"),
            auth_policies,
        })
    }

    /// Which enrollment client is asking: empty or ≤ 2.0 is the Windows 8.1 protocol ([MS-MDE]).
    pub fn client(&self) -> Client {
        match self.request_version.as_deref().and_then(Version::parse) {
            Some(v) if v > Version(2, 0) => Client::Windows10 { version: v.min(MAX_ENROLLMENT_VERSION) },
            _ => Client::Windows81,
        }
    }
}

/// A `major.minor` protocol version, compared numerically (never allow-listed: Windows 11 25H2
/// sends 9.0, beyond the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.trim().splitn(2, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            Some(m) if !m.is_empty() => m.parse().ok()?,
            _ => 0,
        };
        Some(Version(major, minor))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Windows81,
    /// Windows 10/11, with the version the server answers.
    Windows10 {
        version: Version,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPolicy {
    OnPremise,
    Federated,
}

impl AuthPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthPolicy::OnPremise => "OnPremise",
            AuthPolicy::Federated => "Federated",
        }
    }

    pub fn parse(s: &str) -> Option<AuthPolicy> {
        match s.trim() {
            s if s.eq_ignore_ascii_case("OnPremise") => Some(AuthPolicy::OnPremise),
            s if s.eq_ignore_ascii_case("Federated") => Some(AuthPolicy::Federated),
            _ => None,
        }
    }
}

/// `DiscoverResponse/DiscoverResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverResponse {
    pub auth_policy: AuthPolicy,
    /// Omitted for Windows 8.1 ([MS-MDE] §3.1.4.1.3).
    pub enrollment_version: Option<Version>,
    pub enrollment_policy_service_url: String,
    pub enrollment_service_url: String,
    /// Required with `Federated`.
    pub authentication_service_url: Option<String>,
}

/// Server settings discovery answers from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub auth_policy: AuthPolicy,
    /// Absolute origin, e.g. `https://enterpriseenrollment.contoso.com`, no trailing slash.
    pub base_url: String,
}

pub const POLICY_PATH: &str = "/EnrollmentServer/PolicyEnrollmentWebservice.svc";
pub const ENROLLMENT_PATH_WIN10: &str = "/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc";
pub const ENROLLMENT_PATH_WIN81: &str = "/EnrollmentServer/DeviceEnrollmentWebservice.svc";
pub const LOGIN_PATH: &str = "/windows-web-agent";

impl DiscoverResponse {
    /// Answers a Discover: the configured policy if the client offered it (Windows 8.1 offers
    /// none and is answered anyway), the highest version we implement that is not above the
    /// client's, and the URLs of the client's generation.
    pub fn answer(req: &Discover, cfg: &DiscoveryConfig) -> Result<DiscoverResponse, DiscoveryError> {
        let offered = req.auth_policies.is_empty()
            || req.auth_policies.iter().any(|p| AuthPolicy::parse(p) == Some(cfg.auth_policy));
        if !offered {
            return Err(DiscoveryError::PolicyNotOffered(cfg.auth_policy));
        }
        let (enrollment_version, path) = match req.client() {
            Client::Windows81 => (None, ENROLLMENT_PATH_WIN81),
            Client::Windows10 { version } => (Some(version), ENROLLMENT_PATH_WIN10),
        };
        Ok(DiscoverResponse {
            auth_policy: cfg.auth_policy,
            enrollment_version,
            enrollment_policy_service_url: format!("{}{}", cfg.base_url, POLICY_PATH),
            enrollment_service_url: format!("{}{}", cfg.base_url, path),
            authentication_service_url: (cfg.auth_policy == AuthPolicy::Federated)
                .then(|| format!("{}{}", cfg.base_url, LOGIN_PATH)),
        })
    }

    pub fn to_element(&self) -> El {
        let mut result = El::new("DiscoverResult").child(El::leaf("AuthPolicy", self.auth_policy.as_str()));
        if let Some(v) = self.enrollment_version {
            result.push(El::leaf("EnrollmentVersion", v.to_string()));
        }
        result.push(El::leaf("EnrollmentPolicyServiceUrl", &self.enrollment_policy_service_url));
        result.push(El::leaf("EnrollmentServiceUrl", &self.enrollment_service_url));
        if let Some(u) = &self.authentication_service_url {
            result.push(El::leaf("AuthenticationServiceUrl", u));
        }
        El::new("DiscoverResponse").attr("xmlns", ns::DISCOVERY).child(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::soap;
    use crate::xml;

    fn body_of(doc: &str) -> Element {
        soap::parse_envelope(doc.trim_start()).unwrap().body
    }

    fn cfg(p: AuthPolicy) -> DiscoveryConfig {
        DiscoveryConfig { auth_policy: p, base_url: "https://e.example".into() }
    }

    #[test]
    fn parses_samples_with_slash_namespace_and_padding() {
        let d = Discover::parse(&body_of(include_str!("testdata/discover_request_v5_federated.msmde2.xml")))
            .unwrap();
        assert_eq!(d.email_address, "user@contoso.com");
        assert_eq!(d.request_version.as_deref(), Some("5.0"));
        assert_eq!(d.auth_policies, vec!["Federated"]);
        let d =
            Discover::parse(&body_of(include_str!("testdata/discover_request_v3_federated.xml"))).unwrap();
        assert_eq!(d.auth_policies, vec!["OnPremise", "Federated"]);
        let d = Discover::parse(&body_of(include_str!("testdata/win81_discover_request.msmde.xml"))).unwrap();
        assert_eq!(d.request_version, None);
        assert_eq!(d.client(), Client::Windows81);
    }

    #[test]
    fn version_negotiation_never_rejects_higher() {
        let mk = |v: &str| Discover { request_version: Some(v.into()), ..Default::default() };
        assert_eq!(mk("9.0").client(), Client::Windows10 { version: Version(4, 0) });
        assert_eq!(mk("6.0").client(), Client::Windows10 { version: Version(4, 0) });
        assert_eq!(mk("4.0").client(), Client::Windows10 { version: Version(4, 0) });
        assert_eq!(mk("3.0").client(), Client::Windows10 { version: Version(3, 0) });
        assert_eq!(mk("10").client(), Client::Windows10 { version: Version(4, 0) });
        assert_eq!(mk("2.0").client(), Client::Windows81);
        assert_eq!(mk("garbage").client(), Client::Windows81);
    }

    #[test]
    fn answers_win10_and_win81_with_their_endpoints() {
        let win10 = Discover {
            request_version: Some("4.0".into()),
            auth_policies: vec!["OnPremise".into(), "Federated".into()],
            ..Default::default()
        };
        let r = DiscoverResponse::answer(&win10, &cfg(AuthPolicy::OnPremise)).unwrap();
        assert_eq!(
            r.enrollment_service_url,
            "https://e.example/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc"
        );
        assert_eq!(r.authentication_service_url, None);
        let doc = r.to_element().to_xml();
        let back = xml::parse(&doc).unwrap();
        let res = back.child(ns::DISCOVERY, "DiscoverResult").unwrap();
        assert_eq!(res.child(ns::DISCOVERY, "EnrollmentVersion").unwrap().text(), "4.0");
        assert_eq!(res.child(ns::DISCOVERY, "AuthPolicy").unwrap().text(), "OnPremise");

        let win81 = Discover::default();
        let r = DiscoverResponse::answer(&win81, &cfg(AuthPolicy::Federated)).unwrap();
        assert_eq!(r.enrollment_version, None);
        assert!(r.enrollment_service_url.ends_with("/DeviceEnrollmentWebservice.svc"));
        assert_eq!(r.authentication_service_url.as_deref(), Some("https://e.example/windows-web-agent"));
    }

    #[test]
    fn refuses_when_policy_not_offered() {
        let d = Discover { auth_policies: vec!["Federated".into()], ..Default::default() };
        assert_eq!(
            DiscoverResponse::answer(&d, &cfg(AuthPolicy::OnPremise)),
            Err(DiscoveryError::PolicyNotOffered(AuthPolicy::OnPremise))
        );
    }

    #[test]
    fn refuses_other_bodies() {
        let e = xml::parse(r#"<Discover xmlns="urn:other"><request/></Discover>"#).unwrap();
        assert_eq!(Discover::parse(&e), Err(DiscoveryError::NotADiscover));
    }
}
