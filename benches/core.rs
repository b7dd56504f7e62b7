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
}
