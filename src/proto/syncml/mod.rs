//! OMA-DM 1.2 over SyncML 1.2, as Windows MDM speaks it ([MS-MDM], OMA-DM 1.2 Protocol).
//!
//! * [`codes`]: status and alert codes, named.
//!
//! * [`message`]: one type per SyncML element, parsed from and built into [`crate::xml`] trees.
//! * [`digest`]: the `syncml:auth-md5` credential.
//! * [`session`]: the sans-IO session engine: a device message, the device's credentials, the
//!   command queue, the time and fresh randomness in; the reply document, events and the next
//!   state out. No I/O, no storage, no clock, no randomness of its own.

pub mod codes;
pub mod digest;
pub mod message;
pub mod session;

use std::fmt;

use crate::xml::XmlError;

/// `Content-Type` of every SyncML request and response (no `charset` parameter).
pub const CONTENT_TYPE: &str = "application/vnd.syncml.dm+xml";

/// Why a body could not be handled as a SyncML message. The caller answers HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMlError {
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not well-formed XML (or uses a DOCTYPE).
    Xml(XmlError),
    /// Well-formed XML, but the root is not a `SyncML` element in a SyncML namespace.
    NotSyncMl { root: String },
    /// A required element is absent or empty (`"SyncHdr/SessionID"` …).
    Missing(&'static str),
    /// A required value has the wrong form (`"SyncHdr/MsgID"` …).
    Invalid(&'static str),
}

impl fmt::Display for SyncMlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncMlError::NotUtf8 => f.write_str("SyncML body is not UTF-8"),
            SyncMlError::Xml(e) => write!(f, "SyncML body: {e}"),
            SyncMlError::NotSyncMl { root } => {
                write!(f, "not a SyncML message (root element {root})")
            }
            SyncMlError::Missing(what) => write!(f, "SyncML message lacks {what}"),
            SyncMlError::Invalid(what) => write!(f, "SyncML message has an invalid {what}"),
        }
    }
}

impl std::error::Error for SyncMlError {}

impl From<XmlError> for SyncMlError {
    fn from(e: XmlError) -> Self {
        SyncMlError::Xml(e)
    }
}
