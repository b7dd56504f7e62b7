//! Property tests of every parser the server runs on input from outside: none of them panics,
//! on arbitrary bytes and strings, or on mutations (byte flips, truncation, a duplicated slice,
//! inserted bytes) of the real captures in `src/proto/testdata` and
//! `src/proto/syncml/testdata`, of real DER (CSRs and PKCS#7 from those captures, certificates
//! from this crate's own CA) and of real tokens, JSON commands, forms and settings.
//!
//! A panic in the Worker is an aborted request (a 5xx, and state possibly half written), so
//! "returns an error" is the property, whatever the error. Where a parser's output is written
//! back (SyncML), the writer's output must parse again.
//!
//! `PROPTEST_CASES` scales every property (default 256 cases each here).

use std::path::Path;
use std::sync::OnceLock;

use edgemdm::codec::{decode_base64, encode_base64};
use edgemdm::commands::CommandRequest;
use edgemdm::config::Config;
use edgemdm::http::{form_decode, percent_decode};
use edgemdm::pki::{self, build_ca_certificate, issue_device_certificate, CaKey, DeviceCertRequest};
use edgemdm::proto::discovery::Discover;
use edgemdm::proto::soap::parse_envelope;
use edgemdm::proto::syncml::message::{Command, SyncBody, SyncMl};
use edgemdm::proto::wstep::{RequestSecurityToken, TokenRequest};
use edgemdm::proto::xcep::GetPolicies;
use edgemdm::signin::validate_appru;
use edgemdm::tokens::{self, Claims, TokenType};
use edgemdm::xml::{self, Element};
use proptest::prelude::*;
use proptest::sample::Index;

// ---- seeds ------------------------------------------------------------------------------------

/// Every capture in the two testdata folders, by file name.
fn captures() -> &'static [(String, Vec<u8>)] {
    static CAPTURES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CAPTURES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in ["src/proto/testdata", "src/proto/syncml/testdata"] {
            let mut files: Vec<_> =
                std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            for f in files {
                out.push((f.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&f).unwrap()));
            }
        }
        assert!(out.len() > 40, "the captures are where they should be");
        out
    })
}

/// Runs /usr/bin/openssl (as the pki unit tests do) and insists that it succeeds.
fn openssl(args: &[&str]) {
    let out =
        std::process::Command::new("/usr/bin/openssl").args(args).output().expect("run /usr/bin/openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Real DER to mutate: the CSRs and PKCS#7s that the WSTEP captures carry (one real CSR, from
/// a Windows Phone 8 device), and a fresh set made here the way devices make them: an RSA
/// CSR (openssl), the device certificate this crate's CA issues for it, the CA certificate,
/// and a ROBO renewal (PKCS#7 SignedData over a new CSR, signed with the device's key).
fn der_seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for (_, bytes) in captures() {
            let Ok(text) = std::str::from_utf8(bytes) else { continue };
            let Ok(env) = parse_envelope(text.trim_start()) else { continue };
            if let Ok(rst) = RequestSecurityToken::parse(&env.body) {
                match rst.token {
                    TokenRequest::Pkcs10(d) | TokenRequest::Pkcs7(d) => out.push(d),
                }
            }
        }
        assert!(!out.is_empty(), "the real CSR of the WSTEP captures");

        let dir = std::env::temp_dir().join(format!("edgemdm-parser-properties-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let csr_of = |name: &str| {
            let (key, csr) = (path(&format!("{name}.key")), path(&format!("{name}.csr")));
            openssl(&[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "rsa:2048",
                "-keyout",
                &key,
                "-subj",
                "/CN=DEVICE",
                "-outform",
                "DER",
                "-out",
                &csr,
            ]);
            std::fs::read(&csr).unwrap()
        };
        let csr = csr_of("current");
        let new_csr = csr_of("new");
        let key = CaKey::generate().unwrap();
        let ca = build_ca_certificate(&key, "edgemdm test CA", &[1], 1_700_000_000, 1_900_000_000).unwrap();
        let spki = pki::parse_csr(&csr, 2048).unwrap().spki_der;
        let device = issue_device_certificate(
            &key,
            &ca,
            &DeviceCertRequest {
                serial: &[2, 3],
                subject_cn: "DEVICE",
                spki_der: &spki,
                not_before: 1_700_000_000,
                not_after: 1_800_000_000,
            },
        )
        .unwrap();
        std::fs::write(path("device.pem"), pki::to_pem("CERTIFICATE", &device)).unwrap();
        openssl(&[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-in",
            &path("new.csr"),
            "-signer",
            &path("device.pem"),
            "-inkey",
            &path("current.key"),
            "-out",
            &path("renewal.p7"),
        ]);
        let renewal = std::fs::read(path("renewal.p7")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(pki::inspect_certificate(&device).is_ok());
        assert!(pki::parse_renewal(&renewal, 2048).is_ok(), "the renewal seed is a real one");
        out.extend([csr, new_csr, ca, device, renewal]);
        out
    })
}

const TOKEN_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn real_token() -> String {
    let claims = Claims {
        typ: TokenType::Login,
        sub: "alice@contoso.com".into(),
        exp: 2_000_000_000,
        jti: "jti-1".into(),
        dev: Some("DEVICE".into()),
        iat_ms: 1_700_000_000_000,
        sharded: true,
    };
    tokens::sign(TOKEN_KEY, &claims)
}

const COMMAND_SEEDS: &[&str] = &[
    r#"{"type":"get","uri":"./DevDetail/SwV"}"#,
    r#"{"type":"replace","uri":"./Vendor/MSFT/Policy/Config/Camera/AllowCamera","format":"int","data":"0"}"#,
    r#"{"type":"add","uri":"./Vendor/MSFT/X","format":"xml","data":"<a><b>1</b></a>"}"#,
    r#"{"type":"exec","uri":"./Vendor/MSFT/RemoteWipe/doWipe","data":"x"}"#,
    r#"{"type":"lock"}"#,
];

const FORM_SEED: &str =
    "appru=ms-app%3A%2F%2Fwindows.immersivecontrolpanel&email=alice%40contoso.com&password=p+w%26d&device_id=ABC";

// ---- mutations --------------------------------------------------------------------------------

/// One change to a byte string. Positions are taken modulo whatever length the string has by
/// then, so any sequence of mutations applies to any input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    /// Copies `[from, from + len]` and inserts the copy at `to`.
    Duplicate {
        from: usize,
        len: usize,
        to: usize,
    },
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len();
        match *m {
            Mutation::Flip(i, mask) if n > 0 => bytes[i % n] ^= mask,
            Mutation::Truncate(i) if n > 0 => bytes.truncate(i % n),
            Mutation::Duplicate { from, len, to } if n > 0 => {
                let from = from % n;
                let len = len % (n - from) + 1;
                let copy = bytes[from..from + len].to_vec();
                let to = to % (n + 1);
                bytes.splice(to..to, copy);
            }
            Mutation::Insert(i, ref b) => {
                let at = i % (n + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(i, len) if n > 0 => {
                let at = i % n;
                let len = len % (n - at) + 1;
                bytes.drain(at..at + len);
            }
            _ => {}
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

// ---- what is run on each input ----------------------------------------------------------------

/// Every element of a tree, without recursion.
fn all_elements(root: &Element) -> Vec<&Element> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let e = out[i];
        out.extend(e.elements());
        i += 1;
    }
    out
}

/// Every XML-level parser on one body, as the endpoints would run them (and then some: each
/// message parser is also tried on every element of the tree). Parsed SyncML must be writable
/// and the written document must parse again.
fn every_xml_parser(bytes: &[u8]) {
    if let Ok(msg) = SyncMl::parse_bytes(bytes) {
        let doc = msg.to_document();
        let again = SyncMl::parse(&doc);
        assert!(again.is_ok(), "written SyncML does not parse: {again:?}\n{doc}");
    }
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(env) = parse_envelope(text) {
        let _ = Discover::parse(&env.body);
        let _ = GetPolicies::parse(&env.body);
        if let Ok(rst) = RequestSecurityToken::parse(&env.body) {
            let _ = rst.context_item("DeviceID");
            every_der_parser(match &rst.token {
                TokenRequest::Pkcs10(d) | TokenRequest::Pkcs7(d) => d,
            });
        }
    }
    if let Ok(root) = xml::parse(text) {
        for e in all_elements(&root) {
            let _ = Discover::parse(e);
            let _ = GetPolicies::parse(e);
            let _ = RequestSecurityToken::parse(e);
            let _ = SyncMl::from_element(e);
            if let Some(c) = Command::from_element(e) {
                let _ = c.to_el().to_xml();
            }
            let _ = SyncBody::from_element(e).to_el().to_xml();
        }
    }
}

fn every_der_parser(der: &[u8]) {
    let _ = pki::parse_csr(der, 2048);
    let _ = pki::parse_renewal(der, 2048);
    let _ = pki::inspect_certificate(der);
}

fn every_text_parser(s: &str) {
    let _ = tokens::verify(TOKEN_KEY, s, 1_900_000_000);
    let _ = percent_decode(s);
    let _ = form_decode(s);
    let _ = validate_appru(Some(s), true);
    let _ = validate_appru(Some(s), false);
    let _ = CommandRequest::from_json(s.as_bytes());
    let _ = xml::parse(s);
    let _ = parse_envelope(s);
}

fn config_names() -> &'static [&'static str] {
    &[
        "AUTH_POLICY",
        "PUBLIC_BASE_URL",
        "MANAGEMENT_BASE_URL",
        "ORG_NAME",
        "CERT_VALIDITY_DAYS",
        "RENEW_PERIOD_DAYS",
        "RENEW_RETRY_DAYS",
        "POLL_SCHEDULE",
        "SSP_HYPERLINK",
        "SERVER_ROOT_CERT_HASH",
        "ADMIN_TOKEN",
        "PASSWORD_ITERATIONS",
        "MAX_COMMAND_ATTEMPTS",
        "ALLOW_LOOPBACK_APPRU",
        "LOGIN_TOKEN_TTL_SECONDS",
        "LOGIN_MAX_FAILURES",
        "LOGIN_WINDOW_SECONDS",
    ]
}

// ---- properties -------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn xml_parsers_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        every_xml_parser(&bytes);
    }

    #[test]
    fn xml_parsers_survive_markup_soup(parts in prop::collection::vec(prop_oneof![
        Just("<".to_string()), Just(">".to_string()), Just("</".to_string()), Just("/>".to_string()),
        Just("<a>".to_string()), Just("</a>".to_string()), Just("&".to_string()), Just("&#".to_string()),
        Just("<![CDATA[".to_string()), Just("]]>".to_string()), Just("<!--".to_string()), Just("-->".to_string()),
        Just("<?xml version=\"1.0\"?>".to_string()), Just("<!DOCTYPE a>".to_string()),
        Just(" xmlns=\"SYNCML:SYNCML1.2\"".to_string()), Just(" xmlns:p=\"urn:p\"".to_string()), Just("p:".to_string()),
        Just("=\"".to_string()), Just("\"".to_string()), Just("SyncML".to_string()), Just("SyncHdr".to_string()),
        Just("SyncBody".to_string()), Just("Atomic".to_string()), Just("Item".to_string()), Just("Data".to_string()),
        "[a-zA-Z0-9 ;#x]{0,6}",
    ], 0..64)) {
        every_xml_parser(parts.concat().as_bytes());
    }

    #[test]
    fn xml_parsers_survive_mutated_captures(which in any::<Index>(), ms in mutations()) {
        let (_, seed) = &captures()[which.index(captures().len())];
        every_xml_parser(&mutate(seed.clone(), &ms));
    }

    #[test]
    fn der_parsers_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        every_der_parser(&bytes);
        // And behind a plausible outer header, so that the walkers get past the first element.
        let mut framed = vec![0x30, 0x82, (bytes.len() >> 8) as u8, bytes.len() as u8];
        framed.extend_from_slice(&bytes);
        every_der_parser(&framed);
    }

    #[test]
    fn der_parsers_survive_mutated_der(which in any::<Index>(), ms in mutations()) {
        let seed = &der_seeds()[which.index(der_seeds().len())];
        every_der_parser(&mutate(seed.clone(), &ms));
    }

    #[test]
    fn der_inside_wstep_survives_mutation(which in any::<Index>(), ms in mutations()) {
        // A mutated token re-wrapped in a well-formed RST: the path a device's bytes take.
        let seed = &der_seeds()[which.index(der_seeds().len())];
        let token = encode_base64(&mutate(seed.clone(), &ms));
        let body = format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><wst:RequestSecurityToken xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType><wsse:BinarySecurityToken ValueType="http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10">{token}</wsse:BinarySecurityToken></wst:RequestSecurityToken></s:Body></s:Envelope>"#
        );
        every_xml_parser(body.as_bytes());
    }

    #[test]
    fn text_parsers_survive_arbitrary_strings(s in any::<String>()) {
        every_text_parser(&s);
    }

    #[test]
    fn text_parsers_survive_mutated_seeds(which in 0..(COMMAND_SEEDS.len() + 3), ms in mutations()) {
        let seed = match which {
            i if i < COMMAND_SEEDS.len() => COMMAND_SEEDS[i].to_string(),
            i if i == COMMAND_SEEDS.len() => real_token(),
            i if i == COMMAND_SEEDS.len() + 1 => FORM_SEED.to_string(),
            _ => "ms-app://windows.immersivecontrolpanel/x".to_string(),
        };
        let bytes = mutate(seed.into_bytes(), &ms);
        let _ = CommandRequest::from_json(&bytes);
        every_text_parser(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_writer_always_writes_well_formed_xml(text in any::<String>(), value in any::<String>()) {
        // Whatever reaches the writer (a device's echoed LocURI, an admin's data), the document
        // is XML 1.0: characters outside `Char` are replaced, the rest escaped.
        let doc = xml::El::new("r").attr("v", value.clone()).child(xml::El::leaf("t", text.clone())).to_document();
        prop_assert!(xml::check_chars(&doc).is_ok());
        let back = xml::parse(&doc);
        prop_assert!(back.is_ok(), "{:?}: {}", back, doc);
        let back = back.unwrap();
        let clean = |s: &str| s.chars().map(|c| if xml::is_xml_char(c) { c } else { '\u{FFFD}' }).collect::<String>();
        prop_assert_eq!(back.attr("v").unwrap(), clean(&value));
        let expected = clean(&text);
        prop_assert_eq!(back.elements().next().unwrap().text(), expected.trim());
    }

    #[test]
    fn config_survives_arbitrary_settings(values in prop::collection::vec(
        prop::option::of(prop_oneof![any::<String>(), "[0-9x, ]{0,12}", Just("OnPremise".to_string())]),
        17,
    )) {
        let names = config_names();
        let lookup = |name: &str| names.iter().position(|n| *n == name).and_then(|i| values[i].clone());
        let _ = Config::from_lookup(&lookup);
    }
}

// ---- fixed hostile shapes ---------------------------------------------------------------------

#[test]
fn ten_thousand_deep_nesting_is_a_typed_error_everywhere() {
    let deep = |open: &str, close: &str| open.repeat(10_000) + &close.repeat(10_000);
    let inputs = [
        deep("<a>", "</a>"),
        format!(
            r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr/><SyncBody>{}</SyncBody></SyncML>"#,
            deep("<Atomic>", "</Atomic>")
        ),
        format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>{}</s:Body></s:Envelope>"#,
            deep("<x>", "</x>")
        ),
    ];
    for input in &inputs {
        assert_eq!(xml::parse(input), Err(xml::XmlError::TooDeep));
        assert!(SyncMl::parse_bytes(input.as_bytes()).is_err());
        assert!(parse_envelope(input).is_err());
    }
    // JSON nested 10,000 deep: serde_json's own recursion limit, a 400 at the API.
    let json = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(CommandRequest::from_json(json.as_bytes()).is_err());
    let json = format!(r#"{{"type":"get","uri":{}"./a"{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert!(CommandRequest::from_json(json.as_bytes()).is_err());
}

#[test]
fn ten_thousand_deep_der_is_an_error() {
    // 10,000 nested constructed elements, definite lengths, each one wrapping the next.
    let mut der = vec![0x05, 0x00];
    for _ in 0..10_000 {
        let len = der.len();
        let mut outer = vec![0x30, 0x84];
        outer.extend_from_slice(&(len as u32).to_be_bytes());
        outer.extend_from_slice(&der);
        der = outer;
    }
    every_der_parser(&der);
    assert!(pki::parse_csr(&der, 2048).is_err());
    assert!(pki::parse_renewal(&der, 2048).is_err());
    assert!(pki::inspect_certificate(&der).is_err());
}

#[test]
fn huge_and_odd_values_are_errors() {
    let mega = "A".repeat(1024 * 1024);
    every_xml_parser(format!("<a>{mega}</a>").as_bytes());
    every_xml_parser(format!(r#"<a b="{mega}"/>"#).as_bytes());
    every_text_parser(&mega);
    every_text_parser(&"%".repeat(100_000));
    assert!(decode_base64(&"=".repeat(1000)).is_none() || decode_base64(&"=".repeat(1000)).is_some());
    // Many siblings rather than depth.
    let wide = format!(
        r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr/><SyncBody>{}</SyncBody></SyncML>"#,
        "<Get/>".repeat(50_000)
    );
    every_xml_parser(wide.as_bytes());
}

#[test]
fn a_megabyte_of_attributes_or_namespaces_costs_little() {
    // Duplicate-attribute checks and prefix lookups grow with the square of these counts: a
    // megabyte of them (what MDM.svc accepts) cost 9-19 s of CPU natively (release build)
    // before the limits of `xml::MAX_ATTRIBUTES` and `xml::MAX_NAMESPACES_IN_SCOPE`.
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let decls: String = (0..50_000).map(|i| format!(" xmlns:p{i}=\"u{i}\"")).collect();
    let few_decls: String = (0..60).map(|i| format!(" xmlns:p{i}=\"u{i}\"")).collect();
    let flood = [
        format!(r#"<SyncML xmlns="SYNCML:SYNCML1.2"{attrs}><SyncHdr/><SyncBody/></SyncML>"#),
        format!(r#"<SyncML xmlns="SYNCML:SYNCML1.2"{decls}><SyncHdr/><SyncBody/></SyncML>"#),
        format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x{attrs}/></s:Body></s:Envelope>"#
        ),
    ];
    for doc in &flood {
        let t = std::time::Instant::now();
        assert_eq!(xml::parse(doc), Err(xml::XmlError::TooManyAttributes));
        // Linear: well under a second even unoptimised.
        assert!(t.elapsed() < std::time::Duration::from_secs(3), "{:?}", t.elapsed());
        every_xml_parser(doc.as_bytes());
    }
    // Under the limits, many elements each resolved against a full scope stay linear.
    let siblings = format!(
        r#"<SyncML xmlns="SYNCML:SYNCML1.2"{few_decls}><SyncHdr/><SyncBody>{}</SyncBody></SyncML>"#,
        "<p1:b/>".repeat(60_000)
    );
    let t = std::time::Instant::now();
    assert!(xml::parse(&siblings).is_ok());
    assert!(t.elapsed() < std::time::Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn mutation_helper_mutates() {
    // The properties above are only as good as the mutations: they change the input.
    let seed = b"<a><b>text</b></a>".to_vec();
    assert_eq!(mutate(seed.clone(), &[Mutation::Flip(0, 1)])[0], b'<' ^ 1);
    assert!(mutate(seed.clone(), &[Mutation::Truncate(0)]).is_empty());
    let dup = mutate(seed.clone(), &[Mutation::Duplicate { from: 3, len: 2, to: 0 }]);
    assert_eq!(dup, b"<b><a><b>text</b></a>");
    assert_eq!(mutate(seed.clone(), &[Mutation::Delete(0, 2)]), seed[3..].to_vec());
    assert_eq!(mutate(seed.clone(), &[Mutation::Insert(usize::MAX, vec![0xFF])]).len(), seed.len() + 1);
}
