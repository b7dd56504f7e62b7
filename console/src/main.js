// The edgemdm admin console: a single-page app served at /admin, hash-routed
// (`/admin/#/devices/ID`). It talks only to the same-origin admin API with the session cookie;
// no external resources, no inline scripts or styles (CSP).

import { onUnauthorized } from './api.js';
import { h, replace } from './dom.js';
import { current, href } from './router.js';
import { can, forget, loadServer, resume, signIn, signOut, state } from './session.js';
import { busy, errorBox, field, input, messageArea, pageTitle } from './ui.js';
import { dashboardPage } from './dashboard.js';
import { devicesPage } from './devices.js';
import { devicePage } from './device.js';
import { profileEditorPage, profilePage, profilesPage } from './profiles.js';
import { groupPage, groupsPage } from './groups.js';
import { usersPage } from './users.js';
import { enrollmentTokensPage } from './enrollment-tokens.js';
import { adminsPage, apiTokensPage } from './admins.js';
import { auditPage } from './audit.js';

const root = document.getElementById('app');
let shell = null; // { main, nav, who } once signed in
let renderSeq = 0;
let resumeTo = null; // the route to return to after signing in again
let pendingFlash = null; // a message to show at the top of the next rendering (after an action)

/** Routes: [pattern parts ('*' = any one segment), page, nav key]. */
const ROUTES = [
  [[], dashboardPage, 'dashboard'],
  [['devices'], devicesPage, 'devices'],
  [['devices', '*'], devicePage, 'devices'],
  [['profiles'], profilesPage, 'profiles'],
  [['profiles', 'new'], profileEditorPage, 'profiles'],
  [['profiles', '*'], profilePage, 'profiles'],
  [['profiles', '*', 'edit'], profileEditorPage, 'profiles'],
  [['groups'], groupsPage, 'groups'],
  [['groups', '*'], groupPage, 'groups'],
  [['users'], usersPage, 'users'],
  [['enrollment-tokens'], enrollmentTokensPage, 'enrollment-tokens'],
  [['admins'], adminsPage, 'admins'],
  [['api-tokens'], apiTokensPage, 'api-tokens'],
  [['audit'], auditPage, 'audit'],
];

function match(parts) {
  // Exact literals win over wildcards (`profiles/new` before `profiles/*`).
  const candidates = ROUTES.filter(([p]) => p.length === parts.length && p.every((s, i) => s === '*' || s === parts[i]));
  candidates.sort((a, b) => a[0].filter((s) => s === '*').length - b[0].filter((s) => s === '*').length);
  return candidates[0] ?? null;
}

function navItems() {
  const items = [
    ['dashboard', 'Dashboard', []],
    ['devices', 'Devices', ['devices']],
    ['profiles', 'Profiles', ['profiles']],
    ['groups', 'Groups', ['groups']],
    ['users', 'Users', ['users']],
    ['enrollment-tokens', 'Enrollment tokens', ['enrollment-tokens']],
  ];
  if (can('administer')) items.push(['admins', 'Admins', ['admins']]);
  else if (can('tokens')) items.push(['api-tokens', 'API tokens', ['api-tokens']]);
  items.push(['audit', 'Audit log', ['audit']]);
  return items;
}

function buildShell() {
  const main = h('main', { id: 'main', tabindex: '-1' });
  const nav = h('nav', { 'aria-label': 'Console', class: 'sidebar' });
  const skip = h('a', {
    href: '#main-content',
    class: 'skip-link',
    on: { click: (e) => { e.preventDefault(); main.focus(); } },
  }, 'Skip to content');
  const signOutBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-small' }, 'Sign out');
  signOutBtn.addEventListener('click', () => busy(signOutBtn, async () => {
    try {
      await signOut();
    } catch {
      // The cookie is dropped either way; the sign-in page follows.
    }
    shell = null;
    resumeTo = null;
    location.hash = '#/';
    renderSignIn();
  }));
  const org = state.server?.org_name ?? 'edgemdm';
  const who = h('div', { class: 'who' },
    h('span', { class: 'who-name' }, state.admin.display_name || state.admin.email),
    h('span', { class: 'who-role' }, h('span', { class: 'visually-hidden' }, 'Role: '), state.admin.role),
    signOutBtn);
  const header = h('header', { class: 'topbar' },
    h('a', { href: '#/', class: 'brand' }, h('span', { class: 'brand-org' }, org), h('span', { class: 'brand-app' }, 'MDM admin')),
    who);
  replace(root, skip, header, h('div', { class: 'layout' }, nav, main));
  shell = { main, nav };
}

function renderNav(active) {
  replace(shell.nav, h('ul', {}, navItems().map(([key, label, parts]) => h('li', {},
    h('a', { href: href(parts), class: key === active ? 'active' : null, 'aria-current': key === active ? 'page' : null }, label)))));
}

async function render({ focus = true } = {}) {
  if (!state.admin) {
    renderSignIn();
    return;
  }
  if (!shell) buildShell();
  const seq = ++renderSeq;
  const route = current();
  const found = match(route.parts);
  const el = h('div', { class: 'page', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading…'));
  replace(shell.main, el);
  if (!found) {
    renderNav(null);
    replace(el, pageTitle('Not found'), h('p', {}, 'There is no such page. '), h('a', { href: '#/' }, 'Go to the dashboard'));
    el.removeAttribute('aria-busy');
    return;
  }
  const [pattern, page, navKey] = found;
  renderNav(navKey);
  const params = route.parts.filter((_, i) => pattern[i] === '*');
  const ctx = {
    params,
    parts: route.parts,
    query: route.query,
    stale: () => seq !== renderSeq,
    // Renders the page again with fresh data, `flash` (a node) shown under its heading.
    rerender: (flash) => {
      pendingFlash = flash ?? null;
      return render({ focus: false });
    },
  };
  const flash = pendingFlash;
  pendingFlash = null;
  const content = h('div', { class: 'page' });
  try {
    await page(content, ctx);
  } catch (e) {
    if (e?.status === 401) return; // the sign-in page is already up
    if (ctx.stale()) return;
    if (!content.querySelector('h1')) content.prepend(pageTitle(e?.status === 404 ? 'Not found' : 'Cannot show this page'));
    content.append(errorBox(e), h('p', {}, h('a', { href: '#/' }, 'Go to the dashboard')));
  }
  if (ctx.stale() || !shell) return;
  if (flash) {
    const heading = content.querySelector('h1');
    if (heading) heading.after(flash);
    else content.prepend(flash);
  }
  replace(shell.main, content);
  // Rendering count: tells scripted checks (the e2e test) that a new rendering is on screen.
  shell.main.dataset.render = String(seq);
  if (focus) (content.querySelector('h1') ?? shell.main).focus({ preventScroll: false });
}

function renderSignIn(message) {
  shell = null;
  renderSeq += 1;
  document.title = 'Sign in · edgemdm admin';
  const email = input({ type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = input({ type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const messages = messageArea();
  if (message) messages.error(message);
  const form = h('form', { class: 'signin-form' },
    field('Email', email), field('Password', password), messages.el, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    messages.clear();
    busy(submit, async () => {
      try {
        await signIn(email.value.trim(), password.value);
      } catch (err) {
        password.value = '';
        if (err.status === 401) messages.error('The email or password is incorrect.');
        else if (err.status === 429) {
          messages.error(`Too many sign-in attempts. Try again${err.retryAfter ? ` in ${err.retryAfter} s` : ' later'}.`);
        } else messages.error(err);
        password.focus();
        return;
      }
      await afterSignIn();
    });
  });
  const main = h('main', { id: 'main', class: 'signin' },
    h('div', { class: 'signin-card' }, h('h1', { tabindex: '-1' }, 'Sign in'),
      h('p', { class: 'hint' }, 'edgemdm administration console'), form));
  replace(root, main);
  email.focus();
}

async function afterSignIn() {
  try {
    await loadServer();
  } catch (e) {
    if (e.status === 401) return;
    state.server = null;
  }
  const target = resumeTo;
  resumeTo = null;
  if (target && target !== location.hash) {
    location.hash = target; // hashchange renders
    return;
  }
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/');
  await render();
}

onUnauthorized(() => {
  if (!state.admin && !shell) return;
  resumeTo = location.hash.startsWith('#/') ? location.hash : null;
  forget();
  renderSignIn('Your session has ended. Sign in again.');
});

window.addEventListener('hashchange', () => {
  if (!location.hash.startsWith('#/') && location.hash !== '') return;
  render();
});

async function start() {
  replace(root, h('main', { id: 'main' }, h('p', { class: 'loading' }, 'Loading…')));
  let signedIn = false;
  try {
    signedIn = await resume();
  } catch (e) {
    replace(root, h('main', { id: 'main' }, pageTitle('edgemdm admin'), errorBox(e)));
    return;
  }
  if (!signedIn) {
    renderSignIn();
    return;
  }
  await afterSignIn();
}

start();
