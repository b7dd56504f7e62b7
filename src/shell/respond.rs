//! Responses, and the one mapping from each layer's errors to HTTP. SOAP faults are built by
//! the core (`enroll::service`), SyncML refusals too (`device::checkin`); what is mapped here
//! is the admin API's JSON errors and failures on the server's side.

use crate::device::calls::DeviceError;
use crate::object_call::StoreError;
use crate::profiles::catalog::CatalogError;
use crate::signin::{Page, SECURITY_HEADERS};
use crate::tokens::authority::TokenCallError;
use worker::{EncodeBody, Headers, Response, Result};

/// A response with a fixed body: the runtime sends `Content-Length`, never chunked encoding
/// (the Windows enrollment client needs that).
pub fn fixed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", content_type)?;
    headers.set("Cache-Control", "no-store")?;
    let body = body.into();
    headers.set("Content-Length", &body.len().to_string())?;
    // A null body for an empty one (an empty buffer is sent chunked), and no automatic
    // compression: it would turn the body into a chunked stream.
    let resp = if body.is_empty() { Response::empty()? } else { Response::from_bytes(body)? };
    Ok(resp.with_status(status).with_headers(headers).with_encode_body(EncodeBody::Manual))
}

pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Result<Response> {
    fixed(status, "application/json; charset=utf-8", serde_json::to_vec(value)?)
}

pub fn json_error(status: u16, message: &str) -> Result<Response> {
    json(status, &serde_json::json!({ "error": message }))
}

pub fn no_content() -> Result<Response> {
    fixed(204, "text/plain", Vec::new())
}

/// A sign-in page with its CSP and security headers.
pub fn page(page: Page) -> Result<Response> {
    let mut resp = fixed(page.status, "text/html; charset=utf-8", page.html)?;
    let headers = resp.headers_mut();
    headers.set("Content-Security-Policy", &page.csp)?;
    for (name, value) in SECURITY_HEADERS {
        headers.set(name, value)?;
    }
    Ok(resp)
}

/// A failure on the server's side: logged, and a 500 without details.
pub fn server_error(e: &StoreError) -> Result<Response> {
    worker::console_error!("server error: {e}");
    json_error(500, "the server could not complete the request")
}

/// The admin API's answer to a device object's refusal.
pub fn device_error(e: &DeviceError) -> Result<Response> {
    let status = match e {
        DeviceError::NoSuchDevice | DeviceError::NoSuchCommand => 404,
        DeviceError::NotEnrolled | DeviceError::NotYours => 409,
        DeviceError::QueueFull => 429,
        DeviceError::MalformedSyncMl(_) => 400,
    };
    json_error(status, &e.to_string())
}

/// The admin API's answer to a token authority's refusal.
pub fn token_error(e: &TokenCallError) -> Result<Response> {
    match e {
        TokenCallError::NoSuchToken => json_error(404, "no such enrollment token"),
        TokenCallError::RateLimited { .. } => json_error(429, "too many attempts"),
        TokenCallError::Refused(t) => json_error(401, &t.to_string()),
    }
}

/// The admin API's answer to the profile catalogue's refusal.
pub fn catalog_error(e: &CatalogError) -> Result<Response> {
    let status = match e {
        CatalogError::NoSuchProfile => 404,
        // A profile naming a group that does not exist is a bad request; the group routes
        // map it to 404 themselves.
        CatalogError::NoSuchGroup(_) => 400,
        CatalogError::GroupExists | CatalogError::GroupInUse(_) => 409,
        CatalogError::TooMany(_) => 409,
    };
    json_error(status, &e.to_string())
}

/// A response's body as bytes, read by the runtime: `worker::Response::bytes` pulls a streamed
/// body through wasm chunk by chunk (a reader, a closure per read, a lock to release), and text
/// would be copied into wasm one character at a time by the glue.
pub async fn bytes_of(resp: Response) -> Result<Vec<u8>> {
    let sys: web_sys::Response = resp.into();
    let buffer = wasm_bindgen_futures::JsFuture::from(sys.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
