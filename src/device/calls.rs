//! The device Durable Object's operations, pure: one typed call each ([`DeviceCall`] →
//! [`DeviceReply`] or [`DeviceError`]), with the enrollment, renewal, command queue and
//! retire rules. The object reads through [`DeviceStorage`], commits the returned writes in
//! one batch, then carries out the returned [`DeviceEffect`]s (the listing, revocation, the
//! profile catalogue's reports). A session's first message asks the profile catalogue
//! ([`Catalog`]) whether what applies to the device changed since the revision it holds.

use super::checkin::{checkin, Checkin, CheckinInput, CheckinState, MessageSignature};
use super::lifecycle::{self, EnrollKind};
use super::profile_state::{CatalogNews, ProfileState, ProfileSync};
use super::{CertRef, DeviceIndexEntry, DeviceRecord, DeviceStatus, DmCredentials};
use crate::commands::{self, CommandRecord, CommandRequest, Management, MAX_PENDING};
use crate::config::{MessageSigning, PROVIDER_ID};
use crate::object_call::StoreError;
use crate::profiles::catalog::{Catalog, CatalogCall, CatalogReply};
use crate::profiles::reconcile::{DeviceProfile, DeviceProfileView};
use crate::profiles::DeviceProfileStatus;
use crate::proto::syncml::session::SessionState;
use crate::time::format_timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An operation of the device object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceCall {
    /// The record and management state (never the credentials).
    Record,
    /// A new enrollment (or a re-enrollment) of this device.
    Enroll {
        record: Box<DeviceRecord>,
        credentials: DmCredentials,
    },
    /// The device got a new certificate, renewing the one of serial `previous`.
    Renewed {
        certificate: CertRef,
        renewed_at: String,
        previous: String,
    },
    /// One SyncML message from the device.
    SyncMl {
        message: String,
        server_url: String,
        client_cert: Option<String>,
        max_attempts: u32,
        /// What the edge found of the message's signature.
        #[serde(default)]
        signature: MessageSignature,
        #[serde(default = "signing_off")]
        signing: MessageSigning,
    },
    QueueCommand {
        request: CommandRequest,
    },
    ListCommands,
    GetCommand {
        id: String,
    },
    /// Retire the device ([`lifecycle::retire`]).
    Retire,
    /// A newer enrollment of the same hardware (`by`, a DeviceID) by `user`.
    Supersede {
        user: Option<String>,
        by: String,
    },
    /// The retire grace period ended (the object's alarm).
    RetireDeadline,
    /// The configuration profiles on the device, with each setting's state.
    Profiles,
}

fn signing_off() -> MessageSigning {
    MessageSigning::Off
}

/// What `Record` shows: the record and the management state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    #[serde(flatten)]
    pub record: DeviceRecord,
    #[serde(flatten)]
    pub mgmt: Management,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceReply {
    View(Box<DeviceView>),
    Record(Box<DeviceRecord>),
    /// The SyncML reply document (HTTP 200).
    SyncMl(String),
    Queued {
        id: String,
        status: commands::CommandState,
    },
    Commands(Vec<CommandRecord>),
    Command(Box<CommandRecord>),
    Retire {
        device_id: String,
        status: DeviceStatus,
    },
    Profiles(Vec<DeviceProfileView>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceError {
    NoSuchDevice,
    NotEnrolled,
    /// The DeviceID is enrolled by another user.
    NotYours,
    NoSuchCommand,
    QueueFull,
    /// The body is not a SyncML message the engine can handle.
    MalformedSyncMl(String),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::NoSuchDevice => f.write_str("no such device"),
            DeviceError::NotEnrolled => f.write_str("the device is not enrolled"),
            DeviceError::NotYours => f.write_str("the device is enrolled by another user"),
            DeviceError::NoSuchCommand => f.write_str("no such command"),
            DeviceError::QueueFull => write!(f, "the device already has {MAX_PENDING} commands waiting"),
            DeviceError::MalformedSyncMl(e) => write!(f, "malformed SyncML: {e}"),
        }
    }
}

/// What the device object reads.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait DeviceStorage {
    async fn record(&self) -> Result<Option<DeviceRecord>, StoreError>;
    async fn credentials(&self) -> Result<Option<DmCredentials>, StoreError>;
    async fn mgmt(&self) -> Result<Option<Management>, StoreError>;
    async fn session(&self) -> Result<Option<SessionState>, StoreError>;
    async fn pending(&self) -> Result<Vec<String>, StoreError>;
    async fn command_seq(&self) -> Result<u64, StoreError>;
    async fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError>;
    async fn commands(&self) -> Result<Vec<CommandRecord>, StoreError>;
    async fn profile_sync(&self) -> Result<Option<ProfileSync>, StoreError>;
    async fn profile(&self, id: &str) -> Result<Option<DeviceProfile>, StoreError>;
}

/// The device object's writes, committed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceWrite {
    Record(DeviceRecord),
    Credentials(DmCredentials),
    Mgmt(Management),
    Session(SessionState),
    Pending(Vec<String>),
    CommandSeq(u64),
    Command(CommandRecord),
    DeleteCommand(String),
    ProfileSync(ProfileSync),
    Profile(Box<DeviceProfile>),
    DeleteProfile(String),
}

/// Work on other stores once the writes are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEffect {
    /// Update the device listing.
    Index(DeviceIndexEntry),
    /// Revoke the certificates of a retired device.
    Revoke { serials: Vec<String> },
    /// Tell the profile catalogue what changed on the device.
    ProfileReport { device_id: String, statuses: Vec<DeviceProfileStatus>, removed: Vec<String> },
}

#[derive(Debug)]
pub struct DeviceOutcome {
    pub reply: Result<DeviceReply, DeviceError>,
    pub writes: Vec<DeviceWrite>,
    pub effects: Vec<DeviceEffect>,
    /// When to run [`DeviceCall::RetireDeadline`] (Unix milliseconds).
    pub alarm: Option<u64>,
}

impl DeviceOutcome {
    fn reply(reply: DeviceReply, writes: Vec<DeviceWrite>) -> Self {
        DeviceOutcome { reply: Ok(reply), writes, effects: Vec::new(), alarm: None }
    }

    fn refuse(e: DeviceError) -> Self {
        DeviceOutcome { reply: Err(e), writes: Vec::new(), effects: Vec::new(), alarm: None }
    }
}

/// The listing and, for a device that is no longer enrolled, revocation of its certificate:
/// what follows a status change.
fn status_effects(record: &DeviceRecord) -> Vec<DeviceEffect> {
    let mut effects = vec![DeviceEffect::Index(DeviceIndexEntry::from(record))];
    if matches!(record.status, DeviceStatus::Retiring | DeviceStatus::Retired | DeviceStatus::Superseded) {
        effects.push(DeviceEffect::Revoke { serials: vec![record.certificate.serial.clone()] });
    }
    effects
}

/// How much command history a device keeps: the newest `max_count` finished commands, none
/// older than `max_age_secs`; queued ones are never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    pub max_count: usize,
    pub max_age_secs: u64,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits { max_count: 200, max_age_secs: 90 * 86_400 }
    }
}

/// Everything a call needs besides storage.
#[derive(Debug, Clone, Copy)]
pub struct DeviceContext {
    /// Unix milliseconds.
    pub now_ms: u64,
    /// Randomness for the session engine's next nonce.
    pub fresh_nonce: [u8; 16],
    pub history: HistoryLimits,
    /// How long a retiring device has to answer its Unenroll before the retirement completes
    /// without it.
    pub retire_grace_secs: u64,
    /// `PROFILE_VERIFY_INTERVAL_SECONDS`: how often verified profiles are read back (drift).
    pub profile_verify_interval_secs: u64,
}

impl DeviceContext {
    fn now_iso(&self) -> String {
        format_timestamp(self.now_ms)
    }
}

/// Runs one device call.
pub async fn handle<S: DeviceStorage, C: Catalog>(
    store: &S,
    catalog: &C,
    call: DeviceCall,
    ctx: DeviceContext,
) -> Result<DeviceOutcome, StoreError> {
    match call {
        DeviceCall::Record => {
            let Some(record) = store.record().await? else {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            };
            let mgmt = store.mgmt().await?.unwrap_or_default();
            Ok(DeviceOutcome::reply(DeviceReply::View(Box::new(DeviceView { record, mgmt })), vec![]))
        }
        DeviceCall::Enroll { record, credentials } => enroll(store, *record, credentials, ctx).await,
        DeviceCall::Renewed { certificate, renewed_at, previous } => {
            let Some(mut record) = store.record().await? else {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            };
            if lifecycle::accepts_commands(record.status).is_err() {
                return Ok(DeviceOutcome::refuse(DeviceError::NotEnrolled));
            }
            // The renewed certificate must still be the device's (or the one its current
            // certificate replaced, for a retry): a re-enrollment in between wins.
            let cur = &record.certificate;
            if !cur.serial.eq_ignore_ascii_case(&previous) && cur.renews.as_deref() != Some(previous.as_str())
            {
                return Ok(DeviceOutcome::refuse(DeviceError::NotEnrolled));
            }
            record.certificate = certificate;
            record.renewed_at = Some(renewed_at);
            Ok(DeviceOutcome::reply(
                DeviceReply::Record(Box::new(record.clone())),
                vec![DeviceWrite::Record(record)],
            ))
        }
        DeviceCall::SyncMl { message, server_url, client_cert, max_attempts, signature, signing } => {
            // Parse first: a body that is not SyncML changes nothing and reads nothing more.
            let msg = match crate::proto::syncml::message::SyncMl::parse_bytes(message.as_bytes()) {
                Ok(m) => m,
                Err(e) => return Ok(DeviceOutcome::refuse(DeviceError::MalformedSyncMl(e.to_string()))),
            };
            let mut state = load_checkin(store, ctx).await?;
            // A session's first message asks the catalogue once whether what applies to the
            // device changed: MsgID 1 (OMA-DM 1.2 Protocol §8.3, package 1), or package 1 again
            // after a challenge, in a session not yet under way.
            let under_way = state
                .session
                .as_ref()
                .and_then(|s| s.session.as_ref())
                .is_some_and(|s| s.session_id == msg.hdr.session_id && !s.ended && s.authenticated);
            // Only a message that authenticates may cost a call to the one catalogue all devices
            // share: an attacker who knows a DeviceID must not be able to make it work.
            let starts = (msg.hdr.msg_id == "1" || !under_way)
                && super::checkin::authenticates(&state, &msg, client_cert.as_deref());
            if let Some(id) = state
                .record
                .as_ref()
                .filter(|r| starts && r.status == DeviceStatus::Enrolled)
                .map(|r| r.identity.device_id.clone())
            {
                // The record's DeviceID: the object was chosen by it, the reports use it.
                state.profiles.news = catalog_news(catalog, &id, &state.profiles.sync).await;
            }
            let input = CheckinInput {
                message: message.as_bytes(),
                parsed: &msg,
                server_url: &server_url,
                client_cert: client_cert.as_deref(),
                max_attempts,
                signature: &signature,
                signing,
                now_ms: ctx.now_ms,
                fresh_nonce: ctx.fresh_nonce,
            };
            match checkin(state, input) {
                Err(e) => Ok(DeviceOutcome::refuse(DeviceError::MalformedSyncMl(e.to_string()))),
                Ok(Checkin::Refused { reply }) => {
                    Ok(DeviceOutcome::reply(DeviceReply::SyncMl(reply), vec![]))
                }
                Ok(Checkin::Handled(h)) => {
                    let mut effects = if h.status_changed { status_effects(&h.record) } else { Vec::new() };
                    let device_id = h.record.identity.device_id.clone();
                    let mut writes = vec![
                        DeviceWrite::Record(h.record),
                        DeviceWrite::Mgmt(h.mgmt),
                        DeviceWrite::Session(h.session),
                        DeviceWrite::Pending(h.pending),
                    ];
                    writes.extend(h.changed.into_iter().map(DeviceWrite::Command));
                    let p = h.profiles;
                    writes.extend(p.sync.map(DeviceWrite::ProfileSync));
                    writes.extend(p.removed.iter().cloned().map(DeviceWrite::DeleteProfile));
                    let reported: Vec<&str> = p.transitions.iter().map(|t| t.profile_id.as_str()).collect();
                    let statuses = p
                        .changed
                        .iter()
                        .filter(|x| reported.contains(&x.id.as_str()))
                        .map(|x| x.report(&device_id))
                        .collect::<Vec<_>>();
                    if !statuses.is_empty() || !p.removed.is_empty() {
                        effects.push(DeviceEffect::ProfileReport { device_id, statuses, removed: p.removed });
                    }
                    writes.extend(p.changed.into_iter().map(|x| DeviceWrite::Profile(Box::new(x))));
                    Ok(DeviceOutcome {
                        reply: Ok(DeviceReply::SyncMl(h.reply)),
                        writes,
                        effects,
                        alarm: None,
                    })
                }
                Ok(Checkin::Unchanged { reply }) => {
                    Ok(DeviceOutcome::reply(DeviceReply::SyncMl(reply), vec![]))
                }
            }
        }
        DeviceCall::QueueCommand { request } => {
            let Some(record) = store.record().await? else {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            };
            if lifecycle::accepts_commands(record.status).is_err() {
                return Ok(DeviceOutcome::refuse(DeviceError::NotEnrolled));
            }
            let pending = store.pending().await?;
            if pending.len() >= MAX_PENDING {
                return Ok(DeviceOutcome::refuse(DeviceError::QueueFull));
            }
            let mut writes = Vec::new();
            let rec = append_command(store, pending.clone(), request, ctx.now_ms, &mut writes).await?;
            let mut keep = pending;
            keep.push(rec.id.clone());
            prune_history(store, &keep, ctx, &mut writes).await?;
            Ok(DeviceOutcome::reply(DeviceReply::Queued { id: rec.id, status: rec.status }, writes))
        }
        DeviceCall::ListCommands => {
            if store.record().await?.is_none() {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            }
            let mut all = store.commands().await?;
            crate::sorting::sort_by(&mut all, |a, b| a.id.cmp(&b.id));
            Ok(DeviceOutcome::reply(DeviceReply::Commands(all), vec![]))
        }
        DeviceCall::GetCommand { id } => match store.command(&id).await? {
            Some(c) => Ok(DeviceOutcome::reply(DeviceReply::Command(Box::new(c)), vec![])),
            None => Ok(DeviceOutcome::refuse(DeviceError::NoSuchCommand)),
        },
        DeviceCall::Retire => retire(store, ctx).await,
        DeviceCall::Profiles => {
            if store.record().await?.is_none() {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            }
            let state = load_profiles(store, ctx).await?;
            let views = state.profiles.iter().map(DeviceProfile::view).collect();
            Ok(DeviceOutcome::reply(DeviceReply::Profiles(views), vec![]))
        }
        DeviceCall::Supersede { user, by } => {
            let Some(mut record) = store.record().await? else {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            };
            let Some(status) = lifecycle::supersede(&record, user.as_deref()) else {
                return Ok(DeviceOutcome::reply(DeviceReply::Record(Box::new(record)), vec![]));
            };
            record.retired_at = Some(ctx.now_iso());
            end_enrollment(store, record, status, &format!("cancelled: superseded by {by}"), ctx).await
        }
        DeviceCall::RetireDeadline => {
            let Some(record) = store.record().await? else {
                return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
            };
            if record.status != DeviceStatus::Retiring {
                return Ok(DeviceOutcome::reply(DeviceReply::Record(Box::new(record)), vec![]));
            }
            // The object's one alarm also wakes it for other work (retrying the fleet index):
            // before its time, the deadline only re-arms itself.
            let due = record
                .retired_at
                .as_deref()
                .and_then(crate::time::parse_timestamp_ms)
                .map(|at| at + ctx.retire_grace_secs * 1000);
            if let Some(due) = due.filter(|due| ctx.now_ms < *due) {
                let mut early = DeviceOutcome::reply(DeviceReply::Record(Box::new(record)), vec![]);
                early.alarm = Some(due);
                return Ok(early);
            }
            let status = lifecycle::unenroll_ended(record.status);
            let why = "the device did not answer its Unenroll within the grace period";
            end_enrollment(store, record, status, why, ctx).await
        }
    }
}

/// Moves a record to a status that ends its enrollment: what is queued is cancelled with
/// `reason`, the listing follows and the certificate is revoked.
async fn end_enrollment<S: DeviceStorage>(
    store: &S,
    mut record: DeviceRecord,
    status: DeviceStatus,
    reason: &str,
    ctx: DeviceContext,
) -> Result<DeviceOutcome, StoreError> {
    record.status = status;
    let mut writes = cancel_pending(store, reason, ctx).await?;
    writes.push(DeviceWrite::Record(record.clone()));
    let mut effects = status_effects(&record);
    forget_profiles(store, &record.identity.device_id, &mut writes, &mut effects).await?;
    Ok(DeviceOutcome { reply: Ok(DeviceReply::Record(Box::new(record))), writes, effects, alarm: None })
}

/// A new enrollment of this DeviceID: refused when another user holds it; the same user's
/// re-enrollment gets new credentials and its old certificate revoked; a released DeviceID
/// starts over and inherits no queued command.
async fn enroll<S: DeviceStorage>(
    store: &S,
    record: DeviceRecord,
    credentials: DmCredentials,
    ctx: DeviceContext,
) -> Result<DeviceOutcome, StoreError> {
    let current = store.record().await?;
    let kind = match lifecycle::enroll(current.as_ref(), record.user.as_deref()) {
        Ok(k) => k,
        Err(_) => return Ok(DeviceOutcome::refuse(DeviceError::NotYours)),
    };
    let mut mgmt = store.mgmt().await?.unwrap_or_default();
    let mut writes = Vec::new();
    let mut effects = Vec::new();
    match kind {
        EnrollKind::New => {}
        EnrollKind::SameUser { revoke } => {
            if revoke != record.certificate.serial {
                effects.push(DeviceEffect::Revoke { serials: vec![revoke] });
            }
            // A reset PC lost its settings: every profile that applies is delivered again.
            forget_profiles(store, &record.identity.device_id, &mut writes, &mut effects).await?;
        }
        EnrollKind::Fresh { revoke } => {
            if revoke != record.certificate.serial {
                effects.push(DeviceEffect::Revoke { serials: vec![revoke] });
            }
            writes = cancel_pending(store, "cancelled: the device was enrolled again", ctx).await?;
            mgmt = Management::default();
            // A new enrollment starts from nothing: every profile that applies is delivered.
            forget_profiles(store, &record.identity.device_id, &mut writes, &mut effects).await?;
        }
    }
    mgmt.retire_requested = false;
    // New credentials: the session starts over from the provisioned nonce.
    let nonce = crate::codec::decode_base64(&credentials.device_nonce_b64).unwrap_or_default();
    writes.extend([
        DeviceWrite::Record(record.clone()),
        DeviceWrite::Credentials(credentials),
        DeviceWrite::Mgmt(mgmt),
        DeviceWrite::Session(SessionState::new(nonce)),
    ]);
    Ok(DeviceOutcome { reply: Ok(DeviceReply::Record(Box::new(record))), writes, effects, alarm: None })
}

/// Every queued command ends, failed with `reason`, and the queue is emptied.
async fn cancel_pending<S: DeviceStorage>(
    store: &S,
    reason: &str,
    ctx: DeviceContext,
) -> Result<Vec<DeviceWrite>, StoreError> {
    let mut writes = Vec::new();
    for id in store.pending().await? {
        if let Some(mut c) = store.command(&id).await? {
            c.cancel(reason, &ctx.now_iso());
            writes.push(DeviceWrite::Command(c));
        }
    }
    writes.push(DeviceWrite::Pending(Vec::new()));
    Ok(writes)
}

/// Deletes the oldest finished commands beyond the history limits.
async fn prune_history<S: DeviceStorage>(
    store: &S,
    pending: &[String],
    ctx: DeviceContext,
    writes: &mut Vec<DeviceWrite>,
) -> Result<(), StoreError> {
    let mut all = store.commands().await?;
    crate::sorting::sort_by(&mut all, |a, b| a.id.cmp(&b.id));
    let cutoff = format_timestamp(ctx.now_ms.saturating_sub(ctx.history.max_age_secs * 1000));
    // +1: the command being queued is not stored yet.
    let mut count = all.len() + 1;
    for c in &all {
        let done = c.is_done() && !pending.contains(&c.id);
        let old = c.completed_at.as_deref().is_some_and(|t| t < cutoff.as_str());
        if done && (count > ctx.history.max_count || old) {
            writes.push(DeviceWrite::DeleteCommand(c.id.clone()));
            count -= 1;
        }
    }
    Ok(())
}

/// The catalogue's news for a device starting a session, if its revision moved. The
/// catalogue being out of reach does not stop management: the device goes on with the
/// profiles it has, and asks again next session.
async fn catalog_news<C: Catalog>(catalog: &C, device_id: &str, sync: &ProfileSync) -> Option<CatalogNews> {
    let call = CatalogCall::Sync { device_id: device_id.to_string(), known_rev: sync.rev };
    match catalog.catalog(call).await {
        Ok(Ok(CatalogReply::Changed { rev, groups, profiles })) => {
            Some(CatalogNews { rev, groups, profiles })
        }
        _ => None,
    }
}

async fn load_profiles<S: DeviceStorage>(store: &S, ctx: DeviceContext) -> Result<ProfileState, StoreError> {
    let sync = store.profile_sync().await?.unwrap_or_default();
    let mut profiles = Vec::with_capacity(sync.ids.len());
    for id in &sync.ids {
        profiles.extend(store.profile(id).await?);
    }
    Ok(ProfileState { sync, profiles, news: None, verify_interval_secs: ctx.profile_verify_interval_secs })
}

/// Drops the device's profile state (a new enrollment, a retired device) and tells the
/// catalogue the profiles left it.
async fn forget_profiles<S: DeviceStorage>(
    store: &S,
    device_id: &str,
    writes: &mut Vec<DeviceWrite>,
    effects: &mut Vec<DeviceEffect>,
) -> Result<(), StoreError> {
    let Some(sync) = store.profile_sync().await? else { return Ok(()) };
    writes.extend(sync.ids.iter().cloned().map(DeviceWrite::DeleteProfile));
    writes.push(DeviceWrite::ProfileSync(ProfileSync::default()));
    if !sync.ids.is_empty() {
        let device_id = device_id.to_string();
        effects.push(DeviceEffect::ProfileReport { device_id, statuses: vec![], removed: sync.ids });
    }
    Ok(())
}

async fn load_checkin<S: DeviceStorage>(store: &S, ctx: DeviceContext) -> Result<CheckinState, StoreError> {
    let pending = store.pending().await?;
    let mut commands = BTreeMap::new();
    for id in &pending {
        if let Some(c) = store.command(id).await? {
            commands.insert(id.clone(), c);
        }
    }
    Ok(CheckinState {
        record: store.record().await?,
        credentials: store.credentials().await?,
        session: store.session().await?,
        mgmt: store.mgmt().await?.unwrap_or_default(),
        pending,
        commands,
        profiles: load_profiles(store, ctx).await?,
    })
}

/// Adds a command at the end of the queue: its record, the queue and the sequence.
async fn append_command<S: DeviceStorage>(
    store: &S,
    mut pending: Vec<String>,
    request: CommandRequest,
    now_ms: u64,
    writes: &mut Vec<DeviceWrite>,
) -> Result<CommandRecord, StoreError> {
    let seq = store.command_seq().await? + 1;
    let rec = CommandRecord::new(commands::command_id(seq), request, now_ms);
    pending.push(rec.id.clone());
    writes.push(DeviceWrite::CommandSeq(seq));
    writes.push(DeviceWrite::Pending(pending));
    writes.push(DeviceWrite::Command(rec.clone()));
    Ok(rec)
}

/// Retire ([`lifecycle::retire`]): at once, everything queued is cancelled, the Unenroll is
/// queued, the certificate revoked and the listing updated; the retirement completes when the
/// device answers, leaves, or the grace period ends (the returned alarm). Retiring again
/// re-runs the revocation and listing, completing what a storage failure interrupted.
async fn retire<S: DeviceStorage>(store: &S, ctx: DeviceContext) -> Result<DeviceOutcome, StoreError> {
    let Some(mut record) = store.record().await? else {
        return Ok(DeviceOutcome::refuse(DeviceError::NoSuchDevice));
    };
    let mut mgmt = store.mgmt().await?.unwrap_or_default();
    let step = lifecycle::retire(&record);
    let mut writes = Vec::new();
    if step.status != record.status {
        record.status = step.status;
        record.retired_at = Some(ctx.now_iso());
        mgmt.retire_requested = true;
        if step.queue_unenroll {
            writes = cancel_pending(store, "cancelled: the device was retired", ctx).await?;
            let unenroll = CommandRequest::Unenroll { provider_id: PROVIDER_ID.to_string() };
            append_command(store, Vec::new(), unenroll, ctx.now_ms, &mut writes).await?;
        }
        writes.push(DeviceWrite::Record(record.clone()));
        writes.push(DeviceWrite::Mgmt(mgmt));
    }
    let mut effects = status_effects(&record);
    if step.status != DeviceStatus::Enrolled {
        // A retired device no longer counts for any profile.
        forget_profiles(store, &record.identity.device_id, &mut writes, &mut effects).await?;
    }
    // The grace alarm is (re)armed by every retire of a retiring device: a retry also repairs
    // an alarm that failed to be set.
    let alarm = (record.status == DeviceStatus::Retiring).then(|| ctx.now_ms + ctx.retire_grace_secs * 1000);
    let reply = DeviceReply::Retire { device_id: record.identity.device_id.clone(), status: record.status };
    Ok(DeviceOutcome { reply: Ok(reply), writes, effects, alarm })
}

/// How the device object stores its state: everything that changes together in one row (the
/// record, credentials, management state, session, queue and sequence), each command in a row
/// of its own, each configuration profile's state too. An idle check-in then writes one row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub record: Option<DeviceRecord>,
    pub credentials: Option<DmCredentials>,
    pub mgmt: Option<Management>,
    pub session: Option<SessionState>,
    #[serde(default)]
    pub pending: Vec<String>,
    #[serde(default)]
    pub cmd_seq: u64,
    /// What the device last learned from the profile catalogue.
    #[serde(default)]
    pub profile_sync: Option<ProfileSync>,
    /// What the fleet index last got from this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<crate::fleet::IndexMark>,
}

/// A row besides the state row: a command or a profile's state, to write or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandRow {
    Put(Box<CommandRecord>),
    Delete(String),
    PutProfile(Box<DeviceProfile>),
    DeleteProfile(String),
}

impl DeviceRow {
    /// Applies a call's writes: whether the row changed, and the command rows to write.
    pub fn apply(&mut self, writes: Vec<DeviceWrite>) -> (bool, Vec<CommandRow>) {
        let before = self.clone();
        let mut commands = Vec::new();
        for w in writes {
            match w {
                DeviceWrite::Record(r) => self.record = Some(r),
                DeviceWrite::Credentials(c) => self.credentials = Some(c),
                DeviceWrite::Mgmt(m) => self.mgmt = Some(m),
                DeviceWrite::Session(s) => self.session = Some(s),
                DeviceWrite::Pending(p) => self.pending = p,
                DeviceWrite::CommandSeq(n) => self.cmd_seq = n,
                DeviceWrite::Command(c) => commands.push(CommandRow::Put(Box::new(c))),
                DeviceWrite::DeleteCommand(id) => commands.push(CommandRow::Delete(id)),
                DeviceWrite::ProfileSync(p) => self.profile_sync = Some(p),
                DeviceWrite::Profile(p) => commands.push(CommandRow::PutProfile(p)),
                DeviceWrite::DeleteProfile(id) => commands.push(CommandRow::DeleteProfile(id)),
            }
        }
        (*self != before, commands)
    }
}

/// An in-memory device object for native tests: the rules above over plain fields.
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct MemoryDevice {
        pub record: RefCell<Option<DeviceRecord>>,
        pub credentials: RefCell<Option<DmCredentials>>,
        pub mgmt: RefCell<Option<Management>>,
        pub session: RefCell<Option<SessionState>>,
        pub pending: RefCell<Vec<String>>,
        pub seq: RefCell<u64>,
        pub commands: RefCell<BTreeMap<String, CommandRecord>>,
        /// Effects the object would carry out, in order.
        pub effects: RefCell<Vec<DeviceEffect>>,
        pub profile_sync: RefCell<Option<ProfileSync>>,
        pub profiles: RefCell<BTreeMap<String, DeviceProfile>>,
    }

    /// A deployment without profiles: the catalogue always says "current".
    pub struct NoCatalog;

    impl Catalog for NoCatalog {
        async fn catalog(
            &self,
            _call: CatalogCall,
        ) -> Result<Result<CatalogReply, crate::profiles::catalog::CatalogError>, StoreError> {
            Ok(Ok(CatalogReply::Current { rev: 0 }))
        }
    }

    impl DeviceStorage for MemoryDevice {
        async fn record(&self) -> Result<Option<DeviceRecord>, StoreError> {
            Ok(self.record.borrow().clone())
        }
        async fn credentials(&self) -> Result<Option<DmCredentials>, StoreError> {
            Ok(self.credentials.borrow().clone())
        }
        async fn mgmt(&self) -> Result<Option<Management>, StoreError> {
            Ok(self.mgmt.borrow().clone())
        }
        async fn session(&self) -> Result<Option<SessionState>, StoreError> {
            Ok(self.session.borrow().clone())
        }
        async fn pending(&self) -> Result<Vec<String>, StoreError> {
            Ok(self.pending.borrow().clone())
        }
        async fn command_seq(&self) -> Result<u64, StoreError> {
            Ok(*self.seq.borrow())
        }
        async fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError> {
            Ok(self.commands.borrow().get(id).cloned())
        }
        async fn commands(&self) -> Result<Vec<CommandRecord>, StoreError> {
            Ok(self.commands.borrow().values().cloned().collect())
        }
        async fn profile_sync(&self) -> Result<Option<ProfileSync>, StoreError> {
            Ok(self.profile_sync.borrow().clone())
        }
        async fn profile(&self, id: &str) -> Result<Option<DeviceProfile>, StoreError> {
            Ok(self.profiles.borrow().get(id).cloned())
        }
    }

    impl MemoryDevice {
        pub fn commit(&self, writes: Vec<DeviceWrite>) {
            for w in writes {
                match w {
                    DeviceWrite::Record(r) => *self.record.borrow_mut() = Some(r),
                    DeviceWrite::Credentials(c) => *self.credentials.borrow_mut() = Some(c),
                    DeviceWrite::Mgmt(m) => *self.mgmt.borrow_mut() = Some(m),
                    DeviceWrite::Session(s) => *self.session.borrow_mut() = Some(s),
                    DeviceWrite::Pending(p) => *self.pending.borrow_mut() = p,
                    DeviceWrite::CommandSeq(s) => *self.seq.borrow_mut() = s,
                    DeviceWrite::Command(c) => {
                        self.commands.borrow_mut().insert(c.id.clone(), c);
                    }
                    DeviceWrite::DeleteCommand(id) => {
                        self.commands.borrow_mut().remove(&id);
                    }
                    DeviceWrite::ProfileSync(p) => *self.profile_sync.borrow_mut() = Some(p),
                    DeviceWrite::Profile(p) => {
                        self.profiles.borrow_mut().insert(p.id.clone(), *p);
                    }
                    DeviceWrite::DeleteProfile(id) => {
                        self.profiles.borrow_mut().remove(&id);
                    }
                }
            }
        }

        pub fn call(&self, call: DeviceCall, now_ms: u64) -> Result<DeviceReply, DeviceError> {
            self.call_with(&NoCatalog, call, now_ms)
        }

        /// The context of the native tests' calls at `now_ms`.
        pub fn context(now_ms: u64) -> DeviceContext {
            DeviceContext {
                now_ms,
                fresh_nonce: [7; 16],
                history: HistoryLimits::default(),
                retire_grace_secs: 7 * 86_400,
                profile_verify_interval_secs: 28_800,
            }
        }

        /// A call of a device in a deployment whose profile catalogue is `catalog`.
        pub fn call_with<C: Catalog>(
            &self,
            catalog: &C,
            call: DeviceCall,
            now_ms: u64,
        ) -> Result<DeviceReply, DeviceError> {
            let ctx = Self::context(now_ms);
            let out = crate::object_call::block_on(handle(self, catalog, call, ctx)).expect("memory store");
            self.commit(out.writes);
            self.effects.borrow_mut().extend(out.effects);
            out.reply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryDevice;
    use super::*;
    use crate::commands::CommandState;
    use crate::proto::syncml::digest;

    const NOW: u64 = 1_800_000_000_000;
    const SERVER: &str = "https://mdm.example/ManagementServer/MDM.svc";

    fn record(id: &str) -> DeviceRecord {
        crate::device::test_record(id, DeviceStatus::Enrolled, Some("a@x.io"))
    }

    fn credentials(id: &str) -> DmCredentials {
        DmCredentials {
            device_name: id.into(),
            device_hash_b64: digest::secret_hash(id, "secret"),
            device_nonce_b64: crate::codec::encode_base64(&[1; 16]),
            server_secret: "s".into(),
            server_nonce_b64: crate::codec::encode_base64(&[2; 16]),
        }
    }

    fn enrolled(id: &str) -> MemoryDevice {
        let d = MemoryDevice::default();
        let r =
            d.call(DeviceCall::Enroll { record: Box::new(record(id)), credentials: credentials(id) }, NOW);
        assert!(matches!(r, Ok(DeviceReply::Record(_))));
        d
    }

    /// A first session message with a valid MD5 digest over `nonce`, and the final Status the
    /// device sends for the server's commands.
    fn message(id: &str, session: &str, msg_id: u32, nonce: Option<&[u8]>, body: &str) -> String {
        let cred = nonce.map(|n| {
            format!(
                "<Cred><Meta><Format xmlns=\"syncml:metinf\">b64</Format><Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type></Meta><Data>{}</Data></Cred>",
                digest::md5_credential(&digest::secret_hash(id, "secret"), n)
            )
        });
        format!(
            "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>{session}</SessionID><MsgID>{msg_id}</MsgID><Target><LocURI>{SERVER}</LocURI></Target><Source><LocURI>{id}</LocURI><LocName>{id}</LocName></Source>{}</SyncHdr><SyncBody>{body}<Final/></SyncBody></SyncML>",
            cred.unwrap_or_default()
        )
    }

    /// A SyncML message from the device as the edge hands it on: no client certificate, no
    /// signature, signing off.
    fn syncml_call(message: String) -> DeviceCall {
        DeviceCall::SyncMl {
            message,
            server_url: SERVER.into(),
            client_cert: None,
            max_attempts: 3,
            signature: MessageSignature::Absent,
            signing: MessageSigning::Off,
        }
    }

    fn syncml(d: &MemoryDevice, msg: String) -> crate::proto::syncml::message::SyncMl {
        let call = syncml_call(msg);
        match d.call(call, NOW) {
            Ok(DeviceReply::SyncMl(doc)) => crate::proto::syncml::message::SyncMl::parse(&doc).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn hdr_status(reply: &crate::proto::syncml::message::SyncMl) -> String {
        match &reply.body.commands[0] {
            crate::proto::syncml::message::Command::Status(s) => s.data.clone(),
            other => panic!("{other:?}"),
        }
    }

    const ALERT_1201: &str = "<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>";

    #[test]
    fn unknown_and_retired_devices_are_refused_without_writes() {
        let d = MemoryDevice::default();
        let reply = syncml(&d, message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201));
        assert_eq!(hdr_status(&reply), "401");
        assert!(d.session.borrow().is_none());

        let d = enrolled("DEV");
        d.record.borrow_mut().as_mut().unwrap().status = DeviceStatus::Unenrolled;
        let before = d.session.borrow().clone();
        assert_eq!(hdr_status(&syncml(&d, message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201))), "403");
        assert_eq!(*d.session.borrow(), before);
    }

    #[test]
    fn malformed_messages_change_nothing() {
        let d = enrolled("DEV");
        let before = d.session.borrow().clone();
        for bad in [
            "not xml",
            "<a/>",
            &message("DEV", "1", 0, None, "").replace("<MsgID>0</MsgID>", "<MsgID>x</MsgID>"),
        ] {
            let call = syncml_call(bad.into());
            assert!(matches!(d.call(call, NOW), Err(DeviceError::MalformedSyncMl(_))), "{bad}");
        }
        assert_eq!(*d.session.borrow(), before);
    }

    #[test]
    fn a_device_reporting_another_device_id_is_sent_back_to_its_object() {
        // A Windows 8.1 device enrolled under a DeviceID the server chose ("GEN1") reports its
        // own ("PHONE-OWN") in LocURI, and the credential's name in LocName.
        let d = enrolled("GEN1");
        let msg = message("GEN1", "1", 1, Some(&[1; 16]), ALERT_1201)
            .replace("<Source><LocURI>GEN1</LocURI>", "<Source><LocURI>PHONE-OWN</LocURI>");
        let hdr = crate::proto::syncml::message::SyncMl::parse(&msg).unwrap().hdr;
        assert_eq!(crate::device::checkin::route(&hdr, None), "GEN1");
        let reply = syncml(&d, msg);
        assert_eq!(hdr_status(&reply), "200");
        assert_eq!(reply.hdr.target.loc_uri, "PHONE-OWN", "answered as it named itself");
        assert_eq!(reply.hdr.resp_uri.as_deref(), Some(format!("{SERVER}?dev=GEN1").as_str()));
        // Its next message carries no LocName: the RespURI's parameter routes it.
        let next = message("GEN1", "1", 2, Some(&[7; 16]), "").replace(
            "<Source><LocURI>GEN1</LocURI><LocName>GEN1</LocName>",
            "<Source><LocURI>PHONE-OWN</LocURI>",
        );
        let hdr = crate::proto::syncml::message::SyncMl::parse(&next).unwrap().hdr;
        assert_eq!(crate::device::checkin::route(&hdr, None), "PHONE-OWN");
        assert_eq!(crate::device::checkin::route(&hdr, Some("GEN1")), "GEN1");
        // A device that names itself as enrolled gets no RespURI.
        let w10 = enrolled("DEV");
        let reply = syncml(&w10, message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201));
        assert_eq!((hdr_status(&reply).as_str(), reply.hdr.resp_uri), ("200", None));
    }

    #[test]
    fn routing_prefers_the_url_then_the_credential_name_and_ignores_what_is_no_device_id() {
        use crate::device::checkin::route;
        let hdr = |uri: &str, name: Option<&str>| {
            let mut h = crate::proto::syncml::message::SyncHdr::default();
            h.source.loc_uri = uri.into();
            h.source.loc_name = name.map(Into::into);
            h
        };
        assert_eq!(route(&hdr("A", None), None), "A");
        assert_eq!(route(&hdr("A", Some("B")), None), "B");
        assert_eq!(route(&hdr("A", Some("B")), Some("C")), "C");
        assert_eq!(route(&hdr("A", Some("")), Some("bad/id")), "A");
        assert_eq!(route(&hdr(" A ", Some("x y")), Some(&"C".repeat(129))), "A");
    }

    #[test]
    fn check_in_delivers_queued_commands_and_records_statuses() {
        let d = enrolled("DEV");
        let queued = d.call(DeviceCall::QueueCommand { request: CommandRequest::Lock }, NOW).unwrap();
        let DeviceReply::Queued { id, status: CommandState::Queued } = queued else { panic!("{queued:?}") };
        let reply = syncml(&d, message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201));
        assert_eq!(hdr_status(&reply), "200");
        let exec = reply.body.commands.iter().find(|c| c.name() == "Exec").expect("the lock is sent");
        assert_eq!(d.commands.borrow()[&id].status, CommandState::Sent);
        assert!(d.record.borrow().is_some());
        let status = format!(
            "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>{}</CmdRef><Cmd>Exec</Cmd><Data>200</Data></Status>",
            exec.cmd_id()
        );
        // Without its Cred the message changes nothing.
        assert_eq!(hdr_status(&syncml(&d, message("DEV", "1", 2, None, &status))), "407");
        assert_eq!(d.commands.borrow()[&id].status, CommandState::Sent);
        syncml(&d, message("DEV", "1", 2, Some(&[7; 16]), &status));
        assert_eq!(d.commands.borrow()[&id].status, CommandState::Acknowledged);
        assert!(d.pending.borrow().is_empty(), "done commands leave the queue");
        assert!(d.mgmt.borrow().as_ref().unwrap().last_checkin.is_some());
    }

    #[test]
    fn commands_need_an_enrolled_device_and_room_in_the_queue() {
        let d = MemoryDevice::default();
        assert_eq!(
            d.call(DeviceCall::QueueCommand { request: CommandRequest::Lock }, NOW),
            Err(DeviceError::NoSuchDevice)
        );
        assert_eq!(d.call(DeviceCall::ListCommands, NOW), Err(DeviceError::NoSuchDevice));
        let d = enrolled("DEV");
        *d.pending.borrow_mut() = (0..MAX_PENDING).map(|i| i.to_string()).collect();
        assert_eq!(
            d.call(DeviceCall::QueueCommand { request: CommandRequest::Lock }, NOW),
            Err(DeviceError::QueueFull)
        );
        d.pending.borrow_mut().clear();
        d.call(DeviceCall::QueueCommand { request: CommandRequest::Reboot }, NOW).unwrap();
        d.call(DeviceCall::QueueCommand { request: CommandRequest::Wipe }, NOW).unwrap();
        let Ok(DeviceReply::Commands(list)) = d.call(DeviceCall::ListCommands, NOW) else { panic!() };
        assert_eq!(list.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(), ["reboot", "wipe"]);
        assert_eq!(d.call(DeviceCall::GetCommand { id: "9".into() }, NOW), Err(DeviceError::NoSuchCommand));
        d.record.borrow_mut().as_mut().unwrap().status = DeviceStatus::Retired;
        assert_eq!(
            d.call(DeviceCall::QueueCommand { request: CommandRequest::Lock }, NOW),
            Err(DeviceError::NotEnrolled)
        );
    }

    #[test]
    fn the_retire_deadline_waits_for_its_time() {
        let d = enrolled("DEV");
        d.call(DeviceCall::Retire, NOW).unwrap();
        let grace = 7 * 86_400_000;
        let at = |now_ms| {
            let ctx = MemoryDevice::context(now_ms);
            crate::object_call::block_on(handle(
                &d,
                &super::memory::NoCatalog,
                DeviceCall::RetireDeadline,
                ctx,
            ))
            .unwrap()
        };
        // Woken early (the alarm also retries the fleet index): still retiring, re-armed.
        let early = at(NOW + 60_000);
        assert!(early.writes.is_empty());
        assert_eq!(early.alarm, Some(NOW + grace));
        assert_eq!(d.record.borrow().as_ref().unwrap().status, DeviceStatus::Retiring);
        let due = at(NOW + grace);
        assert_eq!(due.alarm, None);
        assert!(due
            .writes
            .iter()
            .any(|w| matches!(w, DeviceWrite::Record(r) if r.status == DeviceStatus::Retired)));
    }

    #[test]
    fn retire_queues_the_unenroll_once_and_completes_on_acknowledgement() {
        let d = enrolled("DEV");
        let r = d.call(DeviceCall::Retire, NOW).unwrap();
        assert_eq!(r, DeviceReply::Retire { device_id: "DEV".into(), status: DeviceStatus::Retiring });
        assert_eq!(d.pending.borrow().len(), 1);
        // At once: the certificate is revoked and the listing says retiring.
        let effects = d.effects.borrow().clone();
        assert!(matches!(&effects[0], DeviceEffect::Index(e) if e.status == DeviceStatus::Retiring));
        assert_eq!(effects[1], DeviceEffect::Revoke { serials: vec!["0A".into()] });
        d.call(DeviceCall::Retire, NOW).unwrap();
        assert_eq!(d.pending.borrow().len(), 1, "a second retire queues nothing more");
        assert_eq!(d.effects.borrow().len(), 4, "but completes the revocation and listing again");
        d.effects.borrow_mut().clear();

        let reply = syncml(&d, message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201));
        let exec = reply.body.commands.iter().find(|c| c.name() == "Exec").expect("the unenroll is sent");
        let status = format!(
            "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>{}</CmdRef><Cmd>Exec</Cmd><Data>200</Data></Status>",
            exec.cmd_id()
        );
        syncml(&d, message("DEV", "1", 2, Some(&[7; 16]), &status));
        assert_eq!(d.record.borrow().as_ref().unwrap().status, DeviceStatus::Retired);
        let effects = d.effects.borrow();
        assert!(matches!(&effects[0], DeviceEffect::Index(e) if e.status == DeviceStatus::Retired));
        assert_eq!(effects[1], DeviceEffect::Revoke { serials: vec!["0A".into()] });
        drop(effects);
        let r = d.call(DeviceCall::Retire, NOW).unwrap();
        assert_eq!(r, DeviceReply::Retire { device_id: "DEV".into(), status: DeviceStatus::Retired });
    }

    #[test]
    fn a_device_that_left_is_retired_at_once() {
        let d = enrolled("DEV");
        d.record.borrow_mut().as_mut().unwrap().status = DeviceStatus::Unenrolled;
        let r = d.call(DeviceCall::Retire, NOW).unwrap();
        assert_eq!(r, DeviceReply::Retire { device_id: "DEV".into(), status: DeviceStatus::Retired });
        assert!(d.pending.borrow().is_empty());
        assert_eq!(d.effects.borrow().len(), 2);
        assert_eq!(d.call(DeviceCall::Retire, NOW + 1).unwrap(), r, "idempotent");
        assert_eq!(d.call(DeviceCall::Retire, NOW).map(|_| ()), Ok(()));
        assert_eq!(MemoryDevice::default().call(DeviceCall::Retire, NOW), Err(DeviceError::NoSuchDevice));
    }

    #[test]
    fn re_enrollment_resets_the_session_and_the_retire_request() {
        let d = enrolled("DEV");
        d.call(DeviceCall::Retire, NOW).unwrap();
        syncml(&d, message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201));
        assert_ne!(d.session.borrow().as_ref().unwrap().nonce, vec![1; 16], "the nonce moved on");
        d.call(DeviceCall::Enroll { record: Box::new(record("DEV")), credentials: credentials("DEV") }, NOW)
            .unwrap();
        assert!(!d.mgmt.borrow().as_ref().unwrap().retire_requested);
        assert_eq!(d.session.borrow().as_ref().unwrap().nonce, vec![1; 16], "back to the provisioned nonce");
    }

    #[test]
    fn renewal_updates_only_an_enrolled_record() {
        let d = enrolled("DEV");
        let cert = CertRef {
            serial: "0B".into(),
            thumbprint: "T2".into(),
            not_before: "a".into(),
            not_after: "b".into(),
            renews: Some("0A".into()),
        };
        let call = || DeviceCall::Renewed {
            certificate: cert.clone(),
            renewed_at: "t1".into(),
            previous: "0A".into(),
        };
        let Ok(DeviceReply::Record(r)) = d.call(call(), NOW) else { panic!() };
        assert_eq!((r.certificate.serial.as_str(), r.renewed_at.as_deref()), ("0B", Some("t1")));
        d.record.borrow_mut().as_mut().unwrap().status = DeviceStatus::Retired;
        assert_eq!(d.call(call(), NOW), Err(DeviceError::NotEnrolled));
        assert_eq!(MemoryDevice::default().call(call(), NOW), Err(DeviceError::NoSuchDevice));
    }

    #[test]
    fn an_idle_check_in_writes_one_row() {
        let d = enrolled("DEV");
        let mut row = DeviceRow {
            record: d.record.borrow().clone(),
            credentials: d.credentials.borrow().clone(),
            mgmt: d.mgmt.borrow().clone(),
            session: d.session.borrow().clone(),
            pending: vec![],
            cmd_seq: 0,
            profile_sync: None,
            index: None,
        };
        let ctx = DeviceContext {
            now_ms: NOW,
            fresh_nonce: [9; 16],
            history: HistoryLimits::default(),
            retire_grace_secs: 60,
            profile_verify_interval_secs: 28_800,
        };
        let call = syncml_call(message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201));
        let out = crate::object_call::block_on(handle(&d, &memory::NoCatalog, call, ctx)).unwrap();
        let (changed, commands) = row.apply(out.writes);
        assert!(changed && commands.is_empty(), "one row: the state; no command rows");
        assert_eq!(row.session.as_ref().unwrap().nonce, vec![9; 16]);
        let back: DeviceRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert_eq!(back, row);
    }

    /// A catalogue that counts how often it is asked.
    struct Counting(std::cell::Cell<u32>);

    impl Catalog for Counting {
        async fn catalog(
            &self,
            _call: CatalogCall,
        ) -> Result<Result<CatalogReply, crate::profiles::catalog::CatalogError>, StoreError> {
            self.0.set(self.0.get() + 1);
            Ok(Ok(CatalogReply::Current { rev: 0 }))
        }
    }

    #[test]
    fn only_authenticated_messages_ask_the_catalogue() {
        let d = enrolled("DEV");
        let c = Counting(std::cell::Cell::new(0));
        // Someone who knows the DeviceID, over and over: never a catalogue call.
        for (n, cred) in [None, Some(&[9u8; 16][..])].into_iter().enumerate() {
            d.call_with(&c, syncml_call(message("DEV", &format!("9{n}"), 1, cred, ALERT_1201)), NOW).unwrap();
        }
        assert_eq!(c.0.get(), 0);
        // The device's own session start: one.
        d.call_with(&c, syncml_call(message("DEV", "1", 1, Some(&[1; 16]), ALERT_1201)), NOW).unwrap();
        assert_eq!(c.0.get(), 1);
    }

    #[test]
    fn calls_survive_the_wire() {
        let call = DeviceCall::Enroll { record: Box::new(record("D")), credentials: credentials("D") };
        let back: DeviceCall = serde_json::from_str(&serde_json::to_string(&call).unwrap()).unwrap();
        assert_eq!(back, call);
        let reply: Result<DeviceReply, DeviceError> = Err(DeviceError::QueueFull);
        let back: Result<DeviceReply, DeviceError> =
            serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
        assert_eq!(back, reply);
    }

    mod profiles {
        use super::*;
        use crate::profiles::catalog::memory::MemoryCatalog;
        use crate::profiles::request::ProfileRequest;
        use crate::profiles::{Format, ProfileStatus, Setting, Targets};
        use crate::proto::syncml::message::{Command, SyncMl};
        use std::collections::BTreeMap as Map;

        const CAMERA: &str = "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera";
        const CAMERA_RESULT: &str = "./Device/Vendor/MSFT/Policy/Result/Camera/AllowCamera";

        /// The shell's part: the device object's profile reports reach the catalogue.
        fn deliver_reports(d: &MemoryDevice, c: &MemoryCatalog, id: &str) {
            for e in d.effects.borrow_mut().drain(..) {
                if let DeviceEffect::ProfileReport { device_id, statuses, removed } = e {
                    assert_eq!(device_id, id);
                    c.call(CatalogCall::Report { device_id, statuses, removed }).unwrap();
                }
            }
        }

        fn call(d: &MemoryDevice, c: &MemoryCatalog, msg: String) -> SyncMl {
            let call = syncml_call(msg);
            match d.call_with(c, call, NOW) {
                Ok(DeviceReply::SyncMl(doc)) => SyncMl::parse(&doc).unwrap(),
                other => panic!("{other:?}"),
            }
        }

        /// The device's answer to a server message: a Status per command, Results for Gets
        /// from `tree`; writes go into the tree (Policy Config mirrored to Result).
        fn answer(reply: &SyncMl, tree: &mut Map<String, String>) -> String {
            let msg_ref = &reply.hdr.msg_id;
            let mut out = format!("<Status><CmdID>1</CmdID><MsgRef>{msg_ref}</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>");
            let mut n = 2;
            for c in reply.body.commands.iter().filter(|c| c.name() != "Status") {
                let (code, results) = match c {
                    Command::Replace(r) => {
                        let uri = r.items[0].target.as_ref().unwrap().loc_uri.clone();
                        let data = r.items[0].data.clone().unwrap();
                        tree.insert(crate::profiles::reconcile::read_back_uri(&uri), data.clone());
                        tree.insert(uri, data);
                        ("200", None)
                    }
                    Command::Get(g) => {
                        let uri = g.items[0].target.as_ref().unwrap().loc_uri.clone();
                        match tree.get(&uri) {
                            Some(v) => (
                                "200",
                                Some(format!(
                                    "<Item><Source><LocURI>{uri}</LocURI></Source><Data>{v}</Data></Item>"
                                )),
                            ),
                            None => ("404", None),
                        }
                    }
                    Command::Delete(x) => {
                        let uri = x.items[0].target.as_ref().unwrap().loc_uri.clone();
                        tree.remove(&crate::profiles::reconcile::read_back_uri(&uri));
                        (if tree.remove(&uri).is_some() { "200" } else { "404" }, None)
                    }
                    _ => ("200", None),
                };
                out += &format!("<Status><CmdID>{n}</CmdID><MsgRef>{msg_ref}</MsgRef><CmdRef>{}</CmdRef><Cmd>{}</Cmd><Data>{code}</Data></Status>", c.cmd_id(), c.name());
                n += 1;
                if let Some(items) = results {
                    out += &format!("<Results><CmdID>{n}</CmdID><MsgRef>{msg_ref}</MsgRef><CmdRef>{}</CmdRef>{items}</Results>", c.cmd_id());
                    n += 1;
                }
            }
            out
        }

        /// One session; the names of the commands the device received.
        fn session(
            d: &MemoryDevice,
            c: &MemoryCatalog,
            sid: &str,
            first_nonce: &[u8],
            tree: &mut Map<String, String>,
        ) -> Vec<String> {
            let mut reply = call(d, c, message("DEV", sid, 1, Some(first_nonce), ALERT_1201));
            let mut got = Vec::new();
            for msg_id in 2..20 {
                let cmds: Vec<&Command> =
                    reply.body.commands.iter().filter(|x| x.name() != "Status").collect();
                if cmds.is_empty() {
                    deliver_reports(d, c, "DEV");
                    return got;
                }
                got.extend(cmds.iter().map(|x| x.name().to_string()));
                let body = answer(&reply, tree);
                reply = call(d, c, message("DEV", sid, msg_id, Some(&[7; 16]), &body));
            }
            panic!("the session does not end")
        }

        fn profile(targets: Targets) -> ProfileRequest {
            ProfileRequest {
                name: "camera".into(),
                description: None,
                settings: vec![Setting {
                    uri: CAMERA.into(),
                    format: Format::Int,
                    data: "0".into(),
                    read_back: true,
                }],
                targets,
                atomic: false,
            }
        }

        #[test]
        fn a_profile_is_delivered_verified_and_reported_in_one_session() {
            let c = MemoryCatalog::default();
            let d = enrolled("DEV");
            let mut tree = Map::new();
            c.call(CatalogCall::CreateProfile { request: profile(Targets::All), now: "t".into() }).unwrap();
            // Admin commands queued before go first.
            d.call(DeviceCall::QueueCommand { request: CommandRequest::Lock }, NOW).unwrap();
            let got = session(&d, &c, "1", &[1; 16], &mut tree);
            assert_eq!(got, ["Exec", "Replace", "Get"]);
            assert_eq!(tree.get(CAMERA_RESULT).map(String::as_str), Some("0"));
            let Ok(DeviceReply::Profiles(v)) = d.call(DeviceCall::Profiles, NOW) else { panic!() };
            assert_eq!((v[0].id.as_str(), v[0].status), ("p1", ProfileStatus::Verified));
            assert_eq!(v[0].settings[0].code.as_deref(), Some("200"));
            assert_eq!(c.counts.borrow()["p1"].verified, 1, "the catalogue counts it");
            assert_eq!(c.statuses.borrow().len(), 1);

            // The next session: the revision did not move, nothing is sent.
            c.calls.borrow_mut().clear();
            assert!(session(&d, &c, "2", &[7; 16], &mut tree).is_empty());
            assert_eq!(*c.calls.borrow(), ["sync"], "one cheap call per session");

            // Deleted: the setting is deleted, then the profile leaves the device and the counts.
            c.call(CatalogCall::DeleteProfile { id: "p1".into() }).unwrap();
            assert_eq!(session(&d, &c, "3", &[7; 16], &mut tree), ["Delete"]);
            assert!(tree.is_empty());
            let Ok(DeviceReply::Profiles(v)) = d.call(DeviceCall::Profiles, NOW) else { panic!() };
            assert!(v.is_empty());
            assert!(d.profiles.borrow().is_empty());
            assert!(c.statuses.borrow().is_empty() && c.counts.borrow().is_empty());
        }

        #[test]
        fn package_1_repeated_after_a_challenge_still_asks_the_catalogue() {
            let c = MemoryCatalog::default();
            let d = enrolled("DEV");
            c.call(CatalogCall::CreateProfile { request: profile(Targets::All), now: "t".into() }).unwrap();
            let challenged = call(&d, &c, message("DEV", "1", 1, None, ALERT_1201));
            assert_eq!(hdr_status(&challenged), "407");
            assert!(d.profile_sync.borrow().is_none(), "an unauthenticated message stores nothing");
            let reply = call(&d, &c, message("DEV", "1", 2, Some(&[1; 16]), ALERT_1201));
            let sent: Vec<&str> =
                reply.body.commands.iter().map(|x| x.name()).filter(|n| *n != "Status").collect();
            assert_eq!(sent, ["Replace"]);
        }

        #[test]
        fn a_device_without_profiles_stores_nothing_for_them() {
            let c = MemoryCatalog::default();
            let d = enrolled("DEV");
            let mut tree = Map::new();
            c.call(CatalogCall::CreateProfile {
                request: profile(Targets::Devices(vec!["OTHER".into()])),
                now: "t".into(),
            })
            .unwrap();
            assert!(session(&d, &c, "1", &[1; 16], &mut tree).is_empty());
            let sync = d.profile_sync.borrow().clone().unwrap();
            assert_eq!((sync.rev, sync.ids.len()), (1, 0), "the revision is remembered");
            assert!(d.profiles.borrow().is_empty());
            assert!(c.statuses.borrow().is_empty());
        }

        #[test]
        fn retiring_or_re_enrolling_forgets_the_profiles_and_tells_the_catalogue() {
            let c = MemoryCatalog::default();
            let d = enrolled("DEV");
            let mut tree = Map::new();
            c.call(CatalogCall::CreateProfile { request: profile(Targets::All), now: "t".into() }).unwrap();
            session(&d, &c, "1", &[1; 16], &mut tree);
            d.call(
                DeviceCall::Enroll { record: Box::new(record("DEV")), credentials: credentials("DEV") },
                NOW,
            )
            .unwrap();
            deliver_reports(&d, &c, "DEV");
            assert!(c.statuses.borrow().is_empty());
            assert_eq!(session(&d, &c, "2", &[1; 16], &mut tree), ["Replace", "Get"], "delivered again");
            d.call(DeviceCall::Retire, NOW).unwrap();
            deliver_reports(&d, &c, "DEV");
            assert!(d.profiles.borrow().is_empty());
            assert_eq!(c.counts.borrow()["p1"].total(), 0);
        }
    }
}
