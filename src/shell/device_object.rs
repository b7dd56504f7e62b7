//! The device Durable Object: one per device, named by device id. It holds the device record,
//! its management credentials, inventory, the SyncML session state, the command queue and the
//! command history; its rules are [`crate::device::calls`]. Every call's writes are committed
//! together, so a crash between messages loses nothing; the listing and revocation follow
//! after the commit.
//!
//! Storage keys (JSON text): `record`, `credentials`, `mgmt`, `session`, `pending` (queued
//! command ids in order), `cmd_seq`, `cmd:<id>`.

use super::platform::{now_ms, Csprng};
use super::ports::EdgePorts;
use super::rpc;
use super::storage::{Batch, JsonStorage};
use crate::calls::StoreError;
use crate::commands::{CommandRecord, Management};
use crate::context::Entropy;
use crate::device::calls::{
    self, DeviceCall, DeviceEffect, DeviceError, DeviceReply, DeviceStorage, DeviceWrite,
};
use crate::device::{DeviceRecord, DmCredentials};
use crate::enroll::flow::Issuer;
use crate::issuer::CaCall;
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
}

impl DeviceObject {
    async fn run(
        &self,
        call: DeviceCall,
    ) -> std::result::Result<std::result::Result<DeviceReply, DeviceError>, StoreError> {
        let store = Store(JsonStorage(self.state.storage()));
        let out = calls::handle(&store, call, now_ms(), Csprng.bytes()).await?;
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
            }
        }
        store.0.commit(batch).await?;
        let ports = EdgePorts::new(&self.env);
        for effect in out.effects {
            match effect {
                DeviceEffect::Index(entry) => ports.kv()?.put_device(&entry).await?,
                DeviceEffect::Revoke { serials } => {
                    ports.ca(CaCall::Revoke { serials }).await?.map_err(|e| StoreError(e.to_string()))?;
                }
            }
        }
        Ok(out.reply)
    }
}
