//! The device Durable Object: one per device, named by device id. It holds the device record,
//! its management credentials, inventory, the SyncML session state, the command queue and the
//! command history. Every request's writes are committed together (`JsonStorage::commit`), so
//! a crash between messages loses nothing.
//!
//! Storage keys: `record`, `credentials`, `mgmt`, `session`, `pending` (queued command ids in
//! order), `cmd_seq`, `cmd:<id>`.

use crate::enrollment::{CertRef, DeviceIndexEntry, DeviceRecord, DeviceStatus, DmCredentials};
use crate::management::{self, CommandRecord, CommandRequest, Management, MAX_PENDING};
use crate::objects::{kv, now_ms, random_bytes, Batch, JsonStorage};
use crate::proto::soap::decode_base64;
use crate::time::format_timestamp;
use crate::proto::syncml::message::SyncMl;
use crate::proto::syncml::session::{self, DeviceAuth, Input, SessionState};
use crate::proto::syncml::CONTENT_TYPE as SYNCML_TYPE;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use worker::*;

pub const BINDING: &str = "DEVICES";

const RECORD: &str = "record";
const CREDENTIALS: &str = "credentials";
const MGMT: &str = "mgmt";
const SESSION: &str = "session";
const PENDING: &str = "pending";
const CMD_SEQ: &str = "cmd_seq";

/// Request headers of `POST /syncml`, set by the edge.
pub const HDR_SERVER_URL: &str = "X-Edgemdm-Server-Url";
pub const HDR_CLIENT_CERT: &str = "X-Edgemdm-Client-Cert-Sha1";
pub const HDR_MAX_ATTEMPTS: &str = "X-Edgemdm-Max-Attempts";

fn cmd_key(id: &str) -> String {
    format!("cmd:{id}")
}

/// `PUT /enrollment`: a new enrollment (or a re-enrollment) of this device.
#[derive(Debug, Serialize, Deserialize)]
pub struct Enrollment {
    pub record: DeviceRecord,
    pub credentials: DmCredentials,
}

/// `POST /renewed`: the device got a new certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct Renewed {
    pub certificate: CertRef,
    pub renewed_at: String,
}

/// What `GET /record` shows: the record and the management state, never the credentials.
#[derive(Debug, Serialize)]
struct DeviceView<'a> {
    #[serde(flatten)]
    record: &'a DeviceRecord,
    #[serde(flatten)]
    mgmt: &'a Management,
}

#[durable_object]
pub struct DeviceObject {
    state: State,
    env: Env,
}

impl DurableObject for DeviceObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
            (Method::Get, ["record"]) => self.view().await,
            (Method::Put, ["enrollment"]) => match req.json::<Enrollment>().await {
                Ok(e) => self.enroll(e).await,
                Err(_) => Response::error("malformed enrollment", 400),
            },
            (Method::Post, ["renewed"]) => match req.json::<Renewed>().await {
                Ok(r) => self.renewed(r).await,
                Err(_) => Response::error("malformed renewal", 400),
            },
            (Method::Post, ["syncml"]) => {
                let header = |name: &str| req.headers().get(name).ok().flatten();
                let server_url = header(HDR_SERVER_URL).unwrap_or_default();
                let client_cert = header(HDR_CLIENT_CERT);
                let max_attempts = header(HDR_MAX_ATTEMPTS).and_then(|m| m.parse().ok()).unwrap_or(3);
                let body = req.bytes().await?;
                self.syncml(&body, &server_url, client_cert.as_deref(), max_attempts).await
            }
            (Method::Post, ["commands"]) => {
                let body = req.bytes().await?;
                match CommandRequest::from_json(&body) {
                    Ok(r) => self.queue_command(r).await,
                    Err(e) => Response::error(e, 400),
                }
            }
            (Method::Get, ["commands"]) => self.list_commands().await,
            (Method::Get, ["commands", id]) => match self.storage().get::<CommandRecord>(&cmd_key(id)).await? {
                Some(c) => Response::from_json(&c),
                None => Response::error("no such command", 404),
            },
            (Method::Post, ["retire"]) => self.retire().await,
            _ => Response::error("no such device operation", 404),
        }
    }
}

impl DeviceObject {
    fn storage(&self) -> JsonStorage {
        JsonStorage(self.state.storage())
    }

    async fn record(&self) -> Result<Option<DeviceRecord>> {
        self.storage().get(RECORD).await
    }

    async fn view(&self) -> Result<Response> {
        let Some(record) = self.record().await? else {
            return Response::error("no such device", 404);
        };
        let mgmt: Management = self.storage().get(MGMT).await?.unwrap_or_default();
        Response::from_json(&DeviceView { record: &record, mgmt: &mgmt })
    }

    async fn enroll(&self, e: Enrollment) -> Result<Response> {
        let storage = self.storage();
        let mut mgmt: Management = storage.get(MGMT).await?.unwrap_or_default();
        mgmt.retire_requested = false;
        // New credentials: the session starts over from the provisioned nonce.
        let nonce = decode_base64(&e.credentials.device_nonce_b64).unwrap_or_default();
        let mut batch = Batch::default();
        batch.put(RECORD, &e.record)?;
        batch.put(CREDENTIALS, &e.credentials)?;
        batch.put(MGMT, &mgmt)?;
        batch.put(SESSION, &SessionState::new(nonce))?;
        storage.commit(batch).await?;
        Response::from_json(&e.record)
    }

    async fn renewed(&self, r: Renewed) -> Result<Response> {
        let Some(mut record) = self.record().await? else {
            return Response::error("no such device", 404);
        };
        if record.status != DeviceStatus::Enrolled {
            return Response::error("device is not enrolled", 409);
        }
        record.certificate = r.certificate;
        record.renewed_at = Some(r.renewed_at);
        self.storage().put(RECORD, &record).await?;
        Response::from_json(&record)
    }

    async fn syncml(&self, body: &[u8], server_url: &str, client_cert: Option<&str>, max_attempts: u32) -> Result<Response> {
        let msg = match SyncMl::parse_bytes(body) {
            Ok(m) => m,
            Err(e) => return Response::error(format!("malformed SyncML: {e}"), 400),
        };
        let storage = self.storage();
        let (Some(mut record), Some(creds)) =
            (self.record().await?, storage.get::<DmCredentials>(CREDENTIALS).await?)
        else {
            return syncml_reply(management::refusal(&msg, 401, server_url));
        };
        if record.status != DeviceStatus::Enrolled {
            return syncml_reply(management::refusal(&msg, 403, server_url));
        }
        let state: SessionState = match storage.get(SESSION).await? {
            Some(s) => s,
            None => SessionState::new(decode_base64(&creds.device_nonce_b64).unwrap_or_default()),
        };
        let mut mgmt: Management = storage.get(MGMT).await?.unwrap_or_default();
        let pending: Vec<String> = storage.get(PENDING).await?.unwrap_or_default();
        let mut commands = BTreeMap::new();
        for id in &pending {
            if let Some(c) = storage.get::<CommandRecord>(&cmd_key(id)).await? {
                commands.insert(id.clone(), c);
            }
        }
        let before = commands.clone();
        let now = now_ms();
        let now_iso = format_timestamp(now);
        management::expire_unacknowledged(&state, &mut commands, max_attempts, &now_iso);
        let queue = management::queue(&pending, &commands);
        let auth = DeviceAuth {
            name: creds.device_name.clone(),
            secret_hash: creds.device_hash_b64.clone(),
            allow_basic: false,
            client_certificate: client_cert.is_some_and(|t| t.eq_ignore_ascii_case(&record.certificate.thumbprint)),
        };
        let input = Input { message: body, auth: &auth, queue: &queue, server_url, now: now / 1000, fresh_nonce: random_bytes() };
        let out = match session::handle_message(&state, input) {
            Ok(o) => o,
            Err(e) => return Response::error(format!("malformed SyncML: {e}"), 400),
        };
        let applied = management::apply_events(&out.events, &mut record, &mut mgmt, &mut commands, &now_iso);

        let still_pending: Vec<String> =
            pending.into_iter().filter(|id| commands.get(id).is_some_and(|c| !c.is_done())).collect();
        let mut batch = Batch::default();
        batch.put(RECORD, &record)?;
        batch.put(MGMT, &mgmt)?;
        batch.put(SESSION, &out.new_state)?;
        batch.put(PENDING, &still_pending)?;
        for (id, c) in &commands {
            if before.get(id) != Some(c) {
                batch.put(&cmd_key(id), c)?;
            }
        }
        storage.commit(batch).await?;

        if applied.status_changed {
            self.after_status_change(&record).await?;
        }
        syncml_reply(out.reply)
    }

    /// Keeps the KV listing in step and revokes a retired device's certificate.
    async fn after_status_change(&self, record: &DeviceRecord) -> Result<()> {
        let store = kv::store(&self.env)?;
        kv::put_device(&store, &DeviceIndexEntry::from(record)).await?;
        if record.status == DeviceStatus::Retired {
            let ca = crate::objects::ca_stub(&self.env)?;
            let revoke = crate::objects::ca::RevokeRequest { serials: vec![record.certificate.serial.clone()] };
            crate::objects::call(&ca, Method::Post, "/revoke", Some(&revoke)).await?;
        }
        Ok(())
    }

    async fn queue_command(&self, request: CommandRequest) -> Result<Response> {
        let storage = self.storage();
        let Some(record) = self.record().await? else {
            return Response::error("no such device", 404);
        };
        if record.status != DeviceStatus::Enrolled {
            return Response::error("the device is not enrolled", 409);
        }
        let pending: Vec<String> = storage.get(PENDING).await?.unwrap_or_default();
        if pending.len() >= MAX_PENDING {
            return Response::error(format!("the device already has {MAX_PENDING} commands waiting"), 429);
        }
        let mut batch = Batch::default();
        let rec = self.append_command(pending, request, &mut batch).await?;
        storage.commit(batch).await?;
        Ok(Response::from_json(&serde_json::json!({ "id": rec.id, "status": rec.status }))?.with_status(201))
    }

    /// Adds a command at the end of the queue: its record, the queue and the sequence go into
    /// `batch`, for the caller to commit with its other writes.
    async fn append_command(
        &self,
        mut pending: Vec<String>,
        request: CommandRequest,
        batch: &mut Batch,
    ) -> Result<CommandRecord> {
        let seq: u64 = self.storage().get(CMD_SEQ).await?.unwrap_or(0) + 1;
        let rec = CommandRecord::new(management::command_id(seq), request, now_ms());
        pending.push(rec.id.clone());
        batch.put(CMD_SEQ, &seq)?;
        batch.put(PENDING, &pending)?;
        batch.put(&cmd_key(&rec.id), &rec)?;
        Ok(rec)
    }

    async fn list_commands(&self) -> Result<Response> {
        if self.record().await?.is_none() {
            return Response::error("no such device", 404);
        }
        let map = self.state.storage().list_with_options(ListOptions::new().prefix("cmd:")).await?;
        let mut commands: Vec<CommandRecord> = Vec::new();
        for entry in map.values() {
            let text = entry?.as_string().unwrap_or_default();
            if let Ok(c) = serde_json::from_str::<CommandRecord>(&text) {
                commands.push(c);
            }
        }
        commands.sort_by(|a, b| a.id.cmp(&b.id));
        Response::from_json(&serde_json::json!({ "commands": commands }))
    }

    /// Retire: queue the unenrollment; the device is retired when it acknowledges it or says it
    /// left (alert 1226). A device that already left is retired at once.
    async fn retire(&self) -> Result<Response> {
        let storage = self.storage();
        let Some(mut record) = self.record().await? else {
            return Response::error("no such device", 404);
        };
        let mut mgmt: Management = storage.get(MGMT).await?.unwrap_or_default();
        match record.status {
            DeviceStatus::Retired => {}
            DeviceStatus::Unenrolled => {
                mgmt.retire_requested = true;
                record.status = DeviceStatus::Retired;
                let mut batch = Batch::default();
                batch.put(RECORD, &record)?;
                batch.put(MGMT, &mgmt)?;
                storage.commit(batch).await?;
                self.after_status_change(&record).await?;
            }
            DeviceStatus::Enrolled if !mgmt.retire_requested => {
                mgmt.retire_requested = true;
                let pending: Vec<String> = storage.get(PENDING).await?.unwrap_or_default();
                let unenroll = CommandRequest::Unenroll { provider_id: crate::config::PROVIDER_ID.to_string() };
                let mut batch = Batch::default();
                batch.put(MGMT, &mgmt)?;
                self.append_command(pending, unenroll, &mut batch).await?;
                storage.commit(batch).await?;
            }
            DeviceStatus::Enrolled => {}
        }
        let status = if record.status == DeviceStatus::Retired { "retired" } else { "retiring" };
        Ok(Response::from_json(&serde_json::json!({ "device_id": record.identity.device_id, "status": status }))?
            .with_status(202))
    }
}

fn syncml_reply(doc: String) -> Result<Response> {
    crate::edge::fixed(200, SYNCML_TYPE, doc)
}
