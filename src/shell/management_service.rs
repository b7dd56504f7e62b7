//! `/ManagementServer/MDM.svc`: OMA-DM SyncML from enrolled devices, handed to the device's
//! Durable Object, which runs the session.

use super::body::{read_limited, Body};
use super::ports::EdgePorts;
use super::respond::{fixed, server_error};
use crate::commands::refusal;
use crate::config::Config;
use crate::config::MessageSigning;
use crate::device::calls::{DeviceCall, DeviceError, DeviceReply};
use crate::device::checkin::{route, MessageSignature, ROUTE_PARAM};
use crate::device::valid_device_id;
use crate::enroll::flow::Devices;
use crate::http::RequestUrl;
use crate::proto::syncml::codes::CODE_INVALID_CREDENTIALS;
use crate::proto::syncml::message::SyncMl;
use crate::proto::syncml::CONTENT_TYPE;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use worker::*;

/// Largest SyncML message accepted; Windows' own MaxMsgSize is far below.
pub const MAX_SYNCML_BYTES: usize = 1024 * 1024;
const TEXT: &str = "text/plain; charset=utf-8";

/// The SHA-1 fingerprint of a TLS client certificate that Cloudflare mTLS verified, if any
/// (`request.cf.tlsClientAuth`; absent in local dev and without mTLS).
pub fn verified_client_cert(req: &web_sys::Request) -> Option<String> {
    let get = |o: &JsValue, k: &str| {
        Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null())
    };
    let cf = get(req.as_ref(), "cf")?;
    let auth = get(&cf, "tlsClientAuth")?;
    let presented = get(&auth, "certPresented")?.as_string()?;
    let verified = get(&auth, "certVerified")?.as_string()?;
    if presented != "1" || verified != "SUCCESS" {
        return None;
    }
    get(&auth, "certFingerprintSHA1")?.as_string().filter(|f| !f.is_empty())
}

/// The message's CMS signature, checked with WebCrypto. Microsoft's pages name the header
/// `MDM-Signature` in one place and `MS-Signature` in another; either is read.
async fn signature(req: &web_sys::Request, body: &[u8]) -> Result<MessageSignature> {
    let header = ["MDM-Signature", "MS-Signature"].iter().find_map(|h| super::header(req, h));
    let Some(b64) = header.filter(|v| !v.is_empty()) else {
        return Ok(MessageSignature::Absent);
    };
    let Some(cms) = crate::codec::decode_base64(&b64).filter(|c| c.len() <= 64 * 1024) else {
        return Ok(MessageSignature::Invalid);
    };
    Ok(match crate::pki::verify_detached(&super::webcrypto::WebCrypto, &cms, body).await {
        Ok(signer) => MessageSignature::Signer { thumbprint: crate::pki::thumbprint(&signer) },
        Err(_) => MessageSignature::Invalid,
    })
}

pub async fn handle(req: web_sys::Request, url: &RequestUrl, env: &Env, cfg: &Config) -> Result<Response> {
    let body = match read_limited(&req, MAX_SYNCML_BYTES).await {
        Body::Read(b) => b,
        Body::TooLarge => return fixed(413, TEXT, "SyncML message too large\n"),
        Body::Unreadable => return fixed(400, TEXT, "unreadable body\n"),
    };
    let server_url = cfg.management_url(&url.origin);
    let msg = match SyncMl::parse_bytes(&body) {
        Ok(m) => m,
        Err(e) => return fixed(400, TEXT, format!("malformed SyncML: {e}\n")),
    };
    let routed = url.param(ROUTE_PARAM);
    let device_id = route(&msg.hdr, routed.as_deref());
    if !valid_device_id(device_id) {
        return fixed(200, CONTENT_TYPE, refusal(&msg, CODE_INVALID_CREDENTIALS, &server_url));
    }
    // The parse above proved the body is UTF-8.
    let signature = match cfg.message_signing {
        MessageSigning::Off => MessageSignature::Absent,
        _ => signature(&req, &body).await?,
    };
    let message = String::from_utf8(body).unwrap_or_default();
    let call = DeviceCall::SyncMl {
        message,
        server_url,
        client_cert: verified_client_cert(&req),
        max_attempts: cfg.max_command_attempts,
        signature,
        signing: cfg.message_signing,
    };
    match EdgePorts::new(env).device(device_id, call).await {
        Ok(Ok(DeviceReply::SyncMl(doc))) => fixed(200, CONTENT_TYPE, doc),
        Ok(Ok(other)) => {
            server_error(&crate::object_call::StoreError(format!("device object answered {other:?}")))
        }
        Ok(Err(DeviceError::MalformedSyncMl(e))) => fixed(400, TEXT, format!("malformed SyncML: {e}\n")),
        Ok(Err(e)) => fixed(400, TEXT, format!("{e}\n")),
        Err(e) => server_error(&e),
    }
}
