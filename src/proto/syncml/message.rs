//! SyncML 1.2 elements as OMA-DM uses them: one Rust type per element, parsed from an
//! [`xml::Element`](crate::xml::Element) and built back with [`xml::El`](crate::xml::El).
//!
//! Parsing accepts what [MS-MDM] §2.2.4.1 and §3.1.5 prescribe and the variants found in
//! Microsoft's published samples: SyncML elements are matched by local name in the root's
//! namespace (`SYNCML:SYNCML1.2`; any `SYNCML:SYNCML1.x` in any case, or none, is tolerated),
//! `Meta` children (`Type`, `Format`, `NextNonce` …) by local name in any namespace (`syncml:metinf`
//! and its misspellings); every text value is trimmed; unknown elements are skipped (unknown
//! commands are kept as [`Unknown`]); command order is kept. Building emits exactly
//! `xmlns="SYNCML:SYNCML1.2"` on the root and `xmlns="syncml:metinf"` on each Meta child.

use serde::{Deserialize, Serialize};

use super::SyncMlError;
use crate::xml::{self, El, Element, Node};

/// The SyncML 1.2 namespace, as emitted.
pub const NS_SYNCML: &str = "SYNCML:SYNCML1.2";
/// The Meta Information namespace, as emitted.
pub const NS_METINF: &str = "syncml:metinf";
/// Declared on `SyncBody` by Windows for `msft:originalerror` on status `Data`.
pub const NS_MSFT: &str = "http://schemas.microsoft.com/MobileDevice/MDM";

/// The namespace a document (or fragment) uses for its SyncML elements.
#[derive(Debug, Clone, Copy)]
struct Ns<'a>(Option<&'a str>);

impl Ns<'_> {
    fn is(&self, e: &Element, name: &str) -> bool {
        e.name == name && e.ns.as_deref() == self.0
    }
}

fn accepted_root_ns(ns: Option<&str>) -> bool {
    match ns {
        None => true,
        Some(ns) => ns.trim().to_ascii_uppercase().starts_with("SYNCML:SYNCML1."),
    }
}

fn child<'a>(e: &'a Element, ns: Ns, name: &str) -> Option<&'a Element> {
    e.elements().find(|c| ns.is(c, name))
}

fn child_text(e: &Element, ns: Ns, name: &str) -> Option<String> {
    child(e, ns, name).map(Element::text)
}

fn req_text(e: &Element, ns: Ns, name: &str, what: &'static str) -> Result<String, SyncMlError> {
    match child_text(e, ns, name) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(SyncMlError::Missing(what)),
    }
}

fn texts(e: &Element, ns: Ns, name: &str) -> Vec<String> {
    e.elements().filter(|c| ns.is(c, name)).map(Element::text).collect()
}

fn leaf(name: &str, v: &str) -> El {
    El::leaf(name, v)
}

fn opt_leaf(out: &mut El, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        out.push(leaf(name, v));
    }
}

/// `<SyncML>`: one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMl {
    pub hdr: SyncHdr,
    pub body: SyncBody,
}

/// `<SyncHdr>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncHdr {
    pub ver_dtd: String,
    pub ver_proto: String,
    /// Opaque (decimal or hex), echoed as received.
    pub session_id: String,
    pub msg_id: String,
    pub target: Target,
    pub source: Source,
    pub resp_uri: Option<String>,
    pub no_resp: bool,
    pub cred: Option<Cred>,
    pub meta: Option<Meta>,
}

/// `<SyncBody>`: commands in document order, and whether `<Final/>` closes the package.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncBody {
    pub commands: Vec<Command>,
    pub is_final: bool,
}

/// `<Target>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Target {
    pub loc_uri: String,
    pub loc_name: Option<String>,
}

/// `<Source>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Source {
    pub loc_uri: String,
    pub loc_name: Option<String>,
}

/// `<Meta>` with the Meta Information children OMA-DM uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    pub format: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub mark: Option<String>,
    pub size: Option<String>,
    pub next_nonce: Option<String>,
    pub max_msg_size: Option<String>,
    pub max_obj_size: Option<String>,
}

/// `<Cred>`: `Meta` (Type `syncml:auth-md5`/`syncml:auth-basic`, Format `b64`) and `Data`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cred {
    pub meta: Option<Meta>,
    pub data: String,
}

/// `<Chal>`: Meta Type, Format and NextNonce.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Chal {
    pub meta: Meta,
}

/// `<Item>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Item {
    pub target: Option<Target>,
    pub source: Option<Source>,
    pub meta: Option<Meta>,
    /// Text of `Data` (entities and CDATA resolved, trimmed). Inline XML children (Format `xml`)
    /// are kept as their serialization; building always writes escaped text.
    pub data: Option<String>,
    pub more_data: bool,
}

/// `<Status>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    pub cmd_id: String,
    pub msg_ref: String,
    pub cmd_ref: String,
    pub cmd: String,
    pub target_refs: Vec<String>,
    pub source_refs: Vec<String>,
    pub cred: Option<Cred>,
    pub chal: Option<Chal>,
    /// The status code (`200`, `404` …).
    pub data: String,
    /// Windows' `msft:originalerror` attribute on `Data` (an HRESULT, `0x…`).
    pub original_error: Option<String>,
    pub items: Vec<Item>,
}

/// `<Results>`. Windows adds `<Cmd>Get</Cmd>`, absent from the DTD.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Results {
    pub cmd_id: String,
    /// Absent means `1`.
    pub msg_ref: Option<String>,
    pub cmd_ref: String,
    pub cmd: Option<String>,
    pub meta: Option<Meta>,
    pub target_refs: Vec<String>,
    pub source_refs: Vec<String>,
    pub items: Vec<Item>,
}

/// `<Alert>`: the alert code in `Data`, optional items.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Alert {
    pub cmd_id: String,
    pub no_resp: bool,
    pub cred: Option<Cred>,
    pub data: String,
    pub correlator: Option<String>,
    pub items: Vec<Item>,
}

macro_rules! item_command {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub struct $name {
            pub cmd_id: String,
            pub no_resp: bool,
            pub meta: Option<Meta>,
            pub items: Vec<Item>,
        }

        impl $name {
            /// A command on these items (CmdID assigned when sent).
            pub fn new(items: Vec<Item>) -> Self {
                $name { items, ..Default::default() }
            }

            fn parse(e: &Element, ns: Ns) -> Self {
                $name {
                    cmd_id: child_text(e, ns, "CmdID").unwrap_or_default(),
                    no_resp: child(e, ns, "NoResp").is_some(),
                    meta: child(e, ns, "Meta").map(parse_meta),
                    items: parse_items(e, ns),
                }
            }

            fn to_el(&self) -> El {
                let mut el = El::new(stringify!($name)).child(leaf("CmdID", &self.cmd_id));
                if self.no_resp {
                    el.push(El::new("NoResp"));
                }
                if let Some(m) = &self.meta {
                    el.push(m.to_el());
                }
                el.children(self.items.iter().map(Item::to_el))
            }
        }
    };
}

item_command!(
    /// `<Get>`: read the nodes in `Item/Target`.
    Get
);
item_command!(
    /// `<Replace>`: set values (device → server: `./DevInfo/*` in package 1).
    Replace
);
item_command!(
    /// `<Add>`: create nodes.
    Add
);
item_command!(
    /// `<Delete>`: remove nodes.
    Delete
);
item_command!(
    /// `<Exec>`: run a node.
    Exec
);

macro_rules! container_command {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub struct $name {
            pub cmd_id: String,
            pub no_resp: bool,
            pub meta: Option<Meta>,
            pub commands: Vec<Command>,
        }

        impl $name {
            pub fn new(commands: Vec<Command>) -> Self {
                $name { commands, ..Default::default() }
            }

            fn parse(e: &Element, ns: Ns) -> Self {
                $name {
                    cmd_id: child_text(e, ns, "CmdID").unwrap_or_default(),
                    no_resp: child(e, ns, "NoResp").is_some(),
                    meta: child(e, ns, "Meta").map(parse_meta),
                    commands: e.elements().filter_map(|c| Command::parse(c, ns)).collect(),
                }
            }

            fn to_el(&self) -> El {
                let mut el = El::new(stringify!($name)).child(leaf("CmdID", &self.cmd_id));
                if self.no_resp {
                    el.push(El::new("NoResp"));
                }
                if let Some(m) = &self.meta {
                    el.push(m.to_el());
                }
                el.children(self.commands.iter().map(Command::to_el))
            }
        }
    };
}

container_command!(
    /// `<Atomic>`: all or nothing.
    Atomic
);
container_command!(
    /// `<Sequence>`: in order.
    Sequence
);

/// A command element this crate does not model (`Copy`, `Map`, `Sync` …), kept so that it can be
/// answered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Unknown {
    pub name: String,
    pub cmd_id: String,
}

/// A `SyncBody` (or `Atomic`/`Sequence`) child.
// `Status` is the largest variant (two optional Metas); messages are small and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Status(Status),
    Results(Results),
    Alert(Alert),
    Get(Get),
    Replace(Replace),
    Add(Add),
    Delete(Delete),
    Exec(Exec),
    Atomic(Atomic),
    Sequence(Sequence),
    Unknown(Unknown),
}

/// Elements under `SyncBody` that are not commands.
const NOT_COMMANDS: &[&str] = &["Final", "CmdID", "NoResp", "Meta", "Cred"];

impl Command {
    /// The element name (`"Get"`, `"Status"` …), as used in `Status/Cmd`.
    pub fn name(&self) -> &str {
        match self {
            Command::Status(_) => "Status",
            Command::Results(_) => "Results",
            Command::Alert(_) => "Alert",
            Command::Get(_) => "Get",
            Command::Replace(_) => "Replace",
            Command::Add(_) => "Add",
            Command::Delete(_) => "Delete",
            Command::Exec(_) => "Exec",
            Command::Atomic(_) => "Atomic",
            Command::Sequence(_) => "Sequence",
            Command::Unknown(u) => &u.name,
        }
    }

    pub fn cmd_id(&self) -> &str {
        match self {
            Command::Status(c) => &c.cmd_id,
            Command::Results(c) => &c.cmd_id,
            Command::Alert(c) => &c.cmd_id,
            Command::Get(c) => &c.cmd_id,
            Command::Replace(c) => &c.cmd_id,
            Command::Add(c) => &c.cmd_id,
            Command::Delete(c) => &c.cmd_id,
            Command::Exec(c) => &c.cmd_id,
            Command::Atomic(c) => &c.cmd_id,
            Command::Sequence(c) => &c.cmd_id,
            Command::Unknown(c) => &c.cmd_id,
        }
    }

    pub fn set_cmd_id(&mut self, id: String) {
        match self {
            Command::Status(c) => c.cmd_id = id,
            Command::Results(c) => c.cmd_id = id,
            Command::Alert(c) => c.cmd_id = id,
            Command::Get(c) => c.cmd_id = id,
            Command::Replace(c) => c.cmd_id = id,
            Command::Add(c) => c.cmd_id = id,
            Command::Delete(c) => c.cmd_id = id,
            Command::Exec(c) => c.cmd_id = id,
            Command::Atomic(c) => c.cmd_id = id,
            Command::Sequence(c) => c.cmd_id = id,
            Command::Unknown(c) => c.cmd_id = id,
        }
    }

    /// Children of `Atomic`/`Sequence`; empty otherwise.
    pub fn children(&self) -> &[Command] {
        match self {
            Command::Atomic(c) => &c.commands,
            Command::Sequence(c) => &c.commands,
            _ => &[],
        }
    }

    pub fn children_mut(&mut self) -> Option<&mut Vec<Command>> {
        match self {
            Command::Atomic(c) => Some(&mut c.commands),
            Command::Sequence(c) => Some(&mut c.commands),
            _ => None,
        }
    }

    /// Parses a command element in namespace `ns`; `None` for elements that are not commands
    /// (`Final`, or anything outside the SyncML namespace).
    fn parse(e: &Element, ns: Ns) -> Option<Command> {
        if e.ns.as_deref() != ns.0 || NOT_COMMANDS.contains(&e.name.as_str()) {
            return None;
        }
        Some(match e.name.as_str() {
            "Status" => Command::Status(Status::parse(e, ns)),
            "Results" => Command::Results(Results::parse(e, ns)),
            "Alert" => Command::Alert(Alert::parse(e, ns)),
            "Get" => Command::Get(Get::parse(e, ns)),
            "Replace" => Command::Replace(Replace::parse(e, ns)),
            "Add" => Command::Add(Add::parse(e, ns)),
            "Delete" => Command::Delete(Delete::parse(e, ns)),
            "Exec" => Command::Exec(Exec::parse(e, ns)),
            "Atomic" => Command::Atomic(Atomic::parse(e, ns)),
            "Sequence" => Command::Sequence(Sequence::parse(e, ns)),
            other => Command::Unknown(Unknown {
                name: other.to_string(),
                cmd_id: child_text(e, ns, "CmdID").unwrap_or_default(),
            }),
        })
    }

    /// Parses one command element (a fragment), in the namespace it carries.
    pub fn from_element(e: &Element) -> Option<Command> {
        Command::parse(e, Ns(e.ns.as_deref()))
    }

    pub fn to_el(&self) -> El {
        match self {
            Command::Status(c) => c.to_el(),
            Command::Results(c) => c.to_el(),
            Command::Alert(c) => c.to_el(),
            Command::Get(c) => c.to_el(),
            Command::Replace(c) => c.to_el(),
            Command::Add(c) => c.to_el(),
            Command::Delete(c) => c.to_el(),
            Command::Exec(c) => c.to_el(),
            Command::Atomic(c) => c.to_el(),
            Command::Sequence(c) => c.to_el(),
            Command::Unknown(c) => El::new(c.name.clone()).child(leaf("CmdID", &c.cmd_id)),
        }
    }
}

fn parse_meta_into(m: &mut Meta, e: &Element) {
    // Any namespace: syncml:metinf, "syncml:metinf " and syncml:metinfo all occur (Microsoft Learn
    // "Microsoft Entra integration with MDM" and "Disconnecting from the management
    // infrastructure (unenrollment)" samples).
    for c in e.elements() {
        let slot = match c.name.as_str() {
            "Format" => &mut m.format,
            "Type" => &mut m.type_,
            "Mark" => &mut m.mark,
            "Size" => &mut m.size,
            "NextNonce" => &mut m.next_nonce,
            "MaxMsgSize" => &mut m.max_msg_size,
            "MaxObjSize" => &mut m.max_obj_size,
            _ => continue,
        };
        *slot = Some(c.text());
    }
}

fn parse_meta(e: &Element) -> Meta {
    let mut m = Meta::default();
    parse_meta_into(&mut m, e);
    m
}

impl Meta {
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("Meta");
        for (name, v) in [
            ("Format", &self.format),
            ("Type", &self.type_),
            ("Mark", &self.mark),
            ("Size", &self.size),
            ("NextNonce", &self.next_nonce),
            ("MaxMsgSize", &self.max_msg_size),
            ("MaxObjSize", &self.max_obj_size),
        ] {
            if let Some(v) = v {
                el.push(El::leaf(name, v.as_str()).attr("xmlns", NS_METINF));
            }
        }
        el
    }
}

impl Cred {
    fn parse(e: &Element, ns: Ns) -> Cred {
        Cred {
            meta: child(e, ns, "Meta").map(parse_meta),
            data: child_text(e, ns, "Data").unwrap_or_default(),
        }
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("Cred");
        if let Some(m) = &self.meta {
            el.push(m.to_el());
        }
        el.child(leaf("Data", &self.data))
    }
}

impl Chal {
    fn parse(e: &Element, ns: Ns) -> Chal {
        Chal { meta: child(e, ns, "Meta").map(parse_meta).unwrap_or_default() }
    }

    pub fn to_el(&self) -> El {
        El::new("Chal").child(self.meta.to_el())
    }
}

fn parse_loc(e: &Element, ns: Ns) -> (String, Option<String>) {
    (child_text(e, ns, "LocURI").unwrap_or_default(), child_text(e, ns, "LocName"))
}

fn loc_el(name: &str, uri: &str, loc_name: &Option<String>) -> El {
    let mut el = El::new(name).child(leaf("LocURI", uri));
    opt_leaf(&mut el, "LocName", loc_name);
    el
}

impl Target {
    pub fn new(loc_uri: impl Into<String>) -> Self {
        Target { loc_uri: loc_uri.into(), loc_name: None }
    }

    fn parse(e: &Element, ns: Ns) -> Self {
        let (loc_uri, loc_name) = parse_loc(e, ns);
        Target { loc_uri, loc_name }
    }

    pub fn to_el(&self) -> El {
        loc_el("Target", &self.loc_uri, &self.loc_name)
    }
}

impl Source {
    pub fn new(loc_uri: impl Into<String>) -> Self {
        Source { loc_uri: loc_uri.into(), loc_name: None }
    }

    fn parse(e: &Element, ns: Ns) -> Self {
        let (loc_uri, loc_name) = parse_loc(e, ns);
        Source { loc_uri, loc_name }
    }

    pub fn to_el(&self) -> El {
        loc_el("Source", &self.loc_uri, &self.loc_name)
    }
}

/// Serializes the content of an element with inline children (Data with Format `xml`), declaring
/// a default namespace wherever it differs from the parent's.
fn inner_xml(e: &Element) -> String {
    fn to_el(e: &Element, parent_ns: Option<&str>) -> El {
        let mut el = El::new(e.name.clone());
        if e.ns.as_deref() != parent_ns {
            el = el.attr("xmlns", e.ns.clone().unwrap_or_default());
        }
        for a in &e.attrs {
            el = el.attr(a.name.clone(), a.value.clone());
        }
        for n in &e.children {
            el = match n {
                Node::Element(c) => el.child(to_el(c, e.ns.as_deref())),
                Node::Text(t) => el.text(t.clone()),
            };
        }
        el
    }
    let mut s = String::new();
    for n in &e.children {
        match n {
            Node::Element(c) => to_el(c, e.ns.as_deref()).write_to(&mut s),
            Node::Text(t) => s.push_str(&quick_xml::escape::escape(t.as_str())),
        }
    }
    s.trim().to_string()
}

fn parse_data(e: &Element) -> String {
    if e.elements().next().is_some() {
        inner_xml(e)
    } else {
        e.text()
    }
}

impl Item {
    fn parse(e: &Element, ns: Ns) -> Item {
        let mut meta = child(e, ns, "Meta").map(parse_meta);
        // `Type`/`Format` directly in `Item` (MS-MDM §3.2.5.1.5–6 alerts): fold into Meta.
        if e.elements().any(|c| matches!(c.name.as_str(), "Type" | "Format" | "Mark")) {
            parse_meta_into(meta.get_or_insert_with(Meta::default), e);
        }
        Item {
            target: child(e, ns, "Target").map(|t| Target::parse(t, ns)),
            source: child(e, ns, "Source").map(|s| Source::parse(s, ns)),
            meta,
            data: child(e, ns, "Data").map(parse_data),
            more_data: child(e, ns, "MoreData").is_some(),
        }
    }

    /// An item addressing `loc_uri` (for Get, Delete, Exec without data).
    pub fn target(loc_uri: impl Into<String>) -> Self {
        Item { target: Some(Target::new(loc_uri)), ..Default::default() }
    }

    /// An item setting `loc_uri` to `data` with Meta Format (and optionally Type).
    pub fn target_data(loc_uri: impl Into<String>, format: &str, data: impl Into<String>) -> Self {
        Item {
            target: Some(Target::new(loc_uri)),
            meta: Some(Meta { format: Some(format.to_string()), ..Default::default() }),
            data: Some(data.into()),
            ..Default::default()
        }
    }

    /// `Meta/Type` (trimmed).
    pub fn meta_type(&self) -> Option<&str> {
        self.meta.as_ref().and_then(|m| m.type_.as_deref())
    }

    pub fn meta_format(&self) -> Option<&str> {
        self.meta.as_ref().and_then(|m| m.format.as_deref())
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("Item");
        if let Some(t) = &self.target {
            el.push(t.to_el());
        }
        if let Some(s) = &self.source {
            el.push(s.to_el());
        }
        if let Some(m) = &self.meta {
            el.push(m.to_el());
        }
        if let Some(d) = &self.data {
            el.push(leaf("Data", d));
        }
        if self.more_data {
            el.push(El::new("MoreData"));
        }
        el
    }
}

fn parse_items(e: &Element, ns: Ns) -> Vec<Item> {
    e.elements().filter(|c| ns.is(c, "Item")).map(|c| Item::parse(c, ns)).collect()
}

impl Status {
    /// The status code as a number, if it is one.
    pub fn code(&self) -> Option<u16> {
        self.data.trim().parse().ok()
    }

    fn parse(e: &Element, ns: Ns) -> Status {
        let data_el = child(e, ns, "Data");
        Status {
            cmd_id: child_text(e, ns, "CmdID").unwrap_or_default(),
            msg_ref: child_text(e, ns, "MsgRef").unwrap_or_default(),
            cmd_ref: child_text(e, ns, "CmdRef").unwrap_or_default(),
            cmd: child_text(e, ns, "Cmd").unwrap_or_default(),
            target_refs: texts(e, ns, "TargetRef"),
            source_refs: texts(e, ns, "SourceRef"),
            cred: child(e, ns, "Cred").map(|c| Cred::parse(c, ns)),
            chal: child(e, ns, "Chal").map(|c| Chal::parse(c, ns)),
            data: data_el.map(Element::text).unwrap_or_default(),
            original_error: data_el.and_then(|d| d.attr("originalerror")).map(|s| s.trim().to_string()),
            items: parse_items(e, ns),
        }
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("Status")
            .child(leaf("CmdID", &self.cmd_id))
            .child(leaf("MsgRef", &self.msg_ref))
            .child(leaf("CmdRef", &self.cmd_ref))
            .child(leaf("Cmd", &self.cmd));
        for r in &self.target_refs {
            el.push(leaf("TargetRef", r));
        }
        for r in &self.source_refs {
            el.push(leaf("SourceRef", r));
        }
        if let Some(c) = &self.cred {
            el.push(c.to_el());
        }
        if let Some(c) = &self.chal {
            el.push(c.to_el());
        }
        let mut data = leaf("Data", &self.data);
        if let Some(oe) = &self.original_error {
            data = data.attr("xmlns:msft", NS_MSFT).attr("msft:originalerror", oe.as_str());
        }
        el.child(data).children(self.items.iter().map(Item::to_el))
    }
}

impl Results {
    fn parse(e: &Element, ns: Ns) -> Results {
        Results {
            cmd_id: child_text(e, ns, "CmdID").unwrap_or_default(),
            msg_ref: child_text(e, ns, "MsgRef"),
            cmd_ref: child_text(e, ns, "CmdRef").unwrap_or_default(),
            cmd: child_text(e, ns, "Cmd"),
            meta: child(e, ns, "Meta").map(parse_meta),
            target_refs: texts(e, ns, "TargetRef"),
            source_refs: texts(e, ns, "SourceRef"),
            items: parse_items(e, ns),
        }
    }

    /// `MsgRef`, defaulting to `1` when absent.
    pub fn msg_ref_or_default(&self) -> &str {
        self.msg_ref.as_deref().unwrap_or("1")
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("Results").child(leaf("CmdID", &self.cmd_id));
        opt_leaf(&mut el, "MsgRef", &self.msg_ref);
        el.push(leaf("CmdRef", &self.cmd_ref));
        opt_leaf(&mut el, "Cmd", &self.cmd);
        if let Some(m) = &self.meta {
            el.push(m.to_el());
        }
        for r in &self.target_refs {
            el.push(leaf("TargetRef", r));
        }
        for r in &self.source_refs {
            el.push(leaf("SourceRef", r));
        }
        el.children(self.items.iter().map(Item::to_el))
    }
}

impl Alert {
    fn parse(e: &Element, ns: Ns) -> Alert {
        Alert {
            cmd_id: child_text(e, ns, "CmdID").unwrap_or_default(),
            no_resp: child(e, ns, "NoResp").is_some(),
            cred: child(e, ns, "Cred").map(|c| Cred::parse(c, ns)),
            data: child_text(e, ns, "Data").unwrap_or_default(),
            correlator: child_text(e, ns, "Correlator"),
            items: parse_items(e, ns),
        }
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("Alert").child(leaf("CmdID", &self.cmd_id));
        if self.no_resp {
            el.push(El::new("NoResp"));
        }
        if let Some(c) = &self.cred {
            el.push(c.to_el());
        }
        el.push(leaf("Data", &self.data));
        opt_leaf(&mut el, "Correlator", &self.correlator);
        el.children(self.items.iter().map(Item::to_el))
    }
}

impl SyncHdr {
    fn parse(e: &Element, ns: Ns) -> Result<SyncHdr, SyncMlError> {
        let msg_id = req_text(e, ns, "MsgID", "SyncHdr/MsgID")?;
        let session_id = req_text(e, ns, "SessionID", "SyncHdr/SessionID")?;
        let source = child(e, ns, "Source")
            .map(|s| Source::parse(s, ns))
            .ok_or(SyncMlError::Missing("SyncHdr/Source"))?;
        Ok(SyncHdr {
            ver_dtd: child_text(e, ns, "VerDTD").unwrap_or_default(),
            ver_proto: child_text(e, ns, "VerProto").unwrap_or_default(),
            session_id,
            msg_id,
            target: child(e, ns, "Target").map(|t| Target::parse(t, ns)).unwrap_or_default(),
            source,
            resp_uri: child_text(e, ns, "RespURI"),
            no_resp: child(e, ns, "NoResp").is_some(),
            cred: child(e, ns, "Cred").map(|c| Cred::parse(c, ns)),
            meta: child(e, ns, "Meta").map(parse_meta),
        })
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("SyncHdr")
            .child(leaf("VerDTD", &self.ver_dtd))
            .child(leaf("VerProto", &self.ver_proto))
            .child(leaf("SessionID", &self.session_id))
            .child(leaf("MsgID", &self.msg_id))
            .child(self.target.to_el())
            .child(self.source.to_el());
        opt_leaf(&mut el, "RespURI", &self.resp_uri);
        if self.no_resp {
            el.push(El::new("NoResp"));
        }
        if let Some(c) = &self.cred {
            el.push(c.to_el());
        }
        if let Some(m) = &self.meta {
            el.push(m.to_el());
        }
        el
    }
}

impl SyncBody {
    fn parse(e: &Element, ns: Ns) -> SyncBody {
        SyncBody {
            commands: e.elements().filter_map(|c| Command::parse(c, ns)).collect(),
            is_final: child(e, ns, "Final").is_some(),
        }
    }

    /// Parses a bare `<SyncBody>` fragment, in the namespace it carries.
    pub fn from_element(e: &Element) -> SyncBody {
        SyncBody::parse(e, Ns(e.ns.as_deref()))
    }

    pub fn to_el(&self) -> El {
        let mut el = El::new("SyncBody").children(self.commands.iter().map(Command::to_el));
        if self.is_final {
            el.push(El::new("Final"));
        }
        el
    }
}

impl SyncMl {
    /// Parses a message from its root element.
    pub fn from_element(root: &Element) -> Result<SyncMl, SyncMlError> {
        if root.name != "SyncML" || !accepted_root_ns(root.ns.as_deref()) {
            return Err(SyncMlError::NotSyncMl {
                root: match &root.ns {
                    Some(ns) => format!("{{{ns}}}{}", root.name),
                    None => root.name.clone(),
                },
            });
        }
        let ns = Ns(root.ns.as_deref());
        let hdr = child(root, ns, "SyncHdr").ok_or(SyncMlError::Missing("SyncHdr"))?;
        let body = child(root, ns, "SyncBody").ok_or(SyncMlError::Missing("SyncBody"))?;
        Ok(SyncMl { hdr: SyncHdr::parse(hdr, ns)?, body: SyncBody::parse(body, ns) })
    }

    /// Parses a message from a document.
    pub fn parse(doc: &str) -> Result<SyncMl, SyncMlError> {
        SyncMl::from_element(&xml::parse(doc)?)
    }

    /// Parses a message from raw bytes, which must be UTF-8 whatever the declaration says.
    pub fn parse_bytes(body: &[u8]) -> Result<SyncMl, SyncMlError> {
        let doc = std::str::from_utf8(body).map_err(|_| SyncMlError::NotUtf8)?;
        SyncMl::parse(doc.strip_prefix('\u{feff}').unwrap_or(doc))
    }

    pub fn to_el(&self) -> El {
        El::new("SyncML").attr("xmlns", NS_SYNCML).child(self.hdr.to_el()).child(self.body.to_el())
    }

    /// The message as a UTF-8 document with an XML declaration.
    pub fn to_document(&self) -> String {
        self.to_el().to_document()
    }
}

#[cfg(test)]
mod tests;
