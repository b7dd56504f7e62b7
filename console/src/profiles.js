// Configuration profiles: the list with per-status device counts, one profile with a
// drill-down to the devices in each status, and the editor (create and edit). The API
// validates profiles; its 400 messages are shown as they are.

import { del, get, post, put, seg } from './api.js';
import { h } from './dom.js';
import { time, title } from './format.js';
import { go, href } from './router.js';
import { can } from './session.js';
import {
  badge, busy, button, check, code, confirmDialog, errorBox, facts, field, input, messageArea, pageTitle,
  section, select, table,
} from './ui.js';
import { PROFILE_STATUSES } from './devices.js';

const FORMATS = ['int', 'chr', 'bool', 'b64', 'xml'];

function targetsText(t) {
  if (!t) return '—';
  if (t.all) return 'All devices';
  if (t.groups) return `Groups: ${t.groups.join(', ')}`;
  if (t.devices) return `${t.devices.length} device${t.devices.length === 1 ? '' : 's'}`;
  return '—';
}

function targetsNode(t) {
  if (t?.groups) return ['Groups: ', t.groups.map((g, i) => [i ? ', ' : '', h('a', { href: href(['groups', g]) }, g)])];
  if (t?.devices) return ['Devices: ', t.devices.map((d, i) => [i ? ', ' : '', h('a', { href: href(['devices', d]) }, d)])];
  return targetsText(t);
}

function countLink(p, status) {
  const n = p.devices?.[status] ?? 0;
  return n ? h('a', { href: href(['profiles', p.id], { status }), 'aria-label': `${n} ${status} devices of ${p.name}` }, String(n)) : '0';
}

export async function profilesPage(el) {
  el.append(pageTitle('Profiles'));
  const { profiles } = await get('/api/v1/profiles');
  if (can('operate')) el.append(h('p', {}, h('a', { href: href(['profiles', 'new']), class: 'btn btn-primary' }, 'New profile')));
  el.append(table({
    caption: 'Configuration profiles with device counts per status',
    empty: 'No profiles yet.',
    columns: [
      { label: 'Name', header: true, cell: (p) => h('a', { href: href(['profiles', p.id]) }, p.name) },
      { label: 'ID', cell: (p) => code(p.id), class: 'nowrap' },
      { label: 'Version', cell: (p) => String(p.version), class: 'num' },
      { label: 'Targets', cell: (p) => targetsText(p.targets) },
      ...PROFILE_STATUSES.map((s) => ({ label: title(s), class: 'num', cell: (p) => countLink(p, s) })),
      { label: 'Updated', cell: (p) => time(p.updated_at) },
    ],
    rows: profiles,
  }));
}

export async function profilePage(el, ctx) {
  const [id] = ctx.params;
  const p = await get(`/api/v1/profiles/${seg(id)}`);
  el.append(pageTitle(p.name));
  el.append(h('p', { class: 'subtitle' }, h('a', { href: href(['profiles']) }, 'All profiles')));
  if (can('operate')) {
    const messages = messageArea();
    const deleteBtn = button('Delete profile', async () => {
      const ok = await confirmDialog({
        heading: `Delete ${p.name}?`,
        body: 'Its settings are removed from every device it applies to, at each one\'s next check-in.',
        confirmLabel: 'Delete profile',
        danger: true,
      });
      if (!ok) return;
      await busy(deleteBtn, async () => {
        try {
          await del(`/api/v1/profiles/${seg(p.id)}`);
          go(['profiles']);
        } catch (e) {
          messages.error(e);
        }
      });
    }, { kind: 'danger' });
    el.append(h('div', { class: 'actions' }, h('a', { href: href(['profiles', p.id, 'edit']), class: 'btn btn-primary' }, 'Edit profile'), deleteBtn), messages.el);
  }
  if (p.description) el.append(h('p', { class: 'description' }, p.description));
  el.append(section('Profile', facts([
    ['ID', code(p.id)],
    ['Version', String(p.version)],
    ['Targets', targetsNode(p.targets)],
    ['Delivery', p.atomic ? 'One Atomic (all or nothing)' : 'Setting by setting'],
    ['Created', time(p.created_at)],
    ['Updated', time(p.updated_at)],
  ])));
  el.append(section('Settings', table({
    caption: `Settings of ${p.name}`,
    columns: [
      { label: 'Node', header: true, cell: (s) => code(s.uri) },
      { label: 'Format', cell: (s) => s.format },
      { label: 'Value', cell: (s) => code(s.data) },
      { label: 'Read back', cell: (s) => (s.read_back === false ? 'No' : 'Yes') },
    ],
    rows: p.settings,
  })));

  const status = PROFILE_STATUSES.includes(ctx.query.get('status')) ? ctx.query.get('status') : null;
  const tabs = h('ul', { class: 'status-tabs' }, PROFILE_STATUSES.map((s) => h('li', {},
    h('a', {
      href: href(['profiles', p.id], { status: s }),
      'aria-current': s === status ? 'true' : null,
      class: s === status ? 'active' : null,
    }, `${title(s)} (${p.devices?.[s] ?? 0})`))));
  const devicesSection = section('Devices by status', h('nav', { 'aria-label': 'Device statuses' }, tabs));
  el.append(devicesSection);
  if (status) devicesSection.append(await statusDevices(p, status, ctx));
  else devicesSection.append(h('p', { class: 'hint' }, 'Choose a status to see its devices.'));
}

/** The devices with this profile in `status`: pages of GET /api/v1/profiles/{id}/devices. */
async function statusDevices(p, status, ctx) {
  const found = [];
  let cursor = ctx.query.get('cursor') || null;
  let next = null;
  // The list is ordered by device; keep reading pages until one screenful matches.
  for (let pages = 0; pages < 20; pages += 1) {
    const page = await get(`/api/v1/profiles/${seg(p.id)}/devices`, { cursor, limit: 1000 });
    found.push(...page.devices.filter((d) => d.status === status));
    next = page.next_cursor;
    if (!next || found.length >= 100) break;
    cursor = next;
  }
  return h('div', {},
    h('h3', {}, `${title(status)} on ${found.length}${next ? '+' : ''} device${found.length === 1 ? '' : 's'}`),
    table({
      caption: `Devices where ${p.name} is ${status}`,
      empty: `No device has this profile ${status}.`,
      columns: [
        { label: 'Device', header: true, cell: (d) => h('a', { href: href(['devices', d.device_id]) }, d.device_id) },
        { label: 'Status', cell: (d) => badge(d.status) },
        { label: 'Version', cell: (d) => String(d.version), class: 'num' },
        { label: 'Updated', cell: (d) => time(d.updated_at) },
      ],
      rows: found,
    }),
    next ? h('p', {}, h('a', { href: href(['profiles', p.id], { status, cursor: next }), class: 'btn btn-secondary' }, 'More devices')) : null);
}

// ---- editor ---------------------------------------------------------------------------------

export async function profileEditorPage(el, ctx) {
  const editing = ctx.parts[1] !== 'new' ? ctx.params[0] : null;
  if (!can('operate')) {
    el.append(pageTitle(editing ? 'Edit profile' : 'New profile'), errorBox('Your role cannot change profiles.'));
    return;
  }
  const [existing, groups] = await Promise.all([
    editing ? get(`/api/v1/profiles/${seg(editing)}`) : Promise.resolve(null),
    get('/api/v1/groups').then((r) => r.groups).catch(() => []),
  ]);
  el.append(pageTitle(existing ? `Edit ${existing.name}` : 'New profile'));

  const name = input({ name: 'name', required: true, maxlength: '200', value: existing?.name ?? '' });
  const description = h('textarea', { name: 'description', rows: '2', maxlength: '2000' });
  description.value = existing?.description ?? '';

  // Targets.
  const t = existing?.targets ?? { all: true };
  const radio = (group, value, checked) => h('input', { type: 'radio', name: group, value, checked });
  const tAll = radio('targets', 'all', !!t.all);
  const tGroups = radio('targets', 'groups', !!t.groups);
  const tDevices = radio('targets', 'devices', !!t.devices);
  const groupBoxes = groups.map((g) => {
    const box = h('input', { type: 'checkbox', name: 'target-group', value: g.name, checked: !!t.groups?.includes(g.name) });
    return { name: g.name, box, el: check(`${g.name} (${g.devices} device${g.devices === 1 ? '' : 's'})`, box) };
  });
  // Groups named by the profile but since deleted stay visible, so saving does not drop them silently.
  for (const g of t.groups ?? []) {
    if (!groups.some((x) => x.name === g)) {
      const box = h('input', { type: 'checkbox', name: 'target-group', value: g, checked: true });
      groupBoxes.push({ name: g, box, el: check(`${g} (no such group)`, box) });
    }
  }
  const deviceIds = h('textarea', { name: 'target-devices', rows: '3', spellcheck: 'false' });
  deviceIds.value = (t.devices ?? []).join('\n');
  const groupsPanel = h('fieldset', { class: 'sub' }, h('legend', {}, 'Groups'),
    groupBoxes.length ? groupBoxes.map((g) => g.el) : h('p', { class: 'hint' }, 'No groups yet: create one on the Groups page.'));
  const devicesPanel = h('div', { class: 'sub' }, field('Device IDs, one per line', deviceIds));
  const syncTargets = () => {
    groupsPanel.hidden = !tGroups.checked;
    devicesPanel.hidden = !tDevices.checked;
  };
  for (const r of [tAll, tGroups, tDevices]) r.addEventListener('change', syncTargets);
  syncTargets();
  const targets = h('fieldset', {}, h('legend', {}, 'Targets'),
    check('All devices', tAll), check('Groups', tGroups), groupsPanel, check('Specific devices', tDevices), devicesPanel);

  // Settings: a list of rows, or SyncML markup.
  const mList = radio('settings-mode', 'list', true);
  const mSyncml = radio('settings-mode', 'syncml', false);
  const rowsEl = h('div', { class: 'setting-rows' });
  const rows = [];
  const addRow = (s = { uri: '', format: 'int', data: '', read_back: true }) => {
    const n = rows.length + 1;
    const uri = input({ name: 'uri', value: s.uri, spellcheck: 'false', autocomplete: 'off', class: 'wide' });
    const format = select(FORMATS, s.format, { name: 'format' });
    const data = input({ name: 'data', value: s.data, spellcheck: 'false', autocomplete: 'off' });
    const readBack = h('input', { type: 'checkbox', name: 'read_back', checked: s.read_back !== false });
    const row = { uri, format, data, readBack };
    const removeBtn = button('Remove', () => {
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
      renumber();
      (rows[0]?.uri ?? addBtn).focus();
    }, { kind: 'link' });
    row.legend = h('legend', {}, `Setting ${n}`);
    row.removeBtn = removeBtn;
    row.el = h('fieldset', { class: 'setting-row' }, row.legend,
      field('Node URI', uri), field('Format', format), field('Value', data), check('Read back to verify', readBack), removeBtn);
    rows.push(row);
    rowsEl.append(row.el);
    renumber();
    return row;
  };
  const renumber = () => rows.forEach((r, i) => {
    r.legend.textContent = `Setting ${i + 1}`;
    r.removeBtn.setAttribute('aria-label', `Remove setting ${i + 1}`);
  });
  const addBtn = button('Add setting', () => addRow().uri.focus());
  for (const s of existing?.settings ?? [{ uri: '', format: 'int', data: '', read_back: true }]) addRow(s);
  const syncml = h('textarea', { name: 'syncml', rows: '8', spellcheck: 'false', class: 'code' });
  const listPanel = h('div', {}, rowsEl, h('div', { class: 'actions' }, addBtn));
  const syncmlPanel = h('div', {}, field('SyncML (<Replace>/<Add> elements, optionally in one <Atomic>)', syncml));
  const syncMode = () => {
    listPanel.hidden = !mList.checked;
    syncmlPanel.hidden = !mSyncml.checked;
  };
  mList.addEventListener('change', syncMode);
  mSyncml.addEventListener('change', syncMode);
  syncMode();
  const atomic = h('input', { type: 'checkbox', name: 'atomic', checked: !!existing?.atomic });
  const settings = h('fieldset', {}, h('legend', {}, 'Settings'),
    h('div', { class: 'radio-row' }, check('Setting list', mList), check('SyncML markup', mSyncml)),
    listPanel, syncmlPanel,
    check('Deliver as one Atomic (all settings or none)', atomic));

  const messages = messageArea();
  const submit = button(existing ? 'Save profile' : 'Create profile', null, { type: 'submit', kind: 'primary' });
  const form = h('form', { class: 'editor', 'aria-label': 'Profile' },
    field('Name', name), field('Description', description), targets, settings, messages.el,
    h('div', { class: 'actions' }, submit,
      h('a', { href: existing ? href(['profiles', existing.id]) : href(['profiles']), class: 'btn btn-link' }, 'Cancel')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    messages.clear();
    const body = { name: name.value, description: description.value };
    if (tAll.checked) body.targets = { all: true };
    else if (tGroups.checked) body.targets = { groups: groupBoxes.filter((g) => g.box.checked).map((g) => g.name) };
    else body.targets = { devices: deviceIds.value.split(/\s+/).filter(Boolean) };
    if (mSyncml.checked) {
      body.syncml = syncml.value;
      if (atomic.checked) body.atomic = true;
    } else {
      body.settings = rows.map((r) => ({
        uri: r.uri.value.trim(),
        format: r.format.value,
        data: r.data.value,
        ...(r.readBack.checked ? {} : { read_back: false }),
      }));
      body.atomic = atomic.checked;
    }
    busy(submit, async () => {
      try {
        const saved = existing
          ? await put(`/api/v1/profiles/${seg(existing.id)}`, body)
          : await post('/api/v1/profiles', body);
        go(['profiles', saved.id]);
      } catch (err) {
        // The API's own words: it validated the profile.
        messages.show(h('div', { class: 'alert alert-error', role: 'alert' },
          h('p', { class: 'alert-title' }, existing ? 'The profile was not saved:' : 'The profile was not created:'),
          h('p', { class: 'api-error' }, err.message)));
      }
    });
  });
  el.append(form);
}
