//! Request bodies read with a size limit: the one place a body is read at the edge.
//!
//! The body is read from its `ReadableStream` one chunk at a time into a
//! [`BoundedBody`](crate::http::BoundedBody), which is asked for room before each chunk is
//! copied out of JavaScript: a body over the limit — declared by `Content-Length`, or a chunked
//! one (no length, RFC 9112 §7.1) that simply goes on — is refused as soon as that is known,
//! the stream is cancelled, and no more than the limit is ever copied into wasm memory (which
//! never shrinks).

use crate::http::BoundedBody;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStreamDefaultReader;

/// What reading a body gave.
pub enum Body {
    /// The whole body, at most the limit (empty when the request has none).
    Read(Vec<u8>),
    /// Over the limit: refused by its `Content-Length` without reading, or once the bytes read
    /// passed it.
    TooLarge,
    /// The stream failed (the client went away mid-body, say).
    Unreadable,
}

/// Reads the body of `req`, at most `limit` bytes.
pub async fn read_limited(req: &web_sys::Request, limit: usize) -> Body {
    let declared = super::header(req, "Content-Length");
    let Ok(mut body) = BoundedBody::new(limit, declared.as_deref()) else {
        return Body::TooLarge;
    };
    let Some(stream) = req.body() else {
        return Body::Read(Vec::new());
    };
    let Ok(reader) = stream.get_reader().dyn_into::<ReadableStreamDefaultReader>() else {
        return Body::Unreadable;
    };
    loop {
        let Ok(result) = JsFuture::from(reader.read()).await else {
            return Body::Unreadable;
        };
        let field =
            |name: &str| Reflect::get(&result, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
        if field("done").as_bool().unwrap_or(true) {
            return Body::Read(body.into_bytes());
        }
        let Ok(chunk) = field("value").dyn_into::<Uint8Array>() else {
            return Body::Unreadable;
        };
        match body.chunk(chunk.length() as usize) {
            Ok(room) => chunk.copy_to(room),
            Err(_) => {
                // Stop the upload at the limit: the runtime need not take in the rest, and the
                // answer does not wait for the cancellation to settle.
                let _ = reader.cancel();
                worker::console_warn!(
                    "request body refused: over {limit} bytes ({} read, next chunk {} bytes)",
                    body.len(),
                    chunk.length()
                );
                return Body::TooLarge;
            }
        }
    }
}
