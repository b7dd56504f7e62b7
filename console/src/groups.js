// Groups: create, delete, and each group's devices (add by DeviceID, remove).

import { del, get, post, put, seg } from './api.js';
import { h } from './dom.js';
import { time } from './format.js';
import { go, href } from './router.js';
import { can } from './session.js';
import { busy, button, confirmDialog, field, input, messageArea, notice, pageTitle, pager, section, table } from './ui.js';
import { deviceTable } from './devices.js';

export async function groupsPage(el, ctx) {
  el.append(pageTitle('Groups'));
  const { groups } = await get('/api/v1/groups');
  const messages = messageArea();
  if (can('operate')) {
    const name = input({ name: 'name', required: true, maxlength: '64', pattern: '[A-Za-z0-9._\\-]{1,64}', autocomplete: 'off' });
    const submit = button('Create group', null, { type: 'submit', kind: 'primary' });
    const form = h('form', { class: 'inline-form', 'aria-label': 'New group' },
      field('Group name', name, 'Letters, digits, “-”, “_” or “.”, up to 64.'), submit);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, async () => {
        try {
          const g = await post('/api/v1/groups', { name: name.value.trim() });
          await ctx.rerender(notice(`Group ${g.name} created.`));
        } catch (err) {
          messages.error(err);
        }
      });
    });
    el.append(section('New group', form, messages.el));
  }
  el.append(section('All groups', table({
    caption: 'Groups',
    empty: 'No groups yet.',
    columns: [
      { label: 'Name', header: true, cell: (g) => h('a', { href: href(['groups', g.name]) }, g.name) },
      { label: 'Devices', class: 'num', cell: (g) => String(g.devices) },
      { label: 'Created', cell: (g) => time(g.created_at) },
      ...(can('operate') ? [{ label: 'Actions', cell: (g) => deleteButton(g.name, messages, () => ctx.rerender(notice(`Group ${g.name} deleted.`))) }] : []),
    ],
    rows: groups,
  })));
}

function deleteButton(name, messages, done) {
  const btn = button('Delete', async () => {
    const ok = await confirmDialog({
      heading: `Delete group ${name}?`,
      body: 'Its devices leave it; profiles targeting only this group stop applying to them.',
      confirmLabel: 'Delete group',
      danger: true,
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await del(`/api/v1/groups/${seg(name)}`);
        await done();
      } catch (err) {
        messages.error(err);
      }
    });
  }, { kind: 'danger', 'aria-label': `Delete group ${name}` });
  return btn;
}

export async function groupPage(el, ctx) {
  const [name] = ctx.params;
  el.append(pageTitle(`Group ${name}`));
  const cursor = ctx.query.get('cursor') ?? '';
  const [groups, page] = await Promise.all([
    get('/api/v1/groups').then((r) => r.groups),
    get('/api/v1/devices', { group: name, cursor, limit: 50 }),
  ]);
  const group = groups.find((g) => g.name === name);
  el.append(h('p', { class: 'subtitle' }, h('a', { href: href(['groups']) }, 'All groups'),
    group ? ` · ${group.devices} device${group.devices === 1 ? '' : 's'} · created ` : ' · no such group',
    group ? time(group.created_at) : null));
  const messages = messageArea();
  if (can('operate') && group) {
    const deviceId = input({ name: 'device_id', required: true, spellcheck: 'false', autocomplete: 'off' });
    const submit = button('Add device', null, { type: 'submit', kind: 'primary' });
    const form = h('form', { class: 'inline-form', 'aria-label': 'Add a device' }, field('Device ID', deviceId), submit);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, async () => {
        try {
          await put(`/api/v1/groups/${seg(name)}/devices/${seg(deviceId.value.trim())}`);
          await ctx.rerender(notice(`Device ${deviceId.value.trim()} added to ${name}.`));
        } catch (err) {
          messages.error(err);
        }
      });
    });
    el.append(h('div', { class: 'actions' },
      deleteButton(name, messages, () => go(['groups']))));
    el.append(section('Add a device', form, messages.el));
  }
  const removeColumn = can('operate') && group ? [{
    label: 'Actions',
    cell: (d) => {
      const btn = button('Remove', () => busy(btn, async () => {
        try {
          await del(`/api/v1/groups/${seg(name)}/devices/${seg(d.device_id)}`);
          await ctx.rerender(notice(`Device ${d.device_name ?? d.device_id} removed from ${name}.`));
        } catch (err) {
          messages.error(err);
        }
      }), { kind: 'secondary', 'aria-label': `Remove ${d.device_name ?? d.device_id} from ${name}` });
      return btn;
    },
  }] : [];
  el.append(section('Devices', h('p', { class: 'total' }, `${page.total} device${page.total === 1 ? '' : 's'}`),
    deviceTable(page.devices, `Devices in ${name}`, removeColumn),
    pager({
      first: cursor ? href(['groups', name]) : null,
      next: page.next_cursor ? href(['groups', name], { cursor: page.next_cursor }) : null,
    })));
}
