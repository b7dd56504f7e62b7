// A horizontal bar chart in SVG (built with createElementNS; sizes as SVG attributes, colours
// from app.css classes). The chart is an image with a text alternative; the same numbers are
// also in a table beside it for keyboard and screen-reader users.

import { svg } from './dom.js';

const WIDTH = 640;
const LABEL_W = 200;
const VALUE_W = 56;
const ROW_H = 30;
const BAR_H = 18;

/**
 * data: [{ label, value, tone? }] (tone: a CSS class suffix, e.g. the status name).
 * Returns an <svg role="img"> whose accessible name lists every bar.
 */
export function barChart(data, { label }) {
  const max = Math.max(1, ...data.map((d) => d.value));
  const height = Math.max(ROW_H, data.length * ROW_H) + 8;
  const barSpace = WIDTH - LABEL_W - VALUE_W;
  const summary = `${label}: ${data.map((d) => `${d.label} ${d.value}`).join(', ') || 'no data'}`;
  const rows = data.map((d, i) => {
    const y = i * ROW_H + 4;
    const w = d.value > 0 ? Math.max(2, Math.round((d.value / max) * barSpace)) : 0;
    return svg('g', { class: 'bar-row' },
      svg('text', { x: LABEL_W - 8, y: y + BAR_H - 4, class: 'bar-label', 'text-anchor': 'end', text: truncate(d.label, 26) }),
      svg('rect', { x: LABEL_W, y, width: w, height: BAR_H, rx: 3, class: `bar bar-${d.tone ?? 'default'}` }),
      svg('text', { x: LABEL_W + w + 6, y: y + BAR_H - 4, class: 'bar-value', text: String(d.value) }));
  });
  return svg('svg', {
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: WIDTH,
    height,
    role: 'img',
    'aria-label': summary,
    class: 'chart',
    preserveAspectRatio: 'xMinYMin meet',
  }, svg('title', { text: summary }), ...rows);
}

function truncate(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
