//! The fleet index: what admins list, search and count, kept in D1 (SQLite) by the objects that
//! own the data (the device objects write `devices`, the profile catalogue `device_groups` and
//! `device_profiles`; the edge appends to `audit_log`). The objects stay the source of truth;
//! every write here is an idempotent upsert, so a retried or repeated write does no harm.
//!
//! This module builds the rows and the SQL (tables in `migrations/`); the shell only binds and
//! runs it. Lists are keyset-paginated: a cursor is the last row's sort key, so a page costs
//! the same at row 100,000 as at row 0.

use crate::codec::{decode_base64, encode_base64};
use crate::commands::Management;
use crate::device::{valid_device_id, DeviceRecord, DeviceStatus, EnrollmentType};
use crate::profiles::{valid_group_name, valid_profile_id, ProfileStatus};
use serde::{Deserialize, Serialize};

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sql {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Sql {
    fn from(s: &str) -> Self {
        Sql::Text(s.to_string())
    }
}

impl From<Option<&str>> for Sql {
    fn from(s: Option<&str>) -> Self {
        s.map_or(Sql::Null, Sql::from)
    }
}

/// A statement and its parameters (`?1`, `?2`, … in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Sql>,
}

impl Statement {
    fn new(sql: impl Into<String>, params: Vec<Sql>) -> Self {
        Statement { sql: sql.into(), params }
    }
}

/// The inventory node Windows reports its OS version in (DevDetail CSP).
const SWV: &str = "./DevDetail/SwV";

/// A device's row in the index (`devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRow {
    pub device_id: String,
    pub device_name: Option<String>,
    pub user: Option<String>,
    pub status: DeviceStatus,
    pub os_version: Option<String>,
    pub os_edition: Option<String>,
    pub enrollment_type: EnrollmentType,
    pub enrolled_at: String,
    pub last_checkin: Option<String>,
    pub certificate_not_after: String,
}

impl IndexRow {
    pub fn of(record: &DeviceRecord, mgmt: Option<&Management>) -> IndexRow {
        let reported = mgmt.and_then(|m| m.inventory.get(SWV)).filter(|v| !v.is_empty());
        IndexRow {
            device_id: record.identity.device_id.clone(),
            device_name: record.identity.device_name.clone(),
            user: record.user.clone(),
            status: record.status,
            os_version: reported.cloned().or_else(|| record.identity.os_version.clone()),
            os_edition: record.identity.os_edition.clone(),
            enrollment_type: record.identity.enrollment_type,
            enrolled_at: record.enrolled_at.clone(),
            last_checkin: mgmt.and_then(|m| m.last_checkin.clone()),
            certificate_not_after: record.certificate.not_after.clone(),
        }
    }

    /// A digest of everything but the check-in time: a change means the index is behind.
    fn digest(&self) -> String {
        let mut rest = self.clone();
        rest.last_checkin = None;
        let json = serde_json::to_vec(&rest).unwrap_or_default();
        crate::codec::hex(&<sha2::Sha256 as sha2::Digest>::digest(&json)[..12])
    }

    /// The upsert. `version` orders writes of one device (the object's clock): an older write
    /// that arrives late changes nothing.
    pub fn upsert(&self, version: u64) -> Statement {
        let lc = |s: Option<&str>| Sql::Text(s.unwrap_or_default().to_lowercase());
        Statement::new(
            "INSERT INTO devices (device_id, id_lc, name, name_lc, user_email, user_lc, status, \
             os_version, os_edition, enrollment_type, enrolled_at, last_checkin, cert_not_after, version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (device_id) DO UPDATE SET name = ?3, name_lc = ?4, user_email = ?5, \
             user_lc = ?6, status = ?7, os_version = ?8, os_edition = ?9, enrollment_type = ?10, \
             enrolled_at = ?11, last_checkin = ?12, cert_not_after = ?13, version = ?14 \
             WHERE devices.version <= ?14",
            vec![
                self.device_id.as_str().into(),
                lc(Some(&self.device_id)),
                self.device_name.as_deref().into(),
                lc(self.device_name.as_deref()),
                self.user.as_deref().into(),
                lc(self.user.as_deref()),
                status_name(self.status).into(),
                self.os_version.as_deref().into(),
                self.os_edition.as_deref().into(),
                enrollment_type_name(self.enrollment_type).into(),
                self.enrolled_at.as_str().into(),
                // '' sorts before every time: devices that never checked in list last.
                Sql::Text(self.last_checkin.clone().unwrap_or_default()),
                self.certificate_not_after.as_str().into(),
                Sql::Int(version as i64),
            ],
        )
    }
}

pub fn status_name(s: DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Enrolled => "enrolled",
        DeviceStatus::Retiring => "retiring",
        DeviceStatus::Retired => "retired",
        DeviceStatus::Unenrolled => "unenrolled",
        DeviceStatus::Superseded => "superseded",
    }
}

fn enrollment_type_name(t: EnrollmentType) -> &'static str {
    match t {
        EnrollmentType::Full => "Full",
        EnrollmentType::Device => "Device",
    }
}

pub fn profile_status_name(s: ProfileStatus) -> &'static str {
    match s {
        ProfileStatus::Pending => "pending",
        ProfileStatus::Verifying => "verifying",
        ProfileStatus::Verified => "verified",
        ProfileStatus::Failed => "failed",
        ProfileStatus::Removing => "removing",
    }
}

/// What the device object remembers of its last index write (in its state row, which it
/// writes at every message anyway, so remembering costs no extra row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMark {
    pub digest: String,
    /// The check-in time last written.
    pub checkin: Option<String>,
}

/// What to write when the index is behind a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexWrite {
    /// The whole row: something besides the check-in time changed (or nothing was written yet).
    Row,
    /// Only the check-in time moved: a narrow update, which D1 bills as the row and the two
    /// indexes that hold the time, where rewriting the row touches every index (8 rows).
    Checkin,
}

impl IndexWrite {
    pub fn statement(self, row: &IndexRow, version: u64) -> Statement {
        match self {
            IndexWrite::Row => row.upsert(version),
            IndexWrite::Checkin => Statement::new(
                "UPDATE devices SET last_checkin = ?2, version = ?3 WHERE device_id = ?1 AND version <= ?3",
                vec![
                    row.device_id.as_str().into(),
                    Sql::Text(row.last_checkin.clone().unwrap_or_default()),
                    Sql::Int(version as i64),
                ],
            ),
        }
    }
}

/// What to write when the index is behind: anything but the check-in time changed, or the
/// check-in time moved by `granularity_secs` or more (so the messages of one session, and a
/// busy device, write the index once per period, not per message). Returns the new mark too.
pub fn index_update(
    row: &IndexRow,
    mark: Option<&IndexMark>,
    granularity_secs: u64,
) -> Option<(IndexWrite, IndexMark)> {
    let digest = row.digest();
    let moved = |from: &Option<String>| match (from, &row.last_checkin) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => {
            match (crate::time::parse_timestamp_ms(a), crate::time::parse_timestamp_ms(b)) {
                (Some(a), Some(b)) => b.saturating_sub(a) >= granularity_secs * 1000,
                _ => a != b,
            }
        }
    };
    let write = match mark {
        None => IndexWrite::Row,
        Some(m) if m.digest != digest => IndexWrite::Row,
        Some(m) if moved(&m.checkin) => IndexWrite::Checkin,
        Some(_) => return None,
    };
    Some((write, IndexMark { digest, checkin: row.last_checkin.clone() }))
}

/// Group membership, mirrored from the profile catalogue.
pub fn member(group: &str, device_id: &str, present: bool) -> Statement {
    let params = vec![device_id.into(), group.into()];
    if present {
        Statement::new("INSERT OR IGNORE INTO device_groups (device_id, group_name) VALUES (?1, ?2)", params)
    } else {
        Statement::new("DELETE FROM device_groups WHERE device_id = ?1 AND group_name = ?2", params)
    }
}

/// A profile's status on a device, mirrored from the profile catalogue (`None`: removed).
pub fn profile_status(
    profile_id: &str,
    device_id: &str,
    status: Option<ProfileStatus>,
    at: &str,
) -> Statement {
    match status {
        Some(s) => Statement::new(
            "INSERT INTO device_profiles (device_id, profile_id, status, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (device_id, profile_id) DO UPDATE SET status = ?3, updated_at = ?4 \
             WHERE device_profiles.updated_at <= ?4",
            vec![device_id.into(), profile_id.into(), profile_status_name(s).into(), at.into()],
        ),
        None => Statement::new(
            "DELETE FROM device_profiles WHERE device_id = ?1 AND profile_id = ?2",
            vec![device_id.into(), profile_id.into()],
        ),
    }
}

/// Everything the index holds of one device, rewritten from the objects (`POST
/// /api/v1/index/rebuild`: an upgrade from a version without the index, or an index restored
/// from nothing). One transaction: the row, then its groups and profile statuses replaced.
pub fn rebuild_device(
    row: &IndexRow,
    groups: &[String],
    profiles: &[(String, ProfileStatus, String)],
    version: u64,
) -> Vec<Statement> {
    let id = row.device_id.as_str();
    let mut out = vec![
        row.upsert(version),
        Statement::new("DELETE FROM device_groups WHERE device_id = ?1", vec![id.into()]),
        Statement::new("DELETE FROM device_profiles WHERE device_id = ?1", vec![id.into()]),
    ];
    out.extend(groups.iter().map(|g| member(g, id, true)));
    out.extend(profiles.iter().map(|(p, status, at)| profile_status(p, id, Some(*status), at)));
    out
}

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
const MAX_QUERY_LEN: usize = 128;

/// How `GET /api/v1/devices` sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSort {
    /// Most recent check-in first (the default).
    LastCheckinDesc,
    LastCheckinAsc,
    Name,
    EnrolledDesc,
}

impl DeviceSort {
    fn column(self) -> &'static str {
        match self {
            DeviceSort::LastCheckinDesc | DeviceSort::LastCheckinAsc => "last_checkin",
            DeviceSort::Name => "name_lc",
            DeviceSort::EnrolledDesc => "enrolled_at",
        }
    }

    fn descending(self) -> bool {
        matches!(self, DeviceSort::LastCheckinDesc | DeviceSort::EnrolledDesc)
    }
}

/// A page of the device list: filters, sort, and where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceQuery {
    pub q: Option<String>,
    pub status: Option<DeviceStatus>,
    pub os_version: Option<String>,
    pub group: Option<String>,
    pub profile: Option<String>,
    pub profile_status: Option<ProfileStatus>,
    pub sort: DeviceSort,
    pub limit: usize,
    /// The sort key and device id of the last row of the previous page.
    pub after: Option<(String, String)>,
}

fn parse_status(s: &str) -> Option<DeviceStatus> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn parse_profile_status(s: &str) -> Option<ProfileStatus> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn parse_limit(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(format!("limit must be 1 to {MAX_PAGE}")),
    }
}

fn encode_cursor<T: Serialize>(v: &T) -> String {
    encode_base64(&serde_json::to_vec(v).unwrap_or_default())
        .replace('+', "-")
        .replace('/', "_")
        .replace('=', "")
}

fn decode_cursor<T: for<'a> Deserialize<'a>>(c: &str) -> Option<T> {
    if c.len() > 512 {
        return None;
    }
    let mut b64 = c.replace('-', "+").replace('_', "/");
    while !b64.len().is_multiple_of(4) {
        b64.push('=');
    }
    crate::codec::from_json(&decode_base64(&b64)?).ok()
}

impl DeviceQuery {
    /// The query from `GET /api/v1/devices`'s parameters, or what is wrong with them.
    pub fn parse(pairs: impl IntoIterator<Item = (String, String)>) -> Result<DeviceQuery, String> {
        let mut q = DeviceQuery {
            q: None,
            status: None,
            os_version: None,
            group: None,
            profile: None,
            profile_status: None,
            sort: DeviceSort::LastCheckinDesc,
            limit: DEFAULT_PAGE,
            after: None,
        };
        let mut cursor = None;
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "q" if v.chars().count() <= MAX_QUERY_LEN => q.q = Some(v.trim().to_lowercase()),
                "q" => return Err(format!("q must be at most {MAX_QUERY_LEN} characters")),
                "status" => q.status = Some(parse_status(&v).ok_or("unknown status")?),
                "os_version" if v.len() <= MAX_QUERY_LEN => q.os_version = Some(v),
                "os_version" => return Err("os_version too long".into()),
                "group" if valid_group_name(&v) => q.group = Some(v),
                "group" => return Err("malformed group name".into()),
                "profile" if valid_profile_id(&v) => q.profile = Some(v),
                "profile" => return Err("malformed profile id".into()),
                "profile_status" => {
                    q.profile_status = Some(parse_profile_status(&v).ok_or("unknown profile status")?)
                }
                "sort" => {
                    q.sort = match v.as_str() {
                        "-last_checkin" => DeviceSort::LastCheckinDesc,
                        "last_checkin" => DeviceSort::LastCheckinAsc,
                        "name" => DeviceSort::Name,
                        "-enrolled_at" => DeviceSort::EnrolledDesc,
                        _ => {
                            return Err(
                                "sort must be -last_checkin, last_checkin, name or -enrolled_at".into()
                            )
                        }
                    }
                }
                "limit" => q.limit = parse_limit(&v)?,
                "cursor" => cursor = Some(v),
                _ => {}
            }
        }
        if let Some(c) = cursor {
            let (key, id): (String, String) = decode_cursor(&c).ok_or("malformed cursor")?;
            if !valid_device_id(&id) || key.len() > 256 {
                return Err("malformed cursor".into());
            }
            q.after = Some((key, id));
        }
        Ok(q)
    }

    /// `WHERE` conditions and their parameters, without the page position.
    fn filters(&self) -> (Vec<String>, Vec<Sql>) {
        let mut cond = Vec::new();
        let mut params = Vec::new();
        let p = |v: Sql, params: &mut Vec<Sql>| {
            params.push(v);
            format!("?{}", params.len())
        };
        if let Some(text) = self.q.as_deref().filter(|t| !t.is_empty()) {
            // Prefix ranges on lower-cased columns: each is one index range.
            let lo = p(Sql::Text(text.to_string()), &mut params);
            let hi = p(Sql::Text(format!("{text}\u{10FFFF}")), &mut params);
            cond.push(format!(
                "((name_lc >= {lo} AND name_lc < {hi}) OR (user_lc >= {lo} AND user_lc < {hi}) \
                 OR (id_lc >= {lo} AND id_lc < {hi}))"
            ));
        }
        if let Some(s) = self.status {
            cond.push(format!("status = {}", p(status_name(s).into(), &mut params)));
        }
        if let Some(v) = &self.os_version {
            cond.push(format!("os_version = {}", p(v.as_str().into(), &mut params)));
        }
        if let Some(g) = &self.group {
            let g = p(g.as_str().into(), &mut params);
            cond.push(format!("device_id IN (SELECT device_id FROM device_groups WHERE group_name = {g})"));
        }
        if self.profile.is_some() || self.profile_status.is_some() {
            let mut sub = Vec::new();
            if let Some(id) = &self.profile {
                sub.push(format!("profile_id = {}", p(id.as_str().into(), &mut params)));
            }
            if let Some(s) = self.profile_status {
                sub.push(format!("status = {}", p(profile_status_name(s).into(), &mut params)));
            }
            cond.push(format!(
                "device_id IN (SELECT device_id FROM device_profiles WHERE {})",
                sub.join(" AND ")
            ));
        }
        (cond, params)
    }

    /// The page (one row more than the limit, to know whether another page follows).
    pub fn page(&self) -> Statement {
        let (mut cond, mut params) = self.filters();
        // Qualified: in ORDER BY a bare name means the result column of that alias first, and
        // `NULLIF(last_checkin, '') AS last_checkin` would then sort by an expression no index
        // covers (a scan and a sort of every row) instead of walking the index.
        let col = format!("devices.{}", self.sort.column());
        let (cmp, dir) = if self.sort.descending() { ("<", "DESC") } else { (">", "ASC") };
        if let Some((key, id)) = &self.after {
            params.push(Sql::Text(key.clone()));
            params.push(Sql::Text(id.clone()));
            let n = params.len();
            cond.push(format!("({col}, devices.device_id) {cmp} (?{}, ?{n})", n - 1));
        }
        params.push(Sql::Int(self.limit as i64 + 1));
        let where_ = if cond.is_empty() { String::new() } else { format!(" WHERE {}", cond.join(" AND ")) };
        Statement::new(
            format!(
                "SELECT device_id, name AS device_name, user_email AS user, status, os_version, os_edition, \
                 enrollment_type, enrolled_at, NULLIF(last_checkin, '') AS last_checkin, \
                 cert_not_after AS certificate_not_after, {col} AS sort_key, \
                 (SELECT group_concat(group_name, ',') FROM device_groups g WHERE g.device_id = devices.device_id) AS groups \
                 FROM devices{where_} ORDER BY {col} {dir}, devices.device_id {dir} LIMIT ?{}",
                params.len()
            ),
            params,
        )
    }

    /// How many devices match the filters.
    pub fn count(&self) -> Statement {
        let (cond, params) = self.filters();
        let where_ = if cond.is_empty() { String::new() } else { format!(" WHERE {}", cond.join(" AND ")) };
        Statement::new(format!("SELECT COUNT(*) AS n FROM devices{where_}"), params)
    }

    /// The page's devices and the next page's cursor, from the rows of [`DeviceQuery::page`].
    pub fn finish(&self, mut rows: Vec<DeviceListRow>) -> (Vec<DeviceSummary>, Option<String>) {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next =
            if more { rows.last().map(|r| encode_cursor(&(&r.sort_key, &r.row.device_id))) } else { None };
        (rows.into_iter().map(DeviceSummary::from).collect(), next)
    }
}

/// A row as [`DeviceQuery::page`] selects it: the columns are named as [`IndexRow`]'s fields,
/// so a row the index should not hold (an unknown status) fails to read rather than being
/// guessed at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceListRow {
    #[serde(flatten)]
    pub row: IndexRow,
    pub sort_key: String,
    pub groups: Option<String>,
}

/// A device in `GET /api/v1/devices`: its index row and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    #[serde(flatten)]
    pub row: IndexRow,
    pub groups: Vec<String>,
}

impl From<DeviceListRow> for DeviceSummary {
    fn from(r: DeviceListRow) -> Self {
        let mut groups: Vec<String> =
            r.groups.unwrap_or_default().split(',').filter(|g| !g.is_empty()).map(String::from).collect();
        crate::sorting::sort(&mut groups);
        DeviceSummary { row: r.row, groups }
    }
}

/// The dashboard's counts, one statement each (run as one batch). `now` and the bounds are
/// RFC 3339 times, which order as text.
pub fn stats(day_ago: &str, in_30_days: &str) -> Vec<Statement> {
    vec![
        Statement::new("SELECT status AS key, COUNT(*) AS n FROM devices GROUP BY status", vec![]),
        Statement::new(
            "SELECT os_version AS key, COUNT(*) AS n FROM devices WHERE status IN ('enrolled', 'retiring') \
             GROUP BY os_version ORDER BY n DESC, key LIMIT 20",
            vec![],
        ),
        Statement::new(
            "SELECT NULL AS key, COUNT(*) AS n FROM devices WHERE last_checkin >= ?1",
            vec![day_ago.into()],
        ),
        Statement::new(
            "SELECT NULL AS key, COUNT(*) AS n FROM devices WHERE status = 'enrolled' AND cert_not_after < ?1",
            vec![in_30_days.into()],
        ),
        Statement::new(
            "SELECT profile_id AS key, COUNT(*) AS n FROM device_profiles WHERE status = 'failed' \
             GROUP BY profile_id ORDER BY n DESC, key LIMIT 50",
            vec![],
        ),
    ]
}

/// One `key, n` row of a [`stats`] statement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CountRow {
    pub key: Option<String>,
    pub n: i64,
}

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total_devices: i64,
    pub devices_by_status: std::collections::BTreeMap<String, i64>,
    pub devices_by_os_version: Vec<OsCount>,
    pub checkins_last_24h: i64,
    pub certificates_expiring_30d: i64,
    pub failing_profiles: Vec<FailingProfile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsCount {
    pub os_version: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingProfile {
    pub profile_id: String,
    pub devices: i64,
}

impl Stats {
    /// From the rows of the [`stats`] statements, in order.
    pub fn from_rows(rows: Vec<Vec<CountRow>>) -> Option<Stats> {
        let [status, os, checkins, expiring, failing]: [Vec<CountRow>; 5] = rows.try_into().ok()?;
        let n = |r: &[CountRow]| r.first().map_or(0, |c| c.n);
        let devices_by_status: std::collections::BTreeMap<String, i64> =
            status.into_iter().filter_map(|r| Some((r.key?, r.n))).collect();
        Some(Stats {
            total_devices: devices_by_status.values().sum(),
            devices_by_status,
            devices_by_os_version: os
                .into_iter()
                .map(|r| OsCount { os_version: r.key, count: r.n })
                .collect(),
            checkins_last_24h: n(&checkins),
            certificates_expiring_30d: n(&expiring),
            failing_profiles: failing
                .into_iter()
                .filter_map(|r| Some(FailingProfile { profile_id: r.key?, devices: r.n }))
                .collect(),
        })
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    Ok,
    /// Refused for who asked: wrong credentials, role, CSRF token, rate limit.
    Denied,
    /// Refused for what was asked, or failed.
    Failed,
}

impl AuditResult {
    /// From the answer's HTTP status.
    pub fn of_status(status: u16) -> AuditResult {
        match status {
            200..=299 => AuditResult::Ok,
            401 | 403 | 429 => AuditResult::Denied,
            _ => AuditResult::Failed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Denied => "denied",
            AuditResult::Failed => "failed",
        }
    }
}

/// An audit log entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
    pub status: u16,
}

impl AuditRecord {
    /// The insert, and the deletion of entries older than `keep_from` (the retention), which
    /// is one index range per write.
    pub fn insert(&self, keep_from: &str) -> Vec<Statement> {
        vec![
            Statement::new(
                "INSERT INTO audit_log (at, actor, action, target, address, result, status, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                vec![
                    self.at.as_str().into(),
                    truncate(&self.actor).as_str().into(),
                    self.action.as_str().into(),
                    self.target.as_deref().map(truncate).as_deref().into(),
                    self.address.as_deref().into(),
                    AuditResult::of_status(self.status).name().into(),
                    Sql::Int(self.status.into()),
                    self.detail.as_deref().map(truncate).as_deref().into(),
                ],
            ),
            Statement::new("DELETE FROM audit_log WHERE at < ?1", vec![keep_from.into()]),
        ]
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(256).collect()
}

/// `GET /api/v1/audit`: exact filters, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub limit: usize,
    pub before_id: Option<i64>,
}

impl AuditQuery {
    pub fn parse(pairs: impl IntoIterator<Item = (String, String)>) -> Result<AuditQuery, String> {
        let mut q =
            AuditQuery { actor: None, target: None, action: None, limit: DEFAULT_PAGE, before_id: None };
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            if v.chars().count() > 256 {
                return Err(format!("{k} too long"));
            }
            match k.as_str() {
                "actor" => q.actor = Some(v),
                "target" => q.target = Some(v),
                "action" => q.action = Some(v),
                "limit" => q.limit = parse_limit(&v)?,
                "cursor" => q.before_id = Some(decode_cursor::<i64>(&v).ok_or("malformed cursor")?),
                _ => {}
            }
        }
        Ok(q)
    }

    pub fn page(&self) -> Statement {
        let mut cond = Vec::new();
        let mut params = Vec::new();
        for (col, v) in [("actor", &self.actor), ("target", &self.target), ("action", &self.action)] {
            if let Some(v) = v {
                params.push(Sql::Text(v.clone()));
                cond.push(format!("{col} = ?{}", params.len()));
            }
        }
        if let Some(id) = self.before_id {
            params.push(Sql::Int(id));
            cond.push(format!("id < ?{}", params.len()));
        }
        params.push(Sql::Int(self.limit as i64 + 1));
        let where_ = if cond.is_empty() { String::new() } else { format!(" WHERE {}", cond.join(" AND ")) };
        Statement::new(
            format!(
                "SELECT id, at, actor, action, target, detail, address, result, status FROM audit_log{where_} \
                 ORDER BY id DESC LIMIT ?{}",
                params.len()
            ),
            params,
        )
    }

    pub fn finish(&self, mut rows: Vec<AuditEntry>) -> (Vec<AuditEntry>, Option<String>) {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next = if more { rows.last().map(|r| encode_cursor(&r.id)) } else { None };
        (rows, next)
    }
}

/// An audit log entry as `GET /api/v1/audit` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
    pub result: String,
    pub status: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{CertRef, DeviceIdentity};

    fn record() -> DeviceRecord {
        DeviceRecord {
            identity: DeviceIdentity {
                device_id: "ABC".into(),
                hw_dev_id: None,
                device_name: Some("Desk-1".into()),
                device_type: None,
                os_version: Some("10.0.19045.0".into()),
                os_edition: Some("48".into()),
                application_version: None,
                enrollment_type: EnrollmentType::Full,
                context: vec![],
            },
            user: Some("a@b.c".into()),
            certificate: CertRef {
                serial: "01".into(),
                thumbprint: "T".into(),
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: "2027-01-01T00:00:00Z".into(),
                renews: None,
            },
            status: DeviceStatus::Enrolled,
            enrolled_at: "2026-01-01T00:00:00Z".into(),
            renewed_at: None,
            retired_at: None,
        }
    }

    fn mgmt(checkin: &str) -> Management {
        Management {
            inventory: [(SWV.to_string(), "10.0.22631.1".to_string())].into_iter().collect(),
            last_checkin: Some(checkin.into()),
            retire_requested: false,
            alerts: vec![],
        }
    }

    #[test]
    fn the_index_is_written_when_it_is_behind() {
        let rec = record();
        let row = IndexRow::of(&rec, Some(&mgmt("2026-01-01T10:00:00Z")));
        assert_eq!(row.os_version.as_deref(), Some("10.0.22631.1"), "the reported version wins");
        let (write, mark) = index_update(&row, None, 900).expect("never indexed");
        assert_eq!(write, IndexWrite::Row);
        // Another message of the same session: nothing to write.
        let later = IndexRow::of(&rec, Some(&mgmt("2026-01-01T10:05:00Z")));
        assert_eq!(index_update(&later, Some(&mark), 900), None);
        // The next session, 15 minutes on: only the check-in time moves.
        let next = IndexRow::of(&rec, Some(&mgmt("2026-01-01T10:15:00Z")));
        let (write, _) = index_update(&next, Some(&mark), 900).unwrap();
        assert_eq!(write, IndexWrite::Checkin);
        let s = write.statement(&next, 5);
        assert!(s.sql.starts_with("UPDATE devices SET last_checkin = ?2, version = ?3"));
        assert_eq!(s.params[1], Sql::Text("2026-01-01T10:15:00Z".into()));
        // A status change is written at once, whole.
        let mut retired = rec.clone();
        retired.status = DeviceStatus::Retiring;
        let row = IndexRow::of(&retired, Some(&mgmt("2026-01-01T10:01:00Z")));
        assert_eq!(index_update(&row, Some(&mark), 900).map(|(w, _)| w), Some(IndexWrite::Row));
    }

    #[test]
    fn a_rebuild_replaces_what_the_index_holds_of_a_device() {
        let row = IndexRow::of(&record(), None);
        let s =
            rebuild_device(&row, &["g1".into()], &[("p1".into(), ProfileStatus::Verified, "t".into())], 9);
        assert_eq!(s.len(), 5);
        assert!(
            s[1].sql.starts_with("DELETE FROM device_groups")
                && s[2].sql.starts_with("DELETE FROM device_profiles")
        );
        assert_eq!(s[3].params, vec![Sql::Text("ABC".into()), Sql::Text("g1".into())]);
        assert_eq!(s[4].params[2], Sql::Text("verified".into()));
    }

    #[test]
    fn upserts_are_ordered_by_version() {
        let s = IndexRow::of(&record(), None).upsert(7);
        assert!(s.sql.contains("WHERE devices.version <= ?14"));
        assert_eq!(s.params.len(), 14);
        assert_eq!(s.params[11], Sql::Text(String::new()), "never checked in sorts last");
        assert_eq!(s.params[3], Sql::Text("desk-1".into()));
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn device_queries_bind_every_value() {
        let q = DeviceQuery::parse(pairs(&[
            ("q", "Desk"),
            ("status", "enrolled"),
            ("group", "finance"),
            ("profile_status", "failed"),
            ("limit", "10"),
        ]))
        .unwrap();
        let s = q.page();
        assert!(!s.sql.contains("Desk") && !s.sql.contains("finance"), "values are parameters: {}", s.sql);
        assert_eq!(s.params[0], Sql::Text("desk".into()));
        assert_eq!(s.params.last(), Some(&Sql::Int(11)));
        assert_eq!(s.params.len(), 6);
        assert!(s.sql.contains("?6") && !s.sql.contains("?7"), "{}", s.sql);
        for bad in [
            ("status", "gone"),
            ("limit", "0"),
            ("limit", "201"),
            ("group", "a b"),
            ("sort", "x"),
            ("cursor", "!!"),
        ] {
            assert!(DeviceQuery::parse(pairs(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_continue_after_the_last_row() {
        let q = DeviceQuery::parse(pairs(&[("limit", "2")])).unwrap();
        // Rows as D1 returns them for the page's SELECT.
        let json = |id: &str, at: &str, status: &str| {
            serde_json::json!({
                "device_id": id, "device_name": null, "user": null, "status": status,
                "os_version": null, "os_edition": null, "enrollment_type": "Full", "enrolled_at": "x",
                "last_checkin": if at.is_empty() { serde_json::Value::Null } else { at.into() },
                "certificate_not_after": "y", "sort_key": at, "groups": "b,a",
            })
        };
        let row =
            |id: &str, at: &str| serde_json::from_value::<DeviceListRow>(json(id, at, "enrolled")).unwrap();
        let (list, next) = q.finish(vec![row("C", "3"), row("B", "2"), row("A", "")]);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].groups, vec!["a", "b"]);
        let next = next.expect("a third row exists");
        let q2 = DeviceQuery::parse(pairs(&[("cursor", &next)])).unwrap();
        assert_eq!(q2.after, Some(("2".into(), "B".into())));
        let sql = q2.page().sql;
        assert!(sql.contains("(devices.last_checkin, devices.device_id) < (?1, ?2)"), "{sql}");
        // The table's column, not the `NULLIF(…) AS last_checkin` result column: the index sorts.
        assert!(sql.contains("ORDER BY devices.last_checkin DESC, devices.device_id DESC"), "{sql}");
        let (_, none) = q.finish(vec![row("C", "3")]);
        assert_eq!(none, None);
        assert_eq!(list[1].row.last_checkin.as_deref(), Some("2"));
        assert_eq!(DeviceSummary::from(row("A", "")).row.last_checkin, None);
        assert!(
            serde_json::from_value::<DeviceListRow>(json("A", "", "lost")).is_err(),
            "a row the index should not hold is an error, not a guess"
        );
    }

    #[test]
    fn audit_pages_go_back_in_time() {
        let q = AuditQuery::parse(pairs(&[("actor", "a@b.c"), ("limit", "1")])).unwrap();
        let e = |id| AuditEntry {
            id,
            at: "t".into(),
            actor: "a@b.c".into(),
            action: "user.create".into(),
            target: None,
            detail: None,
            address: None,
            result: "ok".into(),
            status: 201,
        };
        let (rows, next) = q.finish(vec![e(9), e(8)]);
        assert_eq!(rows.len(), 1);
        let q2 = AuditQuery::parse(pairs(&[("cursor", &next.unwrap())])).unwrap();
        assert_eq!(q2.before_id, Some(9));
        assert!(q2.page().sql.contains("id < ?1"));
        let ins = AuditRecord {
            at: "t".into(),
            actor: "x".into(),
            action: "session.failed".into(),
            target: None,
            detail: None,
            address: Some("1.2.3.4".into()),
            status: 401,
        }
        .insert("t0");
        assert_eq!(ins[0].params[5], Sql::Text("denied".into()));
    }

    #[test]
    fn stats_from_rows() {
        let r = |k: Option<&str>, n| CountRow { key: k.map(String::from), n };
        let s = Stats::from_rows(vec![
            vec![r(Some("enrolled"), 3), r(Some("retired"), 1)],
            vec![r(Some("10.0"), 2), r(None, 1)],
            vec![r(None, 2)],
            vec![r(None, 0)],
            vec![r(Some("p1"), 1)],
        ])
        .unwrap();
        assert_eq!((s.total_devices, s.checkins_last_24h, s.failing_profiles.len()), (4, 2, 1));
        assert!(Stats::from_rows(vec![]).is_none());
    }
}
