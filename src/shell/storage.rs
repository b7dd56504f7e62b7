//! Durable Object storage with JSON text values, and one batch of writes per request. Values
//! are stored as strings so that what is written is exactly `serde_json`'s encoding (the
//! structured-clone path would turn maps into JS `Map`s, which `put(entries)` silently
//! ignores).

use crate::object_call::StoreError;
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsValue;
use worker::{ListOptions, Storage};

pub fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Storage failures end a request as the runtime's error (a 500).
impl From<StoreError> for worker::Error {
    fn from(e: StoreError) -> Self {
        worker::Error::RustError(e.0)
    }
}

pub struct JsonStorage(pub Storage);

impl JsonStorage {
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        super::metrics::add(|c| c.rows_read += 1);
        let text: Option<String> = self.0.get(key).await.map_err(store_error)?;
        text.map(|t| {
            crate::codec::from_json(t.as_bytes()).map_err(|e| StoreError(format!("stored {key}: {e}")))
        })
        .transpose()
    }

    /// Every readable value under a prefix, with its key minus the prefix.
    pub async fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.list_range(prefix, ListOptions::new()).await
    }

    /// The readable values under a prefix that `options` selects (a start, an end, a limit),
    /// with their keys minus the prefix.
    pub async fn list_range<'a, T: DeserializeOwned>(
        &self,
        prefix: &'a str,
        options: ListOptions<'a>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let map = self.0.list_with_options(options.prefix(prefix)).await.map_err(store_error)?;
        super::metrics::add(|c| c.rows_read += u64::from(map.size()).max(1));
        let mut out = Vec::new();
        map.for_each(&mut |value, key| {
            let (Some(k), Some(v)) = (key.as_string(), value.as_string()) else {
                return;
            };
            if let Ok(t) = crate::codec::from_json::<T>(v.as_bytes()) {
                out.push((k[prefix.len()..].to_string(), t));
            }
        });
        Ok(out)
    }

    /// Makes the object's alarm ring no later than `at_ms` (Unix milliseconds): an alarm set
    /// for earlier is left alone, since the one alarm serves every reason to wake.
    pub async fn wake_by(&self, at_ms: i64) -> Result<(), StoreError> {
        match self.0.get_alarm().await.map_err(store_error)? {
            Some(set) if set <= at_ms => Ok(()),
            _ => {
                self.0.set_alarm((at_ms - super::platform::now_ms() as i64).max(0)).await.map_err(store_error)
            }
        }
    }

    /// Writes every entry of the batch atomically. `put(entries)` takes at most 128 keys, so
    /// large batches are split, and every `put` and `delete` is issued before any is awaited:
    /// writes with no `await` between them are committed together.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        super::metrics::add(|c| c.rows_written += (batch.puts.len() + batch.deletes.len()) as u64);
        let raw = self.0.as_raw();
        let mut promises = Vec::new();
        for chunk in batch.puts.chunks(128) {
            let obj = js_sys::Object::new();
            for (k, v) in chunk {
                js_sys::Reflect::set(&obj, &k.as_str().into(), &v.as_str().into()).map_err(js_error)?;
            }
            promises.push(raw.put_multiple(obj.into()).map_err(js_error)?);
        }
        for chunk in batch.deletes.chunks(128) {
            let keys: Vec<JsValue> = chunk.iter().map(|k| JsValue::from_str(k)).collect();
            promises.push(raw.delete_multiple(keys).map_err(js_error)?);
        }
        for p in promises {
            wasm_bindgen_futures::JsFuture::from(p).await.map_err(js_error)?;
        }
        Ok(())
    }
}

fn js_error(e: JsValue) -> StoreError {
    StoreError(format!("storage: {e:?}"))
}

/// Writes collected for one atomic commit.
#[derive(Default)]
pub struct Batch {
    puts: Vec<(String, String)>,
    deletes: Vec<String>,
}

impl Batch {
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) -> Result<(), StoreError> {
        self.puts.push((key.to_string(), serde_json::to_string(value).map_err(store_error)?));
        Ok(())
    }

    pub fn delete(&mut self, key: &str) {
        self.deletes.push(key.to_string());
    }
}
