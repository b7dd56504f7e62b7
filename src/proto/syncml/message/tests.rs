use super::*;

macro_rules! fixture {
    ($name:literal) => {
        ($name, include_str!(concat!("../testdata/", $name)))
    };
}

/// Microsoft's published SyncML samples, kept byte for byte (defects included) in
/// `src/proto/syncml/testdata/`: `*.msmdm.xml` from [MS-MDM] (§2.2.2, §3, §3.1.5, §3.2.5.1.5–6,
/// §4), the others from Microsoft Learn ("OMA DM protocol support", "Structure of OMA DM
/// provisioning files", "Understanding ADMX policies", "Microsoft Entra integration with MDM",
/// "Disconnecting from the management infrastructure (unenrollment)" and the DMClient,
/// RemoteLock and EnterpriseDesktopAppManagement CSP pages).
const FIXTURES: &[(&str, &str)] = &[
    fixture!("admx_disable_replace_request.xml"),
    fixture!("admx_enable_replace_request.xml"),
    fixture!("admx_enable_replace_response_status.xml"),
    fixture!("admx_notconfigured_delete_request.xml"),
    fixture!("admx_notconfigured_delete_response_status.xml"),
    fixture!("alert_1224_deviceprepsync.msmdm.xml"),
    fixture!("alert_1224_loginstatus.xml"),
    fixture!("alert_1224_synctype.msmdm.xml"),
    fixture!("cmd_add_snippet.msmdm.xml"),
    fixture!("cmd_alert_1201_snippet.msmdm.xml"),
    fixture!("cmd_atomic_snippet.msmdm.xml"),
    fixture!("cmd_delete_snippet.msmdm.xml"),
    fixture!("cmd_exec_snippet.msmdm.xml"),
    fixture!("cmd_get_snippet.msmdm.xml"),
    fixture!("cmd_replace_snippet.msmdm.xml"),
    fixture!("dmclient_exchangeid_get.xml"),
    fixture!("dmclient_keepalive_requestpending_alert.xml"),
    fixture!("dmclient_managementserveraddresslist_replace.xml"),
    fixture!("dmclient_unenroll_exec.xml"),
    fixture!("edam_alert_win32csp_install.xml"),
    fixture!("edam_common_response.xml"),
    fixture!("edam_csp_version_get.xml"),
    fixture!("edam_msi_install_device.xml"),
    fixture!("edam_msi_install_user.xml"),
    fixture!("edam_msi_status_get.xml"),
    fixture!("edam_msi_uninstall_delete.xml"),
    fixture!("entra_aadusertoken_alert.xml"),
    fixture!("entra_loginstatus_alert.xml"),
    fixture!("message_required_elements.msmdm.xml"),
    fixture!("remotelock_lock_exec.xml"),
    fixture!("remotelock_lockandresetpin_sequence.xml"),
    fixture!("replace_update_device_setting.xml"),
    fixture!("resp_results_snippet.msmdm.xml"),
    fixture!("resp_status_snippet.msmdm.xml"),
    fixture!("server_message_get_swv.msmdm.xml"),
    fixture!("server_message_get_swv.xml"),
    fixture!("session_msg1_client_init.msmdm.xml"),
    fixture!("session_msg2_server_status_get.msmdm.xml"),
    fixture!("session_msg3_client_status_results.msmdm.xml"),
    fixture!("syncbody_get_swv_fragment.xml"),
    fixture!("synchdr_server_fragment.xml"),
    fixture!("unenroll_alert1226_first_package.xml"),
    fixture!("unenroll_alert1226_server_initiated_fragment.xml"),
];

fn fixture(name: &str) -> &'static str {
    FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).expect(name)
}

fn msg(name: &str) -> SyncMl {
    SyncMl::parse(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn body_fragment(name: &str) -> SyncBody {
    let root = xml::parse(fixture(name)).unwrap();
    assert_eq!(root.name, "SyncBody", "{name}");
    SyncBody::from_element(&root)
}

fn command_fragment(name: &str) -> Command {
    Command::from_element(&xml::parse(fixture(name)).unwrap()).unwrap()
}

/// Build → parse gives back the same value.
fn round_trip_msg(m: &SyncMl) {
    let doc = m.to_document();
    assert!(doc.starts_with("<?xml"), "{doc}");
    let back = SyncMl::parse(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    assert_eq!(&back, m, "{doc}");
    // And it is stable: building again gives the same bytes.
    assert_eq!(back.to_document(), doc);
}

fn round_trip_cmd(c: &Command) {
    let el = El::new("SyncBody").attr("xmlns", NS_SYNCML).child(c.to_el());
    let back = SyncBody::from_element(&xml::parse(&el.to_xml()).unwrap());
    assert_eq!(back.commands, vec![c.clone()], "{}", el.to_xml());
}

#[test]
fn every_fixture_is_handled_without_panicking() {
    let mut parsed = 0;
    for (name, text) in FIXTURES {
        // Whole-document parse: Ok for messages, a typed error for everything else.
        let whole = SyncMl::parse(text);
        let Ok(root) = xml::parse(text) else {
            assert!(matches!(whole, Err(SyncMlError::Xml(_))), "{name}");
            continue;
        };
        match root.name.as_str() {
            "SyncML" => {
                if let Ok(m) = &whole {
                    round_trip_msg(m);
                    parsed += 1;
                } else if let Some(body) = root.elements().find(|e| e.name == "SyncBody") {
                    // Header-less samples (EDAM, ADMX): their commands still parse.
                    for c in &SyncBody::from_element(body).commands {
                        round_trip_cmd(c);
                    }
                    parsed += 1;
                }
            }
            "SyncBody" => {
                assert!(matches!(whole, Err(SyncMlError::NotSyncMl { .. })), "{name}");
                let b = SyncBody::from_element(&root);
                assert!(!b.commands.is_empty(), "{name}");
                for c in &b.commands {
                    round_trip_cmd(c);
                }
                parsed += 1;
            }
            _ => {
                assert!(matches!(whole, Err(SyncMlError::NotSyncMl { .. })), "{name}");
                if let Some(c) = Command::from_element(&root) {
                    round_trip_cmd(&c);
                    parsed += 1;
                }
            }
        }
    }
    assert!(parsed >= 35, "only {parsed} fixtures parsed");
}

#[test]
fn broken_fixtures_fail_cleanly() {
    for name in [
        "replace_update_device_setting.xml",    // two top-level elements
        "entra_aadusertoken_alert.xml",         // prose before the XML
        "unenroll_alert1226_first_package.xml", // xmlns=&#39;…&#39;
        "dmclient_exchangeid_get.xml",          // <ProviderID> placeholder
        "dmclient_managementserveraddresslist_replace.xml",
        "dmclient_unenroll_exec.xml", // typographic quotes
    ] {
        assert!(matches!(SyncMl::parse(fixture(name)), Err(SyncMlError::Xml(_))), "{name}");
    }
    // Well-formed but not a usable message: no SyncHdr (EDAM, ADMX) or an empty one.
    for name in [
        "edam_csp_version_get.xml",
        "edam_msi_install_user.xml",
        "edam_msi_install_device.xml",
        "admx_enable_replace_request.xml",
        "admx_notconfigured_delete_request.xml",
    ] {
        assert_eq!(SyncMl::parse(fixture(name)), Err(SyncMlError::Missing("SyncHdr")), "{name}");
    }
    assert!(SyncMl::parse(fixture("edam_common_response.xml")).is_err());
    assert!(matches!(
        SyncMl::parse(fixture("synchdr_server_fragment.xml")),
        Err(SyncMlError::NotSyncMl { .. })
    ));
}

#[test]
fn non_syncml_inputs_are_typed_errors() {
    assert_eq!(SyncMl::parse_bytes(&[0xff, 0xfe, 0x00]), Err(SyncMlError::NotUtf8));
    assert!(matches!(SyncMl::parse(""), Err(SyncMlError::Xml(_))));
    assert!(matches!(SyncMl::parse("{\"json\":1}"), Err(SyncMlError::Xml(_))));
    assert!(matches!(
        SyncMl::parse(r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#),
        Err(SyncMlError::NotSyncMl { .. })
    ));
    assert!(matches!(
        SyncMl::parse(r#"<SyncML xmlns="urn:other"><SyncHdr/><SyncBody/></SyncML>"#),
        Err(SyncMlError::NotSyncMl { .. })
    ));
    assert_eq!(
        SyncMl::parse(
            r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><MsgID>1</MsgID></SyncHdr><SyncBody/></SyncML>"#
        ),
        Err(SyncMlError::Missing("SyncHdr/SessionID"))
    );
    assert_eq!(
        SyncMl::parse(r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr/></SyncML>"#),
        Err(SyncMlError::Missing("SyncBody"))
    );
}

#[test]
fn session_fixtures() {
    let m1 = msg("session_msg1_client_init.msmdm.xml");
    assert_eq!(m1.hdr.session_id, "1");
    assert_eq!(m1.hdr.msg_id, "1");
    assert_eq!(m1.hdr.target.loc_uri, "https://contoso.com/management-server");
    assert_eq!(m1.hdr.source.loc_uri, "{unique device id}");
    assert!(m1.body.is_final);
    assert_eq!(m1.body.commands.len(), 2);
    let Command::Alert(a) = &m1.body.commands[0] else { panic!() };
    assert_eq!((a.cmd_id.as_str(), a.data.as_str()), ("2", "1224"));
    assert_eq!(a.items[0].meta_type(), Some("com.microsoft/MDM/LoginStatus"));
    assert_eq!(a.items[0].data.as_deref(), Some("user"));
    let Command::Replace(r) = &m1.body.commands[1] else { panic!() };
    let devinfo: Vec<_> = r
        .items
        .iter()
        .map(|i| (i.source.as_ref().unwrap().loc_uri.as_str(), i.data.as_deref().unwrap()))
        .collect();
    assert_eq!(devinfo[3], ("./DevInfo/DmV", "1.3"));
    assert_eq!(devinfo.len(), 5);

    let m2 = msg("session_msg2_server_status_get.msmdm.xml");
    let names: Vec<_> = m2.body.commands.iter().map(|c| (c.name(), c.cmd_id())).collect();
    assert_eq!(names, [("Status", "1"), ("Get", "4"), ("Get", "5")]);

    let m3 = msg("session_msg3_client_status_results.msmdm.xml");
    assert_eq!(m3.body.commands.len(), 5);
    let Command::Status(s) = &m3.body.commands[1] else { panic!() };
    assert_eq!(
        (s.msg_ref.as_str(), s.cmd_ref.as_str(), s.cmd.as_str(), s.code()),
        ("1", "4", "Get", Some(200))
    );
    let Command::Results(r) = &m3.body.commands[3] else { panic!() };
    assert_eq!(r.cmd.as_deref(), Some("Get"));
    assert_eq!(r.items[0].meta_format(), Some("chr"));
    assert_eq!(r.items[0].source.as_ref().unwrap().loc_uri, "./DevDetail/SwV");
    let Command::Results(r) = &m3.body.commands[4] else { panic!() };
    assert_eq!(r.items[0].data.as_deref(), Some("[hardware version returned here]"));
    assert!(r.items[0].meta.is_none());

    let ka = msg("dmclient_keepalive_requestpending_alert.xml");
    assert!(!ka.body.is_final);
    assert_eq!(ka.hdr.session_id, "10");
    // Single-quoted root namespace.
    assert_eq!(msg("server_message_get_swv.xml").body.commands.len(), 1);
}

#[test]
fn variant_placements_and_namespaces() {
    // Type directly in Item beside an empty Meta.
    let b = body_fragment("alert_1224_synctype.msmdm.xml");
    let Command::Alert(a) = &b.commands[0] else { panic!() };
    assert_eq!(a.items[0].meta_type(), Some("com.microsoft.mdm.synctype"));
    // `syncml:metinf ` with a trailing space (if the XML layer accepts it).
    if let Ok(root) = xml::parse(fixture("entra_loginstatus_alert.xml")) {
        let Command::Alert(a) = &SyncBody::from_element(&root).commands[0] else { panic!() };
        assert_eq!(a.items[0].meta_type(), Some("com.microsoft/MDM/LoginStatus"));
    }
    // Meta before Target, Format/Type without namespace, CDATA data (trimmed).
    let root = xml::parse(fixture("admx_enable_replace_request.xml")).unwrap();
    let body = SyncBody::from_element(root.elements().next().unwrap());
    let Command::Replace(r) = &body.commands[0] else { panic!() };
    assert_eq!(r.items[0].meta_format(), Some("chr"));
    assert!(r.items[0].target.as_ref().unwrap().loc_uri.ends_with("PublishingAllowServer2"));
    assert!(r.items[0].data.as_deref().unwrap().starts_with("<enabled/><data id="));
    // Inline XML in Data (SYNCML1.1 EDAM sample) is kept as XML text.
    let root = xml::parse(fixture("edam_msi_install_user.xml")).unwrap();
    let body = SyncBody::from_element(root.elements().next().unwrap());
    let Command::Exec(e) = &body.commands[1] else { panic!() };
    let data = e.items[0].data.as_deref().unwrap();
    assert!(data.starts_with("<MsiInstallJob id=\"{9BD4F7CD-880A-40B5-B74C-1BEECB51E596}\">"), "{data}");
    assert!(xml::parse(data).unwrap().descendant_named("FileHash").is_some());
    // Nested commands keep their order.
    let Command::Sequence(s) = command_fragment("remotelock_lockandresetpin_sequence.xml") else { panic!() };
    let kids: Vec<_> = s.commands.iter().map(|c| (c.name(), c.cmd_id())).collect();
    assert_eq!(kids, [("Exec", "2"), ("Get", "3")]);
    assert_eq!(s.commands[0].children().len(), 0);
    let b = body_fragment("cmd_atomic_snippet.msmdm.xml");
    assert_eq!(b.commands[0].children().len(), 2);
    // A generic alert's Mark and Source.
    let Command::Alert(a) = command_fragment("edam_alert_win32csp_install.xml") else { panic!() };
    assert_eq!(a.items[0].meta.as_ref().unwrap().mark.as_deref(), Some("informational"));
    assert!(a.items[0].source.as_ref().unwrap().loc_uri.ends_with("/DownloadInstall"));
}

trait Named {
    fn descendant_named(&self, name: &str) -> Option<&Element>;
}

impl Named for Element {
    fn descendant_named(&self, name: &str) -> Option<&Element> {
        self.elements().find_map(|e| if e.name == name { Some(e) } else { e.descendant_named(name) })
    }
}

fn meta(format: &str, type_: Option<&str>) -> Option<Meta> {
    Some(Meta { format: Some(format.into()), type_: type_.map(Into::into), ..Default::default() })
}

#[test]
fn every_command_and_status_kind_round_trips() {
    let item = |uri: &str, data: Option<&str>| Item {
        target: Some(Target::new(uri)),
        data: data.map(Into::into),
        meta: meta("chr", Some("text/plain")),
        ..Default::default()
    };
    let mut cmds = vec![
        Command::Get(Get {
            cmd_id: "2".into(),
            items: vec![Item::target("./DevDetail/SwV")],
            ..Default::default()
        }),
        Command::Replace(Replace {
            cmd_id: "3".into(),
            no_resp: true,
            meta: meta("int", None),
            items: vec![item("./Device/Vendor/MSFT/Policy/Config/A/B", Some("<enabled/> & \"x\""))],
        }),
        Command::Add(Add::new(vec![item("./Vendor/MSFT/X", Some("1"))])),
        Command::Delete(Delete::new(vec![Item::target("./Vendor/MSFT/X")])),
        Command::Exec(Exec::new(vec![Item::target_data(
            "./Vendor/MSFT/DMClient/Provider/P/Unenroll",
            "chr",
            "P",
        )])),
        Command::Atomic(Atomic::new(vec![
            Command::Replace(Replace::new(vec![item("./a", Some("1"))])),
            Command::Add(Add::new(vec![item("./b", Some("2"))])),
        ])),
        Command::Sequence(Sequence::new(vec![
            Command::Exec(Exec::new(vec![Item::target("./Vendor/MSFT/RemoteLock/Lock")])),
            Command::Get(Get::new(vec![Item::target("./Vendor/MSFT/RemoteLock/NewPINValue")])),
        ])),
        Command::Alert(Alert { cmd_id: "9".into(), data: "1201".into(), ..Default::default() }),
        Command::Alert(Alert {
            cmd_id: "10".into(),
            data: "1226".into(),
            items: vec![Item {
                source: Some(Source::new("./Vendor/MSFT/X")),
                meta: Some(Meta {
                    type_: Some("com.microsoft:mdm.unenrollment.userrequest".into()),
                    format: Some("int".into()),
                    mark: Some("critical".into()),
                    ..Default::default()
                }),
                data: Some("1".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        Command::Results(Results {
            cmd_id: "11".into(),
            msg_ref: Some("1".into()),
            cmd_ref: "2".into(),
            cmd: Some("Get".into()),
            items: vec![Item {
                source: Some(Source::new("./DevDetail/SwV")),
                meta: meta("chr", None),
                data: Some("10.0.19043.1".into()),
                more_data: true,
                ..Default::default()
            }],
            ..Default::default()
        }),
        Command::Results(Results { cmd_id: "12".into(), cmd_ref: "2".into(), ..Default::default() }),
        Command::Unknown(Unknown { name: "Copy".into(), cmd_id: "13".into() }),
    ];
    for (i, code) in
        ["200", "202", "212", "213", "401", "404", "405", "407", "418", "500", "507"].iter().enumerate()
    {
        let original_error =
            (code.starts_with('4') || code.starts_with('5')).then(|| "0x86000002".to_string());
        cmds.push(Command::Status(Status {
            cmd_id: (20 + i).to_string(),
            msg_ref: "1".into(),
            cmd_ref: if *code == "212" { "0".into() } else { "4".into() },
            cmd: if *code == "212" { "SyncHdr".into() } else { "Replace".into() },
            target_refs: vec!["./a".into()],
            source_refs: vec!["./b".into(), "./c".into()],
            chal: (*code == "212" || *code == "407").then(|| Chal {
                meta: Meta {
                    type_: Some("syncml:auth-md5".into()),
                    format: Some("b64".into()),
                    next_nonce: Some("AAECAwQFBgcICQoLDA0ODw==".into()),
                    ..Default::default()
                },
            }),
            cred: None,
            data: code.to_string(),
            original_error,
            items: vec![],
        }));
    }
    for c in &cmds {
        round_trip_cmd(c);
    }
    let m = SyncMl {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: "1A2F".into(),
            msg_id: "3".into(),
            target: Target::new("https://mdm.example.com/ManagementServer/MDM.svc"),
            source: Source {
                loc_uri: "B5B954E81FBCB94EB79BD08BE625F4EE".into(),
                loc_name: Some("user".into()),
            },
            cred: Some(Cred {
                meta: Some(Meta {
                    format: Some("b64".into()),
                    type_: Some("syncml:auth-md5".into()),
                    ..Default::default()
                }),
                data: "EVEkoFZcVgPM+ESnu9IC0g==".into(),
            }),
            meta: Some(Meta {
                max_msg_size: Some("65536".into()),
                max_obj_size: Some("1048576".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        body: SyncBody { commands: cmds, is_final: true },
    };
    round_trip_msg(&m);
    let doc = m.to_document();
    assert!(doc.contains(r#"<SyncML xmlns="SYNCML:SYNCML1.2">"#));
    assert!(doc.contains(r#"<Format xmlns="syncml:metinf">b64</Format>"#));
    assert!(doc.contains("&lt;enabled/&gt; &amp; &quot;x&quot;"));
}
