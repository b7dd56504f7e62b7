// Dashboard: the fleet at a glance, from GET /api/v1/stats.

import { get } from './api.js';
import { barChart } from './chart.js';
import { h } from './dom.js';
import { title } from './format.js';
import { href } from './router.js';
import { pageTitle, section, table } from './ui.js';

const STATUS_ORDER = ['enrolled', 'retiring', 'retired', 'unenrolled', 'superseded'];

export async function dashboardPage(el) {
  el.append(pageTitle('Dashboard'));
  const [stats, profiles] = await Promise.all([
    get('/api/v1/stats'),
    get('/api/v1/profiles').then((r) => r.profiles).catch(() => []),
  ]);
  const names = new Map(profiles.map((p) => [p.id, p.name]));

  const card = (label, value, link) => h('div', { class: 'card' },
    h('p', { class: 'card-label' }, label),
    h('p', { class: 'card-value' }, link ? h('a', { href: link }, String(value)) : String(value)));
  el.append(h('div', { class: 'cards' },
    card('Devices', stats.total_devices, href(['devices'])),
    card('Check-ins in the last 24 h', stats.checkins_last_24h),
    card('Certificates expiring within 30 days', stats.certificates_expiring_30d),
    card('Failing profiles', stats.failing_profiles.length)));

  const byStatus = Object.entries(stats.devices_by_status ?? {})
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([status, count]) => ({ status, count }));
  el.append(section('Devices by status',
    barChart(byStatus.map((s) => ({ label: title(s.status), value: s.count, tone: s.status })), { label: 'Devices by status' }),
    table({
      caption: 'Devices by status',
      className: 'compact',
      columns: [
        { label: 'Status', header: true, cell: (r) => h('a', { href: href(['devices'], { status: r.status }) }, title(r.status)) },
        { label: 'Devices', class: 'num', cell: (r) => String(r.count) },
      ],
      rows: byStatus,
      empty: 'No devices yet.',
    })));

  const byOs = (stats.devices_by_os_version ?? []).map((r) => ({ os: r.os_version, count: r.count }));
  el.append(section('Devices by OS version',
    barChart(byOs.map((r) => ({ label: r.os ?? 'Unknown', value: r.count })), { label: 'Devices by OS version' }),
    table({
      caption: 'Devices by OS version',
      className: 'compact',
      columns: [
        {
          label: 'OS version',
          header: true,
          cell: (r) => (r.os ? h('a', { href: href(['devices'], { os_version: r.os }) }, r.os) : 'Unknown'),
        },
        { label: 'Devices', class: 'num', cell: (r) => String(r.count) },
      ],
      rows: byOs,
      empty: 'No devices yet.',
    })));

  el.append(section('Failing profiles',
    table({
      caption: 'Profiles that failed on at least one device',
      columns: [
        { label: 'Profile', header: true, cell: (r) => h('a', { href: href(['profiles', r.profile_id]) }, names.get(r.profile_id) ?? r.profile_id) },
        {
          label: 'Devices failing',
          class: 'num',
          cell: (r) => h('a', { href: href(['profiles', r.profile_id], { status: 'failed' }) }, String(r.devices)),
        },
      ],
      rows: stats.failing_profiles ?? [],
      empty: 'No profile is failing.',
    })));
}

function rank(status) {
  const i = STATUS_ORDER.indexOf(status);
  return i < 0 ? STATUS_ORDER.length : i;
}
