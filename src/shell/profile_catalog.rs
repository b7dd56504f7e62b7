//! The profile catalogue Durable Object: one instance (named "profiles") for the deployment,
//! the strongly consistent home of configuration profiles, groups and membership; its rules
//! are [`crate::profiles::catalog`].
//!
//! Storage keys (JSON text): `rev` and `seq` (numbers), `profile:<id>` ([`Profile`]),
//! `counts:<id>` ([`Counts`]), `group:<name>` ([`Group`]), `member:<DeviceID>` (the device's
//! group names), `gm:<group>:<DeviceID>` (the member index, `true`), `status:<id>:<DeviceID>`
//! ([`DeviceProfileStatus`], listed in DeviceID order for the per-profile device pages),
//! `mirror:…` (pairs whose fleet index write is to be retried).

use super::rpc;
use super::storage::{store_error, Batch, JsonStorage};
use crate::fleet::{self, Statement};
use crate::object_call::StoreError;
use crate::profiles::catalog::{self, CatalogCall, CatalogStorage, CatalogWrite, Counts, Group};
use crate::profiles::{DeviceProfileStatus, Profile};
use worker::*;

pub const BINDING: &str = "PROFILES";
pub const INSTANCE: &str = "profiles";

const REV: &str = "rev";
const SEQ: &str = "seq";
const PROFILE: &str = "profile:";
const COUNTS: &str = "counts:";
const GROUP: &str = "group:";
const MEMBER: &str = "member:";
const GROUP_MEMBER: &str = "gm:";
const STATUS: &str = "status:";
/// Pairs whose fleet index mirror failed: `mirror:m:<group>:<DeviceID>`,
/// `mirror:s:<profile id>:<DeviceID>`.
const MIRROR: &str = "mirror:";

#[durable_object(alarm)]
pub struct ProfileCatalog {
    state: State,
    env: Env,
    /// The last fleet index mirror started: each waits for the one before, so the index sees
    /// the catalogue's changes in the order they were made (an add, then its removal).
    mirrors: std::cell::RefCell<Option<js_sys::Promise>>,
}

struct Store(JsonStorage);

impl Store {
    /// Keys (minus `prefix`) and values under `prefix`, from `prefix + from` on, at most `limit`.
    async fn range<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
        from: Option<&str>,
        limit: usize,
    ) -> std::result::Result<Vec<(String, T)>, StoreError> {
        let start = format!("{prefix}{}", from.unwrap_or(""));
        self.0.list_range(prefix, ListOptions::new().start(&start).limit(limit)).await
    }
}

impl CatalogStorage for Store {
    async fn rev(&self) -> std::result::Result<u64, StoreError> {
        Ok(self.0.get(REV).await?.unwrap_or(0))
    }
    async fn seq(&self) -> std::result::Result<u64, StoreError> {
        Ok(self.0.get(SEQ).await?.unwrap_or(0))
    }
    async fn profile(&self, id: &str) -> std::result::Result<Option<Profile>, StoreError> {
        self.0.get(&format!("{PROFILE}{id}")).await
    }
    async fn profiles(&self) -> std::result::Result<Vec<Profile>, StoreError> {
        Ok(self.0.list(PROFILE).await?.into_iter().map(|(_, p)| p).collect())
    }
    async fn counts(&self, id: &str) -> std::result::Result<Option<Counts>, StoreError> {
        self.0.get(&format!("{COUNTS}{id}")).await
    }
    async fn group(&self, name: &str) -> std::result::Result<Option<Group>, StoreError> {
        self.0.get(&format!("{GROUP}{name}")).await
    }
    async fn groups(&self) -> std::result::Result<Vec<Group>, StoreError> {
        Ok(self.0.list(GROUP).await?.into_iter().map(|(_, g)| g).collect())
    }
    async fn memberships(&self, device_id: &str) -> std::result::Result<Vec<String>, StoreError> {
        Ok(self.0.get(&format!("{MEMBER}{device_id}")).await?.unwrap_or_default())
    }
    async fn members(&self, group: &str) -> std::result::Result<Vec<String>, StoreError> {
        let prefix = format!("{GROUP_MEMBER}{group}:");
        Ok(self.0.list::<bool>(&prefix).await?.into_iter().map(|(d, _)| d).collect())
    }
    async fn status(
        &self,
        profile: &str,
        device_id: &str,
    ) -> std::result::Result<Option<DeviceProfileStatus>, StoreError> {
        self.0.get(&format!("{STATUS}{profile}:{device_id}")).await
    }
    async fn statuses(
        &self,
        profile: &str,
        from: Option<&str>,
        limit: usize,
    ) -> std::result::Result<Vec<DeviceProfileStatus>, StoreError> {
        let prefix = format!("{STATUS}{profile}:");
        Ok(self.range(&prefix, from, limit).await?.into_iter().map(|(_, s)| s).collect())
    }
}

impl DurableObject for ProfileCatalog {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, mirrors: std::cell::RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<CatalogCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }

    /// Re-mirrors the pairs whose fleet index write failed.
    async fn alarm(&self) -> Result<Response> {
        let storage = JsonStorage(self.state.storage());
        let remembered: Vec<(Pair, u64)> = storage
            .list::<u64>(MIRROR)
            .await?
            .into_iter()
            .filter_map(|(k, at)| Some((Pair::from_key(&k)?, at)))
            .collect();
        if !remembered.is_empty() {
            let (pairs, at): (Vec<Pair>, Vec<u64>) = remembered.into_iter().unzip();
            mirror(storage, self.env.clone(), pairs, Mirror::Retry(at)).await;
        }
        Response::empty()
    }
}

/// A (group, device) membership or a (profile, device) status to mirror into the fleet index.
#[derive(Debug, Clone)]
enum Pair {
    Member(String, String),
    Status(String, String),
}

impl Pair {
    /// Its key under [`MIRROR`] (group names, profile ids and device ids have no `:`).
    fn key(&self) -> String {
        match self {
            Pair::Member(g, d) => format!("{MIRROR}m:{g}:{d}"),
            Pair::Status(p, d) => format!("{MIRROR}s:{p}:{d}"),
        }
    }

    fn from_key(rest: &str) -> Option<Pair> {
        let mut parts = rest.splitn(3, ':');
        match (parts.next()?, parts.next()?, parts.next()?) {
            ("m", g, d) => Some(Pair::Member(g.into(), d.into())),
            ("s", p, d) => Some(Pair::Status(p.into(), d.into())),
            _ => None,
        }
    }

    /// The statement that makes the index say what the catalogue holds now.
    async fn statement(&self, storage: &JsonStorage) -> std::result::Result<Statement, StoreError> {
        Ok(match self {
            Pair::Member(g, d) => {
                let present = storage.get::<bool>(&format!("{GROUP_MEMBER}{g}:{d}")).await?.is_some();
                fleet::member(g, d, present)
            }
            Pair::Status(p, d) => {
                match storage.get::<DeviceProfileStatus>(&format!("{STATUS}{p}:{d}")).await? {
                    Some(s) => fleet::profile_status(p, d, Some(s.status), &s.updated_at),
                    None => fleet::profile_status(p, d, None, ""),
                }
            }
        })
    }
}

/// What a mirror writes.
enum Mirror {
    /// The statements of the call that changed the pairs.
    Fresh(Vec<Statement>),
    /// A retry: what the catalogue holds now, for pairs remembered at these times.
    Retry(Vec<u64>),
}

/// Writes the pairs to the fleet index. On failure it remembers them (with the time) and sets
/// the alarm; a retry that succeeds forgets each pair unless a newer failure remembered it
/// again meanwhile.
async fn mirror(storage: JsonStorage, env: Env, pairs: Vec<Pair>, what: Mirror) {
    let done: std::result::Result<(), StoreError> = async {
        let (statements, remembered) = match what {
            Mirror::Fresh(s) => (s, None),
            Mirror::Retry(at) => {
                let mut s = Vec::new();
                for p in &pairs {
                    s.push(p.statement(&storage).await?);
                }
                (s, Some(at))
            }
        };
        let written = match super::index::Index::open(&env) {
            Ok(index) => index.write(&statements).await,
            Err(e) => Err(e),
        };
        let mut batch = Batch::default();
        match (written, remembered) {
            (Ok(()), Some(at)) => {
                for (p, at) in pairs.iter().zip(at) {
                    if storage.get::<u64>(&p.key()).await? == Some(at) {
                        batch.delete(&p.key());
                    }
                }
                storage.commit(batch).await
            }
            (Ok(()), None) => Ok(()),
            (Err(e), _) => {
                console_error!("fleet index (profile catalogue): {e}; retrying");
                let now = super::platform::now_ms();
                for p in &pairs {
                    batch.put(&p.key(), &now)?;
                }
                storage.commit(batch).await?;
                let retry_ms = super::config(&env).map_or(60, |c| c.index_retry_secs) as i64 * 1000;
                storage.0.set_alarm(retry_ms).await.map_err(store_error)
            }
        }
    }
    .await;
    if let Err(e) = done {
        console_error!("fleet index mirror: {e}");
    }
}

impl ProfileCatalog {
    async fn run(
        &self,
        call: CatalogCall,
    ) -> std::result::Result<std::result::Result<catalog::CatalogReply, catalog::CatalogError>, StoreError>
    {
        let store = Store(JsonStorage(self.state.storage()));
        let out = Box::pin(catalog::handle(&store, call)).await?;
        let mut batch = Batch::default();
        for w in &out.writes {
            match w {
                CatalogWrite::Rev(r) => batch.put(REV, r)?,
                CatalogWrite::Seq(s) => batch.put(SEQ, s)?,
                CatalogWrite::Profile(p) => batch.put(&format!("{PROFILE}{}", p.id), p)?,
                CatalogWrite::DeleteProfile(id) => batch.delete(&format!("{PROFILE}{id}")),
                CatalogWrite::Counts(id, c) => batch.put(&format!("{COUNTS}{id}"), c)?,
                CatalogWrite::DeleteCounts(id) => batch.delete(&format!("{COUNTS}{id}")),
                CatalogWrite::Group(g) => batch.put(&format!("{GROUP}{}", g.name), g)?,
                CatalogWrite::DeleteGroup(n) => batch.delete(&format!("{GROUP}{n}")),
                CatalogWrite::Memberships(d, g) if g.is_empty() => batch.delete(&format!("{MEMBER}{d}")),
                CatalogWrite::Memberships(d, g) => batch.put(&format!("{MEMBER}{d}"), g)?,
                CatalogWrite::Member(g, d) => batch.put(&format!("{GROUP_MEMBER}{g}:{d}"), &true)?,
                CatalogWrite::DeleteMember(g, d) => batch.delete(&format!("{GROUP_MEMBER}{g}:{d}")),
                CatalogWrite::Status(s) => {
                    batch.put(&format!("{STATUS}{}:{}", s.profile_id, s.device_id), s)?
                }
                CatalogWrite::DeleteStatus(p, d) => batch.delete(&format!("{STATUS}{p}:{d}")),
            }
        }
        store.0.commit(batch).await?;
        // Membership and per-device statuses are mirrored into the fleet index, where the
        // device list filters on them, after the reply (the one catalogue instance does not
        // wait on the index). The catalogue is the source of truth: the pairs of a mirror that
        // failed are remembered and re-mirrored from what the catalogue holds then, by the
        // alarm, so a retry can never bring back an older state.
        let (pairs, statements): (Vec<Pair>, Vec<Statement>) = out
            .writes
            .iter()
            .filter_map(|w| match w {
                CatalogWrite::Member(g, d) => {
                    Some((Pair::Member(g.clone(), d.clone()), fleet::member(g, d, true)))
                }
                CatalogWrite::DeleteMember(g, d) => {
                    Some((Pair::Member(g.clone(), d.clone()), fleet::member(g, d, false)))
                }
                CatalogWrite::Status(st) => Some((
                    Pair::Status(st.profile_id.clone(), st.device_id.clone()),
                    fleet::profile_status(&st.profile_id, &st.device_id, Some(st.status), &st.updated_at),
                )),
                CatalogWrite::DeleteStatus(p, d) => {
                    Some((Pair::Status(p.clone(), d.clone()), fleet::profile_status(p, d, None, "")))
                }
                _ => None,
            })
            .unzip();
        if !pairs.is_empty() {
            let (storage, env) = (JsonStorage(self.state.storage()), self.env.clone());
            let before = self.mirrors.borrow_mut().take();
            let this = wasm_bindgen_futures::future_to_promise(async move {
                if let Some(p) = before {
                    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
                }
                mirror(storage, env, pairs, Mirror::Fresh(statements)).await;
                Ok(wasm_bindgen::JsValue::UNDEFINED)
            });
            *self.mirrors.borrow_mut() = Some(this.clone());
            self.state.wait_until(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(this).await;
            });
        }
        Ok(out.reply)
    }
}
