//! Both provisioning document shapes, built from named fields, parsed back and compared field by
//! field with Microsoft's samples: [MS-MDE] §3.6 and §3.5.4.1.1.2 for Windows 8.1, the
//! [MS-MDE2] §2.2.9.1 and Learn samples for Windows 10/11.
//!
//! A document is flattened into its fields: one per `parm` (where it sits, its name, value and
//! datatype) and one per empty characteristic. Certificate thumbprints, the DMClient provider
//! and the 8.1 account id become placeholders in paths; registry key paths are compared without
//! case (the registry ignores it, and the 8.1 sample spells `Software` and `SOFTWARE`);
//! `EncodedCertificate` values are not compared (the samples' certificates are Microsoft's).
//! Every other difference is listed, with its reason, in the test that allows it.

use edgemdm::proto::provdoc::{
    AppAuth, CertStore, ClientGeneration, DmAccount, DmClient, DocShape, Poll, PrivateKeyContainer,
    ProvisioningDoc, RenewSettings, RenewalDoc, StoredCert, Win81Settings,
};
use edgemdm::xml::{self, Element};

const WIN81_DOC: &str = include_str!("../src/proto/testdata/win81_provisioning_doc.msmde.xml");
const WIN81_RENEWAL: &str = include_str!("../src/proto/testdata/win81_provisioning_doc_renewal.msmde.xml");
const WIN10_ONPREMISE: &str = include_str!("../src/proto/testdata/provisioning_doc_onpremise.xml");
const WIN10_DEVICE: &str = include_str!("../src/proto/testdata/provisioning_doc_device_context.msmde2.xml");
const WIN10_RENEWAL: &str = include_str!("../src/proto/testdata/provisioning_doc_renewal.xml");

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Field {
    path: String,
    name: String,
    value: Option<String>,
    datatype: Option<String>,
}

/// Parent paths whose children are certificates named by their thumbprint.
const CERT_PARENTS: [&str; 4] = [
    "CertificateStore/Root/System",
    "CertificateStore/CA/System",
    "CertificateStore/My/User",
    "CertificateStore/My/System",
];

fn segment(parent: &str, c: &Element) -> String {
    let kind = c.attr("type").unwrap_or_default();
    if kind.starts_with("HKLM\\") {
        let key = kind.to_ascii_lowercase();
        return match key.strip_prefix(r"hklm\security\provisioning\omadm\accounts\") {
            Some(_) => r"hklm\security\provisioning\omadm\accounts\{account}".into(),
            None => key,
        };
    }
    if CERT_PARENTS.contains(&parent) && kind != "PrivateKeyContainer" {
        return "{thumbprint}".into();
    }
    if parent == "DMClient/Provider" {
        return "{provider}".into();
    }
    if kind == "APPAUTH" {
        let level = c
            .elements()
            .find(|p| p.name == "parm" && p.attr("name") == Some("AAUTHLEVEL"))
            .and_then(|p| p.attr("value"))
            .unwrap_or_default();
        return format!("APPAUTH[{level}]");
    }
    kind.to_string()
}

fn flatten(e: &Element, path: &str, out: &mut Vec<Field>) {
    for c in e.elements() {
        match c.name.as_str() {
            "parm" => {
                let name = c.attr("name").unwrap_or_default().to_string();
                let value = if name == "EncodedCertificate" {
                    None
                } else {
                    c.attr("value").map(|v| v.trim().to_string())
                };
                let datatype = c.attr("datatype").map(str::to_string);
                out.push(Field { path: path.to_string(), name, value, datatype });
            }
            "characteristic" => {
                let seg = segment(path, c);
                let p = if path.is_empty() { seg } else { format!("{path}/{seg}") };
                if c.elements().next().is_none() {
                    out.push(Field {
                        path: p.clone(),
                        name: "(empty characteristic)".into(),
                        value: None,
                        datatype: None,
                    });
                }
                flatten(c, &p, out);
            }
            other => panic!("unexpected element {other} under {path:?}"),
        }
    }
}

fn fields(doc: &str) -> Vec<Field> {
    let root = xml::parse(doc.trim_start()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(root.name, "wap-provisioningdoc");
    assert_eq!(root.attr("version"), Some("1.1"));
    let mut out = Vec::new();
    flatten(&root, "", &mut out);
    out
}

fn field<'a>(fs: &'a mut [Field], path: &str, name: &str) -> &'a mut Field {
    let mut hits = fs.iter_mut().filter(|f| f.path == path && f.name == name);
    let f = hits.next().unwrap_or_else(|| panic!("no {path} {name}"));
    assert!(hits.next().is_none(), "{path} {name} twice");
    f
}

/// Repairs the two defects the fixture index lists for the [MS-MDE] §3.6 sample, and nothing
/// else: the comment before the intermediate certificate, opened with an em dash and "closed"
/// with a private-use symbol (U+F0E0), and the raw `&` in `SSLCLIENTCERTSEARCHCRITERIA`.
fn repaired_win81_sample() -> String {
    let comment = "<!\u{2014}the thumbprint of the intermediate certificate \u{f0e0}\n";
    assert_eq!(WIN81_DOC.matches(comment).count(), 1);
    assert_eq!(WIN81_DOC.matches("&Stores=").count(), 1);
    let doc = WIN81_DOC.replace(comment, "").replace("&Stores=", "&amp;Stores=");
    assert!(xml::parse(WIN81_DOC).is_err(), "the sample as published is not well-formed");
    doc
}

/// The sample's values where they are the server's to choose, so that every value compares.
fn win81_doc() -> ProvisioningDoc {
    ProvisioningDoc {
        root: StoredCert { thumbprint: "5BE128213D05DC6CB87A059469130FC6686992EF".into(), der: vec![1] },
        client: StoredCert { thumbprint: "B692158116B7B82EDA4600FF4145414933B0D5AB".into(), der: vec![2] },
        store: CertStore::User,
        renew: RenewSettings { renew_period_days: 363, retry_interval_days: 4, server_url: None },
        account: DmAccount {
            provider_id: "Contoso Management Service".into(),
            name: "BecMobile".into(),
            addr: "https://ContosoManagementService.com/MDMHandler".into(),
            client_cert_subject_cn: "e4c6b893-07a7-4b24-878e-9d8602c3d289".into(),
            store: CertStore::User,
            server_auth: AppAuth { name: None, secret: "dummy".into(), nonce_b64: "nonce".into() },
            device_auth: AppAuth {
                name: Some("dummy".into()),
                secret: "dummy".into(),
                nonce_b64: "nonce".into(),
            },
        },
        poll: Poll::default(),
        shape: DocShape::Windows81(Win81Settings {
            ssp_hyperlink: Some("http://go.microsoft.com/fwlink/?LinkId=255310".into()),
            server_root_cert_hash: Some("5BE128213D05DC6CB87A059469130FC6686992EF".into()),
            device_name: String::new(),
            account_id: "037B1F0D3842015588E753CDE76EC724".into(),
            key_container: PrivateKeyContainer::default(),
        }),
    }
}

const APP: &str = "APPLICATION";
const CERT_LOCATION: &str = r"Registry/hklm\software\windows\currentversion\mdm\machineenrollment";
const ACCOUNT: &str = r"Registry/hklm\security\provisioning\omadm\accounts\{account}";

#[test]
fn windows81_document_matches_the_ms_mde_sample_field_by_field() {
    let mut expected = fields(&repaired_win81_sample());
    // Certificates are ignored: our CA is single-tier, so there is no CA/System intermediate.
    let before = expected.len();
    expected.retain(|f| !f.path.starts_with("CertificateStore/CA/"));
    assert_eq!(before - expected.len(), 1);
    // This server speaks XML SyncML; the sample asks for WBXML.
    field(&mut expected, APP, "DEFAULTENCODING").value = Some("application/vnd.syncml.dm+xml".into());
    // The sample installs the certificate in My/User but records My\System in the registry;
    // ours records the store it installs into.
    field(&mut expected, CERT_LOCATION, "SslClientCertStore").value = Some("MY%5CUser".into());
    field(&mut expected, ACCOUNT, "SslClientCertReference").value =
        Some("My;User;B692158116B7B82EDA4600FF4145414933B0D5AB".into());

    let mut ours = fields(&win81_doc().to_xml());
    // Percent-escapes and store names are case-insensitive (`%3d`/`%3D`, `MY`/`My`).
    for f in [&mut expected, &mut ours] {
        for (path, name) in
            [(APP, "SSLCLIENTCERTSEARCHCRITERIA"), (CERT_LOCATION, "SslClientCertSubjectName")]
        {
            let v = &mut field(f, path, name).value;
            *v = v.as_ref().map(|s| s.to_ascii_lowercase());
        }
    }
    assert_eq!(ours, expected);
}

#[test]
fn windows81_renewal_matches_the_ms_mde_sample() {
    let d = RenewalDoc {
        root: StoredCert { thumbprint: "5BE128213D05DC6CB87A059469130FC6686992EF".into(), der: vec![1] },
        client: StoredCert { thumbprint: "B692158116B7B82EDA4600FF4145414933B0D5AB".into(), der: vec![2] },
        store: CertStore::User,
        provider_id: "Contoso Management Service".into(),
        generation: ClientGeneration::Windows81,
    };
    let expected = fields(WIN81_RENEWAL);
    assert_eq!(expected.len(), 1, "only My/User/<thumbprint>/EncodedCertificate");
    assert_eq!(fields(&d.to_xml()), expected);
    let doc = xml::parse(&d.to_xml()).unwrap();
    let thumbprint = doc.elements().next().unwrap().elements().next().unwrap().elements().next().unwrap();
    let cert = thumbprint.elements().next().unwrap();
    assert_eq!(cert.attr("type"), Some("B692158116B7B82EDA4600FF4145414933B0D5AB"));
}

/// The Windows 10 samples' values where they are the server's to choose.
fn win10_doc(store: CertStore, upn: Option<&str>) -> ProvisioningDoc {
    ProvisioningDoc {
        root: StoredCert { thumbprint: "031336C933CC7E228B88880D78824FB2909A0A2F".into(), der: vec![1] },
        client: StoredCert { thumbprint: "F9A4F20FC50D990FDD0E3DB9AFCBF401818D5462".into(), der: vec![2] },
        store,
        renew: RenewSettings { renew_period_days: 60, retry_interval_days: 4, server_url: None },
        account: DmAccount {
            provider_id: "TestMDMServer".into(),
            name: "Microsoft".into(),
            addr: "https://DM.contoso.com:443/omadm/Windows.ashx".into(),
            client_cert_subject_cn: "Administrator".into(),
            store,
            server_auth: AppAuth {
                name: None,
                secret: "password1".into(),
                nonce_b64: "B64encodedBinaryNonceInsertedHere".into(),
            },
            device_auth: AppAuth {
                name: Some("testclient".into()),
                secret: "password2".into(),
                nonce_b64: "AAAA".into(),
            },
        },
        poll: Poll {
            first_interval: 15,
            first_count: 8,
            second_interval: 3,
            second_count: 5,
            remaining_interval: 1560,
            remaining_count: 0,
        },
        shape: DocShape::Windows10(DmClient {
            ent_dmid: "DEV1".into(),
            ent_device_name: Some("Administrator_Windows".into()),
            upn: upn.map(str::to_string),
            require_message_signing: false,
        }),
    }
}

/// Ours and a Windows 10 sample hold the same fields, in any order (the samples order them
/// differently from each other), apart from the listed differences.
fn assert_matches_win10_sample(sample: &str, ours: ProvisioningDoc) {
    let mut expected = fields(sample);
    let appsrv = "APPLICATION/APPAUTH[APPSRV]";
    // The sample's client certificate subject is a full DN (double-escaped `&amp;amp;` in the
    // Learn copy); ours is `CN=<device>`, compared in the enrollment tests.
    field(&mut expected, APP, "SSLCLIENTCERTSEARCHCRITERIA").value = None;
    // XML SyncML, not WBXML; and the device authenticates with DIGEST (APPSRV BASIC in the
    // samples), which adds the digest nonce.
    field(&mut expected, APP, "DEFAULTENCODING").value = Some("application/vnd.syncml.dm+xml".into());
    field(&mut expected, appsrv, "AAUTHTYPE").value = Some("DIGEST".into());
    expected.push(Field {
        path: appsrv.into(),
        name: "AAUTHDATA".into(),
        value: Some("AAAA".into()),
        datatype: None,
    });
    // EntDMID: the device id, needed before the first renewal ([MS-MDE2] §2.2.9.3).
    expected.push(Field {
        path: "DMClient/Provider/{provider}".into(),
        name: "EntDMID".into(),
        value: Some("DEV1".into()),
        datatype: Some("string".into()),
    });
    let mut ours = fields(&ours.to_xml());
    field(&mut ours, APP, "SSLCLIENTCERTSEARCHCRITERIA").value = None;
    expected.sort();
    ours.sort();
    assert_eq!(ours, expected);
}

#[test]
fn windows10_user_document_matches_the_learn_sample_field_by_field() {
    assert_matches_win10_sample(WIN10_ONPREMISE, win10_doc(CertStore::User, None));
}

#[test]
fn windows10_device_document_matches_the_ms_mde2_sample_field_by_field() {
    // The sample's one defect that stops a parser: the raw `&` (fixture index).
    assert!(xml::parse(WIN10_DEVICE).is_err());
    let sample = WIN10_DEVICE.replacen("&Stores=", "&amp;Stores=", 1);
    let ours = win10_doc(CertStore::System, Some("UserPrincipalName@domain.com"));
    assert_matches_win10_sample(&sample, ours);
}

#[test]
fn windows10_documents_never_carry_the_81_fields() {
    for doc in [win10_doc(CertStore::User, None), win10_doc(CertStore::System, Some("u@e.x"))] {
        let fs = fields(&doc.to_xml());
        assert!(fs.iter().all(|f| !f.path.starts_with("Registry")), "{fs:?}");
        for name in
            ["SSPHyperlink", "ServerList", "CRLCheck", "ROLE", "KeySpec", "ContainerName", "ProviderType"]
        {
            assert!(fs.iter().all(|f| f.name != name), "{name}");
        }
    }
    // And the 8.1 document carries no Windows 10 node.
    let fs = fields(&win81_doc().to_xml());
    assert!(fs.iter().all(|f| !f.path.starts_with("DMClient") && !f.path.contains("WSTEP")), "{fs:?}");
}

#[test]
fn one_schedule_gives_the_same_cadence_to_both_generations() {
    let poll = Poll::parse("7x3,45x10,1440x0").unwrap();
    let w10 = ProvisioningDoc { poll, ..win10_doc(CertStore::User, None) };
    let w81 = ProvisioningDoc { poll, ..win81_doc() };
    let value = |fs: &[Field], path: &str, name: &str| {
        let mut fs = fs.to_vec();
        field(&mut fs, path, name).value.clone().unwrap().parse::<u32>().unwrap()
    };
    let (a, b) = (fields(&w10.to_xml()), fields(&w81.to_xml()));
    let p = "DMClient/Provider/{provider}/Poll";
    let r = r"Registry/hklm\security\machineenrollment\omadmretry";
    let w10_sets = [
        (value(&a, p, "IntervalForFirstSetOfRetries"), value(&a, p, "NumberOfFirstRetries")),
        (value(&a, p, "IntervalForSecondSetOfRetries"), value(&a, p, "NumberOfSecondRetries")),
        (
            value(&a, p, "IntervalForRemainingScheduledRetries"),
            value(&a, p, "NumberOfRemainingScheduledRetries"),
        ),
    ];
    let w81_sets = [
        (value(&b, r, "AuxRetryInterval"), value(&b, r, "AuxNumRetries")),
        (value(&b, r, "RetryInterval"), value(&b, r, "NumRetries")),
        (value(&b, r, "Aux2RetryInterval"), value(&b, r, "Aux2NumRetries")),
    ];
    assert_eq!(w10_sets, [(7, 3), (45, 10), (1440, 0)]);
    assert_eq!(w81_sets, w10_sets);
}

#[test]
fn windows10_renewal_matches_the_learn_sample() {
    let d = RenewalDoc {
        root: StoredCert { thumbprint: "AA".repeat(20), der: vec![1] },
        client: StoredCert { thumbprint: "CC".repeat(20), der: vec![2] },
        store: CertStore::User,
        provider_id: "TestMDMServer".into(),
        generation: ClientGeneration::Windows10,
    };
    let mut expected = fields(WIN10_RENEWAL);
    let mut ours = fields(&d.to_xml());
    expected.sort();
    ours.sort();
    assert_eq!(ours, expected);
}
