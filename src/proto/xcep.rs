//! MS-XCEP certificate enrollment policy: `GetPolicies` and `GetPoliciesResponse`
//! ([MS-XCEP] §3.1.4.1, [MS-MDE2] §3.3, §4.2.2).

use super::ns;
use crate::xml::{El, Element};

/// `GetPolicies`: its body is fixed (`client/lastUpdate`, `preferredLanguage`, `requestFilter`,
/// newer clients add TPM details); nothing in it changes the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPolicies;

impl GetPolicies {
    pub fn parse(body: &Element) -> Option<GetPolicies> {
        body.is(ns::XCEP, "GetPolicies").then_some(GetPolicies)
    }
}

/// What the policy says about the certificate the device will request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPoliciesResponse {
    /// `attributes/commonName`: the template name.
    pub common_name: String,
    pub validity_period_seconds: u64,
    pub renewal_period_seconds: u64,
    pub minimal_key_length: u32,
}

/// One entry of `oIDs`.
struct Oid {
    value: &'static str,
    group: u32,
    reference: u32,
    default_name: &'static str,
}

/// SHA-256 as [MS-MDE2] §4.2.2 and Fleet send it (group 4, reference 0); the RSA key algorithm
/// (group 3, reference 1) for `algorithmOIDReference`. SHA-1 CSRs are still accepted.
const OIDS: [Oid; 2] = [
    Oid { value: "2.16.840.1.101.3.4.2.1", group: 4, reference: 0, default_name: "szOID_NIST_sha256" },
    Oid { value: "1.2.840.113549.1.1.1", group: 3, reference: 1, default_name: "szOID_RSA_RSA" },
];

/// `policySchema` ([MS-XCEP], the `Attributes` complex type): version 3 templates.
pub const POLICY_SCHEMA: &str = "3";
/// `revision/majorRevision` and `minorRevision` of our one template ([MS-XCEP], the `Revision`
/// complex type).
pub const TEMPLATE_MAJOR_REVISION: &str = "101";
pub const TEMPLATE_MINOR_REVISION: &str = "0";
/// `oIDReferenceID`s into [`OIDS`]: the policy's own OID, the hash and the key algorithm.
pub const POLICY_OID_REFERENCE: &str = "0";
pub const HASH_ALGORITHM_OID_REFERENCE: &str = "0";
pub const KEY_ALGORITHM_OID_REFERENCE: &str = "1";

impl GetPoliciesResponse {
    /// The body element, in the sequence order XCEP requires.
    pub fn to_element(&self) -> El {
        let private_key_attributes = El::new("privateKeyAttributes")
            .child(El::leaf("minimalKeyLength", self.minimal_key_length.to_string()))
            .child(El::nil("keySpec"))
            .child(El::nil("keyUsageProperty"))
            .child(El::nil("permissions"))
            .child(El::leaf("algorithmOIDReference", KEY_ALGORITHM_OID_REFERENCE))
            .child(
                El::new("cryptoProviders")
                    .child(El::leaf("provider", "Microsoft Platform Crypto Provider"))
                    .child(El::leaf("provider", "Microsoft Software Key Storage Provider")),
            );
        let attributes = El::new("attributes")
            .child(El::leaf("commonName", &self.common_name))
            .child(El::leaf("policySchema", POLICY_SCHEMA))
            .child(
                El::new("certificateValidity")
                    .child(El::leaf("validityPeriodSeconds", self.validity_period_seconds.to_string()))
                    .child(El::leaf("renewalPeriodSeconds", self.renewal_period_seconds.to_string())),
            )
            .child(
                El::new("permission")
                    .child(El::leaf("enroll", "true"))
                    .child(El::leaf("autoEnroll", "false")),
            )
            .child(private_key_attributes)
            .child(
                El::new("revision")
                    .child(El::leaf("majorRevision", TEMPLATE_MAJOR_REVISION))
                    .child(El::leaf("minorRevision", TEMPLATE_MINOR_REVISION)),
            )
            .children(
                [
                    "supersededPolicies",
                    "privateKeyFlags",
                    "subjectNameFlags",
                    "enrollmentFlags",
                    "generalFlags",
                ]
                .map(El::nil),
            )
            .child(El::leaf("hashAlgorithmOIDReference", HASH_ALGORITHM_OID_REFERENCE))
            .children(["rARequirements", "keyArchivalAttributes", "extensions"].map(El::nil));
        let policy = El::new("policy")
            .child(El::leaf("policyOIDReference", POLICY_OID_REFERENCE))
            .child(El::nil("cAs"))
            .child(attributes);
        let response = El::new("response")
            .child(El::new("policyID"))
            .children(["policyFriendlyName", "nextUpdateHours", "policiesNotChanged"].map(El::nil))
            .child(El::new("policies").child(policy));
        let oids = El::new("oIDs").children(OIDS.iter().map(|o| {
            El::new("oID")
                .child(El::leaf("value", o.value))
                .child(El::leaf("group", o.group.to_string()))
                .child(El::leaf("oIDReferenceID", o.reference.to_string()))
                .child(El::leaf("defaultName", o.default_name))
        }));
        El::new("GetPoliciesResponse")
            .attr("xmlns", ns::XCEP)
            .child(response)
            .child(El::nil("cAs"))
            .child(oids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::soap;
    use crate::xml;

    #[test]
    fn parses_sample_requests() {
        let env =
            soap::parse_envelope(include_str!("testdata/getpolicies_request_onpremise.xml").trim_start())
                .unwrap();
        assert_eq!(env.header.action.as_deref(), Some(ns::ACTION_GET_POLICIES));
        assert_eq!(GetPolicies::parse(&env.body), Some(GetPolicies));
        // The federated sample's token is the placeholder `B64EncodedSampleBinarySecurityToken`,
        // which is not base64: the security header is refused, the body still reads.
        let doc = include_str!("testdata/getpolicies_request_federated.xml").trim_start();
        assert!(matches!(soap::parse_envelope(doc), Err(soap::SoapError::InvalidSecurity(_))));
        let body = xml::parse(doc).unwrap();
        let gp = body.path(&[(ns::SOAP12, "Body"), (ns::XCEP, "GetPolicies")]).unwrap();
        assert_eq!(GetPolicies::parse(gp), Some(GetPolicies));
        let other = xml::parse("<GetPolicies/>").unwrap();
        assert_eq!(GetPolicies::parse(&other), None);
    }

    #[test]
    fn response_round_trips_with_references_resolving() {
        let r = GetPoliciesResponse {
            common_name: "edgemdm".into(),
            validity_period_seconds: 31_536_000,
            renewal_period_seconds: 5_184_000,
            minimal_key_length: 2048,
        };
        let env =
            soap::response_envelope(ns::ACTION_GET_POLICIES_RESPONSE, Some("m"), vec![], r.to_element());
        let root = xml::parse(&env).unwrap();
        let gpr = root.path(&[(ns::SOAP12, "Body"), (ns::XCEP, "GetPoliciesResponse")]).unwrap();
        let order: Vec<_> = gpr.elements().map(|e| e.name.as_str()).collect();
        assert_eq!(order, ["response", "cAs", "oIDs"]);
        let attrs = gpr
            .path(&[
                (ns::XCEP, "response"),
                (ns::XCEP, "policies"),
                (ns::XCEP, "policy"),
                (ns::XCEP, "attributes"),
            ])
            .unwrap();
        assert_eq!(attrs.child(ns::XCEP, "policySchema").unwrap().text(), "3");
        let key_len =
            attrs.path(&[(ns::XCEP, "privateKeyAttributes"), (ns::XCEP, "minimalKeyLength")]).unwrap();
        assert_eq!(key_len.text(), "2048");
        let validity = attrs.child(ns::XCEP, "certificateValidity").unwrap();
        assert_eq!(validity.child(ns::XCEP, "renewalPeriodSeconds").unwrap().text(), "5184000");
        // Every reference names an oID that exists.
        let hash_ref = attrs.child(ns::XCEP, "hashAlgorithmOIDReference").unwrap().text();
        let oid = gpr
            .child(ns::XCEP, "oIDs")
            .unwrap()
            .children_named(ns::XCEP, "oID")
            .find(|o| o.child(ns::XCEP, "oIDReferenceID").unwrap().text() == hash_ref)
            .unwrap();
        assert_eq!(oid.child(ns::XCEP, "value").unwrap().text(), "2.16.840.1.101.3.4.2.1");
        let nil = attrs.child(ns::XCEP, "extensions").unwrap();
        assert_eq!(nil.attr_ns(ns::XSI, "nil"), Some("true"));
    }
}
