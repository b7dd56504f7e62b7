//! A device's configuration profiles during a check-in, pure: the glue between the session
//! engine and [`crate::profiles::reconcile`].
//!
//! A message's answers must be known before its reply is filled, or a read-back that an
//! acknowledgement calls for would wait for the next session (hours away). The engine is pure,
//! so the check-in runs it once on the message with no profile commands to learn what the
//! device answered, reconciles, and runs it again with the profile commands after the admin's
//! queue; only the second run's reply and state are kept. A device with no profiles and no
//! news from the catalogue skips all of this.

use crate::profiles::reconcile::{self, DeviceProfile, Transition};
use crate::profiles::DesiredProfile;
use crate::proto::syncml::session::{self, Event, Input, QueuedCommand, SessionState};
use crate::proto::syncml::SyncMlError;
use serde::{Deserialize, Serialize};

/// What the device object keeps about its profiles besides each profile (storage key
/// `profiles`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSync {
    /// The catalogue revision the device last reconciled against.
    pub rev: u64,
    /// Its groups, as the catalogue said at that revision.
    pub groups: Vec<String>,
    /// The profiles on the device (storage keys `prof:<id>`).
    pub ids: Vec<String>,
}

/// The catalogue's answer to a device starting a session whose revision moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogNews {
    pub rev: u64,
    pub groups: Vec<String>,
    pub profiles: Vec<DesiredProfile>,
}

/// The profile side of a check-in's state.
#[derive(Debug, Clone, Default)]
pub struct ProfileState {
    pub sync: ProfileSync,
    pub profiles: Vec<DeviceProfile>,
    pub news: Option<CatalogNews>,
    /// `PROFILE_VERIFY_INTERVAL_SECONDS`.
    pub verify_interval_secs: u64,
}

/// What changed, for the device object to store and report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileChanges {
    /// The new `profiles` record, when it changed.
    pub sync: Option<ProfileSync>,
    /// Profiles whose state changed.
    pub changed: Vec<DeviceProfile>,
    /// Profiles that left the device.
    pub removed: Vec<String>,
    pub transitions: Vec<Transition>,
}

impl ProfileState {
    fn idle(&self) -> bool {
        self.profiles.is_empty() && self.news.is_none()
    }
}

/// The profile commands for this message's reply, and what changed. `engine` is the input the
/// reply will be made with, without the profile commands; an unauthenticated message changes
/// nothing.
pub fn plan(
    state: ProfileState,
    session_state: &SessionState,
    engine: Input<'_>,
    now_ms: u64,
) -> Result<(Vec<QueuedCommand>, ProfileChanges), SyncMlError> {
    if state.idle() {
        return Ok((Vec::new(), ProfileChanges::default()));
    }
    let pre = session::handle_message(session_state, Input { queue: &[], ..engine })?;
    if !pre.authenticated {
        return Ok((Vec::new(), ProfileChanges::default()));
    }
    let reports = reconcile::reports(&pre.events, pre.new_state.session.as_ref());
    let session_start = pre.events.iter().any(|e| matches!(e, Event::SessionStarted { .. }));
    let before = state.profiles.clone();
    let out = reconcile::reconcile(reconcile::Input {
        desired: state.news.as_ref().map(|n| n.profiles.as_slice()),
        profiles: state.profiles,
        reports: &reports,
        session_start,
        now_ms,
        verify_interval_ms: state.verify_interval_secs.saturating_mul(1000),
    });
    let changed: Vec<DeviceProfile> = out.profiles.iter().filter(|p| !before.contains(p)).cloned().collect();
    let mut sync = state.sync.clone();
    if let Some(n) = &state.news {
        sync.rev = n.rev;
        sync.groups = n.groups.clone();
    }
    sync.ids = out.profiles.iter().map(|p| p.id.clone()).collect();
    let sync = (sync != state.sync).then_some(sync);
    Ok((out.commands, ProfileChanges { sync, changed, removed: out.removed, transitions: out.transitions }))
}
