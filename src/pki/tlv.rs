//! Minimal DER TLV walker that keeps the original bytes of every element.
//!
//! Lenient on purpose: non-minimal length encodings are accepted (we only need to find
//! element boundaries; signatures are checked over the original bytes). Indefinite lengths
//! and multi-byte tags are rejected.

use super::PkiError;
use const_oid::ObjectIdentifier;

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;

/// One element: its tag byte, its full encoding and its contents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub raw: &'a [u8],
    pub value: &'a [u8],
}

pub(crate) fn malformed(what: &str) -> PkiError {
    PkiError::Malformed(what.to_string())
}

/// Reads the next element from `input` and advances it.
pub(crate) fn next<'a>(input: &mut &'a [u8]) -> Result<Tlv<'a>, PkiError> {
    let data: &'a [u8] = input;
    if data.len() < 2 {
        return Err(malformed("truncated element"));
    }
    let tag = data[0];
    if tag & 0x1f == 0x1f {
        return Err(malformed("multi-byte tags not supported"));
    }
    let first = data[1];
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2usize)
    } else if first == 0x80 {
        return Err(malformed("indefinite length not supported"));
    } else {
        let n = (first & 0x7f) as usize;
        if n > 4 || data.len() < 2 + n {
            return Err(malformed("bad length"));
        }
        let mut len = 0usize;
        for &b in &data[2..2 + n] {
            len = (len << 8) | b as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len).ok_or_else(|| malformed("bad length"))?;
    if data.len() < end {
        return Err(malformed("truncated element"));
    }
    *input = &data[end..];
    Ok(Tlv { tag, raw: &data[..end], value: &data[hdr..end] })
}

/// Reads the next element and checks its tag.
pub(crate) fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, PkiError> {
    let t = next(input).map_err(|e| match e {
        PkiError::Malformed(m) => PkiError::Malformed(format!("{what}: {m}")),
        other => other,
    })?;
    if t.tag != tag {
        return Err(PkiError::Malformed(format!("{what}: expected tag 0x{tag:02x}, found 0x{:02x}", t.tag)));
    }
    Ok(t)
}

/// The whole of `input` must be exactly one element with `tag`.
pub(crate) fn single<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, PkiError> {
    let mut rest = input;
    let t = expect(&mut rest, tag, what)?;
    if !rest.is_empty() {
        return Err(PkiError::Malformed(format!("{what}: trailing data")));
    }
    Ok(t)
}

/// Peeks at the tag of the next element, if any.
pub(crate) fn peek_tag(input: &[u8]) -> Option<u8> {
    input.first().copied()
}

/// An AlgorithmIdentifier: returns the OID contents bytes (parameters are ignored).
pub(crate) fn algorithm<'a>(t: &Tlv<'a>) -> Result<&'a [u8], PkiError> {
    let mut inner = t.value;
    let oid = expect(&mut inner, OID, "AlgorithmIdentifier")?;
    Ok(oid.value)
}

/// The OID contents bytes of a known OID.
pub(crate) fn oid_bytes(oid: &'static ObjectIdentifier) -> &'static [u8] {
    oid.as_bytes()
}

/// Dotted form of OID contents bytes, for error messages.
pub(crate) fn oid_string(bytes: &[u8]) -> String {
    ObjectIdentifier::from_bytes(bytes)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| format!("<bad OID {}>", crate::codec::hex_upper(bytes)))
}

/// Decodes a directory-string-like value (any string type) into lossy UTF-8,
/// trimming trailing NULs (Windows CSRs end their CN with one).
pub(crate) fn string_value(t: &Tlv<'_>) -> String {
    let s = match t.tag {
        // BMPString: UTF-16BE
        0x1e => {
            let units: Vec<u16> =
                t.value.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            String::from_utf16_lossy(&units)
        }
        // UniversalString: UTF-32BE
        0x1c => t
            .value
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_be_bytes(b)).unwrap_or('\u{fffd}')
            })
            .collect(),
        _ => String::from_utf8_lossy(t.value).into_owned(),
    };
    s.trim_end_matches('\0').to_string()
}

/// The (last) commonName of a Name given as its raw SEQUENCE, leniently.
pub(crate) fn common_name(name: &Tlv<'_>) -> Result<Option<String>, PkiError> {
    let cn_oid = oid_bytes(&const_oid::db::rfc4519::CN);
    let mut rdns = name.value;
    let mut found = None;
    while !rdns.is_empty() {
        let set = expect(&mut rdns, SET, "RelativeDistinguishedName")?;
        let mut atvs = set.value;
        while !atvs.is_empty() {
            let atv = expect(&mut atvs, SEQUENCE, "AttributeTypeAndValue")?;
            let mut inner = atv.value;
            let oid = expect(&mut inner, OID, "AttributeType")?;
            let value = next(&mut inner)?;
            if oid.value == cn_oid {
                found = Some(string_value(&value));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_keeps_raw() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xAA];
        let t = single(&der, SEQUENCE, "x").unwrap();
        assert_eq!(t.raw, &der[..]);
        let mut inner = t.value;
        let i = expect(&mut inner, INTEGER, "i").unwrap();
        assert_eq!(i.value, &[5]);
        let o = expect(&mut inner, OCTET_STRING, "o").unwrap();
        assert_eq!(o.value, &[0xAA]);
        assert!(inner.is_empty());
    }

    #[test]
    fn rejects_truncation_and_trailing() {
        assert!(single(&[0x30, 0x05, 0x02, 0x01], SEQUENCE, "x").is_err());
        assert!(single(&[0x30, 0x00, 0x00], SEQUENCE, "x").is_err());
        assert!(single(&[0x30, 0x80, 0x00, 0x00], SEQUENCE, "x").is_err());
        // long-form length
        let t = single(&[0x04, 0x81, 0x01, 0x07], OCTET_STRING, "x").unwrap();
        assert_eq!(t.value, &[7]);
    }

    #[test]
    fn string_values() {
        let t = Tlv { tag: 0x13, raw: &[], value: b"ABC\0" };
        assert_eq!(string_value(&t), "ABC");
        let t = Tlv { tag: 0x1e, raw: &[], value: &[0, b'h', 0, b'i'] };
        assert_eq!(string_value(&t), "hi");
    }
}
