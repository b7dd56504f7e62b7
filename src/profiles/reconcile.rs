//! Reconciliation, pure: one device's profiles, what applies to it now and what it answered →
//! the commands to send and the status transitions ([`reconcile`]). The device object stores
//! the [`DeviceProfile`]s (its desired and observed state), runs this on every management
//! message, queues the commands after the admin's, and reports the transitions to the
//! catalogue.
//!
//! One setting's life ([`Phase`]):
//!
//! ```text
//!   Write(Replace) ──2xx──▶ Read ──same value──▶ Verified ──(every PROFILE_VERIFY_INTERVAL)──▶ Read(recheck)
//!     │  ▲  │404          │  └─405/406: not readable → Verified "on acknowledgement"   │different value
//!     │  │  ▼             └─different value / 4xx,5xx ──▶ Failed        (drift: re-applied) ◀┘
//!     │  └418─ Write(Add)
//!     └─other 4xx/5xx ──▶ Failed
//!   no longer applies ──▶ Delete ──2xx or 404──▶ gone      another profile wins the node ──▶ Conflict
//! ```
//!
//! Commands are plain OMA-DM `Replace`/`Add`/`Get`/`Delete` (OMA-DM 1.2 Protocol §6.6); every
//! setting's own status code is recorded ([MS-MDM] §2.2.6.1; OMA-DM 1.2 Protocol §10
//! "Response Status Codes").
//!
//! **Delivery: one command per setting, by default.** An OMA-DM `Atomic` (OMA-DM 1.2 Protocol
//! §6.6.2) fails the whole profile when one setting is refused: Windows answers 507 and rolls
//! back the others (216), so one setting a Windows edition does not support keeps every other
//! setting of the profile off the device — what Fleet's users hit with whole profiles stuck on
//! one bad setting (fleetdm/fleet #30098, #31922). Per-setting delivery applies what the
//! device accepts and shows exactly which setting it refused and why; the price is that a
//! profile can be half applied, which the status says (`failed`, with the refused setting and
//! its code) rather than hides. Settings that only make sense together (a node and the nodes
//! that depend on it) can ask for all-or-nothing with `"atomic": true`: their writes then go in
//! one `Atomic`, a 507 fails the profile with each setting's own code (216 for the rolled-back
//! ones), and the only retry is the Replace/Add fallback below.
//!
//! **Replace first** (a policy node of the Policy CSP always takes a Replace); a 404 (node not
//! there) is retried as Add, a 418 on an Add (already exists) as Replace, at most
//! [`MAX_FALLBACKS`] times.
//!
//! **Verification reads back** each acknowledged setting: Policy CSP settings at
//! `…/Policy/Result/{Area}/{Policy}`, the effective value (Microsoft Learn "Policy CSP"), other
//! nodes at their own URI. Nodes that cannot be read back (`"read_back": false`, or a device
//! that answers the Get with 405/406) count as verified on acknowledgement, and the setting
//! says so (`verified_by`).
//!
//! **Conflicts**: when two profiles on one device set one node to different values, the
//! profile created first (lower `seq`) wins, on every check-in: the other's setting is not
//! sent and shows `conflict`, and both list each other. Nothing flips between check-ins,
//! because the winner depends only on the profiles, never on what the device did last.
//!
//! **Removal**: a profile that no longer applies, or a setting a new version dropped, is
//! deleted from the device (Policy CSP: a Delete means "not configured"), unless another
//! profile still sets that node; the profile leaves the device's list once every Delete was
//! answered (2xx, or 404: already gone).

use super::compare::same_value;
use super::{DesiredProfile, DeviceProfileStatus, Format, ProfileStatus, Setting};
use crate::commands::{capped, MAX_VALUE_BYTES};
use crate::proto::syncml::codes::{
    is_success, STATUS_ALREADY_EXISTS, STATUS_ATOMIC_ROLLBACK_OK, STATUS_COMMAND_NOT_ALLOWED,
    STATUS_NOT_FOUND, STATUS_NOT_SUPPORTED, STATUS_OK,
};
use crate::proto::syncml::message::{Add, Atomic, Command, Delete, Get, Item, Replace};
use crate::proto::syncml::session::{Event, QueuedCommand, Session};
use crate::time::format_timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Queued ids of profile commands: `p:<profile id>:<command number>`.
pub const COMMAND_PREFIX: &str = "p:";
/// How often one write switches between Replace and Add (404 → Add, 418 → Replace) before it
/// fails with the device's code.
pub const MAX_FALLBACKS: u32 = 2;

/// How a setting is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteOp {
    Replace,
    Add,
}

/// Where one setting is. `cmd` numbers the command within its profile; a phase that needs a
/// command keeps it until the device answers, so it is sent again in the next session when
/// the answer did not come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Write the value.
    Write {
        op: WriteOp,
        cmd: u32,
    },
    /// Read the value back; `recheck`: a drift check of a verified setting.
    Read {
        cmd: u32,
        recheck: bool,
    },
    Verified,
    Failed,
    /// Another profile sets this node to another value and wins.
    Conflict,
    /// Delete the node: the setting no longer applies.
    Delete {
        cmd: u32,
    },
    /// Deleted, or nothing to delete: the setting leaves the device's state.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifiedBy {
    /// The value read back matched.
    ReadBack,
    /// The node cannot be read back; the device acknowledged the write.
    Acknowledgement,
}

/// A difference found by a drift check, and re-applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// What the device held (`None`: the node was gone or unreadable).
    pub observed: Option<String>,
    pub at: String,
}

/// One setting of a profile on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingState {
    #[serde(flatten)]
    pub setting: Setting,
    pub phase: Phase,
    /// The device's latest code for this setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The value last read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<VerifiedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// Profiles that set this node to another value on this device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    #[serde(default)]
    pub fallbacks: u32,
    /// A new version of the profile dropped this setting: it is being deleted.
    #[serde(default)]
    pub dropped: bool,
}

impl SettingState {
    fn new(setting: Setting, cmd: u32) -> Self {
        SettingState {
            setting,
            phase: Phase::Write { op: WriteOp::Replace, cmd },
            code: None,
            observed: None,
            verified_by: None,
            note: None,
            drift: None,
            conflicts: Vec::new(),
            fallbacks: 0,
            dropped: false,
        }
    }

    fn cmd(&self) -> Option<u32> {
        match self.phase {
            Phase::Write { cmd, .. } | Phase::Read { cmd, .. } | Phase::Delete { cmd } => Some(cmd),
            _ => None,
        }
    }

    /// Set by a profile that still applies (not being removed or dropped).
    fn active(&self) -> bool {
        !self.dropped && self.phase != Phase::Gone
    }
}

/// An `Atomic` of a profile's writes that was planned (and maybe sent), with the answers so
/// far: the Atomic's own code and each child's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtomicWrite {
    pub cmd: u32,
    /// Indexes of the settings written, in the Atomic's order.
    pub children: Vec<usize>,
    pub code: Option<String>,
    pub child_codes: Vec<Option<String>>,
}

/// One profile on one device (device object storage key `prof:<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProfile {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub version: u32,
    pub atomic: bool,
    /// The profile no longer applies to this device: its settings are being deleted.
    pub removing: bool,
    pub status: ProfileStatus,
    pub settings: Vec<SettingState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atomic_write: Option<AtomicWrite>,
    /// The last command number used.
    pub last_cmd: u32,
    /// When the profile last became verified or failed, or finished a drift check (Unix ms):
    /// the next drift check (or retry of a failed Delete) is due an interval later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<u64>,
    pub updated_at: String,
}

impl DeviceProfile {
    fn from_desired(d: &DesiredProfile, now: &str) -> Self {
        let mut p = DeviceProfile {
            id: d.id.clone(),
            seq: d.seq,
            name: d.name.clone(),
            version: d.version,
            atomic: d.atomic,
            removing: false,
            status: ProfileStatus::Pending,
            settings: Vec::new(),
            atomic_write: None,
            last_cmd: 0,
            checked_at: None,
            updated_at: now.to_string(),
        };
        for s in &d.settings {
            let cmd = p.next_cmd();
            p.settings.push(SettingState::new(s.clone(), cmd));
        }
        p
    }

    fn next_cmd(&mut self) -> u32 {
        self.last_cmd += 1;
        self.last_cmd
    }

    fn command_id(&self, cmd: u32) -> String {
        format!("{COMMAND_PREFIX}{}:{cmd}", self.id)
    }

    /// The status its settings add up to.
    fn derive_status(&self) -> ProfileStatus {
        let any = |f: &dyn Fn(&SettingState) -> bool| self.settings.iter().any(f);
        if self.removing {
            return if any(&|s| s.phase == Phase::Failed) {
                ProfileStatus::Failed
            } else {
                ProfileStatus::Removing
            };
        }
        if any(&|s| matches!(s.phase, Phase::Failed | Phase::Conflict)) {
            ProfileStatus::Failed
        } else if any(&|s| matches!(s.phase, Phase::Write { .. } | Phase::Delete { .. })) {
            ProfileStatus::Pending
        } else if any(&|s| matches!(s.phase, Phase::Read { recheck: false, .. })) {
            ProfileStatus::Verifying
        } else {
            ProfileStatus::Verified
        }
    }

    /// What the catalogue is told.
    pub fn report(&self, device_id: &str) -> DeviceProfileStatus {
        DeviceProfileStatus {
            profile_id: self.id.clone(),
            device_id: device_id.to_string(),
            version: self.version,
            status: self.status,
            updated_at: self.updated_at.clone(),
        }
    }

    /// As `GET /api/v1/devices/{id}/profiles` shows it.
    pub fn view(&self) -> DeviceProfileView {
        let settings: Vec<SettingView> = self.settings.iter().map(|s| s.view(self.removing)).collect();
        let conflicts = self
            .settings
            .iter()
            .filter(|s| !s.conflicts.is_empty())
            .map(|s| ConflictView { uri: s.setting.uri.clone(), profiles: s.conflicts.clone() })
            .collect();
        DeviceProfileView {
            id: self.id.clone(),
            name: self.name.clone(),
            version: self.version,
            status: self.status,
            atomic: self.atomic,
            settings,
            conflicts,
            checked_at: self.checked_at.map(format_timestamp),
            updated_at: self.updated_at.clone(),
        }
    }
}

/// One profile on a device, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProfileView {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub status: ProfileStatus,
    pub atomic: bool,
    pub settings: Vec<SettingView>,
    /// Nodes this profile and others set to different values on this device.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub conflicts: Vec<ConflictView>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checked_at: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictView {
    pub uri: String,
    /// The other profiles setting this node.
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingView {
    pub uri: String,
    /// `pending`, `verifying`, `verified`, `failed`, `conflict` or `removing`.
    pub status: String,
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub observed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verified_by: Option<VerifiedBy>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drift: Option<Drift>,
}

impl SettingState {
    fn view(&self, removing: bool) -> SettingView {
        let status = match self.phase {
            Phase::Write { .. } => "pending",
            Phase::Read { recheck: false, .. } => "verifying",
            Phase::Read { recheck: true, .. } | Phase::Verified => "verified",
            Phase::Failed => "failed",
            Phase::Conflict => "conflict",
            Phase::Delete { .. } | Phase::Gone => "removing",
        };
        let status =
            if (removing || self.dropped) && self.phase != Phase::Failed { "removing" } else { status };
        SettingView {
            uri: self.setting.uri.clone(),
            status: status.to_string(),
            code: self.code.clone(),
            observed: self.observed.clone(),
            verified_by: self.verified_by,
            note: self.note.clone(),
            drift: self.drift.clone(),
        }
    }
}

/// The node that holds a setting's effective value: the Policy CSP's `Result` node for a
/// `Config` policy (Microsoft Learn "Policy CSP": `./Device/Vendor/MSFT/Policy/Result/
/// {AreaName}/{PolicyName}`, likewise under `./Vendor` and `./User/Vendor`), the node itself
/// otherwise.
pub fn read_back_uri(uri: &str) -> String {
    let segs: Vec<&str> = uri.split('/').collect();
    let n = segs.len();
    if n >= 6 && segs[n - 5..n - 2] == ["MSFT", "Policy", "Config"] && segs[n - 6] == "Vendor" {
        let mut out = segs.clone();
        out[n - 3] = "Result";
        return out.join("/");
    }
    uri.to_string()
}

/// What the device answered to a profile command, from the session engine's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A Status. `child`: for a command inside an Atomic, its position there.
    Status { profile: String, cmd: u32, child: Option<usize>, code: String },
    /// The Results of a read-back.
    Results { profile: String, cmd: u32, data: Option<String> },
}

fn parse_command_id(id: &str) -> Option<(String, u32)> {
    let (profile, cmd) = id.strip_prefix(COMMAND_PREFIX)?.rsplit_once(':')?;
    Some((profile.to_string(), cmd.parse().ok()?))
}

/// Whether a queued id is a profile command.
pub fn is_profile_command(id: &str) -> bool {
    id.starts_with(COMMAND_PREFIX)
}

/// The answers to profile commands among a message's events. `session` is the session after
/// the message: it says which child of an Atomic a nested Status is about (children are
/// recorded in order after their parent).
pub fn reports(events: &[Event], session: Option<&Session>) -> Vec<Report> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::CommandStatus { id: Some(id), msg_ref, cmd_ref, code, nested, .. } => {
                let Some((profile, cmd)) = parse_command_id(id) else { continue };
                let child = if *nested {
                    let kids = session
                        .iter()
                        .flat_map(|s| &s.sent)
                        .filter(|x| x.id == *id && x.msg_id == *msg_ref && x.nested);
                    match kids.enumerate().find(|(_, x)| x.cmd_id == *cmd_ref) {
                        Some((k, _)) => Some(k),
                        None => continue,
                    }
                } else {
                    None
                };
                out.push(Report::Status { profile, cmd, child, code: code.clone() });
            }
            Event::CommandResults { id: Some(id), items, .. } => {
                let Some((profile, cmd)) = parse_command_id(id) else { continue };
                let data = items.first().and_then(|i| i.data.clone());
                out.push(Report::Results { profile, cmd, data });
            }
            _ => {}
        }
    }
    out
}

/// A change of a profile's status (or version) on the device; `to: None`: it left the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub profile_id: String,
    pub version: u32,
    pub from: Option<ProfileStatus>,
    pub to: Option<ProfileStatus>,
}

/// Everything [`reconcile`] reads.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The profiles that apply to the device now, when the catalogue answered with a new
    /// revision; `None`: unchanged since the last reconcile.
    pub desired: Option<&'a [DesiredProfile]>,
    /// The device's profiles as stored.
    pub profiles: Vec<DeviceProfile>,
    /// What the device answered since.
    pub reports: &'a [Report],
    /// The message starts a management session: answers from earlier sessions will not come,
    /// and drift checks that are due begin.
    pub session_start: bool,
    pub now_ms: u64,
    /// `PROFILE_VERIFY_INTERVAL_SECONDS`, in milliseconds.
    pub verify_interval_ms: u64,
}

/// What [`reconcile`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Every profile still on the device, in `seq` order.
    pub profiles: Vec<DeviceProfile>,
    /// Profiles that left the device (every Delete answered).
    pub removed: Vec<String>,
    /// What to send, in order, after the admin's commands.
    pub commands: Vec<QueuedCommand>,
    pub transitions: Vec<Transition>,
}

/// (the profiles that apply to this device, what it acknowledged and reported) → the commands
/// to send and the status transitions.
pub fn reconcile(input: Input<'_>) -> Output {
    let now = format_timestamp(input.now_ms);
    let before: BTreeMap<String, (u32, ProfileStatus)> =
        input.profiles.iter().map(|p| (p.id.clone(), (p.version, p.status))).collect();
    let mut profiles = input.profiles;
    crate::sorting::sort_by_key(&mut profiles, |p| p.seq);

    if input.session_start {
        // Answers to an Atomic sent in an earlier session will not come: it is sent again whole.
        for p in &mut profiles {
            if let Some(a) = &mut p.atomic_write {
                a.code = None;
                a.child_codes = vec![None; a.children.len()];
            }
        }
    }
    for r in input.reports {
        answer(&mut profiles, r, &now, input.now_ms);
    }
    for p in &mut profiles {
        finish_atomic(p);
    }
    if let Some(desired) = input.desired {
        merge_desired(&mut profiles, desired, &now);
    }
    resolve_conflicts(&mut profiles);
    if input.session_start {
        for p in &mut profiles {
            schedule_checks(p, input.now_ms, input.verify_interval_ms);
        }
    }

    let mut removed = Vec::new();
    let mut transitions = Vec::new();
    profiles.retain_mut(|p| {
        p.settings.retain(|s| s.phase != Phase::Gone || !(s.dropped || p.removing));
        if p.removing && p.settings.is_empty() {
            removed.push(p.id.clone());
            return false;
        }
        let status = p.derive_status();
        if status != p.status {
            p.status = status;
            p.updated_at = now.clone();
            if matches!(status, ProfileStatus::Verified | ProfileStatus::Failed) {
                p.checked_at = Some(input.now_ms);
            }
        }
        true
    });
    for p in &profiles {
        let to = (p.version, p.status);
        let from = before.get(&p.id);
        if from != Some(&to) {
            transitions.push(Transition {
                profile_id: p.id.clone(),
                version: p.version,
                from: from.map(|f| f.1),
                to: Some(p.status),
            });
        }
    }
    for id in &removed {
        let (version, from) = before.get(id).copied().unwrap_or((0, ProfileStatus::Removing));
        transitions.push(Transition { profile_id: id.clone(), version, from: Some(from), to: None });
    }
    let commands = profiles.iter_mut().flat_map(commands_of).collect();
    Output { profiles, removed, commands, transitions }
}

fn report_profile(r: &Report) -> &str {
    match r {
        Report::Status { profile, .. } | Report::Results { profile, .. } => profile,
    }
}

/// Applies one answer of the device.
fn answer(profiles: &mut [DeviceProfile], r: &Report, now: &str, now_ms: u64) {
    let Some(p) = profiles.iter_mut().find(|p| p.id == report_profile(r)) else { return };
    let checking =
        |p: &DeviceProfile| p.settings.iter().any(|s| matches!(s.phase, Phase::Read { recheck: true, .. }));
    let was_checking = checking(p);
    match r {
        Report::Status { cmd, child, code, .. } => {
            if let Some(a) = p.atomic_write.as_mut().filter(|a| a.cmd == *cmd) {
                match child {
                    None => a.code = Some(code.clone()),
                    Some(k) => {
                        if let Some(slot) = a.child_codes.get_mut(*k) {
                            *slot = Some(code.clone());
                        }
                    }
                }
                return;
            }
            let Some(i) = p.settings.iter().position(|s| s.cmd() == Some(*cmd)) else { return };
            match p.settings[i].phase.clone() {
                Phase::Write { op, .. } => written(p, i, op, code),
                Phase::Read { recheck, .. } => read_status(p, i, recheck, code, now),
                Phase::Delete { .. } => {
                    let gone = deleted(&mut p.settings[i], code);
                    if !gone {
                        p.checked_at = Some(now_ms); // retried an interval from now
                    }
                }
                _ => {}
            }
        }
        Report::Results { cmd, data, .. } => {
            let Some(i) = p.settings.iter().position(|s| s.cmd() == Some(*cmd)) else { return };
            if let Phase::Read { recheck, .. } = p.settings[i].phase {
                read_value(p, i, recheck, data.as_deref().unwrap_or(""), now);
            }
        }
    }
    if was_checking && !checking(p) {
        p.checked_at = Some(now_ms); // a drift check finished
    }
}

/// The device answered a write of setting `i`.
fn written(p: &mut DeviceProfile, i: usize, op: WriteOp, code: &str) {
    let cmd = p.next_cmd();
    let s = &mut p.settings[i];
    s.code = Some(code.to_string());
    if is_success(code) && code != STATUS_ATOMIC_ROLLBACK_OK {
        if s.setting.read_back {
            s.phase = Phase::Read { cmd, recheck: false };
            s.note = None;
        } else {
            s.phase = Phase::Verified;
            s.verified_by = Some(VerifiedBy::Acknowledgement);
            s.note = Some("not read back (write-only node): verified on acknowledgement".into());
        }
        return;
    }
    let fallback = match (op, code) {
        (WriteOp::Replace, STATUS_NOT_FOUND) => Some(WriteOp::Add),
        (WriteOp::Add, STATUS_ALREADY_EXISTS) => Some(WriteOp::Replace),
        _ => None,
    };
    match fallback {
        Some(next) if s.fallbacks < MAX_FALLBACKS => {
            s.fallbacks += 1;
            s.phase = Phase::Write { op: next, cmd };
        }
        _ => {
            s.phase = Phase::Failed;
            s.note = Some(format!("the device refused the {}", op_name(op)));
        }
    }
}

fn op_name(op: WriteOp) -> &'static str {
    match op {
        WriteOp::Replace => "Replace",
        WriteOp::Add => "Add",
    }
}

/// The device answered a read-back's Get with a status (the value comes in Results).
fn read_status(p: &mut DeviceProfile, i: usize, recheck: bool, code: &str, now: &str) {
    if is_success(code) {
        return;
    }
    let cmd = p.next_cmd();
    let s = &mut p.settings[i];
    if code == STATUS_COMMAND_NOT_ALLOWED || code == STATUS_NOT_SUPPORTED {
        s.phase = Phase::Verified;
        s.verified_by = Some(VerifiedBy::Acknowledgement);
        s.note =
            Some(format!("the device does not read this node back ({code}): verified on acknowledgement"));
    } else if recheck {
        // The value went away: drift, re-applied.
        s.drift = Some(Drift { observed: None, at: now.to_string() });
        s.note = Some(format!("drift: the read-back answered {code}; re-applied"));
        s.fallbacks = 0;
        s.phase = Phase::Write { op: WriteOp::Replace, cmd };
    } else {
        s.code = Some(code.to_string());
        s.phase = Phase::Failed;
        s.note = Some(format!("the read-back of {} failed", read_back_uri(&s.setting.uri)));
    }
}

/// The device sent the value of a read-back.
fn read_value(p: &mut DeviceProfile, i: usize, recheck: bool, value: &str, now: &str) {
    let cmd = p.next_cmd();
    let s = &mut p.settings[i];
    s.observed = Some(capped(value, MAX_VALUE_BYTES));
    if same_value(s.setting.format, &s.setting.data, value) {
        s.phase = Phase::Verified;
        s.verified_by = Some(VerifiedBy::ReadBack);
        if !recheck {
            s.note = None;
        }
    } else if recheck {
        s.drift = Some(Drift { observed: s.observed.clone(), at: now.to_string() });
        s.note = Some("drift: the device held another value; re-applied".into());
        s.fallbacks = 0;
        s.verified_by = None;
        s.phase = Phase::Write { op: WriteOp::Replace, cmd };
    } else {
        s.phase = Phase::Failed;
        s.verified_by = None;
        s.note = Some(format!("read back a different value at {}", read_back_uri(&s.setting.uri)));
    }
}

/// The device answered a Delete; whether the node is gone.
fn deleted(s: &mut SettingState, code: &str) -> bool {
    s.code = Some(code.to_string());
    if (is_success(code) && code != STATUS_ATOMIC_ROLLBACK_OK) || code == STATUS_NOT_FOUND {
        s.phase = Phase::Gone;
        true
    } else {
        s.phase = Phase::Failed;
        s.note = Some("the device refused the Delete; retried at the next verification".into());
        false
    }
}

/// Decides an Atomic once its own status arrived ([MS-MDM] §2.2.6.1; OMA-DM 1.2 Protocol
/// §6.6.2: 507 for the Atomic, 216 for each command rolled back, the failing one's own code).
fn finish_atomic(p: &mut DeviceProfile) {
    let Some(a) = p.atomic_write.clone() else { return };
    let Some(code) = a.code.clone() else { return };
    p.atomic_write = None;
    let child_code = |k: usize| a.child_codes[k].clone();
    let op_of = |p: &DeviceProfile, i: usize| match p.settings[i].phase {
        Phase::Write { op, .. } => Some(op),
        _ => None,
    };
    if is_success(&code) {
        for (k, &i) in a.children.iter().enumerate() {
            if let Some(op) = op_of(p, i) {
                let c = child_code(k).filter(|c| is_success(c)).unwrap_or_else(|| STATUS_OK.to_string());
                written(p, i, op, &c);
            }
        }
        return;
    }
    // The Atomic failed; everything in it was rolled back.
    let codes: Vec<String> = (0..a.children.len())
        .map(|k| child_code(k).unwrap_or_else(|| STATUS_ATOMIC_ROLLBACK_OK.to_string()))
        .collect();
    let culprits: Vec<usize> = (0..a.children.len()).filter(|&k| !is_success(&codes[k])).collect();
    let retry = !culprits.is_empty()
        && culprits.iter().all(|&k| {
            let i = a.children[k];
            let s = &p.settings[i];
            s.fallbacks < MAX_FALLBACKS
                && matches!(
                    (op_of(p, i), codes[k].as_str()),
                    (Some(WriteOp::Replace), STATUS_NOT_FOUND) | (Some(WriteOp::Add), STATUS_ALREADY_EXISTS)
                )
        });
    for (k, &i) in a.children.iter().enumerate() {
        let Some(op) = op_of(p, i) else { continue };
        let cmd = p.next_cmd();
        let s = &mut p.settings[i];
        s.code = Some(codes[k].clone());
        if retry {
            // Send the Atomic again with the culprits' fallback (404 → Add, 418 → Replace).
            let next = if culprits.contains(&k) {
                s.fallbacks += 1;
                match op {
                    WriteOp::Replace => WriteOp::Add,
                    WriteOp::Add => WriteOp::Replace,
                }
            } else {
                op
            };
            s.phase = Phase::Write { op: next, cmd };
        } else {
            s.phase = Phase::Failed;
            s.note = Some(if codes[k] == STATUS_ATOMIC_ROLLBACK_OK {
                "rolled back: another setting of the Atomic failed".into()
            } else if culprits.contains(&k) {
                format!("the device refused the {}; the Atomic ({code}) was rolled back", op_name(op))
            } else {
                format!("the Atomic failed ({code})")
            });
        }
    }
}

/// Brings the device's profiles to what applies now: new profiles are written, new versions
/// re-deliver what changed and delete what they dropped, profiles that no longer apply are
/// deleted.
fn merge_desired(profiles: &mut Vec<DeviceProfile>, desired: &[DesiredProfile], now: &str) {
    for p in profiles.iter_mut() {
        if !p.removing && !desired.iter().any(|d| d.id == p.id) {
            p.removing = true;
            p.atomic_write = None;
            for i in 0..p.settings.len() {
                remove_setting(p, i);
            }
        }
    }
    for d in desired {
        match profiles.iter_mut().find(|p| p.id == d.id) {
            None => profiles.push(DeviceProfile::from_desired(d, now)),
            Some(p) if p.removing => *p = DeviceProfile::from_desired(d, now),
            Some(p) if p.version != d.version || p.atomic != d.atomic => update(p, d),
            Some(p) => {
                p.name = d.name.clone();
                p.seq = d.seq;
            }
        }
    }
    crate::sorting::sort_by_key(profiles, |p| p.seq);
}

/// Starts deleting setting `i` (nothing to delete when it was never sent).
fn remove_setting(p: &mut DeviceProfile, i: usize) {
    let cmd = p.next_cmd();
    let s = &mut p.settings[i];
    s.phase = match s.phase {
        Phase::Conflict | Phase::Gone => Phase::Gone,
        _ => Phase::Delete { cmd },
    };
    s.note = None;
    s.conflicts.clear();
}

/// A new version: settings that did not change keep their state, changed, new and unverified
/// ones are written, dropped ones deleted.
fn update(p: &mut DeviceProfile, d: &DesiredProfile) {
    let old = std::mem::take(&mut p.settings);
    p.version = d.version;
    p.atomic = d.atomic;
    p.name = d.name.clone();
    p.seq = d.seq;
    p.atomic_write = None;
    for ds in &d.settings {
        let kept = old.iter().find(|o| !o.dropped && o.setting == *ds && o.phase != Phase::Failed);
        match kept {
            Some(o) => p.settings.push(o.clone()),
            None => {
                let cmd = p.next_cmd();
                p.settings.push(SettingState::new(ds.clone(), cmd));
            }
        }
    }
    for o in old {
        if d.settings.iter().any(|ds| ds.uri == o.setting.uri) {
            continue; // set again by this version
        }
        let i = p.settings.len();
        p.settings.push(SettingState { dropped: true, ..o });
        if !matches!(p.settings[i].phase, Phase::Delete { .. }) {
            remove_setting(p, i);
        }
    }
}

/// One owner per node: among the profiles that apply, the one created first wins; a profile
/// that sets the node to the same value is no conflict. A node another profile still sets is
/// not deleted.
fn resolve_conflicts(profiles: &mut [DeviceProfile]) {
    // uri → (seq, profile, format, data) of every active setting, lowest seq first.
    let mut owners: BTreeMap<String, Vec<(u64, String, Format, String)>> = BTreeMap::new();
    for p in profiles.iter().filter(|p| !p.removing) {
        for s in p.settings.iter().filter(|s| s.active()) {
            owners.entry(s.setting.uri.clone()).or_default().push((
                p.seq,
                p.id.clone(),
                s.setting.format,
                s.setting.data.clone(),
            ));
        }
    }
    for v in owners.values_mut() {
        crate::sorting::sort(v);
    }
    let same = |f: Format, d: &str, g: Format, e: &str| f == g && same_value(f, d, e);
    for p in profiles.iter_mut() {
        for i in 0..p.settings.len() {
            let s = &p.settings[i];
            let Some(set_by) = owners.get(&s.setting.uri) else { continue };
            if p.removing || !s.active() {
                // Deleting: leave the node alone while another profile sets it.
                if matches!(s.phase, Phase::Delete { .. }) && set_by.iter().any(|o| o.1 != p.id) {
                    let by = set_by[0].1.clone();
                    let s = &mut p.settings[i];
                    s.phase = Phase::Gone;
                    s.note = Some(format!("not deleted: {by} also sets this node"));
                }
                continue;
            }
            let (format, data) = (s.setting.format, s.setting.data.clone());
            let conflicts: Vec<String> = set_by
                .iter()
                .filter(|o| o.1 != p.id && !same(format, &data, o.2, &o.3))
                .map(|o| o.1.clone())
                .collect();
            let winner = &set_by[0];
            let wins = winner.1 == p.id || same(format, &data, winner.2, &winner.3);
            let cmd = p.last_cmd + 1;
            let s = &mut p.settings[i];
            s.conflicts = conflicts;
            if wins && s.phase == Phase::Conflict {
                s.phase = Phase::Write { op: WriteOp::Replace, cmd };
                s.note = None;
                s.fallbacks = 0;
                p.last_cmd = cmd;
            } else if !wins && s.phase != Phase::Conflict {
                s.phase = Phase::Conflict;
                s.code = None;
                s.verified_by = None;
                s.note = Some(format!(
                    "conflict: {} sets this node to another value and wins (it was created first)",
                    winner.1
                ));
            }
        }
    }
}

/// At the start of a session: drift checks of a verified profile, and retries of failed
/// Deletes, once an interval has passed since the last check.
fn schedule_checks(p: &mut DeviceProfile, now_ms: u64, interval_ms: u64) {
    let due = p.checked_at.is_none_or(|t| now_ms >= t.saturating_add(interval_ms));
    if !due {
        return;
    }
    match p.status {
        ProfileStatus::Verified => {
            let mut any = false;
            for i in 0..p.settings.len() {
                let s = &p.settings[i];
                if s.phase == Phase::Verified && s.verified_by == Some(VerifiedBy::ReadBack) {
                    let cmd = p.next_cmd();
                    p.settings[i].phase = Phase::Read { cmd, recheck: true };
                    any = true;
                }
            }
            if !any {
                p.checked_at = Some(now_ms); // nothing that can be read back
            }
        }
        _ => {
            for i in 0..p.settings.len() {
                let s = &p.settings[i];
                if s.phase == Phase::Failed && (p.removing || s.dropped) {
                    let cmd = p.next_cmd();
                    p.settings[i].phase = Phase::Delete { cmd };
                }
            }
        }
    }
}

/// The commands a profile needs now: deletes, then writes (one Atomic, or one command per
/// setting), then read-backs.
fn commands_of(p: &mut DeviceProfile) -> Vec<QueuedCommand> {
    let mut out = Vec::new();
    for s in &p.settings {
        if let Phase::Delete { cmd } = s.phase {
            let command = Command::Delete(Delete::new(vec![Item::target(&s.setting.uri)]));
            out.push(QueuedCommand { id: p.command_id(cmd), command });
        }
    }
    let writes: Vec<usize> =
        (0..p.settings.len()).filter(|&i| matches!(p.settings[i].phase, Phase::Write { .. })).collect();
    let write = |s: &SettingState| {
        let item = Item::target_data(&s.setting.uri, s.setting.format.as_str(), &s.setting.data);
        match s.phase {
            Phase::Write { op: WriteOp::Add, .. } => Command::Add(Add::new(vec![item])),
            _ => Command::Replace(Replace::new(vec![item])),
        }
    };
    if p.atomic && !writes.is_empty() {
        if p.atomic_write.as_ref().is_none_or(|a| a.children != writes) {
            let cmd = p.next_cmd();
            let n = writes.len();
            p.atomic_write =
                Some(AtomicWrite { cmd, children: writes.clone(), code: None, child_codes: vec![None; n] });
        }
        let a = p.atomic_write.as_ref().expect("planned above");
        let children = writes.iter().map(|&i| write(&p.settings[i])).collect();
        out.push(QueuedCommand { id: p.command_id(a.cmd), command: Command::Atomic(Atomic::new(children)) });
    } else {
        for &i in &writes {
            let s = &p.settings[i];
            out.push(QueuedCommand { id: p.command_id(s.cmd().unwrap_or_default()), command: write(s) });
        }
    }
    for s in &p.settings {
        if let Phase::Read { cmd, .. } = s.phase {
            let command = Command::Get(Get::new(vec![Item::target(read_back_uri(&s.setting.uri))]));
            out.push(QueuedCommand { id: p.command_id(cmd), command });
        }
    }
    out
}

#[cfg(test)]
mod tests;
