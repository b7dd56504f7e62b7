//! The Worker's storage: the Durable Objects and KV. The only code that touches storage.

pub mod ca;
pub mod device;
pub mod kv;
pub mod tokens;

use serde::{de::DeserializeOwned, Serialize};
use worker::*;

pub fn now_ms() -> u64 {
    Date::now().as_millis()
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Random bytes from the platform's CSPRNG (`crypto.getRandomValues`).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("crypto.getRandomValues is available in Workers");
    b
}

pub fn storage_error(msg: &str) -> Error {
    Error::RustError(msg.to_string())
}

/// Durable Object storage with JSON text values. Values are stored as strings so that what is
/// written is exactly `serde_json`'s encoding (the structured-clone path would turn maps into
/// JS `Map`s, which `put(entries)` silently ignores).
pub struct JsonStorage(pub Storage);

impl JsonStorage {
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let text: Option<String> = self.0.get(key).await?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| storage_error(&format!("stored {key}: {e}"))))
            .transpose()
    }

    /// Writes every entry of the batch atomically. `put(entries)` takes at most 128 keys, so
    /// large batches are split, and every `put` is issued before any is awaited: writes with
    /// no `await` between them are committed together.
    pub async fn commit(&self, batch: Batch) -> Result<()> {
        let mut promises = Vec::new();
        for chunk in batch.0.chunks(128) {
            let obj = js_sys::Object::new();
            for (k, v) in chunk {
                js_sys::Reflect::set(&obj, &k.as_str().into(), &v.as_str().into())?;
            }
            promises.push(self.0.as_raw().put_multiple(obj.into())?);
        }
        for p in promises {
            wasm_bindgen_futures::JsFuture::from(p).await?;
        }
        Ok(())
    }

    pub async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let mut b = Batch::default();
        b.put(key, value)?;
        self.commit(b).await
    }
}

/// Writes collected for one atomic commit.
#[derive(Default)]
pub struct Batch(Vec<(String, String)>);

impl Batch {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Batch {
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        self.0.push((key.to_string(), serde_json::to_string(value)?));
        Ok(())
    }
}

/// The answer of a Durable Object call: its status and body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| storage_error(&format!("object reply: {e}")))
    }
}

/// Calls a Durable Object with an optional JSON body. Paths are internal (`https://do/...`).
pub async fn call<B: Serialize>(stub: &Stub, method: Method, path: &str, body: Option<&B>) -> Result<Reply> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(b) = body {
        init.with_body(Some(serde_json::to_string(b)?.into()));
        let h = Headers::new();
        h.set("Content-Type", "application/json")?;
        init.with_headers(h);
    }
    let req = Request::new_with_init(&format!("https://do{path}"), &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    let status = resp.status_code();
    let body = resp.text().await?;
    Ok(Reply { status, body })
}

pub fn ca_stub(env: &Env) -> Result<Stub> {
    env.durable_object(ca::BINDING)?.get_by_name(ca::INSTANCE)
}

pub fn device_stub(env: &Env, device_id: &str) -> Result<Stub> {
    env.durable_object(device::BINDING)?.get_by_name(device_id)
}
