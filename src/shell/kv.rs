//! KV: read-mostly data. Key families and value shapes are documented in `kv-schema/`:
//! `user:<email>` → [`UserRecord`]; `device:<device_id>` → [`DeviceIndexEntry`];
//! `hw:<HWDevID>` → the DeviceID last enrolled on that hardware (a JSON string).

use crate::device::DeviceIndexEntry;
use crate::object_call::StoreError;
use crate::users::UserRecord;
use serde::{de::DeserializeOwned, Serialize};
use worker::kv::KvStore;
use worker::Env;

pub const BINDING: &str = "KV";
pub const USER_PREFIX: &str = "user:";
pub const DEVICE_PREFIX: &str = "device:";
pub const HARDWARE_PREFIX: &str = "hw:";

fn kv_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("KV: {e}"))
}

pub struct Kv(KvStore);

impl Kv {
    pub fn open(env: &Env) -> Result<Kv, StoreError> {
        env.kv(BINDING).map(Kv).map_err(kv_error)
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        super::metrics::add(|c| c.kv_reads += 1);
        let text = self.0.get(key).text().await.map_err(kv_error)?;
        text.map(|t| crate::codec::from_json(t.as_bytes()).map_err(kv_error)).transpose()
    }

    async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let text = serde_json::to_string(value).map_err(kv_error)?;
        super::metrics::add(|c| c.kv_writes += 1);
        self.0.put(key, text).map_err(kv_error)?.execute().await.map_err(kv_error)
    }

    /// Every value under a prefix, following list cursors.
    async fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = self.0.list().prefix(prefix.to_string());
            if let Some(c) = cursor.take() {
                q = q.cursor(c);
            }
            super::metrics::add(|c| c.kv_lists += 1);
            let page = q.execute().await.map_err(kv_error)?;
            for key in &page.keys {
                if let Some(v) = self.get::<T>(&key.name).await? {
                    out.push(v);
                }
            }
            if page.list_complete || page.cursor.is_none() {
                return Ok(out);
            }
            cursor = page.cursor;
        }
    }

    pub async fn user(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get(&format!("{USER_PREFIX}{email}")).await
    }

    pub async fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.put(&format!("{USER_PREFIX}{}", user.email), user).await
    }

    pub async fn delete_user(&self, email: &str) -> Result<(), StoreError> {
        super::metrics::add(|c| c.kv_writes += 1);
        self.0.delete(&format!("{USER_PREFIX}{email}")).await.map_err(kv_error)
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.list(USER_PREFIX).await
    }

    pub async fn put_device(&self, entry: &DeviceIndexEntry) -> Result<(), StoreError> {
        self.put(&format!("{DEVICE_PREFIX}{}", entry.device_id), entry).await
    }

    pub async fn hardware(&self, hw_dev_id: &str) -> Result<Option<String>, StoreError> {
        self.get(&format!("{HARDWARE_PREFIX}{hw_dev_id}")).await
    }

    pub async fn put_hardware(&self, hw_dev_id: &str, device_id: &str) -> Result<(), StoreError> {
        self.put(&format!("{HARDWARE_PREFIX}{hw_dev_id}"), &device_id).await
    }

    /// One page of the DeviceIDs listed under `device:`, and the cursor of the next.
    pub async fn device_ids(
        &self,
        cursor: Option<String>,
        limit: u64,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let mut q = self.0.list().prefix(DEVICE_PREFIX.to_string()).limit(limit);
        if let Some(c) = cursor {
            q = q.cursor(c);
        }
        super::metrics::add(|c| c.kv_lists += 1);
        let page = q.execute().await.map_err(kv_error)?;
        let ids = page.keys.iter().map(|k| k.name[DEVICE_PREFIX.len()..].to_string()).collect();
        let next = if page.list_complete { None } else { page.cursor };
        Ok((ids, next))
    }
}
