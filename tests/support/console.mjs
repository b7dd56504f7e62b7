// Helpers for the admin console's browser test (tests/console.test.mjs): the admin API with a
// bearer token, enrolling a simulated device with an enrollment token (Federated: the token
// goes to GetPolicies and the RST as a DeviceEnrollmentUserToken), headless Chromium with
// every console error, page error and CSP violation recorded, and page checks (landmarks, one
// h1, labelled controls, no horizontal overflow, no inline styles).

import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  characteristic, discoverRequest, faultType, getPoliciesRequest, newDeviceId, newKey, parseXml, post,
  provisioningDoc, request, rstRequest, userTokenSecurity, win10Context, windowsCsr,
} from './device.mjs';

/** An admin API call with `Authorization: Bearer <token>` (the bootstrap token by default). */
export async function bearer(w, method, apiPath, body, token = w.adminToken) {
  const res = await request(`${w.url}${apiPath}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

/**
 * Enrolls a simulated Windows 10 device with an admin enrollment token (Federated policy:
 * discovery, then GetPolicies and RST carrying the token). Returns what enrollDevice returns
 * (deviceId, doc, …), for SyncMLDevice.fromEnrollment.
 */
export async function enrollWithToken(w, token, { deviceId = newDeviceId(), deviceName = 'DESKTOP-TEST', key = newKey() } = {}) {
  const discoveryUrl = `${w.url}/EnrollmentServer/Discovery.svc`;
  const disc = await post(discoveryUrl, discoverRequest(discoveryUrl));
  assert.equal(faultType(disc.xml), null, disc.text);
  const result = disc.xml.Envelope.Body.DiscoverResponse.DiscoverResult;
  const security = userTokenSecurity(token);
  const pol = await post(result.EnrollmentPolicyServiceUrl, getPoliciesRequest(result.EnrollmentPolicyServiceUrl, security));
  assert.equal(faultType(pol.xml), null, pol.text);
  const csr = windowsCsr(deviceId, key);
  const enr = await post(result.EnrollmentServiceUrl, rstRequest(result.EnrollmentServiceUrl, security, {
    token: csr.toString('base64'),
    context: win10Context(deviceId, { deviceName }),
  }));
  assert.equal(faultType(enr.xml), null, enr.text);
  const docText = provisioningDoc(enr.xml);
  const doc = parseXml(docText)['wap-provisioningdoc'];
  assert.ok(characteristic(doc, 'APPLICATION'), docText);
  return { deviceId, key, result, docText, doc };
}

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/**
 * A fresh browser context (its own cookies) at 1280×800 and a page in it. `problems` collects
 * console errors and warnings, page errors and CSP violations (seen by an init script that
 * listens for `securitypolicyviolation` in every document).
 */
export async function openConsole(browser, label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'UTC' });
  context.setDefaultTimeout(20_000);
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      problems.push({ who: label, type: m.type(), text: m.text(), url: m.location()?.url ?? '' });
    }
  });
  page.on('pageerror', (e) => problems.push({ who: label, type: 'pageerror', text: `${e.message}\n${e.stack ?? ''}`, url: '' }));
  return { context, page, problems };
}

/**
 * Console errors that are no fault: Chromium logs every API answer ≥ 400 as "Failed to load
 * resource: the server responded with a status of N". `expected` lists [status, path] pairs
 * the test provoked on purpose (a wrong password, a refused write, an invalid profile).
 */
export function unexpectedProblems(problems, expected) {
  return problems.filter((p) => {
    const m = /Failed to load resource: the server responded with a status of (\d{3})/.exec(p.text);
    if (!m || p.type !== 'error') return true;
    let pathname = '';
    try {
      pathname = new URL(p.url).pathname;
    } catch {
      return true;
    }
    return !expected.some(([status, where]) => Number(m[1]) === status && (where instanceof RegExp ? where.test(pathname) : where === pathname));
  });
}

/** Waits until the page's h1 is `title` (string or RegExp). */
export async function waitForTitle(page, title) {
  await page.getByRole('heading', { level: 1, name: title, exact: typeof title === 'string' }).waitFor();
}

/**
 * Page checks at every stop: landmarks (one banner-level nav and one main), exactly one h1,
 * every visible form control labelled, no element with a style attribute, no horizontal
 * overflow at 1280 px, and only same-origin resources. Then a full-page screenshot.
 */
export async function checkAndShoot(page, dir, name) {
  const report = await page.evaluate(() => {
    const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
    const controls = [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.type !== 'hidden' && visible(el));
    // A real <label> for each (not only aria-label).
    const unlabelled = controls.filter((el) => !(el.labels?.length && [...el.labels].some((l) => l.textContent.trim())))
      .map((el) => el.outerHTML.slice(0, 120));
    const foreign = [...document.querySelectorAll('[src], link[href]')]
      .map((el) => el.src || el.href)
      .filter((u) => u && !u.startsWith(location.origin) && !u.startsWith('data:'));
    const clickable = [...document.querySelectorAll('[onclick], div[tabindex="0"], span[tabindex="0"]')].length;
    return {
      mains: document.querySelectorAll('main').length,
      navs: document.querySelectorAll('nav').length,
      h1s: [...document.querySelectorAll('h1')].map((h) => h.textContent),
      unlabelled,
      // (Chromium itself leaves an empty style="" on some controls; only set styles count.)
      styled: [...document.querySelectorAll('[style]:not([style=""])')].map((el) => el.outerHTML.slice(0, 120)),
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      foreign,
      clickable,
      inlineScripts: [...document.scripts].filter((s) => !s.src).length,
    };
  });
  assert.equal(report.mains, 1, `${name}: one main landmark`);
  assert.ok(report.navs >= 1 || name.startsWith('signin'), `${name}: a nav landmark`);
  assert.equal(report.h1s.length, 1, `${name}: one h1 (${report.h1s.join(' | ')})`);
  assert.deepEqual(report.unlabelled, [], `${name}: every control has a label`);
  assert.deepEqual(report.styled, [], `${name}: no style attributes`);
  assert.ok(report.overflow <= 0, `${name}: no horizontal scrolling at 1280 px (overflow ${report.overflow} px)`);
  assert.deepEqual(report.foreign, [], `${name}: no external resources`);
  assert.equal(report.clickable, 0, `${name}: no click handlers on non-buttons`);
  assert.equal(report.inlineScripts, 0, `${name}: no inline scripts`);
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** Runs `action` (a click that navigates inside the console) and waits for the new rendering. */
export async function rendered(page, action) {
  const before = await page.locator('main').getAttribute('data-render');
  await action();
  await page.waitForFunction((b) => {
    const m = document.querySelector('main');
    return m && m.dataset.render !== undefined && m.dataset.render !== b;
  }, before);
}

/** Retries `fn` until it stops throwing (or `ms` pass; then its last error is thrown). */
export async function eventually(fn, { ms = 15_000, every = 500 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, every));
    }
  }
}
