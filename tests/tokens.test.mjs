// Enrollment tokens end to end: login tokens from the sign-in page (single use, signed,
// short-lived), admin enrollment tokens (counted uses, revocation, expiry) and the sign-in
// rate limit. Runs with the default configuration (Federated, loopback appru not allowed).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { objectKeys, startWorker } from './support/worker.mjs';
import {
  faultType, getPoliciesRequest, newDeviceId, newKey, post, rstRequest, userTokenSecurity, win10Context, windowsCsr, NS,
} from './support/device.mjs';
import { admin, createUser } from './support/enroll.mjs';

const EMAIL = 'bob@contoso.com';
const PASSWORD = 'correct horse battery';
const OTHER = 'carol@contoso.com';
const APPRU = 'ms-app://windows.immersivecontrolpanel';
const NEUTRAL = 'The email or password is incorrect.';

let w;
const policyUrl = () => `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
const enrollUrl = () => `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;

before(async () => {
  w = await startWorker();
  await createUser(w, EMAIL, PASSWORD, 'Bob');
  await createUser(w, OTHER, PASSWORD, 'Carol');
});
after(async () => {
  await w?.stop();
});

/** POSTs the sign-in form; returns the status, the alert text and the wresult, if any. */
async function signIn(email, password, { ip = '198.51.100.1', deviceId, appru = APPRU } = {}) {
  const form = { appru, email, password, ...(deviceId ? { device_id: deviceId } : {}) };
  const res = await fetch(`${w.url}/windows-web-agent`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': ip },
    body: new URLSearchParams(form),
  });
  const html = await res.text();
  const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  const wresult = html.match(/name="wresult" value="([^"]*)"/)?.[1];
  const alert = html.match(/role="alert"[^>]*>([^<]*)</)?.[1];
  return { status: res.status, html, wresult: wresult && unescape(wresult), alert: alert && unescape(alert) };
}

async function loginToken(email = EMAIL, opts = {}) {
  const r = await signIn(email, PASSWORD, opts);
  assert.equal(r.status, 200, r.html);
  assert.ok(r.wresult, r.html);
  return r.wresult;
}

async function policy(security) {
  const { xml, text } = await post(policyUrl(), getPoliciesRequest(policyUrl(), security));
  return { fault: faultType(xml), text };
}

async function rst(security, deviceId = newDeviceId(), key = newKey()) {
  const csr = windowsCsr(deviceId, key);
  const { xml, text } = await post(enrollUrl(), rstRequest(enrollUrl(), security, { token: csr.toString('base64'), context: win10Context(deviceId) }));
  return { fault: faultType(xml), text, deviceId };
}

/** A token's whole enrollment: GetPolicies then RST, both with the token. */
async function enroll(token, deviceId = newDeviceId(), key = newKey()) {
  const security = userTokenSecurity(token);
  const pol = await policy(security);
  if (pol.fault) return { stage: 'policy', ...pol, deviceId };
  return { stage: 'rst', ...(await rst(security, deviceId, key)) };
}

function bstSecurity(valueType, b64) {
  return `<wsse:Security xmlns:wsse="${NS.wsse}" s:mustUnderstand="1"><wsse:BinarySecurityToken ` +
    `ValueType="${valueType}" EncodingType="${NS.wsse}#base64binary">${b64}</wsse:BinarySecurityToken></wsse:Security>`;
}

const b64url = (s) => Buffer.from(s).toString('base64url');
const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));

describe('login tokens', () => {
  test('a login token is checked at policy, spent at enrollment, and refused when replayed at enrollment', async () => {
    const token = await loginToken();
    const claims = claimsOf(token);
    assert.equal(claims.typ, 'login');
    assert.equal(claims.sub, EMAIL);
    const now = Date.now() / 1000;
    assert.ok(claims.exp > now && claims.exp <= now + 600 + 5, `short-lived: ${claims.exp - now} s`);
    const security = userTokenSecurity(token);
    // The token arrives twice (GetPolicies and RST); policy does not spend it.
    assert.equal((await policy(security)).fault, null);
    assert.equal((await policy(security)).fault, null);
    const first = await rst(security);
    assert.equal(first.fault, null, first.text);
    const device = await admin(w, 'GET', `/api/v1/devices/${first.deviceId}`);
    assert.equal(device.body.user, EMAIL);
    // Replays: another RST (another device or the same) is refused. The policy is public and
    // spends nothing, so its request checks the token's signature and expiry only (at the
    // edge, no object call); the token's state is checked where an RST spends it.
    assert.equal((await rst(security)).fault, 'Authentication');
    assert.equal((await rst(security, first.deviceId)).fault, 'Authentication');
    assert.equal((await policy(security)).fault, null);
    assert.equal((await rst(security)).fault, 'Authentication');
  });

  test('forged tokens are refused', async () => {
    const token = await loginToken();
    const [v, payload, sig] = token.split('.');
    const claims = claimsOf(token);
    const other = await loginToken(OTHER);
    const forgeries = [
      // Another user, an extended expiry, under the original signature.
      `${v}.${b64url(JSON.stringify({ ...claims, sub: OTHER }))}.${sig}`,
      `${v}.${b64url(JSON.stringify({ ...claims, exp: claims.exp + 86400 }))}.${sig}`,
      // One token's payload with another's signature.
      `${v}.${payload}.${other.split('.')[2]}`,
      // A flipped signature character, an invented signature, none.
      `${v}.${payload}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`,
      `${v}.${payload}.${b64url('x'.repeat(32))}`,
      `${v}.${payload}.`,
    ];
    for (const f of forgeries) {
      assert.equal((await policy(userTokenSecurity(f))).fault, 'Authentication', f);
      assert.equal((await rst(userTokenSecurity(f))).fault, 'Authentication', f);
    }
    // The genuine token still works: forgeries did not spend it.
    assert.equal((await enroll(token)).fault, null);
  });

  test('truncated, wrong-version, garbage and wrong-type tokens are refused', async () => {
    const token = await loginToken();
    const bad = [
      token.slice(0, token.length - 1),
      token.slice(0, token.lastIndexOf('.')),
      token.slice(0, 20),
      token.replace(/^v1\./, 'v2.'),
      'garbage',
      ' ',
      'v1..',
      `${token}.extra`,
      'x'.repeat(5000),
    ];
    for (const t of bad) {
      assert.equal((await policy(userTokenSecurity(t))).fault, 'Authentication', t.slice(0, 60));
      assert.equal((await rst(userTokenSecurity(t))).fault, 'Authentication', t.slice(0, 60));
    }
    // Not UTF-8 once decoded; not base64 at all.
    const userToken = 'http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken';
    assert.equal((await policy(bstSecurity(userToken, Buffer.from([0xff, 0xfe, 0x00]).toString('base64')))).fault, 'Authentication');
    // A BST that is not base64, or empty, is an unreadable security header (the SOAP layer's
    // InvalidSecurity fault, which Windows also reports as an authentication failure).
    assert.equal((await policy(bstSecurity(userToken, '%%%not-base64%%%'))).fault, 'InvalidSecurity');
    assert.equal((await policy(bstSecurity(userToken, ''))).fault, 'InvalidSecurity');
    // A good token under another ValueType (e.g. an Entra JWT).
    const jwtType = 'urn:ietf:params:oauth:token-type:jwt';
    assert.equal((await policy(bstSecurity(jwtType, Buffer.from(token).toString('base64')))).fault, 'Authentication');
    // The good token is untouched by all this.
    assert.equal((await enroll(token)).fault, null);
  });

  test('a token bound to a device enrolls only that device', async () => {
    const deviceId = newDeviceId();
    const page = await fetch(`${w.url}/windows-web-agent?appru=${encodeURIComponent(APPRU)}&login_hint=${EMAIL}&device_id=${deviceId}`);
    assert.match(await page.text(), new RegExp(`name="device_id" value="${deviceId}"`));
    const token = await loginToken(EMAIL, { deviceId });
    assert.equal(claimsOf(token).dev, deviceId);
    const security = userTokenSecurity(token);
    assert.equal((await rst(security)).fault, 'Authentication', 'another device');
    assert.equal((await rst(security, deviceId)).fault, null, 'the bound device');
  });

  test('an expired login token is refused', async () => {
    const short = await startWorker({ vars: { LOGIN_TOKEN_TTL_SECONDS: '1' } });
    try {
      await createUser(short, EMAIL, PASSWORD);
      const res = await fetch(`${short.url}/windows-web-agent`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ appru: APPRU, email: EMAIL, password: PASSWORD }),
      });
      const token = (await res.text()).match(/name="wresult" value="([^"]*)"/)[1];
      await new Promise((r) => setTimeout(r, 2100));
      const url = `${short.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
      const { xml } = await post(url, getPoliciesRequest(url, userTokenSecurity(token)));
      assert.equal(faultType(xml), 'Authentication');
    } finally {
      await short.stop();
    }
  });

  test('the sign-in page refuses a loopback appru unless configured to allow it', async () => {
    const res = await fetch(`${w.url}/windows-web-agent?appru=${encodeURIComponent('http://127.0.0.1:9/x')}`);
    assert.equal(res.status, 400);
    assert.equal((await signIn(EMAIL, PASSWORD, { appru: 'http://127.0.0.1:9/x' })).status, 400);
  });
});

describe('admin enrollment tokens', () => {
  test('a token with uses: 3 enrolls exactly three of ten devices enrolling at once', async () => {
    const created = await admin(w, 'POST', '/api/v1/enrollment-tokens', { email: EMAIL, expires_in_seconds: 600, uses: 3 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { token, id } = created.body;
    assert.match(token, /^v1\./);
    assert.equal(created.body.remaining, 3);
    const keys = Array.from({ length: 10 }, () => newKey());
    const results = await Promise.all(keys.map((key) => enroll(token, newDeviceId(), key)));
    const ok = results.filter((r) => r.fault === null);
    const refused = results.filter((r) => r.fault !== null);
    assert.equal(ok.length, 3, JSON.stringify(results.map((r) => [r.stage, r.fault])));
    assert.deepEqual([...new Set(refused.map((r) => r.fault))], ['Authentication']);
    const listed = (await admin(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.find((t) => t.id === id);
    assert.equal(listed.remaining, 0);
    assert.deepEqual([...listed.devices].sort(), ok.map((r) => r.deviceId).sort());
    for (const r of ok) assert.equal((await admin(w, 'GET', `/api/v1/devices/${r.deviceId}`)).body.user, EMAIL);
    assert.equal((await enroll(token)).fault, 'Authentication', 'no uses left');
  });

  test('list never shows the token; revoke refuses it from then on', async () => {
    const created = await admin(w, 'POST', '/api/v1/enrollment-tokens', { email: OTHER, expires_in_seconds: 3600, uses: 5 });
    assert.equal(created.status, 201);
    const { token, id } = created.body;
    const list = await admin(w, 'GET', '/api/v1/enrollment-tokens');
    assert.equal(list.status, 200);
    const listed = list.body.tokens.find((t) => t.id === id);
    assert.ok(listed);
    assert.equal(listed.email, OTHER);
    assert.equal(listed.uses, 5);
    assert.equal(listed.revoked, false);
    assert.equal(listed.token, undefined);
    assert.ok(!JSON.stringify(list.body).includes(token.split('.')[2]), 'no signature in the listing');
    assert.equal((await enroll(token)).fault, null, 'usable before revocation');

    assert.equal((await admin(w, 'DELETE', `/api/v1/enrollment-tokens/${id}`)).status, 204);
    assert.equal((await admin(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.find((t) => t.id === id).revoked, true);
    // Refused where it would enroll (the public policy is still answered, as to any signed token).
    assert.equal((await rst(userTokenSecurity(token))).fault, 'Authentication');
    assert.equal((await enroll(token)).fault, 'Authentication');
    assert.equal((await signIn(OTHER, token, { ip: '198.51.100.7' })).alert, NEUTRAL, 'nor as a password');

    assert.equal((await admin(w, 'DELETE', '/api/v1/enrollment-tokens/0123456789abcdef')).status, 404);
    const malformed = await admin(w, 'DELETE', '/api/v1/enrollment-tokens/..%2Fx');
    assert.equal(malformed.status, 400);
    assert.ok(malformed.body.error);
  });

  test('an admin token expires', async () => {
    const created = await admin(w, 'POST', '/api/v1/enrollment-tokens', { email: EMAIL, expires_in_seconds: 1, uses: 1 });
    assert.equal(created.status, 201);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await enroll(created.body.token)).fault, 'Authentication');
    const listed = (await admin(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.find((t) => t.id === created.body.id);
    assert.equal(listed.expired, true);
  });

  test('an admin token is a password on the sign-in page, for its own user only', async () => {
    const created = await admin(w, 'POST', '/api/v1/enrollment-tokens', { email: EMAIL, expires_in_seconds: 600, uses: 1 });
    const { token } = created.body;
    const r = await signIn(EMAIL, token, { ip: '198.51.100.8' });
    assert.equal(r.status, 200);
    assert.equal(r.wresult, token, 'handed to Windows as it is: its use is spent at enrollment');
    const wrongUser = await signIn(OTHER, token, { ip: '198.51.100.8' });
    assert.equal(wrongUser.wresult, undefined);
    assert.equal(wrongUser.alert, NEUTRAL);
    assert.equal((await enroll(r.wresult)).fault, null);
    assert.equal((await enroll(r.wresult)).fault, 'Authentication', 'its one use is spent');
  });

  test('the admin routes need the admin token and valid input', async () => {
    const noAuth = await fetch(`${w.url}/api/v1/enrollment-tokens`);
    assert.equal(noAuth.status, 401);
    assert.ok((await noAuth.json()).error);
    const wrongAuth = await fetch(`${w.url}/api/v1/enrollment-tokens`, { method: 'POST', headers: { authorization: 'Bearer nope' }, body: '{}' });
    assert.equal(wrongAuth.status, 401);
    for (const body of [
      { email: 'not an email', uses: 1 },
      { email: 'nobody@contoso.com', uses: 1 },
      { email: EMAIL, uses: 0 },
      { email: EMAIL, uses: -1 },
      { email: EMAIL, expires_in_seconds: 0 },
      { email: EMAIL, expires_in_seconds: 10 ** 9 },
      { email: EMAIL, surprise: true },
      {},
    ]) {
      const r = await admin(w, 'POST', '/api/v1/enrollment-tokens', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(typeof r.body.error, 'string');
    }
    const notJson = await fetch(`${w.url}/api/v1/enrollment-tokens`, {
      method: 'POST', headers: { authorization: `Bearer ${w.adminToken}`, 'content-type': 'application/json' }, body: '{',
    });
    assert.equal(notJson.status, 400);
  });
});

describe('sign-in rate limit', () => {
  test('ten failures per email or per address lock sign-in with a neutral 429 page', async () => {
    const email = 'dave@contoso.com';
    await createUser(w, email, PASSWORD);
    // Failures for one email from many addresses: the email is locked, even with the right password.
    for (let i = 0; i < 10; i++) {
      const r = await signIn(email, `wrong ${i}`, { ip: `192.0.2.${i + 1}` });
      assert.equal(r.status, 200);
      assert.equal(r.alert, NEUTRAL);
    }
    const locked = await signIn(email, PASSWORD, { ip: '192.0.2.100' });
    assert.equal(locked.status, 429);
    assert.equal(locked.wresult, undefined);
    assert.match(locked.alert, /Too many sign-in attempts/);
    assert.match(locked.html, new RegExp(`value="${email}"`), 'the email is kept');
    // The same answer for an email that does not exist: nothing tells them apart.
    for (let i = 0; i < 10; i++) await signIn('ghost@contoso.com', 'x', { ip: `192.0.2.${i + 1}` });
    const ghost = await signIn('ghost@contoso.com', 'x', { ip: '192.0.2.100' });
    assert.equal(ghost.status, 429);
    assert.equal(ghost.alert, locked.alert);
    // Other users are not affected...
    assert.ok((await signIn(OTHER, PASSWORD, { ip: '192.0.2.101' })).wresult);
    // ...unless they come from an address with ten failures (many emails from one address).
    const ip = '203.0.113.9';
    for (let i = 0; i < 10; i++) {
      assert.equal((await signIn(`user${i}@contoso.com`, 'guess', { ip })).status, 200);
    }
    const fromIp = await signIn(OTHER, PASSWORD, { ip });
    assert.equal(fromIp.status, 429);
    assert.equal(fromIp.wresult, undefined);
    // Concurrent guesses cannot overrun the limit.
    const burstEmail = 'erin@contoso.com';
    // Five addresses, five guesses each: below the per-address limit, so only the email's counts.
    // Under 25 concurrent POSTs, `wrangler dev`'s own proxy sometimes loses its connection to the
    // local runtime and answers 503 "Your worker restarted mid-request. Please try sending the
    // request again." without an answer from the Worker; such a guess is sent again, as it asks.
    const guess = async (i) => {
      for (let attempt = 0; ; attempt++) {
        const r = await signIn(burstEmail, `g${i}`, { ip: `198.18.0.${(i % 5) + 1}` });
        if (r.status !== 503 || !r.html.includes('restarted mid-request') || attempt === 2) return r;
      }
    };
    const burst = await Promise.all(Array.from({ length: 25 }, (_, i) => guess(i)));
    assert.equal(burst.filter((r) => r.status === 200).length, 10);
    assert.equal(burst.filter((r) => r.status === 429).length, 15);
  });

  test('a successful sign-in gives its attempt back', async () => {
    const email = 'frank@contoso.com';
    await createUser(w, email, PASSWORD);
    for (let i = 0; i < 9; i++) await signIn(email, 'wrong', { ip: `192.0.2.${200 + (i % 5)}` });
    for (let i = 0; i < 3; i++) assert.ok((await signIn(email, PASSWORD, { ip: '192.0.2.210' })).wresult, `success ${i}`);
    assert.equal((await signIn(email, 'wrong', { ip: '192.0.2.211' })).status, 200, 'the tenth failure still counts normally');
    assert.equal((await signIn(email, PASSWORD, { ip: '192.0.2.212' })).status, 429);
  });
});

// The token authority has no one object every sign-in and enrollment goes through: the edge
// checks signatures with the key it read once, and only a token's spend or check of its state
// goes to an object (its user's). Counted with the worker's own request metrics.
describe('tokens without a global object', () => {
  let m;
  const url = (p) => `${m.url}/EnrollmentServer/${p}`;
  const calls = (res) => JSON.parse(res.headers.get('x-edgemdm-metrics')).do_calls;

  before(async () => {
    m = await startWorker({ vars: { BENCH_METRICS: 'true' } });
    await createUser(m, EMAIL, PASSWORD, 'Bob');
  });
  after(async () => {
    await m?.stop();
  });

  async function mPolicy(token) {
    const u = url('PolicyEnrollmentWebservice.svc');
    const { res, xml } = await post(u, getPoliciesRequest(u, userTokenSecurity(token)));
    return { fault: faultType(xml), calls: calls(res) };
  }

  test('forged, expired and garbage tokens reach no object; a genuine one reaches only its user\'s, once, to enroll', async () => {
    const res = await fetch(`${m.url}/windows-web-agent`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': '198.51.100.9' },
      body: new URLSearchParams({ appru: APPRU, email: EMAIL, password: PASSWORD }),
    });
    const html = await res.text();
    const token = html.match(/name="wresult" value="([^"]*)"/)?.[1]?.replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    assert.ok(token, html);
    const [v, payload, sig] = token.split('.');
    const claims = claimsOf(token);
    assert.equal(claims.sharded, true, 'a new token says its state is in its user\'s object');

    // The attacker's tokens: another user or a later expiry under the genuine signature, an
    // invented signature, an expired payload, garbage. Each is refused at the edge.
    const attacks = [
      `${v}.${b64url(JSON.stringify({ ...claims, sub: OTHER }))}.${sig}`,
      `${v}.${b64url(JSON.stringify({ ...claims, exp: claims.exp + 86400 }))}.${sig}`,
      `${v}.${payload}.${b64url('x'.repeat(32))}`,
      `${v}.${b64url(JSON.stringify({ ...claims, exp: 1 }))}.${sig}`,
      'v1.garbage.garbage',
    ];
    for (const t of attacks) {
      const r = await mPolicy(t);
      assert.deepEqual(r, { fault: 'Authentication', calls: 0 }, t);
    }

    // The genuine token: the policy request needs no object either, and it still enrolls.
    assert.deepEqual(await mPolicy(token), { fault: null, calls: 0 });
    const deviceId = newDeviceId();
    const u = url('Win10DeviceEnrollmentWebservice.svc');
    const csr = windowsCsr(deviceId, newKey());
    const body = rstRequest(u, userTokenSecurity(token), { token: csr.toString('base64'), context: win10Context(deviceId) });
    const enrolled = await post(u, body);
    assert.equal(faultType(enrolled.xml), null, enrolled.text);
    assert.equal(calls(enrolled.res), 4, 'device record, the token spent in its user\'s object, the CA, the device');
    // Spent: refused where it would be spent again, by its user's object.
    const replay = await post(u, rstRequest(u, userTokenSecurity(token), { token: windowsCsr(newDeviceId(), newKey()).toString('base64'), context: win10Context(deviceId) }));
    assert.equal(faultType(replay.xml), 'Authentication');
  });

  test('the listing pages through every user\'s tokens, 40 users a page, and refuses a cursor that is no email', async () => {
    const emails = Array.from({ length: 44 }, (_, i) => `pager${String(i).padStart(2, '0')}@contoso.com`);
    for (const e of emails) await createUser(m, e, PASSWORD, e);
    const created = new Set();
    for (const e of [EMAIL, ...emails]) {
      const r = await admin(m, 'POST', '/api/v1/enrollment-tokens', { email: e });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      created.add(r.body.id);
    }
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const r = await admin(m, 'GET', `/api/v1/enrollment-tokens${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.tokens.length > 0);
      pages += 1;
      seen.push(...r.body.tokens.map((t) => t.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.equal(pages, 2);
    assert.equal(seen.length, created.size);
    assert.deepEqual(new Set(seen), created);
    assert.equal((await admin(m, 'GET', '/api/v1/enrollment-tokens?cursor=not-an-email')).status, 400);
  });
});

// An attacker who guesses from many addresses leaves one failure window per address; each
// window's object deletes it when it ends, so nothing stays behind.
describe('failure windows end without a trace', () => {
  test('an address seen once keeps no storage after its window; the legitimate user signs in throughout', async () => {
    const s = await startWorker({ vars: { LOGIN_WINDOW_SECONDS: '2' } });
    try {
      await createUser(s, EMAIL, PASSWORD, 'Bob');
      const signInAt = async (password, ip) => {
        const res = await fetch(`${s.url}/windows-web-agent`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': ip },
          body: new URLSearchParams({ appru: APPRU, email: EMAIL, password }),
        });
        return (await res.text()).includes('name="wresult"');
      };
      for (let i = 1; i <= 3; i++) assert.equal(await signInAt('wrong guess', `203.0.113.${i}`), false);
      const during = objectKeys(s.persistDir, 'TokenAuthority').filter(([, keys]) => keys.some((k) => k.startsWith('rl:')));
      assert.equal(during.length, 4, JSON.stringify(during)); // three addresses and the email
      assert.equal(await signInAt(PASSWORD, '198.51.100.20'), true, 'the user is not locked out');
      const deadline = Date.now() + 15_000;
      let left;
      do {
        await new Promise((r) => setTimeout(r, 500));
        left = objectKeys(s.persistDir, 'TokenAuthority').filter(([, keys]) => keys.some((k) => k.startsWith('rl:') || k.startsWith('exp:')));
      } while (left.length && Date.now() < deadline);
      assert.deepEqual(left, []);
      assert.equal(await signInAt(PASSWORD, '203.0.113.1'), true);
    } finally {
      await s.stop();
    }
  });
});
