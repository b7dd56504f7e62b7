//! The enrollment endpoints as one function: a SOAP request in, a SOAP answer out. Dispatch is
//! on `a:Action` (Microsoft's own samples post policy and enrollment to one URL), and every
//! failure becomes an MS-WSTEP fault here, with a `TraceId` that is also logged. Answers are
//! sent with HTTP 200 whether or not they are faults: the client parses fault bodies and reads
//! the code from them.

use super::flow::{self, Ports, MIN_RSA_BITS};
use super::EnrollError;
use crate::codec::hex;
use crate::config::Config;
use crate::context::Entropy;
use crate::proto::discovery::{Discover, DiscoverResponse, DiscoveryConfig};
use crate::proto::ns;
use crate::proto::provdoc::ClientGeneration;
use crate::proto::soap::{self, Envelope, Fault};
use crate::proto::wstep::{
    RequestSecurityToken, RequestSecurityTokenResponseCollection, RequestType, TokenRequest, WstepError,
};
use crate::proto::xcep::{GetPolicies, GetPoliciesResponse};
use crate::tokens::authority::Stage;
use crate::xml::{El, XmlError};

/// `Content-Type` of every answer.
pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
/// Largest SOAP request accepted. Real requests are 3–8 KB (a CSR plus context items).
pub const MAX_SOAP_BYTES: usize = 64 * 1024;

/// One request to an enrollment endpoint, as the edge read it.
pub struct SoapRequest<'a> {
    /// The body; `None` when it was larger than [`MAX_SOAP_BYTES`] (not read).
    pub body: Option<&'a [u8]>,
    /// Origin put in every URL handed out.
    pub base_url: &'a str,
    /// SHA-1 thumbprint of a TLS client certificate Cloudflare mTLS verified, if any.
    pub client_cert: Option<&'a str>,
    /// The client's address (`CF-Connecting-IP`), for the password-guessing limits.
    pub client: Option<&'a str>,
    /// The client generation, decided once by the service the client called (discovery sends
    /// Windows 8.1 to `DeviceEnrollmentWebservice.svc`).
    pub generation: ClientGeneration,
    pub now_ms: u64,
}

/// The answer, and what to log when it is a fault.
pub struct SoapAnswer {
    pub body: String,
    pub log: Option<String>,
}

/// The response action of each operation, used for its faults too.
fn response_action(request_action: Option<&str>) -> &'static str {
    match request_action {
        Some(ns::ACTION_DISCOVER) => ns::ACTION_DISCOVER_RESPONSE,
        Some(ns::ACTION_GET_POLICIES) => ns::ACTION_GET_POLICIES_RESPONSE,
        _ => ns::ACTION_RSTRC,
    }
}

type Answer = (&'static str, Vec<El>, El);

/// Handles one SOAP request.
pub async fn handle<P: Ports>(
    ports: &P,
    cfg: &Config,
    req: SoapRequest<'_>,
    entropy: &mut impl Entropy,
) -> SoapAnswer {
    let trace = hex(&entropy.bytes::<8>());
    let envelope = match req.body {
        None => Err(EnrollError::TooLarge),
        Some(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| EnrollError::Soap(soap::SoapError::Xml(XmlError::Malformed("not UTF-8".into()))))
            .and_then(|text| soap::parse_envelope(text).map_err(EnrollError::from)),
    };
    let (message_id, action) = match &envelope {
        Ok(e) => (e.header.message_id.clone(), e.header.action.clone()),
        Err(_) => (None, None),
    };
    let result = match envelope {
        Err(e) => Err(e),
        Ok(env) => dispatch(ports, cfg, &req, &env, entropy).await,
    };
    let relates_to = message_id.as_deref();
    match result {
        Ok((action, extra_header, body)) => {
            SoapAnswer { body: soap::response_envelope(action, relates_to, extra_header, body), log: None }
        }
        Err(e) => {
            let fault = Fault::new(e.fault_code(), e.public_reason(), &trace);
            // WSTEP faults carry the Action of the service the client called ([MS-MDE] §3.4.4.1).
            let fault_action = match response_action(action.as_deref()) {
                ns::ACTION_RSTRC => req.generation.wstep_fault_action(),
                other => other,
            };
            SoapAnswer {
                body: fault.to_envelope(fault_action, relates_to),
                log: Some(format!("enrollment fault {trace}: {e}")),
            }
        }
    }
}

async fn dispatch<P: Ports>(
    ports: &P,
    cfg: &Config,
    req: &SoapRequest<'_>,
    env: &Envelope,
    entropy: &mut impl Entropy,
) -> Result<Answer, EnrollError> {
    match env.header.action.as_deref() {
        Some(ns::ACTION_DISCOVER) => {
            let d = Discover::parse(&env.body).map_err(EnrollError::Discovery)?;
            let dcfg = DiscoveryConfig { auth_policy: cfg.auth_policy, base_url: req.base_url.to_string() };
            let answer = DiscoverResponse::answer(&d, &dcfg).map_err(EnrollError::Discovery)?;
            Ok((ns::ACTION_DISCOVER_RESPONSE, Vec::new(), answer.to_element()))
        }
        Some(ns::ACTION_GET_POLICIES) => {
            // The policy is public and the request spends nothing: a token is checked at the edge
            // (signature, expiry, type) and its state where the RST spends it.
            flow::authenticate(ports, cfg, req, env.header.credential.as_ref(), Stage::Verify).await?;
            GetPolicies::parse(&env.body).ok_or(EnrollError::NotAGetPolicies)?;
            let resp = GetPoliciesResponse {
                common_name: cfg.provider_id.clone(),
                validity_period_seconds: u64::from(cfg.cert_validity_days) * 86_400,
                renewal_period_seconds: u64::from(cfg.renew_period_days) * 86_400,
                minimal_key_length: MIN_RSA_BITS as u32,
            };
            Ok((ns::ACTION_GET_POLICIES_RESPONSE, Vec::new(), resp.to_element()))
        }
        Some(ns::ACTION_RST) => {
            let rst = RequestSecurityToken::parse(&env.body)?;
            let doc = match (&rst.request_type, &rst.token) {
                (RequestType::Issue, TokenRequest::Pkcs10(csr)) => {
                    let cred = env.header.credential.as_ref();
                    let principal = flow::authenticate(ports, cfg, req, cred, Stage::Verify).await?;
                    flow::issue(ports, cfg, req, &rst, csr, &principal, entropy).await?
                }
                // ROBO renewal authenticates with the current key (the PKCS#7 signature), not a
                // user credential: header credentials are ignored.
                (RequestType::Renew | RequestType::Recovery, TokenRequest::Pkcs7(p7)) => {
                    flow::renew(ports, cfg, req, &rst, p7).await?
                }
                _ => return Err(EnrollError::Wstep(WstepError::TokenMismatch)),
            };
            let rstrc = RequestSecurityTokenResponseCollection { provisioning_doc: doc };
            let header = vec![RequestSecurityTokenResponseCollection::security_header(req.now_ms)];
            Ok((ns::ACTION_RSTRC, header, rstrc.to_element()))
        }
        other => Err(EnrollError::WrongAction(other.map(str::to_string))),
    }
}
