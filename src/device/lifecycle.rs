//! The device lifecycle, pure: every status a device record can be in and every event that
//! moves it, with the refusals. The device object persists the status; the rules are here.
//!
//! ```text
//!            enroll (new id)                 retire (admin)                 Unenroll answered,
//!   (none) ───────────────▶ enrolled ─────────────────────▶ retiring ──────▶ retired
//!                            │   ▲  ▲                          │  (any code), device left (1226),
//!         device left (1226) │   │  │ same user re-enrolls     │  attempts used up, grace ended
//!                            ▼   │  │ (new credentials,        │
//!                       unenrolled  │  old certificate revoked)│
//!                            │      │                          │
//!   new id on the same hardware by the same user: enrolled ──▶ superseded
//!
//!   retiring, retired, unenrolled, superseded ── enroll (any authorized user) ──▶ enrolled,
//!   a fresh enrollment: nothing queued for the old one is delivered.
//! ```
//!
//! What each status allows: only `enrolled` devices take admin commands and renew (with their
//! current certificate only); a `retiring` device still authenticates, to receive its Unenroll
//! and nothing else; every other status is refused at check-in (SyncHdr 403).

use super::{DeviceRecord, DeviceStatus};

/// How a new enrollment relates to what the record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollKind {
    /// The DeviceID was never enrolled.
    New,
    /// The same user enrolls an enrolled device again (a reset PC): new credentials, the old
    /// certificate revoked, the queue kept.
    SameUser { revoke: String },
    /// The DeviceID was released (retired, retiring, unenrolled or superseded): a new
    /// enrollment that inherits no queued command.
    Fresh { revoke: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleError {
    /// The DeviceID is enrolled by another user.
    NotYours,
    /// The device is not enrolled (commands, renewals).
    NotEnrolled,
    /// A renewal signed with a certificate that is not the device's current one.
    NotCurrentCertificate,
}

impl std::fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LifecycleError::NotYours => "the device is enrolled by another user",
            LifecycleError::NotEnrolled => "the device is not enrolled",
            LifecycleError::NotCurrentCertificate => {
                "the signing certificate is not the device's current one"
            }
        })
    }
}

/// Whether `user` may enroll this DeviceID now, and what it means for the old enrollment.
pub fn enroll(current: Option<&DeviceRecord>, user: Option<&str>) -> Result<EnrollKind, LifecycleError> {
    let Some(rec) = current else {
        return Ok(EnrollKind::New);
    };
    let revoke = rec.certificate.serial.clone();
    match rec.status {
        DeviceStatus::Enrolled if rec.user.as_deref() == user => Ok(EnrollKind::SameUser { revoke }),
        DeviceStatus::Enrolled => Err(LifecycleError::NotYours),
        DeviceStatus::Retiring
        | DeviceStatus::Retired
        | DeviceStatus::Unenrolled
        | DeviceStatus::Superseded => Ok(EnrollKind::Fresh { revoke }),
    }
}

/// What an admin's retire does to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retire {
    pub status: DeviceStatus,
    /// Queue the Unenroll (and cancel everything else queued).
    pub queue_unenroll: bool,
}

/// Retire takes effect on the server at once: from here on the device gets nothing but the
/// Unenroll, its certificate is revoked and it cannot renew. Idempotent: retiring again changes
/// nothing (and the caller re-runs the revocation and listing, completing what a storage
/// failure may have interrupted).
pub fn retire(rec: &DeviceRecord) -> Retire {
    match rec.status {
        DeviceStatus::Enrolled => Retire { status: DeviceStatus::Retiring, queue_unenroll: true },
        DeviceStatus::Unenrolled => Retire { status: DeviceStatus::Retired, queue_unenroll: false },
        s @ (DeviceStatus::Retiring | DeviceStatus::Retired | DeviceStatus::Superseded) => {
            Retire { status: s, queue_unenroll: false }
        }
    }
}

/// The device said it left (alert 1226 with the unenrollment type): a retiring device is now
/// retired, an enrolled one unenrolled.
pub fn device_left(status: DeviceStatus) -> DeviceStatus {
    match status {
        DeviceStatus::Enrolled => DeviceStatus::Unenrolled,
        DeviceStatus::Retiring => DeviceStatus::Retired,
        other => other,
    }
}

/// The Unenroll ended, whatever the device answered (or it never answered within its
/// attempts, or the grace period ended): the retirement is complete.
pub fn unenroll_ended(status: DeviceStatus) -> DeviceStatus {
    match status {
        DeviceStatus::Retiring => DeviceStatus::Retired,
        other => other,
    }
}

/// What a device in this status may do in a management session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAccess {
    Full,
    /// Authenticate and receive the Unenroll, nothing else.
    UnenrollOnly,
    Refused,
}

pub fn session_access(status: DeviceStatus) -> SessionAccess {
    match status {
        DeviceStatus::Enrolled => SessionAccess::Full,
        DeviceStatus::Retiring => SessionAccess::UnenrollOnly,
        DeviceStatus::Retired | DeviceStatus::Unenrolled | DeviceStatus::Superseded => SessionAccess::Refused,
    }
}

/// Admin commands are queued for enrolled devices only.
pub fn accepts_commands(status: DeviceStatus) -> Result<(), LifecycleError> {
    match status {
        DeviceStatus::Enrolled => Ok(()),
        _ => Err(LifecycleError::NotEnrolled),
    }
}

/// A renewal is allowed for the certificate that is current on an enrolled device's record,
/// and, as a retry whose answer was lost, for the one the current certificate renewed (the CA
/// allows that retry only while the current one is young and was never used; [`crate::issuer`]).
pub fn renewal(
    rec: &DeviceRecord,
    signer_thumbprint: &str,
    signer_serial: &str,
) -> Result<(), LifecycleError> {
    accepts_commands(rec.status)?;
    let current = rec.certificate.thumbprint.eq_ignore_ascii_case(signer_thumbprint);
    let replaced = rec.certificate.renews.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(signer_serial));
    if !current && !replaced {
        return Err(LifecycleError::NotCurrentCertificate);
    }
    Ok(())
}

/// A new DeviceID enrolled on this record's hardware (same HWDevID): the same user's new
/// enrollment supersedes this one; another user's leaves it alone.
pub fn supersede(rec: &DeviceRecord, by_user: Option<&str>) -> Option<DeviceStatus> {
    let live =
        matches!(rec.status, DeviceStatus::Enrolled | DeviceStatus::Retiring | DeviceStatus::Unenrolled);
    (live && rec.user.is_some() && rec.user.as_deref() == by_user).then_some(DeviceStatus::Superseded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::CertRef;

    fn rec(status: DeviceStatus, user: &str) -> DeviceRecord {
        crate::device::test_record("D", status, Some(user))
    }

    const ALL: [DeviceStatus; 5] = [
        DeviceStatus::Enrolled,
        DeviceStatus::Retiring,
        DeviceStatus::Retired,
        DeviceStatus::Unenrolled,
        DeviceStatus::Superseded,
    ];

    #[test]
    fn only_the_same_user_re_enrolls_an_enrolled_device() {
        assert_eq!(enroll(None, Some("a@x")), Ok(EnrollKind::New));
        let a = rec(DeviceStatus::Enrolled, "a@x");
        assert_eq!(enroll(Some(&a), Some("a@x")), Ok(EnrollKind::SameUser { revoke: "0A".into() }));
        assert_eq!(enroll(Some(&a), Some("b@x")), Err(LifecycleError::NotYours));
        assert_eq!(enroll(Some(&a), None), Err(LifecycleError::NotYours));
    }

    #[test]
    fn a_released_device_id_is_a_fresh_enrollment_for_anyone() {
        for s in [
            DeviceStatus::Retiring,
            DeviceStatus::Retired,
            DeviceStatus::Unenrolled,
            DeviceStatus::Superseded,
        ] {
            for user in ["a@x", "b@x"] {
                assert_eq!(
                    enroll(Some(&rec(s, "a@x")), Some(user)),
                    Ok(EnrollKind::Fresh { revoke: "0A".into() }),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn retire_takes_effect_at_once_and_is_idempotent() {
        let r = retire(&rec(DeviceStatus::Enrolled, "a@x"));
        assert_eq!(r, Retire { status: DeviceStatus::Retiring, queue_unenroll: true });
        assert_eq!(retire(&rec(DeviceStatus::Unenrolled, "a@x")).status, DeviceStatus::Retired);
        for s in [DeviceStatus::Retiring, DeviceStatus::Retired, DeviceStatus::Superseded] {
            assert_eq!(retire(&rec(s, "a@x")), Retire { status: s, queue_unenroll: false });
        }
        assert_eq!(session_access(DeviceStatus::Retiring), SessionAccess::UnenrollOnly);
        assert_eq!(accepts_commands(DeviceStatus::Retiring), Err(LifecycleError::NotEnrolled));
        assert!(renewal(&rec(DeviceStatus::Retiring, "a@x"), "T1", "0A").is_err());
    }

    #[test]
    fn the_retirement_ends_whatever_the_device_does() {
        assert_eq!(unenroll_ended(DeviceStatus::Retiring), DeviceStatus::Retired);
        assert_eq!(device_left(DeviceStatus::Retiring), DeviceStatus::Retired);
        assert_eq!(device_left(DeviceStatus::Enrolled), DeviceStatus::Unenrolled);
        for s in [DeviceStatus::Retired, DeviceStatus::Unenrolled, DeviceStatus::Superseded] {
            assert_eq!(device_left(s), s);
            assert_eq!(unenroll_ended(s), s);
        }
        assert_eq!(unenroll_ended(DeviceStatus::Enrolled), DeviceStatus::Enrolled, "only a retirement ends");
    }

    #[test]
    fn sessions_commands_and_renewals_by_status() {
        for s in ALL {
            let expected = match s {
                DeviceStatus::Enrolled => SessionAccess::Full,
                DeviceStatus::Retiring => SessionAccess::UnenrollOnly,
                _ => SessionAccess::Refused,
            };
            assert_eq!(session_access(s), expected, "{s:?}");
            assert_eq!(accepts_commands(s).is_ok(), s == DeviceStatus::Enrolled);
        }
        let a = rec(DeviceStatus::Enrolled, "a@x");
        assert_eq!(renewal(&a, "t1", "0A"), Ok(()));
        assert_eq!(renewal(&a, "FFFF", "0B"), Err(LifecycleError::NotCurrentCertificate));
        let renewed = DeviceRecord {
            certificate: CertRef { renews: Some("09".into()), ..a.certificate.clone() },
            ..a.clone()
        };
        assert_eq!(renewal(&renewed, "EEEE", "09"), Ok(()), "a retry with the certificate it replaced");
        assert_eq!(renewal(&renewed, "EEEE", "08"), Err(LifecycleError::NotCurrentCertificate));
    }

    #[test]
    fn supersede_only_the_same_users_live_record() {
        for s in [DeviceStatus::Enrolled, DeviceStatus::Retiring, DeviceStatus::Unenrolled] {
            assert_eq!(supersede(&rec(s, "a@x"), Some("a@x")), Some(DeviceStatus::Superseded));
            assert_eq!(supersede(&rec(s, "a@x"), Some("b@x")), None);
        }
        assert_eq!(supersede(&rec(DeviceStatus::Retired, "a@x"), Some("a@x")), None);
    }
}
