//! What an admin sends to create or change a profile, validated. Everything refused here is
//! a 400 with a message, before anything is stored.
//!
//! Settings come either as JSON (`settings: [{"uri", "format", "data"}]`) or as `syncml`: one
//! or more `<Replace>`/`<Add>` elements (optionally inside one `<Atomic>`, or a whole
//! `<SyncBody>`) as Microsoft Learn prints them for custom OMA-URI settings ("Policy CSP",
//! "Understanding ADMX-backed policies"). The markup is parsed into settings and validated
//! like JSON ones; it is never passed through as text.

use super::{valid_group_name, Format, Setting, Targets};
use crate::codec::decode_base64;
use crate::device::valid_device_id;
use crate::proto::syncml::message::{Command, Item, SyncBody, SyncMl};
use serde::{Deserialize, Serialize};

/// Largest `POST`/`PUT /api/v1/profiles` body.
pub const MAX_PROFILE_JSON_BYTES: usize = 512 * 1024;
/// Most settings in one profile.
pub const MAX_SETTINGS: usize = 200;
/// Largest setting value.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Most DeviceIDs a profile targets by name (larger sets: use a group).
pub const MAX_TARGET_DEVICES: usize = 500;
/// Most groups a profile targets.
pub const MAX_TARGET_GROUPS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A validated profile body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRequest {
    pub name: String,
    pub description: Option<String>,
    pub settings: Vec<Setting>,
    pub targets: Targets,
    pub atomic: bool,
}

#[derive(Deserialize)]
struct Body {
    name: Option<String>,
    description: Option<String>,
    settings: Option<Vec<serde_json::Value>>,
    syncml: Option<String>,
    targets: Option<serde_json::Value>,
    atomic: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingBody {
    uri: String,
    format: String,
    data: String,
    #[serde(default)]
    read_back: Option<bool>,
}

/// Characters XML 1.0 can carry (XML 1.0 §2.2, `Char`): a value outside these cannot be put in
/// a SyncML message at all, escaped or not.
pub fn xml_chars_ok(s: &str) -> bool {
    s.chars().all(
        |c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..),
    )
}

/// A node URI a profile may set: relative to the device root (`./`), 3 to 1024 characters, no
/// spaces, empty or `..` segments (OMA-DM 1.2 TND §7 "URIs").
pub fn check_uri(uri: &str) -> Result<(), String> {
    if !uri.starts_with("./") || uri.len() < 3 || uri.len() > 1024 {
        return Err(format!("uri must start with ./ and be 3 to 1024 characters: {uri:?}"));
    }
    if !xml_chars_ok(uri) || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("uri must not contain spaces or control characters: {uri:?}"));
    }
    if uri.split('/').skip(1).any(|seg| seg.is_empty() || seg == "..") {
        return Err(format!("uri has an empty or '..' segment: {uri:?}"));
    }
    Ok(())
}

/// The value matches its format.
pub fn check_data(uri: &str, format: Format, data: &str) -> Result<(), String> {
    if data.len() > MAX_DATA_BYTES {
        return Err(format!("data of {uri} is over 64 KiB"));
    }
    if !xml_chars_ok(data) {
        return Err(format!("data of {uri} has characters XML 1.0 cannot carry"));
    }
    let ok = match format {
        Format::Int => data.parse::<i64>().is_ok(),
        Format::Bool => matches!(data, "true" | "false"),
        Format::B64 => decode_base64(data.trim()).is_some(),
        Format::Xml => crate::xml::parse(&format!("<r>{data}</r>")).is_ok(),
        Format::Chr => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("data of {uri} is not a valid {}: {data:?}", format.as_str()))
    }
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if !xml_chars_ok(s) || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("{what} has control characters"));
    }
    Ok(())
}

impl ProfileRequest {
    /// Reads and validates an API body; the message says what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<ProfileRequest, String> {
        let body: Body = crate::codec::from_json(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        let name = body.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        let name = name.ok_or("name is required")?;
        check_text("name", &name, MAX_NAME_CHARS)?;
        let description = body.description.filter(|d| !d.trim().is_empty());
        if let Some(d) = &description {
            check_text("description", d, MAX_DESCRIPTION_CHARS)?;
        }
        let (settings, atomic_markup) = match (body.settings, body.syncml) {
            (Some(list), None) => (json_settings(list)?, false),
            (None, Some(markup)) => syncml_settings(&markup)?,
            (Some(_), Some(_)) => return Err("give either settings or syncml, not both".into()),
            (None, None) => return Err("settings (or syncml) is required".into()),
        };
        check_settings(&settings)?;
        let targets = body.targets.ok_or("targets is required")?;
        let targets: Targets = serde_json::from_value(targets).map_err(|e| format!("targets: {e}"))?;
        check_targets(&targets)?;
        Ok(ProfileRequest {
            name,
            description,
            settings,
            targets,
            atomic: body.atomic.unwrap_or(atomic_markup),
        })
    }
}

fn json_settings(list: Vec<serde_json::Value>) -> Result<Vec<Setting>, String> {
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let s: SettingBody = serde_json::from_value(v).map_err(|e| format!("settings[{i}]: {e}"))?;
            let format = Format::parse(&s.format).ok_or_else(|| {
                format!("settings[{i}]: format must be one of int, chr, bool, b64, xml: {:?}", s.format)
            })?;
            Ok(Setting { uri: s.uri, format, data: s.data, read_back: s.read_back.unwrap_or(true) })
        })
        .collect()
}

fn check_settings(settings: &[Setting]) -> Result<(), String> {
    if settings.is_empty() {
        return Err("a profile needs at least one setting".into());
    }
    if settings.len() > MAX_SETTINGS {
        return Err(format!("a profile has at most {MAX_SETTINGS} settings"));
    }
    for (i, s) in settings.iter().enumerate() {
        check_uri(&s.uri)?;
        check_data(&s.uri, s.format, &s.data)?;
        if settings[..i].iter().any(|o| o.uri == s.uri) {
            return Err(format!("{} is set twice", s.uri));
        }
    }
    Ok(())
}

fn check_targets(t: &Targets) -> Result<(), String> {
    match t {
        Targets::All => Ok(()),
        Targets::Groups(g) => {
            if g.is_empty() || g.len() > MAX_TARGET_GROUPS {
                return Err(format!("targets.groups needs 1 to {MAX_TARGET_GROUPS} group names"));
            }
            match g.iter().find(|n| !valid_group_name(n)) {
                Some(n) => Err(format!("not a group name: {n:?}")),
                None => Ok(()),
            }
        }
        Targets::Devices(d) => {
            if d.is_empty() || d.len() > MAX_TARGET_DEVICES {
                return Err(format!(
                    "targets.devices needs 1 to {MAX_TARGET_DEVICES} DeviceIDs (use a group for more)"
                ));
            }
            match d.iter().find(|n| !valid_device_id(n)) {
                Some(n) => Err(format!("not a DeviceID: {n:?}")),
                None => Ok(()),
            }
        }
    }
}

/// Settings from custom OMA-URI markup: `<Replace>`/`<Add>` elements, each item a Target
/// LocURI, a Meta Format (item or command level; `chr` when absent, the OMA-DM default) and
/// Data. An `<Atomic>` around them asks for atomic delivery.
fn syncml_settings(markup: &str) -> Result<(Vec<Setting>, bool), String> {
    let text = markup.trim();
    let text = match text.strip_prefix("<?xml") {
        Some(rest) => {
            rest.split_once("?>").map(|(_, r)| r).ok_or("malformed syncml: unclosed declaration")?
        }
        None => text,
    };
    let root = crate::xml::parse(&format!("<edgemdm-syncml>{text}</edgemdm-syncml>"))
        .map_err(|e| format!("malformed syncml: {e}"))?;
    let mut commands = Vec::new();
    for e in root.elements() {
        match e.name.as_str() {
            "SyncML" => {
                let body = SyncMl::from_element(e).map_err(|e| format!("malformed syncml: {e}"))?.body;
                commands.extend(body.commands);
            }
            "SyncBody" => commands.extend(SyncBody::from_element(e).commands),
            _ => commands.extend(Command::from_element(e)),
        }
    }
    if root.elements().count() == 0 || commands.is_empty() {
        return Err("syncml has no <Replace> or <Add> element".into());
    }
    let mut atomic = false;
    if let [Command::Atomic(a)] = commands.as_slice() {
        atomic = true;
        commands = a.commands.clone();
    }
    let mut settings = Vec::new();
    for c in &commands {
        let (items, meta) = match c {
            Command::Replace(r) => (&r.items, &r.meta),
            Command::Add(a) => (&a.items, &a.meta),
            other => {
                return Err(format!(
                    "syncml may hold only <Replace> and <Add> (optionally in one <Atomic>), not <{}>",
                    other.name()
                ))
            }
        };
        if items.is_empty() {
            return Err(format!("syncml <{}> has no <Item>", c.name()));
        }
        for item in items {
            settings.push(item_setting(item, meta.as_ref().and_then(|m| m.format.as_deref()))?);
        }
    }
    Ok((settings, atomic))
}

fn item_setting(item: &Item, command_format: Option<&str>) -> Result<Setting, String> {
    let uri = item.target.as_ref().map(|t| t.loc_uri.clone()).filter(|u| !u.is_empty());
    let uri = uri.ok_or("a syncml <Item> has no <Target><LocURI>")?;
    let format_text = item.meta_format().or(command_format).unwrap_or("chr");
    let format = Format::parse(format_text)
        .ok_or_else(|| format!("{uri}: format must be one of int, chr, bool, b64, xml: {format_text:?}"))?;
    let data = item.data.clone().ok_or_else(|| format!("{uri}: a syncml <Item> needs <Data>"))?;
    Ok(Setting { uri, format, data, read_back: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<ProfileRequest, String> {
        ProfileRequest::from_json(json.as_bytes())
    }

    const CAMERA: &str = "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera";

    #[test]
    fn json_settings_validate() {
        let r = req(&format!(
            r#"{{"name":" Camera off ","settings":[{{"uri":"{CAMERA}","format":"int","data":"0"}}],"targets":{{"all":true}}}}"#
        ))
        .unwrap();
        assert_eq!(r.name, "Camera off");
        assert_eq!(
            r.settings[0],
            Setting { uri: CAMERA.into(), format: Format::Int, data: "0".into(), read_back: true }
        );
        assert_eq!(r.targets, Targets::All);
        assert!(!r.atomic);
        let g = req(r#"{"name":"n","settings":[{"uri":"./a/b","format":"chr","data":"<x> & \"y\""}],"targets":{"groups":["finance"]},"atomic":true}"#).unwrap();
        assert_eq!(g.targets, Targets::Groups(vec!["finance".into()]));
        assert!(g.atomic);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let s = |uri: &str, format: &str, data: &str| {
            format!(
                r#"{{"name":"n","settings":[{{"uri":{},"format":{},"data":{}}}],"targets":{{"all":true}}}}"#,
                serde_json::to_string(uri).unwrap(),
                serde_json::to_string(format).unwrap(),
                serde_json::to_string(data).unwrap()
            )
        };
        for (bad, why) in [
            (s("Device/Vendor/MSFT/X", "int", "1"), "uri"),
            (s("./a b", "int", "1"), "uri"),
            (s("./a//b", "int", "1"), "segment"),
            (s("./a\u{1}b", "chr", "1"), "uri"),
            (s("./a", "float", "1"), "format"),
            (s("./a", "int", "one"), "not a valid int"),
            (s("./a", "int", " 1"), "not a valid int"),
            (s("./a", "bool", "yes"), "not a valid bool"),
            (s("./a", "b64", "%%"), "not a valid b64"),
            (s("./a", "xml", "<a>"), "not a valid xml"),
            (s("./a", "chr", "bell\u{7}"), "XML 1.0"),
            (s("./a", "chr", "\u{FFFE}"), "XML 1.0"),
            (r#"{"settings":[{"uri":"./a","format":"int","data":"1"}],"targets":{"all":true}}"#.into(), "name"),
            (r#"{"name":"  ","settings":[{"uri":"./a","format":"int","data":"1"}],"targets":{"all":true}}"#.into(), "name"),
            (r#"{"name":"n","settings":[],"targets":{"all":true}}"#.into(), "at least one"),
            (r#"{"name":"n","targets":{"all":true}}"#.into(), "settings"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1"}]}"#.into(), "targets"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1"}],"targets":{"all":false}}"#.into(), "all"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1"}],"targets":{"all":true,"groups":["g"]}}"#.into(), "exactly one"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1"}],"targets":{"groups":["bad name"]}}"#.into(), "group"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1"}],"targets":{"devices":[]}}"#.into(), "DeviceIDs"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1"},{"uri":"./a","format":"int","data":"2"}],"targets":{"all":true}}"#.into(), "twice"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":1}],"targets":{"all":true}}"#.into(), "settings[0]"),
            (r#"{"name":"n","settings":[{"uri":"./a","format":"int","data":"1","extra":1}],"targets":{"all":true}}"#.into(), "settings[0]"),
            ("not json".into(), "invalid JSON"),
        ] {
            let e = req(&bad).expect_err(&bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn syncml_as_microsoft_prints_it() {
        // Microsoft Learn "Understanding ADMX-backed policies": an ADMX policy is a chr value
        // of <enabled/> and <data/> markup, escaped in the Data element.
        let markup = r#"<Replace>
            <CmdID>$CmdID$</CmdID>
            <Item>
              <Meta><Format xmlns="syncml:metinf">chr</Format></Meta>
              <Target><LocURI>./Device/Vendor/MSFT/Policy/Config/AppVirtualization/PublishingAllowServer2</LocURI></Target>
              <Data>&lt;enabled/&gt;&lt;data id="Publishing_Server2_Name_Prompt" value="Name"/&gt;</Data>
            </Item>
          </Replace>
          <Add><CmdID>2</CmdID><Item><Target><LocURI>./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera</LocURI></Target><Meta><Format xmlns="syncml:metinf">int</Format><Type>text/plain</Type></Meta><Data>0</Data></Item></Add>"#;
        let body = serde_json::json!({"name": "admx", "syncml": markup, "targets": {"devices": ["DEV-1"]}});
        let r = ProfileRequest::from_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.settings.len(), 2);
        assert_eq!(r.settings[0].format, Format::Chr);
        assert_eq!(
            r.settings[0].data,
            r#"<enabled/><data id="Publishing_Server2_Name_Prompt" value="Name"/>"#
        );
        assert_eq!((r.settings[1].format, r.settings[1].data.as_str()), (Format::Int, "0"));
        assert!(!r.atomic);

        let atomic = "<?xml version=\"1.0\"?><Atomic><CmdID>1</CmdID><Replace><CmdID>2</CmdID><Item><Target><LocURI>./Vendor/MSFT/X</LocURI></Target><Data>a</Data></Item></Replace></Atomic>";
        let body = serde_json::json!({"name": "a", "syncml": atomic, "targets": {"all": true}});
        let r = ProfileRequest::from_json(body.to_string().as_bytes()).unwrap();
        assert!(r.atomic, "an Atomic around the settings asks for atomic delivery");
        assert_eq!(r.settings[0].format, Format::Chr, "OMA-DM's default format");

        for (bad, why) in [
            ("<Replace><Item>", "malformed syncml"),
            ("", "no <Replace>"),
            ("just text", "no <Replace>"),
            ("<Get><CmdID>1</CmdID><Item><Target><LocURI>./a</LocURI></Target></Item></Get>", "not <Get>"),
            ("<Replace><CmdID>1</CmdID></Replace>", "no <Item>"),
            ("<Replace><CmdID>1</CmdID><Item><Data>1</Data></Item></Replace>", "LocURI"),
            ("<Replace><CmdID>1</CmdID><Item><Target><LocURI>./a</LocURI></Target></Item></Replace>", "needs <Data>"),
            ("<Replace><CmdID>1</CmdID><Item><Target><LocURI>a/b</LocURI></Target><Data>1</Data></Item></Replace>", "uri"),
            ("<Replace><CmdID>1</CmdID><Item><Target><LocURI>./a</LocURI></Target><Meta><Format>int</Format></Meta><Data>x</Data></Item></Replace>", "valid int"),
            ("<!DOCTYPE a [<!ENTITY x \"y\">]><Replace/>", "malformed"),
        ] {
            let body = serde_json::json!({"name": "n", "syncml": bad, "targets": {"all": true}});
            let e = ProfileRequest::from_json(body.to_string().as_bytes()).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        let both =
            serde_json::json!({"name": "n", "syncml": atomic, "settings": [], "targets": {"all": true}});
        assert!(ProfileRequest::from_json(both.to_string().as_bytes()).unwrap_err().contains("not both"));
    }
}
