//! Enrollment and renewal across objects, pure: each flow is one function over narrow traits
//! that the shell implements with Durable Object stubs and KV, and the native tests with the
//! objects' own rules over memory.
//!
//! * Enrollment ([MS-WSTEP] §3.1.4.1, [MS-MDE2] §3.3): credential → CSR check → the token is
//!   spent (token authority) → the certificate is signed (CA) → the device record and its
//!   management credentials are written (device object) → the listing (KV) → the provisioning
//!   document.
//! * Renewal ([MS-MDE2] §3.4, ROBO): the PKCS#7 signer must be the device's current
//!   certificate, for an enrolled device → the CA signs the new key and revokes the old
//!   certificate → the device record → the listing → the renewal document.

use super::provisioning::{provisioning_doc, DocSettings, Secrets};
use super::service::SoapRequest;
use super::EnrollError;
use crate::codec::{decode_base64, encode_base64, hex, hex_upper};
use crate::config::Config;
use crate::context::Entropy;
use crate::device::calls::{DeviceCall, DeviceError, DeviceReply};
use crate::device::{
    lifecycle, valid_device_id, CertRef, DeviceIdentity, DeviceIndexEntry, DeviceRecord, DeviceStatus,
};
use crate::issuer::{CaCall, CaError, CaReply, Issued};
use crate::object_call::StoreError;
use crate::pki::{self, PkiError, Verifier};
use crate::proto::discovery::AuthPolicy;
use crate::proto::discovery::ENROLLMENT_PATH_WIN10;
use crate::proto::provdoc::{RenewalDoc, StoredCert};
use crate::proto::soap::Credential;
use crate::proto::wstep::RequestSecurityToken;
use crate::time::format_timestamp;
use crate::tokens::authority::{precheck, Stage, TokenCall, TokenCallError, TokenReply};
use crate::tokens::RateLimit;
use crate::tokens::{TokenError, MAX_TOKEN_LEN};
use crate::users::{self, Directory, Kdf};

/// Smallest RSA key the policy asks for and the CSR check accepts.
pub const MIN_RSA_BITS: usize = 2048;

/// The token authority object.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait Authority {
    async fn tokens(&self, call: TokenCall) -> Result<Result<TokenReply, TokenCallError>, StoreError>;
}

/// The CA object.
#[allow(async_fn_in_trait)]
pub trait Issuer {
    async fn ca(&self, call: CaCall) -> Result<Result<CaReply, CaError>, StoreError>;
}

/// The device objects, by device id.
#[allow(async_fn_in_trait)]
pub trait Devices {
    async fn device(
        &self,
        device_id: &str,
        call: DeviceCall,
    ) -> Result<Result<DeviceReply, DeviceError>, StoreError>;
}

/// Everything the enrollment services reach; [`Verifier`] checks the signatures of CSRs and
/// renewal requests.
pub trait Ports: Authority + Issuer + Devices + Directory + Kdf + Verifier {}
impl<T: Authority + Issuer + Devices + Directory + Kdf + Verifier> Ports for T {}

fn server(e: StoreError) -> EnrollError {
    EnrollError::Server(e.to_string())
}

/// Who a request's credential authenticates: the user's email, and the enrollment token when
/// the credential was one (to be consumed by the enrollment itself, see [`issue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub email: String,
    pub token: Option<String>,
}

/// Checks the header credential: a UsernameToken against the user directory (OnPremise only,
/// and counted against the same per-email and per-address failure limits as the sign-in
/// page), a DeviceEnrollmentUserToken (login token or admin enrollment token) with the token
/// authority, without spending it: [`Stage::Verify`] checks its signature, expiry and type at
/// the edge only (a policy request, which spends nothing, and an enrollment, which spends the
/// token, and so checks its state, before anything is issued); [`Stage::Check`] also asks the
/// token's object whether it is still good.
pub async fn authenticate<P: Ports>(
    ports: &P,
    cfg: &Config,
    req: &SoapRequest<'_>,
    cred: Option<&Credential>,
    stage: Stage,
) -> Result<Principal, EnrollError> {
    match cred {
        Some(Credential::UsernameToken { username, password }) => {
            // Under Federated the sign-in page is the only place a password is typed.
            if cfg.auth_policy == AuthPolicy::Federated {
                return Err(EnrollError::Authentication("this server accepts enrollment tokens only".into()));
            }
            let email = users::normalize_email(username);
            if !users::valid_email(&email) {
                return Err(EnrollError::Authentication("unknown user or wrong password".into()));
            }
            // Counted before the password is checked and given back on success, as on the
            // sign-in page: guesses sent in parallel cannot all pass a check made before any
            // of them failed.
            let keys = crate::signin::attempt_keys("", &email, req.client);
            let limit =
                RateLimit { max_failures: cfg.login_max_failures, window_secs: cfg.login_window_secs.into() };
            match ports.tokens(TokenCall::Attempt { keys: keys.clone(), limit }).await.map_err(server)? {
                Ok(_) => {}
                Err(TokenCallError::RateLimited { .. }) => {
                    return Err(EnrollError::Authentication(
                        "too many failed sign-ins; try again later".into(),
                    ))
                }
                Err(e) => return Err(EnrollError::Server(format!("token authority refused: {e:?}"))),
            }
            match users::authenticate(ports, &email, password).await.map_err(server)? {
                Some(_) => {
                    ports.tokens(TokenCall::Release { keys }).await.map_err(server)?.ok();
                    Ok(Principal { email, token: None })
                }
                None => Err(EnrollError::Authentication("unknown user or wrong password".into())),
            }
        }
        Some(Credential::UserToken(bytes)) => {
            let token = user_token(bytes)?;
            let email = use_token(ports, &token, stage, None).await?;
            Ok(Principal { email, token: Some(token) })
        }
        Some(Credential::Other { value_type }) => Err(EnrollError::Authentication(format!(
            "security tokens of type {value_type:?} are not accepted"
        ))),
        None => Err(EnrollError::Authentication("the request carries no credential".into())),
    }
}

/// The token string of a DeviceEnrollmentUserToken (Windows base64-encodes the `wresult`).
fn user_token(bytes: &[u8]) -> Result<String, EnrollError> {
    std::str::from_utf8(bytes)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
        .map(str::to_string)
        .ok_or_else(|| EnrollError::Authentication("malformed enrollment token".into()))
}

/// Checks or consumes a token with the token authority; the user's email when it is good.
async fn use_token<P: Ports>(
    ports: &P,
    token: &str,
    stage: Stage,
    device_id: Option<&str>,
) -> Result<String, EnrollError> {
    let refused = |e: TokenError| EnrollError::Authentication(e.to_string());
    precheck(token).map_err(refused)?;
    let call =
        TokenCall::Use { token: token.into(), stage, device_id: device_id.map(Into::into), email: None };
    match ports.tokens(call).await.map_err(server)? {
        Ok(TokenReply::Accepted { sub, .. }) => Ok(sub),
        Ok(other) => Err(EnrollError::Server(format!("token authority answered {other:?}"))),
        Err(TokenCallError::Refused(e)) => Err(refused(e)),
        Err(other) => Err(EnrollError::Server(format!("token authority refused: {other:?}"))),
    }
}

fn ca_error(e: CaError) -> EnrollError {
    match e {
        CaError::NotEligible(m) => EnrollError::NotEligibleToRenew(m),
        CaError::BadRequest(m) => EnrollError::Csr(PkiError::Build(m)),
    }
}

async fn sign<P: Ports>(ports: &P, call: CaCall) -> Result<Issued, EnrollError> {
    match ports.ca(call).await.map_err(server)? {
        Ok(CaReply::Issued(i)) => Ok(i),
        Ok(other) => Err(EnrollError::Server(format!("CA answered {other:?}"))),
        Err(e) => Err(ca_error(e)),
    }
}

fn cert_ref(i: &Issued) -> CertRef {
    CertRef {
        serial: i.serial.clone(),
        thumbprint: i.thumbprint.clone(),
        not_before: format_timestamp(i.not_before * 1000),
        not_after: format_timestamp(i.not_after * 1000),
        renews: i.renews.clone(),
    }
}

fn stored(cert_b64: &str, thumbprint: &str) -> StoredCert {
    StoredCert { thumbprint: thumbprint.to_string(), der: decode_base64(cert_b64).unwrap_or_default() }
}

/// A new enrollment: the provisioning document, or why not. Everything is checked before
/// anything is written.
pub async fn issue<P: Ports>(
    ports: &P,
    cfg: &Config,
    req: &SoapRequest<'_>,
    rst: &RequestSecurityToken,
    csr_der: &[u8],
    principal: &Principal,
    entropy: &mut impl Entropy,
) -> Result<String, EnrollError> {
    let (base_url, now_ms) = (req.base_url, req.now_ms);
    let identity = DeviceIdentity::from_request(rst, hex_upper(&entropy.bytes::<16>()))?;
    let csr = pki::verify_csr(ports, csr_der, MIN_RSA_BITS).await.map_err(EnrollError::Csr)?;
    // DeviceIDs are identifiers, not secrets: an enrolled one belongs to its user. Checked
    // before anything is spent or signed (and again, atomically, by the device object).
    let user = principal.email.as_str();
    if let Ok(DeviceReply::View(v)) =
        ports.device(&identity.device_id, DeviceCall::Record).await.map_err(server)?
    {
        if let Err(e) = lifecycle::enroll(Some(&v.record), Some(user)) {
            return Err(EnrollError::NotAuthorized(e.to_string()));
        }
    }
    // A token is spent (login token: marked used; admin token: one use less) once the request
    // is known to be well-formed, atomically in the token authority, before anything is issued;
    // the enrolling DeviceID is recorded with it and checked against the token's binding.
    if let Some(token) = &principal.token {
        use_token(ports, token, Stage::Consume, Some(&identity.device_id)).await?;
    }
    let issued = sign(
        ports,
        CaCall::Issue {
            device_id: identity.device_id.clone(),
            spki_der_b64: encode_base64(&csr.spki_der),
            validity_days: cfg.cert_validity_days,
        },
    )
    .await?;

    let secrets = Secrets {
        device_secret: hex(&entropy.bytes::<24>()),
        server_secret: hex(&entropy.bytes::<24>()),
        device_nonce: entropy.bytes(),
        server_nonce: entropy.bytes(),
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
        require_message_signing: cfg.message_signing == crate::config::MessageSigning::Require,
    };
    let (doc, credentials) = provisioning_doc(
        req.generation,
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
        enrolled_at: format_timestamp(now_ms),
        renewed_at: None,
        retired_at: None,
    };
    let device_id = record.identity.device_id.clone();
    let hw_dev_id = record.identity.hw_dev_id.clone();
    let entry = DeviceIndexEntry::from(&record);
    let call = DeviceCall::Enroll { record: Box::new(record), credentials };
    match ports.device(&device_id, call).await.map_err(server)? {
        Ok(_) => {}
        Err(DeviceError::NotYours) => {
            // Another user enrolled this DeviceID in the meantime: the certificate just signed
            // is never handed out.
            let _ = ports.ca(CaCall::Revoke { serials: vec![issued.serial.clone()] }).await;
            return Err(EnrollError::NotAuthorized(DeviceError::NotYours.to_string()));
        }
        Err(e) => return Err(EnrollError::Server(format!("device object refused the enrollment: {e}"))),
    }
    ports.put_device(&entry).await.map_err(server)?;
    if let Some(hw) = hw_dev_id.filter(|h| !h.is_empty() && h.len() <= 256) {
        supersede(ports, &hw, &device_id, user).await;
    }
    Ok(doc.to_xml())
}

/// A new DeviceID on known hardware: the same user's older enrollment of that hardware is
/// superseded (another user's is left alone, [`lifecycle::supersede`]). Best effort: the
/// enrollment itself is complete, and a failure here leaves only a stale record behind.
async fn supersede<P: Ports>(ports: &P, hw: &str, device_id: &str, user: &str) {
    if let Ok(Some(old)) = ports.hardware(hw).await {
        if old != device_id {
            let call = DeviceCall::Supersede { user: Some(user.to_string()), by: device_id.to_string() };
            let _ = ports.device(&old, call).await;
        }
    }
    let _ = ports.put_hardware(hw, device_id).await;
}

/// A ROBO renewal: the renewal document, or why not.
pub async fn renew<P: Ports>(
    ports: &P,
    cfg: &Config,
    req: &SoapRequest<'_>,
    rst: &RequestSecurityToken,
    pkcs7: &[u8],
) -> Result<String, EnrollError> {
    let (client_cert, now_ms) = (req.client_cert, req.now_ms);
    let renewal = pki::verify_renewal(ports, pkcs7, MIN_RSA_BITS).await.map_err(|e| match e {
        PkiError::KeyTooSmall(_) | PkiError::UnsupportedAlgorithm(_) => EnrollError::Csr(e),
        other => EnrollError::NotEligibleToRenew(format!("renewal request refused: {other}")),
    })?;
    let signer = pki::inspect_certificate(&renewal.signer_cert_der)
        .map_err(|e| EnrollError::NotEligibleToRenew(e.to_string()))?;
    // Behind Cloudflare mTLS the TLS client certificate must be the one that signed the request.
    if client_cert.is_some_and(|fp| !fp.eq_ignore_ascii_case(&pki::thumbprint(&renewal.signer_cert_der))) {
        return Err(EnrollError::NotEligibleToRenew(
            "the TLS client certificate is not the signing certificate".into(),
        ));
    }
    let device_id = signer.subject_cn.clone().unwrap_or_default();
    if !valid_device_id(&device_id) {
        return Err(EnrollError::NotEligibleToRenew("the signing certificate names no device".into()));
    }
    if rst.context_item("DeviceID").is_some_and(|claimed| claimed != device_id) {
        return Err(EnrollError::NotEligibleToRenew(
            "DeviceID does not match the signing certificate".into(),
        ));
    }
    let record = match ports.device(&device_id, DeviceCall::Record).await.map_err(server)? {
        Ok(DeviceReply::View(v)) => v.record,
        _ => return Err(EnrollError::NotEligibleToRenew("the device is not enrolled".into())),
    };
    // Only the certificate that is current on an enrolled device's record renews: not one it
    // replaced, not a retired or superseded device's.
    lifecycle::renewal(&record, &pki::thumbprint(&renewal.signer_cert_der), &signer.serial_hex)
        .map_err(|e| EnrollError::NotEligibleToRenew(e.to_string()))?;
    let issued = sign(
        ports,
        CaCall::Renew {
            signer_cert_b64: encode_base64(&renewal.signer_cert_der),
            spki_der_b64: encode_base64(&renewal.csr.spki_der),
            validity_days: cfg.cert_validity_days,
        },
    )
    .await?;
    let call = DeviceCall::Renewed {
        certificate: cert_ref(&issued),
        renewed_at: format_timestamp(now_ms),
        previous: signer.serial_hex.clone(),
    };
    let updated = match ports.device(&device_id, call).await.map_err(server)? {
        Ok(DeviceReply::Record(r)) => r,
        _ => {
            // Enrolled again or retired meanwhile: the new certificate is never handed out.
            let _ = ports.ca(CaCall::Revoke { serials: vec![issued.serial.clone()] }).await;
            return Err(EnrollError::NotEligibleToRenew("the device is no longer enrolled".into()));
        }
    };
    // The renewal is committed: the listing follows best effort, and a failure there must not
    // turn a done renewal into a fault (the device would retry with a certificate that is no
    // longer current).
    let _ = ports.put_device(&DeviceIndexEntry::from(updated.as_ref())).await;
    let doc = RenewalDoc {
        root: stored(&issued.ca.cert_b64, &issued.ca.thumbprint),
        client: stored(&issued.cert_b64, &issued.thumbprint),
        store: record.identity.enrollment_type.store(),
        provider_id: cfg.provider_id.clone(),
        generation: req.generation,
    };
    Ok(doc.to_xml())
}

#[cfg(test)]
mod tests;
