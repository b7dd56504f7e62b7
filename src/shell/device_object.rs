//! The device Durable Object: one per device, named by device id. It holds the device record,
//! its management credentials, inventory, the SyncML session state, the command queue and the
//! command history; its rules are [`crate::device::calls`]. Every call's writes are committed
//! together, so a crash between messages loses nothing; the listing and revocation follow
//! after the commit.
//!
//! Storage keys (JSON text): `record`, `credentials`, `mgmt`, `session`, `pending` (queued
//! command ids in order), `cmd_seq`, `cmd:<id>`; configuration profiles: `profiles`
//! ([`ProfileSync`]) and `prof:<profile id>` ([`DeviceProfile`]).

use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::rpc;
use super::storage::{store_error, Batch, JsonStorage};
use crate::calls::StoreError;
use crate::commands::{CommandRecord, Management};
use crate::context::Entropy;
use crate::device::calls::{
    self, DeviceCall, DeviceContext, DeviceEffect, DeviceError, DeviceReply, DeviceStorage, DeviceWrite,
    HistoryLimits,
};
use crate::device::profiles::ProfileSync;
use crate::device::{DeviceRecord, DmCredentials};
use crate::enroll::flow::Issuer;
use crate::issuer::CaCall;
use crate::profiles::catalog::{Catalog, CatalogCall};
use crate::profiles::reconcile::DeviceProfile;
use crate::proto::syncml::session::SessionState;
use worker::*;

pub const BINDING: &str = "DEVICES";

const RECORD: &str = "record";
const CREDENTIALS: &str = "credentials";
const MGMT: &str = "mgmt";
const SESSION: &str = "session";
const PENDING: &str = "pending";
const CMD_SEQ: &str = "cmd_seq";
const CMD: &str = "cmd:";
const PROFILE_SYNC: &str = "profiles";
const PROFILE: &str = "prof:";

#[durable_object]
pub struct DeviceObject {
    state: State,
    env: Env,
}

struct Store(JsonStorage);

impl DeviceStorage for Store {
    async fn record(&self) -> std::result::Result<Option<DeviceRecord>, StoreError> {
        self.0.get(RECORD).await
    }
    async fn credentials(&self) -> std::result::Result<Option<DmCredentials>, StoreError> {
        self.0.get(CREDENTIALS).await
    }
    async fn mgmt(&self) -> std::result::Result<Option<Management>, StoreError> {
        self.0.get(MGMT).await
    }
    async fn session(&self) -> std::result::Result<Option<SessionState>, StoreError> {
        self.0.get(SESSION).await
    }
    async fn pending(&self) -> std::result::Result<Vec<String>, StoreError> {
        Ok(self.0.get(PENDING).await?.unwrap_or_default())
    }
    async fn command_seq(&self) -> std::result::Result<u64, StoreError> {
        Ok(self.0.get(CMD_SEQ).await?.unwrap_or(0))
    }
    async fn command(&self, id: &str) -> std::result::Result<Option<CommandRecord>, StoreError> {
        self.0.get(&format!("{CMD}{id}")).await
    }
    async fn commands(&self) -> std::result::Result<Vec<CommandRecord>, StoreError> {
        Ok(self.0.list(CMD).await?.into_iter().map(|(_, c)| c).collect())
    }
    async fn profile_sync(&self) -> std::result::Result<Option<ProfileSync>, StoreError> {
        self.0.get(PROFILE_SYNC).await
    }
    async fn profile(&self, id: &str) -> std::result::Result<Option<DeviceProfile>, StoreError> {
        self.0.get(&format!("{PROFILE}{id}")).await
    }
}

impl DurableObject for DeviceObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let answer = match rpc::decode::<DeviceCall>(&mut req).await {
            Ok(call) => self.run(call).await,
            Err(e) => Err(e),
        };
        rpc::encode(answer)
    }

    /// The retire grace period ended.
    async fn alarm(&self) -> Result<Response> {
        rpc::encode(self.run(DeviceCall::RetireDeadline).await)
    }
}

impl DeviceObject {
    async fn run(
        &self,
        call: DeviceCall,
    ) -> std::result::Result<std::result::Result<DeviceReply, DeviceError>, StoreError> {
        let store = Store(JsonStorage(self.state.storage()));
        let cfg = super::config(&self.env).map_err(|e| StoreError(e.to_string()))?;
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
        let out = calls::handle(&store, &EdgePorts::new(&self.env), call, ctx).await?;
        let mut batch = Batch::default();
        for w in &out.writes {
            match w {
                DeviceWrite::Record(r) => batch.put(RECORD, r)?,
                DeviceWrite::Credentials(c) => batch.put(CREDENTIALS, c)?,
                DeviceWrite::Mgmt(m) => batch.put(MGMT, m)?,
                DeviceWrite::Session(s) => batch.put(SESSION, s)?,
                DeviceWrite::Pending(p) => batch.put(PENDING, p)?,
                DeviceWrite::CommandSeq(s) => batch.put(CMD_SEQ, s)?,
                DeviceWrite::Command(c) => batch.put(&format!("{CMD}{}", c.id), c)?,
                DeviceWrite::DeleteCommand(id) => batch.delete(&format!("{CMD}{id}")),
                DeviceWrite::ProfileSync(p) => batch.put(PROFILE_SYNC, p)?,
                DeviceWrite::Profile(p) => batch.put(&format!("{PROFILE}{}", p.id), p)?,
                DeviceWrite::DeleteProfile(id) => batch.delete(&format!("{PROFILE}{id}")),
            }
        }
        store.0.commit(batch).await?;
        if let Some(at) = out.alarm {
            let offset = at.saturating_sub(ctx.now_ms) as i64;
            self.state.storage().set_alarm(offset).await.map_err(store_error)?;
        }
        let ports = EdgePorts::new(&self.env);
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
