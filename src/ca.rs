//! The certificate authority's rules, pure: serial numbers, issuance records and who may renew.
//! The key and the records live in the CA Durable Object (`objects::ca`), which calls these.

use serde::{Deserialize, Serialize};

/// Subject CN of the CA certificate.
pub const CA_COMMON_NAME: &str = "edgemdm Device CA";
/// The CA certificate's lifetime: well beyond any device certificate it signs.
pub const CA_VALIDITY_SECS: u64 = 20 * 365 * 86_400;

/// One issued certificate (Durable Object storage key `issued:<serial>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceRecord {
    /// Upper-case hex.
    pub serial: String,
    pub device_id: String,
    pub thumbprint: String,
    /// Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    /// The serial of the certificate this one renewed.
    pub renews: Option<String>,
    /// Set when the certificate was renewed or its device retired.
    pub revoked: bool,
}

/// A serial number: 8 random bytes then the CA's counter. The counter makes it unique (the
/// Durable Object allocates it under its input gate); the random part makes it unpredictable.
/// The first byte is kept in 0x01..=0x7f so the DER INTEGER is positive and never shortened.
pub fn serial_number(counter: u64, random: [u8; 8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(16);
    s.extend_from_slice(&random);
    s[0] = (s[0] & 0x7f).max(1);
    s.extend_from_slice(&counter.to_be_bytes());
    s
}

pub fn serial_hex(serial: &[u8]) -> String {
    serial.iter().map(|b| format!("{b:02X}")).collect()
}

/// Why a renewal is refused, if it is. `presented_thumbprint` is the SHA-1 of the certificate
/// that signed the renewal request.
pub fn renewal_refusal(record: Option<&IssuanceRecord>, presented_thumbprint: &str, now: u64) -> Option<&'static str> {
    let Some(r) = record else {
        return Some("the signing certificate was not issued by this server");
    };
    if r.thumbprint != presented_thumbprint {
        return Some("the signing certificate does not match the issued one");
    }
    if r.revoked {
        return Some("the signing certificate was already renewed or revoked");
    }
    if now >= r.not_after {
        return Some("the signing certificate has expired");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = serial_number(1, [0xff; 8]);
        let b = serial_number(2, [0xff; 8]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a[0] >= 1 && a[0] <= 0x7f);
        assert_eq!(serial_number(1, [0; 8])[0], 1);
        assert_eq!(serial_hex(&[0x0a, 0xbc]), "0ABC");
    }

    #[test]
    fn renewal_rules() {
        let r = IssuanceRecord {
            serial: "01".into(),
            device_id: "D".into(),
            thumbprint: "T".into(),
            not_before: 0,
            not_after: 100,
            renews: None,
            revoked: false,
        };
        assert_eq!(renewal_refusal(Some(&r), "T", 50), None);
        assert!(renewal_refusal(None, "T", 50).is_some());
        assert!(renewal_refusal(Some(&r), "X", 50).is_some());
        assert!(renewal_refusal(Some(&r), "T", 100).is_some());
        let revoked = IssuanceRecord { revoked: true, ..r };
        assert!(renewal_refusal(Some(&revoked), "T", 50).is_some());
    }
}
