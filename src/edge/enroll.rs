//! Discovery, XCEP and WSTEP over HTTP. One entry point dispatches on `a:Action` (Microsoft's
//! own samples post policy and enrollment to one URL); each operation decodes, calls the core,
//! persists through the objects, and encodes. Every failure becomes a fault here, in one place.

use super::{fixed, origin, trace_id};
use crate::config::Config;
use crate::enrollment::{
    self, CertRef, DeviceIdentity, DeviceIndexEntry, DeviceRecord, DeviceStatus, DocSettings, EnrollError, Secrets,
    MAX_SOAP_BYTES,
};
use crate::objects::{self, ca, device, kv, now_ms, random_bytes, tokens::Stage};
use crate::pki::{self, PkiError};
use crate::proto::discovery::{Discover, DiscoverResponse, DiscoveryConfig, ENROLLMENT_PATH_WIN10};
use crate::proto::provdoc::{ClientGeneration, RenewalDoc, StoredCert};
use crate::proto::soap::{self, decode_base64, Credential, Envelope, Fault};
use crate::time::format_timestamp;
use crate::proto::wstep::{RequestSecurityToken, RequestSecurityTokenResponseCollection, RequestType, TokenRequest};
use crate::proto::xcep::{GetPolicies, GetPoliciesResponse};
use crate::proto::ns;
use crate::users;
use worker::*;

const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
const MIN_RSA_BITS: usize = 2048;

/// The response action of each operation, used for its faults too.
fn response_action(request_action: Option<&str>) -> &'static str {
    match request_action {
        Some(ns::ACTION_DISCOVER) => ns::ACTION_DISCOVER_RESPONSE,
        Some(ns::ACTION_GET_POLICIES) => ns::ACTION_GET_POLICIES_RESPONSE,
        _ => ns::ACTION_RSTRC,
    }
}

fn soap_ok(doc: String) -> Result<Response> {
    fixed(200, SOAP_CONTENT_TYPE, doc)
}

pub async fn soap(mut req: Request, env: &Env, cfg: &Config) -> Result<Response> {
    let trace = trace_id();
    // Decided once, by the enrollment service discovery sent the client to.
    let generation = ClientGeneration::from_service_path(&req.path());
    let client_cert = super::mgmt::verified_client_cert(&req);
    let declared_len = req.headers().get("Content-Length")?.and_then(|l| l.parse::<usize>().ok());
    let body = if declared_len.is_some_and(|l| l > MAX_SOAP_BYTES) {
        Err(EnrollError::TooLarge)
    } else {
        let bytes = req.bytes().await?;
        if bytes.len() > MAX_SOAP_BYTES {
            Err(EnrollError::TooLarge)
        } else {
            String::from_utf8(bytes)
                .map_err(|_| EnrollError::Soap(soap::SoapError::Xml(crate::xml::XmlError::Malformed("not UTF-8".into()))))
        }
    };
    let envelope = body.and_then(|text| soap::parse_envelope(&text).map_err(EnrollError::from));
    let (message_id, action) = match &envelope {
        Ok(e) => (e.header.message_id.clone(), e.header.action.clone()),
        Err(_) => (None, None),
    };
    let base_url = cfg.base_url(&origin(&req)?);
    let result = match envelope {
        Err(e) => Err(e),
        Ok(env_) => match env_.header.action.as_deref() {
            Some(ns::ACTION_DISCOVER) => discover(&env_, cfg, &base_url),
            Some(ns::ACTION_GET_POLICIES) => policies(&env_, env, cfg).await,
            Some(ns::ACTION_RST) => {
                let cert = client_cert.as_deref();
                wstep(&env_, env, cfg, &base_url, cert, generation).await
            }
            other => Err(EnrollError::WrongAction(other.map(str::to_string))),
        },
    };
    let relates_to = message_id.as_deref();
    match result {
        Ok((resp_action, extra_header, body)) => {
            soap_ok(soap::response_envelope(resp_action, relates_to, extra_header, body))
        }
        Err(e) => {
            console_log!("enrollment fault {trace}: {e}");
            let fault = Fault::new(e.fault_code(), e.public_reason(), &trace);
            // HTTP 200: the client parses fault bodies and reads the code from them.
            let fault_action = match response_action(action.as_deref()) {
                ns::ACTION_RSTRC => generation.wstep_fault_action(),
                other => other,
            };
            soap_ok(fault.to_envelope(fault_action, relates_to))
        }
    }
}

type SoapAnswer = (&'static str, Vec<crate::xml::El>, crate::xml::El);

fn discover(env_: &Envelope, cfg: &Config, base_url: &str) -> std::result::Result<SoapAnswer, EnrollError> {
    let d = Discover::parse(&env_.body).map_err(EnrollError::Discovery)?;
    let dcfg = DiscoveryConfig { auth_policy: cfg.auth_policy, base_url: base_url.to_string() };
    let answer = DiscoverResponse::answer(&d, &dcfg).map_err(EnrollError::Discovery)?;
    Ok((ns::ACTION_DISCOVER_RESPONSE, Vec::new(), answer.to_element()))
}

async fn policies(env_: &Envelope, env: &Env, cfg: &Config) -> std::result::Result<SoapAnswer, EnrollError> {
    authenticate(env_.header.credential.as_ref(), env).await?;
    GetPolicies::parse(&env_.body).ok_or(EnrollError::NotAGetPolicies)?;
    let resp = GetPoliciesResponse {
        common_name: cfg.provider_id.clone(),
        validity_period_seconds: u64::from(cfg.cert_validity_days) * 86_400,
        renewal_period_seconds: u64::from(cfg.renew_period_days) * 86_400,
        minimal_key_length: MIN_RSA_BITS as u32,
    };
    Ok((ns::ACTION_GET_POLICIES_RESPONSE, Vec::new(), resp.to_element()))
}

/// Who a request's credential authenticates: the user's email, and the enrollment token when
/// the credential was one (to be consumed by the enrollment itself, see [`issue`]).
struct Principal {
    email: String,
    token: Option<String>,
}

/// Checks the header credential: a UsernameToken against the user directory, a
/// DeviceEnrollmentUserToken (login token or admin enrollment token) with the token
/// authority, without spending it.
async fn authenticate(cred: Option<&Credential>, env: &Env) -> std::result::Result<Principal, EnrollError> {
    match cred {
        Some(Credential::UsernameToken { username, password }) => {
            let email = users::normalize_email(username);
            let store = kv::store(env).map_err(server)?;
            let user = if users::valid_email(&email) { kv::get_user(&store, &email).await.map_err(server)? } else { None };
            // Hash even for unknown users, so timing does not tell which emails exist.
            let stored = user.as_ref().map(|u| u.password_hash.as_str()).unwrap_or(users::DUMMY_HASH);
            if super::password::verify(stored, password).await.map_err(server)? && user.is_some() {
                Ok(Principal { email, token: None })
            } else {
                Err(EnrollError::Authentication("unknown user or wrong password".into()))
            }
        }
        Some(Credential::UserToken(bytes)) => {
            let token = user_token(bytes)?;
            let email = spend_token(env, &token, Stage::Check, None).await?;
            Ok(Principal { email, token: Some(token) })
        }
        Some(Credential::Other { value_type }) => {
            Err(EnrollError::Authentication(format!("security tokens of type {value_type:?} are not accepted")))
        }
        None => Err(EnrollError::Authentication("the request carries no credential".into())),
    }
}

/// The token string of a DeviceEnrollmentUserToken (Windows base64-encodes the `wresult`).
fn user_token(bytes: &[u8]) -> std::result::Result<String, EnrollError> {
    std::str::from_utf8(bytes)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= crate::tokens::MAX_TOKEN_LEN)
        .map(str::to_string)
        .ok_or_else(|| EnrollError::Authentication("malformed enrollment token".into()))
}

/// Checks or consumes a token with the token authority; the user's email when it is good.
async fn spend_token(
    env: &Env,
    token: &str,
    stage: Stage,
    device_id: Option<&str>,
) -> std::result::Result<String, EnrollError> {
    match super::tokens::use_token(env, token, stage, device_id, None).await.map_err(server)? {
        Ok(email) => Ok(email),
        Err(e) => Err(EnrollError::Authentication(e.to_string())),
    }
}

fn server(e: Error) -> EnrollError {
    EnrollError::Server(e.to_string())
}

async fn wstep(
    env_: &Envelope,
    env: &Env,
    cfg: &Config,
    base_url: &str,
    client_cert: Option<&str>,
    generation: ClientGeneration,
) -> std::result::Result<SoapAnswer, EnrollError> {
    let rst = RequestSecurityToken::parse(&env_.body)?;
    match (&rst.request_type, &rst.token) {
        (RequestType::Issue, TokenRequest::Pkcs10(csr)) => {
            let principal = authenticate(env_.header.credential.as_ref(), env).await?;
            issue(&rst, csr, &principal, env, cfg, base_url, generation).await
        }
        // ROBO renewal authenticates with the current key (the PKCS#7 signature), not a user
        // credential: header credentials are ignored.
        (RequestType::Renew | RequestType::Recovery, TokenRequest::Pkcs7(p7)) => {
            renew(&rst, p7, env, cfg, client_cert, generation).await
        }
        _ => Err(EnrollError::Wstep(crate::proto::wstep::WstepError::TokenMismatch)),
    }
}

/// The RSTRC carrying a provisioning document, with its timestamped security header.
fn rstrc_answer(provisioning_doc: String) -> SoapAnswer {
    let rstrc = RequestSecurityTokenResponseCollection { provisioning_doc };
    (ns::ACTION_RSTRC, vec![RequestSecurityTokenResponseCollection::security_header(now_ms())], rstrc.to_element())
}

fn csr_error(e: PkiError) -> EnrollError {
    EnrollError::Csr(e)
}

fn issued_error(reply: &objects::Reply) -> EnrollError {
    match reply.json::<ca::CaFailure>() {
        Ok(f) if f.kind == ca::CaFailureKind::NotEligible => EnrollError::NotEligibleToRenew(f.message),
        Ok(f) if f.kind == ca::CaFailureKind::BadRequest => EnrollError::Csr(PkiError::Build(f.message)),
        Ok(f) => EnrollError::Server(f.message),
        Err(_) => EnrollError::Server(format!("CA answered {}", reply.status)),
    }
}

fn cert_ref(i: &ca::Issued) -> CertRef {
    CertRef {
        serial: i.serial.clone(),
        thumbprint: i.thumbprint.clone(),
        not_before: format_timestamp(i.not_before * 1000),
        not_after: format_timestamp(i.not_after * 1000),
    }
}

fn stored(cert_b64: &str, thumbprint: &str) -> StoredCert {
    StoredCert { thumbprint: thumbprint.to_string(), der: decode_base64(cert_b64).unwrap_or_default() }
}

fn random_secret() -> String {
    enrollment::hex(&random_bytes::<24>())
}

async fn issue(
    rst: &RequestSecurityToken,
    csr_der: &[u8],
    principal: &Principal,
    env: &Env,
    cfg: &Config,
    base_url: &str,
    generation: ClientGeneration,
) -> std::result::Result<SoapAnswer, EnrollError> {
    // Everything is checked before anything is written.
    let identity = DeviceIdentity::from_request(rst, enrollment::hex(&random_bytes::<16>()).to_uppercase())?;
    let csr = pki::parse_csr(csr_der, MIN_RSA_BITS).map_err(csr_error)?;
    // A token is spent (login token: marked used; admin token: one use less) once the request
    // is known to be well-formed, atomically in the token authority, before anything is issued;
    // the enrolling DeviceID is recorded with it and checked against the token's binding.
    let user = principal.email.as_str();
    if let Some(token) = &principal.token {
        spend_token(env, token, Stage::Consume, Some(&identity.device_id)).await?;
    }

    let ca_stub = objects::ca_stub(env).map_err(server)?;
    let req = ca::IssueRequest {
        device_id: identity.device_id.clone(),
        spki_der_b64: soap::encode_base64(&csr.spki_der),
        validity_days: cfg.cert_validity_days,
    };
    let reply = objects::call(&ca_stub, Method::Post, "/issue", Some(&req)).await.map_err(server)?;
    if !reply.ok() {
        return Err(issued_error(&reply));
    }
    let issued: ca::Issued = reply.json().map_err(server)?;

    let secrets = Secrets {
        device_secret: random_secret(),
        server_secret: random_secret(),
        device_nonce: random_bytes(),
        server_nonce: random_bytes(),
    };
    let management_url = cfg.management_url(base_url);
    let settings = DocSettings {
        provider_id: &cfg.provider_id,
        org_name: &cfg.org_name,
        management_url: &management_url,
        renew_period_days: cfg.renew_period_days,
        retry_interval_days: cfg.renew_retry_days,
        renew_url: Some(format!("{base_url}{ENROLLMENT_PATH_WIN10}")),
        poll: cfg.poll,
        ssp_hyperlink: cfg.ssp_hyperlink.as_deref(),
        server_root_cert_hash: cfg.server_root_cert_hash.as_deref(),
    };
    let (doc, credentials) = enrollment::provisioning_doc(
        generation,
        &identity,
        Some(user),
        stored(&issued.ca.cert_b64, &issued.ca.thumbprint),
        stored(&issued.cert_b64, &issued.thumbprint),
        &secrets,
        &settings,
    );
    let record = DeviceRecord {
        identity,
        user: Some(user.to_string()),
        certificate: cert_ref(&issued),
        status: DeviceStatus::Enrolled,
        enrolled_at: format_timestamp(now_ms()),
        renewed_at: None,
    };
    let dev = objects::device_stub(env, &record.identity.device_id).map_err(server)?;
    let enrollment = device::Enrollment { record, credentials };
    let reply = objects::call(&dev, Method::Put, "/enrollment", Some(&enrollment)).await.map_err(server)?;
    if !reply.ok() {
        return Err(EnrollError::Server(format!("device object answered {}", reply.status)));
    }
    let store = kv::store(env).map_err(server)?;
    kv::put_device(&store, &DeviceIndexEntry::from(&enrollment.record)).await.map_err(server)?;

    Ok(rstrc_answer(doc.to_xml()))
}

async fn renew(
    rst: &RequestSecurityToken,
    pkcs7: &[u8],
    env: &Env,
    cfg: &Config,
    client_cert: Option<&str>,
    generation: ClientGeneration,
) -> std::result::Result<SoapAnswer, EnrollError> {
    let renewal = pki::parse_renewal(pkcs7, MIN_RSA_BITS).map_err(|e| match e {
        PkiError::KeyTooSmall(_) | PkiError::UnsupportedAlgorithm(_) => EnrollError::Csr(e),
        other => EnrollError::NotEligibleToRenew(format!("renewal request refused: {other}")),
    })?;
    let signer = pki::inspect_certificate(&renewal.signer_cert_der)
        .map_err(|e| EnrollError::NotEligibleToRenew(e.to_string()))?;
    // Behind Cloudflare mTLS the TLS client certificate must be the one that signed the request.
    if client_cert.is_some_and(|fp| !fp.eq_ignore_ascii_case(&pki::thumbprint(&renewal.signer_cert_der))) {
        return Err(EnrollError::NotEligibleToRenew("the TLS client certificate is not the signing certificate".into()));
    }
    let device_id = signer.subject_cn.clone().unwrap_or_default();
    if !enrollment::valid_device_id(&device_id) {
        return Err(EnrollError::NotEligibleToRenew("the signing certificate names no device".into()));
    }
    if let Some(claimed) = rst.context_item("DeviceID") {
        if claimed != device_id {
            return Err(EnrollError::NotEligibleToRenew("DeviceID does not match the signing certificate".into()));
        }
    }
    let dev = objects::device_stub(env, &device_id).map_err(server)?;
    let reply = objects::call::<()>(&dev, Method::Get, "/record", None).await.map_err(server)?;
    if !reply.ok() {
        return Err(EnrollError::NotEligibleToRenew("the device is not enrolled".into()));
    }
    let record: DeviceRecord = reply.json().map_err(server)?;
    if record.status != DeviceStatus::Enrolled {
        return Err(EnrollError::NotEligibleToRenew("the device is no longer enrolled".into()));
    }

    let ca_stub = objects::ca_stub(env).map_err(server)?;
    let req = ca::RenewRequest {
        signer_cert_b64: soap::encode_base64(&renewal.signer_cert_der),
        spki_der_b64: soap::encode_base64(&renewal.csr.spki_der),
        validity_days: cfg.cert_validity_days,
    };
    let reply = objects::call(&ca_stub, Method::Post, "/renew", Some(&req)).await.map_err(server)?;
    if !reply.ok() {
        return Err(issued_error(&reply));
    }
    let issued: ca::Issued = reply.json().map_err(server)?;
    let renewed = device::Renewed { certificate: cert_ref(&issued), renewed_at: format_timestamp(now_ms()) };
    let reply = objects::call(&dev, Method::Post, "/renewed", Some(&renewed)).await.map_err(server)?;
    if !reply.ok() {
        return Err(EnrollError::NotEligibleToRenew("the device is no longer enrolled".into()));
    }
    let updated: DeviceRecord = reply.json().map_err(server)?;
    let store = kv::store(env).map_err(server)?;
    kv::put_device(&store, &DeviceIndexEntry::from(&updated)).await.map_err(server)?;

    let doc = RenewalDoc {
        root: stored(&issued.ca.cert_b64, &issued.ca.thumbprint),
        client: stored(&issued.cert_b64, &issued.thumbprint),
        store: record.identity.enrollment_type.store(),
        provider_id: cfg.provider_id.clone(),
        generation,
    };
    Ok(rstrc_answer(doc.to_xml()))
}
