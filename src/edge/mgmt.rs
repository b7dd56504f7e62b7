//! `/ManagementServer/MDM.svc`: OMA-DM SyncML from enrolled devices, handed to the device's
//! Durable Object, which runs the session.

use super::{fixed, origin};
use crate::config::Config;
use crate::enrollment::valid_device_id;
use crate::objects::{self, device};
use crate::proto::syncml::message::SyncMl;
use crate::proto::syncml::CONTENT_TYPE;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use worker::*;

/// Largest SyncML message accepted; Windows' own MaxMsgSize is far below.
const MAX_SYNCML_BYTES: usize = 1024 * 1024;

/// The SHA-1 fingerprint of a TLS client certificate that Cloudflare mTLS verified, if any
/// (`request.cf.tlsClientAuth`; absent in local dev and without mTLS).
pub fn verified_client_cert(req: &Request) -> Option<String> {
    let get = |o: &JsValue, k: &str| Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null());
    let cf = get(req.inner().as_ref(), "cf")?;
    let auth = get(&cf, "tlsClientAuth")?;
    let presented = get(&auth, "certPresented")?.as_string()?;
    let verified = get(&auth, "certVerified")?.as_string()?;
    if presented != "1" || verified != "SUCCESS" {
        return None;
    }
    get(&auth, "certFingerprintSHA1")?.as_string().filter(|f| !f.is_empty())
}

pub async fn handle(mut req: Request, env: &Env, cfg: &Config) -> Result<Response> {
    let declared = req.headers().get("Content-Length")?.and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_SYNCML_BYTES) {
        return fixed(413, "text/plain; charset=utf-8", "SyncML message too large\n");
    }
    let body = req.bytes().await?;
    if body.len() > MAX_SYNCML_BYTES {
        return fixed(413, "text/plain; charset=utf-8", "SyncML message too large\n");
    }
    let server_url = cfg.management_url(&origin(&req)?);
    let msg = match SyncMl::parse_bytes(&body) {
        Ok(m) => m,
        Err(e) => return fixed(400, "text/plain; charset=utf-8", format!("malformed SyncML: {e}\n")),
    };
    let device_id = msg.hdr.source.loc_uri.trim();
    if !valid_device_id(device_id) {
        return fixed(200, CONTENT_TYPE, crate::management::refusal(&msg, 401, &server_url));
    }
    let stub = objects::device_stub(env, device_id)?;
    let headers = Headers::new();
    headers.set("Content-Type", CONTENT_TYPE)?;
    headers.set(device::HDR_SERVER_URL, &server_url)?;
    headers.set(device::HDR_MAX_ATTEMPTS, &cfg.max_command_attempts.to_string())?;
    if let Some(fp) = verified_client_cert(&req) {
        headers.set(device::HDR_CLIENT_CERT, &fp)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    let mut resp = stub.fetch_with_request(Request::new_with_init("https://do/syncml", &init)?).await?;
    let status = resp.status_code();
    let text = resp.bytes().await?;
    let content_type = if status == 200 { CONTENT_TYPE } else { "text/plain; charset=utf-8" };
    fixed(status, content_type, text)
}
