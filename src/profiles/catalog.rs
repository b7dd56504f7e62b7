//! The profile catalogue, pure: one Durable Object for the deployment ("profiles"), strongly
//! consistent, holding the profiles and their versions, the groups and who is in them, the
//! catalogue revision, and what devices report about each profile. One typed call each
//! ([`CatalogCall`] → [`CatalogReply`] or [`CatalogError`]); the object reads through
//! [`CatalogStorage`] and commits the returned [`CatalogWrite`]s in one batch.
//!
//! The revision goes up with every change that can change what applies to a device (a
//! profile created, changed or deleted; a group membership). A device passes the revision it
//! last reconciled against when it starts a session ([`CatalogCall::Sync`]); the answer is
//! "current", or the profiles that apply to it now. So assigning a profile to every device
//! writes one record, and a check-in's cost grows with the profiles of that device only.
//!
//! Reports ([`CatalogCall::Report`]) keep one status record per (profile, device) and the
//! per-status counts of each profile, so `GET /api/v1/profiles/{id}` answers without asking
//! any device.

use super::request::ProfileRequest;
use super::{profile_id, DesiredProfile, DeviceProfileStatus, Profile, ProfileStatus, Targets};
use crate::object_call::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most groups in a deployment, and most groups one device is in.
pub const MAX_GROUPS: usize = 1000;
/// Most profiles in a deployment.
pub const MAX_PROFILES: usize = 1000;
/// Largest page of `GET /api/v1/profiles/{id}/devices`.
pub const MAX_PAGE: usize = 1000;

/// A group (storage key `group:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    /// How many devices are in it.
    pub devices: u64,
    pub created_at: String,
}

/// Devices per status, of one profile (storage key `counts:<profile>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pending: u64,
    pub verifying: u64,
    pub verified: u64,
    pub failed: u64,
    pub removing: u64,
}

impl Counts {
    fn slot(&mut self, s: ProfileStatus) -> &mut u64 {
        match s {
            ProfileStatus::Pending => &mut self.pending,
            ProfileStatus::Verifying => &mut self.verifying,
            ProfileStatus::Verified => &mut self.verified,
            ProfileStatus::Failed => &mut self.failed,
            ProfileStatus::Removing => &mut self.removing,
        }
    }

    pub fn total(&self) -> u64 {
        self.pending + self.verifying + self.verified + self.failed + self.removing
    }
}

/// A profile as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    #[serde(flatten)]
    pub profile: Profile,
    /// Devices that reported the profile, per status (devices that have not checked in since
    /// it was assigned are not counted yet).
    pub devices: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogCall {
    CreateProfile {
        request: ProfileRequest,
        now: String,
    },
    /// A new version (the version goes up when the settings or the delivery change).
    UpdateProfile {
        id: String,
        request: ProfileRequest,
        now: String,
    },
    DeleteProfile {
        id: String,
    },
    GetProfile {
        id: String,
    },
    ListProfiles,
    /// One page of the per-device statuses of a profile, from `cursor` (a DeviceID) on.
    ProfileDevices {
        id: String,
        cursor: Option<String>,
        limit: usize,
    },
    CreateGroup {
        name: String,
        now: String,
    },
    ListGroups,
    DeleteGroup {
        name: String,
    },
    AddMember {
        group: String,
        device_id: String,
    },
    RemoveMember {
        group: String,
        device_id: String,
    },
    /// The groups a device is in (its record shows them).
    GroupsOf {
        device_id: String,
    },
    /// A device starting a session, with the revision it last reconciled against.
    Sync {
        device_id: String,
        known_rev: u64,
    },
    /// What changed on a device: profile statuses, and profiles that left it.
    Report {
        device_id: String,
        statuses: Vec<DeviceProfileStatus>,
        removed: Vec<String>,
    },
}

impl CatalogCall {
    /// Whether the call may move the revision devices reconcile against.
    pub fn may_change_rev(&self) -> bool {
        !matches!(
            self,
            CatalogCall::GetProfile { .. }
                | CatalogCall::ListProfiles
                | CatalogCall::ProfileDevices { .. }
                | CatalogCall::ListGroups
                | CatalogCall::GroupsOf { .. }
                | CatalogCall::Sync { .. }
                | CatalogCall::Report { .. }
        )
    }
}

/// How long an isolate trusts the catalogue revision it last learned.
pub const REV_CACHE_MS: u64 = 10_000;

/// The catalogue revision an isolate last learned, and when. A device starting a session with
/// that revision within [`REV_CACHE_MS`] is told it is current without a call to the one
/// catalogue every device shares; a change made through the same isolate forgets it at once,
/// one made elsewhere reaches the device at most that much later (or at its next session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownRev {
    pub rev: u64,
    pub at_ms: u64,
}

impl KnownRev {
    /// The answer to `call` without asking the catalogue, when this revision gives it.
    pub fn answer(known: Option<KnownRev>, call: &CatalogCall, now_ms: u64) -> Option<CatalogReply> {
        let (CatalogCall::Sync { known_rev, .. }, Some(k)) = (call, known) else { return None };
        let fresh = now_ms >= k.at_ms && now_ms - k.at_ms < REV_CACHE_MS;
        (fresh && k.rev == *known_rev).then_some(CatalogReply::Current { rev: k.rev })
    }

    /// What the isolate knows after `call` was answered `reply`: the revision a sync reported,
    /// nothing after a change, the same as before otherwise.
    pub fn after(
        known: Option<KnownRev>,
        call: &CatalogCall,
        reply: &CatalogReply,
        now_ms: u64,
    ) -> Option<KnownRev> {
        match reply {
            _ if call.may_change_rev() => None,
            CatalogReply::Current { rev } | CatalogReply::Changed { rev, .. } => {
                Some(KnownRev { rev: *rev, at_ms: now_ms })
            }
            _ => known,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogReply {
    Profile(Box<ProfileView>),
    Profiles(Vec<ProfileView>),
    Devices {
        devices: Vec<DeviceProfileStatus>,
        next_cursor: Option<String>,
    },
    Group(Group),
    Groups(Vec<Group>),
    GroupNames(Vec<String>),
    Done,
    /// The device's revision is the current one.
    Current {
        rev: u64,
    },
    /// What applies to the device at revision `rev`.
    Changed {
        rev: u64,
        groups: Vec<String>,
        profiles: Vec<DesiredProfile>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogError {
    NoSuchProfile,
    NoSuchGroup(String),
    GroupExists,
    /// Profiles still target the group.
    GroupInUse(Vec<String>),
    TooMany(String),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogError::NoSuchProfile => f.write_str("no such profile"),
            CatalogError::NoSuchGroup(g) => write!(f, "no such group: {g}"),
            CatalogError::GroupExists => f.write_str("a group with this name exists"),
            CatalogError::GroupInUse(p) => write!(f, "profiles target this group: {}", p.join(", ")),
            CatalogError::TooMany(what) => write!(f, "too many {what}"),
        }
    }
}

/// What the catalogue object reads.
#[allow(async_fn_in_trait)] // single-threaded Worker: no `Send` bound wanted
pub trait CatalogStorage {
    async fn rev(&self) -> Result<u64, StoreError>;
    async fn seq(&self) -> Result<u64, StoreError>;
    async fn profile(&self, id: &str) -> Result<Option<Profile>, StoreError>;
    async fn profiles(&self) -> Result<Vec<Profile>, StoreError>;
    async fn counts(&self, id: &str) -> Result<Option<Counts>, StoreError>;
    async fn group(&self, name: &str) -> Result<Option<Group>, StoreError>;
    async fn groups(&self) -> Result<Vec<Group>, StoreError>;
    /// The groups a device is in.
    async fn memberships(&self, device_id: &str) -> Result<Vec<String>, StoreError>;
    /// The devices in a group.
    async fn members(&self, group: &str) -> Result<Vec<String>, StoreError>;
    async fn status(&self, profile: &str, device_id: &str)
        -> Result<Option<DeviceProfileStatus>, StoreError>;
    /// Statuses of a profile in DeviceID order, from `from` (inclusive), at most `limit`.
    async fn statuses(
        &self,
        profile: &str,
        from: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceProfileStatus>, StoreError>;
}

/// The catalogue's writes, committed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogWrite {
    Rev(u64),
    Seq(u64),
    Profile(Profile),
    DeleteProfile(String),
    Counts(String, Counts),
    DeleteCounts(String),
    Group(Group),
    DeleteGroup(String),
    /// A device's groups (empty: delete the key).
    Memberships(String, Vec<String>),
    /// `(group, device)` in the member index.
    Member(String, String),
    DeleteMember(String, String),
    Status(DeviceProfileStatus),
    DeleteStatus(String, String),
}

pub type CatalogOutcome = crate::object_call::Outcome<CatalogReply, CatalogError, CatalogWrite>;

/// The catalogue as the rest of the core calls it.
#[allow(async_fn_in_trait)]
pub trait Catalog {
    async fn catalog(&self, call: CatalogCall) -> Result<Result<CatalogReply, CatalogError>, StoreError>;
}

async fn view<S: CatalogStorage>(store: &S, profile: Profile) -> Result<ProfileView, StoreError> {
    let devices = store.counts(&profile.id).await?.unwrap_or_default();
    Ok(ProfileView { profile, devices })
}

/// Groups a request targets that do not exist.
async fn missing_groups<S: CatalogStorage>(
    store: &S,
    targets: &Targets,
) -> Result<Option<String>, StoreError> {
    if let Targets::Groups(names) = targets {
        for n in names {
            if store.group(n).await?.is_none() {
                return Ok(Some(n.clone()));
            }
        }
    }
    Ok(None)
}

/// Runs one catalogue call.
pub async fn handle<S: CatalogStorage>(store: &S, call: CatalogCall) -> Result<CatalogOutcome, StoreError> {
    let bump = |rev: u64| CatalogWrite::Rev(rev + 1);
    Ok(match call {
        CatalogCall::CreateProfile { request, now } => {
            if let Some(g) = missing_groups(store, &request.targets).await? {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchGroup(g)));
            }
            if store.profiles().await?.len() >= MAX_PROFILES {
                return Ok(CatalogOutcome::refuse(CatalogError::TooMany("profiles".into())));
            }
            let seq = store.seq().await? + 1;
            let profile = Profile {
                id: profile_id(seq),
                seq,
                name: request.name,
                description: request.description,
                version: 1,
                atomic: request.atomic,
                settings: request.settings,
                targets: request.targets,
                created_at: now.clone(),
                updated_at: now,
            };
            let writes = vec![
                CatalogWrite::Seq(seq),
                bump(store.rev().await?),
                CatalogWrite::Profile(profile.clone()),
            ];
            let v = ProfileView { profile, devices: Counts::default() };
            CatalogOutcome::reply(CatalogReply::Profile(Box::new(v)), writes)
        }
        CatalogCall::UpdateProfile { id, request, now } => {
            let Some(mut profile) = store.profile(&id).await? else {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchProfile));
            };
            if let Some(g) = missing_groups(store, &request.targets).await? {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchGroup(g)));
            }
            if profile.settings != request.settings || profile.atomic != request.atomic {
                profile.version += 1;
            }
            profile.name = request.name;
            profile.description = request.description;
            profile.settings = request.settings;
            profile.atomic = request.atomic;
            profile.targets = request.targets;
            profile.updated_at = now;
            let writes = vec![bump(store.rev().await?), CatalogWrite::Profile(profile.clone())];
            CatalogOutcome::reply(CatalogReply::Profile(Box::new(view(store, profile).await?)), writes)
        }
        CatalogCall::DeleteProfile { id } => {
            if store.profile(&id).await?.is_none() {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchProfile));
            }
            // Devices delete its settings when they next check in and report it gone; its
            // status records and counts go with their reports.
            let mut writes = vec![bump(store.rev().await?), CatalogWrite::DeleteProfile(id.clone())];
            if store.counts(&id).await?.unwrap_or_default().total() == 0 {
                writes.push(CatalogWrite::DeleteCounts(id));
            }
            CatalogOutcome::reply(CatalogReply::Done, writes)
        }
        CatalogCall::GetProfile { id } => match store.profile(&id).await? {
            Some(p) => CatalogOutcome::reply(CatalogReply::Profile(Box::new(view(store, p).await?)), vec![]),
            None => CatalogOutcome::refuse(CatalogError::NoSuchProfile),
        },
        CatalogCall::ListProfiles => {
            let mut all = store.profiles().await?;
            crate::sorting::sort_by_key(&mut all, |p| p.seq);
            let mut views = Vec::with_capacity(all.len());
            for p in all {
                views.push(view(store, p).await?);
            }
            CatalogOutcome::reply(CatalogReply::Profiles(views), vec![])
        }
        CatalogCall::ProfileDevices { id, cursor, limit } => {
            if store.profile(&id).await?.is_none() {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchProfile));
            }
            let limit = limit.clamp(1, MAX_PAGE);
            let mut page = store.statuses(&id, cursor.as_deref(), limit + 1).await?;
            let next_cursor = if page.len() > limit { page.pop().map(|s| s.device_id) } else { None };
            CatalogOutcome::reply(CatalogReply::Devices { devices: page, next_cursor }, vec![])
        }
        CatalogCall::CreateGroup { name, now } => {
            if store.group(&name).await?.is_some() {
                return Ok(CatalogOutcome::refuse(CatalogError::GroupExists));
            }
            if store.groups().await?.len() >= MAX_GROUPS {
                return Ok(CatalogOutcome::refuse(CatalogError::TooMany("groups".into())));
            }
            let g = Group { name, devices: 0, created_at: now };
            CatalogOutcome::reply(CatalogReply::Group(g.clone()), vec![CatalogWrite::Group(g)])
        }
        CatalogCall::ListGroups => {
            let mut all = store.groups().await?;
            crate::sorting::sort_by(&mut all, |a, b| a.name.cmp(&b.name));
            CatalogOutcome::reply(CatalogReply::Groups(all), vec![])
        }
        CatalogCall::DeleteGroup { name } => {
            if store.group(&name).await?.is_none() {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchGroup(name)));
            }
            let users: Vec<String> = store
                .profiles()
                .await?
                .into_iter()
                .filter(|p| matches!(&p.targets, Targets::Groups(g) if g.contains(&name)))
                .map(|p| p.id)
                .collect();
            if !users.is_empty() {
                return Ok(CatalogOutcome::refuse(CatalogError::GroupInUse(users)));
            }
            let mut writes = vec![CatalogWrite::DeleteGroup(name.clone())];
            for device in store.members(&name).await? {
                let mut groups = store.memberships(&device).await?;
                groups.retain(|g| *g != name);
                writes.push(CatalogWrite::Memberships(device.clone(), groups));
                writes.push(CatalogWrite::DeleteMember(name.clone(), device));
            }
            // No profile targets the group, so nothing that applies to a device changed.
            CatalogOutcome::reply(CatalogReply::Done, writes)
        }
        CatalogCall::AddMember { group, device_id } => {
            let Some(mut g) = store.group(&group).await? else {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchGroup(group)));
            };
            let mut groups = store.memberships(&device_id).await?;
            if groups.contains(&group) {
                return Ok(CatalogOutcome::reply(CatalogReply::Group(g), vec![]));
            }
            if groups.len() >= MAX_GROUPS {
                return Ok(CatalogOutcome::refuse(CatalogError::TooMany("groups for one device".into())));
            }
            groups.push(group.clone());
            crate::sorting::sort(&mut groups);
            g.devices += 1;
            let writes = vec![
                bump(store.rev().await?),
                CatalogWrite::Memberships(device_id.clone(), groups),
                CatalogWrite::Member(group, device_id),
                CatalogWrite::Group(g.clone()),
            ];
            CatalogOutcome::reply(CatalogReply::Group(g), writes)
        }
        CatalogCall::RemoveMember { group, device_id } => {
            let Some(mut g) = store.group(&group).await? else {
                return Ok(CatalogOutcome::refuse(CatalogError::NoSuchGroup(group)));
            };
            let mut groups = store.memberships(&device_id).await?;
            if !groups.contains(&group) {
                return Ok(CatalogOutcome::reply(CatalogReply::Group(g), vec![]));
            }
            groups.retain(|x| *x != group);
            g.devices = g.devices.saturating_sub(1);
            let writes = vec![
                bump(store.rev().await?),
                CatalogWrite::Memberships(device_id.clone(), groups),
                CatalogWrite::DeleteMember(group, device_id),
                CatalogWrite::Group(g.clone()),
            ];
            CatalogOutcome::reply(CatalogReply::Group(g), writes)
        }
        CatalogCall::GroupsOf { device_id } => {
            CatalogOutcome::reply(CatalogReply::GroupNames(store.memberships(&device_id).await?), vec![])
        }
        CatalogCall::Sync { device_id, known_rev } => {
            let rev = store.rev().await?;
            if rev == known_rev {
                return Ok(CatalogOutcome::reply(CatalogReply::Current { rev }, vec![]));
            }
            let groups = store.memberships(&device_id).await?;
            let mut profiles: Vec<DesiredProfile> = store
                .profiles()
                .await?
                .iter()
                .filter(|p| p.targets.includes(&device_id, &groups))
                .map(DesiredProfile::from)
                .collect();
            crate::sorting::sort_by_key(&mut profiles, |p| p.seq);
            CatalogOutcome::reply(CatalogReply::Changed { rev, groups, profiles }, vec![])
        }
        CatalogCall::Report { device_id, statuses, removed } => {
            report(store, device_id, statuses, removed).await?
        }
    })
}

/// Keeps one status per (profile, device) and each profile's counts in step with it.
async fn report<S: CatalogStorage>(
    store: &S,
    device_id: String,
    statuses: Vec<DeviceProfileStatus>,
    removed: Vec<String>,
) -> Result<CatalogOutcome, StoreError> {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut writes = Vec::new();
    let mut changes: Vec<(String, Option<ProfileStatus>, Option<ProfileStatus>)> = Vec::new();
    for mut s in statuses {
        if s.device_id != device_id {
            continue;
        }
        let old = store.status(&s.profile_id, &device_id).await?;
        s.device_id = device_id.clone();
        if old.as_ref() != Some(&s) {
            changes.push((s.profile_id.clone(), old.map(|o| o.status), Some(s.status)));
            writes.push(CatalogWrite::Status(s));
        }
    }
    for id in removed {
        if let Some(old) = store.status(&id, &device_id).await? {
            changes.push((id.clone(), Some(old.status), None));
            writes.push(CatalogWrite::DeleteStatus(id, device_id.clone()));
        }
    }
    for (id, from, to) in changes {
        if !counts.contains_key(&id) {
            let c = store.counts(&id).await?.unwrap_or_default();
            counts.insert(id.clone(), c);
        }
        let c = counts.get_mut(&id).expect("inserted above");
        if let Some(f) = from {
            let slot = c.slot(f);
            *slot = slot.saturating_sub(1);
        }
        if let Some(t) = to {
            *c.slot(t) += 1;
        }
    }
    for (id, c) in counts {
        // A deleted profile's counts go once its last device reported it gone.
        if c.total() == 0 && store.profile(&id).await?.is_none() {
            writes.push(CatalogWrite::DeleteCounts(id));
        } else {
            writes.push(CatalogWrite::Counts(id, c));
        }
    }
    Ok(CatalogOutcome::reply(CatalogReply::Done, writes))
}

/// An in-memory catalogue for native tests.
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct MemoryCatalog {
        pub rev: RefCell<u64>,
        pub seq: RefCell<u64>,
        pub profiles: RefCell<BTreeMap<String, Profile>>,
        pub counts: RefCell<BTreeMap<String, Counts>>,
        pub groups: RefCell<BTreeMap<String, Group>>,
        pub memberships: RefCell<BTreeMap<String, Vec<String>>>,
        pub members: RefCell<BTreeMap<(String, String), ()>>,
        pub statuses: RefCell<BTreeMap<(String, String), DeviceProfileStatus>>,
        /// Calls answered, for tests that count them.
        pub calls: RefCell<Vec<String>>,
    }

    impl CatalogStorage for MemoryCatalog {
        async fn rev(&self) -> Result<u64, StoreError> {
            Ok(*self.rev.borrow())
        }
        async fn seq(&self) -> Result<u64, StoreError> {
            Ok(*self.seq.borrow())
        }
        async fn profile(&self, id: &str) -> Result<Option<Profile>, StoreError> {
            Ok(self.profiles.borrow().get(id).cloned())
        }
        async fn profiles(&self) -> Result<Vec<Profile>, StoreError> {
            Ok(self.profiles.borrow().values().cloned().collect())
        }
        async fn counts(&self, id: &str) -> Result<Option<Counts>, StoreError> {
            Ok(self.counts.borrow().get(id).cloned())
        }
        async fn group(&self, name: &str) -> Result<Option<Group>, StoreError> {
            Ok(self.groups.borrow().get(name).cloned())
        }
        async fn groups(&self) -> Result<Vec<Group>, StoreError> {
            Ok(self.groups.borrow().values().cloned().collect())
        }
        async fn memberships(&self, device_id: &str) -> Result<Vec<String>, StoreError> {
            Ok(self.memberships.borrow().get(device_id).cloned().unwrap_or_default())
        }
        async fn members(&self, group: &str) -> Result<Vec<String>, StoreError> {
            Ok(self.members.borrow().keys().filter(|(g, _)| g == group).map(|(_, d)| d.clone()).collect())
        }
        async fn status(
            &self,
            profile: &str,
            device_id: &str,
        ) -> Result<Option<DeviceProfileStatus>, StoreError> {
            Ok(self.statuses.borrow().get(&(profile.to_string(), device_id.to_string())).cloned())
        }
        async fn statuses(
            &self,
            profile: &str,
            from: Option<&str>,
            limit: usize,
        ) -> Result<Vec<DeviceProfileStatus>, StoreError> {
            Ok(self
                .statuses
                .borrow()
                .iter()
                .filter(|((p, d), _)| p == profile && from.is_none_or(|f| d.as_str() >= f))
                .take(limit)
                .map(|(_, s)| s.clone())
                .collect())
        }
    }

    impl MemoryCatalog {
        pub fn commit(&self, writes: Vec<CatalogWrite>) {
            for w in writes {
                match w {
                    CatalogWrite::Rev(r) => *self.rev.borrow_mut() = r,
                    CatalogWrite::Seq(s) => *self.seq.borrow_mut() = s,
                    CatalogWrite::Profile(p) => {
                        self.profiles.borrow_mut().insert(p.id.clone(), p);
                    }
                    CatalogWrite::DeleteProfile(id) => {
                        self.profiles.borrow_mut().remove(&id);
                    }
                    CatalogWrite::Counts(id, c) => {
                        self.counts.borrow_mut().insert(id, c);
                    }
                    CatalogWrite::DeleteCounts(id) => {
                        self.counts.borrow_mut().remove(&id);
                    }
                    CatalogWrite::Group(g) => {
                        self.groups.borrow_mut().insert(g.name.clone(), g);
                    }
                    CatalogWrite::DeleteGroup(n) => {
                        self.groups.borrow_mut().remove(&n);
                    }
                    CatalogWrite::Memberships(d, g) if g.is_empty() => {
                        self.memberships.borrow_mut().remove(&d);
                    }
                    CatalogWrite::Memberships(d, g) => {
                        self.memberships.borrow_mut().insert(d, g);
                    }
                    CatalogWrite::Member(g, d) => {
                        self.members.borrow_mut().insert((g, d), ());
                    }
                    CatalogWrite::DeleteMember(g, d) => {
                        self.members.borrow_mut().remove(&(g, d));
                    }
                    CatalogWrite::Status(s) => {
                        self.statuses.borrow_mut().insert((s.profile_id.clone(), s.device_id.clone()), s);
                    }
                    CatalogWrite::DeleteStatus(p, d) => {
                        self.statuses.borrow_mut().remove(&(p, d));
                    }
                }
            }
        }

        pub fn call(&self, call: CatalogCall) -> Result<CatalogReply, CatalogError> {
            // Externally tagged: "list_profiles", or {"sync": {…}}.
            let name = match serde_json::to_value(&call).unwrap() {
                serde_json::Value::String(s) => s,
                serde_json::Value::Object(m) => m.keys().next().unwrap().clone(),
                other => panic!("{other:?}"),
            };
            self.calls.borrow_mut().push(name);
            let out = crate::object_call::block_on(handle(self, call)).expect("memory store");
            self.commit(out.writes);
            out.reply
        }
    }

    impl Catalog for MemoryCatalog {
        async fn catalog(&self, call: CatalogCall) -> Result<Result<CatalogReply, CatalogError>, StoreError> {
            Ok(self.call(call))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryCatalog;
    use super::*;
    use crate::profiles::{Format, Setting};

    fn request(targets: Targets, data: &str) -> ProfileRequest {
        ProfileRequest {
            name: "camera".into(),
            description: None,
            settings: vec![Setting {
                uri: "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera".into(),
                format: Format::Int,
                data: data.into(),
                read_back: true,
            }],
            targets,
            atomic: false,
        }
    }

    fn create(c: &MemoryCatalog, targets: Targets) -> ProfileView {
        match c.call(CatalogCall::CreateProfile { request: request(targets, "0"), now: "t".into() }) {
            Ok(CatalogReply::Profile(v)) => *v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_isolate_answers_a_current_device_from_the_revision_it_learned() {
        let c = MemoryCatalog::default();
        let now = 1_000_000;
        let call = |rev| CatalogCall::Sync { device_id: "D1".into(), known_rev: rev };
        // Nothing learned yet: ask.
        assert_eq!(KnownRev::answer(None, &call(0), now), None);
        let reply = sync(&c, "D1", 0);
        let known = KnownRev::after(None, &call(0), &reply, now);
        assert_eq!(known, Some(KnownRev { rev: 0, at_ms: now }));
        // The same revision, soon after: answered here, as the catalogue would.
        assert_eq!(KnownRev::answer(known, &call(0), now + 9_999), Some(sync(&c, "D1", 0)));
        // Too late, another revision, or before it was learned: ask.
        assert_eq!(KnownRev::answer(known, &call(0), now + REV_CACHE_MS), None);
        assert_eq!(KnownRev::answer(known, &call(7), now + 1), None);
        assert_eq!(KnownRev::answer(known, &call(0), now - 1), None);
        // A change through this isolate forgets it; reads keep it.
        let create = CatalogCall::CreateProfile { request: request(Targets::All, "0"), now: "t".into() };
        let created = c.call(create.clone()).unwrap();
        assert_eq!(KnownRev::after(known, &create, &created, now + 1), None);
        assert_eq!(
            KnownRev::after(known, &CatalogCall::ListGroups, &CatalogReply::Groups(vec![]), now + 1),
            known
        );
        // The device, asking again, learns the new revision and what it brings.
        assert!(matches!(sync(&c, "D1", 0), CatalogReply::Changed { rev: 1, .. }));
        for call in [
            CatalogCall::DeleteProfile { id: "x".into() },
            CatalogCall::CreateGroup { name: "g".into(), now: "t".into() },
            CatalogCall::DeleteGroup { name: "g".into() },
            CatalogCall::AddMember { group: "g".into(), device_id: "D1".into() },
            CatalogCall::RemoveMember { group: "g".into(), device_id: "D1".into() },
        ] {
            assert!(call.may_change_rev(), "{call:?}");
        }
    }

    fn sync(c: &MemoryCatalog, device: &str, known_rev: u64) -> CatalogReply {
        c.call(CatalogCall::Sync { device_id: device.into(), known_rev }).unwrap()
    }

    fn ids(reply: &CatalogReply) -> Vec<String> {
        match reply {
            CatalogReply::Changed { profiles, .. } => profiles.iter().map(|p| p.id.clone()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn devices_get_what_targets_them_and_current_when_nothing_moved() {
        let c = MemoryCatalog::default();
        assert_eq!(
            sync(&c, "D1", 0),
            CatalogReply::Current { rev: 0 },
            "a fresh deployment: nothing to fetch"
        );
        let all = create(&c, Targets::All);
        assert_eq!((all.profile.id.as_str(), all.profile.version), ("p1", 1));
        let one = create(&c, Targets::Devices(vec!["D2".into()]));
        c.call(CatalogCall::CreateGroup { name: "finance".into(), now: "t".into() }).unwrap();
        let fin = create(&c, Targets::Groups(vec!["finance".into()]));
        let rev = *c.rev.borrow();
        assert_eq!(ids(&sync(&c, "D1", 0)), std::slice::from_ref(&all.profile.id));
        assert_eq!(ids(&sync(&c, "D2", 0)), [all.profile.id.clone(), one.profile.id.clone()]);
        assert_eq!(sync(&c, "D1", rev), CatalogReply::Current { rev });

        // A device added to a group later gets that group's profiles at its next session.
        c.call(CatalogCall::AddMember { group: "finance".into(), device_id: "D1".into() }).unwrap();
        let r = sync(&c, "D1", rev);
        assert_eq!(ids(&r), [all.profile.id.clone(), fin.profile.id.clone()]);
        let CatalogReply::Changed { groups, .. } = r else { panic!() };
        assert_eq!(groups, ["finance"]);
        assert_eq!(
            c.call(CatalogCall::GroupsOf { device_id: "D1".into() }),
            Ok(CatalogReply::GroupNames(vec!["finance".into()]))
        );
        let Ok(CatalogReply::Groups(g)) = c.call(CatalogCall::ListGroups) else { panic!() };
        assert_eq!(g[0].devices, 1);
        c.call(CatalogCall::RemoveMember { group: "finance".into(), device_id: "D1".into() }).unwrap();
        assert_eq!(ids(&sync(&c, "D1", 0)), [all.profile.id]);
    }

    #[test]
    fn assigning_to_everyone_writes_one_record() {
        let c = MemoryCatalog::default();
        let out = crate::object_call::block_on(handle(
            &c,
            CatalogCall::CreateProfile { request: request(Targets::All, "0"), now: "t".into() },
        ))
        .unwrap();
        assert_eq!(out.writes.len(), 3, "sequence, revision, the profile: {:?}", out.writes);
    }

    #[test]
    fn versions_go_up_only_when_settings_change() {
        let c = MemoryCatalog::default();
        let p = create(&c, Targets::All).profile;
        let update = |data: &str, targets: Targets| {
            let call = CatalogCall::UpdateProfile {
                id: p.id.clone(),
                request: request(targets, data),
                now: "u".into(),
            };
            match c.call(call) {
                Ok(CatalogReply::Profile(v)) => v.profile.version,
                other => panic!("{other:?}"),
            }
        };
        let rev = *c.rev.borrow();
        assert_eq!(update("0", Targets::Devices(vec!["D1".into()])), 1, "targets only");
        assert!(*c.rev.borrow() > rev, "but devices must look again");
        assert_eq!(update("1", Targets::All), 2);
        assert_eq!(
            c.call(CatalogCall::UpdateProfile {
                id: "p9".into(),
                request: request(Targets::All, "1"),
                now: "u".into()
            }),
            Err(CatalogError::NoSuchProfile)
        );
    }

    #[test]
    fn bad_references_store_nothing() {
        let c = MemoryCatalog::default();
        let r = c.call(CatalogCall::CreateProfile {
            request: request(Targets::Groups(vec!["nope".into()]), "0"),
            now: "t".into(),
        });
        assert_eq!(r, Err(CatalogError::NoSuchGroup("nope".into())));
        assert!(c.profiles.borrow().is_empty());
        assert_eq!((*c.rev.borrow(), *c.seq.borrow()), (0, 0));
        assert_eq!(
            c.call(CatalogCall::AddMember { group: "nope".into(), device_id: "D".into() }),
            Err(CatalogError::NoSuchGroup("nope".into()))
        );
        c.call(CatalogCall::CreateGroup { name: "g".into(), now: "t".into() }).unwrap();
        assert_eq!(
            c.call(CatalogCall::CreateGroup { name: "g".into(), now: "t".into() }),
            Err(CatalogError::GroupExists)
        );
        create(&c, Targets::Groups(vec!["g".into()]));
        assert_eq!(
            c.call(CatalogCall::DeleteGroup { name: "g".into() }),
            Err(CatalogError::GroupInUse(vec!["p1".into()]))
        );
    }

    #[test]
    fn deleting_a_group_removes_it_from_its_devices() {
        let c = MemoryCatalog::default();
        c.call(CatalogCall::CreateGroup { name: "g".into(), now: "t".into() }).unwrap();
        c.call(CatalogCall::CreateGroup { name: "h".into(), now: "t".into() }).unwrap();
        for d in ["D1", "D2"] {
            c.call(CatalogCall::AddMember { group: "g".into(), device_id: d.into() }).unwrap();
        }
        c.call(CatalogCall::AddMember { group: "h".into(), device_id: "D1".into() }).unwrap();
        c.call(CatalogCall::DeleteGroup { name: "g".into() }).unwrap();
        assert_eq!(
            c.call(CatalogCall::GroupsOf { device_id: "D1".into() }),
            Ok(CatalogReply::GroupNames(vec!["h".into()]))
        );
        assert!(!c.memberships.borrow().contains_key("D2"));
        assert!(c.members.borrow().keys().all(|(g, _)| g == "h"));
        // The name can be used again, empty.
        c.call(CatalogCall::CreateGroup { name: "g".into(), now: "t".into() }).unwrap();
        assert_eq!(c.groups.borrow()["g"].devices, 0);
    }

    #[test]
    fn reports_keep_counts_and_a_paginated_device_list() {
        let c = MemoryCatalog::default();
        let p = create(&c, Targets::All).profile;
        let st = |d: &str, s: ProfileStatus| DeviceProfileStatus {
            profile_id: p.id.clone(),
            device_id: d.into(),
            version: 1,
            status: s,
            updated_at: "t".into(),
        };
        for d in ["D1", "D2", "D3"] {
            let call = CatalogCall::Report {
                device_id: d.into(),
                statuses: vec![st(d, ProfileStatus::Pending)],
                removed: vec![],
            };
            c.call(call).unwrap();
        }
        c.call(CatalogCall::Report {
            device_id: "D2".into(),
            statuses: vec![st("D2", ProfileStatus::Verified)],
            removed: vec![],
        })
        .unwrap();
        // A device reports only about itself.
        c.call(CatalogCall::Report {
            device_id: "D3".into(),
            statuses: vec![st("D1", ProfileStatus::Failed)],
            removed: vec![],
        })
        .unwrap();
        let Ok(CatalogReply::Profile(v)) = c.call(CatalogCall::GetProfile { id: p.id.clone() }) else {
            panic!()
        };
        assert_eq!(v.devices, Counts { pending: 2, verified: 1, ..Default::default() });

        let page = |cursor: Option<&str>| match c.call(CatalogCall::ProfileDevices {
            id: p.id.clone(),
            cursor: cursor.map(Into::into),
            limit: 2,
        }) {
            Ok(CatalogReply::Devices { devices, next_cursor }) => {
                (devices.into_iter().map(|d| d.device_id).collect::<Vec<_>>(), next_cursor)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(page(None), (vec!["D1".into(), "D2".into()], Some("D3".into())));
        assert_eq!(page(Some("D3")), (vec!["D3".into()], None));

        // Deleted: the profile is gone from the API at once; counts follow the devices.
        c.call(CatalogCall::DeleteProfile { id: p.id.clone() }).unwrap();
        assert_eq!(c.call(CatalogCall::GetProfile { id: p.id.clone() }), Err(CatalogError::NoSuchProfile));
        for d in ["D1", "D2", "D3"] {
            c.call(CatalogCall::Report {
                device_id: d.into(),
                statuses: vec![],
                removed: vec![p.id.clone()],
            })
            .unwrap();
        }
        assert!(c.statuses.borrow().is_empty());
        assert!(c.counts.borrow().is_empty());
    }
}
