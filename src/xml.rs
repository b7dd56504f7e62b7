//! A small namespace-aware XML tree on top of `quick-xml`.
//!
//! Every protocol here (SOAP, XCEP, WSTEP, SyncML) is matched by namespace URI and local name,
//! never by prefix, because devices and Microsoft's samples disagree on prefixes. Documents are
//! small (a few KB), so a tree is simpler and safer than streaming. `DOCTYPE` and entity
//! declarations are refused outright: nothing legitimate in these protocols uses them.
//!
//! Limits, so that hostile input gets a typed error and never a deep stack or a panic:
//! * nesting deeper than [`MAX_DEPTH`] elements is [`XmlError::TooDeep`] (the parser keeps its
//!   own stack, and everything that walks a parsed tree recursively is bounded by this);
//! * more than [`MAX_ATTRIBUTES`] attributes on one element, or more than
//!   [`MAX_NAMESPACES_IN_SCOPE`] namespace declarations in scope at once, is
//!   [`XmlError::TooManyAttributes`] / [`XmlError::TooManyNamespaces`]: checking attribute names
//!   for duplicates and resolving prefixes cost time that grows with the square of these, and a
//!   megabyte of attributes would otherwise spend seconds of CPU;
//! * a character outside XML 1.0's `Char` production ([`is_xml_char`], XML 1.0 §2.2), raw or
//!   written as a character reference (§4.1, "Well-formedness constraint: Legal Character"),
//!   is [`XmlError::InvalidChar`].
//!
//! The writer ([`El`]) never emits a character outside `Char`: see [`El::write_to`].

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::fmt;

/// Deepest element nesting accepted; real messages stay under 15 (a SyncML `Data` holding
/// inline XML under `Atomic`/`Sequence` stays under 30). Deeper input is [`XmlError::TooDeep`].
pub const MAX_DEPTH: usize = 64;

/// Most attributes on one element, namespace declarations included; real messages carry under
/// 10 (a SOAP `Envelope` declares up to 8 namespaces).
pub const MAX_ATTRIBUTES: usize = 64;

/// Most namespace declarations in scope at once (on an element and its ancestors); real
/// messages declare under 12.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 64;

/// XML 1.0 §2.2 `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
/// [#x10000-#x10FFFF]`. (A Rust `char` is never a surrogate, so `[#x20-#xD7FF]` and
/// `[#xE000-#xFFFD]` join into one range test with the surrogates excluded by the type.)
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A character XML 1.0 cannot carry, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotXmlChar {
    /// Byte offset in the string checked.
    pub at: usize,
    pub ch: char,
}

impl fmt::Display for NotXmlChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U+{:04X} at byte {} is not a character XML 1.0 can carry", self.ch as u32, self.at)
    }
}

impl std::error::Error for NotXmlChar {}

/// Whether every character of `s` can be carried in an XML 1.0 document (as text or an
/// attribute value, escaped as usual); the first one that cannot otherwise.
pub fn check_chars(s: &str) -> Result<(), NotXmlChar> {
    // Byte by byte, without decoding: in valid UTF-8 the only characters outside `Char` are
    // the C0 controls other than tab, LF and CR (one byte each) and U+FFFE / U+FFFF (EF BF BE,
    // EF BF BF; 0xEF is always a lead byte). Surrogates cannot occur in a `str`.
    let b = s.as_bytes();
    for (at, &c) in b.iter().enumerate() {
        let bad = match c {
            0x09 | 0x0A | 0x0D => false,
            0x00..=0x1F => true,
            0xEF => b.get(at + 1) == Some(&0xBF) && matches!(b.get(at + 2), Some(0xBE | 0xBF)),
            _ => false,
        };
        if bad {
            let ch = s[at..].chars().next().unwrap_or('\u{FFFD}');
            return Err(NotXmlChar { at, ch });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed, or uses a prefix that is not declared.
    Malformed(String),
    /// `<!DOCTYPE …>` (and with it any entity declaration).
    Doctype,
    /// A reference to an entity other than the five predefined ones.
    UndeclaredEntity(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_ATTRIBUTES`] attributes on one element.
    TooManyAttributes,
    /// More than [`MAX_NAMESPACES_IN_SCOPE`] namespace declarations in scope.
    TooManyNamespaces,
    /// A character outside XML 1.0's `Char`, raw or as a character reference.
    InvalidChar(NotXmlChar),
    Empty,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::Malformed(m) => write!(f, "malformed XML: {m}"),
            XmlError::Doctype => f.write_str("DOCTYPE and entity declarations are not accepted"),
            XmlError::UndeclaredEntity(e) => write!(f, "undeclared entity &{e};"),
            XmlError::TooDeep => write!(f, "XML nested deeper than {MAX_DEPTH} elements"),
            XmlError::InvalidChar(c) => write!(f, "{c}"),
            XmlError::TooManyAttributes => write!(f, "more than {MAX_ATTRIBUTES} attributes on an element"),
            XmlError::TooManyNamespaces => {
                write!(f, "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope")
            }
            XmlError::Empty => f.write_str("no root element"),
        }
    }
}

impl std::error::Error for XmlError {}

/// An attribute, by namespace and local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: Option<String>,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// A parsed element: namespace URI, local name, attributes (without `xmlns` declarations) and
/// children in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// First child element with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// All child elements with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, name))
    }

    /// Follows a path of (namespace, local name) steps through first matches.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        steps.iter().try_fold(self, |el, (ns, name)| el.child(ns, name))
    }

    /// First descendant (depth first, self excluded) with this namespace and local name.
    pub fn descendant(&self, ns: &str, name: &str) -> Option<&Element> {
        for e in self.elements() {
            if e.is(ns, name) {
                return Some(e);
            }
            if let Some(d) = e.descendant(ns, name) {
                return Some(d);
            }
        }
        None
    }

    /// Concatenated text content of the direct text children, trimmed (samples pad values with
    /// newlines; devices don't).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s.trim().to_string()
    }

    /// Attribute by local name, whatever its namespace (devices prefix some attributes that the
    /// specs leave unprefixed, e.g. `wsse:Type`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.name == name).map(|a| a.value.as_str())
    }

    /// Attribute by namespace and local name.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.name == name && a.ns.as_deref() == Some(ns)).map(|a| a.value.as_str())
    }
}

fn ns_of(r: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match r {
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => {
            Err(XmlError::Malformed(format!("undeclared prefix {}", String::from_utf8_lossy(&p))))
        }
    }
}

fn malformed(e: impl fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// Parses a document into its root element.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    // Raw characters first (names, text, attribute values, comments alike); what character
    // references resolve to is checked where they are resolved.
    check_chars(input).map_err(XmlError::InvalidChar)?;
    let mut reader = NsReader::from_str(input);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = true;
    }
    let mut stack: Vec<Element> = Vec::new();
    // Namespace declarations of each open element, and their sum.
    let mut declared: Vec<usize> = Vec::new();
    let mut in_scope = 0usize;
    let mut root: Option<Element> = None;
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(malformed)?;
        match ev {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                // Counted without the duplicate checks, which are quadratic: linear in the tag.
                let (mut count, mut decls) = (0usize, 0usize);
                for a in start.attributes().with_checks(false) {
                    count += 1;
                    if a.is_ok_and(|a| a.key.as_namespace_binding().is_some()) {
                        decls += 1;
                    }
                }
                if count > MAX_ATTRIBUTES {
                    return Err(XmlError::TooManyAttributes);
                }
                in_scope += decls;
                if in_scope > MAX_NAMESPACES_IN_SCOPE {
                    return Err(XmlError::TooManyNamespaces);
                }
                declared.push(decls);
                let ns = ns_of(res)?;
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in start.attributes() {
                    let a = a.map_err(malformed)?;
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ares, local) = reader.resolve_attribute(key);
                    let ans = ns_of(ares)?;
                    let value = a.unescape_value().map_err(malformed)?.into_owned();
                    // `&#1;` in an attribute value resolves here.
                    check_chars(&value).map_err(XmlError::InvalidChar)?;
                    attrs.push(Attr {
                        ns: ans,
                        name: String::from_utf8_lossy(local.as_ref()).into_owned(),
                        value,
                    });
                }
                stack.push(Element { ns, name, attrs, children: Vec::new() });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                in_scope -= declared.pop().unwrap_or(0);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(malformed)?;
                push_text(&mut stack, &root, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(malformed)?;
                push_text(&mut stack, &root, &s)?;
            }
            Event::GeneralRef(r) => {
                let s = if let Some(ch) = r.resolve_char_ref().map_err(malformed)? {
                    if !is_xml_char(ch) {
                        return Err(XmlError::InvalidChar(NotXmlChar {
                            at: reader.buffer_position() as usize,
                            ch,
                        }));
                    }
                    ch.to_string()
                } else {
                    let name = r.decode().map_err(malformed)?;
                    match name.as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => return Err(XmlError::UndeclaredEntity(other.to_string())),
                    }
                };
                push_text(&mut stack, &root, &s)?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Empty(_) => unreachable!("expand_empty_elements is on"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unexpected end of document".into()));
    }
    root.ok_or(XmlError::Empty)
}

fn push_text(stack: &mut [Element], root: &Option<Element>, s: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            // Merge adjacent text pieces (text, entity, text) into one node.
            if let Some(Node::Text(prev)) = el.children.last_mut() {
                prev.push_str(s);
            } else {
                el.children.push(Node::Text(s.to_string()));
            }
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None if root.is_some() => Err(XmlError::Malformed("text after the root element".into())),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

/// An element to write. Names are written as given (`s:Envelope`); the caller declares the
/// namespaces it uses with `xmlns` attributes. Text and attribute values are always escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    name: String,
    attrs: Vec<(String, String)>,
    kids: Vec<Kid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kid {
    El(El),
    Text(String),
}

impl El {
    pub fn new(name: impl Into<String>) -> Self {
        El { name: name.into(), attrs: Vec::new(), kids: Vec::new() }
    }

    /// `<name>text</name>`
    pub fn leaf(name: impl Into<String>, text: impl Into<String>) -> Self {
        El::new(name).text(text)
    }

    /// `<name xsi:nil="true"/>`; needs `xmlns:xsi` in scope.
    pub fn nil(name: impl Into<String>) -> Self {
        El::new(name).attr("xsi:nil", "true")
    }

    pub fn attr(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attrs.push((k.into(), v.into()));
        self
    }

    pub fn child(mut self, c: El) -> Self {
        self.kids.push(Kid::El(c));
        self
    }

    pub fn children(mut self, cs: impl IntoIterator<Item = El>) -> Self {
        self.kids.extend(cs.into_iter().map(Kid::El));
        self
    }

    pub fn text(mut self, t: impl Into<String>) -> Self {
        self.kids.push(Kid::Text(t.into()));
        self
    }

    pub fn push(&mut self, c: El) {
        self.kids.push(Kid::El(c));
    }

    /// Writes the element. Text and attribute values are escaped, and a character XML 1.0
    /// cannot carry (outside `Char`, XML 1.0 §2.2 — not even as a character reference, §4.1) is
    /// written as U+FFFD REPLACEMENT CHARACTER. Replacing rather than refusing keeps every
    /// answer well-formed and this function infallible: what the server writes comes from
    /// parsed input (which [`parse`] already refuses with such characters), the admin API
    /// (which refuses them with 400), or the server itself, so a replacement here means a
    /// check was missed upstream, and a readable document is the better failure.
    pub fn write_to(&self, out: &mut String) {
        out.push('<');
        push_clean(out, &self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            push_clean(out, k);
            out.push_str("=\"");
            push_escaped(out, v);
            out.push('"');
        }
        if self.kids.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for k in &self.kids {
            match k {
                Kid::El(e) => e.write_to(out),
                Kid::Text(t) => push_escaped(out, t),
            }
        }
        out.push_str("</");
        push_clean(out, &self.name);
        out.push('>');
    }

    /// The element as a string, without an XML declaration.
    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write_to(&mut s);
        s
    }

    /// The element as a UTF-8 document with an XML declaration.
    pub fn to_document(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        self.write_to(&mut s);
        s
    }
}

/// `s` with every character outside XML 1.0's `Char` replaced by U+FFFD.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if check_chars(s).is_ok() {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.chars().map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' }).collect())
    }
}

fn push_clean(out: &mut String, s: &str) {
    out.push_str(&clean(s));
}

fn push_escaped(out: &mut String, s: &str) {
    out.push_str(&quick_xml::escape::escape(clean(s).as_ref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_namespace_not_prefix() {
        let a = parse(r#"<x:a xmlns:x="urn:n"><x:b>1</x:b></x:a>"#).unwrap();
        let b = parse(
            r#"<a xmlns="urn:n"><b>
            1
        </b></a>"#,
        )
        .unwrap();
        assert!(a.is("urn:n", "a") && b.is("urn:n", "a"));
        assert_eq!(a.child("urn:n", "b").unwrap().text(), "1");
        assert_eq!(b.child("urn:n", "b").unwrap().text(), "1");
        assert!(a.child("urn:other", "b").is_none());
    }

    #[test]
    fn attributes_resolve_namespaces() {
        let e = parse(r#"<a xmlns:w="urn:w" w:Type="t" Plain="p"/>"#).unwrap();
        assert_eq!(e.attr_ns("urn:w", "Type"), Some("t"));
        assert_eq!(e.attr("Type"), Some("t"));
        assert_eq!(e.attr("Plain"), Some("p"));
        assert_eq!(e.attrs.len(), 2, "xmlns declarations are not attributes");
    }

    #[test]
    fn entities_and_cdata() {
        let e = parse("<a>x &amp; &#65;&#x42; <![CDATA[<c>]]></a>").unwrap();
        assert_eq!(e.text(), "x & AB <c>");
    }

    #[test]
    fn refuses_doctype_and_custom_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#;
        assert_eq!(parse(bomb), Err(XmlError::Doctype));
        assert!(matches!(parse("<a>&x;</a>"), Err(XmlError::UndeclaredEntity(_))));
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "<a>", "<a></b>", "<a/><b/>", "text", "<p:a/>", "<a>x</a>trailing"] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
    }

    #[test]
    fn ten_thousand_deep_is_too_deep_not_a_stack_overflow() {
        let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
        // Unclosed, and with attributes and namespaces on the way down.
        let deep = r#"<p:a xmlns:p="urn:p" x="1">"#.repeat(10_000);
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
        // Exactly at the limit is fine.
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn attributes_and_namespaces_are_bounded() {
        let attrs = |n: usize| (0..n).map(|i| format!(" a{i}=\"\"")).collect::<String>();
        let decls = |from: usize, n: usize| {
            (from..from + n).map(|i| format!(" xmlns:p{i}=\"urn:{i}\"")).collect::<String>()
        };
        assert!(parse(&format!("<a{}/>", attrs(MAX_ATTRIBUTES))).is_ok());
        assert_eq!(parse(&format!("<a{}/>", attrs(MAX_ATTRIBUTES + 1))), Err(XmlError::TooManyAttributes));
        // 80,000 attributes (what a megabyte holds) fail at once instead of costing seconds.
        let t = std::time::Instant::now();
        assert_eq!(parse(&format!("<a{}/>", attrs(80_000))), Err(XmlError::TooManyAttributes));
        assert_eq!(parse(&format!("<a{}/>", decls(0, 80_000))), Err(XmlError::TooManyAttributes));
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
        // Declarations add up over the ancestors, and end with their element.
        let nested = format!("<a{}><b{}/></a>", decls(0, 40), decls(40, 40));
        assert_eq!(parse(&nested), Err(XmlError::TooManyNamespaces));
        let siblings = format!("<a{}><b{}/><c{}/></a>", decls(0, 32), decls(32, 32), decls(64, 32));
        assert!(parse(&siblings).is_ok());
        assert!(XmlError::TooManyNamespaces.to_string().contains("64"));
    }

    #[test]
    fn xml_chars_are_xml_1_0_char() {
        for c in ['\t', '\n', '\r', ' ', 'a', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '\u{10000}', '\u{10FFFF}'] {
            assert!(is_xml_char(c), "{c:?}");
        }
        for c in ['\0', '\u{1}', '\u{8}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!is_xml_char(c), "{c:?}");
        }
        assert_eq!(check_chars("ok\tline\r\n"), Ok(()));
        assert_eq!(check_chars("ab\u{1}c"), Err(NotXmlChar { at: 2, ch: '\u{1}' }));
        assert_eq!(check_chars("é\u{FFFF}"), Err(NotXmlChar { at: 2, ch: '\u{FFFF}' }));
        assert!(check_chars("\u{1}").unwrap_err().to_string().contains("U+0001"));
    }

    #[test]
    fn the_byte_scan_agrees_with_char_for_every_character() {
        for ch in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = format!("é{ch}\u{FFFD}");
            let expected = if is_xml_char(ch) { Ok(()) } else { Err(NotXmlChar { at: 2, ch }) };
            assert_eq!(check_chars(&s), expected, "U+{:04X}", ch as u32);
        }
    }

    #[test]
    fn refuses_characters_outside_char_raw_or_referenced() {
        for bad in [
            "<a>\u{1}</a>",
            "<a x=\"\u{1}\"/>",
            "<a\u{1}/>",
            "<a><!-- \u{FFFE} --></a>",
            "<a>&#1;</a>",
            "<a>&#x1F;</a>",
            "<a>&#xFFFF;</a>",
            "<a x=\"&#x1;\"/>",
            "<a><![CDATA[\u{8}]]></a>",
        ] {
            assert!(matches!(parse(bad), Err(XmlError::InvalidChar(_))), "{bad:?}: {:?}", parse(bad));
        }
        // Tab, newline, carriage return and everything from U+0020 up are fine, as references too.
        let e = parse("<a x=\"&#9;\">&#xA;&#xD;\t\u{10FFFF}&#x10000;</a>").unwrap();
        assert_eq!(e.attr("x"), Some("\t"));
    }

    #[test]
    fn writer_never_emits_what_xml_cannot_carry() {
        let doc = El::new("r")
            .attr("v", "a\u{1}b")
            .child(El::leaf("t", "x\u{0}y\u{FFFE}z\u{1B}"))
            .child(El::new("n\u{2}"));
        let s = doc.to_document();
        assert!(check_chars(&s).is_ok(), "{s:?}");
        let back = parse(&s).unwrap();
        assert_eq!(back.attr("v"), Some("a\u{FFFD}b"));
        assert_eq!(back.elements().next().unwrap().text(), "x\u{FFFD}y\u{FFFD}z\u{FFFD}");
        // Clean text is written as it is.
        assert_eq!(El::leaf("t", "é\t<").to_xml(), "<t>é\t&lt;</t>");
    }

    #[test]
    fn writer_escapes_and_round_trips() {
        let doc = El::new("r:root")
            .attr("xmlns:r", "urn:r")
            .attr("v", "a\"<&>")
            .child(El::leaf("r:t", "1 < 2 & \"q\""))
            .child(El::new("r:e"));
        let s = doc.to_xml();
        let back = parse(&s).unwrap();
        assert_eq!(back.attr("v"), Some("a\"<&>"));
        assert_eq!(back.child("urn:r", "t").unwrap().text(), "1 < 2 & \"q\"");
        assert!(back.child("urn:r", "e").unwrap().children.is_empty());
    }
}
