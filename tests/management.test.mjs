// End to end against the real worker in workerd: OMA-DM management sessions of a simulated
// Windows client (tests/support/syncml-device.mjs) — authentication, the admin commands API,
// delivery (statuses, results, at-least-once, MaxMsgSize, restarts), unenrollment and retire.
//
// Every SyncML reply is also checked by the device against the rules any reply must follow
// (checkReply in syncml-device.mjs): HTTP 200 + content type + Content-Length, SyncHdr echo,
// SyncHdr Status first with the right MsgRef, Statuses before commands, unique CmdIDs, Statuses
// that refer to what we sent, none for our Status/Results, Final.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { startWorker, kvGet, assertMatchesSchema, ROOT } from './support/worker.mjs';
import {
  discoverRequest, faultType, newDeviceId, newKey, post, renewalPkcs7, rstRequest, win10Context, windowsCsr,
} from './support/device.mjs';
import { admin, createUser, enrollDevice } from './support/enroll.mjs';
import {
  SyncMLDevice, SYNCML_CONTENT_TYPE, WINDOWS_QUERY, cmd, httpPost, unenrollAlert,
} from './support/syncml-device.mjs';

const EMAIL = 'mgmt@contoso.com';
const PASSWORD = 'management password 1';
const PKCS7 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7';
const UNENROLL_EXEC = './Vendor/MSFT/DMClient/Provider/edgemdm/Unenroll';
const DEVICE_SCHEMA = path.join(ROOT, 'kv-schema/device.schema.json');

let w;

before(async () => {
  w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise' } });
  await createUser(w, EMAIL, PASSWORD, 'Management Tester');
});
after(async () => {
  await w?.stop();
});

// ---- helpers --------------------------------------------------------------------------------

async function newDevice(opts = {}, worker = w) {
  const enr = await enrollDevice(worker, { email: EMAIL, password: PASSWORD });
  return { enr, id: enr.deviceId, dev: SyncMLDevice.fromEnrollment(enr, opts) };
}

async function queue(id, body, worker = w) {
  const r = await admin(worker, 'POST', `/api/v1/devices/${id}/commands`, body);
  assert.equal(r.status, 201, `queue ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body.id, 'string');
  assert.ok(r.body.id.length > 0);
  assert.equal(r.body.status, 'queued');
  return r.body;
}

async function listCommands(id, worker = w) {
  const r = await admin(worker, 'GET', `/api/v1/devices/${id}/commands`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(Array.isArray(r.body.commands), JSON.stringify(r.body));
  return r.body.commands;
}

async function getCommand(id, cid, worker = w) {
  const r = await admin(worker, 'GET', `/api/v1/devices/${id}/commands/${encodeURIComponent(cid)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function deviceRecord(id, worker = w) {
  const r = await admin(worker, 'GET', `/api/v1/devices/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** The device's status in its record, in the listing API and in its KV entry (schema-checked). */
async function assertDeviceStatus(id, status, worker = w) {
  assert.equal((await deviceRecord(id, worker)).status, status, 'GET /api/v1/devices/{id}');
  const list = await admin(worker, 'GET', '/api/v1/devices');
  assert.equal(list.status, 200);
  const listed = list.body.devices.find((d) => d.device_id === id);
  assert.ok(listed, 'listed in GET /api/v1/devices');
  assert.equal(listed.status, status, 'GET /api/v1/devices');
  const raw = await kvGet(worker.persistDir, `device:${id}`);
  assert.ok(raw, `KV device:${id} exists`);
  const entry = JSON.parse(raw);
  assertMatchesSchema(DEVICE_SCHEMA, entry);
  assert.equal(entry.status, status, 'KV listing entry');
}

const target = (c) => c.items?.[0]?.target;
const isIsoDate = (s) => typeof s === 'string' && !Number.isNaN(Date.parse(s));
const mgmtUrl = () => `${w.url}/ManagementServer/MDM.svc`;

/** A device that was never enrolled here. */
function strangerDevice() {
  const id = newDeviceId();
  return new SyncMLDevice({
    deviceId: id, name: id, secret: crypto.randomBytes(24).toString('base64'),
    nonce: crypto.randomBytes(16).toString('base64'), addr: mgmtUrl(),
  });
}

// ---- transport and the first session --------------------------------------------------------

describe('management endpoint', () => {
  test('first session: 200 with a fresh NextNonce, 200 for the alerts and the DevInfo Replace; inventory and last_checkin recorded', async () => {
    const { enr, id, dev } = await newDevice({ devInfo: { Man: 'Contoso Hardware', Mod: 'Model 7 <rev B>', Lang: 'de-DE' } });
    assert.equal(dev.addr, mgmtUrl(), 'ADDR in the provisioning document');
    assert.equal(dev.name, enr.deviceId, 'AAUTHNAME is the DeviceID');
    assert.equal(Buffer.from(dev.nonce, 'base64').length, 16);
    const before = await deviceRecord(id);
    assert.ok(!before.last_checkin, 'no check-in yet');
    const provisioned = dev.nonce;

    const s = await dev.runSession();
    assert.equal(s.replies.length, 1, 'nothing queued: the first reply closes the session');
    const r = s.replies[0];
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'].split(';')[0].trim(), SYNCML_CONTENT_TYPE);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.text));
    assert.equal(r.msg.hdr.verDTD, '1.2');
    assert.equal(r.msg.hdr.verProto, 'DM/1.2');
    assert.equal(r.msg.hdr.sessionId, s.sessionId);
    assert.equal(r.msg.hdr.msgId, '1');
    assert.equal(r.msg.hdr.target, id);
    assert.equal(r.msg.hdr.source, mgmtUrl());
    // Package 1 was: Alert 1201 (CmdID 1), Alert 1224 LoginStatus (2), Replace DevInfo (3).
    assert.deepEqual(r.statuses.map((x) => [x.msgRef, x.cmdRef, x.cmd, x.data]), [
      ['1', '0', 'SyncHdr', '200'],
      ['1', '1', 'Alert', '200'],
      ['1', '2', 'Alert', '200'],
      ['1', '3', 'Replace', '200'],
    ]);
    const chal = r.hdrStatus.chal;
    assert.ok(chal, 'the 200 carries a Chal');
    assert.equal(chal.type, 'syncml:auth-md5');
    assert.equal(chal.format, 'b64');
    assert.ok(Buffer.from(chal.nextNonce, 'base64').length >= 16, chal.nextNonce);
    assert.notEqual(chal.nextNonce, provisioned);
    assert.equal(r.commands.length, 0);
    assert.equal(r.final, true);
    assert.equal(dev.nonce, chal.nextNonce);

    const rec = await deviceRecord(id);
    assert.equal(typeof rec.inventory, 'object');
    for (const [k, v] of Object.entries(dev.devInfo)) assert.equal(rec.inventory[`./DevInfo/${k}`], v, k);
    assert.equal(rec.inventory['./DevInfo/DevId'], id);
    assert.ok(isIsoDate(rec.last_checkin), `last_checkin ${rec.last_checkin}`);
    assert.equal(rec.status, 'enrolled');

    // The next session authenticates with that NextNonce at once and gets another one.
    const s2 = await dev.runSession();
    assert.equal(s2.replies.length, 1);
    assert.equal(s2.replies[0].hdrCode, '200');
    assert.notEqual(s2.replies[0].hdrStatus.chal?.nextNonce, chal.nextNonce);
  });

  test('Windows query strings (?mode=Maintenance&Platform=WoA, Machine) and a hex SessionID work the same', async () => {
    const { id, dev } = await newDevice({ query: WINDOWS_QUERY, hexSessionIds: true, firstSession: 0x1a });
    const q = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const s = await dev.runSession();
    assert.equal(s.sessionId, '1A');
    assert.equal(s.replies[0].hdrCode, '200');
    assert.equal(s.replies[0].msg.hdr.sessionId, '1A');
    assert.deepEqual(s.commands.map((c) => [c.name, target(c)]), [['Get', './DevDetail/SwV']]);
    assert.ok(s.ended);
    assert.equal((await getCommand(id, q.id)).status, 'acknowledged');

    const s2 = await dev.runSession({ query: '?mode=Machine&Platform=WoA' });
    assert.equal(s2.sessionId, '1B');
    assert.equal(s2.replies[0].hdrCode, '200');
    assert.ok(s2.ended);
  });

  test('a body that is not SyncML gets HTTP 400, never a 5xx', async () => {
    const { dev } = await newDevice();
    const good = dev.message(dev.package1());
    const bodies = [
      ['plain text', 'hello'],
      ['empty', ''],
      ['HTML', '<html><body>hi</body></html>'],
      ['a SOAP envelope', discoverRequest(`${w.url}/EnrollmentServer/Discovery.svc`)],
      ['truncated SyncML', good.slice(0, good.length - 40)],
      ['SyncML without SyncBody', good.replace(/<SyncBody>.*<\/SyncBody>/, '')],
      ['SyncML without SyncHdr', good.replace(/<SyncHdr>.*<\/SyncHdr>/, '')],
      ['a MsgID that is not a number', good.replace('<MsgID>1</MsgID>', '<MsgID>one</MsgID>')],
      ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x3c, 0x00])],
    ];
    for (const [what, body] of bodies) {
      const res = await httpPost(`${mgmtUrl()}${WINDOWS_QUERY}`, body, { 'content-type': SYNCML_CONTENT_TYPE });
      assert.equal(res.status, 400, `${what}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
    }
    // The device was not disturbed: its real package 1 still authenticates.
    const s = await dev.runSession();
    assert.equal(s.replies[0].hdrCode, '200');
  });

  test('an unknown (never enrolled) device gets SyncHdr 401 and no commands, and no record', async () => {
    const dev = strangerDevice();
    const s = await dev.runSession();
    assert.ok(s.replies.length >= 1);
    for (const r of s.replies) {
      assert.equal(r.status, 200);
      assert.equal(r.hdrCode, '401', r.text);
      assert.equal(r.commands.length, 0, r.text);
      assert.equal(r.final, true);
    }
    assert.equal((await admin(w, 'GET', `/api/v1/devices/${dev.deviceId}`)).status, 404, 'a check-in creates no device');
  });
});

// ---- authentication -------------------------------------------------------------------------

describe('authentication', () => {
  test('no Cred: 407 with a Chal and no commands; package 1 again with a digest over that nonce: 200 and the queue', async () => {
    const { id, dev } = await newDevice();
    const q = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const s = await dev.runSession({ cred: 'none' });
    const [r1, r2] = s.replies;
    assert.equal(r1.hdrCode, '407');
    assert.equal(r1.hdrStatus.chal?.type, 'syncml:auth-md5');
    assert.equal(r1.hdrStatus.chal?.format, 'b64');
    assert.ok(Buffer.from(r1.hdrStatus.chal.nextNonce, 'base64').length >= 16);
    assert.equal(r1.commands.length, 0, 'no commands before authentication');
    assert.equal(r1.statuses.length, 4, 'a Status for the SyncHdr and each of our three commands');
    assert.equal(r1.final, true);
    assert.equal(r2.hdrCode, '200');
    assert.equal(r2.hdrStatus.msgRef, '2', 'the retry is MsgID 2 of the same session');
    assert.equal(r2.msg.hdr.sessionId, s.sessionId);
    assert.deepEqual(s.commands.map(target), ['./DevDetail/SwV']);
    assert.ok(s.ended);
    const rec = await getCommand(id, q.id);
    assert.equal(rec.status, 'acknowledged');
    assert.equal(rec.attempts, 1);
  });

  test('a wrong digest: 401 with a Chal of the current nonce and statuses only; the right one: 200 and the queue', async () => {
    const { id, dev } = await newDevice();
    const provisioned = dev.nonce;
    const q = await queue(id, { type: 'reboot' });
    const s = await dev.runSession({ cred: 'wrong' });
    const [r1, r2] = s.replies;
    assert.equal(r1.hdrCode, '401');
    // A failed message changes nothing: the challenge names the nonce that is still valid.
    assert.equal(r1.hdrStatus.chal?.nextNonce, provisioned, 'a Chal with the current nonce');
    assert.equal(r1.commands.length, 0);
    assert.ok(r1.statuses.length >= 1 && r1.msg.commands.every((c) => c.name === 'Status'));
    assert.equal(r2.hdrCode, '200');
    assert.deepEqual(s.commands.map(target), ['./Device/Vendor/MSFT/Reboot/RebootNow']);
    assert.equal((await getCommand(id, q.id)).status, 'acknowledged');
  });

  test('every failure is challenged with the current nonce and changes nothing; the device then gets in', async () => {
    const { id, dev } = await newDevice();
    const provisioned = dev.nonce;
    const q = await queue(id, { type: 'get', uri: './DevDetail/OEM' });
    const s = await dev.runSession({ cred: 'wrong', retryCred: 'wrong' });
    assert.equal(s.replies.length, 2);
    for (const r of s.replies) {
      assert.equal(r.hdrCode, '401');
      assert.equal(r.hdrStatus.chal?.nextNonce, provisioned, 'the nonce did not move');
      assert.equal(r.commands.length, 0);
    }
    assert.equal((await getCommand(id, q.id)).status, 'queued', 'nothing was sent');
    const s2 = await dev.runSession();
    assert.equal(s2.replies[0].hdrCode, '200', 'the nonce it was challenged with is the valid one');
    assert.deepEqual(s2.commands.map(target), ['./DevDetail/OEM']);
  });

  test('a captured message replayed later fails: 401 and no commands', async () => {
    const { id, dev } = await newDevice();
    const s1 = await dev.runSession();
    assert.equal(s1.replies[0].hdrCode, '200');
    const captured = s1.requests[0];
    assert.match(captured, /<Cred>/);
    const q = await queue(id, { type: 'get', uri: './DevDetail/SwV' });

    const r = await dev.replay(captured);
    assert.equal(r.hdrCode, '401', r.text);
    assert.equal(r.commands.length, 0);
    // Also with the Windows query string and after another session of the real device.
    const again = await dev.replay(captured, { query: WINDOWS_QUERY });
    assert.equal(again.hdrCode, '401');
    assert.equal(again.commands.length, 0);
    let rec = await getCommand(id, q.id);
    assert.equal(rec.status, 'queued');
    assert.equal(rec.attempts, 0);

    // The device itself still gets in (challenged if the replay moved the nonce) and gets the command.
    const s2 = await dev.runSession();
    const ok = s2.replies.findIndex((x) => x.hdrCode === '200');
    assert.ok(ok >= 0, 'the device authenticates');
    assert.deepEqual(s2.commands.map(target), ['./DevDetail/SwV']);
    rec = await getCommand(id, q.id);
    assert.equal(rec.status, 'acknowledged');
    // Its authenticating message of that session cannot be replayed either.
    const r2 = await dev.replay(s2.requests[ok]);
    assert.equal(r2.hdrCode, '401');
    assert.equal(r2.commands.length, 0);
  });
});

// ---- the commands API -----------------------------------------------------------------------

// What the admin queues, the SyncML the device must receive, what the device answers and the
// record's outcome.
const PLAN = [
  { body: { type: 'get', uri: './DevDetail/SwV' }, name: 'Get', target: './DevDetail/SwV', code: '200', status: 'acknowledged' },
  { body: { type: 'get', uri: './DevDetail/Ext/Microsoft/OSPlatform' }, name: 'Get', target: './DevDetail/Ext/Microsoft/OSPlatform', code: '200', status: 'acknowledged' },
  { body: { type: 'get', uri: './Vendor/MSFT/DeviceStatus/OS/Edition' }, name: 'Get', target: './Vendor/MSFT/DeviceStatus/OS/Edition', code: '404', status: 'failed' },
  { body: { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursStart', format: 'int', data: '8' }, name: 'Replace', code: '200', status: 'acknowledged' },
  { body: { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/Experience/AllowCortana', format: 'bool', data: 'false' }, name: 'Replace', code: '200', status: 'acknowledged' },
  { body: { type: 'replace', uri: './Vendor/MSFT/DMClient/Provider/edgemdm/EntDeviceName', format: 'chr', data: 'Alice\'s <PC> & "co"' }, name: 'Replace', code: '200', status: 'acknowledged' },
  // ADMX-backed policies travel as chr (escaped markup); Format xml carries one XML element.
  { body: { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/ADMX_Example/Setting', format: 'chr', data: '<enabled/><data id="Path" value="C:\\Temp &amp; more"/>' }, name: 'Replace', code: '200', status: 'acknowledged' },
  { body: { type: 'replace', uri: './Device/Vendor/MSFT/Example/Config', format: 'xml', data: '<Config xmlns="urn:example"><Url>https://contoso.com/a?x=1&amp;y=2</Url><Flag enabled="true"/></Config>' }, name: 'Replace', code: '200', status: 'acknowledged' },
  { body: { type: 'replace', uri: './Device/Vendor/MSFT/Example/Blob', format: 'b64', data: 'aGVsbG8gd29ybGQ=' }, name: 'Replace', code: '200', status: 'acknowledged' },
  { body: { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/Broken/Setting', format: 'int', data: '-1' }, name: 'Replace', code: '500', status: 'failed' },
  { body: { type: 'add', uri: './Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera', format: 'int', data: '0' }, name: 'Add', code: '418', status: 'failed' },
  { body: { type: 'delete', uri: './Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera' }, name: 'Delete', code: '404', status: 'failed' },
  { body: { type: 'exec', uri: './Device/Vendor/MSFT/Defender/Scan/Quick', data: '1' }, name: 'Exec', code: '202', status: 'acknowledged' },
  { body: { type: 'lock' }, name: 'Exec', target: './Vendor/MSFT/RemoteLock/Lock', code: '405', status: 'failed' },
  { body: { type: 'reboot' }, name: 'Exec', target: './Device/Vendor/MSFT/Reboot/RebootNow', code: '200', status: 'acknowledged' },
  { body: { type: 'wipe' }, name: 'Exec', target: './Device/Vendor/MSFT/RemoteWipe/doWipe', code: '200', status: 'acknowledged' },
  { body: { type: 'inventory' }, name: 'Get', code: '200', status: 'acknowledged' },
].map((p) => ({ target: p.body.uri, ...p }));

describe('commands API', () => {
  let id;
  let dev;
  let queued;
  let delivered; // the delivery session

  test('every command type queues: 201 {id, status: queued}, listed in queue order, readable one by one', async () => {
    ({ id, dev } = await newDevice());
    await dev.runSession(); // a first check-in, nothing queued yet
    queued = [];
    for (const p of PLAN) queued.push(await queue(id, p.body));
    assert.equal(new Set(queued.map((q) => q.id)).size, PLAN.length, 'distinct ids');
    const list = await listCommands(id);
    assert.deepEqual(list.map((c) => c.id), queued.map((q) => q.id), 'queue order');
    for (const [i, rec] of list.entries()) {
      const p = PLAN[i];
      assert.equal(rec.type, p.body.type);
      for (const [k, v] of Object.entries(p.body)) assert.equal(rec.request?.[k], v, `request.${k} of ${p.body.type}`);
      assert.equal(rec.status, 'queued');
      assert.equal(rec.status_code, null);
      assert.deepEqual(rec.results, []);
      assert.equal(rec.attempts, 0);
      assert.ok(isIsoDate(rec.created_at), `created_at ${rec.created_at}`);
      assert.equal(rec.sent_at, null);
      assert.equal(rec.completed_at, null);
      assert.equal(rec.error, null);
      assert.deepEqual(await getCommand(id, rec.id), rec, 'GET one = its list entry');
    }
  });

  test('bad commands get 400 {error}; nothing is queued', async () => {
    const before = (await listCommands(id)).length;
    const bad = [
      {},
      { type: 'shutdown' },
      { type: 5 },
      { type: 'get' },
      { type: 'get', uri: '' },
      { type: 'get', uri: 'DevDetail/SwV' },
      { type: 'get', uri: '/DevDetail/SwV' },
      { type: 'get', uri: './DevDetail/ SwV' },
      { type: 'get', uri: './DevDetail/SwV\n' },
      { type: 'get', uri: './DevDetail/Sw\u0001V' },
      { type: 'get', uri: 42 },
      { type: 'delete' },
      { type: 'exec' },
      { type: 'exec', uri: 'Reboot/RebootNow' },
      { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'int' },
      { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'float', data: '1.5' },
      { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'integer', data: '1' },
      { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'int', data: 'abc' },
      { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'bool', data: 'maybe' },
      { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'b64', data: 'not base64!!' },
      { type: 'replace', uri: 'Device/Vendor/MSFT/Policy/Config/A/B', format: 'int', data: '1' },
      { type: 'add', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'int', data: 'x1' },
      { type: 'add', uri: './Device/Vendor/MSFT/Policy/Config/A/B', format: 'bool', data: '2' },
    ];
    for (const body of bad) {
      const r = await admin(w, 'POST', `/api/v1/devices/${id}/commands`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(typeof r.body?.error, 'string', JSON.stringify(r.body));
    }
    for (const raw of ['not json', '[1,2]', '"get"', 'null']) {
      const res = await fetch(`${w.url}/api/v1/devices/${id}/commands`, {
        method: 'POST', headers: { authorization: `Bearer ${w.adminToken}`, 'content-type': 'application/json' }, body: raw,
      });
      const text = await res.text();
      assert.equal(res.status, 400, `${raw} → ${res.status} ${text}`);
      assert.equal(typeof JSON.parse(text).error, 'string');
    }
    assert.equal((await listCommands(id)).length, before, 'nothing queued');
  });

  test('unknown devices and commands are 404; the commands API needs the admin token', async () => {
    const stranger = newDeviceId();
    assert.equal((await admin(w, 'POST', `/api/v1/devices/${stranger}/commands`, { type: 'reboot' })).status, 404);
    assert.equal((await admin(w, 'GET', `/api/v1/devices/${stranger}/commands`)).status, 404);
    assert.equal((await admin(w, 'GET', `/api/v1/devices/${id}/commands/no-such-command`)).status, 404);
    for (const [method, p] of [['GET', `/api/v1/devices/${id}/commands`], ['POST', `/api/v1/devices/${id}/commands`], ['GET', `/api/v1/devices/${id}/commands/${queued[0].id}`]]) {
      for (const auth of [undefined, 'Bearer wrong']) {
        const res = await fetch(`${w.url}${p}`, {
          method, headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json' },
          body: method === 'POST' ? JSON.stringify({ type: 'reboot' }) : undefined,
        });
        assert.equal(res.status, 401, `${method} ${p} with ${auth}`);
      }
    }
    assert.equal((await listCommands(id)).length, PLAN.length, 'nothing queued by refused requests');
  });

  test('delivery: each command arrives once, in order, as its SyncML command; statuses and results land on the right record', async () => {
    const codes = new Map(PLAN.map((p) => [`${p.name} ${p.target}`, p.code]));
    // Statuses listed in reverse order: the server must match by MsgRef/CmdRef, not position.
    const s = await dev.runSession({ statusFor: (c) => codes.get(`${c.name} ${target(c)}`), reverse: true });
    delivered = s;
    assert.ok(s.ended);
    assert.equal(s.commands.length, PLAN.length, 'each command exactly once');
    for (const [i, p] of PLAN.entries()) {
      const c = s.commands[i];
      assert.equal(c.name, p.name, `command ${i} (${p.body.type})`);
      if (p.body.type === 'inventory') {
        assert.ok(c.items.length >= 2, 'inventory asks for several nodes in one Get');
        for (const it of c.items) assert.match(it.target, /^\.\/(DevInfo|DevDetail)\//);
        continue;
      }
      assert.equal(c.items.length, 1);
      assert.equal(target(c), p.target, `command ${i} (${p.body.type}) target`);
      if (p.body.format) assert.equal(c.items[0].format, p.body.format, `${p.body.type} format`);
      if (p.body.data !== undefined) assert.equal(c.items[0].data, p.body.data, `${p.body.type} data`);
    }

    const list = await listCommands(id);
    assert.deepEqual(list.map((c) => c.id), queued.map((q) => q.id));
    for (const [i, rec] of list.entries()) {
      const p = PLAN[i];
      const what = `${p.body.type} ${p.target ?? ''}`;
      assert.equal(rec.status, p.status, what);
      assert.equal(rec.status_code, p.code, what);
      assert.equal(rec.attempts, 1, what);
      assert.ok(isIsoDate(rec.sent_at) && isIsoDate(rec.completed_at), `${what}: ${rec.sent_at} ${rec.completed_at}`);
      assert.ok(Date.parse(rec.created_at) <= Date.parse(rec.sent_at) && Date.parse(rec.sent_at) <= Date.parse(rec.completed_at), what);
    }
    // Results: on the Get that asked for them, with the device's values.
    const results = (i) => list[i].results;
    assert.equal(results(0).length, 1);
    assert.equal(results(0)[0].uri, './DevDetail/SwV');
    assert.equal(results(0)[0].format, 'chr');
    assert.equal(results(0)[0].data, dev.valueOf('./DevDetail/SwV').data);
    assert.equal(results(0)[0].type ?? null, null);
    assert.equal(results(1).length, 1);
    assert.equal(results(1)[0].uri, './DevDetail/Ext/Microsoft/OSPlatform');
    assert.equal(results(1)[0].data, 'Windows 10 Enterprise');
    assert.deepEqual(results(2), [], 'a 404 Get has no results');
    for (let i = 3; i < PLAN.length - 1; i += 1) assert.deepEqual(results(i), [], `${PLAN[i].body.type} has no results`);
  });

  test('the inventory command refreshes the device inventory from its Results', async () => {
    const list = await listCommands(id);
    const inv = list.at(-1);
    assert.equal(inv.type, 'inventory');
    const get = delivered.commands.at(-1);
    assert.equal(get.name, 'Get');
    const uris = get.items.map((i) => i.target);
    assert.equal(inv.results.length, uris.length, 'one result per node asked for');
    assert.deepEqual(inv.results.map((r) => r.uri).sort(), [...uris].sort());
    const rec = await deviceRecord(id);
    const detail = uris.filter((u) => u.startsWith('./DevDetail/'));
    assert.ok(detail.length > 0, 'inventory reads DevDetail');
    for (const u of uris) assert.equal(rec.inventory[u], dev.valueOf(u).data, u);

    // A second inventory with new values overwrites the stored ones.
    const q = await queue(id, { type: 'inventory' });
    dev.values['./DevDetail/SwV'] = '10.0.22631.9999';
    for (const u of detail) if (u !== './DevDetail/SwV') dev.values[u] = `changed ${u}`;
    const s2 = await dev.runSession();
    assert.equal(s2.commands.length, 1);
    assert.equal((await getCommand(id, q.id)).status, 'acknowledged');
    const rec2 = await deviceRecord(id);
    for (const u of s2.commands[0].items.map((i) => i.target)) assert.equal(rec2.inventory[u], dev.valueOf(u).data, u);
  });
});

// ---- delivery guarantees --------------------------------------------------------------------

describe('delivery', () => {
  test('a command whose Status was lost is re-sent in the next session, before newer commands', async () => {
    const { id, dev } = await newDevice();
    const a = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const b = await queue(id, { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursEnd', format: 'int', data: '18' });
    const c = await queue(id, { type: 'reboot' });
    const lost = './Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursEnd';
    const s1 = await dev.runSession({ drop: (x) => target(x) === lost });
    assert.deepEqual(s1.commands.map(target), ['./DevDetail/SwV', lost, './Device/Vendor/MSFT/Reboot/RebootNow']);
    assert.ok(s1.ended, 'the session closes although one Status is missing');
    let rb = await getCommand(id, b.id);
    assert.equal(rb.status, 'sent');
    assert.equal(rb.attempts, 1);
    assert.equal(rb.status_code, null);
    assert.ok(isIsoDate(rb.sent_at));
    assert.equal(rb.completed_at, null);
    assert.equal((await getCommand(id, a.id)).status, 'acknowledged');
    assert.equal((await getCommand(id, c.id)).status, 'acknowledged');

    const d = await queue(id, { type: 'get', uri: './DevDetail/Ext/Microsoft/OSPlatform' });
    const s2 = await dev.runSession();
    assert.deepEqual(s2.commands.map(target), [lost, './DevDetail/Ext/Microsoft/OSPlatform'], 'only the unacknowledged one again, queue order kept');
    rb = await getCommand(id, b.id);
    assert.equal(rb.status, 'acknowledged');
    assert.equal(rb.status_code, '200');
    assert.equal(rb.attempts, 2);
    assert.equal((await getCommand(id, d.id)).attempts, 1);
    assert.equal((await getCommand(id, a.id)).attempts, 1);
    assert.equal((await getCommand(id, c.id)).attempts, 1);
    assert.deepEqual((await listCommands(id)).map((x) => x.id), [a.id, b.id, c.id, d.id]);
  });

  test('a session cut off after the server sent commands: all of them come again next session', async () => {
    const { id, dev } = await newDevice();
    const qs = [];
    for (const uri of ['./DevDetail/HwV', './DevDetail/FwV', './DevDetail/DevTyp']) qs.push(await queue(id, { type: 'get', uri }));
    const s1 = await dev.runSession({ stopAfter: 1 });
    assert.ok(s1.stopped);
    assert.deepEqual(s1.commands.map(target), ['./DevDetail/HwV', './DevDetail/FwV', './DevDetail/DevTyp']);
    for (const q of qs) assert.equal((await getCommand(id, q.id)).status, 'sent');
    const s2 = await dev.runSession();
    assert.deepEqual(s2.commands.map(target), ['./DevDetail/HwV', './DevDetail/FwV', './DevDetail/DevTyp']);
    for (const q of qs) {
      const rec = await getCommand(id, q.id);
      assert.equal(rec.status, 'acknowledged');
      assert.equal(rec.attempts, 2);
      assert.equal(rec.results.length, 1);
    }
  });

  test('a command never acknowledged fails after MAX_COMMAND_ATTEMPTS (default 3) sends', async () => {
    const { id, dev } = await newDevice();
    const x = await queue(id, { type: 'get', uri: './DevDetail/FwV' });
    for (let i = 1; i <= 3; i += 1) {
      const s = await dev.runSession({ drop: (c) => target(c) === './DevDetail/FwV' });
      assert.deepEqual(s.commands.map(target), ['./DevDetail/FwV'], `session ${i}`);
      assert.equal((await getCommand(id, x.id)).attempts, i);
    }
    const y = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const s4 = await dev.runSession();
    assert.deepEqual(s4.commands.map(target), ['./DevDetail/SwV'], 'not sent a 4th time; the queue goes on');
    const rx = await getCommand(id, x.id);
    assert.equal(rx.status, 'failed');
    assert.equal(rx.attempts, 3);
    assert.equal(rx.status_code, null, 'the device never answered');
    assert.equal((await getCommand(id, y.id)).status, 'acknowledged');
  });

  test('MAX_COMMAND_ATTEMPTS=2 is honoured', async () => {
    const w2 = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', MAX_COMMAND_ATTEMPTS: '2' } });
    try {
      await createUser(w2, EMAIL, PASSWORD);
      const { id, dev } = await newDevice({}, w2);
      const x = await queue(id, { type: 'lock' }, w2);
      const lock = './Vendor/MSFT/RemoteLock/Lock';
      for (let i = 1; i <= 2; i += 1) {
        const s = await dev.runSession({ drop: (c) => target(c) === lock });
        assert.deepEqual(s.commands.map(target), [lock], `session ${i}`);
      }
      const s3 = await dev.runSession();
      assert.deepEqual(s3.commands, [], 'not sent a 3rd time');
      const rx = await getCommand(id, x.id, w2);
      assert.equal(rx.status, 'failed');
      assert.equal(rx.attempts, 2);
    } finally {
      await w2.stop();
    }
  });

  test('200 commands with MaxMsgSize 4096: several messages under the limit, each command once and in order, all acknowledged', async () => {
    const { id, dev } = await newDevice({ maxMsgSize: 4096 });
    const uris = Array.from({ length: 200 }, (_, i) => `./Device/Vendor/MSFT/Policy/Config/Area${i % 7}/Setting${String(i).padStart(3, '0')}`);
    const ids = [];
    for (const [i, uri] of uris.entries()) ids.push((await queue(id, { type: 'replace', uri, format: 'int', data: String(i) })).id);

    const s = await dev.runSession();
    assert.ok(s.ended);
    for (const r of s.replies) assert.ok(Buffer.byteLength(r.text) <= 4096, `a reply of ${Buffer.byteLength(r.text)} bytes`);
    const withCommands = s.replies.filter((r) => r.commands.length > 0);
    assert.ok(withCommands.length >= 2, `${withCommands.length} messages with commands`);
    assert.equal(s.commands.length, 200, 'every command exactly once');
    assert.deepEqual(s.commands.map(target), uris, 'in queue order');
    assert.deepEqual(s.commands.map((c) => c.items[0].data), uris.map((_, i) => String(i)));
    // One session: same SessionID, rising server MsgIDs, a Cred in every message (over the
    // NextNonce of the reply before it), SyncHdr 200 for each.
    assert.ok(s.replies.every((r) => r.msg.hdr.sessionId === s.sessionId));
    const msgIds = s.replies.map((r) => Number(r.msg.hdr.msgId));
    for (let i = 1; i < msgIds.length; i += 1) assert.ok(msgIds[i] > msgIds[i - 1], `server MsgIDs ${msgIds}`);
    const nonces = new Set();
    for (const [i, req] of s.requests.entries()) {
      assert.match(req, /<Cred>/);
      assert.equal(s.replies[i].hdrCode, '200', `message ${i + 1}`);
      nonces.add(s.replies[i].hdrStatus.chal?.nextNonce);
    }
    assert.equal(nonces.size, s.replies.length, 'a fresh nonce in every reply');
    const list = await listCommands(id);
    assert.deepEqual(list.map((c) => c.id), ids);
    for (const rec of list) {
      assert.equal(rec.status, 'acknowledged', rec.request?.uri);
      assert.equal(rec.attempts, 1);
    }
  });

  test('results spread over several messages land on their own Get (MsgRef and CmdRef, not CmdRef alone)', async () => {
    const { id, dev } = await newDevice({ maxMsgSize: 2048 });
    const uris = Array.from({ length: 30 }, (_, i) => `./DevDetail/Ext/Microsoft/Node${String(i).padStart(2, '0')}`);
    const ids = [];
    for (const uri of uris) ids.push((await queue(id, { type: 'get', uri })).id);
    const s = await dev.runSession();
    assert.ok(s.ended);
    const withCommands = s.replies.filter((r) => r.commands.length > 0);
    assert.ok(withCommands.length >= 2, `${withCommands.length} messages with commands`);
    // CmdIDs are unique per message only (they may recur in the next one): (MsgRef, CmdRef) tells the Gets apart.
    assert.deepEqual(s.commands.map(target), uris);
    const list = await listCommands(id);
    assert.deepEqual(list.map((c) => c.id), ids);
    for (const [i, rec] of list.entries()) {
      assert.equal(rec.status, 'acknowledged', uris[i]);
      assert.equal(rec.results.length, 1, uris[i]);
      assert.equal(rec.results[0].uri, uris[i]);
      assert.equal(rec.results[0].data, dev.valueOf(uris[i]).data);
    }
  });

  test('a worker restart in the middle of a session loses no command', async (t) => {
    const { id, dev } = await newDevice({ maxMsgSize: 2048 });
    const uris = Array.from({ length: 12 }, (_, i) => `./Device/Vendor/MSFT/Policy/Config/Restart/Setting${i}`);
    for (const [i, uri] of uris.entries()) await queue(id, { type: 'replace', uri, format: 'chr', data: `value ${i}` });
    const s1 = await dev.runSession({ stopAfter: 2 });
    assert.ok(s1.stopped, 'the queue needs more than two messages at 2048 bytes');
    const ackedBefore = s1.replies[0].commands.map(target);
    assert.ok(ackedBefore.length > 0 && ackedBefore.length < uris.length);

    await w.restart();

    // The device goes on where it was: answers the second message, and so on.
    const s2 = await dev.continueSession(s1.replies.at(-1));
    t.diagnostic(`after the restart the session went on with SyncHdr ${s2.replies.map((r) => r.hdrCode).join(', ')}`);
    const s3 = await dev.runSession();
    assert.deepEqual(s3.commands, [], 'nothing left after the sessions');
    const received = [...s1.commands, ...s2.commands, ...s3.commands].map(target);
    for (const u of uris) assert.ok(received.includes(u), `${u} was delivered`);
    for (const u of ackedBefore) assert.equal(received.filter((x) => x === u).length, 1, `${u} was acknowledged before the restart: not re-sent`);
    const list = await listCommands(id);
    assert.equal(list.length, uris.length);
    for (const rec of list) assert.equal(rec.status, 'acknowledged', rec.request?.uri);
  });
});

// ---- unenrollment and retire ----------------------------------------------------------------

async function assertRenewalRefused(enr) {
  const url = `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
  const csr = windowsCsr(enr.deviceId, newKey(), { hash: 'sha256' });
  const p7 = await renewalPkcs7(enr.certDer, enr.key, csr);
  const body = rstRequest(url, '', { token: p7.toString('base64'), valueType: PKCS7, requestType: 'Renew', context: win10Context(enr.deviceId) });
  const { xml, text } = await post(url, body);
  assert.equal(faultType(xml), 'NotEligibleToRenew', text);
}

async function assertForbidden(dev) {
  const s = await dev.runSession();
  assert.equal(s.replies.length, 1, 'no challenge dance for a forbidden device');
  const r = s.replies[0];
  assert.equal(r.status, 200);
  assert.equal(r.hdrCode, '403', r.text);
  assert.equal(r.commands.length, 0);
  assert.equal(r.final, true);
}

describe('unenrollment', () => {
  test('Alert 1226 userrequest unenrolls: no commands, status unenrolled everywhere, later check-ins get 403', async () => {
    const { id, dev } = await newDevice();
    await dev.runSession();
    await assertDeviceStatus(id, 'enrolled');
    const q = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const s = await dev.runSession({ alerts: [unenrollAlert()] });
    assert.equal(s.replies.length, 1);
    const r = s.replies[0];
    assert.equal(r.hdrCode, '200');
    // Package 1: 1201 (1), LoginStatus (2), the 1226 (3), Replace (4).
    assert.deepEqual(r.statuses.slice(1).map((x) => [x.cmdRef, x.cmd, x.data]), [['1', 'Alert', '200'], ['2', 'Alert', '200'], ['3', 'Alert', '200'], ['4', 'Replace', '200']]);
    assert.equal(r.commands.length, 0, 'nothing is sent to a device that unenrolls');
    await assertDeviceStatus(id, 'unenrolled');
    await assertForbidden(dev);
    const rq = await getCommand(id, q.id);
    assert.equal(rq.attempts, 0, 'the queued command never went out');
    assert.notEqual(rq.status, 'acknowledged');
    await assertDeviceStatus(id, 'unenrolled');
  });

  test('other generic alerts (1226 or 1224 with another Meta Type) do not unenroll', async () => {
    const { id, dev } = await newDevice();
    await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const alerts = [
      cmd.alert('1226', [{ type: 'com.microsoft.mdm.win32csp_install', format: 'int', mark: 'informational', source: './Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/%7B1%7D/Status', data: '0' }]),
      cmd.alert('1224', [{ type: 'com.microsoft/MDM/AADUserToken', data: 'token' }]),
      cmd.alert('1224', [{ type: 'Reversed-Domain-Name:com.microsoft.mdm.win32csp_install', format: 'int', data: '0' }]),
    ];
    const s = await dev.runSession({ alerts });
    const r = s.replies[0];
    assert.equal(r.hdrCode, '200');
    assert.deepEqual(r.statuses.filter((x) => x.cmd === 'Alert').map((x) => x.data), ['200', '200', '200', '200', '200']);
    assert.deepEqual(s.commands.map(target), ['./DevDetail/SwV'], 'the queue is served as usual');
    await assertDeviceStatus(id, 'enrolled');
    const s2 = await dev.runSession();
    assert.equal(s2.replies[0].hdrCode, '200');
  });
});

describe('retire', () => {
  test('DELETE queues the Unenroll Exec; the device\'s 200 retires it: 403 afterwards, history kept, renewal refused', async () => {
    const { enr, id, dev } = await newDevice();
    const h = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    await dev.runSession();
    assert.equal((await getCommand(id, h.id)).status, 'acknowledged');

    const del = await admin(w, 'DELETE', `/api/v1/devices/${id}`);
    assert.equal(del.status, 202, JSON.stringify(del.body));
    let rec = await deviceRecord(id);
    assert.equal(rec.retire_requested, true);
    assert.notEqual(rec.status, 'retired', 'retired only once the device confirms');

    const s = await dev.runSession();
    const unenroll = s.commands.filter((c) => c.name === 'Exec' && target(c) === UNENROLL_EXEC);
    assert.equal(unenroll.length, 1, `the Unenroll Exec, once: ${JSON.stringify(s.commands.map((c) => [c.name, target(c)]))}`);
    assert.ok(s.ended);
    await assertDeviceStatus(id, 'retired');
    rec = await deviceRecord(id);
    assert.equal(rec.retire_requested, true);

    await assertForbidden(dev);
    const history = await listCommands(id);
    const hist = history.find((c) => c.id === h.id);
    assert.ok(hist, 'history still readable');
    assert.equal(hist.status, 'acknowledged');
    assert.equal(hist.results[0]?.data, dev.valueOf('./DevDetail/SwV').data);
    assert.equal((await getCommand(id, h.id)).status, 'acknowledged');
    await assertRenewalRefused(enr);
    await assertDeviceStatus(id, 'retired');
  });

  test('the Unenroll Exec unanswered (Windows aborts the session), then the 1226 alert: retired', async () => {
    const { enr, id, dev } = await newDevice();
    await dev.runSession();
    assert.equal((await admin(w, 'DELETE', `/api/v1/devices/${id}`)).status, 202);
    assert.equal((await deviceRecord(id)).retire_requested, true);
    const s1 = await dev.runSession({ stopAfter: 1 });
    assert.ok(s1.commands.some((c) => c.name === 'Exec' && target(c) === UNENROLL_EXEC), 'the Unenroll Exec is sent');
    assert.notEqual((await deviceRecord(id)).status, 'retired');

    const s2 = await dev.runSession({ alerts: [unenrollAlert()] });
    assert.equal(s2.replies[0].hdrCode, '200');
    assert.equal(s2.commands.length, 0);
    await assertDeviceStatus(id, 'retired');
    await assertForbidden(dev);
    assert.equal((await admin(w, 'GET', `/api/v1/devices/${id}/commands`)).status, 200, 'history still readable');
    await assertRenewalRefused(enr);
  });
});
