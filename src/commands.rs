//! Management commands, pure: the admin's commands and their records, the queue's rules
//! (order, at-least-once delivery, attempt limits) and how a SyncML session's events change a
//! device. The device Durable Object loads the state, calls these, and stores the result.

use crate::codec::decode_base64;
use crate::device::{lifecycle, DeviceRecord, DeviceStatus};
use crate::proto::syncml::codes;
use crate::proto::syncml::message::{
    Add, Command, Delete, Exec, Get, Item, Meta, Replace, Source, Status, SyncBody, SyncHdr, SyncMl, Target,
};
use crate::proto::syncml::session::{Event, QueuedCommand, ResultItem, SessionState};
use crate::time::format_timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most commands a device's queue holds at once.
pub const MAX_PENDING: usize = 1000;
/// Generic alerts kept on the record.
const MAX_ALERTS: usize = 20;

pub const LOCK_URI: &str = "./Vendor/MSFT/RemoteLock/Lock";
pub const REBOOT_URI: &str = "./Device/Vendor/MSFT/Reboot/RebootNow";
pub const WIPE_URI: &str = "./Device/Vendor/MSFT/RemoteWipe/doWipe";
/// What the `inventory` command reads.
pub const INVENTORY_URIS: [&str; 12] = [
    "./DevInfo/DevId",
    "./DevInfo/Man",
    "./DevInfo/Mod",
    "./DevInfo/DmV",
    "./DevInfo/Lang",
    "./DevDetail/SwV",
    "./DevDetail/FwV",
    "./DevDetail/HwV",
    "./DevDetail/OEM",
    "./DevDetail/DevTyp",
    "./DevDetail/Ext/Microsoft/DeviceName",
    "./DevDetail/Ext/Microsoft/OSPlatform",
];

/// An admin's command, as `POST /api/v1/devices/{id}/commands` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum CommandRequest {
    Get {
        uri: String,
    },
    Replace {
        uri: String,
        format: String,
        data: String,
    },
    Add {
        uri: String,
        format: Option<String>,
        data: Option<String>,
    },
    Delete {
        uri: String,
    },
    Exec {
        uri: String,
        data: Option<String>,
    },
    Lock,
    Reboot,
    Wipe,
    Inventory,
    /// Queued by retiring a device; refused from the API by [`CommandRequest::from_json`].
    Unenroll {
        provider_id: String,
    },
}

/// OMA-DM `Meta/Format` values an admin may use.
const FORMATS: [&str; 5] = ["int", "chr", "bool", "b64", "xml"];

fn check_uri(uri: &str) -> Result<(), String> {
    if !uri.starts_with("./") || uri.len() < 3 || uri.len() > 1024 {
        return Err(format!("uri must start with ./ and be 3 to 1024 characters: {uri:?}"));
    }
    // The URI goes into a SyncML document as `LocURI` text: XML 1.0 §2.2 `Char` only.
    if let Err(e) = crate::xml::check_chars(uri) {
        return Err(format!("uri cannot be sent in XML: {e}"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("uri must not contain spaces or control characters: {uri:?}"));
    }
    if uri.split('/').skip(1).any(|seg| seg.is_empty() || seg == "..") {
        return Err(format!("uri has an empty or '..' segment: {uri:?}"));
    }
    Ok(())
}

fn check_data(format: &str, data: &str) -> Result<(), String> {
    if !FORMATS.contains(&format) {
        return Err(format!("format must be one of {}: {format:?}", FORMATS.join(", ")));
    }
    if data.len() > 64 * 1024 {
        return Err("data is over 64 KiB".into());
    }
    // The data goes into a SyncML document as `Data` text: XML 1.0 §2.2 `Char` only, whatever
    // the format (escaping cannot help: even `&#1;` is not well-formed, XML 1.0 §4.1).
    if let Err(e) = crate::xml::check_chars(data) {
        return Err(format!("data cannot be sent in XML: {e}"));
    }
    let ok = match format {
        "int" => data.trim().parse::<i64>().is_ok(),
        "bool" => matches!(data, "true" | "false"),
        "b64" => decode_base64(data).is_some(),
        "xml" => crate::xml::parse(data).is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("data is not a valid {format}: {data:?}"))
    }
}

impl CommandRequest {
    /// Reads and validates an API request body; the message says what is wrong.
    pub fn from_json(body: &[u8]) -> Result<CommandRequest, String> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        let req: CommandRequest = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        if matches!(req, CommandRequest::Unenroll { .. }) {
            return Err(
                "unenroll is not a command type; retire the device with DELETE /api/v1/devices/{id}".into()
            );
        }
        // Serde lets extra fields through on field-less variants; they are a mistake too.
        if let (Some(obj), true) = (
            value.as_object(),
            matches!(
                req,
                CommandRequest::Lock
                    | CommandRequest::Reboot
                    | CommandRequest::Wipe
                    | CommandRequest::Inventory
            ),
        ) {
            if let Some(k) = obj.keys().find(|k| *k != "type") {
                return Err(format!("unknown field `{k}` for type {}", req.kind()));
            }
        }
        req.validate()?;
        Ok(req)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CommandRequest::Get { .. } => "get",
            CommandRequest::Replace { .. } => "replace",
            CommandRequest::Add { .. } => "add",
            CommandRequest::Delete { .. } => "delete",
            CommandRequest::Exec { .. } => "exec",
            CommandRequest::Lock => "lock",
            CommandRequest::Reboot => "reboot",
            CommandRequest::Wipe => "wipe",
            CommandRequest::Inventory => "inventory",
            CommandRequest::Unenroll { .. } => "unenroll",
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match self {
            CommandRequest::Get { uri } | CommandRequest::Delete { uri } => check_uri(uri),
            CommandRequest::Replace { uri, format, data } => {
                check_uri(uri)?;
                check_data(format, data)
            }
            CommandRequest::Add { uri, format, data } => {
                check_uri(uri)?;
                match (format, data) {
                    (Some(f), Some(d)) => check_data(f, d),
                    (None, None) => Ok(()),
                    (Some(f), None) if FORMATS.contains(&f.as_str()) || f == "node" => Ok(()),
                    _ => Err("add needs format with data".into()),
                }
            }
            CommandRequest::Exec { uri, data } => {
                check_uri(uri)?;
                match data {
                    Some(d) if d.len() > 64 * 1024 => Err("data is over 64 KiB".into()),
                    // Exec data is `Data` text in the SyncML document, like Replace data.
                    Some(d) => {
                        crate::xml::check_chars(d).map_err(|e| format!("data cannot be sent in XML: {e}"))
                    }
                    None => Ok(()),
                }
            }
            CommandRequest::Lock
            | CommandRequest::Reboot
            | CommandRequest::Wipe
            | CommandRequest::Inventory
            | CommandRequest::Unenroll { .. } => Ok(()),
        }
    }

    /// The SyncML command (CmdIDs are assigned by the session engine).
    pub fn to_command(&self) -> Command {
        let exec = |uri: &str, data: Option<&str>| {
            let mut item = Item::target(uri);
            if let Some(d) = data {
                item.meta = Some(Meta { format: Some("chr".into()), ..Default::default() });
                item.data = Some(d.to_string());
            }
            Command::Exec(Exec::new(vec![item]))
        };
        match self {
            CommandRequest::Get { uri } => Command::Get(Get::new(vec![Item::target(uri)])),
            CommandRequest::Replace { uri, format, data } => {
                Command::Replace(Replace::new(vec![Item::target_data(uri, format, data)]))
            }
            CommandRequest::Add { uri, format, data } => {
                let item = match (format, data) {
                    (Some(f), Some(d)) => Item::target_data(uri, f, d),
                    (Some(f), None) => {
                        let mut i = Item::target(uri);
                        i.meta = Some(Meta { format: Some(f.clone()), ..Default::default() });
                        i
                    }
                    _ => Item::target(uri),
                };
                Command::Add(Add::new(vec![item]))
            }
            CommandRequest::Delete { uri } => Command::Delete(Delete::new(vec![Item::target(uri)])),
            CommandRequest::Exec { uri, data } => exec(uri, data.as_deref()),
            CommandRequest::Lock => exec(LOCK_URI, None),
            CommandRequest::Reboot => exec(REBOOT_URI, None),
            CommandRequest::Wipe => exec(WIPE_URI, None),
            CommandRequest::Inventory => {
                Command::Get(Get::new(INVENTORY_URIS.iter().map(|u| Item::target(*u)).collect()))
            }
            CommandRequest::Unenroll { provider_id } => {
                exec(&format!("./Vendor/MSFT/DMClient/Provider/{provider_id}/Unenroll"), Some(provider_id))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandState {
    Queued,
    Sent,
    Acknowledged,
    Failed,
}

/// One result item of a command, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultValue {
    pub uri: String,
    pub format: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub data: Option<String>,
}

/// A command and everything that happened to it (storage key `cmd:<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub request: CommandRequest,
    pub status: CommandState,
    /// The device's status code for the command.
    pub status_code: Option<String>,
    pub results: Vec<ResultValue>,
    pub attempts: u32,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub completed_at: Option<String>,
    pub error: Option<String>,
}

impl CommandRecord {
    pub fn new(id: String, request: CommandRequest, now_ms: u64) -> Self {
        CommandRecord {
            id,
            kind: request.kind().to_string(),
            request,
            status: CommandState::Queued,
            status_code: None,
            results: Vec::new(),
            attempts: 0,
            created_at: format_timestamp(now_ms),
            sent_at: None,
            completed_at: None,
            error: None,
        }
    }

    fn finish(&mut self, state: CommandState, now: &str) {
        self.status = state;
        self.completed_at = Some(now.to_string());
    }

    /// Ends a command that will never be sent: it stays in the history, failed, with why.
    pub fn cancel(&mut self, reason: &str, now: &str) {
        if !self.is_done() {
            self.error = Some(reason.to_string());
            self.finish(CommandState::Failed, now);
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.status, CommandState::Acknowledged | CommandState::Failed)
    }
}

/// Command ids sort in queue order: a zero-padded sequence number.
pub fn command_id(seq: u64) -> String {
    format!("{seq:010}")
}

/// What a device's object keeps besides the enrollment record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Management {
    /// `./DevInfo/*`, `./DevDetail/*` values by URI.
    pub inventory: BTreeMap<String, String>,
    pub last_checkin: Option<String>,
    pub retire_requested: bool,
    /// The latest generic alerts (1224/1226), newest last.
    pub alerts: Vec<AlertRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub alert: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub data: Option<String>,
    pub received_at: String,
}

/// Before a message is handled: commands that were sent in an earlier session and never
/// acknowledged are re-sent, unless they used up their attempts, in which case they fail.
/// Returns the ids that failed now.
pub fn expire_unacknowledged(
    state: &SessionState,
    commands: &mut BTreeMap<String, CommandRecord>,
    max_attempts: u32,
    now: &str,
) -> Vec<String> {
    let awaiting: Vec<&str> = match &state.session {
        Some(s) if !s.ended => s.sent.iter().filter(|c| c.status.is_none()).map(|c| c.id.as_str()).collect(),
        _ => Vec::new(),
    };
    let mut failed = Vec::new();
    for rec in commands.values_mut() {
        if rec.status == CommandState::Sent
            && rec.attempts >= max_attempts
            && !awaiting.contains(&rec.id.as_str())
        {
            rec.error = Some(format!("no status from the device after {} attempts", rec.attempts));
            rec.finish(CommandState::Failed, now);
            failed.push(rec.id.clone());
        }
    }
    failed
}

/// The engine's queue: pending commands in order.
pub fn queue(pending: &[String], commands: &BTreeMap<String, CommandRecord>) -> Vec<QueuedCommand> {
    pending
        .iter()
        .filter_map(|id| commands.get(id))
        .filter(|r| !r.is_done())
        .map(|r| QueuedCommand { id: r.id.clone(), command: r.request.to_command() })
        .collect()
}

/// What applying a session's events changed, for the caller to persist and propagate.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The device's status changed (the KV listing must follow).
    pub status_changed: bool,
    /// The device is now retired: its certificates should be revoked.
    pub retired: bool,
}

fn result_value(r: &ResultItem) -> ResultValue {
    ResultValue {
        uri: r.loc_uri.clone(),
        format: r.format.clone(),
        type_: r.type_.clone(),
        data: r.data.clone(),
    }
}

/// Moves the record to `new` (a lifecycle transition), noting what changed.
fn transition(record: &mut DeviceRecord, new: DeviceStatus, applied: &mut Applied) {
    if record.status != new {
        record.status = new;
        applied.status_changed = true;
        applied.retired = new == DeviceStatus::Retired;
    }
}

/// Bounds on what a device can make the server store: a value, an alert's data and a
/// command's results are cut to these sizes (marked with [`TRUNCATED`]); inventory keeps at
/// most [`MAX_INVENTORY`] URIs.
pub const MAX_VALUE_BYTES: usize = 4 * 1024;
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
pub const MAX_RESULT_ITEMS: usize = 256;
pub const MAX_INVENTORY: usize = 64;
/// Appended to a value that was cut.
pub const TRUNCATED: &str = "…[truncated]";

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn capped(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &s[..end])
}

fn put_inventory(mgmt: &mut Management, uri: &str, value: &str) {
    if mgmt.inventory.len() >= MAX_INVENTORY && !mgmt.inventory.contains_key(uri) {
        return;
    }
    mgmt.inventory.insert(capped(uri, 1024), capped(value, MAX_VALUE_BYTES));
}

/// Applies the engine's events to the device and its commands.
pub fn apply_events(
    events: &[Event],
    record: &mut DeviceRecord,
    mgmt: &mut Management,
    commands: &mut BTreeMap<String, CommandRecord>,
    now: &str,
) -> Applied {
    let mut applied = Applied::default();
    for ev in events {
        match ev {
            Event::Authenticated => mgmt.last_checkin = Some(now.to_string()),
            Event::Inventory { uri, value } => put_inventory(mgmt, uri, value),
            Event::GenericAlert { alert, items } => {
                for i in items {
                    mgmt.alerts.push(AlertRecord {
                        alert: alert.clone(),
                        type_: i.type_.clone(),
                        data: i.data.as_deref().map(|d| capped(d, MAX_VALUE_BYTES)),
                        received_at: now.to_string(),
                    });
                }
                let excess = mgmt.alerts.len().saturating_sub(MAX_ALERTS);
                mgmt.alerts.drain(..excess);
            }
            Event::Unenrolled => transition(record, lifecycle::device_left(record.status), &mut applied),
            Event::CommandSent { id, .. } => {
                if let Some(r) = commands.get_mut(id) {
                    r.status = CommandState::Sent;
                    r.attempts += 1;
                    r.sent_at = Some(now.to_string());
                }
            }
            Event::CommandTooLarge { id, size } => {
                if let Some(r) = commands.get_mut(id) {
                    r.error =
                        Some(format!("the command ({size} bytes) does not fit the device's MaxMsgSize"));
                    r.finish(CommandState::Failed, now);
                }
            }
            Event::CommandInvalid { id } => {
                if let Some(r) = commands.get_mut(id) {
                    r.error = Some("not a command a server can send".into());
                    r.finish(CommandState::Failed, now);
                }
            }
            Event::CommandStatus { id: Some(id), code, nested: false, .. } => {
                if let Some(r) = commands.get_mut(id) {
                    r.status_code = Some(code.clone());
                    let ok = codes::is_success(code);
                    r.finish(if ok { CommandState::Acknowledged } else { CommandState::Failed }, now);
                    // Whatever the device answered, the retirement is complete.
                    if matches!(r.request, CommandRequest::Unenroll { .. }) {
                        transition(record, lifecycle::unenroll_ended(record.status), &mut applied);
                    }
                }
            }
            Event::CommandResults { id: Some(id), items, .. } => {
                if let Some(r) = commands.get_mut(id) {
                    for item in items {
                        let used: usize =
                            r.results.iter().map(|v| v.data.as_ref().map_or(0, String::len)).sum();
                        if r.results.len() >= MAX_RESULT_ITEMS || used >= MAX_RESULT_BYTES {
                            r.error = Some("results over the size limit were dropped".into());
                            break;
                        }
                        let mut v = result_value(item);
                        v.data = v.data.map(|d| capped(&d, MAX_RESULT_BYTES - used));
                        r.results.push(v);
                    }
                    if matches!(r.request, CommandRequest::Inventory) {
                        for i in items {
                            if let Some(d) = &i.data {
                                put_inventory(mgmt, &i.loc_uri, d);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    applied
}

/// The reply to a device that may not have a session (unknown 401, retired or unenrolled
/// 403): a status for its header, nothing else.
pub fn refusal(message: &SyncMl, code: u16, server_url: &str) -> String {
    let status = Status {
        cmd_id: "1".into(),
        msg_ref: message.hdr.msg_id.clone(),
        cmd_ref: "0".into(),
        cmd: "SyncHdr".into(),
        target_refs: vec![message.hdr.target.loc_uri.clone()],
        source_refs: vec![message.hdr.source.loc_uri.clone()],
        data: code.to_string(),
        ..Default::default()
    };
    SyncMl {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: message.hdr.session_id.clone(),
            msg_id: "1".into(),
            target: Target::new(message.hdr.source.loc_uri.clone()),
            source: Source::new(server_url),
            ..Default::default()
        },
        body: SyncBody { commands: vec![Command::Status(status)], is_final: true },
    }
    .to_document()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<CommandRequest, String> {
        CommandRequest::from_json(json.as_bytes())
    }

    #[test]
    fn requests_validate() {
        assert!(req(r#"{"type":"get","uri":"./DevDetail/SwV"}"#).is_ok());
        assert!(req(r#"{"type":"replace","uri":"./Vendor/MSFT/Policy/Config/Camera/AllowCamera","format":"int","data":"0"}"#).is_ok());
        assert!(req(r#"{"type":"lock"}"#).is_ok());
        assert!(req(r#"{"type":"add","uri":"./Vendor/MSFT/X","format":"b64","data":"AAEC"}"#).is_ok());
        for bad in [
            r#"{"type":"get"}"#,
            r#"{"type":"get","uri":"DevDetail/SwV"}"#,
            r#"{"type":"get","uri":"./Dev Detail"}"#,
            r#"{"type":"get","uri":"./a//b"}"#,
            r#"{"type":"replace","uri":"./a","format":"int","data":"abc"}"#,
            r#"{"type":"replace","uri":"./a","format":"bool","data":"maybe"}"#,
            r#"{"type":"replace","uri":"./a","format":"float","data":"1"}"#,
            r#"{"type":"replace","uri":"./a","format":"b64","data":"%%"}"#,
            r#"{"type":"replace","uri":"./a","format":"xml","data":"<a>"}"#,
            r#"{"type":"format-c"}"#,
            r#"{"type":"unenroll","provider_id":"x"}"#,
            r#"{"type":"lock","extra":1}"#,
        ] {
            assert!(req(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn characters_xml_cannot_carry_are_refused() {
        // JSON escapes for U+0001, U+FFFE and U+001B: valid JSON strings, not XML 1.0 `Char`.
        for bad in [
            r#"{"type":"get","uri":"./DevDetail/\u0001"}"#,
            r#"{"type":"delete","uri":"./Vendor/\uFFFE"}"#,
            r#"{"type":"replace","uri":"./a","format":"chr","data":"x\u0001y"}"#,
            r#"{"type":"replace","uri":"./a","format":"chr","data":"\uFFFF"}"#,
            r#"{"type":"add","uri":"./a","format":"b64","data":"\u001b"}"#,
            r#"{"type":"add","uri":"./a","format":"chr","data":"\u0000"}"#,
        ] {
            let e = req(bad).unwrap_err();
            assert!(e.contains("cannot be sent in XML") && e.contains("U+"), "{bad}: {e}");
        }
        // Tabs, newlines and anything from U+0020 up are fine in data.
        assert!(req(
            r#"{"type":"replace","uri":"./a","format":"chr","data":"a\tb\r\nc \u00e9 \ud83d\ude00"}"#
        )
        .is_ok());
        assert!(check_uri("./a/\u{10000}").is_ok());
        assert!(check_data("chr", "\u{FFFD}").is_ok());
    }

    #[test]
    fn stored_records_read_back() {
        for r in [CommandRequest::Unenroll { provider_id: "edgemdm".into() }, CommandRequest::Lock] {
            let rec = CommandRecord::new(command_id(1), r, 0);
            let back: CommandRecord = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
            assert_eq!(back, rec);
        }
    }

    #[test]
    fn named_actions_become_their_commands() {
        let Command::Exec(e) = CommandRequest::Lock.to_command() else { panic!() };
        assert_eq!(e.items[0].target.as_ref().unwrap().loc_uri, LOCK_URI);
        let Command::Get(g) = CommandRequest::Inventory.to_command() else { panic!() };
        assert_eq!(g.items.len(), INVENTORY_URIS.len());
        let Command::Exec(e) = (CommandRequest::Unenroll { provider_id: "edgemdm".into() }).to_command()
        else {
            panic!()
        };
        assert_eq!(
            e.items[0].target.as_ref().unwrap().loc_uri,
            "./Vendor/MSFT/DMClient/Provider/edgemdm/Unenroll"
        );
        let Command::Replace(r) =
            req(r#"{"type":"replace","uri":"./a","format":"int","data":"5"}"#).unwrap().to_command()
        else {
            panic!()
        };
        assert_eq!(r.items[0].meta_format(), Some("int"));
        assert_eq!(r.items[0].data.as_deref(), Some("5"));
    }

    fn record() -> DeviceRecord {
        crate::device::test_record("D", DeviceStatus::Enrolled, None)
    }

    fn commands(reqs: &[CommandRequest]) -> BTreeMap<String, CommandRecord> {
        reqs.iter()
            .enumerate()
            .map(|(i, r)| {
                (command_id(i as u64 + 1), CommandRecord::new(command_id(i as u64 + 1), r.clone(), 0))
            })
            .collect()
    }

    fn status(id: &str, code: &str) -> Event {
        Event::CommandStatus {
            id: Some(id.into()),
            msg_ref: "1".into(),
            cmd_ref: "2".into(),
            cmd: "Get".into(),
            code: code.into(),
            nested: false,
            original_error: None,
            items: vec![],
        }
    }

    #[test]
    fn events_move_commands_and_the_device() {
        let mut rec = record();
        let mut mgmt = Management::default();
        let mut cmds = commands(&[CommandRequest::Inventory, CommandRequest::Lock, CommandRequest::Wipe]);
        let (a, b, c) = (command_id(1), command_id(2), command_id(3));
        let sent = |id: &str| Event::CommandSent { id: id.into(), msg_id: "1".into(), cmd_id: "3".into() };
        let results = Event::CommandResults {
            id: Some(a.clone()),
            msg_ref: "1".into(),
            cmd_ref: "3".into(),
            items: vec![ResultItem {
                loc_uri: "./DevDetail/SwV".into(),
                format: Some("chr".into()),
                type_: None,
                data: Some("10.0.22631".into()),
                more_data: false,
            }],
        };
        let events = vec![
            Event::Authenticated,
            Event::Inventory { uri: "./DevInfo/Man".into(), value: "Contoso".into() },
            sent(&a),
            sent(&b),
            sent(&c),
            results,
            status(&a, "200"),
            status(&b, "405"),
        ];
        let applied = apply_events(&events, &mut rec, &mut mgmt, &mut cmds, "now");
        assert_eq!(applied, Applied::default());
        assert_eq!(mgmt.inventory["./DevInfo/Man"], "Contoso");
        assert_eq!(mgmt.inventory["./DevDetail/SwV"], "10.0.22631");
        assert_eq!(mgmt.last_checkin.as_deref(), Some("now"));
        assert_eq!(cmds[&a].status, CommandState::Acknowledged);
        assert_eq!(cmds[&a].results.len(), 1);
        assert_eq!(cmds[&b].status, CommandState::Failed);
        assert_eq!(cmds[&b].status_code.as_deref(), Some("405"));
        assert_eq!((cmds[&c].status, cmds[&c].attempts), (CommandState::Sent, 1));
        let pending: Vec<String> = cmds.keys().cloned().collect();
        let q = queue(&pending, &cmds);
        assert_eq!(q.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(), [c.as_str()]);
    }

    #[test]
    fn unacknowledged_commands_fail_after_their_attempts() {
        let mut cmds = commands(&[CommandRequest::Lock]);
        let id = command_id(1);
        let r = cmds.get_mut(&id).unwrap();
        r.status = CommandState::Sent;
        r.attempts = 2;
        let none = SessionState::new(vec![]);
        assert!(expire_unacknowledged(&none, &mut cmds, 3, "t").is_empty());
        assert_eq!(expire_unacknowledged(&none, &mut cmds, 2, "t"), vec![id.clone()]);
        assert_eq!(cmds[&id].status, CommandState::Failed);
    }

    #[test]
    fn unenrollment_and_retirement() {
        let mut rec = record();
        let mut mgmt = Management::default();
        let mut cmds = BTreeMap::new();
        let a = apply_events(&[Event::Unenrolled], &mut rec, &mut mgmt, &mut cmds, "t");
        assert_eq!((rec.status, a.status_changed, a.retired), (DeviceStatus::Unenrolled, true, false));

        // A retiring device's Unenroll ends the retirement whatever the device answers.
        for code in ["200", "500"] {
            let mut rec = DeviceRecord { status: DeviceStatus::Retiring, ..record() };
            let mut mgmt = Management { retire_requested: true, ..Default::default() };
            let mut cmds = commands(&[CommandRequest::Unenroll { provider_id: "edgemdm".into() }]);
            let a = apply_events(&[status(&command_id(1), code)], &mut rec, &mut mgmt, &mut cmds, "t");
            assert_eq!(
                (rec.status, a.status_changed, a.retired),
                (DeviceStatus::Retired, true, true),
                "{code}"
            );
        }
        // The device leaving while retiring is retired too.
        let mut rec = DeviceRecord { status: DeviceStatus::Retiring, ..record() };
        let a = apply_events(
            &[Event::Unenrolled],
            &mut rec,
            &mut Management::default(),
            &mut BTreeMap::new(),
            "t",
        );
        assert_eq!((rec.status, a.retired), (DeviceStatus::Retired, true));
    }

    #[test]
    fn what_a_device_sends_is_bounded() {
        let mut rec = record();
        let mut mgmt = Management::default();
        let big = "x".repeat(MAX_VALUE_BYTES * 3);
        let mut events: Vec<Event> = (0..MAX_INVENTORY + 10)
            .map(|i| Event::Inventory { uri: format!("./DevDetail/N{i}"), value: big.clone() })
            .collect();
        events.push(Event::GenericAlert {
            alert: "1224".into(),
            items: vec![crate::proto::syncml::session::AlertItem {
                source: None,
                target: None,
                type_: None,
                format: None,
                mark: None,
                data: Some(big.clone()),
            }],
        });
        apply_events(&events, &mut rec, &mut mgmt, &mut BTreeMap::new(), "t");
        assert_eq!(mgmt.inventory.len(), MAX_INVENTORY);
        assert!(mgmt.inventory.values().all(|v| v.len() <= MAX_VALUE_BYTES && v.ends_with(TRUNCATED)));
        assert!(mgmt.alerts[0].data.as_ref().unwrap().len() <= MAX_VALUE_BYTES);
        assert_eq!(
            capped("héllo wörld, and a longer text", 2 + TRUNCATED.len()),
            format!("h{TRUNCATED}"),
            "cut on a character boundary"
        );
        assert_eq!(capped("héllo", 6), "héllo");

        let mut cmds = commands(&[CommandRequest::Get { uri: "./a".into() }]);
        let item = ResultItem {
            loc_uri: "./a".into(),
            format: None,
            type_: None,
            data: Some(big),
            more_data: false,
        };
        let results = Event::CommandResults {
            id: Some(command_id(1)),
            msg_ref: "1".into(),
            cmd_ref: "2".into(),
            items: vec![item; 100],
        };
        apply_events(&[results], &mut rec, &mut mgmt, &mut cmds, "t");
        let r = &cmds[&command_id(1)];
        let total: usize = r.results.iter().map(|v| v.data.as_ref().unwrap().len()).sum();
        assert!(total <= MAX_RESULT_BYTES, "{total}");
        assert!(r.error.is_some(), "the cut is recorded");
    }

    #[test]
    fn refusal_answers_the_header_only() {
        let msg = SyncMl::parse(
            r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1A</SessionID><MsgID>1</MsgID><Target><LocURI>https://s/m</LocURI></Target><Source><LocURI>DEV</LocURI></Source></SyncHdr><SyncBody><Final/></SyncBody></SyncML>"#,
        )
        .unwrap();
        let reply = SyncMl::parse(&refusal(&msg, 403, "https://s/m")).unwrap();
        assert_eq!(reply.hdr.session_id, "1A");
        assert_eq!(reply.hdr.target.loc_uri, "DEV");
        assert_eq!(reply.body.commands.len(), 1);
        let Command::Status(s) = &reply.body.commands[0] else { panic!() };
        assert_eq!((s.cmd.as_str(), s.data.as_str()), ("SyncHdr", "403"));
        assert!(reply.body.is_final);
    }
}
