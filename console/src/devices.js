// Devices: search and filters over the fleet index (GET /api/v1/devices), sorted, paginated.

import { get } from './api.js';
import { h } from './dom.js';
import { edition, plural, time, title } from './format.js';
import { go, href } from './router.js';
import { badge, button, code, field, input, pageSize, pageTitle, pager, select, table } from './ui.js';

export const DEVICE_STATUSES = ['enrolled', 'retiring', 'retired', 'unenrolled', 'superseded'];
export const PROFILE_STATUSES = ['pending', 'verifying', 'verified', 'failed', 'removing'];
const SORTS = [
  ['-last_checkin', 'Last check-in, newest first'],
  ['last_checkin', 'Last check-in, oldest first'],
  ['name', 'Name'],
  ['-enrolled_at', 'Enrolled, newest first'],
];
const FILTERS = ['q', 'status', 'os_version', 'group', 'profile_status', 'profile', 'sort', 'limit'];

export async function devicesPage(el, ctx) {
  el.append(pageTitle('Devices'));
  const filters = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) ?? '']));
  const cursor = ctx.query.get('cursor') ?? '';
  filters.limit = ctx.query.has('limit') ? String(pageSize(ctx.query)) : '';
  const [page, groups, stats] = await Promise.all([
    get('/api/v1/devices', { ...filters, cursor, limit: pageSize(ctx.query) }),
    get('/api/v1/groups').then((r) => r.groups).catch(() => []),
    get('/api/v1/stats').catch(() => null),
  ]);
  el.append(filterForm(filters, groups, stats));
  const shown = page.devices.length;
  el.append(h('p', { class: 'total', role: 'status' },
    page.total === shown && !cursor ? `${plural(page.total, 'device')}` : `${plural(page.total, 'device')} match; showing ${shown}`));
  el.append(deviceTable(page.devices, 'Devices matching the filters'));
  el.append(pager({
    first: cursor ? href(['devices'], filters) : null,
    next: page.next_cursor ? href(['devices'], { ...filters, cursor: page.next_cursor }) : null,
  }));
}

/** The fleet-index device table (DeviceSummary rows). */
export function deviceTable(devices, caption, extra = []) {
  return table({
    caption,
    empty: 'No devices match.',
    columns: [
      { label: 'Name', header: true, class: 'nowrap', cell: (d) => h('a', { href: href(['devices', d.device_id]) }, d.device_name || d.device_id) },
      { label: 'Device ID', cell: (d) => code(d.device_id), class: 'id' },
      { label: 'User', cell: (d) => d.user ?? '—' },
      { label: 'Status', cell: (d) => badge(d.status) },
      { label: 'OS version', cell: (d) => d.os_version ?? '—' },
      { label: 'Edition', cell: (d) => edition(d.os_edition) },
      { label: 'Last check-in', cell: (d) => time(d.last_checkin) },
      { label: 'Certificate expires', cell: (d) => time(d.certificate_not_after) },
      { label: 'Groups', cell: (d) => (d.groups?.length ? d.groups.join(', ') : '—') },
      ...extra,
    ],
    rows: devices,
  });
}

function filterForm(filters, groups, stats) {
  const q = input({ type: 'search', name: 'q', value: filters.q, autocomplete: 'off', placeholder: 'Name, user or device ID' });
  const status = select([['', 'Any status'], ...DEVICE_STATUSES.map((s) => [s, title(s)])], filters.status, { name: 'status' });
  const versions = (stats?.devices_by_os_version ?? []).map((r) => r.os_version).filter(Boolean);
  if (filters.os_version && !versions.includes(filters.os_version)) versions.push(filters.os_version);
  const os = select([['', 'Any OS version'], ...versions], filters.os_version, { name: 'os_version' });
  const groupNames = groups.map((g) => g.name);
  if (filters.group && !groupNames.includes(filters.group)) groupNames.push(filters.group);
  const group = select([['', 'Any group'], ...groupNames], filters.group, { name: 'group' });
  const profileStatus = select([['', 'Any profile status'], ...PROFILE_STATUSES.map((s) => [s, title(s)])],
    filters.profile_status, { name: 'profile_status' });
  const sort = select(SORTS, filters.sort || '-last_checkin', { name: 'sort' });
  const form = h('form', { role: 'search', class: 'filters', 'aria-label': 'Filter devices' },
    field('Search', q),
    field('Status', status),
    field('OS version', os),
    field('Group', group),
    field('Profile status', profileStatus),
    field('Sort by', sort),
    filters.profile ? h('p', { class: 'hint filter-note' }, 'Only devices with profile ', code(filters.profile),
      filters.profile_status ? ` ${filters.profile_status}` : '', '. ',
      h('a', { href: href(['devices'], { ...filters, profile: '', cursor: '' }) }, 'Any profile')) : null,
    h('div', { class: 'filter-actions' },
      button('Search', null, { type: 'submit', kind: 'primary' }),
      h('a', { href: href(['devices']), class: 'btn btn-link' }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(['devices'], {
      q: q.value.trim(),
      status: status.value,
      os_version: os.value,
      group: group.value,
      profile_status: profileStatus.value,
      profile: filters.profile,
      sort: sort.value === '-last_checkin' ? '' : sort.value,
      limit: filters.limit,
    });
  });
  return form;
}
