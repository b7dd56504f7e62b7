//! CPU cost of the pure core per request, natively (`npm run bench` runs it). The Worker runs
//! the same code as wasm, typically 1.5–3x slower than these native figures.

use edgemdm::pki::{self, CaKey, DeviceCertRequest};
use edgemdm::proto::soap;
use edgemdm::proto::wstep::{RequestSecurityToken, TokenRequest};
use std::hint::black_box;
use std::time::Instant;

const RST: &str = include_str!("../src/proto/testdata/wstep_request_onprem_wp80_10517.xml");

fn time(name: &str, n: u32, mut f: impl FnMut()) {
    f();
    let t0 = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("bench: native {name:<44} {us:>9.1} µs/op  n={n}");
}

fn main() {
    let key = CaKey::generate().unwrap();
    let ca = pki::build_ca_certificate(&key, "bench CA", &[1], 1_700_000_000, 1_900_000_000).unwrap();
    let rst = || RequestSecurityToken::parse(&soap::parse_envelope(RST).unwrap().body).unwrap();
    let TokenRequest::Pkcs10(csr_der) = rst().token else { unreachable!() };
    time("parse SOAP envelope + RST", 2000, || {
        black_box(rst());
    });
    time("CSR parse + RSA-2048 signature check", 500, || {
        black_box(pki::parse_csr(&csr_der, 2048).unwrap());
    });
    let csr = pki::parse_csr(&csr_der, 2048).unwrap();
    time("device certificate (ECDSA P-256 sign)", 500, || {
        let req = DeviceCertRequest {
            serial: &[1, 2, 3, 4, 5, 6, 7, 8],
            subject_cn: "B5B954E81FBCB94EB79BD08BE625F4EE",
            spki_der: &csr.spki_der,
            not_before: 1_800_000_000,
            not_after: 1_830_000_000,
        };
        black_box(pki::issue_device_certificate(&key, &ca, &req).unwrap());
    });
    // A device record as its object stores it, read the way the Worker reads every stored value
    // and object call (through one `serde_json::Value` parser) and, for comparison, directly.
    let record = serde_json::json!({
        "device_id": "6F3C0E5AE8B14C0B9F0D8D7B3A2C1E00", "hw_dev_id": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
        "device_name": "DESKTOP-4242", "device_type": "VMware, Inc.", "os_version": "10.0.22631.4460",
        "os_edition": "72", "application_version": "10.0.22631.4460", "enrollment_type": "Full",
        "context": [], "user": "user42@contoso.com",
        "certificate": { "serial": "0000000000001F4A", "thumbprint": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B",
            "not_before": "2026-12-05T07:00:00Z", "not_after": "2027-12-05T07:00:00Z" },
        "status": "enrolled", "enrolled_at": "2026-12-05T07:00:00Z", "renewed_at": null
    })
    .to_string();
    let direct: edgemdm::device::DeviceRecord = serde_json::from_str(&record).unwrap();
    assert_eq!(
        edgemdm::codec::from_json::<edgemdm::device::DeviceRecord>(record.as_bytes()).unwrap(),
        direct
    );
    time("device record from JSON, through a Value", 20000, || {
        black_box(edgemdm::codec::from_json::<edgemdm::device::DeviceRecord>(record.as_bytes()).unwrap());
    });
    time("device record from JSON, direct (compare)", 20000, || {
        black_box(serde_json::from_str::<edgemdm::device::DeviceRecord>(&record).unwrap());
    });
}
