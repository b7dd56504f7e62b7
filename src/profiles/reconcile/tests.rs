//! The reconciliation over every transition, against a small DM tree that answers as Windows
//! does: Policy CSP writes are readable at the `Result` path, Replace of a missing non-policy
//! node is 404, Add of an existing node 418, Delete of a missing node 404, Atomic rolls back
//! with 507 and 216, refused nodes answer their code, write-only nodes answer a Get with 405.

use super::*;
use crate::proto::syncml::codes::{STATUS_ATOMIC_FAILED, STATUS_COMMAND_FAILED};
use std::collections::BTreeSet;

const T0: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;
const INTERVAL: u64 = 8 * HOUR;
const CAMERA: &str = "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera";
const CAMERA_RESULT: &str = "./Device/Vendor/MSFT/Policy/Result/Camera/AllowCamera";
const NODE: &str = "./Device/Vendor/MSFT/Custom/Node";

fn setting(uri: &str, format: Format, data: &str) -> Setting {
    Setting { uri: uri.into(), format, data: data.into(), read_back: true }
}

fn desired(id: &str, seq: u64, version: u32, settings: Vec<Setting>) -> DesiredProfile {
    DesiredProfile { id: id.into(), seq, name: format!("profile {id}"), version, atomic: false, settings }
}

/// A device's DM tree and how it answers.
#[derive(Default)]
struct Tree {
    values: BTreeMap<String, String>,
    /// Writes of these nodes are refused with this code.
    refuse: BTreeMap<String, String>,
    /// Nodes that cannot be read (Get → 405).
    write_only: BTreeSet<String>,
    /// What the device received, by name, in order.
    log: Vec<String>,
}

fn is_policy_config(uri: &str) -> bool {
    read_back_uri(uri) != uri
}

impl Tree {
    fn write(&mut self, op: &str, item: &Item) -> String {
        let uri = item.target.as_ref().unwrap().loc_uri.clone();
        let data = item.data.clone().unwrap_or_default();
        if let Some(code) = self.refuse.get(&uri) {
            return code.clone();
        }
        let exists = self.values.contains_key(&uri);
        let code = match (op, exists) {
            ("Add", true) => STATUS_ALREADY_EXISTS,
            ("Replace", false) if !is_policy_config(&uri) => STATUS_NOT_FOUND,
            _ => STATUS_OK,
        };
        if code == STATUS_OK {
            if is_policy_config(&uri) {
                self.values.insert(read_back_uri(&uri), data.clone());
            }
            self.values.insert(uri, data);
        }
        code.into()
    }

    /// Runs one command; the Statuses (and Results) it answers, as reports.
    fn run(&mut self, q: &QueuedCommand) -> Vec<Report> {
        let (profile, cmd) = parse_command_id(&q.id).unwrap();
        let status = |code: &str, child: Option<usize>| Report::Status {
            profile: profile.clone(),
            cmd,
            child,
            code: code.to_string(),
        };
        self.log.push(q.command.name().to_string());
        match &q.command {
            Command::Replace(r) => vec![status(&self.write("Replace", &r.items[0]), None)],
            Command::Add(a) => vec![status(&self.write("Add", &a.items[0]), None)],
            Command::Delete(d) => {
                let uri = &d.items[0].target.as_ref().unwrap().loc_uri;
                let code = if self.values.remove(uri).is_some() { STATUS_OK } else { STATUS_NOT_FOUND };
                self.values.remove(&read_back_uri(uri));
                vec![status(code, None)]
            }
            Command::Get(g) => {
                let uri = &g.items[0].target.as_ref().unwrap().loc_uri;
                if self.write_only.iter().any(|w| read_back_uri(w) == *uri) {
                    return vec![status(STATUS_COMMAND_NOT_ALLOWED, None)];
                }
                match self.values.get(uri) {
                    Some(v) => vec![
                        status(STATUS_OK, None),
                        Report::Results { profile: profile.clone(), cmd, data: Some(v.clone()) },
                    ],
                    None => vec![status(STATUS_NOT_FOUND, None)],
                }
            }
            Command::Atomic(a) => {
                let saved = self.values.clone();
                let codes: Vec<String> = a
                    .commands
                    .iter()
                    .map(|c| match c {
                        Command::Replace(r) => self.write("Replace", &r.items[0]),
                        Command::Add(x) => self.write("Add", &x.items[0]),
                        _ => unreachable!(),
                    })
                    .collect();
                let failed = codes.iter().any(|c| !is_success(c));
                let mut out = vec![status(if failed { STATUS_ATOMIC_FAILED } else { STATUS_OK }, None)];
                if failed {
                    self.values = saved;
                }
                for (k, c) in codes.iter().enumerate() {
                    let code = if failed && is_success(c) { STATUS_ATOMIC_ROLLBACK_OK } else { c };
                    out.push(status(code, Some(k)));
                }
                out
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A device with its profiles, checking in.
struct Device {
    tree: Tree,
    profiles: Vec<DeviceProfile>,
    now: u64,
    transitions: Vec<Transition>,
    removed: Vec<String>,
}

impl Device {
    fn new() -> Self {
        Device {
            tree: Tree::default(),
            profiles: Vec::new(),
            now: T0,
            transitions: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn step(
        &mut self,
        desired: Option<&[DesiredProfile]>,
        reports: &[Report],
        session_start: bool,
    ) -> Output {
        let out = reconcile(Input {
            desired,
            profiles: std::mem::take(&mut self.profiles),
            reports,
            session_start,
            now_ms: self.now,
            verify_interval_ms: INTERVAL,
        });
        self.profiles = out.profiles.clone();
        self.transitions.extend(out.transitions.clone());
        self.removed.extend(out.removed.clone());
        out
    }

    /// A whole session: the catalogue's answer at its start, then commands and answers until
    /// nothing is left to send. Returns the names of the commands the device received.
    fn session(&mut self, desired: Option<&[DesiredProfile]>) -> Vec<String> {
        self.tree.log.clear();
        let mut out = self.step(desired, &[], true);
        for _ in 0..20 {
            if out.commands.is_empty() {
                return std::mem::take(&mut self.tree.log);
            }
            let reports: Vec<Report> = out.commands.iter().flat_map(|q| self.tree.run(q)).collect();
            out = self.step(None, &reports, false);
        }
        panic!("the session does not end");
    }

    fn profile(&self, id: &str) -> &DeviceProfile {
        self.profiles.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("no profile {id}"))
    }

    fn setting(&self, id: &str, uri: &str) -> &SettingState {
        self.profile(id).settings.iter().find(|s| s.setting.uri == uri).unwrap()
    }

    fn statuses(&self, id: &str) -> Vec<(Option<ProfileStatus>, Option<ProfileStatus>)> {
        self.transitions.iter().filter(|t| t.profile_id == id).map(|t| (t.from, t.to)).collect()
    }
}

use ProfileStatus::*;

#[test]
fn apply_acknowledge_and_verify_at_the_result_node() {
    let mut d = Device::new();
    let want = [desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0")])];
    let out = d.step(Some(&want), &[], true);
    assert_eq!(out.commands.len(), 1);
    let Command::Replace(r) = &out.commands[0].command else { panic!("{:?}", out.commands) };
    assert_eq!(r.items[0].target.as_ref().unwrap().loc_uri, CAMERA);
    assert_eq!((r.items[0].meta_format(), r.items[0].data.as_deref()), (Some("int"), Some("0")));
    assert_eq!(out.commands[0].id, "p:p1:1");
    assert_eq!(d.profile("p1").status, Pending);

    // Acknowledged: read back at the Policy CSP Result node.
    let ack = Report::Status { profile: "p1".into(), cmd: 1, child: None, code: "200".into() };
    let out = d.step(None, &[ack], false);
    let Command::Get(g) = &out.commands[0].command else { panic!() };
    assert_eq!(g.items[0].target.as_ref().unwrap().loc_uri, CAMERA_RESULT);
    assert_eq!(d.profile("p1").status, Verifying);
    let get_id = out.commands[0].id.clone();

    let (_, cmd) = parse_command_id(&get_id).unwrap();
    let results = [
        Report::Status { profile: "p1".into(), cmd, child: None, code: "200".into() },
        Report::Results { profile: "p1".into(), cmd, data: Some("0".into()) },
    ];
    let out = d.step(None, &results, false);
    assert!(out.commands.is_empty());
    let s = d.setting("p1", CAMERA);
    assert_eq!(
        (&s.phase, s.code.as_deref(), s.observed.as_deref()),
        (&Phase::Verified, Some("200"), Some("0"))
    );
    assert_eq!(s.verified_by, Some(VerifiedBy::ReadBack));
    assert_eq!(
        d.statuses("p1"),
        [(None, Some(Pending)), (Some(Pending), Some(Verifying)), (Some(Verifying), Some(Verified))]
    );
    assert_eq!(d.profile("p1").checked_at, Some(T0));

    // Nothing more to do in the next session: no commands, no transitions.
    let n = d.transitions.len();
    assert!(d.session(None).is_empty());
    assert_eq!(d.transitions.len(), n);
}

#[test]
fn a_value_read_back_different_fails_the_profile_with_what_was_observed() {
    let mut d = Device::new();
    let want = [desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0")])];
    let out = d.step(Some(&want), &[], true);
    let ack = d.tree.run(&out.commands[0]);
    // Another authority (a GPO) holds the effective value.
    d.tree.values.insert(CAMERA_RESULT.into(), "1".into());
    let out = d.step(None, &ack, false);
    let answers = d.tree.run(&out.commands[0]);
    d.step(None, &answers, false);
    let s = d.setting("p1", CAMERA);
    assert_eq!(
        (&s.phase, s.code.as_deref(), s.observed.as_deref()),
        (&Phase::Failed, Some("200"), Some("1"))
    );
    assert!(s.note.as_deref().unwrap().contains("different value"));
    assert_eq!(d.profile("p1").status, Failed);
    assert!(d.session(None).is_empty(), "a failed profile is not retried until it changes");
}

#[test]
fn a_refused_setting_fails_only_itself_and_keeps_its_code() {
    let mut d = Device::new();
    d.tree.refuse.insert("./Device/Vendor/MSFT/Policy/Config/Edition/Unsupported".into(), "405".into());
    d.tree
        .refuse
        .insert("./Device/Vendor/MSFT/Policy/Config/Broken/Node".into(), STATUS_COMMAND_FAILED.into());
    let want = [desired(
        "p1",
        1,
        1,
        vec![
            setting(CAMERA, Format::Int, "0"),
            setting("./Device/Vendor/MSFT/Policy/Config/Edition/Unsupported", Format::Int, "1"),
            setting("./Device/Vendor/MSFT/Policy/Config/Broken/Node", Format::Bool, "true"),
        ],
    )];
    d.session(Some(&want));
    assert_eq!(d.profile("p1").status, Failed);
    let s = d.setting("p1", CAMERA);
    assert_eq!(s.phase, Phase::Verified, "per-setting delivery: the good setting holds");
    let bad = d.setting("p1", "./Device/Vendor/MSFT/Policy/Config/Edition/Unsupported");
    assert_eq!((&bad.phase, bad.code.as_deref()), (&Phase::Failed, Some("405")));
    let broken = d.setting("p1", "./Device/Vendor/MSFT/Policy/Config/Broken/Node");
    assert_eq!(broken.code.as_deref(), Some("500"));
    assert_eq!(d.tree.values.get(CAMERA_RESULT).map(String::as_str), Some("0"));
}

#[test]
fn replace_of_a_missing_node_is_retried_as_add_and_add_of_an_existing_one_as_replace() {
    let mut d = Device::new();
    let want = [desired("p1", 1, 1, vec![setting(NODE, Format::Chr, "v")])];
    let log = d.session(Some(&want));
    assert_eq!(log, ["Replace", "Add", "Get"]);
    let s = d.setting("p1", NODE);
    assert_eq!((&s.phase, s.code.as_deref(), s.fallbacks), (&Phase::Verified, Some("200"), 1));

    // 418 on Add → Replace.
    let mut p = d.profile("p1").clone();
    p.settings[0].phase = Phase::Write { op: WriteOp::Add, cmd: 50 };
    p.settings[0].fallbacks = 0;
    let out = reconcile(Input {
        desired: None,
        profiles: vec![p],
        reports: &[Report::Status { profile: "p1".into(), cmd: 50, child: None, code: "418".into() }],
        session_start: false,
        now_ms: T0,
        verify_interval_ms: INTERVAL,
    });
    assert!(matches!(out.commands[0].command, Command::Replace(_)), "{:?}", out.commands);
    assert_eq!(out.profiles[0].settings[0].code.as_deref(), Some("418"));

    // A node that is missing for Replace and existing for Add: the fallbacks end in failure.
    let mut p = out.profiles[0].clone();
    let mut out = None;
    for code in ["404", "418", "404"] {
        let Phase::Write { cmd, .. } = p.settings[0].phase else { break };
        let o = reconcile(Input {
            desired: None,
            profiles: vec![p.clone()],
            reports: &[Report::Status { profile: "p1".into(), cmd, child: None, code: code.into() }],
            session_start: false,
            now_ms: T0,
            verify_interval_ms: INTERVAL,
        });
        p = o.profiles[0].clone();
        out = Some(o);
    }
    assert_eq!(p.settings[0].phase, Phase::Failed);
    assert_eq!(p.status, Failed);
    assert!(out.unwrap().commands.is_empty());
}

#[test]
fn atomic_failure_rolls_back_with_each_settings_code() {
    let mut d = Device::new();
    let bad = "./Device/Vendor/MSFT/Policy/Config/Edition/Unsupported";
    d.tree.refuse.insert(bad.into(), "405".into());
    let mut p = desired(
        "p1",
        1,
        1,
        vec![
            setting(CAMERA, Format::Int, "0"),
            setting(bad, Format::Int, "1"),
            setting(NODE, Format::Chr, "x"),
        ],
    );
    p.atomic = true;
    let log = d.session(Some(&[p]));
    assert_eq!(log, ["Atomic"], "one Atomic, no retry: 405 is not a fallback case");
    assert_eq!(d.profile("p1").status, Failed);
    let codes: Vec<_> =
        d.profile("p1").settings.iter().map(|s| (s.code.clone().unwrap(), s.phase.clone())).collect();
    // The Policy setting was written and rolled back (216); the refused one has its code; the
    // missing node's 404 is shadowed by the 405 (not every culprit can fall back).
    assert_eq!(codes[0], ("216".into(), Phase::Failed));
    assert_eq!(codes[1], ("405".into(), Phase::Failed));
    assert_eq!(codes[2], ("404".into(), Phase::Failed));
    assert!(d.profile("p1").settings[0].note.as_deref().unwrap().contains("rolled back"));
    assert!(!d.tree.values.contains_key(CAMERA), "rolled back on the device");
}

#[test]
fn atomic_with_a_missing_node_is_sent_again_with_add() {
    let mut d = Device::new();
    let mut p = desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0"), setting(NODE, Format::Chr, "x")]);
    p.atomic = true;
    let log = d.session(Some(&[p]));
    assert_eq!(log, ["Atomic", "Atomic", "Get", "Get"]);
    assert_eq!(d.profile("p1").status, Verified);
    assert_eq!(d.setting("p1", NODE).fallbacks, 1);
    assert_eq!(d.tree.values.get(NODE).map(String::as_str), Some("x"));
}

#[test]
fn atomic_statuses_may_come_in_any_order_and_children_may_be_silent() {
    let mut p = DeviceProfile::from_desired(
        &DesiredProfile {
            atomic: true,
            ..desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0"), setting(NODE, Format::Chr, "x")])
        },
        "t",
    );
    let out = reconcile(Input {
        desired: None,
        profiles: vec![p.clone()],
        reports: &[],
        session_start: false,
        now_ms: T0,
        verify_interval_ms: INTERVAL,
    });
    p = out.profiles[0].clone();
    let (_, cmd) = parse_command_id(&out.commands[0].id).unwrap();
    // The child's status first, then the Atomic's; the other child says nothing.
    let reports = [
        Report::Status { profile: "p1".into(), cmd, child: Some(1), code: "405".into() },
        Report::Status { profile: "p1".into(), cmd, child: None, code: STATUS_ATOMIC_FAILED.into() },
    ];
    let out = reconcile(Input {
        desired: None,
        profiles: vec![p],
        reports: &reports,
        session_start: false,
        now_ms: T0,
        verify_interval_ms: INTERVAL,
    });
    let s = &out.profiles[0].settings;
    assert_eq!((s[0].code.as_deref(), s[1].code.as_deref()), (Some("216"), Some("405")));
    assert_eq!(out.profiles[0].status, Failed);
}

#[test]
fn unanswered_commands_are_sent_again_in_the_next_session_with_the_same_id() {
    let mut d = Device::new();
    let want = [desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0")])];
    let first = d.step(Some(&want), &[], true).commands;
    // The session broke off; the next one starts with no news from the catalogue.
    let again = d.step(None, &[], true).commands;
    assert_eq!(first, again);
    assert_eq!(d.profile("p1").status, Pending);
}

#[test]
fn a_new_version_re_delivers_what_changed_and_deletes_what_it_dropped() {
    let mut d = Device::new();
    let a = "./Device/Vendor/MSFT/Policy/Config/Area/A";
    let b = "./Device/Vendor/MSFT/Policy/Config/Area/B";
    let c = "./Device/Vendor/MSFT/Policy/Config/Area/C";
    let e = "./Device/Vendor/MSFT/Policy/Config/Area/E";
    let v1 = [desired(
        "p1",
        1,
        1,
        vec![setting(a, Format::Int, "1"), setting(b, Format::Int, "1"), setting(c, Format::Int, "1")],
    )];
    d.session(Some(&v1));
    assert_eq!(d.profile("p1").status, Verified);
    let v2 = [desired(
        "p1",
        1,
        2,
        vec![setting(a, Format::Int, "1"), setting(b, Format::Int, "2"), setting(e, Format::Int, "5")],
    )];
    let out = d.step(Some(&v2), &[], true);
    let sent: Vec<(String, String)> = out
        .commands
        .iter()
        .map(|q| {
            let items = match &q.command {
                Command::Replace(r) => &r.items,
                Command::Delete(x) => &x.items,
                other => panic!("{other:?}"),
            };
            (q.command.name().to_string(), items[0].target.as_ref().unwrap().loc_uri.clone())
        })
        .collect();
    assert_eq!(
        sent,
        [("Delete".into(), c.into()), ("Replace".into(), b.into()), ("Replace".into(), e.into())],
        "a is unchanged and not sent"
    );
    assert_eq!((d.profile("p1").version, d.profile("p1").status), (2, Pending));
    let view = d.profile("p1").view();
    assert_eq!(view.settings.iter().find(|s| s.uri == c).unwrap().status, "removing");
    d.profiles = out.profiles;
    let reports: Vec<Report> = out.commands.iter().flat_map(|q| d.tree.run(q)).collect();
    let mut out = d.step(None, &reports, false);
    while !out.commands.is_empty() {
        let reports: Vec<Report> = out.commands.iter().flat_map(|q| d.tree.run(q)).collect();
        out = d.step(None, &reports, false);
    }
    let p = d.profile("p1");
    assert_eq!((p.version, p.status), (2, Verified));
    assert_eq!(p.settings.iter().map(|s| s.setting.uri.as_str()).collect::<Vec<_>>(), [a, b, e]);
    assert!(!d.tree.values.contains_key(c));
    assert!(d.statuses("p1").contains(&(Some(Verified), Some(Pending))));
}

#[test]
fn removal_deletes_every_setting_and_the_profile_leaves_once_acknowledged() {
    let mut d = Device::new();
    let want =
        [desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0"), setting(NODE, Format::Chr, "x")])];
    d.session(Some(&want));
    d.tree.values.remove(NODE); // gone already: its Delete answers 404, which is fine
    let out = d.step(Some(&[]), &[], true);
    assert_eq!(out.commands.iter().map(|q| q.command.name()).collect::<Vec<_>>(), ["Delete", "Delete"]);
    assert_eq!(d.profile("p1").status, Removing);
    assert_eq!(d.profile("p1").view().settings[0].status, "removing");
    let reports: Vec<Report> = out.commands.iter().flat_map(|q| d.tree.run(q)).collect();
    let out = d.step(None, &reports, false);
    assert!(out.profiles.is_empty() && out.commands.is_empty());
    assert_eq!(out.removed, ["p1"]);
    assert_eq!(d.statuses("p1").last(), Some(&(Some(Removing), None)));
    assert!(!d.tree.values.contains_key(CAMERA) && !d.tree.values.contains_key(CAMERA_RESULT));
}

#[test]
fn a_refused_delete_is_retried_after_the_verify_interval() {
    let mut d = Device::new();
    let want = [desired("p1", 1, 1, vec![setting(NODE, Format::Chr, "x")])];
    d.session(Some(&want));
    d.tree.refuse.insert(NODE.into(), "405".into());
    let out = d.step(Some(&[]), &[], true);
    let reports = [Report::Status {
        profile: "p1".into(),
        cmd: parse_command_id(&out.commands[0].id).unwrap().1,
        child: None,
        code: "405".into(),
    }];
    d.step(None, &reports, false);
    assert_eq!(d.profile("p1").status, Failed);
    assert_eq!(d.profile("p1").view().settings[0].code.as_deref(), Some("405"));
    d.now += HOUR;
    assert!(d.step(None, &[], true).commands.is_empty(), "not before the interval");
    d.now += INTERVAL;
    d.tree.refuse.clear();
    let log = d.session(None);
    assert_eq!(log, ["Delete"]);
    assert!(d.profiles.is_empty());
}

#[test]
fn conflicting_profiles_have_one_deterministic_winner_and_both_show_it() {
    let mut d = Device::new();
    let want = [
        desired("p2", 2, 1, vec![setting(CAMERA, Format::Int, "1"), setting(NODE, Format::Chr, "same")]),
        desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0"), setting(NODE, Format::Chr, "same")]),
    ];
    d.session(Some(&want));
    assert_eq!(d.tree.values.get(CAMERA_RESULT).map(String::as_str), Some("0"), "the first created wins");
    assert_eq!(d.profile("p1").status, Verified);
    assert_eq!(d.profile("p2").status, Failed);
    let loser = d.setting("p2", CAMERA);
    assert_eq!(loser.phase, Phase::Conflict);
    assert_eq!(loser.conflicts, ["p1"]);
    assert_eq!(d.setting("p1", CAMERA).conflicts, ["p2"]);
    assert_eq!(d.setting("p2", NODE).phase, Phase::Verified, "the same value is no conflict");
    assert_eq!(d.profile("p1").view().conflicts[0].profiles, ["p2"]);
    assert_eq!(d.profile("p2").view().settings[0].status, "conflict");

    // Nothing flips between check-ins, with or without news from the catalogue.
    for _ in 0..3 {
        assert!(d.session(None).is_empty());
        assert!(d.session(Some(&want)).is_empty());
    }
    // The winner goes: the other profile's value is written, the node is not deleted.
    let log = d.session(Some(&want[..1]));
    assert_eq!(log.iter().filter(|c| *c == "Delete").count(), 0, "{log:?}");
    assert_eq!(d.tree.values.get(CAMERA_RESULT).map(String::as_str), Some("1"));
    assert!(d.profiles.iter().all(|p| p.id == "p2"));
    assert_eq!(d.profile("p2").status, Verified);
    assert!(d.setting("p2", CAMERA).conflicts.is_empty());
}

#[test]
fn drift_is_read_back_once_per_interval_and_re_applied() {
    let mut d = Device::new();
    let want = [desired("p1", 1, 1, vec![setting(CAMERA, Format::Int, "0")])];
    d.session(Some(&want));
    d.now += INTERVAL - 1;
    assert!(d.session(None).is_empty(), "not due yet");
    d.now += 1;
    assert_eq!(d.session(None), ["Get"], "due: read back, still the same");
    assert_eq!(d.profile("p1").status, Verified);
    assert_eq!(d.profile("p1").checked_at, Some(d.now));

    // Someone changes the policy on the device.
    d.tree.values.insert(CAMERA_RESULT.into(), "1".into());
    d.now += HOUR;
    assert!(d.session(None).is_empty());
    d.now += INTERVAL;
    let n = d.transitions.len();
    assert_eq!(d.session(None), ["Get", "Replace", "Get"]);
    let s = d.setting("p1", CAMERA);
    assert_eq!(s.drift.as_ref().unwrap().observed.as_deref(), Some("1"));
    assert_eq!(s.observed.as_deref(), Some("0"), "re-applied and verified again");
    assert_eq!(d.profile("p1").status, Verified);
    assert_eq!(
        d.transitions[n..].iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(),
        [
            (Some(Verified), Some(Pending)),
            (Some(Pending), Some(Verifying)),
            (Some(Verifying), Some(Verified))
        ]
    );
}

#[test]
fn nodes_that_cannot_be_read_back_are_verified_on_acknowledgement() {
    let mut d = Device::new();
    let secret = "./Vendor/MSFT/WiFi/Profile/Corp/Secret";
    let exec_like = "./Device/Vendor/MSFT/Custom/WriteOnly";
    d.tree.values.insert(exec_like.into(), "".into());
    d.tree.write_only.insert(exec_like.into());
    let want = [desired(
        "p1",
        1,
        1,
        vec![
            Setting { read_back: false, ..setting(secret, Format::Chr, "hunter2") },
            setting(exec_like, Format::Chr, "go"),
        ],
    )];
    let log = d.session(Some(&want));
    assert_eq!(log, ["Replace", "Replace", "Add", "Get"], "no Get for the declared write-only node");
    assert_eq!(d.profile("p1").status, Verified);
    for uri in [secret, exec_like] {
        let s = d.setting("p1", uri);
        assert_eq!(s.verified_by, Some(VerifiedBy::Acknowledgement), "{uri}");
        assert!(s.note.as_deref().unwrap().contains("verified on acknowledgement"));
    }
    assert_eq!(d.setting("p1", exec_like).code.as_deref(), Some("200"));
}

#[test]
fn chr_and_xml_data_reach_the_device_exactly_and_the_message_stays_well_formed() {
    let admx = r#"<enabled/><data id="Publishing_Server2_Name_Prompt" value="a &amp; b"/>"#;
    let specials = r#"1 < 2 && "q" > 'p' ]]> <![CDATA[x]]>"#;
    let xml = "<wlanProfile><name>Corp &amp; Co</name></wlanProfile>";
    let want = [desired(
        "p1",
        1,
        1,
        vec![
            setting("./Device/Vendor/MSFT/Policy/Config/ADMX_X/Y", Format::Chr, admx),
            setting("./Device/Vendor/MSFT/Custom/Chr", Format::Chr, specials),
            setting("./Device/Vendor/MSFT/Custom/Xml", Format::Xml, xml),
        ],
    )];
    let out = reconcile(Input {
        desired: Some(&want),
        profiles: vec![],
        reports: &[],
        session_start: true,
        now_ms: T0,
        verify_interval_ms: INTERVAL,
    });
    let body = crate::proto::syncml::message::SyncBody {
        commands: out.commands.iter().map(|q| q.command.clone()).collect(),
        is_final: true,
    };
    let text = body.to_el().to_xml();
    let back = crate::proto::syncml::message::SyncBody::from_element(&crate::xml::parse(&text).unwrap());
    let data: Vec<String> = back
        .commands
        .iter()
        .map(|c| match c {
            Command::Replace(r) => r.items[0].data.clone().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(data, [admx, specials, xml]);
}

#[test]
fn nested_statuses_name_their_child_by_position_in_the_session() {
    use crate::proto::syncml::session::SentCommand;
    let sent = |cmd_id: &str, nested: bool| SentCommand {
        id: "p:p7:3".into(),
        msg_id: "2".into(),
        cmd_id: cmd_id.into(),
        cmd: if nested { "Replace".into() } else { "Atomic".into() },
        nested,
        status: None,
    };
    let session = Session {
        session_id: "1".into(),
        device_msg_id: 2,
        server_msg_id: 2,
        authenticated: true,
        max_msg_size: None,
        sent: vec![sent("4", false), sent("5", true), sent("6", true)],
        skipped: vec![],
        ended: false,
        last_seen: 0,
    };
    let status = |cmd_ref: &str, nested: bool, code: &str| Event::CommandStatus {
        id: Some("p:p7:3".into()),
        msg_ref: "2".into(),
        cmd_ref: cmd_ref.into(),
        cmd: "x".into(),
        code: code.into(),
        nested,
        original_error: None,
        items: vec![],
    };
    let events = [
        status("6", true, "405"),
        status("4", false, "507"),
        status("5", true, "216"),
        Event::CommandStatus {
            id: Some("0000000001".into()),
            msg_ref: "2".into(),
            cmd_ref: "7".into(),
            cmd: "Exec".into(),
            code: "200".into(),
            nested: false,
            original_error: None,
            items: vec![],
        },
    ];
    let r = reports(&events, Some(&session));
    let st = |cmd, child: Option<usize>, code: &str| Report::Status {
        profile: "p7".into(),
        cmd,
        child,
        code: code.into(),
    };
    assert_eq!(
        r,
        [st(3, Some(1), "405"), st(3, None, "507"), st(3, Some(0), "216")],
        "admin commands are not ours"
    );
}

#[test]
fn read_back_uris() {
    assert_eq!(read_back_uri(CAMERA), CAMERA_RESULT);
    assert_eq!(
        read_back_uri("./Vendor/MSFT/Policy/Config/Browser/AllowCookies"),
        "./Vendor/MSFT/Policy/Result/Browser/AllowCookies"
    );
    assert_eq!(read_back_uri("./User/Vendor/MSFT/Policy/Config/A/B"), "./User/Vendor/MSFT/Policy/Result/A/B");
    for own in [
        NODE,
        "./Device/Vendor/MSFT/Policy/ConfigOperations/ADMXInstall/App/Policy/X",
        "./Device/Vendor/MSFT/Policy/Config/A",
    ] {
        assert_eq!(read_back_uri(own), own);
    }
}

#[test]
fn stored_state_reads_back() {
    let mut d = Device::new();
    let mut p = desired(
        "p1",
        1,
        1,
        vec![
            setting(CAMERA, Format::Int, "0"),
            Setting { read_back: false, ..setting(NODE, Format::Chr, "x") },
        ],
    );
    p.atomic = true;
    d.step(Some(&[p]), &[], true);
    for p in &d.profiles {
        let text = serde_json::to_string(p).unwrap();
        assert_eq!(&serde_json::from_str::<DeviceProfile>(&text).unwrap(), p, "{text}");
    }
}
