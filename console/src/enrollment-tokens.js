// Enrollment tokens: admins create one for a user (shown once, with the ms-device-enrollment
// link that starts enrollment on the Windows device), list them, revoke them.

import { del, get, post, seg } from './api.js';
import { h } from './dom.js';
import { time } from './format.js';
import { href } from './router.js';
import { can, state } from './session.js';
import {
  badge, busy, button, code, confirmDialog, field, input, messageArea, notice, pageTitle, secretPanel, section, select,
  table,
} from './ui.js';

/**
 * `ms-device-enrollment:?mode=mdm&username=<email>&servername=<server>`: values percent-encoded
 * except `@` and `:` (an email, a host:port), as Microsoft prints the link.
 */
export function enrollmentLink(email, serverName) {
  const enc = (s) => encodeURIComponent(s).replace(/%40/g, '@').replace(/%3A/gi, ':');
  return `ms-device-enrollment:?mode=mdm&username=${enc(email)}&servername=${enc(serverName)}`;
}

function tokenState(t) {
  if (t.revoked) return 'revoked';
  if (t.expired) return 'expired';
  if (t.remaining === 0) return 'used';
  return 'active';
}

/** Every page of the listing (40 users' tokens a page), up to 1000 users. */
async function allTokens() {
  const tokens = [];
  let cursor = null;
  for (let page = 0; page < 25; page += 1) {
    const r = await get(`/api/v1/enrollment-tokens${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    tokens.push(...r.tokens);
    cursor = r.next_cursor;
    if (!cursor) break;
  }
  return { tokens };
}

export async function enrollmentTokensPage(el, ctx) {
  el.append(pageTitle('Enrollment tokens'));
  const [{ tokens }, users] = await Promise.all([
    allTokens(),
    can('administer') ? get('/api/v1/users').then((r) => r.users) : Promise.resolve([]),
  ]);
  const messages = messageArea();
  const created = h('div');
  el.append(created);
  if (can('administer')) {
    if (!users.length) {
      el.append(section('New enrollment token', h('p', { class: 'hint' }, 'Create a user first: a token enrolls devices for one user.')));
    } else {
      const user = select(users.map((u) => [u.email, u.display_name && u.display_name !== u.email ? `${u.display_name} <${u.email}>` : u.email]),
        users[0].email, { name: 'email' });
      const hours = input({ type: 'number', name: 'hours', min: '1', max: String(90 * 24), value: '24', required: true });
      const uses = input({ type: 'number', name: 'uses', min: '1', max: '100000', value: '1', required: true });
      const submit = button('Create token', null, { type: 'submit', kind: 'primary' });
      const form = h('form', { class: 'grid-form', 'aria-label': 'New enrollment token' },
        field('User', user), field('Valid for (hours)', hours), field('Uses (devices it may enroll)', uses),
        h('div', { class: 'actions' }, submit));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        messages.clear();
        busy(submit, async () => {
          try {
            const t = await post('/api/v1/enrollment-tokens', {
              email: user.value,
              expires_in_seconds: Math.round(Number(hours.value) * 3600),
              uses: Number(uses.value),
            });
            await ctx.rerender(tokenCreated(t));
          } catch (err) {
            messages.error(err);
          }
        });
      });
      el.append(section('New enrollment token', form, messages.el));
    }
  }
  el.append(section('All enrollment tokens', table({
    caption: 'Enrollment tokens',
    empty: 'No enrollment tokens yet.',
    columns: [
      { label: 'ID', header: true, cell: (t) => code(t.id) },
      { label: 'User', cell: (t) => t.email },
      { label: 'State', cell: (t) => badge(tokenState(t)) },
      { label: 'Created', cell: (t) => time(t.created_at) },
      { label: 'Expires', cell: (t) => time(t.expires_at) },
      { label: 'Uses left', class: 'num', cell: (t) => `${t.remaining} of ${t.uses}` },
      {
        label: 'Devices',
        cell: (t) => (t.devices?.length ? t.devices.map((d, i) => [i ? ', ' : '', h('a', { href: href(['devices', d]) }, d)]) : '—'),
      },
      ...(can('administer') ? [{
        label: 'Actions',
        cell: (t) => {
          if (tokenState(t) !== 'active') return '—';
          const btn = button('Revoke', async () => {
            const ok = await confirmDialog({
              heading: `Revoke token ${t.id}?`,
              body: `No more devices can enroll with it for ${t.email}. Devices it enrolled stay enrolled.`,
              confirmLabel: 'Revoke token',
              danger: true,
            });
            if (!ok) return;
            await busy(btn, async () => {
              try {
                await del(`/api/v1/enrollment-tokens/${seg(t.id)}`);
                await ctx.rerender(notice(`Token ${t.id} revoked.`));
              } catch (err) {
                messages.error(err);
              }
            });
          }, { kind: 'danger', 'aria-label': `Revoke token ${t.id}` });
          return btn;
        },
      }] : []),
    ],
    rows: [...tokens].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))),
  })));
}

function tokenCreated(t) {
  const server = state.server?.server_name ?? location.host;
  const link = enrollmentLink(t.email, server);
  return secretPanel({
    heading: 'New enrollment token',
    label: 'Enrollment token',
    secret: t.token,
    extra: h('div', { class: 'enroll-how' },
      h('p', {}, `For ${t.email}: ${t.remaining} use${t.remaining === 1 ? '' : 's'}, valid until `, time(t.expires_at), '.'),
      h('p', {}, 'On the Windows device, open this link (or Settings › Accounts › Access work or school › Enroll only in device management, server ',
        code(server), ') and sign in with the token as the password:'),
      h('p', {}, h('a', { href: link, class: 'enroll-link' }, link))),
  });
}
