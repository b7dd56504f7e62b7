//! MS-WSTEP: `RequestSecurityToken` and `RequestSecurityTokenResponseCollection`
//! ([MS-WSTEP] §3.1.4.1, [MS-MDE2] §3.4, §2.2.9).

use super::ns;
use crate::codec::{decode_base64, encode_base64};
use crate::xml::{El, Element};
use std::fmt;

/// `wst:RequestType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Issue,
    /// ROBO renewal: the token is a PKCS#7 signed with the current key.
    Renew,
    /// Lost-certificate recovery ([MS-MDE2] §3.6), the same exchange as Renew.
    Recovery,
}

/// The request's `wsse:BinarySecurityToken`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    Pkcs10(Vec<u8>),
    Pkcs7(Vec<u8>),
}

/// `wst:RequestSecurityToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSecurityToken {
    pub request_type: RequestType,
    pub token: TokenRequest,
    /// `ac:AdditionalContext` items in order; names repeat (MAC, IMEI).
    pub context: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WstepError {
    NotAnRst,
    UnsupportedRequestType(String),
    UnsupportedTokenType(String),
    MissingToken,
    TokenNotBase64,
    /// Token and request type disagree (a CSR for Renew, a PKCS#7 for Issue).
    TokenMismatch,
}

impl fmt::Display for WstepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WstepError::NotAnRst => f.write_str("the body is not a RequestSecurityToken"),
            WstepError::UnsupportedRequestType(t) => write!(f, "unsupported RequestType {t:?}"),
            WstepError::UnsupportedTokenType(t) => write!(f, "unsupported token ValueType {t:?}"),
            WstepError::MissingToken => f.write_str("the request carries no BinarySecurityToken"),
            WstepError::TokenNotBase64 => f.write_str("the BinarySecurityToken is not base64"),
            WstepError::TokenMismatch => f.write_str("the token type does not fit the request type"),
        }
    }
}

impl std::error::Error for WstepError {}

impl RequestSecurityToken {
    pub fn parse(body: &Element) -> Result<RequestSecurityToken, WstepError> {
        if !body.is(ns::WST, "RequestSecurityToken") {
            return Err(WstepError::NotAnRst);
        }
        let request_type = match body.child(ns::WST, "RequestType").map(|e| e.text()).as_deref() {
            Some(ns::REQUEST_ISSUE) => RequestType::Issue,
            Some(ns::REQUEST_RENEW) => RequestType::Renew,
            Some(ns::REQUEST_RECOVERY) => RequestType::Recovery,
            other => return Err(WstepError::UnsupportedRequestType(other.unwrap_or_default().to_string())),
        };
        let bst = body.child(ns::WSSE, "BinarySecurityToken").ok_or(WstepError::MissingToken)?;
        let bytes = decode_base64(&bst.text()).filter(|b| !b.is_empty()).ok_or(WstepError::TokenNotBase64)?;
        let token = match bst.attr("ValueType").map(str::trim) {
            Some(ns::VT_PKCS10) => TokenRequest::Pkcs10(bytes),
            Some(ns::VT_PKCS7) | Some(ns::VT_PKCS7_81) => TokenRequest::Pkcs7(bytes),
            other => return Err(WstepError::UnsupportedTokenType(other.unwrap_or_default().to_string())),
        };
        match (request_type, &token) {
            (RequestType::Issue, TokenRequest::Pkcs10(_)) => {}
            (RequestType::Renew | RequestType::Recovery, TokenRequest::Pkcs7(_)) => {}
            _ => return Err(WstepError::TokenMismatch),
        }
        let context = body
            .child(ns::AC, "AdditionalContext")
            .map(|ac| {
                ac.children_named(ns::AC, "ContextItem")
                    .map(|item| {
                        let name = item.attr("Name").unwrap_or_default().trim().to_string();
                        let value = item.child(ns::AC, "Value").map(|v| v.text()).unwrap_or_default();
                        (name, value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(RequestSecurityToken { request_type, token, context })
    }

    /// The first context item of that name (names compared case-insensitively: the docs vary).
    pub fn context_item(&self, name: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// `wst:RequestSecurityTokenResponseCollection` with exactly one response carrying the
/// provisioning document ([MS-WSTEP] §3.1.4.1.3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSecurityTokenResponseCollection {
    /// The `wap-provisioningdoc`, UTF-8; sent base64 on one line.
    pub provisioning_doc: String,
}

impl RequestSecurityTokenResponseCollection {
    pub fn to_element(&self) -> El {
        let bst = El::leaf("BinarySecurityToken", encode_base64(self.provisioning_doc.as_bytes()))
            .attr("xmlns", ns::WSSE)
            .attr("ValueType", ns::VT_PROVISION_DOC)
            .attr("EncodingType", ns::ENCODING_BASE64);
        let rstr = El::new("RequestSecurityTokenResponse")
            .child(El::leaf("TokenType", ns::TOKEN_TYPE_DEVICE))
            .child(El::new("DispositionMessage").attr("xmlns", ns::WSTEP))
            .child(El::new("RequestedSecurityToken").child(bst))
            .child(El::leaf("RequestID", "0").attr("xmlns", ns::WSTEP));
        El::new("RequestSecurityTokenResponseCollection").attr("xmlns", ns::WST).child(rstr)
    }

    /// The `o:Security` header with a five-minute `u:Timestamp` the response carries.
    pub fn security_header(now_ms: u64) -> El {
        El::new("o:Security").attr("s:mustUnderstand", "1").attr("xmlns:o", ns::WSSE).child(
            El::new("u:Timestamp")
                .attr("u:Id", "_0")
                .child(El::leaf("u:Created", super::soap::format_timestamp(now_ms)))
                .child(El::leaf("u:Expires", super::soap::format_timestamp(now_ms + 300_000))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::soap;
    use crate::xml;

    fn rst(doc: &str) -> Result<RequestSecurityToken, WstepError> {
        RequestSecurityToken::parse(&soap::parse_envelope(doc.trim_start()).unwrap().body)
    }

    #[test]
    fn parses_real_device_request() {
        let r = rst(include_str!("testdata/wstep_request_onprem_wp80_10517.xml")).unwrap();
        assert_eq!(r.request_type, RequestType::Issue);
        assert!(matches!(&r.token, TokenRequest::Pkcs10(b) if b.len() == 629));
        assert_eq!(r.context_item("DeviceType"), Some("WindowsPhone"));
        assert_eq!(r.context_item("applicationversion"), Some("8.0.10517.150"));
        assert_eq!(r.context_item("DeviceID"), None);
    }

    #[test]
    fn keeps_every_context_item_of_the_richest_sample() {
        let doc = include_str!("testdata/rst_request_federated_all_context_items.msmde2.xml");
        // Its header token and CSR are placeholders: read the body directly.
        let root = xml::parse(doc.trim_start()).unwrap();
        let body = root.path(&[(ns::SOAP12, "Body"), (ns::WST, "RequestSecurityToken")]).unwrap();
        let ac = body.child(ns::AC, "AdditionalContext").unwrap();
        let n = ac.children_named(ns::AC, "ContextItem").count();
        assert!(n >= 30, "{n}");
        let err = RequestSecurityToken::parse(body).unwrap_err();
        assert!(matches!(err, WstepError::TokenNotBase64), "{err:?}");
    }

    #[test]
    fn renewal_sample_is_a_pkcs7_renew() {
        let doc = include_str!("testdata/rst_request_renew_robo.xml");
        let env = soap::parse_envelope(doc.trim_start()).unwrap();
        let bst = env.body.child(ns::WSSE, "BinarySecurityToken").unwrap();
        assert_eq!(bst.attr("ValueType"), Some(ns::VT_PKCS7));
        let req = env.body.child(ns::WST, "RequestType").unwrap().text();
        assert_eq!(req, ns::REQUEST_RENEW);
    }

    fn synthetic(request_type: &str, value_type: &str, token: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="{}"><s:Body><wst:RequestSecurityToken xmlns:wst="{}" xmlns:wsse="{}" xmlns:ac="{}">
            <wst:RequestType>{request_type}</wst:RequestType>
            <wsse:BinarySecurityToken ValueType="{value_type}">{token}</wsse:BinarySecurityToken>
            <ac:AdditionalContext><ac:ContextItem Name="DeviceID"><ac:Value> ABC </ac:Value></ac:ContextItem>
            <ac:ContextItem Name="MAC"><ac:Value>1</ac:Value></ac:ContextItem><ac:ContextItem Name="MAC"><ac:Value>2</ac:Value></ac:ContextItem>
            </ac:AdditionalContext></wst:RequestSecurityToken></s:Body></s:Envelope>"#,
            ns::SOAP12,
            ns::WST,
            ns::WSSE,
            ns::AC
        )
    }

    #[test]
    fn request_and_token_types() {
        let ok = rst(&synthetic(ns::REQUEST_ISSUE, ns::VT_PKCS10, "AAEC")).unwrap();
        assert_eq!(ok.token, TokenRequest::Pkcs10(vec![0, 1, 2]));
        assert_eq!(ok.context_item("DeviceID"), Some("ABC"));
        assert_eq!(ok.context.iter().filter(|(n, _)| n == "MAC").count(), 2);
        let renew = rst(&synthetic(ns::REQUEST_RENEW, ns::VT_PKCS7_81, "AAEC")).unwrap();
        assert_eq!(renew.request_type, RequestType::Renew);
        assert_eq!(rst(&synthetic(ns::REQUEST_RENEW, ns::VT_PKCS10, "AAEC")), Err(WstepError::TokenMismatch));
        assert!(matches!(
            rst(&synthetic("urn:other", ns::VT_PKCS10, "AAEC")),
            Err(WstepError::UnsupportedRequestType(_))
        ));
        assert!(matches!(
            rst(&synthetic(ns::REQUEST_ISSUE, "x", "AAEC")),
            Err(WstepError::UnsupportedTokenType(_))
        ));
        assert_eq!(rst(&synthetic(ns::REQUEST_ISSUE, ns::VT_PKCS10, "%%%")), Err(WstepError::TokenNotBase64));
        assert_eq!(rst(&synthetic(ns::REQUEST_ISSUE, ns::VT_PKCS10, "")), Err(WstepError::TokenNotBase64));
    }

    #[test]
    fn response_carries_the_document_once() {
        let r = RequestSecurityTokenResponseCollection { provisioning_doc: "<wap-provisioningdoc/>".into() };
        let env = soap::response_envelope(
            ns::ACTION_RSTRC,
            Some("id"),
            vec![RequestSecurityTokenResponseCollection::security_header(0)],
            r.to_element(),
        );
        let root = xml::parse(&env).unwrap();
        let coll =
            root.path(&[(ns::SOAP12, "Body"), (ns::WST, "RequestSecurityTokenResponseCollection")]).unwrap();
        assert_eq!(coll.children_named(ns::WST, "RequestSecurityTokenResponse").count(), 1);
        let bst = coll.descendant(ns::WSSE, "BinarySecurityToken").unwrap();
        assert_eq!(bst.attr("ValueType"), Some(ns::VT_PROVISION_DOC));
        assert_eq!(crate::codec::decode_base64(&bst.text()).unwrap(), b"<wap-provisioningdoc/>");
        let ts = root.descendant(ns::WSU, "Created").unwrap();
        assert_eq!(ts.text(), "1970-01-01T00:00:00.000Z");
    }
}
