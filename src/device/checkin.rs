//! One management message from a device, start to end, pure: who may talk (unknown devices get
//! SyncHdr 401, retired or unenrolled ones 403), then in this order: commands sent in an
//! earlier session without a status are failed once they used their attempts; the queue is
//! handed to the session engine ([`crate::proto::syncml::session`]); the engine's events
//! update the record, the management state and the commands. The device object loads the
//! state, calls [`checkin`] and commits what it returns.

use super::lifecycle::{self, SessionAccess};
use super::profile_state::{self, ProfileChanges, ProfileState};
use super::{valid_device_id, DeviceRecord, DeviceStatus, DmCredentials};
use crate::codec::decode_base64;
use crate::commands::{self, CommandRecord, CommandRequest, Management};
use crate::config::MessageSigning;
use crate::proto::syncml::codes::{CODE_FORBIDDEN, CODE_INVALID_CREDENTIALS};
use crate::proto::syncml::message::{SyncHdr, SyncMl};
use crate::proto::syncml::session::{self, DeviceAuth, Input, SessionState};
use crate::proto::syncml::SyncMlError;
use crate::time::format_timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a check-in reads from the device object.
#[derive(Debug, Clone, Default)]
pub struct CheckinState {
    pub record: Option<DeviceRecord>,
    pub credentials: Option<DmCredentials>,
    pub session: Option<SessionState>,
    pub mgmt: Management,
    /// Queued command ids, in order.
    pub pending: Vec<String>,
    /// The records of the pending commands.
    pub commands: BTreeMap<String, CommandRecord>,
    /// The device's configuration profiles ([`profiles`]).
    pub profiles: ProfileState,
}

/// What the edge adds to the device's message.
#[derive(Debug, Clone)]
pub struct CheckinInput<'a> {
    pub message: &'a [u8],
    /// `message`, parsed once by the caller.
    pub parsed: &'a SyncMl,
    /// The management URL the device addressed (the reply's Source).
    pub server_url: &'a str,
    /// SHA-1 thumbprint of a TLS client certificate Cloudflare mTLS verified, if any.
    pub client_cert: Option<&'a str>,
    pub max_attempts: u32,
    /// What the edge found of the message's signature (`MDM-Signature` / `MS-Signature`).
    pub signature: &'a MessageSignature,
    pub signing: MessageSigning,
    pub now_ms: u64,
    pub fresh_nonce: [u8; 16],
}

/// What changed, for the object to commit, and the reply.
#[derive(Debug, Clone)]
pub enum Checkin {
    /// The device may not manage: the reply is a SyncHdr status alone, nothing changes.
    Refused {
        reply: String,
    },
    /// The message did not authenticate: the reply challenges it, nothing changes.
    Unchanged {
        reply: String,
    },
    Handled(Box<Handled>),
}

#[derive(Debug, Clone)]
pub struct Handled {
    pub reply: String,
    pub record: DeviceRecord,
    pub mgmt: Management,
    pub session: SessionState,
    /// The queue without the commands that are done.
    pub pending: Vec<String>,
    /// Command records that changed.
    pub changed: Vec<CommandRecord>,
    /// The device's status changed (the listing must follow; a retired device's certificate
    /// is revoked).
    pub status_changed: bool,
    pub profiles: ProfileChanges,
}

/// A message's signature as the edge found it: the CMS signature is checked there (with the
/// platform's crypto, [`crate::pki::verify_detached`]); whose it must be is decided here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageSignature {
    /// The message came without one.
    #[default]
    Absent,
    /// One came and does not verify over the message.
    Invalid,
    /// It verifies; made with the certificate of this SHA-1 thumbprint.
    Signer { thumbprint: String },
}

/// Message signing ([MS-MDM] §2.2.1.1): a signature, where one comes (or where one is
/// required), must verify over the message and come from the device's current certificate.
fn signature_accepted(record: &DeviceRecord, input: &CheckinInput<'_>) -> bool {
    match (input.signing, input.signature) {
        (MessageSigning::Off, _) | (MessageSigning::Verify, MessageSignature::Absent) => true,
        (_, MessageSignature::Absent | MessageSignature::Invalid) => false,
        (_, MessageSignature::Signer { thumbprint }) => {
            thumbprint.eq_ignore_ascii_case(&record.certificate.thumbprint)
        }
    }
}

/// The device's credentials as the session engine checks them.
fn device_auth(creds: &DmCredentials, record: &DeviceRecord, client_cert: Option<&str>) -> DeviceAuth {
    DeviceAuth {
        name: creds.device_name.clone(),
        secret_hash: creds.device_hash_b64.clone(),
        allow_basic: false,
        client_certificate: client_cert
            .is_some_and(|t| t.eq_ignore_ascii_case(&record.certificate.thumbprint)),
    }
}

/// Whether `msg` authenticates against this state: work that costs other objects (asking the
/// profile catalogue) is done only for messages that do.
pub fn authenticates(state: &CheckinState, msg: &SyncMl, client_cert: Option<&str>) -> bool {
    let (Some(record), Some(creds)) = (&state.record, &state.credentials) else {
        return false;
    };
    let fresh;
    let session = match &state.session {
        Some(s) => s,
        None => {
            fresh = SessionState::new(decode_base64(&creds.device_nonce_b64).unwrap_or_default());
            &fresh
        }
    };
    session::credential_ok(session, &msg.hdr, &device_auth(creds, record, client_cert))
}

/// The query parameter of the management URL that names the device object ([`route`]).
pub const ROUTE_PARAM: &str = "dev";

/// Which device object a message goes to. `routed`: the [`ROUTE_PARAM`] of the URL it was
/// posted to (the `RespURI` of the server's last reply), then the name its credential gives
/// (`Source/LocName`, the `AAUTHNAME` of its provisioning document, which is the DeviceID it
/// was enrolled under), then `Source/LocURI`. A Windows 8.1 device enrolls without telling its
/// DeviceID ([MS-MDE] RSTs carry only `DeviceType` and `ApplicationVersion`), so it is enrolled
/// under one the server chose and reports its own in `LocURI`. Only where the message goes:
/// the object it reaches authenticates it with its own credentials.
pub fn route<'a>(hdr: &'a SyncHdr, routed: Option<&'a str>) -> &'a str {
    [routed, hdr.source.loc_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|d| valid_device_id(d))
        .unwrap_or_else(|| hdr.source.loc_uri.trim())
}

/// Where the session's next message goes: this object named in the management URL, when the
/// device's `LocURI` does not name it (its later messages carry no `LocName`).
fn resp_uri(msg: &SyncMl, record: &DeviceRecord, server_url: &str) -> Option<String> {
    let id = &record.identity.device_id;
    (msg.hdr.source.loc_uri.trim() != id).then(|| {
        let sep = if server_url.contains('?') { '&' } else { '?' };
        // DeviceIDs are URL-safe but for the braces of a `{GUID}`.
        let id = id.replace('{', "%7B").replace('}', "%7D");
        format!("{server_url}{sep}{ROUTE_PARAM}={id}")
    })
}

/// Runs one device message against the device's state.
pub fn checkin(state: CheckinState, input: CheckinInput<'_>) -> Result<Checkin, SyncMlError> {
    let msg = input.parsed;
    let (Some(mut record), Some(creds)) = (state.record, state.credentials) else {
        let reply = commands::refusal(msg, CODE_INVALID_CREDENTIALS, input.server_url);
        return Ok(Checkin::Refused { reply });
    };
    let access = lifecycle::session_access(record.status);
    if access == SessionAccess::Refused {
        return Ok(Checkin::Refused { reply: commands::refusal(msg, CODE_FORBIDDEN, input.server_url) });
    }
    if !signature_accepted(&record, &input) {
        return Ok(Checkin::Refused {
            reply: commands::refusal(msg, CODE_INVALID_CREDENTIALS, input.server_url),
        });
    }
    let session_state = state
        .session
        .unwrap_or_else(|| SessionState::new(decode_base64(&creds.device_nonce_b64).unwrap_or_default()));
    let mut mgmt = state.mgmt;
    let mut commands = state.commands;
    let before = commands.clone();
    let now_iso = format_timestamp(input.now_ms);

    let expired =
        commands::expire_unacknowledged(&session_state, &mut commands, input.max_attempts, &now_iso);
    let mut status_changed = false;
    // An Unenroll that used up its attempts unanswered still ends the retirement.
    if expired
        .iter()
        .any(|id| commands.get(id).is_some_and(|c| matches!(c.request, CommandRequest::Unenroll { .. })))
    {
        let ended = lifecycle::unenroll_ended(record.status);
        status_changed = ended != record.status;
        record.status = ended;
    }
    let mut queue = commands::queue(&state.pending, &commands);
    if access == SessionAccess::UnenrollOnly || record.status != DeviceStatus::Enrolled {
        // A retiring device gets its Unenroll and nothing else.
        queue.retain(|q| {
            commands.get(&q.id).is_some_and(|c| matches!(c.request, CommandRequest::Unenroll { .. }))
        });
    }
    let auth = device_auth(&creds, &record, input.client_cert);
    let resp_uri = resp_uri(msg, &record, input.server_url);
    let engine_input = Input {
        message: input.parsed,
        auth: &auth,
        queue: &[],
        server_url: input.server_url,
        resp_uri: resp_uri.as_deref(),
        now: input.now_ms / 1000,
        fresh_nonce: input.fresh_nonce,
    };
    // Configuration profiles go after the admin's commands, to enrolled devices only.
    let (profile_commands, profile_changes) = if record.status == DeviceStatus::Enrolled {
        profile_state::plan(state.profiles, &session_state, engine_input, input.now_ms)?
    } else {
        Default::default()
    };
    queue.extend(profile_commands);
    let out = session::handle_message(&session_state, Input { queue: &queue, ..engine_input })?;
    // A message that did not authenticate changes nothing, not even what its arrival would
    // have expired (the next authenticated message, or the retire alarm, does that).
    if !out.authenticated {
        return Ok(Checkin::Unchanged { reply: out.reply });
    }
    let applied = commands::apply_events(&out.events, &mut record, &mut mgmt, &mut commands, &now_iso);

    let pending =
        state.pending.into_iter().filter(|id| commands.get(id).is_some_and(|c| !c.is_done())).collect();
    let changed = commands.into_iter().filter(|(id, c)| before.get(id) != Some(c)).map(|(_, c)| c).collect();
    Ok(Checkin::Handled(Box::new(Handled {
        reply: out.reply,
        record,
        mgmt,
        session: out.new_state,
        pending,
        changed,
        status_changed: applied.status_changed || status_changed,
        profiles: profile_changes,
    })))
}
