// End to end against the real worker in workerd: named admins and their roles, console sessions
// (cookie + CSRF), API tokens, the audit log, and the fleet index in D1 (pagination, filters,
// counts, and catching up after it was unavailable). Refusals are written as the attacker's
// steps, each followed by the legitimate admin or device still working.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { request } from './support/device.mjs';
import { createUser, enrollDevice } from './support/enroll.mjs';
import { SyncMLDevice } from './support/syncml-device.mjs';
import { ROOT as REPO, d1, startWorker } from './support/worker.mjs';

const PW = 'a long admin passphrase';
const USER_PW = 'device user password 1';
const ROOT = 'root@contoso.com';
const OPERATOR = 'op@contoso.com';
const VIEWER = 'viewer@contoso.com';

let w;

before(async () => {
  w = await startWorker({
    vars: { AUTH_POLICY: 'OnPremise', LOGIN_MAX_FAILURES: '4', INDEX_RETRY_SECONDS: '1', RETIRE_GRACE_SECONDS: '3600' },
  });
});
after(async () => {
  await w?.stop();
});

/** One admin API call. `auth`: { token } (bearer), { cookie, csrf } (console), or nothing. */
async function api(method, path, { auth = { token: w.adminToken }, body, headers = {} } = {}) {
  const h = { ...headers };
  if (auth?.token) h.authorization = `Bearer ${auth.token}`;
  if (auth?.cookie) h.cookie = auth.cookie;
  if (auth?.csrf) h['x-csrf-token'] = auth.csrf;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await request(`${w.url}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, body: json, text, headers: res.headers };
}

async function signIn(email, password = PW) {
  const r = await api('POST', '/api/v1/session', { auth: null, body: { email, password } });
  if (r.status !== 200) return { status: r.status, r };
  const setCookie = r.headers.get('set-cookie');
  return { status: 200, cookie: setCookie.split(';')[0], csrf: r.body.csrf_token, setCookie, admin: r.body.admin };
}

async function createAdmin(email, role, auth) {
  const r = await api('POST', '/api/v1/admins', { auth, body: { email, display_name: email.split('@')[0], password: PW, role } });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

/** An API token of `email`, made through its console session. */
async function apiToken(email, name = 'automation') {
  const s = await signIn(email);
  assert.equal(s.status, 200);
  const r = await api('POST', '/api/v1/api-tokens', { auth: s, body: { name } });
  assert.equal(r.status, 201, r.text);
  assert.match(r.body.token, /^emt_[0-9a-f]{80}$/);
  return r.body;
}

async function audit(query) {
  const r = await api('GET', `/api/v1/audit?${new URLSearchParams(query)}`);
  assert.equal(r.status, 200, r.text);
  return r.body.entries;
}

describe('roles', () => {
  const tokens = {};

  before(async () => {
    await createAdmin(ROOT, 'admin');
    await createAdmin(OPERATOR, 'operator');
    await createAdmin(VIEWER, 'viewer');
    for (const [role, email] of [['admin', ROOT], ['operator', OPERATOR], ['viewer', VIEWER]]) {
      tokens[role] = (await apiToken(email)).token;
    }
    await createUser(w, 'enrollee@contoso.com', USER_PW);
  });

  test('each role against each route', async () => {
    const rank = { viewer: 0, operator: 1, admin: 2 };
    let n = 0;
    const routes = () => {
      n += 1;
      return [
        ['GET', '/api/v1/devices', 'viewer'],
        ['GET', '/api/v1/devices?status=enrolled&sort=name', 'viewer'],
        ['GET', '/api/v1/devices/NOSUCHDEVICE', 'viewer'],
        ['GET', '/api/v1/stats', 'viewer'],
        ['GET', '/api/v1/audit', 'viewer'],
        ['GET', '/api/v1/users', 'viewer'],
        ['GET', '/api/v1/enrollment-tokens', 'viewer'],
        ['GET', '/api/v1/profiles', 'viewer'],
        ['GET', '/api/v1/groups', 'viewer'],
        ['GET', '/api/v1/server', 'viewer'],
        ['GET', '/api/v1/session', 'viewer'],
        ['GET', '/api/v1/api-tokens', 'viewer'],
        ['GET', '/api/v1/admins', 'admin'],
        ['POST', '/api/v1/groups', 'operator', { name: `g${n}` }],
        ['POST', '/api/v1/devices/NOSUCHDEVICE/commands', 'operator', { type: 'lock' }],
        ['DELETE', '/api/v1/devices/NOSUCHDEVICE', 'operator'],
        ['POST', '/api/v1/profiles', 'operator', { name: '' }],
        ['POST', '/api/v1/users', 'admin', { email: `u${n}@contoso.com`, password: USER_PW, display_name: 'U' }],
        ['DELETE', '/api/v1/users/nobody%40contoso.com', 'admin'],
        ['POST', '/api/v1/enrollment-tokens', 'admin', { email: 'enrollee@contoso.com' }],
        ['POST', '/api/v1/admins', 'admin', { email: `a${n}@contoso.com`, display_name: 'A', password: PW, role: 'viewer' }],
        ['PATCH', '/api/v1/admins/nobody%40contoso.com', 'admin', { role: 'viewer' }],
        ['POST', '/api/v1/index/rebuild', 'admin', {}],
      ];
    };
    for (const role of ['viewer', 'operator', 'admin']) {
      for (const [method, path, needed, body] of routes()) {
        const r = await api(method, path, { auth: { token: tokens[role] }, body });
        if (rank[role] < rank[needed]) {
          assert.equal(r.status, 403, `${role} ${method} ${path}: ${r.text}`);
        } else {
          assert.ok(![401, 403].includes(r.status) && r.status < 500, `${role} ${method} ${path}: ${r.status} ${r.text}`);
        }
      }
    }
    // No credentials, a made-up API token, a truncated one, the bootstrap token with a typo.
    const real = tokens.admin;
    for (const token of [null, `emt_${'0'.repeat(80)}`, real.slice(0, -1), `${w.adminToken}x`]) {
      for (const [method, path, , body] of routes()) {
        const r = await api(method, path, { auth: token ? { token } : null, body });
        assert.equal(r.status, 401, `${token} ${method} ${path}: ${r.text}`);
      }
    }
    // The refusals of roles are security events.
    const refused = await audit({ action: 'auth.role_refused', actor: VIEWER });
    assert.ok(refused.length >= 8, JSON.stringify(refused));
    assert.ok(refused.every((e) => e.result === 'denied' && e.status === 403 && e.target.startsWith('route:')));
  });

  test('every operation of the OpenAPI document, for every role, as its documented role says', async () => {
    // The document names each operation's role (x-edgemdm-role); the worker must enforce
    // exactly that. Path parameters name nothing that exists and bodies are empty, so an
    // allowed call is refused for what it asks (400/404), never for who asks (401/403).
    const doc = JSON.parse(fs.readFileSync(path.join(REPO, 'api', 'openapi.json'), 'utf8'));
    const dummy = { email: 'nobody%40contoso.com', token_id: '0123456789abcdef', device_id: 'NOSUCHDEVICE', command_id: '1', group_name: 'no-such-group', profile_id: 'p999999' };
    const rank = { viewer: 0, own: 0, operator: 1, admin: 2 };
    let checked = 0;
    for (const [template, ops] of Object.entries(doc.paths)) {
      const url = template.replace(/\{(\w+)\}/g, (_, name) => {
        assert.ok(name in dummy, `no dummy value for {${name}}`);
        return dummy[name];
      });
      for (const [method, op] of Object.entries(ops)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        const body = ['post', 'put', 'patch'].includes(method) ? {} : undefined;
        const M = method.toUpperCase();
        const needed = op['x-edgemdm-role'];
        const secured = (op.security ?? doc.security ?? []).length > 0;
        const anonymous = await api(M, url, { auth: null, body });
        if (!secured) {
          assert.notEqual(anonymous.status, 401, `${M} ${template} is public`);
          continue;
        }
        assert.equal(anonymous.status, 401, `${M} ${template} without credentials: ${anonymous.text}`);
        assert.ok(needed in rank, `${M} ${template} names its role`);
        for (const role of ['viewer', 'operator', 'admin']) {
          const r = await api(M, url, { auth: { token: tokens[role] }, body });
          if (rank[role] < rank[needed]) {
            assert.equal(r.status, 403, `${role} ${M} ${template}: ${r.text}`);
          } else {
            assert.ok(![401, 403].includes(r.status) && r.status < 500, `${role} ${M} ${template}: ${r.status} ${r.text}`);
          }
          checked += 1;
        }
      }
    }
    assert.ok(checked >= 100, `${checked} role checks`);
  });

  test("a viewer's token cannot write; a role change applies to it at once, a revocation too", async () => {
    const attempt = () => api('POST', '/api/v1/groups', { auth: { token: tokens.viewer }, body: { name: 'promoted' } });
    assert.equal((await attempt()).status, 403);
    const up = await api('PATCH', `/api/v1/admins/${encodeURIComponent(VIEWER)}`, { auth: { token: tokens.admin }, body: { role: 'operator' } });
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.role, 'operator');
    assert.equal((await attempt()).status, 201);
    const down = await api('PATCH', `/api/v1/admins/${encodeURIComponent(VIEWER)}`, { auth: { token: tokens.admin }, body: { role: 'viewer' } });
    assert.equal(down.body.role, 'viewer');
    // The viewer lists only its own tokens and cannot revoke the admin's.
    const mine = await api('GET', '/api/v1/api-tokens', { auth: { token: tokens.viewer } });
    assert.ok(mine.body.tokens.length >= 1 && mine.body.tokens.every((t) => t.admin === VIEWER));
    const all = await api('GET', '/api/v1/api-tokens', { auth: { token: tokens.admin } });
    const rootToken = all.body.tokens.find((t) => t.admin === ROOT);
    assert.equal((await api('DELETE', `/api/v1/api-tokens/${rootToken.id}`, { auth: { token: tokens.viewer } })).status, 404);
    assert.equal((await api('GET', '/api/v1/stats', { auth: { token: tokens.admin } })).status, 200, 'still valid');
    // The viewer revokes its own: refused at once.
    const own = mine.body.tokens[0];
    assert.equal((await api('DELETE', `/api/v1/api-tokens/${own.id}`, { auth: { token: tokens.viewer } })).status, 204);
    assert.equal((await api('GET', '/api/v1/stats', { auth: { token: tokens.viewer } })).status, 401);
    tokens.viewer = (await apiToken(VIEWER, 'again')).token;
    // The audit log names who did each.
    const changes = await audit({ action: 'admin.update', target: `admin:${VIEWER}` });
    assert.equal(changes.length, 2);
    assert.ok(changes.every((e) => e.actor === ROOT && e.result === 'ok'));
  });

  test('the last admin-role account cannot be removed; a deleted admin is signed out everywhere', async () => {
    const root = { token: tokens.admin };
    // The bootstrap token and root's own token alike cannot leave the directory without an admin.
    const demote = await api('PATCH', `/api/v1/admins/${encodeURIComponent(ROOT)}`, { auth: root, body: { role: 'operator' } });
    assert.equal(demote.status, 409, demote.text);
    assert.equal((await api('DELETE', `/api/v1/admins/${encodeURIComponent(ROOT)}`)).status, 409);
    // A second operator with a session and a token, then deleted.
    const temp = 'temp@contoso.com';
    await createAdmin(temp, 'operator', root);
    const session = await signIn(temp);
    const token = (await apiToken(temp)).token;
    assert.equal((await api('GET', '/api/v1/session', { auth: session })).status, 200);
    assert.equal((await api('DELETE', `/api/v1/admins/${encodeURIComponent(temp)}`, { auth: root })).status, 204);
    assert.equal((await api('GET', '/api/v1/session', { auth: session })).status, 401);
    assert.equal((await api('GET', '/api/v1/stats', { auth: { token } })).status, 401);
    assert.equal((await signIn(temp)).status, 401);
    // Bad input gets a 4xx, not a half-made account.
    for (const body of [
      { email: 'x@contoso.com', display_name: 'X', password: 'short', role: 'admin' },
      { email: 'not an email', display_name: 'X', password: PW, role: 'admin' },
      { email: 'x@contoso.com', display_name: 'X', password: PW, role: 'superuser' },
      { email: 'x@contoso.com', display_name: 'X', password: PW, role: 'admin', extra: 1 },
    ]) {
      const r = await api('POST', '/api/v1/admins', { body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    }
    assert.equal((await api('GET', '/api/v1/admins')).body.admins.some((a) => a.email === 'x@contoso.com'), false);
    assert.equal((await api('POST', '/api/v1/admins', { body: { email: OPERATOR, display_name: 'dup', password: PW, role: 'admin' } })).status, 409);
  });
});

describe('console sessions', () => {
  test('the session cookie is HttpOnly and SameSite=Strict, and not Secure on loopback only', async () => {
    const s = await signIn(ROOT);
    assert.equal(s.status, 200);
    assert.match(s.setCookie, /^edgemdm_session=[0-9a-f]{80}; /);
    assert.match(s.setCookie, /; HttpOnly/);
    assert.match(s.setCookie, /; SameSite=Strict/);
    assert.match(s.setCookie, /; Path=\//);
    assert.doesNotMatch(s.setCookie, /Secure/, 'http://127.0.0.1 is loopback');
    const me = await api('GET', '/api/v1/session', { auth: { cookie: s.cookie } });
    assert.equal(me.body.admin.email, ROOT);
    assert.equal(me.body.csrf_token, s.csrf);
  });

  test('a forged write without the CSRF token is refused, and the admin keeps working', async () => {
    const s = await signIn(ROOT);
    const victim = 'csrf-victim@contoso.com';
    const body = { email: victim, password: USER_PW, display_name: 'Planted' };
    // The attacker's page makes the browser send the cookie, but cannot read the CSRF token.
    const forged = await api('POST', '/api/v1/users', { auth: { cookie: s.cookie }, body });
    assert.equal(forged.status, 403, forged.text);
    const guessed = await api('POST', '/api/v1/users', { auth: { cookie: s.cookie, csrf: '0'.repeat(64) }, body });
    assert.equal(guessed.status, 403);
    // Even with the token, a write from another origin is refused.
    const crossOrigin = await api('POST', '/api/v1/users', { auth: s, body, headers: { origin: 'https://evil.example' } });
    assert.equal(crossOrigin.status, 403);
    const logout = await api('DELETE', '/api/v1/session', { auth: { cookie: s.cookie } });
    assert.equal(logout.status, 403, 'signing out is a write too');
    assert.equal((await api('GET', '/api/v1/users')).body.users.some((u) => u.email === victim), false);
    // The admin, from the console itself.
    const real = await api('POST', '/api/v1/users', { auth: s, body, headers: { origin: w.url } });
    assert.equal(real.status, 201, real.text);
    const events = await audit({ action: 'auth.csrf_refused', actor: ROOT });
    assert.ok(events.length >= 4);
    const created = await audit({ action: 'user.create', target: `user:${victim}` });
    assert.equal(created.length, 1);
    assert.equal(created[0].actor, ROOT);
  });

  test("another site cannot sign the browser in to the attacker's account", async () => {
    const form = await request(`${w.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
      body: JSON.stringify({ email: OPERATOR, password: PW }),
    });
    assert.equal(form.status, 415, 'a cross-site form cannot send JSON');
    assert.equal(form.headers.get('set-cookie'), null);
    const cors = await api('POST', '/api/v1/session', { auth: null, body: { email: OPERATOR, password: PW }, headers: { origin: 'https://evil.example' } });
    assert.equal(cors.status, 403);
    assert.equal(cors.headers.get('set-cookie'), null);
    const real = await api('POST', '/api/v1/session', { auth: null, body: { email: OPERATOR, password: PW }, headers: { origin: w.url } });
    assert.equal(real.status, 200, 'from the console itself');
  });

  test('signing out ends the session on the server', async () => {
    const s = await signIn(ROOT);
    const out = await api('DELETE', '/api/v1/session', { auth: s });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie'), /Max-Age=0/);
    assert.equal((await api('GET', '/api/v1/session', { auth: { cookie: s.cookie } })).status, 401, 'a copied cookie is dead');
  });
});

describe('fleet index', () => {
  const N = 3000;
  const OS = ['10.0.19045.5247', '10.0.22631.4602', '10.0.26100.2605'];
  const base = Date.parse('2026-11-01T00:00:00Z');
  const at = (ms) => new Date(ms).toISOString();
  const id = (i) => `SEED${String(i).padStart(5, '0')}`;

  before(async () => {
    // Index rows as the device objects write them; the index is what is under test here.
    const rows = [];
    const groups = [];
    const profiles = [];
    for (let i = 0; i < N; i++) {
      const checkin = i % 97 === 0 ? '' : at(base + i * 60_000);
      rows.push(`('${id(i)}','${id(i).toLowerCase()}','PC-${i}','pc-${i}','user${i % 50}@seed.io','user${i % 50}@seed.io',` +
        `'${i % 10 === 0 ? 'retired' : 'enrolled'}','${OS[i % 3]}','48','Full','${at(base - 86_400_000)}','${checkin}','${at(base + 400 * 86_400_000)}',1)`);
      if (i % 5 === 0) groups.push(`('${id(i)}','finance')`);
      if (i % 7 === 0) profiles.push(`('${id(i)}','p1','failed','${at(base)}')`);
      else if (i % 2 === 0) profiles.push(`('${id(i)}','p1','verified','${at(base)}')`);
    }
    const chunks = (list, size = 200) => Array.from({ length: Math.ceil(list.length / size) }, (_, k) => list.slice(k * size, (k + 1) * size));
    let sql = '';
    for (const c of chunks(rows)) {
      sql += `INSERT INTO devices (device_id,id_lc,name,name_lc,user_email,user_lc,status,os_version,os_edition,enrollment_type,enrolled_at,last_checkin,cert_not_after,version) VALUES ${c.join(',')};\n`;
    }
    for (const c of chunks(groups)) sql += `INSERT INTO device_groups (device_id, group_name) VALUES ${c.join(',')};\n`;
    for (const c of chunks(profiles)) sql += `INSERT INTO device_profiles (device_id, profile_id, status, updated_at) VALUES ${c.join(',')};\n`;
    await d1(w.persistDir, sql);
  });

  async function list(query) {
    const r = await api('GET', `/api/v1/devices?${new URLSearchParams(query)}`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  }

  test('every device once, in check-in order, page by page', async () => {
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const page = await list({ q: 'seed', limit: '200', ...(cursor ? { cursor } : {}) });
      assert.equal(page.total, N);
      assert.ok(page.devices.length <= 200);
      seen.push(...page.devices);
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor);
    assert.equal(pages, Math.ceil(N / 200));
    assert.equal(new Set(seen.map((d) => d.device_id)).size, N, 'no device twice, none missed');
    const times = seen.map((d) => d.last_checkin ?? '');
    assert.deepEqual(times, [...times].sort().reverse(), 'newest check-in first, never-checked-in last');
    assert.equal(seen.at(-1).last_checkin, null);
    assert.deepEqual(seen.find((d) => d.device_id === id(5)).groups, ['finance']);
  });

  test('filters and search are counted by SQL', async () => {
    const count = async (q) => (await list({ ...q, limit: '1' })).total;
    assert.equal(await count({ status: 'retired' }), N / 10);
    assert.equal(await count({ os_version: OS[1] }), N / 3);
    assert.equal(await count({ group: 'finance' }), N / 5);
    assert.equal(await count({ profile_status: 'failed' }), Math.floor((N - 1) / 7) + 1);
    const verified = [...Array(N).keys()].filter((i) => i % 2 === 0 && i % 7 !== 0).length;
    assert.equal(await count({ profile: 'p1', profile_status: 'verified' }), verified);
    assert.equal(await count({ q: 'PC-12' }), 1 + 10 + 100, 'name prefix, any case');
    assert.equal(await count({ q: 'user7@' }), N / 50, 'user prefix');
    assert.equal(await count({ q: 'seed0001' }), 10, 'device id prefix');
    assert.equal(await count({ status: 'retired', group: 'finance', os_version: OS[0] }), [...Array(N).keys()].filter((i) => i % 10 === 0 && i % 3 === 0).length);
    const byName = await list({ q: 'pc-', sort: 'name', limit: '5' });
    const names = byName.devices.map((d) => d.device_name);
    assert.deepEqual(names, [...names].sort());
    for (const bad of [{ status: 'gone' }, { limit: '0' }, { limit: '201' }, { cursor: 'not-a-cursor' }, { sort: 'random' }, { group: 'no spaces' }, { q: 'x'.repeat(200) }]) {
      const r = await api('GET', `/api/v1/devices?${new URLSearchParams(bad)}`);
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
    }
  });

  test('the dashboard counts come from the index', async () => {
    const r = await api('GET', '/api/v1/stats');
    assert.equal(r.status, 200);
    assert.ok(r.body.devices_by_status.retired >= N / 10);
    const p1 = r.body.failing_profiles.find((f) => f.profile_id === 'p1');
    assert.equal(p1.devices, Math.floor((N - 1) / 7) + 1);
    assert.ok(r.body.devices_by_os_version.some((o) => o.os_version === OS[2] && o.count >= 900));
  });

  test("a device's row follows it, and an index that was briefly unavailable catches up", async () => {
    const email = 'fleet-user@contoso.com';
    await createUser(w, email, USER_PW);
    const enr = await enrollDevice(w, { email, password: USER_PW });
    const dev = SyncMLDevice.fromEnrollment(enr);
    await dev.runSession();
    const row = async () => (await list({ q: enr.deviceId })).devices[0];
    const waitFor = async (pred, what) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        let r;
        try { r = await row(); } catch { r = undefined; }
        if (r && pred(r)) return r;
        if (Date.now() > deadline) throw new Error(`index never showed ${what}: ${JSON.stringify(r)}`);
        await new Promise((res) => setTimeout(res, 250));
      }
    };
    const enrolledRow = await waitFor((r) => r.last_checkin, 'the check-in');
    assert.equal(enrolledRow.os_version, '10.0.19043.2364', 'as the enrollment said');
    // Enrollment said one version; the device's inventory says another, and wins.
    assert.equal((await api('POST', `/api/v1/devices/${enr.deviceId}/commands`, { body: { type: 'inventory' } })).status, 201);
    const queued = await audit({ action: 'device.command', target: `device:${enr.deviceId}` });
    assert.equal(queued[0].detail, 'inventory', 'the audit log says which command');
    await dev.runSession();
    const reported = dev.values['./DevDetail/SwV'];
    const first = await waitFor((r) => r.last_checkin && r.os_version === reported, 'the check-in and inventory');
    assert.equal(first.status, 'enrolled');
    assert.equal(first.user, email);
    assert.equal(first.device_name, 'DESKTOP-TEST');

    // The index goes away.
    assert.equal((await api('POST', '/api/v1/groups', { body: { name: 'catch-up' } })).status, 201);
    await d1(w.persistDir, 'ALTER TABLE devices RENAME TO devices_away; ALTER TABLE device_groups RENAME TO device_groups_away;');
    const joined = await api('PUT', `/api/v1/groups/catch-up/devices/${enr.deviceId}`);
    assert.equal(joined.status, 200, 'the profile catalogue does not wait for the index either');
    const membership = await audit({ action: 'group.add_device', target: `device:${enr.deviceId}` });
    assert.equal(membership[0]?.detail, 'group:catch-up', "the device's history names the group");
    const retire = await api('DELETE', `/api/v1/devices/${enr.deviceId}`);
    assert.equal(retire.status, 202, 'the retire does not wait for the index');
    const session = await dev.runSession();
    assert.equal(session.replies[0].hdrCode, '200', 'nor does the device');
    assert.equal((await api('GET', '/api/v1/devices')).status, 500, 'the list needs the index');
    // It comes back; the device object's alarm retries without any new traffic.
    await new Promise((res) => setTimeout(res, 1500));
    await d1(w.persistDir, 'ALTER TABLE devices_away RENAME TO devices; ALTER TABLE device_groups_away RENAME TO device_groups;');
    const caught = await waitFor((r) => r.status !== 'enrolled' && r.groups.includes('catch-up'), 'the retirement and the group');
    assert.ok(['retiring', 'retired'].includes(caught.status), caught.status);
    const record = await api('GET', `/api/v1/devices/${enr.deviceId}`);
    assert.equal(caught.status, record.body.status, 'the index says what the device object says');
  });
});

describe('upgrading to the fleet index', () => {
  test('devices enrolled before the index existed are indexed by a rebuild, with their groups', async () => {
    const email = 'legacy-user@contoso.com';
    await createUser(w, email, USER_PW);
    const enr = await enrollDevice(w, { email, password: USER_PW });
    const dev = SyncMLDevice.fromEnrollment(enr);
    await dev.runSession();
    assert.equal((await api('POST', '/api/v1/groups', { body: { name: 'legacy' } })).status, 201);
    assert.equal((await api('PUT', `/api/v1/groups/legacy/devices/${enr.deviceId}`)).status, 200);
    // As after an upgrade: the objects know the device, the index does not.
    await new Promise((res) => setTimeout(res, 500));
    await d1(w.persistDir, `DELETE FROM devices WHERE device_id = '${enr.deviceId}'; DELETE FROM device_groups WHERE device_id = '${enr.deviceId}';`);
    const missing = await api('GET', `/api/v1/devices?q=${enr.deviceId}`);
    assert.equal(missing.body.total, 0);
    let cursor = null;
    let indexed = 0;
    let calls = 0;
    do {
      const r = await api('POST', '/api/v1/index/rebuild', { body: cursor ? { cursor } : {} });
      assert.equal(r.status, 200, r.text);
      indexed += r.body.indexed;
      cursor = r.body.next_cursor;
      calls += 1;
    } while (cursor && calls < 50);
    assert.equal(cursor, null);
    assert.ok(indexed >= 2, `every enrolled device of this run: ${indexed}`);
    const back = (await api('GET', `/api/v1/devices?q=${enr.deviceId}`)).body.devices[0];
    assert.equal(back.status, 'enrolled');
    assert.deepEqual(back.groups, ['legacy']);
    assert.ok(back.last_checkin);
    assert.equal((await api('GET', '/api/v1/devices?group=legacy')).body.total, 1);
    const audited = await audit({ action: 'index.rebuild' });
    assert.ok(audited.length >= calls);
  });
});

// Last: it exhausts the sign-in limit of this client address.
describe('sign-in limits', () => {
  test('password guessing is limited per account and address, and audited; signed-in admins keep working', async () => {
    const s = await signIn(ROOT);
    assert.equal(s.status, 200);
    // LOGIN_MAX_FAILURES is 4 (this address already failed once above, signing in as a
    // deleted admin): the attacker gets at most 4 guesses, then 429 whatever it sends.
    let guesses = 0;
    let limited;
    for (;;) {
      const r = await signIn(ROOT, `guess number ${guesses}`);
      if (r.status === 429) { limited = r; break; }
      assert.equal(r.status, 401);
      guesses += 1;
      assert.ok(guesses <= 4, 'more guesses than the limit');
    }
    assert.ok(guesses >= 1);
    assert.ok(Number(limited.r.headers.get('retry-after')) > 0);
    assert.equal((await signIn(ROOT)).status, 429, 'even the right password waits out the window');
    assert.equal((await signIn('nobody@contoso.com', 'x')).status, 429, 'the address is limited too');
    // The real admin's session is untouched.
    assert.equal((await api('GET', '/api/v1/stats', { auth: { cookie: s.cookie } })).status, 200);
    const failed = await audit({ action: 'session.failed', actor: ROOT });
    assert.equal(failed.length, guesses, JSON.stringify(failed));
    assert.ok(failed.every((e) => e.status === 401 && e.result === 'denied' && e.address), 'with the address it came from');
    // Past the limit nothing is checked and nothing is written: a flood cannot fill the log,
    // nor write under a name it chooses.
    const before = (await audit({ limit: '200' })).length;
    for (let i = 0; i < 10; i++) assert.equal((await signIn('bootstrap', 'x')).status, 429);
    assert.equal((await audit({ limit: '200' })).length, before);
    assert.equal((await audit({ action: 'session.failed', actor: 'bootstrap' })).length, 0);
  });
});
