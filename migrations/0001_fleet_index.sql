-- The fleet index: what admins list, search and count. The device objects and the profile
-- catalogue keep it in step (idempotent upserts); they stay the source of truth. Times are
-- RFC 3339 UTC text, which orders as time. Documented in README.md ("Fleet index").

CREATE TABLE IF NOT EXISTS devices (
  device_id       TEXT PRIMARY KEY,
  id_lc           TEXT NOT NULL,            -- lower-cased, for prefix search
  name            TEXT,
  name_lc         TEXT NOT NULL DEFAULT '',
  user_email      TEXT,
  user_lc         TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL,            -- enrolled | retiring | retired | unenrolled | superseded
  os_version      TEXT,
  os_edition      TEXT,
  enrollment_type TEXT NOT NULL,            -- Full | Device
  enrolled_at     TEXT NOT NULL,
  last_checkin    TEXT NOT NULL DEFAULT '', -- '' = never
  cert_not_after  TEXT NOT NULL,
  version         INTEGER NOT NULL          -- the device object's clock at the write
);
CREATE INDEX IF NOT EXISTS devices_by_checkin ON devices (last_checkin, device_id);
CREATE INDEX IF NOT EXISTS devices_by_status_checkin ON devices (status, last_checkin, device_id);
CREATE INDEX IF NOT EXISTS devices_by_name ON devices (name_lc, device_id);
CREATE INDEX IF NOT EXISTS devices_by_user ON devices (user_lc);
CREATE INDEX IF NOT EXISTS devices_by_id_lc ON devices (id_lc);
CREATE INDEX IF NOT EXISTS devices_by_enrolled ON devices (enrolled_at, device_id);
CREATE INDEX IF NOT EXISTS devices_by_os ON devices (os_version, status);
CREATE INDEX IF NOT EXISTS devices_by_cert ON devices (status, cert_not_after);

CREATE TABLE IF NOT EXISTS device_groups (
  device_id  TEXT NOT NULL,
  group_name TEXT NOT NULL,
  PRIMARY KEY (device_id, group_name)
);
CREATE INDEX IF NOT EXISTS device_groups_by_group ON device_groups (group_name, device_id);

CREATE TABLE IF NOT EXISTS device_profiles (
  device_id  TEXT NOT NULL,
  profile_id TEXT NOT NULL,
  status     TEXT NOT NULL,                 -- pending | verifying | verified | failed | removing
  updated_at TEXT NOT NULL,
  PRIMARY KEY (device_id, profile_id)
);
CREATE INDEX IF NOT EXISTS device_profiles_by_status ON device_profiles (status, profile_id, device_id);
CREATE INDEX IF NOT EXISTS device_profiles_by_profile ON device_profiles (profile_id, status, device_id);

CREATE TABLE IF NOT EXISTS audit_log (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT NOT NULL,
  actor   TEXT NOT NULL,                    -- admin email, "bootstrap", or the email tried
  action  TEXT NOT NULL,                    -- <noun>.<verb>, e.g. device.retire
  target  TEXT,                             -- device:<id>, user:<email>, profile:<id>, ...
  detail  TEXT,                             -- what the target does not say: the command type
  address TEXT,                             -- the client address (CF-Connecting-IP)
  result  TEXT NOT NULL,                    -- ok | denied | failed
  status  INTEGER NOT NULL                  -- the HTTP status answered
);
CREATE INDEX IF NOT EXISTS audit_by_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_by_actor ON audit_log (actor, id);
CREATE INDEX IF NOT EXISTS audit_by_target ON audit_log (target, id);
CREATE INDEX IF NOT EXISTS audit_by_action ON audit_log (action, id);
