// Admin accounts (role admin: list, create, change role, delete) and API tokens (its own; an
// admin sees and revokes everyone's). A new API token is shown once.

import { del, get, patch, post, seg } from './api.js';
import { h, uid } from './dom.js';
import { time, title } from './format.js';
import { can, state } from './session.js';
import {
  busy, button, code, confirmDialog, field, input, messageArea, notice, pageTitle, secretPanel, section, select, table,
} from './ui.js';

const ROLES = ['admin', 'operator', 'viewer'];
const ROLE_HELP = 'Viewer: reads everything but admin accounts. Operator: also device commands, retire, profiles and groups. Admin: everything.';

export async function adminsPage(el, ctx) {
  el.append(pageTitle('Admins'));
  if (!can('administer')) {
    el.append(h('p', {}, 'Only admins manage admin accounts.'));
    return;
  }
  const [{ admins }, tokens] = await Promise.all([get('/api/v1/admins'), get('/api/v1/api-tokens').then((r) => r.tokens)]);
  const messages = messageArea();

  const email = input({ type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const displayName = input({ name: 'display_name', required: true, autocomplete: 'off' });
  const password = input({ type: 'password', name: 'password', required: true, minlength: '12', autocomplete: 'new-password' });
  const role = select(ROLES.map((r) => [r, title(r)]), 'operator', { name: 'role' });
  const submit = button('Create admin', null, { type: 'submit', kind: 'primary' });
  const form = h('form', { class: 'grid-form', 'aria-label': 'New admin' },
    field('Email', email), field('Display name', displayName), field('Password', password, 'At least 12 characters.'),
    field('Role', role, ROLE_HELP), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    messages.clear();
    busy(submit, async () => {
      try {
        const a = await post('/api/v1/admins', {
          email: email.value.trim(), display_name: displayName.value.trim(), password: password.value, role: role.value,
        });
        await ctx.rerender(notice(`Admin ${a.email} created with role ${a.role}.`));
      } catch (err) {
        messages.error(err);
      }
    });
  });
  el.append(section('New admin', form, messages.el));

  el.append(section('All admins', table({
    caption: 'Admin accounts',
    columns: [
      { label: 'Email', header: true, cell: (a) => [a.email, a.email === state.admin.email ? h('span', { class: 'hint' }, ' (you)') : null] },
      { label: 'Display name', cell: (a) => a.display_name },
      { label: 'Role', cell: (a) => roleForm(a, messages, ctx) },
      { label: 'Created', cell: (a) => time(a.created_at) },
      {
        label: 'Actions',
        cell: (a) => {
          const btn = button('Delete', async () => {
            const ok = await confirmDialog({
              heading: `Delete admin ${a.email}?`,
              body: 'Their sessions and API tokens end at once.',
              confirmLabel: 'Delete admin',
              danger: true,
            });
            if (!ok) return;
            await busy(btn, async () => {
              try {
                await del(`/api/v1/admins/${seg(a.email)}`);
                await ctx.rerender(notice(`Admin ${a.email} deleted.`));
              } catch (err) {
                messages.error(err);
              }
            });
          }, { kind: 'danger', 'aria-label': `Delete admin ${a.email}` });
          return btn;
        },
      },
    ],
    rows: admins,
  })));
  el.append(apiTokensSection(tokens, ctx));
}

function roleForm(a, messages, ctx) {
  const role = select(ROLES.map((r) => [r, title(r)]), a.role, { name: 'role', id: uid('role') });
  const save = button('Change role', null, { type: 'submit', kind: 'secondary', 'aria-label': `Change role of ${a.email}` });
  const form = h('form', { class: 'role-form' },
    h('label', { for: role.id, class: 'visually-hidden' }, `Role of ${a.email}`), role, save);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (role.value === a.role) return;
    busy(save, async () => {
      try {
        const updated = await patch(`/api/v1/admins/${seg(a.email)}`, { role: role.value });
        await ctx.rerender(notice(`${updated.email} is now ${updated.role}.`));
      } catch (err) {
        messages.error(err);
      }
    });
  });
  return form;
}

export async function apiTokensPage(el, ctx) {
  el.append(pageTitle('API tokens'));
  const { tokens } = await get('/api/v1/api-tokens');
  el.append(apiTokensSection(tokens, ctx));
}

function apiTokensSection(tokens, ctx) {
  const messages = messageArea();
  const parts = [];
  parts.push(h('p', { class: 'hint' },
    'An API token acts as its owner, with the owner\'s current role: send it as ', code('Authorization: Bearer emt_…'), '.'));
  if (can('tokens')) {
    const name = input({ name: 'name', required: true, maxlength: '64', autocomplete: 'off' });
    const submit = button('Create API token', null, { type: 'submit', kind: 'primary' });
    const form = h('form', { class: 'inline-form', 'aria-label': 'New API token' }, field('Token name', name), submit);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      messages.clear();
      busy(submit, async () => {
        try {
          const t = await post('/api/v1/api-tokens', { name: name.value.trim() });
          await ctx.rerender(secretPanel({
            heading: `New API token “${t.name}”`,
            label: 'API token',
            secret: t.token,
            extra: h('p', { class: 'hint' }, `ID ${t.id}, owned by ${t.admin}.`),
          }));
        } catch (err) {
          messages.error(err);
        }
      });
    });
    parts.push(form, messages.el);
  }
  parts.push(table({
    caption: 'API tokens',
    empty: 'No API tokens.',
    columns: [
      { label: 'Name', header: true, cell: (t) => t.name },
      { label: 'ID', cell: (t) => code(t.id) },
      { label: 'Owner', cell: (t) => t.admin },
      { label: 'Created', cell: (t) => time(t.created_at) },
      { label: 'Last used', cell: (t) => time(t.last_used_at) },
      ...(can('tokens') ? [{
        label: 'Actions',
        cell: (t) => {
          const btn = button('Revoke', async () => {
            const ok = await confirmDialog({
              heading: `Revoke API token “${t.name}”?`,
              body: 'Scripts using it are refused from now on.',
              confirmLabel: 'Revoke token',
              danger: true,
            });
            if (!ok) return;
            await busy(btn, async () => {
              try {
                await del(`/api/v1/api-tokens/${seg(t.id)}`);
                await ctx.rerender(notice(`API token “${t.name}” revoked.`));
              } catch (err) {
                messages.error(err);
              }
            });
          }, { kind: 'danger', 'aria-label': `Revoke API token ${t.name}` });
          return btn;
        },
      }] : []),
    ],
    rows: tokens,
  }));
  return section('API tokens', ...parts);
}
