//! Byte encodings, one helper each: hex and base64 (RFC 4648 §4). Everything else in the tree
//! calls these.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Upper-case hex (certificate serials and SHA-1 thumbprints, as Windows prints them).
pub fn hex_upper(bytes: &[u8]) -> String {
    hex(bytes).to_ascii_uppercase()
}

/// Decodes base64 leniently about whitespace (devices and samples wrap lines).
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Unpadded standard base64 (the password-hash string format).
pub fn encode_base64_unpadded(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

pub fn decode_base64_unpadded(text: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(text).ok()
}

/// Unpadded base64url (RFC 4648 §5): tokens and page nonces, safe in URLs and forms.
pub fn encode_base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Reads JSON into `T` through a `serde_json::Value`: one JSON parser for every type, so each
/// type's decoder is generated once, over the value tree, instead of once per input form
/// (serde_json's code, most of it those per-type parsers, was a fifth of the wasm).
pub fn from_json<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T, serde_json::Error> {
    T::deserialize(serde_json::from_slice::<serde_json::Value>(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reads_through_one_parser() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Row {
            id: String,
            n: Option<u32>,
        }
        assert_eq!(from_json::<Row>(br#"{"id":"a","n":3}"#).unwrap(), Row { id: "a".into(), n: Some(3) });
        assert_eq!(from_json::<Row>(br#" {"id":"b"} "#).unwrap(), Row { id: "b".into(), n: None });
        assert!(from_json::<Row>(br#"{"id":"a","x":1}"#).is_err(), "unknown field");
        assert!(from_json::<Row>(br#"{"id":"a"} x"#).is_err(), "trailing input");
        assert!(from_json::<Row>(br#"{"id":7}"#).is_err(), "wrong type");
        assert!(from_json::<Row>(br#"{"n":-1,"id":"a"}"#).is_err(), "out of range");
    }

    #[test]
    fn hex_both_cases() {
        assert_eq!(hex(&[0x0a, 0xbc, 0xff, 0]), "0abcff00");
        assert_eq!(hex_upper(&[0x0a, 0xbc]), "0ABC");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn base64_round_trip_and_wrapped_lines() {
        assert_eq!(encode_base64(b"edgemdm"), "ZWRnZW1kbQ==");
        assert_eq!(decode_base64("ZWRn\r\nZW1k bQ==").as_deref(), Some(&b"edgemdm"[..]));
        assert_eq!(decode_base64("%%"), None);
    }
}
