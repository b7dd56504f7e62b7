// One device: identity, user, certificate, inventory, groups, profiles with each setting's
// status, command history, and (operator, admin) the actions: lock, reboot, wipe and retire
// (typed confirmation for the last two), a Get of any node, group membership.

import { del, get, post, put, seg } from './api.js';
import { h } from './dom.js';
import { edition, nextCheckin, pollSchedule, time, utc } from './format.js';
import { href } from './router.js';
import { can, state } from './session.js';
import {
  badge, busy, button, code, confirmDialog, errorBox, facts, field, input, messageArea, notice, pageTitle, section,
  select, table,
} from './ui.js';

export async function devicePage(el, ctx) {
  const [id] = ctx.params;
  const base = `/api/v1/devices/${seg(id)}`;
  const [device, profiles, commands, groups] = await Promise.all([
    get(base),
    get(`${base}/profiles`).then((r) => r.profiles).catch((e) => e),
    get(`${base}/commands`).then((r) => r.commands).catch((e) => e),
    can('operate') ? get('/api/v1/groups').then((r) => r.groups).catch(() => []) : Promise.resolve([]),
  ]);
  const name = device.device_name || device.device_id;
  el.append(pageTitle(name));
  el.append(h('p', { class: 'subtitle' }, badge(device.status), ' ', h('a', { href: href(['devices']) }, 'All devices')));

  const active = device.status === 'enrolled';
  if (can('operate')) el.append(actions(device, ctx, active));

  el.append(h('div', { class: 'columns' },
    section('Identity', facts([
      ['Device ID', code(device.device_id)],
      ['Name', device.device_name ?? '—'],
      ['HWDevID', code(device.hw_dev_id)],
      ['OS version', device.os_version ?? '—'],
      ['Edition', edition(device.os_edition)],
      ['Enrollment type', device.enrollment_type ?? '—'],
      ['Device type', device.device_type ?? '—'],
      ['Status', badge(device.status)],
      ['Enrolled', time(device.enrolled_at)],
      ['Last check-in', time(device.last_checkin)],
      device.retired_at ? ['Retired', time(device.retired_at)] : null,
    ])),
    h('div', {},
      section('User', facts([['User', device.user ?? 'None (device enrollment)']])),
      section('Certificate', facts([
        ['Serial', code(device.certificate?.serial)],
        ['Thumbprint', code(device.certificate?.thumbprint)],
        ['Valid from', time(device.certificate?.not_before)],
        ['Valid until', time(device.certificate?.not_after)],
        device.renewed_at ? ['Renewed', time(device.renewed_at)] : null,
      ])))));

  el.append(groupsSection(device, groups, ctx));
  el.append(profilesSection(profiles));
  el.append(commandsSection(commands));
  el.append(section('Inventory', table({
    caption: 'Inventory reported by the device',
    columns: [
      { label: 'Node', header: true, cell: ([uri]) => code(uri) },
      { label: 'Value', cell: ([, v]) => v },
    ],
    rows: Object.entries(device.inventory ?? {}),
    empty: 'The device has not reported its inventory yet.',
  })));
  if (device.alerts?.length) {
    el.append(section('Alerts', table({
      caption: 'Generic alerts from the device',
      columns: [
        { label: 'Received', cell: (a) => time(a.received_at) },
        { label: 'Alert', cell: (a) => code(a.alert) },
        { label: 'Type', cell: (a) => a.type ?? '—' },
        { label: 'Data', cell: (a) => a.data ?? '—' },
      ],
      rows: [...device.alerts].reverse(),
    })));
  }
}

/** "It reaches the device at its next check-in" and when that should be. */
function whenItArrives(device, subject = 'It') {
  const poll = state.server?.poll;
  const next = nextCheckin(device, poll);
  const parts = [h('strong', {}, `${subject} reaches the device at its next check-in`)];
  if (next) {
    parts.push(next.getTime() > Date.now()
      ? `, expected around ${utc(next)}.`
      : `; the device was expected by ${utc(next)} and is overdue.`);
  } else parts.push('.');
  if (poll) parts.push(' ', pollSchedule(poll));
  return parts;
}

function actions(device, ctx, active) {
  const base = `/api/v1/devices/${seg(device.device_id)}`;
  const messages = messageArea();
  const names = [device.device_id, device.device_name].filter(Boolean);
  const queue = async (btn, body, label) => {
    messages.clear();
    await busy(btn, async () => {
      try {
        const q = await post(`${base}/commands`, body);
        await ctx.rerender(notice(`${label} queued (command ${q.id}, ${q.status}). `, ...whenItArrives(device)));
      } catch (e) {
        messages.error(e);
      }
    });
  };

  const lockBtn = button('Lock', async () => {
    if (await confirmDialog({ heading: 'Lock the device?', body: `${device.device_name ?? device.device_id} locks its screen; the user signs in again.`, confirmLabel: 'Lock device' })) {
      await queue(lockBtn, { type: 'lock' }, 'Lock');
    }
  });
  const rebootBtn = button('Reboot', async () => {
    if (await confirmDialog({ heading: 'Reboot the device?', body: 'The device restarts at once when it receives the command; unsaved work is lost.', confirmLabel: 'Reboot device' })) {
      await queue(rebootBtn, { type: 'reboot' }, 'Reboot');
    }
  });
  const wipeBtn = button('Wipe…', async () => {
    const ok = await confirmDialog({
      heading: 'Wipe the device?',
      body: h('p', {}, 'The device is reset to factory settings: ', h('strong', {}, 'every file, app and setting on it is erased.'), ' This cannot be undone.'),
      confirmLabel: 'Wipe device',
      danger: true,
      typed: names,
    });
    if (ok) await queue(wipeBtn, { type: 'wipe' }, 'Wipe');
  }, { kind: 'danger' });
  const retireBtn = button('Retire…', async () => {
    const ok = await confirmDialog({
      heading: 'Retire the device?',
      body: h('p', {}, 'The device is unenrolled at its next check-in: its certificate is revoked, it takes no more commands or profiles, and its DeviceID is released. Its files are not erased.'),
      confirmLabel: 'Retire device',
      danger: true,
      typed: names,
    });
    if (!ok) return;
    messages.clear();
    await busy(retireBtn, async () => {
      try {
        const r = await del(base);
        await ctx.rerender(notice(`Retire requested: the device is ${r?.status ?? 'retiring'}. `, ...whenItArrives(device, 'The unenroll command')));
      } catch (e) {
        messages.error(e);
      }
    });
  }, { kind: 'danger' });

  const uri = input({ name: 'uri', value: './DevDetail/SwV', spellcheck: 'false', autocomplete: 'off', required: true });
  const getBtn = button('Queue Get', null, { type: 'submit', kind: 'secondary' });
  const getForm = h('form', { class: 'inline-form', 'aria-label': 'Read a node' }, field('Node URI', uri), getBtn);
  getForm.addEventListener('submit', (e) => {
    e.preventDefault();
    queue(getBtn, { type: 'get', uri: uri.value.trim() }, `Get ${uri.value.trim()}`);
  });

  if (!active) {
    return section('Actions',
      h('p', { class: 'hint' }, `The device is ${device.status}: it takes no commands.`));
  }
  return section('Actions',
    h('div', { class: 'actions' }, lockBtn, rebootBtn, wipeBtn, retireBtn),
    getForm,
    messages.el);
}

function groupsSection(device, allGroups, ctx) {
  const mine = device.groups ?? [];
  const messages = messageArea();
  const list = mine.length
    ? h('ul', { class: 'chips' }, mine.map((g) => h('li', {},
      h('a', { href: href(['groups', g]) }, g),
      can('operate') ? button('Remove', async (e) => {
        await busy(e.currentTarget, async () => {
          try {
            await del(`/api/v1/groups/${seg(g)}/devices/${seg(device.device_id)}`);
            await ctx.rerender(notice(`Removed from ${g}.`));
          } catch (err) {
            messages.error(err);
          }
        });
      }, { kind: 'link', 'aria-label': `Remove from group ${g}` }) : null)))
    : h('p', { class: 'empty' }, 'In no group.');
  let form = null;
  const others = allGroups.map((g) => g.name).filter((n) => !mine.includes(n));
  if (can('operate') && others.length) {
    const choice = select(others, others[0], { name: 'group' });
    const addBtn = button('Add to group', null, { type: 'submit' });
    form = h('form', { class: 'inline-form', 'aria-label': 'Add to a group' }, field('Group', choice), addBtn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(addBtn, async () => {
        try {
          await put(`/api/v1/groups/${seg(choice.value)}/devices/${seg(device.device_id)}`);
          await ctx.rerender(notice(`Added to ${choice.value}. Profiles targeting it apply at the next check-in.`));
        } catch (err) {
          messages.error(err);
        }
      });
    });
  }
  return section('Groups', list, form, messages.el);
}

function profilesSection(profiles) {
  if (profiles instanceof Error) return section('Profiles', errorBox(profiles));
  if (!profiles.length) return section('Profiles', h('p', { class: 'empty' }, 'No profile applies to this device.'));
  return section('Profiles', profiles.map((p) => h('article', { class: 'profile-on-device', 'aria-label': `Profile ${p.name}` },
    h('h3', {}, h('a', { href: href(['profiles', p.id]) }, p.name), ' ', badge(p.status)),
    h('p', { class: 'hint' }, `Version ${p.version}${p.atomic ? ', atomic' : ''}. Updated `, time(p.updated_at),
      p.checked_at ? ['; last read back ', time(p.checked_at)] : null, '.'),
    table({
      caption: `Settings of ${p.name} on this device`,
      columns: [
        { label: 'Node', header: true, cell: (s) => code(s.uri) },
        { label: 'Status', cell: (s) => badge(s.status) },
        { label: 'Code', cell: (s) => code(s.code) },
        { label: 'Observed', cell: (s) => (s.observed === undefined ? '—' : code(s.observed)) },
        { label: 'Note', cell: (s) => [s.note ?? '', s.verified_by ? ` (${s.verified_by})` : '', s.drift ? ` drift: ${JSON.stringify(s.drift)}` : ''].join('').trim() || '—' },
      ],
      rows: p.settings ?? [],
    }),
    p.conflicts?.length ? h('ul', { class: 'conflicts' }, p.conflicts.map((c) => h('li', {},
      'Conflict on ', code(c.uri), ' with ', c.profiles.map((o, i) => [i ? ', ' : '', h('a', { href: href(['profiles', o]) }, o)])))) : null)));
}

function commandsSection(commands) {
  if (commands instanceof Error) return section('Command history', errorBox(commands));
  const rows = [...commands].sort((a, b) => Number(b.id) - Number(a.id));
  return section('Command history', table({
    caption: 'Commands sent to this device, newest first',
    className: 'commands',
    columns: [
      { label: 'ID', cell: (c) => (/^\d+$/.test(c.id) ? String(Number(c.id)) : c.id), class: 'num' },
      { label: 'Command', header: true, cell: (c) => c.type },
      { label: 'Node', cell: (c) => code(c.request?.uri), class: 'wrap' },
      { label: 'Status', cell: (c) => badge(c.status) },
      { label: 'Code', cell: (c) => code(c.status_code) },
      {
        label: 'Timeline',
        cell: (c) => h('dl', { class: 'timeline' },
          [['Queued', c.created_at], ['Sent', c.sent_at], ['Done', c.completed_at]].filter(([, t]) => t)
            .map(([k, t]) => [h('dt', {}, k), h('dd', {}, time(t, { seconds: true }))])),
      },
      { label: 'Attempts', cell: (c) => String(c.attempts ?? 0), class: 'num' },
      {
        label: 'Results',
        cell: (c) => (c.results?.length
          ? h('ul', { class: 'results' }, c.results.map((r) => h('li', {}, code(r.uri), ' = ', code(r.data))))
          : (c.error ?? '—')),
        class: 'wrap',
      },
    ],
    rows,
    empty: 'No commands yet.',
  }));
}
