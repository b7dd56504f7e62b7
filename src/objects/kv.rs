//! KV: read-mostly data. Key families and value shapes are documented in `kv-schema/`.
//! `user:<email>` → UserRecord; `device:<device_id>` → DeviceIndexEntry.

use crate::enrollment::DeviceIndexEntry;
use crate::users::UserRecord;
use serde::{de::DeserializeOwned, Serialize};
use worker::kv::KvStore;
use worker::*;

pub const BINDING: &str = "KV";
pub const USER_PREFIX: &str = "user:";
pub const DEVICE_PREFIX: &str = "device:";

fn kv_error(e: worker::kv::KvError) -> Error {
    Error::RustError(format!("KV: {e}"))
}

pub fn store(env: &Env) -> Result<KvStore> {
    env.kv(BINDING)
}

async fn get<T: DeserializeOwned>(kv: &KvStore, key: &str) -> Result<Option<T>> {
    kv.get(key).json::<T>().await.map_err(kv_error)
}

async fn put<T: Serialize>(kv: &KvStore, key: &str, value: &T) -> Result<()> {
    kv.put(key, serde_json::to_string(value)?).map_err(kv_error)?.execute().await.map_err(kv_error)
}

/// Every value under a prefix, following list cursors.
async fn list<T: DeserializeOwned>(kv: &KvStore, prefix: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = kv.list().prefix(prefix.to_string());
        if let Some(c) = cursor.take() {
            q = q.cursor(c);
        }
        let page = q.execute().await.map_err(kv_error)?;
        for key in &page.keys {
            if let Some(v) = get::<T>(kv, &key.name).await? {
                out.push(v);
            }
        }
        if page.list_complete || page.cursor.is_none() {
            return Ok(out);
        }
        cursor = page.cursor;
    }
}

pub async fn get_user(kv: &KvStore, email: &str) -> Result<Option<UserRecord>> {
    get(kv, &format!("{USER_PREFIX}{email}")).await
}

pub async fn put_user(kv: &KvStore, user: &UserRecord) -> Result<()> {
    put(kv, &format!("{USER_PREFIX}{}", user.email), user).await
}

pub async fn delete_user(kv: &KvStore, email: &str) -> Result<()> {
    kv.delete(&format!("{USER_PREFIX}{email}")).await.map_err(kv_error)
}

pub async fn list_users(kv: &KvStore) -> Result<Vec<UserRecord>> {
    list(kv, USER_PREFIX).await
}

pub async fn put_device(kv: &KvStore, entry: &DeviceIndexEntry) -> Result<()> {
    put(kv, &format!("{DEVICE_PREFIX}{}", entry.device_id), entry).await
}

pub async fn list_devices(kv: &KvStore) -> Result<Vec<DeviceIndexEntry>> {
    list(kv, DEVICE_PREFIX).await
}
