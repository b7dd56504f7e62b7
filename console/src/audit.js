// Audit log: who did what to what, newest first, filtered by actor, target and action.

import { get } from './api.js';
import { h, uid } from './dom.js';
import { time } from './format.js';
import { go, href } from './router.js';
import { badge, button, code, field, input, pageSize, pageTitle, pager, table } from './ui.js';

const ACTIONS = [
  'session.create', 'session.failed', 'session.delete', 'admin.create', 'admin.update', 'admin.delete',
  'api_token.create', 'api_token.revoke', 'user.create', 'user.delete', 'enrollment_token.create',
  'enrollment_token.revoke', 'device.command', 'device.retire', 'profile.create', 'profile.update', 'profile.delete',
  'group.create', 'group.delete', 'group.add_device', 'group.remove_device', 'auth.csrf_refused', 'auth.role_refused',
];

/**
 * What an audit target (or detail) names, linked when the console has a page for it: one or
 * more space-separated `<kind>:<id>` (a membership change names the device, its detail the
 * group); a refused request is `route:<METHOD> <path>`.
 */
function targetNode(target) {
  if (!target) return '—';
  const parts = target.split(/ (?=(?:device|user|admin|profile|group|enrollment_token|api_token|route):)/);
  return parts.filter(Boolean).map((part, n) => {
    const i = part.indexOf(':');
    const [kind, id] = i > 0 ? [part.slice(0, i), part.slice(i + 1)] : [part, ''];
    const pages = { device: ['devices', id], profile: ['profiles', id], group: ['groups', id] };
    const node = pages[kind] && id ? h('a', { href: href(pages[kind]) }, part) : code(part);
    return n ? [h('br'), node] : node;
  });
}

export async function auditPage(el, ctx) {
  el.append(pageTitle('Audit log'));
  const limit = pageSize(ctx.query);
  const filters = { actor: ctx.query.get('actor') ?? '', target: ctx.query.get('target') ?? '', action: ctx.query.get('action') ?? '' };
  const cursor = ctx.query.get('cursor') ?? '';
  const page = await get('/api/v1/audit', { ...filters, cursor, limit });

  const actor = input({ name: 'actor', value: filters.actor, autocomplete: 'off', placeholder: 'email or bootstrap' });
  const target = input({ name: 'target', value: filters.target, autocomplete: 'off', placeholder: 'device:ID, user:email…' });
  const listId = uid('actions');
  const action = input({ name: 'action', value: filters.action, autocomplete: 'off', list: listId, placeholder: 'device.command…' });
  const form = h('form', { role: 'search', class: 'filters', 'aria-label': 'Filter the audit log' },
    field('Actor', actor), field('Target', target), field('Action', action),
    h('datalist', { id: listId }, ACTIONS.map((a) => h('option', { value: a }))),
    h('div', { class: 'filter-actions' },
      button('Filter', null, { type: 'submit', kind: 'primary' }),
      h('a', { href: href(['audit']), class: 'btn btn-link' }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(['audit'], { actor: actor.value.trim(), target: target.value.trim(), action: action.value.trim(), limit: ctx.query.get('limit') });
  });
  el.append(form);

  const filterLink = (key, value) => h('a', { href: href(['audit'], { ...filters, [key]: value }), title: `Only ${key} ${value}` }, value);
  el.append(table({
    caption: 'Audit entries, newest first',
    className: 'audit',
    empty: 'No entries match.',
    columns: [
      { label: 'Time', cell: (a) => time(a.at, { seconds: true }) },
      { label: 'Actor', cell: (a) => filterLink('actor', a.actor) },
      { label: 'Action', header: true, cell: (a) => filterLink('action', a.action) },
      { label: 'Target', cell: (a) => targetNode(a.target), class: 'wrap' },
      { label: 'Detail', cell: (a) => (/^group:/.test(a.detail ?? '') ? targetNode(a.detail) : a.detail ?? '—') },
      { label: 'Result', cell: (a) => badge(a.result) },
      { label: 'HTTP', cell: (a) => String(a.status), class: 'num' },
      { label: 'Address', cell: (a) => a.address ?? '—' },
    ],
    rows: page.entries,
  }));
  const kept = { ...filters, limit: ctx.query.get('limit') };
  el.append(pager({
    first: cursor ? href(['audit'], kept) : null,
    next: page.next_cursor ? href(['audit'], { ...kept, cursor: page.next_cursor }) : null,
  }));
}
