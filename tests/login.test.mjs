// The Federated sign-in page in headless Chromium, as the Windows enrollment web view uses it:
// open /windows-web-agent?appru=…&login_hint=…, sign in, and the page posts `wresult` to
// `appru` (here a loopback server of the test, which captures it). The captured token then
// enrolls a simulated Windows 10 device through XCEP and WSTEP.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startWorker, ROOT } from './support/worker.mjs';
import {
  discoverRequest, faultType, getPoliciesRequest, newDeviceId, newKey, parseXml, post, provisioningDoc, rstRequest,
  userTokenSecurity, win10Context, windowsCsr,
} from './support/device.mjs';
import { admin, createUser } from './support/enroll.mjs';

const EMAIL = 'alice@contoso.com';
const PASSWORD = 'correct horse battery';
const ORG = 'Contoso Devices';
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const NEUTRAL = 'The email or password is incorrect.';

let w;
let browser; // persistent context, scripts on
let profileDirs = [];
let capture; // { url, posts: [{ path, body }], waitForPost() }

// A loopback HTTP server standing in for the broker: records every POST (form-decoded).
async function captureServer() {
  const posts = [];
  let waiters = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.method === 'POST') {
        const entry = { path: req.url, contentType: req.headers['content-type'], body: Object.fromEntries(new URLSearchParams(body)) };
        posts.push(entry);
        const ws = waiters;
        waiters = [];
        for (const resolve of ws) resolve(entry);
      }
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
      res.end('captured');
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  return {
    url: `http://127.0.0.1:${port}/appru-capture`,
    posts,
    waitForPost(ms = 15_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no POST reached appru')), ms);
        waiters.push((e) => { clearTimeout(t); resolve(e); });
      });
    },
    close: () => new Promise((resolve) => srv.close(resolve)),
  };
}

async function launch(options = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgemdm-chromium-'));
  profileDirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 420, height: 640 }, // the enrollment web view is a small window
    ...options,
  });
  context.setDefaultTimeout(20_000);
  return context;
}

const authUrl = () => `${w.url}/windows-web-agent`;
const pageUrl = ({ appru = capture.url, hint = EMAIL, extra = '' } = {}) =>
  `${authUrl()}?appru=${encodeURIComponent(appru)}&login_hint=${encodeURIComponent(hint)}${extra}`;

/** A page that records console messages and page errors (CSP violations show up there). */
async function newPage(context = browser) {
  const page = await context.newPage();
  const consoleMessages = [];
  page.on('console', (m) => consoleMessages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleMessages.push(`pageerror: ${e.message}`));
  return { page, consoleMessages };
}

async function signIn(page, password) {
  await page.getByLabel('Password or enrollment token').fill(password);
  // noWaitAfter: the click starts a navigation that the end page replaces at once with its
  // auto-post; the tests wait for what they expect (a response, the captured POST) instead.
  await page.getByRole('button', { name: 'Sign in' }).click({ noWaitAfter: true });
}

before(async () => {
  w = await startWorker({ vars: { ALLOW_LOOPBACK_APPRU: 'true', ORG_NAME: ORG } });
  await createUser(w, EMAIL, PASSWORD, 'Alice');
  capture = await captureServer();
  browser = await launch();
  await fs.mkdir(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await capture?.close();
  await w?.stop();
  for (const d of profileDirs) await fs.rm(d, { recursive: true, force: true });
});

describe('discovery', { timeout: 60_000 }, () => {
  test('Federated is the default: the answer names the sign-in page', async () => {
    const url = `${w.url}/EnrollmentServer/Discovery.svc`;
    const { xml, text } = await post(url, discoverRequest(url, { email: EMAIL }));
    assert.equal(faultType(xml), null, text);
    const r = xml.Envelope.Body.DiscoverResponse.DiscoverResult;
    assert.equal(r.AuthPolicy, 'Federated');
    assert.equal(r.AuthenticationServiceUrl, `${w.url}/windows-web-agent`);
  });
});

describe('sign-in page', { timeout: 120_000 }, () => {
  test('signing in posts wresult to appru under the CSP, and the token enrolls a device', async () => {
    const { page, consoleMessages } = await newPage();
    const endPages = [];
    page.on('response', (r) => {
      if (r.url() === authUrl() && r.request().method() === 'POST') endPages.push(r);
    });
    const res = await page.goto(pageUrl());
    assert.equal(res.status(), 200);
    const headers = res.headers();
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['referrer-policy'], 'no-referrer');
    assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
    assert.match(headers['content-security-policy'], /default-src 'none'/);

    // What the user sees: the organisation, the prefilled email, labelled fields.
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), ORG);
    assert.equal(await page.getByLabel('Email').inputValue(), EMAIL);
    assert.equal(await page.getByLabel('Email').getAttribute('type'), 'email');
    assert.equal(await page.getByLabel('Password or enrollment token').getAttribute('type'), 'password');
    assert.equal(await page.evaluate(() => document.scripts.length), 0, 'the sign-in form needs no script');
    assert.equal(await page.evaluate(() => document.querySelectorAll('[src],link[href]').length), 0, 'no external resources');
    // Readable in a small window: nothing wider than the viewport.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    await page.screenshot({ path: path.join(ARTIFACTS, 'login-page.png'), fullPage: true });

    const captured = capture.waitForPost();
    await signIn(page, PASSWORD);
    const entry = await captured;
    assert.equal(entry.path, '/appru-capture');
    assert.equal(entry.contentType, 'application/x-www-form-urlencoded');
    assert.deepEqual(Object.keys(entry.body), ['wresult']);
    const token = entry.body.wresult;
    assert.match(token, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

    // The end page ran its auto-post script under a nonce'd CSP, with no violation. (Its
    // response event can reach us after the post it made, so wait for it.)
    for (let i = 0; i < 100 && endPages.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(endPages.length, 1);
    const csp = endPages[0].headers()['content-security-policy'];
    assert.match(csp, /script-src 'nonce-[A-Za-z0-9_-]{16,}'/);
    assert.match(csp, new RegExp(`form-action ${new URL(capture.url).origin.replace(/[.]/g, '\\.')}`));
    assert.match(csp, /frame-ancestors 'none'/);
    const violations = consoleMessages.filter((m) => /Content Security Policy|Refused to/i.test(m));
    assert.deepEqual(violations, [], consoleMessages.join('\n'));
    // Let the navigation to appru finish before closing (closing mid-navigation can hang).
    await page.waitForURL(capture.url);
    await page.waitForLoadState('load');
    await page.close();

    // Windows base64-encodes the wresult into the BST of GetPolicies and the RST.
    const policyUrl = `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
    const enrollUrl = `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
    const security = userTokenSecurity(token);
    const pol = await post(policyUrl, getPoliciesRequest(policyUrl, security));
    assert.equal(faultType(pol.xml), null, pol.text);
    const deviceId = newDeviceId();
    const csr = windowsCsr(deviceId, newKey());
    const enr = await post(enrollUrl, rstRequest(enrollUrl, security, { token: csr.toString('base64'), context: win10Context(deviceId) }));
    assert.equal(faultType(enr.xml), null, enr.text);
    const doc = parseXml(provisioningDoc(enr.xml))['wap-provisioningdoc'];
    assert.ok(doc, 'a provisioning document');
    const record = await admin(w, 'GET', `/api/v1/devices/${deviceId}`);
    assert.equal(record.status, 200);
    assert.equal(record.body.user, EMAIL);
  });

  test('a wrong password and an unknown email get the same message, and the email is kept', async () => {
    const seen = [];
    for (const [email, password] of [[EMAIL, 'wrong password'], ['nobody@contoso.com', PASSWORD]]) {
      const { page } = await newPage();
      await page.goto(pageUrl({ hint: email }));
      const responded = page.waitForResponse((r) => r.url() === authUrl() && r.request().method() === 'POST');
      await signIn(page, password);
      const res = await responded;
      await page.waitForLoadState();
      const alert = page.getByRole('alert');
      seen.push({ status: res.status(), message: (await alert.textContent()).trim() });
      assert.equal(await page.getByLabel('Email').inputValue(), email);
      assert.equal(await page.getByLabel('Password or enrollment token').inputValue(), '', 'the password is not echoed');
      assert.equal(await page.getByLabel('Email').getAttribute('aria-describedby'), 'error');
      await page.close();
    }
    assert.deepEqual(seen[0], { status: 200, message: NEUTRAL });
    assert.deepEqual(seen[1], seen[0]);
    assert.equal(capture.posts.length, 1, 'nothing was posted to appru');
  });

  test('an appru that is not allowed gets a 400 page without a form', async () => {
    for (const appru of ['javascript:alert(document.domain)', 'data:text/html,<script>alert(1)</script>',
      'http://evil.example/capture', 'https://127.0.0.1.evil.example/x', '/relative', `ms-app://${'a'.repeat(600)}`]) {
      const res = await fetch(pageUrl({ appru }));
      const text = await res.text();
      assert.equal(res.status, 400, appru);
      assert.ok(!text.includes('<form'), appru);
      assert.ok(!text.includes('alert('), appru);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
    }
    const missing = await fetch(authUrl());
    assert.equal(missing.status, 400);
    // The POST checks appru again.
    const res = await fetch(authUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ appru: 'javascript:alert(1)', email: EMAIL, password: PASSWORD }),
    });
    assert.equal(res.status, 400);
    assert.ok(!(await res.text()).includes('wresult'));
    const { page } = await newPage();
    const shown = await page.goto(pageUrl({ appru: 'javascript:alert(1)' }));
    assert.equal(shown.status(), 400);
    assert.match(await page.getByRole('alert').textContent(), /not valid/);
    await page.close();
  });

  test('what is echoed is escaped', async () => {
    const hostile = '"><script>alert(1)</script>@x.co';
    const res = await fetch(pageUrl({ hint: hostile }));
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.ok(!text.includes('<script>alert(1)</script>'), text);
    const { page, consoleMessages } = await newPage();
    await page.goto(pageUrl({ hint: hostile }));
    assert.equal(await page.getByLabel('Email').inputValue(), hostile);
    assert.equal(await page.evaluate(() => document.scripts.length), 0);
    assert.deepEqual(consoleMessages.filter((m) => /alert|Refused/.test(m)), []);
    await page.close();
  });

  test('with scripts disabled the end page offers a button that posts wresult', async () => {
    const noScript = await launch({ javaScriptEnabled: false });
    try {
      const { page } = await newPage(noScript);
      await page.goto(pageUrl());
      const before = capture.posts.length;
      await signIn(page, PASSWORD);
      const button = page.getByRole('button', { name: 'Continue' });
      await button.waitFor({ state: 'visible' });
      assert.match(await page.locator('#status').textContent(), /signed in/i);
      await page.screenshot({ path: path.join(ARTIFACTS, 'login-end-page-noscript.png'), fullPage: true });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(capture.posts.length, before, 'no automatic post without scripts');
      const captured = capture.waitForPost();
      await button.click();
      const entry = await captured;
      assert.match(entry.body.wresult, /^v1\./);
      await page.waitForURL(capture.url);
      await page.waitForLoadState('load');
    } finally {
      await noScript.close();
    }
  });
});
