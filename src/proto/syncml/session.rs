//! The sans-IO OMA-DM session engine (OMA-DM 1.2 Protocol §6–§9; [MS-MDM] §2.2, §3.1.5).
//!
//! [`handle_message`] takes one device message with everything the engine needs from outside —
//! the device's credentials, the command queue, the time and a fresh nonce — and returns the
//! reply document, what happened ([`Event`]s) and the next [`SessionState`]. It does no I/O and
//! keeps no hidden state: the caller (one Durable Object per device) persists `new_state` (which
//! holds the next nonce: persist it **before** sending the reply), stores the events and owns
//! the queue. Delivery is at-least-once: a queued command is sent at most once per session; one
//! that got no Status by the end of the session stays the caller's to resend in a later session
//! ([`Event::CommandSent`], [`Event::CommandStatus`], [`SessionState::unacknowledged`]).
//!
//! Behaviour, with the public sections it follows:
//! * authentication (OMA-DM 1.2 Protocol §9; OMA-DM 1.2 Security §5.3; [MS-MDM] §1.3.1;
//!   Microsoft Learn "OMA DM protocol support"): every message must carry a valid `Cred`
//!   (`syncml:auth-md5` over the current nonce; `syncml:auth-basic` only if allowed), or come
//!   with the device's verified TLS client certificate. Success → SyncHdr 200 (never 212, which
//!   would let the rest of the session go without credentials) with a `Chal` whose `NextNonce`
//!   the next message must use; the used nonce is replaced at once, so a replayed message
//!   fails. Missing → 407, wrong → 401, both with a `Chal` carrying the current nonce, statuses
//!   only and `Final`, and nothing else: the state is returned as it was.
//! * statuses ([MS-MDM] §2.2.6.1; OMA-DM 1.2 Protocol §8.4, §8.6, §8.7; OMA-DM 1.2
//!   Representation Protocol, Status restrictions): SyncHdr first (CmdRef 0), then each Alert,
//!   Replace and any other device command in order; none for Status or Results (except 213 for
//!   a `MoreData` chunk, OMA-DM 1.2 Protocol §7).
//! * packages (OMA-DM 1.2 Protocol §6–§8; [MS-MDM] §2.2.5.3 for MaxMsgSize): a device message
//!   without `Final` gets statuses and `Alert 1222`; a final one gets statuses and the next
//!   batch of queued commands that fits the device's MaxMsgSize, with `Final` (each server
//!   message is a whole package); when nothing is left to send the reply is statuses + `Final`
//!   and the session is over.
//! * unenrollment (Microsoft Learn "Disconnecting from the management infrastructure
//!   (unenrollment)"): `Alert 1226` with Meta Type `com.microsoft:mdm.unenrollment.userrequest`
//!   → [`Event::Unenrolled`], no commands, the session closes.

use serde::{Deserialize, Serialize};

use super::codes::*;
use super::digest;
use super::message::*;
use super::SyncMlError;

/// Reply budget when the device states no MaxMsgSize (OMA-DM 1.2 Protocol §7,
/// [MS-MDM] §2.2.5.3; no public document gives a default, so the value is ours). A single
/// command larger than this is still sent, alone.
pub const DEFAULT_MAX_MSG_SIZE: usize = 65535;
/// A session silent for longer than this is abandoned; the next message starts a new one.
pub const SESSION_TIMEOUT_SECS: u64 = 600;
/// `Meta/Type` of the user-initiated unenrollment generic alert.
pub const UNENROLL_ALERT_TYPE: &str = "com.microsoft:mdm.unenrollment.userrequest";
pub const AUTH_MD5: &str = "syncml:auth-md5";
pub const AUTH_BASIC: &str = "syncml:auth-basic";

/// The device's OMA-DM credentials (APPSRV `AAUTHNAME`/`AAUTHSECRET`, [MS-MDE2] §2.2.9.5;
/// Microsoft Learn "w7 APPLICATION CSP").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuth {
    /// `AAUTHNAME`: the digest user name (also `SyncHdr/Source/LocName`).
    pub name: String,
    /// `B64(MD5(name ":" secret))` ([`digest::secret_hash`]); the secret itself is not needed.
    pub secret_hash: String,
    /// Accept `syncml:auth-basic` (no nonce, replayable). edgemdm provisions DIGEST: keep false.
    pub allow_basic: bool,
    /// The request came with a TLS client certificate (Cloudflare mTLS) that was verified and is
    /// the device's current certificate: that authenticates the session without a `Cred`.
    #[serde(default)]
    pub client_certificate: bool,
}

/// A command waiting to be sent. `command` is Get, Replace, Add, Delete, Exec, Atomic or
/// Sequence; its CmdIDs (nested ones too) are assigned by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedCommand {
    pub id: String,
    pub command: Command,
}

/// A server command (or a child of a sent Atomic/Sequence) sent in the current session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentCommand {
    /// The queued command's id (the parent's for nested children).
    pub id: String,
    pub msg_id: String,
    pub cmd_id: String,
    /// Element name (`Get`, `Atomic` …).
    pub cmd: String,
    /// A child of an Atomic/Sequence.
    pub nested: bool,
    /// The code of the device's Status for it, once received.
    pub status: Option<String>,
}

/// The current session (per `SyncHdr/SessionID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// As received (decimal or hex), echoed in every reply.
    pub session_id: String,
    /// Last device MsgID seen; a later message must have a higher one.
    pub device_msg_id: u32,
    /// Last server MsgID sent.
    pub server_msg_id: u32,
    /// A message of this session authenticated.
    pub authenticated: bool,
    /// The device's `SyncHdr/Meta/MaxMsgSize`, which holds for the whole session.
    pub max_msg_size: Option<usize>,
    /// Commands sent in this session, in order.
    pub sent: Vec<SentCommand>,
    /// Queued ids that cannot be sent (too large for MaxMsgSize, not a server command).
    pub skipped: Vec<String>,
    /// The closing message was sent (or the session was aborted).
    pub ended: bool,
    /// `now` of the last message.
    pub last_seen: u64,
}

/// Everything the engine remembers between messages. Persist it after each call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// The nonce the device must use in its next `syncml:auth-md5` credential (raw bytes; the
    /// provisioned AAUTHDATA decoded, then each `NextNonce` we issued).
    pub nonce: Vec<u8>,
    pub session: Option<Session>,
}

impl SessionState {
    /// State for a freshly enrolled device whose provisioned `AAUTHDATA` decodes to `nonce`.
    pub fn new(nonce: Vec<u8>) -> Self {
        SessionState { nonce, session: None }
    }

    /// Queued ids sent in the current session whose (top-level) Status has not arrived.
    pub fn unacknowledged(&self) -> Vec<&str> {
        self.session
            .iter()
            .flat_map(|s| &s.sent)
            .filter(|c| !c.nested && c.status.is_none())
            .map(|c| c.id.as_str())
            .collect()
    }
}

/// One call's input.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The device's message, parsed once by the caller ([`SyncMl::parse_bytes`]).
    pub message: &'a SyncMl,
    pub auth: &'a DeviceAuth,
    /// Pending commands, in sending order. Ids already sent in this session are skipped.
    pub queue: &'a [QueuedCommand],
    /// Our management URL (`SyncHdr/Source/LocURI` of the reply).
    pub server_url: &'a str,
    /// Where the device sends the session's next message, when not to `server_url`
    /// (`SyncHdr/RespURI`, OMA-DM 1.2 Representation Protocol §6.1.18).
    pub resp_uri: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// 16 random bytes; becomes the next nonce if this reply carries a `Chal`.
    pub fresh_nonce: [u8; 16],
}

/// An `Item` of a device `Results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultItem {
    /// `Source/LocURI` (or `Target/LocURI` when there is no Source).
    pub loc_uri: String,
    pub format: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub data: Option<String>,
    /// A large-object chunk; the rest follows in the device's next message.
    pub more_data: bool,
}

/// An `Item` of a device generic alert (1224/1226).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertItem {
    pub source: Option<String>,
    pub target: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub format: Option<String>,
    pub mark: Option<String>,
    pub data: Option<String>,
}

/// What happened while handling one message, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new session began. `alert` is the session alert (`1201` client-, `1200` server-initiated).
    SessionStarted { session_id: String, device_id: String, alert: Option<String> },
    /// The message's `Cred` verified; a new nonce was issued (see `new_state.nonce`).
    Authenticated,
    /// `code` 407 (no `Cred`) or 401 (wrong or stale); `challenged`: a `Chal` with the current
    /// nonce was sent. Nothing else happened.
    AuthFailed { code: u16, challenged: bool },
    /// A `Replace` item from the device (`./DevInfo/DevId`, `Man`, `Mod`, `DmV`, `Lang` …).
    Inventory { uri: String, value: String },
    /// A generic alert (1224, 1226), e.g. `com.microsoft/MDM/LoginStatus`.
    GenericAlert { alert: String, items: Vec<AlertItem> },
    /// The user unenrolled the device (1226 `com.microsoft:mdm.unenrollment.userrequest`).
    Unenrolled,
    /// The device aborted the session (`Alert 1223`).
    SessionAborted,
    /// Queued command `id` went out as (`msg_id`, `cmd_id`) in this reply.
    CommandSent { id: String, msg_id: String, cmd_id: String },
    /// Queued command `id` cannot fit the device's MaxMsgSize; it was not sent.
    CommandTooLarge { id: String, size: usize },
    /// Queued command `id` is not something a server sends (Status, Results, Alert, unknown).
    CommandInvalid { id: String },
    /// A device Status for one of our commands. `id` is `None` if (MsgRef, CmdRef) matches no
    /// command sent in this session. `nested`: it is about a child of an Atomic/Sequence.
    CommandStatus {
        id: Option<String>,
        msg_ref: String,
        cmd_ref: String,
        cmd: String,
        code: String,
        nested: bool,
        original_error: Option<String>,
        items: Vec<Item>,
    },
    /// Device Results for one of our commands (normally a Get).
    CommandResults { id: Option<String>, msg_ref: String, cmd_ref: String, items: Vec<ResultItem> },
    /// The reply closes the session (statuses and `Final` only).
    SessionEnded,
}

/// One call's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The SyncML reply; send it with HTTP 200 and [`super::CONTENT_TYPE`].
    pub reply: String,
    pub events: Vec<Event>,
    pub new_state: SessionState,
    /// The reply closes the session.
    pub session_ended: bool,
    /// The message authenticated and its effects are in `events` and `new_state`; when
    /// `false`, `new_state` is the state as it was and nothing is to be stored.
    pub authenticated: bool,
}

/// Handles one device message. Errors only for bodies that are not a SyncML message (answer them
/// with HTTP 400); everything else, including failed authentication, is a SyncML reply.
pub fn handle_message(state: &SessionState, input: Input<'_>) -> Result<Output, SyncMlError> {
    let msg = input.message;
    let device_msg_id: u32 = msg.hdr.msg_id.parse().map_err(|_| SyncMlError::Invalid("SyncHdr/MsgID"))?;
    let mut events = Vec::new();

    let continues = state.session.as_ref().is_some_and(|s| {
        s.session_id == msg.hdr.session_id
            && !s.ended
            && device_msg_id != 1
            && device_msg_id > s.device_msg_id
            && input.now.saturating_sub(s.last_seen) <= SESSION_TIMEOUT_SECS
    });
    let mut sess = match (&state.session, continues) {
        (Some(s), true) => s.clone(),
        _ => Session {
            session_id: msg.hdr.session_id.clone(),
            device_msg_id: 0,
            server_msg_id: 0,
            authenticated: false,
            max_msg_size: None,
            sent: Vec::new(),
            skipped: Vec::new(),
            ended: false,
            last_seen: input.now,
        },
    };

    // Authentication of every message (OMA-DM 1.2 Security §5.3; Microsoft's "OMA DM protocol
    // support": after a SyncHdr 200 "the same credential must be sent within the next
    // request"; we never answer 212, which would exempt the rest of the session). A message
    // that does not authenticate changes nothing: the state stays as it was, and the reply
    // challenges with the current nonce, so the device can answer it.
    if let Err(code) = check_cred(&msg.hdr, input.auth, &state.nonce) {
        let mut preview = sess.clone();
        preview.server_msg_id = preview.server_msg_id.saturating_add(1);
        let mut reply = Reply::new(msg, &preview, input.server_url, input.resp_uri);
        reply.status(hdr_status(msg, code, Some(md5_chal(&state.nonce))));
        // Statuses only: none of its commands is executed, none of its statuses applied.
        for c in &msg.body.commands {
            if needs_status(c) {
                reply.status(reply.status_for(c, STATUS_OK));
            }
        }
        events.push(Event::AuthFailed { code, challenged: true });
        return Ok(Output {
            reply: reply.build(true),
            events,
            new_state: state.clone(),
            session_ended: false,
            authenticated: false,
        });
    }

    if !continues {
        events.push(Event::SessionStarted {
            session_id: msg.hdr.session_id.clone(),
            device_id: msg.hdr.source.loc_uri.clone(),
            alert: msg.body.commands.iter().find_map(|c| match c {
                Command::Alert(a)
                    if a.data == ALERT_CLIENT_INITIATED_MGMT || a.data == ALERT_SERVER_INITIATED_MGMT =>
                {
                    Some(a.data.clone())
                }
                _ => None,
            }),
        });
    }
    sess.authenticated = true;
    sess.device_msg_id = device_msg_id;
    sess.server_msg_id = sess.server_msg_id.saturating_add(1);
    sess.last_seen = input.now;
    if let Some(n) =
        msg.hdr.meta.as_ref().and_then(|m| m.max_msg_size.as_deref()).and_then(|s| s.parse().ok())
    {
        sess.max_msg_size = Some(n);
    }
    // A fresh nonce in every reply: the next message authenticates over it, so no message can
    // be replayed.
    let nonce = input.fresh_nonce.to_vec();
    events.push(Event::Authenticated);
    let mut reply = Reply::new(msg, &sess, input.server_url, input.resp_uri);
    reply.status(hdr_status(msg, CODE_OK, Some(md5_chal(&nonce))));

    // The body, in order.
    let mut aborted = false;
    let mut unenrolled = false;
    for c in &msg.body.commands {
        match c {
            Command::Status(s) => {
                if s.cmd_ref == "0" {
                    continue; // the device's status for our SyncHdr
                }
                let sent = sess.sent.iter_mut().find(|x| x.msg_id == s.msg_ref && x.cmd_id == s.cmd_ref);
                let (id, nested) = match sent {
                    Some(x) => {
                        x.status = Some(s.data.clone());
                        (Some(x.id.clone()), x.nested)
                    }
                    None => (None, false),
                };
                events.push(Event::CommandStatus {
                    id,
                    msg_ref: s.msg_ref.clone(),
                    cmd_ref: s.cmd_ref.clone(),
                    cmd: s.cmd.clone(),
                    code: s.data.clone(),
                    nested,
                    original_error: s.original_error.clone(),
                    items: s.items.clone(),
                });
            }
            Command::Results(r) => {
                let msg_ref = r.msg_ref_or_default().to_string();
                let id = sess
                    .sent
                    .iter()
                    .find(|x| x.msg_id == msg_ref && x.cmd_id == r.cmd_ref)
                    .map(|x| x.id.clone());
                let items: Vec<ResultItem> =
                    r.items.iter().map(|i| result_item(i, r.meta.as_ref())).collect();
                if items.iter().any(|i| i.more_data) {
                    reply.status(reply.status_for(c, STATUS_CHUNKED_ITEM_ACCEPTED));
                }
                events.push(Event::CommandResults { id, msg_ref, cmd_ref: r.cmd_ref.clone(), items });
            }
            Command::Alert(a) => {
                let code = match a.data.as_str() {
                    ALERT_SERVER_INITIATED_MGMT | ALERT_CLIENT_INITIATED_MGMT | ALERT_NEXT_MESSAGE => {
                        STATUS_OK
                    }
                    ALERT_SESSION_ABORT => {
                        aborted = true;
                        events.push(Event::SessionAborted);
                        STATUS_OK
                    }
                    ALERT_GENERIC | ALERT_CLIENT_EVENT => {
                        let items: Vec<AlertItem> = a.items.iter().map(alert_item).collect();
                        let unenroll = a.data == ALERT_CLIENT_EVENT
                            && items.iter().any(|i| i.type_.as_deref() == Some(UNENROLL_ALERT_TYPE));
                        events.push(Event::GenericAlert { alert: a.data.clone(), items });
                        if unenroll {
                            unenrolled = true;
                            events.push(Event::Unenrolled);
                        }
                        STATUS_OK
                    }
                    _ => STATUS_NOT_SUPPORTED,
                };
                if !a.no_resp {
                    reply.status(reply.status_for(c, code));
                }
            }
            Command::Replace(r) => {
                for i in &r.items {
                    let uri = i.source.as_ref().map(|s| &s.loc_uri).or(i.target.as_ref().map(|t| &t.loc_uri));
                    if let (Some(uri), Some(value)) = (uri, &i.data) {
                        events.push(Event::Inventory { uri: uri.clone(), value: value.clone() });
                    }
                }
                if !r.no_resp {
                    reply.status(reply.status_for(c, STATUS_OK));
                }
            }
            // Devices send only Replace, Alert, Results and Status (OMA-DM 1.2 Protocol §8).
            other => {
                if needs_status(other) {
                    reply.status(reply.status_for(other, STATUS_NOT_SUPPORTED));
                }
            }
        }
    }

    // What follows the statuses (OMA-DM 1.2 Protocol §6 for a non-final message, §8 packages).
    if !msg.body.is_final && !aborted {
        // More device messages in this package: ask for the next one, send nothing else.
        reply.next_message_alert();
        return Ok(finish(reply.build(false), events, nonce, sess, false));
    }
    if !aborted && !unenrolled {
        reply.fill(&mut sess, input.queue, &mut events);
    }
    let ended = reply.commands.is_empty();
    if ended {
        sess.ended = true;
        events.push(Event::SessionEnded);
    }
    Ok(finish(reply.build(true), events, nonce, sess, ended))
}

fn finish(reply: String, events: Vec<Event>, nonce: Vec<u8>, sess: Session, ended: bool) -> Output {
    Output {
        reply,
        events,
        new_state: SessionState { nonce, session: Some(sess) },
        session_ended: ended,
        authenticated: true,
    }
}

/// The Status for the device's SyncHdr (CmdRef 0), with a challenge when given.
fn hdr_status(msg: &SyncMl, code: u16, chal: Option<Chal>) -> Status {
    Status {
        msg_ref: msg.hdr.msg_id.clone(),
        cmd_ref: "0".into(),
        cmd: "SyncHdr".into(),
        target_refs: vec![msg.hdr.target.loc_uri.clone()],
        source_refs: vec![msg.hdr.source.loc_uri.clone()],
        chal,
        data: code.to_string(),
        ..Default::default()
    }
}

/// `Ok` or the SyncHdr status code: 407 (no `Cred`) or 401.
/// Whether a message's credentials hold against the current nonce, without handling it (the
/// caller decides whether the message is worth any further work).
pub fn credential_ok(state: &SessionState, hdr: &SyncHdr, auth: &DeviceAuth) -> bool {
    check_cred(hdr, auth, &state.nonce).is_ok()
}

fn check_cred(hdr: &SyncHdr, auth: &DeviceAuth, nonce: &[u8]) -> Result<(), u16> {
    if auth.client_certificate {
        return Ok(());
    }
    let Some(cred) = &hdr.cred else {
        return Err(CODE_MISSING_CREDENTIALS);
    };
    if cred.data.is_empty() {
        return Err(CODE_MISSING_CREDENTIALS);
    }
    if hdr.source.loc_name.as_deref().is_some_and(|n| n != auth.name) {
        return Err(CODE_INVALID_CREDENTIALS);
    }
    // OMA: Cred Type defaults to auth-basic; Format must be b64.
    let meta = cred.meta.clone().unwrap_or_default();
    if meta.format.as_deref().is_some_and(|f| f != "b64") {
        return Err(CODE_INVALID_CREDENTIALS);
    }
    let ok = match meta.type_.as_deref().unwrap_or(AUTH_BASIC) {
        AUTH_MD5 => digest::verify_md5(&auth.secret_hash, nonce, &cred.data),
        AUTH_BASIC => auth.allow_basic && digest::verify_basic(&auth.name, &auth.secret_hash, &cred.data),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CODE_INVALID_CREDENTIALS)
    }
}

fn md5_chal(nonce: &[u8]) -> Chal {
    Chal {
        meta: Meta {
            type_: Some(AUTH_MD5.into()),
            format: Some("b64".into()),
            next_nonce: Some(digest::encode_nonce(nonce)),
            ..Default::default()
        },
    }
}

/// Status and Results get no Status ([MS-MDM] §2.2.6.1; OMA-DM 1.2 Representation Protocol,
/// Status restrictions); nor does a command without a CmdID to refer to.
fn needs_status(c: &Command) -> bool {
    !matches!(c, Command::Status(_) | Command::Results(_)) && !c.cmd_id().is_empty()
}

fn result_item(i: &Item, cmd_meta: Option<&Meta>) -> ResultItem {
    let meta = i.meta.as_ref().or(cmd_meta);
    ResultItem {
        loc_uri: i
            .source
            .as_ref()
            .map(|s| s.loc_uri.clone())
            .or_else(|| i.target.as_ref().map(|t| t.loc_uri.clone()))
            .unwrap_or_default(),
        format: meta.and_then(|m| m.format.clone()),
        type_: meta.and_then(|m| m.type_.clone()),
        data: i.data.clone(),
        more_data: i.more_data,
    }
}

fn alert_item(i: &Item) -> AlertItem {
    let m = i.meta.clone().unwrap_or_default();
    AlertItem {
        source: i.source.as_ref().map(|s| s.loc_uri.clone()),
        target: i.target.as_ref().map(|t| t.loc_uri.clone()),
        type_: m.type_,
        format: m.format,
        mark: m.mark,
        data: i.data.clone(),
    }
}

/// The server message being assembled; CmdIDs are 1, 2, 3 … in document order.
struct Reply {
    hdr: SyncHdr,
    device_msg_id: String,
    statuses: Vec<Status>,
    next_message: Option<Alert>,
    commands: Vec<Command>,
    next_cmd_id: u32,
}

impl Reply {
    fn new(msg: &SyncMl, sess: &Session, server_url: &str, resp_uri: Option<&str>) -> Reply {
        Reply {
            hdr: SyncHdr {
                ver_dtd: "1.2".into(),
                ver_proto: "DM/1.2".into(),
                session_id: msg.hdr.session_id.clone(),
                msg_id: sess.server_msg_id.to_string(),
                target: Target::new(msg.hdr.source.loc_uri.clone()),
                source: Source::new(server_url),
                resp_uri: resp_uri.map(str::to_string),
                ..Default::default()
            },
            device_msg_id: msg.hdr.msg_id.clone(),
            statuses: Vec::new(),
            next_message: None,
            commands: Vec::new(),
            next_cmd_id: 1,
        }
    }

    fn take_cmd_id(&mut self) -> String {
        let id = self.next_cmd_id;
        self.next_cmd_id += 1;
        id.to_string()
    }

    fn status(&mut self, mut s: Status) {
        s.cmd_id = self.take_cmd_id();
        self.statuses.push(s);
    }

    /// A Status for a device command, with SourceRef/TargetRef of its items.
    fn status_for(&self, c: &Command, code: &str) -> Status {
        let items: &[Item] = match c {
            Command::Replace(r) => &r.items,
            Command::Alert(a) => &a.items,
            _ => &[],
        };
        Status {
            msg_ref: self.device_msg_id.clone(),
            cmd_ref: c.cmd_id().to_string(),
            cmd: c.name().to_string(),
            source_refs: items.iter().filter_map(|i| i.source.as_ref().map(|s| s.loc_uri.clone())).collect(),
            target_refs: items.iter().filter_map(|i| i.target.as_ref().map(|t| t.loc_uri.clone())).collect(),
            data: code.into(),
            ..Default::default()
        }
    }

    fn next_message_alert(&mut self) {
        let cmd_id = self.take_cmd_id();
        self.next_message = Some(Alert { cmd_id, data: ALERT_NEXT_MESSAGE.into(), ..Default::default() });
    }

    fn message(&self, is_final: bool) -> SyncMl {
        let mut commands: Vec<Command> = self.statuses.iter().cloned().map(Command::Status).collect();
        commands.extend(self.next_message.iter().cloned().map(Command::Alert));
        commands.extend(self.commands.iter().cloned());
        SyncMl { hdr: self.hdr.clone(), body: SyncBody { commands, is_final } }
    }

    fn build(&self, is_final: bool) -> String {
        self.message(is_final).to_document()
    }

    /// Adds unsent queued commands, in order, while the document stays within the budget.
    fn fill(&mut self, sess: &mut Session, queue: &[QueuedCommand], events: &mut Vec<Event>) {
        let limit = sess.max_msg_size.unwrap_or(DEFAULT_MAX_MSG_SIZE);
        let soft = sess.max_msg_size.is_none();
        let mut size = self.build(true).len();
        let msg_id = self.hdr.msg_id.clone();
        for q in queue {
            if sess.skipped.contains(&q.id) || sess.sent.iter().any(|s| !s.nested && s.id == q.id) {
                continue;
            }
            if !is_server_command(&q.command) {
                sess.skipped.push(q.id.clone());
                events.push(Event::CommandInvalid { id: q.id.clone() });
                continue;
            }
            let mut cmd = q.command.clone();
            let first_id = self.next_cmd_id;
            let mut records = Vec::new();
            number(&mut cmd, &mut self.next_cmd_id, &q.id, &msg_id, false, &mut records);
            let cmd_size = cmd.to_el().to_xml().len();
            // No device limit: a command bigger than the budget still travels, alone.
            if size + cmd_size > limit && (!self.commands.is_empty() || !soft) {
                self.next_cmd_id = first_id;
                if !self.commands.is_empty() {
                    break; // the rest goes in the next message
                }
                sess.skipped.push(q.id.clone());
                events.push(Event::CommandTooLarge { id: q.id.clone(), size: size + cmd_size });
                continue;
            }
            size += cmd_size;
            events.push(Event::CommandSent {
                id: q.id.clone(),
                msg_id: msg_id.clone(),
                cmd_id: cmd.cmd_id().to_string(),
            });
            sess.sent.extend(records);
            self.commands.push(cmd);
        }
    }
}

fn is_server_command(c: &Command) -> bool {
    match c {
        Command::Get(_) | Command::Replace(_) | Command::Add(_) | Command::Delete(_) | Command::Exec(_) => {
            true
        }
        Command::Atomic(_) | Command::Sequence(_) => c.children().iter().all(is_server_command),
        _ => false,
    }
}

/// Assigns CmdIDs depth first (parent before children) and records each for status matching.
fn number(c: &mut Command, next: &mut u32, id: &str, msg_id: &str, nested: bool, out: &mut Vec<SentCommand>) {
    let cmd_id = next.to_string();
    *next += 1;
    c.set_cmd_id(cmd_id.clone());
    out.push(SentCommand {
        id: id.to_string(),
        msg_id: msg_id.to_string(),
        cmd_id,
        cmd: c.name().to_string(),
        nested,
        status: None,
    });
    if let Some(kids) = c.children_mut() {
        for k in kids {
            number(k, next, id, msg_id, true, out);
        }
    }
}

#[cfg(test)]
mod tests;
