//! Configuration profiles, pure: desired state ("these settings must hold on these devices"),
//! delivered, verified and reported per device.
//!
//! * [`request`]: what an admin sends (`POST`/`PUT /api/v1/profiles`), validated, including
//!   the `syncml` form (Microsoft's custom OMA-URI `<Replace>`/`<Add>` markup, parsed).
//! * [`catalog`]: the profile catalogue, one Durable Object for the deployment: profiles and
//!   their versions, groups and group membership, a catalogue revision, and the per-device
//!   statuses the devices report (for counts and the per-profile device list).
//! * [`reconcile`]: one device's side, the pure reconciliation function: (the profiles that
//!   apply to this device, what the device acknowledged and reported) → the commands to send
//!   and the status transitions. The device object keeps its desired and observed state.
//!
//! A device learns what applies to it when it starts a management session: it passes the
//! catalogue revision it last reconciled against, and the catalogue answers "current" or the
//! profiles that target it (all devices, its groups, its DeviceID). Assigning a profile to a
//! whole fleet writes one record; each device reconciles when it checks in.

pub mod catalog;
mod compare;
pub mod reconcile;
pub mod request;

use serde::{Deserialize, Serialize};

/// OMA-DM `Meta/Format` of a setting's data (OMA-DM 1.2 Representation Protocol §6.3,
/// "Format"; Microsoft Learn "OMA DM protocol support").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Int,
    Chr,
    Bool,
    B64,
    Xml,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Int, Format::Chr, Format::Bool, Format::B64, Format::Xml];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Int => "int",
            Format::Chr => "chr",
            Format::Bool => "bool",
            Format::B64 => "b64",
            Format::Xml => "xml",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One setting of a profile: a node and the value it must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub uri: String,
    pub format: Format,
    pub data: String,
    /// `false` for nodes that cannot be read back (write-only secrets, Exec-like nodes): the
    /// setting counts as verified once the device acknowledged the write.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub read_back: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Which devices a profile applies to: `{"all": true}`, `{"groups": [...]}` or
/// `{"devices": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetsJson", into = "TargetsJson")]
pub enum Targets {
    All,
    Groups(Vec<String>),
    Devices(Vec<String>),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    devices: Option<Vec<String>>,
}

impl TryFrom<TargetsJson> for Targets {
    type Error = String;

    fn try_from(t: TargetsJson) -> Result<Self, String> {
        match (t.all, t.groups, t.devices) {
            (Some(true), None, None) => Ok(Targets::All),
            (Some(false), None, None) => Err("targets.all must be true (or give groups or devices)".into()),
            (None, Some(g), None) => Ok(Targets::Groups(g)),
            (None, None, Some(d)) => Ok(Targets::Devices(d)),
            _ => Err(
                "targets must be exactly one of {\"all\": true}, {\"groups\": [...]}, {\"devices\": [...]}"
                    .into(),
            ),
        }
    }
}

impl From<Targets> for TargetsJson {
    fn from(t: Targets) -> Self {
        match t {
            Targets::All => TargetsJson { all: Some(true), ..Default::default() },
            Targets::Groups(g) => TargetsJson { groups: Some(g), ..Default::default() },
            Targets::Devices(d) => TargetsJson { devices: Some(d), ..Default::default() },
        }
    }
}

impl Targets {
    /// Whether a device with these groups is targeted.
    pub fn includes(&self, device_id: &str, groups: &[String]) -> bool {
        match self {
            Targets::All => true,
            Targets::Groups(g) => g.iter().any(|x| groups.contains(x)),
            Targets::Devices(d) => d.iter().any(|x| x == device_id),
        }
    }
}

/// A profile as the catalogue keeps it (storage key `profile:<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    /// Creation order; the lower one wins a conflict on a device.
    pub seq: u64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Goes up when the settings (or the delivery) change.
    pub version: u32,
    /// Delivered as one `Atomic` ([`reconcile`] explains the choice).
    #[serde(default)]
    pub atomic: bool,
    pub settings: Vec<Setting>,
    pub targets: Targets,
    pub created_at: String,
    pub updated_at: String,
}

/// What a device needs of a profile that applies to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredProfile {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub version: u32,
    pub atomic: bool,
    pub settings: Vec<Setting>,
}

impl From<&Profile> for DesiredProfile {
    fn from(p: &Profile) -> Self {
        DesiredProfile {
            id: p.id.clone(),
            seq: p.seq,
            name: p.name.clone(),
            version: p.version,
            atomic: p.atomic,
            settings: p.settings.clone(),
        }
    }
}

/// Where a profile stands on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStatus {
    /// Settings are waiting to be written (or their write to be acknowledged).
    Pending,
    /// Every write was acknowledged; read-backs are outstanding.
    Verifying,
    /// Every setting was acknowledged and every read-back matched.
    Verified,
    /// A setting was refused (4xx/5xx), read back a different value, or lost a conflict.
    Failed,
    /// The profile no longer applies; its settings are being deleted.
    Removing,
}

impl ProfileStatus {
    pub const ALL: [ProfileStatus; 5] = [
        ProfileStatus::Pending,
        ProfileStatus::Verifying,
        ProfileStatus::Verified,
        ProfileStatus::Failed,
        ProfileStatus::Removing,
    ];
}

/// What a device reports to the catalogue about one profile (storage key
/// `status:<profile>:<device>` there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProfileStatus {
    pub profile_id: String,
    pub device_id: String,
    pub version: u32,
    pub status: ProfileStatus,
    pub updated_at: String,
}

/// Group names become storage keys and URL path segments: keep them plain.
pub fn valid_group_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Profile ids: `p` and a number.
pub fn valid_profile_id(id: &str) -> bool {
    id.len() > 1 && id.len() <= 24 && id.starts_with('p') && id[1..].bytes().all(|b| b.is_ascii_digit())
}

pub fn profile_id(seq: u64) -> String {
    format!("p{seq}")
}
