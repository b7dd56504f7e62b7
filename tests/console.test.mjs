// The admin console (/admin) in headless Chromium against the real worker, walked as an admin
// would: bootstrap an admin account with the bootstrap token, sign in through the form, create
// a user and an enrollment token, enroll a simulated device with that token and check it in,
// find it by searching, lock it and read a node from its page, see both acknowledged after the
// next check-in, create a profile in the editor for a group the device is in and see it
// verified on the device, look at the console as a viewer and as an operator, retire the
// device with the typed confirmation, and find all of it in the audit log. Also: the console's
// CSP and headers, the CSRF check on cookie-authenticated writes, API tokens, sign-out.
// Throughout: no console errors, no page errors, no CSP violations, every page labelled and
// laid out for 1280×800; a screenshot of every page in test-artifacts/console/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startWorker, ROOT } from './support/worker.mjs';
import { SyncMLDevice, policyResultUri } from './support/syncml-device.mjs';
import {
  bearer, checkAndShoot, enrollWithToken, eventually, launchBrowser, openConsole, rendered, unexpectedProblems,
  waitForTitle,
} from './support/console.mjs';

const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'console');
const ADMIN = { email: 'root@contoso.com', display_name: 'Rita Root', password: 'console admin password 1', role: 'admin' };
const VIEWER = { email: 'viewer@contoso.com', display_name: 'Vic Viewer', password: 'console viewer password 1', role: 'viewer' };
const OPERATOR = { email: 'ops@contoso.com', display_name: 'Otto Operator', password: 'console operator password 1', role: 'operator' };
const USER = { email: 'dana@contoso.com', display_name: 'Dana Device', password: 'dana enroll password' };
const DEVICE_NAME = `CONSOLE-PC-${crypto.randomBytes(2).toString('hex').toUpperCase()}`;
const GROUP = 'console-pilots';
const PROFILE = 'Camera off (console)';
const CAMERA = './Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera';
const LOCK_URI = './Vendor/MSFT/RemoteLock/Lock';
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

let w;
let browser;
let admin; // { context, page, problems } of the signed-in admin
const problems = []; // every console's problems, checked at the end
// Failed requests the test provokes on purpose ([status, path]): Chromium logs each as a console error.
const expectedFailures = [[401, '/api/v1/session'], [401, '/api/v1/groups'], [400, '/api/v1/profiles'], [403, '/api/v1/groups'],
  [403, /^\/api\/v1\/devices\/[^/]+\/commands$/], [404, /^\/api\/v1\/devices\/NO-SUCH-DEVICE(\/|$)/]];
const state = {}; // what the steps learn: token, device, dev, profileId…

const url = (hash = '') => `${w.url}/admin/${hash}`;
const shoot = (page, name) => checkAndShoot(page, ARTIFACTS, name);
const nav = (page, name) => page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name, exact: true }).click();
const main = (page) => page.getByRole('main');
const row = (scope, header) => scope.getByRole('row').filter({ has: scope.page().getByRole('rowheader', { name: header, exact: true }) });
const directives = (csp) => new Set(csp.split(';').map((d) => d.trim().replace(/\s+/g, ' ')).filter(Boolean));

async function signInThroughForm(page, who) {
  await page.goto(url());
  await waitForTitle(page, 'Sign in');
  // By keyboard, as an admin would: the email field has focus, Tab to the password, Enter.
  await page.getByLabel('Email').focus();
  await page.keyboard.type(who.email);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('type')), 'password');
  await page.keyboard.type(who.password);
  await page.keyboard.press('Enter');
  await waitForTitle(page, 'Dashboard');
}

/** The texts of the buttons and non-search forms inside <main> (a viewer must have none). */
function writeControls(page) {
  return page.evaluate(() => {
    const m = document.querySelector('main');
    const outsideSearch = (el) => !el.closest('form[role="search"]');
    return {
      buttons: [...m.querySelectorAll('button')].filter(outsideSearch).map((b) => b.textContent.trim()),
      forms: [...m.querySelectorAll('form')].filter((f) => f.getAttribute('role') !== 'search').map((f) => f.getAttribute('aria-label')),
      dialogs: document.querySelectorAll('dialog').length,
    };
  });
}

/** A check-in of the simulated device; returns the server's commands, by name and target. */
async function checkIn() {
  const s = await state.dev.runSession();
  assert.ok(s.ended, 'the session ends');
  return s.commands.map((c) => [c.name, c.items?.[0]?.target ?? null]);
}

before(async () => {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  w = await startWorker();
  const created = await bearer(w, 'POST', '/api/v1/admins', ADMIN);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  browser = await launchBrowser();
});

after(async () => {
  for (const c of [admin?.context]) await c?.close().catch(() => {});
  await browser?.close();
  await w?.stop();
});

describe('admin console', { timeout: 600_000 }, () => {
  test('is served at /admin under the strict CSP, with no inline script or style', async () => {
    const res = await fetch(url());
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.deepEqual(directives(res.headers.get('content-security-policy') ?? ''), directives(CSP));
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
    assert.doesNotMatch(html, /\sstyle\s*=|<style/i, 'no inline style');
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, 'no external resource');
    for (const [asset, type] of [['app.js', /javascript/], ['app.css', /text\/css/]]) {
      const a = await fetch(url(asset));
      assert.equal(a.status, 200, asset);
      assert.match(a.headers.get('content-type'), type, asset);
    }
    const bare = await fetch(`${w.url}/admin`, { redirect: 'manual' });
    assert.ok([200, 301, 302, 307, 308].includes(bare.status), `/admin answers ${bare.status}`);
    const deep = await fetch(url('#/devices'));
    assert.equal(deep.status, 200);
  });

  test('sign-in: a wrong password is refused, the right one opens the dashboard', async () => {
    admin = await openConsole(browser, 'admin');
    problems.push(admin.problems);
    const { page } = admin;
    await page.goto(url());
    await waitForTitle(page, 'Sign in');
    await shoot(page, 'signin');
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password').fill('not the password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'The email or password is incorrect.' }).waitFor();
    await signInThroughForm(page, ADMIN);
    const cookies = await admin.context.cookies(w.url);
    const session = cookies.find((c) => c.name === 'edgemdm_session');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    await page.getByText(ADMIN.display_name).waitFor();
    // Focus is visible: a focused link gets an outline.
    await page.getByRole('link', { name: 'Devices', exact: true }).focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'keyboard focus is visible');
    await shoot(page, 'dashboard-empty');
    // The session survives a reload (GET /api/v1/session resumes it).
    await page.reload();
    await waitForTitle(page, 'Dashboard');
  });

  test('creates a user and an enrollment token (shown once, with the enrollment link)', async () => {
    const { page } = admin;
    await nav(page, 'Users');
    await waitForTitle(page, 'Users');
    const form = page.getByRole('form', { name: 'New user' });
    await form.getByLabel('Email').fill(USER.email);
    await form.getByLabel('Display name').fill(USER.display_name);
    await form.getByLabel('Password').fill(USER.password);
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: `User ${USER.email} created.` }).waitFor();
    await row(main(page), USER.email).waitFor();
    await shoot(page, 'users');
    // Another user, deleted again (after a confirmation).
    await form.getByLabel('Email').fill('temp@contoso.com');
    await form.getByLabel('Password').fill('temporary password');
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: 'User temp@contoso.com created.' }).waitFor();
    await page.getByRole('button', { name: 'Delete user temp@contoso.com' }).click();
    await page.getByRole('dialog', { name: 'Delete temp@contoso.com?' }).getByRole('button', { name: 'Delete user' }).click();
    await page.getByRole('status').filter({ hasText: 'User temp@contoso.com deleted.' }).waitFor();
    assert.equal(await row(main(page), 'temp@contoso.com').count(), 0);

    await nav(page, 'Enrollment tokens');
    await waitForTitle(page, 'Enrollment tokens');
    const tform = page.getByRole('form', { name: 'New enrollment token' });
    await tform.getByLabel('User').selectOption(USER.email);
    await tform.getByLabel('Valid for (hours)').fill('2');
    await tform.getByLabel('Uses (devices it may enroll)').fill('1');
    await tform.getByRole('button', { name: 'Create token' }).click();
    const secret = page.getByLabel('Enrollment token', { exact: true });
    await secret.waitFor();
    state.token = await secret.inputValue();
    assert.match(state.token, /^v1\./);
    const server = (await bearer(w, 'GET', '/api/v1/server')).body;
    const link = page.getByRole('link', { name: /^ms-device-enrollment:/ });
    assert.equal(await link.getAttribute('href'),
      `ms-device-enrollment:?mode=mdm&username=${USER.email}&servername=${server.server_name}`);
    await page.getByText('This is the only time it is shown').waitFor();
    await shoot(page, 'enrollment-token-created');
    // Listed without the secret; gone from the page once it is left.
    await page.reload();
    await waitForTitle(page, 'Enrollment tokens');
    assert.equal(await page.getByLabel('Enrollment token', { exact: true }).count(), 0);
    assert.ok(!(await page.content()).includes(state.token), 'the token is not shown again');
    await row(main(page), /.+/).filter({ hasText: USER.email }).first().waitFor();
    await shoot(page, 'enrollment-tokens');
    // A second token, revoked from the list.
    const known = new Set((await bearer(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.map((t) => t.id));
    const tform2 = page.getByRole('form', { name: 'New enrollment token' });
    await tform2.getByLabel('User').selectOption(USER.email);
    await tform2.getByRole('button', { name: 'Create token' }).click();
    await page.getByLabel('Enrollment token', { exact: true }).waitFor();
    const spare = (await bearer(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.find((t) => !known.has(t.id));
    assert.ok(spare);
    await page.getByRole('button', { name: `Revoke token ${spare.id}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
    await page.getByRole('status').filter({ hasText: `Token ${spare.id} revoked.` }).waitFor();
    await row(main(page), spare.id).locator('.badge', { hasText: 'Revoked' }).waitFor();
    assert.equal((await bearer(w, 'GET', '/api/v1/enrollment-tokens')).body.tokens.find((t) => t.id === spare.id).revoked, true);
  });

  test('a device enrolled with the token and checked in is found by searching', async () => {
    const enrolled = await enrollWithToken(w, state.token, { deviceName: DEVICE_NAME });
    state.deviceId = enrolled.deviceId;
    state.dev = SyncMLDevice.fromEnrollment(enrolled, { tree: true });
    await checkIn();

    const { page } = admin;
    await nav(page, 'Devices');
    await waitForTitle(page, 'Devices');
    const search = page.getByRole('search', { name: 'Filter devices' });
    await search.getByLabel('Search').fill(DEVICE_NAME.slice(0, 10).toLowerCase());
    await eventually(async () => {
      await rendered(page, () => search.getByRole('button', { name: 'Search' }).click());
      await page.getByRole('link', { name: DEVICE_NAME }).waitFor({ timeout: 1000 });
    });
    await page.getByText('1 device', { exact: true }).waitFor();
    assert.match(page.url(), /#\/devices\?q=console-pc/);
    // The filters: enrolled matches, retired does not.
    await search.getByLabel('Status', { exact: true }).selectOption('retired');
    await rendered(page, () => search.getByRole('button', { name: 'Search' }).click());
    await page.getByText('No devices match.').waitFor();
    await search.getByLabel('Status', { exact: true }).selectOption('enrolled');
    await search.getByLabel('Sort by').selectOption('name');
    await rendered(page, () => search.getByRole('button', { name: 'Search' }).click());
    await page.getByRole('link', { name: DEVICE_NAME }).waitFor();
    assert.match(page.url(), /status=enrolled/);
    await shoot(page, 'devices-search');

    await page.getByRole('link', { name: DEVICE_NAME }).click();
    await waitForTitle(page, DEVICE_NAME);
    assert.match(page.url(), new RegExp(`#/devices/${state.deviceId}$`));
    const record = (await bearer(w, 'GET', `/api/v1/devices/${state.deviceId}`)).body;
    const text = await main(page).innerText();
    for (const expected of [state.deviceId, record.hw_dev_id, USER.email, record.certificate.serial,
      record.certificate.thumbprint, '10.0.19043.2364', 'Full', 'Microsoft Corporation']) {
      assert.ok(text.includes(expected), `the device page shows ${expected}`);
    }
    await shoot(page, 'device');
  });

  test('lock and a Get queued from the device page are acknowledged after the next check-in', async () => {
    const { page } = admin;
    const server = (await bearer(w, 'GET', '/api/v1/server')).body;
    await page.getByRole('button', { name: 'Lock', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Lock the device?' });
    await dialog.waitFor();
    await shoot(page, 'device-lock-confirm');
    await dialog.getByRole('button', { name: 'Lock device' }).click();
    const queued = page.getByRole('status').filter({ hasText: 'Lock queued' });
    await queued.waitFor();
    const said = await queued.innerText();
    assert.match(said, /reaches the device at its next check-in/);
    assert.ok(said.includes(`every ${server.poll.first_interval} min`), said);
    assert.ok(said.includes(`for ${server.poll.first_count} check-ins`), said);
    await page.getByLabel('Node URI').fill('./DevDetail/OEM');
    await page.getByRole('button', { name: 'Queue Get' }).click();
    await page.getByRole('status').filter({ hasText: 'Get ./DevDetail/OEM queued' }).waitFor();
    await row(main(page), 'lock').locator('.badge', { hasText: 'Queued' }).waitFor();
    await shoot(page, 'device-commands-queued');

    const sent = await checkIn();
    assert.ok(sent.some(([name, target]) => name === 'Exec' && target === LOCK_URI), JSON.stringify(sent));
    assert.ok(sent.some(([name, target]) => name === 'Get' && target === './DevDetail/OEM'), JSON.stringify(sent));

    await page.reload();
    await waitForTitle(page, DEVICE_NAME);
    const lockRow = row(main(page), 'lock');
    await lockRow.locator('.badge', { hasText: 'Acknowledged' }).waitFor();
    assert.match(await lockRow.innerText(), /\b200\b/);
    const getRow = row(main(page), 'get');
    await getRow.locator('.badge', { hasText: 'Acknowledged' }).waitFor();
    assert.match(await getRow.innerText(), /\.\/DevDetail\/OEM = Microsoft Corporation/);
    await shoot(page, 'device-commands-acknowledged');
  });

  test('a profile made in the editor for a group reaches the device and is verified there', async () => {
    const { page } = admin;
    await nav(page, 'Groups');
    await waitForTitle(page, 'Groups');
    await page.getByLabel('Group name').fill(GROUP);
    await page.getByRole('button', { name: 'Create group' }).click();
    await page.getByRole('status').filter({ hasText: `Group ${GROUP} created.` }).waitFor();
    await shoot(page, 'groups');
    await page.getByLabel('Group name').fill('console-tmp');
    await page.getByRole('button', { name: 'Create group' }).click();
    await page.getByRole('status').filter({ hasText: 'Group console-tmp created.' }).waitFor();
    await page.getByRole('button', { name: 'Delete group console-tmp' }).click();
    await page.getByRole('dialog', { name: 'Delete group console-tmp?' }).getByRole('button', { name: 'Delete group' }).click();
    await page.getByRole('status').filter({ hasText: 'Group console-tmp deleted.' }).waitFor();
    assert.ok(!(await bearer(w, 'GET', '/api/v1/groups')).body.groups.some((g) => g.name === 'console-tmp'));

    // The device joins the group from its own page.
    await page.goto(url(`#/devices/${state.deviceId}`));
    await waitForTitle(page, DEVICE_NAME);
    const addForm = page.getByRole('form', { name: 'Add to a group' });
    await addForm.getByLabel('Group').selectOption(GROUP);
    await addForm.getByRole('button', { name: 'Add to group' }).click();
    await page.getByRole('status').filter({ hasText: `Added to ${GROUP}.` }).waitFor();
    await main(page).getByRole('link', { name: GROUP, exact: true }).waitFor();

    await nav(page, 'Profiles');
    await waitForTitle(page, 'Profiles');
    await page.getByRole('link', { name: 'New profile' }).click();
    await waitForTitle(page, 'New profile');
    const editor = page.getByRole('form', { name: 'Profile' });
    await editor.getByLabel('Name', { exact: true }).fill(PROFILE);
    await editor.getByLabel('Description').fill('Turns the camera off on the pilot devices.');
    await editor.getByLabel('Groups', { exact: true }).check();
    await editor.getByLabel(new RegExp(`^${GROUP} \\(1 device\\)`)).check();
    // A URI without "./": the API refuses it, and its words are shown as they are.
    const bad = CAMERA.slice(2);
    await editor.getByLabel('Node URI').fill(bad);
    await editor.getByLabel('Format').selectOption('int');
    await editor.getByLabel('Value').fill('0');
    await editor.getByRole('button', { name: 'Create profile' }).click();
    const refusal = page.getByRole('alert');
    await refusal.waitFor();
    assert.equal(await refusal.locator('.api-error').innerText(), `uri must start with ./ and be 3 to 1024 characters: "${bad}"`);
    await shoot(page, 'profile-editor-error');
    await editor.getByLabel('Node URI').fill(CAMERA);
    await editor.getByRole('button', { name: 'Create profile' }).click();
    await waitForTitle(page, PROFILE);
    state.profileId = decodeURIComponent(page.url().split('#/profiles/')[1]);
    assert.match(state.profileId, /^p\d+$/);
    await shoot(page, 'profile');

    const sent = await checkIn();
    assert.ok(sent.some(([name, target]) => name === 'Replace' && target === CAMERA), JSON.stringify(sent));
    assert.ok(sent.some(([name, target]) => name === 'Get' && target === policyResultUri(CAMERA)), JSON.stringify(sent));

    await page.goto(url(`#/devices/${state.deviceId}`));
    await waitForTitle(page, DEVICE_NAME);
    const onDevice = page.getByRole('article', { name: `Profile ${PROFILE}` });
    await onDevice.getByRole('heading', { name: new RegExp(`${PROFILE.replace(/[()]/g, '\\$&')}\\s+Verified`) }).waitFor();
    const setting = row(onDevice, CAMERA);
    assert.match(await setting.innerText(), /Verified\s+200/);
    await shoot(page, 'device-profile-verified');

    // The list counts it; the drill-down lists the device.
    await nav(page, 'Profiles');
    await waitForTitle(page, 'Profiles');
    await page.getByRole('link', { name: `1 verified devices of ${PROFILE}` }).click();
    await waitForTitle(page, PROFILE);
    await page.getByRole('link', { name: state.deviceId }).waitFor();
    await shoot(page, 'profile-verified-devices');
    await nav(page, 'Profiles');
    await waitForTitle(page, 'Profiles');
    await shoot(page, 'profiles');
    // The editor opens an existing profile filled in; a new description is saved.
    await page.getByRole('link', { name: PROFILE, exact: true }).click();
    await waitForTitle(page, PROFILE);
    await page.getByRole('link', { name: 'Edit profile' }).click();
    await waitForTitle(page, `Edit ${PROFILE}`);
    const edit = page.getByRole('form', { name: 'Profile' });
    assert.equal(await edit.getByLabel('Node URI').inputValue(), CAMERA);
    assert.equal(await edit.getByLabel('Groups', { exact: true }).isChecked(), true);
    await edit.getByLabel('Description').fill('Camera off for the pilots, edited in the console.');
    await edit.getByRole('button', { name: 'Save profile' }).click();
    await waitForTitle(page, PROFILE);
    await page.getByText('Camera off for the pilots, edited in the console.').waitFor();
    await shoot(page, 'profile-edited');
    await nav(page, 'Dashboard');
    await waitForTitle(page, 'Dashboard');
    await page.getByRole('img', { name: /^Devices by OS version: 10\.0\.\d+\.\d+ 1$/ }).waitFor();
    await shoot(page, 'dashboard');
    await page.goto(url(`#/groups/${GROUP}`));
    await waitForTitle(page, `Group ${GROUP}`);
    await page.getByRole('link', { name: DEVICE_NAME }).waitFor();
    await shoot(page, 'group');
  });

  test('a viewer sees no action buttons or forms, and its API writes are refused (403)', async () => {
    const created = await bearer(w, 'POST', '/api/v1/admins', VIEWER);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const viewer = await openConsole(browser, 'viewer');
    problems.push(viewer.problems);
    const { page } = viewer;
    try {
      await signInThroughForm(page, VIEWER);
      const navText = await page.getByRole('navigation', { name: 'Console' }).innerText();
      assert.doesNotMatch(navText, /Admins|API tokens/);
      const pages = [
        ['#/', 'Dashboard'], ['#/devices', 'Devices'], [`#/devices/${state.deviceId}`, DEVICE_NAME],
        ['#/profiles', 'Profiles'], [`#/profiles/${state.profileId}`, PROFILE], ['#/profiles/new', 'New profile'],
        ['#/groups', 'Groups'], [`#/groups/${GROUP}`, `Group ${GROUP}`], ['#/users', 'Users'],
        ['#/enrollment-tokens', 'Enrollment tokens'], ['#/audit', 'Audit log'],
      ];
      for (const [hash, title] of pages) {
        await page.goto(url(hash));
        await waitForTitle(page, title);
        const found = await writeControls(page);
        assert.deepEqual(found, { buttons: [], forms: [], dialogs: 0 }, `${hash}: no write controls for a viewer`);
      }
      await page.goto(url(`#/devices/${state.deviceId}`));
      await waitForTitle(page, DEVICE_NAME);
      for (const name of ['Lock', 'Reboot', 'Wipe…', 'Retire…', 'Queue Get']) {
        assert.equal(await page.getByRole('button', { name }).count(), 0, name);
      }
      await shoot(page, 'viewer-device');
      // The API refuses the viewer's writes, with a good CSRF token too.
      const writes = await page.evaluate(async (id) => {
        const s = await (await fetch('/api/v1/session')).json();
        const headers = { 'content-type': 'application/json', 'x-csrf-token': s.csrf_token };
        const group = await fetch('/api/v1/groups', { method: 'POST', headers, body: JSON.stringify({ name: 'viewer-group' }) });
        const lock = await fetch(`/api/v1/devices/${id}/commands`, { method: 'POST', headers, body: JSON.stringify({ type: 'lock' }) });
        return { role: s.admin.role, hasCsrf: typeof s.csrf_token === 'string', group: group.status, lock: lock.status, body: await group.json() };
      }, state.deviceId);
      assert.deepEqual([writes.role, writes.hasCsrf, writes.group, writes.lock], ['viewer', true, 403, 403], JSON.stringify(writes));
      assert.equal(typeof writes.body.error, 'string');
      const groups = (await bearer(w, 'GET', '/api/v1/groups')).body.groups.map((g) => g.name);
      assert.ok(!groups.includes('viewer-group'));
    } finally {
      await viewer.context.close();
    }
  });

  test('an operator acts on devices but has no user, enrollment-token or admin write controls', async () => {
    assert.equal((await bearer(w, 'POST', '/api/v1/admins', OPERATOR)).status, 201);
    const operator = await openConsole(browser, 'operator');
    problems.push(operator.problems);
    const { page } = operator;
    try {
      await signInThroughForm(page, OPERATOR);
      const navText = await page.getByRole('navigation', { name: 'Console' }).innerText();
      assert.doesNotMatch(navText, /Admins/);
      assert.match(navText, /API tokens/);
      await page.goto(url(`#/devices/${state.deviceId}`));
      await waitForTitle(page, DEVICE_NAME);
      for (const name of ['Lock', 'Reboot', 'Wipe…', 'Retire…', 'Queue Get']) {
        assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, name);
      }
      await page.goto(url('#/users'));
      await waitForTitle(page, 'Users');
      assert.deepEqual(await writeControls(page), { buttons: [], forms: [], dialogs: 0 });
      await row(main(page), USER.email).waitFor();
      await page.goto(url('#/enrollment-tokens'));
      await waitForTitle(page, 'Enrollment tokens');
      assert.deepEqual(await writeControls(page), { buttons: [], forms: [], dialogs: 0 });
      await page.goto(url('#/admins'));
      await waitForTitle(page, 'Admins');
      assert.deepEqual(await writeControls(page), { buttons: [], forms: [], dialogs: 0 });
      await page.goto(url('#/groups'));
      await waitForTitle(page, 'Groups');
      assert.equal(await page.getByRole('form', { name: 'New group' }).count(), 1);
      await page.goto(url('#/api-tokens'));
      await waitForTitle(page, 'API tokens');
      await shoot(page, 'operator-api-tokens');
    } finally {
      await operator.context.close();
    }
  });

  test('wipe and retire need the device id or name typed; retire is queued for the next check-in', async () => {
    const { page } = admin;
    await page.goto(url(`#/devices/${state.deviceId}`));
    await waitForTitle(page, DEVICE_NAME);
    await page.getByRole('button', { name: 'Wipe…' }).click();
    const wipe = page.getByRole('dialog', { name: 'Wipe the device?' });
    const confirmWipe = wipe.getByRole('button', { name: 'Wipe device' });
    assert.equal(await confirmWipe.isDisabled(), true);
    await wipe.getByLabel(/^Type .* to confirm$/).fill('some other device');
    assert.equal(await confirmWipe.isDisabled(), true);
    await shoot(page, 'device-wipe-confirm');
    await page.keyboard.press('Escape');
    await wipe.waitFor({ state: 'detached' });
    assert.equal((await bearer(w, 'GET', `/api/v1/devices/${state.deviceId}/commands`)).body.commands
      .filter((c) => c.type === 'wipe').length, 0, 'no wipe was queued');

    await page.getByRole('button', { name: 'Retire…' }).click();
    const retire = page.getByRole('dialog', { name: 'Retire the device?' });
    const confirmRetire = retire.getByRole('button', { name: 'Retire device' });
    const typed = retire.getByLabel(/^Type .* to confirm$/);
    await typed.fill(DEVICE_NAME.toLowerCase());
    assert.equal(await confirmRetire.isDisabled(), true, 'the name must match exactly');
    await typed.fill(DEVICE_NAME);
    assert.equal(await confirmRetire.isDisabled(), false);
    await confirmRetire.click();
    const done = page.getByRole('status').filter({ hasText: 'Retire requested' });
    await done.waitFor();
    assert.match(await done.innerText(), /at its next check-in/);
    await page.locator('.subtitle').getByText('Retiring').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Lock', exact: true }).count(), 0, 'no more commands');
    await shoot(page, 'device-retired');
    const record = (await bearer(w, 'GET', `/api/v1/devices/${state.deviceId}`)).body;
    assert.ok(['retiring', 'retired'].includes(record.status), record.status);
  });

  test('the audit log shows all of it, filtered by target and by actor', async () => {
    const { page } = admin;
    await nav(page, 'Audit log');
    await waitForTitle(page, 'Audit log');
    const filters = page.getByRole('search', { name: 'Filter the audit log' });
    await filters.getByLabel('Target').fill(`device:${state.deviceId}`);
    await rendered(page, () => filters.getByRole('button', { name: 'Filter' }).click());
    const text0 = await main(page).innerText();
    for (const action of ['device.command', 'device.retire']) {
      assert.ok(text0.includes(action), `${action} for the device`);
    }
    const commandRows = await row(main(page), 'device.command').allInnerTexts();
    assert.equal(commandRows.length, 2, 'lock and get');
    assert.ok(commandRows.some((t) => /\block\b/.test(t)) && commandRows.some((t) => /\bget\b/.test(t)),
      `the command type is in the detail: ${JSON.stringify(commandRows)}`);
    const targets = await main(page).locator('tbody tr td.wrap').allInnerTexts();
    assert.ok(targets.length >= 3 && targets.every((t) => t.trim() === `device:${state.deviceId}`), JSON.stringify(targets));
    await shoot(page, 'audit-device');

    await page.goto(url(`#/audit?actor=${encodeURIComponent(ADMIN.email)}`));
    await waitForTitle(page, 'Audit log');
    const text = await main(page).innerText();
    for (const action of ['session.create', 'user.create', 'enrollment_token.create', 'group.create', 'group.add_device',
      'profile.create', 'device.command', 'device.retire']) {
      assert.ok(text.includes(action), `${action} by ${ADMIN.email}`);
    }
    assert.equal(await page.getByLabel('Actor').inputValue(), ADMIN.email);
    await shoot(page, 'audit');
    // The viewer's refused writes are there too.
    await page.goto(url('#/audit?action=auth.role_refused'));
    await waitForTitle(page, 'Audit log');
    await main(page).getByText(VIEWER.email).first().waitFor();

    // Pages: five entries a page, the next page older than the first.
    await page.goto(url('#/audit?limit=5'));
    await waitForTitle(page, 'Audit log');
    const firstPage = await main(page).locator('tbody tr').allInnerTexts();
    assert.equal(firstPage.length, 5);
    await rendered(page, () => page.getByRole('link', { name: 'Next page' }).click());
    const secondPage = await main(page).locator('tbody tr').allInnerTexts();
    assert.equal(secondPage.length, 5);
    assert.ok(secondPage.every((r) => !firstPage.includes(r)), 'no entry twice');
    const at = (rows) => rows.map((r) => Date.parse(r.match(/^\S+ \S+:\d\d/)[0].replace(' ', 'T') + 'Z'));
    assert.ok(Math.max(...at(secondPage)) <= Math.min(...at(firstPage)), 'newest first');
    assert.match(page.url(), /limit=5&cursor=|cursor=.*limit=5/);
    await shoot(page, 'audit-page-2');
    await rendered(page, () => page.getByRole('link', { name: 'First page' }).click());
    assert.deepEqual(await main(page).locator('tbody tr').allInnerTexts(), firstPage);
  });

  test('admins: create and change an account; an API token is shown once, works, and is revoked', async () => {
    const { page } = admin;
    await nav(page, 'Admins');
    await waitForTitle(page, 'Admins');
    const form = page.getByRole('form', { name: 'New admin' });
    await form.getByLabel('Email').fill('helper@contoso.com');
    await form.getByLabel('Display name').fill('Hal Helper');
    await form.getByLabel('Password').fill('helper password 123');
    await form.getByLabel('Role').selectOption('viewer');
    await form.getByRole('button', { name: 'Create admin' }).click();
    await page.getByRole('status').filter({ hasText: 'Admin helper@contoso.com created with role viewer.' }).waitFor();
    await page.getByLabel('Role of helper@contoso.com', { exact: true }).selectOption('operator');
    await page.getByRole('button', { name: 'Change role of helper@contoso.com' }).click();
    await page.getByRole('status').filter({ hasText: 'helper@contoso.com is now operator.' }).waitFor();
    const admins = (await bearer(w, 'GET', '/api/v1/admins')).body.admins;
    assert.equal(admins.find((a) => a.email === 'helper@contoso.com').role, 'operator');

    await page.getByLabel('Token name').fill('ci pipeline');
    await page.getByRole('button', { name: 'Create API token' }).click();
    const secret = page.getByLabel('API token', { exact: true });
    await secret.waitFor();
    const token = await secret.inputValue();
    assert.match(token, /^emt_/);
    await shoot(page, 'admins-api-token-created');
    const me = await bearer(w, 'GET', '/api/v1/session', undefined, token);
    assert.equal(me.status, 200);
    assert.equal(me.body.admin.email, ADMIN.email);
    assert.equal(me.body.csrf_token, null);

    await page.getByRole('button', { name: 'Revoke API token ci pipeline' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
    await page.getByRole('status').filter({ hasText: 'API token “ci pipeline” revoked.' }).waitFor();
    assert.equal((await bearer(w, 'GET', '/api/v1/session', undefined, token)).status, 401);

    await page.getByRole('button', { name: 'Delete admin helper@contoso.com' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete admin' }).click();
    await page.getByRole('status').filter({ hasText: 'Admin helper@contoso.com deleted.' }).waitFor();
    await shoot(page, 'admins');
  });

  test('a cookie-authenticated write without the CSRF token is refused (403)', async () => {
    const { page } = admin;
    const fromPage = await page.evaluate(async () => {
      const body = JSON.stringify({ name: 'csrf-test' });
      const headers = { 'content-type': 'application/json' };
      const none = await fetch('/api/v1/groups', { method: 'POST', headers, body, credentials: 'same-origin' });
      const wrong = await fetch('/api/v1/groups', { method: 'POST', headers: { ...headers, 'x-csrf-token': 'wrong' }, body });
      return { none: none.status, noneBody: await none.json(), wrong: wrong.status };
    });
    assert.deepEqual([fromPage.none, fromPage.wrong], [403, 403]);
    assert.equal(fromPage.noneBody.error, 'missing or wrong CSRF token');
    // The same through the context's request API (it carries the session cookie).
    const res = await page.request.post(`${w.url}/api/v1/groups`, { data: { name: 'csrf-test' } });
    assert.equal(res.status(), 403);
    const groups = (await bearer(w, 'GET', '/api/v1/groups')).body.groups.map((g) => g.name);
    assert.ok(!groups.includes('csrf-test'), 'nothing was created');
    const refused = (await bearer(w, 'GET', '/api/v1/audit?action=auth.csrf_refused')).body.entries;
    assert.ok(refused.length >= 2, 'refusals are audited');
  });

  test('a lost session (401 from any call) goes back to sign-in, and then to the same page', async () => {
    const { page } = admin;
    await admin.context.clearCookies();
    await nav(page, 'Groups');
    await waitForTitle(page, 'Sign in');
    await page.getByRole('alert').filter({ hasText: 'Your session has ended. Sign in again.' }).waitFor();
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForTitle(page, 'Groups');
    assert.match(page.url(), /#\/groups$/);
    // A device that does not exist: a page that says so, with the API's words.
    await page.goto(url('#/devices/NO-SUCH-DEVICE'));
    await waitForTitle(page, 'Not found');
    await page.getByRole('alert').filter({ hasText: 'no such device' }).waitFor();
    await shoot(page, 'not-found');
  });

  test('sign-out ends the session', async () => {
    const { page } = admin;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await waitForTitle(page, 'Sign in');
    const status = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
    assert.equal(status, 401);
    await page.goto(url('#/devices'));
    await waitForTitle(page, 'Sign in');
  });

  test('no console errors, page errors or CSP violations anywhere', () => {
    const unexpected = unexpectedProblems(problems.flat(), expectedFailures);
    assert.deepEqual(unexpected, []);
  });
});
