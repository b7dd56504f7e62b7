//! Typed calls to the Durable Objects, encoded in one place. A call is its core enum as JSON in
//! a `POST` body; the answer is the core's `Result<Reply, Error>` as JSON with status 200, or
//! a storage failure as status 500 with its message. Both sides use these functions only.

use crate::object_call::StoreError;
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsValue;
use worker::{Request, Response, Stub};

use super::storage::store_error;

/// Calls an object and reads its typed answer.
pub async fn call<C: Serialize, R: DeserializeOwned, E: DeserializeOwned>(
    stub: &Stub,
    call: &C,
) -> Result<Result<R, E>, StoreError> {
    let body = serde_json::to_string(call).map_err(store_error)?;
    let answer = Box::pin(call_bytes(stub, body)).await?;
    crate::codec::from_json(&answer).map_err(|e| StoreError(format!("object reply: {e}")))
}

/// The untyped part of [`call`], one copy for every call type (the typed wrapper is all that
/// is generated per object; this keeps the wasm from holding one copy of the fetch per type).
async fn call_bytes(stub: &Stub, body: String) -> Result<Vec<u8>, StoreError> {
    let req = call_request(&body).map_err(|e| store_error(worker::Error::from(e)))?;
    let started = super::platform::now_ms() as f64;
    let resp = stub.fetch_with_request(req).await.map_err(store_error)?;
    let status = resp.status_code();
    // Read by the runtime, as bytes: pulled through wasm chunk by chunk, the reply had been the
    // largest single item of a check-in in the benchmark's V8 profile, and as text it was next
    // (the glue copies a string into wasm one character at a time; bytes are one copy).
    let body = super::respond::bytes_of(resp).await.map_err(store_error)?;
    super::metrics::add(|c| {
        c.do_calls += 1;
        c.do_ms += super::platform::now_ms() as f64 - started;
    });
    if status != 200 {
        return Err(StoreError(format!("object answered {status}: {}", String::from_utf8_lossy(&body))));
    }
    Ok(body)
}

/// The `POST` that carries a call, built with the runtime's own `RequestInit`: worker's would
/// bring its conversion of every `cf` option (image resizing and the like) into the wasm.
fn call_request(body: &str) -> Result<Request, JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(body));
    Ok(web_sys::Request::new_with_str_and_init("https://object/call", &init)?.into())
}

/// Reads a call inside the object.
pub async fn decode<C: DeserializeOwned>(req: &mut Request) -> Result<C, StoreError> {
    let bytes = req.bytes().await.map_err(store_error)?;
    crate::codec::from_json(&bytes).map_err(|e| StoreError(format!("malformed call: {e}")))
}

/// The object's answer to a call: the reply or refusal, or the failure.
pub fn encode<R: Serialize, E: Serialize>(
    answer: Result<Result<R, E>, StoreError>,
) -> worker::Result<Response> {
    match answer {
        Ok(reply) => Response::from_json(&reply),
        Err(e) => {
            worker::console_error!("object call failed: {e}");
            Ok(Response::error(e.0, 500)?)
        }
    }
}
