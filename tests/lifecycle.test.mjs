// End to end against the real worker in workerd: device identity and lifecycle as an attacker
// would try to bend them. Each test is written as the attacker's steps, asserts the refusal, and
// shows that the legitimate device keeps working.
//
// DeviceIDs, HWDevIDs and SessionIDs are identifiers, not secrets: every attacker here knows
// them. What an attacker does not have is the victim's password, tokens, digest secret or key.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  characteristic, derToPem, faultType, getPoliciesRequest, newDeviceId, newKey, openssl, parm, post, renewalPkcs7,
  rstRequest, tempDir, usernameToken, userTokenSecurity, win10Context, windowsCsr,
} from './support/device.mjs';
import { admin, createUser, enrollDevice } from './support/enroll.mjs';
import { startWorker } from './support/worker.mjs';
import { SyncMLDevice, cmd } from './support/syncml-device.mjs';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const MALLORY = 'mallory@contoso.com';
const PASSWORD = 'lifecycle password 1';
const PKCS7 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7';
const UNENROLL_EXEC = './Vendor/MSFT/DMClient/Provider/edgemdm/Unenroll';

let w;

before(async () => {
  w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', LOGIN_MAX_FAILURES: '5', COMMAND_HISTORY_MAX: '5' } });
  for (const email of [ALICE, BOB, MALLORY]) await createUser(w, email, PASSWORD);
});
after(async () => {
  await w?.stop();
});

// ---- helpers --------------------------------------------------------------------------------

const enrollUrl = () => `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
const policyUrl = () => `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
const target = (c) => c.items?.[0]?.target;

async function enrolled(email = ALICE, opts = {}) {
  const enr = await enrollDevice(w, { email, password: PASSWORD, ...opts });
  const dev = SyncMLDevice.fromEnrollment(enr);
  const s = await dev.runSession();
  assert.equal(s.replies[0].hdrCode, '200');
  return { enr, id: enr.deviceId, dev };
}

/** An RST for `deviceId` with any CSR, as anyone can make one. */
async function rstFor(deviceId, security, { key = newKey(), context = win10Context(deviceId) } = {}) {
  const csr = windowsCsr(deviceId, key);
  const { xml, text } = await post(enrollUrl(), rstRequest(enrollUrl(), security, { token: csr.toString('base64'), context }));
  return { fault: faultType(xml), text };
}

async function queue(id, body) {
  const r = await admin(w, 'POST', `/api/v1/devices/${id}/commands`, body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function record(id) {
  const r = await admin(w, 'GET', `/api/v1/devices/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function command(id, cid) {
  return (await admin(w, 'GET', `/api/v1/devices/${id}/commands/${cid}`)).body;
}

async function renew(enr, certDer = enr.certDer, key = enr.key) {
  const csr = windowsCsr(enr.deviceId, newKey(), { hash: 'sha256' });
  const p7 = await renewalPkcs7(certDer, key, csr);
  const body = rstRequest(enrollUrl(), '', { token: p7.toString('base64'), valueType: PKCS7, requestType: 'Renew', context: win10Context(enr.deviceId) });
  const { xml, text } = await post(enrollUrl(), body);
  return { fault: faultType(xml), text };
}

async function enrollmentToken(email, uses = 5) {
  const r = await admin(w, 'POST', '/api/v1/enrollment-tokens', { email, uses, expires_in_seconds: 3600 });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.token;
}

// ---- 1, 11: identity --------------------------------------------------------------------------

describe('a DeviceID belongs to its user', () => {
  test('another user enrolling an enrolled DeviceID gets the Authorization fault; the victim keeps its record, queue and session', async () => {
    const { id, dev } = await enrolled(ALICE);
    const replace = await queue(id, { type: 'replace', uri: './Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera', format: 'int', data: '0' });
    const before = await record(id);

    // Mallory, with her own password and with an admin enrollment token of her own.
    for (const security of [usernameToken(MALLORY, PASSWORD), userTokenSecurity(await enrollmentToken(MALLORY))]) {
      const r = await rstFor(id, security);
      assert.equal(r.fault, 'Authorization', r.text);
    }
    const after = await record(id);
    assert.equal(after.user, ALICE);
    assert.equal(after.certificate.serial, before.certificate.serial);
    assert.equal(after.status, 'enrolled');

    // Alice's PC checks in as before and gets the Replace that was queued for it.
    const s = await dev.runSession();
    assert.equal(s.replies[0].hdrCode, '200');
    assert.deepEqual(s.commands.map(target), ['./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera']);
    assert.equal((await command(id, replace.id)).status, 'acknowledged');
  });

  test('the same user re-enrolling (a reset PC) gets new credentials; the old secret and certificate stop working', async () => {
    const key = newKey();
    const { enr, id, dev: old } = await enrolled(ALICE, { key });
    const again = await enrollDevice(w, { email: ALICE, password: PASSWORD, deviceId: id, key });
    assert.notEqual(again.certThumbprint, enr.certThumbprint);
    const fresh = SyncMLDevice.fromEnrollment(again);
    assert.equal((await fresh.runSession()).replies[0].hdrCode, '200');
    // The copy of the old credentials (what a thief of the old disk image holds) is refused.
    const s = await old.runSession();
    assert.ok(s.replies.every((r) => ['401', '407'].includes(r.hdrCode)), s.replies.map((r) => r.hdrCode).join());
    assert.equal(s.commands.length, 0);
    // And the earlier certificate no longer renews; the current one does.
    assert.equal((await renew(enr)).fault, 'NotEligibleToRenew');
    assert.equal((await renew(again)).fault, null);
  });

  test('a retired DeviceID enrolls again as a new enrollment that inherits no queued command', async () => {
    const { id, dev } = await enrolled(ALICE);
    const wipe = await queue(id, { type: 'wipe' });
    assert.equal((await admin(w, 'DELETE', `/api/v1/devices/${id}`)).status, 202);
    // The PC is handed to Bob and enrolled again, before it ever received its Unenroll.
    const bobs = await enrollDevice(w, { email: BOB, password: PASSWORD, deviceId: id });
    const rec = await record(id);
    assert.equal(rec.user, BOB);
    assert.equal(rec.status, 'enrolled');
    assert.equal(rec.retire_requested, false);
    const list = (await admin(w, 'GET', `/api/v1/devices/${id}/commands`)).body.commands;
    assert.ok(list.every((c) => c.status === 'failed'), JSON.stringify(list.map((c) => [c.type, c.status])));
    assert.equal((await command(id, wipe.id)).status, 'failed', 'the wipe queued for Alice never reaches Bob');
    const s = await SyncMLDevice.fromEnrollment(bobs).runSession();
    assert.equal(s.replies[0].hdrCode, '200');
    assert.deepEqual(s.commands, [], 'no Unenroll, no wipe');
    assert.equal((await record(id)).status, 'enrolled', 'its first check-in does not unenroll it');
    assert.equal((await admin(w, 'POST', `/api/v1/devices/${id}/commands`, { type: 'lock' })).status, 201);
    // Alice's old credentials are refused.
    assert.notEqual((await dev.runSession()).replies[0].hdrCode, '200');
  });

  test('a new DeviceID on the same hardware by the same user supersedes the old record; by another user it does not', async () => {
    const hw = `HW-${newDeviceId()}`;
    const ctx = (id) => win10Context(id).map(([k, v]) => [k, k === 'HWDevID' ? hw : v]);
    const withHw = async (email, id) => {
      const r = await rstFor(id, usernameToken(email, PASSWORD), { context: ctx(id) });
      assert.equal(r.fault, null, r.text);
    };
    const first = newDeviceId();
    await withHw(ALICE, first);
    await withHw(MALLORY, newDeviceId());
    assert.equal((await record(first)).status, 'enrolled', "Mallory's claim leaves Alice's record alone");
    const second = newDeviceId();
    await withHw(ALICE, second);
    const third = newDeviceId();
    await withHw(ALICE, third);
    assert.equal((await record(second)).status, 'superseded');
    assert.equal((await record(third)).status, 'enrolled');
  });
});

// ---- 2, 7: retire ---------------------------------------------------------------------------

describe('retire takes effect at once', () => {
  test('a device that answers its Unenroll with 500 is retired anyway; until then it gets only the Unenroll', async () => {
    const { enr, id, dev } = await enrolled(ALICE);
    const lock = await queue(id, { type: 'lock' });
    assert.equal((await admin(w, 'DELETE', `/api/v1/devices/${id}`)).status, 202);
    const rec = await record(id);
    assert.equal(rec.status, 'retiring');
    assert.equal((await command(id, lock.id)).status, 'failed', 'what was queued is cancelled');
    // At once: no new commands, no renewal, a second DELETE changes nothing.
    assert.equal((await admin(w, 'POST', `/api/v1/devices/${id}/commands`, { type: 'get', uri: './DevDetail/SwV' })).status, 409);
    assert.equal((await renew(enr)).fault, 'NotEligibleToRenew');
    assert.equal((await admin(w, 'DELETE', `/api/v1/devices/${id}`)).status, 202);
    const s = await dev.runSession({ statusFor: (c) => (target(c) === UNENROLL_EXEC ? '500' : undefined) });
    assert.deepEqual(s.commands.map(target), [UNENROLL_EXEC], 'the Unenroll and nothing else');
    assert.equal((await record(id)).status, 'retired');
    assert.equal((await dev.runSession()).replies[0].hdrCode, '403');
  });

  test('a device that never answers its Unenroll is retired after its attempts', async () => {
    const { id, dev } = await enrolled(ALICE);
    assert.equal((await admin(w, 'DELETE', `/api/v1/devices/${id}`)).status, 202);
    for (let i = 0; i < 3; i++) {
      const s = await dev.runSession({ drop: (c) => target(c) === UNENROLL_EXEC });
      assert.deepEqual(s.commands.map(target), [UNENROLL_EXEC]);
    }
    // The fourth session finds the Unenroll out of attempts: the retirement completes.
    await dev.runSession();
    assert.equal((await record(id)).status, 'retired');
    assert.equal((await dev.runSession()).replies[0].hdrCode, '403');
  });
});

// ---- 3, 4: sessions ---------------------------------------------------------------------------

describe('session integrity', () => {
  test('a message with the DeviceID, a new SessionID and no Cred changes nothing: the device authenticates next and its commands succeed', async () => {
    const { id, dev } = await enrolled(ALICE);
    const q = await queue(id, { type: 'get', uri: './DevDetail/SwV' });
    const nonce = dev.nonce;
    // The attacker knows the DeviceID and the management URL, nothing else.
    const attacker = new SyncMLDevice({ deviceId: id, name: id, secret: 'guess', nonce: 'AAAA', addr: dev.addr, firstSession: 900 });
    for (const cred of ['none', 'wrong']) {
      const s = await attacker.runSession({ cred, retryAuth: false });
      assert.ok(['401', '407'].includes(s.replies[0].hdrCode));
      assert.equal(s.replies[0].hdrStatus.chal?.nextNonce, nonce, 'challenged with the nonce that is still valid');
      assert.equal(s.commands.length, 0);
    }
    const s = await dev.runSession();
    assert.equal(s.replies[0].hdrCode, '200', 'the device is not locked out');
    assert.deepEqual(s.commands.map(target), ['./DevDetail/SwV']);
    assert.equal((await command(id, q.id)).status, 'acknowledged');
  });

  test('mid-session, a message without Cred (same SessionID, higher MsgID) is challenged and none of its statuses count', async () => {
    const { id, dev } = await enrolled(ALICE);
    const q = await queue(id, { type: 'reboot' });
    const s = await dev.runSession({ stopAfter: 1 });
    const reply = s.replies[0];
    assert.deepEqual(reply.commands.map(target), ['./Device/Vendor/MSFT/Reboot/RebootNow']);
    // The attacker forges the acknowledgement (a 500) without a Cred.
    const forged = dev.message(dev.respond(reply, { statusFor: () => '500' }), { cred: 'none' });
    const r = await dev.send(forged, { absorb: false });
    assert.equal(r.hdrCode, '407');
    assert.equal(r.commands.length, 0);
    assert.equal((await command(id, q.id)).status, 'sent', 'the forged status was not applied');
    // The device's own answer, with its Cred, is.
    const s2 = await dev.continueSession(reply);
    assert.ok(s2.ended);
    assert.equal((await command(id, q.id)).status, 'acknowledged');
  });
});

// ---- 5, 6: credentials ------------------------------------------------------------------------

describe('credentials', () => {
  test('password guesses at GetPolicies and RST count against the sign-in limits; the user still enrolls after the window', async () => {
    const victim = 'carol@contoso.com';
    await createUser(w, victim, PASSWORD);
    const headers = { 'cf-connecting-ip': '203.0.113.9' };
    for (let i = 0; i < 5; i++) {
      const url = i % 2 ? enrollUrl() : policyUrl();
      const body = i % 2
        ? rstRequest(url, usernameToken(victim, `guess ${i}`), { token: windowsCsr(newDeviceId(), newKey()).toString('base64'), context: win10Context(newDeviceId()) })
        : getPoliciesRequest(url, usernameToken(victim, `guess ${i}`));
      const { xml, text } = await post(url, body, { headers });
      assert.equal(faultType(xml), 'Authentication', text);
    }
    // Now even the right password waits, from any address (the per-email limit).
    const { xml, text } = await post(policyUrl(), getPoliciesRequest(policyUrl(), usernameToken(victim, PASSWORD)));
    assert.equal(faultType(xml), 'Authentication', text);
    assert.match(text, /too many/);
    // Other users are not affected.
    assert.equal((await rstFor(newDeviceId(), usernameToken(ALICE, PASSWORD))).fault, null);
  });

  test('under Federated the SOAP endpoints take tokens only', async () => {
    const fed = await startWorker();
    try {
      await createUser(fed, ALICE, PASSWORD);
      const url = `${fed.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
      const { xml, text } = await post(url, getPoliciesRequest(url, usernameToken(ALICE, PASSWORD)));
      assert.equal(faultType(xml), 'Authentication', text);
    } finally {
      await fed.stop();
    }
  });

  test('deleting a user revokes the login tokens they signed in for, at once', async () => {
    const erin = 'erin@contoso.com';
    await createUser(w, erin, PASSWORD);
    const signIn = async () => {
      const res = await fetch(`${w.url}/windows-web-agent`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ appru: 'ms-app://windows.immersivecontrolpanel', email: erin, password: PASSWORD }),
      });
      const html = await res.text();
      const token = html.match(/name="wresult" value="([^"]*)"/)?.[1];
      assert.ok(token, html);
      return token;
    };
    const [used, kept] = [await signIn(), await signIn()];
    assert.equal((await rstFor(newDeviceId(), userTokenSecurity(used))).fault, null, 'her tokens enroll');
    assert.equal((await admin(w, 'DELETE', `/api/v1/users/${encodeURIComponent(erin)}`)).status, 204);
    // The other token, never used, no longer enrolls anything.
    assert.equal((await rstFor(newDeviceId(), userTokenSecurity(kept))).fault, 'Authentication');
  });

  test('deleting a user revokes their enrollment tokens at once', async () => {
    const dave = 'dave@contoso.com';
    await createUser(w, dave, PASSWORD);
    const token = await enrollmentToken(dave, 10);
    assert.equal((await rstFor(newDeviceId(), userTokenSecurity(token))).fault, null, 'the token works');
    assert.equal((await admin(w, 'DELETE', `/api/v1/users/${encodeURIComponent(dave)}`)).status, 204);
    assert.equal((await rstFor(newDeviceId(), userTokenSecurity(token))).fault, 'Authentication');
    const listed = (await admin(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.find((t) => t.email === dave);
    assert.equal(listed.revoked, true);
    // A new user with the same email starts clean: old tokens stay refused, new ones work.
    await createUser(w, dave, PASSWORD);
    assert.equal((await rstFor(newDeviceId(), userTokenSecurity(token))).fault, 'Authentication');
    assert.equal((await rstFor(newDeviceId(), userTokenSecurity(await enrollmentToken(dave)))).fault, null);
  });
});

// ---- 10: bounded storage ----------------------------------------------------------------------

describe('bounded storage', () => {
  test('command history is pruned to COMMAND_HISTORY_MAX, oldest first; queued commands are never pruned', async () => {
    const { id, dev } = await enrolled(ALICE);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) await queue(id, { type: 'get', uri: `./DevDetail/Ext/R${round}I${i}` });
      await dev.runSession();
    }
    const waiting = [];
    for (let i = 0; i < 3; i++) waiting.push((await queue(id, { type: 'get', uri: `./DevDetail/Ext/W${i}` })).id);
    const list = (await admin(w, 'GET', `/api/v1/devices/${id}/commands`)).body.commands;
    assert.ok(list.length <= 5 + 1, `${list.length} kept`);
    for (const cid of waiting) assert.ok(list.some((c) => c.id === cid), 'queued commands are kept');
    const ids = list.map((c) => c.id);
    assert.deepEqual(ids, [...ids].sort(), 'the newest are kept');
    const s = await dev.runSession();
    assert.equal(s.commands.length, 3);
    void cmd;
  });
});

// ---- message signing ---------------------------------------------------------------------------

/** A detached CMS signature (base64 DER) of `text` with this certificate and key. */
async function sign(text, certDer, key) {
  const dir = await tempDir('edgemdm-sign-');
  try {
    await fs.writeFile(path.join(dir, 'cert.pem'), derToPem(certDer));
    await fs.writeFile(path.join(dir, 'key.pem'), key.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await fs.writeFile(path.join(dir, 'msg.xml'), text);
    await openssl(['cms', '-sign', '-binary', '-outform', 'DER', '-md', 'sha256', '-in', path.join(dir, 'msg.xml'),
      '-signer', path.join(dir, 'cert.pem'), '-inkey', path.join(dir, 'key.pem'), '-out', path.join(dir, 'sig.der')]);
    return (await fs.readFile(path.join(dir, 'sig.der'))).toString('base64');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('message signing (MESSAGE_SIGNING=require)', () => {
  test('the device is told to sign; only messages signed with its current certificate get in', async () => {
    const sw = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', MESSAGE_SIGNING: 'require' } });
    try {
      await createUser(sw, ALICE, PASSWORD);
      const enr = await enrollDevice(sw, { email: ALICE, password: PASSWORD });
      const provider = characteristic(characteristic(characteristic(enr.doc, 'DMClient'), 'Provider'), 'edgemdm');
      assert.equal(parm(provider, 'RequireMessageSigning'), 'true');
      const dev = SyncMLDevice.fromEnrollment(enr);

      // Unsigned, and signed by someone else's certificate (the attacker's own enrollment).
      const other = await enrollDevice(sw, { email: ALICE, password: PASSWORD });
      const text = dev.message(dev.package1());
      for (const headers of [{}, { 'MDM-Signature': await sign(text, other.certDer, other.key) }]) {
        const r = await dev.send(text, { headers, absorb: false });
        assert.equal(r.hdrCode, '401', r.text);
        assert.equal(r.commands.length, 0);
      }
      // A signature over another message does not carry over either.
      const forged = await dev.send(text, { headers: { 'MDM-Signature': await sign(`${text} `, enr.certDer, enr.key) }, absorb: false });
      assert.equal(forged.hdrCode, '401');

      // The device's own signature, in either header name.
      for (const name of ['MDM-Signature', 'MS-Signature']) {
        dev.startSession();
        const own = dev.message(dev.package1());
        const r = await dev.send(own, { headers: { [name]: await sign(own, enr.certDer, enr.key) } });
        assert.equal(r.hdrCode, '200', `${name}: ${r.text}`);
      }
    } finally {
      await sw.stop();
    }
  });
});
