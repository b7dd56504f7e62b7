use super::*;
use crate::proto::syncml::digest::{md5_credential, secret_hash};

const SERVER: &str = "https://mdm.example.com/ManagementServer/MDM.svc";
const DEVICE: &str = "B5B954E81FBCB94EB79BD08BE625F4EE";
const NAME: &str = "B5B954E81FBCB94EB79BD08BE625F4EE-user";
const SECRET: &str = "0123456789abcdef-secret";
const PROVISIONED: &[u8] = b"provisioned-nonce";

fn auth() -> DeviceAuth {
    DeviceAuth {
        name: NAME.into(),
        secret_hash: secret_hash(NAME, SECRET),
        allow_basic: false,
        client_certificate: false,
    }
}

fn md5_cred(nonce: &[u8]) -> Cred {
    Cred {
        meta: Some(Meta { format: Some("b64".into()), type_: Some(AUTH_MD5.into()), ..Default::default() }),
        data: md5_credential(&secret_hash(NAME, SECRET), nonce),
    }
}

/// A device message as Windows would send it.
fn device_msg(
    session: &str,
    msg_id: u32,
    cred: Option<Cred>,
    max: Option<usize>,
    commands: Vec<Command>,
    fin: bool,
) -> String {
    SyncMl {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: session.into(),
            msg_id: msg_id.to_string(),
            target: Target::new(SERVER),
            source: Source { loc_uri: DEVICE.into(), loc_name: cred.as_ref().map(|_| NAME.to_string()) },
            cred,
            meta: max.map(|m| Meta { max_msg_size: Some(m.to_string()), ..Default::default() }),
            ..Default::default()
        },
        body: SyncBody { commands, is_final: fin },
    }
    .to_document()
}

fn alert(cmd_id: &str, code: &str, items: Vec<Item>) -> Command {
    Command::Alert(Alert { cmd_id: cmd_id.into(), data: code.into(), items, ..Default::default() })
}

fn typed_item(type_: &str, format: Option<&str>, data: &str) -> Item {
    Item {
        meta: Some(Meta { type_: Some(type_.into()), format: format.map(Into::into), ..Default::default() }),
        data: Some(data.into()),
        ..Default::default()
    }
}

fn package1() -> Vec<Command> {
    let devinfo = [
        ("DevId", DEVICE),
        ("Man", "Microsoft Corporation"),
        ("Mod", "Virtual Machine"),
        ("DmV", "1.3"),
        ("Lang", "en-US"),
    ];
    vec![
        alert("2", "1201", vec![]),
        alert("3", "1224", vec![typed_item("com.microsoft/MDM/LoginStatus", None, "user")]),
        Command::Replace(Replace {
            cmd_id: "4".into(),
            items: devinfo
                .iter()
                .map(|(k, v)| Item {
                    source: Some(Source::new(format!("./DevInfo/{k}"))),
                    data: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    ]
}

fn status(cmd_id: u32, msg_ref: &str, cmd_ref: &str, cmd: &str, code: &str) -> Command {
    Command::Status(Status {
        cmd_id: cmd_id.to_string(),
        msg_ref: msg_ref.into(),
        cmd_ref: cmd_ref.into(),
        cmd: cmd.into(),
        data: code.into(),
        ..Default::default()
    })
}

fn run(state: &SessionState, msg: &str, queue: &[QueuedCommand], nonce_byte: u8, now: u64) -> Output {
    let msg = SyncMl::parse_bytes(msg.as_bytes()).unwrap();
    handle_message(
        state,
        Input {
            message: &msg,
            auth: &auth(),
            queue,
            server_url: SERVER,
            resp_uri: None,
            now,
            fresh_nonce: [nonce_byte; 16],
        },
    )
    .unwrap()
}

fn parse_reply(out: &Output) -> SyncMl {
    SyncMl::parse(&out.reply).unwrap_or_else(|e| panic!("{e}: {}", out.reply))
}

fn statuses(m: &SyncMl) -> Vec<&Status> {
    m.body.commands.iter().filter_map(|c| if let Command::Status(s) = c { Some(s) } else { None }).collect()
}

fn non_status(m: &SyncMl) -> Vec<&Command> {
    m.body.commands.iter().filter(|c| !matches!(c, Command::Status(_))).collect()
}

fn get(id: &str, uri: &str) -> QueuedCommand {
    QueuedCommand { id: id.into(), command: Command::Get(Get::new(vec![Item::target(uri)])) }
}

fn assert_unique_cmd_ids(m: &SyncMl) {
    fn collect<'a>(cs: &'a [Command], out: &mut Vec<&'a str>) {
        for c in cs {
            out.push(c.cmd_id());
            collect(c.children(), out);
        }
    }
    let mut ids = Vec::new();
    collect(&m.body.commands, &mut ids);
    let expected: Vec<String> = (1..=ids.len()).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
}

#[test]
fn full_session() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let mut queue = vec![get("q1", "./DevDetail/SwV"), get("q2", "./DevDetail/Ext/Microsoft/OSPlatform")];

    // D1: package 1 with a digest over the provisioned nonce.
    let d1 = device_msg("7", 1, Some(md5_cred(PROVISIONED)), None, package1(), true);
    let out = run(&state, &d1, &queue, 0xA1, 1000);
    let s1 = parse_reply(&out);
    assert_eq!(s1.hdr.ver_dtd, "1.2");
    assert_eq!(s1.hdr.ver_proto, "DM/1.2");
    assert_eq!((s1.hdr.session_id.as_str(), s1.hdr.msg_id.as_str()), ("7", "1"));
    assert_eq!(s1.hdr.target.loc_uri, DEVICE);
    assert_eq!(s1.hdr.source.loc_uri, SERVER);
    assert!(s1.body.is_final);
    assert_unique_cmd_ids(&s1);
    let st = statuses(&s1);
    let refs: Vec<_> = st
        .iter()
        .map(|s| (s.msg_ref.as_str(), s.cmd_ref.as_str(), s.cmd.as_str(), s.data.as_str()))
        .collect();
    assert_eq!(
        refs,
        [
            ("1", "0", "SyncHdr", "200"),
            ("1", "2", "Alert", "200"),
            ("1", "3", "Alert", "200"),
            ("1", "4", "Replace", "200")
        ]
    );
    assert_eq!(st[0].target_refs, [SERVER]);
    assert_eq!(st[0].source_refs, [DEVICE]);
    assert_eq!(st[3].source_refs.len(), 5);
    let chal = st[0].chal.as_ref().unwrap();
    assert_eq!(chal.meta.type_.as_deref(), Some(AUTH_MD5));
    assert_eq!(chal.meta.format.as_deref(), Some("b64"));
    assert_eq!(chal.meta.next_nonce.as_deref(), Some(digest::encode_nonce(&[0xA1; 16]).as_str()));
    assert_eq!(out.new_state.nonce, [0xA1; 16]);
    let cmds = non_status(&s1);
    assert_eq!(cmds.len(), 2);
    assert_eq!((cmds[0].name(), cmds[0].cmd_id()), ("Get", "5"));
    assert_eq!((cmds[1].name(), cmds[1].cmd_id()), ("Get", "6"));
    assert!(!out.session_ended);
    assert_eq!(
        out.events[..3],
        [
            Event::SessionStarted {
                session_id: "7".into(),
                device_id: DEVICE.into(),
                alert: Some("1201".into())
            },
            Event::Authenticated,
            Event::GenericAlert {
                alert: "1224".into(),
                items: vec![AlertItem {
                    source: None,
                    target: None,
                    type_: Some("com.microsoft/MDM/LoginStatus".into()),
                    format: None,
                    mark: None,
                    data: Some("user".into()),
                }],
            },
        ]
    );
    let inventory: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| {
            if let Event::Inventory { uri, value } = e {
                Some((uri.as_str(), value.as_str()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(inventory.len(), 5);
    assert_eq!(inventory[0], ("./DevInfo/DevId", DEVICE));
    assert_eq!(inventory[3], ("./DevInfo/DmV", "1.3"));
    assert!(out.events.contains(&Event::CommandSent {
        id: "q1".into(),
        msg_id: "1".into(),
        cmd_id: "5".into()
    }));
    assert!(out.events.contains(&Event::CommandSent {
        id: "q2".into(),
        msg_id: "1".into(),
        cmd_id: "6".into()
    }));
    assert_eq!(out.new_state.unacknowledged(), ["q1", "q2"]);

    // The state survives persistence.
    let state: SessionState = serde_json::from_str(&serde_json::to_string(&out.new_state).unwrap()).unwrap();
    assert_eq!(state, out.new_state);

    // D2: statuses and results, no Cred. A reboot got queued meanwhile.
    queue.push(QueuedCommand {
        id: "q3".into(),
        command: Command::Exec(Exec::new(vec![Item::target("./Device/Vendor/MSFT/Reboot/RebootNow")])),
    });
    let results = |cmd_id: u32, cmd_ref: &str, uri: &str, data: &str, format: Option<&str>| {
        Command::Results(Results {
            cmd_id: cmd_id.to_string(),
            msg_ref: Some("1".into()),
            cmd_ref: cmd_ref.into(),
            cmd: Some("Get".into()),
            items: vec![Item {
                source: Some(Source::new(uri)),
                meta: format.map(|f| Meta { format: Some(f.into()), ..Default::default() }),
                data: Some(data.into()),
                ..Default::default()
            }],
            ..Default::default()
        })
    };
    // Every message carries its Cred, over the NextNonce of the reply before it.
    let d2 = device_msg(
        "7",
        2,
        Some(md5_cred(&[0xA1; 16])),
        None,
        vec![
            status(1, "1", "0", "SyncHdr", "200"),
            status(2, "1", "5", "Get", "200"),
            status(3, "1", "6", "Get", "200"),
            results(4, "5", "./DevDetail/SwV", "10.0.19043.1110", Some("chr")),
            results(5, "6", "./DevDetail/Ext/Microsoft/OSPlatform", "Windows 10 Enterprise", None),
        ],
        true,
    );
    let out = run(&state, &d2, &queue, 0xA2, 1010);
    let s2 = parse_reply(&out);
    assert_eq!(s2.hdr.msg_id, "2");
    assert_unique_cmd_ids(&s2);
    let st = statuses(&s2);
    assert_eq!(st.len(), 1, "no Status for Results");
    assert_eq!((st[0].msg_ref.as_str(), st[0].cmd_ref.as_str(), st[0].data.as_str()), ("2", "0", "200"));
    let next = st[0].chal.as_ref().and_then(|c| c.meta.next_nonce.clone());
    assert_eq!(
        next.as_deref(),
        Some(digest::encode_nonce(&[0xA2; 16]).as_str()),
        "a new nonce in every reply"
    );
    let cmds = non_status(&s2);
    assert_eq!(cmds.len(), 1, "q1 and q2 are not sent twice");
    assert_eq!((cmds[0].name(), cmds[0].cmd_id()), ("Exec", "2"));
    assert_eq!(out.new_state.nonce, [0xA2; 16]);
    assert!(out.events.contains(&Event::CommandStatus {
        id: Some("q1".into()),
        msg_ref: "1".into(),
        cmd_ref: "5".into(),
        cmd: "Get".into(),
        code: "200".into(),
        nested: false,
        original_error: None,
        items: vec![],
    }));
    assert!(out.events.contains(&Event::CommandResults {
        id: Some("q1".into()),
        msg_ref: "1".into(),
        cmd_ref: "5".into(),
        items: vec![ResultItem {
            loc_uri: "./DevDetail/SwV".into(),
            format: Some("chr".into()),
            type_: None,
            data: Some("10.0.19043.1110".into()),
            more_data: false,
        }],
    }));
    assert!(out.events.iter().any(|e| matches!(e, Event::CommandResults { id: Some(id), items, .. }
        if id == "q2" && items[0].data.as_deref() == Some("Windows 10 Enterprise"))));
    assert!(out.events.contains(&Event::CommandSent {
        id: "q3".into(),
        msg_id: "2".into(),
        cmd_id: "2".into()
    }));
    assert_eq!(out.new_state.unacknowledged(), ["q3"]);
    let state = out.new_state;

    // D3: the Exec is acknowledged; nothing is left: the closing message.
    queue.retain(|q| q.id == "q3"); // the caller dropped what was acknowledged
    let d3 = device_msg(
        "7",
        3,
        Some(md5_cred(&[0xA2; 16])),
        None,
        vec![status(1, "2", "0", "SyncHdr", "200"), status(2, "2", "2", "Exec", "200")],
        true,
    );
    let out = run(&state, &d3, &queue, 0xA3, 1020);
    let s3 = parse_reply(&out);
    assert_eq!(s3.hdr.msg_id, "3");
    assert!(s3.body.is_final);
    assert_eq!(s3.body.commands.len(), 1);
    assert_eq!(statuses(&s3)[0].cmd, "SyncHdr");
    assert!(out.session_ended);
    assert!(out.events.iter().any(
        |e| matches!(e, Event::CommandStatus { id: Some(id), code, .. } if id == "q3" && code == "200")
    ));
    assert_eq!(out.events.last(), Some(&Event::SessionEnded));
    assert!(out.new_state.unacknowledged().is_empty());
    let state = out.new_state;

    // Session 8 authenticates with the nonce issued in session 7.
    let d = device_msg("8", 1, Some(md5_cred(&[0xA3; 16])), None, package1(), true);
    let out = run(&state, &d, &[], 0xB1, 5000);
    assert_eq!(statuses(&parse_reply(&out))[0].data, "200");
    assert!(out.session_ended, "nothing queued: statuses only");
}

#[test]
fn max_msg_size_splits_the_queue() {
    const MAX: usize = 3000;
    let queue: Vec<QueuedCommand> = (0..200)
        .map(|i| QueuedCommand {
            id: format!("cmd-{i:03}"),
            command: Command::Replace(Replace::new(vec![Item::target_data(
                format!("./Device/Vendor/MSFT/Policy/Config/Area/Setting{i}"),
                "int",
                i.to_string(),
            )])),
        })
        .collect();
    let mut state = SessionState::new(PROVISIONED.to_vec());
    let mut msg = device_msg("A3F", 1, Some(md5_cred(PROVISIONED)), Some(MAX), package1(), true);
    let mut sent: Vec<String> = Vec::new();
    let mut messages = 0;
    for msg_id in 2.. {
        let out = run(&state, &msg, &queue, msg_id as u8, 100 + msg_id as u64);
        assert!(out.reply.len() <= MAX, "message of {} bytes", out.reply.len());
        let reply = parse_reply(&out);
        assert_unique_cmd_ids(&reply);
        messages += 1;
        let ids: Vec<String> = out
            .events
            .iter()
            .filter_map(|e| if let Event::CommandSent { id, .. } = e { Some(id.clone()) } else { None })
            .collect();
        sent.extend(ids);
        state = out.new_state;
        if out.session_ended {
            break;
        }
        // The device acknowledges every command of the reply.
        let mut acks = vec![status(1, &reply.hdr.msg_id, "0", "SyncHdr", "200")];
        for (n, c) in non_status(&reply).into_iter().enumerate() {
            acks.push(status(n as u32 + 2, &reply.hdr.msg_id, c.cmd_id(), c.name(), "200"));
        }
        msg = device_msg("A3F", msg_id, Some(md5_cred(&[msg_id as u8; 16])), None, acks, true);
        assert!(msg_id < 500, "runaway session");
    }
    let expected: Vec<String> = queue.iter().map(|q| q.id.clone()).collect();
    assert_eq!(sent, expected, "every command exactly once, in order");
    assert!(messages > 5, "{messages} messages");
    assert!(state.unacknowledged().is_empty());
}

#[test]
fn wrong_digest_gets_401_a_challenge_with_the_current_nonce_and_changes_nothing() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let queue = [get("q1", "./DevDetail/SwV")];
    let d1 = device_msg("1", 1, Some(md5_cred(b"some-other-nonce")), None, package1(), true);
    let out = run(&state, &d1, &queue, 0xC1, 10);
    let s1 = parse_reply(&out);
    let st = statuses(&s1);
    assert_eq!(st[0].data, "401");
    assert_eq!(
        st[0].chal.as_ref().unwrap().meta.next_nonce.as_deref(),
        Some(digest::encode_nonce(PROVISIONED).as_str()),
        "the challenge carries the nonce the device must use, unchanged"
    );
    assert_eq!(st.len(), 4, "a Status for every device command");
    assert!(non_status(&s1).is_empty(), "no commands");
    assert!(s1.body.is_final);
    assert_eq!(out.new_state, state, "nothing changes");
    assert!(!out.authenticated);
    assert!(out.events.contains(&Event::AuthFailed { code: 401, challenged: true }));
    assert!(!out.events.iter().any(|e| matches!(
        e,
        Event::Inventory { .. }
            | Event::GenericAlert { .. }
            | Event::CommandSent { .. }
            | Event::SessionStarted { .. }
    )));

    // The device repeats package 1 as MsgID 2 with a digest over that nonce.
    let mut cmds = vec![status(1, "1", "0", "SyncHdr", "401")];
    cmds.extend(package1());
    let d2 = device_msg("1", 2, Some(md5_cred(PROVISIONED)), None, cmds, true);
    let out = run(&out.new_state, &d2, &queue, 0xC2, 11);
    let s2 = parse_reply(&out);
    assert_eq!(statuses(&s2)[0].data, "200");
    assert_eq!(statuses(&s2)[0].msg_ref, "2");
    assert_eq!(non_status(&s2).len(), 1);
    assert_eq!(out.new_state.nonce, [0xC2; 16]);
}

#[test]
fn missing_cred_gets_407() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let out = run(&state, &device_msg("1", 1, None, None, package1(), true), &[get("q", "./x")], 0xD1, 10);
    let s = parse_reply(&out);
    assert_eq!(statuses(&s)[0].data, "407");
    let chal = statuses(&s)[0].chal.clone().unwrap();
    assert_eq!(chal.meta.type_.as_deref(), Some(AUTH_MD5));
    assert_eq!(chal.meta.format.as_deref(), Some("b64"));
    assert!(non_status(&s).is_empty());
    assert!(out.events.contains(&Event::AuthFailed { code: 407, challenged: true }));
    // Basic credentials are refused unless allowed.
    let basic = Cred {
        meta: Some(Meta { type_: Some(AUTH_BASIC.into()), format: Some("b64".into()), ..Default::default() }),
        data: digest::basic_credential(NAME, SECRET),
    };
    let out = run(&state, &device_msg("1", 1, Some(basic), None, package1(), true), &[], 0xD2, 10);
    assert_eq!(statuses(&parse_reply(&out))[0].data, "401");
}

#[test]
fn every_message_of_a_session_must_carry_its_cred() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let queue = [get("q1", "./DevDetail/SwV"), get("q2", "./DevDetail/FwV")];
    let d1 = device_msg("5", 1, Some(md5_cred(PROVISIONED)), None, package1(), true);
    let out1 = run(&state, &d1, &queue[..1], 0xE1, 10);
    assert_eq!(statuses(&parse_reply(&out1))[0].data, "200");
    let reply1 = parse_reply(&out1);
    let sent = non_status(&reply1).first().map(|c| c.cmd_id().to_string()).expect("q1 is sent");
    let acks = vec![status(1, "1", "0", "SyncHdr", "200"), status(2, "1", &sent, "Get", "200")];

    // Mid-session, no Cred (or a stale one): a challenge with the current nonce, no commands,
    // none of its statuses applied, and the session and nonce exactly as they were.
    for cred in [None, Some(md5_cred(PROVISIONED)), Some(md5_cred(b"wrong"))] {
        let code = if cred.is_none() { "407" } else { "401" };
        let m = device_msg("5", 2, cred, None, acks.clone(), true);
        let out = run(&out1.new_state, &m, &queue, 0xE2, 11);
        let s = parse_reply(&out);
        assert_eq!(statuses(&s)[0].data, code);
        let nonce = statuses(&s)[0].chal.as_ref().unwrap().meta.next_nonce.clone();
        assert_eq!(nonce.as_deref(), Some(digest::encode_nonce(&[0xE1; 16]).as_str()));
        assert!(non_status(&s).is_empty());
        assert!(!out.events.iter().any(|e| matches!(e, Event::CommandStatus { .. })), "statuses not applied");
        assert_eq!(out.new_state, out1.new_state);
    }

    // With the Cred over the NextNonce it was given: 200, statuses applied, the next command.
    let m = device_msg("5", 2, Some(md5_cred(&[0xE1; 16])), None, acks, true);
    let out = run(&out1.new_state, &m, &queue[1..], 0xE3, 12);
    let s = parse_reply(&out);
    assert_eq!(statuses(&s)[0].data, "200");
    assert!(out.events.iter().any(|e| matches!(e, Event::CommandStatus { id: Some(id), .. } if id == "q1")));
    assert_eq!(non_status(&s).len(), 1);
    assert_eq!(out.new_state.nonce, [0xE3; 16]);
}

#[test]
fn a_new_session_without_cred_does_not_disturb_the_one_in_progress() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let d1 = device_msg("5", 1, Some(md5_cred(PROVISIONED)), None, package1(), false);
    let out1 = run(&state, &d1, &[], 0x71, 10);
    // Anyone who knows the DeviceID opens "session 6" without a Cred, or with a bad one.
    for cred in [None, Some(md5_cred(b"guess"))] {
        let attack = device_msg("6", 1, cred, None, package1(), true);
        let out = run(&out1.new_state, &attack, &[], 0x72, 11);
        assert_ne!(statuses(&parse_reply(&out))[0].data, "200");
        assert_eq!(out.new_state, out1.new_state, "the session and its nonce are untouched");
    }
    // The device's own next message still works.
    let d2 = device_msg("5", 2, Some(md5_cred(&[0x71; 16])), None, package1(), true);
    assert_eq!(statuses(&parse_reply(&run(&out1.new_state, &d2, &[], 0x73, 12)))[0].data, "200");
}

#[test]
fn a_used_nonce_cannot_be_replayed() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let d1 = device_msg("9", 1, Some(md5_cred(PROVISIONED)), None, package1(), true);
    let out = run(&state, &d1, &[], 0xF1, 10);
    assert_eq!(statuses(&parse_reply(&out))[0].data, "200");
    // The captured message replayed later (or within the session) fails.
    for now in [12, 100_000] {
        let replay = run(&out.new_state, &d1, &[get("q", "./x")], 0xF2, now);
        let s = parse_reply(&replay);
        assert_eq!(statuses(&s)[0].data, "401");
        assert!(non_status(&s).is_empty());
        assert!(!replay.events.contains(&Event::Authenticated));
    }
    // Same for a later message of the session replayed after it ended.
    let ended = out.new_state;
    assert!(ended.session.as_ref().unwrap().ended);
    let d2 = device_msg("9", 2, None, None, vec![status(1, "1", "0", "SyncHdr", "200")], true);
    let s = parse_reply(&run(&ended, &d2, &[], 0xF3, 13));
    assert_eq!(statuses(&s)[0].data, "407");
}

fn authenticated_session(queue: &[QueuedCommand], commands: Vec<Command>, fin: bool) -> Output {
    let state = SessionState::new(PROVISIONED.to_vec());
    let d1 = device_msg("3", 1, Some(md5_cred(PROVISIONED)), None, commands, fin);
    run(&state, &d1, queue, 0x11, 10)
}

#[test]
fn unenrollment_alert() {
    let mut cmds = package1();
    cmds.insert(
        2,
        alert("5", "1226", vec![typed_item("com.microsoft:mdm.unenrollment.userrequest", Some("int"), "1")]),
    );
    let out = authenticated_session(&[get("q", "./x")], cmds, true);
    assert!(out.events.contains(&Event::Unenrolled));
    let s = parse_reply(&out);
    assert!(non_status(&s).is_empty(), "no commands for an unenrolled device");
    assert_eq!(statuses(&s).len(), 5);
    assert!(out.session_ended);
}

#[test]
fn other_generic_alerts_do_not_unenroll() {
    let cmds = vec![
        alert("2", "1201", vec![]),
        alert("3", "1226", vec![typed_item("com.microsoft.mdm.something.else", Some("int"), "1")]),
        alert("4", "1226", vec![Item { data: Some("1".into()), ..Default::default() }]),
        alert("5", "1224", vec![typed_item(UNENROLL_ALERT_TYPE, Some("int"), "1")]),
    ];
    let out = authenticated_session(&[get("q", "./x")], cmds, true);
    assert!(!out.events.contains(&Event::Unenrolled));
    assert_eq!(out.events.iter().filter(|e| matches!(e, Event::GenericAlert { .. })).count(), 3);
    assert_eq!(non_status(&parse_reply(&out)).len(), 1);
}

#[test]
fn non_final_message_gets_alert_1222_only() {
    // Keep-alive (Microsoft Learn "DMClient CSP", EnableOmaDmKeepAliveMessage;
    // [MS-MDE2] §2.2.9.3): Alert 1224 requestpending without Final.
    let ka = alert(
        "2",
        "1224",
        vec![typed_item("Reversed-Domain-Name:com.microsoft.mdm.requestpending", None, "1")],
    );
    let out = authenticated_session(&[get("q", "./x")], vec![alert("1", "1201", vec![]), ka], false);
    let s = parse_reply(&out);
    assert!(!s.body.is_final);
    assert_unique_cmd_ids(&s);
    let others = non_status(&s);
    assert_eq!(others.len(), 1);
    let Command::Alert(a) = others[0] else { panic!() };
    assert_eq!(a.data, "1222");
    assert_eq!(statuses(&s).len(), 3);
    assert!(!out.session_ended);
    assert!(out.new_state.unacknowledged().is_empty());
}

#[test]
fn abort_and_unknown_alerts() {
    let out = authenticated_session(
        &[get("q", "./x")],
        vec![alert("2", "1201", vec![]), alert("3", "1223", vec![])],
        true,
    );
    assert!(out.events.contains(&Event::SessionAborted));
    assert!(non_status(&parse_reply(&out)).is_empty());
    assert!(out.session_ended);

    let out = authenticated_session(&[], vec![alert("2", "1201", vec![]), alert("3", "1100", vec![])], true);
    let s = parse_reply(&out);
    assert_eq!(statuses(&s)[2].data, "406");
}

#[test]
fn hex_session_id_is_echoed() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let out =
        run(&state, &device_msg("0x1A2F", 1, Some(md5_cred(PROVISIONED)), None, package1(), true), &[], 1, 1);
    assert_eq!(parse_reply(&out).hdr.session_id, "0x1A2F");
    let out =
        run(&state, &device_msg("D", 1, Some(md5_cred(PROVISIONED)), None, package1(), true), &[], 1, 1);
    assert_eq!(parse_reply(&out).hdr.session_id, "D");
}

#[test]
fn atomic_children_are_numbered_and_matched() {
    let atomic = QueuedCommand {
        id: "atom".into(),
        command: Command::Atomic(Atomic::new(vec![
            Command::Replace(Replace::new(vec![Item::target_data(
                "./Device/Vendor/MSFT/Policy/Config/A/B",
                "int",
                "1",
            )])),
            Command::Replace(Replace::new(vec![Item::target_data(
                "./Device/Vendor/MSFT/Policy/Config/A/C",
                "int",
                "2",
            )])),
        ])),
    };
    let out = authenticated_session(std::slice::from_ref(&atomic), package1(), true);
    let s = parse_reply(&out);
    assert_unique_cmd_ids(&s);
    let cmds = non_status(&s);
    assert_eq!(cmds[0].cmd_id(), "5");
    assert_eq!(cmds[0].children()[1].cmd_id(), "7");
    let d2 = device_msg(
        "3",
        2,
        Some(md5_cred(&[0x11; 16])),
        None,
        vec![
            status(1, "1", "0", "SyncHdr", "200"),
            status(2, "1", "5", "Atomic", "507"),
            status(3, "1", "6", "Replace", "216"),
            status(4, "1", "7", "Replace", "405"),
        ],
        true,
    );
    let out = run(&out.new_state, &d2, std::slice::from_ref(&atomic), 2, 20);
    let codes: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CommandStatus { id, code, nested, .. } => {
                Some((id.clone().unwrap(), code.as_str(), *nested))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [("atom".into(), "507", false), ("atom".into(), "216", true), ("atom".into(), "405", true)]
    );
    assert!(out.session_ended, "the failed Atomic is not resent in this session");
}

#[test]
fn too_large_and_invalid_commands_are_reported() {
    let big = QueuedCommand {
        id: "big".into(),
        command: Command::Replace(Replace::new(vec![Item::target_data("./x", "chr", "x".repeat(5000))])),
    };
    let bogus = QueuedCommand { id: "bogus".into(), command: Command::Status(Status::default()) };
    let small = get("small", "./DevDetail/SwV");
    let queue = [big.clone(), bogus, small];
    let state = SessionState::new(PROVISIONED.to_vec());
    let d1 = device_msg("4", 1, Some(md5_cred(PROVISIONED)), Some(4000), package1(), true);
    let out = run(&state, &d1, &queue, 1, 1);
    assert!(out.reply.len() <= 4000);
    assert!(out.events.iter().any(|e| matches!(e, Event::CommandTooLarge { id, .. } if id == "big")));
    assert!(out.events.contains(&Event::CommandInvalid { id: "bogus".into() }));
    assert!(out.events.iter().any(|e| matches!(e, Event::CommandSent { id, .. } if id == "small")));
    // Without a device MaxMsgSize a command over the default budget travels alone.
    let huge = QueuedCommand {
        id: "huge".into(),
        command: Command::Replace(Replace::new(vec![Item::target_data("./x", "chr", "x".repeat(70_000))])),
    };
    let out = authenticated_session(&[huge, get("next", "./y")], package1(), true);
    let sent: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| if let Event::CommandSent { id, .. } = e { Some(id.as_str()) } else { None })
        .collect();
    assert_eq!(sent, ["huge"]);
}

#[test]
fn chunked_results_get_213() {
    let mut cmds = package1();
    cmds.push(Command::Results(Results {
        cmd_id: "9".into(),
        msg_ref: Some("1".into()),
        cmd_ref: "5".into(),
        items: vec![Item {
            source: Some(Source::new("./a")),
            data: Some("part".into()),
            more_data: true,
            ..Default::default()
        }],
        ..Default::default()
    }));
    let out = authenticated_session(&[], cmds, false);
    let s = parse_reply(&out);
    assert!(statuses(&s).iter().any(|st| st.cmd == "Results" && st.data == "213" && st.cmd_ref == "9"));
}

#[test]
fn bad_input_is_a_typed_error() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let a = auth();
    let call = |body: &[u8]| {
        let message = SyncMl::parse_bytes(body)?;
        handle_message(
            &state,
            Input {
                message: &message,
                auth: &a,
                queue: &[],
                server_url: SERVER,
                resp_uri: None,
                now: 0,
                fresh_nonce: [0; 16],
            },
        )
    };
    assert_eq!(call(b"\xff\xfe<"), Err(SyncMlError::NotUtf8));
    assert!(matches!(call(b"<html><body>hi</body></html>"), Err(SyncMlError::NotSyncMl { .. })));
    assert!(matches!(call(b"<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr>"), Err(SyncMlError::Xml(_))));
    let bad_msg_id =
        device_msg("1", 1, None, None, vec![], true).replace("<MsgID>1</MsgID>", "<MsgID>one</MsgID>");
    assert_eq!(call(bad_msg_id.as_bytes()), Err(SyncMlError::Invalid("SyncHdr/MsgID")));
    // Every documentation sample goes through without a panic.
    for (name, text) in [
        ("session_msg1", include_str!("../testdata/session_msg1_client_init.msmdm.xml")),
        ("session_msg3", include_str!("../testdata/session_msg3_client_status_results.msmdm.xml")),
        ("keepalive", include_str!("../testdata/dmclient_keepalive_requestpending_alert.xml")),
        ("unenroll", include_str!("../testdata/unenroll_alert1226_first_package.xml")),
        ("edam", include_str!("../testdata/edam_common_response.xml")),
        ("replace", include_str!("../testdata/replace_update_device_setting.xml")),
        ("required", include_str!("../testdata/message_required_elements.msmdm.xml")),
    ] {
        if let Ok(out) = call(text.as_bytes()) {
            let s = parse_reply(&out);
            assert_eq!(statuses(&s)[0].data, "407", "{name}");
        }
    }
}

#[test]
fn a_verified_client_certificate_stands_in_for_the_digest() {
    let state = SessionState::new(PROVISIONED.to_vec());
    let d1 = device_msg("5", 1, None, None, package1(), true);
    let mut with_cert = auth();
    with_cert.client_certificate = true;
    let d1 = SyncMl::parse_bytes(d1.as_bytes()).unwrap();
    let input = |a: &DeviceAuth| {
        handle_message(
            &state,
            Input {
                message: &d1,
                auth: a,
                queue: &[],
                server_url: SERVER,
                resp_uri: None,
                now: 10,
                fresh_nonce: [9; 16],
            },
        )
        .unwrap()
    };
    assert_eq!(statuses(&parse_reply(&input(&with_cert)))[0].data, "200");
    assert_eq!(statuses(&parse_reply(&input(&auth())))[0].data, "407");
}
