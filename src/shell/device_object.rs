//! The device Durable Object: one per device, named by device id. It holds the device record,
//! its management credentials, inventory, the SyncML session state, the command queue and the
//! command history; its rules are [`crate::device::calls`]. Every call's writes are committed
//! together, so a crash between messages loses nothing; the listing and revocation follow
//! after the commit.
//!
//! Storage keys (JSON text): `state` (a [`DeviceRow`]: the record, credentials, management
//! state, session, the queue of command ids in order, the command sequence and the profile
//! catalogue sync state — what changes together, so an idle check-in writes one row),
//! `cmd:<id>` (a [`CommandRecord`]) and `prof:<profile id>` (a [`DeviceProfile`]).

use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::rpc;
use super::storage::{store_error, Batch, JsonStorage};
use crate::commands::{CommandRecord, Management};
use crate::context::Entropy;
use crate::device::calls::{
    self, CommandRow, DeviceCall, DeviceContext, DeviceEffect, DeviceError, DeviceReply, DeviceRow,
    DeviceStorage, HistoryLimits,
};
use crate::device::profile_state::ProfileSync;
use crate::device::{DeviceRecord, DmCredentials};
use crate::enroll::flow::Issuer;
use crate::fleet::{self, IndexRow, IndexWrite};
use crate::issuer::CaCall;
use crate::object_call::StoreError;
use crate::profiles::catalog::{Catalog, CatalogCall};
use crate::profiles::reconcile::DeviceProfile;
use crate::proto::syncml::session::SessionState;
use std::cell::{Cell, RefCell};
use worker::*;

pub const BINDING: &str = "DEVICES";

/// The device's state, one row ([`DeviceRow`]).
const STATE: &str = "state";
const CMD: &str = "cmd:";
const PROFILE: &str = "prof:";
/// The keys the state lived under before it was one row; read once, deleted at the next write.
const LEGACY: [&str; 6] = ["record", "credentials", "mgmt", "session", "pending", "cmd_seq"];

#[durable_object(alarm)]
pub struct DeviceObject {
    state: State,
    env: Env,
}

/// The object's storage for one call: the state row read once, commands by key.
struct Store {
    storage: JsonStorage,
    row: RefCell<Option<DeviceRow>>,
    legacy: Cell<bool>,
}

impl Store {
    /// One field of the row, read from storage on first use.
    async fn field<T>(&self, f: impl FnOnce(&DeviceRow) -> T) -> std::result::Result<T, StoreError> {
        if self.row.borrow().is_none() {
            self.row().await?;
        }
        Ok(f(self.row.borrow().as_ref().expect("loaded above")))
    }

    async fn row(&self) -> std::result::Result<DeviceRow, StoreError> {
        if let Some(r) = self.row.borrow().as_ref() {
            return Ok(r.clone());
        }
        let row = match self.storage.get::<DeviceRow>(STATE).await? {
            Some(r) => r,
            // A device stored before the state was one row: read its keys once. A new device
            // has neither, and costs one read more.
            None => match self.storage.get::<DeviceRecord>(LEGACY[0]).await? {
                None => DeviceRow::default(),
                Some(record) => {
                    let s = &self.storage;
                    let row = DeviceRow {
                        record: Some(record),
                        credentials: s.get(LEGACY[1]).await?,
                        mgmt: s.get(LEGACY[2]).await?,
                        session: s.get(LEGACY[3]).await?,
                        pending: s.get(LEGACY[4]).await?.unwrap_or_default(),
                        cmd_seq: s.get(LEGACY[5]).await?.unwrap_or(0),
                        profile_sync: None,
                        index: None,
                    };
                    self.legacy.set(true);
                    row
                }
            },
        };
        *self.row.borrow_mut() = Some(row.clone());
        Ok(row)
    }
}

impl DeviceStorage for Store {
    async fn record(&self) -> std::result::Result<Option<DeviceRecord>, StoreError> {
        self.field(|r| r.record.clone()).await
    }
    async fn credentials(&self) -> std::result::Result<Option<DmCredentials>, StoreError> {
        self.field(|r| r.credentials.clone()).await
    }
    async fn mgmt(&self) -> std::result::Result<Option<Management>, StoreError> {
        self.field(|r| r.mgmt.clone()).await
    }
    async fn session(&self) -> std::result::Result<Option<SessionState>, StoreError> {
        self.field(|r| r.session.clone()).await
    }
    async fn pending(&self) -> std::result::Result<Vec<String>, StoreError> {
        self.field(|r| r.pending.clone()).await
    }
    async fn command_seq(&self) -> std::result::Result<u64, StoreError> {
        self.field(|r| r.cmd_seq).await
    }
    async fn command(&self, id: &str) -> std::result::Result<Option<CommandRecord>, StoreError> {
        self.storage.get(&format!("{CMD}{id}")).await
    }
    async fn commands(&self) -> std::result::Result<Vec<CommandRecord>, StoreError> {
        Ok(self.storage.list(CMD).await?.into_iter().map(|(_, c)| c).collect())
    }
    async fn profile_sync(&self) -> std::result::Result<Option<ProfileSync>, StoreError> {
        self.field(|r| r.profile_sync.clone()).await
    }
    async fn profile(&self, id: &str) -> std::result::Result<Option<DeviceProfile>, StoreError> {
        self.storage.get(&format!("{PROFILE}{id}")).await
    }
}

impl DurableObject for DeviceObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<DeviceCall>(&mut req).await {
            Ok(call) => self.serialized(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }

    /// The retire grace period ended, or a fleet index write is to be retried.
    async fn alarm(&self) -> Result<Response> {
        let answer = self.serialized(DeviceCall::RetireDeadline).await;
        let storage = JsonStorage(self.state.storage());
        if storage.get::<u64>(INDEX_RETRY).await?.is_some() {
            if let Some(row) = storage.get::<DeviceRow>(STATE).await? {
                // The stored row is the newest state: a version of now covers every failed one.
                index_device(storage, self.env.clone(), row, IndexWrite::Row, now_ms()).await;
            }
        }
        rpc::encode(answer)
    }
}

type Answer = std::result::Result<std::result::Result<DeviceReply, DeviceError>, StoreError>;

/// The version of the newest fleet index write that failed; the alarm retries it.
const INDEX_RETRY: &str = "index_retry";

/// Writes the device's row to the fleet index. The index is a view: a failure never fails the
/// device's call. It is remembered (`index_retry`) and retried by the alarm, and the next
/// index-worthy change writes the whole row again anyway.
/// `version`: when the row was committed (calls run one at a time, so later rows have later
/// versions and an older write that lands late changes nothing).
async fn index_device(storage: JsonStorage, env: Env, row: DeviceRow, write: IndexWrite, version: u64) {
    let Some(record) = row.record.as_ref() else {
        return;
    };
    let entry = IndexRow::of(record, row.mgmt.as_ref());
    let written = match EdgePorts::new(&env).index() {
        Ok(index) => index.write(&[write.statement(&entry, version)]).await,
        Err(e) => Err(e),
    };
    // The flag holds the version of the newest write that failed: an older write that
    // succeeds later does not clear it.
    let retry: std::result::Result<(), StoreError> = async {
        let pending = storage.get::<u64>(INDEX_RETRY).await?;
        match &written {
            Ok(()) if pending.is_some_and(|failed| failed <= version) => {
                let mut batch = Batch::default();
                batch.delete(INDEX_RETRY);
                storage.commit(batch).await
            }
            Ok(()) => Ok(()),
            Err(e) => {
                console_error!("fleet index: device {}: {e}; retrying", entry.device_id);
                if pending.is_none_or(|failed| failed < version) {
                    let mut batch = Batch::default();
                    batch.put(INDEX_RETRY, &version)?;
                    storage.commit(batch).await?;
                }
                // The retire deadline's alarm, when set, retries on its way.
                let retry_ms = super::config(&env).map_or(60, |c| c.index_retry_secs) as i64 * 1000;
                storage.wake_by(now_ms() as i64 + retry_ms).await
            }
        }
    }
    .await;
    if let Err(e) = retry {
        console_error!("fleet index retry: {e}");
    }
}

impl DeviceObject {
    /// One call at a time, from its first read to its last effect. The input gate holds other
    /// requests back only while storage is awaited; a check-in also awaits the profile
    /// catalogue, and a call that ran in between would be overwritten by this one's commit
    /// (a retire lost, a re-enrollment undone, a replayed message accepted twice).
    async fn serialized(&self, call: DeviceCall) -> Answer {
        let (storage, env) = (self.state.storage(), self.env.clone());
        let (answer, index) = self
            .state
            .block_concurrency_while(async move { Ok(run(storage, env, call).await) })
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        // After the reply: a slow or unavailable index never holds up the device.
        if let Some((row, write, version)) = index {
            let (storage, env) = (JsonStorage(self.state.storage()), self.env.clone());
            self.state.wait_until(index_device(storage, env, row, write, version));
        }
        answer
    }
}

/// The committed state the fleet index is behind, what to write of it, and its version.
type Reindex = (DeviceRow, IndexWrite, u64);

/// The call's answer, and the committed state when the fleet index is behind it.
async fn run(storage: Storage, env: Env, call: DeviceCall) -> (Answer, Option<Reindex>) {
    let mut index = None;
    let answer = run_call(storage, env, call, &mut index).await;
    (answer, index)
}

async fn run_call(storage: Storage, env: Env, call: DeviceCall, index: &mut Option<Reindex>) -> Answer {
    {
        let store =
            Store { storage: JsonStorage(storage), row: RefCell::new(None), legacy: Cell::new(false) };
        let cfg = super::config(&env).map_err(|e| StoreError(e.to_string()))?;
        let ctx = DeviceContext {
            now_ms: now_ms(),
            fresh_nonce: Csprng.bytes(),
            history: HistoryLimits {
                max_count: cfg.command_history_max as usize,
                max_age_secs: u64::from(cfg.command_history_days) * 86_400,
            },
            retire_grace_secs: cfg.retire_grace_secs.into(),
            profile_verify_interval_secs: cfg.profile_verify_interval_secs.into(),
        };
        let ports = EdgePorts::new(&env);
        let out = Box::pin(calls::handle(&store, &ports, call, ctx)).await?;
        let mut row = store.row().await?;
        let (mut changed, commands) = row.apply(out.writes);
        // The index mark rides in the state row, written with the call's other writes.
        let behind = row.record.as_ref().and_then(|r| {
            let entry = IndexRow::of(r, row.mgmt.as_ref());
            fleet::index_update(&entry, row.index.as_ref(), cfg.index_checkin_granularity_secs.into())
        });
        let mut reindex = None;
        if let Some((write, mark)) = behind {
            row.index = Some(mark);
            changed = true;
            reindex = Some((row.clone(), write, ctx.now_ms));
        }
        let mut batch = Batch::default();
        if changed || store.legacy.get() {
            batch.put(STATE, &row)?;
        }
        if store.legacy.get() {
            for k in LEGACY {
                batch.delete(k);
            }
        }
        for c in commands {
            match c {
                CommandRow::Put(c) => batch.put(&format!("{CMD}{}", c.id), &c)?,
                CommandRow::Delete(id) => batch.delete(&format!("{CMD}{id}")),
                CommandRow::PutProfile(p) => batch.put(&format!("{PROFILE}{}", p.id), &p)?,
                CommandRow::DeleteProfile(id) => batch.delete(&format!("{PROFILE}{id}")),
            }
        }
        store.storage.commit(batch).await?;
        *index = reindex;
        if let Some(at) = out.alarm {
            let offset = at.saturating_sub(ctx.now_ms) as i64;
            store.storage.0.set_alarm(offset).await.map_err(store_error)?;
        }
        let ports = EdgePorts::new(&env);
        for effect in out.effects {
            match effect {
                DeviceEffect::Index(entry) => ports.kv()?.put_device(&entry).await?,
                DeviceEffect::Revoke { serials } => {
                    ports.ca(CaCall::Revoke { serials }).await?.map_err(|e| StoreError(e.to_string()))?;
                }
                // The catalogue's counts are a view of what the devices hold: a lost report
                // must not fail the device's session (the next status change reports again).
                DeviceEffect::ProfileReport { device_id, statuses, removed } => {
                    let call = CatalogCall::Report { device_id, statuses, removed };
                    if let Err(e) = ports.catalog(call).await {
                        console_error!("profile report: {e}");
                    }
                }
            }
        }
        Ok(out.reply)
    }
}
