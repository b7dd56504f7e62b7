// Shared pieces of the pages: headings, sections, tables, labelled fields, messages, the
// confirmation dialog and the "shown once" secret panel.

import { h, uid } from './dom.js';
import { title as titleCase } from './format.js';

const APP = 'edgemdm admin';

/** The page's h1 (focusable, so navigation can move focus to it) and the document title. */
export function pageTitle(text) {
  document.title = `${text} · ${APP}`;
  return h('h1', { tabindex: '-1', class: 'page-title' }, text);
}

/** A titled section: <section aria-labelledby> with an h2. */
export function section(heading, ...children) {
  const id = uid('s');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, heading), ...children);
}

/**
 * A table: columns [{ label, cell(row) → node|string, class? }], rows, an accessible caption,
 * and a text for no rows.
 */
export function table({ caption, columns, rows, empty = 'Nothing here yet.', className }) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: className },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => {
        const v = c.cell(r);
        return h(c.header ? 'th' : 'td', { class: c.class, ...(c.header ? { scope: 'row' } : {}) }, v ?? '—');
      }))))));
}

/** A definition list of [term, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

/** A labelled control: the label's `for` points at the control's id. */
export function field(label, control, hint) {
  control.id ||= uid('f');
  const hintEl = hint ? h('span', { class: 'hint', id: uid('h') }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** A checkbox (or radio) with its label after it. */
export function check(label, control) {
  control.id ||= uid('c');
  return h('div', { class: 'check' }, control, h('label', { for: control.id }, label));
}

export function input(props = {}) {
  return h('input', { type: 'text', ...props });
}

/** A <select> of [value, label] pairs (or plain strings). */
export function select(options, value, props = {}) {
  return h('select', props, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: v === value }, label);
  }));
}

export function button(label, onClick, { kind = 'secondary', type = 'button', ...props } = {}) {
  return h('button', { type, class: ['btn', `btn-${kind}`], on: onClick ? { click: onClick } : undefined, ...props }, label);
}

/** An error message, announced. */
export function errorBox(err) {
  const message = typeof err === 'string' ? err : err?.message ?? String(err);
  return h('div', { class: 'alert alert-error', role: 'alert' }, message);
}

/** A success or progress message, announced politely. */
export function notice(...content) {
  return h('div', { class: 'alert alert-ok', role: 'status' }, ...content);
}

/** A place for a form's messages: `show(node)` / `clear()`. */
export function messageArea() {
  const el = h('div', { class: 'messages', 'aria-live': 'polite' });
  return {
    el,
    show(node) { el.replaceChildren(node); },
    error(err) { el.replaceChildren(errorBox(err)); },
    clear() { el.replaceChildren(); },
  };
}

/** Runs `work` with `btn` disabled and marked busy. */
export async function busy(btn, work) {
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}

/** A coloured status label. */
export function badge(status) {
  if (!status) return '—';
  return h('span', { class: ['badge', `badge-${String(status).replace(/[^a-z0-9-]/gi, '')}`] }, titleCase(status));
}

export function code(text) {
  return text === null || text === undefined || text === '' ? '—' : h('code', {}, String(text));
}

/**
 * A modal confirmation. `typed`: values the user must type one of (e.g. the device id or
 * name) before the confirm button is enabled. Resolves true when confirmed.
 */
export function confirmDialog({ heading, body, confirmLabel, danger = false, typed = null }) {
  return new Promise((resolve) => {
    const headingId = uid('d');
    const confirmBtn = h('button', { type: 'submit', class: ['btn', danger ? 'btn-danger' : 'btn-primary'] }, confirmLabel);
    const cancelBtn = h('button', { type: 'button', class: 'btn btn-secondary' }, 'Cancel');
    let typedInput = null;
    const wanted = (typed ?? []).filter(Boolean);
    if (wanted.length) {
      typedInput = input({ autocomplete: 'off', spellcheck: 'false' });
      confirmBtn.disabled = true;
      typedInput.addEventListener('input', () => {
        confirmBtn.disabled = !wanted.includes(typedInput.value.trim());
      });
    }
    const what = wanted.map((w) => `“${w}”`).join(' or ');
    const form = h('form', { class: 'dialog-form' },
      h('h2', { id: headingId }, heading),
      h('div', { class: 'dialog-body' }, body),
      typedInput ? field(`Type ${what} to confirm`, typedInput) : null,
      h('div', { class: 'actions' }, cancelBtn, confirmBtn));
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': headingId }, form);
    let result = false;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (confirmBtn.disabled) return;
      result = true;
      dialog.close();
    });
    cancelBtn.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    (typedInput ?? cancelBtn).focus();
  });
}

/**
 * A secret shown once (a new token): a read-only field to copy from, a copy button, and a
 * warning that it will not be shown again.
 */
export function secretPanel({ heading, label, secret, extra }) {
  const value = h('input', { type: 'text', readOnly: true, value: secret, class: 'secret', spellcheck: 'false', autocomplete: 'off' });
  const copied = h('span', { class: 'hint', role: 'status' });
  const copyBtn = button('Copy', async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = 'Copied.';
    } catch {
      copied.textContent = 'Select the text and copy it.';
    }
  });
  const id = uid('s');
  return h('section', { class: 'panel panel-secret', 'aria-labelledby': id },
    h('h2', { id }, heading),
    h('p', { class: 'warning' }, 'This is the only time it is shown. Copy it now.'),
    field(label, value),
    h('div', { class: 'actions' }, copyBtn, copied),
    extra);
}

/** The page size from the route's `limit` (1..200), else `fallback`. */
export function pageSize(query, fallback = 50) {
  const n = Number(query.get('limit'));
  return Number.isInteger(n) && n >= 1 && n <= 200 ? n : fallback;
}

/** `First page` / `Next page` links for cursor pagination. */
export function pager({ first, next }) {
  if (!first && !next) return document.createDocumentFragment();
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    first ? h('a', { href: first, class: 'btn btn-secondary' }, 'First page') : null,
    next ? h('a', { href: next, class: 'btn btn-secondary' }, 'Next page') : null);
}
