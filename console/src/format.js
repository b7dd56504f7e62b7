// Dates, durations and the DMClient poll schedule, as the console shows them.

import { h } from './dom.js';

const pad = (n) => String(n).padStart(2, '0');

/** `2026-12-05 01:02 UTC` for an RFC 3339 string (or Date); '—' for none. */
export function utc(value, { seconds = false } = {}) {
  if (!value) return '—';
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${base}${seconds ? `:${pad(d.getUTCSeconds())}` : ''} UTC`;
}

/** A <time> element for an RFC 3339 string, or '—'. */
export function time(value, opts) {
  if (!value) return '—';
  return h('time', { datetime: value }, utc(value, opts));
}

/** `3 min`, `15 min`, `8 h`, `1 h 30 min` for a number of minutes. */
export function minutes(n) {
  if (n < 60) return `${n} min`;
  const hrs = Math.floor(n / 60);
  const rest = n % 60;
  return rest ? `${hrs} h ${rest} min` : `${hrs} h`;
}

/** How Windows polls after enrollment, in words, from GET /api/v1/server's `poll`. */
export function pollSchedule(poll) {
  if (!poll) return '';
  const phase = (interval, count) => (count === 0
    ? `every ${minutes(interval)}`
    : `every ${minutes(interval)} for ${count} check-in${count === 1 ? '' : 's'}`);
  const parts = [`${phase(poll.first_interval, poll.first_count)} after enrollment`];
  if (poll.first_count !== 0) {
    parts.push(`then ${phase(poll.second_interval, poll.second_count)}`);
    if (poll.second_count !== 0) parts.push(`then every ${minutes(poll.remaining_interval)}`);
  }
  return `Windows checks in ${parts.join(', ')}.`;
}

/**
 * When the device is expected to check in next, by the poll schedule counted from its
 * enrollment: the last check-in plus the interval of the phase it was in. Null when unknown.
 */
export function nextCheckin(device, poll) {
  if (!poll || !device?.enrolled_at) return null;
  const enrolled = Date.parse(device.enrolled_at);
  const last = Date.parse(device.last_checkin ?? device.enrolled_at);
  if (Number.isNaN(enrolled) || Number.isNaN(last)) return null;
  const elapsedMin = (last - enrolled) / 60_000;
  const end1 = poll.first_count === 0 ? Infinity : poll.first_interval * poll.first_count;
  const end2 = poll.second_count === 0 ? Infinity : end1 + poll.second_interval * poll.second_count;
  let interval = poll.remaining_interval;
  if (elapsedMin < end1) interval = poll.first_interval;
  else if (elapsedMin < end2) interval = poll.second_interval;
  return new Date(last + interval * 60_000);
}

/** `Retiring` for `retiring`. */
export const title = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1).replace(/_/g, ' ') : '');

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Windows `OSEdition` (a product type number) with its name, when known. */
const EDITIONS = {
  4: 'Enterprise', 27: 'Enterprise N', 48: 'Pro', 49: 'Pro N', 72: 'Enterprise Evaluation', 98: 'Home N',
  99: 'Home China', 100: 'Home Single Language', 101: 'Home', 121: 'Education', 122: 'Education N',
  125: 'Enterprise LTSC', 161: 'Pro for Workstations', 164: 'Pro Education', 175: 'Enterprise multi-session',
  188: 'IoT Enterprise',
};
export function edition(value) {
  if (value === null || value === undefined || value === '') return '—';
  const name = EDITIONS[Number(value)];
  return name ? `${name} (${value})` : String(value);
}
