//! Whether a value read back from a device is the value a profile set. Devices answer in
//! their own spelling: `int` as a number, `bool` in any case, `b64` with or without padding
//! or line breaks, and markup (`xml`, and ADMX-backed `chr` values of `<enabled/>` and
//! `<data id=… value=…/>`, Microsoft Learn "Understanding ADMX-backed policies") with its own
//! whitespace, attribute order and empty-element form. Values are compared by meaning, never
//! more loosely: a different number, flag, byte or element is a mismatch.

use super::Format;
use crate::codec::decode_base64;
use crate::xml::{self, Element, Node};

/// `observed` (what the device reported) holds the value `desired` of `format`.
pub fn same_value(format: Format, desired: &str, observed: &str) -> bool {
    let (d, o) = (desired.trim(), observed.trim());
    if d == o {
        return true;
    }
    match format {
        Format::Int => matches!((d.parse::<i64>(), o.parse::<i64>()), (Ok(a), Ok(b)) if a == b),
        Format::Bool => d.eq_ignore_ascii_case(o),
        Format::B64 => {
            let clean = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            matches!((decode_base64(&clean(d)), decode_base64(&clean(o))), (Some(a), Some(b)) if a == b)
        }
        Format::Xml | Format::Chr if d.starts_with('<') && o.starts_with('<') => same_markup(d, o),
        Format::Xml | Format::Chr => false,
    }
}

/// Two markup fragments with the same elements, attributes (in any order) and text (ignoring
/// whitespace between elements).
fn same_markup(a: &str, b: &str) -> bool {
    let parse = |s: &str| xml::parse(&format!("<edgemdm-value>{s}</edgemdm-value>")).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => same_element(&x, &y),
        _ => false,
    }
}

fn same_element(a: &Element, b: &Element) -> bool {
    if a.name != b.name || a.ns != b.ns {
        return false;
    }
    let attrs = |e: &Element| {
        let mut v: Vec<_> = e.attrs.iter().map(|x| (x.ns.clone(), x.name.clone(), x.value.clone())).collect();
        crate::sorting::sort(&mut v);
        v
    };
    if attrs(a) != attrs(b) {
        return false;
    }
    let kids = |e: &Element| -> Vec<Node> {
        e.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) if t.trim().is_empty() => None,
                Node::Text(t) => Some(Node::Text(t.trim().to_string())),
                Node::Element(_) => Some(n.clone()),
            })
            .collect()
    };
    let (ka, kb) = (kids(a), kids(b));
    ka.len() == kb.len()
        && ka.iter().zip(&kb).all(|pair| match pair {
            (Node::Text(x), Node::Text(y)) => x == y,
            (Node::Element(x), Node::Element(y)) => same_element(x, y),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_meaning() {
        assert!(same_value(Format::Int, "0", "0"));
        assert!(same_value(Format::Int, "1", "+1"));
        assert!(!same_value(Format::Int, "1", "2"));
        assert!(same_value(Format::Bool, "true", "True"));
        assert!(!same_value(Format::Bool, "true", "false"));
        assert!(same_value(Format::B64, "AAEC", "AAE\nC"));
        assert!(!same_value(Format::B64, "AAEC", "AAED"));
        assert!(same_value(Format::Chr, "a & b", " a & b "));
        assert!(!same_value(Format::Chr, "a", "A"));
        let admx = r#"<enabled/><data id="Name" value="x &amp; y"/>"#;
        assert!(same_value(Format::Chr, admx, r#"<enabled></enabled> <data value="x &amp; y" id="Name" />"#));
        assert!(!same_value(Format::Chr, admx, r#"<enabled/><data id="Name" value="z"/>"#));
        assert!(!same_value(Format::Chr, admx, "<disabled/>"));
        assert!(same_value(Format::Xml, "<a><b>1</b></a>", "<a>\n  <b>1</b>\n</a>"));
        assert!(!same_value(Format::Xml, "<a><b>1</b></a>", "<a><b>2</b></a>"));
        assert!(
            !same_value(Format::Xml, "<a>", "<a>"[..2].trim()),
            "unparseable markup never matches loosely"
        );
    }
}
