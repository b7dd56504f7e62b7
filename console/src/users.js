// Users (the people who enroll devices): list; admins create and delete.

import { del, get, post, seg } from './api.js';
import { h } from './dom.js';
import { time } from './format.js';
import { can } from './session.js';
import { busy, button, confirmDialog, field, input, messageArea, notice, pageTitle, section, table } from './ui.js';

export async function usersPage(el, ctx) {
  el.append(pageTitle('Users'));
  const { users } = await get('/api/v1/users');
  const messages = messageArea();
  if (can('administer')) {
    const email = input({ type: 'email', name: 'email', required: true, autocomplete: 'off' });
    const displayName = input({ name: 'display_name', autocomplete: 'off', maxlength: '200' });
    const password = input({ type: 'password', name: 'password', required: true, autocomplete: 'new-password', minlength: '8' });
    const submit = button('Create user', null, { type: 'submit', kind: 'primary' });
    const form = h('form', { class: 'grid-form', 'aria-label': 'New user' },
      field('Email', email), field('Display name', displayName),
      field('Password', password, 'At least 8 characters. The user signs in with it when enrolling.'),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      messages.clear();
      busy(submit, async () => {
        try {
          const u = await post('/api/v1/users', { email: email.value.trim(), display_name: displayName.value.trim(), password: password.value });
          await ctx.rerender(notice(`User ${u.email} created.`));
        } catch (err) {
          messages.error(err);
        }
      });
    });
    el.append(section('New user', form, messages.el));
  }
  el.append(section('All users', table({
    caption: 'Users',
    empty: 'No users yet.',
    columns: [
      { label: 'Email', header: true, cell: (u) => u.email },
      { label: 'Display name', cell: (u) => u.display_name },
      { label: 'Created', cell: (u) => time(u.created_at) },
      ...(can('administer') ? [{
        label: 'Actions',
        cell: (u) => {
          const btn = button('Delete', async () => {
            const ok = await confirmDialog({
              heading: `Delete ${u.email}?`,
              body: 'The user can no longer sign in or enroll; their enrollment tokens are revoked. Enrolled devices stay enrolled.',
              confirmLabel: 'Delete user',
              danger: true,
            });
            if (!ok) return;
            await busy(btn, async () => {
              try {
                await del(`/api/v1/users/${seg(u.email)}`);
                await ctx.rerender(notice(`User ${u.email} deleted.`));
              } catch (err) {
                messages.error(err);
              }
            });
          }, { kind: 'danger', 'aria-label': `Delete user ${u.email}` });
          return btn;
        },
      }] : []),
    ],
    rows: users,
  })));
}
