// End to end against the real worker in workerd: configuration profiles and groups, delivered
// to simulated Windows devices whose DM tree answers as Windows does (tree mode of
// tests/support/syncml-device.mjs: Policy CSP writes readable at the Result node, Replace of a
// missing node 404, Add of an existing node 418, Delete of a missing node 404, Atomic rolled
// back with 507/216). Every SyncML reply is also checked against the protocol rules
// (checkReply).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker } from './support/worker.mjs';
import { admin, createUser, enrollDevice } from './support/enroll.mjs';
import { newDeviceId } from './support/device.mjs';
import { SyncMLDevice, policyResultUri } from './support/syncml-device.mjs';

const EMAIL = 'profiles@contoso.com';
const PASSWORD = 'profiles password 1';
const POLICY = './Device/Vendor/MSFT/Policy/Config';
const CAMERA = `${POLICY}/Camera/AllowCamera`;
const ADMX = `${POLICY}/ADMX_AppVirtualization/PublishingAllowServer2`;
const ADMX_DATA = '<enabled/><data id="Publishing_Server2_Name_Prompt" value="Contoso &amp; Co"/>';
const SPECIALS = `1 < 2 && "three" > 'two' ]]> <![CDATA[`;
const CUSTOM = './Device/Vendor/MSFT/Custom';

let w;

before(async () => {
  w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise' } });
  await createUser(w, EMAIL, PASSWORD);
});
after(async () => {
  await w?.stop();
});

// ---- helpers --------------------------------------------------------------------------------

async function newDevice(opts = {}, worker = w) {
  const enr = await enrollDevice(worker, { email: EMAIL, password: PASSWORD });
  return { id: enr.deviceId, dev: SyncMLDevice.fromEnrollment(enr, { tree: true, ...opts }) };
}

const setting = (uri, data, format = 'int') => ({ uri, format, data });

async function createProfile(body, worker = w) {
  const r = await admin(worker, 'POST', '/api/v1/profiles', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function deviceProfiles(id, worker = w) {
  const r = await admin(worker, 'GET', `/api/v1/devices/${id}/profiles`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.profiles;
}

async function onDevice(id, profileId, worker = w) {
  return (await deviceProfiles(id, worker)).find((p) => p.id === profileId);
}

async function getProfile(id, worker = w) {
  const r = await admin(worker, 'GET', `/api/v1/profiles/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

const names = (s) => s.commands.map((c) => c.name);
const target = (c) => c.items?.[0]?.target;
const byUri = (p, uri) => p.settings.find((s) => s.uri === uri);

// ---- delivery and verification --------------------------------------------------------------

describe('configuration profiles', () => {
  test('apply and verify: delivered after the admin\'s commands, read back at Policy/Result, data exactly as given', async () => {
    const { id, dev } = await newDevice();
    const q = await admin(w, 'POST', `/api/v1/devices/${id}/commands`, { type: 'get', uri: './DevDetail/SwV' });
    assert.equal(q.status, 201);
    const created = await createProfile({
      name: 'Camera and friends',
      description: 'camera off, an ADMX policy, text with XML specials, an XML value',
      settings: [
        setting(CAMERA, '0'),
        setting(ADMX, ADMX_DATA, 'chr'),
        setting(`${CUSTOM}/Text`, SPECIALS, 'chr'),
        setting(`${CUSTOM}/Doc`, '<wlan><name>A &amp; B</name></wlan>', 'xml'),
      ],
      targets: { devices: [id] },
    });
    assert.match(created.id, /^p\d+$/);
    assert.equal(created.version, 1);
    assert.deepEqual(created.targets, { devices: [id] });
    assert.deepEqual(created.devices, { pending: 0, verifying: 0, verified: 0, failed: 0, removing: 0 });
    // The custom nodes exist on the device (Replace of a missing non-policy node is 404).
    dev.tree.set(`${CUSTOM}/Text`, { format: 'chr', data: 'old' });
    dev.tree.set(`${CUSTOM}/Doc`, { format: 'xml', data: '<old/>' });

    const s = await dev.runSession();
    assert.ok(s.ended);
    assert.equal(s.commands[0].name, 'Get', 'the admin command queued before goes first');
    assert.equal(target(s.commands[0]), './DevDetail/SwV');
    const writes = s.commands.filter((c) => c.name === 'Replace');
    assert.deepEqual(writes.map((c) => [target(c), c.items[0].format, c.items[0].data]), [
      [CAMERA, 'int', '0'],
      [ADMX, 'chr', ADMX_DATA],
      [`${CUSTOM}/Text`, 'chr', SPECIALS.trim()],
      [`${CUSTOM}/Doc`, 'xml', '<wlan><name>A &amp; B</name></wlan>'],
    ]);
    const reads = s.commands.filter((c) => c.name === 'Get').slice(1).map(target);
    assert.deepEqual(reads, [policyResultUri(CAMERA), policyResultUri(ADMX), `${CUSTOM}/Text`, `${CUSTOM}/Doc`]);
    assert.equal(dev.tree.get(policyResultUri(ADMX)).data, ADMX_DATA);

    const p = await onDevice(id, created.id);
    assert.equal(p.status, 'verified', JSON.stringify(p));
    assert.equal(p.version, 1);
    assert.ok(!Number.isNaN(Date.parse(p.updated_at)));
    for (const st of p.settings) {
      assert.equal(st.status, 'verified', JSON.stringify(st));
      assert.equal(st.code, '200');
      assert.equal(st.verified_by, 'read-back');
    }
    assert.equal(byUri(p, ADMX).observed, ADMX_DATA);
    const view = await getProfile(created.id);
    assert.equal(view.devices.verified, 1);
    const page = await admin(w, 'GET', `/api/v1/profiles/${created.id}/devices`);
    assert.equal(page.status, 200);
    assert.deepEqual(page.body.devices.map((d) => [d.device_id, d.status, d.version]), [[id, 'verified', 1]]);
    assert.equal(page.body.next_cursor, null);

    // Desired state holds: the next check-in sends nothing.
    const s2 = await dev.runSession();
    assert.deepEqual(names(s2), []);
  });

  test('one rejected setting (405) fails its own profile only, with its code; the good profile beside it is verified', async () => {
    const bad = `${POLICY}/Edition/NotOnThisEdition`;
    const { id, dev } = await newDevice({ reject: { [bad]: 405 } });
    const good = await createProfile({ name: 'good', settings: [setting(CAMERA, '0')], targets: { devices: [id] } });
    const mixed = await createProfile({
      name: 'mixed',
      settings: [setting(`${POLICY}/Browser/AllowCookies`, '2'), setting(bad, '1')],
      targets: { devices: [id] },
    });
    await dev.runSession();
    assert.equal((await onDevice(id, good.id)).status, 'verified');
    const m = await onDevice(id, mixed.id);
    assert.equal(m.status, 'failed');
    assert.deepEqual([byUri(m, bad).status, byUri(m, bad).code], ['failed', '405']);
    assert.equal(byUri(m, `${POLICY}/Browser/AllowCookies`).status, 'verified', 'per-setting delivery');
    assert.equal((await getProfile(mixed.id)).devices.failed, 1);
    assert.equal((await getProfile(good.id)).devices.verified, 1);
    assert.deepEqual(names(await dev.runSession()), [], 'a failed profile is not resent until it changes');
  });

  test('Replace of a missing node falls back to Add, Add of an existing node to Replace', async () => {
    const missing = `${CUSTOM}/Missing`;
    const racy = `${CUSTOM}/Racy`;
    let first = true;
    const { id, dev } = await newDevice({
      tree: { [racy]: 'before' },
      // The first Replace of the racy node finds it missing; by the Add it exists.
      statusFor: (c) => (c.name === 'Replace' && target(c) === racy && first ? ((first = false), '404') : undefined),
    });
    const p = await createProfile({
      name: 'fallbacks',
      settings: [setting(missing, 'm', 'chr'), setting(racy, 'r', 'chr')],
      targets: { devices: [id] },
    });
    const s = await dev.runSession();
    const forUri = (uri) => s.commands.filter((c) => target(c) === uri).map((c) => c.name);
    assert.deepEqual(forUri(missing), ['Replace', 'Add', 'Get']);
    assert.deepEqual(forUri(racy), ['Replace', 'Add', 'Replace', 'Get']);
    const v = await onDevice(id, p.id);
    assert.equal(v.status, 'verified', JSON.stringify(v));
    assert.deepEqual([dev.tree.get(missing).data, dev.tree.get(racy).data], ['m', 'r']);
  });

  test('Atomic delivery: one refused setting rolls back the others (507, 216 each); a missing node is retried with Add', async () => {
    const bad = `${POLICY}/Edition/NotOnThisEdition`;
    const { id, dev } = await newDevice({ reject: { [bad]: 405 } });
    const failing = await createProfile({
      name: 'all or nothing',
      atomic: true,
      settings: [setting(CAMERA, '0'), setting(bad, '1'), setting(`${POLICY}/Browser/AllowCookies`, '2')],
      targets: { devices: [id] },
    });
    // As Microsoft prints custom OMA-URI settings, in an Atomic.
    const retried = await createProfile({
      name: 'atomic with a new node',
      syncml: `<Atomic><CmdID>1</CmdID>
        <Replace><CmdID>2</CmdID><Item><Target><LocURI>${CUSTOM}/New</LocURI></Target><Meta><Format xmlns="syncml:metinf">chr</Format></Meta><Data>n</Data></Item></Replace>
        <Replace><CmdID>3</CmdID><Item><Target><LocURI>${POLICY}/Search/AllowIndexingEncryptedStoresOrItems</LocURI></Target><Meta><Format xmlns="syncml:metinf">int</Format></Meta><Data>0</Data></Item></Replace>
      </Atomic>`,
      targets: { devices: [id] },
    });
    assert.equal(retried.atomic, true);
    const s = await dev.runSession();
    const atomics = s.commands.filter((c) => c.name === 'Atomic');
    assert.equal(atomics.length, 3, 'the failing one once, the other twice (Replace, then Add)');
    assert.deepEqual(atomics[2].children.map((c) => c.name), ['Add', 'Replace']);

    const f = await onDevice(id, failing.id);
    assert.equal(f.status, 'failed');
    assert.deepEqual(f.settings.map((x) => [x.status, x.code]), [['failed', '216'], ['failed', '405'], ['failed', '216']]);
    assert.ok(!dev.tree.has(CAMERA) && !dev.tree.has(policyResultUri(CAMERA)), 'rolled back on the device');
    const r = await onDevice(id, retried.id);
    assert.equal(r.status, 'verified', JSON.stringify(r));
    assert.equal(dev.tree.get(`${CUSTOM}/New`).data, 'n');
  });

  test('an update re-delivers only what changed and deletes what it dropped; a target-only change keeps the version', async () => {
    const { id, dev } = await newDevice();
    const [a, b, c, d] = ['A', 'B', 'C', 'D'].map((x) => `${POLICY}/Area/${x}`);
    const v1 = await createProfile({
      name: 'v1', settings: [setting(a, '1'), setting(b, '1'), setting(c, '1')], targets: { devices: [id] },
    });
    await dev.runSession();
    assert.equal((await onDevice(id, v1.id)).status, 'verified');

    const put = await admin(w, 'PUT', `/api/v1/profiles/${v1.id}`, {
      name: 'v2', settings: [setting(a, '1'), setting(b, '2'), setting(d, '4')], targets: { devices: [id] },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.version, 2);
    const s = await dev.runSession();
    assert.deepEqual(s.commands.map((x) => [x.name, target(x)]), [
      ['Delete', c], ['Replace', b], ['Replace', d], ['Get', policyResultUri(b)], ['Get', policyResultUri(d)],
    ]);
    const p = await onDevice(id, v1.id);
    assert.deepEqual([p.version, p.status], [2, 'verified']);
    assert.deepEqual(p.settings.map((x) => x.uri), [a, b, d]);
    assert.ok(!dev.tree.has(c) && !dev.tree.has(policyResultUri(c)));
    assert.equal(dev.tree.get(policyResultUri(b)).data, '2');

    const rename = await admin(w, 'PUT', `/api/v1/profiles/${v1.id}`, {
      name: 'renamed', settings: [setting(a, '1'), setting(b, '2'), setting(d, '4')], targets: { devices: [id] },
    });
    assert.equal(rename.body.version, 2);
    assert.deepEqual(names(await dev.runSession()), []);
  });

  test('a removal deletes every setting (a missing node\'s 404 is fine) and the profile leaves the device once acknowledged', async () => {
    const { id, dev } = await newDevice();
    const p = await createProfile({
      name: 'temporary',
      settings: [setting(CAMERA, '0'), setting(`${POLICY}/Browser/AllowCookies`, '1')],
      targets: { devices: [id] },
    });
    await dev.runSession();
    dev.tree.delete(`${POLICY}/Browser/AllowCookies`); // removed on the device meanwhile
    const del = await admin(w, 'DELETE', `/api/v1/profiles/${p.id}`);
    assert.equal(del.status, 204);
    assert.equal((await admin(w, 'GET', `/api/v1/profiles/${p.id}`)).status, 404);
    assert.ok(!(await admin(w, 'GET', '/api/v1/profiles')).body.profiles.some((x) => x.id === p.id));
    assert.equal((await onDevice(id, p.id)).status, 'verified', 'until the device checks in');

    const s = await dev.runSession();
    assert.deepEqual(s.commands.map((x) => [x.name, target(x)]), [
      ['Delete', CAMERA], ['Delete', `${POLICY}/Browser/AllowCookies`],
    ]);
    assert.deepEqual(await deviceProfiles(id), []);
    assert.ok(!dev.tree.has(CAMERA) && !dev.tree.has(policyResultUri(CAMERA)));
    assert.deepEqual(names(await dev.runSession()), []);
    assert.equal((await admin(w, 'DELETE', `/api/v1/profiles/${p.id}`)).status, 404);
  });

  test('group targeting: a device added later gets the profile at its next check-in, and loses it when it leaves', async () => {
    const group = `finance-${newDeviceId().slice(0, 6)}`;
    const g = await admin(w, 'POST', '/api/v1/groups', { name: group });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    assert.equal((await admin(w, 'POST', '/api/v1/groups', { name: group })).status, 409);
    const a = await newDevice();
    const b = await newDevice();
    assert.equal((await admin(w, 'PUT', `/api/v1/groups/${group}/devices/${a.id}`)).status, 200);
    const p = await createProfile({ name: 'finance', settings: [setting(CAMERA, '0')], targets: { groups: [group] } });

    await a.dev.runSession();
    assert.equal((await onDevice(a.id, p.id)).status, 'verified');
    assert.deepEqual(names(await b.dev.runSession()), []);
    assert.deepEqual(await deviceProfiles(b.id), []);

    const add = await admin(w, 'PUT', `/api/v1/groups/${group}/devices/${b.id}`);
    assert.equal(add.status, 200);
    assert.equal(add.body.devices, 2);
    assert.deepEqual((await admin(w, 'GET', `/api/v1/devices/${b.id}`)).body.groups, [group]);
    assert.deepEqual(names(await b.dev.runSession()), ['Replace', 'Get']);
    assert.equal((await onDevice(b.id, p.id)).status, 'verified');
    assert.deepEqual(names(await a.dev.runSession()), [], 'the revision moved, but nothing changed for this device');
    assert.equal((await getProfile(p.id)).devices.verified, 2);

    assert.equal((await admin(w, 'DELETE', `/api/v1/groups/${group}/devices/${b.id}`)).status, 204);
    assert.deepEqual((await admin(w, 'GET', `/api/v1/devices/${b.id}`)).body.groups, []);
    assert.deepEqual(names(await b.dev.runSession()), ['Delete']);
    assert.deepEqual(await deviceProfiles(b.id), []);
    assert.equal((await getProfile(p.id)).devices.verified, 1);

    const groups = (await admin(w, 'GET', '/api/v1/groups')).body.groups;
    assert.equal(groups.find((x) => x.name === group).devices, 1);
    const inUse = await admin(w, 'DELETE', `/api/v1/groups/${group}`);
    assert.equal(inUse.status, 409, 'a profile targets it');
    assert.match(inUse.body.error, new RegExp(p.id));
  });

  test('two profiles setting one node differently: the first created wins, both show it, nothing flips', async () => {
    const { id, dev } = await newDevice();
    const first = await createProfile({ name: 'cam off', settings: [setting(CAMERA, '0')], targets: { devices: [id] } });
    const second = await createProfile({ name: 'cam on', settings: [setting(CAMERA, '1')], targets: { devices: [id] } });
    const s = await dev.runSession();
    assert.deepEqual(s.commands.filter((c) => c.name === 'Replace').map((c) => c.items[0].data), ['0']);
    assert.equal(dev.tree.get(policyResultUri(CAMERA)).data, '0');
    const a = await onDevice(id, first.id);
    const b = await onDevice(id, second.id);
    assert.equal(a.status, 'verified');
    assert.deepEqual(a.conflicts, [{ uri: CAMERA, profiles: [second.id] }]);
    assert.equal(b.status, 'failed');
    assert.equal(b.settings[0].status, 'conflict');
    assert.deepEqual(b.conflicts, [{ uri: CAMERA, profiles: [first.id] }]);
    for (let i = 0; i < 2; i++) assert.deepEqual(names(await dev.runSession()), []);
    assert.equal(dev.tree.get(policyResultUri(CAMERA)).data, '0');
  });

  test('50 profiles reach one device over several messages at a small MaxMsgSize', async () => {
    const { id, dev } = await newDevice({ maxMsgSize: 4096 });
    const ids = [];
    for (let i = 0; i < 50; i++) {
      const p = await createProfile({
        name: `bulk ${i}`,
        settings: [setting(`${POLICY}/Bulk${i}/First`, String(i)), setting(`${POLICY}/Bulk${i}/Second`, `v${i}`, 'chr')],
        targets: { devices: [id] },
      });
      ids.push(p.id);
    }
    const s = await dev.runSession();
    assert.ok(s.ended);
    assert.ok(s.replies.length >= 6, `${s.replies.length} messages`);
    for (const r of s.replies) assert.ok(Buffer.byteLength(r.text) <= 4096, `a reply of ${Buffer.byteLength(r.text)} bytes`);
    assert.equal(s.commands.filter((c) => c.name === 'Replace').length, 100);
    assert.equal(s.commands.filter((c) => c.name === 'Get').length, 100);
    const all = await deviceProfiles(id);
    assert.deepEqual(all.map((p) => p.id), ids);
    assert.ok(all.every((p) => p.status === 'verified'), JSON.stringify(all.filter((p) => p.status !== 'verified')));
    for (const pid of ids) assert.equal((await admin(w, 'DELETE', `/api/v1/profiles/${pid}`)).status, 204);
    const gone = await dev.runSession();
    assert.equal(gone.commands.filter((c) => c.name === 'Delete').length, 100);
    assert.deepEqual(await deviceProfiles(id), []);
  });

  test('every bad input gets 400 (an unknown device 404) with a message, and stores nothing', async () => {
    const { id } = await newDevice();
    const group = `bad-input-${newDeviceId().slice(0, 6)}`;
    assert.equal((await admin(w, 'POST', '/api/v1/groups', { name: group })).status, 201);
    const before = (await admin(w, 'GET', '/api/v1/profiles')).body.profiles.length;
    const ok = { name: 'n', settings: [setting(CAMERA, '0')], targets: { devices: [id] } };
    const withSetting = (s) => ({ ...ok, settings: [s] });
    const cases = [
      ['a URI not starting with ./', withSetting(setting('Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera', '0'))],
      ['an absolute URI', withSetting(setting('/Device/Vendor/MSFT/X', '0'))],
      ['an unknown format', withSetting(setting(CAMERA, '0', 'float'))],
      ['int data that is not one', withSetting(setting(CAMERA, 'zero'))],
      ['bool data that is not one', withSetting(setting(`${CUSTOM}/B`, 'yes', 'bool'))],
      ['b64 data that is not one', withSetting(setting(`${CUSTOM}/B`, '%%%', 'b64'))],
      ['xml data that is not well-formed', withSetting(setting(`${CUSTOM}/X`, '<a>', 'xml'))],
      ['data XML 1.0 cannot carry', withSetting(setting(`${CUSTOM}/C`, 'bell \u0007', 'chr'))],
      ['data XML 1.0 cannot carry (U+FFFF)', withSetting(setting(`${CUSTOM}/C`, '\uffff', 'chr'))],
      ['a URI XML 1.0 cannot carry', withSetting(setting(`${CUSTOM}/\u0001`, 'x', 'chr'))],
      ['malformed syncml', { name: 'n', syncml: '<Replace><Item><Target>', targets: { all: true } }],
      ['syncml with a Get', { name: 'n', syncml: `<Get><CmdID>1</CmdID><Item><Target><LocURI>${CAMERA}</LocURI></Target></Item></Get>`, targets: { all: true } }],
      ['syncml with a bad int', { name: 'n', syncml: `<Replace><CmdID>1</CmdID><Item><Target><LocURI>${CAMERA}</LocURI></Target><Meta><Format xmlns="syncml:metinf">int</Format></Meta><Data>x</Data></Item></Replace>`, targets: { all: true } }],
      ['a missing name', { settings: ok.settings, targets: ok.targets }],
      ['an empty name', { ...ok, name: ' ' }],
      ['no settings', { name: 'n', settings: [], targets: ok.targets }],
      ['settings and syncml', { ...ok, syncml: '<Replace/>' }],
      ['a setting twice', { ...ok, settings: [setting(CAMERA, '0'), setting(CAMERA, '1')] }],
      ['missing targets', { name: 'n', settings: ok.settings }],
      ['two kinds of targets', { ...ok, targets: { all: true, devices: [id] } }],
      ['all: false', { ...ok, targets: { all: false } }],
      ['a target group that does not exist', { ...ok, targets: { groups: ['no-such-group'] } }],
      ['a malformed DeviceID', { ...ok, targets: { devices: ['not a device id'] } }],
    ];
    for (const [what, body] of cases) {
      const r = await admin(w, 'POST', '/api/v1/profiles', body);
      assert.equal(r.status, 400, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(typeof r.body.error, 'string', what);
      assert.ok(r.body.error.length > 5, what);
    }
    const unknown = await admin(w, 'POST', '/api/v1/profiles', { ...ok, targets: { devices: [id, newDeviceId()] } });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.match(unknown.body.error, /no such device/);
    const notJson = await fetch(`${w.url}/api/v1/profiles`, {
      method: 'POST', headers: { authorization: `Bearer ${w.adminToken}`, 'content-type': 'application/json' }, body: '{',
    });
    assert.equal(notJson.status, 400);
    assert.equal((await admin(w, 'GET', '/api/v1/profiles')).body.profiles.length, before, 'nothing was stored');

    // Changing a profile is validated the same way, and a bad change changes nothing.
    const p = await createProfile(ok);
    for (const [what, body] of cases.slice(0, 4)) {
      assert.equal((await admin(w, 'PUT', `/api/v1/profiles/${p.id}`, body)).status, 400, what);
    }
    assert.equal((await getProfile(p.id)).version, 1);
    assert.equal((await admin(w, 'PUT', '/api/v1/profiles/p999999', ok)).status, 404);
    assert.equal((await admin(w, 'GET', '/api/v1/profiles/nope')).status, 404);
    assert.equal((await admin(w, 'GET', `/api/v1/profiles/${p.id}/devices?limit=0`)).status, 400);

    // Groups.
    assert.equal((await admin(w, 'POST', '/api/v1/groups', { name: 'has space' })).status, 400);
    assert.equal((await admin(w, 'POST', '/api/v1/groups', {})).status, 400);
    assert.equal((await admin(w, 'PUT', `/api/v1/groups/${group}/devices/${newDeviceId()}`)).status, 404);
    assert.equal((await admin(w, 'PUT', `/api/v1/groups/no-such-group/devices/${id}`)).status, 404);
    assert.equal((await admin(w, 'DELETE', '/api/v1/groups/no-such-group')).status, 404);
    assert.deepEqual((await admin(w, 'GET', `/api/v1/devices/${id}`)).body.groups, [], 'no membership stored');
    assert.equal((await admin(w, 'DELETE', `/api/v1/groups/${group}`)).status, 204);
    assert.ok(!(await admin(w, 'GET', '/api/v1/groups')).body.groups.some((g) => g.name === group));
    assert.equal((await admin(w, 'DELETE', `/api/v1/profiles/${p.id}`)).status, 204);
  });

  test('the device list of a profile is paginated', async () => {
    const devices = [await newDevice(), await newDevice(), await newDevice()];
    const p = await createProfile({
      name: 'paged', settings: [setting(CAMERA, '0')], targets: { devices: devices.map((d) => d.id) },
    });
    for (const d of devices) await d.dev.runSession();
    const seen = [];
    let cursor = null;
    do {
      const r = await admin(w, 'GET', `/api/v1/profiles/${p.id}/devices?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200);
      assert.ok(r.body.devices.length <= 2);
      seen.push(...r.body.devices.map((d) => d.device_id));
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, devices.map((d) => d.id).sort());
  });
});

describe('drift (PROFILE_VERIFY_INTERVAL_SECONDS=0: every check-in reads back)', () => {
  let wd;
  before(async () => {
    wd = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', PROFILE_VERIFY_INTERVAL_SECONDS: '0' } });
    await createUser(wd, EMAIL, PASSWORD);
  });
  after(async () => {
    await wd?.stop();
  });

  test('a value changed on the device is found, recorded with what was observed, and re-applied', async () => {
    const { id, dev } = await newDevice({}, wd);
    const p = await createProfile({ name: 'drift', settings: [setting(CAMERA, '0')], targets: { all: true } }, wd);
    await dev.runSession();
    assert.deepEqual(names(await dev.runSession()), ['Get'], 'read back, unchanged');
    dev.tree.set(policyResultUri(CAMERA), { format: 'int', data: '1' }); // someone turned it on
    assert.deepEqual(names(await dev.runSession()), ['Get', 'Replace', 'Get']);
    const v = await onDevice(id, p.id, wd);
    assert.equal(v.status, 'verified');
    assert.equal(v.settings[0].drift.observed, '1');
    assert.equal(v.settings[0].observed, '0');
    assert.equal(dev.tree.get(policyResultUri(CAMERA)).data, '0');
  });
});
